//! Statistics across seeds. Iterations-to-100% are right-censored: a seed that never reached
//! 100% within the cap counts as "more than the cap" (+∞), not as missing, so a median is
//! reported only when more than half of the seeds converged.

/// The `q`-quantile (0 ≤ q ≤ 1) with linear interpolation between order statistics (NumPy's
/// default), treating `None` as +∞. `None` when the quantile is not finite or `xs` is empty.
pub fn censored_quantile(xs: &[Option<f64>], q: f64) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    let mut v: Vec<f64> = xs.iter().map(|x| x.unwrap_or(f64::INFINITY)).collect();
    // A total order (a NaN, never expected, sorts last instead of panicking): equal keys are
    // equal bits, so the unstable sort gives the same array as a stable one, sooner.
    v.sort_unstable_by(f64::total_cmp);
    sorted_quantile(&v, q)
}

/// The interpolated `q`-quantile of a sorted, non-empty slice; `None` if not finite.
fn sorted_quantile(v: &[f64], q: f64) -> Option<f64> {
    let pos = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    let frac = pos - lo as f64;
    let r = if frac == 0.0 { v[lo] } else { v[lo] + (v[hi] - v[lo]) * frac };
    r.is_finite().then_some(r)
}

/// [`quantile`] at ¼, ½ and ¾ of the finite values (NaN each if there are none), from one sort.
pub fn quartiles(xs: &[f64]) -> [f64; 3] {
    let mut v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return [f64::NAN; 3];
    }
    v.sort_unstable_by(f64::total_cmp);
    [0.25, 0.5, 0.75].map(|q| sorted_quantile(&v, q).unwrap_or(f64::NAN))
}

/// The `q`-quantile of finite values (no censoring); `NaN` for an empty slice.
pub fn quantile(xs: &[f64], q: f64) -> f64 {
    let v: Vec<Option<f64>> = xs.iter().map(|&x| Some(x)).collect();
    censored_quantile(&v, q).unwrap_or(f64::NAN)
}

/// [`quantile`] of finite values by selection (linear time; reorders `v`): the same number
/// as sorting and interpolating, for the per-iteration curves over many seeds.
pub fn quantile_by_selection(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let pos = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let (lo, frac) = (pos.floor() as usize, pos - pos.floor());
    let (_, &mut a, right) = v.select_nth_unstable_by(lo, f64::total_cmp);
    if frac == 0.0 {
        return a;
    }
    let b = right.iter().copied().min_by(f64::total_cmp).unwrap_or(a);
    a + (b - a) * frac
}

/// Two-sided Mann–Whitney U test (normal approximation with tie correction and continuity
/// correction, as `scipy.stats.mannwhitneyu(a, b, method="asymptotic")`). Values may be
/// +∞ (a seed that never converged): they tie with each other above every finite value,
/// which is exactly what a censored count means for a rank test. Returns `(U of a, p)`.
pub fn mann_whitney_u(a: &[f64], b: &[f64]) -> (f64, f64) {
    let (n1, n2) = (a.len() as f64, b.len() as f64);
    let mut all: Vec<(f64, usize)> = a.iter().map(|&v| (v, 0)).chain(b.iter().map(|&v| (v, 1))).collect();
    all.sort_by(|x, y| x.0.partial_cmp(&y.0).expect("no NaN"));
    let n = all.len();
    let (mut rank_sum_a, mut tie_term) = (0.0, 0.0);
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        let t = (j - i + 1) as f64;
        let avg_rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum_a += avg_rank * all[i..=j].iter().filter(|x| x.1 == 0).count() as f64;
        tie_term += t * t * t - t;
        i = j + 1;
    }
    let u = rank_sum_a - n1 * (n1 + 1.0) / 2.0;
    let nf = n as f64;
    let mu = n1 * n2 / 2.0;
    let sigma = (n1 * n2 / 12.0 * ((nf + 1.0) - tie_term / (nf * (nf - 1.0)))).sqrt();
    if sigma == 0.0 {
        return (u, 1.0);
    }
    let z = ((u - mu).abs() - 0.5).max(0.0) / sigma;
    (u, libm::erfc(z / std::f64::consts::SQRT_2).min(1.0))
}

/// Ranks from 1, ties given their average rank.
pub fn ranks(v: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut r = vec![0.0; v.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && v[idx[j + 1]] == v[idx[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            r[k] = avg;
        }
        i = j + 1;
    }
    r
}

fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
    cov / (va * vb).sqrt()
}

/// Spearman's rank correlation and its two-sided p-value from the large-sample normal
/// approximation (z = ρ·√(n − 1)); NaN when either side is constant.
pub fn spearman(a: &[f64], b: &[f64]) -> (f64, f64) {
    let rho = pearson(&ranks(a), &ranks(b));
    let z = rho * ((a.len() as f64) - 1.0).sqrt();
    (rho, libm::erfc(z.abs() / std::f64::consts::SQRT_2).min(1.0))
}

/// Kendall's coefficient of concordance W of `m` raters' scores for the same `n` items
/// (`scores[rater][item]`), with the correction for ties: 1 when every rater orders the items
/// alike, near 0 when their orders are unrelated.
pub fn kendall_w(scores: &[Vec<f64>]) -> f64 {
    let m = scores.len() as f64;
    let n = scores.first().map_or(0, Vec::len) as f64;
    let ranked: Vec<Vec<f64>> = scores.iter().map(|s| ranks(s)).collect();
    let sums: Vec<f64> = (0..n as usize).map(|i| ranked.iter().map(|r| r[i]).sum()).collect();
    let mean = sums.iter().sum::<f64>() / n;
    let s: f64 = sums.iter().map(|x| (x - mean).powi(2)).sum();
    let ties: f64 = scores
        .iter()
        .map(|sc| {
            let mut v = sc.clone();
            v.sort_by(f64::total_cmp);
            let mut t = 0.0;
            let mut i = 0;
            while i < v.len() {
                let j = v[i..].iter().take_while(|&&x| x == v[i]).count();
                t += (j * j * j - j) as f64;
                i += j;
            }
            t
        })
        .sum();
    12.0 * s / (m * m * (n * n * n - n) - m * ties)
}

/// A two-way decomposition without replication of `y[row][col]` (rows: data draws, columns:
/// initial seeds): the shares of the total sum of squares explained by the row and the column
/// means, and the rest (interaction and noise together); NaN when nothing varies.
pub fn two_way_shares(y: &[Vec<f64>]) -> (f64, f64, f64) {
    let (r, c) = (y.len(), y[0].len());
    let grand = y.iter().flatten().sum::<f64>() / (r * c) as f64;
    let row_means: Vec<f64> = y.iter().map(|row| row.iter().sum::<f64>() / c as f64).collect();
    let col_means: Vec<f64> = (0..c).map(|j| y.iter().map(|row| row[j]).sum::<f64>() / r as f64).collect();
    let total: f64 = y.iter().flatten().map(|v| (v - grand).powi(2)).sum();
    let rows: f64 = c as f64 * row_means.iter().map(|m| (m - grand).powi(2)).sum::<f64>();
    let cols: f64 = r as f64 * col_means.iter().map(|m| (m - grand).powi(2)).sum::<f64>();
    if total == 0.0 {
        return (f64::NAN, f64::NAN, f64::NAN); // nothing varies: no shares to give
    }
    (rows / total, cols / total, (total - rows - cols) / total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_quantiles_equal_sorted_ones() {
        let mut rng = crate::init::SeededRng::new(3);
        for n in [1, 2, 3, 4, 7, 32, 33, 1000] {
            let xs: Vec<f64> = (0..n).map(|_| rng.normal() * 10.0).collect();
            for q in [0.0, 0.25, 0.5, 0.75, 1.0, 0.1] {
                let mut v = xs.clone();
                assert_eq!(quantile_by_selection(&mut v, q), quantile(&xs, q), "n {n} q {q}");
            }
        }
        assert!(quantile_by_selection(&mut [], 0.5).is_nan());
    }

    #[test]
    fn mann_whitney_matches_scipy() {
        // scipy.stats.mannwhitneyu(a, b, alternative="two-sided", method="asymptotic")
        let (u, p) = mann_whitney_u(&[1.0, 2.0, 3.0, 4.0, 5.0], &[6.0, 7.0, 8.0, 9.0, 10.0]);
        assert_eq!(u, 0.0);
        assert!((p - 0.012185780355344813).abs() < 1e-12, "{p}");
        let inf = f64::INFINITY;
        let (u, p) = mann_whitney_u(&[10.0, 20.0, 20.0, 30.0, inf, inf], &[15.0, 20.0, 25.0, 35.0, 40.0, inf, 50.0]);
        assert_eq!(u, 19.0);
        assert!((p - 0.8284577023774674).abs() < 1e-12, "{p}");
        let (u, p) = mann_whitney_u(&[3.1, 2.2, 5.5, 4.1, 6.0, 3.3, 2.9], &[3.0, 4.4, 5.0, 6.1, 7.2, 5.9]);
        assert_eq!(u, 10.0);
        assert!((p - 0.13361440253771614).abs() < 1e-12, "{p}");
    }

    #[test]
    fn quantiles_match_numpy_linear() {
        // np.quantile([1, 2, 3, 4], [0.25, 0.5, 0.75]) == [1.75, 2.5, 3.25]
        let xs = [4.0, 1.0, 3.0, 2.0];
        assert_eq!(quantile(&xs, 0.25), 1.75);
        assert_eq!(quantile(&xs, 0.5), 2.5);
        assert_eq!(quantile(&xs, 0.75), 3.25);
        assert_eq!(quantile(&[7.0], 0.5), 7.0);
    }

    #[test]
    fn censored_values_count_as_larger_than_everything() {
        let xs = [Some(10.0), None, Some(30.0), Some(20.0), None];
        assert_eq!(censored_quantile(&xs, 0.5), Some(30.0));
        assert_eq!(censored_quantile(&xs, 0.25), Some(20.0));
        assert_eq!(censored_quantile(&xs, 0.75), None);
        assert_eq!(censored_quantile(&[None, None, Some(1.0)], 0.5), None);
        assert_eq!(censored_quantile(&[], 0.5), None);
    }

    #[test]
    fn rank_statistics_match_hand_and_scipy_values() {
        assert_eq!(ranks(&[10.0, 30.0, 20.0, 30.0]), vec![1.0, 3.5, 2.0, 3.5]);
        // scipy.stats.spearmanr([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]).statistic == 8/√95
        let (rho, _) = spearman(&[1.0, 2.0, 3.0, 4.0, 5.0], &[5.0, 6.0, 7.0, 8.0, 7.0]);
        assert!((rho - 0.8207826816681233).abs() < 1e-12, "{rho}");
        let up: Vec<f64> = (0..20).map(f64::from).collect();
        let down: Vec<f64> = up.iter().map(|x| -x * x).collect();
        let (rho, p) = spearman(&up, &down);
        // z = −√19: p = erfc(√19/√2) ≈ 1.3e-5.
        assert!((rho + 1.0).abs() < 1e-12 && (p - libm::erfc(19f64.sqrt() / 2f64.sqrt())).abs() < 1e-15, "{rho} {p}");
        let same = vec![vec![1.0, 2.0, 3.0, 4.0]; 3];
        assert!((kendall_w(&same) - 1.0).abs() < 1e-12);
        assert!(kendall_w(&[vec![1.0, 2.0, 3.0], vec![3.0, 2.0, 1.0]]).abs() < 1e-12);
    }

    #[test]
    fn two_way_shares_of_a_hand_computed_table() {
        // Grand mean 2.5; row means 1.5, 3.5 (SS 4); column means 2, 3 (SS 1); total SS 5.
        let (rows, cols, rest) = two_way_shares(&[vec![1.0, 2.0], vec![3.0, 4.0]]);
        assert!((rows - 0.8).abs() < 1e-12 && (cols - 0.2).abs() < 1e-12 && rest.abs() < 1e-12);
        // Pure interaction: neither rows nor columns explain anything.
        let (rows, cols, rest) = two_way_shares(&[vec![1.0, -1.0], vec![-1.0, 1.0]]);
        assert!(rows.abs() < 1e-12 && cols.abs() < 1e-12 && (rest - 1.0).abs() < 1e-12);
    }
}

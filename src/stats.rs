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
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN in iteration counts"));
    let pos = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    let frac = pos - lo as f64;
    let r = if frac == 0.0 { v[lo] } else { v[lo] + (v[hi] - v[lo]) * frac };
    r.is_finite().then_some(r)
}

/// The `q`-quantile of finite values (no censoring); `NaN` for an empty slice.
pub fn quantile(xs: &[f64], q: f64) -> f64 {
    let v: Vec<Option<f64>> = xs.iter().map(|&x| Some(x)).collect();
    censored_quantile(&v, q).unwrap_or(f64::NAN)
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

#[cfg(test)]
mod tests {
    use super::*;

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
}

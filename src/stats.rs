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

#[cfg(test)]
mod tests {
    use super::*;

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

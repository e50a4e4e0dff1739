//! Hutchinson's trace estimator, as PyHessian's `trace` runs it: `tr H = E[zᵀHz]` over
//! Rademacher `z`, probes drawn until the running mean's relative change falls below `tol`
//! (or `max_probes`), every model in lockstep with its own probes.

use super::Vectors;
use super::lanczos::random_vectors;
use crate::init::SeededRng;

/// One model's estimate.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Trace {
    /// The mean of the samples zᵀHz.
    pub trace: f64,
    /// Their standard error (sample standard deviation / √n); NaN for one sample.
    pub standard_error: f64,
    pub probes: usize,
}

pub fn hutchinson(
    hvp: &mut impl FnMut(&[Vec<f64>]) -> Vectors,
    dim: usize,
    rngs: &mut [SeededRng],
    tol: f64,
    max_probes: usize,
) -> Vec<Trace> {
    let e = rngs.len();
    let mut samples: Vec<Vec<f64>> = vec![vec![]; e];
    let mut done = vec![false; e];
    let mut previous = vec![0.0f64; e];
    for _ in 0..max_probes.max(1) {
        let z = random_vectors(dim, rngs, true);
        let hz = hvp(&z);
        for m in 0..e {
            if done[m] {
                continue;
            }
            samples[m].push(super::dot(&z[m], &hz[m]));
            let mean = samples[m].iter().sum::<f64>() / samples[m].len() as f64;
            // PyHessian's rule: |mean − previous mean| / (|previous| + 1e-6) < tol.
            done[m] = (mean - previous[m]).abs() / (previous[m].abs() + 1e-6) < tol;
            previous[m] = mean;
        }
        if done.iter().all(|&d| d) {
            break;
        }
    }
    samples
        .iter()
        .map(|s| {
            let n = s.len() as f64;
            let mean = s.iter().sum::<f64>() / n;
            let var = s.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
            Trace { trace: mean, standard_error: (var / n).sqrt(), probes: s.len() }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hutchinson_is_within_three_standard_errors_of_a_known_trace() {
        // A dense symmetric matrix with trace 12.5 (diagonal plus a rank-one part).
        let n = 30;
        let u: Vec<f64> = (0..n).map(|i| ((i * 7 % 11) as f64 - 5.0) / 5.0).collect();
        let diag: Vec<f64> = (0..n).map(|i| i as f64 / 10.0 - 1.5).collect();
        let want: f64 = diag.iter().sum::<f64>() + u.iter().map(|x| x * x).sum::<f64>();
        let mut h = |v: &[Vec<f64>]| -> Vectors {
            v.iter()
                .map(|v| {
                    let c = super::super::dot(&u, v);
                    v.iter().zip(&diag).zip(&u).map(|((x, d), ui)| d * x + c * ui).collect()
                })
                .collect()
        };
        let mut rngs: Vec<SeededRng> = (0..4).map(SeededRng::new).collect();
        let t = hutchinson(&mut h, n, &mut rngs, 1e-4, 400);
        for x in &t {
            assert!(x.probes > 1 && x.standard_error > 0.0);
            assert!((x.trace - want).abs() < 3.0 * x.standard_error, "{x:?} against {want}");
        }
    }
}

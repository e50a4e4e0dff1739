//! The Lanczos algorithm on Hessian-vector products, every model in lockstep (one product per
//! step serves the whole ensemble), with full reorthogonalisation (twice, classical
//! Gram–Schmidt): the Ritz values of the tridiagonal matrix converge to the extreme
//! eigenvalues at both ends, so an indefinite Hessian's λmax and λmin come out together, where
//! power iteration finds only the larger magnitude (and stalls when the two are close).
//!
//! Stochastic Lanczos quadrature ([`density`], [`broadened`]) is PyHessian's `density` and
//! `density_generate`: Rademacher starts, nodes the Ritz values, weights the squared first
//! components of T's eigenvectors, Gaussian broadening normalised to unit area.

use super::eigen::tridiagonal_eigen;
use super::{Vectors, axpy, dot};
use crate::init::SeededRng;

/// Which Ritz pairs must converge, and when a run stops.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// The `top` largest and the `bottom` smallest Ritz pairs are watched (and returned with
    /// their vectors).
    pub top: usize,
    pub bottom: usize,
    /// Converged when each watched pair's residual ‖Hy − θy‖ = β·|s_last| is at most
    /// `tol · max|θ|` (then some eigenvalue lies within that of θ).
    pub tol: f64,
    pub min_steps: usize,
    pub max_steps: usize,
}

impl Options {
    /// The largest eigenvalue (and with `bottom`, the smallest) to relative residual `tol`.
    pub fn extremes(bottom: bool, tol: f64, max_steps: usize) -> Options {
        Options { top: 1, bottom: usize::from(bottom), tol, min_steps: 2, max_steps }
    }
}

/// One model's Lanczos result.
#[derive(Clone, Debug, Default)]
pub struct Ritz {
    /// Ritz values, descending: the eigenvalues of the k × k tridiagonal matrix.
    pub values: Vec<f64>,
    /// Squared first components of T's eigenvectors: the quadrature weights (sum 1).
    pub weights: Vec<f64>,
    /// Each Ritz pair's residual norm.
    pub residuals: Vec<f64>,
    /// Unit Ritz vectors of the `top` largest, then the `bottom` smallest values.
    pub vectors: Vec<Vec<f64>>,
    pub steps: usize,
}

impl Ritz {
    pub fn max(&self) -> f64 {
        self.values.first().copied().unwrap_or(f64::NAN)
    }
    pub fn min(&self) -> f64 {
        self.values.last().copied().unwrap_or(f64::NAN)
    }
}

/// Lanczos from `start` (one vector per model, normalised here) with `hvp` applying every
/// model's Hessian to its vector.
pub fn lanczos(hvp: &mut impl FnMut(&[Vec<f64>]) -> Vectors, start: Vectors, o: &Options) -> Vec<Ritz> {
    let e = start.len();
    let dim = start.first().map_or(0, Vec::len);
    let max_steps = o.max_steps.clamp(1, dim.max(1));
    let mut basis: Vec<Vec<Vec<f64>>> = start
        .into_iter()
        .map(|mut v| {
            let n = dot(&v, &v).sqrt();
            assert!(n > 0.0, "a non-zero start vector");
            v.iter_mut().for_each(|x| *x /= n);
            vec![v]
        })
        .collect();
    let (mut alpha, mut beta) = (vec![vec![]; e], vec![vec![]; e]);
    let mut out: Vec<Option<Ritz>> = vec![None; e];
    for step in 1..=max_steps {
        let current: Vectors =
            (0..e).map(|m| if out[m].is_none() { basis[m][step - 1].clone() } else { vec![0.0; dim] }).collect();
        let mut w = hvp(&current);
        for m in 0..e {
            if out[m].is_some() {
                continue;
            }
            let q = &basis[m];
            let w = &mut w[m];
            let a = dot(w, &q[step - 1]);
            alpha[m].push(a);
            for _ in 0..2 {
                for qi in q {
                    let c = dot(w, qi);
                    axpy(w, -c, qi);
                }
            }
            let b = dot(w, w).sqrt();
            let k = step;
            let (values, ends) = tridiagonal_eigen(&alpha[m], &beta[m], &[0, k - 1]);
            let scale = values.iter().fold(0.0f64, |x, v| x.max(v.abs())).max(1e-300);
            let residual = |i: usize| b * ends[1][i].abs();
            // The top ones, then the bottom ones not among them.
            let watched: Vec<usize> =
                (0..o.top.min(k)).chain(k.saturating_sub(o.bottom).max(o.top.min(k))..k).collect();
            let converged = step >= o.min_steps.min(max_steps) && watched.iter().all(|&i| residual(i) <= o.tol * scale);
            if converged || b <= 1e-12 * scale || step == max_steps {
                let rows: Vec<usize> = (0..k).collect();
                let s = tridiagonal_eigen(&alpha[m], &beta[m], &rows).1;
                let vectors = watched
                    .iter()
                    .map(|&i| {
                        let mut y = vec![0.0; dim];
                        for (j, qj) in q.iter().enumerate() {
                            axpy(&mut y, s[j][i], qj);
                        }
                        y
                    })
                    .collect();
                out[m] = Some(Ritz {
                    weights: ends[0].iter().map(|x| x * x).collect(),
                    residuals: (0..k).map(residual).collect(),
                    values,
                    vectors,
                    steps: step,
                });
            } else {
                beta[m].push(b);
                let next = w.iter().map(|x| x / b).collect();
                basis[m].push(next);
            }
        }
        if out.iter().all(Option::is_some) {
            break;
        }
    }
    out.into_iter().map(|r| r.expect("every model stops by max_steps")).collect()
}

/// Per model: a vector of ±1 drawn from `rng`s (Rademacher), or of standard normals.
pub fn random_vectors(dim: usize, rngs: &mut [SeededRng], rademacher: bool) -> Vectors {
    rngs.iter_mut()
        .map(|r| {
            (0..dim).map(|_| if rademacher { if r.bernoulli(0.5) { 1.0 } else { -1.0 } } else { r.normal() }).collect()
        })
        .collect()
}

/// Stochastic Lanczos quadrature: `probes` Lanczos runs of `steps` steps per model from
/// Rademacher vectors; per model, each run's `(node, weight)` pairs.
pub fn density(
    hvp: &mut impl FnMut(&[Vec<f64>]) -> Vectors,
    dim: usize,
    rngs: &mut [SeededRng],
    probes: usize,
    steps: usize,
) -> Vec<Vec<Vec<(f64, f64)>>> {
    let mut runs = vec![vec![]; rngs.len()];
    let o = Options { top: 0, bottom: 0, tol: 0.0, min_steps: steps, max_steps: steps };
    for _ in 0..probes {
        let start = random_vectors(dim, rngs, true);
        for (m, r) in lanczos(hvp, start, &o).into_iter().enumerate() {
            runs[m].push(r.values.into_iter().zip(r.weights).collect());
        }
    }
    runs
}

/// PyHessian's `density_generate`: the runs' nodes broadened by Gaussians of variance
/// `sigma_squared · max(1, λmax − λmin)` on `bins` points from the runs' mean smallest node −
/// `overhead` to their mean largest + `overhead`, averaged over runs, normalised to unit area.
pub fn broadened(runs: &[Vec<(f64, f64)>], bins: usize, sigma_squared: f64, overhead: f64) -> (Vec<f64>, Vec<f64>) {
    let mean = |f: &dyn Fn(&[(f64, f64)]) -> f64| runs.iter().map(|r| f(r)).sum::<f64>() / runs.len() as f64;
    let hi = mean(&|r| r.iter().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max)) + overhead;
    let lo = mean(&|r| r.iter().map(|p| p.0).fold(f64::INFINITY, f64::min)) - overhead;
    let grid: Vec<f64> = (0..bins).map(|j| lo + (hi - lo) * j as f64 / (bins - 1) as f64).collect();
    let var = sigma_squared * (hi - lo).max(1.0);
    let norm = 1.0 / (2.0 * std::f64::consts::PI * var).sqrt();
    let mut d: Vec<f64> = grid
        .iter()
        .map(|&x| {
            runs.iter()
                .map(|r| r.iter().map(|&(t, w)| w * norm * (-(t - x).powi(2) / (2.0 * var)).exp()).sum::<f64>())
                .sum::<f64>()
                / runs.len() as f64
        })
        .collect();
    let area = d.iter().sum::<f64>() * (grid[1] - grid[0]);
    d.iter_mut().for_each(|x| *x /= area);
    (grid, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A diagonal "Hessian" per model, with a spectrum of both signs.
    fn diagonal(d: Vec<Vec<f64>>) -> impl FnMut(&[Vec<f64>]) -> Vectors {
        move |v| v.iter().zip(&d).map(|(v, d)| v.iter().zip(d).map(|(a, b)| a * b).collect()).collect()
    }

    #[test]
    fn lanczos_finds_both_ends_of_each_models_spectrum() {
        let spectra: Vec<Vec<f64>> = vec![
            (0..60).map(|i| 1.0 - i as f64 / 30.0).collect(), // 1 … −0.97: close magnitudes
            (0..60).map(|i| (i as f64 * 0.37).sin() * 3.0).collect(),
        ];
        let mut rngs: Vec<SeededRng> = (0..2).map(SeededRng::new).collect();
        let start = random_vectors(60, &mut rngs, false);
        let r = lanczos(&mut diagonal(spectra.clone()), start, &Options::extremes(true, 1e-10, 60));
        for (m, s) in spectra.iter().enumerate() {
            let (max, min) = (s.iter().copied().fold(f64::MIN, f64::max), s.iter().copied().fold(f64::MAX, f64::min));
            assert!((r[m].max() - max).abs() < 1e-9 && (r[m].min() - min).abs() < 1e-9, "{m}: {:?}", r[m].values);
            assert!((r[m].weights.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            assert_eq!(r[m].vectors.len(), 2);
        }
        // Stopped at the tolerance, not at the cap: fewer steps than the dimension for one of them.
        assert!(r.iter().any(|x| x.steps < 60), "{:?}", r.iter().map(|x| x.steps).collect::<Vec<_>>());
    }

    #[test]
    fn quadrature_gives_each_probes_first_two_moments_exactly() {
        // Σ wᵢθᵢ = vᵀHv/vᵀv and Σ wᵢθᵢ² = ‖Hv‖²/vᵀv for any start with ≥ 2 steps.
        let d: Vec<f64> = (0..40).map(|i| (i as f64 - 10.0) / 7.0).collect();
        let mut h = diagonal(vec![d.clone()]);
        let mut rngs = vec![SeededRng::new(3)];
        let runs = density(&mut h, 40, &mut rngs, 3, 5);
        let mut rngs = vec![SeededRng::new(3)];
        for run in &runs[0] {
            let v = &random_vectors(40, &mut rngs, true)[0];
            let n = dot(v, v);
            let m1: f64 = v.iter().zip(&d).map(|(x, l)| x * x * l).sum::<f64>() / n;
            let m2: f64 = v.iter().zip(&d).map(|(x, l)| x * x * l * l).sum::<f64>() / n;
            assert!((run.iter().map(|(t, w)| w * t).sum::<f64>() - m1).abs() < 1e-12);
            assert!((run.iter().map(|(t, w)| w * t * t).sum::<f64>() - m2).abs() < 1e-12);
        }
        let (grid, dens) = broadened(&runs[0], 500, 1e-3, 0.01);
        let area: f64 = dens.iter().sum::<f64>() * (grid[1] - grid[0]);
        assert!((area - 1.0).abs() < 1e-12 && dens.iter().all(|x| *x >= 0.0));
    }
}

//! Curvature of the training loss: the full Hessian spectrum of small networks (symmetric Jacobi
//! eigenvalue algorithm; `gradlab hessian`), and what a run's sharpness column (measured during
//! training by `training::sharpness`) says against 2/lr. Cohen et al. 2021
//! found that under full-batch gradient descent the sharpness rises until it hovers near 2/lr,
//! the largest curvature a step of size lr can follow without oscillating away ("edge of
//! stability"); `--sharpness-every K` records it during training.

use crate::engine::Real;
use crate::models::Net;

/// What a run's sharpness column says, against the edge of stability 2/lr.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SharpnessRow {
    pub setting: String,
    pub lr: f64,
    pub two_over_lr: f64,
    /// Medians over seeds of: the sharpness at iteration 1; the median over the second half of
    /// each seed's measured iterations; the largest.
    pub first: Option<f64>,
    pub late: Option<f64>,
    pub max: Option<f64>,
    pub converged: usize,
    pub seeds: usize,
    pub median_iterations: Option<f64>,
}

pub fn sharpness_row(lr: f64, run: &crate::record::Run) -> SharpnessRow {
    let (mut first, mut late, mut max) = (vec![], vec![], vec![]);
    if run.columns.iter().any(|c| c == "sharpness") {
        for s in 0..run.seeds.len() {
            let v: Vec<f64> = run.column(s, "sharpness").iter().filter(|x| x.is_finite()).map(|&x| x as f64).collect();
            if let (Some(&a), Some(m)) = (v.first(), v.iter().copied().reduce(f64::max)) {
                first.push(a);
                max.push(m);
                late.push(crate::stats::quantile(&v[v.len() / 2..], 0.5));
            }
        }
    }
    let med = |v: &[f64]| (!v.is_empty()).then(|| crate::stats::quantile(v, 0.5));
    let s = crate::record::RunSummary::of(run);
    SharpnessRow {
        setting: run.setting.clone(),
        lr,
        two_over_lr: 2.0 / lr,
        first: med(&first),
        late: med(&late),
        max: med(&max),
        converged: s.converged,
        seeds: s.seeds,
        median_iterations: s.median_iterations,
    }
}

/// The full Hessian of model 0's loss (`P × P`, row-major) by central differences of
/// gradients along each parameter, symmetrised. For small networks (fc73: 73 products).
pub fn full_hessian<T: Real>(net: &mut Net<T>) -> Vec<f64> {
    let ids: Vec<_> = net.params.iter().map(|(_, id, _)| *id).collect();
    let sizes: Vec<usize> = ids.iter().map(|&id| net.graph.value(id).len() / net.graph.ensemble()).collect();
    let p: usize = sizes.iter().sum();
    let gradient = |net: &mut Net<T>| -> Vec<f64> {
        net.graph.forward();
        net.graph.backward(net.loss);
        ids.iter()
            .zip(&sizes)
            .flat_map(|(&id, &n)| net.graph.grad(id)[..n].iter().map(|x| x.to_f64()).collect::<Vec<_>>())
            .collect()
    };
    let mut h = vec![0.0; p * p];
    let mut col = 0;
    for (&id, &n) in ids.iter().zip(&sizes) {
        for i in 0..n {
            let x0 = net.graph.value(id)[i];
            let eps = 1e-4 * x0.to_f64().abs().max(1.0);
            net.graph.value_mut(id)[i] = T::from_f64(x0.to_f64() + eps);
            let up = gradient(net);
            net.graph.value_mut(id)[i] = T::from_f64(x0.to_f64() - eps);
            let down = gradient(net);
            net.graph.value_mut(id)[i] = x0;
            for r in 0..p {
                h[r * p + col] = (up[r] - down[r]) / (2.0 * eps);
            }
            col += 1;
        }
    }
    for r in 0..p {
        for c in r + 1..p {
            let s = 0.5 * (h[r * p + c] + h[c * p + r]);
            h[r * p + c] = s;
            h[c * p + r] = s;
        }
    }
    net.graph.forward();
    net.graph.backward(net.loss);
    h
}

/// Eigenvalues of a symmetric `n × n` matrix (row-major) by the cyclic Jacobi method, in
/// descending order.
pub fn symmetric_eigenvalues(a: &[f64], n: usize) -> Vec<f64> {
    let mut m = a.to_vec();
    for _sweep in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| m[i * n + j].powi(2))
            .sum();
        let scale: f64 = m.iter().map(|x| x * x).sum::<f64>().max(1e-300);
        if off <= 1e-30 * scale {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = m[p * n + q];
                if apq.abs() < 1e-300 {
                    continue;
                }
                let theta = (m[q * n + q] - m[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (akp, akq) = (m[k * n + p], m[k * n + q]);
                    m[k * n + p] = c * akp - s * akq;
                    m[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let (apk, aqk) = (m[p * n + k], m[q * n + k]);
                    m[p * n + k] = c * apk - s * aqk;
                    m[q * n + k] = s * apk + c * aqk;
                }
            }
        }
    }
    let mut ev: Vec<f64> = (0..n).map(|i| m[i * n + i]).collect();
    ev.sort_by(|a, b| b.total_cmp(a));
    ev
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jacobi_finds_the_eigenvalues_of_a_rotated_diagonal() {
        assert_eq!(
            symmetric_eigenvalues(&[2.0, 1.0, 1.0, 2.0], 2)
                .iter()
                .map(|x| (x * 1e12).round() / 1e12)
                .collect::<Vec<_>>(),
            vec![3.0, 1.0]
        );
        // Q·diag(5, −1, 0.5, 2)·Qᵀ with Q a product of two plane rotations.
        let n = 4;
        let d = [5.0, -1.0, 0.5, 2.0];
        let rot = |i: usize, j: usize, a: f64| {
            let mut r = vec![0.0; n * n];
            (0..n).for_each(|k| r[k * n + k] = 1.0);
            r[i * n + i] = a.cos();
            r[j * n + j] = a.cos();
            r[i * n + j] = -a.sin();
            r[j * n + i] = a.sin();
            r
        };
        let mul = |a: &[f64], b: &[f64]| -> Vec<f64> {
            (0..n * n).map(|k| (0..n).map(|t| a[(k / n) * n + t] * b[t * n + k % n]).sum()).collect()
        };
        let q = mul(&rot(0, 2, 0.7), &rot(1, 3, -1.1));
        let qt: Vec<f64> = (0..n * n).map(|k| q[(k % n) * n + k / n]).collect();
        let dm: Vec<f64> = (0..n * n).map(|k| if k / n == k % n { d[k / n] } else { 0.0 }).collect();
        let a = mul(&mul(&q, &dm), &qt);
        let ev = symmetric_eigenvalues(&a, n);
        for (got, want) in ev.iter().zip([5.0, 2.0, 0.5, -1.0]) {
            assert!((got - want).abs() < 1e-12, "{ev:?}");
        }
    }
}

//! Curvature of the training loss: Hessian-vector products by finite differences of gradients,
//! the top eigenvalue (sharpness) by power iteration, per model of an ensemble, and the full
//! Hessian spectrum of small networks (symmetric Jacobi eigenvalue algorithm). Cohen et al. 2021
//! found that under full-batch gradient descent the sharpness rises until it hovers near 2/lr,
//! the largest curvature a step of size lr can follow without oscillating away ("edge of
//! stability"); `--sharpness-every K` records it during training.

use crate::engine::Real;
use crate::init::SeededRng;
use crate::models::Net;

/// Each model's parameters (or any vector shaped like them), tensor by tensor, all models.
type Tensors<T> = Vec<Vec<T>>;

fn copy_params<T: Real>(net: &Net<T>, out: &mut Tensors<T>, grads: bool) {
    for ((_, id, _), o) in net.params.iter().zip(out.iter_mut()) {
        o.copy_from_slice(if grads { net.graph.grad(*id) } else { net.graph.value(*id) });
    }
}

/// Power iteration for the largest-magnitude Hessian eigenvalue of every model at the net's
/// current parameters and fed data, warm-started from the previous call's vectors.
pub struct Sharpness<T: Real> {
    v: Tensors<T>,
    theta: Tensors<T>,
    g0: Tensors<T>,
    /// The latest estimate per model (NaN before the first).
    pub lambda: Vec<f64>,
    warm: bool,
}

impl<T: Real> Sharpness<T> {
    /// Starting vectors drawn from each model's seed (a model's estimate never depends on the
    /// others, like everything else in an ensemble).
    pub fn new(net: &Net<T>, seeds: &[u64]) -> Sharpness<T> {
        let e = net.graph.ensemble();
        let shaped: Tensors<T> =
            net.params.iter().map(|(_, id, _)| vec![T::default(); net.graph.value(*id).len()]).collect();
        let mut v = shaped.clone();
        for (m, &seed) in seeds.iter().enumerate().take(e) {
            let mut rng = SeededRng::new(seed ^ 0x4845_5353);
            for t in v.iter_mut() {
                let n = t.len() / e;
                for x in &mut t[m * n..(m + 1) * n] {
                    *x = T::from_f64(rng.normal());
                }
            }
        }
        let mut s = Sharpness { v, theta: shaped.clone(), g0: shaped, lambda: vec![f64::NAN; e], warm: false };
        s.normalise(&vec![true; e]);
        s
    }

    /// Per model: scales its slice of `v` to unit norm; returns the norms before.
    fn normalise(&mut self, active: &[bool]) -> Vec<f64> {
        let e = active.len();
        let mut norms = vec![0.0; e];
        for t in &self.v {
            let n = t.len() / e;
            for (m, norm) in norms.iter_mut().enumerate() {
                *norm += t[m * n..(m + 1) * n].iter().map(|x| x.to_f64() * x.to_f64()).sum::<f64>();
            }
        }
        norms.iter_mut().for_each(|x| *x = x.sqrt());
        for t in &mut self.v {
            let n = t.len() / e;
            for (m, &norm) in norms.iter().enumerate() {
                if active[m] && norm > 0.0 {
                    let s = T::from_f64(1.0 / norm);
                    t[m * n..(m + 1) * n].iter_mut().for_each(|x| *x *= s);
                }
            }
        }
        norms
    }

    /// `iterations` power steps (after the first call, warm-started); the net must hold the
    /// gradient of its loss at the current parameters (after `backward`). Parameters and
    /// parameter gradients are restored exactly afterwards; other nodes' values are not.
    /// `central`: two gradients per product (θ ± εv) instead of one (θ + εv, against the held
    /// gradient at θ): more exact, twice the cost.
    pub fn measure(&mut self, net: &mut Net<T>, active: &[bool], iterations: usize, central: bool) -> &[f64] {
        let e = active.len();
        copy_params(net, &mut self.theta, false);
        copy_params(net, &mut self.g0, true);
        // ε per model: small against the parameters' size.
        let mut sizes = vec![0.0f64; e];
        for t in &self.theta {
            let n = t.len() / e;
            for (m, s) in sizes.iter_mut().enumerate() {
                *s += t[m * n..(m + 1) * n].iter().map(|x| x.to_f64() * x.to_f64()).sum::<f64>();
            }
        }
        // A difference step small against the parameters' size: 1e-5 in f64 (checks), 1e-4 in
        // f32 (training), where rounding would swamp a much smaller one.
        let rel = if T::EPSILON < 1e-10 { 1e-5 } else { 1e-4 };
        let eps: Vec<f64> = sizes.iter().map(|s| rel * s.sqrt().max(1.0)).collect();
        let steps = if self.warm { iterations } else { iterations.max(20) };
        let mut hv: Tensors<T> = self.g0.clone();
        for _ in 0..steps {
            // hv ← (g(θ + εv) − g(θ − εv)) / 2ε, or (g(θ + εv) − g(θ)) / ε.
            let gradient_at = |net: &mut Net<T>, sign: f64, out: &mut Tensors<T>| {
                for (p, (_, id, _)) in net.params.clone().iter().enumerate() {
                    let vals = net.graph.value_mut(*id);
                    let n = vals.len() / e;
                    for m in 0..e {
                        let s = T::from_f64(sign * eps[m]);
                        for i in m * n..(m + 1) * n {
                            vals[i] = self.theta[p][i] + s * self.v[p][i];
                        }
                    }
                }
                net.graph.forward();
                net.graph.backward(net.loss);
                copy_params(net, out, true);
            };
            gradient_at(net, 1.0, &mut hv);
            let low = if central {
                let mut g = self.g0.clone();
                gradient_at(net, -1.0, &mut g);
                g
            } else {
                self.g0.clone()
            };
            let width = if central { 2.0 } else { 1.0 };
            for (p, t) in hv.iter_mut().enumerate() {
                let n = t.len() / e;
                for m in 0..e {
                    let inv = T::from_f64(1.0 / (width * eps[m]));
                    for i in m * n..(m + 1) * n {
                        t[i] = (t[i] - low[p][i]) * inv;
                    }
                }
            }
            // Rayleigh quotient vᵀHv (v has unit norm), then v ← Hv/‖Hv‖.
            let mut rq = vec![0.0f64; e];
            for (t, v) in hv.iter().zip(&self.v) {
                let n = t.len() / e;
                for (m, r) in rq.iter_mut().enumerate() {
                    *r += (m * n..(m + 1) * n).map(|i| t[i].to_f64() * v[i].to_f64()).sum::<f64>();
                }
            }
            for (m, &a) in active.iter().enumerate() {
                if a {
                    self.lambda[m] = rq[m];
                }
            }
            for (t, v) in hv.iter().zip(self.v.iter_mut()) {
                let n = t.len() / e;
                for (m, &a) in active.iter().enumerate() {
                    if a {
                        v[m * n..(m + 1) * n].copy_from_slice(&t[m * n..(m + 1) * n]);
                    }
                }
            }
            self.normalise(active);
        }
        // Put the parameters and their gradients back as they were.
        for (p, (_, id, _)) in net.params.clone().iter().enumerate() {
            net.graph.value_mut(*id).copy_from_slice(&self.theta[p]);
        }
        net.graph.forward();
        net.graph.backward(net.loss);
        self.warm = true;
        &self.lambda
    }
}

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

pub fn sharpness_row(lr: f64, run: &crate::experiments::train::Run) -> SharpnessRow {
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
    let s = crate::experiments::train::RunSummary::of(run);
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

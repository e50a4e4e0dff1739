//! Sharpness during training: the largest-magnitude Hessian eigenvalue of the training loss per
//! model, by power iteration on Hessian-vector products from differences of gradients,
//! warm-started between measurements (`sharpness` column, every K evaluated iterations, full
//! batch only). Parameters and their gradients are restored exactly, so training is unchanged.

use super::{At, Observer};
use crate::engine::Real;
use crate::init::SeededRng;
use crate::models::Net;
use crate::record::Run;

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

/// The sharpness column of a run.
pub struct SharpnessObserver {
    /// Every this many evaluated iterations.
    every: usize,
    power: Option<Sharpness<f32>>,
    column: usize,
    due: bool,
}

impl SharpnessObserver {
    pub fn new(every: usize) -> SharpnessObserver {
        SharpnessObserver { every, power: None, column: 0, due: false }
    }
}

impl Observer for SharpnessObserver {
    fn columns(&self, _: &Net<f32>) -> Vec<String> {
        vec!["sharpness".into()]
    }

    fn start(&mut self, net: &mut Net<f32>, run: &mut Run) -> crate::Result<()> {
        self.power = Some(Sharpness::new(net, &run.seeds));
        self.column = run.columns.iter().position(|c| c == "sharpness").expect("its column");
        Ok(())
    }

    fn evaluated(&mut self, _: &Net<f32>, at: &At, run: &mut Run, keep: &mut bool) {
        self.due = at.row.is_multiple_of(self.every);
        for (row, _) in run.rows.iter_mut().zip(at.active).filter(|(_, a)| **a) {
            row.push(f32::NAN); // filled in after the backward pass
        }
        *keep |= self.due;
    }

    fn before_step(&mut self, net: &mut Net<f32>, at: &At, run: &mut Run) -> crate::Result<()> {
        if !(at.evaluated && std::mem::take(&mut self.due)) {
            return Ok(());
        }
        let power = self.power.as_mut().expect("started");
        // Parameters and their gradients are restored exactly: the step is unchanged.
        let lambda = power.measure(net, at.active, 2, false);
        let n_cols = run.columns.len();
        for (e, &l) in lambda.iter().enumerate() {
            if at.active[e] {
                let row = &mut run.rows[e];
                let at_row = row.len() - n_cols + self.column;
                row[at_row] = l as f32;
            }
        }
        Ok(())
    }
}

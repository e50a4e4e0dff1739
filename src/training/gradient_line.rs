//! The loss landscape along each step's gradient, as Santurkar et al. (2018, Sec. 3.1, Fig. 4)
//! measure it: at an evaluated iteration, on that iteration's batch and in training mode, each
//! model's gradient `g` at θ, then the loss and gradient at `θ − η·g` for every step size `η`
//! of a line (multiples of the learning rate). Columns, per model:
//! - `line_loss_range`: max − min of the loss over the line (how much the loss varies in the
//!   direction the step takes);
//! - `line_grad_change`: the largest ‖∇L(θ − η·g) − g‖ (how well the gradient predicts the
//!   gradients nearby);
//! - `line_beta`: the largest ‖∇L(θ − η·g) − g‖ / ‖η·g‖ (the "effective β-smoothness").
//!
//! Measured every K evaluated iterations, before the training forward (NaN between); the net is
//! left exactly as found (parameters, BatchNorm's running estimates, training mode off), and the
//! loop then feeds the batch and takes its step as always.

use super::{At, Observer};
use crate::data::Samples;
use crate::models::Net;
use crate::record::Run;

/// Which iterations, and the line's step sizes in units of the learning rate.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct LineOptions {
    pub every: usize,
    pub steps: Vec<f64>,
}

impl LineOptions {
    /// Every `every` iterations, steps of ¼ to 4 times the learning rate.
    pub fn new(every: usize) -> LineOptions {
        LineOptions { every, steps: vec![0.25, 0.5, 1.0, 2.0, 4.0] }
    }
}

pub struct GradientLine<'a> {
    data: &'a Samples,
    opts: &'a LineOptions,
    lr: f64,
    /// Per model, this iteration's (loss range, gradient change, β), if measured.
    now: Option<Vec<[f64; 3]>>,
}

impl<'a> GradientLine<'a> {
    pub fn new(data: &'a Samples, opts: &'a LineOptions, lr: f64) -> GradientLine<'a> {
        GradientLine { data, opts, lr, now: None }
    }
}

/// Every model's loss and flattened gradient after a training-mode forward and backward.
fn loss_and_gradient(net: &mut Net<f32>) -> (Vec<f64>, Vec<Vec<f64>>) {
    net.graph.set_training(true);
    net.graph.forward();
    net.graph.backward(net.loss);
    net.graph.set_training(false);
    let e_count = net.graph.ensemble();
    let loss = net.graph.value(net.loss).iter().map(|&v| v as f64).collect();
    let mut grads = vec![vec![]; e_count];
    for (_, id, _) in &net.params {
        let g = net.graph.grad(*id);
        let n = g.len() / e_count;
        for (e, out) in grads.iter_mut().enumerate() {
            out.extend(g[e * n..(e + 1) * n].iter().map(|&v| v as f64));
        }
    }
    (loss, grads)
}

impl Observer for GradientLine<'_> {
    fn columns(&self, _: &Net<f32>) -> Vec<String> {
        vec!["line_loss_range".into(), "line_grad_change".into(), "line_beta".into()]
    }

    fn before_forward(&mut self, net: &mut Net<f32>, at: &At) -> bool {
        if at.fed.is_empty() || !(at.row.is_multiple_of(self.opts.every.max(1))) {
            self.now = None;
            return false;
        }
        let e_count = net.graph.ensemble();
        let params: Vec<_> = net.params.iter().map(|p| p.1).collect();
        let theta: Vec<Vec<f32>> = params.iter().map(|&id| net.graph.value(id).to_vec()).collect();
        // BatchNorm's running estimates move in a training forward: kept, put back at the end.
        let states: Vec<(_, Vec<f32>)> = net.buffers.iter().map(|b| (b.1, net.graph.value(b.1).to_vec())).collect();
        net.feed(self.data, at.fed);
        let (loss0, g0) = loss_and_gradient(net);
        let g0_norm: Vec<f64> = g0.iter().map(|g| g.iter().map(|x| x * x).sum::<f64>().sqrt()).collect();
        // Per model: the loss's highest and lowest on the line, then [range, change, β].
        let (mut hi, mut lo) = (loss0.clone(), loss0);
        let mut out = vec![[0.0f64; 3]; e_count];
        for &k in &self.opts.steps {
            let eta = k * self.lr;
            let mut offset = 0; // where this tensor starts in a model's flattened gradient
            for (p, &id) in params.iter().enumerate() {
                let v = net.graph.value_mut(id);
                let n = v.len() / e_count;
                for e in 0..e_count {
                    for (i, x) in v[e * n..(e + 1) * n].iter_mut().enumerate() {
                        *x = (theta[p][e * n + i] as f64 - eta * g0[e][offset + i]) as f32;
                    }
                }
                offset += n;
            }
            for (id, s) in &states {
                net.graph.value_mut(*id).copy_from_slice(s);
            }
            let (loss, g) = loss_and_gradient(net);
            for e in 0..e_count {
                hi[e] = hi[e].max(loss[e]);
                lo[e] = lo[e].min(loss[e]);
                let change = g[e].iter().zip(&g0[e]).map(|(a, b)| (a - b) * (a - b)).sum::<f64>().sqrt();
                out[e][1] = out[e][1].max(change);
                let moved = eta * g0_norm[e];
                if moved > 0.0 {
                    out[e][2] = out[e][2].max(change / moved);
                }
            }
        }
        for (e, o) in out.iter_mut().enumerate() {
            o[0] = hi[e] - lo[e];
            if !(o.iter().all(|v| v.is_finite())) {
                *o = [f64::NAN; 3];
            }
        }
        for (&id, t) in params.iter().zip(&theta) {
            net.graph.value_mut(id).copy_from_slice(t);
        }
        for (id, s) in &states {
            net.graph.value_mut(*id).copy_from_slice(s);
        }
        self.now = Some(out);
        true
    }

    fn evaluated(&mut self, _: &Net<f32>, at: &At, run: &mut Run, keep: &mut bool) {
        for (e, row) in run.rows.iter_mut().enumerate().filter(|(e, _)| at.active[*e]) {
            let v = self.now.as_ref().map_or([f64::NAN; 3], |m| m[e]);
            row.extend(v.map(|x| x as f32));
        }
        *keep |= self.now.is_some();
    }
}

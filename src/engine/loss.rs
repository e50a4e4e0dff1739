//! Losses: one number per model from a batch of predictions and targets. Each forward also
//! saves `∂loss/∂prediction` per element (with the reduction's factor), which is all backward needs.

use super::graph::Reduction;
use super::real::Real;
use super::tensor::TensorRef;
use crate::activations::softplus;
use crate::engine::scalar::{Dual, Scalar};
use crate::error::{Error, Result};

/// Predictions `[E, ..., B]` and targets `[1 or E, ..., B]` give a loss of shape `[E]`; a mean
/// divides by the batch `B` (the last axis).
pub fn output_shape(op: &'static str, pred: &[usize], targets: &[usize]) -> Result<Vec<usize>> {
    if pred.len() < 3
        || targets.len() != pred.len()
        || targets[1..] != pred[1..]
        || (targets[0] != 1 && targets[0] != pred[0])
    {
        return Err(Error::Shape {
            op,
            msg: format!("predictions {pred:?} and targets {targets:?} must agree after the ensemble axis"),
        });
    }
    Ok(vec![pred[0]])
}

/// `ℓ(o, y) = softplus(o) − o·y`, the stable form of `−y·ln σ(o) − (1−y)·ln(1−σ(o))`:
/// finite for every finite logit.
pub fn sigmoid_cross_entropy<S: Scalar>(logit: S, target: S) -> S {
    softplus(logit) - logit * target
}

/// The batch sum of per-element losses, accumulated in f64: the reported loss is then exact
/// to f32 rounding whatever the batch (a sequential f32 sum over 1 437 digits drifts by ~1e-6
/// relative, measured against JAX). Gradients do not depend on it.
fn sum_f64<T: Real>(v: &[T]) -> f64 {
    v.iter().map(|x| x.to_f64()).sum()
}

/// `saved` holds `∂loss/∂pred` per element, then the per-element losses: two passes, so the
/// elementwise pass vectorises and only the (ordered, deterministic) sum is sequential.
fn reduce<T: Real>(
    pred: TensorRef<T>,
    targets: TensorRef<T>,
    reduction: Reduction,
    loss: &mut [T],
    saved: &mut [T],
    f: impl Fn(Dual<T>, T) -> Dual<T>,
) {
    let per_model = pred.per_model();
    let scale = match reduction {
        Reduction::Mean => T::from_f64(1.0 / pred.shape[pred.shape.len() - 1] as f64),
        Reduction::Sum => T::from_f64(1.0),
    };
    let (dldp, values) = saved.split_at_mut(saved.len() / 2);
    for (e, l) in loss.iter_mut().enumerate() {
        let (p, t) = (pred.model(e), targets.model(e));
        let range = e * per_model..(e + 1) * per_model;
        for (((&pi, &ti), di), vi) in p.iter().zip(t).zip(&mut dldp[range.clone()]).zip(&mut values[range.clone()]) {
            let v = f(Dual::var(pi), ti);
            *vi = v.v;
            *di = v.d * scale;
        }
        *l = T::from_f64(sum_f64(&values[range]) * scale.to_f64());
    }
}

pub fn sigmoid_cross_entropy_forward<T: Real>(
    logits: TensorRef<T>,
    targets: TensorRef<T>,
    reduction: Reduction,
    loss: &mut [T],
    dldp: &mut [T],
) {
    reduce(logits, targets, reduction, loss, dldp, |o, y| sigmoid_cross_entropy(o, Dual::cst(y.to_f64())));
}

pub fn squared_error_forward<T: Real>(
    pred: TensorRef<T>,
    targets: TensorRef<T>,
    scale: f64,
    reduction: Reduction,
    loss: &mut [T],
    dldp: &mut [T],
) {
    reduce(pred, targets, reduction, loss, dldp, |p, y| {
        let r = p - Dual::cst(y.to_f64());
        Dual::cst(scale) * r * r
    });
}

/// `∂/∂pred += ∂loss/∂pred · (upstream gradient of that model's loss)`; every loss saves
/// `∂loss/∂pred` first in its scratch.
pub fn backward<T: Real>(gloss: &[T], saved: &[T], gpred: &mut [T]) {
    let dldp = &saved[..gpred.len()];
    let per_model = dldp.len() / gloss.len();
    for (e, &g) in gloss.iter().enumerate() {
        let range = e * per_model..(e + 1) * per_model;
        for (gp, &d) in gpred[range.clone()].iter_mut().zip(&dldp[range]) {
            *gp += g * d;
        }
    }
}

/// Softmax cross-entropy of logits `[E, K, B]` against class indices `[1 or E, 1, B]` (stored
/// as floats): `ℓ = logsumexp(o) − o_y`, computed with the maximum subtracted so that it is
/// finite for every finite logit. One loss per model.
pub fn softmax_output_shape(logits: &[usize], targets: &[usize]) -> Result<Vec<usize>> {
    if logits.len() != 3 || targets.len() != 3 || targets[1] != 1 || targets[2] != logits[2] {
        return Err(Error::Shape {
            op: "softmax_cross_entropy",
            msg: format!("logits {logits:?} must be [E, classes, batch] and targets {targets:?} [1 or E, 1, batch]"),
        });
    }
    if targets[0] != 1 && targets[0] != logits[0] {
        return Err(Error::Shape {
            op: "softmax_cross_entropy",
            msg: format!("targets {targets:?}: bad ensemble axis"),
        });
    }
    Ok(vec![logits[0]])
}

/// `saved` holds `∂loss/∂logit` (`[E, K, B]`, with the reduction's factor), then the per-sample
/// losses (`[E, B]`). A class index outside `0..K` is a caller's bug (data is validated).
pub fn softmax_cross_entropy_forward<T: Real>(
    logits: TensorRef<T>,
    targets: TensorRef<T>,
    reduction: Reduction,
    loss: &mut [T],
    saved: &mut [T],
) {
    let (k, b) = (logits.shape[1], logits.shape[2]);
    let scale = match reduction {
        Reduction::Mean => T::from_f64(1.0 / b as f64),
        Reduction::Sum => T::from_f64(1.0),
    };
    let (grad, values) = saved.split_at_mut(logits.data.len());
    for (e, l) in loss.iter_mut().enumerate() {
        let (o, t) = (logits.model(e), targets.model(e));
        let g = &mut grad[e * k * b..(e + 1) * k * b];
        let v = &mut values[e * b..(e + 1) * b];
        for s in 0..b {
            let mut m = o[s];
            for c in 1..k {
                if o[c * b + s] > m {
                    m = o[c * b + s];
                }
            }
            let mut z = T::default();
            for c in 0..k {
                let p = (o[c * b + s] - m).exp();
                g[c * b + s] = p;
                z += p;
            }
            let y = t[s].to_f64() as usize;
            v[s] = z.ln() + m - o[y * b + s];
            for c in 0..k {
                g[c * b + s] = g[c * b + s] / z;
            }
            g[y * b + s] -= T::from_f64(1.0);
            for c in 0..k {
                g[c * b + s] *= scale;
            }
        }
        *l = T::from_f64(sum_f64(v) * scale.to_f64());
    }
}

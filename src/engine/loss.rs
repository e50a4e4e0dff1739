//! Losses: one number per model from a batch of predictions and targets. Each forward also
//! saves `∂loss/∂prediction` per element (with the reduction's factor), which is all backward needs.

use super::graph::{Reduction, TensorRef};
use super::real::Real;
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
        *l = values[range].iter().fold(T::default(), |acc, &v| acc + v) * scale;
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

/// `∂/∂pred += ∂loss/∂pred · (upstream gradient of that model's loss)`.
pub fn backward<T: Real>(gloss: &[T], saved: &[T], gpred: &mut [T]) {
    let dldp = &saved[..saved.len() / 2];
    let per_model = dldp.len() / gloss.len();
    for (e, &g) in gloss.iter().enumerate() {
        let range = e * per_model..(e + 1) * per_model;
        for (gp, &d) in gpred[range.clone()].iter_mut().zip(&dldp[range]) {
            *gp += g * d;
        }
    }
}

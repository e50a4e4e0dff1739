//! Losses: one number per model from a batch of predictions and targets. Each forward also
//! saves `∂loss/∂prediction` per element (with the reduction's factor), which is all backward needs.

use super::graph::Reduction;
use super::real::Real;
use super::tensor::TensorRef;
use crate::engine::activations::softplus;
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
/// relative, measured against JAX). In 8 lanes then halving, a fixed order that vectorises (a
/// sequential sum was a tenth of an fc73 step). Gradients do not depend on it.
fn sum_f64<T: Real>(v: &[T]) -> f64 {
    let mut lanes = [0f64; 8];
    let mut chunks = v.chunks_exact(8);
    for c in &mut chunks {
        for l in 0..8 {
            lanes[l] += c[l].to_f64();
        }
    }
    for (l, x) in chunks.remainder().iter().enumerate() {
        lanes[l] += x.to_f64();
    }
    super::gemm::pairwise_sum(&mut lanes)
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
    let scale = reduction_scale(reduction, pred.shape[pred.shape.len() - 1]);
    let (dldp, values) = saved.split_at_mut(saved.len() / 2);
    for (e, l) in loss.iter_mut().enumerate() {
        let range = e * per_model..(e + 1) * per_model;
        *l = reduce_model(pred.model(e), targets.model(e), scale, &mut dldp[range.clone()], &mut values[range], &f);
    }
}

/// The factor a reduction over a batch of `batch` applies.
pub(crate) fn reduction_scale<T: Real>(reduction: Reduction, batch: usize) -> T {
    match reduction {
        Reduction::Mean => T::from_f64(1.0 / batch as f64),
        Reduction::Sum => T::from_f64(1.0),
    }
}

/// One model's part of [`reduce`]: its loss; `dldp` and `values` are its slabs of the scratch.
#[inline(always)]
fn reduce_model<T: Real>(
    p: &[T],
    t: &[T],
    scale: T,
    dldp: &mut [T],
    values: &mut [T],
    f: impl Fn(Dual<T>, T) -> Dual<T>,
) -> T {
    for (((&pi, &ti), di), vi) in p.iter().zip(t).zip(dldp.iter_mut()).zip(values.iter_mut()) {
        let v = f(Dual::var(pi), ti);
        *vi = v.v;
        *di = v.d * scale;
    }
    T::from_f64(sum_f64(values) * scale.to_f64())
}

/// The per-element sigmoid cross-entropy and its derivative (see [`sigmoid_cross_entropy_forward`]).
#[inline(always)]
fn sigmoid_cross_entropy_term<T: Real>(o: Dual<T>, y: T) -> Dual<T> {
    // Written out rather than through dual numbers (a fifth of an fc73 step): with
    // e = exp(−|o|), ℓ = max(o, 0) + ln(1 + e) − o·y and ∂ℓ/∂o = σ(o) − y, one exp, one ln_1p and
    // one division; checked against the formula in f64 in this file's tests.
    let x = o.v;
    let (zero, one) = (T::from_f64(0.0), T::from_f64(1.0));
    let e = Scalar::exp(-Real::abs(x));
    let relu = if x > zero { x } else { zero };
    let inv = one / (one + e);
    // σ − y as (1 − y) − σ(−o) for o > 0: exact where σ rounds to 1 (a confident, right
    // logit keeps its tiny gradient instead of 0).
    let d = if x > zero { (one - y) - e * inv } else { e * inv - y };
    Dual { v: relu + e.ln_1p() - x * y, d }
}

pub fn sigmoid_cross_entropy_forward<T: Real>(
    logits: TensorRef<T>,
    targets: TensorRef<T>,
    reduction: Reduction,
    loss: &mut [T],
    dldp: &mut [T],
) {
    reduce(logits, targets, reduction, loss, dldp, |o, y| sigmoid_cross_entropy_term(o, y));
}

pub fn squared_error_forward<T: Real>(
    pred: TensorRef<T>,
    targets: TensorRef<T>,
    scale: f64,
    reduction: Reduction,
    loss: &mut [T],
    dldp: &mut [T],
) {
    reduce(pred, targets, reduction, loss, dldp, |p, y| squared_error_term(p, y, scale));
}

#[inline(always)]
fn squared_error_term<T: Real>(p: Dual<T>, y: T, scale: f64) -> Dual<T> {
    let r = p - Dual::cst(y.to_f64());
    Dual::cst(scale) * r * r
}

/// One model's sigmoid cross-entropy or squared error (`scale` `Some`) over a batch: its loss,
/// with `dldp` and `values` (its slabs of the node's scratch) as the ensemble forward fills them.
pub(crate) fn model_loss<T: Real>(
    squared_error: Option<f64>,
    pred: &[T],
    targets: &[T],
    reduction: Reduction,
    dldp: &mut [T],
    values: &mut [T],
) -> T {
    let scale = reduction_scale(reduction, pred.len());
    match squared_error {
        Some(c) => reduce_model(pred, targets, scale, dldp, values, |p, y| squared_error_term(p, y, c)),
        None => reduce_model(pred, targets, scale, dldp, values, |o, y| sigmoid_cross_entropy_term(o, y)),
    }
}

/// `∂/∂pred += ∂loss/∂pred · (upstream gradient of that model's loss)`; every loss saves
/// `∂loss/∂pred` first in its scratch.
/// With `overwrite` (`gpred` stands for zeros) it writes `0 + g·d`: the same numbers.
pub fn backward<T: Real>(gloss: &[T], saved: &[T], gpred: &mut [T], overwrite: bool) {
    let dldp = &saved[..gpred.len()];
    let per_model = dldp.len() / gloss.len();
    for (e, &g) in gloss.iter().enumerate() {
        let range = e * per_model..(e + 1) * per_model;
        for (gp, &d) in gpred[range.clone()].iter_mut().zip(&dldp[range]) {
            *gp = if overwrite { T::default() } else { *gp } + g * d;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The written-out sigmoid cross-entropy against the formula in f64: the derivative to a
    /// few ulp everywhere (also where σ rounds to 1), the loss to a few ulp of the terms it is
    /// made of; and the batch sum.
    #[test]
    fn sigmoid_cross_entropy_is_accurate_in_f32() {
        let logits: Vec<f32> = vec![-40.0, -9.5, -1.0, -1e-6, 0.0, 1e-6, 0.3, 2.5, 17.0, 40.0];
        for y in [0.0f32, 1.0, 0.25] {
            let targets = vec![y; logits.len()];
            let (n, shape) = (logits.len(), [1, 1, logits.len()]);
            let mut loss = [0f32];
            let mut saved = vec![0f32; 2 * n];
            sigmoid_cross_entropy_forward(
                TensorRef { data: &logits, shape: &shape },
                TensorRef { data: &targets, shape: &shape },
                Reduction::Sum,
                &mut loss,
                &mut saved,
            );
            let mut total = 0f64;
            for (i, &o) in logits.iter().enumerate() {
                let (o64, y64) = (o as f64, y as f64);
                let sigma = 1.0 / (1.0 + (-o64).exp());
                let d = if o64 > 0.0 { (1.0 - y64) - (-o64).exp() / (1.0 + (-o64).exp()) } else { sigma - y64 };
                let l = o64.max(0.0) + (-o64.abs()).exp().ln_1p() - o64 * y64;
                total += saved[n + i] as f64;
                let eps = f32::EPSILON as f64;
                // Hard labels: relative to the result (no cancellation in the written form);
                // soft ones: relative to the terms σ and y that cancel.
                let tol = if y == 0.0 || y == 1.0 { 4.0 * eps * d.abs() } else { 4.0 * eps * (sigma + y64) };
                assert!((saved[i] as f64 - d).abs() <= tol, "∂ℓ/∂o at {o}, y {y}: {} vs {d}", saved[i]);
                let scale = o64.abs() * (1.0 + y64) + l.abs();
                assert!(
                    (saved[n + i] as f64 - l).abs() <= 4.0 * eps * scale,
                    "ℓ at {o}, y {y}: {} vs {l}",
                    saved[n + i]
                );
            }
            assert!((loss[0] as f64 - total).abs() <= 1e-6 * total.abs(), "sum {} vs {total}", loss[0]);
        }
    }
}

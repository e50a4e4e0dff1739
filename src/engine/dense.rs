//! Dense (fully connected) layer: `y[e] = w[e]·x[e] + b[e]`, weights in PyTorch layout
//! (`w` is `[E, out, in]`).
//!
//! Layout: activations are `[E, C, S..., B]` (ensemble, channels or features, spatial axes,
//! batch last), so every input is one `in × B` matrix, its feature index `c·S + s` the
//! channel-major flatten of `torch.flatten(x, 1)`, and a shared input feeds all E models in
//! one matrix product (`[E·out, in] × [in, B]`). The output is `[E, out, B]`.
//!
//! The bias is either tied (`[E, out]`, the ordinary layer) or per sample (`[E, out, B]`, the
//! variant the original Task 2 code ran by mistake).

use super::gemm::{gemm, gemm_shared};
use super::real::Real;
use super::tensor::{TensorRef, model_mut};
use crate::error::{Error, Result};

/// `(input features, batch)` of an input shape `[E, C, S..., B]`.
fn dims(x: &[usize]) -> (usize, usize) {
    (x[1..x.len() - 1].iter().product(), x[x.len() - 1])
}

pub fn output_shape(ensemble: usize, x: &[usize], w: &[usize], b: Option<&[usize]>) -> Result<Vec<usize>> {
    let err = |msg: String| Err(Error::Shape { op: "dense", msg });
    if x.len() < 3 || (x[0] != 1 && x[0] != ensemble) {
        return err(format!("input {x:?} must be [1 or {ensemble}, features, ..., batch]"));
    }
    if w.len() != 3 || w[0] != ensemble {
        return err(format!("weight {w:?} must be [{ensemble}, out, in]"));
    }
    let ((fan_in, batch), out) = (dims(x), w[1]);
    if w[2] != fan_in {
        return err(format!("weight {w:?} expects {} input features, input {x:?} has {fan_in}", w[2]));
    }
    if let Some(b) = b
        && b != [ensemble, out]
        && b != [ensemble, out, batch]
    {
        return err(format!(
            "bias {b:?} must be [{ensemble}, {out}] (tied) or [{ensemble}, {out}, {batch}] (per sample)"
        ));
    }
    Ok(vec![ensemble, out, batch])
}

/// Scratch a dense node keeps between forward and backward: its input transposed to
/// `[B, in]`, so that `dW = dY·Xᵀ` runs as contiguous register-blocked rows (as dot products
/// of length B it spends most of its time in horizontal sums). Only worth it with at least a
/// register's width of input features.
pub fn saved_len(x: &[usize]) -> usize {
    let (fan_in, batch) = dims(x);
    if fan_in >= 16 { x[0] * fan_in * batch } else { 0 }
}

/// The models whose rows one product computes: all of them at once when the input is shared.
fn groups(ensemble: usize, x_ensemble: usize) -> (usize, usize) {
    if x_ensemble == 1 { (1, ensemble) } else { (ensemble, 1) }
}

pub fn forward<T: Real>(
    ensemble: usize,
    x: TensorRef<T>,
    w: TensorRef<T>,
    b: Option<TensorRef<T>>,
    y: &mut [T],
    xt: &mut [T],
) {
    let ((fan_in, batch), out) = (dims(x.shape), w.shape[1]);
    if !xt.is_empty() {
        for (src, dst) in x.data.chunks_exact(fan_in * batch).zip(xt.chunks_exact_mut(fan_in * batch)) {
            super::tensor::transpose(src, fan_in, batch, dst);
        }
    }
    let (n_groups, per_group) = groups(ensemble, x.shape[0]);
    let rows = per_group * out;
    for g in 0..n_groups {
        let wg = &w.data[g * rows * fan_in..(g + 1) * rows * fan_in];
        let yg = &mut y[g * rows * batch..(g + 1) * rows * batch];
        gemm_shared(out, rows, fan_in, batch, wg, [fan_in, 1], x.model(g), [batch, 1], T::default(), yg, [batch, 1]);
    }
    if let Some(b) = b {
        add_bias(y, b.data, batch);
    }
}

/// `y += bias`: one bias per sample when `bias` is as long as `y`, else one per row of `batch`.
pub(crate) fn add_bias<T: Real>(y: &mut [T], bias: &[T], batch: usize) {
    if bias.len() == y.len() {
        y.iter_mut().zip(bias).for_each(|(v, &b)| *v += b);
    } else {
        for (row, &b) in y.chunks_exact_mut(batch).zip(bias) {
            row.iter_mut().for_each(|v| *v += b);
        }
    }
}

/// Adds the gradients into `gx`, `gw`, `gb`; an empty slice means "not needed".
#[allow(clippy::too_many_arguments)]
pub fn backward<T: Real>(
    ensemble: usize,
    x: TensorRef<T>,
    xt: &[T],
    w: TensorRef<T>,
    gy: &[T],
    gx: &mut [T],
    gw: &mut [T],
    gb: &mut [T],
) {
    let ((fan_in, batch), out) = (dims(x.shape), w.shape[1]);
    let one = T::from_f64(1.0);
    if !gw.is_empty() {
        // dW = dY·Xᵀ, all models at once when the input is shared.
        let (n_groups, per_group) = groups(ensemble, x.shape[0]);
        let rows = per_group * out;
        for g in 0..n_groups {
            let gyg = &gy[g * rows * batch..(g + 1) * rows * batch];
            let gwg = &mut gw[g * rows * fan_in..(g + 1) * rows * fan_in];
            if xt.is_empty() {
                gemm_shared(out, rows, batch, fan_in, gyg, [batch, 1], x.model(g), [1, batch], one, gwg, [fan_in, 1]);
            } else {
                let xtg = &xt[g * fan_in * batch..(g + 1) * fan_in * batch];
                gemm_shared(out, rows, batch, fan_in, gyg, [batch, 1], xtg, [fan_in, 1], one, gwg, [fan_in, 1]);
            }
        }
    }
    if !gb.is_empty() {
        if gb.len() == gy.len() {
            gb.iter_mut().zip(gy).for_each(|(g, &d)| *g += d);
        } else {
            for (g, row) in gb.iter_mut().zip(gy.chunks_exact(batch)) {
                *g += super::gemm::lane_sum(row);
            }
        }
    }
    if !gx.is_empty() {
        // dX = Wᵀ·dY per model; a shared input sums the gradients of all models.
        for e in 0..ensemble {
            let (we, gye) = (w.model(e), &gy[e * out * batch..(e + 1) * out * batch]);
            let gxe = model_mut(gx, x.shape[0], e);
            gemm(fan_in, out, batch, we, [1, fan_in], gye, [batch, 1], one, gxe, [batch, 1]);
        }
    }
}

//! Dense (fully connected) layer: `y[e] = w[e]·x[e] + b[e]`, weights in PyTorch layout
//! (`w` is `[E, out, in]`).
//!
//! Layout: activations are `[E, C, B, S...]` (ensemble, channels or features, batch, spatial),
//! so each model's batch is the fast axis and a shared input can feed all E models in one
//! matrix product (`[E·out, in] × [in, B]`). Input feature `c·S + s` (channel-major, exactly
//! `torch.flatten(x, 1)`) of sample `b` sits at `c·B·S + b·S + s`; the output is `[E, out, B]`.
//!
//! The bias is either tied (`[E, out]`, the ordinary layer) or per sample (`[E, out, B]`, the
//! variant the original Task 2 code ran by mistake).

use super::gemm::gemm;
use super::graph::{TensorRef, model_mut};
use super::real::Real;
use crate::error::{Error, Result};

pub fn output_shape(ensemble: usize, x: &[usize], w: &[usize], b: Option<&[usize]>) -> Result<Vec<usize>> {
    let err = |msg: String| Err(Error::Shape { op: "dense", msg });
    if x.len() < 3 || (x[0] != 1 && x[0] != ensemble) {
        return err(format!("input {x:?} must be [1 or {ensemble}, features, batch, spatial...]"));
    }
    if w.len() != 3 || w[0] != ensemble {
        return err(format!("weight {w:?} must be [{ensemble}, out, in]"));
    }
    let (batch, fan_in, out) = (x[2], x[1] * x[3..].iter().product::<usize>(), w[1]);
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

/// `(channels, batch, spatial)` of an input.
fn dims(x: &[usize]) -> (usize, usize, usize) {
    (x[1], x[2], x[3..].iter().product())
}

/// The input as one `fan_in × B` matrix, when its strides allow (no spatial axis, or one channel).
fn input_strides(c: usize, b: usize, s: usize) -> Option<[usize; 2]> {
    if s == 1 {
        Some([b, 1])
    } else if c == 1 {
        Some([1, s])
    } else {
        None
    }
}

/// The models whose rows one product computes: all of them at once when the input is shared.
fn groups(ensemble: usize, x_ensemble: usize) -> (usize, usize) {
    if x_ensemble == 1 { (1, ensemble) } else { (ensemble, 1) }
}

/// Scratch a dense node keeps between forward and backward: its input transposed to
/// `[B, in]` when the input is `[in, B]`, so that `dW = dY·Xᵀ` runs as contiguous `axpy`s
/// (as dot products of length B it spends most of its time in horizontal sums).
/// Only worth it with at least a register's width of input features.
pub fn saved_len(x: &[usize]) -> usize {
    let (c, batch, s) = dims(x);
    if s == 1 && c >= 16 { x[0] * c * batch } else { 0 }
}

pub fn forward<T: Real>(
    ensemble: usize,
    x: TensorRef<T>,
    w: TensorRef<T>,
    b: Option<TensorRef<T>>,
    y: &mut [T],
    xt: &mut [T],
) {
    let (c, batch, s) = dims(x.shape);
    if !xt.is_empty() {
        for (src, dst) in x.data.chunks_exact(c * batch).zip(xt.chunks_exact_mut(c * batch)) {
            for (f, row) in src.chunks_exact(batch).enumerate() {
                for (bi, &v) in row.iter().enumerate() {
                    dst[bi * c + f] = v;
                }
            }
        }
    }
    let (fan_in, out) = (c * s, w.shape[1]);
    let (n_groups, per_group) = groups(ensemble, x.shape[0]);
    let rows = per_group * out;
    for g in 0..n_groups {
        let wg = &w.data[g * rows * fan_in..(g + 1) * rows * fan_in];
        let xg = x.model(g);
        let yg = &mut y[g * rows * batch..(g + 1) * rows * batch];
        match input_strides(c, batch, s) {
            Some(sx) => gemm(rows, fan_in, batch, wg, [fan_in, 1], xg, sx, T::default(), yg, [batch, 1]),
            None => {
                for ch in 0..c {
                    let beta = T::from_f64(if ch == 0 { 0.0 } else { 1.0 });
                    gemm(
                        rows,
                        s,
                        batch,
                        &wg[ch * s..],
                        [fan_in, 1],
                        &xg[ch * batch * s..],
                        [1, s],
                        beta,
                        yg,
                        [batch, 1],
                    );
                }
            }
        }
    }
    if let Some(b) = b {
        if b.data.len() == y.len() {
            y.iter_mut().zip(b.data).for_each(|(v, &bias)| *v += bias);
        } else {
            for (row, &bias) in y.chunks_exact_mut(batch).zip(b.data) {
                row.iter_mut().for_each(|v| *v += bias);
            }
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
    let (c, batch, s) = dims(x.shape);
    let (fan_in, out) = (c * s, w.shape[1]);
    let one = T::from_f64(1.0);
    if !gw.is_empty() {
        // dW = dY·Xᵀ, all models at once when the input is shared.
        let (n_groups, per_group) = groups(ensemble, x.shape[0]);
        let rows = per_group * out;
        for g in 0..n_groups {
            let gyg = &gy[g * rows * batch..(g + 1) * rows * batch];
            let xg = x.model(g);
            let gwg = &mut gw[g * rows * fan_in..(g + 1) * rows * fan_in];
            match input_strides(c, batch, s) {
                _ if !xt.is_empty() => {
                    let xtg = &xt[g * fan_in * batch..(g + 1) * fan_in * batch];
                    gemm(rows, batch, fan_in, gyg, [batch, 1], xtg, [fan_in, 1], one, gwg, [fan_in, 1])
                }
                Some(sx) => gemm(rows, batch, fan_in, gyg, [batch, 1], xg, [sx[1], sx[0]], one, gwg, [fan_in, 1]),
                None => {
                    for ch in 0..c {
                        gemm(
                            rows,
                            batch,
                            s,
                            gyg,
                            [batch, 1],
                            &xg[ch * batch * s..],
                            [s, 1],
                            one,
                            &mut gwg[ch * s..],
                            [fan_in, 1],
                        );
                    }
                }
            }
        }
    }
    if !gb.is_empty() {
        if gb.len() == gy.len() {
            gb.iter_mut().zip(gy).for_each(|(g, &d)| *g += d);
        } else {
            for (g, row) in gb.iter_mut().zip(gy.chunks_exact(batch)) {
                *g += row.iter().fold(T::default(), |acc, &d| acc + d);
            }
        }
    }
    if !gx.is_empty() {
        // dX = Wᵀ·dY per model; a shared input sums the gradients of all models.
        for e in 0..ensemble {
            let (we, gye) = (w.model(e), &gy[e * out * batch..(e + 1) * out * batch]);
            let gxe = model_mut(gx, x.shape[0], e);
            match input_strides(c, batch, s) {
                Some(sx) => gemm(fan_in, out, batch, we, [1, fan_in], gye, [batch, 1], one, gxe, sx),
                None => {
                    for ch in 0..c {
                        gemm(
                            s,
                            out,
                            batch,
                            &we[ch * s..],
                            [1, fan_in],
                            gye,
                            [batch, 1],
                            one,
                            &mut gxe[ch * batch * s..],
                            [1, s],
                        );
                    }
                }
            }
        }
    }
}

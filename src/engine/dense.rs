//! Dense (fully connected) layer: `y[e] = x[e]·w[e]ᵀ + b[e]`, PyTorch layout (`w` is
//! `[E, out, in]`). The input is flattened after its batch axis, channel-major, so a conv
//! output `[E, B, C, H, W]` feeds a dense layer directly, exactly like `torch.flatten(x, 1)`.
//!
//! The bias is either tied (`[E, out]`, the ordinary layer) or per sample (`[E, B, out]`, the
//! variant the original Task 2 code ran by mistake).

use super::graph::TensorRef;
use super::real::Real;
use crate::error::{Error, Result};

pub fn output_shape(ensemble: usize, x: &[usize], w: &[usize], b: Option<&[usize]>) -> Result<Vec<usize>> {
    let err = |msg: String| Err(Error::Shape { op: "dense", msg });
    if x.len() < 3 || (x[0] != 1 && x[0] != ensemble) {
        return err(format!("input {x:?} must be [1 or {ensemble}, batch, features...]"));
    }
    if w.len() != 3 || w[0] != ensemble {
        return err(format!("weight {w:?} must be [{ensemble}, out, in]"));
    }
    let (batch, fan_in, out) = (x[1], x[2..].iter().product::<usize>(), w[1]);
    if w[2] != fan_in {
        return err(format!("weight {w:?} expects {} input features, input {x:?} has {fan_in}", w[2]));
    }
    if let Some(b) = b
        && b != [ensemble, out]
        && b != [ensemble, batch, out]
    {
        return err(format!("bias {b:?} must be [{ensemble}, {out}] (tied) or [{ensemble}, {batch}, {out}] (per sample)"));
    }
    Ok(vec![ensemble, batch, out])
}

pub fn forward<T: Real>(ensemble: usize, x: TensorRef<T>, w: TensorRef<T>, b: Option<TensorRef<T>>, y: &mut [T]) {
    let (batch, fan_in, out) = (x.shape[1], x.per_model() / x.shape[1], w.shape[1]);
    for e in 0..ensemble {
        let ye = &mut y[e * batch * out..(e + 1) * batch * out];
        T::gemm(batch, fan_in, out, x.model(e), [fan_in, 1], w.model(e), [1, fan_in], T::default(), ye, [out, 1]);
        if let Some(b) = b {
            let be = b.model(e);
            if be.len() == out {
                for row in ye.chunks_exact_mut(out) {
                    for (v, &bias) in row.iter_mut().zip(be) {
                        *v += bias;
                    }
                }
            } else {
                for (v, &bias) in ye.iter_mut().zip(be) {
                    *v += bias;
                }
            }
        }
    }
}

/// Adds the gradients into `gx`, `gw`, `gb`; an empty slice means "not needed".
#[allow(clippy::too_many_arguments)]
pub fn backward<T: Real>(ensemble: usize, x: TensorRef<T>, w: TensorRef<T>, gy: &[T], gx: &mut [T], gw: &mut [T], gb: &mut [T]) {
    let (batch, fan_in, out) = (x.shape[1], x.per_model() / x.shape[1], w.shape[1]);
    let one = T::from_f64(1.0);
    for e in 0..ensemble {
        let gye = &gy[e * batch * out..(e + 1) * batch * out];
        if !gw.is_empty() {
            let gwe = &mut gw[e * out * fan_in..(e + 1) * out * fan_in];
            // dW = dYᵀ·X
            T::gemm(out, batch, fan_in, gye, [1, out], x.model(e), [fan_in, 1], one, gwe, [fan_in, 1]);
        }
        if !gb.is_empty() {
            let per_model = gb.len() / ensemble;
            let gbe = &mut gb[e * per_model..(e + 1) * per_model];
            if per_model == out {
                for row in gye.chunks_exact(out) {
                    for (g, &d) in gbe.iter_mut().zip(row) {
                        *g += d;
                    }
                }
            } else {
                for (g, &d) in gbe.iter_mut().zip(gye) {
                    *g += d;
                }
            }
        }
        if !gx.is_empty() {
            // dX = dY·W; a shared input (leading axis 1) sums the gradients of all models.
            let gxe = super::graph::model_mut(gx, x.shape[0], e);
            T::gemm(batch, out, fan_in, gye, [out, 1], w.model(e), [fan_in, 1], one, gxe, [fan_in, 1]);
        }
    }
}

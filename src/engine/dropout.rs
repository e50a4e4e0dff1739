//! Dropout as PyTorch's `nn.Dropout` computes it in training: each value is zeroed with
//! probability `p` and the survivors scaled by 1/(1 − p) ("inverted" dropout), so evaluation
//! is the identity. The mask (`[E, F..., B]`: 0 or 1/(1 − p)) is not drawn here: the training
//! loop fills it from each model's own random stream before the forward pass
//! ([`super::graph::Graph::dropout_masks`]), so a model's masks are the same in any ensemble.
//! Outside training (`Graph::set_training(false)`, the default) the op passes `x` through.

use super::real::Real;
use super::tensor::TensorRef;

pub fn forward<T: Real>(e_count: usize, training: bool, x: TensorRef<T>, mask: &[T], out: &mut [T]) {
    let n = out.len() / e_count;
    let lead = x.shape[0];
    for e in 0..e_count {
        let xs = &x.data[if lead == 1 { 0 } else { e * n }..][..n];
        let o = &mut out[e * n..(e + 1) * n];
        if training {
            for ((y, &v), &m) in o.iter_mut().zip(xs).zip(&mask[e * n..(e + 1) * n]) {
                *y = v * m;
            }
        } else {
            o.copy_from_slice(xs);
        }
    }
}

/// Adds `gy·mask` (training) or `gy` into `gx` (skipped when `x` takes no gradient).
pub fn backward<T: Real>(training: bool, gy: &[T], mask: &[T], gx: &mut [T]) {
    if gx.is_empty() {
        return;
    }
    if training {
        for ((g, &d), &m) in gx.iter_mut().zip(gy).zip(mask) {
            *g += d * m;
        }
    } else {
        for (g, &d) in gx.iter_mut().zip(gy) {
            *g += d;
        }
    }
}

/// Fills one model's mask slab: each entry 0 with probability `rate`, else 1/(1 − rate), one
/// uniform draw per entry in order.
pub fn draw<T: Real>(mask: &mut [T], rate: f64, mut uniform: impl FnMut() -> f64) {
    let keep = T::from_f64(1.0 / (1.0 - rate));
    for m in mask {
        *m = if uniform() < rate { T::default() } else { keep };
    }
}

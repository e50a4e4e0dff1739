//! Noise while training: dropout as PyTorch's `nn.Dropout` computes it (each value zeroed with
//! probability `p`, the survivors scaled by 1/(1 − p), "inverted" dropout) and additive Gaussian
//! noise (`x + σ·z`, input noise when placed first); both are the identity in evaluation. The
//! noise (`[E, F..., B]`: the mask, or σ·z) is not drawn here: the training loop fills it from
//! each model's own random stream before the forward pass ([`super::graph::Graph::noise_buffers`]),
//! so a model's noise is the same in any ensemble. Outside training
//! (`Graph::set_training(false)`, the default) the op passes `x` through.

use super::real::Real;
use super::tensor::TensorRef;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Noise {
    /// Zero with probability `rate`, else scale by 1/(1 − rate).
    Dropout { rate: f64 },
    /// Add `std·z`, z standard normal.
    Gaussian { std: f64 },
}

pub fn forward<T: Real>(e_count: usize, noise: Noise, training: bool, x: TensorRef<T>, buf: &[T], out: &mut [T]) {
    let n = out.len() / e_count;
    let lead = x.shape[0];
    for e in 0..e_count {
        let xs = &x.data[if lead == 1 { 0 } else { e * n }..][..n];
        let o = &mut out[e * n..(e + 1) * n];
        let b = &buf[e * n..(e + 1) * n];
        match (training, noise) {
            (false, _) => o.copy_from_slice(xs),
            (true, Noise::Dropout { .. }) => {
                for ((y, &v), &m) in o.iter_mut().zip(xs).zip(b) {
                    *y = v * m;
                }
            }
            (true, Noise::Gaussian { .. }) => {
                for ((y, &v), &z) in o.iter_mut().zip(xs).zip(b) {
                    *y = v + z;
                }
            }
        }
    }
}

/// Adds `gy·mask` (dropout while training) or `gy` into `gx` (skipped when `x` takes no gradient).
pub fn backward<T: Real>(noise: Noise, training: bool, gy: &[T], buf: &[T], gx: &mut [T]) {
    if gx.is_empty() {
        return;
    }
    if training && matches!(noise, Noise::Dropout { .. }) {
        for ((g, &d), &m) in gx.iter_mut().zip(gy).zip(buf) {
            *g += d * m;
        }
    } else {
        for (g, &d) in gx.iter_mut().zip(gy) {
            *g += d;
        }
    }
}

/// Fills one model's slab of the noise from `uniform` (uniform in [0, 1)), entry by entry: a
/// dropout mask entry takes one draw (0 below `rate`, else 1/(1 − rate)); a Gaussian entry two
/// (Box–Muller, the cosine of the pair, as `init::SeededRng::normal`).
pub fn draw<T: Real>(buf: &mut [T], noise: Noise, mut uniform: impl FnMut() -> f64) {
    match noise {
        Noise::Dropout { rate } => {
            let keep = T::from_f64(1.0 / (1.0 - rate));
            for m in buf {
                *m = if uniform() < rate { T::default() } else { keep };
            }
        }
        Noise::Gaussian { std } => {
            for m in buf {
                let u1 = 1.0 - uniform();
                let u2 = uniform();
                *m = T::from_f64(std * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos());
            }
        }
    }
}

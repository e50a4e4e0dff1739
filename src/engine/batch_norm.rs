//! Batch normalisation over `[E or 1, C, S..., B]` (batch last), as `torch.nn.BatchNorm1d/2d`
//! computes it: each model's channel `c` is normalised over its spatial positions and the batch
//! (`n = |S|·B` values, one contiguous run), then scaled and shifted per channel,
//! `y = γ·(x − μ)/√(σ² + ε) + β`.
//!
//! - Training: μ, σ² are the batch's (σ² biased), and the running estimates move towards them,
//!   `r ← (1 − m)·r + m·s` with the *unbiased* variance `σ²·n/(n − 1)` (PyTorch's rule), for the
//!   models being trained only (a stopped model's estimates stay where it stopped).
//! - Evaluation: μ, σ² are the running estimates; nothing is updated.
//!
//! Models never mix, so an ensemble member is what it would be alone. Sums are pairwise (see
//! [`pairwise`]): a float32 channel of 92 000 values summed in a row drifts visibly.
//!
//! Saved by forward: the mean it used `[E, C]`, then `r = 1/√(σ² + ε)` `[E, C]`; backward
//! recomputes `x̂ = (x − μ)·r` from `x` (cheaper than writing and reading it back). Training:
//! `∂x = γ·r·(g − mean(g) − x̂·mean(g·x̂))` over the channel's run; evaluation: `∂x = γ·r·g`.

use super::real::Real;
use super::tensor::TensorRef;

/// ε and the running estimates' momentum (PyTorch's defaults 1e-5 and 0.1).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchNormSpec {
    pub eps: f64,
    pub momentum: f64,
}

/// Scratch forward needs for `x` of shape `[_, C, S..., B]` in an ensemble of `e`.
pub fn saved_len(e: usize, shape: &[usize]) -> usize {
    2 * e * shape[1]
}

/// The running estimates, written by a training forward.
pub struct Running<'a, T> {
    pub mean: &'a mut [T],
    pub var: &'a mut [T],
}

/// `Σ leaf(range)` over `0..n` by halves down to runs of at most 256, each summed over [`LANES`]
/// accumulators: pairwise summation, as NumPy's and XLA's reductions, so a channel's long run
/// (a conv layer's 8·8·1 437 values) keeps its rounding near log n ulps, not n/8.
fn pairwise<T: Real>(lo: usize, hi: usize, leaf: &impl Fn(usize, usize) -> T) -> T {
    if hi - lo <= 256 {
        leaf(lo, hi)
    } else {
        let mid = lo + (hi - lo) / 2 / LANES * LANES;
        pairwise(lo, mid, leaf) + pairwise(mid, hi, leaf)
    }
}

/// Accumulators of a run: 32, so that four vector registers' chains of additions overlap (one
/// chain of eight left them waiting on additions: the digits CNN step with BatchNorm after
/// conv1 measured 1.28× the step without, 1.20× with 32).
const LANES: usize = 32;

/// The accumulators' total, pairwise.
#[inline(always)]
fn fold<T: Real>(mut v: [T; LANES]) -> T {
    let mut w = LANES;
    while w > 1 {
        w /= 2;
        for k in 0..w {
            let t = v[k + w];
            v[k] += t;
        }
    }
    v[0]
}

/// `Σ f(a[i], b[i])` over one short run, [`LANES`] wide (slices, so the loop vectorises).
#[inline(always)]
fn lanes<T: Real>(a: &[T], b: &[T], f: impl Fn(T, T) -> T) -> T {
    let mut acc = [T::default(); LANES];
    let (ac, bc) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ar, br) = (ac.remainder(), bc.remainder());
    for (a8, b8) in ac.zip(bc) {
        for k in 0..LANES {
            acc[k] += f(a8[k], b8[k]);
        }
    }
    let mut s = T::default();
    for (&x, &y) in ar.iter().zip(br) {
        s += f(x, y);
    }
    fold(acc) + s
}

fn sum<T: Real>(xs: &[T]) -> T {
    pairwise(0, xs.len(), &|lo, hi| lanes(&xs[lo..hi], &xs[lo..hi], |x, _| x))
}

fn sum_sq_dev<T: Real>(xs: &[T], m: T) -> T {
    pairwise(0, xs.len(), &|lo, hi| {
        lanes(&xs[lo..hi], &xs[lo..hi], |x, _| {
            let d = x - m;
            d * d
        })
    })
}

/// `(Σa, Σa·(b − m))` in one pass, pairwise as [`pairwise`].
fn sum_and_dot<T: Real>(a: &[T], b: &[T], m: T) -> (T, T) {
    if a.len() > 256 {
        let mid = a.len() / 2 / LANES * LANES;
        let (l, r) = (sum_and_dot(&a[..mid], &b[..mid], m), sum_and_dot(&a[mid..], &b[mid..], m));
        return (l.0 + r.0, l.1 + r.1);
    }
    let (mut s, mut d) = ([T::default(); LANES], [T::default(); LANES]);
    let (ac, bc) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ar, br) = (ac.remainder(), bc.remainder());
    for (a8, b8) in ac.zip(bc) {
        for k in 0..LANES {
            s[k] += a8[k];
            d[k] += a8[k] * (b8[k] - m);
        }
    }
    let (mut s0, mut d0) = (T::default(), T::default());
    for (&x, &y) in ar.iter().zip(br) {
        s0 += x;
        d0 += x * (y - m);
    }
    (fold(s) + s0, fold(d) + d0)
}

/// `training`: batch statistics, and the running estimates of the models flagged in `update`
/// (every model if `None`) moved; otherwise the running estimates normalise.
// Never inlined: the tape's forward and backward loops stay as they were for every other op.
#[inline(never)]
#[allow(clippy::too_many_arguments)]
pub fn forward<T: Real>(
    e_count: usize,
    x: TensorRef<T>,
    gamma: &[T],
    beta: &[T],
    running: Running<'_, T>,
    spec: BatchNormSpec,
    training: bool,
    update: Option<&[bool]>,
    out: &mut [T],
    saved: &mut [T],
) {
    let c_count = x.shape[1];
    let n: usize = x.shape[2..].iter().product();
    let lead = x.shape[0];
    let (means, rstd) = saved.split_at_mut(e_count * c_count);
    let inv_n = T::from_f64(1.0 / n as f64);
    let (m, keep) = (T::from_f64(spec.momentum), T::from_f64(1.0 - spec.momentum));
    let unbias = T::from_f64(if n > 1 { n as f64 / (n - 1) as f64 } else { 1.0 });
    let eps = T::from_f64(spec.eps);
    let one = T::from_f64(1.0);
    for e in 0..e_count {
        let moves = training && update.is_none_or(|u| u[e]);
        for c in 0..c_count {
            let k = e * c_count + c;
            let xs = &x.data[(if lead == 1 { c } else { k }) * n..][..n];
            let (mean, r) = if training {
                let mean = sum(xs) * inv_n;
                let var = sum_sq_dev(xs, mean) * inv_n;
                if moves {
                    running.mean[k] = keep * running.mean[k] + m * mean;
                    running.var[k] = keep * running.var[k] + m * (var * unbias);
                }
                (mean, one / (var + eps).sqrt())
            } else {
                (running.mean[k], one / (running.var[k] + eps).sqrt())
            };
            (means[k], rstd[k]) = (mean, r);
            let (g, b) = (gamma[k], beta[k]);
            for (y, &v) in out[k * n..(k + 1) * n].iter_mut().zip(xs) {
                *y = g * ((v - mean) * r) + b;
            }
        }
    }
}

/// Adds the gradients of `x` (when `gx` is not empty), `γ` and `β` from `gy`, for the mode the
/// forward ran in; `x` is the forward's input.
#[inline(never)]
#[allow(clippy::too_many_arguments)]
pub fn backward<T: Real>(
    x: TensorRef<T>,
    gamma: &[T],
    gy: &[T],
    saved: &[T],
    training: bool,
    gx: &mut [T],
    g_gamma: &mut [T],
    g_beta: &mut [T],
) {
    let k_count = gamma.len(); // E·C
    let c_count = x.shape[1];
    let n = gy.len() / k_count;
    let inv_n = T::from_f64(1.0 / n as f64);
    let (means, rstd) = saved.split_at(k_count);
    for k in 0..k_count {
        let xs = &x.data[(if x.shape[0] == 1 { k % c_count } else { k }) * n..][..n];
        let (mean, r) = (means[k], rstd[k]);
        let gr = &gy[k * n..(k + 1) * n];
        let (sb, sd) = sum_and_dot(gr, xs, mean);
        let sg = sd * r; // Σ g·x̂
        g_beta[k] += sb;
        g_gamma[k] += sg;
        if gx.is_empty() {
            continue;
        }
        let scale = gamma[k] * r;
        let gxs = &mut gx[k * n..(k + 1) * n];
        if training {
            let (mb, mg) = (sb * inv_n, sg * inv_n * r);
            for ((o, &g), &v) in gxs.iter_mut().zip(gr).zip(xs) {
                *o += scale * (g - mb - (v - mean) * mg);
            }
        } else {
            for (o, &g) in gxs.iter_mut().zip(gr) {
                *o += scale * g;
            }
        }
    }
}

//! Layer normalisation over `[E, F..., B]` (batch last): each sample of each model is
//! normalised over all its features, then scaled and shifted per feature,
//! `y = γ·(x − μ)/√(σ² + ε) + β` with the biased variance, as `torch.nn.LayerNorm(F...)`
//! computes it. Samples never mix, so an ensemble member and a minibatch are what they would
//! be alone.
//!
//! Saved by forward: `x̂` `[E, F, B]`, then `1/√(σ² + ε)` `[E, B]`; backward needs nothing else:
//! `∂x = r·(g·γ − mean(g·γ) − x̂·mean(g·γ·x̂))` over the features.

use super::real::Real;
use super::tensor::TensorRef;

/// Scratch forward needs for `x` of `e` models with `f` features and batch `b`.
pub fn saved_len(e: usize, f: usize, b: usize) -> usize {
    e * f * b + e * b
}

pub fn forward<T: Real>(
    e_count: usize,
    x: TensorRef<T>,
    gamma: TensorRef<T>,
    beta: TensorRef<T>,
    eps: f64,
    out: &mut [T],
    saved: &mut [T],
) {
    let b = *x.shape.last().expect("batch last");
    let f: usize = x.shape[1..x.shape.len() - 1].iter().product();
    let lead = x.shape[0];
    let inv_f = T::from_f64(1.0 / f as f64);
    let (xhat, rstd) = saved.split_at_mut(e_count * f * b);
    let mut mean = vec![T::default(); b];
    let mut var = vec![T::default(); b];
    for e in 0..e_count {
        let xs = &x.data[if lead == 1 { 0 } else { e * f * b }..][..f * b];
        let (g, be) = (&gamma.data[e * f..(e + 1) * f], &beta.data[e * f..(e + 1) * f]);
        mean.fill(T::default());
        var.fill(T::default());
        for row in xs.chunks_exact(b) {
            for (m, &v) in mean.iter_mut().zip(row) {
                *m += v;
            }
        }
        mean.iter_mut().for_each(|m| *m *= inv_f);
        for row in xs.chunks_exact(b) {
            for ((s, &m), &v) in var.iter_mut().zip(&mean).zip(row) {
                let d = v - m;
                *s += d * d;
            }
        }
        let r = &mut rstd[e * b..(e + 1) * b];
        for (ri, &s) in r.iter_mut().zip(&var) {
            *ri = T::from_f64(1.0) / (s * inv_f + T::from_f64(eps)).sqrt();
        }
        let xh = &mut xhat[e * f * b..(e + 1) * f * b];
        let o = &mut out[e * f * b..(e + 1) * f * b];
        for k in 0..f {
            let rows = k * b..(k + 1) * b;
            for (((h, y), &v), (&m, &ri)) in
                xh[rows.clone()].iter_mut().zip(&mut o[rows.clone()]).zip(&xs[rows]).zip(mean.iter().zip(r.iter()))
            {
                *h = (v - m) * ri;
                *y = g[k] * *h + be[k];
            }
        }
    }
}

/// Adds the gradients of `x` (when `gx` is not empty), `γ` and `β` from `gy`.
pub fn backward<T: Real>(
    e_count: usize,
    gamma: TensorRef<T>,
    gy: &[T],
    saved: &[T],
    gx: &mut [T],
    g_gamma: &mut [T],
    g_beta: &mut [T],
) {
    let f: usize = gamma.shape[1..].iter().product();
    let b = gy.len() / (e_count * f);
    let inv_f = T::from_f64(1.0 / f as f64);
    let (xhat, rstd) = saved.split_at(e_count * f * b);
    let mut m1 = vec![T::default(); b];
    let mut m2 = vec![T::default(); b];
    for e in 0..e_count {
        let g = &gamma.data[e * f..(e + 1) * f];
        let (gys, xh) = (&gy[e * f * b..(e + 1) * f * b], &xhat[e * f * b..(e + 1) * f * b]);
        m1.fill(T::default());
        m2.fill(T::default());
        for k in 0..f {
            let (gr, hr) = (&gys[k * b..(k + 1) * b], &xh[k * b..(k + 1) * b]);
            let (mut sb, mut sg) = (T::default(), T::default());
            for s in 0..b {
                sb += gr[s];
                sg += gr[s] * hr[s];
                let d = gr[s] * g[k];
                m1[s] += d;
                m2[s] += d * hr[s];
            }
            g_beta[e * f + k] += sb;
            g_gamma[e * f + k] += sg;
        }
        if gx.is_empty() {
            continue;
        }
        let r = &rstd[e * b..(e + 1) * b];
        for k in 0..f {
            let rows = k * b..(k + 1) * b;
            let gxs = &mut gx[e * f * b..(e + 1) * f * b][rows.clone()];
            for s in 0..b {
                let d = gys[k * b + s] * g[k];
                gxs[s] += r[s] * (d - m1[s] * inv_f - xh[k * b + s] * (m2[s] * inv_f));
            }
        }
    }
}

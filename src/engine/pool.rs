//! 2D max and average pooling over `[E, C, H, W, B]` (batch last), no padding, as
//! `torch.nn.MaxPool2d(k, stride)` / `AvgPool2d(k, stride)` compute them. A max-pool remembers
//! where each maximum came from (the first one on ties, as PyTorch's CPU kernel), which is all
//! its backward needs; an average pool needs nothing.
//!
//! A pooled tensor keeps its input's leading axis: pooling the shared data gives shared data.

use super::real::Real;
use crate::error::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolKind {
    Max,
    Avg,
}

/// Sizes of one pooling, derived once from the input shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolGeometry {
    pub kind: PoolKind,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub b: usize,
    pub k: usize,
    pub stride: usize,
    pub oh: usize,
    pub ow: usize,
}

pub fn geometry(kind: PoolKind, x: &[usize], k: usize, stride: usize) -> Result<(PoolGeometry, Vec<usize>)> {
    let err = |msg: String| Err(Error::Shape { op: "pool", msg });
    if x.len() != 5 {
        return err(format!("input {x:?} must be [E, channels, height, width, batch]"));
    }
    if k == 0 || stride == 0 {
        return err(format!("kernel {k} and stride {stride} must be at least 1"));
    }
    let (c, h, w, b) = (x[1], x[2], x[3], x[4]);
    if k > h || k > w {
        return err(format!("kernel {k}×{k} does not fit input {h}×{w}"));
    }
    let (oh, ow) = ((h - k) / stride + 1, (w - k) / stride + 1);
    Ok((PoolGeometry { kind, c, h, w, b, k, stride, oh, ow }, vec![x[0], c, oh, ow, b]))
}

/// Scratch: the argmax of every output element (max pooling only).
pub fn saved_len(g: &PoolGeometry, x_ensemble: usize) -> usize {
    match g.kind {
        PoolKind::Max => x_ensemble * g.c * g.oh * g.ow * g.b,
        PoolKind::Avg => 0,
    }
}

/// `argmax` holds, per output element, the input position `ih·W + iw` of its maximum (exact in
/// any float type for planes below 2²⁴ positions).
pub fn forward<T: Real>(g: &PoolGeometry, x: &[T], y: &mut [T], argmax: &mut [T]) {
    let (b, plane_in, plane_out) = (g.b, g.h * g.w * g.b, g.oh * g.ow * g.b);
    let area = T::from_f64((g.k * g.k) as f64);
    for (m, (xm, ym)) in x.chunks_exact(plane_in).zip(y.chunks_exact_mut(plane_out)).enumerate() {
        for oi in 0..g.oh {
            for oj in 0..g.ow {
                let out = &mut ym[(oi * g.ow + oj) * b..][..b];
                let first = (oi * g.stride * g.w + oj * g.stride) * b;
                out.copy_from_slice(&xm[first..first + b]);
                let arg = match g.kind {
                    PoolKind::Max => {
                        let a = &mut argmax[m * plane_out + (oi * g.ow + oj) * b..][..b];
                        a.fill(T::from_f64((oi * g.stride * g.w + oj * g.stride) as f64));
                        Some(a)
                    }
                    PoolKind::Avg => None,
                };
                let mut arg = arg;
                for ki in 0..g.k {
                    for kj in 0..g.k {
                        if ki == 0 && kj == 0 {
                            continue;
                        }
                        let pos = (oi * g.stride + ki) * g.w + oj * g.stride + kj;
                        let src = &xm[pos * b..(pos + 1) * b];
                        match &mut arg {
                            Some(a) => {
                                let p = T::from_f64(pos as f64);
                                for ((o, ai), &v) in out.iter_mut().zip(a.iter_mut()).zip(src) {
                                    if v > *o {
                                        *o = v;
                                        *ai = p;
                                    }
                                }
                            }
                            None => out.iter_mut().zip(src).for_each(|(o, &v)| *o += v),
                        }
                    }
                }
                if g.kind == PoolKind::Avg {
                    out.iter_mut().for_each(|o| *o = *o / area); // divided, as PyTorch does
                }
            }
        }
    }
}

/// Adds the input gradient into `gx`.
pub fn backward<T: Real>(g: &PoolGeometry, gy: &[T], argmax: &[T], gx: &mut [T]) {
    let (b, plane_in, plane_out) = (g.b, g.h * g.w * g.b, g.oh * g.ow * g.b);
    let inv = T::from_f64(1.0 / (g.k * g.k) as f64);
    for (m, (gym, gxm)) in gy.chunks_exact(plane_out).zip(gx.chunks_exact_mut(plane_in)).enumerate() {
        for oi in 0..g.oh {
            for oj in 0..g.ow {
                let o = (oi * g.ow + oj) * b;
                match g.kind {
                    PoolKind::Max => {
                        let a = &argmax[m * plane_out + o..][..b];
                        for (s, (&d, &p)) in gym[o..o + b].iter().zip(a).enumerate() {
                            gxm[p.to_f64() as usize * b + s] += d;
                        }
                    }
                    PoolKind::Avg => {
                        for ki in 0..g.k {
                            for kj in 0..g.k {
                                let pos = (oi * g.stride + ki) * g.w + oj * g.stride + kj;
                                for (gv, &d) in gxm[pos * b..(pos + 1) * b].iter_mut().zip(&gym[o..o + b]) {
                                    *gv += d * inv;
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_and_average_of_a_known_plane() {
        // One channel 4×4, batch 1, values 0..16 with a tie in the last window.
        let mut x: Vec<f64> = (0..16).map(f64::from).collect();
        x[15] = 14.0; // window (2..4, 2..4) holds 10, 11, 14, 14: the first 14 wins
        let (g, shape) = geometry(PoolKind::Max, &[1, 1, 4, 4, 1], 2, 2).unwrap();
        assert_eq!(shape, [1, 1, 2, 2, 1]);
        let (mut y, mut arg) = (vec![0.0; 4], vec![0.0; 4]);
        forward(&g, &x, &mut y, &mut arg);
        assert_eq!(y, [5.0, 7.0, 13.0, 14.0]);
        assert_eq!(arg, [5.0, 7.0, 13.0, 14.0]);
        let mut gx = vec![0.0; 16];
        backward(&g, &[1.0, 2.0, 3.0, 4.0], &arg, &mut gx);
        assert_eq!((gx[5], gx[7], gx[13], gx[14], gx[15]), (1.0, 2.0, 3.0, 4.0, 0.0));
        let (ga, _) = geometry(PoolKind::Avg, &[1, 1, 4, 4, 1], 2, 2).unwrap();
        forward(&ga, &x, &mut y, &mut []);
        assert_eq!(y, [2.5, 4.5, 10.5, 12.25]);
    }

    #[test]
    fn a_kernel_larger_than_the_input_is_refused() {
        assert!(geometry(PoolKind::Max, &[1, 3, 2, 2, 4], 3, 3).is_err());
        assert!(geometry(PoolKind::Avg, &[1, 3, 8, 8, 4], 2, 0).is_err());
    }
}

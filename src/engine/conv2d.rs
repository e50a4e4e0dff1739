//! 2D convolution (cross-correlation, as in PyTorch), by im2col and one matrix product.
//!
//! Layout `[E, C, H, W, B]` (batch last): per model, the `K = C·kh·kw` patch rows of every
//! output position form a `K × (OH·OW·B)` matrix (`im2col`), built from contiguous runs of B
//! values, and the convolution is `W [out, K] × cols`, whose result is already the output
//! layout `[out, OH, OW, B]`. A shared input (leading axis 1, the data) is unrolled once and
//! multiplied by all E models' kernels stacked as `[E·out, K]` in a single product. Kernels
//! are `[E, out, in, kh, kw]` (PyTorch).
//!
//! The bias is tied (`[E, out]`) or untied (`[E, out, OH, OW]`: one per output position and
//! channel, what the original two-task code had).

use super::gemm::{gemm, gemm_shared};
use super::real::Real;
use super::tensor::{TensorRef, model_mut};
use crate::error::{Error, Result};

/// Stride and padding; all output-size arithmetic lives here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dSpec {
    pub stride: usize,
    pub padding: usize,
}

impl Default for Conv2dSpec {
    fn default() -> Conv2dSpec {
        Conv2dSpec { stride: 1, padding: 0 }
    }
}

impl Conv2dSpec {
    /// Output side for an input side and kernel side, if the kernel fits.
    pub fn out_size(&self, input: usize, kernel: usize) -> Option<usize> {
        let padded = self.padded(input)?;
        (padded >= kernel && self.stride > 0).then(|| (padded - kernel) / self.stride + 1)
    }

    /// `input` with the padding on both sides, checked: a padding near usize::MAX must not wrap
    /// into a small size.
    pub fn padded(&self, input: usize) -> Option<usize> {
        self.padding.checked_mul(2)?.checked_add(input)
    }
}

/// Sizes of one convolution, derived once from the shapes.
#[derive(Clone, Copy, Debug)]
pub struct Geometry {
    pub c: usize,
    pub b: usize,
    pub h: usize,
    pub w: usize,
    pub out: usize,
    pub kh: usize,
    pub kw: usize,
    pub oh: usize,
    pub ow: usize,
    pub spec: Conv2dSpec,
}

impl Geometry {
    /// Rows of the unrolled input: one per (channel, kernel row, kernel column).
    pub fn k(&self) -> usize {
        self.c * self.kh * self.kw
    }
    /// Columns of the unrolled input: one per (output row, output column, sample).
    pub fn n(&self) -> usize {
        self.b * self.oh * self.ow
    }
}

pub fn geometry(
    ensemble: usize,
    x: &[usize],
    w: &[usize],
    b: Option<&[usize]>,
    spec: Conv2dSpec,
) -> Result<(Geometry, Vec<usize>)> {
    let err = |msg: String| Err(Error::Shape { op: "conv2d", msg });
    if x.len() != 5 || (x[0] != 1 && x[0] != ensemble) {
        return err(format!("input {x:?} must be [1 or {ensemble}, channels, height, width, batch]"));
    }
    if w.len() != 5 || w[0] != ensemble || w[2] != x[1] {
        return err(format!("kernel {w:?} must be [{ensemble}, out, {}, kh, kw]", x[1]));
    }
    let (Some(oh), Some(ow)) = (spec.out_size(x[2], w[3]), spec.out_size(x[3], w[4])) else {
        return err(format!("kernel {}×{} does not fit input {}×{} with {spec:?}", w[3], w[4], x[2], x[3]));
    };
    let g = Geometry { c: x[1], h: x[2], w: x[3], b: x[4], out: w[1], kh: w[3], kw: w[4], oh, ow, spec };
    // Every size the kernels index with (taps, positions, the padded input, the unrolled
    // input) must fit a usize and stay below what any memory holds: checked here, once, so
    // that no later product wraps (found by property tests: a huge padding).
    const MOST: usize = 1 << 40;
    let product = |v: &[usize]| v.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).filter(|&p| p <= MOST);
    let sizes_fit = product(&[g.c, g.kh, g.kw]).is_some()
        && product(&[oh, ow, g.b]).is_some()
        && product(&[g.out, oh, ow, g.b]).is_some()
        && spec.padded(g.h).zip(spec.padded(g.w)).is_some_and(|(h, w)| product(&[g.c, h, w, g.b]).is_some())
        && product(&[g.c, g.kh, g.kw, oh, ow, g.b]).is_some();
    if !sizes_fit {
        return err(format!("kernel {w:?} on input {x:?} with {spec:?} gives sizes beyond any memory"));
    }
    if let Some(b) = b
        && b != [ensemble, g.out]
        && b != [ensemble, g.out, oh, ow]
    {
        return err(format!(
            "bias {b:?} must be [{ensemble}, {}] (tied) or [{ensemble}, {}, {oh}, {ow}] (untied)",
            g.out, g.out
        ));
    }
    Ok((g, vec![ensemble, g.out, oh, ow, g.b]))
}

/// Unpadded convolutions run without im2col (`conv2d_direct`); padded ones unroll the input.
/// A tape in a type without fast direct kernels (`Real::DIRECT_CONV`) always unrolls.
pub fn is_direct<T: Real>(g: &Geometry) -> bool {
    g.spec.padding == 0 && T::DIRECT_CONV
}

/// Scratch. Direct: the transposed kernel `[K, out]` when the input needs a gradient.
/// im2col: the unrolled input of each product (kept for dW), then one `K × N` buffer for the
/// gradient of the unrolled input when the input needs a gradient.
pub fn saved_len<T: Real>(ensemble: usize, x_ensemble: usize, g: &Geometry, input_needs_grad: bool) -> usize {
    if is_direct::<T>(g) {
        return if input_needs_grad { g.k() * g.out } else { 0 };
    }
    let groups = if x_ensemble == 1 { 1 } else { ensemble };
    (groups + usize::from(input_needs_grad)) * g.k() * g.n()
}

/// Where kernel offset `(ki, kj)` at output `(oi, oj)` reads the input, if inside it.
#[inline]
fn source(g: &Geometry, oi: usize, oj: usize, ki: usize, kj: usize) -> Option<usize> {
    let ih = (oi * g.spec.stride + ki).checked_sub(g.spec.padding)?;
    let iw = (oj * g.spec.stride + kj).checked_sub(g.spec.padding)?;
    (ih < g.h && iw < g.w).then_some(ih * g.w + iw)
}

/// `cols[K, N]` from one model's input `[C, H, W, B]`: every entry is a run of B samples.
pub fn im2col<T: Real>(g: &Geometry, x: &[T], cols: &mut [T]) {
    let (n, b) = (g.n(), g.b);
    for c in 0..g.c {
        let plane = &x[c * g.h * g.w * b..(c + 1) * g.h * g.w * b];
        for ki in 0..g.kh {
            for kj in 0..g.kw {
                let row = &mut cols[((c * g.kh + ki) * g.kw + kj) * n..][..n];
                for oi in 0..g.oh {
                    for oj in 0..g.ow {
                        let dst = &mut row[(oi * g.ow + oj) * b..][..b];
                        match source(g, oi, oj, ki, kj) {
                            Some(at) => dst.copy_from_slice(&plane[at * b..(at + 1) * b]),
                            None => dst.fill(T::default()),
                        }
                    }
                }
            }
        }
    }
}

/// The adjoint of `im2col`: adds each column entry back into the input position it came from.
pub fn col2im<T: Real>(g: &Geometry, cols: &[T], x: &mut [T]) {
    let (n, b) = (g.n(), g.b);
    for c in 0..g.c {
        let plane = &mut x[c * g.h * g.w * b..(c + 1) * g.h * g.w * b];
        for ki in 0..g.kh {
            for kj in 0..g.kw {
                let row = &cols[((c * g.kh + ki) * g.kw + kj) * n..][..n];
                for oi in 0..g.oh {
                    for oj in 0..g.ow {
                        if let Some(at) = source(g, oi, oj, ki, kj) {
                            let src = &row[(oi * g.ow + oj) * b..][..b];
                            plane[at * b..(at + 1) * b].iter_mut().zip(src).for_each(|(d, &v)| *d += v);
                        }
                    }
                }
            }
        }
    }
}

fn groups(ensemble: usize, x_ensemble: usize) -> (usize, usize) {
    if x_ensemble == 1 { (1, ensemble) } else { (ensemble, 1) }
}

/// `taps`: the direct kernels' tap offsets (`conv2d_direct::tap_offsets`, computed once when the
/// node is made; empty for the im2col path).
#[allow(clippy::too_many_arguments)]
pub fn forward<T: Real>(
    ensemble: usize,
    g: &Geometry,
    taps: &[usize],
    x: TensorRef<T>,
    w: TensorRef<T>,
    b: Option<TensorRef<T>>,
    y: &mut [T],
    saved: &mut [T],
) {
    if is_direct::<T>(g) {
        let (n_groups, per_group) = groups(ensemble, x.shape[0]);
        let (k, n, rows) = (g.k(), g.n(), per_group * g.out);
        for grp in 0..n_groups {
            let yg = &mut y[grp * rows * n..(grp + 1) * rows * n];
            super::conv2d_direct::forward(
                g,
                taps,
                x.model(grp),
                &w.data[grp * rows * k..(grp + 1) * rows * k],
                rows,
                yg,
            );
        }
        add_bias(ensemble, g, b, y);
        return;
    }
    let (k, n) = (g.k(), g.n());
    let (n_groups, per_group) = groups(ensemble, x.shape[0]);
    let rows = per_group * g.out;
    for grp in 0..n_groups {
        let cols = &mut saved[grp * k * n..(grp + 1) * k * n];
        im2col(g, x.model(grp), cols);
        let wg = &w.data[grp * rows * k..(grp + 1) * rows * k];
        gemm_shared(
            g.out,
            rows,
            k,
            n,
            wg,
            [k, 1],
            cols,
            [n, 1],
            T::default(),
            &mut y[grp * rows * n..(grp + 1) * rows * n],
            [n, 1],
        );
    }
    add_bias(ensemble, g, b, y);
}

fn add_bias<T: Real>(ensemble: usize, g: &Geometry, b: Option<TensorRef<T>>, y: &mut [T]) {
    if let Some(b) = b {
        if b.data.len() == ensemble * g.out {
            for (plane, &bias) in y.chunks_exact_mut(g.n()).zip(b.data) {
                plane.iter_mut().for_each(|v| *v += bias);
            }
        } else {
            // Untied: one bias per (channel, position), shared by the samples of the batch.
            for (run, &bias) in y.chunks_exact_mut(g.b).zip(b.data) {
                run.iter_mut().for_each(|v| *v += bias);
            }
        }
    }
}

/// Adds the gradients into `gx`, `gw`, `gb`; an empty slice means "not needed".
#[allow(clippy::too_many_arguments)]
pub fn backward<T: Real>(
    ensemble: usize,
    g: &Geometry,
    taps: &[usize],
    x: TensorRef<T>,
    w: TensorRef<T>,
    gy: &[T],
    saved: &mut [T],
    gx: &mut [T],
    gw: &mut [T],
    gb: &mut [T],
) {
    let (k, n) = (g.k(), g.n());
    let one = T::from_f64(1.0);
    let (n_groups, per_group) = groups(ensemble, x.shape[0]);
    let rows = per_group * g.out;
    if !gb.is_empty() {
        // Tied: a channel's whole plane; untied: each position's run of B samples.
        let run = if gb.len() == ensemble * g.out { n } else { g.b };
        for (gbv, values) in gb.iter_mut().zip(gy.chunks_exact(run)) {
            *gbv += super::gemm::lane_sum(values);
        }
    }
    if is_direct::<T>(g) {
        use super::conv2d_direct as direct;
        if !gw.is_empty() {
            for grp in 0..n_groups {
                let gyg = &gy[grp * rows * n..(grp + 1) * rows * n];
                direct::weight_grad(g, taps, x.model(grp), gyg, rows, &mut gw[grp * rows * k..(grp + 1) * rows * k]);
            }
        }
        if !gx.is_empty() {
            for e in 0..ensemble {
                let gye = &gy[e * g.out * n..(e + 1) * g.out * n];
                direct::input_grad(g, taps, w.model(e), gye, saved, model_mut(gx, x.shape[0], e));
            }
        }
        return;
    }
    let (cols_all, dcols) = saved.split_at_mut(n_groups * k * n);
    if !gw.is_empty() {
        for grp in 0..n_groups {
            let cols = &cols_all[grp * k * n..(grp + 1) * k * n];
            // dW = dY·colsᵀ
            gemm_shared(
                g.out,
                rows,
                n,
                k,
                &gy[grp * rows * n..(grp + 1) * rows * n],
                [n, 1],
                cols,
                [1, n],
                one,
                &mut gw[grp * rows * k..(grp + 1) * rows * k],
                [k, 1],
            );
        }
    }
    if !gx.is_empty() {
        for e in 0..ensemble {
            // dcols = Wᵀ·dY, then scattered back onto the input.
            gemm(
                k,
                g.out,
                n,
                w.model(e),
                [1, k],
                &gy[e * g.out * n..(e + 1) * g.out * n],
                [n, 1],
                T::default(),
                dcols,
                [n, 1],
            );
            col2im(g, dcols, model_mut(gx, x.shape[0], e));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition, loop by loop: y[o,i,j,b] = Σ x[c, i·s+u−p, j·s+v−p, b]·w[o,c,u,v].
    fn direct(g: &Geometry, x: &[f64], w: &[f64]) -> Vec<f64> {
        let mut y = vec![0.0; g.out * g.n()];
        for o in 0..g.out {
            for b in 0..g.b {
                for i in 0..g.oh {
                    for j in 0..g.ow {
                        let mut s = 0.0;
                        for c in 0..g.c {
                            for u in 0..g.kh {
                                for v in 0..g.kw {
                                    let ih = (i * g.spec.stride + u) as isize - g.spec.padding as isize;
                                    let iw = (j * g.spec.stride + v) as isize - g.spec.padding as isize;
                                    if ih >= 0 && iw >= 0 && (ih as usize) < g.h && (iw as usize) < g.w {
                                        s += x[((c * g.h + ih as usize) * g.w + iw as usize) * g.b + b]
                                            * w[((o * g.c + c) * g.kh + u) * g.kw + v];
                                    }
                                }
                            }
                        }
                        y[((o * g.oh + i) * g.ow + j) * g.b + b] = s;
                    }
                }
            }
        }
        y
    }

    #[test]
    fn im2col_product_equals_the_direct_definition_with_stride_and_padding() {
        let mut seed = 3u64;
        let mut rnd = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
            ((seed >> 33) as f64 / (1u64 << 31) as f64) - 0.5
        };
        for (spec, h, w, kh, kw) in [
            (Conv2dSpec::default(), 16, 16, 7, 7),
            (Conv2dSpec { stride: 2, padding: 1 }, 9, 7, 3, 3),
            (Conv2dSpec { stride: 3, padding: 2 }, 5, 8, 4, 2),
        ] {
            let (c, b, out) = (3, 2, 4);
            let (geo, shape) = geometry(1, &[1, c, h, w, b], &[1, out, c, kh, kw], None, spec).unwrap();
            let x: Vec<f64> = (0..c * b * h * w).map(|_| rnd()).collect();
            let wt: Vec<f64> = (0..out * c * kh * kw).map(|_| rnd()).collect();
            let mut y = vec![0.0; shape.iter().product()];
            let mut saved = vec![0.0; saved_len::<f64>(1, 1, &geo, false)];
            let taps = if is_direct::<f64>(&geo) { super::super::conv2d_direct::tap_offsets(&geo) } else { vec![] };
            forward(
                1,
                &geo,
                &taps,
                TensorRef { data: &x, shape: &[1, c, h, w, b] },
                TensorRef { data: &wt, shape: &[1, out, c, kh, kw] },
                None,
                &mut y,
                &mut saved,
            );
            for (a, d) in y.iter().zip(direct(&geo, &x, &wt)) {
                assert!((a - d).abs() < 1e-12, "{spec:?}: {a} vs {d}");
            }
        }
    }

    #[test]
    fn direct_kernels_match_im2col_with_naive_products() {
        let mut seed = 11u64;
        let mut rnd = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
            ((seed >> 33) as f64 / (1u64 << 31) as f64) - 0.5
        };
        for (stride, b, c, out) in [(1, 3, 2, 3), (1, 16, 3, 9), (2, 19, 2, 8), (1, 64, 1, 16), (3, 33, 2, 17)] {
            let spec = Conv2dSpec { stride, padding: 0 };
            let (h, w, kh, kw) = (9, 8, 3, 4);
            let (g, _) = geometry(1, &[1, c, h, w, b], &[1, out, c, kh, kw], None, spec).unwrap();
            let (k, n) = (g.k(), g.n());
            let x: Vec<f64> = (0..c * h * w * b).map(|_| rnd()).collect();
            let wt: Vec<f64> = (0..out * k).map(|_| rnd()).collect();
            let gy: Vec<f64> = (0..out * n).map(|_| rnd()).collect();
            let mut cols = vec![0.0; k * n];
            im2col(&g, &x, &mut cols);
            // Reference products, the slow way.
            let mut y_ref = vec![0.0; out * n];
            let mut gw_ref = vec![0.0; out * k];
            let mut dcols = vec![0.0; k * n];
            for o in 0..out {
                for p in 0..k {
                    for j in 0..n {
                        y_ref[o * n + j] += wt[o * k + p] * cols[p * n + j];
                        gw_ref[o * k + p] += gy[o * n + j] * cols[p * n + j];
                        dcols[p * n + j] += wt[o * k + p] * gy[o * n + j];
                    }
                }
            }
            let mut gx_ref = vec![0.0; x.len()];
            col2im(&g, &dcols, &mut gx_ref);
            let taps = super::super::conv2d_direct::tap_offsets(&g);
            let mut y = vec![0.0; out * n];
            super::super::conv2d_direct::forward(&g, &taps, &x, &wt, out, &mut y);
            let mut gw = vec![0.0; out * k];
            super::super::conv2d_direct::weight_grad(&g, &taps, &x, &gy, out, &mut gw);
            let mut gx = vec![0.0; x.len()];
            let mut scratch = vec![0.0; k * out];
            super::super::conv2d_direct::input_grad(&g, &taps, &wt, &gy, &mut scratch, &mut gx);
            for (what, got, want) in [("y", &y, &y_ref), ("gw", &gw, &gw_ref), ("gx", &gx, &gx_ref)] {
                for (a, r) in got.iter().zip(want.iter()) {
                    assert!((a - r).abs() < 1e-11, "{what} stride {stride} b {b}: {a} vs {r}");
                }
            }
        }
    }

    #[test]
    fn output_sizes() {
        let s = Conv2dSpec::default();
        assert_eq!(s.out_size(16, 7), Some(10));
        assert_eq!(s.out_size(10, 7), Some(4));
        assert_eq!(s.out_size(5, 7), None);
        assert_eq!(Conv2dSpec { stride: 2, padding: 1 }.out_size(9, 3), Some(5));
    }
}

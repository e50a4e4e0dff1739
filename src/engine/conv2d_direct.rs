//! Convolution without materialising im2col, for unpadded convolutions (any stride).
//!
//! With the batch last, the input run a kernel tap reads for an output position is B
//! contiguous values at `tap offset + position offset`; so each kernel is a register-blocked
//! loop over taps that loads those runs directly. The unrolled matrix of `conv2d` (3.2 MB per
//! model for the report's second convolution) is never written, read back or packed, which
//! was most of a CNN step's time. `conv2d`'s im2col path stays as the obviously right twin;
//! the tests compare the two.
//!
//! The three kernels are `#[inline(never)]`: inlined into a caller, LLVM sometimes chose to
//! vectorise across the row block with gathers instead of across the batch lanes, depending on
//! unrelated code elsewhere in the crate (measured: 1.8 against 6.1 ms per detect step).
//!
//! Summation orders are fixed (taps in order; for dW, batch lanes of 16 then a pairwise sum),
//! so results are the same on every machine, and one model's numbers never depend on how many
//! models share a product.

use super::conv2d::Geometry;
use super::real::Real;
use super::simd::{as_f32, as_f32_mut};

/// Batch values per register block.
const L: usize = 16;
/// Output channels per register block.
const OB: usize = 8;

/// Offset of each kernel tap `(c, ki, kj)`'s input run for output position (0, 0).
pub fn tap_offsets(g: &Geometry) -> Vec<usize> {
    let mut taps = Vec::with_capacity(g.k());
    for c in 0..g.c {
        for ki in 0..g.kh {
            for kj in 0..g.kw {
                taps.push(((c * g.h + ki) * g.w + kj) * g.b);
            }
        }
    }
    taps
}

/// Offset added to every tap for output position `(oi, oj)`.
fn position_offset(g: &Geometry, oi: usize, oj: usize) -> usize {
    (oi * g.spec.stride * g.w + oj * g.spec.stride) * g.b
}

/// `W` values of `s` from `i`, without a bounds check.
///
/// # Safety
/// `i + W <= s.len()`. Every caller asserts the largest index its loops reach before entering
/// them: a panic point inside the hot loop would force the accumulators out of registers.
#[inline(always)]
unsafe fn run<T, const W: usize>(s: &[T], i: usize) -> &[T; W] {
    debug_assert!(i + W <= s.len());
    // SAFETY: the caller guarantees `i + W <= s.len()`; `[T; W]` has the alignment of `T`.
    unsafe { &*(s.as_ptr().add(i) as *const [T; W]) }
}

/// Offset of the last position's runs: with the last tap, the furthest any loop reads.
fn last_position(g: &Geometry) -> usize {
    position_offset(g, g.oh - 1, g.ow - 1)
}

/// Batch chunks: full blocks of `L`, then single values.
fn chunks(b: usize) -> impl Iterator<Item = (usize, usize)> {
    let full = b / L * L;
    (0..full).step_by(L).map(|b0| (b0, L)).chain((full..b).map(|b0| (b0, 1)))
}

/// The bounds each kernel, portable or SIMD, asserts before its loops (a panic point inside
/// them would force the accumulators out of registers). In the portable kernels themselves,
/// not only in a caller: without them LLVM vectorised across rows with gathers instead of
/// across the batch lanes (measured: 4.8 against 1.3 ms per step).
#[inline(always)]
pub(crate) fn check_forward(g: &Geometry, taps: &[usize], x: usize, w: usize, rows: usize, y: usize) {
    let (k, n) = (g.k(), g.n());
    assert_eq!(taps.len(), k);
    assert!(taps[k - 1] + last_position(g) + g.b <= x, "conv2d_direct: input too short");
    assert!(rows * k <= w && rows * n <= y, "conv2d_direct: kernel or output too short");
}

#[inline(always)]
pub(crate) fn check_weight_grad(g: &Geometry, taps: &[usize], x: usize, gy: usize, rows: usize, gw: usize) {
    let (k, n) = (g.k(), g.n());
    assert_eq!(taps.len(), k);
    assert!(taps[k - 1] + last_position(g) + g.b <= x, "conv2d_direct: input too short");
    assert!(rows * n <= gy && rows * k <= gw, "conv2d_direct: gradient buffers too short");
}

#[inline(always)]
pub(crate) fn check_input_grad(g: &Geometry, taps: &[usize], wt: usize, gy: usize, gx: usize) {
    let (k, n, out) = (g.k(), g.n(), g.out);
    assert_eq!(taps.len(), k);
    assert!(taps[k - 1] + last_position(g) + g.b <= gx, "conv2d_direct: input gradient too short");
    assert!(out * k <= wt && out * n <= gy, "conv2d_direct: kernel or gradient too short");
}

/// `y[rows, OH, OW, B] = w[rows, K] · patches(x)`; `w` holds `rows` kernels (one model's, or
/// every model's when they share `x`).
#[inline(never)]
pub fn forward<T: Real>(g: &Geometry, taps: &[usize], x: &[T], w: &[T], rows: usize, y: &mut [T]) {
    by_rows(g, rows, (w, g.k()), (y, g.n()), |rows, w, y| forward_rows(g, taps, x, w, rows, y))
}

/// Multiply-adds from which a product is split with the helper thread: below ~20 µs of work a
/// side, the hand-off is not worth it.
pub(crate) const MIN_SPLIT: usize = 1 << 21;

/// `kernel(rows, input, output)` for `rows` kernel rows, whose input and output take
/// `input.1` and `output.1` values per row: the second half of the rows on this thread's
/// helper (see `helper`) if it has one and the product is worth it. Each row is computed by
/// the same operations wherever it runs, so the numbers are the same.
fn by_rows<T: Real>(
    g: &Geometry,
    rows: usize,
    input: (&[T], usize),
    output: (&mut [T], usize),
    kernel: impl Fn(usize, &[T], &mut [T]) + Sync,
) {
    if rows >= 8 && rows * g.k() * g.n() >= MIN_SPLIT && super::helper::available() {
        // A multiple of 4 rows (the kernels' blocks), at least 4 a side.
        let half = (rows / 2).div_ceil(4) * 4;
        let (i0, i1) = input.0.split_at(half * input.1);
        let (o0, o1) = output.0.split_at_mut(half * output.1);
        return super::helper::join(|| kernel(half, i0, o0), || kernel(rows - half, i1, o1));
    }
    kernel(rows, input.0, output.0)
}

fn forward_rows<T: Real>(g: &Geometry, taps: &[usize], x: &[T], w: &[T], rows: usize, y: &mut [T]) {
    if let (Some(x), Some(w), Some(y)) = (as_f32(x), as_f32(w), as_f32_mut(y))
        && super::simd::enabled()
    {
        return super::conv2d_simd::forward(g, taps, x, w, rows, y);
    }
    forward_generic(g, taps, x, w, rows, y)
}

/// The portable forward kernel: the definition of the SIMD kernel's results.
#[inline(never)]
pub fn forward_generic<T: Real>(g: &Geometry, taps: &[usize], x: &[T], w: &[T], rows: usize, y: &mut [T]) {
    let (k, n) = (g.k(), g.n());
    check_forward(g, taps, x.len(), w.len(), rows, y.len());
    for oi in 0..g.oh {
        for oj in 0..g.ow {
            let base = position_offset(g, oi, oj);
            let ypos = (oi * g.ow + oj) * g.b;
            for (b0, width) in chunks(g.b) {
                let mut r0 = 0;
                while r0 < rows {
                    let block = OB.min(rows - r0);
                    if width == L && block == OB {
                        forward_block::<T, OB, L>(taps, x, base + b0, w, r0, k, y, n, ypos + b0);
                    } else {
                        for r in r0..r0 + block {
                            for bb in b0..b0 + width {
                                forward_block::<T, 1, 1>(taps, x, base + bb, w, r, k, y, n, ypos + bb);
                            }
                        }
                    }
                    r0 += block;
                }
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn forward_block<T: Real, const R: usize, const W: usize>(
    taps: &[usize],
    x: &[T],
    xoff: usize,
    w: &[T],
    r0: usize,
    k: usize,
    y: &mut [T],
    n: usize,
    yoff: usize,
) {
    let mut acc = [[T::default(); W]; R];
    for (p, &tap) in taps.iter().enumerate() {
        // SAFETY: `forward` asserted that the last tap's furthest run and all R kernel rows fit.
        let xv: &[T; W] = unsafe { run(x, tap + xoff) };
        for (r, acc_r) in acc.iter_mut().enumerate() {
            let wv = unsafe { *w.get_unchecked((r0 + r) * k + p) };
            for l in 0..W {
                acc_r[l] = wv.mul_add(xv[l], acc_r[l]);
            }
        }
    }
    for (r, acc_r) in acc.iter().enumerate() {
        y[(r0 + r) * n + yoff..(r0 + r) * n + yoff + W].copy_from_slice(acc_r);
    }
}

/// `gw[rows, K] += gy[rows, OH·OW·B] · patches(x)ᵀ`: blocks of 4 rows × 2 taps, so each
/// loaded gradient run serves two taps and each input run four rows.
#[inline(never)]
pub fn weight_grad<T: Real>(g: &Geometry, taps: &[usize], x: &[T], gy: &[T], rows: usize, gw: &mut [T]) {
    by_rows(g, rows, (gy, g.n()), (gw, g.k()), |rows, gy, gw| weight_grad_rows(g, taps, x, gy, rows, gw))
}

fn weight_grad_rows<T: Real>(g: &Geometry, taps: &[usize], x: &[T], gy: &[T], rows: usize, gw: &mut [T]) {
    if let (Some(x), Some(gy), Some(gw)) = (as_f32(x), as_f32(gy), as_f32_mut(gw))
        && super::simd::enabled()
    {
        return super::conv2d_simd::weight_grad(g, taps, x, gy, rows, gw);
    }
    weight_grad_generic(g, taps, x, gy, rows, gw)
}

/// `s` as f32 values when `T` is f32: the SIMD kernels are written for f32.
/// The portable weight gradient: the definition of the SIMD kernels' results.
#[inline(never)]
pub fn weight_grad_generic<T: Real>(g: &Geometry, taps: &[usize], x: &[T], gy: &[T], rows: usize, gw: &mut [T]) {
    let k = g.k();
    let n = g.n();
    check_weight_grad(g, taps, x.len(), gy.len(), rows, gw.len());
    let mut r0 = 0;
    while r0 < rows {
        let block = 4.min(rows - r0);
        let mut p = 0;
        while p < k {
            let pair = 2.min(k - p);
            if block == 4 && pair == 2 {
                let sums = weight_grad_block::<T, 4, 2>(g, [taps[p], taps[p + 1]], x, gy, r0, n);
                for (r, s) in sums.iter().enumerate() {
                    gw[(r0 + r) * k + p] += s[0];
                    gw[(r0 + r) * k + p + 1] += s[1];
                }
            } else {
                for q in p..p + pair {
                    for r in r0..r0 + block {
                        gw[r * k + q] += weight_grad_block::<T, 1, 1>(g, [taps[q]], x, gy, r, n)[0][0];
                    }
                }
            }
            p += pair;
        }
        r0 += block;
    }
}

#[inline(always)]
fn weight_grad_block<T: Real, const R: usize, const P: usize>(
    g: &Geometry,
    taps: [usize; P],
    x: &[T],
    gy: &[T],
    r0: usize,
    n: usize,
) -> [[T; P]; R] {
    let mut acc = [[[T::default(); L]; P]; R];
    let mut tail = [[T::default(); P]; R];
    let full = g.b / L * L;
    for oi in 0..g.oh {
        for oj in 0..g.ow {
            // Checked slices on purpose: with unchecked loads LLVM vectorised across the rows
            // with gathers and scatters instead of across the batch lanes (measured: 4× slower).
            let pos = position_offset(g, oi, oj);
            let xruns: [&[T]; P] = std::array::from_fn(|q| &x[taps[q] + pos..][..g.b]);
            let ypos = (oi * g.ow + oj) * g.b;
            for b0 in (0..full).step_by(L) {
                let xv: [&[T; L]; P] = std::array::from_fn(|q| xruns[q][b0..b0 + L].try_into().expect("L values"));
                for (r, acc_r) in acc.iter_mut().enumerate() {
                    let dy: &[T; L] = gy[(r0 + r) * n + ypos + b0..][..L].try_into().expect("L values");
                    for (q, acc_rq) in acc_r.iter_mut().enumerate() {
                        for l in 0..L {
                            acc_rq[l] = dy[l].mul_add(xv[q][l], acc_rq[l]);
                        }
                    }
                }
            }
            for b in full..g.b {
                for (r, t) in tail.iter_mut().enumerate() {
                    for (q, tq) in t.iter_mut().enumerate() {
                        *tq = gy[(r0 + r) * n + ypos + b].mul_add(xruns[q][b], *tq);
                    }
                }
            }
        }
    }
    let mut out = [[T::default(); P]; R];
    for r in 0..R {
        for q in 0..P {
            out[r][q] = super::gemm::pairwise_sum(&mut acc[r][q]) + tail[r][q];
        }
    }
    out
}

/// `gx += patchesᵀ(w[out, K]ᵀ · gy)`: each input run gathers Σₒ w[o, tap]·gy[o, position].
/// The gradient runs of 8 output channels are loaded once per position and batch chunk and
/// serve every tap; the kernel is read transposed (`[K, out]`) so its 8 values are contiguous.
#[inline(never)]
pub fn input_grad<T: Real>(g: &Geometry, taps: &[usize], w: &[T], gy: &[T], wt: &mut [T], gx: &mut [T]) {
    let (k, out) = (g.k(), g.out);
    let wt = &mut wt[..k * out];
    for o in 0..out {
        for p in 0..k {
            wt[p * out + o] = w[o * k + p];
        }
    }
    if let (Some(wt), Some(gy), Some(gx)) = (as_f32(wt), as_f32(gy), as_f32_mut(gx))
        && super::simd::enabled()
    {
        return super::conv2d_simd::input_grad(g, taps, wt, gy, gx);
    }
    input_grad_generic(g, taps, wt, gy, gx)
}

/// The portable input gradient, from the transposed kernel `wt[K, out]`: the definition of
/// the SIMD kernel's results.
#[inline(never)]
pub fn input_grad_generic<T: Real>(g: &Geometry, taps: &[usize], wt: &[T], gy: &[T], gx: &mut [T]) {
    let (n, out) = (g.n(), g.out);
    check_input_grad(g, taps, wt.len(), gy.len(), gx.len());
    for oi in 0..g.oh {
        for oj in 0..g.ow {
            let base = position_offset(g, oi, oj);
            let ypos = (oi * g.ow + oj) * g.b;
            for (b0, width) in chunks(g.b) {
                let mut o0 = 0;
                while o0 < out {
                    let block = OB.min(out - o0);
                    if width == L && block == OB {
                        input_grad_block::<T, OB, L>(taps, wt, out, o0, gy, n, ypos + b0, gx, base + b0);
                    } else {
                        for o in o0..o0 + block {
                            for bb in b0..b0 + width {
                                input_grad_block::<T, 1, 1>(taps, wt, out, o, gy, n, ypos + bb, gx, base + bb);
                            }
                        }
                    }
                    o0 += block;
                }
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn input_grad_block<T: Real, const R: usize, const W: usize>(
    taps: &[usize],
    wt: &[T],
    out: usize,
    o0: usize,
    gy: &[T],
    n: usize,
    yoff: usize,
    gx: &mut [T],
    xoff: usize,
) {
    let dy: [[T; W]; R] = std::array::from_fn(|r| gy[(o0 + r) * n + yoff..][..W].try_into().expect("W values"));
    for (p, &tap) in taps.iter().enumerate() {
        let wv: &[T] = &wt[p * out + o0..p * out + o0 + R];
        let mut acc = [T::default(); W];
        for r in 0..R {
            for l in 0..W {
                acc[l] = wv[r].mul_add(dy[r][l], acc[l]);
            }
        }
        let dst = &mut gx[tap + xoff..tap + xoff + W];
        for l in 0..W {
            dst[l] += acc[l];
        }
    }
}

//! SIMD versions of `conv2d_direct`'s kernels for f32, chosen at run time (see `simd`),
//! written once over `lanes::Lanes` (AVX-512, AVX2).
//!
//! LLVM keeps the generic kernels' accumulator arrays on the stack (every FMA followed by a
//! store: measured 53% of a detect step in the weight gradient, ~15% of this core's AVX-512
//! peak). Here the accumulators are named registers. Each lane does the same operations in
//! the same order as the generic kernel (one FMA per position and batch lane, then the same
//! pairwise sum of the 16 lanes), so results are identical bit for bit on every tier — tested —
//! and a machine without either tier runs the generic kernel to the same numbers. Blocks are
//! sized per tier (`Lanes::WIDE`: AVX-512 has 32 registers of 16 lanes, AVX2 the room of 8).

// Register blocks are indexed by row, tap and lane on purpose: it mirrors the generic kernels.
#![allow(clippy::needless_range_loop)]

use super::conv2d::Geometry;

pub use super::simd::enabled;

/// `gw[rows, K] += gy[rows, OH·OW·B] · patches(x)ᵀ` for f32 (the bounds asserted as the
/// portable kernel asserts them); the caller checked [`enabled`].
pub fn weight_grad(g: &Geometry, taps: &[usize], x: &[f32], gy: &[f32], rows: usize, gw: &mut [f32]) {
    super::conv2d_direct::check_weight_grad(g, taps, x.len(), gy.len(), rows, gw.len());
    #[cfg(target_arch = "x86_64")]
    if kernels::tiled(g) {
        return super::simd::dispatch!(kernels, weight_grad_tiled(g, taps, x, gy, rows, gw));
    }
    super::simd::dispatch!(kernels, weight_grad(g, taps, x, gy, rows, gw))
}

/// `y[rows, OH, OW, B] = w[rows, K] · patches(x)` for f32 (see [`weight_grad`]).
pub fn forward(g: &Geometry, taps: &[usize], x: &[f32], w: &[f32], rows: usize, y: &mut [f32]) {
    super::conv2d_direct::check_forward(g, taps, x.len(), w.len(), rows, y.len());
    super::simd::dispatch!(kernels, forward(g, taps, x, w, rows, y))
}

/// `gx += patchesᵀ(w[out, K]ᵀ · gy)` for f32, with the generic kernel's blocks of 8 output
/// channels (their sum is formed before it is added: the blocking is part of the result).
///
/// Input channels are independent here (each has its own gradient plane), so with an idle
/// helper thread (see `helper`) and enough work, the second half of them runs there.
pub fn input_grad(g: &Geometry, taps: &[usize], wt: &[f32], gy: &[f32], gx: &mut [f32]) {
    super::conv2d_direct::check_input_grad(g, taps, wt.len(), gy.len(), gx.len());
    if g.c >= 2 && g.out * g.k() * g.n() >= super::conv2d_direct::MIN_SPLIT && super::helper::available() {
        let half = g.c / 2;
        let (gx0, gx1) = gx.split_at_mut(half * g.h * g.w * g.b);
        let shift = gx0.len();
        // Each half writes only its own channels' planes.
        return super::helper::join(
            || super::simd::dispatch!(kernels, input_grad(g, taps, 0..half, 0, wt, gy, gx0)),
            || super::simd::dispatch!(kernels, input_grad(g, taps, half..g.c, shift, wt, gy, gx1)),
        );
    }
    super::simd::dispatch!(kernels, input_grad(g, taps, 0..g.c, 0, wt, gy, gx))
}

#[cfg(target_arch = "x86_64")]
pub(super) mod kernels {
    use super::Geometry;
    use crate::engine::lanes::Lanes;

    const L: usize = 16;

    crate::engine::simd::tiered! {
        fn weight_grad(g: &Geometry, taps: &[usize], x: &[f32], gy: &[f32], rows: usize, gw: &mut [f32]);
        fn weight_grad_tiled(g: &Geometry, taps: &[usize], x: &[f32], gy: &[f32], rows: usize, gw: &mut [f32]);
        fn forward(g: &Geometry, taps: &[usize], x: &[f32], w: &[f32], rows: usize, y: &mut [f32]);
        fn input_grad(g: &Geometry, taps: &[usize], channels: std::ops::Range<usize>, shift: usize, wt: &[f32], gy: &[f32], gx: &mut [f32]);
    }

    /// Blocks of 4 kernel rows × 4 taps (AVX-512: 16 accumulators), or 2 × 2 (AVX2).
    #[inline(always)]
    unsafe fn weight_grad<V: Lanes>(g: &Geometry, taps: &[usize], x: &[f32], gy: &[f32], rows: usize, gw: &mut [f32]) {
        let k = g.k();
        let (rb, pb) = if V::WIDE { (4, 4) } else { (2, 2) };
        let mut r0 = 0;
        while r0 < rows {
            let mut p = 0;
            // SAFETY (every block): bounds asserted by the caller.
            if rows - r0 >= rb {
                while k - p >= pb {
                    unsafe {
                        if V::WIDE {
                            block::<V, 4, 4>(g, taps, p, x, gy, r0, gw)
                        } else {
                            block::<V, 2, 2>(g, taps, p, x, gy, r0, gw)
                        }
                    };
                    p += pb;
                }
                while p < k {
                    unsafe {
                        if V::WIDE {
                            block::<V, 4, 1>(g, taps, p, x, gy, r0, gw)
                        } else {
                            block::<V, 2, 1>(g, taps, p, x, gy, r0, gw)
                        }
                    };
                    p += 1;
                }
                r0 += rb;
            } else {
                while p < k {
                    unsafe { block::<V, 1, 1>(g, taps, p, x, gy, r0, gw) };
                    p += 1;
                }
                r0 += 1;
            }
        }
    }

    /// Whether the weight gradient is taken by [`weight_grad_tiled`].
    pub(super) fn tiled(g: &Geometry) -> bool {
        g.k() <= TILED_MAX_TAPS && 4 * g.n() * 4 > TILED_MIN_ROW_BYTES
    }

    /// Taps up to which [`weight_grad_tiled`]'s accumulators (4 rows × taps × 64 bytes) fit
    /// in 32 KB of stack.
    const TILED_MAX_TAPS: usize = 128;
    /// A block of 4 output rows' gradients larger than this (bytes) does not stay in L1.
    const TILED_MIN_ROW_BYTES: usize = 32 << 10;

    /// [`weight_grad`] for few taps and long output rows (the first convolution of the report's
    /// CNNs: 49 taps, 4 rows × 6 400 values = 100 KB): output row by output row, every tap
    /// block of a row block sweeps the same few KB of `gy` and `x` (in L1) with its
    /// accumulators saved between rows, where a sweep over all positions per tap block streamed
    /// `gy` from L2 thirteen times (~56% of peak). Each sum still runs over the positions in
    /// order, so the numbers are [`weight_grad`]'s. Tiles of 4 rows × 4–5 taps (AVX-512) or
    /// 2 × 2 (AVX2).
    #[inline(always)]
    unsafe fn weight_grad_tiled<V: Lanes>(
        g: &Geometry,
        taps: &[usize],
        x: &[f32],
        gy: &[f32],
        rows: usize,
        gw: &mut [f32],
    ) {
        let k = g.k();
        let mut acc = [V::zero(); 4 * TILED_MAX_TAPS];
        let mut tail = [0f32; 4 * TILED_MAX_TAPS];
        let rb = if V::WIDE { 4 } else { 2 };
        let mut r0 = 0;
        while r0 < rows {
            let r = if rows - r0 >= rb { rb } else { 1 };
            let (acc, tail) = (&mut acc[..r * k], &mut tail[..r * k]);
            acc.fill(V::zero());
            tail.fill(0.0);
            for oi in 0..g.oh {
                let mut p = 0;
                while p < k {
                    // SAFETY (each arm): bounds asserted by the caller; `acc` and `tail` hold r·k.
                    let step = unsafe {
                        match (V::WIDE, r, k - p) {
                            (true, 4, 5) => tile::<V, 4, 5>(g, taps, p, oi, x, gy, r0, acc, tail),
                            (true, 4, 4..) => tile::<V, 4, 4>(g, taps, p, oi, x, gy, r0, acc, tail),
                            (true, 4, _) => tile::<V, 4, 1>(g, taps, p, oi, x, gy, r0, acc, tail),
                            (true, _, 4..) => tile::<V, 1, 4>(g, taps, p, oi, x, gy, r0, acc, tail),
                            (false, 2, 2..) => tile::<V, 2, 2>(g, taps, p, oi, x, gy, r0, acc, tail),
                            (false, 2, _) => tile::<V, 2, 1>(g, taps, p, oi, x, gy, r0, acc, tail),
                            (false, _, 2..) => tile::<V, 1, 2>(g, taps, p, oi, x, gy, r0, acc, tail),
                            _ => tile::<V, 1, 1>(g, taps, p, oi, x, gy, r0, acc, tail),
                        }
                    };
                    p += step;
                }
            }
            for rr in 0..r {
                for q in 0..k {
                    let mut lanes = V::to_array(acc[rr * k + q]);
                    gw[(r0 + rr) * k + q] += crate::engine::gemm::pairwise_sum(&mut lanes) + tail[rr * k + q];
                }
            }
            r0 += r;
        }
    }

    /// `R` rows × `P` taps from `p` over output row `oi`, with the accumulators (index
    /// `row·k + tap` of `acc_all`, `tail_all`) loaded before and stored after; returns `P`.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    unsafe fn tile<V: Lanes, const R: usize, const P: usize>(
        g: &Geometry,
        taps: &[usize],
        p: usize,
        oi: usize,
        x: &[f32],
        gy: &[f32],
        r0: usize,
        acc_all: &mut [V],
        tail_all: &mut [f32],
    ) -> usize {
        let k = g.k();
        let mut acc = [[V::zero(); P]; R];
        let mut tail = [[0f32; P]; R];
        for r in 0..R {
            for q in 0..P {
                acc[r][q] = acc_all[r * k + p + q];
                tail[r][q] = tail_all[r * k + p + q];
            }
        }
        unsafe { output_rows::<V, R, P>(g, taps, p, oi..oi + 1, x, gy, r0, &mut acc, &mut tail) };
        for r in 0..R {
            for q in 0..P {
                acc_all[r * k + p + q] = acc[r][q];
                tail_all[r * k + p + q] = tail[r][q];
            }
        }
        P
    }

    /// The weight gradient's sums of `R` rows × `P` taps from `p` over the output rows `ois`,
    /// added into `acc` (16 batch lanes each) and `tail` (the batch beyond the last full chunk),
    /// one position after the other.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    unsafe fn output_rows<V: Lanes, const R: usize, const P: usize>(
        g: &Geometry,
        taps: &[usize],
        p: usize,
        ois: std::ops::Range<usize>,
        x: &[f32],
        gy: &[f32],
        r0: usize,
        acc: &mut [[V; P]; R],
        tail: &mut [[f32; P]; R],
    ) {
        let n = g.n();
        let full = g.b / L * L;
        let xp = x.as_ptr();
        let yp = gy.as_ptr();
        let mut tap = [0usize; P];
        for q in 0..P {
            tap[q] = taps[p + q];
        }
        // The sixteen-lane sums over every position, then (a loop of its own, so that its
        // scalars do not crowd the registers of the first) the batch beyond the last full
        // chunk: each sum still runs over the positions in order.
        for oi in ois.clone() {
            for oj in 0..g.ow {
                let pos = (oi * g.spec.stride * g.w + oj * g.spec.stride) * g.b;
                let ypos = (oi * g.ow + oj) * g.b;
                let mut b0 = 0;
                while b0 < full {
                    // SAFETY: every run read lies within the last tap's furthest run (asserted
                    // by the caller) and rows·n ≤ gy.len().
                    unsafe {
                        let mut xv = [V::zero(); P];
                        for q in 0..P {
                            xv[q] = V::load(xp.add(tap[q] + pos + b0));
                        }
                        for r in 0..R {
                            let dy = V::load(yp.add((r0 + r) * n + ypos + b0));
                            for q in 0..P {
                                acc[r][q] = V::fmadd(dy, xv[q], acc[r][q]);
                            }
                        }
                    }
                    b0 += L;
                }
            }
        }
        if full == g.b {
            return;
        }
        for oi in ois {
            for oj in 0..g.ow {
                let pos = (oi * g.spec.stride * g.w + oj * g.spec.stride) * g.b;
                let ypos = (oi * g.ow + oj) * g.b;
                for b in full..g.b {
                    for r in 0..R {
                        for q in 0..P {
                            tail[r][q] = gy[(r0 + r) * n + ypos + b].mul_add(x[tap[q] + pos + b], tail[r][q]);
                        }
                    }
                }
            }
        }
    }

    /// `R` kernel rows × `P` taps from `p`: R·P accumulators of 16 batch lanes each.
    #[inline(always)]
    unsafe fn block<V: Lanes, const R: usize, const P: usize>(
        g: &Geometry,
        taps: &[usize],
        p: usize,
        x: &[f32],
        gy: &[f32],
        r0: usize,
        gw: &mut [f32],
    ) {
        let k = g.k();
        let mut acc = [[V::zero(); P]; R];
        let mut tail = [[0f32; P]; R];
        unsafe { output_rows::<V, R, P>(g, taps, p, 0..g.oh, x, gy, r0, &mut acc, &mut tail) };
        for r in 0..R {
            for q in 0..P {
                let mut lanes = V::to_array(acc[r][q]);
                gw[(r0 + r) * k + p + q] += crate::engine::gemm::pairwise_sum(&mut lanes) + tail[r][q];
            }
        }
    }

    /// Forward blocks on AVX-512: 8 output channels × 2 chunks of 16 batch lanes where there
    /// are 8 channels (each input load serves 8 FMAs: conv2's 784-tap patches come from L2, and
    /// 4 × 4 blocks re-read them twice as often; measured), else 4 × 4, else 1 × 4. On AVX2:
    /// 4 × 1, else 1 × 2 (its registers hold 8 accumulators of 16 lanes).
    #[inline(always)]
    unsafe fn forward<V: Lanes>(g: &Geometry, taps: &[usize], x: &[f32], w: &[f32], rows: usize, y: &mut [f32]) {
        let n = g.n();
        let chunks = g.b / L;
        for oi in 0..g.oh {
            for oj in 0..g.ow {
                let base = (oi * g.spec.stride * g.w + oj * g.spec.stride) * g.b;
                let ypos = (oi * g.ow + oj) * g.b;
                let mut r0 = 0;
                while r0 < rows {
                    let block = match rows - r0 {
                        8.. if V::WIDE => 8,
                        4.. => 4,
                        _ => 1,
                    };
                    let r1 = r0 + block;
                    let wide = match (V::WIDE, block) {
                        (true, 8) => 2,
                        (true, _) => 4,
                        (false, 4) => 1,
                        (false, _) => 2,
                    };
                    let mut c = 0;
                    while c < chunks {
                        let step = if chunks - c >= wide { wide } else { 1 };
                        let (xo, yo) = (base + c * L, ypos + c * L);
                        // SAFETY: the caller asserted the furthest run and the kernel rows fit.
                        unsafe {
                            match (block, step) {
                                (8, 2) => fwd_block::<V, 8, 2>(taps, x, xo, w, r0, g.k(), y, n, yo),
                                (8, _) => fwd_block::<V, 8, 1>(taps, x, xo, w, r0, g.k(), y, n, yo),
                                (4, 4) => fwd_block::<V, 4, 4>(taps, x, xo, w, r0, g.k(), y, n, yo),
                                (4, _) => fwd_block::<V, 4, 1>(taps, x, xo, w, r0, g.k(), y, n, yo),
                                (_, 4) => fwd_block::<V, 1, 4>(taps, x, xo, w, r0, g.k(), y, n, yo),
                                (_, 2) => fwd_block::<V, 1, 2>(taps, x, xo, w, r0, g.k(), y, n, yo),
                                _ => fwd_block::<V, 1, 1>(taps, x, xo, w, r0, g.k(), y, n, yo),
                            }
                        }
                        c += step;
                    }
                    // Batch lanes beyond the last full chunk, one at a time, taps in order.
                    for b in chunks * L..g.b {
                        for r in r0..r1 {
                            let mut acc = 0f32;
                            for (p, &tap) in taps.iter().enumerate() {
                                acc = w[r * g.k() + p].mul_add(x[tap + base + b], acc);
                            }
                            y[r * n + ypos + b] = acc;
                        }
                    }
                    r0 = r1;
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    unsafe fn fwd_block<V: Lanes, const R: usize, const C: usize>(
        taps: &[usize],
        x: &[f32],
        xoff: usize,
        w: &[f32],
        r0: usize,
        k: usize,
        y: &mut [f32],
        n: usize,
        yoff: usize,
    ) {
        let mut acc = [[V::zero(); C]; R];
        let (xp, wp) = (x.as_ptr(), w.as_ptr());
        for (p, &tap) in taps.iter().enumerate() {
            // SAFETY: the caller asserted the furthest run and the kernel rows fit.
            unsafe {
                let mut xv = [V::zero(); C];
                for c in 0..C {
                    xv[c] = V::load(xp.add(tap + xoff + c * L));
                }
                for r in 0..R {
                    let wv = V::splat(*wp.add((r0 + r) * k + p));
                    for c in 0..C {
                        acc[r][c] = V::fmadd(wv, xv[c], acc[r][c]);
                    }
                }
            }
        }
        for r in 0..R {
            for c in 0..C {
                unsafe { V::store(y.as_mut_ptr().add((r0 + r) * n + yoff + c * L), acc[r][c]) };
            }
        }
    }

    /// Output channels per input-gradient block: the generic kernel's `OB`.
    const IB: usize = 8;
    /// Taps per input-gradient step: independent sums, interleaved to hide FMA latency.
    const IT: usize = 4;

    /// One input channel at a time (its gradient plane stays in L1 while every position adds
    /// into it; all channels per position streamed the whole input gradient through L2 once
    /// per position: ~58% of peak), blocks of 8 output channels × 2 batch chunks on AVX-512
    /// (each of the kernel's values, a broadcast load, serves two FMAs), × 1 on AVX2. Every
    /// input value still receives its sums position by position, blocks in order: the generic
    /// kernel's numbers. (For the input channels in `channels`, whose planes start at `gx[0]`,
    /// `shift` values into the whole input gradient.)
    #[inline(always)]
    unsafe fn input_grad<V: Lanes>(
        g: &Geometry,
        taps: &[usize],
        channels: std::ops::Range<usize>,
        shift: usize,
        wt: &[f32],
        gy: &[f32],
        gx: &mut [f32],
    ) {
        let per_channel = g.kh * g.kw;
        for c in channels {
            let range = c * per_channel..(c + 1) * per_channel;
            unsafe { input_grad_taps::<V>(g, taps, range, shift, wt, gy, gx) };
        }
    }

    /// [`input_grad`]'s sums for the taps in `range` (one input channel's).
    #[inline(always)]
    unsafe fn input_grad_taps<V: Lanes>(
        g: &Geometry,
        taps: &[usize],
        range: std::ops::Range<usize>,
        shift: usize,
        wt: &[f32],
        gy: &[f32],
        gx: &mut [f32],
    ) {
        let (n, out) = (g.n(), g.out);
        let chunks = g.b / L;
        let full = chunks * L;
        for oi in 0..g.oh {
            for oj in 0..g.ow {
                let base = (oi * g.spec.stride * g.w + oj * g.spec.stride) * g.b;
                let ypos = (oi * g.ow + oj) * g.b;
                let mut o0 = 0;
                while o0 < out {
                    if out - o0 >= IB {
                        let mut c = 0;
                        while c < chunks {
                            let (yo, xo) = (ypos + c * L, base + c * L);
                            // SAFETY: bounds asserted by the caller; taps of one position
                            // address distinct runs, so the read-modify-writes never overlap.
                            unsafe {
                                if V::WIDE && chunks - c >= 2 {
                                    ig_block::<V, 2>(taps, range.clone(), wt, out, o0, gy, n, yo, gx, xo, shift);
                                    c += 2;
                                } else {
                                    ig_block::<V, 1>(taps, range.clone(), wt, out, o0, gy, n, yo, gx, xo, shift);
                                    c += 1;
                                }
                            }
                        }
                        o0 += IB;
                    } else {
                        // A channel outside the blocks of 8 adds its own product.
                        for c in 0..chunks {
                            let b0 = c * L;
                            for p in range.clone() {
                                for l in 0..L {
                                    let v = wt[p * out + o0].mul_add(gy[o0 * n + ypos + b0 + l], 0.0);
                                    gx[taps[p] + base + b0 + l - shift] += v;
                                }
                            }
                        }
                        o0 += 1;
                    }
                }
                for b in full..g.b {
                    for o in 0..out {
                        for p in range.clone() {
                            gx[taps[p] + base + b - shift] += wt[p * out + o].mul_add(gy[o * n + ypos + b], 0.0);
                        }
                    }
                }
            }
        }
    }

    /// `IB` output channels × `C` chunks of one position: for each tap in `range`,
    /// `Σᵣ w[tap, o0+r]·dy[r]` from zero, then added into the tap's input run (at its offset
    /// less `shift` in `gx`).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    unsafe fn ig_block<V: Lanes, const C: usize>(
        taps: &[usize],
        range: std::ops::Range<usize>,
        wt: &[f32],
        out: usize,
        o0: usize,
        gy: &[f32],
        n: usize,
        yoff: usize,
        gx: &mut [f32],
        xoff: usize,
        shift: usize,
    ) {
        let (wp, yp, xp) = (wt.as_ptr(), gy.as_ptr(), gx.as_mut_ptr());
        // SAFETY: as for `input_grad`.
        unsafe {
            let mut dy = [[V::zero(); C]; IB];
            for r in 0..IB {
                for c in 0..C {
                    dy[r][c] = V::load(yp.add((o0 + r) * n + yoff + c * L));
                }
            }
            let (mut p, k) = (range.start, range.end);
            while p + IT <= k {
                ig_taps::<V, IT, C>(taps, p, wp, out, o0, &dy, xp, xoff, shift);
                p += IT;
            }
            while p < k {
                ig_taps::<V, 1, C>(taps, p, wp, out, o0, &dy, xp, xoff, shift);
                p += 1;
            }
        }
    }

    /// `T` taps from `p` of [`ig_block`]: each tap's `Σᵣ w[tap, o0+r]·dy[r]` from zero (the
    /// taps interleaved to hide FMA latency), then added into its input run.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    unsafe fn ig_taps<V: Lanes, const T: usize, const C: usize>(
        taps: &[usize],
        p: usize,
        wp: *const f32,
        out: usize,
        o0: usize,
        dy: &[[V; C]; IB],
        xp: *mut f32,
        xoff: usize,
        shift: usize,
    ) {
        let mut acc = [[V::zero(); C]; T];
        // SAFETY: as for `input_grad`.
        unsafe {
            for r in 0..IB {
                for t in 0..T {
                    let wv = V::splat(*wp.add((p + t) * out + o0 + r));
                    for c in 0..C {
                        acc[t][c] = V::fmadd(wv, dy[r][c], acc[t][c]);
                    }
                }
            }
            for t in 0..T {
                for c in 0..C {
                    let dst = xp.add(taps[p + t] - shift + xoff + c * L);
                    V::store(dst, V::add(V::load(dst), acc[t][c]));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::conv2d::{Conv2dSpec, geometry};
    use super::super::conv2d_direct as direct;
    use super::*;

    /// Every kernel equals the generic one bit for bit, over shapes that exercise each block
    /// and each remainder: batch not a multiple of 16, taps and rows not multiples of 4, out
    /// channels not a multiple of 8, stride 2.
    #[test]
    fn simd_kernels_equal_the_generic_ones_bit_for_bit() {
        for tier in crate::engine::simd::simd_tiers() {
            let _tier = crate::engine::simd::Forced::new(tier);
            equal_on_this_tier(tier);
        }
    }

    fn equal_on_this_tier(tier: crate::engine::simd::Tier) {
        let mut rng = crate::init::SeededRng::new(5);
        for &(c, hw, out, kk, b, stride) in &[
            (1, 16, 16, 7, 64, 1),
            (16, 10, 8, 7, 64, 1),
            (3, 9, 11, 3, 37, 1),
            (2, 11, 5, 3, 16, 2),
            (5, 6, 9, 2, 7, 1),
            (2, 8, 6, 3, 64, 1),  // a block of 4 channels × 4 chunks, then single channels
            (2, 14, 7, 3, 37, 1), // the row-tiled weight gradient: 7 rows, 18 taps, batch tail
            (1, 12, 5, 3, 48, 1), // the same with 9 taps (a block of 5) and no batch tail
        ] {
            let spec = Conv2dSpec { stride, padding: 0 };
            let (g, _) = geometry(1, &[1, c, hw, hw, b], &[1, out, c, kk, kk], None, spec).unwrap();
            let taps = direct::tap_offsets(&g);
            let mut r = |len: usize| -> Vec<f32> { (0..len).map(|_| rng.normal() as f32).collect() };
            let x = r(c * hw * hw * b);
            let w = r(out * g.k());
            let gy = r(out * g.n());
            let label = format!("{tier}: c {c} hw {hw} out {out} k {kk} b {b} stride {stride}");

            let (mut y1, mut y2) = (vec![0f32; out * g.n()], vec![0f32; out * g.n()]);
            forward(&g, &taps, &x, &w, out, &mut y1);
            direct::forward_generic(&g, &taps, &x, &w, out, &mut y2);
            assert_eq!(y1, y2, "forward, {label}");

            let start = r(out * g.k());
            let (mut gw1, mut gw2) = (start.clone(), start);
            weight_grad(&g, &taps, &x, &gy, out, &mut gw1);
            direct::weight_grad_generic(&g, &taps, &x, &gy, out, &mut gw2);
            assert_eq!(gw1, gw2, "weight gradient, {label}");

            let mut wt = vec![0f32; g.k() * out];
            for o in 0..out {
                for p in 0..g.k() {
                    wt[p * out + o] = w[o * g.k() + p];
                }
            }
            let start = r(x.len());
            let (mut gx1, mut gx2) = (start.clone(), start);
            input_grad(&g, &taps, &wt, &gy, &mut gx1);
            direct::input_grad_generic(&g, &taps, &wt, &gy, &mut gx2);
            assert_eq!(gx1, gx2, "input gradient, {label}");
            assert!(y1.iter().all(|v| v.is_finite()) && y1.iter().any(|&v| v != 0.0), "{label}");
        }
    }
}

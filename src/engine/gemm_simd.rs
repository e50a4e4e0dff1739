//! The SIMD versions of `gemm`'s register-blocked ("axpy") kernel and its dot kernel for f32,
//! chosen at run time (see `simd`), written once over `lanes::Lanes`.
//!
//! The portable kernel's blocks of 8 rows × 16 columns are compiled by LLVM to 256-bit
//! registers with every row of `B` re-loaded for each FMA: three loads per two FMAs, load-bound
//! (measured: half of an fc73 step, ~25% of peak). Here a block is 4 rows × up to 64 columns
//! (8 rows when `C` is sixteen columns wide) in named registers on AVX-512, 4 rows × 16 columns
//! on AVX2 (its 16 registers hold 8 such accumulators), each row of `B` loaded once per block.
//! Every element is still `Σₚ A[i,p]·B[p,j]` fused-multiply-added in order of `p` from zero,
//! then `+ beta·C` — the portable kernel's arithmetic — so results are identical bit for bit
//! (tested on tails of every width, on every tier). The dot-product kernel (`dW = dY·Xᵀ` with
//! few features) likewise keeps the portable kernel's sixteen lanes and their order.

// Register blocks are indexed by row and column chunk on purpose: it mirrors the portable kernel.
#![allow(clippy::needless_range_loop)]

/// `C ← A·B + beta·C` for `A` `m×k` (strides `sa`), `B` `k×n` and `C` `m×n` with contiguous
/// rows (row strides `ldb`, `ldc`); bounds are asserted as `gemm` asserts them. The caller
/// checked [`super::simd::enabled`].
#[allow(clippy::too_many_arguments)]
pub fn axpy(
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    sa: [usize; 2],
    b: &[f32],
    ldb: usize,
    beta: f32,
    c: &mut [f32],
    ldc: usize,
) {
    use super::gemm::extent;
    assert!(extent(m, k, sa) <= a.len(), "gemm_simd: A ({m}×{k}, strides {sa:?}) exceeds its buffer");
    assert!(extent(k, n, [ldb, 1]) <= b.len(), "gemm_simd: B ({k}×{n}, row stride {ldb}) exceeds its buffer");
    assert!(extent(m, n, [ldc, 1]) <= c.len(), "gemm_simd: C ({m}×{n}, row stride {ldc}) exceeds its buffer");
    super::simd::dispatch!(kernels, axpy(m, k, n, a, sa, b, ldb, beta, c, ldc))
}

/// `C[i,j] = A[i,:]·B[:,j] + beta·C[i,j]` with rows of `A` (stride `lda`) and columns of `B`
/// (stride `ldbt`) contiguous, as `gemm`'s dot kernel computes it: lane `l` of one register
/// sums the terms `p ≡ l mod 16` in order, the lanes are summed pairwise (halving), then the
/// tail. The caller checked [`super::simd::enabled`].
#[allow(clippy::too_many_arguments)]
pub fn dot(
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    lda: usize,
    b: &[f32],
    ldbt: usize,
    beta: f32,
    c: &mut [f32],
    sc: [usize; 2],
) {
    use super::gemm::extent;
    assert!(extent(m, k, [lda, 1]) <= a.len(), "gemm_simd: A ({m}×{k}, row stride {lda}) exceeds its buffer");
    assert!(extent(n, k, [ldbt, 1]) <= b.len(), "gemm_simd: Bᵀ ({n}×{k}, row stride {ldbt}) exceeds its buffer");
    assert!(extent(m, n, sc) <= c.len(), "gemm_simd: C ({m}×{n}, strides {sc:?}) exceeds its buffer");
    super::simd::dispatch!(kernels, dot(m, k, n, a, lda, b, ldbt, beta, c, sc))
}

#[cfg(target_arch = "x86_64")]
mod kernels {
    use crate::engine::lanes::Lanes;

    const L: usize = 16;

    crate::engine::simd::tiered! {
        fn axpy(m: usize, k: usize, n: usize, a: &[f32], sa: [usize; 2], b: &[f32], ldb: usize, beta: f32, c: &mut [f32], ldc: usize);
        fn dot(m: usize, k: usize, n: usize, a: &[f32], lda: usize, b: &[f32], ldbt: usize, beta: f32, c: &mut [f32], sc: [usize; 2]);
    }

    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    unsafe fn axpy<V: Lanes>(
        m: usize,
        k: usize,
        n: usize,
        a: &[f32],
        sa: [usize; 2],
        b: &[f32],
        ldb: usize,
        beta: f32,
        c: &mut [f32],
        ldc: usize,
    ) {
        let chunks = n.div_ceil(L);
        let mut i = 0;
        while i < m {
            // A band of rows, then its columns in blocks of up to 4 chunks (AVX2: 4 rows × 1
            // chunk or 1 row × 2: what its registers hold).
            let rows = match m - i {
                8.. if chunks == 1 && V::WIDE => 8,
                4.. => 4,
                _ => 1,
            };
            let widest = match (V::WIDE, rows) {
                (true, _) => 4,
                (false, 4) => 1,
                (false, _) => 2,
            };
            let mut q = 0;
            while q < chunks {
                let cols = (chunks - q).min(widest);
                let j0 = q * L;
                // SAFETY (all arms): the block's rows and columns lie inside the asserted bounds.
                unsafe {
                    match (rows, cols) {
                        (8, _) => block::<V, 8, 1>(i, j0, k, n, a, sa, b, ldb, beta, c, ldc),
                        (4, 4) => block::<V, 4, 4>(i, j0, k, n, a, sa, b, ldb, beta, c, ldc),
                        (4, 3) => block::<V, 4, 3>(i, j0, k, n, a, sa, b, ldb, beta, c, ldc),
                        (4, 2) => block::<V, 4, 2>(i, j0, k, n, a, sa, b, ldb, beta, c, ldc),
                        (4, _) => block::<V, 4, 1>(i, j0, k, n, a, sa, b, ldb, beta, c, ldc),
                        (_, 4) => block::<V, 1, 4>(i, j0, k, n, a, sa, b, ldb, beta, c, ldc),
                        (_, 3) => block::<V, 1, 3>(i, j0, k, n, a, sa, b, ldb, beta, c, ldc),
                        (_, 2) => block::<V, 1, 2>(i, j0, k, n, a, sa, b, ldb, beta, c, ldc),
                        _ => block::<V, 1, 1>(i, j0, k, n, a, sa, b, ldb, beta, c, ldc),
                    }
                }
                q += cols;
            }
            i += rows;
        }
    }

    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    unsafe fn dot<V: Lanes>(
        m: usize,
        k: usize,
        n: usize,
        a: &[f32],
        lda: usize,
        b: &[f32],
        ldbt: usize,
        beta: f32,
        c: &mut [f32],
        sc: [usize; 2],
    ) {
        let full = k / L * L;
        let (ap, bp) = (a.as_ptr(), b.as_ptr());
        for j in 0..n {
            for i in 0..m {
                let mut acc = V::zero();
                let mut p0 = 0;
                while p0 < full {
                    // SAFETY: p0 + 16 ≤ k inside row i of A and column j of B.
                    unsafe { acc = V::fmadd(V::load(ap.add(i * lda + p0)), V::load(bp.add(j * ldbt + p0)), acc) };
                    p0 += L;
                }
                let mut sum = V::pairwise(acc);
                for p in full..k {
                    sum = a[i * lda + p].mul_add(b[j * ldbt + p], sum);
                }
                let at = &mut c[i * sc[0] + j * sc[1]];
                *at = if beta == 0.0 { sum } else { sum + beta * *at };
            }
        }
    }

    /// `R` rows × `C` chunks of 16 columns from row `i`, column `j0` (the last chunk cut at `n`).
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    unsafe fn block<V: Lanes, const R: usize, const C: usize>(
        i: usize,
        j0: usize,
        k: usize,
        n: usize,
        a: &[f32],
        sa: [usize; 2],
        b: &[f32],
        ldb: usize,
        beta: f32,
        c: &mut [f32],
        ldc: usize,
    ) {
        let mut width = [L; C];
        for q in 0..C {
            width[q] = (n - (j0 + q * L)).min(L);
        }
        let last = width[C - 1];
        let mut acc = [[V::zero(); C]; R];
        let (ap, bp, cp) = (a.as_ptr(), b.as_ptr(), c.as_mut_ptr());
        for p in 0..k {
            // SAFETY: rows i..i+R, columns j0.. below n (the last chunk cut), p < k: inside the bounds.
            unsafe {
                let mut bv = [V::zero(); C];
                for q in 0..C {
                    let at = bp.add(p * ldb + j0 + q * L);
                    bv[q] = if q + 1 < C || last == L { V::load(at) } else { V::load_first(last, at) };
                }
                for r in 0..R {
                    let av = V::splat(*ap.add((i + r) * sa[0] + p * sa[1]));
                    for q in 0..C {
                        acc[r][q] = V::fmadd(av, bv[q], acc[r][q]);
                    }
                }
            }
        }
        let bz = beta == 0.0;
        let bb = V::splat(beta);
        for r in 0..R {
            for q in 0..C {
                // SAFETY: as above.
                unsafe {
                    let at = cp.add((i + r) * ldc + j0 + q * L);
                    let w = width[q];
                    let v = if bz {
                        acc[r][q]
                    } else {
                        let old = if w == L { V::load(at) } else { V::load_first(w, at) };
                        V::add(acc[r][q], V::mul(bb, old))
                    };
                    if w == L { V::store(at, v) } else { V::store_first(w, at, v) }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::gemm::{axpy_portable, dot_portable};
    use super::super::simd;

    /// A generator of `len` pseudo-random values in [−1.5, 1.5) (an LCG: reproducible, no crate).
    fn values(mut seed: u64) -> impl FnMut(usize) -> Vec<f32> {
        move |len| {
            (0..len)
                .map(|_| {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    ((seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 3.0
                })
                .collect()
        }
    }

    /// Every length (full registers and tails), strides and beta: equal bit for bit to the
    /// portable dot kernel.
    #[test]
    fn dot_equals_the_portable_kernel_bit_for_bit() {
        for tier in simd::simd_tiers() {
            let _tier = simd::Forced::new(tier);
            dot_on_this_tier(tier);
        }
    }

    fn dot_on_this_tier(tier: simd::Tier) {
        let mut r = values(11);
        for m in [1usize, 4, 9] {
            for n in [1usize, 4, 17] {
                for k in [0usize, 1, 15, 16, 17, 64, 100] {
                    for beta in [0.0f32, 1.0, 0.5] {
                        let (lda, ldbt) = (k + 2, k + 1);
                        let (a, b) = (r(m * lda), r(n * ldbt));
                        let sc = [n + 1, 1];
                        let c0 = r(m * (n + 1));
                        let mut want = c0.clone();
                        dot_portable(m, k, n, &a, lda, &b, ldbt, beta, &mut want, sc);
                        let mut got = c0.clone();
                        super::dot(m, k, n, &a, lda, &b, ldbt, beta, &mut got, sc);
                        let same = got.iter().zip(&want).all(|(g, w)| g.to_bits() == w.to_bits());
                        assert!(same, "{tier}: m {m} n {n} k {k} beta {beta}");
                    }
                }
            }
        }
    }

    /// Every block shape and tail: equal bit for bit to the portable kernel.
    #[test]
    fn equals_the_portable_kernel_bit_for_bit() {
        for tier in simd::simd_tiers() {
            let _tier = simd::Forced::new(tier);
            axpy_on_this_tier(tier);
        }
    }

    fn axpy_on_this_tier(tier: simd::Tier) {
        let mut r = values(7);
        for m in [1usize, 3, 4, 5, 8, 9, 13, 128] {
            for n in [1usize, 7, 16, 17, 33, 48, 64, 65, 100] {
                for k in [0usize, 1, 4, 16, 64] {
                    for trans_a in [false, true] {
                        for beta in [0.0f32, 1.0, 0.5] {
                            let a = r(m * k);
                            let sa = if trans_a { [1, m] } else { [k, 1] };
                            let (ldb, ldc) = (n + 3, n + 1);
                            let b = r(k * ldb);
                            let c0 = r(m * ldc);
                            let mut want = c0.clone();
                            axpy_portable(m, k, n, &a, sa, &b, ldb, beta, &mut want, ldc);
                            let mut got = c0.clone();
                            super::axpy(m, k, n, &a, sa, &b, ldb, beta, &mut got, ldc);
                            let same = got.iter().zip(&want).all(|(g, w)| g.to_bits() == w.to_bits());
                            assert!(same, "{tier}: m {m} n {n} k {k} trans_a {trans_a} beta {beta}");
                        }
                    }
                }
            }
        }
    }
}

//! The AVX-512 version of `gemm`'s register-blocked ("axpy") kernel for f32, chosen at run time.
//!
//! The portable kernel's blocks of 8 rows × 16 columns are compiled by LLVM to 256-bit
//! registers with every row of `B` re-loaded for each FMA: three loads per two FMAs, load-bound
//! (measured: half of an fc73 step, ~25% of peak). Here a block is 4 rows × up to 64 columns
//! (8 rows when `C` is one register wide) in named 512-bit registers, each row of `B` loaded
//! once per block. Every element is still `Σₚ A[i,p]·B[p,j]` fused-multiply-added in order of
//! `p` from zero, then `+ beta·C` — the portable kernel's arithmetic — so results are identical
//! bit for bit (tested on tails of every width); see `simd` for the switch. The dot-product
//! kernel (`dW = dY·Xᵀ` with few features) likewise keeps the portable lanes and their order.

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
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `enabled()` (checked by the caller) detected AVX-512F; bounds were asserted.
    unsafe {
        avx512::axpy(m, k, n, a, sa, b, ldb, beta, c, ldc)
    }
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!("enabled() is false off x86-64: {m} {k} {n} {a:?} {sa:?} {b:?} {ldb} {beta} {c:?} {ldc}")
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
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `enabled()` (checked by the caller) detected AVX-512F; bounds were asserted.
    unsafe {
        avx512::dot(m, k, n, a, lda, b, ldbt, beta, c, sc)
    }
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!("enabled() is false off x86-64: {m} {k} {n} {a:?} {lda} {b:?} {ldbt} {beta} {c:?} {sc:?}")
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx512 {
    use std::arch::x86_64::*;

    const L: usize = 16;

    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn axpy(
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
            // A band of rows, then its columns in blocks of up to 4 chunks.
            let rows = match m - i {
                8.. if chunks == 1 => 8,
                4.. => 4,
                _ => 1,
            };
            let mut q = 0;
            while q < chunks {
                let cols = (chunks - q).min(4);
                let j0 = q * L;
                // SAFETY (all arms): the block's rows and columns lie inside the asserted bounds.
                unsafe {
                    match (rows, cols) {
                        (8, _) => block::<8, 1>(i, j0, k, n, a, sa, b, ldb, beta, c, ldc),
                        (4, 4) => block::<4, 4>(i, j0, k, n, a, sa, b, ldb, beta, c, ldc),
                        (4, 3) => block::<4, 3>(i, j0, k, n, a, sa, b, ldb, beta, c, ldc),
                        (4, 2) => block::<4, 2>(i, j0, k, n, a, sa, b, ldb, beta, c, ldc),
                        (4, _) => block::<4, 1>(i, j0, k, n, a, sa, b, ldb, beta, c, ldc),
                        (_, 4) => block::<1, 4>(i, j0, k, n, a, sa, b, ldb, beta, c, ldc),
                        (_, 3) => block::<1, 3>(i, j0, k, n, a, sa, b, ldb, beta, c, ldc),
                        (_, 2) => block::<1, 2>(i, j0, k, n, a, sa, b, ldb, beta, c, ldc),
                        _ => block::<1, 1>(i, j0, k, n, a, sa, b, ldb, beta, c, ldc),
                    }
                }
                q += cols;
            }
            i += rows;
        }
    }

    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn dot(
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
                let mut acc = _mm512_setzero_ps();
                let mut p0 = 0;
                while p0 < full {
                    // SAFETY: p0 + 16 ≤ k inside row i of A and column j of B.
                    unsafe {
                        acc = _mm512_fmadd_ps(
                            _mm512_loadu_ps(ap.add(i * lda + p0)),
                            _mm512_loadu_ps(bp.add(j * ldbt + p0)),
                            acc,
                        );
                    }
                    p0 += L;
                }
                let mut sum = pairwise(acc);
                for p in full..k {
                    sum = a[i * lda + p].mul_add(b[j * ldbt + p], sum);
                }
                let at = &mut c[i * sc[0] + j * sc[1]];
                *at = if beta == 0.0 { sum } else { sum + beta * *at };
            }
        }
    }

    /// `gemm::pairwise_sum` of the 16 lanes: halves added as 8, 4, 2, then 1 lanes.
    #[target_feature(enable = "avx512f")]
    #[inline]
    pub(crate) fn pairwise(v: __m512) -> f32 {
        let h8 = _mm256_add_ps(
            _mm512_castps512_ps256(v),
            _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(v))),
        );
        let h4 = _mm_add_ps(_mm256_castps256_ps128(h8), _mm256_extractf128_ps::<1>(h8));
        let h2 = _mm_add_ps(h4, _mm_movehl_ps(h4, h4));
        let h1 = _mm_add_ss(h2, _mm_shuffle_ps::<0b01>(h2, h2));
        _mm_cvtss_f32(h1)
    }

    /// `R` rows × `C` chunks of 16 columns from row `i`, column `j0` (the last chunk masked at `n`).
    #[target_feature(enable = "avx512f")]
    #[inline]
    #[allow(clippy::too_many_arguments)]
    unsafe fn block<const R: usize, const C: usize>(
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
        let masks: [__mmask16; C] = std::array::from_fn(|q| {
            let left = n - (j0 + q * L);
            if left >= L { 0xffff } else { ((1u32 << left) - 1) as __mmask16 }
        });
        let mut acc = [[_mm512_setzero_ps(); C]; R];
        let (ap, bp, cp) = (a.as_ptr(), b.as_ptr(), c.as_mut_ptr());
        for p in 0..k {
            // SAFETY: rows i..i+R, columns j0.. below n (masked), p < k: inside the bounds.
            unsafe {
                let bv: [__m512; C] =
                    std::array::from_fn(|q| _mm512_maskz_loadu_ps(masks[q], bp.add(p * ldb + j0 + q * L)));
                for r in 0..R {
                    let av = _mm512_set1_ps(*ap.add((i + r) * sa[0] + p * sa[1]));
                    for q in 0..C {
                        acc[r][q] = _mm512_fmadd_ps(av, bv[q], acc[r][q]);
                    }
                }
            }
        }
        let bz = beta == 0.0;
        let bb = _mm512_set1_ps(beta);
        for r in 0..R {
            for q in 0..C {
                // SAFETY: as above.
                unsafe {
                    let at = cp.add((i + r) * ldc + j0 + q * L);
                    let v = if bz {
                        acc[r][q]
                    } else {
                        _mm512_add_ps(acc[r][q], _mm512_mul_ps(bb, _mm512_maskz_loadu_ps(masks[q], at)))
                    };
                    _mm512_mask_storeu_ps(at, masks[q], v);
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
        if !simd::enabled() {
            eprintln!("skipped: no AVX-512 on this machine");
            return;
        }
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
                        assert!(same, "m {m} n {n} k {k} beta {beta}");
                    }
                }
            }
        }
    }

    /// Every block shape and tail: equal bit for bit to the portable kernel.
    #[test]
    fn equals_the_portable_kernel_bit_for_bit() {
        if !simd::enabled() {
            eprintln!("skipped: no AVX-512 on this machine");
            return;
        }
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
                            assert!(same, "m {m} n {n} k {k} trans_a {trans_a} beta {beta}");
                        }
                    }
                }
            }
        }
    }
}

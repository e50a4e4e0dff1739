//! Sixteen f32 lanes as the SIMD kernels see them: one AVX-512 register ([`Avx512`]) or two
//! AVX2 registers ([`Avx2`]). Every kernel in `gemm_simd`, `conv2d_simd`, `activation_simd`,
//! `loss_simd` and `fused_mlp` is written once, generic over [`Lanes`], and instantiated per
//! tier inside a `#[target_feature]` function (see `simd::tier`).
//!
//! Why sixteen lanes on both tiers: the portable kernels define their reductions over sixteen
//! lanes (`gemm::pairwise_sum`), so a kernel that keeps sixteen logical lanes does the same
//! operations in the same order on either tier — identical bits — and the AVX2 tier costs no
//! second copy of any kernel. Where a kernel holds many registers, it asks [`Lanes::WIDE`]
//! (32 registers of 16 lanes, or 8) to choose a smaller block; blocks change no number.
//!
//! Every method is `#[inline(always)]`, and kernels call them only from functions compiled with
//! the tier's features (never from a closure): the intrinsics then inline into the kernel.
//! A NEON tier (aarch64) would be one more implementation of this trait.

#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::*;

/// Sixteen f32 lanes and the operations the kernels use, each as its scalar counterpart lane by
/// lane (IEEE, round to nearest, the thread's MXCSR: flushed subnormals flush alike on both tiers).
///
/// # Safety
/// Implementations may only be used where the CPU has their features (checked by `simd::tier`).
pub(crate) unsafe trait Lanes: Copy {
    /// A lane mask, from a comparison.
    type Mask: Copy;
    /// Eight f64 lanes, for sums kept in f64.
    type F64: Copy;
    /// 32 registers of sixteen lanes (AVX-512), rather than 8 (AVX2: 16 registers of eight).
    const WIDE: bool;

    fn zero() -> Self;
    fn splat(v: f32) -> Self;
    /// # Safety
    /// `p..p + 16` readable.
    unsafe fn load(p: *const f32) -> Self;
    /// # Safety
    /// `p..p + 16` writable.
    unsafe fn store(p: *mut f32, v: Self);
    /// The first `n` (< 16) lanes from `p`, the rest zero.
    /// # Safety
    /// `p..p + n` readable.
    unsafe fn load_first(n: usize, p: *const f32) -> Self;
    /// The first `n` (< 16) lanes to `p`.
    /// # Safety
    /// `p..p + n` writable.
    unsafe fn store_first(n: usize, p: *mut f32, v: Self);
    fn add(a: Self, b: Self) -> Self;
    fn sub(a: Self, b: Self) -> Self;
    fn mul(a: Self, b: Self) -> Self;
    fn div(a: Self, b: Self) -> Self;
    /// `a·b + c`, rounded once (`f32::mul_add`).
    fn fmadd(a: Self, b: Self, c: Self) -> Self;
    /// x86's `minps`: the second operand where either is NaN.
    fn min(a: Self, b: Self) -> Self;
    /// x86's `maxps`: the second operand where either is NaN.
    fn max(a: Self, b: Self) -> Self;
    fn abs(a: Self) -> Self;
    fn neg(a: Self) -> Self;
    /// `f32::copysign`: `v`'s magnitude with `s`'s sign.
    fn copysign(v: Self, s: Self) -> Self;
    /// `a > b` (ordered: false for NaN).
    fn gt(a: Self, b: Self) -> Self::Mask;
    /// `a < b` (ordered).
    fn lt(a: Self, b: Self) -> Self::Mask;
    /// `a == b` (ordered).
    fn eq(a: Self, b: Self) -> Self::Mask;
    /// `m ? b : a` lane by lane (the argument order of `_mm512_mask_blend_ps`).
    fn blend(m: Self::Mask, a: Self, b: Self) -> Self;
    /// `y·2ⁿ` for integral `n` in [−150, 128] as `fastmath::exp_f32` forms it: `(y·2^⌊n/2⌋)·2^(n−⌊n/2⌋)`,
    /// whose first product is exact for the `y` of exp (so one rounding; AVX-512's `scalef`).
    fn scale_pow2(y: Self, n: Self) -> Self;
    /// `u = m·2ᵉ` with `m` in [0.5, 1) read off the bits of a positive normal `u`: `(e, m)`,
    /// `e` as a float (for other `u`, what the same bit operations give).
    fn frexp(u: Self) -> (Self, Self);
    /// `gemm::pairwise_sum` of the sixteen lanes: halves of 8, 4, 2, then 1 lanes added.
    fn pairwise(v: Self) -> f32;
    /// [`Lanes::pairwise`] of four registers.
    fn pairwise4(v: [Self; 4]) -> [f32; 4];
    fn to_array(v: Self) -> [f32; 16] {
        let mut out = [0f32; 16];
        // SAFETY: 16 floats.
        unsafe { Self::store(out.as_mut_ptr(), v) };
        out
    }
    fn zero_f64() -> Self::F64;
    /// `acc[l] += v[l]`, then `acc[l] += v[8 + l]`, in f64 (`loss::sum_f64`'s order).
    fn add_f64_halves(acc: Self::F64, v: Self) -> Self::F64;
    /// `gemm::pairwise_sum` of the eight f64 lanes.
    fn pairwise_f64(acc: Self::F64) -> f64;
}

/// One AVX-512 register.
#[derive(Clone, Copy)]
pub(crate) struct Avx512(__m512);

// SAFETY: used only where `simd::tier()` found AVX-512F (every method needs only AVX-512F).
unsafe impl Lanes for Avx512 {
    type Mask = __mmask16;
    type F64 = __m512d;
    const WIDE: bool = true;

    #[inline(always)]
    fn zero() -> Self {
        Avx512(unsafe { _mm512_setzero_ps() })
    }
    #[inline(always)]
    fn splat(v: f32) -> Self {
        Avx512(unsafe { _mm512_set1_ps(v) })
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        Avx512(unsafe { _mm512_loadu_ps(p) })
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: Self) {
        unsafe { _mm512_storeu_ps(p, v.0) }
    }
    #[inline(always)]
    unsafe fn load_first(n: usize, p: *const f32) -> Self {
        Avx512(unsafe { _mm512_maskz_loadu_ps(((1u32 << n) - 1) as __mmask16, p) })
    }
    #[inline(always)]
    unsafe fn store_first(n: usize, p: *mut f32, v: Self) {
        unsafe { _mm512_mask_storeu_ps(p, ((1u32 << n) - 1) as __mmask16, v.0) }
    }
    #[inline(always)]
    fn add(a: Self, b: Self) -> Self {
        Avx512(unsafe { _mm512_add_ps(a.0, b.0) })
    }
    #[inline(always)]
    fn sub(a: Self, b: Self) -> Self {
        Avx512(unsafe { _mm512_sub_ps(a.0, b.0) })
    }
    #[inline(always)]
    fn mul(a: Self, b: Self) -> Self {
        Avx512(unsafe { _mm512_mul_ps(a.0, b.0) })
    }
    #[inline(always)]
    fn div(a: Self, b: Self) -> Self {
        Avx512(unsafe { _mm512_div_ps(a.0, b.0) })
    }
    #[inline(always)]
    fn fmadd(a: Self, b: Self, c: Self) -> Self {
        Avx512(unsafe { _mm512_fmadd_ps(a.0, b.0, c.0) })
    }
    #[inline(always)]
    fn min(a: Self, b: Self) -> Self {
        Avx512(unsafe { _mm512_min_ps(a.0, b.0) })
    }
    #[inline(always)]
    fn max(a: Self, b: Self) -> Self {
        Avx512(unsafe { _mm512_max_ps(a.0, b.0) })
    }
    #[inline(always)]
    fn abs(a: Self) -> Self {
        Avx512(unsafe {
            _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(a.0), _mm512_set1_epi32(0x7fff_ffff)))
        })
    }
    #[inline(always)]
    fn neg(a: Self) -> Self {
        Avx512(unsafe { _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(a.0), _mm512_set1_epi32(i32::MIN))) })
    }
    #[inline(always)]
    fn copysign(v: Self, s: Self) -> Self {
        // SAFETY: AVX-512F (the trait's contract).
        unsafe {
            let sign = _mm512_set1_epi32(i32::MIN);
            Avx512(_mm512_castsi512_ps(_mm512_or_si512(
                _mm512_andnot_si512(sign, _mm512_castps_si512(v.0)),
                _mm512_and_si512(sign, _mm512_castps_si512(s.0)),
            )))
        }
    }
    #[inline(always)]
    fn gt(a: Self, b: Self) -> __mmask16 {
        unsafe { _mm512_cmp_ps_mask::<_CMP_GT_OQ>(a.0, b.0) }
    }
    #[inline(always)]
    fn lt(a: Self, b: Self) -> __mmask16 {
        unsafe { _mm512_cmp_ps_mask::<_CMP_LT_OQ>(a.0, b.0) }
    }
    #[inline(always)]
    fn eq(a: Self, b: Self) -> __mmask16 {
        unsafe { _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(a.0, b.0) }
    }
    #[inline(always)]
    fn blend(m: __mmask16, a: Self, b: Self) -> Self {
        Avx512(unsafe { _mm512_mask_blend_ps(m, a.0, b.0) })
    }
    #[inline(always)]
    fn scale_pow2(y: Self, n: Self) -> Self {
        // One rounding of y·2ⁿ, also where it is subnormal or flushed: equal to the portable
        // two products (tested both ways in `activation_simd`).
        Avx512(unsafe { _mm512_scalef_ps(y.0, n.0) })
    }
    #[inline(always)]
    fn frexp(u: Self) -> (Self, Self) {
        // SAFETY: AVX-512F.
        unsafe {
            let bits = _mm512_castps_si512(u.0);
            let e = _mm512_sub_epi32(
                _mm512_and_si512(_mm512_srli_epi32::<23>(bits), _mm512_set1_epi32(0xff)),
                _mm512_set1_epi32(126),
            );
            let m = _mm512_castsi512_ps(_mm512_or_si512(
                _mm512_and_si512(bits, _mm512_set1_epi32(0x007f_ffff)),
                _mm512_set1_epi32(0x3f00_0000),
            ));
            (Avx512(_mm512_cvtepi32_ps(e)), Avx512(m))
        }
    }
    #[inline(always)]
    fn pairwise(v: Self) -> f32 {
        // SAFETY: AVX-512F (and the SSE/AVX it implies).
        unsafe {
            let v = v.0;
            let h8 = _mm256_add_ps(
                _mm512_castps512_ps256(v),
                _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(v))),
            );
            pairwise8(h8)
        }
    }
    #[inline(always)]
    fn pairwise4(v: [Self; 4]) -> [f32; 4] {
        // SAFETY: AVX-512F.
        unsafe {
            let (h01, h23) = (halves512(v[0].0, v[1].0), halves512(v[2].0, v[3].0));
            // Lanes l and l + 4 of each 8: quarters 0, 2 of h01 and h23 against quarters 1, 3.
            let q = _mm512_add_ps(
                _mm512_shuffle_f32x4::<0b10_00_10_00>(h01, h23),
                _mm512_shuffle_f32x4::<0b11_01_11_01>(h01, h23),
            );
            // Then l and l + 2, then l and l + 1, within each quarter (one register's sum each).
            let p = _mm512_add_ps(q, _mm512_shuffle_ps::<0b11_10_11_10>(q, q));
            let s = _mm512_add_ps(p, _mm512_shuffle_ps::<0b01_01_01_01>(p, p));
            let lanes = Self::to_array(Avx512(s));
            [lanes[0], lanes[4], lanes[8], lanes[12]]
        }
    }
    #[inline(always)]
    fn zero_f64() -> __m512d {
        unsafe { _mm512_setzero_pd() }
    }
    #[inline(always)]
    fn add_f64_halves(acc: __m512d, v: Self) -> __m512d {
        // SAFETY: AVX-512F.
        unsafe {
            let lo = _mm512_cvtps_pd(_mm512_castps512_ps256(v.0));
            let hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(v.0))));
            _mm512_add_pd(_mm512_add_pd(acc, lo), hi)
        }
    }
    #[inline(always)]
    fn pairwise_f64(acc: __m512d) -> f64 {
        // SAFETY: AVX-512F.
        unsafe { pairwise4_f64(_mm256_add_pd(_mm512_castpd512_pd256(acc), _mm512_extractf64x4_pd::<1>(acc))) }
    }
}

/// Eight lanes summed as halves of 4, 2, then 1 (SSE/AVX, implied by both tiers).
#[inline(always)]
unsafe fn pairwise8(h8: __m256) -> f32 {
    unsafe {
        let h4 = _mm_add_ps(_mm256_castps256_ps128(h8), _mm256_extractf128_ps::<1>(h8));
        let h2 = _mm_add_ps(h4, _mm_movehl_ps(h4, h4));
        let h1 = _mm_add_ss(h2, _mm_shuffle_ps::<0b01>(h2, h2));
        _mm_cvtss_f32(h1)
    }
}

/// Four f64 lanes summed as halves of 2, then 1.
#[inline(always)]
unsafe fn pairwise4_f64(h4: __m256d) -> f64 {
    unsafe {
        let h2 = _mm_add_pd(_mm256_castpd256_pd128(h4), _mm256_extractf128_pd::<1>(h4));
        let h1 = _mm_add_sd(h2, _mm_unpackhi_pd(h2, h2));
        _mm_cvtsd_f64(h1)
    }
}

/// Two AVX2 registers: lanes 0–7, then 8–15.
#[derive(Clone, Copy)]
pub(crate) struct Avx2(__m256, __m256);

impl Avx2 {
    /// Integer masks of the first `n` lanes of each half (all-ones where loaded).
    #[inline(always)]
    fn first(n: usize) -> (__m256i, __m256i) {
        // SAFETY: AVX2 (the trait's contract).
        unsafe {
            let idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
            let n = n as i32;
            (_mm256_cmpgt_epi32(_mm256_set1_epi32(n), idx), _mm256_cmpgt_epi32(_mm256_set1_epi32(n - 8), idx))
        }
    }
}

// SAFETY: used only where `simd::tier()` found AVX2 and FMA.
unsafe impl Lanes for Avx2 {
    type Mask = (__m256, __m256);
    type F64 = (__m256d, __m256d);
    const WIDE: bool = false;

    #[inline(always)]
    fn zero() -> Self {
        unsafe { Avx2(_mm256_setzero_ps(), _mm256_setzero_ps()) }
    }
    #[inline(always)]
    fn splat(v: f32) -> Self {
        unsafe {
            let s = _mm256_set1_ps(v);
            Avx2(s, s)
        }
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        unsafe { Avx2(_mm256_loadu_ps(p), _mm256_loadu_ps(p.add(8))) }
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: Self) {
        unsafe {
            _mm256_storeu_ps(p, v.0);
            _mm256_storeu_ps(p.add(8), v.1);
        }
    }
    #[inline(always)]
    unsafe fn load_first(n: usize, p: *const f32) -> Self {
        // Masked-off lanes are neither read nor able to fault (vmaskmovps).
        let (m0, m1) = Self::first(n);
        unsafe { Avx2(_mm256_maskload_ps(p, m0), _mm256_maskload_ps(p.wrapping_add(8), m1)) }
    }
    #[inline(always)]
    unsafe fn store_first(n: usize, p: *mut f32, v: Self) {
        let (m0, m1) = Self::first(n);
        unsafe {
            _mm256_maskstore_ps(p, m0, v.0);
            _mm256_maskstore_ps(p.wrapping_add(8), m1, v.1);
        }
    }
    #[inline(always)]
    fn add(a: Self, b: Self) -> Self {
        unsafe { Avx2(_mm256_add_ps(a.0, b.0), _mm256_add_ps(a.1, b.1)) }
    }
    #[inline(always)]
    fn sub(a: Self, b: Self) -> Self {
        unsafe { Avx2(_mm256_sub_ps(a.0, b.0), _mm256_sub_ps(a.1, b.1)) }
    }
    #[inline(always)]
    fn mul(a: Self, b: Self) -> Self {
        unsafe { Avx2(_mm256_mul_ps(a.0, b.0), _mm256_mul_ps(a.1, b.1)) }
    }
    #[inline(always)]
    fn div(a: Self, b: Self) -> Self {
        unsafe { Avx2(_mm256_div_ps(a.0, b.0), _mm256_div_ps(a.1, b.1)) }
    }
    #[inline(always)]
    fn fmadd(a: Self, b: Self, c: Self) -> Self {
        unsafe { Avx2(_mm256_fmadd_ps(a.0, b.0, c.0), _mm256_fmadd_ps(a.1, b.1, c.1)) }
    }
    #[inline(always)]
    fn min(a: Self, b: Self) -> Self {
        unsafe { Avx2(_mm256_min_ps(a.0, b.0), _mm256_min_ps(a.1, b.1)) }
    }
    #[inline(always)]
    fn max(a: Self, b: Self) -> Self {
        unsafe { Avx2(_mm256_max_ps(a.0, b.0), _mm256_max_ps(a.1, b.1)) }
    }
    #[inline(always)]
    fn abs(a: Self) -> Self {
        unsafe {
            let m = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fff_ffff));
            Avx2(_mm256_and_ps(a.0, m), _mm256_and_ps(a.1, m))
        }
    }
    #[inline(always)]
    fn neg(a: Self) -> Self {
        unsafe {
            let m = _mm256_castsi256_ps(_mm256_set1_epi32(i32::MIN));
            Avx2(_mm256_xor_ps(a.0, m), _mm256_xor_ps(a.1, m))
        }
    }
    #[inline(always)]
    fn copysign(v: Self, s: Self) -> Self {
        unsafe {
            let sign = _mm256_castsi256_ps(_mm256_set1_epi32(i32::MIN));
            Avx2(
                _mm256_or_ps(_mm256_andnot_ps(sign, v.0), _mm256_and_ps(sign, s.0)),
                _mm256_or_ps(_mm256_andnot_ps(sign, v.1), _mm256_and_ps(sign, s.1)),
            )
        }
    }
    #[inline(always)]
    fn gt(a: Self, b: Self) -> Self::Mask {
        unsafe { (_mm256_cmp_ps::<_CMP_GT_OQ>(a.0, b.0), _mm256_cmp_ps::<_CMP_GT_OQ>(a.1, b.1)) }
    }
    #[inline(always)]
    fn lt(a: Self, b: Self) -> Self::Mask {
        unsafe { (_mm256_cmp_ps::<_CMP_LT_OQ>(a.0, b.0), _mm256_cmp_ps::<_CMP_LT_OQ>(a.1, b.1)) }
    }
    #[inline(always)]
    fn eq(a: Self, b: Self) -> Self::Mask {
        unsafe { (_mm256_cmp_ps::<_CMP_EQ_OQ>(a.0, b.0), _mm256_cmp_ps::<_CMP_EQ_OQ>(a.1, b.1)) }
    }
    #[inline(always)]
    fn blend(m: Self::Mask, a: Self, b: Self) -> Self {
        unsafe { Avx2(_mm256_blendv_ps(a.0, b.0, m.0), _mm256_blendv_ps(a.1, b.1, m.1)) }
    }
    #[inline(always)]
    fn scale_pow2(y: Self, n: Self) -> Self {
        // The portable formula: n as an integer (exact: n is integral), h = n >> 1, and the
        // two powers 2^h and 2^(n−h) built from their exponent bits. A NaN `n` (from a NaN
        // input) comes with a NaN `y`, and NaN times anything is NaN.
        unsafe { Avx2(scale_pow2_8(y.0, n.0), scale_pow2_8(y.1, n.1)) }
    }
    #[inline(always)]
    fn frexp(u: Self) -> (Self, Self) {
        unsafe {
            let ((e0, m0), (e1, m1)) = (frexp8(u.0), frexp8(u.1));
            (Avx2(e0, e1), Avx2(m0, m1))
        }
    }
    #[inline(always)]
    fn pairwise(v: Self) -> f32 {
        unsafe { pairwise8(_mm256_add_ps(v.0, v.1)) }
    }
    #[inline(always)]
    fn pairwise4(v: [Self; 4]) -> [f32; 4] {
        [Self::pairwise(v[0]), Self::pairwise(v[1]), Self::pairwise(v[2]), Self::pairwise(v[3])]
    }
    #[inline(always)]
    fn zero_f64() -> Self::F64 {
        unsafe { (_mm256_setzero_pd(), _mm256_setzero_pd()) }
    }
    #[inline(always)]
    fn add_f64_halves(acc: Self::F64, v: Self) -> Self::F64 {
        // f64 lanes 0–3 and 4–7 of the accumulator; v's lanes 0–7 first, then 8–15.
        unsafe {
            let (a0, a1) =
                (_mm256_cvtps_pd(_mm256_castps256_ps128(v.0)), _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(v.0)));
            let (b0, b1) =
                (_mm256_cvtps_pd(_mm256_castps256_ps128(v.1)), _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(v.1)));
            (_mm256_add_pd(_mm256_add_pd(acc.0, a0), b0), _mm256_add_pd(_mm256_add_pd(acc.1, a1), b1))
        }
    }
    #[inline(always)]
    fn pairwise_f64(acc: Self::F64) -> f64 {
        unsafe { pairwise4_f64(_mm256_add_pd(acc.0, acc.1)) }
    }
}

/// [`Lanes::scale_pow2`] on eight lanes, as `fastmath::exp_f32`: n as an integer (exact: n is
/// integral), h = n >> 1, and 2^h, 2^(n−h) built from their exponent bits. A NaN `n` (from a
/// NaN input) comes with a NaN `y`, and NaN times anything is NaN.
#[inline(always)]
unsafe fn scale_pow2_8(y: __m256, n: __m256) -> __m256 {
    unsafe {
        let ni = _mm256_cvtps_epi32(n);
        let h = _mm256_srai_epi32::<1>(ni);
        let bias = _mm256_set1_epi32(127);
        let s1 = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(h, bias)));
        let s2 = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(_mm256_sub_epi32(ni, h), bias)));
        _mm256_mul_ps(_mm256_mul_ps(y, s1), s2)
    }
}

/// [`Lanes::frexp`] on eight lanes.
#[inline(always)]
unsafe fn frexp8(u: __m256) -> (__m256, __m256) {
    unsafe {
        let bits = _mm256_castps_si256(u);
        let e = _mm256_cvtepi32_ps(_mm256_sub_epi32(
            _mm256_and_si256(_mm256_srli_epi32::<23>(bits), _mm256_set1_epi32(0xff)),
            _mm256_set1_epi32(126),
        ));
        let m = _mm256_castsi256_ps(_mm256_or_si256(
            _mm256_and_si256(bits, _mm256_set1_epi32(0x007f_ffff)),
            _mm256_set1_epi32(0x3f00_0000),
        ));
        (e, m)
    }
}

/// Lanes l and l + 8 of `a` and of `b`: their 256-bit halves side by side, then added.
#[inline(always)]
unsafe fn halves512(a: __m512, b: __m512) -> __m512 {
    unsafe { _mm512_add_ps(_mm512_shuffle_f32x4::<0b01_00_01_00>(a, b), _mm512_shuffle_f32x4::<0b11_10_11_10>(a, b)) }
}

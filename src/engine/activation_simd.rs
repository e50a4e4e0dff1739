//! AVX-512 versions of the sigmoid, tanh, ELU, SELU, swish, softplus and GELU loops of
//! `Activation::map_with_derivative` for f32, chosen at run time (see `simd`). (ReLU is
//! memory-bound: an AVX-512 twin measured slower than the portable loop, on the detect CNN, 7.9%
//! of a run against 4.6%, and on fc73's 256 values, 0.41 against 0.39 µs a step; dropped.)
//!
//! LLVM vectorises the portable loops to 256-bit registers, and they are most of an fc73 step
//! after the products (measured: a third). Each lane here does the portable formula's
//! operations in the same order — separate multiplies and adds where it has them, never an
//! FMA it lacks; for the activations evaluated on dual numbers, every operation of the dual
//! evaluation — so results are identical bit for bit (tested on every exponent and the special
//! values).

use crate::engine::activations::Activation;

/// `y = act(x)`, `dydx = act′(x)` as `act.map_with_derivative` computes them, if `act` has a
/// twin here; otherwise `false`, with nothing written. The caller checked `simd::enabled()`.
pub fn map_with_derivative(act: Activation, x: &[f32], y: &mut [f32], dydx: &mut [f32]) -> bool {
    assert!(y.len() >= x.len() && dydx.len() >= x.len(), "activation_simd: outputs shorter than the input");
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the caller checked `simd::enabled()` (AVX-512F); lengths were asserted.
    unsafe {
        avx512::map_with_derivative(act, x, y, dydx)
    }
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!("enabled() is false off x86-64: {act} {x:?} {y:?} {dydx:?}")
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx512 {
    use crate::engine::activations::Activation;
    use std::arch::x86_64::*;

    const L: usize = 16;

    /// See [`super::map_with_derivative`].
    #[target_feature(enable = "avx512f")]
    pub unsafe fn map_with_derivative(act: Activation, x: &[f32], y: &mut [f32], dydx: &mut [f32]) -> bool {
        let (selu_alpha, selu_scale) = crate::engine::activations::SELU;
        // SAFETY (every arm): the caller asserted the lengths.
        unsafe {
            match act {
                Activation::Sigmoid => map(x, y, dydx, |v| sigmoid(v)),
                Activation::Tanh => map(x, y, dydx, |v| tanh(v)),
                Activation::Elu { alpha } => map(x, y, dydx, |v| exponential_linear(v, alpha as f32, None)),
                Activation::Selu => {
                    map(x, y, dydx, |v| exponential_linear(v, selu_alpha as f32, Some(selu_scale as f32)))
                }
                Activation::Swish => map(x, y, dydx, |v| swish(v)),
                Activation::Softplus => map(x, y, dydx, |v| softplus(v)),
                Activation::Gelu => map(x, y, dydx, |v| gelu(v)),
                Activation::Identity | Activation::Relu | Activation::LeakyRelu { .. } => return false,
            }
        }
        true
    }

    /// `f` over `x` in 16-lane chunks, then one masked chunk for the rest.
    #[target_feature(enable = "avx512f")]
    #[inline]
    pub unsafe fn map(x: &[f32], y: &mut [f32], dydx: &mut [f32], f: impl Fn(__m512) -> (__m512, __m512)) {
        let full = x.len() / L * L;
        let (xp, yp, dp) = (x.as_ptr(), y.as_mut_ptr(), dydx.as_mut_ptr());
        let mut i = 0;
        while i < full {
            // SAFETY: i + 16 ≤ x.len() ≤ y.len(), dydx.len().
            unsafe {
                let (fy, fd) = f(_mm512_loadu_ps(xp.add(i)));
                _mm512_storeu_ps(yp.add(i), fy);
                _mm512_storeu_ps(dp.add(i), fd);
            }
            i += L;
        }
        if full < x.len() {
            let mask = ((1u32 << (x.len() - full)) - 1) as __mmask16;
            // SAFETY: the masked lanes lie below x.len().
            unsafe {
                let (fy, fd) = f(_mm512_maskz_loadu_ps(mask, xp.add(full)));
                _mm512_mask_storeu_ps(yp.add(full), mask, fy);
                _mm512_mask_storeu_ps(dp.add(full), mask, fd);
            }
        }
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    pub(crate) fn set(v: f32) -> __m512 {
        _mm512_set1_ps(v)
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    pub(crate) fn abs(x: __m512) -> __m512 {
        _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(0x7fff_ffff)))
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    pub(crate) fn neg(x: __m512) -> __m512 {
        _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(x), _mm512_set1_epi32(i32::MIN)))
    }

    /// `f32::copysign`: `v`'s magnitude with `s`'s sign.
    #[target_feature(enable = "avx512f")]
    #[inline]
    pub(crate) fn copysign(v: __m512, s: __m512) -> __m512 {
        let sign = _mm512_set1_epi32(i32::MIN);
        _mm512_castsi512_ps(_mm512_or_si512(
            _mm512_andnot_si512(sign, _mm512_castps_si512(v)),
            _mm512_and_si512(sign, _mm512_castps_si512(s)),
        ))
    }

    /// `fastmath::exp_f32` lane by lane (a NaN gives a NaN, as there).
    #[target_feature(enable = "avx512f")]
    #[inline]
    pub(crate) fn exp(x: __m512) -> __m512 {
        const LOG2E: f32 = std::f32::consts::LOG2_E;
        const LN2_HI: f32 = 0.693_359_4;
        const LN2_LO: f32 = -2.121_944_4e-4;
        const ROUND: f32 = 12_582_912.0;
        let (add, mul, sub) = (_mm512_add_ps, _mm512_mul_ps, _mm512_sub_ps);
        // max and min return their second operand when either is NaN: a NaN lane stays NaN
        // through every step (the portable version returns its input; any NaN is a NaN).
        let xc = _mm512_min_ps(set(89.0), _mm512_max_ps(set(-104.0), x));
        let t = add(mul(xc, set(LOG2E)), set(ROUND));
        let n = sub(t, set(ROUND));
        let r = sub(sub(xc, mul(n, set(LN2_HI))), mul(n, set(LN2_LO)));
        let mut p = set(1.987_569_1e-4);
        p = add(mul(p, r), set(1.398_199_9e-3));
        p = add(mul(p, r), set(8.333_452e-3));
        p = add(mul(p, r), set(4.166_579_6e-2));
        p = add(mul(p, r), set(1.666_666_5e-1));
        p = add(mul(p, r), set(5e-1));
        let y = add(add(mul(mul(p, r), r), r), set(1.0));
        // y·2ⁿ with one rounding, as the portable (y·2^⌊n/2⌋)·2^(n−⌊n/2⌋) (whose first product
        // is exact), also where it is subnormal or flushed (tested both ways).
        _mm512_scalef_ps(y, n)
    }

    /// `e = exp(−|x|)`, `inv = 1/(1+e)`, `y = x > 0 ? inv : e·inv`, `y′ = e·inv·inv`.
    #[target_feature(enable = "avx512f")]
    #[inline]
    pub fn sigmoid(x: __m512) -> (__m512, __m512) {
        let one = set(1.0);
        let e = exp(neg(abs(x)));
        let inv = _mm512_div_ps(one, _mm512_add_ps(one, e));
        let ei = _mm512_mul_ps(e, inv);
        let pos = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(x, _mm512_setzero_ps());
        (_mm512_mask_blend_ps(pos, ei, inv), _mm512_mul_ps(ei, inv))
    }

    /// ELU (`scale` `None`) and SELU as `Activation::map_with_derivative` computes them:
    /// inner = `x > 0 ? (x, 1) : (α(eˣ − 1), 0·(eˣ − 1) + α·eˣ)`, then `(s·v, 0·v + s·d)`.
    #[target_feature(enable = "avx512f")]
    #[inline]
    pub fn exponential_linear(x: __m512, alpha: f32, scale: Option<f32>) -> (__m512, __m512) {
        let (add, mul) = (_mm512_add_ps, _mm512_mul_ps);
        let (zero, one, a) = (_mm512_setzero_ps(), set(1.0), set(alpha));
        let e = exp(x);
        let em1 = _mm512_sub_ps(e, one);
        let on = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(x, zero);
        let v = _mm512_mask_blend_ps(on, mul(a, em1), x);
        let d = _mm512_mask_blend_ps(on, add(mul(zero, em1), mul(a, e)), one);
        match scale {
            None => (v, d),
            Some(s) => (mul(set(s), v), add(mul(zero, v), mul(set(s), d))),
        }
    }

    /// Swish `x·σ(x)` with the value and derivative one dual-number evaluation gives, every
    /// multiply, add and division of it in its order: `−|x|` carries derivative ∓1 (x > 0: −1), `e = exp(−|x|)` with
    /// `de = ∓1·e`; `q = 1/(1+e)` with `dq = (0 − q·(0 + de))/(1+e)`; `σ = x > 0 ? q : e·q` with
    /// derivative `dq` or `de·q + e·dq`; then `(x·σ, 1·σ + x·σ′)`.
    #[target_feature(enable = "avx512f")]
    #[inline]
    pub fn swish(x: __m512) -> (__m512, __m512) {
        let (add, mul, sub, div) = (_mm512_add_ps, _mm512_mul_ps, _mm512_sub_ps, _mm512_div_ps);
        let (zero, one) = (_mm512_setzero_ps(), set(1.0));
        let pos = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(x, zero);
        let dn = _mm512_mask_blend_ps(pos, one, set(-1.0));
        let e = exp(neg(abs(x)));
        let de = mul(dn, e);
        let ope = add(one, e);
        let q = div(one, ope);
        let dq = div(sub(zero, mul(q, add(zero, de))), ope);
        let s = _mm512_mask_blend_ps(pos, mul(e, q), q);
        let ds = _mm512_mask_blend_ps(pos, add(mul(de, q), mul(e, dq)), dq);
        (mul(x, s), add(mul(one, s), mul(x, ds)))
    }

    /// `fastmath::ln_1p_f32` lane by lane (softplus and `loss_simd`'s cross-entropy).
    #[target_feature(enable = "avx512f")]
    #[inline]
    pub(crate) fn ln_1p(x: __m512) -> __m512 {
        let (add, mul, sub) = (_mm512_add_ps, _mm512_mul_ps, _mm512_sub_ps);
        let one = set(1.0);
        let u = add(one, x);
        let bits = _mm512_castps_si512(u);
        // u = 2^e · m with m in [√½, √2): e0 from the exponent bits, m0 in [0.5, 1).
        let e0 = _mm512_sub_epi32(
            _mm512_and_si512(_mm512_srli_epi32::<23>(bits), _mm512_set1_epi32(0xff)),
            _mm512_set1_epi32(126),
        );
        let m0 = _mm512_castsi512_ps(_mm512_or_si512(
            _mm512_and_si512(bits, _mm512_set1_epi32(0x007f_ffff)),
            _mm512_set1_epi32(0x3f00_0000),
        ));
        let small = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(m0, set(std::f32::consts::FRAC_1_SQRT_2));
        let e = _mm512_cvtepi32_ps(_mm512_mask_sub_epi32(e0, small, e0, _mm512_set1_epi32(1)));
        let f = _mm512_mask_blend_ps(small, sub(m0, one), sub(add(m0, m0), one));
        let z = mul(f, f);
        let mut p = set(7.037_683_6e-2);
        p = sub(mul(p, f), set(1.151_461e-1));
        p = add(mul(p, f), set(1.167_699_9e-1));
        p = sub(mul(p, f), set(1.242_014_1e-1));
        p = add(mul(p, f), set(1.424_932_3e-1));
        p = sub(mul(p, f), set(1.666_805_8e-1));
        p = add(mul(p, f), set(2.000_071_4e-1));
        p = sub(mul(p, f), set(2.499_999_4e-1));
        p = add(mul(p, f), set(3.333_333e-1));
        let y = sub(sub(mul(mul(p, f), z), mul(set(2.121_944_4e-4), e)), mul(set(0.5), z));
        let ln_u = add(add(f, y), mul(set(0.693_359_4), e));
        // ln(1+x) = ln(u)·x/(u−1) corrects the rounding of u = 1 + x.
        let d = sub(u, one);
        let exact = _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(d, _mm512_setzero_ps());
        let r = _mm512_mask_blend_ps(exact, mul(ln_u, _mm512_div_ps(x, d)), x);
        // ∞ → ∞, −1 → −∞, below −1 (and NaN) → NaN, else r.
        let inf = _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(x, set(f32::INFINITY));
        let minus_one = _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(x, set(-1.0));
        let above = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(x, set(-1.0));
        let r = _mm512_mask_blend_ps(above, set(f32::NAN), r);
        let r = _mm512_mask_blend_ps(minus_one, r, set(f32::NEG_INFINITY));
        _mm512_mask_blend_ps(inf, r, x)
    }

    /// Softplus `max(x, 0) + ln(1 + e^−|x|)` as one dual-number evaluation gives it: `max(x, 0)` as `x > 0 ? (x, 1) : (x·0, 1·0 + x·0)`, plus
    /// `ln_1p(e)` with `e = exp(−|x|)`, `de = ∓1·e` (x > 0: −1) and derivative `de/(1 + e)`.
    #[target_feature(enable = "avx512f")]
    #[inline]
    pub fn softplus(x: __m512) -> (__m512, __m512) {
        let (add, mul) = (_mm512_add_ps, _mm512_mul_ps);
        let (zero, one) = (_mm512_setzero_ps(), set(1.0));
        let pos = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(x, zero);
        let dn = _mm512_mask_blend_ps(pos, one, set(-1.0));
        let e = exp(neg(abs(x)));
        let de = mul(dn, e);
        let l = ln_1p(e);
        let dl = _mm512_div_ps(de, add(one, e));
        let relu = _mm512_mask_blend_ps(pos, mul(x, zero), x);
        let drelu = _mm512_mask_blend_ps(pos, add(mul(one, zero), mul(x, zero)), one);
        (add(relu, l), add(drelu, dl))
    }

    /// `fastmath::erf_f32` lane by lane.
    #[target_feature(enable = "avx512f")]
    #[inline]
    pub(crate) fn erf(x: __m512) -> __m512 {
        use crate::engine::fastmath::{ERF_P, ERF_R};
        let (add, mul, sub) = (_mm512_add_ps, _mm512_mul_ps, _mm512_sub_ps);
        let a = abs(x);
        let z = mul(x, x);
        let mut p = set(ERF_P[6]);
        for &c in ERF_P[..6].iter().rev() {
            p = add(mul(p, z), set(c));
        }
        let small = add(x, mul(x, p));
        // min returns its second operand for a NaN, as f32::min returns the number.
        let t = sub(_mm512_min_ps(a, set(3.95)), set(2.4));
        let mut r = set(ERF_R[10]);
        for &c in ERF_R[..10].iter().rev() {
            r = add(mul(r, t), set(c));
        }
        let big = copysign(sub(set(1.0), mul(exp(neg(z)), r)), x);
        let below = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(a, set(0.875));
        _mm512_mask_blend_ps(below, big, small)
    }

    /// GELU `½x·(1 + erf(x/√2))` as one dual-number evaluation gives it: `h = (½·x, 0·x + ½·1)`, `u = (x·c, 1·c + x·0)` with c = 1/√2,
    /// `erf(u) = (erf(uᵥ), u′·(2/√π)·exp(−uᵥ·uᵥ))`, `b = (1 + erfᵥ, 0 + erf′)`, then `h·b`.
    #[target_feature(enable = "avx512f")]
    #[inline]
    pub fn gelu(x: __m512) -> (__m512, __m512) {
        let (add, mul) = (_mm512_add_ps, _mm512_mul_ps);
        let (zero, one, half) = (_mm512_setzero_ps(), set(1.0), set(0.5));
        let c = set(std::f64::consts::FRAC_1_SQRT_2 as f32);
        let (hv, hd) = (mul(half, x), add(mul(zero, x), mul(half, one)));
        let (uv, ud) = (mul(x, c), add(mul(one, c), mul(x, zero)));
        let g = mul(set(std::f64::consts::FRAC_2_SQRT_PI as f32), exp(neg(mul(uv, uv))));
        let (ev, ed) = (erf(uv), mul(ud, g));
        let (bv, bd) = (add(one, ev), add(zero, ed));
        (mul(hv, bv), add(mul(hd, bv), mul(hv, bd)))
    }

    /// `fastmath::tanh_f32`, and `1·(1 − t·t)` as the dual numbers form the derivative.
    #[target_feature(enable = "avx512f")]
    #[inline]
    pub fn tanh(x: __m512) -> (__m512, __m512) {
        let (add, mul, sub) = (_mm512_add_ps, _mm512_mul_ps, _mm512_sub_ps);
        let one = set(1.0);
        let a = abs(x);
        let z = mul(x, x);
        let mut p = set(-5.704_988_7e-3);
        p = add(mul(p, z), set(2.063_909e-2));
        p = sub(mul(p, z), set(5.373_971_6e-2));
        p = add(mul(p, z), set(1.333_144_2e-1));
        p = sub(mul(p, z), set(3.333_328e-1));
        let small = copysign(add(mul(mul(p, z), x), x), x);
        let big = sub(one, _mm512_div_ps(set(2.0), add(exp(mul(set(2.0), a)), one)));
        let negative = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, _mm512_setzero_ps());
        let big = _mm512_mask_blend_ps(negative, big, neg(big));
        let below = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(a, set(0.625));
        // A NaN lane is NaN in `big` (not below 0.625), as the portable version's result.
        let t = _mm512_mask_blend_ps(below, big, small);
        (t, mul(one, sub(one, mul(t, t))))
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::activations::Activation;

    /// Every exponent, both signs, the special values and a masked tail: bit for bit.
    #[test]
    fn equal_the_portable_loops_bit_for_bit() {
        if !super::super::simd::enabled() {
            eprintln!("skipped: no AVX-512 on this machine");
            return;
        }
        let mut x = vec![0.0f32, -0.0, f32::INFINITY, f32::NEG_INFINITY, f32::NAN, f32::MIN_POSITIVE, 1e-45, 0.625];
        x.extend(super::super::simd::every_exponent());
        for i in 0..2000 {
            x.push((i as f32 - 1000.0) * 0.013);
        }
        // Densely where e^−|x| is subnormal or flushed (2ⁿ's rounding and FTZ at the edge).
        for i in 0..200_000 {
            x.push(-80.0 - 25.0 * i as f32 / 200_000.0);
        }
        x.push(0.3); // a tail of 1 after the chunks of 16
        let mut acts = Activation::all();
        acts.push(Activation::Elu { alpha: 0.3 });
        let piecewise_linear =
            |a: Activation| matches!(a, Activation::Identity | Activation::Relu | Activation::LeakyRelu { .. });
        // Also with subnormals flushed, as training runs them (`engine::denormals`).
        for flush in [false, true] {
            let _ftz = flush.then(crate::engine::denormals::FlushDenormals::new);
            for &act in &acts {
                let n = x.len();
                let (mut y1, mut d1, mut y2, mut d2) = (vec![0f32; n], vec![0f32; n], vec![0f32; n], vec![0f32; n]);
                act.map_with_derivative(&x, &mut y1, &mut d1);
                // Every activation with an exponential has a twin; the piecewise-linear ones none.
                let twin = super::map_with_derivative(act, &x, &mut y2, &mut d2);
                assert_eq!(twin, !piecewise_linear(act), "{act}");
                if !twin {
                    continue;
                }
                for i in 0..n {
                    let same = |a: f32, b: f32| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
                    assert!(
                        same(y1[i], y2[i]) && same(d1[i], d2[i]),
                        "{act} (flushed: {flush}) at {}: {} {} vs {} {}",
                        x[i],
                        y1[i],
                        d1[i],
                        y2[i],
                        d2[i]
                    );
                }
            }
        }
    }

    /// The AVX-512 `ln_1p` (softplus') and `erf` (GELU's) equal `fastmath`'s on every exponent
    /// of both signs, at −1, below it, at ±∞ and NaN: softplus only feeds `ln_1p` [0, 1], the
    /// rest keeps both honest for other callers.
    #[test]
    fn ln_1p_and_erf_equal_fastmath_everywhere() {
        if !super::super::simd::enabled() {
            return;
        }
        let mut x = vec![0.0f32, -0.0, -1.0, -1.5, -0.999_999_9, f32::INFINITY, f32::NEG_INFINITY, f32::NAN];
        x.extend(super::super::simd::every_exponent());
        while x.len() % 16 != 0 {
            x.push(0.5);
        }
        for i in 0..100_000 {
            x.push(i as f32 * 5e-5); // densely over erf's two pieces
        }
        #[cfg(target_arch = "x86_64")]
        for chunk in x.chunks_exact(16) {
            use crate::engine::fastmath::{erf_f32, ln_1p_f32};
            use std::arch::x86_64::*;
            type Pair = (&'static str, unsafe fn(__m512) -> __m512, fn(f32) -> f32);
            let pairs: [Pair; 2] = [("ln_1p", super::avx512::ln_1p, ln_1p_f32), ("erf", super::avx512::erf, erf_f32)];
            for (name, simd, portable) in pairs {
                let mut got = [0f32; 16];
                // SAFETY: AVX-512F is enabled (checked above); 16 values in and out.
                unsafe { _mm512_storeu_ps(got.as_mut_ptr(), simd(_mm512_loadu_ps(chunk.as_ptr()))) };
                for (&v, &g) in chunk.iter().zip(&got) {
                    let want = portable(v);
                    assert!(
                        want.to_bits() == g.to_bits() || (want.is_nan() && g.is_nan()),
                        "{name}({v}): {want} vs {g}"
                    );
                }
            }
        }
    }
}

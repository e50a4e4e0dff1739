//! SIMD versions of the sigmoid, tanh, ELU, SELU, swish, softplus and GELU loops of
//! `Activation::map_with_derivative` for f32, chosen at run time (see `simd`), written once over
//! `lanes::Lanes`. (ReLU is memory-bound: an AVX-512 twin measured slower than the portable
//! loop, on the detect CNN, 7.9% of a run against 4.6%, and on fc73's 256 values, 0.41 against
//! 0.39 µs a step; dropped.)
//!
//! LLVM vectorises the portable loops to 256-bit registers, and they are most of an fc73 step
//! after the products (measured: a third). Each lane here does the portable formula's
//! operations in the same order — separate multiplies and adds where it has them, never an
//! FMA it lacks; for the activations evaluated on dual numbers, every operation of the dual
//! evaluation — so results are identical bit for bit (tested on every exponent and the special
//! values, on every tier).

use crate::engine::activations::Activation;

/// `y = act(x)`, `dydx = act′(x)` as `act.map_with_derivative` computes them, if `act` has a
/// twin here; otherwise `false`, with nothing written. The caller checked `simd::enabled()`.
pub fn map_with_derivative(act: Activation, x: &[f32], y: &mut [f32], dydx: &mut [f32]) -> bool {
    assert!(y.len() >= x.len() && dydx.len() >= x.len(), "activation_simd: outputs shorter than the input");
    super::simd::dispatch!(kernels, map_with_derivative(act, x, y, dydx))
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod kernels {
    use crate::engine::activations::Activation;
    use crate::engine::lanes::Lanes;

    const L: usize = 16;

    crate::engine::simd::tiered! {
        fn map_with_derivative(act: Activation, x: &[f32], y: &mut [f32], dydx: &mut [f32]) -> bool;
        #[cfg(test)]
        fn ln_1p_and_erf(x: &[f32; 16]) -> ([f32; 16], [f32; 16]);
    }

    // Which activation [`map`] evaluates: a constant, so each gets its own loop (and the kernels
    // take no closures, whose bodies would be compiled without the tier's features).
    const SIGMOID: u8 = 0;
    const TANH: u8 = 1;
    const EXPONENTIAL_LINEAR: u8 = 2;
    const SWISH: u8 = 3;
    const SOFTPLUS: u8 = 4;
    const GELU: u8 = 5;

    /// See [`super::map_with_derivative`].
    #[inline(always)]
    unsafe fn map_with_derivative<V: Lanes>(act: Activation, x: &[f32], y: &mut [f32], dydx: &mut [f32]) -> bool {
        let (selu_alpha, selu_scale) = crate::engine::activations::SELU;
        // SAFETY (every arm): the caller asserted the lengths.
        unsafe {
            match act {
                Activation::Sigmoid => map::<V, SIGMOID>(x, y, dydx, 0.0, None),
                Activation::Tanh => map::<V, TANH>(x, y, dydx, 0.0, None),
                Activation::Elu { alpha } => map::<V, EXPONENTIAL_LINEAR>(x, y, dydx, alpha as f32, None),
                Activation::Selu => {
                    map::<V, EXPONENTIAL_LINEAR>(x, y, dydx, selu_alpha as f32, Some(selu_scale as f32))
                }
                Activation::Swish => map::<V, SWISH>(x, y, dydx, 0.0, None),
                Activation::Softplus => map::<V, SOFTPLUS>(x, y, dydx, 0.0, None),
                Activation::Gelu => map::<V, GELU>(x, y, dydx, 0.0, None),
                Activation::Identity | Activation::Relu | Activation::LeakyRelu { .. } => return false,
            }
        }
        true
    }

    /// Activation `K` (with ELU's `alpha` and SELU's `scale`) and its derivative.
    #[inline(always)]
    fn eval<V: Lanes, const K: u8>(v: V, alpha: f32, scale: Option<f32>) -> (V, V) {
        match K {
            SIGMOID => sigmoid(v),
            TANH => tanh(v),
            EXPONENTIAL_LINEAR => exponential_linear(v, alpha, scale),
            SWISH => swish(v),
            SOFTPLUS => softplus(v),
            _ => gelu(v),
        }
    }

    /// Activation `K` over `x` in chunks of 16, then one cut chunk for the rest.
    #[inline(always)]
    unsafe fn map<V: Lanes, const K: u8>(x: &[f32], y: &mut [f32], dydx: &mut [f32], alpha: f32, scale: Option<f32>) {
        let full = x.len() / L * L;
        let (xp, yp, dp) = (x.as_ptr(), y.as_mut_ptr(), dydx.as_mut_ptr());
        let mut i = 0;
        while i < full {
            // SAFETY: i + 16 ≤ x.len() ≤ y.len(), dydx.len().
            unsafe {
                let (fy, fd) = eval::<V, K>(V::load(xp.add(i)), alpha, scale);
                V::store(yp.add(i), fy);
                V::store(dp.add(i), fd);
            }
            i += L;
        }
        if full < x.len() {
            let n = x.len() - full;
            // SAFETY: the first n lanes lie below x.len().
            unsafe {
                let (fy, fd) = eval::<V, K>(V::load_first(n, xp.add(full)), alpha, scale);
                V::store_first(n, yp.add(full), fy);
                V::store_first(n, dp.add(full), fd);
            }
        }
    }

    /// `fastmath::exp_f32` lane by lane (a NaN gives a NaN, as there).
    #[inline(always)]
    pub(crate) fn exp<V: Lanes>(x: V) -> V {
        const LOG2E: f32 = std::f32::consts::LOG2_E;
        const LN2_HI: f32 = 0.693_359_4;
        const LN2_LO: f32 = -2.121_944_4e-4;
        const ROUND: f32 = 12_582_912.0;
        let (add, mul, sub, set) = (V::add, V::mul, V::sub, V::splat);
        // max and min return their second operand when either is NaN: a NaN lane stays NaN
        // through every step (the portable version returns its input; any NaN is a NaN).
        let xc = V::min(set(89.0), V::max(set(-104.0), x));
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
        // y·2ⁿ as the portable (y·2^⌊n/2⌋)·2^(n−⌊n/2⌋), also where it is subnormal or flushed.
        V::scale_pow2(y, n)
    }

    /// `e = exp(−|x|)`, `inv = 1/(1+e)`, `y = x > 0 ? inv : e·inv`, `y′ = e·inv·inv`.
    #[inline(always)]
    pub(crate) fn sigmoid<V: Lanes>(x: V) -> (V, V) {
        let one = V::splat(1.0);
        let e = exp(V::neg(V::abs(x)));
        let inv = V::div(one, V::add(one, e));
        let ei = V::mul(e, inv);
        let pos = V::gt(x, V::zero());
        (V::blend(pos, ei, inv), V::mul(ei, inv))
    }

    /// ELU (`scale` `None`) and SELU as `Activation::map_with_derivative` computes them:
    /// inner = `x > 0 ? (x, 1) : (α(eˣ − 1), 0·(eˣ − 1) + α·eˣ)`, then `(s·v, 0·v + s·d)`.
    #[inline(always)]
    fn exponential_linear<V: Lanes>(x: V, alpha: f32, scale: Option<f32>) -> (V, V) {
        let (add, mul) = (V::add, V::mul);
        let (zero, one, a) = (V::zero(), V::splat(1.0), V::splat(alpha));
        let e = exp(x);
        let em1 = V::sub(e, one);
        let on = V::gt(x, zero);
        let v = V::blend(on, mul(a, em1), x);
        let d = V::blend(on, add(mul(zero, em1), mul(a, e)), one);
        match scale {
            None => (v, d),
            Some(s) => (mul(V::splat(s), v), add(mul(zero, v), mul(V::splat(s), d))),
        }
    }

    /// Swish `x·σ(x)` with the value and derivative one dual-number evaluation gives, every
    /// multiply, add and division of it in its order: `−|x|` carries derivative ∓1 (x > 0: −1), `e = exp(−|x|)` with
    /// `de = ∓1·e`; `q = 1/(1+e)` with `dq = (0 − q·(0 + de))/(1+e)`; `σ = x > 0 ? q : e·q` with
    /// derivative `dq` or `de·q + e·dq`; then `(x·σ, 1·σ + x·σ′)`.
    #[inline(always)]
    fn swish<V: Lanes>(x: V) -> (V, V) {
        let (add, mul, sub, div) = (V::add, V::mul, V::sub, V::div);
        let (zero, one) = (V::zero(), V::splat(1.0));
        let pos = V::gt(x, zero);
        let dn = V::blend(pos, one, V::splat(-1.0));
        let e = exp(V::neg(V::abs(x)));
        let de = mul(dn, e);
        let ope = add(one, e);
        let q = div(one, ope);
        let dq = div(sub(zero, mul(q, add(zero, de))), ope);
        let s = V::blend(pos, mul(e, q), q);
        let ds = V::blend(pos, add(mul(de, q), mul(e, dq)), dq);
        (mul(x, s), add(mul(one, s), mul(x, ds)))
    }

    /// `fastmath::ln_1p_f32` lane by lane (softplus and `loss_simd`'s cross-entropy).
    #[inline(always)]
    pub(crate) fn ln_1p<V: Lanes>(x: V) -> V {
        let (add, mul, sub, set) = (V::add, V::mul, V::sub, V::splat);
        let one = set(1.0);
        let u = add(one, x);
        // u = 2^e · m with m in [√½, √2): e0 from the exponent bits, m0 in [0.5, 1).
        let (e0, m0) = V::frexp(u);
        let small = V::lt(m0, set(std::f32::consts::FRAC_1_SQRT_2));
        // e0 − 1 where m0 is small: exact in f32 (a small integer), as the integer subtraction.
        let e = V::blend(small, e0, sub(e0, one));
        let f = V::blend(small, sub(m0, one), sub(add(m0, m0), one));
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
        let exact = V::eq(d, V::zero());
        let r = V::blend(exact, mul(ln_u, V::div(x, d)), x);
        // ∞ → ∞, −1 → −∞, below −1 (and NaN) → NaN, else r.
        let inf = V::eq(x, set(f32::INFINITY));
        let minus_one = V::eq(x, set(-1.0));
        let above = V::gt(x, set(-1.0));
        let r = V::blend(above, set(f32::NAN), r);
        let r = V::blend(minus_one, r, set(f32::NEG_INFINITY));
        V::blend(inf, r, x)
    }

    /// Softplus `max(x, 0) + ln(1 + e^−|x|)` as one dual-number evaluation gives it: `max(x, 0)` as `x > 0 ? (x, 1) : (x·0, 1·0 + x·0)`, plus
    /// `ln_1p(e)` with `e = exp(−|x|)`, `de = ∓1·e` (x > 0: −1) and derivative `de/(1 + e)`.
    #[inline(always)]
    fn softplus<V: Lanes>(x: V) -> (V, V) {
        let (add, mul) = (V::add, V::mul);
        let (zero, one) = (V::zero(), V::splat(1.0));
        let pos = V::gt(x, zero);
        let dn = V::blend(pos, one, V::splat(-1.0));
        let e = exp(V::neg(V::abs(x)));
        let de = mul(dn, e);
        let l = ln_1p(e);
        let dl = V::div(de, add(one, e));
        let relu = V::blend(pos, mul(x, zero), x);
        let drelu = V::blend(pos, add(mul(one, zero), mul(x, zero)), one);
        (add(relu, l), add(drelu, dl))
    }

    /// `fastmath::erf_f32` lane by lane.
    #[inline(always)]
    pub(crate) fn erf<V: Lanes>(x: V) -> V {
        use crate::engine::fastmath::{ERF_P, ERF_R};
        let (add, mul, sub, set) = (V::add, V::mul, V::sub, V::splat);
        let a = V::abs(x);
        let z = mul(x, x);
        let mut p = set(ERF_P[6]);
        for i in (0..6).rev() {
            p = add(mul(p, z), set(ERF_P[i]));
        }
        let small = add(x, mul(x, p));
        // min returns its second operand for a NaN, as f32::min returns the number.
        let t = sub(V::min(a, set(3.95)), set(2.4));
        let mut r = set(ERF_R[10]);
        for i in (0..10).rev() {
            r = add(mul(r, t), set(ERF_R[i]));
        }
        let big = V::copysign(sub(set(1.0), mul(exp(V::neg(z)), r)), x);
        let below = V::lt(a, set(0.875));
        V::blend(below, big, small)
    }

    /// GELU `½x·(1 + erf(x/√2))` as one dual-number evaluation gives it: `h = (½·x, 0·x + ½·1)`, `u = (x·c, 1·c + x·0)` with c = 1/√2,
    /// `erf(u) = (erf(uᵥ), u′·(2/√π)·exp(−uᵥ·uᵥ))`, `b = (1 + erfᵥ, 0 + erf′)`, then `h·b`.
    #[inline(always)]
    fn gelu<V: Lanes>(x: V) -> (V, V) {
        let (add, mul) = (V::add, V::mul);
        let (zero, one, half) = (V::zero(), V::splat(1.0), V::splat(0.5));
        let c = V::splat(std::f64::consts::FRAC_1_SQRT_2 as f32);
        let (hv, hd) = (mul(half, x), add(mul(zero, x), mul(half, one)));
        let (uv, ud) = (mul(x, c), add(mul(one, c), mul(x, zero)));
        let g = mul(V::splat(std::f64::consts::FRAC_2_SQRT_PI as f32), exp(V::neg(mul(uv, uv))));
        let (ev, ed) = (erf(uv), mul(ud, g));
        let (bv, bd) = (add(one, ev), add(zero, ed));
        (mul(hv, bv), add(mul(hd, bv), mul(hv, bd)))
    }

    /// `fastmath::tanh_f32`, and `1·(1 − t·t)` as the dual numbers form the derivative.
    #[inline(always)]
    fn tanh<V: Lanes>(x: V) -> (V, V) {
        let (add, mul, sub, set) = (V::add, V::mul, V::sub, V::splat);
        let one = set(1.0);
        let a = V::abs(x);
        let z = mul(x, x);
        let mut p = set(-5.704_988_7e-3);
        p = add(mul(p, z), set(2.063_909e-2));
        p = sub(mul(p, z), set(5.373_971_6e-2));
        p = add(mul(p, z), set(1.333_144_2e-1));
        p = sub(mul(p, z), set(3.333_328e-1));
        let small = V::copysign(add(mul(mul(p, z), x), x), x);
        let big = sub(one, V::div(set(2.0), add(exp(mul(set(2.0), a)), one)));
        let negative = V::lt(x, V::zero());
        let big = V::blend(negative, big, V::neg(big));
        let below = V::lt(a, set(0.625));
        // A NaN lane is NaN in `big` (not below 0.625), as the portable version's result.
        let t = V::blend(below, big, small);
        (t, mul(one, sub(one, mul(t, t))))
    }

    /// [`ln_1p`] and [`erf`] over 16 values, for the tests.
    #[cfg(test)]
    #[inline(always)]
    unsafe fn ln_1p_and_erf<V: Lanes>(x: &[f32; 16]) -> ([f32; 16], [f32; 16]) {
        // SAFETY: 16 values.
        let v = unsafe { V::load(x.as_ptr()) };
        (V::to_array(ln_1p(v)), V::to_array(erf(v)))
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::activations::Activation;

    /// Every exponent, both signs, the special values and a masked tail: bit for bit.
    #[test]
    fn equal_the_portable_loops_bit_for_bit() {
        for tier in crate::engine::simd::simd_tiers() {
            let _tier = crate::engine::simd::Forced::new(tier);
            equal_on_this_tier(tier);
        }
    }

    fn equal_on_this_tier(tier: crate::engine::simd::Tier) {
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
                        "{tier}: {act} (flushed: {flush}) at {}: {} {} vs {} {}",
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

    /// The SIMD `ln_1p` (softplus') and `erf` (GELU's) equal `fastmath`'s on every exponent
    /// of both signs, at −1, below it, at ±∞ and NaN, on every tier: softplus only feeds `ln_1p`
    /// [0, 1], the rest keeps both honest for other callers.
    #[test]
    fn ln_1p_and_erf_equal_fastmath_everywhere() {
        let mut x = vec![0.0f32, -0.0, -1.0, -1.5, -0.999_999_9, f32::INFINITY, f32::NEG_INFINITY, f32::NAN];
        x.extend(super::super::simd::every_exponent());
        while x.len() % 16 != 0 {
            x.push(0.5);
        }
        for i in 0..100_000 {
            x.push(i as f32 * 5e-5); // densely over erf's two pieces
        }
        #[cfg(target_arch = "x86_64")]
        for tier in crate::engine::simd::simd_tiers() {
            use crate::engine::fastmath::{erf_f32, ln_1p_f32};
            use crate::engine::simd::Tier;
            for chunk in x.chunks_exact(16) {
                let chunk: &[f32; 16] = chunk.try_into().expect("16 values");
                // SAFETY: the tier is available (simd_tiers).
                let (l, e) = unsafe {
                    match tier {
                        Tier::Avx512 => super::kernels::avx512::ln_1p_and_erf(chunk),
                        _ => super::kernels::avx2::ln_1p_and_erf(chunk),
                    }
                };
                for (name, got, portable) in [("ln_1p", l, ln_1p_f32 as fn(f32) -> f32), ("erf", e, erf_f32)] {
                    for (&v, &g) in chunk.iter().zip(&got) {
                        let want = portable(v);
                        assert!(
                            want.to_bits() == g.to_bits() || (want.is_nan() && g.is_nan()),
                            "{tier}: {name}({v}): {want} vs {g}"
                        );
                    }
                }
            }
        }
    }
}

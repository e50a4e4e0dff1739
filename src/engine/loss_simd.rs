//! The SIMD twin of one model's sigmoid cross-entropy (`loss::model_loss` without squared
//! error) for f32, used by `fused_mlp` where the CPU has a SIMD tier (see `simd`).
//!
//! Its exp, ln_1p, division and select per element were the difference between an fc73 step
//! with cross-entropy and one with squared error (0.48 against 0.36 µs). Each lane does the
//! portable term's operations in its order (`fastmath`'s exp and ln_1p included), and the batch
//! sum keeps `loss::sum_f64`'s eight f64 lanes and pairwise halving: equal bit for bit (tested).

/// One model's loss over `o.len()` logits (a multiple of 16) against targets `y`; writes
/// `∂loss/∂o` (times `scale`) into `dldp` and the per-sample terms into `values`. The caller
/// checked `simd::enabled()`.
pub fn sigmoid_cross_entropy(o: &[f32], y: &[f32], scale: f32, dldp: &mut [f32], values: &mut [f32]) -> f32 {
    let b = o.len();
    assert!(
        b.is_multiple_of(16) && y.len() >= b && dldp.len() >= b && values.len() >= b,
        "loss_simd: a batch of whole registers"
    );
    super::simd::dispatch!(kernels, sigmoid_cross_entropy(o, y, scale, dldp, values))
}

#[cfg(target_arch = "x86_64")]
mod kernels {
    use crate::engine::activation_simd::kernels::{exp, ln_1p};
    use crate::engine::lanes::Lanes;

    crate::engine::simd::tiered! {
        fn sigmoid_cross_entropy(o: &[f32], y: &[f32], scale: f32, dldp: &mut [f32], values: &mut [f32]) -> f32;
    }

    #[inline(always)]
    unsafe fn sigmoid_cross_entropy<V: Lanes>(
        o: &[f32],
        y: &[f32],
        scale: f32,
        dldp: &mut [f32],
        values: &mut [f32],
    ) -> f32 {
        let (zero, one, sc) = (V::zero(), V::splat(1.0), V::splat(scale));
        let mut lanes = V::zero_f64();
        let mut c = 0;
        while c < o.len() {
            // SAFETY: c + 16 ≤ o.len() ≤ the other lengths (asserted).
            let (x, t) = unsafe { (V::load(o.as_ptr().add(c)), V::load(y.as_ptr().add(c))) };
            let e = exp(V::neg(V::abs(x)));
            let pos = V::gt(x, zero);
            let relu = V::blend(pos, zero, x);
            let inv = V::div(one, V::add(one, e));
            let ei = V::mul(e, inv);
            let d = V::blend(pos, V::sub(ei, t), V::sub(V::sub(one, t), ei));
            let v = V::sub(V::add(relu, ln_1p(e)), V::mul(x, t));
            // SAFETY: as above.
            unsafe {
                V::store(values.as_mut_ptr().add(c), v);
                V::store(dldp.as_mut_ptr().add(c), V::mul(d, sc));
            }
            // Eight f64 lanes: elements c..c+8, then c+8..c+16, as `sum_f64` takes them.
            lanes = V::add_f64_halves(lanes, v);
            c += 16;
        }
        (V::pairwise_f64(lanes) * scale as f64) as f32
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::Reduction;

    /// Logits over every exponent and the special values, targets 0, 1 and ½, both reductions,
    /// with and without flushed subnormals: equal bit for bit to the portable loss.
    #[test]
    fn equals_the_portable_loss_bit_for_bit() {
        for tier in crate::engine::simd::simd_tiers() {
            let _tier = crate::engine::simd::Forced::new(tier);
            equal_on_this_tier(tier);
        }
    }

    fn equal_on_this_tier(tier: crate::engine::simd::Tier) {
        let mut o = vec![0.0f32, -0.0, f32::INFINITY, f32::NEG_INFINITY, 1e-45, -1e-45, 88.0, -88.0, 104.0, -104.0];
        o.extend(crate::engine::simd::every_exponent());
        for i in 0..4000 {
            o.push((i as f32 - 2000.0) * 0.013);
        }
        o.truncate(o.len() / 64 * 64);
        let y: Vec<f32> = (0..o.len()).map(|i| [0.0, 1.0, 0.5][i % 3]).collect();
        for flush in [false, true] {
            let _ftz = flush.then(crate::engine::denormals::FlushDenormals::new);
            for reduction in Reduction::ALL {
                for batch in o.chunks(64).zip(y.chunks(64)) {
                    let (ob, yb) = batch;
                    let scale: f32 = super::super::loss::reduction_scale(reduction, 64);
                    let (mut d1, mut v1, mut d2, mut v2) = ([0f32; 64], [0f32; 64], [0f32; 64], [0f32; 64]);
                    let l1 = super::super::loss::model_loss(None, ob, yb, reduction, &mut d1, &mut v1);
                    let l2 = super::sigmoid_cross_entropy(ob, yb, scale, &mut d2, &mut v2);
                    let same = |a: f32, b: f32| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
                    assert!(same(l1, l2), "{tier}: loss {l1} vs {l2} (flush {flush}, {reduction})");
                    for i in 0..64 {
                        assert!(
                            same(d1[i], d2[i]) && same(v1[i], v2[i]),
                            "{tier} at {}: {} {} vs {} {}",
                            ob[i],
                            d1[i],
                            v1[i],
                            d2[i],
                            v2[i]
                        );
                    }
                }
            }
        }
    }
}

//! The AVX-512 twin of one model's sigmoid cross-entropy (`loss::model_loss` without squared
//! error) for f32, used by `fused_mlp` where the CPU has it (see `simd`).
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
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the caller checked AVX-512F; lengths asserted.
    unsafe {
        avx512::sigmoid_cross_entropy(o, y, scale, dldp, values)
    }
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!("enabled() is false off x86-64: {o:?} {y:?} {scale} {dldp:?} {values:?}")
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use crate::engine::activation_simd::avx512::{abs, exp, ln_1p, neg, set};
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx512f")]
    pub unsafe fn sigmoid_cross_entropy(o: &[f32], y: &[f32], scale: f32, dldp: &mut [f32], values: &mut [f32]) -> f32 {
        let (zero, one, sc) = (_mm512_setzero_ps(), set(1.0), set(scale));
        let mut lanes = _mm512_setzero_pd();
        for c in (0..o.len()).step_by(16) {
            // SAFETY: c + 16 ≤ o.len() ≤ the other lengths (asserted).
            let (x, t) = unsafe { (_mm512_loadu_ps(o.as_ptr().add(c)), _mm512_loadu_ps(y.as_ptr().add(c))) };
            let e = exp(neg(abs(x)));
            let pos = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(x, zero);
            let relu = _mm512_mask_blend_ps(pos, zero, x);
            let inv = _mm512_div_ps(one, _mm512_add_ps(one, e));
            let ei = _mm512_mul_ps(e, inv);
            let d = _mm512_mask_blend_ps(pos, _mm512_sub_ps(ei, t), _mm512_sub_ps(_mm512_sub_ps(one, t), ei));
            let v = _mm512_sub_ps(_mm512_add_ps(relu, ln_1p(e)), _mm512_mul_ps(x, t));
            // SAFETY: as above.
            unsafe {
                _mm512_storeu_ps(values.as_mut_ptr().add(c), v);
                _mm512_storeu_ps(dldp.as_mut_ptr().add(c), _mm512_mul_ps(d, sc));
            }
            // Eight f64 lanes: elements c..c+8, then c+8..c+16, as `sum_f64` takes them.
            lanes = _mm512_add_pd(lanes, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
            lanes = _mm512_add_pd(
                lanes,
                _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(v)))),
            );
        }
        // `pairwise_sum` of the eight: halves of 4, 2, then 1.
        let h4 = _mm256_add_pd(_mm512_castpd512_pd256(lanes), _mm512_extractf64x4_pd::<1>(lanes));
        let h2 = _mm_add_pd(_mm256_castpd256_pd128(h4), _mm256_extractf128_pd::<1>(h4));
        let h1 = _mm_add_sd(h2, _mm_unpackhi_pd(h2, h2));
        (_mm_cvtsd_f64(h1) * scale as f64) as f32
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::Reduction;

    /// Logits over every exponent and the special values, targets 0, 1 and ½, both reductions,
    /// with and without flushed subnormals: equal bit for bit to the portable loss.
    #[test]
    fn equals_the_portable_loss_bit_for_bit() {
        if !crate::engine::simd::enabled() {
            eprintln!("skipped: no AVX-512 on this machine");
            return;
        }
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
                    assert!(same(l1, l2), "loss {l1} vs {l2} (flush {flush}, {reduction})");
                    for i in 0..64 {
                        assert!(
                            same(d1[i], d2[i]) && same(v1[i], v2[i]),
                            "at {}: {} {} vs {} {}",
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

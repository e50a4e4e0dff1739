//! Whether the hand-written AVX-512 kernels (`conv2d_simd`, `gemm_simd`, `activation_simd`,
//! `loss_simd`, and `fused_mlp`, which is built on them) run, and the f32 views the generic
//! kernels use to hand their data to them.
//!
//! Every SIMD kernel does, lane by lane, the operations of its portable twin in the same order,
//! so turning them off changes speed, never a number (each kernel's tests check this bit for bit).
//! `GRADLAB_SIMD=off` forces the portable kernels (for benchmarks' baselines, or to check a
//! result on the path a CPU without AVX-512 takes).

use super::real::Real;
use std::sync::atomic::{AtomicBool, Ordering};

static SWITCHED_OFF: AtomicBool = AtomicBool::new(false);

/// Turns the SIMD kernels off (or back on, where available) for the rest of the process: the
/// benchmark measures the portable kernels as its in-run baseline.
pub fn switch(on: bool) {
    SWITCHED_OFF.store(!on, Ordering::Relaxed);
}

/// True when the AVX-512 kernels run: the CPU has AVX-512F and `GRADLAB_SIMD` is not `off`.
pub fn enabled() -> bool {
    use std::sync::OnceLock;
    static ON: OnceLock<bool> = OnceLock::new();
    !SWITCHED_OFF.load(Ordering::Relaxed)
        && *ON.get_or_init(|| {
            let wanted = std::env::var("GRADLAB_SIMD").map_or(true, |v| v != "off");
            #[cfg(target_arch = "x86_64")]
            {
                wanted && std::arch::is_x86_feature_detected!("avx512f")
            }
            #[cfg(not(target_arch = "x86_64"))]
            {
                let _ = wanted;
                false
            }
        })
}

/// Test inputs for the SIMD twins: ±m·2ᵉ for every f32 exponent (subnormals included) and three
/// mantissas.
#[cfg(test)]
pub(crate) fn every_exponent() -> Vec<f32> {
    let mut v = vec![];
    for e in -149..=127 {
        for m in [1.0f32, 1.37, 1.999] {
            let x = m * 2f32.powi(e);
            if x.is_finite() {
                v.extend([x, -x]);
            }
        }
    }
    v
}

/// `s` as f32, if `T` is f32 (the SIMD kernels exist for f32 only).
pub fn as_f32<T: Real>(s: &[T]) -> Option<&[f32]> {
    (std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>())
        // SAFETY: T is f32.
        .then(|| unsafe { std::slice::from_raw_parts(s.as_ptr() as *const f32, s.len()) })
}

/// `s` as f32, if `T` is f32.
pub fn as_f32_mut<T: Real>(s: &mut [T]) -> Option<&mut [f32]> {
    (std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>())
        // SAFETY: T is f32.
        .then(|| unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr() as *mut f32, s.len()) })
}

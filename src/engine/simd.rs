//! Which hand-written SIMD kernels run (`conv2d_simd`, `gemm_simd`, `activation_simd`,
//! `loss_simd`, and `fused_mlp`, which is built on them): the tier, and the f32 views the
//! generic kernels use to hand their data to them.
//!
//! Every SIMD kernel is written once over `lanes::Lanes` (sixteen f32 lanes: one AVX-512
//! register or two AVX2 ones) and does, lane by lane, the operations of its portable twin in the
//! same order, so the tier changes speed, never a number (each kernel's tests check every tier
//! the CPU has against the portable kernel bit for bit). `GRADLAB_SIMD=off|avx2|avx512` forces
//! a tier (benchmarks' baselines; an AVX-512 machine measures the AVX2 tier this way).

use super::real::Real;
use std::sync::atomic::{AtomicU8, Ordering};

/// The kernels a CPU runs, slowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tier {
    /// The portable kernels (what LLVM makes of them for this build's target).
    Portable,
    /// x86-64 with AVX2 and FMA (x86-64-v3: most laptops, desktops and AMD servers).
    Avx2,
    /// x86-64 with AVX-512F.
    Avx512,
}

impl Tier {
    pub const ALL: [Tier; 3] = [Tier::Portable, Tier::Avx2, Tier::Avx512];

    pub fn name(self) -> &'static str {
        match self {
            Tier::Portable => "portable",
            Tier::Avx2 => "AVX2",
            Tier::Avx512 => "AVX-512",
        }
    }

    /// Whether this CPU can run the tier.
    pub fn available(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            match self {
                Tier::Portable => true,
                Tier::Avx2 => std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma"),
                Tier::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            self == Tier::Portable
        }
    }

    /// The tiers this CPU can run, slowest first.
    pub fn available_tiers() -> Vec<Tier> {
        Tier::ALL.into_iter().filter(|t| t.available()).collect()
    }
}

impl std::fmt::Display for Tier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// 0: no override; else 1 + the forced tier (see [`force`]).
static FORCED: AtomicU8 = AtomicU8::new(0);

/// Forces a tier for the rest of the process (`None`: back to the detected one); the benchmark
/// measures each tier in one run this way. A tier the CPU lacks is not forced.
pub fn force(tier: Option<Tier>) {
    let code = match tier.filter(|t| t.available()) {
        None => 0,
        Some(t) => 1 + t as u8,
    };
    FORCED.store(code, Ordering::Relaxed);
}

/// Turns the SIMD kernels off (or back to the detected tier): the benchmark's portable baseline.
pub fn switch(on: bool) {
    force((!on).then_some(Tier::Portable));
}

/// The tier `GRADLAB_SIMD` asks for (`off`, `avx2`, `avx512`; unset or empty: the best this CPU
/// has), capped at what the CPU has; an unknown value or an unavailable tier is said once on
/// standard error.
fn detected() -> Tier {
    use std::sync::OnceLock;
    static TIER: OnceLock<Tier> = OnceLock::new();
    *TIER.get_or_init(|| {
        let best = Tier::ALL.into_iter().rev().find(|t| t.available()).unwrap_or(Tier::Portable);
        let wanted = match std::env::var("GRADLAB_SIMD").unwrap_or_default().to_ascii_lowercase().as_str() {
            "" => return best,
            "off" | "portable" | "none" => Tier::Portable,
            "avx2" => Tier::Avx2,
            "avx512" | "avx-512" => Tier::Avx512,
            other => {
                eprintln!("gradlab: GRADLAB_SIMD={other:?} is not one of off, avx2, avx512; using {best}");
                return best;
            }
        };
        if wanted > best {
            eprintln!("gradlab: GRADLAB_SIMD asks for {wanted}, which this CPU lacks; using {best}");
        }
        wanted.min(best)
    })
}

/// The tier the kernels run now.
#[inline]
pub fn tier() -> Tier {
    #[cfg(test)]
    if let Some(t) = TEST_TIER.get() {
        return t;
    }
    match FORCED.load(Ordering::Relaxed) {
        0 => detected(),
        code => Tier::ALL[(code - 1) as usize],
    }
}

#[cfg(test)]
thread_local! {
    static TEST_TIER: std::cell::Cell<Option<Tier>> = const { std::cell::Cell::new(None) };
}

/// In unit tests: this thread's kernels run on `tier` until the guard is dropped (a thread's
/// own setting, so tests running side by side do not change each other's tier).
#[cfg(test)]
pub(crate) struct Forced(Option<Tier>);

#[cfg(test)]
impl Forced {
    pub(crate) fn new(tier: Tier) -> Forced {
        assert!(tier.available(), "{tier} is not available on this CPU");
        Forced(TEST_TIER.replace(Some(tier)))
    }
}

#[cfg(test)]
impl Drop for Forced {
    fn drop(&mut self) {
        TEST_TIER.set(self.0);
    }
}

/// The SIMD tiers this CPU has (for tests: each is compared with the portable kernels).
#[cfg(test)]
pub(crate) fn simd_tiers() -> Vec<Tier> {
    Tier::available_tiers().into_iter().filter(|&t| t != Tier::Portable).collect()
}

/// True when a SIMD tier (AVX2 or AVX-512) runs.
pub fn enabled() -> bool {
    tier() != Tier::Portable
}

/// Runs `$kernel` of module `$module` (with `avx512` and `avx2` instantiations, see
/// [`tiered`]) on the current tier's. The caller checked [`enabled`].
macro_rules! dispatch {
    ($module:path, $kernel:ident ( $($arg:expr),* $(,)? )) => {{
        #[cfg(target_arch = "x86_64")]
        {
            use $module as m;
            // SAFETY: the tier's features were detected (`simd::tier`); the caller asserted
            // the bounds the kernel relies on.
            match $crate::engine::simd::tier() {
                $crate::engine::simd::Tier::Avx512 => unsafe { m::avx512::$kernel($($arg),*) },
                $crate::engine::simd::Tier::Avx2 => unsafe { m::avx2::$kernel($($arg),*) },
                $crate::engine::simd::Tier::Portable => unreachable!("a SIMD kernel without a SIMD tier"),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            $( let _ = &$arg; )*
            unreachable!("no SIMD tier off x86-64")
        }
    }};
}
pub(crate) use dispatch;

/// For each listed generic kernel `fn name<V: Lanes>(args) -> R`, an `avx512::name(args)` and an
/// `avx2::name(args)` compiled with that tier's features, each the kernel for that tier's lanes.
/// The kernels themselves are `#[inline(always)]` (so is every `Lanes` method): the whole kernel
/// is compiled inside the tier's function.
macro_rules! tiered {
    ($( $(#[$attr:meta])* fn $name:ident ( $($arg:ident : $ty:ty),* $(,)? ) $(-> $ret:ty)? ; )*) => {
        #[cfg(target_arch = "x86_64")]
        pub(crate) mod avx512 {
            #[allow(unused_imports)]
            use super::*;
            $(
                $(#[$attr])*
                #[target_feature(enable = "avx512f")]
                #[allow(clippy::too_many_arguments)]
                pub(crate) unsafe fn $name($($arg: $ty),*) $(-> $ret)? {
                    // SAFETY: this function's caller guarantees the features and the bounds.
                    unsafe { super::$name::<$crate::engine::lanes::Avx512>($($arg),*) }
                }
            )*
        }
        #[cfg(target_arch = "x86_64")]
        pub(crate) mod avx2 {
            #[allow(unused_imports)]
            use super::*;
            $(
                $(#[$attr])*
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                pub(crate) unsafe fn $name($($arg: $ty),*) $(-> $ret)? {
                    // SAFETY: as above.
                    unsafe { super::$name::<$crate::engine::lanes::Avx2>($($arg),*) }
                }
            )*
        }
    };
}
pub(crate) use tiered;

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

//! `Real`: the float types the engine computes in (`f32` to train, `f64` to check gradients).

use super::scalar::Scalar;
use std::fmt::{Debug, Display};
use std::ops::{AddAssign, MulAssign, SubAssign};

/// A float the engine can run on. The engine is generic so that the very same graph code can
/// be evaluated in `f64` for finite-difference gradient checks.
pub trait Real:
    Scalar + Default + PartialOrd + Display + Debug + Send + Sync + AddAssign + SubAssign + MulAssign + 'static
{
    fn from_f64(v: f64) -> Self {
        Self::cst(v)
    }
    fn to_f64(self) -> f64 {
        self.re()
    }
    /// The machine epsilon, as f64 (what a finite-difference step must stay well above).
    const EPSILON: f64;
    fn is_finite(self) -> bool;
    fn abs(self) -> Self;
    fn sqrt(self) -> Self;
    /// `self·b + c` with one rounding (a single instruction where the CPU has FMA).
    fn mul_add(self, b: Self, c: Self) -> Self;

    /// `matrixmultiply`'s packed kernel; call it through [`super::gemm::gemm`].
    ///
    /// # Safety
    /// Every element the strides address must lie inside its slice (`gemm` checks this).
    #[allow(clippy::too_many_arguments)]
    unsafe fn packed_gemm(
        m: usize,
        k: usize,
        n: usize,
        a: &[Self],
        sa: [usize; 2],
        b: &[Self],
        sb: [usize; 2],
        beta: Self,
        c: &mut [Self],
        sc: [usize; 2],
    );
}

macro_rules! impl_real {
    ($t:ty, $kernel:path) => {
        impl Real for $t {
            const EPSILON: f64 = <$t>::EPSILON as f64;
            fn is_finite(self) -> bool {
                <$t>::is_finite(self)
            }
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            #[inline(always)]
            fn mul_add(self, b: Self, c: Self) -> Self {
                <$t>::mul_add(self, b, c)
            }
            unsafe fn packed_gemm(
                m: usize,
                k: usize,
                n: usize,
                a: &[Self],
                sa: [usize; 2],
                b: &[Self],
                sb: [usize; 2],
                beta: Self,
                c: &mut [Self],
                sc: [usize; 2],
            ) {
                // SAFETY: the caller guarantees every addressed element lies inside its slice,
                // and `c` is a unique borrow, so the kernel's writes cannot alias `a` or `b`.
                unsafe {
                    $kernel(
                        m,
                        k,
                        n,
                        1.0,
                        a.as_ptr(),
                        sa[0] as isize,
                        sa[1] as isize,
                        b.as_ptr(),
                        sb[0] as isize,
                        sb[1] as isize,
                        beta,
                        c.as_mut_ptr(),
                        sc[0] as isize,
                        sc[1] as isize,
                    );
                }
            }
        }
    };
}
impl_real!(f32, matrixmultiply::sgemm);
impl_real!(f64, matrixmultiply::dgemm);

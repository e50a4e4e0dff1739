//! `Real`: the float types the engine computes in (`f32` to train, `f64` to check gradients,
//! `Dual<f64>` for exact Hessian-vector products).

use super::scalar::{Dual, Scalar};
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
    /// Whether unpadded convolutions take the direct kernels (`conv2d::is_direct`): yes for
    /// the floats; a dual tape unrolls, so its products are three f64 matrix products.
    const DIRECT_CONV: bool = true;
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

/// A tape in `Dual<f64>` carries beside every value and gradient its derivative along one
/// direction of the inputs: seeded with a direction `v` in the parameters' tangents, the
/// gradients' tangents are the Hessian-vector product `Hv` (forward-over-reverse, exact to f64
/// rounding). Branches (ReLU, max-pool, the losses' stable forms) follow the value, so a kink
/// contributes nothing, as automatic differentiation in other frameworks has it.
impl Real for Dual<f64> {
    const EPSILON: f64 = f64::EPSILON;
    const DIRECT_CONV: bool = false;
    fn is_finite(self) -> bool {
        self.v.is_finite() && self.d.is_finite()
    }
    fn abs(self) -> Self {
        Scalar::abs(self)
    }
    fn sqrt(self) -> Self {
        let s = self.v.sqrt();
        Dual { v: s, d: self.d / (2.0 * s) }
    }
    #[inline(always)]
    fn mul_add(self, b: Self, c: Self) -> Self {
        self * b + c
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
        assert!(beta.d == 0.0, "gemm: a constant beta");
        // C.v = A.v·B.v + β·C.v; C.d = A.d·B.v + A.v·B.d + β·C.d: three f64 products over the
        // interleaved halves (`Dual` is `repr(C)`: element i's value at 2i, its tangent at 2i+1).
        let s = |x: [usize; 2]| (2 * x[0] as isize, 2 * x[1] as isize);
        let ((ra, ca), (rb, cb), (rc, cc)) = (s(sa), s(sb), s(sc));
        let (a, b, c) = (a.as_ptr() as *const f64, b.as_ptr() as *const f64, c.as_mut_ptr() as *mut f64);
        // SAFETY: element (i, j) of a matrix lies at Dual index i·s0 + j·s1 < len (the caller's
        // guarantee), so its halves at f64 index 2(i·s0 + j·s1) (+1) lie inside the 2·len f64s;
        // `c` is a unique borrow.
        unsafe {
            matrixmultiply::dgemm(m, k, n, 1.0, a, ra, ca, b, rb, cb, beta.v, c, rc, cc);
            matrixmultiply::dgemm(m, k, n, 1.0, a.add(1), ra, ca, b, rb, cb, beta.v, c.add(1), rc, cc);
            matrixmultiply::dgemm(m, k, n, 1.0, a, ra, ca, b.add(1), rb, cb, 1.0, c.add(1), rc, cc);
        }
    }
}

impl PartialOrd for Dual<f64> {
    /// By value: the branches of a formula on duals follow the point, not the direction.
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        self.v.partial_cmp(&o.v)
    }
}
impl Display for Dual<f64> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}+{}ε", self.v, self.d)
    }
}
impl AddAssign for Dual<f64> {
    fn add_assign(&mut self, o: Self) {
        *self = *self + o;
    }
}
impl SubAssign for Dual<f64> {
    fn sub_assign(&mut self, o: Self) {
        *self = *self - o;
    }
}
impl MulAssign for Dual<f64> {
    fn mul_assign(&mut self, o: Self) {
        *self = *self * o;
    }
}

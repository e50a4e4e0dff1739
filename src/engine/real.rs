//! `Real`: the float types the engine computes in (`f32` to train, `f64` to check gradients),
//! and the one matrix-multiply entry point every layer uses.

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
    fn is_finite(self) -> bool;
    fn abs(self) -> Self;

    /// `C ← A·B + beta·C` for an `m×k` matrix `A` and a `k×n` matrix `B`, each addressed by a
    /// row and a column stride (so transposes cost nothing). The kernel is `matrixmultiply`.
    ///
    /// Panics if a stride pattern would address outside a slice.
    #[allow(clippy::too_many_arguments)]
    fn gemm(m: usize, k: usize, n: usize, a: &[Self], a_strides: [usize; 2], b: &[Self], b_strides: [usize; 2], beta: Self, c: &mut [Self], c_strides: [usize; 2]);
}

/// The largest index a strided `rows×cols` matrix touches, plus one.
fn extent(rows: usize, cols: usize, s: [usize; 2]) -> usize {
    if rows == 0 || cols == 0 { 0 } else { (rows - 1) * s[0] + (cols - 1) * s[1] + 1 }
}

fn check_gemm(m: usize, k: usize, n: usize, a: usize, sa: [usize; 2], b: usize, sb: [usize; 2], c: usize, sc: [usize; 2]) {
    assert!(extent(m, k, sa) <= a, "gemm: A ({m}×{k}, strides {sa:?}) exceeds its buffer of {a}");
    assert!(extent(k, n, sb) <= b, "gemm: B ({k}×{n}, strides {sb:?}) exceeds its buffer of {b}");
    assert!(extent(m, n, sc) <= c, "gemm: C ({m}×{n}, strides {sc:?}) exceeds its buffer of {c}");
}

macro_rules! impl_real {
    ($t:ty, $kernel:path) => {
        impl Real for $t {
            fn is_finite(self) -> bool {
                <$t>::is_finite(self)
            }
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            fn gemm(m: usize, k: usize, n: usize, a: &[Self], sa: [usize; 2], b: &[Self], sb: [usize; 2], beta: Self, c: &mut [Self], sc: [usize; 2]) {
                check_gemm(m, k, n, a.len(), sa, b.len(), sb, c.len(), sc);
                if m == 0 || n == 0 {
                    return;
                }
                // SAFETY: check_gemm proved every addressed element lies inside its slice,
                // and `c` is a unique borrow, so the kernel's writes cannot alias `a` or `b`.
                unsafe {
                    $kernel(
                        m, k, n, 1.0, a.as_ptr(), sa[0] as isize, sa[1] as isize, b.as_ptr(), sb[0] as isize, sb[1] as isize,
                        beta, c.as_mut_ptr(), sc[0] as isize, sc[1] as isize,
                    );
                }
            }
        }
    };
}
impl_real!(f32, matrixmultiply::sgemm);
impl_real!(f64, matrixmultiply::dgemm);

#[cfg(test)]
mod tests {
    use super::*;

    /// The obviously right twin of `gemm`, in f64.
    fn naive(m: usize, k: usize, n: usize, a: &[f64], sa: [usize; 2], b: &[f64], sb: [usize; 2], c: &mut [f64], sc: [usize; 2], beta: f64) {
        for i in 0..m {
            for j in 0..n {
                let mut s = 0.0;
                for p in 0..k {
                    s += a[i * sa[0] + p * sa[1]] * b[p * sb[0] + j * sb[1]];
                }
                let ci = i * sc[0] + j * sc[1];
                c[ci] = s + beta * c[ci];
            }
        }
    }

    #[test]
    fn gemm_matches_naive_on_awkward_shapes_and_transposes() {
        let mut seed = 1u64;
        let mut rnd = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((seed >> 33) as f64 / (1u64 << 31) as f64) - 0.5
        };
        for &(m, k, n) in &[(1, 1, 1), (3, 5, 7), (64, 16, 4), (17, 1, 9), (4, 64, 16), (33, 31, 29)] {
            for trans_a in [false, true] {
                for trans_b in [false, true] {
                    let a: Vec<f64> = (0..m * k).map(|_| rnd()).collect();
                    let b: Vec<f64> = (0..k * n).map(|_| rnd()).collect();
                    let sa = if trans_a { [1, m] } else { [k, 1] };
                    let sb = if trans_b { [1, k] } else { [n, 1] };
                    let c0: Vec<f64> = (0..m * n).map(|_| rnd()).collect();
                    let (mut want, mut got) = (c0.clone(), c0.clone());
                    naive(m, k, n, &a, sa, &b, sb, &mut want, [n, 1], 1.0);
                    f64::gemm(m, k, n, &a, sa, &b, sb, 1.0, &mut got, [n, 1]);
                    for (g, w) in got.iter().zip(&want) {
                        assert!((g - w).abs() < 1e-12 * (k as f64 + 1.0), "{m}×{k}×{n}: {g} vs {w}");
                    }
                    let af: Vec<f32> = a.iter().map(|&v| v as f32).collect();
                    let bf: Vec<f32> = b.iter().map(|&v| v as f32).collect();
                    let mut cf = vec![0f32; m * n];
                    naive(m, k, n, &a, sa, &b, sb, &mut want, [n, 1], 0.0);
                    f32::gemm(m, k, n, &af, sa, &bf, sb, 0.0, &mut cf, [n, 1]);
                    for (g, w) in cf.iter().zip(&want) {
                        assert!((*g as f64 - w).abs() < 1e-5 * (k as f64 + 1.0), "f32 {m}×{k}×{n}: {g} vs {w}");
                    }
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "exceeds its buffer")]
    fn gemm_refuses_out_of_bounds_strides() {
        let a = [0f32; 4];
        let mut c = [0f32; 4];
        f32::gemm(2, 3, 2, &a, [3, 1], &a, [2, 1], 0.0, &mut c, [2, 1]);
    }
}

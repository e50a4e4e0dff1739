//! Matrix multiply: `C ← A·B + beta·C` with arbitrary row/column strides.
//!
//! The engine's matrices are often tiny (fc73: 4×16 weights, batch 64) or tall and thin
//! (an ensemble's stacked weights). `matrixmultiply` packs its operands into aligned buffers
//! on every call, which costs more than the arithmetic at these sizes (measured: about half
//! of an fc73 step). So products below [`SMALL`] go through direct kernels that the compiler
//! vectorises — register-blocked rows when `B`'s rows are contiguous, plain dot products when
//! `A`'s rows and `B`'s columns are — and everything else through `matrixmultiply`. Each path is
//! tested against a naive triple loop on awkward shapes.

use super::real::Real;
use super::simd::{as_f32, as_f32_mut};

/// Below this many multiply–adds (per model) a product uses the direct kernels; larger ones
/// pay for `matrixmultiply`'s packing, which wins there (measured on the CNN's products: 2–3×).
pub const SMALL: usize = 1 << 20;

/// Which kernel computes a product (exposed so tests can force each one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    Auto,
    Axpy,
    Dot,
    Packed,
}

/// The largest index a strided `rows×cols` matrix touches, plus one.
pub(crate) fn extent(rows: usize, cols: usize, s: [usize; 2]) -> usize {
    if rows == 0 || cols == 0 { 0 } else { (rows - 1) * s[0] + (cols - 1) * s[1] + 1 }
}

/// `C ← A·B + beta·C` for an `m×k` matrix `A` and a `k×n` matrix `B`, each given by a slice
/// and `[row stride, column stride]`. Panics if a stride pattern would leave its slice.
#[allow(clippy::too_many_arguments)]
#[inline]
pub fn gemm<T: Real>(
    m: usize,
    k: usize,
    n: usize,
    a: &[T],
    sa: [usize; 2],
    b: &[T],
    sb: [usize; 2],
    beta: T,
    c: &mut [T],
    sc: [usize; 2],
) {
    gemm_with(Kernel::Auto, m, k, n, a, sa, b, sb, beta, c, sc)
}

/// [`gemm`] for the stacked rows of several models sharing `B` (a shared input): the kernel
/// is chosen from one model's `rows_per_model`, so a model's numbers do not depend on how
/// many models share the product.
#[allow(clippy::too_many_arguments)]
#[inline]
pub fn gemm_shared<T: Real>(
    rows_per_model: usize,
    m: usize,
    k: usize,
    n: usize,
    a: &[T],
    sa: [usize; 2],
    b: &[T],
    sb: [usize; 2],
    beta: T,
    c: &mut [T],
    sc: [usize; 2],
) {
    let kernel = choose(rows_per_model, k, n, sa, sb, sc);
    gemm_with(kernel, m, k, n, a, sa, b, sb, beta, c, sc)
}

fn choose(m: usize, k: usize, n: usize, sa: [usize; 2], sb: [usize; 2], sc: [usize; 2]) -> Kernel {
    let own = m * n * k < SMALL;
    if own && sb[1] == 1 && sc[1] == 1 {
        Kernel::Axpy
    } else if own && sa[1] == 1 && sb[0] == 1 {
        Kernel::Dot
    } else {
        Kernel::Packed
    }
}

#[allow(clippy::too_many_arguments)]
pub fn gemm_with<T: Real>(
    kernel: Kernel,
    m: usize,
    k: usize,
    n: usize,
    a: &[T],
    sa: [usize; 2],
    b: &[T],
    sb: [usize; 2],
    beta: T,
    c: &mut [T],
    sc: [usize; 2],
) {
    assert!(extent(m, k, sa) <= a.len(), "gemm: A ({m}×{k}, strides {sa:?}) exceeds its buffer of {}", a.len());
    assert!(extent(k, n, sb) <= b.len(), "gemm: B ({k}×{n}, strides {sb:?}) exceeds its buffer of {}", b.len());
    assert!(extent(m, n, sc) <= c.len(), "gemm: C ({m}×{n}, strides {sc:?}) exceeds its buffer of {}", c.len());
    if m == 0 || n == 0 {
        return;
    }
    let axpy_ok = sb[1] == 1 && sc[1] == 1;
    let dot_ok = sa[1] == 1 && sb[0] == 1;
    let kernel = match kernel {
        Kernel::Auto => choose(m, k, n, sa, sb, sc),
        Kernel::Axpy => {
            assert!(axpy_ok, "axpy kernel needs unit column strides in B and C");
            Kernel::Axpy
        }
        Kernel::Dot => {
            assert!(dot_ok, "dot kernel needs contiguous rows of A and columns of B");
            Kernel::Dot
        }
        Kernel::Packed => Kernel::Packed,
    };
    match kernel {
        Kernel::Axpy => {
            if let (Some(af), Some(bf), Some(cf)) = (as_f32(a), as_f32(b), as_f32_mut(c))
                && super::simd::enabled()
            {
                return super::gemm_simd::axpy(m, k, n, af, sa, bf, sb[0], beta.to_f64() as f32, cf, sc[0]);
            }
            axpy_portable(m, k, n, a, sa, b, sb[0], beta, c, sc[0])
        }
        Kernel::Dot => {
            if let (Some(af), Some(bf), Some(cf)) = (as_f32(a), as_f32(b), as_f32_mut(c))
                && super::simd::enabled()
            {
                return super::gemm_simd::dot(m, k, n, af, sa[0], bf, sb[1], beta.to_f64() as f32, cf, sc);
            }
            dot_portable(m, k, n, a, sa[0], b, sb[1], beta, c, sc)
        }
        // SAFETY: the three asserts above bound every element the strides address.
        _ => unsafe { T::packed_gemm(m, k, n, a, sa, b, sb, beta, c, sc) },
    }
}

/// Columns of `C` one register block holds (16 f32 = one AVX-512 register).
const NR: usize = 16;

/// `C = A·B + beta·C` when `B`'s and `C`'s rows are contiguous: blocks of `MR` rows × `NR`
/// columns accumulate in registers over the whole `k` loop, each loaded row of `B` serving
/// `MR` rows of `C`.
/// The portable kernel: the definition of `gemm_simd`'s results.
#[allow(clippy::too_many_arguments)]
pub(crate) fn axpy_portable<T: Real>(
    m: usize,
    k: usize,
    n: usize,
    a: &[T],
    sa: [usize; 2],
    b: &[T],
    ldb: usize,
    beta: T,
    c: &mut [T],
    ldc: usize,
) {
    let mut i = 0;
    while i + 8 <= m {
        row_block::<T, 8>(i, k, n, a, sa, b, ldb, beta, c, ldc);
        i += 8;
    }
    while i + 4 <= m {
        row_block::<T, 4>(i, k, n, a, sa, b, ldb, beta, c, ldc);
        i += 4;
    }
    while i < m {
        row_block::<T, 1>(i, k, n, a, sa, b, ldb, beta, c, ldc);
        i += 1;
    }
}

/// Every element is `Σₚ A[i,p]·B[p,j]` fused-multiply-added in order of `p` from zero, then `+ beta·C`: the
/// same arithmetic in every path, so a model's numbers do not depend on how many models
/// share the product.
#[inline(always)]
fn finish<T: Real>(acc: T, beta: T, c: &mut T) {
    *c = if beta == T::default() { acc } else { acc + beta * *c };
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn row_block<T: Real, const MR: usize>(
    i: usize,
    k: usize,
    n: usize,
    a: &[T],
    sa: [usize; 2],
    b: &[T],
    ldb: usize,
    beta: T,
    c: &mut [T],
    ldc: usize,
) {
    let mut j = 0;
    while j + NR <= n {
        let mut acc = [[T::default(); NR]; MR];
        for p in 0..k {
            let brow: &[T; NR] = b[p * ldb + j..p * ldb + j + NR].try_into().expect("NR elements");
            for (r, acc_r) in acc.iter_mut().enumerate() {
                let av = a[(i + r) * sa[0] + p * sa[1]];
                for l in 0..NR {
                    acc_r[l] = av.mul_add(brow[l], acc_r[l]);
                }
            }
        }
        for (r, acc_r) in acc.iter().enumerate() {
            let crow = &mut c[(i + r) * ldc + j..(i + r) * ldc + j + NR];
            for l in 0..NR {
                finish(acc_r[l], beta, &mut crow[l]);
            }
        }
        j += NR;
    }
    for r in 0..MR {
        for jj in j..n {
            let mut acc = T::default();
            for p in 0..k {
                acc = a[(i + r) * sa[0] + p * sa[1]].mul_add(b[p * ldb + jj], acc);
            }
            finish(acc, beta, &mut c[(i + r) * ldc + jj]);
        }
    }
}

/// `C[i,j] = A[i,:]·B[:,j] + beta·C[i,j]` with both vectors contiguous (e.g. `dW = dY·Xᵀ`):
/// blocks of up to 8 rows of `A` share each column of `B`, and every dot product runs in 16
/// lanes (lane `l` sums the terms `p ≡ l mod 16` in order), reduced pairwise at the end, then
/// the tail: a fixed order, so results are the same on every machine.
/// The portable kernel: the definition of `gemm_simd::dot`'s results.
#[allow(clippy::too_many_arguments)]
pub(crate) fn dot_portable<T: Real>(
    m: usize,
    k: usize,
    n: usize,
    a: &[T],
    lda: usize,
    b: &[T],
    ldbt: usize,
    beta: T,
    c: &mut [T],
    sc: [usize; 2],
) {
    let mut i = 0;
    while i + 8 <= m {
        dot_block::<T, 8>(i, k, n, a, lda, b, ldbt, beta, c, sc);
        i += 8;
    }
    while i < m {
        dot_block::<T, 1>(i, k, n, a, lda, b, ldbt, beta, c, sc);
        i += 1;
    }
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn dot_block<T: Real, const MR: usize>(
    i: usize,
    k: usize,
    n: usize,
    a: &[T],
    lda: usize,
    b: &[T],
    ldbt: usize,
    beta: T,
    c: &mut [T],
    sc: [usize; 2],
) {
    const L: usize = 16;
    let full = k / L * L;
    for j in 0..n {
        let bcol = &b[j * ldbt..j * ldbt + k];
        let mut acc = [[T::default(); L]; MR];
        for p0 in (0..full).step_by(L) {
            let bv: &[T; L] = bcol[p0..p0 + L].try_into().expect("L elements");
            for (r, acc_r) in acc.iter_mut().enumerate() {
                let av: &[T; L] = a[(i + r) * lda + p0..(i + r) * lda + p0 + L].try_into().expect("L elements");
                for l in 0..L {
                    acc_r[l] = av[l].mul_add(bv[l], acc_r[l]);
                }
            }
        }
        for (r, acc_r) in acc.iter_mut().enumerate() {
            let mut sum = pairwise_sum(acc_r);
            for p in full..k {
                sum = a[(i + r) * lda + p].mul_add(bcol[p], sum);
            }
            finish(sum, beta, &mut c[(i + r) * sc[0] + j * sc[1]]);
        }
    }
}

/// `Σ v` in 16 lanes (element `i` into lane `i mod 16`), then [`pairwise_sum`]: vectorises
/// where a left-to-right sum cannot (the bias gradients were 8% of a CNN step), in one fixed
/// order on every machine.
#[inline]
pub(crate) fn lane_sum<T: Real>(v: &[T]) -> T {
    const W: usize = 16;
    let mut lanes = [T::default(); W];
    let mut chunks = v.chunks_exact(W);
    for c in &mut chunks {
        for l in 0..W {
            lanes[l] += c[l];
        }
    }
    for (l, &x) in chunks.remainder().iter().enumerate() {
        lanes[l] += x;
    }
    pairwise_sum(&mut lanes)
}

/// `Σ lanes`, halving the width each round: a fixed order, the same on every machine.
#[inline(always)]
pub(crate) fn pairwise_sum<T: Real, const L: usize>(lanes: &mut [T; L]) -> T {
    let mut w = L;
    while w > 1 {
        w /= 2;
        for l in 0..w {
            lanes[l] += lanes[l + w];
        }
    }
    lanes[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lane_sum_is_the_sum_in_its_fixed_order() {
        for n in [0usize, 1, 15, 16, 17, 64, 100, 6400] {
            let v: Vec<f32> = (0..n).map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.013).collect();
            let exact: f64 = v.iter().map(|&x| x as f64).sum();
            let got = lane_sum(&v) as f64;
            assert!((got - exact).abs() <= 1e-5 * (1.0 + exact.abs()), "n {n}: {got} vs {exact}");
            // The order is the documented one: lanes by i mod 16, then halving.
            let mut lanes = [0f32; 16];
            for (i, &x) in v.iter().enumerate() {
                lanes[i % 16] += x;
            }
            assert_eq!(got as f32, pairwise_sum(&mut lanes), "n {n}");
        }
    }

    /// The obviously right twin, in f64.
    fn naive(
        m: usize,
        k: usize,
        n: usize,
        a: &[f64],
        sa: [usize; 2],
        b: &[f64],
        sb: [usize; 2],
        beta: f64,
        c: &mut [f64],
        sc: [usize; 2],
    ) {
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
    fn every_kernel_matches_naive_on_awkward_shapes_and_transposes() {
        let mut seed = 1u64;
        let mut rnd = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((seed >> 33) as f64 / (1u64 << 31) as f64) - 0.5
        };
        let shapes =
            [(1, 1, 1), (3, 5, 7), (64, 16, 4), (17, 1, 9), (4, 64, 16), (33, 31, 29), (128, 16, 64), (5, 100, 3)];
        for &(m, k, n) in &shapes {
            for trans_a in [false, true] {
                for trans_b in [false, true] {
                    for beta in [0.0, 1.0, 0.5] {
                        let a: Vec<f64> = (0..m * k).map(|_| rnd()).collect();
                        let b: Vec<f64> = (0..k * n).map(|_| rnd()).collect();
                        let sa = if trans_a { [1, m] } else { [k, 1] };
                        let sb = if trans_b { [1, k] } else { [n, 1] };
                        let c0: Vec<f64> = (0..m * n).map(|_| rnd()).collect();
                        let mut want = c0.clone();
                        naive(m, k, n, &a, sa, &b, sb, beta, &mut want, [n, 1]);
                        let mut kernels = vec![Kernel::Auto, Kernel::Packed];
                        if !trans_b {
                            kernels.push(Kernel::Axpy);
                        }
                        if !trans_a && trans_b {
                            kernels.push(Kernel::Dot);
                        }
                        for kernel in kernels {
                            let mut got = c0.clone();
                            gemm_with(kernel, m, k, n, &a, sa, &b, sb, beta, &mut got, [n, 1]);
                            for (g, w) in got.iter().zip(&want) {
                                assert!(
                                    (g - w).abs() < 1e-12 * (k as f64 + 1.0),
                                    "{kernel:?} {m}×{k}×{n} ta={trans_a} tb={trans_b}: {g} vs {w}"
                                );
                            }
                            let af: Vec<f32> = a.iter().map(|&v| v as f32).collect();
                            let bf: Vec<f32> = b.iter().map(|&v| v as f32).collect();
                            let mut cf: Vec<f32> = c0.iter().map(|&v| v as f32).collect();
                            gemm_with(kernel, m, k, n, &af, sa, &bf, sb, beta as f32, &mut cf, [n, 1]);
                            for (g, w) in cf.iter().zip(&want) {
                                assert!(
                                    (*g as f64 - w).abs() < 1e-5 * (k as f64 + 1.0),
                                    "f32 {kernel:?} {m}×{k}×{n}: {g} vs {w}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "exceeds its buffer")]
    fn refuses_out_of_bounds_strides() {
        let a = [0f32; 4];
        let mut c = [0f32; 4];
        gemm(2, 3, 2, &a, [3, 1], &a, [2, 1], 0.0, &mut c, [2, 1]);
    }
}

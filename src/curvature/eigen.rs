//! Eigenpairs of symmetric matrices: dense ones by the cyclic Jacobi method (simple, accurate
//! to rounding, for the full Hessian of nets up to a few thousand parameters), and Lanczos's
//! tridiagonal ones by the implicit QL algorithm, which can carry just the rows of the
//! eigenvectors it is asked for (the first and last: quadrature weights and residuals) in
//! O(k²) per solve.

/// Eigenvalues (descending) of the symmetric tridiagonal matrix with diagonal `a` and
/// off-diagonal `b` (`b.len() + 1 == a.len()`), and rows `rows` of its unit eigenvectors:
/// `out[j][i]` is component `rows[j]` of the eigenvector of value `i`.
pub fn tridiagonal_eigen(a: &[f64], b: &[f64], rows: &[usize]) -> (Vec<f64>, Vec<Vec<f64>>) {
    let n = a.len();
    assert_eq!(b.len() + 1, n.max(1), "a tridiagonal matrix");
    let mut d = a.to_vec();
    let mut e: Vec<f64> = b.iter().copied().chain(std::iter::once(0.0)).collect();
    let mut z: Vec<Vec<f64>> = rows.iter().map(|&r| (0..n).map(|j| f64::from(j == r)).collect()).collect();
    for l in 0..n {
        for _iteration in 0..100 {
            let mut m = l;
            while m + 1 < n && e[m].abs() > f64::EPSILON * (d[m].abs() + d[m + 1].abs()) {
                m += 1;
            }
            if m == l {
                break;
            }
            // Wilkinson's shift from the leading 2 × 2 block, then rotations chasing the bulge.
            let mut g = (d[l + 1] - d[l]) / (2.0 * e[l]);
            let r = g.hypot(1.0);
            g = d[m] - d[l] + e[l] / (g + r.copysign(g));
            let (mut s, mut c, mut p) = (1.0, 1.0, 0.0);
            let mut underflow = false;
            for i in (l..m).rev() {
                let f = s * e[i];
                let bb = c * e[i];
                let r = f.hypot(g);
                e[i + 1] = r;
                if r == 0.0 {
                    d[i + 1] -= p;
                    e[m] = 0.0;
                    underflow = true;
                    break;
                }
                s = f / r;
                c = g / r;
                g = d[i + 1] - p;
                let r = (d[i] - g) * s + 2.0 * c * bb;
                p = s * r;
                d[i + 1] = g + p;
                g = c * r - bb;
                for zr in z.iter_mut() {
                    let f = zr[i + 1];
                    zr[i + 1] = s * zr[i] + c * f;
                    zr[i] = c * zr[i] - s * f;
                }
            }
            if underflow {
                continue;
            }
            d[l] -= p;
            e[l] = g;
            e[m] = 0.0;
        }
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| d[j].total_cmp(&d[i]));
    (order.iter().map(|&i| d[i]).collect(), z.iter().map(|zr| order.iter().map(|&i| zr[i]).collect()).collect())
}

/// Eigenvalues of a symmetric `n × n` matrix (row-major), descending.
pub fn symmetric_eigenvalues(a: &[f64], n: usize) -> Vec<f64> {
    jacobi(a, n, false).0
}

/// Eigenvalues (descending) and eigenvectors of a symmetric `n × n` matrix: `vectors[r·n + i]`
/// is component `r` of the unit eigenvector of `values[i]`.
pub fn symmetric_eigen(a: &[f64], n: usize) -> (Vec<f64>, Vec<f64>) {
    let (values, vectors) = jacobi(a, n, true);
    (values, vectors.expect("asked for"))
}

fn jacobi(a: &[f64], n: usize, want_vectors: bool) -> (Vec<f64>, Option<Vec<f64>>) {
    assert_eq!(a.len(), n * n, "an n × n matrix");
    let mut m = a.to_vec();
    let mut v: Option<Vec<f64>> = want_vectors.then(|| (0..n * n).map(|k| f64::from(k / n == k % n)).collect());
    let scale: f64 = m.iter().map(|x| x * x).sum::<f64>().max(1e-300);
    for _sweep in 0..100 {
        let off: f64 =
            (0..n).flat_map(|i| (i + 1..n).map(move |j| (i, j))).map(|(i, j)| 2.0 * m[i * n + j].powi(2)).sum();
        if off <= 1e-30 * scale {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = m[p * n + q];
                if apq.abs() < 1e-300 {
                    continue;
                }
                let theta = (m[q * n + q] - m[p * n + p]) / (2.0 * apq);
                let t = if theta == 0.0 { 1.0 } else { theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt()) };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                let rotate = |x: &mut [f64], i: usize, j: usize| {
                    let (xi, xj) = (x[i], x[j]);
                    x[i] = c * xi - s * xj;
                    x[j] = s * xi + c * xj;
                };
                for k in 0..n {
                    rotate(&mut m, k * n + p, k * n + q);
                }
                for k in 0..n {
                    rotate(&mut m, p * n + k, q * n + k);
                }
                if let Some(v) = v.as_mut() {
                    for k in 0..n {
                        rotate(v, k * n + p, k * n + q);
                    }
                }
            }
        }
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| m[j * n + j].total_cmp(&m[i * n + i]));
    let values = order.iter().map(|&i| m[i * n + i]).collect();
    let vectors = v.map(|v| (0..n * n).map(|k| v[(k / n) * n + order[k % n]]).collect());
    (values, vectors)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Q·diag(d)·Qᵀ with Q a product of two plane rotations.
    fn rotated(d: &[f64; 4]) -> Vec<f64> {
        let n = 4;
        let rot = |i: usize, j: usize, a: f64| {
            let mut r = vec![0.0; n * n];
            (0..n).for_each(|k| r[k * n + k] = 1.0);
            r[i * n + i] = a.cos();
            r[j * n + j] = a.cos();
            r[i * n + j] = -a.sin();
            r[j * n + i] = a.sin();
            r
        };
        let mul = |a: &[f64], b: &[f64]| -> Vec<f64> {
            (0..n * n).map(|k| (0..n).map(|t| a[(k / n) * n + t] * b[t * n + k % n]).sum()).collect()
        };
        let q = mul(&rot(0, 2, 0.7), &rot(1, 3, -1.1));
        let qt: Vec<f64> = (0..n * n).map(|k| q[(k % n) * n + k / n]).collect();
        let dm: Vec<f64> = (0..n * n).map(|k| if k / n == k % n { d[k / n] } else { 0.0 }).collect();
        mul(&mul(&q, &dm), &qt)
    }

    #[test]
    fn ql_on_a_tridiagonal_matrix_agrees_with_jacobi() {
        let k = 12;
        let a: Vec<f64> = (0..k).map(|i| ((i * 5 % 7) as f64 - 3.0) / 2.0).collect();
        let b: Vec<f64> = (0..k - 1).map(|i| 0.3 + (i % 3) as f64 * 0.4).collect();
        let mut t = vec![0.0; k * k];
        for i in 0..k {
            t[i * k + i] = a[i];
            if i + 1 < k {
                t[i * k + i + 1] = b[i];
                t[(i + 1) * k + i] = b[i];
            }
        }
        let (want, vectors) = symmetric_eigen(&t, k);
        let (got, rows) = tridiagonal_eigen(&a, &b, &[0, k - 1]);
        for i in 0..k {
            assert!((got[i] - want[i]).abs() < 1e-12, "{got:?} vs {want:?}");
            // The same rows of the eigenvectors, up to each vector's sign.
            let sign = (rows[0][i] * vectors[i]).signum();
            assert!((rows[0][i] - sign * vectors[i]).abs() < 1e-10);
            assert!((rows[1][i] - sign * vectors[(k - 1) * k + i]).abs() < 1e-10);
        }
    }

    #[test]
    fn jacobi_finds_the_eigenpairs_of_a_rotated_diagonal() {
        let ev = symmetric_eigenvalues(&[2.0, 1.0, 1.0, 2.0], 2);
        assert!((ev[0] - 3.0).abs() < 1e-12 && (ev[1] - 1.0).abs() < 1e-12, "{ev:?}");
        let a = rotated(&[5.0, -1.0, 0.5, 2.0]);
        let (values, vectors) = symmetric_eigen(&a, 4);
        for (got, want) in values.iter().zip([5.0, 2.0, 0.5, -1.0]) {
            assert!((got - want).abs() < 1e-12, "{values:?}");
        }
        // A·vᵢ = λᵢ·vᵢ, and the vectors are orthonormal.
        for i in 0..4 {
            for r in 0..4 {
                let av: f64 = (0..4).map(|c| a[r * 4 + c] * vectors[c * 4 + i]).sum();
                assert!((av - values[i] * vectors[r * 4 + i]).abs() < 1e-12);
            }
            for j in 0..4 {
                let d: f64 = (0..4).map(|r| vectors[r * 4 + i] * vectors[r * 4 + j]).sum();
                assert!((d - f64::from(i == j)).abs() < 1e-12);
            }
        }
    }
}

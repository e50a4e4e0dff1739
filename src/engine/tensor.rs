//! Views of ensemble-first tensors `[E, ...]`, shared by the tape and the kernels (a leaf
//! module, so that the kernels need not import the tape).

/// A borrowed tensor: its data and its shape `[E, ...]`.
#[derive(Clone, Copy)]
pub struct TensorRef<'a, T> {
    pub data: &'a [T],
    pub shape: &'a [usize],
}

impl<'a, T> TensorRef<'a, T> {
    /// Elements per model.
    pub fn per_model(&self) -> usize {
        self.shape[1..].iter().product()
    }
    /// Model `e`'s slab; a tensor shared by all models (leading axis 1) returns itself.
    pub fn model(&self, e: usize) -> &'a [T] {
        let n = self.per_model();
        if self.shape[0] == 1 { &self.data[..n] } else { &self.data[e * n..(e + 1) * n] }
    }
}

/// Model `e`'s slab of a mutable buffer whose leading axis is `ensemble` (1 = shared).
pub(crate) fn model_mut<T>(data: &mut [T], ensemble: usize, e: usize) -> &mut [T] {
    let n = data.len() / ensemble;
    let e = if ensemble == 1 { 0 } else { e };
    &mut data[e * n..(e + 1) * n]
}

/// `dst[c·rows + r] = src[r·cols + c]`: a `rows × cols` matrix transposed, in 16 × 16 tiles so
/// that each tile's reads and writes stay in a few cache lines (a column-by-column scatter was
/// 2% of a CNN step, for its dense heads' saved inputs).
pub fn transpose<T: Copy + Default>(src: &[T], rows: usize, cols: usize, dst: &mut [T]) {
    const TILE: usize = 16;
    assert!(src.len() >= rows * cols && dst.len() >= rows * cols, "transpose: buffers too short");
    let mut tile = [[T::default(); TILE]; TILE];
    for r0 in (0..rows).step_by(TILE) {
        let nr = TILE.min(rows - r0);
        for c0 in (0..cols).step_by(TILE) {
            let nc = TILE.min(cols - c0);
            // In through contiguous runs of the source's rows, out through the destination's.
            for (r, line) in tile.iter_mut().enumerate().take(nr) {
                line[..nc].copy_from_slice(&src[(r0 + r) * cols + c0..][..nc]);
            }
            for c in 0..nc {
                let out = &mut dst[(c0 + c) * rows + r0..][..nr];
                for (r, o) in out.iter_mut().enumerate() {
                    *o = tile[r][c];
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn transpose_moves_every_element_once() {
        for (rows, cols) in [(1, 1), (3, 17), (64, 16), (16, 64), (33, 40)] {
            let src: Vec<usize> = (0..rows * cols).collect();
            let mut dst = vec![usize::MAX; rows * cols];
            super::transpose(&src, rows, cols, &mut dst);
            for r in 0..rows {
                for c in 0..cols {
                    assert_eq!(dst[c * rows + r], r * cols + c, "{rows}×{cols} at {r},{c}");
                }
            }
        }
    }
}

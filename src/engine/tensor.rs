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

//! Parameters in and out as safetensors, one file per model, under PyTorch names and layouts
//! (`fc1.weight [4, 16]`, `conv1.weight [16, 1, 7, 7]`, `cls.bias [1]`, …), so a run can start
//! from, or be continued in, another framework. Variants carry their own shapes: per-sample
//! biases `fc1.bias [4, 64]`, `fc2.bias [1, 64]`; untied conv biases `conv1.bias [16, 10, 10]`,
//! `conv2.bias [8, 4, 4]`. Tensors are written as F32; F32 and F64 are read.

use super::Net;
use crate::engine::NodeId;
use crate::error::{Error, Result};
use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use std::path::Path;

/// One model's parameters (or any vector shaped like them), tensor by tensor; a model's state
/// ([`of_model`]) also lists its buffers after them (directions and gradients do not).
pub type Point = Vec<Vec<f32>>;

/// Model `m`'s parameters of `net`, then its buffers (BatchNorm's running estimates).
pub fn of_model(net: &Net<f32>, m: usize) -> Point {
    let e = net.graph.ensemble();
    net.tensors()
        .map(|(_, id)| {
            let v = net.graph.value(id);
            let n = v.len() / e;
            v[m * n..(m + 1) * n].to_vec()
        })
        .collect()
}

/// Writes `point` (parameters, then buffers if it has them, as [`of_model`]) into model `m`.
pub fn set_model<T: crate::engine::Real>(net: &mut Net<T>, m: usize, point: &[Vec<f32>]) {
    let e = net.graph.ensemble();
    let ids: Vec<NodeId> = net.tensors().map(|(_, id)| id).collect();
    for (id, t) in ids.into_iter().zip(point) {
        let v = net.graph.value_mut(id);
        let n = v.len() / e;
        for (d, &s) in v[m * n..(m + 1) * n].iter_mut().zip(t) {
            *d = T::from_f64(s as f64);
        }
    }
}

/// Model `e`'s parameters as safetensors bytes.
pub fn to_bytes(net: &Net<f32>, e: usize) -> Result<Vec<u8>> {
    let e_count = net.graph.ensemble();
    let mut blobs = vec![];
    for (name, id) in net.tensors() {
        let values = net.graph.value(id);
        let n = values.len() / e_count;
        let bytes: Vec<u8> = values[e * n..(e + 1) * n].iter().flat_map(|v| v.to_le_bytes()).collect();
        blobs.push((name.to_string(), net.graph.shape(id)[1..].to_vec(), bytes));
    }
    let views: Vec<(String, TensorView)> = blobs
        .iter()
        .map(|(name, shape, bytes)| {
            let view = TensorView::new(Dtype::F32, shape.clone(), bytes).expect("sizes agree by construction");
            (name.clone(), view)
        })
        .collect();
    safetensors::serialize(views, None).map_err(|e| Error::Shape { op: "safetensors", msg: e.to_string() })
}

/// Writes model `e` to `path` (atomically).
pub fn save(net: &Net<f32>, e: usize, path: &Path) -> Result<()> {
    crate::atomic::write_atomic(path, &to_bytes(net, e)?)
}

/// Reads the parameters (and buffers) in `bytes` into model `e` (every model when `e` is
/// `None`). Every parameter must be present with the expected shape and a float dtype; nothing
/// else may be. Buffers (BatchNorm's running estimates) are required as parameters are (as
/// PyTorch's strict `load_state_dict`): evaluation mode needs them.
pub fn load_bytes<T: crate::engine::Real>(net: &mut Net<T>, e: Option<usize>, bytes: &[u8], path: &Path) -> Result<()> {
    let bad = |msg: String| Error::data(path, msg);
    let st = SafeTensors::deserialize(bytes).map_err(|err| bad(format!("not a valid safetensors file: {err}")))?;
    let expected: Vec<&str> = net.tensors().map(|(n, _)| n).collect();
    let mut extra: Vec<&str> = st.names().into_iter().filter(|n| !expected.contains(n)).collect();
    if !extra.is_empty() {
        extra.sort();
        return Err(bad(format!(
            "unexpected tensor(s) {}; this network has {}",
            extra.join(", "),
            expected.join(", ")
        )));
    }
    let e_count = net.graph.ensemble();
    let tensors: Vec<(String, NodeId)> = net.tensors().map(|(n, id)| (n.to_string(), id)).collect();
    for (name, id) in tensors {
        let want: Vec<usize> = net.graph.shape(id)[1..].to_vec();
        let t = st.tensor(&name).map_err(|_| bad(format!("tensor `{name}` is missing (expected shape {want:?})")))?;
        if t.shape() != want.as_slice() {
            return Err(bad(format!("tensor `{name}`: expected shape {want:?}, found {:?}", t.shape())));
        }
        // Into the net's precision: an f32 net rounds F64 tensors, an f64 net (gradient checks,
        // Hessians) keeps them whole.
        let values: Vec<T> = match t.dtype() {
            Dtype::F32 => t
                .data()
                .chunks_exact(4)
                .map(|b| T::from_f64(f32::from_le_bytes(b.try_into().expect("4 bytes")) as f64))
                .collect(),
            Dtype::F64 => t
                .data()
                .chunks_exact(8)
                .map(|b| T::from_f64(f64::from_le_bytes(b.try_into().expect("8 bytes"))))
                .collect(),
            other => {
                return Err(bad(format!("tensor `{name}`: dtype {other:?} is not supported; expected F32 or F64")));
            }
        };
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(bad(format!("tensor `{name}`: element {i} is {}; parameters must be finite", values[i])));
        }
        let slab = net.graph.value_mut(id);
        let n = slab.len() / e_count;
        for m in 0..e_count {
            if e.is_none_or(|e| e == m) {
                slab[m * n..(m + 1) * n].copy_from_slice(&values);
            }
        }
    }
    Ok(())
}

/// Reads `path` into every model of `net`.
pub fn load_all<T: crate::engine::Real>(net: &mut Net<T>, path: &Path) -> Result<()> {
    let bytes = read_params_file(path)?;
    load_bytes(net, None, &bytes, path)
}

/// A safetensors file of parameters: a regular file no larger than the memory budget (every
/// parameter it holds must fit there anyway).
pub fn read_params_file(path: &Path) -> Result<Vec<u8>> {
    crate::data::read::bounded(path, crate::engine::memory::budget() as u64, "")
}

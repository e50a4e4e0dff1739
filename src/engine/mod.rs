//! The training engine: a tape of operations over ensemble-first tensors, evaluated forward,
//! differentiated in reverse (the optimisers that update it live in `crate::optim`).
//!
//! Every value has shape `[E, C, S..., B]`: `E` independent models (seeds) trained in
//! lockstep, then channels (or features), spatial axes, and the batch last. With the batch as
//! the fast axis, one matrix product serves all models at once (`[E·out, in] × [in, B]`) and a
//! convolution's im2col copies runs of B values.
//! Inputs and targets shared by all models are stored once with `E = 1` and broadcast. Each model's arithmetic never reads another model's data, so member `e` of an
//! ensemble follows exactly the trajectory it would follow alone (a test checks this bit for bit).
//!
//! Reading order: `scalar` (dual numbers), `activations` (every activation as one generic
//! formula, derivatives by dual numbers), `real` (float types), `gemm`, `graph` (the tape),
//! then one file per operation family: `dense`, `conv2d` (+ `conv2d_direct`), `pool`,
//! `elementwise`, `loss`, `norm` (layer normalisation), `batch_norm` (with running estimates
//! kept in `State` nodes), `noise` (dropout and Gaussian noise,
//! drawn by the training loop, applied only in training mode). `tensor` holds the borrowed views every kernel takes and the tiled
//! transpose; `fastmath` the vectorisable exp, ln_1p, tanh and erf; `denormals` the guard that
//! flushes subnormals while training.
//!
//! Speed, never numbers: `simd` chooses the tier (AVX-512, AVX2, portable) of the SIMD twins of
//! the hot kernels (`gemm_simd`, `conv2d_simd`, `activation_simd`, `loss_simd`), each written
//! once over `lanes::Lanes` and equal bit for bit to its portable kernel; `fused_mlp` runs
//! one-hidden-layer networks (fc73) model by model with the tape's arithmetic, skipping stopped
//! models (`Graph::forward_models`); `helper` lends one model's large convolutions a second
//! core where a measurement says it pays. `memory` holds the budget every tape reserves against.

pub mod activation_simd;
pub mod activations;
pub mod batch_norm;
pub mod conv2d;
pub mod conv2d_direct;
pub mod conv2d_simd;
pub mod denormals;
pub mod dense;
pub mod elementwise;
pub mod fastmath;
pub mod fused_mlp;
pub mod gemm;
pub mod gemm_simd;
pub mod graph;
pub mod helper;
pub mod lanes;
pub mod loss;
pub mod loss_simd;
pub mod memory;
pub mod noise;
pub mod norm;
pub mod pool;
pub mod real;
pub mod scalar;
pub mod simd;
pub mod tensor;

pub use graph::{Graph, NodeId, Op, Reduction};
pub use real::Real;
pub use tensor::TensorRef;

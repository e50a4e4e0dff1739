//! The tape: a list of operations recorded once when a model is built, then replayed every
//! step. `forward` walks it in order; `backward` seeds each model's loss with 1 and walks it in
//! reverse, each operation adding its inputs' gradients into their buffers. All buffers are
//! allocated when the node is created, so a training step allocates nothing.

use super::real::Real;
use super::tensor::TensorRef;
use super::{conv2d, dense, elementwise, fused_mlp, loss, pool};
use crate::engine::activations::Activation;
use crate::error::{Error, Result};

/// A node of the tape: an index into it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NodeId(pub(crate) usize);

/// How a per-sample loss becomes one number per model. (Its text and serde forms are defined
/// by the layers above — `training::options` and `cli` — so that the engine imports no
/// serialisation or command-line crate.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduction {
    /// Average over the batch (the default everywhere in the report).
    Mean,
    /// Sum over the batch: the gradient, and so the effective step, is B times larger.
    Sum,
}

impl Reduction {
    pub const ALL: [Reduction; 2] = [Reduction::Mean, Reduction::Sum];

    pub fn name(self) -> &'static str {
        match self {
            Reduction::Mean => "mean",
            Reduction::Sum => "sum",
        }
    }

    pub fn parse(s: &str) -> std::result::Result<Reduction, String> {
        Reduction::ALL.into_iter().find(|r| r.name() == s).ok_or(format!("unknown reduction `{s}` (mean, sum)"))
    }
}

impl std::fmt::Display for Reduction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One recorded operation, keeping exactly what forward and backward need.
#[derive(Clone, Debug)]
pub enum Op {
    /// Data fed from outside; never differentiated.
    Input,
    /// A trainable tensor.
    Param,
    /// A tensor a layer keeps and updates itself, never differentiated (BatchNorm's running
    /// estimates; PyTorch's "buffers").
    State,
    /// `y[e] = w[e]·x[e] + b[e]`; `x`'s features are flattened channel-major (see `dense`).
    Dense { x: NodeId, w: NodeId, b: Option<NodeId> },
    /// 2D convolution of `x` `[E, C, H, W, B]` with kernels `w` `[E, out, C, kh, kw]`.
    /// `taps`: the direct kernels' input offsets, computed once here (empty for im2col).
    Conv2d { x: NodeId, w: NodeId, b: Option<NodeId>, geometry: conv2d::Geometry, taps: Vec<usize> },
    /// Max or average pooling of `x` `[E, C, H, W, B]`, no padding.
    Pool { x: NodeId, geometry: pool::PoolGeometry },
    /// `y = act(x)` elementwise; the derivative is saved during forward.
    Activation { x: NodeId, act: Activation },
    /// Sigmoid cross-entropy on logits, reduced over the batch: one loss per model.
    SigmoidCrossEntropy { logits: NodeId, targets: NodeId, reduction: Reduction },
    /// Softmax cross-entropy of logits `[E, K, B]` against class indices `[1 or E, 1, B]`.
    SoftmaxCrossEntropy { logits: NodeId, targets: NodeId, reduction: Reduction },
    /// `scale·(pred − target)²`, reduced over the batch: one loss per model.
    SquaredError { pred: NodeId, targets: NodeId, scale: f64, reduction: Reduction },
    /// `Σ cᵢ·xᵢ` of equally shaped nodes (e.g. total = CE + 0.01·regression).
    WeightedSum { terms: Vec<(NodeId, f64)> },
    /// Layer normalisation of `x` `[E, F..., B]` over its features, with per-feature `γ`, `β`.
    LayerNorm { x: NodeId, gamma: NodeId, beta: NodeId, eps: f64 },
    /// Batch normalisation of `x` `[E or 1, C, S..., B]` per channel, with per-channel `γ`, `β`
    /// and running estimates `mean`, `var` (`State` nodes, `[E, C]`).
    BatchNorm {
        x: NodeId,
        gamma: NodeId,
        beta: NodeId,
        mean: NodeId,
        var: NodeId,
        spec: super::batch_norm::BatchNormSpec,
    },
    /// `x` with drawn noise while training (dropout's mask, or added Gaussian noise), `x`
    /// otherwise; the noise is the node's scratch.
    Noise { x: NodeId, noise: super::noise::Noise },
}

pub struct Graph<T: Real> {
    ensemble: usize,
    ops: Vec<Op>,
    shapes: Vec<Vec<usize>>,
    values: Vec<Vec<T>>,
    grads: Vec<Vec<T>>,
    saved: Vec<Vec<T>>,
    needs_grad: Vec<bool>,
    /// During `backward`: the node's gradient buffer still holds the last step's numbers and
    /// stands for zeros. Cleared when first added into; an activation or loss, if first, writes
    /// `0 + g·d` instead, which is what clearing and adding give, without the clearing pass (the
    /// conv outputs' gradients were most of a CNN step's memset).
    stale: Vec<bool>,
    /// The per-model fast path for a one-hidden-layer network (`fused_mlp`), planned at the
    /// first forward: `None` until then, `Some(None)` when the tape runs everything.
    fused: Option<Option<fused_mlp::Plan>>,
    /// Training mode: dropout applies its masks and BatchNorm uses (and tracks) batch
    /// statistics (the training forward and backward only).
    training: bool,
    /// Bytes reserved against the memory budget (`memory`), returned when the tape is dropped;
    /// and the bytes asked for in all, counted on even after a node did not fit.
    reserved: usize,
    wanted: usize,
    /// Set when a node did not fit the budget: from then on no buffer is allocated (shapes are
    /// still tracked, so the builder runs to the end and [`Graph::over_budget`] can say how much
    /// the whole network would need).
    over_budget: bool,
}

impl<T: Real> Drop for Graph<T> {
    fn drop(&mut self) {
        super::memory::release(self.reserved);
    }
}

impl<T: Real> Graph<T> {
    /// An empty tape for an ensemble of `ensemble` models.
    pub fn new(ensemble: usize) -> Graph<T> {
        assert!(ensemble > 0, "an ensemble has at least one model");
        Graph {
            ensemble,
            ops: vec![],
            shapes: vec![],
            values: vec![],
            grads: vec![],
            saved: vec![],
            needs_grad: vec![],
            stale: vec![],
            fused: None,
            training: false,
            reserved: 0,
            wanted: 0,
            over_budget: false,
        }
    }

    /// The same tape in another float type, every value converted by `f` (gradients and
    /// scratch zeroed): an f32 training net's twin in `Dual<f64>` gives its Hessian-vector
    /// products (`curvature::Hvp`).
    pub fn convert<U: Real>(&self, f: impl Fn(T) -> U) -> Graph<U> {
        let zeros = |v: &Vec<Vec<T>>| v.iter().map(|x| vec![U::default(); x.len()]).collect::<Vec<_>>();
        let (mut ops, mut saved) = (self.ops.clone(), zeros(&self.saved));
        // A convolution may take the other path in `U` (see `conv2d::is_direct`).
        for (i, op) in ops.iter_mut().enumerate() {
            if let Op::Conv2d { x, geometry, taps, .. } = op
                && conv2d::is_direct::<T>(geometry) != conv2d::is_direct::<U>(geometry)
            {
                *taps =
                    if conv2d::is_direct::<U>(geometry) { super::conv2d_direct::tap_offsets(geometry) } else { vec![] };
                let n = conv2d::saved_len::<U>(self.ensemble, self.shapes[x.0][0], geometry, self.needs_grad[x.0]);
                saved[i] = vec![U::default(); n];
            }
        }
        Graph {
            ensemble: self.ensemble,
            ops,
            shapes: self.shapes.clone(),
            values: self.values.iter().map(|x| x.iter().map(|&v| f(v)).collect()).collect(),
            grads: zeros(&self.grads),
            saved,
            needs_grad: self.needs_grad.clone(),
            stale: vec![false; self.ops.len()],
            fused: None,
            training: false,
            // The twin (a curvature measurement's, short-lived) is not counted.
            reserved: 0,
            wanted: 0,
            over_budget: false,
        }
    }

    pub fn ensemble(&self) -> usize {
        self.ensemble
    }

    fn push(&mut self, op: Op, shape: Vec<usize>, saved_len: usize) -> NodeId {
        // Sizes in checked arithmetic: a product past usize is "more than any budget".
        let n = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        let needs_grad = match &op {
            Op::Input | Op::State => false,
            Op::Param => true,
            Op::Dense { x, w, b } | Op::Conv2d { x, w, b, .. } => {
                self.needs_grad[x.0] || self.needs_grad[w.0] || b.is_some_and(|b| self.needs_grad[b.0])
            }
            Op::Activation { x, .. } | Op::Pool { x, .. } => self.needs_grad[x.0],
            Op::SigmoidCrossEntropy { logits: p, .. }
            | Op::SoftmaxCrossEntropy { logits: p, .. }
            | Op::SquaredError { pred: p, .. } => self.needs_grad[p.0],
            Op::WeightedSum { terms } => terms.iter().any(|(t, _)| self.needs_grad[t.0]),
            Op::LayerNorm { x, gamma, beta, .. } | Op::BatchNorm { x, gamma, beta, .. } => {
                [x, gamma, beta].iter().any(|p| self.needs_grad[p.0])
            }
            Op::Noise { x, .. } => self.needs_grad[x.0],
        };
        self.fused = None; // the network changed: plan again
        // Values, gradient and saved buffers; a parameter also counts its optimiser's moments.
        let copies = 1 + needs_grad as usize + 2 * matches!(op, Op::Param) as usize;
        let bytes = n
            .and_then(|n| n.checked_mul(copies))
            .and_then(|e| e.checked_add(saved_len))
            .and_then(|e| e.checked_mul(std::mem::size_of::<T>()));
        self.wanted = bytes.and_then(|b| self.wanted.checked_add(b)).unwrap_or(usize::MAX);
        let fits = !self.over_budget && bytes.is_some_and(|b| super::memory::reserve(b).is_ok());
        if fits {
            self.reserved += bytes.unwrap_or(0);
        } else {
            self.over_budget = true;
        }
        let (n, saved_len) = if fits { (n.unwrap_or(0), saved_len) } else { (0, 0) };
        self.ops.push(op);
        self.shapes.push(shape);
        self.values.push(vec![T::default(); n]);
        self.grads.push(if needs_grad { vec![T::default(); n] } else { vec![] });
        self.saved.push(vec![T::default(); saved_len]);
        self.needs_grad.push(needs_grad);
        self.stale.push(false);
        NodeId(self.ops.len() - 1)
    }

    /// Data fed from outside, shape `[1 or E, C, spatial..., B]` (1 = shared by every model).
    pub fn input(&mut self, shape: &[usize]) -> Result<NodeId> {
        if shape.len() < 3 || (shape[0] != 1 && shape[0] != self.ensemble) {
            return Err(Error::Shape {
                op: "input",
                msg: format!("shape {shape:?} must be [1 or {}, channels, ..., batch]", self.ensemble),
            });
        }
        Ok(self.push(Op::Input, shape.to_vec(), 0))
    }

    /// A trainable tensor of per-model shape `shape` (stored as `[E, ...shape]`), zero-filled.
    pub fn param(&mut self, shape: &[usize]) -> NodeId {
        let mut s = vec![self.ensemble];
        s.extend_from_slice(shape);
        self.push(Op::Param, s, 0)
    }

    /// A non-trainable tensor of per-model shape `shape` (stored as `[E, ...shape]`) that an
    /// operation updates itself (BatchNorm's running estimates), zero-filled.
    pub fn state(&mut self, shape: &[usize]) -> NodeId {
        let mut s = vec![self.ensemble];
        s.extend_from_slice(shape);
        self.push(Op::State, s, 0)
    }

    pub fn dense(&mut self, x: NodeId, w: NodeId, b: Option<NodeId>) -> Result<NodeId> {
        let shape =
            dense::output_shape(self.ensemble, &self.shapes[x.0], &self.shapes[w.0], b.map(|b| &self.shapes[b.0][..]))?;
        let saved = dense::saved_len(&self.shapes[x.0]);
        Ok(self.push(Op::Dense { x, w, b }, shape, saved))
    }

    pub fn conv2d(&mut self, x: NodeId, w: NodeId, b: Option<NodeId>, spec: conv2d::Conv2dSpec) -> Result<NodeId> {
        let (geometry, shape) = conv2d::geometry(
            self.ensemble,
            &self.shapes[x.0],
            &self.shapes[w.0],
            b.map(|b| &self.shapes[b.0][..]),
            spec,
        )?;
        let saved = conv2d::saved_len::<T>(self.ensemble, self.shapes[x.0][0], &geometry, self.needs_grad[x.0]);
        let taps =
            if conv2d::is_direct::<T>(&geometry) { super::conv2d_direct::tap_offsets(&geometry) } else { vec![] };
        Ok(self.push(Op::Conv2d { x, w, b, geometry, taps }, shape, saved))
    }

    pub fn activation(&mut self, x: NodeId, act: Activation) -> NodeId {
        let shape = self.shapes[x.0].clone();
        let n = self.values[x.0].len();
        self.push(Op::Activation { x, act }, shape, n)
    }

    pub fn pool(&mut self, x: NodeId, kind: pool::PoolKind, kernel: usize, stride: usize) -> Result<NodeId> {
        let (geometry, shape) = pool::geometry(kind, &self.shapes[x.0], kernel, stride)?;
        let saved = pool::saved_len(&geometry, self.shapes[x.0][0]);
        Ok(self.push(Op::Pool { x, geometry }, shape, saved))
    }

    /// Layer normalisation of a computed `x` `[E, F..., B]`; `gamma` and `beta` are `[E, F...]`.
    pub fn layer_norm(&mut self, x: NodeId, gamma: NodeId, beta: NodeId, eps: f64) -> Result<NodeId> {
        let s = self.shapes[x.0].clone();
        let e = self.ensemble;
        if s[0] != e || s.len() < 3 {
            return Err(Error::Shape {
                op: "layer_norm",
                msg: format!("needs a computed input [E, F..., B], got {s:?}"),
            });
        }
        for p in [gamma, beta] {
            if self.shapes[p.0][..] != s[..s.len() - 1] {
                return Err(Error::Shape {
                    op: "layer_norm",
                    msg: format!("scale and shift must be {:?}, got {:?}", &s[..s.len() - 1], self.shapes[p.0]),
                });
            }
        }
        let n = super::norm::saved_len(e, s[1..s.len() - 1].iter().product(), s[s.len() - 1]);
        Ok(self.push(Op::LayerNorm { x, gamma, beta, eps }, s, n))
    }

    /// Batch normalisation of `x` `[1 or E, C, S..., B]` per channel; `gamma`, `beta` are trainable
    /// `[E, C]`, `mean`, `var` the running estimates, [`state`](Self::state) nodes `[E, C]`.
    pub fn batch_norm(
        &mut self,
        x: NodeId,
        [gamma, beta]: [NodeId; 2],
        [mean, var]: [NodeId; 2],
        spec: super::batch_norm::BatchNormSpec,
    ) -> Result<NodeId> {
        let mut s = self.shapes[x.0].clone();
        let e = self.ensemble;
        let bad = |msg: String| Err(Error::Shape { op: "batch_norm", msg });
        if s.len() < 3 {
            return bad(format!("needs an input [E, C, ..., B], got {s:?}"));
        }
        let want = [e, s[1]];
        for (p, state) in [(gamma, false), (beta, false), (mean, true), (var, true)] {
            if self.shapes[p.0] != want || matches!(self.ops[p.0], Op::State) != state {
                return bad(format!("γ, β (parameters) and the running estimates (state) must be {want:?}"));
            }
        }
        if !(spec.eps > 0.0 && (0.0..=1.0).contains(&spec.momentum)) {
            return bad(format!("eps must be > 0 and momentum in [0, 1], got {} and {}", spec.eps, spec.momentum));
        }
        s[0] = e;
        let n = super::batch_norm::saved_len(e, &s);
        Ok(self.push(Op::BatchNorm { x, gamma, beta, mean, var, spec }, s, n))
    }

    /// Dropout of `x` at `rate` (in [0, 1)); the output is per model, `[E, ...]`.
    pub fn dropout(&mut self, x: NodeId, rate: f64) -> Result<NodeId> {
        if !(0.0..1.0).contains(&rate) {
            return Err(Error::Shape { op: "dropout", msg: format!("rate must be in [0, 1), got {rate}") });
        }
        Ok(self.noise(x, super::noise::Noise::Dropout { rate }))
    }

    /// `x + std·z` while training (`std` ≥ 0); the output is per model, `[E, ...]`.
    pub fn gaussian_noise(&mut self, x: NodeId, std: f64) -> Result<NodeId> {
        if !(std.is_finite() && std >= 0.0) {
            return Err(Error::Shape { op: "gaussian_noise", msg: format!("std must be ≥ 0, got {std}") });
        }
        Ok(self.noise(x, super::noise::Noise::Gaussian { std }))
    }

    fn noise(&mut self, x: NodeId, noise: super::noise::Noise) -> NodeId {
        let mut shape = self.shapes[x.0].clone();
        shape[0] = self.ensemble;
        let n: usize = shape.iter().product();
        self.push(Op::Noise { x, noise }, shape, n)
    }

    /// Training mode: on for a training forward and backward (dropout's masks, BatchNorm's
    /// batch statistics, whose forward moves the running estimates), off (the default) for
    /// evaluation, per-sample twins, landscapes and curvature.
    pub fn set_training(&mut self, on: bool) {
        self.training = on;
    }

    /// Fills every noise buffer of every model from one stream (`uniform` in [0, 1)), node by
    /// node: one fixed draw, for gradient checks and benchmarks. Training draws each model from
    /// its own stream instead (`training::draw_noise`).
    pub fn draw_noise(&mut self, mut uniform: impl FnMut() -> f64) {
        for (noise, buf) in self.noise_buffers() {
            super::noise::draw(buf, noise, &mut uniform);
        }
    }

    /// Every noise node with its kind and its buffer `[E, ...]` to fill before a training forward.
    pub fn noise_buffers(&mut self) -> Vec<(super::noise::Noise, &mut [T])> {
        let Graph { ops, saved, .. } = self;
        ops.iter()
            .zip(saved.iter_mut())
            .filter_map(|(op, s)| match op {
                Op::Noise { noise, .. } => Some((*noise, &mut s[..])),
                _ => None,
            })
            .collect()
    }

    pub fn softmax_cross_entropy(&mut self, logits: NodeId, targets: NodeId, reduction: Reduction) -> Result<NodeId> {
        let (l, t) = (&self.shapes[logits.0], &self.shapes[targets.0]);
        let shape = loss::softmax_output_shape(l, t)?;
        let n = self.values[logits.0].len() + l[0] * l[2];
        Ok(self.push(Op::SoftmaxCrossEntropy { logits, targets, reduction }, shape, n))
    }

    pub fn sigmoid_cross_entropy(&mut self, logits: NodeId, targets: NodeId, reduction: Reduction) -> Result<NodeId> {
        let shape = loss::output_shape("sigmoid_cross_entropy", &self.shapes[logits.0], &self.shapes[targets.0])?;
        let n = 2 * self.values[logits.0].len();
        Ok(self.push(Op::SigmoidCrossEntropy { logits, targets, reduction }, shape, n))
    }

    pub fn squared_error(&mut self, pred: NodeId, targets: NodeId, scale: f64, reduction: Reduction) -> Result<NodeId> {
        let shape = loss::output_shape("squared_error", &self.shapes[pred.0], &self.shapes[targets.0])?;
        let n = 2 * self.values[pred.0].len();
        Ok(self.push(Op::SquaredError { pred, targets, scale, reduction }, shape, n))
    }

    pub fn weighted_sum(&mut self, terms: &[(NodeId, f64)]) -> Result<NodeId> {
        let first = terms.first().ok_or(Error::Shape { op: "weighted_sum", msg: "needs at least one term".into() })?;
        let shape = self.shapes[first.0.0].clone();
        if let Some((t, _)) = terms.iter().find(|(t, _)| self.shapes[t.0] != shape) {
            return Err(Error::Shape {
                op: "weighted_sum",
                msg: format!("term shapes differ: {:?} vs {:?}", shape, self.shapes[t.0]),
            });
        }
        Ok(self.push(Op::WeightedSum { terms: terms.to_vec() }, shape, 0))
    }

    pub fn shape(&self, id: NodeId) -> &[usize] {
        &self.shapes[id.0]
    }
    pub fn value(&self, id: NodeId) -> &[T] {
        &self.values[id.0]
    }
    /// Writable values, to feed inputs or set parameters. Call `forward` afterwards.
    pub fn value_mut(&mut self, id: NodeId) -> &mut [T] {
        if let Some(Some(plan)) = &mut self.fused {
            plan.touched(); // the input may change: its transpose is made again
        }
        &mut self.values[id.0]
    }
    /// The gradient of each model's loss with respect to `id` (after `backward`); empty for inputs.
    pub fn grad(&self, id: NodeId) -> &[T] {
        &self.grads[id.0]
    }
    /// An activation node's derivative `act'(x)` per element from the last `forward`; `None`
    /// for other nodes.
    pub fn activation_derivative(&self, id: NodeId) -> Option<&[T]> {
        matches!(self.ops[id.0], Op::Activation { .. }).then(|| &self.saved[id.0][..])
    }
    /// A BatchNorm node's statistics of the last forward, `[E, C]` each: the means it used and
    /// `1/√(σ² + ε)` (the batch's in training mode, the running estimates' otherwise), and ε;
    /// `None` for other nodes.
    pub fn batch_norm_statistics(&self, id: NodeId) -> Option<(&[T], &[T], f64)> {
        match &self.ops[id.0] {
            Op::BatchNorm { spec, .. } => {
                let (m, r) = self.saved[id.0].split_at(self.saved[id.0].len() / 2);
                Some((m, r, spec.eps))
            }
            _ => None,
        }
    }
    /// A loss node's unreduced terms from the last `forward`: one per prediction element
    /// (`[E, ..., B]`) for sigmoid CE and squared error, one per sample (`[E, B]`) for softmax
    /// CE; `None` for other nodes.
    pub fn loss_terms(&self, id: NodeId) -> Option<&[T]> {
        let saved = &self.saved[id.0];
        match &self.ops[id.0] {
            Op::SigmoidCrossEntropy { .. } | Op::SquaredError { .. } => Some(&saved[saved.len() / 2..]),
            Op::SoftmaxCrossEntropy { logits, .. } => Some(&saved[self.values[logits.0].len()..]),
            _ => None,
        }
    }
    pub fn op(&self, id: NodeId) -> &Op {
        &self.ops[id.0]
    }
    /// Every trainable node, in creation order.
    pub fn params(&self) -> Vec<NodeId> {
        (0..self.ops.len()).filter(|&i| matches!(self.ops[i], Op::Param)).map(NodeId).collect()
    }
    /// Bytes of every buffer of the tape (values, gradients, scratch).
    /// `Some(bytes the whole tape asks for)` if it did not fit the memory budget (its buffers
    /// are then not allocated: the tape must not be used).
    pub fn over_budget(&self) -> Option<usize> {
        self.over_budget.then_some(self.wanted)
    }

    pub fn bytes(&self) -> usize {
        let n: usize = self.values.iter().chain(&self.grads).chain(&self.saved).map(Vec::len).sum();
        n * std::mem::size_of::<T>()
    }

    /// Parameters per model.
    pub fn param_count(&self) -> usize {
        self.params().iter().map(|p| self.values[p.0].len() / self.ensemble).sum()
    }
    /// Parameters and gradient of one node, for the optimiser.
    pub fn param_and_grad_mut(&mut self, id: NodeId) -> (&mut [T], &[T]) {
        (&mut self.values[id.0], &self.grads[id.0])
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.ops.len()
    }
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Runs every operation over the whole ensemble from now on, never `fused_mlp`'s per-model
    /// path (for tests and benchmarks that compare the two).
    pub fn disable_fusion(&mut self) {
        self.fused = Some(None);
    }

    /// Whether forward and backward run `fused_mlp`'s per-model path.
    pub fn is_fused(&mut self) -> bool {
        self.plan().is_some()
    }

    fn plan(&mut self) -> Option<&mut fused_mlp::Plan> {
        if self.fused.is_none() {
            self.fused = Some(fused_mlp::plan(self));
        }
        self.fused.as_mut().and_then(Option::as_mut)
    }

    /// Values and saved scratch of every node, for `fused_mlp`.
    pub(super) fn buffers_mut(&mut self) -> (&mut [Vec<T>], &mut [Vec<T>]) {
        (&mut self.values, &mut self.saved)
    }

    /// Values and scratch to read, gradients to write, for `fused_mlp`.
    #[allow(clippy::type_complexity)]
    pub(super) fn gradient_buffers_mut(&mut self) -> (&[Vec<T>], &[Vec<T>], &mut [Vec<T>]) {
        (&self.values, &self.saved, &mut self.grads)
    }

    /// Evaluates every node in order.
    pub fn forward(&mut self) {
        self.forward_models(None);
    }

    /// Evaluates the network for the models flagged in `models` (every model if `None`). The
    /// others' values may be left as they were (the per-model path skips them; the tape
    /// computes every model anyway): a training run passes the seeds still training.
    pub fn forward_models(&mut self, models: Option<&[bool]>) {
        if self.plan().is_some() {
            let mut plan = self.fused.take().flatten().expect("planned above");
            fused_mlp::forward(self, &mut plan, models);
            self.fused = Some(Some(plan));
            return;
        }
        let e = self.ensemble;
        for i in 0..self.ops.len() {
            if matches!(self.ops[i], Op::BatchNorm { .. }) {
                self.batch_norm_forward(i, models);
                continue;
            }
            let (before, rest) = self.values.split_at_mut(i);
            let out = &mut rest[0];
            let saved = &mut self.saved[i];
            let v = |id: NodeId| TensorRef { data: &before[id.0][..], shape: &self.shapes[id.0][..] };
            match &self.ops[i] {
                Op::Input | Op::Param | Op::State | Op::BatchNorm { .. } => {}
                Op::Dense { x, w, b } => dense::forward(e, v(*x), v(*w), b.map(v), out, saved),
                Op::Conv2d { x, w, b, geometry, taps } => {
                    conv2d::forward(e, geometry, taps, v(*x), v(*w), b.map(v), out, saved)
                }
                Op::Activation { x, act } => elementwise::forward(*act, v(*x).data, out, saved),
                Op::Pool { x, geometry } => pool::forward(geometry, v(*x).data, out, saved),
                Op::SoftmaxCrossEntropy { logits, targets, reduction } => {
                    loss::softmax_cross_entropy_forward(v(*logits), v(*targets), *reduction, out, saved)
                }
                Op::SigmoidCrossEntropy { logits, targets, reduction } => {
                    loss::sigmoid_cross_entropy_forward(v(*logits), v(*targets), *reduction, out, saved)
                }
                Op::SquaredError { pred, targets, scale, reduction } => {
                    loss::squared_error_forward(v(*pred), v(*targets), *scale, *reduction, out, saved)
                }
                Op::LayerNorm { x, gamma, beta, eps } => {
                    super::norm::forward(e, v(*x), v(*gamma), v(*beta), *eps, out, saved)
                }
                Op::Noise { x, noise } => super::noise::forward(e, *noise, self.training, v(*x), saved, out),
                Op::WeightedSum { terms } => {
                    out.fill(T::default());
                    for (t, c) in terms {
                        let c = T::from_f64(*c);
                        for (o, &x) in out.iter_mut().zip(&before[t.0]) {
                            *o += c * x;
                        }
                    }
                }
            }
        }
    }

    /// Node `i`, a BatchNorm, forward (it writes its running estimates, nodes before it). Out of
    /// the loop above so that the loop stays as it was for every other op.
    #[inline(never)]
    fn batch_norm_forward(&mut self, i: usize, models: Option<&[bool]>) {
        let Op::BatchNorm { x, gamma, beta, mean, var, spec } = &self.ops[i] else { unreachable!("a BatchNorm node") };
        let (before, rest) = self.values.split_at_mut(i);
        let [xv, gv, bv, mv, vv] = before
            .get_disjoint_mut([x.0, gamma.0, beta.0, mean.0, var.0])
            .expect("batch norm inputs are distinct nodes");
        let xr = TensorRef { data: &xv[..], shape: &self.shapes[x.0][..] };
        let running = super::batch_norm::Running { mean: mv, var: vv };
        let e = self.ensemble;
        super::batch_norm::forward(
            e,
            xr,
            gv,
            bv,
            running,
            *spec,
            self.training,
            models,
            &mut rest[0],
            &mut self.saved[i],
        );
    }

    /// Gradients of every model's `loss` (shape `[E]`) with respect to every node that needs one.
    /// Models are independent: the gradient for model `e` involves only model `e`'s loss.
    pub fn backward(&mut self, loss: NodeId) {
        self.backward_models(loss, None);
    }

    /// [`backward`](Self::backward) for the models flagged in `models` (every model if `None`);
    /// the others' gradients may be left as they were (see [`forward_models`](Self::forward_models)).
    pub fn backward_models(&mut self, loss: NodeId, models: Option<&[bool]>) {
        assert_eq!(self.shapes[loss.0], [self.ensemble], "backward starts from a per-model loss of shape [E]");
        if self.plan().is_some_and(|p| p.loss == loss) {
            let plan = self.fused.take().flatten().expect("planned above");
            fused_mlp::backward(self, &plan, models);
            self.fused = Some(Some(plan));
            return;
        }
        let Graph { ensemble, ops, shapes, values, grads, saved, needs_grad, stale, training, .. } = self;
        stale.iter_mut().for_each(|s| *s = true);
        grads[loss.0].fill(T::from_f64(1.0));
        stale[loss.0] = false;
        // Before adding into a stale buffer: clear it.
        let clear = |g: &mut [T], stale: &mut bool| {
            if std::mem::take(stale) {
                g.fill(T::default());
            }
        };
        let v = |id: NodeId| TensorRef { data: &values[id.0][..], shape: &shapes[id.0][..] };
        for i in (0..=loss.0).rev() {
            if !needs_grad[i] {
                continue;
            }
            let (before, rest) = grads.split_at_mut(i);
            clear(&mut rest[0], &mut stale[i]); // nothing flowed into it: zeros flow on
            let gy = &rest[0][..];
            match &ops[i] {
                Op::Input | Op::Param | Op::State => {}
                Op::Dense { x, w, b } | Op::Conv2d { x, w, b, .. } => {
                    for id in [Some(*x), Some(*w), *b].into_iter().flatten() {
                        clear(&mut before[id.0], &mut stale[id.0]);
                    }
                    let mut none: [T; 0] = [];
                    let (gx, gw, gb) = match b {
                        Some(b) => {
                            let [gx, gw, gb] =
                                before.get_disjoint_mut([x.0, w.0, b.0]).expect("layer inputs are distinct nodes");
                            (gx, gw, &mut gb[..])
                        }
                        None => {
                            let [gx, gw] =
                                before.get_disjoint_mut([x.0, w.0]).expect("layer inputs are distinct nodes");
                            (gx, gw, &mut none[..])
                        }
                    };
                    match &ops[i] {
                        Op::Conv2d { geometry, taps, .. } => {
                            conv2d::backward(*ensemble, geometry, taps, v(*x), v(*w), gy, &mut saved[i], gx, gw, gb)
                        }
                        _ => dense::backward(*ensemble, v(*x), &saved[i], v(*w), gy, gx, gw, gb),
                    }
                }
                Op::Activation { x, .. } => {
                    let first = std::mem::take(&mut stale[x.0]);
                    elementwise::backward(gy, &saved[i], &mut before[x.0], first)
                }
                Op::Pool { x, geometry } => {
                    clear(&mut before[x.0], &mut stale[x.0]);
                    pool::backward(geometry, gy, &saved[i], &mut before[x.0])
                }
                Op::SigmoidCrossEntropy { logits: p, .. }
                | Op::SoftmaxCrossEntropy { logits: p, .. }
                | Op::SquaredError { pred: p, .. } => {
                    let first = std::mem::take(&mut stale[p.0]);
                    loss::backward(gy, &saved[i], &mut before[p.0], first);
                }
                Op::Noise { x, noise } => {
                    clear(&mut before[x.0], &mut stale[x.0]);
                    super::noise::backward(*noise, *training, gy, &saved[i], &mut before[x.0])
                }
                Op::LayerNorm { x, gamma, beta, .. } => {
                    for id in [*x, *gamma, *beta] {
                        clear(&mut before[id.0], &mut stale[id.0]);
                    }
                    let [gx, gg, gb] =
                        before.get_disjoint_mut([x.0, gamma.0, beta.0]).expect("layer inputs are distinct nodes");
                    super::norm::backward(*ensemble, v(*gamma), gy, &saved[i], gx, gg, gb)
                }
                Op::BatchNorm { x, gamma, beta, .. } => {
                    for id in [*x, *gamma, *beta] {
                        clear(&mut before[id.0], &mut stale[id.0]);
                    }
                    let [gx, gg, gb] =
                        before.get_disjoint_mut([x.0, gamma.0, beta.0]).expect("layer inputs are distinct nodes");
                    super::batch_norm::backward(v(*x), &values[gamma.0], gy, &saved[i], *training, gx, gg, gb)
                }
                Op::WeightedSum { terms } => {
                    for (t, _) in terms {
                        clear(&mut before[t.0], &mut stale[t.0]);
                    }
                    for (t, c) in terms {
                        let c = T::from_f64(*c);
                        for (g, &d) in before[t.0].iter_mut().zip(gy) {
                            *g += c * d;
                        }
                    }
                }
            }
        }
        // Gradients nothing flowed into are zeros, as they always were.
        for (g, s) in grads.iter_mut().zip(stale.iter_mut()) {
            clear(g, s);
        }
    }
}

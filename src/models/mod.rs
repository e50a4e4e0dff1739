//! Networks built on the engine. Each is a [`Net`]: the tape plus the nodes a trainer needs
//! (input, heads with their targets, losses and accuracy rules, hidden activations) and its
//! parameters under PyTorch-style names. [`spec`] builds every network, the report's presets
//! included, from its description, with the data shared by every model or (`spec::build_fed`)
//! one batch per model; [`per_sample`] scores each sample under each model.

pub mod params;
pub mod per_sample;
pub mod spec;

use crate::data::{Dataset, Samples};
use crate::engine::{Graph, NodeId, Real};
use crate::init::{SeededRng, WeightInit};

/// How the ensemble's parameters start: one seed per model, one weight scheme, one bias value.
#[derive(Clone, Debug)]
pub struct Init {
    pub seeds: Vec<u64>,
    pub weights: WeightInit,
    pub bias: f64,
}

impl Init {
    /// Seeds `first..first+n`.
    pub fn seeds(first: u64, n: usize, weights: WeightInit, bias: f64) -> Init {
        Init { seeds: (first..first + n as u64).collect(), weights, bias }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamKind {
    /// Drawn from the weight scheme.
    Weight,
    /// Constant initialised.
    Bias,
    /// A normalisation's scale γ: starts at 1.
    NormScale,
    /// A normalisation's shift β: starts at 0.
    NormShift,
}

/// A tensor a layer keeps beside its parameters, saved with them, never trained (PyTorch's
/// buffers): BatchNorm's running estimates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Buffer {
    /// Starts at 0.
    RunningMean,
    /// Starts at 1.
    RunningVar,
}

/// How a head's predictions are scored against its targets.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Metric {
    /// Binary labels: predicted 1 when the score exceeds `threshold` (0 on a logit, 0.5 on a
    /// probability-like output).
    Binary { threshold: f64 },
    /// Class labels: the highest score (first on ties) is the prediction; the target is a class
    /// index (`[1, 1, B]`) or a one-hot row (`[1, K, B]`).
    Argmax,
    /// Regression: correct when every output is within `tolerance` of its target.
    Within { tolerance: f64 },
}

/// One output of a network with its target, loss and accuracy rule.
#[derive(Clone, Debug)]
pub struct Head {
    /// The data target that feeds it (`y`, `width`, …).
    pub target_name: String,
    /// `[1, T, B]`: the target values, or a one-hot row per sample when `one_hot` is set.
    pub target: NodeId,
    /// Class targets given as indices but trained against one-hot rows (L2 on K outputs).
    pub one_hot: bool,
    /// What accuracy is judged on (the logit for a sigmoid output: `σ(o) > ½ ⇔ o > 0` exactly).
    pub score: NodeId,
    /// This head's loss `[E]`, and its weight in the total.
    pub loss: NodeId,
    pub weight: f64,
    /// The training batch when the loss is summed over it, 1 for a mean: turns a per-sample
    /// mean (held-out evaluation) into the training loss's scale.
    pub sum_scale: f64,
    pub metric: Option<Metric>,
    /// Columns of `metrics.csv` for a net with several heads.
    pub loss_column: String,
    pub accuracy_column: String,
}

/// One layer's nodes: its pre-activation (`pre`, whose gradient is the back-propagated signal)
/// and its output (`post = act(pre)`, or `pre` itself without an activation).
#[derive(Clone, Debug)]
pub struct LayerNodes {
    pub name: String,
    pub pre: NodeId,
    pub post: NodeId,
    pub act: Option<crate::activations::Activation>,
}

impl LayerNodes {
    pub fn new(
        name: impl Into<String>,
        pre: NodeId,
        post: NodeId,
        act: Option<crate::activations::Activation>,
    ) -> LayerNodes {
        LayerNodes { name: name.into(), pre, post, act }
    }
}

pub struct Net<T: Real> {
    pub graph: Graph<T>,
    /// The data, batch last: `[1, F, B]` (dense input) or `[1, C, H, W, B]` (conv input); a
    /// sample's values in the same row-major order as the file's.
    pub input: NodeId,
    pub heads: Vec<Head>,
    /// The total loss `[E]` that is differentiated.
    pub loss: NodeId,
    /// Hidden activations, for dead-unit fractions: `(column suffix, node)`.
    pub hidden: Vec<(String, NodeId)>,
    /// Every layer in order, for per-layer probes and summaries.
    pub layers: Vec<LayerNodes>,
    /// Parameters in creation order, under their file names (`fc1.weight`, `layers.0.bias`, …).
    pub params: Vec<(String, NodeId, ParamKind)>,
    /// Non-trainable state under its file names (`bn1.running_mean`, …), saved after the
    /// parameters.
    pub buffers: Vec<(String, NodeId, Buffer)>,
    pub batch: usize,
    /// The description it was built from (`spec::build`), for twins of other shapes
    /// (per-sample gradients); `None` for nets built by hand.
    pub spec: Option<std::sync::Arc<spec::NetworkSpec>>,
}

impl<T: Real> Net<T> {
    /// The same net in another float type (see `Graph::convert`).
    pub fn convert<U: Real>(&self, f: impl Fn(T) -> U) -> Net<U> {
        Net {
            graph: self.graph.convert(f),
            input: self.input,
            heads: self.heads.clone(),
            loss: self.loss,
            hidden: self.hidden.clone(),
            layers: self.layers.clone(),
            params: self.params.clone(),
            buffers: self.buffers.clone(),
            batch: self.batch,
            spec: self.spec.clone(),
        }
    }

    /// The weight tensors (not biases): what `[optim] l1` / `l2` penalise.
    pub fn weights(&self) -> Vec<NodeId> {
        self.params.iter().filter(|p| p.2 == ParamKind::Weight).map(|p| p.1).collect()
    }

    /// A parameter by its name.
    pub fn param(&self, name: &str) -> NodeId {
        self.params.iter().find(|(n, ..)| n == name).unwrap_or_else(|| panic!("no parameter `{name}`")).1
    }

    /// Weights: drawn from each model's own seed, parameter by parameter in creation order,
    /// row-major in PyTorch layout (so a seed starts the same in any ensemble). Biases: the
    /// constant `init.bias`.
    pub fn init(&mut self, init: &Init) {
        let e_count = self.graph.ensemble();
        assert_eq!(init.seeds.len(), e_count, "one seed per model");
        for e in 0..e_count {
            let mut rng = SeededRng::new(init.seeds[e]);
            for &(_, id, kind) in &self.params {
                if kind == ParamKind::Weight {
                    let shape = self.graph.shape(id)[1..].to_vec();
                    let values = self.graph.value_mut(id);
                    let n = values.len() / e_count;
                    for v in &mut values[e * n..(e + 1) * n] {
                        *v = T::from_f64(init.weights.draw(&mut rng, &shape));
                    }
                }
            }
        }
        for &(_, id, kind) in &self.params {
            let constant = match kind {
                ParamKind::Weight => continue,
                ParamKind::Bias => init.bias,
                ParamKind::NormScale => 1.0,
                ParamKind::NormShift => 0.0,
            };
            self.graph.value_mut(id).fill(T::from_f64(constant));
        }
        for &(_, id, kind) in &self.buffers {
            let start = if kind == Buffer::RunningVar { 1.0 } else { 0.0 };
            self.graph.value_mut(id).fill(T::from_f64(start));
        }
    }

    /// Every tensor that makes a model: the parameters, then the buffers (what a file holds
    /// and a [`params::Point`] lists, in this order).
    pub fn tensors(&self) -> impl Iterator<Item = (&str, NodeId)> {
        self.params
            .iter()
            .map(|(n, id, _)| (n.as_str(), *id))
            .chain(self.buffers.iter().map(|(n, id, _)| (n.as_str(), *id)))
    }

    /// Feeds samples `indices` (exactly one batch) of `data` as the input and every head's target,
    /// the same to every model (a net built with per-model data gets a copy each).
    pub fn feed(&mut self, data: &Samples, indices: &[usize]) {
        let lead = self.graph.shape(self.input)[0];
        for slot in 0..lead {
            self.feed_slot(data, indices, slot);
        }
    }

    /// Feeds model `e` the samples `indices[e]` (one batch each): a net built with per-model
    /// data (`spec::build_fed`), each model trained on its own subset or sample.
    pub fn feed_models(&mut self, data: &Samples, indices: &[&[usize]]) {
        assert_eq!(self.graph.shape(self.input)[0], indices.len(), "a net with per-model data, one list per model");
        for (slot, ix) in indices.iter().enumerate() {
            self.feed_slot(data, ix, slot);
        }
    }

    /// Writes one batch into slab `slot` of the input and of every head's target.
    fn feed_slot(&mut self, data: &Samples, indices: &[usize], slot: usize) {
        let batch = self.batch;
        assert_eq!(indices.len(), batch, "one batch of indices");
        let f = data.features();
        let x = &mut self.graph.value_mut(self.input)[slot * f * batch..(slot + 1) * f * batch];
        // Samples are rows of `data.x`, features rows of `x`: a transpose, in tiles of 16
        // samples × 16 features so both sides stay in a few cache lines (a held-out pass over a
        // thousand CNN images scattered one value per line).
        const TILE: usize = 16;
        for s0 in (0..batch).step_by(TILE) {
            let tile = &indices[s0..(s0 + TILE).min(batch)];
            for k0 in (0..f).step_by(TILE) {
                for (s, &i) in (s0..).zip(tile) {
                    for (k, &v) in (k0..).zip(&data.x[i * f + k0..i * f + (k0 + TILE).min(f)]) {
                        x[k * batch + s] = T::from_f64(v as f64);
                    }
                }
            }
        }
        for h in &self.heads {
            let t = data.target(&h.target_name).expect("targets are checked when the net is built");
            let width = self.graph.shape(h.target)[1];
            let out = &mut self.graph.value_mut(h.target)[slot * width * batch..(slot + 1) * width * batch];
            if h.one_hot {
                out.fill(T::default());
                for (s, &i) in indices.iter().enumerate() {
                    out[t.values[i] as usize * batch + s] = T::from_f64(1.0);
                }
            } else {
                for (s, &i) in indices.iter().enumerate() {
                    for j in 0..t.width {
                        out[j * batch + s] = T::from_f64(t.values[i * t.width + j] as f64);
                    }
                }
            }
        }
    }

    /// Model `e`'s slab of head `h`'s targets `[T, B]` (the shared one unless the net has
    /// per-model data).
    fn targets_of(&self, h: &Head, e: usize) -> &[T] {
        let shape = self.graph.shape(h.target);
        let n = shape[1] * self.batch;
        let lead = if shape[0] == 1 { 0 } else { e };
        &self.graph.value(h.target)[lead * n..(lead + 1) * n]
    }

    /// Feeds a whole built-in dataset as the batch.
    pub fn set_data(&mut self, data: &Dataset) {
        assert_eq!(data.n, self.batch, "the batch is the whole dataset");
        let all: Vec<usize> = (0..data.n).collect();
        self.feed(&data.samples(), &all);
    }

    /// Per model: correct predictions of head `h` among the first `valid` samples of the batch.
    pub fn correct(&self, h: &Head, valid: usize, out: &mut [usize]) {
        self.correct_of(h, valid, out, None);
    }

    /// [`correct`](Self::correct) for the models flagged in `models` (all if `None`); the
    /// others' counts are left as they were.
    pub fn correct_of(&self, h: &Head, valid: usize, out: &mut [usize], models: Option<&[bool]>) {
        for (e, count) in out.iter_mut().enumerate() {
            if models.is_some_and(|m| !m[e]) {
                continue;
            }
            *count = 0;
            if let Some(right) = self.binary(h, e, valid) {
                // The common rule as one loop over slices, which vectorises.
                *count = right.filter(|&ok| ok).count();
                continue;
            }
            self.each_correct(h, e, valid, |_, ok| *count += usize::from(ok));
        }
    }

    /// `right[s] &= correct(s)` for model `e`'s first `right.len()` samples under head `h`'s rule.
    #[inline]
    pub fn and_correct(&self, h: &Head, e: usize, right: &mut [bool]) {
        if let Some(ok) = self.binary(h, e, right.len()) {
            right.iter_mut().zip(ok).for_each(|(r, ok)| *r &= ok);
            return;
        }
        self.each_correct(h, e, right.len(), |s, ok| right[s] &= ok);
    }

    /// For a binary head, whether each of model `e`'s first `valid` samples is right: its score
    /// above the threshold exactly when its target is above ½ (in `T`). One loop over slices, so
    /// the callers' loops vectorise; `None` for other rules.
    #[inline]
    fn binary(&self, h: &Head, e: usize, valid: usize) -> Option<impl Iterator<Item = bool> + '_> {
        let Some(Metric::Binary { threshold }) = h.metric else { return None };
        let g = &self.graph;
        let outputs = g.shape(h.score)[1];
        let o = &g.value(h.score)[e * outputs * self.batch..][..valid];
        let (threshold, half) = (T::from_f64(threshold), T::from_f64(0.5));
        Some(o.iter().zip(&self.targets_of(h, e)[..valid]).map(move |(&o, &t)| (o > threshold) == (t > half)))
    }

    /// Calls `f(sample, correct)` for model `e`'s first `valid` samples under head `h`'s rule.
    #[inline]
    pub fn each_correct(&self, h: &Head, e: usize, valid: usize, mut f: impl FnMut(usize, bool)) {
        let g = &self.graph;
        let (score, target, b) = (g.value(h.score), self.targets_of(h, e), self.batch);
        let outputs = g.shape(h.score)[1];
        let t_width = g.shape(h.target)[1];
        let argmax = |v: &[T], width: usize, s: usize| argmax_column(v, width, b, s);
        let o = &score[e * outputs * b..(e + 1) * outputs * b];
        // One loop per rule (the rule is fixed for the whole batch): this runs for every model
        // at every recorded iteration, so the per-sample match showed in Table 1's profile.
        match h.metric {
            Some(Metric::Binary { .. }) => {
                let right = self.binary(h, e, valid).expect("a binary head");
                right.enumerate().for_each(|(s, ok)| f(s, ok));
            }
            Some(Metric::Argmax) => {
                for s in 0..valid {
                    let want = if t_width == 1 { target[s].to_f64() as usize } else { argmax(target, t_width, s) };
                    f(s, argmax(o, outputs, s) == want);
                }
            }
            Some(Metric::Within { tolerance }) => {
                for s in 0..valid {
                    f(s, (0..outputs).all(|j| (o[j * b + s].to_f64() - target[j * b + s].to_f64()).abs() < tolerance));
                }
            }
            None => (0..valid).for_each(|s| f(s, false)),
        }
    }

    /// Per model: head `h`'s loss summed over the first `valid` samples of the batch, per-sample
    /// terms as the loss defines them (before the batch reduction).
    pub fn loss_sum(&self, h: &Head, valid: usize, out: &mut [f64]) {
        let terms = self.graph.loss_terms(h.loss).expect("a head's loss is a loss node");
        let b = self.batch;
        let per_model = terms.len() / out.len();
        for (e, total) in out.iter_mut().enumerate() {
            let t = &terms[e * per_model..(e + 1) * per_model];
            *total = t.chunks_exact(b).map(|row| row[..valid].iter().map(|v| v.to_f64()).sum::<f64>()).sum();
        }
    }
}

/// The first highest of column `s` of a `[width, b]` block: a class prediction, or the class
/// of a one-hot target row.
#[inline]
pub fn argmax_column<T: PartialOrd>(v: &[T], width: usize, b: usize, s: usize) -> usize {
    let mut best = 0;
    for c in 1..width {
        if v[c * b + s] > v[best * b + s] {
            best = c;
        }
    }
    best
}

/// Per model: the fraction of units (each channel and position of a `[E, C, S..., B]`
/// activation) whose value is ≤ 0 for every sample of the batch.
pub fn dead_fraction<T: Real>(activation: &[T], shape: &[usize], out: &mut [f64]) {
    let b = shape[shape.len() - 1];
    let units: usize = shape[1..shape.len() - 1].iter().product();
    for (e, frac) in out.iter_mut().enumerate() {
        let a = &activation[e * units * b..(e + 1) * units * b];
        let dead = a.chunks_exact(b).filter(|unit| unit.iter().all(|v| v.to_f64() <= 0.0)).count();
        *frac = dead as f64 / units as f64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_units_are_those_never_positive() {
        // E = 1, C = 2, 2 positions, B = 3: units (c, pos) each hold a run of 3 samples.
        let a = [
            1.0f32, -1.0, 2.0, /* c0 p1 */ 0.0, -0.5, -3.0, /* c1 p0 */ 0.0, 0.0, 0.0, /* c1 p1 */ 1.0,
            0.0, 0.0,
        ];
        let mut f = [0.0];
        dead_fraction(&a, &[1, 2, 2, 3], &mut f);
        // c0 p1: 0, -0.5, -3 → dead; c1 p0: 0, 0, 0 → dead; the others alive.
        assert_eq!(f[0], 0.5);
    }
}

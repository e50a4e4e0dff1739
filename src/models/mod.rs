//! Networks built on the engine: the fc73 net of Task 2 and the CNNs of Task 3. Each is a
//! [`Net`]: the tape plus the nodes a trainer needs (input, targets, outputs, losses, hidden
//! activations) and its parameters under PyTorch names.

pub mod cnn;
pub mod fc;
pub mod params;

use crate::data::Dataset;
use crate::engine::{Graph, NodeId, Real};
use crate::init::SeededRng;

/// How the ensemble's parameters start: one seed and one weight std per model.
#[derive(Clone, Debug)]
pub struct Init {
    pub seeds: Vec<u64>,
    pub weight_std: Vec<f64>,
    pub bias: f64,
}

impl Init {
    /// Seeds `first..first+n`, the same std for all.
    pub fn seeds(first: u64, n: usize, weight_std: f64, bias: f64) -> Init {
        Init { seeds: (first..first + n as u64).collect(), weight_std: vec![weight_std; n], bias }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamKind {
    /// Truncated-normal initialised.
    Weight,
    /// Constant initialised.
    Bias,
}

pub struct Net<T: Real> {
    pub graph: Graph<T>,
    /// The images, `[1, P, B]` (dense input) or `[1, 1, side, side, B]` (conv input): the
    /// file's `[B, P]` transposed, batch last like every engine value.
    pub input: NodeId,
    pub labels: NodeId,
    /// Regression targets (detection widths).
    pub widths: Option<NodeId>,
    /// The classification logit `[E, 1, B]`.
    pub logits: NodeId,
    /// The width prediction `[E, 1, B]` of the two-task net.
    pub regression: Option<NodeId>,
    /// The two parts of a two-task loss; `loss` is their weighted sum.
    pub ce_loss: Option<NodeId>,
    pub reg_loss: Option<NodeId>,
    pub loss: NodeId,
    /// Hidden activations, for dead-unit fractions: `(column suffix, node)`.
    pub hidden: Vec<(&'static str, NodeId)>,
    /// Parameters in creation order, under PyTorch names (`fc1.weight`, `conv1.bias`, …).
    pub params: Vec<(String, NodeId, ParamKind)>,
    pub batch: usize,
}

impl<T: Real> Net<T> {
    /// A parameter by its PyTorch name.
    pub fn param(&self, name: &str) -> NodeId {
        self.params.iter().find(|(n, ..)| n == name).unwrap_or_else(|| panic!("no parameter `{name}`")).1
    }

    /// Weights: truncated normal (redrawn beyond 2 std), drawn from each model's own seed in
    /// parameter order, row-major in PyTorch layout. Biases: the constant `init.bias`.
    pub fn init(&mut self, init: &Init) {
        let e_count = self.graph.ensemble();
        assert_eq!(init.seeds.len(), e_count, "one seed per model");
        assert_eq!(init.weight_std.len(), e_count, "one std per model");
        for e in 0..e_count {
            let mut rng = SeededRng::new(init.seeds[e]);
            for &(_, id, kind) in &self.params {
                if kind == ParamKind::Weight {
                    let values = self.graph.value_mut(id);
                    let n = values.len() / e_count;
                    for v in &mut values[e * n..(e + 1) * n] {
                        *v = T::from_f64(rng.truncated_normal(init.weight_std[e]));
                    }
                }
            }
        }
        for &(_, id, kind) in &self.params {
            if kind == ParamKind::Bias {
                self.graph.value_mut(id).fill(T::from_f64(init.bias));
            }
        }
    }

    /// Feeds the whole dataset as the batch.
    pub fn set_data(&mut self, data: &Dataset) {
        assert_eq!(data.n, self.batch, "the batch is the whole dataset");
        let (batch, pixels) = (data.n, data.pixels());
        let x = self.graph.value_mut(self.input);
        for (s, img) in data.images.chunks_exact(pixels).enumerate() {
            for (f, &v) in img.iter().enumerate() {
                x[f * batch + s] = T::from_f64(v as f64);
            }
        }
        let y = self.graph.value_mut(self.labels);
        y.iter_mut().zip(&data.labels).for_each(|(d, &s)| *d = T::from_f64(s as f64));
        if let (Some(w), Some(widths)) = (self.widths, &data.widths) {
            let t = self.graph.value_mut(w);
            t.iter_mut().zip(widths).for_each(|(d, &s)| *d = T::from_f64(s as f64));
        }
    }
}

/// Per model: the fraction of samples whose prediction `round(σ(logit))` equals the label.
/// `σ(o) > 0.5` exactly when `o > 0`, and a tie rounds to 0 (round-half-even, as NumPy/TF).
pub fn binary_accuracy<T: Real>(logits: &[T], labels: &[f32], out: &mut [f64]) {
    let batch = labels.len();
    for (e, acc) in out.iter_mut().enumerate() {
        let correct = logits[e * batch..(e + 1) * batch]
            .iter()
            .zip(labels)
            .filter(|&(&o, &y)| (o.to_f64() > 0.0) == (y > 0.5))
            .count();
        *acc = correct as f64 / batch as f64;
    }
}

/// Per model: the fraction of samples with `|ŵ − w| < 0.5`.
pub fn regression_accuracy<T: Real>(pred: &[T], widths: &[f32], out: &mut [f64]) {
    let batch = widths.len();
    for (e, acc) in out.iter_mut().enumerate() {
        let correct = pred[e * batch..(e + 1) * batch]
            .iter()
            .zip(widths)
            .filter(|&(&p, &w)| (p.to_f64() - w as f64).abs() < 0.5)
            .count();
        *acc = correct as f64 / batch as f64;
    }
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

    #[test]
    fn accuracies_count_exact_rules() {
        let mut acc = [0.0; 2];
        binary_accuracy(&[0.3f32, -0.1, 0.0, 2.0], &[1.0, 1.0], &mut acc);
        assert_eq!(acc, [0.5, 0.5]);
        regression_accuracy(&[2.4f32, 3.6, 2.6, 3.0], &[2.0, 3.0], &mut acc);
        assert_eq!(acc, [0.5, 0.5]);
    }
}

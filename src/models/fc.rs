//! The Task 2 network: 16 → hidden (activation) → 1 logit, 73 parameters with 4 hidden units.
//!
//! Loss `ce`: sigmoid cross-entropy on the logit. Loss `l2`: the logit goes through a sigmoid
//! and the loss is the squared error to the label. Both reduced over the batch (mean by default).

use super::{Init, init_params};
use crate::activations::Activation;
use crate::engine::{Graph, NodeId, Real, Reduction};
use crate::error::Result;

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum LossKind {
    /// Squared error of σ(logit) to the label.
    L2,
    /// Sigmoid cross-entropy on the logit (numerically stable form).
    Ce,
}

impl std::fmt::Display for LossKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LossKind::L2 => "l2",
            LossKind::Ce => "ce",
        })
    }
}

#[derive(Clone, Copy, Debug)]
pub struct FcConfig {
    pub act: Activation,
    pub loss: LossKind,
    pub reduction: Reduction,
    /// One bias per sample in both layers (`[4, B]` and `[1, B]`): the original code's mistake.
    pub per_sample_bias: bool,
    pub inputs: usize,
    pub hidden: usize,
}

impl FcConfig {
    pub fn new(act: Activation, loss: LossKind) -> FcConfig {
        FcConfig {
            act,
            loss,
            reduction: Reduction::Mean,
            per_sample_bias: false,
            inputs: 16,
            hidden: 4,
        }
    }
}

pub struct FcNet<T: Real> {
    pub graph: Graph<T>,
    pub x: NodeId,
    pub y: NodeId,
    pub w1: NodeId,
    pub b1: NodeId,
    pub hidden: NodeId,
    pub w2: NodeId,
    pub b2: NodeId,
    pub logits: NodeId,
    pub loss: NodeId,
    pub batch: usize,
}

impl<T: Real> FcNet<T> {
    pub fn build(cfg: &FcConfig, ensemble: usize, batch: usize) -> Result<FcNet<T>> {
        let mut g = Graph::new(ensemble);
        let x = g.input(&[1, cfg.inputs, batch])?;
        let y = g.input(&[1, 1, batch])?;
        let (b1_shape, b2_shape) = if cfg.per_sample_bias {
            (vec![cfg.hidden, batch], vec![1, batch])
        } else {
            (vec![cfg.hidden], vec![1])
        };
        let w1 = g.param(&[cfg.hidden, cfg.inputs]);
        let b1 = g.param(&b1_shape);
        let w2 = g.param(&[1, cfg.hidden]);
        let b2 = g.param(&b2_shape);
        let pre = g.dense(x, w1, Some(b1))?;
        let hidden = g.activation(pre, cfg.act);
        let logits = g.dense(hidden, w2, Some(b2))?;
        let loss = match cfg.loss {
            LossKind::Ce => g.sigmoid_cross_entropy(logits, y, cfg.reduction)?,
            LossKind::L2 => {
                let p = g.activation(logits, Activation::Sigmoid);
                g.squared_error(p, y, 1.0, cfg.reduction)?
            }
        };
        Ok(FcNet {
            graph: g,
            x,
            y,
            w1,
            b1,
            hidden,
            w2,
            b2,
            logits,
            loss,
            batch,
        })
    }

    pub fn init(&mut self, init: &Init) {
        init_params(
            &mut self.graph,
            &[self.w1, self.w2],
            &[self.b1, self.b2],
            init,
        );
    }

    /// Feeds the shared batch: images `[B, 16]` (row-major, as stored), labels `[B]`.
    /// The engine holds them feature-major, `[16, B]`.
    pub fn set_data(&mut self, images: &[f32], labels: &[f32]) {
        let batch = self.batch;
        let inputs = images.len() / batch;
        let x = self.graph.value_mut(self.x);
        for (s, row) in images.chunks_exact(inputs).enumerate() {
            for (f, &v) in row.iter().enumerate() {
                x[f * batch + s] = T::from_f64(v as f64);
            }
        }
        for (d, &s) in self.graph.value_mut(self.y).iter_mut().zip(labels) {
            *d = T::from_f64(s as f64);
        }
    }
}

/// Per model: the fraction of samples whose prediction `round(σ(logit))` equals the label.
/// `σ(o) > 0.5` exactly when `o > 0`, and a tie rounds to 0 (round-half-even, as NumPy/TF).
pub fn binary_accuracy<T: Real>(logits: &[T], labels: &[f32], ensemble: usize, out: &mut [f64]) {
    let batch = labels.len();
    for (e, acc) in out.iter_mut().enumerate().take(ensemble) {
        let correct = logits[e * batch..(e + 1) * batch]
            .iter()
            .zip(labels)
            .filter(|&(&o, &y)| (o.to_f64() > 0.0) == (y > 0.5))
            .count();
        *acc = correct as f64 / batch as f64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fc73_has_73_parameters_and_per_sample_variant_adds_320() {
        let cfg = FcConfig::new(Activation::Sigmoid, LossKind::L2);
        assert_eq!(
            FcNet::<f32>::build(&cfg, 3, 64)
                .unwrap()
                .graph
                .param_count(),
            73
        );
        let ps = FcConfig {
            per_sample_bias: true,
            ..cfg
        };
        assert_eq!(
            FcNet::<f32>::build(&ps, 3, 64).unwrap().graph.param_count(),
            73 - 5 + 64 * 5
        );
    }
}

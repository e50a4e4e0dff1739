//! The Task 2 network: 16 → hidden (activation) → 1 logit, 73 parameters with 4 hidden units.
//!
//! Loss `ce`: sigmoid cross-entropy on the logit. Loss `l2`: the logit goes through a sigmoid
//! and the loss is the squared error to the label. Both reduced over the batch (mean by default).

use super::{Head, LayerNodes, Metric, Net, ParamKind};
use crate::activations::Activation;
use crate::engine::{Graph, Real, Reduction};
use crate::error::Result;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
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
        FcConfig { act, loss, reduction: Reduction::Mean, per_sample_bias: false, inputs: 16, hidden: 4 }
    }
}

/// Parameters `fc1.weight [4, 16]`, `fc1.bias [4]`, `fc2.weight [1, 4]`, `fc2.bias [1]`
/// (per-sample variant: `fc1.bias [4, B]`, `fc2.bias [1, B]`).
pub fn build<T: Real>(cfg: &FcConfig, ensemble: usize, batch: usize) -> Result<Net<T>> {
    let mut g = Graph::new(ensemble);
    let x = g.input(&[1, cfg.inputs, batch])?;
    let y = g.input(&[1, 1, batch])?;
    let (b1_shape, b2_shape) =
        if cfg.per_sample_bias { (vec![cfg.hidden, batch], vec![1, batch]) } else { (vec![cfg.hidden], vec![1]) };
    let w1 = g.param(&[cfg.hidden, cfg.inputs]);
    let b1 = g.param(&b1_shape);
    let w2 = g.param(&[1, cfg.hidden]);
    let b2 = g.param(&b2_shape);
    let pre = g.dense(x, w1, Some(b1))?;
    let hidden = g.activation(pre, cfg.act);
    let logits = g.dense(hidden, w2, Some(b2))?;
    let (loss, output) = match cfg.loss {
        LossKind::Ce => {
            (g.sigmoid_cross_entropy(logits, y, cfg.reduction)?, LayerNodes::new("fc2", logits, logits, None))
        }
        LossKind::L2 => {
            let p = g.activation(logits, Activation::Sigmoid);
            (g.squared_error(p, y, 1.0, cfg.reduction)?, LayerNodes::new("fc2", logits, p, Some(Activation::Sigmoid)))
        }
    };
    let params = vec![
        ("fc1.weight".to_string(), w1, ParamKind::Weight),
        ("fc1.bias".to_string(), b1, ParamKind::Bias),
        ("fc2.weight".to_string(), w2, ParamKind::Weight),
        ("fc2.bias".to_string(), b2, ParamKind::Bias),
    ];
    let head = Head {
        target_name: "y".into(),
        target: y,
        one_hot: false,
        score: logits,
        loss,
        weight: 1.0,
        sum_scale: if cfg.reduction == Reduction::Sum { batch as f64 } else { 1.0 },
        metric: Some(Metric::Binary { threshold: 0.0 }),
        loss_column: "loss".into(),
        accuracy_column: "accuracy".into(),
    };
    let hidden_units = vec![("hidden".into(), hidden)];
    Ok(Net {
        graph: g,
        input: x,
        heads: vec![head],
        loss,
        hidden: hidden_units,
        layers: vec![LayerNodes::new("fc1", pre, hidden, Some(cfg.act)), output],
        params,
        batch,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fc73_has_73_parameters_and_per_sample_variant_adds_320() {
        let cfg = FcConfig::new(Activation::Sigmoid, LossKind::L2);
        assert_eq!(build::<f32>(&cfg, 3, 64).unwrap().graph.param_count(), 73);
        let ps = FcConfig { per_sample_bias: true, ..cfg };
        assert_eq!(build::<f32>(&ps, 3, 64).unwrap().graph.param_count(), 73 - 5 + 64 * 5);
    }
}

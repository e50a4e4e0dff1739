//! The Task 3 networks on 16×16 images: conv 7×7 1→16, act, conv 7×7 16→8, act, flatten
//! (channel-major, 128 features), then one dense head (line: class logit) or two (detect:
//! class logit and width regressor).
//!
//! Losses: classification is sigmoid cross-entropy (mean, or sum with `Reduction::Sum`);
//! the width regression is ½·Σ over the batch of (ŵ − w)², always a sum as in the original;
//! the two-task total is CE + 0.01 × regression.

use super::{Head, LayerNodes, Metric, Net, ParamKind};
use crate::activations::Activation;
use crate::engine::conv2d::Conv2dSpec;
use crate::engine::{Graph, Real, Reduction};
use crate::error::Result;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CnnTask {
    /// One task on `line`: classification.
    Line,
    /// Two tasks on `detection`: classification and width regression.
    Detect,
}

#[derive(Clone, Copy, Debug)]
pub struct CnnConfig {
    pub task: CnnTask,
    pub act: Activation,
    pub reduction: Reduction,
    /// One conv bias per output position and channel (`[16, 10, 10]`, `[8, 4, 4]`), as the
    /// original two-task code had.
    pub untied_conv_bias: bool,
}

/// Weight of the regression loss in the two-task total.
pub const REGRESSION_WEIGHT: f64 = 0.01;

/// Parameters `conv1.weight [16, 1, 7, 7]`, `conv1.bias [16]`, `conv2.weight [8, 16, 7, 7]`,
/// `conv2.bias [8]`, `cls.weight [1, 128]`, `cls.bias [1]`, and for detect `reg.weight
/// [1, 128]`, `reg.bias [1]` (untied conv biases: `[16, 10, 10]` and `[8, 4, 4]`).
pub fn build<T: Real>(cfg: &CnnConfig, ensemble: usize, batch: usize) -> Result<Net<T>> {
    let spec = Conv2dSpec::default();
    let mut g = Graph::new(ensemble);
    let x = g.input(&[1, 1, 16, 16, batch])?;
    let labels = g.input(&[1, 1, batch])?;
    let w1 = g.param(&[16, 1, 7, 7]);
    let b1 = g.param(if cfg.untied_conv_bias { &[16, 10, 10][..] } else { &[16][..] });
    let w2 = g.param(&[8, 16, 7, 7]);
    let b2 = g.param(if cfg.untied_conv_bias { &[8, 4, 4][..] } else { &[8][..] });
    let wc = g.param(&[1, 128]);
    let bc = g.param(&[1]);
    let c1 = g.conv2d(x, w1, Some(b1), spec)?;
    let a1 = g.activation(c1, cfg.act);
    let c2 = g.conv2d(a1, w2, Some(b2), spec)?;
    let a2 = g.activation(c2, cfg.act);
    let logits = g.dense(a2, wc, Some(bc))?;
    let ce = g.sigmoid_cross_entropy(logits, labels, cfg.reduction)?;
    let mut params = vec![
        ("conv1.weight".to_string(), w1, ParamKind::Weight),
        ("conv1.bias".to_string(), b1, ParamKind::Bias),
        ("conv2.weight".to_string(), w2, ParamKind::Weight),
        ("conv2.bias".to_string(), b2, ParamKind::Bias),
        ("cls.weight".to_string(), wc, ParamKind::Weight),
        ("cls.bias".to_string(), bc, ParamKind::Bias),
    ];
    let hidden = vec![("conv1".to_string(), a1), ("conv2".to_string(), a2)];
    let cls = Head {
        target_name: "y".into(),
        target: labels,
        one_hot: false,
        score: logits,
        loss: ce,
        weight: 1.0,
        sum_scale: if cfg.reduction == Reduction::Sum { batch as f64 } else { 1.0 },
        metric: Some(Metric::Binary { threshold: 0.0 }),
        loss_column: "ce_loss".into(),
        accuracy_column: "cls_accuracy".into(),
    };
    let mut net = Net { graph: g, input: x, heads: vec![cls], loss: ce, hidden, layers: vec![], params: vec![], batch };
    net.layers = vec![
        LayerNodes::new("conv1", c1, a1, Some(cfg.act)),
        LayerNodes::new("conv2", c2, a2, Some(cfg.act)),
        LayerNodes::new("cls", logits, logits, None),
    ];
    if cfg.task == CnnTask::Detect {
        let g = &mut net.graph;
        let widths = g.input(&[1, 1, batch])?;
        let wr = g.param(&[1, 128]);
        let br = g.param(&[1]);
        let reg = g.dense(a2, wr, Some(br))?;
        net.layers.push(LayerNodes::new("reg", reg, reg, None));
        let reg_loss = g.squared_error(reg, widths, 0.5, Reduction::Sum)?;
        net.loss = g.weighted_sum(&[(ce, 1.0), (reg_loss, REGRESSION_WEIGHT)])?;
        params.push(("reg.weight".to_string(), wr, ParamKind::Weight));
        params.push(("reg.bias".to_string(), br, ParamKind::Bias));
        net.heads.push(Head {
            target_name: "width".into(),
            target: widths,
            one_hot: false,
            score: reg,
            loss: reg_loss,
            weight: REGRESSION_WEIGHT,
            sum_scale: batch as f64,
            metric: Some(Metric::Within { tolerance: 0.5 }),
            loss_column: "reg_loss".into(),
            accuracy_column: "reg_accuracy".into(),
        });
    }
    net.params = params;
    Ok(net)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_counts() {
        let cfg = CnnConfig {
            task: CnnTask::Line,
            act: Activation::Relu,
            reduction: Reduction::Mean,
            untied_conv_bias: false,
        };
        // 16·49 + 16 + 8·16·49 + 8 + 128 + 1
        assert_eq!(build::<f32>(&cfg, 2, 4).unwrap().graph.param_count(), 784 + 16 + 6272 + 8 + 129);
        let det = CnnConfig { task: CnnTask::Detect, untied_conv_bias: true, ..cfg };
        assert_eq!(build::<f32>(&det, 2, 4).unwrap().graph.param_count(), 784 + 1600 + 6272 + 128 + 129 * 2);
    }
}

//! Independent builders of the report's nets, written op by op on the engine's public API: no
//! command uses them (those build the presets, `experiments::presets`, through `models::spec`);
//! `tests/lab.rs` trains the presets bit for bit against this second construction.

use gradlab::activations::Activation;
use gradlab::engine::conv2d::Conv2dSpec;
use gradlab::engine::{Graph, Real, Reduction};
use gradlab::error::Result;
use gradlab::models::{Head, LayerNodes, Metric, Net, ParamKind};

/// Task 2's net: `inputs` → `hidden` (act) → 1 logit; `l2`: σ(logit) against the label
/// (squared error), else sigmoid cross-entropy on the logit.
#[derive(Clone, Copy, Debug)]
pub struct Fc73Twin {
    pub act: Activation,
    pub l2: bool,
    pub reduction: Reduction,
    /// One bias per sample in both layers (`[4, B]` and `[1, B]`): the original code's mistake.
    pub per_sample_bias: bool,
    pub inputs: usize,
    pub hidden: usize,
}

impl Fc73Twin {
    pub fn new(act: Activation, l2: bool) -> Fc73Twin {
        Fc73Twin { act, l2, reduction: Reduction::Mean, per_sample_bias: false, inputs: 16, hidden: 4 }
    }
}

/// Parameters `fc1.weight [4, 16]`, `fc1.bias [4]`, `fc2.weight [1, 4]`, `fc2.bias [1]`
/// (per-sample variant: `fc1.bias [4, B]`, `fc2.bias [1, B]`).
pub fn fc73<T: Real>(cfg: &Fc73Twin, ensemble: usize, batch: usize) -> Result<Net<T>> {
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
    let (loss, output) = match cfg.l2 {
        false => (g.sigmoid_cross_entropy(logits, y, cfg.reduction)?, LayerNodes::new("fc2", logits, logits, None)),
        true => {
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
    let hidden_units = vec![("fc1".into(), hidden)];
    Ok(Net {
        graph: g,
        input: x,
        heads: vec![head],
        loss,
        hidden: hidden_units,
        layers: vec![LayerNodes::new("fc1", pre, hidden, Some(cfg.act)), output],
        params,
        batch,
        buffers: vec![],
        spec: None,
    })
}

/// Task 3's CNNs on 16×16 images: conv 7×7 1→16, act, conv 7×7 16→8, act, then a class logit
/// (line) and a width regressor (detect: CE + 0.01 × ½Σ(ŵ − w)²).
#[derive(Clone, Copy, Debug)]
pub struct CnnTwin {
    pub detect: bool,
    pub act: Activation,
    pub reduction: Reduction,
    pub untied_conv_bias: bool,
}

pub fn cnn<T: Real>(cfg: &CnnTwin, ensemble: usize, batch: usize) -> Result<Net<T>> {
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
        loss_column: "cls_loss".into(),
        accuracy_column: "cls_accuracy".into(),
    };
    let mut net = Net {
        graph: g,
        input: x,
        heads: vec![cls],
        loss: ce,
        hidden,
        layers: vec![],
        params: vec![],
        batch,
        buffers: vec![],
        spec: None,
    };
    net.layers = vec![
        LayerNodes::new("conv1", c1, a1, Some(cfg.act)),
        LayerNodes::new("conv2", c2, a2, Some(cfg.act)),
        LayerNodes::new("cls", logits, logits, None),
    ];
    if cfg.detect {
        let g = &mut net.graph;
        let widths = g.input(&[1, 1, batch])?;
        let wr = g.param(&[1, 128]);
        let br = g.param(&[1]);
        let reg = g.dense(a2, wr, Some(br))?;
        net.layers.push(LayerNodes::new("reg", reg, reg, None));
        let reg_loss = g.squared_error(reg, widths, 0.5, Reduction::Sum)?;
        net.loss = g.weighted_sum(&[(ce, 1.0), (reg_loss, 0.01)])?;
        params.push(("reg.weight".to_string(), wr, ParamKind::Weight));
        params.push(("reg.bias".to_string(), br, ParamKind::Bias));
        net.heads.push(Head {
            target_name: "width".into(),
            target: widths,
            one_hot: false,
            score: reg,
            loss: reg_loss,
            weight: 0.01,
            sum_scale: batch as f64,
            metric: Some(Metric::Within { tolerance: 0.5 }),
            loss_column: "reg_loss".into(),
            accuracy_column: "reg_accuracy".into(),
        });
    }
    net.params = params;
    Ok(net)
}

//! Any network from a description: a list of layers applied in order (dense, conv2d, max/avg
//! pooling, residual additions), then one output (`loss` on the last layer) or several heads
//! (each a dense layer on the trunk, with its own target, loss and weight). Parameters are named
//! `layers.<i>.weight` / `layers.<i>.bias` in PyTorch layouts, as an `nn.Sequential` user would
//! find them, or `<name>.weight` for a layer with a `name` and for every head (the presets'
//! `fc1.weight`, `conv1.bias`, `cls.weight`).
//!
//! The description is plain data (read from the `[network]` table of an experiment file);
//! [`build`] checks it against the data and makes the tape, naming the field at fault
//! (`network.layers.2`: "kernel 7×7 does not fit input 4×4").

use super::{Buffer, Head, LayerNodes, Metric, Net, ParamKind};
use crate::activations::Activation;
use crate::data::Samples;
use crate::engine::conv2d::Conv2dSpec;
use crate::engine::pool::PoolKind;
use crate::engine::{Graph, NodeId, Real, Reduction};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// How a layer's bias is shaped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BiasKind {
    /// One per output unit or channel (the ordinary layer).
    #[default]
    Tied,
    /// Conv only: one per output channel and position (the original two-task code's).
    Untied,
    /// Dense only: one per output unit and sample (the original Task 2 code's mistake).
    PerSample,
    None,
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Layer {
    /// Fully connected; flattens its input channel-major first (as `torch.flatten(x, 1)`).
    Dense {
        units: usize,
        act: Option<String>,
        #[serde(default)]
        bias: BiasKind,
        name: Option<String>,
    },
    Conv2d {
        channels: usize,
        kernel: usize,
        #[serde(default = "one")]
        stride: usize,
        #[serde(default)]
        padding: usize,
        act: Option<String>,
        #[serde(default)]
        bias: BiasKind,
        name: Option<String>,
    },
    /// Stride defaults to the kernel size.
    Maxpool {
        kernel: usize,
        stride: Option<usize>,
        name: Option<String>,
    },
    Avgpool {
        kernel: usize,
        stride: Option<usize>,
        name: Option<String>,
    },
    /// Layer normalisation of the previous layer's output over all its features (dense units, or
    /// a conv output's channels × height × width), `torch.nn.LayerNorm` with its per-feature
    /// scale (`weight`, from 1) and shift (`bias`, from 0); then `act` if given.
    Layernorm {
        #[serde(default = "default_eps")]
        eps: f64,
        act: Option<String>,
        name: Option<String>,
    },
    /// Batch normalisation of the previous layer's output (or of the input, when first) per
    /// channel or unit, `torch.nn.BatchNorm1d/2d`: batch statistics while training, running
    /// estimates (momentum `momentum`) in evaluation; scale `weight` (from 1), shift `bias`
    /// (from 0), running estimates saved as `running_mean` (from 0) and `running_var` (from 1);
    /// then `act` if given.
    Batchnorm {
        #[serde(default = "default_eps")]
        eps: f64,
        #[serde(default = "default_momentum")]
        momentum: f64,
        act: Option<String>,
        name: Option<String>,
    },
    /// Dropout while training (`torch.nn.Dropout(rate)`: zeroed with probability `rate`, the
    /// rest scaled by 1/(1 − rate)); the identity in evaluation. Each model draws its masks from
    /// its own seed's stream.
    Dropout {
        rate: f64,
        name: Option<String>,
    },
    /// Gaussian noise added while training, `x + std·z` (first: input noise); the identity in
    /// evaluation. Each model draws from its own seed's stream.
    GaussianNoise {
        std: f64,
        name: Option<String>,
    },
    /// Adds the output of layer `from` (an earlier index) to the previous layer's output, then
    /// applies `act` if given: `y = act(x + layers[from])`.
    Residual {
        from: usize,
        act: Option<String>,
        name: Option<String>,
    },
}

impl Layer {
    /// The layer's own `name`, if given: its parameters are `<name>.weight` / `<name>.bias`
    /// and probes and dead-unit columns call it so (the presets' `fc1`, `conv1`, …).
    pub fn name(&self) -> Option<&str> {
        match self {
            Layer::Dense { name, .. }
            | Layer::Conv2d { name, .. }
            | Layer::Maxpool { name, .. }
            | Layer::Avgpool { name, .. }
            | Layer::Layernorm { name, .. }
            | Layer::Batchnorm { name, .. }
            | Layer::Dropout { name, .. }
            | Layer::GaussianNoise { name, .. }
            | Layer::Residual { name, .. } => name.as_deref(),
        }
    }
}

fn one() -> usize {
    1
}

/// PyTorch's `LayerNorm` and `BatchNorm` ε.
fn default_eps() -> f64 {
    1e-5
}

/// PyTorch's `BatchNorm` momentum (the weight of the newest batch in the running estimates).
fn default_momentum() -> f64 {
    0.1
}

/// One output of a multi-head network: a dense layer on the trunk's output.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HeadSpec {
    /// Its parameters are `<name>.weight` / `<name>.bias`; its columns `<name>_loss`,
    /// `<name>_accuracy`.
    pub name: String,
    pub units: usize,
    #[serde(flatten)]
    pub output: OutputSpec,
    /// Weight of this head's loss in the total (1 by default).
    pub weight: Option<f64>,
}

/// What an output is trained against, and how.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    /// `softmax_ce` | `sigmoid_ce` | `l2`.
    pub loss: Option<String>,
    /// The data target (default `y`).
    pub target: Option<String>,
    /// l2 only: an activation between the output layer and the loss (e.g. `sigmoid`).
    pub output_act: Option<String>,
    /// l2 only: the loss is `scale·(ŷ − y)²` (1 by default).
    pub scale: Option<f64>,
    /// Mean (default) or sum over the batch; defaults to `network.reduction`.
    pub reduction: Option<Reduction>,
    /// l2 only: a prediction is correct when within this of its target (regression accuracy).
    pub tolerance: Option<f64>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSpec {
    pub layers: Vec<Layer>,
    /// The single output's loss and target (when there are no `heads`).
    #[serde(flatten)]
    pub output: OutputSpec,
    pub heads: Option<Vec<HeadSpec>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LossName {
    SoftmaxCe,
    SigmoidCe,
    L2,
}

impl LossName {
    pub const NAMES: &'static [&'static str] = &["softmax_ce", "sigmoid_ce", "l2"];
    pub fn parse(s: &str) -> std::result::Result<LossName, String> {
        Ok(match s {
            "softmax_ce" => LossName::SoftmaxCe,
            "sigmoid_ce" | "ce" => LossName::SigmoidCe,
            "l2" => LossName::L2,
            other => {
                let hint = crate::names::did_you_mean(other, Self::NAMES);
                return Err(format!("unknown loss `{other}`{hint} (known: {})", Self::NAMES.join(", ")));
            }
        })
    }
}

/// Layer and head names go into CSV columns, file names and safetensors keys unquoted, so they
/// are restricted to letters, digits, `_` and `-` (no `.`: it separates `<name>.weight`), at
/// most 64 characters.
fn plain_name(n: &str) -> bool {
    n.len() <= 64 && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn name_rule(n: &str) -> String {
    format!(
        "{n:?} is not a plain name: letters, digits, `_` and `-` only, at most 64 characters (it names CSV columns, files and parameters)"
    )
}

fn act(field: &str, name: &Option<String>) -> Result<Option<Activation>> {
    name.as_deref().map(|n| Activation::parse(n).map_err(|e| Error::field(format!("{field}.act"), e))).transpose()
}

/// Builds `spec` for `ensemble` models on batches of `batch` samples shaped like `data`'s, the
/// data shared by every model. Errors are [`Error::Field`]s naming the key at fault
/// (`network.layers.1`, …).
pub fn build<T: Real>(spec: &NetworkSpec, data: &Samples, ensemble: usize, batch: usize) -> Result<Net<T>> {
    build_fed(spec, data, ensemble, batch, false)
}

/// [`build`], and with `per_model_data` every model gets its own input and targets (leading
/// axis `ensemble`, fed by `Net::feed_models`): models trained on subsets of their own
/// (C-scores) or one sample each (per-sample gradients).
pub fn build_fed<T: Real>(
    spec: &NetworkSpec,
    data: &Samples,
    ensemble: usize,
    batch: usize,
    per_model_data: bool,
) -> Result<Net<T>> {
    if spec.layers.is_empty() && spec.heads.is_none() {
        return Err(Error::field("network.layers", "a network needs at least one layer"));
    }
    let mut g = Graph::new(ensemble);
    let lead = if per_model_data { ensemble } else { 1 };
    let image = data.shape.len() == 3;
    let first_is_dense = matches!(spec.layers.first(), Some(Layer::Dense { .. }) | None);
    let mut shape = vec![lead];
    if image && !first_is_dense {
        shape.extend_from_slice(&data.shape);
    } else {
        shape.push(data.features());
    }
    shape.push(batch);
    let input = g.input(&shape)?;
    let mut cur = input;
    let mut outputs: Vec<NodeId> = vec![];
    let mut layers = vec![];
    let mut hidden = vec![];
    let mut params = vec![];
    let mut buffers = vec![];
    let last = spec.layers.len().saturating_sub(1);
    let mut names: Vec<&str> = vec![];
    for (i, layer) in spec.layers.iter().enumerate() {
        let field = format!("network.layers.{i}");
        let bad = |msg: String| Error::field(field.clone(), msg);
        let prefix = match layer.name() {
            Some(n) if n.is_empty() || names.contains(&n) => {
                return Err(Error::field(format!("{field}.name"), format!("`{n}` is empty or used twice")));
            }
            Some(n) if !plain_name(n) => return Err(Error::field(format!("{field}.name"), name_rule(n))),
            Some(n) => {
                names.push(n);
                n.to_string()
            }
            None => format!("layers.{i}"),
        };
        let shape_err = |e: Error| match e {
            Error::Shape { msg, .. } => bad(msg),
            other => other,
        };
        let s = g.shape(cur).to_vec();
        let is_image = s.len() == 5;
        let (node, a) = match layer {
            Layer::Dense { units, act: name, bias, .. } => {
                if *units == 0 {
                    return Err(bad("`units` must be at least 1".into()));
                }
                let fan_in: usize = s[1..s.len() - 1].iter().product();
                let w = g.param(&[*units, fan_in]);
                let b = match bias {
                    BiasKind::Tied => Some(g.param(&[*units])),
                    BiasKind::PerSample => Some(g.param(&[*units, batch])),
                    BiasKind::None => None,
                    BiasKind::Untied => return Err(bad("`bias = \"untied\"` is for conv2d layers".into())),
                };
                push_params(&mut params, &prefix, w, b);
                (g.dense(cur, w, b).map_err(shape_err)?, act(&field, name)?)
            }
            Layer::Conv2d { channels, kernel, stride, padding, act: name, bias, .. } => {
                if !is_image {
                    return Err(bad(format!(
                        "conv2d needs image input [channels, height, width]; its input here is {:?} (features)",
                        &s[1..s.len() - 1]
                    )));
                }
                if *channels == 0 || *kernel == 0 || *stride == 0 {
                    return Err(bad("`channels`, `kernel` and `stride` must be at least 1".into()));
                }
                let cs = Conv2dSpec { stride: *stride, padding: *padding };
                let (Some(oh), Some(ow)) = (cs.out_size(s[2], *kernel), cs.out_size(s[3], *kernel)) else {
                    return Err(bad(format!(
                        "kernel {kernel}×{kernel} does not fit input {}×{} (padding {padding})",
                        s[2], s[3]
                    )));
                };
                let w = g.param(&[*channels, s[1], *kernel, *kernel]);
                let b = match bias {
                    BiasKind::Tied => Some(g.param(&[*channels])),
                    BiasKind::Untied => Some(g.param(&[*channels, oh, ow])),
                    BiasKind::None => None,
                    BiasKind::PerSample => return Err(bad("`bias = \"per_sample\"` is for dense layers".into())),
                };
                push_params(&mut params, &prefix, w, b);
                (g.conv2d(cur, w, b, cs).map_err(shape_err)?, act(&field, name)?)
            }
            Layer::Maxpool { kernel, stride, .. } | Layer::Avgpool { kernel, stride, .. } => {
                if !is_image {
                    return Err(bad("pooling needs image input [channels, height, width]".into()));
                }
                let kind = if matches!(layer, Layer::Maxpool { .. }) { PoolKind::Max } else { PoolKind::Avg };
                (g.pool(cur, kind, *kernel, stride.unwrap_or(*kernel)).map_err(shape_err)?, None)
            }
            Layer::Layernorm { eps, act: name, .. } => {
                if i == 0 {
                    return Err(bad("layernorm normalises a layer's output: put a layer before it".into()));
                }
                positive_eps(&field, *eps)?;
                let features = s[1..s.len() - 1].to_vec();
                let gamma = g.param(&features);
                let beta = g.param(&features);
                push_norm_params(&mut params, &prefix, gamma, beta);
                (g.layer_norm(cur, gamma, beta, *eps).map_err(shape_err)?, act(&field, name)?)
            }
            Layer::Batchnorm { eps, momentum, act: name, .. } => {
                positive_eps(&field, *eps)?;
                if !(0.0..=1.0).contains(momentum) {
                    return Err(Error::field(
                        format!("{field}.momentum"),
                        format!("must be in [0, 1], got {}", crate::names::number(*momentum)),
                    ));
                }
                let channels = s[1];
                let (gamma, beta) = (g.param(&[channels]), g.param(&[channels]));
                let (mean, var) = (g.state(&[channels]), g.state(&[channels]));
                push_norm_params(&mut params, &prefix, gamma, beta);
                buffers.push((format!("{prefix}.running_mean"), mean, Buffer::RunningMean));
                buffers.push((format!("{prefix}.running_var"), var, Buffer::RunningVar));
                let spec = crate::engine::batch_norm::BatchNormSpec { eps: *eps, momentum: *momentum };
                (g.batch_norm(cur, [gamma, beta], [mean, var], spec).map_err(shape_err)?, act(&field, name)?)
            }
            Layer::Dropout { rate, .. } => {
                if !(rate.is_finite() && (0.0..1.0).contains(rate)) {
                    return Err(Error::field(
                        format!("{field}.rate"),
                        format!("must be in [0, 1), got {}", crate::names::number(*rate)),
                    ));
                }
                (g.dropout(cur, *rate).map_err(shape_err)?, None)
            }
            Layer::GaussianNoise { std, .. } => {
                if !(std.is_finite() && *std >= 0.0) {
                    return Err(Error::field(
                        format!("{field}.std"),
                        format!("must be a finite number ≥ 0, got {}", crate::names::number(*std)),
                    ));
                }
                (g.gaussian_noise(cur, *std).map_err(shape_err)?, None)
            }
            Layer::Residual { from, act: name, .. } => {
                let Some(&earlier) = outputs.get(*from) else {
                    return Err(bad(format!("`from = {from}` must name an earlier layer (0..{i})")));
                };
                if g.shape(earlier)[1..] != s[1..] {
                    return Err(bad(format!(
                        "layer {from}'s output {:?} and the previous output {:?} differ in shape",
                        &g.shape(earlier)[1..],
                        &s[1..]
                    )));
                }
                (g.weighted_sum(&[(cur, 1.0), (earlier, 1.0)]).map_err(shape_err)?, act(&field, name)?)
            }
        };
        cur = match a {
            Some(a) => {
                let y = g.activation(node, a);
                if i != last || spec.heads.is_some() {
                    hidden.push((layer.name().map_or_else(|| format!("layer{i}"), String::from), y));
                }
                y
            }
            None => node,
        };
        outputs.push(cur);
        layers.push(LayerNodes::new(prefix, node, cur, a));
    }
    if spec.heads.is_none()
        && let Some(
            l @ (Layer::Dropout { .. }
            | Layer::GaussianNoise { .. }
            | Layer::Layernorm { .. }
            | Layer::Batchnorm { .. }),
        ) = spec.layers.last()
    {
        let kind = match l {
            Layer::Dropout { .. } => "dropout",
            Layer::GaussianNoise { .. } => "gaussian_noise",
            Layer::Batchnorm { .. } => "batchnorm",
            _ => "layernorm",
        };
        return Err(Error::field(
            format!("network.layers.{last}"),
            format!("a {kind} cannot be the output; put a dense layer after it"),
        ));
    }
    let mut heads = vec![];
    match &spec.heads {
        None => {
            let s = g.shape(cur).to_vec();
            if s.len() != 3 {
                return Err(Error::field(
                    format!("network.layers.{last}"),
                    "the output layer must be dense (a conv or pooling output needs a dense layer after it)",
                ));
            }
            let (head, out) = output_head(&mut g, &spec.output, "network", "out", cur, data, (lead, batch), 1.0)?;
            match (out, layers.last_mut()) {
                // An output activation of an output layer without its own is that layer's
                // (fc73's `fc2`: σ of the logit), so probes see one output layer.
                (Some((pred, act)), Some(l)) if l.act.is_none() => {
                    l.post = pred;
                    l.act = Some(act);
                }
                (Some((pred, act)), _) => layers.push(LayerNodes::new("output", cur, pred, Some(act))),
                (None, _) => {}
            }
            heads.push(head);
        }
        Some(list) => {
            if list.is_empty() {
                return Err(Error::field("network.heads", "is an empty list"));
            }
            if spec.output != OutputSpec::default() {
                return Err(Error::field(
                    "network",
                    "with `heads`, each head takes its own `loss`, `target`, …; remove them from [network]",
                ));
            }
            for (k, h) in list.iter().enumerate() {
                let field = format!("network.heads.{k}");
                if h.units == 0 {
                    return Err(Error::field(format!("{field}.units"), "must be at least 1"));
                }
                if !h.name.is_empty() && !plain_name(&h.name) {
                    return Err(Error::field(format!("{field}.name"), name_rule(&h.name)));
                }
                if list[..k].iter().any(|o| o.name == h.name) || h.name.is_empty() || names.contains(&h.name.as_str()) {
                    return Err(Error::field(format!("{field}.name"), format!("`{}` is empty or used twice", h.name)));
                }
                let weight = h.weight.unwrap_or(1.0);
                if !weight.is_finite() {
                    return Err(Error::field(format!("{field}.weight"), "must be finite"));
                }
                let s = g.shape(cur).to_vec();
                let fan_in: usize = s[1..s.len() - 1].iter().product();
                let w = g.param(&[h.units, fan_in]);
                let b = g.param(&[h.units]);
                push_params(&mut params, &h.name, w, Some(b));
                let out = g.dense(cur, w, Some(b))?;
                let (head, pred) = output_head(&mut g, &h.output, &field, &h.name, out, data, (lead, batch), weight)?;
                let (post, act) = pred.map_or((out, None), |(p, a)| (p, Some(a)));
                layers.push(LayerNodes::new(h.name.clone(), out, post, act));
                heads.push(head);
            }
        }
    }
    let loss = if heads.len() == 1 && heads[0].weight == 1.0 {
        heads[0].loss
    } else {
        let terms: Vec<(NodeId, f64)> = heads.iter().map(|h| (h.loss, h.weight)).collect();
        g.weighted_sum(&terms)?
    };
    if let Some(bytes) = g.over_budget() {
        let m = crate::engine::memory::budget() as f64;
        return Err(Error::field(
            "network",
            format!(
                "{ensemble} model{} of this network on batches of {batch} need about {} (parameters, optimiser state, activations and gradients), over the memory budget of {} (half of this machine's memory, or GRADLAB_MEMORY): fewer seeds, a smaller batch or narrower layers",
                if ensemble == 1 { "" } else { "s" },
                crate::engine::memory::human(bytes as f64),
                crate::engine::memory::human(m)
            ),
        ));
    }
    Ok(Net {
        graph: g,
        input,
        heads,
        loss,
        hidden,
        layers,
        params,
        buffers,
        batch,
        spec: Some(std::sync::Arc::new(spec.clone())),
    })
}

/// A normalisation's scale `<prefix>.weight` (γ) and shift `<prefix>.bias` (β).
fn push_norm_params(params: &mut Vec<(String, NodeId, ParamKind)>, prefix: &str, gamma: NodeId, beta: NodeId) {
    params.push((format!("{prefix}.weight"), gamma, ParamKind::NormScale));
    params.push((format!("{prefix}.bias"), beta, ParamKind::NormShift));
}

/// A normalisation's ε: a positive number.
fn positive_eps(field: &str, eps: f64) -> Result<()> {
    if !(eps.is_finite() && eps > 0.0) {
        return Err(Error::field(
            format!("{field}.eps"),
            format!("must be a positive number, got {}", crate::names::number(eps)),
        ));
    }
    Ok(())
}

fn push_params(params: &mut Vec<(String, NodeId, ParamKind)>, prefix: &str, w: NodeId, b: Option<NodeId>) {
    params.push((format!("{prefix}.weight"), w, ParamKind::Weight));
    if let Some(b) = b {
        params.push((format!("{prefix}.bias"), b, ParamKind::Bias));
    }
}

/// The loss, target and accuracy rule of one output node `logits` `[E, K, B]`, and the output
/// activation an l2 loss puts between them (its node and function).
#[allow(clippy::too_many_arguments)]
fn output_head<T: Real>(
    g: &mut Graph<T>,
    o: &OutputSpec,
    field: &str,
    name: &str,
    logits: NodeId,
    data: &Samples,
    (lead, batch): (usize, usize),
    weight: f64,
) -> Result<(Head, Option<(NodeId, Activation)>)> {
    let f = |key: &str| format!("{field}.{key}");
    let loss_name =
        o.loss.as_deref().ok_or_else(|| Error::field(f("loss"), "is missing (softmax_ce, sigmoid_ce or l2)"))?;
    let kind = LossName::parse(loss_name).map_err(|e| Error::field(f("loss"), e))?;
    let target_name = o.target.clone().unwrap_or_else(|| "y".into());
    let t = data.target(&target_name).ok_or_else(|| {
        Error::field(f("target"), format!("the data has no target `{target_name}` (it has {})", data.target_names()))
    })?;
    let k = g.shape(logits)[1];
    let reduction = o.reduction.unwrap_or(Reduction::Mean);
    let sum_scale = if reduction == Reduction::Sum { batch as f64 } else { 1.0 };
    if kind != LossName::L2 {
        for (key, given) in
            [("output_act", o.output_act.is_some()), ("scale", o.scale.is_some()), ("tolerance", o.tolerance.is_some())]
        {
            if given {
                return Err(Error::field(f(key), format!("applies to the l2 loss only, not {loss_name}")));
            }
        }
    }
    let classes_fit = |classes: usize| -> Result<()> {
        let room = if k == 1 { 2 } else { k };
        if classes > room {
            return Err(Error::field(
                f("loss"),
                format!("target `{target_name}` has labels up to {} but the output has {k} unit(s)", classes - 1),
            ));
        }
        Ok(())
    };
    let mut output = None;
    let (target, one_hot, score, loss, metric) = match kind {
        LossName::SoftmaxCe => {
            let Some(classes) = t.classes else {
                return Err(Error::field(
                    f("loss"),
                    format!("softmax_ce needs integer class labels; target `{target_name}` holds real values"),
                ));
            };
            if k < 2 {
                return Err(Error::field(f("loss"), "softmax_ce needs an output of at least 2 units (one per class)"));
            }
            classes_fit(classes)?;
            let target = g.input(&[lead, 1, batch])?;
            let loss = g.softmax_cross_entropy(logits, target, reduction)?;
            (target, false, logits, loss, Some(Metric::Argmax))
        }
        LossName::SigmoidCe => {
            let target = g.input(&[lead, t.width, batch])?;
            if t.width != k {
                return Err(Error::field(
                    f("loss"),
                    format!("target `{target_name}` has {} value(s) per sample, the output {k}", t.width),
                ));
            }
            let metric = match t.classes {
                Some(c) => {
                    classes_fit(c)?;
                    (k == 1).then_some(Metric::Binary { threshold: 0.0 })
                }
                None => None,
            };
            let loss = g.sigmoid_cross_entropy(logits, target, reduction)?;
            (target, false, logits, loss, metric)
        }
        LossName::L2 => {
            let out_act = o
                .output_act
                .as_deref()
                .map(|n| Activation::parse(n).map_err(|e| Error::field(f("output_act"), e)))
                .transpose()?;
            let scale = o.scale.unwrap_or(1.0);
            if !(scale.is_finite() && scale > 0.0) {
                return Err(Error::field(f("scale"), format!("{scale} is not a positive number")));
            }
            if let Some(tol) = o.tolerance
                && !(tol.is_finite() && tol > 0.0)
            {
                return Err(Error::field(f("tolerance"), format!("{tol} is not a positive number")));
            }
            let pred = match out_act {
                Some(a) => {
                    let p = g.activation(logits, a);
                    output = Some((p, a));
                    p
                }
                None => logits,
            };
            let (target, one_hot, score, metric) = match (t.classes, o.tolerance) {
                (Some(c), None) if k > 1 => {
                    classes_fit(c)?;
                    (g.input(&[lead, k, batch])?, true, pred, Metric::Argmax)
                }
                (Some(c), None) => {
                    classes_fit(c)?;
                    let sigmoid_out = matches!(out_act, Some(Activation::Sigmoid));
                    let (score, threshold) = if sigmoid_out { (logits, 0.0) } else { (pred, 0.5) };
                    (g.input(&[lead, 1, batch])?, false, score, Metric::Binary { threshold })
                }
                (_, tol) => {
                    if t.width != k {
                        return Err(Error::field(
                            f("loss"),
                            format!("target `{target_name}` has {} value(s) per sample, the output {k}", t.width),
                        ));
                    }
                    (g.input(&[lead, k, batch])?, false, pred, Metric::Within { tolerance: tol.unwrap_or(0.5) })
                }
            };
            let loss = g.squared_error(pred, target, scale, reduction)?;
            (target, one_hot, score, loss, Some(metric))
        }
    };
    let head = Head {
        target_name,
        target,
        one_hot,
        score,
        loss,
        weight,
        sum_scale,
        metric,
        loss_column: format!("{name}_loss"),
        accuracy_column: format!("{name}_accuracy"),
    };
    Ok((head, output))
}

/// One line per layer: index, kind, output shape per sample, parameters — for `check` and logs.
pub fn describe<T: Real>(spec: &NetworkSpec, net: &Net<T>) -> String {
    let g = &net.graph;
    let mut out = format!("input {:?}\n", &g.shape(net.input)[1..g.shape(net.input).len() - 1]);
    let count = |prefix: &str| -> usize {
        net.params
            .iter()
            .filter(|(n, ..)| n.rsplit_once('.').is_some_and(|(p, _)| p == prefix))
            .map(|(_, id, _)| g.shape(*id)[1..].iter().product::<usize>())
            .sum()
    };
    for (i, layer) in spec.layers.iter().enumerate() {
        let kind = match layer {
            Layer::Dense { units, act, .. } => {
                format!("dense {units}{}", act.as_ref().map(|a| format!(" {a}")).unwrap_or_default())
            }
            Layer::Conv2d { channels, kernel, stride, padding, act, .. } => format!(
                "conv2d {channels}×{kernel}×{kernel} stride {stride} padding {padding}{}",
                act.as_ref().map(|a| format!(" {a}")).unwrap_or_default()
            ),
            Layer::Maxpool { kernel, .. } => format!("maxpool {kernel}"),
            Layer::Avgpool { kernel, .. } => format!("avgpool {kernel}"),
            Layer::Residual { from, .. } => format!("residual + layer {from}"),
            Layer::Layernorm { eps, act, .. } => {
                format!("layernorm ε {eps}{}", act.as_ref().map(|a| format!(" {a}")).unwrap_or_default())
            }
            Layer::Batchnorm { eps, momentum, act, .. } => format!(
                "batchnorm ε {eps} momentum {momentum}{}",
                act.as_ref().map(|a| format!(" {a}")).unwrap_or_default()
            ),
            Layer::Dropout { rate, .. } => format!("dropout {rate}"),
            Layer::GaussianNoise { std, .. } => format!("gaussian noise σ {std}"),
        };
        let shape = net
            .layers
            .get(i)
            .map(|l| format!("{:?}", &g.shape(l.post)[1..g.shape(l.post).len() - 1]))
            .unwrap_or_default();
        let label = layer.name().map_or_else(|| format!("layers.{i}"), String::from);
        out.push_str(&format!("{label:<10} {kind:<40} → {shape:<14} {:>8} parameters\n", count(&label)));
    }
    if let Some(hs) = &spec.heads {
        for h in hs {
            out.push_str(&format!("{:<10} dense {:<34} {:>8} parameters\n", h.name, h.units, count(&h.name)));
        }
    }
    out.push_str(&format!("total {} parameters per model\n", g.param_count()));
    out
}

//! The report's nets as network files (`examples/networks/*.toml`, compiled in), and what the
//! report's studies vary in them, written as overrides of those files' keys. `train fc`,
//! `table1`, `train line|detect`, every study and `reproduce` build their nets from here, through
//! the same schema and builder (`models::spec`) as any network file.

use crate::activations::Activation;
use crate::data::{self, DatasetKind};
use crate::engine::{Real, Reduction};
use crate::error::{Error, Result};
use crate::models::Net;
use crate::models::spec::NetworkSpec;
use std::path::Path;

/// The network files shipped in `examples/networks/`, compiled in, so that the report's nets
/// and the examples are always at hand (`bench`, `serve`, the studies).
pub const PRESETS: &[(&str, &str)] = &[
    ("fc73", include_str!("../../examples/networks/fc73.toml")),
    ("line", include_str!("../../examples/networks/line.toml")),
    ("detect", include_str!("../../examples/networks/detect.toml")),
    ("digits-mlp", include_str!("../../examples/networks/digits-mlp.toml")),
    ("digits-cnn", include_str!("../../examples/networks/digits-cnn.toml")),
    ("digits-eos", include_str!("../../examples/networks/digits-eos.toml")),
    ("playground-circle", include_str!("../../examples/networks/playground-circle.toml")),
    ("playground-xor", include_str!("../../examples/networks/playground-xor.toml")),
    ("playground-gauss", include_str!("../../examples/networks/playground-gauss.toml")),
    ("playground-spiral", include_str!("../../examples/networks/playground-spiral.toml")),
    ("playground-plane", include_str!("../../examples/networks/playground-plane.toml")),
    ("playground-multi_gaussian", include_str!("../../examples/networks/playground-multi_gaussian.toml")),
];

/// A preset's text.
pub fn text(name: &str) -> Result<&'static str> {
    PRESETS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t).ok_or_else(|| {
        let names: Vec<&str> = PRESETS.iter().map(|(n, _)| *n).collect();
        let hint = crate::names::did_you_mean(name, &names);
        Error::Usage(format!("no preset `{name}`{hint} (presets: {})", names.join(", ")))
    })
}

/// A compiled-in preset as a checked experiment (its data loaded to check it).
pub fn lab(name: &str) -> Result<super::lab::Lab> {
    super::lab::parse(Path::new(&format!("examples/networks/{name}.toml")), text(name)?)
}

/// A preset's `[network]` with `overrides` (dotted keys below `network.`) set.
pub fn network(name: &str, overrides: &[(String, toml::Value)]) -> Result<NetworkSpec> {
    let mut doc: toml::Table = text(name)?.parse().map_err(|e| Error::Usage(format!("preset `{name}`: {e}")))?;
    for (key, value) in overrides {
        super::lab::set_key(&mut doc, key, value.clone())
            .map_err(|m| Error::Usage(format!("preset `{name}`: {key}: {m}")))?;
    }
    let net = doc.remove("network").ok_or_else(|| Error::Usage(format!("preset `{name}` has no [network]")))?;
    net.try_into().map_err(|e: toml::de::Error| Error::Usage(format!("preset `{name}`: {}", e.to_string().trim())))
}

fn key(k: &str, v: impl Into<toml::Value>) -> (String, toml::Value) {
    (format!("network.{k}"), v.into())
}

/// Task 2's loss on the 73-parameter net.
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

/// `fc73.toml` (16 → 4 → 1) with a hidden activation, a loss, a reduction, and optionally the
/// original code's one bias per sample in both layers (`fc1.bias [4, B]`, `fc2.bias [1, B]`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fc73 {
    pub act: Activation,
    pub loss: LossKind,
    pub reduction: Reduction,
    pub per_sample_bias: bool,
}

impl Fc73 {
    pub fn new(act: Activation, loss: LossKind) -> Fc73 {
        Fc73 { act, loss, reduction: Reduction::Mean, per_sample_bias: false }
    }

    /// The keys of `fc73.toml` this setting sets.
    pub fn overrides(&self) -> Vec<(String, toml::Value)> {
        let mut o = vec![key("layers.0.act", self.act.to_string()), key("reduction", self.reduction.name())];
        match self.loss {
            LossKind::Ce => o.push(key("loss", "sigmoid_ce")),
            LossKind::L2 => o.extend([key("loss", "l2"), key("output_act", "sigmoid")]),
        }
        if self.per_sample_bias {
            o.extend([key("layers.0.bias", "per_sample"), key("layers.1.bias", "per_sample")]);
        }
        o
    }

    pub fn network(&self) -> Result<NetworkSpec> {
        network("fc73", &self.overrides())
    }

    /// The net for `ensemble` models on batches of `batch` samples of the `random` data.
    pub fn build<T: Real>(&self, ensemble: usize, batch: usize) -> Result<Net<T>> {
        let shape = data::generate(DatasetKind::Random, 1, 0).samples();
        crate::models::spec::build(&self.network()?, &shape, ensemble, batch)
    }
}

/// Task 3's two CNNs: `line.toml` (one task) and `detect.toml` (class and width).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CnnTask {
    Line,
    Detect,
}

impl CnnTask {
    pub fn name(self) -> &'static str {
        match self {
            CnnTask::Line => "line",
            CnnTask::Detect => "detect",
        }
    }

    /// The preset's learning rate (EXPERIMENTS.md: 0.1 for line, 0.01 for detect).
    pub fn lr(self) -> f64 {
        let doc: toml::Table = text(self.name()).expect("a preset").parse().expect("presets parse");
        doc["optim"]["lr"].as_float().expect("the CNN presets set optim.lr")
    }

    pub fn dataset(self) -> DatasetKind {
        match self {
            CnnTask::Line => DatasetKind::Line,
            CnnTask::Detect => DatasetKind::Detection,
        }
    }
}

/// A Task 3 CNN with an activation, the classification loss's reduction (the width loss is
/// always a sum, as in the original) and optionally untied conv biases (`[16, 10, 10]`,
/// `[8, 4, 4]`, as the original two-task code had).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Cnn {
    pub task: CnnTask,
    pub act: Activation,
    pub reduction: Reduction,
    pub untied_conv_bias: bool,
}

impl Cnn {
    pub fn new(task: CnnTask, act: Activation) -> Cnn {
        Cnn { task, act, reduction: Reduction::Mean, untied_conv_bias: false }
    }

    /// The keys of `line.toml` / `detect.toml` this setting sets.
    pub fn overrides(&self) -> Vec<(String, toml::Value)> {
        let act = self.act.to_string();
        let mut o = vec![key("layers.0.act", act.clone()), key("layers.1.act", act)];
        o.push(match self.task {
            CnnTask::Line => key("reduction", self.reduction.name()),
            CnnTask::Detect => key("heads.0.reduction", self.reduction.name()),
        });
        if self.untied_conv_bias {
            o.extend([key("layers.0.bias", "untied"), key("layers.1.bias", "untied")]);
        }
        o
    }

    pub fn network(&self) -> Result<NetworkSpec> {
        network(self.task.name(), &self.overrides())
    }

    /// The net for `ensemble` models on batches of `batch` samples of its dataset.
    pub fn build<T: Real>(&self, ensemble: usize, batch: usize) -> Result<Net<T>> {
        let shape = data::generate(self.task.dataset(), 1, 0).samples();
        crate::models::spec::build(&self.network()?, &shape, ensemble, batch)
    }
}

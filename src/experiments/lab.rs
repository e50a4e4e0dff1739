//! The open lab: an experiment file that describes its own data, network, initialisation,
//! optimiser and training, and sweeps any of its keys: the one experiment description
//! (`examples/networks/`; an older `task = …` file reaches it through `legacy`'s conversion).
//!
//! A file is read as a TOML document; its `[sweep]` table maps dotted keys (`optim.lr`,
//! `network.layers.0.act`, …) to lists of values (a key list `"a, b"` sets several keys to the
//! same value; a table value sets several keys below one), and each cell of their product is
//! the document with those values set, read into the typed sections below and checked by the one
//! validator ([`TrainOptions::validate`], the network builder). Errors name the file, the key
//! and the problem. Paths in the file are relative to the working directory, like `--data`.

use crate::data::{self, DatasetKind, Samples, Source};
use crate::error::{Error, Result};
use crate::init::WeightInit;
use crate::models::Net;
use crate::models::spec::{self, NetworkSpec};
use crate::optim::{OptimConfig, OptimKind, Schedule};
use crate::record::Run;
use crate::training::{InitOptions, REPORT_BIAS, REPORT_INIT_STD, StopRule, TrainOptions, train_parallel};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// `[data]`: files, or a built-in generator.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DataSection {
    /// Inputs `[N, F]`, `[N, H, W]` or `[N, C, H, W]`, any common dtype: `file.npy`,
    /// `archive.npz:name`, `table.csv` or `table.csv:col,col` (named header columns).
    pub x: Option<PathBuf>,
    /// The target `y`: integer classes `[N]`, or real values `[N]` / `[N, T]`.
    pub y: Option<PathBuf>,
    /// More named targets (for heads with `target = "<name>"`).
    pub targets: Option<BTreeMap<String, PathBuf>>,
    pub held_out_x: Option<PathBuf>,
    pub held_out_y: Option<PathBuf>,
    pub held_out_targets: Option<BTreeMap<String, PathBuf>>,
    /// Inputs are multiplied by this when read (e.g. 1/16 for 0–16 pixel values).
    pub scale: Option<f64>,
    /// Minibatch size; the whole training set by default.
    pub batch: Option<usize>,
    /// A built-in dataset: `random`, `line` or `detection` (drawn), `digits` (the compiled-in
    /// 8×8 digits, training and held-out split), one of TensorFlow Playground's 2D sets
    /// (`circle`, `xor`, `gauss`, `spiral`; regression `plane`, `multi_gaussian`), or `mnist` /
    /// `fashion_mnist` (downloaded once into the cache; `n` / `held_out_n` take the first ones).
    pub generator: Option<String>,
    /// Samples drawn (64, like the course files; the Playground's 500, or 1 200 to regress, of
    /// which `train_ratio` train and the rest are held out).
    pub n: Option<usize>,
    /// Playground sets: its noise slider over 100 (0 to 0.5; 0 by default).
    pub noise: Option<f64>,
    /// Playground sets: the share of the `n` points that trains (0.5 by default, as there).
    pub train_ratio: Option<f64>,
    /// Data of two features `(x₁, x₂)`: the inputs the network sees, from the Playground's
    /// `x1`, `x2`, `x1^2`, `x2^2`, `x1*x2`, `sin(x1)`, `sin(x2)` (in the order given).
    pub features: Option<Vec<String>>,
    pub seed: Option<u64>,
    /// Held-out samples drawn from the same generator (640; 0 for none).
    pub held_out_n: Option<usize>,
    /// With `generator`: read that dataset's original course files from this directory
    /// (laid out like ../shared/datasets/cis680-hw1/) instead of drawing it.
    pub course_dir: Option<PathBuf>,
}

/// `[init]`: the weight scheme with its one scale, and the bias constant.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InitSection {
    pub weights: Option<String>,
    pub std: Option<f64>,
    pub limit: Option<f64>,
    pub gain: Option<f64>,
    pub bias: Option<f64>,
}

/// `[optim]`: the optimiser and the hyperparameters that apply to it.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OptimSection {
    pub name: Option<String>,
    pub lr: Option<f64>,
    pub momentum: Option<f64>,
    pub beta1: Option<f64>,
    pub beta2: Option<f64>,
    pub eps: Option<f64>,
    pub alpha: Option<f64>,
    pub weight_decay: Option<f64>,
    pub clip_norm: Option<f64>,
    /// Penalties in the loss on the weights (not biases): `l1·Σ|w| + l2·½Σw²`, as TensorFlow
    /// Playground's L1 / L2 regularisation with its rate.
    pub l1: Option<f64>,
    pub l2: Option<f64>,
    /// The same penalties on the biases (0 by default).
    pub l1_bias: Option<f64>,
    pub l2_bias: Option<f64>,
    /// `constant` (default) | `step` (`step_size`, `gamma` 0.1) | `exponential` (`gamma`) |
    /// `cosine` (`t_max`: by default the updates after warm-up, `eta_min` 0), per update.
    pub schedule: Option<String>,
    pub step_size: Option<usize>,
    pub gamma: Option<f64>,
    pub t_max: Option<usize>,
    pub eta_min: Option<f64>,
    /// Updates of linear warm-up (lr·t/w) before the schedule.
    pub warmup: Option<usize>,
}

/// `[train]`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSection {
    pub seeds: Option<usize>,
    pub first_seed: Option<u64>,
    pub max_iters: Option<usize>,
    pub eval_every: Option<usize>,
    /// Held-out loss and accuracy every K iterations [default: 50, or the next multiple of
    /// eval_every]; needs held-out data.
    pub held_out_every: Option<usize>,
    /// `accuracy` (every head at 100%), `loss` (at or below `target_loss`) or `none`.
    pub stop: Option<String>,
    pub target_loss: Option<f64>,
    /// Seed of the minibatch order (shared by every model).
    pub order_seed: Option<u64>,
    /// Per-layer probes every K iterations (and at 1 and powers of two); 0 for none.
    pub probe_every: Option<usize>,
    /// The sharpness (largest Hessian eigenvalue) every K evaluated iterations; 0 for none.
    pub sharpness_every: Option<usize>,
    /// With `sharpness_every`: also the smallest Hessian eigenvalue (column `lambda_min`).
    pub lambda_min: Option<bool>,
    /// Every row of every seed in metrics.csv (default: thinned; curves.csv is always exact).
    pub all_rows: Option<bool>,
    pub init: Option<PathBuf>,
    pub save_params: Option<PathBuf>,
    pub save_every: Option<usize>,
    pub tensorboard: Option<PathBuf>,
}

/// `[samples]`: per-sample training dynamics (forgetting, data maps; EL2N and GraNd at chosen
/// iterations; C-scores). The table's presence turns them on.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SamplesSection {
    /// EL2N and GraNd of every training sample at these iterations.
    pub score_at: Option<Vec<usize>>,
    /// Keep every evaluation of every sample in `sample_evaluations.csv`.
    pub trace: Option<bool>,
    /// C-scores: for each ratio, every seed trains on its own random subset of this share of
    /// the training set; the score is the held-out accuracy, averaged over the ratios.
    pub cscore_ratios: Option<Vec<f64>>,
    /// Epochs of each C-score run over its subset (default: as many as the main training's).
    pub cscore_epochs: Option<usize>,
}

/// One experiment, as written (after a cell's sweep values are set).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LabFile {
    pub out: Option<PathBuf>,
    pub data: DataSection,
    pub network: NetworkSpec,
    #[serde(default)]
    pub init: InitSection,
    #[serde(default)]
    pub optim: OptimSection,
    #[serde(default)]
    pub train: TrainSection,
    pub samples: Option<SamplesSection>,
}

/// One cell of a lab file's sweep, resolved and checked.
#[derive(Clone, Debug)]
pub struct LabCell {
    pub index: usize,
    /// `optim.lr=0.01+network.layers.0.act=tanh` (the swept keys in the order written);
    /// `base` without a sweep.
    pub name: String,
    pub axes: BTreeMap<String, serde_json::Value>,
    pub file: LabFile,
    pub opts: TrainOptions,
}

/// A checked lab file.
#[derive(Clone, Debug)]
pub struct Lab {
    pub path: PathBuf,
    pub cells: Vec<LabCell>,
}

pub fn load(path: &Path) -> Result<Lab> {
    let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::data(path, "file not found"),
        _ => Error::io(path, e),
    })?;
    parse(path, &text)
}

/// Reads and checks every cell (data included, so a shape that does not fit is found before
/// any training starts).
pub fn parse(path: &Path, text: &str) -> Result<Lab> {
    let doc: toml::Table = text.parse().map_err(|e: toml::de::Error| Error::data(path, e.to_string().trim()))?;
    parse_doc(path, doc)
}

/// [`parse`] of a document already read (the Python package's dicts and keyword overrides);
/// `path` names it in errors.
/// The most epochs a C-score subset may be trained for.
pub const MAX_CSCORE_EPOCHS: usize = 1_000_000;

/// The most cells a sweep may have.
pub const MAX_CELLS: usize = 100_000;

pub fn parse_doc(path: &Path, mut doc: toml::Table) -> Result<Lab> {
    let sweep = match doc.remove("sweep") {
        None => vec![],
        Some(toml::Value::Table(t)) => t.into_iter().collect::<Vec<_>>(),
        Some(_) => return Err(Error::data(path, "field `sweep`: must be a table of `\"key\" = [values]`")),
    };
    let mut axes: Vec<(String, Vec<toml::Value>)> = vec![];
    for (key, values) in sweep {
        match values {
            toml::Value::Array(v) if !v.is_empty() => axes.push((key, v)),
            _ => return Err(Error::data(path, format!("field `sweep.{key}`: must be a non-empty list of values"))),
        }
    }
    // Counted in checked arithmetic: axes whose product passes usize are "too many" too.
    let total = axes.iter().try_fold(1usize, |a, (_, v)| a.checked_mul(v.len())).filter(|&t| t <= MAX_CELLS);
    let Some(total) = total else {
        let shown = axes.iter().map(|(_, v)| v.len().to_string()).collect::<Vec<_>>().join(" × ");
        return Err(Error::data(path, format!("field `sweep`: {shown} cells is beyond the supported {MAX_CELLS}")));
    };
    let mut cells = vec![];
    let mut data_cache: Vec<(DataSection, Samples)> = vec![];
    for index in 0..total {
        let mut cell_doc = doc.clone();
        let mut rest = index;
        let mut chosen = BTreeMap::new();
        let mut name_parts = vec![];
        // The last key varies fastest, like nested loops in the order written.
        let mut picks = vec![0; axes.len()];
        for (k, (_, values)) in axes.iter().enumerate().rev() {
            picks[k] = rest % values.len();
            rest /= values.len();
        }
        for ((key, values), &p) in axes.iter().zip(&picks) {
            for (key, v) in assignments(key, &values[p]) {
                set_key(&mut cell_doc, &key, v.clone())
                    .map_err(|m| Error::data(path, format!("field `sweep.{key}`: {m}")))?;
                chosen.insert(key.clone(), serde_json::to_value(&v).unwrap_or(serde_json::Value::Null));
                let shown = match &v {
                    toml::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                name_parts.push(format!("{key}={}", shown.replace(['/', ' ', ',', '+'], "_")));
            }
        }
        let cell_err = |e: Error| -> Error {
            let e = e.in_file(path);
            match (e, name_parts.is_empty()) {
                (Error::Data { path, msg }, false) => {
                    Error::Data { path, msg: format!("{msg} (sweep cell {})", name_parts.join(",")) }
                }
                (e, _) => e,
            }
        };
        let file: LabFile = toml::Value::Table(cell_doc)
            .try_into()
            .map_err(|e: toml::de::Error| Error::data(path, e.to_string().trim()))
            .map_err(cell_err)?;
        let data = match data_cache.iter().find(|(d, _)| *d == file.data) {
            Some((_, s)) => s.clone(),
            None => {
                let (s, _) = load_data(&file.data).map_err(cell_err)?;
                data_cache.push((file.data.clone(), s.clone()));
                s
            }
        };
        let opts = resolve(&file, &data).map_err(cell_err)?;
        let name = if name_parts.is_empty() { "base".to_string() } else { name_parts.join("+") };
        cells.push(LabCell { index, name, axes: chosen, file, opts });
    }
    Ok(Lab { path: path.to_path_buf(), cells })
}

/// What one swept value sets: `"a.x, b.y" = [v, …]` sets every listed key to the same value
/// (a joint axis: both conv layers' `act`); a table value sets each of its keys below the key
/// (`"network" = [{ loss = "l2", output_act = "sigmoid" }, …]`: several keys per cell).
pub fn assignments(key: &str, value: &toml::Value) -> Vec<(String, toml::Value)> {
    let mut out = vec![];
    for key in key.split(',').map(str::trim) {
        match value {
            toml::Value::Table(t) => out.extend(t.iter().map(|(k, v)| (format!("{key}.{k}"), v.clone()))),
            v => out.push((key.to_string(), v.clone())),
        }
    }
    out
}

/// Sets `a.b.0.c` in a TOML document; tables are created as needed, list items must exist.
pub fn set_key(doc: &mut toml::Table, key: &str, value: toml::Value) -> std::result::Result<(), String> {
    let parts: Vec<&str> = key.split('.').collect();
    let mut cur = doc.entry(parts[0].to_string()).or_insert_with(|| {
        if parts.len() > 1 { toml::Value::Table(toml::Table::new()) } else { toml::Value::Boolean(false) }
    });
    for (depth, part) in parts.iter().enumerate().skip(1) {
        cur = match cur {
            toml::Value::Table(t) => t.entry(part.to_string()).or_insert_with(|| {
                if depth + 1 < parts.len() {
                    toml::Value::Table(toml::Table::new())
                } else {
                    toml::Value::Boolean(false)
                }
            }),
            toml::Value::Array(a) => {
                let i: usize = part.parse().map_err(|_| format!("`{part}` is not an index into a list"))?;
                let len = a.len();
                a.get_mut(i).ok_or(format!("index {i} is beyond the list's {len} item(s)"))?
            }
            _ => return Err(format!("`{}` is not a table or a list", parts[..depth].join("."))),
        };
    }
    *cur = value;
    Ok(())
}

/// The dotted key a short name stands for: `lr` → `optim.lr`, `seeds` → `train.seeds`, … — a
/// field of exactly one of `[data]`, `[init]`, `[optim]`, `[train]` (a dotted key is taken as it
/// is). The Python package's keyword overrides go through here.
pub fn dotted_key(name: &str) -> std::result::Result<String, String> {
    if name.contains('.') {
        return Ok(name.to_string());
    }
    let fields = |section: &str, v: serde_json::Value| -> Vec<(String, String)> {
        let serde_json::Value::Object(m) = v else { return vec![] };
        m.keys().map(|k| (k.clone(), format!("{section}.{k}"))).collect()
    };
    let json = |v: std::result::Result<serde_json::Value, serde_json::Error>| v.unwrap_or_default();
    let mut all = fields("data", json(serde_json::to_value(DataSection::default())));
    all.extend(fields("init", json(serde_json::to_value(InitSection::default()))));
    all.extend(fields("optim", json(serde_json::to_value(OptimSection::default()))));
    all.extend(fields("train", json(serde_json::to_value(TrainSection::default()))));
    let found: Vec<&String> = all.iter().filter(|(k, _)| k == name).map(|(_, d)| d).collect();
    match found.as_slice() {
        [one] => Ok((*one).clone()),
        [] => {
            let names: Vec<&str> = all.iter().map(|(k, _)| k.as_str()).collect();
            Err(format!(
                "`{name}` is not a field of [data], [init], [optim] or [train]{} (a dotted key such as `network.loss` reaches any other)",
                crate::names::did_you_mean(name, &names)
            ))
        }
        many => Err(format!(
            "`{name}` is a field of several sections; write one of {}",
            many.iter().map(|d| format!("`{d}`")).collect::<Vec<_>>().join(", ")
        )),
    }
}

/// Most samples a generator is asked for.
pub const MAX_GENERATED: usize = 1_000_000;

/// Every built-in generator's name.
pub fn generator_names() -> Vec<&'static str> {
    let mut names = vec!["random", "line", "detection", "digits"];
    names.extend(data::playground::Playground::NAMES);
    names.extend(data::mnist::NAMES);
    names
}

fn dataset_kind(name: &str) -> Result<DatasetKind> {
    match name {
        "random" => Ok(DatasetKind::Random),
        "line" => Ok(DatasetKind::Line),
        "detection" => Ok(DatasetKind::Detection),
        other => {
            let names = generator_names();
            let hint = crate::names::did_you_mean(other, &names);
            Err(Error::field("data.generator", format!("unknown generator `{other}`{hint} ({})", names.join(", "))))
        }
    }
}

/// The `[data]` keys of the drawn datasets (random, line, detection), and whether each is given.
fn drawn_keys(d: &DataSection) -> [(&'static str, bool); 4] {
    [
        ("n", d.n.is_some()),
        ("seed", d.seed.is_some()),
        ("held_out_n", d.held_out_n.is_some()),
        ("course_dir", d.course_dir.is_some()),
    ]
}

/// The `[data]` keys of the Playground's sets alone, and whether each is given.
fn playground_keys(d: &DataSection) -> [(&'static str, bool); 2] {
    [("noise", d.noise.is_some()), ("train_ratio", d.train_ratio.is_some())]
}

/// The training samples and, if any, the held-out ones, with `[data] features` applied.
pub fn load_data(d: &DataSection) -> Result<(Samples, Option<Samples>)> {
    let (train, held) = transformed(d)?;
    // Finite data can leave a transform infinite (`scale = 1e39`): checked after every one.
    for (which, s) in [("training", &train)].into_iter().chain(held.as_ref().map(|h| ("held-out", h))) {
        if let Some(i) = s.x.iter().position(|v| !v.is_finite()) {
            let field = if d.features.is_some() { "data.features" } else { "data.scale" };
            return Err(Error::field(
                field,
                format!("turns {which} input value {i} into {} (f32): the transformed data must stay finite", s.x[i]),
            ));
        }
    }
    Ok((train, held))
}

/// The `[data]` samples after `scale` (in the loaders) and `features`.
fn transformed(d: &DataSection) -> Result<(Samples, Option<Samples>)> {
    let (train, held) = load_raw(d)?;
    let Some(names) = &d.features else { return Ok((train, held)) };
    let features = input_features(names)?;
    if train.shape != [2] {
        return Err(Error::field(
            "data.features",
            format!("apply to data of two features (x₁, x₂); these samples are shaped {:?}", train.shape),
        ));
    }
    let apply = |mut s: Samples| {
        s.x = data::playground::transform(&s.x, &features);
        s.shape = vec![features.len()];
        s
    };
    Ok((apply(train), held.map(apply)))
}

/// `[data] features` read: known names, none twice, at least one.
pub fn input_features(names: &[String]) -> Result<Vec<data::playground::Feature>> {
    if names.is_empty() {
        return Err(Error::field("data.features", "is an empty list"));
    }
    let mut out = vec![];
    for (i, n) in names.iter().enumerate() {
        let f = data::playground::Feature::parse(n).map_err(|e| Error::field(format!("data.features.{i}"), e))?;
        if out.contains(&f) {
            return Err(Error::field(format!("data.features.{i}"), format!("`{n}` is listed twice")));
        }
        out.push(f);
    }
    Ok(out)
}

/// The first given key among `keys` as an error `data.<key>: msg`.
fn refuse(keys: &[(&str, bool)], msg: &str) -> Result<()> {
    match keys.iter().find(|(_, given)| *given) {
        Some((key, _)) => Err(Error::field(format!("data.{key}"), msg)),
        None => Ok(()),
    }
}

/// The samples before `[data] features` (what the plane of 2D data is drawn from), given what
/// [`load_data`] returned: the same samples without features, else loaded again.
pub fn untransformed(d: &DataSection, train: &Samples, held: Option<&Samples>) -> Result<(Samples, Option<Samples>)> {
    match d.features {
        None => Ok((train.clone(), held.cloned())),
        Some(_) => load_raw(d),
    }
}

/// The samples as drawn or read, before `[data] features` (the page draws 2D data so).
pub fn load_raw(d: &DataSection) -> Result<(Samples, Option<Samples>)> {
    let files = d.x.is_some() || d.y.is_some();
    match (&d.generator, files) {
        (Some(_), true) => return Err(Error::field("data", "give either files (`x`, `y`) or a `generator`, not both")),
        (None, false) => return Err(Error::field("data", "needs files (`x`, `y`) or a `generator`")),
        _ => {}
    }
    if let Some(s) = d.scale
        && !(s.is_finite() && s != 0.0)
    {
        return Err(Error::field(
            "data.scale",
            format!("must be a finite non-zero number, got {}", crate::names::number(s)),
        ));
    }
    let scale = d.scale.unwrap_or(1.0);
    if let Some(g) = &d.generator {
        let file_keys = [
            ("targets", d.targets.is_some()),
            ("held_out_x", d.held_out_x.is_some()),
            ("held_out_y", d.held_out_y.is_some()),
            ("held_out_targets", d.held_out_targets.is_some()),
        ];
        refuse(&file_keys, "applies to file data, not a generator")?;
        if let Some(kind) = data::playground::Playground::parse(g) {
            return playground(d, kind, scale);
        }
        refuse(
            &playground_keys(d),
            "applies to the Playground's sets (circle, xor, gauss, spiral, plane, multi_gaussian)",
        )?;
        if let Some(set) = data::mnist::by_name(g) {
            refuse(
                &[("seed", d.seed.is_some()), ("course_dir", d.course_dir.is_some())],
                "does not apply to a downloaded set (`n` and `held_out_n` take the first samples)",
            )?;
            for (key, v) in [("data.n", d.n), ("data.held_out_n", d.held_out_n)] {
                if v == Some(0) {
                    return Err(Error::field(key, "must be at least 1"));
                }
            }
            let cache = data::download::cache_dir()?;
            let (train, held) = data::mnist::load(&set, &cache, scale, d.n, d.held_out_n)?;
            return Ok((train, Some(held)));
        }
        if g == "digits" {
            refuse(&drawn_keys(d), "does not apply to the built-in digits")?;
            let (train, held) = data::digits::load(scale)?;
            return Ok((train, Some(held)));
        }
        let kind = dataset_kind(g)?;
        let n = d.n.unwrap_or(data::ORIGINAL_SIZE);
        let held_n = d.held_out_n.unwrap_or(data::HELD_OUT_SIZE);
        if n == 0 {
            return Err(Error::field("data.n", "must be at least 1"));
        }
        // Generated samples are 16×16 images: a million is 1 GB; beyond it is a typo.
        for (key, v) in [("data.n", n), ("data.held_out_n", held_n)] {
            if v > MAX_GENERATED {
                return Err(Error::field(
                    key,
                    format!("{v} is beyond the supported {MAX_GENERATED} generated samples"),
                ));
            }
        }
        let seed = d.seed.unwrap_or(0);
        let source = match &d.course_dir {
            Some(dir) => {
                if d.n.is_some() || d.seed.is_some() {
                    return Err(Error::field(
                        "data.course_dir",
                        "reads the course's files; `n` and `seed` do not apply",
                    ));
                }
                Source::Dir(dir.clone())
            }
            None => Source::Builtin { seed },
        };
        let train = match &source {
            Source::Dir(dir) => data::load_dir(kind, dir)?,
            Source::Builtin { .. } => data::generate(kind, n, seed),
        };
        let held = (held_n > 0).then(|| data::held_out(kind, &source, held_n));
        let scaled = |mut s: Samples| {
            s.x.iter_mut().for_each(|v| *v *= scale as f32);
            s
        };
        return Ok((scaled(train.samples()), held.map(|h| scaled(h.samples()))));
    }
    refuse(&drawn_keys(d), "applies to a `generator`, not file data")?;
    refuse(&playground_keys(d), "applies to a `generator`, not file data")?;
    let (Some(x), Some(y)) = (&d.x, &d.y) else {
        return Err(Error::field(
            if d.x.is_none() { "data.x" } else { "data.y" },
            "is missing (file data needs both `x` and `y`)",
        ));
    };
    let targets = |y: &PathBuf, more: &Option<BTreeMap<String, PathBuf>>| -> Vec<(String, PathBuf)> {
        let mut t = vec![("y".to_string(), y.clone())];
        t.extend(more.iter().flatten().map(|(k, v)| (k.clone(), v.clone())));
        t
    };
    let train_t = targets(y, &d.targets);
    let refs: Vec<(String, &Path)> = train_t.iter().map(|(k, p)| (k.clone(), p.as_path())).collect();
    let train = data::samples::load_files(x, &refs, scale)?;
    let held = match (&d.held_out_x, &d.held_out_y) {
        (None, None) => None,
        (Some(hx), Some(hy)) => {
            let ht = targets(hy, &d.held_out_targets);
            let refs: Vec<(String, &Path)> = ht.iter().map(|(k, p)| (k.clone(), p.as_path())).collect();
            let h = data::samples::load_files(hx, &refs, scale)?;
            if h.shape != train.shape {
                return Err(Error::data(
                    hx,
                    format!("held-out samples are {:?}, training samples {:?}", h.shape, train.shape),
                ));
            }
            for t in &train.targets {
                match h.target(&t.name) {
                    Some(ht) if ht.width == t.width && ht.classes.is_some() == t.classes.is_some() => {}
                    _ => {
                        return Err(Error::field(
                            "data.held_out_targets",
                            format!(
                                "the held-out target `{}` must exist and match the training one's kind and width",
                                t.name
                            ),
                        ));
                    }
                }
            }
            Some(h)
        }
        _ => return Err(Error::field("data.held_out_x", "`held_out_x` and `held_out_y` go together")),
    };
    Ok((train, held))
}

/// One of the Playground's sets, split into training and held-out samples as it does.
fn playground(d: &DataSection, kind: data::playground::Playground, scale: f64) -> Result<(Samples, Option<Samples>)> {
    refuse(
        &[("held_out_n", d.held_out_n.is_some()), ("course_dir", d.course_dir.is_some())],
        "does not apply to the Playground's sets (`train_ratio` splits `n` into training and held out)",
    )?;
    let n = d.n.unwrap_or(kind.default_n());
    if !(2..=MAX_GENERATED).contains(&n) {
        return Err(Error::field("data.n", format!("must be between 2 and {MAX_GENERATED}, got {n}")));
    }
    let noise = d.noise.unwrap_or(0.0);
    if !(noise.is_finite() && (0.0..=1.0).contains(&noise)) {
        return Err(Error::field(
            "data.noise",
            format!("must be in [0, 1] (the Playground's slider goes to 0.5), got {}", crate::names::number(noise)),
        ));
    }
    let ratio = d.train_ratio.unwrap_or(0.5);
    if !(ratio.is_finite() && ratio > 0.0 && ratio <= 1.0) || (n as f64 * ratio).floor() < 1.0 {
        return Err(Error::field(
            "data.train_ratio",
            format!(
                "must be in (0, 1] and leave at least one training sample of {n}, got {}",
                crate::names::number(ratio)
            ),
        ));
    }
    let (mut train, mut held) = data::playground::generate(kind, n, noise, ratio, d.seed.unwrap_or(0));
    for s in std::iter::once(&mut train).chain(held.as_mut()) {
        s.x.iter_mut().for_each(|v| *v *= scale as f32);
    }
    Ok((train, held))
}

fn init_options(s: &InitSection) -> Result<InitOptions> {
    let name = s.weights.as_deref().unwrap_or("truncated_normal");
    let given: Vec<(&str, f64)> = [("std", s.std), ("limit", s.limit), ("gain", s.gain)]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
    let wanted = match name {
        "truncated_normal" | "normal" => Some("std"),
        "uniform" => Some("limit"),
        "xavier_uniform" | "xavier_normal" => Some("gain"),
        _ => None,
    };
    if let Some((k, _)) = given.iter().find(|(k, _)| Some(*k) != wanted) {
        return Err(Error::field(format!("init.{k}"), format!("does not apply to `{name}`")));
    }
    let scale = given.first().map(|(_, v)| *v).or((name == "truncated_normal").then_some(REPORT_INIT_STD));
    let weights = WeightInit::from_name(name, scale).map_err(|e| Error::field("init.weights", e))?;
    weights.validate().map_err(|e| Error::field(format!("init.{}", wanted.unwrap_or("weights")), e))?;
    Ok(InitOptions { weights, bias: s.bias.unwrap_or(REPORT_BIAS) })
}

fn optim_config(s: &OptimSection, max_iters: usize) -> Result<OptimConfig> {
    let kind = OptimKind::parse(s.name.as_deref().unwrap_or("sgd")).map_err(|e| Error::field("optim.name", e))?;
    let mut c = OptimConfig::new(kind, s.lr.unwrap_or(kind.default_lr()));
    let adam = matches!(kind, OptimKind::Adam | OptimKind::AdamW);
    let applies = |key: &str| match key {
        "momentum" => matches!(kind, OptimKind::Sgd | OptimKind::Momentum | OptimKind::Nesterov | OptimKind::RmsProp),
        "beta1" | "beta2" => adam,
        "eps" => adam || kind == OptimKind::RmsProp,
        "alpha" => kind == OptimKind::RmsProp,
        _ => true,
    };
    for (key, v, slot) in [
        ("momentum", s.momentum, &mut c.momentum),
        ("beta1", s.beta1, &mut c.beta1),
        ("beta2", s.beta2, &mut c.beta2),
        ("eps", s.eps, &mut c.eps),
        ("alpha", s.alpha, &mut c.alpha),
        ("weight_decay", s.weight_decay, &mut c.weight_decay),
    ] {
        if let Some(v) = v {
            if !applies(key) {
                return Err(Error::field(
                    format!("optim.{key}"),
                    format!("does not apply to `{:?}`", kind).to_lowercase(),
                ));
            }
            *slot = v;
        }
    }
    if kind == OptimKind::Sgd && s.momentum.is_some_and(|m| m > 0.0) {
        c.name = OptimKind::Momentum; // the same update; named by what it does
    }
    if kind == OptimKind::Nesterov && c.momentum == 0.0 {
        return Err(Error::field("optim.momentum", "Nesterov momentum needs momentum > 0"));
    }
    c.clip_norm = s.clip_norm;
    c.l1 = s.l1.unwrap_or(0.0);
    c.l2 = s.l2.unwrap_or(0.0);
    c.l1_bias = s.l1_bias.unwrap_or(0.0);
    c.l2_bias = s.l2_bias.unwrap_or(0.0);
    c.warmup = s.warmup.unwrap_or(0);
    c.schedule = schedule(s, max_iters.saturating_sub(c.warmup).max(1))?;
    Ok(c)
}

/// `[optim] schedule` and the keys that belong to it.
fn schedule(s: &OptimSection, updates: usize) -> Result<Schedule> {
    let name = s.schedule.as_deref().unwrap_or("constant");
    let given = [
        ("step_size", s.step_size.is_some()),
        ("gamma", s.gamma.is_some()),
        ("t_max", s.t_max.is_some()),
        ("eta_min", s.eta_min.is_some()),
    ];
    let keys: &[&str] = match name {
        "constant" => &[],
        "step" => &["step_size", "gamma"],
        "exponential" => &["gamma"],
        "cosine" => &["t_max", "eta_min"],
        other => {
            const NAMES: &[&str] = &["constant", "step", "exponential", "cosine"];
            let hint = crate::names::did_you_mean(other, NAMES);
            return Err(Error::field(
                "optim.schedule",
                format!("unknown schedule `{other}`{hint} ({})", NAMES.join(", ")),
            ));
        }
    };
    if let Some((k, _)) = given.iter().find(|(k, g)| *g && !keys.contains(k)) {
        return Err(Error::field(format!("optim.{k}"), format!("does not apply to schedule = \"{name}\"")));
    }
    let missing = |k: &str| Error::field(format!("optim.{k}"), format!("is missing (schedule = \"{name}\" needs it)"));
    Ok(match name {
        "step" => Schedule::Step {
            step_size: s.step_size.ok_or_else(|| missing("step_size"))?,
            gamma: s.gamma.unwrap_or(0.1),
        },
        "exponential" => Schedule::Exponential { gamma: s.gamma.ok_or_else(|| missing("gamma"))? },
        "cosine" => Schedule::Cosine { t_max: s.t_max.unwrap_or(updates), eta_min: s.eta_min.unwrap_or(0.0) },
        _ => Schedule::Constant,
    })
}

/// The training options of one cell, checked against its data and network.
fn resolve(file: &LabFile, data: &Samples) -> Result<TrainOptions> {
    let t = &file.train;
    let max_iters = t.max_iters.unwrap_or(crate::training::REPORT_MAX_ITERS);
    let mut opts = TrainOptions {
        first_seed: t.first_seed.unwrap_or(0),
        max_iters,
        init: init_options(&file.init)?,
        optim: optim_config(&file.optim, max_iters)?,
        batch: file.data.batch,
        order_seed: t.order_seed.unwrap_or(0),
        eval_every: t.eval_every,
        // The one default (50), rounded up to a multiple of eval_every when that is set.
        held_out_every: Some(t.held_out_every.unwrap_or_else(|| {
            let k = crate::training::DEFAULT_HELD_OUT_EVERY;
            t.eval_every.filter(|&e| e > 0).map_or(k, |e| k.div_ceil(e) * e)
        })),
        probe_every: t.probe_every.unwrap_or(crate::training::DEFAULT_PROBE_EVERY),
        sharpness_every: t.sharpness_every.unwrap_or(0),
        lambda_min: t.lambda_min.unwrap_or(false),
        all_rows: t.all_rows.unwrap_or(false),
        init_from: t.init.clone(),
        save_params: t.save_params.clone(),
        save_every: t.save_every,
        ..TrainOptions::new(t.seeds.unwrap_or(crate::training::default_seeds(t.init.is_some())))
    };
    opts.validate()?;
    if let Some(b) = opts.batch
        && b > data.n
    {
        return Err(Error::field("data.batch", format!("{b} is larger than the {} training samples", data.n)));
    }
    if opts.batch == Some(data.n) {
        opts.batch = None;
    }
    if opts.batch.unwrap_or(data.n) == 1
        && file.network.layers.iter().any(|l| matches!(l, spec::Layer::Batchnorm { .. }))
    {
        // One sample: its batch statistics normalise every value to β (PyTorch refuses too).
        return Err(Error::field(
            if opts.batch.is_some() { "data.batch" } else { "data.n" },
            "a batch of 1 gives BatchNorm one value per channel to normalise, which trains nothing: use at least 2",
        ));
    }
    let net: Net<f32> = spec::build(&file.network, data, 1, opts.batch.unwrap_or(data.n).min(4))?;
    let all_scored = net.heads.iter().all(|h| h.metric.is_some());
    opts.stop = match (t.stop.as_deref(), t.target_loss) {
        (None, Some(target)) | (Some("loss"), Some(target)) => StopRule::Loss { target },
        (Some("loss"), None) => return Err(Error::field("train.target_loss", "is missing (stop = \"loss\" needs it)")),
        (Some(_), Some(_)) => return Err(Error::field("train.target_loss", "applies to stop = \"loss\" only")),
        (None, None) => {
            if all_scored {
                StopRule::Accuracy
            } else {
                StopRule::None
            }
        }
        (Some("accuracy"), None) => {
            if !all_scored {
                return Err(Error::field(
                    "train.stop",
                    "\"accuracy\" needs an accuracy on every head (soft sigmoid_ce targets have none)",
                ));
            }
            StopRule::Accuracy
        }
        (Some("none"), None) => StopRule::None,
        (Some(other), None) => {
            return Err(Error::field("train.stop", format!("unknown rule `{other}` (accuracy, loss, none)")));
        }
    };
    if let Some(sm) = &file.samples {
        crate::models::per_sample::classification_head(&net).map_err(|m| Error::field("samples", m))?;
        let mut score_at = sm.score_at.clone().unwrap_or_default();
        score_at.sort_unstable();
        score_at.dedup();
        if !score_at.is_empty() {
            // Per-sample gradients copy each model's parameters into a batch-1 twin.
            let twin: Net<f32> = spec::build_fed(&file.network, data, 1, 1, true)?;
            crate::models::per_sample::PerSampleTwin::new(twin, &net)?;
        }
        opts.samples = Some(crate::training::SampleOptions { score_at, trace: sm.trace.unwrap_or(false) });
        if let Some(ratios) = &sm.cscore_ratios {
            if ratios.is_empty() {
                return Err(Error::field("samples.cscore_ratios", "is an empty list"));
            }
            for &r in ratios {
                crate::experiments::cscores::options(&opts, r, 1).validate()?;
            }
        }
        if sm.cscore_epochs == Some(0) {
            return Err(Error::field("samples.cscore_epochs", "must be at least 1"));
        }
        if let Some(e) = sm.cscore_epochs.filter(|&e| e > MAX_CSCORE_EPOCHS) {
            return Err(Error::field(
                "samples.cscore_epochs",
                format!("{e} is beyond the supported {MAX_CSCORE_EPOCHS}"),
            ));
        }
        if sm.cscore_epochs.is_some() && sm.cscore_ratios.is_none() {
            return Err(Error::field("samples.cscore_epochs", "needs samples.cscore_ratios"));
        }
    }
    // 2D data: the decision boundary figure needs every seed's final parameters.
    opts.keep_final_params = file.data.features.is_some() || data.shape == [2];
    opts.validate()?;
    Ok(opts)
}

impl Lab {
    /// Cell `k`'s training samples and held-out samples, errors naming the file.
    pub fn data(&self, k: usize) -> Result<(Samples, Option<Samples>)> {
        load_data(&self.cells[k].file.data).map_err(|e| e.in_file(&self.path))
    }

    /// Builds cell `k`'s network for `e` models on its batch size.
    pub fn build(&self, k: usize, data: &Samples, e: usize) -> Result<Net<f32>> {
        let c = &self.cells[k];
        spec::build(&c.file.network, data, e, c.opts.batch.unwrap_or(data.n)).map_err(|err| err.in_file(&self.path))
    }

    /// Cell `k`'s C-scores on `data` when its `[samples]` asks for them (`cscore_ratios`;
    /// `cscore_epochs`, by default as many epochs as the main training), trained through
    /// `runner` as settings `<label>/cscore-<ratio>`. Returns the estimate (`None` when not asked or interrupted) and whether every
    /// run finished.
    pub fn cscores(
        &self,
        k: usize,
        data: &Samples,
        label: &str,
        runner: &mut crate::experiments::Runner,
    ) -> Result<(Option<crate::record::samples::CScores>, bool)> {
        let c = &self.cells[k];
        let Some(s) = &c.file.samples else { return Ok((None, true)) };
        let Some(ratios) = &s.cscore_ratios else { return Ok((None, true)) };
        let epochs = s
            .cscore_epochs
            .unwrap_or_else(|| crate::experiments::cscores::default_epochs(data.n, c.opts.batch, c.opts.max_iters));
        let est = crate::experiments::cscores::run(label, &c.file.network, data, &c.opts, ratios, epochs, runner)?;
        let done = est.is_some();
        Ok((est, done))
    }

    /// Trains one cell on its data.
    pub fn run_cell(
        &self,
        k: usize,
        data: &Samples,
        held_out: Option<&Samples>,
        progress: &mut dyn FnMut(usize, usize) -> bool,
    ) -> Result<Run> {
        let c = &self.cells[k];
        // A sweep's cells save their parameters in a directory each.
        let opts = TrainOptions {
            save_params: c
                .opts
                .save_params
                .as_ref()
                .map(|d| if self.cells.len() > 1 { d.join(&c.name) } else { d.clone() }),
            ..c.opts.clone()
        };
        if let Some(d) = &opts.save_params {
            std::fs::create_dir_all(d).map_err(|e| Error::io(d, e))?;
        }
        let build = |e: usize| self.build(k, data, e);
        train_parallel(&c.name, &build, data, held_out, &opts, progress)
    }
}

/// Writes `summary.json` (one entry per cell run, as sweeps do, so `gradlab merge` combines
/// shards), `metrics.csv`, `network.txt` (layers, shapes, parameter counts) and the curves.
pub fn write_outputs(
    out: &Path,
    lab: &Lab,
    runs: &[(usize, Run)],
    cscores: &[Option<crate::record::samples::CScores>],
    data: &Samples,
    complete: bool,
    shard: Option<(usize, usize)>,
) -> Result<crate::experiments::sweep::SweepSummary> {
    use crate::experiments::sweep::{SweepSummary, cell_summary};
    use crate::report::figures::{CurvePanels, Panel};
    let summary = SweepSummary {
        study: "lab".into(),
        file: lab.path.display().to_string(),
        data: data.source.clone(),
        complete,
        shard,
        total_cells: lab.cells.len(),
        cells: runs
            .iter()
            .map(|(k, r)| {
                let c = &lab.cells[*k];
                cell_summary(c.index, &c.name, c.axes.clone(), r)
            })
            .collect(),
    };
    crate::report::write_json(&out.join("summary.json"), &summary)?;
    let only: Vec<Run> = runs.iter().map(|(_, r)| r.clone()).collect();
    crate::report::write_run_csvs(out, &only)?;
    if let Some((k, _)) = runs.first() {
        let net = lab.build(*k, data, 1)?;
        let text = format!("{}\n{}", lab.cells[*k].name, spec::describe(&lab.cells[*k].file.network, &net));
        crate::atomic::write_atomic(&out.join("network.txt"), text.as_bytes())?;
    }
    crate::report::probes::write_outputs(out, &only)?;
    // The learning order of full-batch classification runs (no ease measure is known for a
    // file's data: Kendall's W and the per-sample medians).
    crate::experiments::memorisation::write_order_files(out, &only, |r| {
        crate::experiments::memorisation::order_of(r, None)
    })?;
    let refs: Vec<&Run> = only.iter().collect();
    crate::report::samples::write_outputs(out, &refs, cscores, data)?;
    crate::report::confusion::write_outputs(out, &refs)?;
    if let Some((k, r)) = runs.first() {
        write_boundary(out, lab, *k, r, data)?;
    }
    if !refs.is_empty() {
        let mut panels = vec![
            Panel::of_runs(&refs, "loss", "training loss", true, (0.25, 0.75)),
            Panel::of_runs(&refs, "accuracy", "training accuracy", false, (0.25, 0.75)),
        ];
        if refs.iter().all(|r| r.columns.iter().any(|c| c == "held_out_accuracy")) {
            panels.push(Panel::of_runs(&refs, "held_out_loss", "held-out loss", true, (0.25, 0.75)));
            panels.push(Panel::of_runs(&refs, "held_out_accuracy", "held-out accuracy", false, (0.25, 0.75)));
        }
        let title = format!("{}: median over seeds with IQR band", lab.path.display());
        crate::report::figures::render(&out.join("curves"), &CurvePanels { title, panels, columns: 2 })?;
    }
    Ok(summary)
}

/// Work a sweep may ask for without saying so, in fc73 model-iterations (one ≈ 1.5 µs here):
/// about 4 hours of this machine.
pub const WORK_BOUND: f64 = 1e10;

/// 2D data: `decision_boundary.png`/`.svg`, seed 0's and the median over seeds after training.
fn write_boundary(out: &Path, lab: &Lab, k: usize, run: &Run, data: &Samples) -> Result<()> {
    use crate::experiments::decision_boundary as db;
    let Some(params) = &run.final_params else { return Ok(()) };
    let d = &lab.cells[k].file.data;
    let (raw, _) = untransformed(d, data, None)?;
    let Some(plane) = db::Plane::of_data(d, &raw) else { return Ok(()) };
    const GRID: usize = 80;
    let mut net = db::grid_net(&lab.cells[k].file.network, data, params.len(), GRID)?;
    let refs: Vec<&crate::models::params::Point> = params.iter().collect();
    let b = db::compute(&mut net, &plane, data, &refs);
    let target = lab.cells[k].file.network.output.target.clone().unwrap_or_else(|| "y".into());
    let (points, _) = db::points(&raw, &target);
    let title = format!("{}: decision boundary after training", lab.path.display());
    crate::report::figures::render(
        &out.join("decision_boundary"),
        &crate::report::boundary::BoundaryFigure { title, boundary: &b, points: &points, seeds: params.len() },
    )
}

/// How to run a checked file: which cells, where to, and whether to go beyond [`WORK_BOUND`].
pub struct Plan<'a> {
    pub shard: Option<(usize, usize)>,
    pub out: &'a Path,
    /// Write into a non-empty `out`.
    pub force: bool,
    pub beyond_bound: bool,
}

/// Runs every cell of `lab` (or the plan's shard) through `runner` into `plan.out`: checks the
/// work bound, prepares the directory, trains, writes the outputs (also when interrupted, then
/// marked incomplete) and the TensorBoard files. Returns the summary and whether all ran.
pub fn run(
    lab: &Lab,
    plan: &Plan,
    runner: &mut crate::experiments::Runner,
) -> Result<(crate::experiments::sweep::SweepSummary, bool)> {
    let first = &lab.cells[0];
    let cells: Vec<usize> = (0..lab.cells.len()).filter(|k| plan.shard.is_none_or(|(i, n)| k % n == i)).collect();
    // Work in fc73 step-equivalents: parameters × samples per step, relative to 73 × 64.
    let (data, held_out) = lab.data(0)?;
    let params = lab.build(0, &data, 1)?.graph.param_count() as f64;
    let size = params * first.opts.batch.unwrap_or(data.n) as f64;
    // Every training the file implies: the cells' own, and their C-scores' (seeds × ratios ×
    // epochs over a share of the samples), counted in f64 so that no count wraps.
    let cscore_work =
        |k: usize| -> f64 {
            let c = &lab.cells[k];
            let Some(ratios) = c.file.samples.as_ref().and_then(|s| s.cscore_ratios.as_ref()) else { return 0.0 };
            let epochs =
                c.file.samples.as_ref().and_then(|s| s.cscore_epochs).unwrap_or_else(|| {
                    crate::experiments::cscores::default_epochs(data.n, c.opts.batch, c.opts.max_iters)
                }) as f64;
            let samples: f64 = ratios.iter().map(|r| r * data.n as f64).sum();
            c.opts.seeds as f64 * epochs * samples * params / (73.0 * 64.0)
        };
    let work: f64 = cells
        .iter()
        .map(|&k| {
            lab.cells[k].opts.seeds as f64 * lab.cells[k].opts.max_iters as f64 * size / (73.0 * 64.0) + cscore_work(k)
        })
        .sum();
    if work > WORK_BOUND && !plan.beyond_bound {
        return Err(Error::Usage(format!(
            "{}: {} cells × {} seeds × {} iterations of this network (with any C-score trainings) is about {:.0} hours of training here; pass --yes to run it anyway, or split it with --shard",
            lab.path.display(),
            cells.len(),
            first.opts.seeds,
            first.opts.max_iters,
            work * 1.5e-6 / 3600.0
        )));
    }
    crate::atomic::prepare_out_dir(plan.out, plan.force)?;
    let trained = train(lab, &cells, (data, held_out), runner)?;
    let summary =
        write_outputs(plan.out, lab, &trained.runs, &trained.cscores, &trained.data, trained.complete, plan.shard)?;
    if let Some(tb) = &first.file.train.tensorboard {
        let only: Vec<Run> = trained.runs.iter().map(|(_, r)| r.clone()).collect();
        crate::report::tensorboard::write_runs(tb, &only)?;
    }
    Ok((summary, trained.complete))
}

/// What [`train`] leaves: each trained cell's index and run, its C-scores when asked, whether
/// every run finished, and the training data of the last cell (what `write_outputs` reads).
pub struct Trained {
    pub runs: Vec<(usize, Run)>,
    pub cscores: Vec<Option<crate::record::samples::CScores>>,
    pub complete: bool,
    pub data: Samples,
}

/// Trains `cells` of `lab` through `runner`, then their C-scores where asked; `first_data` is
/// cell 0's data, already loaded. Writes nothing (`run` does; the Python package keeps
/// the runs in memory).
pub fn train(
    lab: &Lab,
    cells: &[usize],
    first_data: (Samples, Option<Samples>),
    runner: &mut crate::experiments::Runner,
) -> Result<Trained> {
    let first = &lab.cells[0];
    let names: Vec<String> = cells.iter().map(|&k| lab.cells[k].name.clone()).collect();
    let (data, held_out) = first_data;
    let mut cached = (first.file.data.clone(), data, held_out);
    let (runs, complete) = runner(&names, first.opts.max_iters, first.opts.seeds, &mut |i, progress| {
        let c = &lab.cells[cells[i]];
        if c.file.data != cached.0 {
            let (d, h) = lab.data(cells[i])?;
            cached = (c.file.data.clone(), d, h);
        }
        lab.run_cell(cells[i], &cached.1, cached.2.as_ref(), progress)
    })?;
    let runs: Vec<(usize, Run)> = cells.iter().copied().zip(runs).collect();
    // C-scores, for the cells that ask for them (after their main runs).
    let mut cscores = vec![];
    let mut complete = complete;
    for (k, _) in &runs {
        let asks = lab.cells[*k].file.samples.as_ref().is_some_and(|s| s.cscore_ratios.is_some());
        let mut est = None;
        if complete && asks {
            let (d, _) = lab.data(*k)?;
            let (e, done) = lab.cscores(*k, &d, &lab.cells[*k].name, runner)?;
            (est, complete) = (e, done);
        }
        cscores.push(est);
    }
    Ok(Trained { runs, cscores, complete, data: cached.1 })
}

//! Experiment files and sweeps: `gradlab run FILE.toml` runs a grid over activation × loss ×
//! learning rate × init std × reduction, each cell one ensemble of seeds, into one directory
//! with one `summary.json` listing every cell. `--shard i/n` runs a deterministic share of the
//! cells (cell k belongs to shard k mod n) and `gradlab merge` puts shard outputs back
//! together, so a cluster's job array can spread a sweep without a scheduler of gradlab's own.

use crate::activations::Activation;
use crate::data::{self, DatasetKind, Source};
use crate::engine::Reduction;
use crate::error::{Error, Result};
use crate::experiments::cnn::{self, CnnSetting};
use crate::experiments::fc_random::{self, FcSetting, FcStudy};
use crate::experiments::train::{InitOptions, REPORT_BIAS, REPORT_INIT_STD, Run, RunSummary, TrainOptions};
use crate::init::WeightInit;
use crate::experiments::presets::CnnTask;
use crate::experiments::presets::LossKind;
use crate::optim::OptimConfig;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    Fc,
    Line,
    Detect,
    /// One neuron's landscapes, one per activation in `sweep.act`.
    Landscape,
    /// A network described in the file's `[network]` table (see `lab`).
    Network,
}

/// The file, as written. Unknown keys are errors (no silent typos).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentFile {
    pub task: Task,
    /// Output directory (overridden by `--out`).
    pub out: Option<PathBuf>,
    /// Data directory like ../shared/datasets/cis680-hw1; built-in data without it.
    pub data: Option<PathBuf>,
    #[serde(default)]
    pub data_seed: u64,
    #[serde(default)]
    pub train: TrainSection,
    #[serde(default)]
    pub sweep: SweepSection,
    /// For task = "landscape".
    pub landscape: Option<LandscapeSection>,
}

/// The options of `gradlab landscape`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LandscapeSection {
    pub x: Option<f64>,
    pub y: Option<f64>,
    /// Half-width of the square grid (default 6).
    pub range: Option<f64>,
    pub w_range: Option<(f64, f64)>,
    pub b_range: Option<(f64, f64)>,
    pub points: Option<usize>,
}

/// Scalar options shared by every cell.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSection {
    pub seeds: Option<usize>,
    pub first_seed: Option<u64>,
    pub max_iters: Option<usize>,
    pub bias_init: Option<f64>,
    /// fc only: the per-sample-bias variant.
    pub per_sample_bias: Option<bool>,
    /// line/detect only: untied conv biases.
    pub untied_conv_bias: Option<bool>,
    /// Start every model from these parameters (safetensors), like `--init`.
    pub init: Option<PathBuf>,
    /// Save each seed's final parameters under `<save_params>/<cell>/`, like `--save-params`.
    pub save_params: Option<PathBuf>,
    /// With `save_params`: also every K updates, like `--save-every`.
    pub save_every: Option<usize>,
    /// TensorBoard event files under `<tensorboard>/<cell>/seed-<s>/`, like `--tensorboard`.
    pub tensorboard: Option<PathBuf>,
}

/// Lists to sweep; a missing list is the single default value.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SweepSection {
    pub act: Option<Vec<String>>,
    /// fc only.
    pub loss: Option<Vec<LossKind>>,
    pub lr: Option<Vec<f64>>,
    pub init_std: Option<Vec<f64>>,
    pub reduction: Option<Vec<Reduction>>,
}

/// One cell of the grid.
#[derive(Clone, Debug, Serialize)]
pub struct Cell {
    pub index: usize,
    pub name: String,
    #[serde(serialize_with = "crate::report::display")]
    pub act: Activation,
    pub loss: Option<LossKind>,
    pub lr: f64,
    pub init_std: f64,
    pub reduction: Reduction,
}

/// A checked experiment: the file's content resolved into cells and options.
#[derive(Clone, Debug)]
pub struct Experiment {
    pub file: PathBuf,
    pub spec: ExperimentFile,
    pub cells: Vec<Cell>,
    pub seeds: usize,
}

pub fn parse(path: &Path, text: &str) -> Result<Experiment> {
    let spec: ExperimentFile = toml::from_str(text).map_err(|e| Error::data(path, e.to_string().trim().to_string()))?;
    let bad = |field: &str, msg: String| Err(Error::data(path, format!("field `{field}`: {msg}")));
    if spec.task == Task::Network {
        return bad("task", "a network file has a [network] table and no `task`; see examples/networks/".into());
    }
    let t = &spec.train;
    let seeds = t.seeds.unwrap_or(32);
    if spec.task == Task::Landscape {
        let s = &spec.sweep;
        if s.loss.is_some() || s.lr.is_some() || s.init_std.is_some() || s.reduction.is_some() {
            return bad("sweep", "a landscape sweeps only `act`".into());
        }
    } else if spec.landscape.is_some() {
        return bad("landscape", "applies to task = \"landscape\" only".into());
    }
    let is_fc = spec.task == Task::Fc;
    if !is_fc && (t.per_sample_bias.is_some() || spec.sweep.loss.is_some()) {
        return bad(
            if t.per_sample_bias.is_some() { "train.per_sample_bias" } else { "sweep.loss" },
            "applies to task = \"fc\" only".into(),
        );
    }
    if is_fc && t.untied_conv_bias.is_some() {
        return bad("train.untied_conv_bias", "applies to task = \"line\" or \"detect\" only".into());
    }
    let s = &spec.sweep;
    let acts = match &s.act {
        None if spec.task == Task::Landscape => vec![Activation::Sigmoid],
        Some(names) => names
            .iter()
            .map(|n| Activation::parse(n))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::data(path, format!("field `sweep.act`: {e}")))?,
        None => vec![Activation::Relu],
    };
    let default_lr = match spec.task {
        Task::Detect => 0.01,
        _ => 0.1,
    };
    let lrs = s.lr.clone().unwrap_or(vec![default_lr]);
    let stds = s.init_std.clone().unwrap_or(vec![REPORT_INIT_STD]);
    let losses: Vec<Option<LossKind>> =
        if is_fc { s.loss.clone().unwrap_or(vec![LossKind::Ce]).into_iter().map(Some).collect() } else { vec![None] };
    let reductions = s.reduction.clone().unwrap_or(vec![Reduction::Mean]);
    for (field, empty) in [
        ("sweep.act", acts.is_empty()),
        ("sweep.lr", lrs.is_empty()),
        ("sweep.init_std", stds.is_empty()),
        ("sweep.reduction", reductions.is_empty()),
        ("sweep.loss", losses.is_empty()),
    ] {
        if empty {
            return bad(field, "is an empty list".into());
        }
    }
    let mut cells = vec![];
    if spec.task == Task::Landscape {
        for &act in &acts {
            let name = act.to_string();
            cells.push(Cell {
                index: cells.len(),
                name,
                act,
                loss: None,
                lr: 0.0,
                init_std: 0.0,
                reduction: Reduction::Mean,
            });
        }
        let exp = Experiment { file: path.to_path_buf(), spec, cells, seeds };
        exp.landscape_config(&exp.cells[0])?
            .validate()
            .map_err(|e| Error::data(path, format!("section `landscape`: {e}")))?;
        return Ok(exp);
    }
    for &act in &acts {
        for &loss in &losses {
            for &lr in &lrs {
                for &init_std in &stds {
                    for &reduction in &reductions {
                        let mut name = act.to_string();
                        if let Some(l) = loss {
                            name.push_str(&format!("+{l}"));
                        }
                        name.push_str(&format!(
                            "+lr{lr}+std{init_std}+{}",
                            if reduction == Reduction::Sum { "sum" } else { "mean" }
                        ));
                        cells.push(Cell { index: cells.len(), name, act, loss, lr, init_std, reduction });
                    }
                }
            }
        }
    }
    let exp = Experiment { file: path.to_path_buf(), spec, cells, seeds };
    // Every cell's options through the one validator; its keys named as this format has them.
    for cell in &exp.cells {
        exp.options(cell).validate().map_err(|e| match e {
            Error::Field { field, msg } => {
                let field = match field.as_str() {
                    "optim.lr" => "sweep.lr",
                    "init.std" => "sweep.init_std",
                    "init.bias" => "train.bias_init",
                    other => other,
                };
                Error::data(path, format!("field `{field}`: {msg}"))
            }
            other => other,
        })?;
    }
    Ok(exp)
}

pub fn load(path: &Path) -> Result<Experiment> {
    let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::data(path, "file not found"),
        _ => Error::io(path, e),
    })?;
    parse(path, &text)
}

/// `i/n`: this process runs cells k with k mod n = i.
pub fn parse_shard(s: &str) -> Result<(usize, usize)> {
    let bad = || Error::Usage(format!("--shard {s}: expected i/n with 0 ≤ i < n, e.g. 0/4"));
    let (i, n) = s.split_once('/').ok_or_else(bad)?;
    let (i, n): (usize, usize) = (i.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
    if n == 0 || i >= n {
        return Err(bad());
    }
    Ok((i, n))
}

impl Experiment {
    pub fn source(&self) -> Source {
        match &self.spec.data {
            Some(d) => Source::Dir(d.clone()),
            None => Source::Builtin { seed: self.spec.data_seed },
        }
    }

    fn kind(&self) -> DatasetKind {
        match self.spec.task {
            Task::Fc | Task::Landscape | Task::Network => DatasetKind::Random,
            Task::Line => DatasetKind::Line,
            Task::Detect => DatasetKind::Detection,
        }
    }

    /// The landscape of a cell of a `task = "landscape"` file.
    pub fn landscape_config(&self, cell: &Cell) -> Result<crate::experiments::landscape::LandscapeConfig> {
        let l = self.spec.landscape.clone().unwrap_or_default();
        let r = l.range.unwrap_or(6.0);
        if !(r.is_finite() && r > 0.0) {
            return Err(Error::data(&self.file, format!("field `landscape.range`: {r} is not a positive number")));
        }
        Ok(crate::experiments::landscape::LandscapeConfig {
            act: cell.act,
            x: l.x.unwrap_or(1.0),
            y: l.y.unwrap_or(0.5),
            w_range: l.w_range.unwrap_or((-r, r)),
            b_range: l.b_range.unwrap_or((-r, r)),
            points: l.points.unwrap_or(100),
        })
    }

    pub fn options(&self, cell: &Cell) -> TrainOptions {
        let t = &self.spec.train;
        TrainOptions {
            first_seed: t.first_seed.unwrap_or(0),
            optim: OptimConfig::sgd(cell.lr),
            init: InitOptions {
                weights: WeightInit::TruncatedNormal { std: cell.init_std },
                bias: t.bias_init.unwrap_or(REPORT_BIAS),
            },
            max_iters: t.max_iters.unwrap_or(10_000),
            init_from: t.init.clone(),
            save_params: t.save_params.as_ref().map(|d| d.join(&cell.name)),
            save_every: t.save_every,
            ..TrainOptions::new(self.seeds)
        }
    }

    /// Trains one cell.
    pub fn run_cell(
        &self,
        cell: &Cell,
        data: &data::Dataset,
        held_out: &data::Dataset,
        progress: &mut dyn FnMut(usize, usize) -> bool,
    ) -> Result<Run> {
        let opts = self.options(cell);
        if let Some(d) = &opts.save_params {
            std::fs::create_dir_all(d).map_err(|e| Error::io(d, e))?;
        }
        let mut run = match self.spec.task {
            Task::Landscape => unreachable!("landscapes are not trained"),
            Task::Network => unreachable!("`parse` refuses task = \"network\" (lab files have no `task`)"),
            Task::Fc => {
                let setting = FcSetting {
                    act: cell.act,
                    loss: cell.loss.expect("fc cells have a loss"),
                    per_sample_bias: self.spec.train.per_sample_bias.unwrap_or(false),
                };
                let study = FcStudy { settings: vec![setting], train: opts, reduction: cell.reduction };
                fc_random::run_setting(&study, setting, data, Some(held_out), progress)?
            }
            Task::Line | Task::Detect => {
                let task = if self.spec.task == Task::Line { CnnTask::Line } else { CnnTask::Detect };
                let setting = CnnSetting {
                    act: cell.act,
                    reduction: cell.reduction,
                    init_std: cell.init_std,
                    untied_conv_bias: self.spec.train.untied_conv_bias.unwrap_or(false),
                    clip_norm: None,
                };
                cnn::run_setting(task, setting, &opts, data, Some(held_out), progress)?
            }
        };
        run.setting = cell.name.clone();
        Ok(run)
    }

    pub fn datasets(&self) -> Result<(data::Dataset, data::Dataset)> {
        if self.spec.task == Task::Landscape {
            let none = data::generate(DatasetKind::Random, 64, 0);
            return Ok((none.clone(), none));
        }
        let source = self.source();
        Ok((data::load(self.kind(), &source)?, data::held_out(self.kind(), &source, data::HELD_OUT_SIZE)))
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CellSummary {
    pub index: usize,
    pub name: String,
    /// This cell's values of the swept keys (`act`, `lr`, … or `optim.lr`, …).
    pub axes: std::collections::BTreeMap<String, serde_json::Value>,
    pub seeds: usize,
    pub converged: usize,
    pub diverged: usize,
    pub iterations: Vec<Option<usize>>,
    pub median_iterations: Option<f64>,
    pub p25_iterations: Option<f64>,
    pub p75_iterations: Option<f64>,
    pub median_held_out_accuracy: Option<f64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SweepSummary {
    pub study: String,
    pub file: String,
    pub task: Task,
    pub data: String,
    pub complete: bool,
    /// `[i, n]` for a shard, `null` for a whole sweep or a merge.
    pub shard: Option<(usize, usize)>,
    pub total_cells: usize,
    pub cells: Vec<CellSummary>,
}

pub fn summarise(cell: &Cell, run: &Run) -> CellSummary {
    let axes = [
        ("act", serde_json::json!(cell.act.to_string())),
        ("loss", serde_json::json!(cell.loss)),
        ("lr", serde_json::json!(cell.lr)),
        ("init_std", serde_json::json!(cell.init_std)),
        ("reduction", serde_json::json!(cell.reduction)),
    ];
    let axes = axes.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    cell_summary(cell.index, &cell.name, axes, run)
}

/// What `summary.json` says about one cell of any sweep.
pub fn cell_summary(
    index: usize,
    name: &str,
    axes: std::collections::BTreeMap<String, serde_json::Value>,
    run: &Run,
) -> CellSummary {
    let s = RunSummary::of(run);
    CellSummary {
        index,
        name: name.to_string(),
        axes,
        seeds: s.seeds,
        converged: s.converged,
        diverged: s.diverged,
        iterations: s.iterations,
        median_iterations: s.median_iterations,
        p25_iterations: s.p25_iterations,
        p75_iterations: s.p75_iterations,
        median_held_out_accuracy: s.median_held_out_accuracy,
    }
}

/// Combines shard outputs (their `summary.json` and `metrics.csv`) into `out`; the cells must
/// come from the same file and task and not overlap.
pub fn merge(dirs: &[PathBuf], out: &Path) -> Result<SweepSummary> {
    let mut summaries = vec![];
    let mut csvs = vec![];
    for d in dirs {
        let path = d.join("summary.json");
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let s: SweepSummary =
            serde_json::from_str(&text).map_err(|e| Error::data(&path, format!("not a sweep summary: {e}")))?;
        let csv_path = d.join("metrics.csv");
        csvs.push(std::fs::read_to_string(&csv_path).map_err(|e| Error::io(&csv_path, e))?);
        summaries.push((path, s));
    }
    let (first_path, first) =
        summaries.first().ok_or_else(|| Error::Usage("merge needs at least one directory".into()))?;
    let mut cells: Vec<CellSummary> = vec![];
    for (path, s) in &summaries {
        if s.file != first.file || s.task != first.task || s.total_cells != first.total_cells || s.data != first.data {
            return Err(Error::data(path, format!("comes from another sweep than {}", first_path.display())));
        }
        for c in &s.cells {
            if cells.iter().any(|k| k.index == c.index) {
                return Err(Error::data(path, format!("cell {} ({}) appears twice", c.index, c.name)));
            }
            cells.push(c.clone());
        }
    }
    cells.sort_by_key(|c| c.index);
    // Rows grouped by cell, in cell order; the header once.
    let header = csvs[0].lines().next().unwrap_or_default().to_string();
    let mut rows: Vec<(usize, &str)> = vec![];
    for csv in &csvs {
        for line in csv.lines().skip(1) {
            let name = line.split(',').next().unwrap_or_default();
            let index = cells.iter().find(|c| c.name == name).map_or(usize::MAX, |c| c.index);
            rows.push((index, line));
        }
    }
    rows.sort_by_key(|r| r.0); // stable: each cell's rows keep their order
    let mut merged = header + "\n";
    for (_, line) in rows {
        merged.push_str(line);
        merged.push('\n');
    }
    let summary = SweepSummary {
        study: first.study.clone(),
        file: first.file.clone(),
        task: first.task,
        data: first.data.clone(),
        complete: summaries.iter().all(|(_, s)| s.complete) && cells.len() == first.total_cells,
        shard: None,
        total_cells: first.total_cells,
        cells,
    };
    crate::report::write_json(&out.join("summary.json"), &summary)?;
    crate::report::atomic::write_atomic(&out.join("metrics.csv"), merged.as_bytes())?;
    Ok(summary)
}

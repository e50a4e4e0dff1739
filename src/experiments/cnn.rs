//! Tasks 3 and 4: the CNNs on `line` (one task) and `detection` (two tasks), built from their
//! presets, over many seeds, with divergence, max |weight| and dead units tracked per iteration.

use crate::activations::Activation;
use crate::data::Dataset;
use crate::engine::Reduction;
use crate::error::Result;
use crate::experiments::presets::{Cnn, CnnTask};
use crate::init::WeightInit;
use crate::optim::OptimConfig;
use crate::record::{Run, RunSummary};
use crate::report::{self, figures::CurvePanels, figures::Panel};
use crate::training::{InitOptions, TrainOptions, train_parallel};
use serde::Serialize;
use std::fmt::Write;
use std::path::Path;

pub use crate::experiments::Runner;

/// One task's runs of a CNN study.
#[derive(Clone, Debug)]
pub struct CnnRuns {
    pub task: CnnTask,
    pub settings: Vec<CnnSetting>,
    pub opts: TrainOptions,
    pub runs: Vec<Run>,
    /// Where the task's data came from.
    pub data: String,
}

/// Each task's training data and held-out set, loaded before anything is written.
pub fn load_plan_data(
    plan: &[(CnnTask, Vec<CnnSetting>)],
    source: &crate::data::Source,
) -> Result<Vec<(Dataset, Dataset)>> {
    use crate::data;
    plan.iter()
        .map(|(task, _)| {
            let kind = task.dataset();
            Ok((data::load(kind, source)?, data::held_out(kind, source, data::HELD_OUT_SIZE)))
        })
        .collect()
}

/// Trains each task's settings of a CNN study (named `<task> <setting>` for the runner) and
/// writes `<out>/<task>/` like `train line|detect`. `reuse(task)`: runs made before (the
/// explosion study's baseline is Task 3's ReLU run), not trained again and listed first. Stops
/// after the task in which the runner was interrupted; returns the runs and whether all ran.
pub fn run_plan(
    plan: Vec<(CnnTask, Vec<CnnSetting>)>,
    datasets: &[(Dataset, Dataset)],
    opts_for: &dyn Fn(CnnTask) -> TrainOptions,
    reuse: &dyn Fn(CnnTask) -> Vec<(CnnSetting, Run)>,
    out: &Path,
    runner: &mut Runner,
) -> Result<(Vec<CnnRuns>, bool)> {
    let mut all = vec![];
    for ((task, mut settings), (data, held_out)) in plan.into_iter().zip(datasets) {
        let opts = opts_for(task);
        let reused = reuse(task);
        settings.retain(|s| !reused.iter().any(|(r, _)| r == s));
        let names: Vec<String> = settings.iter().map(|s| format!("{} {}", task.name(), s.name())).collect();
        let (mut runs, complete) = runner(&names, opts.max_iters, opts.seeds, &mut |k, progress| {
            run_setting(task, settings[k], &opts, data, Some(held_out), progress)
        })?;
        for (setting, run) in reused.into_iter().rev() {
            settings.insert(0, setting);
            runs.insert(0, run);
        }
        let dir = out.join(task.name());
        crate::atomic::ensure_dir(&dir)?;
        write_outputs(&dir, task, &settings, &opts, &runs, data, complete)?;
        all.push(CnnRuns { task, settings, opts, runs, data: data.source.clone() });
        if !complete {
            return Ok((all, false));
        }
    }
    Ok((all, true))
}

/// What varies between the runs of a CNN study.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct CnnSetting {
    #[serde(serialize_with = "crate::report::display")]
    pub act: Activation,
    pub reduction: Reduction,
    pub init_std: f64,
    pub untied_conv_bias: bool,
    /// Clip each model's global gradient norm to this before the step.
    pub clip_norm: Option<f64>,
}

impl CnnSetting {
    pub fn new(act: Activation) -> CnnSetting {
        CnnSetting { act, reduction: Reduction::Mean, init_std: 0.1, untied_conv_bias: false, clip_norm: None }
    }

    /// `relu`, `relu+sum`, `leaky_relu+std1`, `relu+untied`, …
    pub fn name(&self) -> String {
        let mut n = self.act.to_string();
        if self.reduction == Reduction::Sum {
            n.push_str("+sum");
        }
        if self.init_std != 0.1 {
            let _ = write!(n, "+std{}", self.init_std);
        }
        if let Some(c) = self.clip_norm {
            let _ = write!(n, "+clip{c}");
        }
        if self.untied_conv_bias {
            n.push_str("+untied");
        }
        n
    }
}

/// Trains every seed of one setting as one ensemble.
pub fn run_setting(
    task: CnnTask,
    setting: CnnSetting,
    opts: &TrainOptions,
    data: &Dataset,
    held_out: Option<&Dataset>,
    progress: &mut dyn FnMut(usize, usize) -> bool,
) -> Result<Run> {
    let net = Cnn { task, act: setting.act, reduction: setting.reduction, untied_conv_bias: setting.untied_conv_bias }
        .network()?;
    // The setting's std scales the report's truncated normal; another scheme in `opts` is kept
    // only when the setting asks for nothing else (never dropped silently).
    let weights = match opts.init.weights {
        WeightInit::TruncatedNormal { .. } => WeightInit::TruncatedNormal { std: setting.init_std },
        other if setting.init_std == crate::training::REPORT_INIT_STD => other,
        other => {
            return Err(crate::Error::Usage(format!(
                "setting `{}`: init std {} applies to truncated-normal weights, not {other}",
                setting.name(),
                setting.init_std
            )));
        }
    };
    let opts = TrainOptions {
        init: InitOptions { weights, ..opts.init },
        optim: OptimConfig { clip_norm: setting.clip_norm.or(opts.optim.clip_norm), ..opts.optim },
        ..opts.clone()
    };
    let (data, held_out) = (data.samples(), held_out.map(Dataset::samples));
    let build = |e| crate::models::spec::build::<f32>(&net, &data, e, data.n);
    train_parallel(&setting.name(), &build, &data, held_out.as_ref(), &opts, progress)
}

#[derive(Clone, Debug, Serialize)]
pub struct CnnSummary {
    #[serde(flatten)]
    pub run: RunSummary,
    #[serde(flatten)]
    pub setting: CnnSetting,
}

#[derive(Serialize)]
struct Summary<'a> {
    study: String,
    complete: bool,
    data: &'a str,
    config: &'a TrainOptions,
    settings: &'a [CnnSummary],
}

/// The figure panels of a task: Fig. 5/7 of the report (line: loss and accuracy; detect:
/// total and regression loss, classification and regression accuracy).
pub fn curve_panels(task: CnnTask, title: &str, runs: &[&Run]) -> CurvePanels {
    match task {
        CnnTask::Line => CurvePanels::loss_and_accuracy(title, runs),
        CnnTask::Detect => {
            let mut panels = vec![
                Panel::of_runs(runs, "loss", "total loss (CE + 0.01·regression)", true, (0.25, 0.75)),
                Panel::of_runs(runs, "reg_loss", "regression loss ½Σ(ŵ − w)²", true, (0.25, 0.75)),
                Panel::of_runs(runs, "cls_accuracy", "classification accuracy", false, (0.25, 0.75)),
                Panel::of_runs(runs, "reg_accuracy", "regression accuracy (|ŵ − w| < 0.5)", false, (0.25, 0.75)),
            ];
            if !runs.is_empty() && runs.iter().all(|r| r.columns.iter().any(|c| c == "held_out_accuracy")) {
                panels.push(Panel::of_runs(runs, "held_out_loss", "held-out total loss", true, (0.25, 0.75)));
                panels.push(Panel::of_runs(
                    runs,
                    "held_out_accuracy",
                    "held-out accuracy (class and width)",
                    false,
                    (0.25, 0.75),
                ));
            }
            CurvePanels { title: title.into(), panels, columns: 2 }
        }
    }
}

/// Writes `summary.json`, `metrics.csv`, `table.md`, and figures: `curves` (Fig. 5/7),
/// `weights` (max |weight|, log axis, median and range), `dead` (dead-unit fractions).
pub fn write_outputs(
    dir: &Path,
    task: CnnTask,
    settings: &[CnnSetting],
    opts: &TrainOptions,
    runs: &[Run],
    data: &Dataset,
    complete: bool,
) -> Result<Vec<CnnSummary>> {
    let summaries: Vec<CnnSummary> =
        settings.iter().zip(runs).map(|(&setting, r)| CnnSummary { run: RunSummary::of(r), setting }).collect();
    let study = format!("task3-{}", task.name());
    report::write_json(
        &dir.join("summary.json"),
        &Summary { study, complete, data: &data.source, config: opts, settings: &summaries },
    )?;
    report::write_run_csvs(dir, runs)?;
    crate::atomic::write_atomic(&dir.join("table.md"), table_markdown(task, opts, &summaries, data).as_bytes())?;
    let refs: Vec<&Run> = runs.iter().collect();
    let name = task.name();
    report::figures::render(
        &dir.join("curves"),
        &curve_panels(task, &format!("{name}: median over seeds with IQR band"), &refs),
    )?;
    let weights = CurvePanels {
        title: format!("{name}: largest |parameter| per iteration (median, range over seeds)"),
        panels: vec![Panel::of_runs(&refs, "max_abs_weight", "max |weight|", true, (0.0, 1.0))],
        columns: 1,
    };
    report::figures::render(&dir.join("weights"), &weights)?;
    let dead = CurvePanels {
        title: format!("{name}: fraction of units ≤ 0 for every sample (median, IQR)"),
        panels: vec![
            Panel::of_runs(&refs, "dead_fraction_conv1", "conv1", false, (0.25, 0.75)),
            Panel::of_runs(&refs, "dead_fraction_conv2", "conv2", false, (0.25, 0.75)),
        ],
        columns: 2,
    };
    report::figures::render(&dir.join("dead"), &dead)?;
    crate::report::probes::write_outputs(dir, runs)?;
    crate::experiments::memorisation::write_outputs(dir, runs, data)?;
    crate::report::samples::write_outputs(dir, &refs, &[], &data.samples())?;
    Ok(summaries)
}

pub fn table_markdown(task: CnnTask, opts: &TrainOptions, summaries: &[CnnSummary], data: &Dataset) -> String {
    let fmt = |v: Option<f64>| v.map(|x| format!("{x:.0}")).unwrap_or_else(|| format!("> {}", opts.max_iters));
    let mut md = format!(
        "# {}: iterations to 100% training accuracy\n\n{} seeds per setting ({}..), lr {}, bias {}, cap {} iterations; data: {}.\n\n",
        task.name(),
        opts.seeds,
        opts.first_seed,
        opts.optim.lr,
        opts.init.bias,
        opts.max_iters,
        data.source
    );
    md.push_str("| Setting | converged | diverged | neither | median | IQR | median max \\|weight\\| | held-out accuracy |\n|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for s in summaries {
        let r = &s.run;
        let w = crate::stats::quantile(&r.max_abs_weight, 0.5);
        let _ = writeln!(
            md,
            "| {} | {}/{} | {} | {} | {} | {}–{} | {:.3} | {} |",
            r.setting,
            r.converged,
            r.seeds,
            r.diverged,
            r.neither,
            fmt(r.median_iterations),
            fmt(r.p25_iterations),
            fmt(r.p75_iterations),
            w,
            r.median_held_out_accuracy.map(|a| format!("{:.1}%", 100.0 * a)).unwrap_or_else(|| "—".into())
        );
    }
    md
}

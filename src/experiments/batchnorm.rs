//! How does BatchNorm help optimisation? Santurkar et al. (2018) argue: not by reducing
//! "internal covariate shift" but by making the landscape smoother — along the gradient the
//! loss varies less, the gradient changes less (it is more predictive), and the effective
//! β-smoothness is smaller. Measured here on the digits CNN (minibatches) and the report's
//! line and detection CNNs (full batch), each without and with BatchNorm before every hidden
//! activation, under plain SGD at the same learning rate, over many seeds: every K iterations,
//! on that step's batch, the loss and gradient at `θ − η·g` for η from ¼ to 4 times the
//! learning rate (`training::gradient_line`).

use crate::error::Result;
use crate::models::spec::{Layer, NetworkSpec};
use crate::optim::{OptimConfig, OptimKind};
use crate::record::Run;
use crate::report::figures::{CurvePanels, Panel, render};
use crate::training::gradient_line::LineOptions;
use crate::training::{StopRule, TrainOptions, train_parallel};
use serde::Serialize;
use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    Digits,
    Line,
    Detection,
}

impl Task {
    pub const NAMES: [&'static str; 3] = ["digits", "line", "detection"];

    pub fn parse(s: &str) -> Option<Task> {
        match s {
            "digits" => Some(Task::Digits),
            "line" => Some(Task::Line),
            "detection" | "detect" => Some(Task::Detection),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        Task::NAMES[self as usize]
    }

    fn preset(self) -> &'static str {
        match self {
            Task::Digits => "digits-cnn",
            Task::Line => "line",
            Task::Detection => "detect",
        }
    }
}

pub struct Study {
    pub tasks: Vec<Task>,
    pub seeds: usize,
    pub max_iters: usize,
    pub every: usize,
    /// SGD's rate on the digits (the report's CNNs keep their own).
    pub digits_lr: f64,
}

/// `spec` with BatchNorm between every hidden dense or conv layer and its activation (PyTorch's
/// defaults: ε 1e-5, momentum 0.1).
pub fn with_batchnorm(spec: &NetworkSpec) -> NetworkSpec {
    let mut out = spec.clone();
    let last = spec.layers.len().saturating_sub(1);
    out.layers = vec![];
    for (i, l) in spec.layers.iter().enumerate() {
        let output = i == last && spec.heads.is_none();
        match l {
            Layer::Dense { act: Some(a), units, bias, name } if !output => {
                out.layers.push(Layer::Dense { units: *units, act: None, bias: *bias, name: name.clone() });
                out.layers.push(Layer::Batchnorm { eps: 1e-5, momentum: 0.1, act: Some(a.clone()), name: None });
            }
            Layer::Conv2d { act: Some(a), channels, kernel, stride, padding, bias, name } if !output => {
                out.layers.push(Layer::Conv2d {
                    channels: *channels,
                    kernel: *kernel,
                    stride: *stride,
                    padding: *padding,
                    act: None,
                    bias: *bias,
                    name: name.clone(),
                });
                out.layers.push(Layer::Batchnorm { eps: 1e-5, momentum: 0.1, act: Some(a.clone()), name: None });
            }
            other => out.layers.push(other.clone()),
        }
    }
    out
}

/// One task × arm: medians over seeds (and, per seed first, over the measured iterations).
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub task: Task,
    pub batchnorm: bool,
    pub seeds: usize,
    pub lr: f64,
    /// `[p25, median, p75]` over seeds of each seed's median over its measurements.
    pub loss_range: [f64; 3],
    pub grad_change: [f64; 3],
    pub beta: [f64; 3],
    /// The training loss (median over seeds) and held-out accuracy at the end.
    pub final_loss: f64,
    pub held_out_accuracy: Option<f64>,
    pub diverged: usize,
}

fn per_seed_medians(run: &Run, column: &str) -> [f64; 3] {
    let v: Vec<f64> = (0..run.seeds.len())
        .filter(|&s| run.diverged_at[s].is_none())
        .filter_map(|s| {
            let c: Vec<f64> = run.column(s, column).iter().filter(|x| x.is_finite()).map(|&x| x as f64).collect();
            (!c.is_empty()).then(|| crate::stats::quantile(&c, 0.5))
        })
        .collect();
    crate::stats::quartiles(&v)
}

pub fn row(task: Task, batchnorm: bool, lr: f64, run: &Run) -> Row {
    let s = crate::record::RunSummary::of(run);
    let last = run.column_last("loss");
    let finite: Vec<f64> = last.into_iter().filter(|x| x.is_finite()).collect();
    Row {
        task,
        batchnorm,
        seeds: run.seeds.len(),
        lr,
        loss_range: per_seed_medians(run, "line_loss_range"),
        grad_change: per_seed_medians(run, "line_grad_change"),
        beta: per_seed_medians(run, "line_beta"),
        final_loss: if finite.is_empty() { f64::NAN } else { crate::stats::quantile(&finite, 0.5) },
        held_out_accuracy: s.median_held_out_accuracy,
        diverged: s.diverged,
    }
}

/// Trains every task without and with BatchNorm and writes `summary.json`, `batchnorm.md`,
/// `batchnorm.svg/png` and `<task>/` (metrics, curves). Returns the rows, the markdown and
/// whether it ran to the end.
pub fn run(study: &Study, out: &Path, runner: &mut crate::experiments::Runner) -> Result<(Vec<Row>, String, bool)> {
    let line = LineOptions::new(study.every);
    let mut rows = vec![];
    let mut all_runs: Vec<(Task, Vec<Run>)> = vec![];
    let mut complete = true;
    for &task in &study.tasks {
        let lab = crate::experiments::presets::lab(task.preset())?;
        let (data, held) = lab.data(0)?;
        let cell = &lab.cells[0];
        let optim = match task {
            Task::Digits => OptimConfig { weight_decay: 0.0, ..OptimConfig::new(OptimKind::Sgd, study.digits_lr) },
            _ => cell.opts.optim,
        };
        let opts = TrainOptions {
            seeds: study.seeds,
            max_iters: study.max_iters,
            stop: StopRule::None,
            optim,
            eval_every: Some(if cell.opts.batch.is_some() { study.every } else { 1 }),
            gradient_line: Some(LineOptions {
                every: if cell.opts.batch.is_some() { 1 } else { study.every },
                ..line.clone()
            }),
            probe_every: 0,
            held_out_every: None,
            ..cell.opts.clone()
        };
        let specs = [cell.file.network.clone(), with_batchnorm(&cell.file.network)];
        let names: Vec<String> =
            ["without BatchNorm", "with BatchNorm"].iter().map(|a| format!("{} {a}", task.name())).collect();
        let (mut runs, done) = runner(&names, study.max_iters, study.seeds, &mut |k, progress| {
            let spec = &specs[k];
            let build = |e: usize| crate::models::spec::build::<f32>(spec, &data, e, opts.batch.unwrap_or(data.n));
            train_parallel(&names[k], &build, &data, held.as_ref(), &opts, progress)
        })?;
        for (k, run) in runs.iter_mut().enumerate() {
            run.setting = if k == 0 { "without BatchNorm".into() } else { "with BatchNorm".into() };
            rows.push(row(task, k == 1, opts.optim.lr, run));
        }
        let dir = out.join(task.name());
        crate::atomic::ensure_dir(&dir)?;
        crate::report::write_run_csvs(&dir, &runs)?;
        let refs: Vec<&Run> = runs.iter().collect();
        render(
            &dir.join("curves"),
            &CurvePanels::loss_and_accuracy(&format!("{}: without and with BatchNorm (SGD)", task.name()), &refs),
        )?;
        all_runs.push((task, runs));
        if !done {
            complete = false;
            break;
        }
    }
    let mut panels = vec![];
    for (task, runs) in &all_runs {
        let refs: Vec<&Run> = runs.iter().collect();
        for (col, what) in [
            ("line_loss_range", "loss range along the gradient"),
            ("line_grad_change", "largest gradient change"),
            ("line_beta", "effective β-smoothness"),
        ] {
            let mut p = Panel::of_runs(&refs, col, &format!("{}: {what}", task.name()), true, (0.25, 0.75));
            p.y_label = "median over seeds, IQR".into();
            panels.push(p);
        }
    }
    if !panels.is_empty() {
        render(
            &out.join("batchnorm"),
            &CurvePanels {
                title: "Santurkar et al.'s smoothness along each step's gradient, without and with BatchNorm".into(),
                panels,
                columns: 3,
            },
        )?;
    }
    let claims = sentences(&rows);
    #[derive(Serialize)]
    struct Summary<'a> {
        study: &'static str,
        complete: bool,
        seeds: usize,
        max_iters: usize,
        every: usize,
        steps_in_lr: &'a [f64],
        rows: &'a [Row],
        claims: &'a [String],
    }
    crate::report::write_json(
        &out.join("summary.json"),
        &Summary {
            study: "batchnorm",
            complete,
            seeds: study.seeds,
            max_iters: study.max_iters,
            every: study.every,
            steps_in_lr: &line.steps,
            rows: &rows,
            claims: &claims,
        },
    )?;
    let md = markdown(study, &line, &rows, &claims);
    crate::atomic::write_atomic(&out.join("batchnorm.md"), md.as_bytes())?;
    Ok((rows, md, complete))
}

fn fmt(v: f64) -> String {
    if !v.is_finite() {
        "—".into()
    } else if v.abs() >= 0.01 {
        format!("{v:.3}")
    } else {
        format!("{v:.2e}")
    }
}

fn quart(q: [f64; 3]) -> String {
    format!("{} ({}–{})", fmt(q[1]), fmt(q[0]), fmt(q[2]))
}

pub fn markdown(study: &Study, line: &LineOptions, rows: &[Row], claims: &[String]) -> String {
    let steps: Vec<String> = line.steps.iter().map(|s| format!("{s}")).collect();
    let mut md = format!(
        "# BatchNorm and the smoothness of the landscape\n\n{} seeds per arm, SGD, {} iterations; every {} iterations, on that step's batch and in training mode, the loss and gradient at θ − η·g for η = {{{}}} × the learning rate. Per seed the median over its measurements, then the median (IQR) over seeds.\n\n| task | BatchNorm | lr | loss range | largest gradient change | effective β | final training loss | held-out accuracy | diverged |\n|---|---|---:|---:|---:|---:|---:|---:|---:|\n",
        study.seeds,
        study.max_iters,
        study.every,
        steps.join(", ")
    );
    for r in rows {
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {}/{} |\n",
            r.task.name(),
            if r.batchnorm { "yes" } else { "no" },
            r.lr,
            quart(r.loss_range),
            quart(r.grad_change),
            quart(r.beta),
            fmt(r.final_loss),
            r.held_out_accuracy.map_or("—".into(), |a| format!("{:.1}%", 100.0 * a)),
            r.diverged,
            r.seeds
        ));
    }
    if !claims.is_empty() {
        md.push_str("\n## Santurkar et al.'s claim\n\n");
        for c in claims {
            md.push_str(&format!("- {c}\n"));
        }
    }
    md
}

/// Per task: the three measures with BatchNorm as a fraction of without (medians), and the
/// verdict.
pub fn sentences(rows: &[Row]) -> Vec<String> {
    let mut out = vec![];
    for plain in rows.iter().filter(|r| !r.batchnorm) {
        let Some(bn) = rows.iter().find(|r| r.batchnorm && r.task == plain.task) else { continue };
        let ratio = |a: [f64; 3], b: [f64; 3]| b[1] / a[1];
        let (l, g, b) = (
            ratio(plain.loss_range, bn.loss_range),
            ratio(plain.grad_change, bn.grad_change),
            ratio(plain.beta, bn.beta),
        );
        if !(l.is_finite() && g.is_finite() && b.is_finite()) {
            continue;
        }
        // Clearly smaller: below 0.8 of the plain net's; clearly larger: above 1.25.
        let names = ["loss range", "gradient change", "β-smoothness"];
        let smaller: Vec<&str> = [l, g, b].iter().zip(names).filter(|(x, _)| **x < 0.8).map(|p| p.1).collect();
        let larger: Vec<&str> = [l, g, b].iter().zip(names).filter(|(x, _)| **x > 1.25).map(|p| p.1).collect();
        let verdict = match (smaller.len(), larger.len()) {
            (3, _) => {
                "all three clearly smaller with BatchNorm: a smoother landscape, as Santurkar et al. report".to_string()
            }
            (0, 0) => "none clearly different: no smoothing here".to_string(),
            (_, 0) => format!("smoother in {} only; the rest about the same", smaller.join(" and ")),
            (0, _) => format!("rougher with BatchNorm in {}", larger.join(" and ")),
            _ => format!("smoother in {}, rougher in {}", smaller.join(" and "), larger.join(" and ")),
        };
        out.push(format!(
            "{}: with BatchNorm the loss varies {}× as much along the gradient ({} against {}), the gradient changes {}× as much ({} against {}) and the effective β-smoothness is {}× ({} against {}) — {verdict}; held-out accuracy {} against {}.",
            plain.task.name(),
            fmt(l),
            fmt(bn.loss_range[1]),
            fmt(plain.loss_range[1]),
            fmt(g),
            fmt(bn.grad_change[1]),
            fmt(plain.grad_change[1]),
            fmt(b),
            fmt(bn.beta[1]),
            fmt(plain.beta[1]),
            bn.held_out_accuracy.map_or("—".into(), |a| format!("{:.1}%", 100.0 * a)),
            plain.held_out_accuracy.map_or("—".into(), |a| format!("{:.1}%", 100.0 * a)),
        ));
    }
    out
}

//! `gradlab reproduce`: every study of the report in one run (this file: plan and run, each
//! study's outputs in its directory), and the report itself (`document`: every number and
//! every finding in it computed from this run's results, none pasted in).

pub mod budget;
pub mod document;

pub use document::{Results, document};

use crate::atomic::prepare_out_dir;
use crate::data::{self, DatasetKind, Source};
use crate::error::Result;
use crate::experiments::cnn::{self, CnnSetting};
use crate::experiments::fc_random::{self, FcSetting, FcStudy};
use crate::experiments::landscape::{self, LandscapeConfig};
use crate::experiments::presets::CnnTask;
use crate::experiments::{explosion, leaky_vs_relu};
use crate::optim::OptimConfig;
use crate::record::Run;
use crate::report::{self, figures::render};
use crate::training::TrainOptions;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What a reproduction runs: seeds per setting, caps, data, where to.
pub struct Plan<'a> {
    /// Seeds of Table 1 (Task 2), and of the sections a budget scales — the CNNs (Tasks 3–4,
    /// explosion, label noise) and the per-sample measures: the same, or fewer within a budget.
    pub seeds: usize,
    pub scaled_seeds: usize,
    /// What the time budget decided, if one chose the seeds.
    pub budget: Option<budget::Budget>,
    pub quick: bool,
    pub source: Source,
    /// Seed of the label-noise coins.
    pub data_seed: u64,
    pub cnn_iters: usize,
    pub explosion_iters: usize,
    pub out: &'a Path,
    /// Write into a non-empty `out`.
    pub force: bool,
    pub started: Instant,
}

/// Steps of a reproduction, as the command line shows them (progress and Ctrl-C).
pub trait Steps {
    /// A new step begins.
    fn step(&self, what: &str);
    /// A training callback for the step `what`: `false` stops (interrupted).
    fn training<'a>(&'a self, what: &'a str, seeds: usize) -> Box<dyn FnMut(usize, usize) -> bool + 'a>;
    fn interrupted(&self) -> bool;
    /// Seconds per step, the last one ending now.
    fn seconds(&self) -> Vec<(String, f64)>;
}

/// Steps in a full run: Task 1, Table 1's five settings, three large-step runs, four CNN runs,
/// eight explosion runs (the baselines are reused), two label-noise runs, the per-sample
/// measures (random and digits: a run, its C-score ratios and a noisy run each; then the
/// pruning runs), Task 4, the report.
pub const STEPS: u64 = 1 + 5 + 3 + 4 + 8 + 2 + 2 * (1 + 9 + 1) + (1 + 2 * 6) + 1 + 1;

/// A `Runner` over reproduce's steps: each setting a step named `<label>: <name>`, trained
/// with the step's progress, stopping at an interruption.
fn run_steps(
    p: &dyn Steps,
    label: &str,
    names: &[String],
    seeds: usize,
    run: &mut crate::experiments::TrainCell<'_>,
) -> Result<(Vec<Run>, bool)> {
    let mut runs = vec![];
    for (k, name) in names.iter().enumerate() {
        let name = format!("{label}: {name}");
        p.step(&name);
        runs.push(run(k, &mut *p.training(&name, seeds))?);
        if p.interrupted() {
            return Ok((runs, false));
        }
    }
    Ok((runs, true))
}

/// Runs every study into `plan.out` and writes `report.html`, `report.md` and `results.json`;
/// `false` if interrupted (finished studies are written, the report is not).
pub fn run(plan: &Plan, p: &dyn Steps) -> Result<bool> {
    let (seeds, cnn_seeds, cnn_iters, explosion_iters, source) =
        (plan.seeds, plan.scaled_seeds, plan.cnn_iters, plan.explosion_iters, &plan.source);
    let load = |kind| -> Result<(data::Dataset, data::Dataset)> {
        Ok((data::load(kind, source)?, data::held_out(kind, source, data::HELD_OUT_SIZE)))
    };
    let (random, random_held) = load(DatasetKind::Random)?;
    let (line, line_held) = load(DatasetKind::Line)?;
    let (detection, detection_held) = load(DatasetKind::Detection)?;
    prepare_out_dir(plan.out, plan.force)?;
    let out = |sub: &str| -> Result<PathBuf> {
        let d = plan.out.join(sub);
        crate::atomic::ensure_dir(&d)?;
        Ok(d)
    };

    // Task 1
    p.step("Task 1: sigmoid landscape");
    let points = if plan.quick { 60 } else { 100 };
    let c1 = LandscapeConfig {
        act: crate::activations::Activation::Sigmoid,
        x: 1.0,
        y: 0.5,
        w_range: (-6.0, 6.0),
        b_range: (-6.0, 6.0),
        points,
    };
    let k1 = landscape::write_outputs(&out("task1-landscape")?, &c1, &landscape::compute(&c1)?)?;

    // Task 2
    let study = FcStudy {
        settings: FcSetting::table1(true),
        train: TrainOptions { sharpness_every: 10, ..TrainOptions::new(seeds) },
        reduction: crate::engine::Reduction::Mean,
    };
    let mut fc_runs = vec![];
    for &s in &study.settings {
        let name = format!("Task 2: {}", s.name());
        p.step(&name);
        fc_runs.push(fc_random::run_setting(&study, s, &random, Some(&random_held), &mut *p.training(&name, seeds))?);
        if p.interrupted() {
            return Ok(false);
        }
    }
    let fc_summaries = fc_random::write_outputs(&out("task2-fc")?, &study, &fc_runs, &random, true)?;
    // The edge of stability: Sigmoid+CE with larger steps, sharpness every iteration.
    let mut eos = vec![];
    for lr in [1.0, 4.0, 8.0] {
        let name = format!("Task 2: sigmoid+ce at lr {lr} (sharpness)");
        p.step(&name);
        let setting = FcSetting {
            act: crate::activations::Activation::Sigmoid,
            loss: crate::experiments::presets::LossKind::Ce,
            per_sample_bias: false,
        };
        let s = FcStudy {
            settings: vec![setting],
            train: TrainOptions {
                sharpness_every: 1,
                probe_every: 0,
                held_out_every: None,
                ..TrainOptions::new(seeds).with_sgd(lr, 0.1)
            },
            reduction: crate::engine::Reduction::Mean,
        };
        let run = fc_random::run_setting(&s, setting, &random, None, &mut *p.training(&name, seeds))?;
        eos.push(crate::experiments::curvature::sharpness_row(lr, &run));
        if p.interrupted() {
            return Ok(false);
        }
    }
    // The landscape around Table 1's solutions: seeds 0 and 1 of each setting again (as in the
    // study; milliseconds), the plane through seed 0's end and the line to seed 1's.
    let mut planes = vec![];
    {
        use crate::experiments::net_landscape as nl;
        use crate::report::surface::{GridPanel, GridPanels};
        let dir = out("task2-fc/landscape")?;
        let samples = random.samples();
        let mut panels = vec![];
        for &s in study.settings.iter().filter(|s| !s.per_sample_bias) {
            let cfg = crate::experiments::presets::Fc73::new(s.act, s.loss);
            let build = |e: usize| cfg.build::<f32>(e, random.n);
            let mut net = build(2)?;
            let opts = TrainOptions { probe_every: 0, held_out_every: None, ..TrainOptions::new(2) };
            crate::training::train(&s.name(), &mut net, &samples, None, &opts, &mut |_, _| true)?;
            let e_points: Vec<nl::Point> = (0..2).map(|m| nl::parameters_of(&net, m)).collect();
            let points = 61;
            let (_, loss, _) = nl::plane(&build, &samples, &e_points[0], 0, false, points, 1.0)?;
            let ax = nl::axis(points, 1.0);
            let logl: Vec<f64> = loss.iter().map(|l| l.max(1e-12).log10()).collect();
            panels.push(
                GridPanel::new(&s.name(), &format!("{}: log10 loss", s.name()), &ax, &ax, &logl)
                    .with_axes("α (d₁)", "β (d₂)"),
            );
            let ts: Vec<f64> = (0..=40).map(|i| i as f64 / 40.0).collect();
            let diff: nl::Point = e_points[0]
                .iter()
                .zip(&e_points[1])
                .map(|(a, b)| a.iter().zip(b).map(|(x, y)| y - x).collect())
                .collect();
            let (line, _) = nl::evaluate_points(
                &build,
                &samples,
                &e_points[0],
                &[&diff],
                &ts.iter().map(|&t| vec![t]).collect::<Vec<_>>(),
                64,
            )?;
            let centre = (points / 2) * points + points / 2;
            planes.push(crate::experiments::net_landscape::SettingPlane {
                setting: s.name(),
                loss_at_solution: loss[centre],
                min_on_plane: loss.iter().copied().fold(f64::INFINITY, f64::min),
                share_within_2x: loss.iter().filter(|&&l| l <= 2.0 * loss[centre]).count() as f64 / loss.len() as f64,
                barrier_to_seed_1: nl::barrier(&ts, &line),
            });
        }
        render(
            &dir.join("planes"),
            &GridPanels {
                title: "Table 1: the plane through seed 0's solution (filter-normalised directions)".into(),
                panels: panels.clone(),
                surface: false,
            },
        )?;
        if let Some(p) = panels.iter().find(|p| p.name == "sigmoid+l2") {
            render(
                &dir.join("sigmoid-l2-surface"),
                &GridPanels { title: "Sigmoid+L2 around seed 0's end".into(), panels: vec![p.clone()], surface: true },
            )?;
        }
    }
    let eos_table1: Vec<crate::experiments::curvature::SharpnessRow> = fc_runs
        .iter()
        .filter(|r| !r.setting.contains("per-sample"))
        .map(|r| crate::experiments::curvature::SharpnessRow {
            setting: r.setting.clone(),
            ..crate::experiments::curvature::sharpness_row(study.train.optim.lr, r)
        })
        .collect();

    // Tasks 3 and 4: the CNNs with ReLU and leaky ReLU; then the exploding-gradient runs, whose
    // baseline is Task 3's ReLU run.
    let run_plan = |plan: Vec<(CnnTask, Vec<CnnSetting>)>,
                    cap: usize,
                    dir: &str,
                    label: &str,
                    reuse: &dyn Fn(CnnTask) -> Vec<(CnnSetting, Run)>|
     -> Result<(Vec<cnn::CnnRuns>, bool)> {
        let opts_for = |task: CnnTask| TrainOptions {
            optim: OptimConfig::sgd(task.lr()),
            max_iters: cap,
            ..TrainOptions::new(cnn_seeds)
        };
        let datasets: Vec<_> = plan
            .iter()
            .map(|(task, _)| match task {
                CnnTask::Line => (line.clone(), line_held.clone()),
                CnnTask::Detect => (detection.clone(), detection_held.clone()),
            })
            .collect();
        let sub = out(dir)?;
        let (all, complete) = cnn::run_plan(plan, &datasets, &opts_for, reuse, &sub, &mut |names, _, seeds, run| {
            run_steps(p, label, names, seeds, run)
        })?;
        for c in &all {
            let relu_only: Vec<&Run> = c.runs.iter().take(1).collect();
            let title = format!("{} with ReLU", c.task.name());
            render(&sub.join(c.task.name()).join("curves-relu"), &cnn::curve_panels(c.task, &title, &relu_only))?;
        }
        Ok((all, complete))
    };
    let (cnn_runs, complete) = run_plan(leaky_vs_relu::plan(), cnn_iters, "task3-4-cnn", "Tasks 3–4", &|_| vec![])?;
    if !complete {
        return Ok(false);
    }
    let comparisons =
        cnn_runs.iter().map(|c| leaky_vs_relu::compare(c.task, &c.runs[0], &c.runs[1], c.opts.max_iters)).collect();
    let baseline = |task: CnnTask| -> Vec<(CnnSetting, Run)> {
        cnn_runs.iter().filter(|c| c.task == task).map(|c| (c.settings[0], c.runs[0].clone())).collect()
    };
    let (explosion_runs, complete) =
        run_plan(explosion::plan(), explosion_iters, "task3-explosion", "Task 3 explosion", &baseline)?;
    if !complete {
        return Ok(false);
    }

    // Label noise on line: does the net memorise coin-flip labels? (0%: Task 3's ReLU run.)
    use crate::experiments::memorisation as mem;
    let noise_opts = TrainOptions {
        optim: OptimConfig::sgd(CnnTask::Line.lr()),
        max_iters: cnn_iters,
        ..TrainOptions::new(cnn_seeds)
    };
    let mut noise_rows = vec![];
    let mut noise_runs = vec![];
    if let Some(c) = cnn_runs.iter().find(|c| c.task == CnnTask::Line) {
        let mut base = c.runs[0].clone();
        base.setting = "noise0%".into();
        noise_rows.push(mem::noise_row("line", 0.0, &base));
        noise_runs.push(base);
    }
    for share in [0.5, 1.0] {
        let name = format!("label noise: line, {:.0}% of the labels flipped by coins", 100.0 * share);
        p.step(&name);
        let noisy = mem::with_label_noise(&line, share, plan.data_seed);
        let mut run = mem::train_report_net(
            DatasetKind::Line,
            &noisy,
            Some(&line_held),
            &noise_opts,
            &mut *p.training(&name, cnn_seeds),
        )?;
        run.setting = format!("noise{:.0}%", 100.0 * share);
        noise_rows.push(mem::noise_row("line", share, &run));
        noise_runs.push(run);
        if p.interrupted() {
            return Ok(false);
        }
    }
    {
        let dir = out("task3-noise")?;
        report::write_run_csvs(&dir, &noise_runs)?;
        let refs: Vec<&Run> = noise_runs.iter().collect();
        render(
            &dir.join("curves"),
            &crate::report::figures::CurvePanels::loss_and_accuracy(
                "line with label noise: median over seeds with IQR band",
                &refs,
            ),
        )?;
    }

    // Per-sample measures side by side (issue 22's study): which samples are hard, forgotten,
    // memorised, by each measure of the field, on the same seeds.
    let samples_study = {
        use crate::experiments::samples_study as ss;
        let mut cfg = ss::SamplesStudy::new(plan.scaled_seeds);
        if plan.quick {
            cfg.tasks = vec!["random".into(), "digits".into()];
            cfg.ratios = vec![0.5];
            // Past every task's EL2N/GraNd iteration (at most 44), short of convergence.
            cfg.max_iters = Some(150);
            cfg.prune = vec![0.0, 0.3];
        } else {
            // The CNN tasks' C-scores and noisy runs, and the finer pruning grid, would double
            // reproduce's time; `gradlab study samples` runs them.
            cfg.tasks = vec!["random".into(), "digits".into()];
            cfg.prune = vec![0.0, 0.2, 0.4];
        }
        let dir = out("samples")?;
        let r =
            ss::run(&cfg, &dir, &mut |names, _, seeds, run| run_steps(p, "per-sample measures", names, seeds, run))?;
        if !r.complete {
            return Ok(false);
        }
        ss::write_outputs(&dir, &r)?;
        r
    };

    // Task 4 landscape
    p.step("Task 4: leaky-ReLU landscape");
    let c4 = LandscapeConfig {
        act: crate::activations::Activation::LeakyRelu { slope: 0.1 },
        w_range: (-1.0, 1.0),
        b_range: (-1.0, 1.0),
        ..c1.clone()
    };
    let k4 = landscape::write_outputs(&out("task4-landscape")?, &c4, &landscape::compute(&c4)?)?;

    p.step("writing the report");
    use crate::experiments::memorisation::learning_facts;
    let mut learning = vec![];
    if let Some(run) = fc_runs.iter().find(|r| r.setting == "relu+ce") {
        learning.push(learning_facts("random", run, &random));
    }
    for c in &cnn_runs {
        if let Some(run) = c.runs.iter().find(|r| r.setting == "relu") {
            let (name, d) = if c.task == CnnTask::Line { ("line", &line) } else { ("detect", &detection) };
            learning.push(learning_facts(name, run, d));
        }
    }
    let results = Results {
        seeds,
        scaled_seeds: cnn_seeds,
        budget: plan.budget.clone(),
        quick: plan.quick,
        data: source.describe(),
        wall_seconds: plan.started.elapsed().as_secs_f64(),
        step_seconds: p.seconds(),
        task1: (c1, k1),
        task2: (study, fc_summaries, random.source.clone()),
        cnn: cnn_runs,
        comparisons,
        explosion: explosion_runs,
        task4: (c4, k4),
        learning,
        noise: noise_rows,
        sharpness: (eos_table1, eos),
        planes,
        samples: samples_study,
    };
    let (doc, json) = document(&results);
    report::write_json(&plan.out.join("results.json"), &json)?;
    crate::atomic::write_atomic(&plan.out.join("report.md"), doc.markdown().as_bytes())?;
    crate::atomic::write_atomic(&plan.out.join("report.html"), doc.html(plan.out)?.as_bytes())?;
    Ok(true)
}

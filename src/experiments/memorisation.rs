//! Easy patterns first, then memorisation? The report (Task 3) says, after Arpit et al. 2017,
//! that a net "learns the easiest and most generalizable patterns" first and then memorises the
//! rest. Measured here:
//! - the learning order: per seed and training sample, the first iteration from which it stays
//!   correct (`Run::learned_at`); per sample the median over seeds; how much the seeds agree on
//!   the order (Kendall's W); its rank correlation (Spearman) with a measurable ease — the
//!   shape's size for `detection`, the gap between blob and bar for `line`, the teacher's margin
//!   for built-in `random`;
//! - label noise (`gradlab study memorisation`): a share of the training labels replaced by coin
//!   flips, and what that does to iterations-to-100% and held-out accuracy;
//! - data draw against initialisation (`gradlab study data-vs-init`): D data seeds × S initial
//!   seeds, the share of the variance of log(iterations) each explains, with bootstrap intervals.

use crate::data::{Dataset, DatasetKind};
use crate::init::SeededRng;
use crate::record::Run;
use crate::report::figures::{Figure, render};
use crate::stats::{censored_quantile, kendall_w, spearman, two_way_shares};
use plotters::coord::Shift;
use plotters::prelude::*;
use serde::Serialize;
use std::path::Path;

/// Per sample, a measure of how easy it should be (larger = easier), with its name.
pub fn ease(d: &Dataset) -> Option<(&'static str, Vec<f64>)> {
    match d.kind {
        DatasetKind::Detection => d.widths.as_ref().map(|w| ("shape size w", w.iter().map(|&v| v as f64).collect())),
        DatasetKind::Line => {
            Some(("gap between blob and bar (columns)", d.images.chunks_exact(256).map(line_gap).collect()))
        }
        DatasetKind::Random => d.margin.as_ref().map(|m| ("teacher's margin", m.iter().map(|&v| v as f64).collect())),
    }
}

/// The empty columns between a `line` image's blob and its bar. Bar columns hold at least 8 lit
/// pixels (bars are 10–13 tall, blobs at most 7), and blob and bar share no column.
pub fn line_gap(img: &[f32]) -> f64 {
    let counts: Vec<usize> = (0..16).map(|x| (0..16).filter(|&y| img[y * 16 + x] > 0.5).count()).collect();
    let bar: Vec<usize> = (0..16).filter(|&x| counts[x] >= 8).collect();
    let blob: Vec<usize> = (0..16).filter(|&x| counts[x] > 0 && counts[x] < 8).collect();
    let (Some(&b0), Some(&b1)) = (bar.first(), bar.last()) else { return f64::NAN };
    let gap = blob
        .iter()
        .map(|&x| {
            if x < b0 {
                b0 - x - 1
            } else if x > b1 {
                x - b1 - 1
            } else {
                0
            }
        })
        .min()
        .unwrap_or(0);
    gap as f64
}

/// How one setting's seeds ordered the training samples.
#[derive(Clone, Debug, Serialize)]
pub struct SampleOrder {
    pub setting: String,
    pub seeds: usize,
    /// Per sample: median over seeds of the iteration from which it stayed correct (a seed that
    /// never learned it counts as beyond every iteration; `null` when most did not).
    pub median_learned: Vec<Option<f64>>,
    /// Samples every seed had learned by the end.
    pub learned_by_every_seed: usize,
    /// Kendall's W of the seeds' orders (1: every seed learns the samples in the same order).
    pub kendall_w: f64,
    pub ease: Option<String>,
    /// Spearman's ρ between ease and median learned iteration (negative: easy samples first), p.
    pub spearman_rho: Option<f64>,
    pub spearman_p: Option<f64>,
}

pub fn sample_order(run: &Run, data: &Dataset) -> Option<SampleOrder> {
    order_of(run, ease(data))
}

/// How `run`'s seeds ordered its training samples, related to `ease` (a name and a value per
/// sample) where one is known; `None` when the run did not record the learning order.
pub fn order_of(run: &Run, ease: Option<(&'static str, Vec<f64>)>) -> Option<SampleOrder> {
    let learned = run.learned_at.as_ref()?;
    let n = learned.first()?.len();
    let as_f = |v: Option<u32>| v.map_or(f64::INFINITY, f64::from);
    let per_sample: Vec<Vec<Option<f64>>> =
        (0..n).map(|s| learned.iter().map(|seed| seed[s].map(f64::from)).collect()).collect();
    let median: Vec<Option<f64>> = per_sample.iter().map(|v| censored_quantile(v, 0.5)).collect();
    let scores: Vec<Vec<f64>> = learned.iter().map(|seed| seed.iter().map(|&v| as_f(v)).collect()).collect();
    let e = ease;
    let (rho, p) = match &e {
        Some((_, ease)) if ease.len() == n && ease.iter().all(|x| x.is_finite()) => {
            let m: Vec<f64> = median.iter().map(|v| v.unwrap_or(f64::INFINITY)).collect();
            let (r, p) = spearman(ease, &m);
            (r.is_finite().then_some(r), p.is_finite().then_some(p))
        }
        _ => (None, None),
    };
    Some(SampleOrder {
        setting: run.setting.clone(),
        seeds: learned.len(),
        median_learned: median,
        learned_by_every_seed: (0..n).filter(|&s| learned.iter().all(|seed| seed[s].is_some())).count(),
        kendall_w: if learned.len() > 1 { kendall_w(&scores) } else { f64::NAN },
        ease: e.map(|(name, _)| name.to_string()),
        spearman_rho: rho,
        spearman_p: p,
    })
}

/// `samples.csv` (`setting,seed,sample,learned_at`; empty when not learned at the end),
/// `learning_order.json`, and per setting `learning-order-<setting>` (the samples as images,
/// first- to last-learned).
pub fn write_outputs(dir: &Path, runs: &[Run], data: &Dataset) -> crate::error::Result<Vec<SampleOrder>> {
    let orders = write_order_files(dir, runs, |run| sample_order(run, data))?;
    for o in &orders {
        let name = o.setting.replace(['/', ' '], "_");
        render(&dir.join(format!("learning-order-{name}")), &OrderFigure { order: o, data })?;
    }
    Ok(orders)
}

/// `samples.csv` (`setting,seed,sample,learned_at`) and `learning_order.json` for the runs
/// that recorded the learning order (`order` gives each its summary); nothing when none did.
/// Shared by the report's studies and `gradlab run`.
pub fn write_order_files(
    dir: &Path,
    runs: &[Run],
    order: impl Fn(&Run) -> Option<SampleOrder>,
) -> crate::error::Result<Vec<SampleOrder>> {
    use std::fmt::Write;
    let mut csv = String::from("setting,seed,sample,learned_at\n");
    let mut orders = vec![];
    for run in runs {
        let Some(learned) = &run.learned_at else { continue };
        for (seed, row) in run.seeds.iter().zip(learned) {
            for (s, v) in row.iter().enumerate() {
                let _ = writeln!(csv, "{},{seed},{s},{}", run.setting, v.map(|x| x.to_string()).unwrap_or_default());
            }
        }
        if let Some(o) = order(run) {
            orders.push(o);
        }
    }
    if !orders.is_empty() {
        crate::atomic::write_atomic(&dir.join("samples.csv"), csv.as_bytes())?;
        crate::report::write_json(&dir.join("learning_order.json"), &orders)?;
    }
    Ok(orders)
}

/// The training samples drawn as images, ordered by median learned iteration.
struct OrderFigure<'a> {
    order: &'a SampleOrder,
    data: &'a Dataset,
}

impl Figure for OrderFigure<'_> {
    fn size(&self) -> (u32, u32) {
        let cols = 8u32;
        let rows = (self.data.n as u32).div_ceil(cols);
        (cols * 110, rows * 126 + 60)
    }
    fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, Shift>) -> std::result::Result<(), String> {
        let e2s = |e: DrawingAreaErrorKind<DB::ErrorType>| format!("{e:?}");
        root.fill(&WHITE).map_err(e2s)?;
        let o = self.order;
        let title = format!(
            "{}: samples from first- to last-learned (median over {} seeds; Kendall's W {:.2}{})",
            o.setting,
            o.seeds,
            o.kendall_w,
            match (&o.ease, o.spearman_rho) {
                (Some(e), Some(r)) => format!("; ρ with {e} {r:.2}"),
                _ => String::new(),
            }
        );
        let root = root.titled(&title, ("sans-serif", 16)).map_err(e2s)?;
        let mut idx: Vec<usize> = (0..self.data.n).collect();
        idx.sort_by(|&a, &b| {
            let k = |s: usize| o.median_learned[s].unwrap_or(f64::INFINITY);
            k(a).total_cmp(&k(b))
        });
        let cols = 8;
        let rows = self.data.n.div_ceil(cols);
        let side = self.data.side;
        let p = self.data.pixels();
        for (cell, &s) in root.split_evenly((rows, cols)).iter().zip(&idx) {
            let label = format!(
                "#{s} y={} it {}",
                self.data.labels[s],
                o.median_learned[s].map_or("—".into(), |v| format!("{v:.0}"))
            );
            let cell = cell.titled(&label, ("sans-serif", 11)).map_err(e2s)?;
            let (w, h) = cell.dim_in_pixel();
            let px = (w.min(h) as usize / side).max(1) as i32;
            let x0 = (w as i32 - px * side as i32) / 2;
            let img = &self.data.images[s * p..(s + 1) * p];
            for y in 0..side {
                for x in 0..side {
                    let v = img[y * side + x].clamp(0.0, 1.0) as f64;
                    let c =
                        RGBColor((255.0 * (1.0 - v)) as u8, (255.0 * (1.0 - v)) as u8, (255.0 * (1.0 - 0.6 * v)) as u8);
                    let (a, b) = ((x0 + x as i32 * px, y as i32 * px), (x0 + (x as i32 + 1) * px, (y as i32 + 1) * px));
                    cell.draw(&Rectangle::new([a, b], c.filled())).map_err(e2s)?;
                }
            }
            let frame = [(x0, 0), (x0 + px * side as i32, px * side as i32)];
            cell.draw(&Rectangle::new(frame, BLACK.mix(0.3))).map_err(e2s)?;
        }
        root.present().map_err(e2s)
    }
}

/// Replaces `fraction` of the labels (a seeded choice) by coin flips; widths are kept.
pub fn with_label_noise(d: &Dataset, fraction: f64, seed: u64) -> Dataset {
    let mut out = d.clone();
    let mut rng = SeededRng::new(seed ^ 0x4E_4F49_5345);
    let mut idx: Vec<usize> = (0..d.n).collect();
    rng.shuffle(&mut idx);
    let k = (fraction * d.n as f64).round() as usize;
    for &i in &idx[..k] {
        out.labels[i] = if rng.bernoulli(0.5) { 1.0 } else { 0.0 };
    }
    out.margin = None;
    out.source = format!("{} with {:.0}% of the labels replaced by coin flips", d.source, 100.0 * fraction);
    out
}

/// A regulariser set against memorisation (Arpit et al. 2017, Sec. 5), applied to the report's
/// net for a task (its preset).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(tag = "arm", rename_all = "snake_case")]
pub enum Arm {
    None,
    /// `rate` dropout after every hidden layer with an activation.
    Dropout {
        rate: f64,
    },
    /// PyTorch's SGD `weight_decay` (`g + λ·θ`, every parameter).
    WeightDecay {
        lambda: f64,
    },
    /// Gaussian noise of std `std` added to the input while training.
    InputNoise {
        std: f64,
    },
}

impl Arm {
    pub const NAMES: [&'static str; 4] = ["none", "dropout", "weight_decay", "input_noise"];

    pub fn name(&self) -> &'static str {
        match self {
            Arm::None => "none",
            Arm::Dropout { .. } => "dropout",
            Arm::WeightDecay { .. } => "weight_decay",
            Arm::InputNoise { .. } => "input_noise",
        }
    }

    /// The arm and its strength, for tables: `dropout 0.5`.
    pub fn label(&self) -> String {
        match self {
            Arm::None => "none".into(),
            Arm::Dropout { rate } => format!("dropout {rate}"),
            Arm::WeightDecay { lambda } => format!("weight decay {lambda}"),
            Arm::InputNoise { std } => format!("input noise σ {std}"),
        }
    }

    /// `spec` and `opts` with this regulariser.
    pub fn apply(
        &self,
        spec: &crate::models::spec::NetworkSpec,
        opts: &crate::training::TrainOptions,
    ) -> (crate::models::spec::NetworkSpec, crate::training::TrainOptions) {
        use crate::models::spec::Layer;
        let (mut spec, mut opts) = (spec.clone(), opts.clone());
        match *self {
            Arm::None => {}
            Arm::Dropout { rate } => {
                let last = spec.layers.len() - 1;
                let mut layers = vec![];
                for (i, l) in spec.layers.iter().enumerate() {
                    layers.push(l.clone());
                    let hidden = matches!(l, Layer::Dense { act: Some(_), .. } | Layer::Conv2d { act: Some(_), .. });
                    if hidden && (i != last || spec.heads.is_some()) {
                        layers.push(Layer::Dropout { rate, name: None });
                    }
                }
                // Residual `from` indices would shift; the report's nets have none.
                spec.layers = layers;
            }
            Arm::WeightDecay { lambda } => opts.optim.weight_decay = lambda,
            Arm::InputNoise { std } => spec.layers.insert(0, Layer::GaussianNoise { std, name: None }),
        }
        (spec, opts)
    }
}

/// The preset of the report's net for a task.
pub fn preset_of(kind: DatasetKind) -> &'static str {
    match kind {
        DatasetKind::Random => "fc73",
        DatasetKind::Line => "line",
        DatasetKind::Detection => "detect",
    }
}

/// One run of the label-noise study: the report's row, the arm, and how much of the corrupted
/// and of the clean labels the net fits (evaluation mode), medians over seeds.
#[derive(Clone, Debug, Serialize)]
pub struct ArmRow {
    #[serde(flatten)]
    pub row: NoiseRow,
    #[serde(flatten)]
    pub arm: Arm,
    /// Labels actually changed by the coin flips.
    pub flipped: usize,
    /// At each seed's last measurement.
    pub fit_clean: Option<f64>,
    pub fit_flipped: Option<f64>,
    /// The first measured iteration from which 90% of the clean labels stay fitted, and 90% of
    /// the corrupted ones (median over seeds; a seed that never got there counts as beyond the cap).
    pub iterations_to_clean_90: Option<f64>,
    pub iterations_to_flipped_90: Option<f64>,
}

/// Per seed, the first measured iteration from which `column` stays at or above `level` at
/// every later measurement (`None`: never; an early chance agreement that is lost again does
/// not count, as for a sample's learned iteration).
fn first_reaching(run: &Run, column: &str, level: f32) -> Vec<Option<f64>> {
    (0..run.seeds.len())
        .map(|s| {
            let c = run.column(s, column);
            let measured: Vec<(usize, f32)> = c.iter().copied().enumerate().filter(|(_, v)| v.is_finite()).collect();
            let below = measured.iter().rposition(|(_, v)| *v < level);
            let from = match below {
                None => measured.first(),
                Some(k) => measured.get(k + 1),
            };
            from.map(|&(i, _)| run.row_iterations(s)[i] as f64)
        })
        .collect()
}

pub fn arm_row(task: &'static str, noise: f64, arm: Arm, flipped: usize, run: &Run) -> ArmRow {
    let last = |col: &str| -> Option<f64> {
        let v: Vec<f64> = (0..run.seeds.len())
            .filter_map(|s| run.column(s, col).iter().rev().find(|x| x.is_finite()).map(|&x| x as f64))
            .collect();
        (!v.is_empty()).then(|| crate::stats::quantile(&v, 0.5))
    };
    let censored = |v: Vec<Option<f64>>| censored_quantile(&v, 0.5);
    ArmRow {
        row: noise_row(task, noise, run),
        arm,
        flipped,
        fit_clean: last("fit_clean"),
        fit_flipped: if flipped > 0 { last("fit_flipped") } else { None },
        iterations_to_clean_90: censored(first_reaching(run, "fit_clean", 0.9)),
        iterations_to_flipped_90: if flipped > 0 { censored(first_reaching(run, "fit_flipped", 0.9)) } else { None },
    }
}

/// The label-noise study: for each task, the report's net (its preset) on the built-in draw
/// `data_seed` with each share of labels replaced by coin flips, under each regulariser arm;
/// writes `<out>/<task>/` (metrics, curves, the fit of clean and corrupted labels),
/// `summary.json` and `noise.md`. Returns the rows, the markdown and whether it ran to the end.
pub fn noise_study(
    kinds: &[DatasetKind],
    noise: &[f64],
    arms: &[Arm],
    data_seed: u64,
    opts: &crate::training::TrainOptions,
    out: &Path,
    runner: &mut crate::experiments::Runner,
) -> crate::error::Result<(Vec<ArmRow>, String, bool)> {
    use crate::data::{self, Source};
    use crate::training::TrainOptions;
    let mut rows = vec![];
    let mut complete = true;
    for &kind in kinds {
        let source = Source::Builtin { seed: data_seed };
        let clean = data::load(kind, &source)?;
        let held = data::held_out(kind, &source, data::HELD_OUT_SIZE).samples();
        let lab = crate::experiments::presets::lab(preset_of(kind))?;
        let cell = &lab.cells[0];
        // Every run goes to the cap (memorisation goes on after 100% is first reached, as in
        // Arpit et al.'s fixed budgets); the first iteration at 100% is read from the rows.
        let base = TrainOptions {
            seeds: opts.seeds,
            first_seed: opts.first_seed,
            max_iters: opts.max_iters,
            held_out_every: opts.held_out_every,
            stop: crate::training::StopRule::None,
            ..cell.opts.clone()
        };
        let mut names = vec![];
        let mut jobs = vec![];
        for &p in noise {
            let noisy = with_label_noise(&clean, p, data_seed);
            let flipped: Vec<bool> = clean.labels.iter().zip(&noisy.labels).map(|(a, b)| a != b).collect();
            let flipped = std::sync::Arc::new(flipped);
            let samples = noisy.samples();
            for &arm in arms {
                names.push(format!("{} noise {:.0}% {}", kind.name(), 100.0 * p, arm.name()));
                let (spec, o) = arm.apply(&cell.file.network, &base);
                jobs.push((p, arm, spec, TrainOptions { flipped: Some(flipped.clone()), ..o }, samples.clone()));
            }
        }
        let (mut runs, done) = runner(&names, opts.max_iters, opts.seeds, &mut |k, progress| {
            let (_, _, spec, o, samples) = &jobs[k];
            let build = |e: usize| crate::models::spec::build::<f32>(spec, samples, e, o.batch.unwrap_or(samples.n));
            crate::training::train_parallel(&names[k], &build, samples, Some(&held), o, progress)
        })?;
        for (run, (p, arm, _, o, _)) in runs.iter_mut().zip(&jobs) {
            run.setting = format!("noise{:.0}% {}", 100.0 * p, arm.name());
            for s in 0..run.seeds.len() {
                let first = run.column(s, "accuracy").iter().position(|&a| a >= 1.0);
                run.iterations[s] = first.map(|i| run.row_iterations(s)[i] as usize);
            }
            let flipped = o.flipped.as_ref().map_or(0, |f| f.iter().filter(|&&x| x).count());
            rows.push(arm_row(kind.name(), *p, *arm, flipped, run));
        }
        let dir = out.join(kind.name());
        crate::atomic::ensure_dir(&dir)?;
        crate::report::write_run_csvs(&dir, &runs)?;
        let refs: Vec<&crate::record::Run> = runs.iter().collect();
        crate::report::figures::render(
            &dir.join("curves"),
            &crate::report::figures::CurvePanels::loss_and_accuracy(
                &format!("{}: label noise × regulariser, median over seeds with IQR band", kind.name()),
                &refs,
            ),
        )?;
        fit_figure(&dir.join("fit"), kind.name(), noise, arms, &runs)?;
        if !done {
            complete = false;
            break;
        }
    }
    #[derive(serde::Serialize)]
    struct Summary<'a> {
        study: &'static str,
        complete: bool,
        config: &'a TrainOptions,
        rows: &'a [ArmRow],
        claims: Vec<String>,
    }
    let claims = arm_sentences(&rows, opts.max_iters);
    crate::report::write_json(
        &out.join("summary.json"),
        &Summary { study: "memorisation", complete, config: opts, rows: &rows, claims: claims.clone() },
    )?;
    let mut md = noise_markdown(&rows, opts.max_iters);
    if !claims.is_empty() {
        md.push_str("\n## Regularisers against memorisation (Arpit et al. 2017, Sec. 5)\n\n");
        for c in &claims {
            md.push_str(&format!("- {c}\n"));
        }
    }
    crate::atomic::write_atomic(&out.join("noise.md"), md.as_bytes())?;
    Ok((rows, md, complete))
}

/// Arpit et al.'s Fig. 8 for one task: per noise level with corrupted labels, the fit of the
/// clean labels (left) and of the corrupted ones (right) over iterations, one line per arm.
fn fit_figure(path: &Path, task: &str, noise: &[f64], arms: &[Arm], runs: &[Run]) -> crate::error::Result<()> {
    use crate::report::figures::{CurvePanels, Panel};
    let mut panels = vec![];
    for (i, &p) in noise.iter().enumerate().filter(|(_, p)| **p > 0.0) {
        let level: Vec<Run> = runs[i * arms.len()..(i + 1) * arms.len()]
            .iter()
            .zip(arms)
            .map(|(r, a)| Run { setting: a.label(), ..r.clone() })
            .collect();
        let refs: Vec<&Run> = level.iter().collect();
        for (col, what) in [("fit_clean", "clean labels fitted"), ("fit_flipped", "corrupted labels fitted")] {
            let mut panel =
                Panel::of_runs(&refs, col, &format!("{task}, {:.0}% noise: {what}", 100.0 * p), false, (0.25, 0.75));
            panel.y_range = Some((0.0, 1.02));
            panel.y_label = "share (median, IQR)".into();
            panels.push(panel);
        }
    }
    if panels.is_empty() {
        return Ok(());
    }
    render(
        path,
        &CurvePanels {
            title: format!("{task}: what the net fits, clean against corrupted labels (evaluation mode)"),
            panels,
            columns: 2,
        },
    )
}

/// Computed sentences on Arpit et al.'s claim: per task and noise level with corrupted labels,
/// how much each regulariser lowers (or delays) the fit of the corrupted labels against that of
/// the clean ones, and what it does to held-out accuracy.
pub fn arm_sentences(rows: &[ArmRow], cap: usize) -> Vec<String> {
    let pct = |v: Option<f64>| v.map_or("—".to_string(), |x| format!("{:.0}%", 100.0 * x));
    let mut out = vec![];
    for base in rows.iter().filter(|r| r.arm == Arm::None && r.flipped > 0 && r.row.noise < 1.0) {
        let others: Vec<&ArmRow> = rows
            .iter()
            .filter(|r| r.row.task == base.row.task && r.row.noise == base.row.noise && r.arm != Arm::None)
            .collect();
        if others.is_empty() {
            continue;
        }
        let (Some(f0), Some(c0)) = (base.fit_flipped, base.fit_clean) else { continue };
        let mut s = format!(
            "{}, {:.0}% of the labels coin-flipped ({} changed): without a regulariser the net ends fitting {} of the corrupted labels and {} of the clean ones (held-out {})",
            base.row.task,
            100.0 * base.row.noise,
            base.flipped,
            pct(Some(f0)),
            pct(Some(c0)),
            pct(base.row.median_held_out_accuracy)
        );
        let (mut holds, mut fails) = (vec![], vec![]);
        // Times to 90%, a seed's "never" counted as twice the cap (so a ratio stays finite).
        let cap = 2.0 * cap as f64;
        let t = |v: Option<f64>| v.unwrap_or(cap);
        let it = |v: Option<f64>| v.map_or(format!("> {}", cap / 2.0), |x| format!("{x:.0}"));
        s.push_str(&format!(
            "; it fits 90% of the clean labels by iteration {} and of the corrupted ones by {}",
            it(base.iterations_to_clean_90),
            it(base.iterations_to_flipped_90)
        ));
        for r in &others {
            let (Some(f), Some(c)) = (r.fit_flipped, r.fit_clean) else { continue };
            s.push_str(&format!(
                "; {}: {} and {} (held-out {}; 90% by {} and {})",
                r.arm.label(),
                pct(Some(f)),
                pct(Some(c)),
                pct(r.row.median_held_out_accuracy),
                it(r.iterations_to_clean_90),
                it(r.iterations_to_flipped_90)
            ));
            // The claim for this arm: it costs the corrupted labels clearly more than the clean
            // ones, in fit at the end (at least 5 points more) or in time (the corrupted labels'
            // 90% delayed by a factor 1.5 more than the clean labels').
            let fit_gap = (f0 - f) > (c0 - c) + 0.05;
            let slow_flip = t(r.iterations_to_flipped_90) / t(base.iterations_to_flipped_90);
            let slow_clean = t(r.iterations_to_clean_90) / t(base.iterations_to_clean_90);
            if fit_gap || slow_flip > 1.5 * slow_clean {
                holds.push(r.arm.name());
            } else {
                fails.push(r.arm.name());
            }
        }
        s.push_str(". ");
        s.push_str(&match (holds.is_empty(), fails.is_empty()) {
            (false, true) => format!(
                "Every regulariser holds memorisation back much more than learning here ({}).",
                holds.join(", ")
            ),
            (true, false) => format!(
                "No regulariser here holds the corrupted labels back clearly more than the clean ones ({}).",
                fails.join(", ")
            ),
            _ => format!(
                "Memorisation is held back much more than learning by {}, not by {}.",
                holds.join(", "),
                fails.join(", ")
            ),
        });
        out.push(s);
    }
    out
}

/// The data-draw against initialisation study: `n_draws` built-in draws × `opts.seeds` seeds
/// per task, and where the course `files` fall; writes `summary.json` and returns the markdown
/// table and whether it ran to the end.
pub fn data_vs_init_study(
    kinds: &[DatasetKind],
    n_draws: usize,
    files: &[Option<Dataset>],
    opts: &crate::training::TrainOptions,
    out: &Path,
    runner: &mut crate::experiments::Runner,
) -> crate::error::Result<(String, bool)> {
    use crate::data;
    use crate::training::TrainOptions;
    #[derive(serde::Serialize)]
    struct TaskResult {
        task: &'static str,
        decomposition: Decomposition,
        /// Per draw: every seed's iterations (`null`: not converged).
        iterations: Vec<Vec<Option<usize>>>,
        draw_medians: Vec<Option<f64>>,
        /// The course file's median and the share of draws whose median is below it.
        course_file_median: Option<f64>,
        course_file_percentile: Option<f64>,
    }
    let mut results = vec![];
    let mut md = String::from("# Data draw against initialisation

Shares of the variance of log(iterations to 100%) (a seed that never converged counts at the cap), with 95% bootstrap intervals over draws and seeds.

| task | draws × seeds | data draw | initial weights | rest (interaction and noise) | course file's median, percentile among draws |
|---|---:|---:|---:|---:|---:|
");
    let mut complete = true;
    for (kind, file) in kinds.iter().zip(files) {
        let names: Vec<String> = (0..n_draws).map(|d| format!("{} data seed {d}", kind.name())).collect();
        let draw_data: Vec<crate::data::Dataset> =
            (0..n_draws).map(|d| data::generate(*kind, data::ORIGINAL_SIZE, d as u64)).collect();
        let (runs, done) = runner(&names, opts.max_iters, opts.seeds, &mut |k, progress| {
            train_report_net(*kind, &draw_data[k], None, opts, progress)
        })?;
        if !done {
            complete = false;
            break;
        }
        let iterations: Vec<Vec<Option<usize>>> = runs.iter().map(|r| r.iterations.clone()).collect();
        let medians: Vec<Option<f64>> = iterations
            .iter()
            .map(|row| {
                crate::stats::censored_quantile(&row.iter().map(|v| v.map(|x| x as f64)).collect::<Vec<_>>(), 0.5)
            })
            .collect();
        let (course_median, percentile) = match file {
            Some(d) => {
                let r = train_report_net(*kind, d, None, opts, &mut |_, _| true)?;
                let m = crate::stats::censored_quantile(
                    &r.iterations.iter().map(|v| v.map(|x| x as f64)).collect::<Vec<_>>(),
                    0.5,
                );
                let below = m
                    .map(|m| medians.iter().filter(|x| x.is_some_and(|x| x < m)).count() as f64 / medians.len() as f64);
                (m, below)
            }
            None => (None, None),
        };
        let dec = decompose(&iterations, opts.max_iters, 1000);
        if !dec.data_share.is_finite() {
            md.push_str(&format!(
                "| {} | {} × {} | — | — | — (every seed counts at the cap: nothing varies) | — |\n",
                kind.name(),
                dec.draws,
                dec.seeds
            ));
        } else {
            md.push_str(&format!(
                "| {} | {} × {} | {:.0}% ({:.0}–{:.0}%) | {:.0}% ({:.0}–{:.0}%) | {:.0}% | {} |\n",
                kind.name(),
                dec.draws,
                dec.seeds,
                100.0 * dec.data_share,
                100.0 * dec.data_interval.0,
                100.0 * dec.data_interval.1,
                100.0 * dec.init_share,
                100.0 * dec.init_interval.0,
                100.0 * dec.init_interval.1,
                100.0 * dec.rest_share,
                match (course_median, percentile) {
                    (Some(m), Some(p)) => format!("{m:.0}, {:.0}%", 100.0 * p),
                    _ => "—".into(),
                }
            ));
        }
        results.push(TaskResult {
            task: kind.name(),
            decomposition: dec,
            iterations,
            draw_medians: medians,
            course_file_median: course_median,
            course_file_percentile: percentile,
        });
    }
    #[derive(serde::Serialize)]
    struct Summary<'a> {
        study: &'static str,
        complete: bool,
        config: &'a TrainOptions,
        tasks: &'a [TaskResult],
    }
    crate::report::write_json(
        &out.join("summary.json"),
        &Summary { study: "data-vs-init", complete, config: opts, tasks: &results },
    )?;
    crate::atomic::write_atomic(&out.join("decomposition.md"), md.as_bytes())?;
    Ok((md, complete))
}

/// The variance of log(iterations) over D data draws × S initial seeds split into the share of
/// the data draw, of the initialisation, and the rest; with 95% intervals from a bootstrap that
/// resamples draws and seeds. A seed that never converged counts at the cap.
#[derive(Clone, Debug, Serialize)]
pub struct Decomposition {
    pub data_share: f64,
    pub init_share: f64,
    pub rest_share: f64,
    pub data_interval: (f64, f64),
    pub init_interval: (f64, f64),
    pub draws: usize,
    pub seeds: usize,
    pub censored: usize,
}

pub fn decompose(iterations: &[Vec<Option<usize>>], cap: usize, bootstrap: usize) -> Decomposition {
    let y: Vec<Vec<f64>> =
        iterations.iter().map(|row| row.iter().map(|v| (v.unwrap_or(cap) as f64).ln()).collect()).collect();
    let (d, i, r) = two_way_shares(&y);
    let (rows, cols) = (y.len(), y[0].len());
    let mut rng = SeededRng::new(1234);
    let (mut ds, mut is) = (vec![], vec![]);
    for _ in 0..bootstrap {
        let rs: Vec<usize> = (0..rows).map(|_| rng.int(0, rows as i64 - 1) as usize).collect();
        let cs: Vec<usize> = (0..cols).map(|_| rng.int(0, cols as i64 - 1) as usize).collect();
        let sample: Vec<Vec<f64>> = rs.iter().map(|&a| cs.iter().map(|&b| y[a][b]).collect()).collect();
        let (bd, bi, _) = two_way_shares(&sample);
        ds.push(bd);
        is.push(bi);
    }
    // A resample in which nothing varies has no shares (NaN): left out of the interval.
    let interval = |v: &[f64]| {
        let v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            (f64::NAN, f64::NAN)
        } else {
            (crate::stats::quantile(&v, 0.025), crate::stats::quantile(&v, 0.975))
        }
    };
    Decomposition {
        data_share: d,
        init_share: i,
        rest_share: r,
        data_interval: interval(&ds),
        init_interval: interval(&is),
        draws: rows,
        seeds: cols,
        censored: iterations.iter().flatten().filter(|v| v.is_none()).count(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gap_of_a_drawn_line_image() {
        let mut img = vec![0f32; 256];
        for y in 2..14 {
            img[y * 16 + 9] = 1.0; // bar: column 9 (and 10)
            img[y * 16 + 10] = 1.0;
        }
        for y in 5..8 {
            for x in 3..6 {
                img[y * 16 + x] = 1.0; // blob: columns 3..5
            }
        }
        assert_eq!(line_gap(&img), 3.0, "columns 6, 7, 8 lie between");
    }

    #[test]
    fn label_noise_replaces_the_asked_share_with_coin_flips() {
        let d = crate::data::generators::line(64, 0);
        let same = with_label_noise(&d, 0.0, 1);
        assert_eq!(same.labels, d.labels);
        let all = with_label_noise(&d, 1.0, 1);
        let changed = all.labels.iter().zip(&d.labels).filter(|(a, b)| a != b).count();
        // Coin flips agree with the true label half the time: about 32 of 64 change.
        assert!((20..=44).contains(&changed), "{changed}");
        assert_eq!(all.images, d.images);
    }

    #[test]
    fn decomposition_finds_the_factor_that_matters() {
        // log-iterations that depend on the data draw only: its share is 1.
        let rows: Vec<Vec<Option<usize>>> = (0..4).map(|d| vec![Some(10 * (d + 1)); 5]).collect();
        let dec = decompose(&rows, 1000, 50);
        assert!((dec.data_share - 1.0).abs() < 1e-12 && dec.init_share.abs() < 1e-12);
        // … or on the initial seed only.
        let cols: Vec<Vec<Option<usize>>> = (0..4).map(|_| (1..=5).map(|s| Some(10 * s)).collect()).collect();
        let dec = decompose(&cols, 1000, 50);
        assert!((dec.init_share - 1.0).abs() < 1e-12 && dec.data_share.abs() < 1e-12);
        assert!(dec.init_interval.0 <= dec.init_share + 1e-12);
    }
}

/// The report's net for a dataset kind: fc73 ReLU+CE on `random`, the ReLU CNNs on `line` and
/// `detection`, trained with the report's settings (lr 0.01 for detect).
pub fn train_report_net(
    kind: DatasetKind,
    data: &Dataset,
    held_out: Option<&Dataset>,
    opts: &crate::training::TrainOptions,
    progress: &mut dyn FnMut(usize, usize) -> bool,
) -> crate::error::Result<Run> {
    use crate::experiments::presets::CnnTask;
    use crate::experiments::{cnn, fc_random};
    match kind {
        DatasetKind::Random => {
            let setting = fc_random::FcSetting {
                act: crate::activations::Activation::Relu,
                loss: crate::experiments::presets::LossKind::Ce,
                per_sample_bias: false,
            };
            let study = fc_random::FcStudy {
                settings: vec![setting],
                train: opts.clone(),
                reduction: crate::engine::Reduction::Mean,
            };
            fc_random::run_setting(&study, setting, data, held_out, progress)
        }
        DatasetKind::Line | DatasetKind::Detection => {
            let task = if kind == DatasetKind::Line { CnnTask::Line } else { CnnTask::Detect };
            let opts = crate::training::TrainOptions {
                optim: crate::optim::OptimConfig { lr: task.lr(), ..opts.optim },
                ..opts.clone()
            };
            cnn::run_setting(
                task,
                cnn::CnnSetting::new(crate::activations::Activation::Relu),
                &opts,
                data,
                held_out,
                progress,
            )
        }
    }
}

/// One row of the label-noise study.
#[derive(Clone, Debug, Serialize)]
pub struct NoiseRow {
    pub task: &'static str,
    pub noise: f64,
    pub seeds: usize,
    pub converged: usize,
    pub median_iterations: Option<f64>,
    pub p25_iterations: Option<f64>,
    pub p75_iterations: Option<f64>,
    /// On clean held-out data.
    pub median_held_out_accuracy: Option<f64>,
    pub median_final_train_accuracy: f64,
}

pub fn noise_row(task: &'static str, noise: f64, run: &Run) -> NoiseRow {
    let s = crate::record::RunSummary::of(run);
    NoiseRow {
        task,
        noise,
        seeds: s.seeds,
        converged: s.converged,
        median_iterations: s.median_iterations,
        p25_iterations: s.p25_iterations,
        p75_iterations: s.p75_iterations,
        median_held_out_accuracy: s.median_held_out_accuracy,
        median_final_train_accuracy: crate::stats::quantile(&s.final_train_accuracy, 0.5),
    }
}

pub fn noise_markdown(rows: &[ArmRow], cap: usize) -> String {
    let mut md = String::from(
        "# Label noise\n\nA share of the training labels replaced by coin flips (the held-out set keeps its true labels), under each regulariser. Fit: the share of training labels (clean ones, and those the flips changed) the net gets right in evaluation mode at the end; iterations: the first measurement from which 90% of the clean labels stay fitted, and 90% of the changed ones (median over seeds). Every run trains to the cap; converged: reached 100% training accuracy.\n\n| task | noise | arm | converged | median iterations (IQR) | final training accuracy | clean fit | corrupted fit | to 90% clean | to 90% corrupted | held-out accuracy |\n|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let it = |v: Option<f64>| v.map_or(format!("> {cap}"), |x| format!("{x:.0}"));
    let pct = |v: Option<f64>| v.map_or("—".into(), |a| format!("{:.1}%", 100.0 * a));
    for a in rows {
        let r = &a.row;
        md.push_str(&format!(
            "| {} | {:.0}% | {} | {}/{} | {} ({}–{}) | {:.1}% | {} | {} | {} | {} | {} |\n",
            r.task,
            100.0 * r.noise,
            a.arm.label(),
            r.converged,
            r.seeds,
            it(r.median_iterations),
            it(r.p25_iterations),
            it(r.p75_iterations),
            100.0 * r.median_final_train_accuracy,
            pct(a.fit_clean),
            pct(a.fit_flipped),
            it(a.iterations_to_clean_90),
            if a.flipped > 0 { it(a.iterations_to_flipped_90) } else { "—".into() },
            pct(r.median_held_out_accuracy)
        ));
    }
    md
}

/// What one run says about the report's claim: the learning order, and held-out accuracy when
/// training accuracy first reached 90% against at the end.
#[derive(Clone, Debug, Serialize)]
pub struct LearningFacts {
    pub task: &'static str,
    pub setting: String,
    pub order: Option<SampleOrder>,
    /// Medians over seeds: the first evaluated iteration with training accuracy ≥ 90%, the
    /// held-out accuracy at the nearest held-out evaluation at or before it, and at the end.
    pub iteration_at_90: Option<f64>,
    pub held_out_at_90: Option<f64>,
    pub held_out_final: Option<f64>,
}

pub fn learning_facts(task: &'static str, run: &Run, data: &Dataset) -> LearningFacts {
    let has = run.columns.iter().any(|c| c == "held_out_accuracy");
    let (mut at90, mut held90, mut held_end) = (vec![], vec![], vec![]);
    if has {
        for s in 0..run.seeds.len() {
            let (train, held) = (run.column(s, "accuracy"), run.column(s, "held_out_accuracy"));
            if let Some(i) = train.iter().position(|&a| a >= 0.9)
                && let Some(h) = held[..=i].iter().rev().find(|v| v.is_finite())
            {
                at90.push(run.row_iterations(s)[i] as f64);
                held90.push(*h as f64);
            }
            if let Some(h) = held.iter().rev().find(|v| v.is_finite()) {
                held_end.push(*h as f64);
            }
        }
    }
    let med = |v: &[f64]| (!v.is_empty()).then(|| crate::stats::quantile(v, 0.5));
    LearningFacts {
        task,
        setting: run.setting.clone(),
        order: sample_order(run, data),
        iteration_at_90: med(&at90),
        held_out_at_90: med(&held90),
        held_out_final: med(&held_end),
    }
}

/// A computed sentence about one task's learning order and held-out curve.
pub fn learning_sentence(f: &LearningFacts) -> String {
    let mut s = format!("{} ({}):", f.task, f.setting);
    if let Some(o) = &f.order {
        s.push_str(&format!(
            " the {} seeds agree on the order in which samples are learned with Kendall's W = {:.2}",
            o.seeds, o.kendall_w
        ));
        match (&o.ease, o.spearman_rho, o.spearman_p) {
            (Some(e), Some(r), Some(p)) => {
                let verdict = if p >= 0.05 {
                    "no clear relation".to_string()
                } else if r < 0.0 {
                    format!("samples with a larger {e} are learned earlier")
                } else {
                    format!("samples with a larger {e} are learned later")
                };
                let p = crate::report::figures::tick(p);
                s.push_str(&format!(
                    "; Spearman ρ between {e} and the median learned iteration is {r:.2} (p = {p}): {verdict}."
                ));
            }
            _ => s.push('.'),
        }
    }
    if let (Some(i), Some(a), Some(b)) = (f.iteration_at_90, f.held_out_at_90, f.held_out_final) {
        s.push_str(&format!(
            " Held-out accuracy is {:.1}% when training accuracy first reaches 90% (iteration {i:.0}) and {:.1}% at the end.",
            100.0 * a,
            100.0 * b
        ));
    }
    s
}

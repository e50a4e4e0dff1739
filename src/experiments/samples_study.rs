//! `gradlab study samples`: does "easy first, then memorise" hold whichever per-sample measure
//! says what is easy? On random (fc73), line, detection (the report's CNNs) and the digits
//! (MLP), every measure of `training::sample_dynamics` plus C-scores on the same seeds:
//!
//! 1. agreement — Spearman's ρ between the pooled measures (signed: + means both call the same
//!    samples hard);
//! 2. label noise — with a share of the training labels set to another class, how many of each
//!    measure's hardest samples (as many as were flipped) are the flipped ones (precision at the
//!    noise rate, as cartography reports it);
//! 3. pruning (Toneva et al. Fig. 5, Paul et al.) — on the digits, train again without the k%
//!    easiest samples by each measure, or k% at random: held-out accuracy against k.

use crate::data::{Samples, Target};
use crate::error::{Error, Result};
use crate::experiments::lab::{self, Lab};
use crate::experiments::{Runner, presets};
use crate::init::SeededRng;
use crate::record::Run;
use crate::record::samples::CScores;
use crate::report::samples::{Measure, pooled, summary};
use serde::Serialize;
use std::path::Path;

/// What the study runs.
#[derive(Clone, Debug, Serialize)]
pub struct SamplesStudy {
    pub seeds: usize,
    /// Share of training labels set to another class in the noise arm.
    pub noise: f64,
    /// Shares of the digits removed in the pruning arm (0 is the baseline).
    pub prune: Vec<f64>,
    /// C-score ratios.
    pub ratios: Vec<f64>,
    /// Tasks: any of random, line, detection, digits.
    pub tasks: Vec<String>,
    /// An iteration cap below the presets' own (reproduce's quick mode), if any.
    pub max_iters: Option<usize>,
}

impl SamplesStudy {
    pub fn new(seeds: usize) -> SamplesStudy {
        SamplesStudy {
            seeds,
            noise: 0.2,
            prune: vec![0.0, 0.1, 0.2, 0.3, 0.4, 0.5],
            ratios: (1..=9).map(|k| k as f64 / 10.0).collect(),
            tasks: ["random", "line", "detection", "digits"].map(String::from).to_vec(),
            max_iters: None,
        }
    }

    pub fn validate(&self) -> Result<()> {
        if !(self.noise > 0.0 && self.noise < 1.0) {
            return Err(Error::Usage(format!("--noise {} is not a share in (0, 1)", self.noise)));
        }
        if let Some(k) = self.prune.iter().find(|k| !(**k >= 0.0 && **k < 1.0)) {
            return Err(Error::Usage(format!("--prune {k} is not a share in [0, 1)")));
        }
        if let Some(r) = self.ratios.iter().find(|r| !(**r > 0.0 && **r < 1.0)) {
            return Err(Error::Usage(format!("--ratios {r} is not a ratio in (0, 1)")));
        }
        for t in &self.tasks {
            preset_of(t)?;
        }
        Ok(())
    }
}

/// Each task's preset, the iteration its EL2N and GraNd are taken at (early in training, as
/// Paul et al. score at a few epochs of 200), and the epochs of its C-score runs.
fn preset_of(task: &str) -> Result<(&'static str, usize, usize)> {
    Ok(match task {
        "random" => ("fc73", 20, 300),
        "line" => ("line", 10, 100),
        "detection" => ("detect", 10, 100),
        "digits" => ("digits-mlp", 44, 20),
        other => {
            let hint = crate::names::did_you_mean(other, &["random", "line", "detection", "digits"]);
            return Err(Error::Usage(format!("unknown task `{other}`{hint} (random, line, detection, digits)")));
        }
    })
}

/// The task's preset as a network file with the study's seeds and `[samples]`.
fn task_lab(task: &str, seeds: usize, ratios: Option<&[f64]>, max_iters: Option<usize>) -> Result<Lab> {
    let (preset, score_at, epochs) = preset_of(task)?;
    let mut doc: toml::Table = presets::text(preset)?.parse().map_err(|e| Error::Usage(format!("{e}")))?;
    doc.remove("sweep");
    let set = |doc: &mut toml::Table, k: &str, v: toml::Value| lab::set_key(doc, k, v).map_err(Error::Usage);
    set(&mut doc, "train.seeds", toml::Value::Integer(seeds as i64))?;
    set(&mut doc, "train.probe_every", toml::Value::Integer(0))?;
    if let Some(cap) = max_iters {
        set(&mut doc, "train.max_iters", toml::Value::Integer(cap as i64))?;
    }
    set(&mut doc, "samples.score_at", toml::Value::Array(vec![toml::Value::Integer(score_at as i64)]))?;
    if let Some(r) = ratios {
        set(&mut doc, "samples.cscore_ratios", toml::Value::Array(r.iter().map(|&v| toml::Value::Float(v)).collect()))?;
        set(&mut doc, "samples.cscore_epochs", toml::Value::Integer(epochs as i64))?;
    }
    lab::parse(Path::new(&format!("{task}.toml")), &toml::to_string(&doc).map_err(|e| Error::Usage(e.to_string()))?)
}

/// The training labels with `share` of them (a seeded choice) set to another class, and which.
pub fn flip_labels(data: &Samples, share: f64, seed: u64) -> (Samples, Vec<bool>) {
    let mut out = data.clone();
    let t: &mut Target = out.targets.iter_mut().find(|t| t.name == "y").expect("a class target y");
    let classes = t.classes.unwrap_or(2).max(2);
    let mut rng = SeededRng::new(seed ^ 0xF11B_0000);
    let mut idx: Vec<usize> = (0..data.n).collect();
    rng.shuffle(&mut idx);
    let k = (share * data.n as f64).round() as usize;
    let mut flipped = vec![false; data.n];
    for &i in &idx[..k] {
        let y = t.values[i] as i64;
        let shift = rng.int(1, classes as i64 - 1);
        t.values[i] = ((y + shift) % classes as i64) as f32;
        flipped[i] = true;
    }
    out.source = format!("{} with {:.0}% of the labels set to another class", data.source, 100.0 * share);
    (out, flipped)
}

/// The samples with `drop` removed.
pub fn without(data: &Samples, drop: &[bool]) -> Samples {
    let f = data.features();
    let keep: Vec<usize> = (0..data.n).filter(|&s| !drop[s]).collect();
    Samples {
        x: keep.iter().flat_map(|&s| data.x[s * f..(s + 1) * f].iter().copied()).collect(),
        shape: data.shape.clone(),
        n: keep.len(),
        targets: data
            .targets
            .iter()
            .map(|t| Target {
                values: keep.iter().flat_map(|&s| t.values[s * t.width..(s + 1) * t.width].iter().copied()).collect(),
                ..t.clone()
            })
            .collect(),
        source: format!("{} without {} samples", data.source, data.n - keep.len()),
    }
}

/// The samples ordered by `measure`, hardest first (or easiest first); ties keep sample order.
fn ranked(measure: &Measure, hardest_first: bool) -> Vec<usize> {
    let v = &measure.values;
    let mut idx: Vec<usize> = (0..v.len()).collect();
    let descending = measure.larger_is_harder == hardest_first;
    idx.sort_by(|&a, &b| if descending { v[b].total_cmp(&v[a]) } else { v[a].total_cmp(&v[b]) });
    idx
}

/// Of each measure's `k` hardest samples, the share that are flipped.
pub fn precision_at(measure: &Measure, flipped: &[bool]) -> f64 {
    let k = flipped.iter().filter(|&&f| f).count();
    ranked(measure, true)[..k].iter().filter(|&&s| flipped[s]).count() as f64 / k.max(1) as f64
}

/// The `share` easiest samples by `measure`, as a mask.
pub fn easiest(measure: &Measure, share: f64) -> Vec<bool> {
    let n = measure.values.len();
    let mut drop = vec![false; n];
    ranked(measure, false)[..(share * n as f64).round() as usize].iter().for_each(|&s| drop[s] = true);
    drop
}

#[derive(Clone, Debug, Serialize)]
pub struct TaskResult {
    pub task: String,
    pub samples: usize,
    pub summary: crate::report::samples::SampleSummary,
    /// `(measure, precision at the noise rate)` with `noise` of the labels flipped.
    pub noise_precision: Vec<(String, f64)>,
}

#[derive(Clone, Debug, Serialize)]
pub struct PruneRow {
    pub measure: String,
    pub removed: f64,
    pub kept: usize,
    /// Median held-out accuracy over seeds.
    pub held_out_accuracy: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct SamplesResult {
    pub study: &'static str,
    pub complete: bool,
    pub config: SamplesStudy,
    pub tasks: Vec<TaskResult>,
    pub pruning: Vec<PruneRow>,
}

/// Runs the whole study into `out` (a directory per task and arm with the lab outputs).
pub fn run(study: &SamplesStudy, out: &Path, runner: &mut Runner) -> Result<SamplesResult> {
    study.validate()?;
    let mut result =
        SamplesResult { study: "samples", complete: false, config: study.clone(), tasks: vec![], pruning: vec![] };
    let mut digits_measures: Option<(Lab, Samples, Option<Samples>, Vec<Measure>)> = None;
    for task in &study.tasks {
        let l = task_lab(task, study.seeds, Some(&study.ratios), study.max_iters)?;
        let (data, held) = l.data(0)?;
        let Some((run, cs)) = measure(&l, &data, held.as_ref(), &out.join(task), runner)? else {
            return Ok(result);
        };
        let sum = summary(&run, cs.as_ref()).expect("runs with [samples]");
        // Label noise: every measure but the C-score (its runs would double the cost).
        let noisy_lab = task_lab(task, study.seeds, None, study.max_iters)?;
        let (noisy, flipped) = flip_labels(&data, study.noise, 1);
        let Some((noisy_run, _)) =
            measure(&noisy_lab, &noisy, held.as_ref(), &out.join(format!("{task}-noise")), runner)?
        else {
            return Ok(result);
        };
        let noise_precision =
            pooled(&noisy_run, None).iter().map(|m| (m.name.clone(), precision_at(m, &flipped))).collect();
        result.tasks.push(TaskResult { task: task.clone(), samples: data.n, summary: sum, noise_precision });
        if task == "digits" {
            digits_measures =
                Some((task_lab(task, study.seeds, None, study.max_iters)?, data, held, pooled(&run, cs.as_ref())));
        }
    }
    if let Some((l, data, held, measures)) = &digits_measures {
        let Some(rows) = prune(study, l, data, held.as_ref(), measures, runner)? else { return Ok(result) };
        result.pruning = rows;
    }
    result.complete = true;
    Ok(result)
}

/// One lab run with its C-scores, outputs written to `dir`; `None` when interrupted.
fn measure(
    l: &Lab,
    data: &Samples,
    held: Option<&Samples>,
    dir: &Path,
    runner: &mut Runner,
) -> Result<Option<(Run, Option<CScores>)>> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let c = &l.cells[0];
    let name = dir.file_name().map_or("run".into(), |n| n.to_string_lossy().to_string());
    let (mut runs, complete) =
        runner(std::slice::from_ref(&name), c.opts.max_iters, c.opts.seeds, &mut |_, p| l.run_cell(0, data, held, p))?;
    if !complete {
        return Ok(None);
    }
    let run = runs.remove(0);
    let (cs, done) = l.cscores(0, data, &name, runner)?;
    if !done {
        return Ok(None);
    }
    lab::write_outputs(dir, l, &[(0, run.clone())], std::slice::from_ref(&cs), data, true, None)?;
    Ok(Some((run, cs)))
}

/// The pruning arm on the digits: `None` when interrupted.
fn prune(
    study: &SamplesStudy,
    l: &Lab,
    data: &Samples,
    held: Option<&Samples>,
    measures: &[Measure],
    runner: &mut Runner,
) -> Result<Option<Vec<PruneRow>>> {
    let chosen: Vec<&Measure> = measures
        .iter()
        .filter(|m| {
            ["forgetting", "confidence", "cscore"].contains(&m.name.as_str())
                || m.name.starts_with("el2n")
                || m.name.starts_with("grand")
        })
        .collect();
    let mut rng = SeededRng::new(0x005E_ED0F_u64);
    let mut plan: Vec<(String, f64, Vec<bool>)> = vec![("none".into(), 0.0, vec![false; data.n])];
    for &k in study.prune.iter().filter(|&&k| k > 0.0) {
        for m in &chosen {
            plan.push((m.name.clone(), k, easiest(m, k)));
        }
        let mut idx: Vec<usize> = (0..data.n).collect();
        rng.shuffle(&mut idx);
        let mut drop = vec![false; data.n];
        idx[..(k * data.n as f64).round() as usize].iter().for_each(|&s| drop[s] = true);
        plan.push(("random".into(), k, drop));
    }
    let names: Vec<String> = plan.iter().map(|(m, k, _)| format!("prune {m} {:.0}%", 100.0 * k)).collect();
    let c = &l.cells[0];
    let subsets: Vec<Samples> = plan.iter().map(|(_, _, d)| without(data, d)).collect();
    let (runs, complete) = runner(&names, c.opts.max_iters, c.opts.seeds, &mut |i, p| {
        // Per-sample measures are not wanted here: train as the plain preset would.
        let opts = crate::training::TrainOptions { samples: None, ..c.opts.clone() };
        let d = &subsets[i];
        let build = |e: usize| crate::models::spec::build(&c.file.network, d, e, c.opts.batch.unwrap_or(d.n).min(d.n));
        crate::training::train_parallel(&names[i], &build, d, held, &opts, p)
    })?;
    if !complete {
        return Ok(None);
    }
    Ok(Some(
        plan.iter()
            .zip(&runs)
            .zip(&subsets)
            .map(|(((m, k, _), r), d)| PruneRow {
                measure: m.clone(),
                removed: *k,
                kept: d.n,
                held_out_accuracy: crate::record::RunSummary::of(r).median_held_out_accuracy.unwrap_or(f64::NAN),
            })
            .collect(),
    ))
}

/// The study's findings as Markdown, every number from `r`.
pub fn markdown(r: &SamplesResult) -> String {
    let mut s = String::from("# Which samples are hard? Per-sample measures side by side\n\n");
    s.push_str(&format!(
        "{} seeds per task; EL2N and GraNd early in training; C-scores over ratios {:?}. ρ is Spearman's, signed so that + means two measures call the same samples hard.\n\n",
        r.config.seeds, r.config.ratios
    ));
    for t in &r.tasks {
        let sm = &t.summary;
        s.push_str(&format!(
            "## {} ({} samples)\n\n{} samples are unforgettable (never forgotten, learned, in every seed); {} never learned by any seed.\n\n",
            t.task, t.samples, sm.unforgettable, sm.never_learned
        ));
        s.push_str("| measure | measure | ρ |\n|---|---|---|\n");
        for (a, b, rho) in &sm.spearman {
            s.push_str(&format!("| {a} | {b} | {rho:+.2} |\n"));
        }
        let best = t.noise_precision.iter().max_by(|a, b| a.1.total_cmp(&b.1));
        s.push_str(&format!(
            "\nWith {:.0}% of the labels set to another class, precision at the noise rate: {}.{}\n\n",
            100.0 * r.config.noise,
            t.noise_precision.iter().map(|(m, p)| format!("{m} {p:.2}")).collect::<Vec<_>>().join(", "),
            best.map_or(String::new(), |(m, p)| format!(" Best: {m} ({p:.2}); chance is {:.2}.", r.config.noise))
        ));
    }
    if !r.pruning.is_empty() {
        s.push_str("## Pruning the digits: held-out accuracy (median over seeds) without the easiest k%\n\n");
        let mut measures: Vec<String> = vec![];
        for p in &r.pruning {
            if p.measure != "none" && !measures.contains(&p.measure) {
                measures.push(p.measure.clone());
            }
        }
        let ks: Vec<f64> = {
            let mut k: Vec<f64> = r.pruning.iter().map(|p| p.removed).filter(|&k| k > 0.0).collect();
            k.dedup();
            k
        };
        let base = r.pruning.iter().find(|p| p.measure == "none").map_or(f64::NAN, |p| p.held_out_accuracy);
        s.push_str(&format!(
            "All samples: {:.1}%.\n\n| removed | {} |\n|---|{}\n",
            100.0 * base,
            measures.join(" | "),
            "---|".repeat(measures.len())
        ));
        for k in &ks {
            let cells: Vec<String> = measures
                .iter()
                .map(|m| {
                    r.pruning
                        .iter()
                        .find(|p| &p.measure == m && p.removed == *k)
                        .map_or("—".into(), |p| format!("{:.1}%", 100.0 * p.held_out_accuracy))
                })
                .collect();
            s.push_str(&format!("| {:.0}% | {} |\n", 100.0 * k, cells.join(" | ")));
        }
    }
    s
}

/// `summary.json`, `samples.md` and the pruning figure.
pub fn write_outputs(out: &Path, r: &SamplesResult) -> Result<()> {
    use crate::report::figures::{XyPanel, XyPanels, render};
    crate::report::write_json(&out.join("summary.json"), r)?;
    crate::atomic::write_atomic(&out.join("samples.md"), markdown(r).as_bytes())?;
    if !r.pruning.is_empty() {
        let base = r.pruning.iter().find(|p| p.measure == "none").map(|p| p.held_out_accuracy);
        let mut series: Vec<(String, Vec<(f64, f64)>, bool)> = vec![];
        for p in r.pruning.iter().filter(|p| p.measure != "none") {
            match series.iter_mut().find(|s| s.0 == p.measure) {
                Some(s) => s.1.push((100.0 * p.removed, 100.0 * p.held_out_accuracy)),
                None => {
                    let mut pts = base.map(|b| vec![(0.0, 100.0 * b)]).unwrap_or_default();
                    pts.push((100.0 * p.removed, 100.0 * p.held_out_accuracy));
                    series.push((p.measure.clone(), pts, false));
                }
            }
        }
        let panel = XyPanel {
            title: "digits MLP: held-out accuracy without the k% easiest samples".into(),
            x_desc: "training samples removed (%)".into(),
            y_desc: "held-out accuracy (%, median over seeds)".into(),
            log_y: false,
            series,
            levels: vec![],
        };
        render(
            &out.join("pruning"),
            &XyPanels {
                title: "Pruning by each measure (Toneva et al. Fig. 5)".into(),
                panels: vec![panel],
                columns: 1,
            },
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precision_and_pruning_read_each_measure_in_its_direction() {
        let m = |values: Vec<f64>, larger_is_harder| Measure { name: "m".into(), values, larger_is_harder };
        let flipped = [false, true, false, true];
        // Larger is harder: the two largest (samples 1 and 3) are both flipped.
        assert_eq!(precision_at(&m(vec![0.1, 0.9, 0.2, 0.8], true), &flipped), 1.0);
        // Smaller is harder (confidence): the two smallest are samples 0 and 2, neither flipped.
        assert_eq!(precision_at(&m(vec![0.1, 0.9, 0.2, 0.8], false), &flipped), 0.0);
        assert_eq!(easiest(&m(vec![0.1, 0.9, 0.2, 0.8], true), 0.5), vec![true, false, true, false]);
        assert_eq!(easiest(&m(vec![0.1, 0.9, 0.2, 0.8], false), 0.5), vec![false, true, false, true]);
        // Ties keep sample order.
        assert_eq!(easiest(&m(vec![0.0, 0.0, 0.0, 1.0], true), 0.25), vec![true, false, false, false]);
    }
}

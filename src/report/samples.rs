//! The per-sample measures of a run (`record::samples`), side by side: `sample_measures.csv`
//! (every seed's, then their mean over seeds as seed `mean`), `sample_measures.json` (per
//! setting: unforgettable samples, data-map regions, Spearman correlations between the
//! measures), `sample_evaluations.csv` (every evaluation, when traced) and the figures: the data
//! map (variability × confidence coloured by correctness; seed 0 and pooled), the forgetting
//! histogram and, per measure, each class's most and least extreme samples drawn as images.

use crate::atomic::write_atomic;
use crate::data::Samples;
use crate::error::Result;
use crate::record::Run;
use crate::record::samples::{CScores, SeedSamples};
use crate::report::figures::{COLORS, Figure, e2s, render};
use plotters::coord::Shift;
use plotters::prelude::*;
use serde::Serialize;
use std::path::Path;

/// One measure over the training samples (pooled over seeds), named as in the CSV.
#[derive(Clone, Debug)]
pub struct Measure {
    pub name: String,
    pub values: Vec<f64>,
    /// Larger means harder (forgetting, variability, EL2N, GraNd, learned_at); smaller means
    /// harder (confidence, correctness, C-score).
    pub larger_is_harder: bool,
}

/// Each measure of one run's samples, each the mean over seeds (`learned_at`: the median
/// learned iteration, not-learned counted beyond the last iteration).
pub fn pooled(run: &Run, cscores: Option<&CScores>) -> Vec<Measure> {
    let Some(seeds) = &run.samples else { return vec![] };
    let n = seeds.first().map_or(0, |s| s.evaluations.len());
    let mean = |f: &dyn Fn(&SeedSamples, usize) -> f64| -> Vec<f64> {
        (0..n).map(|s| seeds.iter().map(|r| f(r, s)).sum::<f64>() / seeds.len() as f64).collect()
    };
    let m =
        |name: &str, values: Vec<f64>, larger_is_harder: bool| Measure { name: name.into(), values, larger_is_harder };
    let mut out = vec![];
    if let Some(learned) = &run.learned_at {
        let cap = run.at.iter().filter_map(|a| a.last()).max().copied().unwrap_or(0) as f64 + 1.0;
        let med = (0..n)
            .map(|s| {
                let v: Vec<f64> = learned.iter().map(|l| l[s].map_or(cap, |i| i as f64)).collect();
                crate::stats::quantile(&v, 0.5)
            })
            .collect();
        out.push(m("learned_at", med, true));
    }
    out.push(m("forgetting", mean(&|r, s| r.forgetting(s) as f64), true));
    out.push(m("confidence", mean(&|r, s| r.confidence[s]), false));
    out.push(m("variability", mean(&|r, s| r.variability[s]), true));
    out.push(m("correctness", mean(&|r, s| r.correctness(s)), false));
    let scored = seeds.first().map_or(0, |r| r.scored.len());
    for k in 0..scored {
        let it = seeds[0].scored[k].iteration;
        out.push(m(&format!("el2n_it{it}"), mean(&|r, s| r.scored[k].el2n[s]), true));
        out.push(m(&format!("grand_it{it}"), mean(&|r, s| r.scored[k].grand[s]), true));
    }
    if let Some(c) = cscores {
        out.push(m("cscore", c.cscore.clone(), false));
    }
    out
}

/// What `sample_measures.json` says about one setting.
#[derive(Clone, Debug, Serialize)]
pub struct SampleSummary {
    pub setting: String,
    pub samples: usize,
    pub seeds: usize,
    /// No forgetting event and right at least once in every seed.
    pub unforgettable: usize,
    /// Never right in any evaluation of any seed.
    pub never_learned: usize,
    /// Per seed, the unforgettable samples, median over seeds.
    pub unforgettable_per_seed_median: f64,
    /// Data-map regions of the pooled map, each a third of the samples as cartography selects
    /// them: easy (highest confidence), hard (lowest confidence), ambiguous (highest
    /// variability). Counts of samples in each and the mean correctness there.
    pub regions: Vec<(String, usize, f64)>,
    /// Spearman's ρ between each pair of pooled measures, oriented so that + means both call
    /// the same samples hard.
    pub spearman: Vec<(String, String, f64)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cscores: Option<CScores>,
}

/// Spearman's ρ between two measures, signed so that + means they agree on which are hard.
pub fn agreement(a: &Measure, b: &Measure) -> f64 {
    let rho = crate::stats::spearman(&a.values, &b.values).0;
    if a.larger_is_harder == b.larger_is_harder { rho } else { -rho }
}

pub fn summary(run: &Run, cscores: Option<&CScores>) -> Option<SampleSummary> {
    let seeds = run.samples.as_ref()?;
    let n = seeds.first().map_or(0, |s| s.evaluations.len());
    let measures = pooled(run, cscores);
    let unforgettable =
        (0..n).filter(|&s| seeds.iter().all(|r| r.ever_correct[s] && r.forgetting_events[s] == 0)).count();
    let never_learned = (0..n).filter(|&s| seeds.iter().all(|r| !r.ever_correct[s])).count();
    let per_seed: Vec<f64> = seeds
        .iter()
        .map(|r| (0..n).filter(|&s| r.ever_correct[s] && r.forgetting_events[s] == 0).count() as f64)
        .collect();
    let get = |name: &str| measures.iter().find(|m| m.name == name).expect("always pooled");
    let (conf, var, corr) = (get("confidence"), get("variability"), get("correctness"));
    let third = n / 3;
    let by = |values: &[f64], top: bool| -> Vec<usize> {
        let mut idx: Vec<usize> = (0..n).collect();
        idx.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
        if top {
            idx.reverse();
        }
        idx.truncate(third);
        idx
    };
    let region = |name: &str, idx: Vec<usize>| {
        let mc = idx.iter().map(|&s| corr.values[s]).sum::<f64>() / idx.len().max(1) as f64;
        (name.to_string(), idx.len(), mc)
    };
    let regions = vec![
        region("easy", by(&conf.values, true)),
        region("ambiguous", by(&var.values, true)),
        region("hard", by(&conf.values, false)),
    ];
    let mut spearman = vec![];
    for (i, a) in measures.iter().enumerate() {
        for b in &measures[i + 1..] {
            spearman.push((a.name.clone(), b.name.clone(), agreement(a, b)));
        }
    }
    Some(SampleSummary {
        setting: run.setting.clone(),
        samples: n,
        seeds: seeds.len(),
        unforgettable,
        never_learned,
        unforgettable_per_seed_median: crate::stats::quantile(&per_seed, 0.5),
        regions,
        spearman,
        cscores: cscores.cloned(),
    })
}

fn num(v: f64) -> String {
    if v.is_finite() { ryu::Buffer::new().format(v).to_string() } else { String::new() }
}

/// The class label of each sample under the classification head's target (`y` by default).
fn labels(data: &Samples) -> Vec<f64> {
    let t = data.target("y").or(data.targets.first());
    (0..data.n).map(|s| t.map_or(f64::NAN, |t| t.values[s * t.width] as f64)).collect()
}

/// Writes every file and figure for the runs that have per-sample records. `cscores[i]` goes
/// with `runs[i]`.
pub fn write_outputs(dir: &Path, runs: &[&Run], cscores: &[Option<CScores>], data: &Samples) -> Result<()> {
    let with: Vec<(usize, &Run)> = runs.iter().copied().enumerate().filter(|(_, r)| r.samples.is_some()).collect();
    if with.is_empty() {
        return Ok(());
    }
    let y = labels(data);
    let mut csv = String::new();
    let mut trace = String::new();
    let mut summaries = vec![];
    for &(i, run) in &with {
        let seeds = run.samples.as_ref().expect("filtered");
        let cs = cscores.get(i).and_then(Option::as_ref);
        let measures = pooled(run, cs);
        if csv.is_empty() {
            csv.push_str("setting,seed,sample,label,evaluations,forgetting,correctness,confidence,variability");
            for m in measures.iter().filter(|m| m.name.starts_with("el2n") || m.name.starts_with("grand")) {
                csv.push_str(&format!(",{}", m.name));
            }
            csv.push_str(",learned_at,cscore\n");
        }
        for (e, r) in seeds.iter().enumerate() {
            for s in 0..r.evaluations.len() {
                csv.push_str(&format!(
                    "{},{},{s},{},{},{},{},{},{}",
                    run.setting,
                    run.seeds[e],
                    num(y[s]),
                    r.evaluations[s],
                    r.forgetting(s),
                    num(r.correctness(s)),
                    num(r.confidence[s]),
                    num(r.variability[s])
                ));
                for sc in &r.scored {
                    csv.push_str(&format!(",{},{}", num(sc.el2n[s]), num(sc.grand[s])));
                }
                let learned = run.learned_at.as_ref().and_then(|l| l[e][s]).map_or(String::new(), |v| v.to_string());
                csv.push_str(&format!(",{learned},\n"));
            }
            for &(it, s, ok, p) in &r.trace {
                trace.push_str(&format!("{},{},{it},{s},{},{}\n", run.setting, run.seeds[e], u8::from(ok), num(p)));
            }
        }
        let get = |name: &str| measures.iter().find(|m| m.name == name).map(|m| m.values.as_slice());
        for s in 0..data.n {
            let evals = seeds.iter().map(|r| r.evaluations[s] as f64).sum::<f64>() / seeds.len() as f64;
            csv.push_str(&format!("{},mean,{s},{},{}", run.setting, num(y[s]), num(evals)));
            for name in ["forgetting", "correctness", "confidence", "variability"] {
                csv.push_str(&format!(",{}", get(name).map_or(String::new(), |v| num(v[s]))));
            }
            for m in measures.iter().filter(|m| m.name.starts_with("el2n") || m.name.starts_with("grand")) {
                csv.push_str(&format!(",{}", num(m.values[s])));
            }
            csv.push_str(&format!(
                ",{},{}\n",
                get("learned_at").map_or(String::new(), |v| num(v[s])),
                get("cscore").map_or(String::new(), |v| num(v[s]))
            ));
        }
        if let Some(sum) = summary(run, cs) {
            summaries.push(sum);
        }
        let name = run.setting.replace(['/', ' '], "_");
        let pooled_map = DataMap::pooled(run, &format!("{}: data map, mean over {} seeds", run.setting, seeds.len()));
        render(&dir.join(format!("data-map-{name}")), &pooled_map)?;
        let one = DataMap::seed(run, 0, &format!("{}: data map, seed {}", run.setting, run.seeds[0]));
        render(&dir.join(format!("data-map-{name}-seed{}", run.seeds[0])), &one)?;
        render(&dir.join(format!("forgetting-{name}")), &ForgettingHistogram { run })?;
        if image_side(data).is_some() {
            for m in &measures {
                let title = format!(
                    "{}: {} — per class, the {} samples | the {}",
                    run.setting, m.name, EXTREME_EASY, EXTREME_HARD
                );
                render(
                    &dir.join(format!("extremes-{name}-{}", m.name)),
                    &Extremes { measure: m, data, labels: &y, title },
                )?;
            }
        }
    }
    write_atomic(&dir.join("sample_measures.csv"), csv.as_bytes())?;
    crate::report::write_json(&dir.join("sample_measures.json"), &summaries)?;
    if !trace.is_empty() {
        write_atomic(
            &dir.join("sample_evaluations.csv"),
            format!("setting,seed,iteration,sample,correct,p_true\n{trace}").as_bytes(),
        )?;
    }
    Ok(())
}

const EXTREME_EASY: &str = "8 easiest";
const EXTREME_HARD: &str = "8 hardest";

/// The data map: one dot per sample at (variability, confidence), coloured by correctness.
struct DataMap {
    title: String,
    points: Vec<(f64, f64, f64)>,
}

impl DataMap {
    fn pooled(run: &Run, title: &str) -> DataMap {
        let ms = pooled(run, None);
        let get = |n: &str| &ms.iter().find(|m| m.name == n).expect("pooled").values;
        let (v, c, k) = (get("variability"), get("confidence"), get("correctness"));
        DataMap { title: title.into(), points: (0..v.len()).map(|s| (v[s], c[s], k[s])).collect() }
    }
    fn seed(run: &Run, e: usize, title: &str) -> DataMap {
        let r = &run.samples.as_ref().expect("has samples")[e];
        let points = (0..r.evaluations.len()).map(|s| (r.variability[s], r.confidence[s], r.correctness(s))).collect();
        DataMap { title: title.into(), points }
    }
}

/// Correctness 0 → blue, 1 → red, through grey (cartography's diverging palette, roughly).
fn correctness_color(k: f64) -> RGBColor {
    let k = if k.is_finite() { k.clamp(0.0, 1.0) } else { 0.5 };
    let (a, b, m) = ((59.0, 76.0, 192.0), (180.0, 4.0, 38.0), (120.0, 120.0, 120.0));
    let lerp = |x: f64, y: f64, t: f64| (x + (y - x) * t) as u8;
    if k < 0.5 {
        let t = k * 2.0;
        RGBColor(lerp(a.0, m.0, t), lerp(a.1, m.1, t), lerp(a.2, m.2, t))
    } else {
        let t = (k - 0.5) * 2.0;
        RGBColor(lerp(m.0, b.0, t), lerp(m.1, b.1, t), lerp(m.2, b.2, t))
    }
}

impl Figure for DataMap {
    fn size(&self) -> (u32, u32) {
        (760, 560)
    }
    fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, Shift>) -> std::result::Result<(), String> {
        root.fill(&WHITE).map_err(e2s)?;
        let root = root.titled(&self.title, ("sans-serif", 18)).map_err(e2s)?;
        let (plot, legend) = root.split_horizontally(640);
        let vmax = self.points.iter().map(|p| p.0).filter(|v| v.is_finite()).fold(0.0, f64::max).max(0.05) * 1.05;
        let mut chart = ChartBuilder::on(&plot)
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(0.0..vmax, 0.0..1.0)
            .map_err(e2s)?;
        chart
            .configure_mesh()
            .x_desc("variability (std of the true-class probability)")
            .y_desc("confidence (mean true-class probability)")
            .label_style(("sans-serif", 12))
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(e2s)?;
        chart
            .draw_series(
                self.points
                    .iter()
                    .filter(|p| p.0.is_finite() && p.1.is_finite())
                    .map(|&(v, c, k)| Circle::new((v, c), 3, correctness_color(k).mix(0.75).filled())),
            )
            .map_err(e2s)?;
        for (text, x, y) in [("easy-to-learn", 0.25, 0.93), ("ambiguous", 0.85, 0.5), ("hard-to-learn", 0.25, 0.07)] {
            chart
                .draw_series(std::iter::once(Text::new(
                    text,
                    (vmax * x, y),
                    ("sans-serif", 15).into_font().color(&BLACK),
                )))
                .map_err(e2s)?;
        }
        let legend = legend.titled("correctness", ("sans-serif", 13)).map_err(e2s)?;
        for (i, k) in [1.0, 0.8, 0.6, 0.4, 0.2, 0.0].iter().enumerate() {
            let y = 20 + i as i32 * 26;
            legend.draw(&Circle::new((20, y), 6, correctness_color(*k).filled())).map_err(e2s)?;
            legend.draw(&Text::new(format!("{k:.1}"), (34, y - 7), ("sans-serif", 13))).map_err(e2s)?;
        }
        root.present().map_err(e2s)
    }
}

/// How many samples have each forgetting count, per seed and pooled over seeds.
struct ForgettingHistogram<'a> {
    run: &'a Run,
}

impl Figure for ForgettingHistogram<'_> {
    fn size(&self) -> (u32, u32) {
        (760, 440)
    }
    fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, Shift>) -> std::result::Result<(), String> {
        root.fill(&WHITE).map_err(e2s)?;
        let seeds = self.run.samples.as_ref().expect("has samples");
        // Never-learned samples are shown apart: their count is their number of evaluations.
        let mut counts: Vec<f64> = vec![];
        let mut never = 0usize;
        for r in seeds {
            for s in 0..r.evaluations.len() {
                if !r.ever_correct[s] {
                    never += 1;
                    continue;
                }
                let f = r.forgetting_events[s] as usize;
                if counts.len() <= f {
                    counts.resize(f + 1, 0.0);
                }
                counts[f] += 1.0;
            }
        }
        let total = (seeds.len() * seeds[0].evaluations.len()) as f64;
        let title = format!(
            "{}: forgetting events per sample over {} seeds ({:.1}% never learned)",
            self.run.setting,
            seeds.len(),
            100.0 * never as f64 / total
        );
        let root = root.titled(&title, ("sans-serif", 16)).map_err(e2s)?;
        let top = counts.iter().fold(0.0f64, |m, &c| m.max(c / total)).max(1e-3) * 1.1;
        let bins = counts.len().max(1);
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(-0.5..(bins as f64 - 0.5), 0.0..top)
            .map_err(e2s)?;
        chart
            .configure_mesh()
            .x_desc("forgetting events")
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_desc("share of (seed, sample) pairs")
            .label_style(("sans-serif", 12))
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(e2s)?;
        chart
            .draw_series(counts.iter().enumerate().map(|(f, &c)| {
                Rectangle::new([(f as f64 - 0.4, 0.0), (f as f64 + 0.4, c / total)], COLORS[0].filled())
            }))
            .map_err(e2s)?;
        root.present().map_err(e2s)
    }
}

/// The side of square single-channel samples (images `[1, H, H]` or `H²` features).
fn image_side(data: &Samples) -> Option<usize> {
    match data.shape[..] {
        [1, h, w] if h == w => Some(h),
        [f] => {
            let h = (f as f64).sqrt().round() as usize;
            (h * h == f && h >= 3).then_some(h)
        }
        _ => None,
    }
}

/// Per class (a row): the 8 samples the measure calls easiest, then the 8 it calls hardest.
struct Extremes<'a> {
    measure: &'a Measure,
    data: &'a Samples,
    labels: &'a [f64],
    title: String,
}

impl Figure for Extremes<'_> {
    fn size(&self) -> (u32, u32) {
        let classes = self.classes().len() as u32;
        (17 * 56 + 80, classes * 60 + 60)
    }
    fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, Shift>) -> std::result::Result<(), String> {
        root.fill(&WHITE).map_err(e2s)?;
        let root = root.titled(&self.title, ("sans-serif", 15)).map_err(e2s)?;
        let side = image_side(self.data).expect("checked by the caller");
        let f = self.data.features();
        let classes = self.classes();
        let (lo, hi) = self.data.x.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
        let span = (hi - lo).max(1e-6);
        let rows = root.split_evenly((classes.len(), 1));
        for (row, &c) in rows.iter().zip(&classes) {
            let (label, cells) = row.split_horizontally(80);
            label.draw(&Text::new(format!("class {c}"), (6, 22), ("sans-serif", 13))).map_err(e2s)?;
            let mut idx: Vec<usize> = (0..self.data.n).filter(|&s| self.labels[s] == c as f64).collect();
            let v = &self.measure.values;
            // Easiest first.
            idx.sort_by(
                |&a, &b| if self.measure.larger_is_harder { v[a].total_cmp(&v[b]) } else { v[b].total_cmp(&v[a]) },
            );
            let k = 8.min(idx.len() / 2);
            let chosen: Vec<Option<usize>> = idx[..k]
                .iter()
                .map(|&s| Some(s))
                .chain((0..8 - k).map(|_| None))
                .chain(std::iter::once(None))
                .chain((0..8 - k).map(|_| None))
                .chain(idx[idx.len() - k..].iter().map(|&s| Some(s)))
                .collect();
            for (cell, s) in cells.split_evenly((1, 17)).iter().zip(chosen) {
                let Some(s) = s else { continue };
                let (w, h) = cell.dim_in_pixel();
                let px = ((w.min(h) as usize).saturating_sub(4) / side).max(1) as i32;
                let img = &self.data.x[s * f..(s + 1) * f];
                for y in 0..side {
                    for x in 0..side {
                        let t = ((img[y * side + x] - lo) / span).clamp(0.0, 1.0) as f64;
                        let g = (255.0 * (1.0 - t)) as u8;
                        let (a, b) = (
                            (2 + x as i32 * px, 2 + y as i32 * px),
                            (2 + (x as i32 + 1) * px, 2 + (y as i32 + 1) * px),
                        );
                        cell.draw(&Rectangle::new([a, b], RGBColor(g, g, g).filled())).map_err(e2s)?;
                    }
                }
                let frame = [(2, 2), (2 + px * side as i32, 2 + px * side as i32)];
                cell.draw(&Rectangle::new(frame, BLACK.mix(0.3))).map_err(e2s)?;
            }
        }
        root.present().map_err(e2s)
    }
}

impl Extremes<'_> {
    fn classes(&self) -> Vec<usize> {
        let mut c: Vec<usize> = self.labels.iter().filter(|v| v.is_finite()).map(|&v| v as usize).collect();
        c.sort_unstable();
        c.dedup();
        c
    }
}

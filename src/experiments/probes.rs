//! Per-layer probes: what every layer's activations and gradients do, per seed, measured inside
//! the training loop (after the backward pass, before and after the update), as Glorot & Bengio
//! (2010) looked at them:
//! - per layer: activation mean, std, 2nd and 98th percentiles; the saturated fraction (units ×
//!   samples where the activation's derivative is below 1% of its maximum: sigmoid/tanh tails,
//!   ReLU's zero side); the dead fraction (units off for every sample); the back-propagated
//!   gradient with respect to the pre-activation, RMS and max |·|;
//! - per parameter tensor: gradient norm and RMS, weight norm, update-to-weight ratio ‖Δw‖/‖w‖;
//! - strided samples of activations, back-propagated and weight gradients at the first probe and
//!   the latest one, for histograms pooled over seeds.
//!
//! Probes run at iteration 1, at powers of two, and every `probe_every` iterations, so long runs
//! stay cheap and the early, fast-changing part of training is seen.

use crate::activations::Activation;
use crate::models::Net;
use serde::Serialize;

pub const LAYER_QUANTITIES: [&str; 8] =
    ["act_mean", "act_std", "act_p02", "act_p98", "saturated_fraction", "dead_fraction", "grad_rms", "grad_max"];
pub const PARAM_QUANTITIES: [&str; 4] = ["param_grad_norm", "param_grad_rms", "param_norm", "update_ratio"];
/// The histogram kinds: a layer's activations, its back-propagated gradient, a weight's gradient.
pub const HISTOGRAMS: [&str; 3] = ["activation", "backprop_gradient", "weight_gradient"];
/// Seeds whose probe rows layers.csv lists by default (all with `all_rows`).
pub const PER_SEED_ROWS: usize = 32;
/// Values kept per histogram, per seed and moment (strided over the tensor).
const SAMPLE: usize = 2048;

/// Whether iteration `it` is probed: 1, powers of two, multiples of `every`.
pub fn due(it: usize, every: usize) -> bool {
    every > 0 && (it == 1 || it.is_power_of_two() || it.is_multiple_of(every))
}

/// The probes of one setting, per seed.
#[derive(Clone, Debug, Default)]
pub struct Probes {
    /// `(layer or parameter, quantity)` of each key.
    pub keys: Vec<(String, &'static str)>,
    /// Per seed: `(iteration, key, value)`.
    pub rows: Vec<Vec<(u32, u16, f32)>>,
    /// `(layer or parameter, kind)` of each histogram.
    pub hist_keys: Vec<(String, &'static str)>,
    /// Per seed and histogram: samples at the first probe and at the latest one.
    pub first: Vec<Vec<Vec<f32>>>,
    pub last: Vec<Vec<Vec<f32>>>,
    /// Per seed: the iteration of the latest probe.
    pub last_iteration: Vec<u32>,
}

impl Probes {
    /// Appends another part's seeds (same network).
    pub fn extend(&mut self, other: Probes) {
        self.rows.extend(other.rows);
        self.first.extend(other.first);
        self.last.extend(other.last);
        self.last_iteration.extend(other.last_iteration);
    }

    /// Every seed's values of one key at its first probe and at its last.
    pub fn first_and_last(&self, key: usize) -> (Vec<f64>, Vec<f64>) {
        let mut first = vec![];
        let mut last = vec![];
        for rows in &self.rows {
            let mine: Vec<f64> = rows.iter().filter(|r| r.1 as usize == key).map(|r| r.2 as f64).collect();
            if let (Some(a), Some(b)) = (mine.first(), mine.last()) {
                first.push(*a);
                last.push(*b);
            }
        }
        (first, last)
    }

    /// A key's values over iterations: per probed iteration, every seed's value there.
    pub fn series(&self, key: usize) -> Vec<(u32, Vec<f64>)> {
        let mut by_it: std::collections::BTreeMap<u32, Vec<f64>> = Default::default();
        for rows in &self.rows {
            for r in rows.iter().filter(|r| r.1 as usize == key) {
                by_it.entry(r.0).or_default().push(r.2 as f64);
            }
        }
        by_it.into_iter().collect()
    }

    /// [`series`](Self::series) of every key, in one pass over the rows.
    pub fn all_series(&self) -> Vec<Vec<(u32, Vec<f64>)>> {
        let mut by_key: Vec<std::collections::BTreeMap<u32, Vec<f64>>> = vec![Default::default(); self.keys.len()];
        for rows in &self.rows {
            for &(it, key, v) in rows {
                by_key[key as usize].entry(it).or_default().push(v as f64);
            }
        }
        by_key.into_iter().map(|m| m.into_iter().collect()).collect()
    }

    pub fn key(&self, layer: &str, quantity: &str) -> Option<usize> {
        self.keys.iter().position(|(l, q)| l == layer && *q == quantity)
    }
}

/// Measures probes for a net during training; buffers sized once.
pub struct Prober {
    every: usize,
    /// Per layer: the largest |derivative| of its activation (for the saturation threshold).
    max_derivative: Vec<Option<f64>>,
    scratch: Vec<f32>,
    /// Per parameter: the weights before the update of a probed iteration (all models).
    before: Vec<Vec<f32>>,
    /// Key indices: per layer its first key, per parameter its first key.
    layer_keys: Vec<Vec<Option<u16>>>,
    param_keys: Vec<u16>,
    probed: bool,
}

/// The largest |f'(x)| of an activation, found on a fine grid (sigmoid ¼, tanh and ReLU 1, …).
fn max_derivative(act: Activation) -> f64 {
    (-4000..=4000).map(|i| act.value_and_derivative(i as f64 * 0.005).1.abs()).fold(0.0, f64::max)
}

impl Prober {
    pub fn new(net: &Net<f32>, every: usize) -> (Prober, Probes) {
        let e = net.graph.ensemble();
        let mut probes = Probes::default();
        let mut layer_keys = vec![];
        for l in &net.layers {
            let mut ks = vec![];
            for q in LAYER_QUANTITIES {
                let applies = match q {
                    "saturated_fraction" | "dead_fraction" => l.act.is_some(),
                    "grad_rms" | "grad_max" => !net.graph.grad(l.pre).is_empty(),
                    _ => true,
                };
                ks.push(applies.then(|| {
                    probes.keys.push((l.name.clone(), q));
                    (probes.keys.len() - 1) as u16
                }));
            }
            layer_keys.push(ks);
            probes.hist_keys.push((l.name.clone(), HISTOGRAMS[0]));
            if !net.graph.grad(l.pre).is_empty() {
                probes.hist_keys.push((l.name.clone(), HISTOGRAMS[1]));
            }
        }
        let mut param_keys = vec![];
        for (name, _, kind) in &net.params {
            param_keys.push(probes.keys.len() as u16);
            for q in PARAM_QUANTITIES {
                probes.keys.push((name.clone(), q));
            }
            if *kind == crate::models::ParamKind::Weight {
                probes.hist_keys.push((name.clone(), HISTOGRAMS[2]));
            }
        }
        let hists = probes.hist_keys.len();
        probes.rows = vec![vec![]; e];
        probes.first = vec![vec![vec![]; hists]; e];
        probes.last = vec![vec![vec![]; hists]; e];
        probes.last_iteration = vec![0; e];
        let largest = net.layers.iter().map(|l| net.graph.value(l.post).len()).max().unwrap_or(0);
        let prober = Prober {
            every,
            max_derivative: net.layers.iter().map(|l| l.act.map(max_derivative)).collect(),
            scratch: Vec::with_capacity(largest),
            before: net.params.iter().map(|(_, id, _)| vec![0.0; net.graph.value(*id).len()]).collect(),
            layer_keys,
            param_keys,
            probed: false,
        };
        (prober, probes)
    }

    pub fn due(&self, it: usize) -> bool {
        due(it, self.every)
    }

    /// After `backward`, before the update: everything but the update ratios.
    pub fn measure(&mut self, net: &Net<f32>, it: usize, active: &[bool], probes: &mut Probes) {
        let g = &net.graph;
        let e_count = active.len();
        let it32 = it as u32;
        for (e, _) in active.iter().enumerate().filter(|(_, a)| **a) {
            let first = probes.last_iteration[e] == 0;
            probes.last_iteration[e] = it32;
            let rows = &mut probes.rows[e];
            let mut hist = 0;
            for (k, l) in net.layers.iter().enumerate() {
                let keys = &self.layer_keys[k];
                let post = g.value(l.post);
                let shape = g.shape(l.post);
                let n = post.len() / shape[0];
                let slab = if shape[0] == 1 { &post[..n] } else { &post[e * n..(e + 1) * n] };
                let (mut sum, mut sq) = (0.0f64, 0.0f64);
                for &v in slab {
                    sum += v as f64;
                    sq += v as f64 * v as f64;
                }
                let mean = sum / n as f64;
                let std = (sq / n as f64 - mean * mean).max(0.0).sqrt();
                self.scratch.clear();
                self.scratch.extend_from_slice(slab);
                let (p02, p98) = percentiles(&mut self.scratch, 0.02, 0.98);
                let mut put = |q: usize, v: f64| {
                    if let Some(key) = keys[q] {
                        rows.push((it32, key, v as f32));
                    }
                };
                put(0, mean);
                put(1, std);
                put(2, p02);
                put(3, p98);
                if let (Some(d), Some(max)) = (g.activation_derivative(l.post), self.max_derivative[k]) {
                    let ds = if shape[0] == 1 { &d[..n] } else { &d[e * n..(e + 1) * n] };
                    let sat = ds.iter().filter(|x| (x.abs() as f64) < 0.01 * max).count();
                    put(4, sat as f64 / n as f64);
                    let b = shape[shape.len() - 1];
                    let units = n / b;
                    let dead = slab.chunks_exact(b).filter(|u| u.iter().all(|&v| v <= 0.0)).count();
                    put(5, dead as f64 / units as f64);
                }
                sample(&mut probes.first[e][hist], &mut probes.last[e][hist], slab, first);
                hist += 1;
                let grad = g.grad(l.pre);
                if !grad.is_empty() {
                    let gs = &grad[e * n..(e + 1) * n];
                    let (ss, mx) =
                        gs.iter().fold((0.0f64, 0.0f32), |(s, m), &v| (s + v as f64 * v as f64, m.max(v.abs())));
                    put(6, (ss / n as f64).sqrt());
                    put(7, mx as f64);
                    sample(&mut probes.first[e][hist], &mut probes.last[e][hist], gs, first);
                    hist += 1;
                }
            }
            for (p, (_, id, kind)) in net.params.iter().enumerate() {
                let (w, gr) = (g.value(*id), g.grad(*id));
                let n = w.len() / e_count;
                let (ws, gs) = (&w[e * n..(e + 1) * n], &gr[e * n..(e + 1) * n]);
                let gn = gs.iter().map(|&v| v as f64 * v as f64).sum::<f64>().sqrt();
                let wn = ws.iter().map(|&v| v as f64 * v as f64).sum::<f64>().sqrt();
                let key = self.param_keys[p];
                rows.push((it32, key, gn as f32));
                rows.push((it32, key + 1, (gn / (n as f64).sqrt()) as f32));
                rows.push((it32, key + 2, wn as f32));
                self.before[p][e * n..(e + 1) * n].copy_from_slice(ws);
                if *kind == crate::models::ParamKind::Weight {
                    sample(&mut probes.first[e][hist], &mut probes.last[e][hist], gs, first);
                    hist += 1;
                }
            }
        }
        self.probed = true;
    }

    /// After the update of a probed iteration: ‖Δw‖/‖w‖ per parameter tensor.
    pub fn after_step(&mut self, net: &Net<f32>, it: usize, active: &[bool], probes: &mut Probes) {
        if !std::mem::take(&mut self.probed) {
            return;
        }
        let e_count = active.len();
        for (e, _) in active.iter().enumerate().filter(|(_, a)| **a) {
            for (p, (_, id, _)) in net.params.iter().enumerate() {
                let w = net.graph.value(*id);
                let n = w.len() / e_count;
                let before = &self.before[p][e * n..(e + 1) * n];
                let (mut d2, mut w2) = (0.0f64, 0.0f64);
                for (&a, &b) in w[e * n..(e + 1) * n].iter().zip(before) {
                    d2 += (a as f64 - b as f64).powi(2);
                    w2 += b as f64 * b as f64;
                }
                let ratio = if w2 > 0.0 { (d2 / w2).sqrt() } else { f64::NAN };
                probes.rows[e].push((it as u32, self.param_keys[p] + 3, ratio as f32));
            }
        }
    }
}

/// Keeps a strided sample of `values`: in `first` at the first probe, in `last` at every one.
fn sample(first: &mut Vec<f32>, last: &mut Vec<f32>, values: &[f32], is_first: bool) {
    let stride = values.len().div_ceil(SAMPLE).max(1);
    last.clear();
    last.extend(values.iter().step_by(stride));
    if is_first {
        first.clone_from(last);
    }
}

/// Two quantiles (nearest rank) by selection; reorders `v`.
fn percentiles(v: &mut [f32], a: f64, b: f64) -> (f64, f64) {
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let rank = |q: f64| ((q * (v.len() - 1) as f64).round() as usize).min(v.len() - 1);
    let (ra, rb) = (rank(a), rank(b));
    let cmp = |x: &f32, y: &f32| x.total_cmp(y);
    v.select_nth_unstable_by(rb, cmp);
    let hi = v[rb] as f64;
    v[..rb + 1].select_nth_unstable_by(ra, cmp);
    (v[ra] as f64, hi)
}

/// Median and interquartile range over seeds of one probe at the first probe and at the end.
#[derive(Clone, Debug, Serialize)]
pub struct ProbeStat {
    pub layer: String,
    pub quantity: &'static str,
    /// `[p25, median, p75]` over seeds.
    pub first: [f64; 3],
    pub end: [f64; 3],
}

use crate::stats::quartiles;

pub fn summary(p: &Probes) -> Vec<ProbeStat> {
    (0..p.keys.len())
        .map(|k| {
            let (first, end) = p.first_and_last(k);
            ProbeStat {
                layer: p.keys[k].0.clone(),
                quantity: p.keys[k].1,
                first: quartiles(&first),
                end: quartiles(&end),
            }
        })
        .collect()
}

/// Writes `layers.csv` (`setting,seed,iteration,layer,quantity,value`) and the figures:
/// `gradient_flow` (back-propagated gradient RMS per layer at the first probe and the end,
/// median and IQR over seeds, one panel per setting), `probes` (per layer: gradient RMS and
/// saturated fraction over iterations) and `histograms-<setting>` (activations, back-propagated
/// and weight gradients at the first probe and the end, pooled over seeds).
pub fn write_outputs(dir: &std::path::Path, runs: &[crate::experiments::train::Run]) -> crate::error::Result<()> {
    use crate::report::figures::{Band, CurvePanels, Histograms, Panel, render};
    use std::fmt::Write;
    let with: Vec<(&crate::experiments::train::Run, &Probes)> =
        runs.iter().filter_map(|r| r.probes.as_ref().map(|p| (r, p))).collect();
    if with.is_empty() {
        return Ok(());
    }
    // Per seed: every seed with `all_rows`, else the first PER_SEED_ROWS (a thousand seeds'
    // probes are hundreds of megabytes of text); the quartiles over all seeds always.
    let mut csv = crate::report::atomic::AtomicFile::create(&dir.join("layers.csv"))?;
    csv.write(b"setting,seed,iteration,layer,quantity,value\n")?;
    let mut line = String::new();
    for (run, p) in &with {
        let seeds = if run.all_rows { run.seeds.len() } else { PER_SEED_ROWS.min(run.seeds.len()) };
        for (seed, rows) in run.seeds.iter().zip(&p.rows).take(seeds) {
            line.clear();
            for &(it, key, v) in rows {
                let (layer, q) = &p.keys[key as usize];
                let _ = writeln!(line, "{},{seed},{it},{layer},{q},{v}", run.setting);
            }
            csv.write(line.as_bytes())?;
        }
    }
    csv.finish()?;
    let mut quart = String::from("setting,iteration,layer,quantity,seeds,p25,median,p75\n");
    for (run, p) in &with {
        for ((layer, q), series) in p.keys.iter().zip(p.all_series()) {
            for (it, values) in series {
                let [a, b, c] = quartiles(&values);
                let _ = writeln!(quart, "{},{it},{layer},{q},{},{a},{b},{c}", run.setting, values.len());
            }
        }
    }
    crate::report::atomic::write_atomic(&dir.join("layers-quartiles.csv"), quart.as_bytes())?;
    let band_of = |points: Vec<(f64, Vec<f64>)>| {
        let mut b = Band { iterations: vec![], median: vec![], lo: vec![], hi: vec![] };
        for (x, v) in points {
            let q = quartiles(&v);
            if q[1].is_finite() {
                b.iterations.push(x);
                b.lo.push(q[0]);
                b.median.push(q[1]);
                b.hi.push(q[2]);
            }
        }
        b
    };
    // Gradient flow: one panel per setting.
    let mut flow = vec![];
    for (run, p) in &with {
        let keys: Vec<(usize, &str)> = p
            .keys
            .iter()
            .enumerate()
            .filter(|(_, (_, q))| *q == "grad_rms")
            .map(|(k, (l, _))| (k, l.as_str()))
            .collect();
        let (mut first, mut end) = (vec![], vec![]);
        for (x, &(k, _)) in keys.iter().enumerate() {
            let (a, b) = p.first_and_last(k);
            first.push(((x + 1) as f64, a));
            end.push(((x + 1) as f64, b));
        }
        flow.push(Panel {
            title: run.setting.clone(),
            y_label: "back-propagated gradient RMS (median, IQR)".into(),
            log_y: true,
            y_range: None,
            series: vec![("first probe (iteration 1)".into(), band_of(first)), ("end".into(), band_of(end))],
            x_names: keys.iter().map(|(_, l)| l.to_string()).collect(),
            x_desc: String::new(),
        });
    }
    render(
        &dir.join("gradient_flow"),
        &CurvePanels {
            title: "Gradient flow: ∂loss/∂(pre-activation) per layer, over seeds".into(),
            panels: flow,
            columns: 2,
        },
    )?;
    // Time series: per layer of the first run's network (shared by every setting of a study).
    let layers: Vec<String> = {
        let mut v: Vec<String> = vec![];
        for (l, q) in &with[0].1.keys {
            if *q == "grad_rms" && !v.contains(l) {
                v.push(l.clone());
            }
        }
        v
    };
    let mut panels = vec![];
    for layer in &layers {
        for (q, title, log) in [("grad_rms", "gradient RMS", true), ("saturated_fraction", "saturated fraction", false)]
        {
            let series: Vec<(String, Band)> = with
                .iter()
                .filter_map(|(run, p)| {
                    let k = p.key(layer, q)?;
                    Some((
                        run.setting.clone(),
                        band_of(p.series(k).into_iter().map(|(it, v)| (it as f64, v)).collect()),
                    ))
                })
                .collect();
            if !series.is_empty() {
                panels.push(Panel {
                    title: format!("{layer}: {title}"),
                    y_label: format!("{q} (median, IQR)"),
                    log_y: log,
                    y_range: (!log).then_some((0.0, 1.02)),
                    series,
                    x_names: vec![],
                    x_desc: String::new(),
                });
            }
        }
    }
    render(&dir.join("probes"), &CurvePanels { title: "Per-layer probes over training".into(), panels, columns: 2 })?;
    for (run, p) in &with {
        let panels = p
            .hist_keys
            .iter()
            .enumerate()
            .map(|(h, (layer, kind))| {
                let pool = |moment: &Vec<Vec<Vec<f32>>>| {
                    moment.iter().flat_map(|s| s[h].iter().copied()).collect::<Vec<f32>>()
                };
                (
                    format!("{layer}: {}", kind.replace('_', " ")),
                    vec![("first probe".to_string(), pool(&p.first)), ("end".to_string(), pool(&p.last))],
                )
            })
            .collect();
        let name = run.setting.replace(['/', ' '], "_");
        render(
            &dir.join(format!("histograms-{name}")),
            &Histograms {
                title: format!("{}: distributions pooled over {} seeds", run.setting, p.rows.len()),
                panels,
                columns: 3,
            },
        )?;
    }
    Ok(())
}

/// The probe just taken at `it`, per active seed: each layer's gradient RMS and saturated
/// fraction, for a live view.
pub fn report_live(live: &super::live::Live, p: &Probes, seeds: &[u64], active: &[bool], it: usize) {
    for (e, rows) in p.rows.iter().enumerate().filter(|(e, _)| active[*e]) {
        let mut layers: Vec<(String, f32, f32)> = vec![];
        // The probe just taken is the tail of the seed's rows.
        for &(_, key, v) in rows.iter().rev().take_while(|r| r.0 == it as u32) {
            let (layer, q) = &p.keys[key as usize];
            let slot = match layers.iter().position(|l| &l.0 == layer) {
                Some(k) => k,
                None => {
                    layers.push((layer.clone(), f32::NAN, f32::NAN));
                    layers.len() - 1
                }
            };
            match *q {
                "grad_rms" => layers[slot].1 = v,
                "saturated_fraction" => layers[slot].2 = v,
                _ => {}
            }
        }
        layers.retain(|l| l.1.is_finite() || l.2.is_finite());
        layers.reverse();
        live.probe(seeds[e], layers);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_selection_match_sorting() {
        let mut v: Vec<f32> = (0..101).map(|i| ((i * 37) % 101) as f32).collect();
        assert_eq!(percentiles(&mut v, 0.02, 0.98), (2.0, 98.0));
        assert!(due(1, 100) && due(64, 100) && due(300, 100) && !due(3, 100) && !due(1, 0));
    }
}

//! Per-layer probes: what every layer's activations and gradients do, per seed, measured inside
//! the training loop (after the backward pass, before and after the update), as Glorot & Bengio
//! (2010) looked at them:
//! - per layer: activation mean, std, 2nd and 98th percentiles; the saturated fraction (units ×
//!   samples where the activation's derivative is below 1% of its maximum: sigmoid/tanh tails,
//!   ReLU's zero side); the dead fraction (units off for every sample); the back-propagated
//!   gradient with respect to the pre-activation, RMS and max |·|;
//! - per BatchNorm layer: the mean over channels of its batch's |μ| and σ;
//! - per parameter tensor: gradient norm and RMS, weight norm, update-to-weight ratio ‖Δw‖/‖w‖;
//! - strided samples of activations, back-propagated and weight gradients at the first probe and
//!   the latest one, for histograms pooled over seeds.
//!
//! Probes run at iteration 1, at powers of two, and every `probe_every` iterations, so long runs
//! stay cheap and the early, fast-changing part of training is seen. They land in the run
//! record (`record::probes`); `report::probes` writes them out.

use super::{At, Observer};
use crate::engine::activations::Activation;
use crate::models::Net;
use crate::record::Run;
use crate::record::probes::{HISTOGRAMS, LAYER_QUANTITIES, PARAM_QUANTITIES, Probes};

/// Values kept per histogram, per seed and moment (strided over the tensor).
const SAMPLE: usize = 2048;

/// Whether iteration `it` is probed: 1, powers of two, multiples of `every`.
pub fn due(it: usize, every: usize) -> bool {
    every > 0 && (it == 1 || it.is_power_of_two() || it.is_multiple_of(every))
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
    /// As an observer: the record it starts, handed to the run at the start.
    pending: Option<Probes>,
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
                    "bn_batch_mean" | "bn_batch_std" => net.graph.batch_norm_statistics(l.pre).is_some(),
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
            pending: None,
        };
        (prober, probes)
    }

    /// A prober as an observer of a training run: probes land in `Run::probes`.
    pub fn observer(net: &Net<f32>, every: usize) -> Prober {
        let (mut p, probes) = Prober::new(net, every);
        p.pending = Some(probes);
        p
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
                if let Some((means, rstd, eps)) = g.batch_norm_statistics(l.pre) {
                    let c = means.len() / e_count;
                    let (ms, rs) = (&means[e * c..(e + 1) * c], &rstd[e * c..(e + 1) * c]);
                    put(8, ms.iter().map(|&m| (m as f64).abs()).sum::<f64>() / c as f64);
                    let std = |r: f32| (1.0 / (r as f64 * r as f64) - eps).max(0.0).sqrt();
                    put(9, rs.iter().map(|&r| std(r)).sum::<f64>() / c as f64);
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
    pub fn measure_update(&mut self, net: &Net<f32>, it: usize, active: &[bool], probes: &mut Probes) {
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

impl Observer for Prober {
    fn start(&mut self, _: &mut Net<f32>, run: &mut Run) -> crate::Result<()> {
        run.probes = self.pending.take();
        Ok(())
    }

    fn before_step(&mut self, net: &mut Net<f32>, at: &At, run: &mut Run) -> crate::Result<()> {
        if let (true, Some(probes)) = (self.due(at.it), run.probes.as_mut()) {
            self.measure(net, at.it, at.active, probes);
        }
        Ok(())
    }

    fn after_step(&mut self, net: &Net<f32>, at: &At, run: &mut Run) -> crate::Result<()> {
        if let Some(probes) = run.probes.as_mut() {
            self.measure_update(net, at.it, at.active, probes);
        }
        Ok(())
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

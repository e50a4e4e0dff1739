//! Per-layer probes as recorded (`training::probes` measures them): keys, per-seed rows,
//! histogram samples, and their quartiles over seeds for `summary.json`.

use crate::stats::quartiles;
use serde::Serialize;

/// `bn_batch_mean`, `bn_batch_std` (BatchNorm layers only): the mean over channels of |μ_c| and
/// of σ_c, the statistics of the batch the layer normalised (its input's distribution, whose
/// drift is the "internal covariate shift").
pub const LAYER_QUANTITIES: [&str; 10] = [
    "act_mean",
    "act_std",
    "act_p02",
    "act_p98",
    "saturated_fraction",
    "dead_fraction",
    "grad_rms",
    "grad_max",
    "bn_batch_mean",
    "bn_batch_std",
];
pub const PARAM_QUANTITIES: [&str; 4] = ["param_grad_norm", "param_grad_rms", "param_norm", "update_ratio"];
/// The histogram kinds: a layer's activations, its back-propagated gradient, a weight's gradient.
pub const HISTOGRAMS: [&str; 3] = ["activation", "backprop_gradient", "weight_gradient"];
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

#[derive(Clone, Debug, Serialize)]
pub struct ProbeStat {
    pub layer: String,
    pub quantity: &'static str,
    /// `[p25, median, p75]` over seeds.
    pub first: [f64; 3],
    pub end: [f64; 3],
}

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

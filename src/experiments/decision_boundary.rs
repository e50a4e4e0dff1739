//! Decision boundaries of networks on 2D data, as TensorFlow Playground draws them: every seed's
//! output over a grid of the plane `(x₁, x₂)` (through the data's input features), as one value
//! in [−1, 1] per point — the Playground's colour scale: −1 one class, +1 the other, 0 the
//! boundary — for seed 0 and as the median over seeds, whose washed-out regions are where the
//! seeds disagree; and each hidden unit's output for seed 0 (the Playground's small heatmaps).
//! Multi-class outputs give the predicted class instead, and the share of seeds that agree.

use crate::data::Samples;
use crate::data::playground::{self, Feature};
use crate::error::Result;
use crate::models::params::Point;
use crate::models::spec::NetworkSpec;
use crate::models::{Metric, Net};

/// The plane of 2D data: where the grid lies and what the network sees of a point.
#[derive(Clone, Debug)]
pub struct Plane {
    /// `[x₁ min, x₁ max, x₂ min, x₂ max]`.
    pub extent: [f64; 4],
    /// The input features of `(x₁, x₂)`; `None`: the point itself.
    pub features: Option<Vec<Feature>>,
}

impl Plane {
    /// The plane of raw 2D training samples: the Playground's [−6, 6]² for its sets
    /// (`playground`), else the samples' bounding box with a 10% margin.
    pub fn of(raw: &Samples, features: Option<Vec<Feature>>, playground: bool) -> Option<Plane> {
        if raw.shape != [2] {
            return None;
        }
        let d = playground::DOMAIN;
        if playground {
            return Some(Plane { extent: [-d, d, -d, d], features });
        }
        let (mut lo, mut hi) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
        for p in raw.x.chunks_exact(2) {
            for k in 0..2 {
                lo[k] = lo[k].min(p[k] as f64);
                hi[k] = hi[k].max(p[k] as f64);
            }
        }
        let pad = |k: usize| ((hi[k] - lo[k]) * 0.1).max(1e-3);
        Some(Plane { extent: [lo[0] - pad(0), hi[0] + pad(0), lo[1] - pad(1), hi[1] + pad(1)], features })
    }

    /// The plane of an experiment's `[data]`: its raw samples, its features, and whether it
    /// is one of the Playground's sets.
    pub fn of_data(d: &crate::experiments::lab::DataSection, raw: &Samples) -> Option<Plane> {
        let features = d.features.as_ref().and_then(|f| crate::experiments::lab::input_features(f).ok());
        let playground = d.generator.as_deref().and_then(playground::Playground::parse).is_some();
        Plane::of(raw, features, playground)
    }

    /// The centre of cell `(i, j)` of an `n × n` grid (row `j` from the top: largest x₂ first).
    pub fn point(&self, n: usize, i: usize, j: usize) -> [f64; 2] {
        let [x0, x1, y0, y1] = self.extent;
        [x0 + (i as f64 + 0.5) / n as f64 * (x1 - x0), y1 - (j as f64 + 0.5) / n as f64 * (y1 - y0)]
    }

    /// The grid's points as the network's input samples (targets of `like`'s kinds, zero).
    fn grid(&self, n: usize, like: &Samples) -> Samples {
        let mut xy = Vec::with_capacity(2 * n * n);
        for j in 0..n {
            for i in 0..n {
                let p = self.point(n, i, j);
                xy.extend([p[0] as f32, p[1] as f32]);
            }
        }
        let (x, shape) = match &self.features {
            Some(f) => (playground::transform(&xy, f), vec![f.len()]),
            None => (xy, vec![2]),
        };
        let targets = like
            .targets
            .iter()
            .map(|t| crate::data::Target { values: vec![0.0; t.width * n * n], ..t.clone() })
            .collect();
        Samples { x, shape, n: n * n, targets, source: "grid".into() }
    }
}

/// The samples of 2D data as `[x₁, x₂, value]` on the boundary's scale (±1 for two classes,
/// the class for more, the target clamped to [−1, 1] for real values) by target `target` (or
/// the first), with the number of classes when more than two.
pub fn points(raw: &Samples, target: &str) -> (Vec<[f32; 3]>, Option<usize>) {
    let Some(t) = raw.target(target).or_else(|| raw.targets.first()) else { return (vec![], None) };
    let values = (0..raw.n)
        .map(|i| {
            let y = t.values[i * t.width];
            let v = match t.classes {
                Some(2) => 2.0 * y - 1.0,
                Some(_) => y,
                None => y.clamp(-1.0, 1.0),
            };
            [raw.x[2 * i], raw.x[2 * i + 1], v]
        })
        .collect();
    (values, t.classes.filter(|&c| c > 2))
}

/// One network's boundary over an `n × n` grid, row-major from the top-left.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Boundary {
    pub n: usize,
    pub extent: [f64; 4],
    /// Classes of a multi-class output (then the maps hold class indices); `None`: values in [−1, 1].
    pub classes: Option<usize>,
    pub seed0: Vec<f32>,
    /// The median over seeds (multi-class: the most common class).
    pub median: Vec<f32>,
    /// The share of seeds on the median's side (multi-class: predicting its class).
    pub agreement: Vec<f32>,
    /// Seed 0's hidden units on every other grid point (`n/2 × n/2`), each scaled to [−1, 1]:
    /// `(layer, unit, values)`; empty for nets with more than [`MAX_UNITS`] hidden units.
    pub units: Vec<(String, usize, Vec<f32>)>,
}

/// Most hidden units shown one by one.
pub const MAX_UNITS: usize = 32;

/// A net that evaluates `seeds` models of `spec` on an `n × n` grid of `plane`.
pub fn grid_net(spec: &NetworkSpec, train: &Samples, seeds: usize, n: usize) -> Result<Net<f32>> {
    crate::models::spec::build(spec, train, seeds, n * n)
}

/// The boundary of the models whose parameters are `params` (one per model of `net`, which
/// [`grid_net`] built), on its grid of `plane`.
pub fn compute(net: &mut Net<f32>, plane: &Plane, train: &Samples, params: &[&Point]) -> Boundary {
    let e_count = net.graph.ensemble();
    assert_eq!(params.len(), e_count, "one parameter set per model");
    let b = net.batch;
    let n = (b as f64).sqrt().round() as usize;
    for (m, theta) in params.iter().enumerate() {
        crate::models::params::set_model(net, m, theta);
    }
    let grid = plane.grid(n, train);
    let all: Vec<usize> = (0..b).collect();
    net.feed(&grid, &all);
    net.graph.forward();
    let h = &net.heads[0];
    let k = net.graph.shape(h.score)[1];
    let score = net.graph.value(h.score);
    let value = |e: usize, s: usize| -> f32 {
        let v = &score[e * k * b..(e + 1) * k * b];
        match (h.metric, k) {
            (_, k) if k > 2 => crate::models::argmax_column(v, k, b, s) as f32,
            // Two classes: the difference of the two outputs (softmax: p₁ − p₀ = tanh(Δ/2)).
            (_, 2) => {
                let d = v[b + s] - v[s];
                if h.one_hot { d.clamp(-1.0, 1.0) } else { (d / 2.0).tanh() }
            }
            // A logit: 2σ(z) − 1 = tanh(z/2); else a probability-like output against labels 0/1.
            (Some(Metric::Binary { threshold }), _) => {
                if threshold == 0.0 {
                    (v[s] / 2.0).tanh()
                } else {
                    (2.0 * v[s] - 1.0).clamp(-1.0, 1.0)
                }
            }
            // Real targets (the Playground's ±1 labels, regression).
            _ => v[s].clamp(-1.0, 1.0),
        }
    };
    let classes = (k > 2).then_some(k);
    let seed0: Vec<f32> = (0..b).map(|s| value(0, s)).collect();
    let (mut median, mut agreement) = (Vec::with_capacity(b), Vec::with_capacity(b));
    let mut vals = vec![0.0f32; e_count];
    for s in 0..b {
        for (e, v) in vals.iter_mut().enumerate() {
            *v = value(e, s);
        }
        match classes {
            Some(k) => {
                let mut counts = vec![0usize; k];
                vals.iter().for_each(|&c| counts[c as usize] += 1);
                let best = (0..k).max_by_key(|&c| (counts[c], std::cmp::Reverse(c))).unwrap_or(0);
                median.push(best as f32);
                agreement.push(counts[best] as f32 / e_count as f32);
            }
            None => {
                vals.sort_by(f32::total_cmp);
                let m = if e_count % 2 == 1 {
                    vals[e_count / 2]
                } else {
                    0.5 * (vals[e_count / 2 - 1] + vals[e_count / 2])
                };
                median.push(m);
                let side = vals.iter().filter(|&&v| (v >= 0.0) == (m >= 0.0)).count();
                agreement.push(side as f32 / e_count as f32);
            }
        }
    }
    let total_units: usize = net.hidden.iter().map(|(_, id)| net.graph.shape(*id)[1]).sum();
    let mut units = vec![];
    let image = net.hidden.iter().any(|(_, id)| net.graph.shape(*id).len() != 3);
    if total_units <= MAX_UNITS && !image {
        let half = n / 2;
        for (name, id) in &net.hidden {
            let width = net.graph.shape(*id)[1];
            let v = &net.graph.value(*id)[..width * b];
            for u in 0..width {
                let mut map: Vec<f32> =
                    (0..half).flat_map(|j| (0..half).map(move |i| (2 * j) * n + 2 * i)).map(|s| v[u * b + s]).collect();
                let peak = map.iter().fold(0.0f32, |m, x| m.max(x.abs()));
                if peak > 1.0 {
                    map.iter_mut().for_each(|x| *x /= peak);
                }
                units.push((name.clone(), u, map));
            }
        }
    }
    Boundary { n, extent: plane.extent, classes, seed0, median, agreement, units }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::spec;

    /// A one-layer net `z = w·x + b` with sigmoid cross-entropy: the boundary is the line
    /// `w·x + b = 0`, the value tanh(z/2) exactly.
    #[test]
    fn a_linear_net_draws_its_line_and_the_median_sits_between_seeds() {
        let (train, _) = playground::generate(playground::Playground::Gauss, 40, 0.0, 1.0, 1);
        let spec: spec::NetworkSpec = toml::from_str(
            r#"layers = [{ type = "dense", units = 1 }]
               loss = "sigmoid_ce""#,
        )
        .unwrap();
        let plane = Plane::of(&train, None, true).unwrap();
        assert_eq!(plane.extent, [-6.0, 6.0, -6.0, 6.0]);
        let mut net = grid_net(&spec, &train, 3, 10).unwrap();
        // Seeds: x₁ > 0 is class 1; x₂ > 0; x₁ > 0 again, steeper.
        let p: Vec<Point> =
            vec![vec![vec![1.0, 0.0], vec![0.0]], vec![vec![0.0, 1.0], vec![0.0]], vec![vec![3.0, 0.0], vec![0.0]]];
        let b = compute(&mut net, &plane, &train, &p.iter().collect::<Vec<_>>());
        assert_eq!((b.n, b.seed0.len(), b.classes), (10, 100, None));
        for j in 0..10 {
            for i in 0..10 {
                let [x1, x2] = plane.point(10, i, j);
                let s = j * 10 + i;
                assert!((b.seed0[s] as f64 - (x1 / 2.0).tanh()).abs() < 1e-5, "{i},{j}");
                let mut v = [(x1 / 2.0).tanh(), (x2 / 2.0).tanh(), (3.0 * x1 / 2.0).tanh()];
                v.sort_by(f64::total_cmp);
                assert!((b.median[s] as f64 - v[1]).abs() < 1e-5);
                let side = v.iter().filter(|&&x| (x >= 0.0) == (v[1] >= 0.0)).count();
                assert_eq!(b.agreement[s], side as f32 / 3.0);
            }
        }
        assert!(b.units.is_empty(), "no hidden layer");
        // Other data: its bounding box with a 10% margin.
        let small = Samples { x: vec![0.0, 0.0, 1.0, 2.0], n: 2, ..train.clone() };
        let box_ = Plane::of(&small, None, false).unwrap().extent;
        assert!((box_[0] + 0.1).abs() < 1e-9 && (box_[1] - 1.1).abs() < 1e-9 && (box_[3] - 2.2).abs() < 1e-9);
        // Top-left is (−5.4, 5.4): x₁ < 0 → class 0 side for seed 0.
        assert!(b.seed0[0] < 0.0 && b.seed0[9] > 0.0);
    }

    #[test]
    fn features_feed_the_grid_and_hidden_units_are_drawn() {
        let (train, _) = playground::generate(playground::Playground::Circle, 40, 0.0, 1.0, 1);
        let features = vec![Feature::X1Squared, Feature::X2Squared];
        let sq = Samples { x: playground::transform(&train.x, &features), shape: vec![2], ..train.clone() };
        let spec: spec::NetworkSpec = toml::from_str(
            r#"layers = [{ type = "dense", units = 1, act = "identity" }, { type = "dense", units = 1 }]
               loss = "l2"
               target = "label"
               output_act = "tanh""#,
        )
        .unwrap();
        let plane = Plane::of(&train, Some(features), true).unwrap();
        let mut net = grid_net(&spec, &sq, 1, 8).unwrap();
        // hidden h = x₁² + x₂² − 6.25; out = tanh(−h): +1 inside the circle of radius 2.5.
        let p: Vec<Point> = vec![vec![vec![1.0, 1.0], vec![-6.25], vec![-1.0], vec![0.0]]];
        let b = compute(&mut net, &plane, &sq, &[&p[0]]);
        for (s, v) in b.seed0.iter().enumerate() {
            let [x1, x2] = plane.point(8, s % 8, s / 8);
            let want = (6.25 - x1 * x1 - x2 * x2).tanh();
            assert!((*v as f64 - want).abs() < 1e-5);
        }
        assert_eq!(b.units.len(), 1);
        let (_, u, map) = &b.units[0];
        assert_eq!((*u, map.len()), (0, 16));
        assert!(map.iter().all(|v| v.abs() <= 1.0));
    }
}

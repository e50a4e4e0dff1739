//! Optimisers with state shaped like the parameters, allocated once (`[E, ...]` per parameter,
//! one step count per model), following PyTorch's definitions exactly so that a trajectory can
//! be compared with `torch.optim` from the same parameters:
//! - `sgd`: `torch.optim.SGD` (dampening 0), optionally with `momentum` and `nesterov`;
//! - `adam` / `adamw`: `torch.optim.Adam` / `AdamW` (decoupled decay `p ← p·(1 − lr·wd)`);
//! - `rmsprop`: `torch.optim.RMSprop` (not centred), optionally with momentum.
//!
//! `weight_decay` of SGD, Adam and RMSprop is L2 added to the gradient of every parameter, as
//! in PyTorch. `l1` and `l2` are penalties in the loss on the weights alone (not biases, as
//! TensorFlow Playground's regularisation): `l1·Σ|w| + l2·½Σw²`, whose gradient
//! `l1·sign(w) + l2·w` joins the data's before clipping and the rule (the nets name their weights
//! with [`Optimizer::penalise`]).
//! `clip_norm` scales each model's gradients by `min(1, max/(‖g‖ + 1e-6))` first
//! (`torch.nn.utils.clip_grad_norm_`, the norm over all of that model's parameters).
//! A model that has stopped (`active[e] == false`) is not touched at all.
//!
//! `schedule` sets the learning rate of update `t` (1, 2, …; each model counts its own), as
//! PyTorch's schedulers stepped once per update: `step` (`StepLR`: lr·γ^⌊(t−1)/step_size⌋),
//! `exponential` (`ExponentialLR`: lr·γ^(t−1)), `cosine` (`CosineAnnealingLR`: η_min + (lr −
//! η_min)·(1 + cos(π·min(t−1, T)/T))/2). `warmup = w` first raises it linearly, lr·t/w for
//! t ≤ w, and the schedule then counts from t − w.

use crate::engine::{Graph, NodeId, Real};
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimKind {
    Sgd,
    Momentum,
    Nesterov,
    Adam,
    AdamW,
    RmsProp,
}

/// The report's learning rate (plain SGD).
pub const REPORT_LR: f64 = 0.1;

impl OptimKind {
    /// The learning rate when none is given: the report's 0.1 for the SGD family, PyTorch's
    /// defaults otherwise (Adam/AdamW 0.001, RMSprop 0.01).
    pub fn default_lr(self) -> f64 {
        match self {
            OptimKind::Adam | OptimKind::AdamW => 0.001,
            OptimKind::RmsProp => 0.01,
            _ => REPORT_LR,
        }
    }

    pub const NAMES: &'static [&'static str] = &["sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop"];

    pub fn parse(name: &str) -> Result<OptimKind, String> {
        Ok(match name {
            "sgd" => OptimKind::Sgd,
            "momentum" => OptimKind::Momentum,
            "nesterov" => OptimKind::Nesterov,
            "adam" => OptimKind::Adam,
            "adamw" => OptimKind::AdamW,
            "rmsprop" => OptimKind::RmsProp,
            other => {
                let hint = crate::names::did_you_mean(other, Self::NAMES);
                return Err(format!("unknown optimiser `{other}`{hint} (known: {})", Self::NAMES.join(", ")));
            }
        })
    }
}

/// An optimiser's hyperparameters, with PyTorch's defaults for what is not given.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct OptimConfig {
    pub name: OptimKind,
    pub lr: f64,
    /// SGD with momentum (`momentum`/`nesterov`: 0.9 by default), RMSprop (0 by default).
    pub momentum: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// RMSprop's smoothing constant.
    pub alpha: f64,
    /// L2 in the gradient (SGD, Adam, RMSprop) or decoupled decay (AdamW: 0.01 by default).
    pub weight_decay: f64,
    /// Clip each model's global gradient norm to this before the step.
    pub clip_norm: Option<f64>,
    /// Penalty rates on the weights: `l1·Σ|w| + l2·½Σw²` in the loss.
    #[serde(skip_serializing_if = "is_zero")]
    pub l1: f64,
    #[serde(skip_serializing_if = "is_zero")]
    pub l2: f64,
    /// The same on the biases (every parameter that is not a weight).
    #[serde(skip_serializing_if = "is_zero")]
    pub l1_bias: f64,
    #[serde(skip_serializing_if = "is_zero")]
    pub l2_bias: f64,
    /// The learning rate over updates (constant by default).
    #[serde(skip_serializing_if = "Schedule::is_constant")]
    pub schedule: Schedule,
    /// Updates of linear warm-up before the schedule.
    #[serde(skip_serializing_if = "is_zero_usize")]
    pub warmup: usize,
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

fn is_zero_usize(v: &usize) -> bool {
    *v == 0
}

/// A learning-rate schedule (see the module's documentation for the formulas).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(tag = "name", rename_all = "lowercase")]
pub enum Schedule {
    Constant,
    Step { step_size: usize, gamma: f64 },
    Exponential { gamma: f64 },
    Cosine { t_max: usize, eta_min: f64 },
}

impl Schedule {
    pub fn is_constant(&self) -> bool {
        *self == Schedule::Constant
    }
}

impl OptimConfig {
    /// `name` with PyTorch's defaults and learning rate `lr`.
    pub fn new(name: OptimKind, lr: f64) -> OptimConfig {
        OptimConfig {
            name,
            lr,
            momentum: match name {
                OptimKind::Momentum | OptimKind::Nesterov => 0.9,
                _ => 0.0,
            },
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            alpha: 0.99,
            weight_decay: if name == OptimKind::AdamW { 0.01 } else { 0.0 },
            clip_norm: None,
            l1: 0.0,
            l2: 0.0,
            l1_bias: 0.0,
            l2_bias: 0.0,
            schedule: Schedule::Constant,
            warmup: 0,
        }
    }

    /// Whether the learning rate changes over updates.
    pub fn scheduled(&self) -> bool {
        !self.schedule.is_constant() || self.warmup > 0
    }

    /// The learning rate of update `t` (1, 2, …).
    pub fn lr_at(&self, t: u64) -> f64 {
        let w = self.warmup as u64;
        if t <= w {
            return self.lr * t as f64 / w as f64;
        }
        let k = (t - w).saturating_sub(1); // updates of the schedule before this one
        match self.schedule {
            Schedule::Constant => self.lr,
            Schedule::Step { step_size, gamma } => self.lr * gamma.powi((k / step_size as u64) as i32),
            Schedule::Exponential { gamma } => self.lr * gamma.powf(k as f64),
            Schedule::Cosine { t_max, eta_min } => {
                let x = k.min(t_max as u64) as f64 / t_max as f64;
                eta_min + (self.lr - eta_min) * (1.0 + (std::f64::consts::PI * x).cos()) / 2.0
            }
        }
    }

    /// Whether the loss has a penalty on the weights or the biases.
    pub fn penalised(&self) -> bool {
        self.l1 != 0.0 || self.l2 != 0.0 || self.l1_bias != 0.0 || self.l2_bias != 0.0
    }

    /// Plain gradient descent at `lr`: the report's optimiser.
    pub fn sgd(lr: f64) -> OptimConfig {
        OptimConfig::new(OptimKind::Sgd, lr)
    }

    /// The first field at fault and why (the caller adds `optim.` or `--`).
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let pos = |v: f64| v.is_finite() && v > 0.0;
        if !pos(self.lr) {
            return Err(("lr", format!("must be a positive number, got {}", crate::names::number(self.lr))));
        }
        if !(self.momentum.is_finite() && (0.0..1.0).contains(&self.momentum)) {
            return Err(("momentum", format!("must be in [0, 1), got {}", crate::names::number(self.momentum))));
        }
        for (field, v) in [("beta1", self.beta1), ("beta2", self.beta2), ("alpha", self.alpha)] {
            if !(v.is_finite() && (0.0..1.0).contains(&v)) {
                return Err((field, format!("must be in [0, 1), got {}", crate::names::number(v))));
            }
        }
        if !pos(self.eps) {
            return Err(("eps", format!("must be a positive number, got {}", crate::names::number(self.eps))));
        }
        for (field, v) in [
            ("weight_decay", self.weight_decay),
            ("l1", self.l1),
            ("l2", self.l2),
            ("l1_bias", self.l1_bias),
            ("l2_bias", self.l2_bias),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err((field, format!("must be a finite number ≥ 0, got {}", crate::names::number(v))));
            }
        }
        if let Some(c) = self.clip_norm
            && !pos(c)
        {
            return Err(("clip_norm", format!("must be a positive number, got {}", crate::names::number(c))));
        }
        match self.schedule {
            Schedule::Step { step_size: 0, .. } => return Err(("step_size", "must be at least 1".into())),
            Schedule::Cosine { t_max: 0, .. } => return Err(("t_max", "must be at least 1".into())),
            Schedule::Step { gamma, .. } | Schedule::Exponential { gamma } if !pos(gamma) => {
                return Err(("gamma", format!("must be a positive number, got {}", crate::names::number(gamma))));
            }
            Schedule::Cosine { eta_min, .. } if !(eta_min.is_finite() && eta_min >= 0.0 && eta_min < self.lr) => {
                return Err(("eta_min", format!("must be in [0, lr = {}), got {eta_min}", self.lr)));
            }
            _ => {}
        }
        Ok(())
    }
}

/// `sign(w)` with `sign(0) = 0` (the subgradient L1 takes at zero, as `torch.sign`).
#[inline]
fn sign<T: Real>(w: T) -> T {
    let zero = T::default();
    if w > zero {
        T::from_f64(1.0)
    } else if w < zero {
        T::from_f64(-1.0)
    } else {
        zero
    }
}

/// An optimiser bound to a tape's parameters.
pub struct Optimizer<T: Real> {
    pub config: OptimConfig,
    params: Vec<NodeId>,
    /// First and second moment (or momentum buffer / square average), like each parameter.
    first: Vec<Vec<T>>,
    second: Vec<Vec<T>>,
    /// Updates applied so far, per model.
    steps: Vec<u64>,
    /// Per-model gradient scale from clipping.
    clip: Vec<T>,
    /// One model's largest parameter tensor: the clipped / decayed gradient.
    scratch: Vec<T>,
    /// Per parameter: whether it is a weight (`l1`, `l2`) or not (`l1_bias`, `l2_bias`);
    /// `None` until the net says which ([`Optimizer::penalise`]).
    penalised: Option<Vec<bool>>,
}

impl<T: Real> Optimizer<T> {
    pub fn new(config: OptimConfig, graph: &Graph<T>) -> Optimizer<T> {
        let params = graph.params();
        let sized = |needed: bool| {
            params.iter().map(|&p| if needed { vec![T::default(); graph.value(p).len()] } else { vec![] }).collect()
        };
        let (first, second) = match config.name {
            OptimKind::Sgd => (config.momentum > 0.0, false),
            OptimKind::Momentum | OptimKind::Nesterov => (true, false),
            OptimKind::Adam | OptimKind::AdamW => (true, true),
            OptimKind::RmsProp => (config.momentum > 0.0, true),
        };
        let e = graph.ensemble();
        let largest = params.iter().map(|&p| graph.value(p).len() / e).max().unwrap_or(0);
        Optimizer {
            config,
            first: sized(first),
            second: sized(second),
            params,
            steps: vec![0; e],
            clip: vec![T::from_f64(1.0); e],
            scratch: vec![T::default(); largest],
            penalised: None,
        }
    }

    /// A net's weights (`l1`, `l2` apply to them; `l1_bias`, `l2_bias` to the other parameters).
    pub fn penalise(mut self, weights: &[NodeId]) -> Optimizer<T> {
        self.penalised = Some(self.params.iter().map(|p| weights.contains(p)).collect());
        self
    }

    /// Parameter `k`'s penalty rates `(l1, l2)` (its gradient gains `l1·sign(w) + l2·w`), if any.
    #[inline]
    fn penalty(&self, k: usize) -> Option<(T, T)> {
        let c = &self.config;
        let weight = self.penalised.as_ref()?[k];
        let (l1, l2) = if weight { (c.l1, c.l2) } else { (c.l1_bias, c.l2_bias) };
        (l1 != 0.0 || l2 != 0.0).then(|| (T::from_f64(l1), T::from_f64(l2)))
    }

    /// Updates applied to model `e` so far.
    pub fn steps(&self, e: usize) -> u64 {
        self.steps[e]
    }

    /// One update of every active model from the gradients of the last `backward`.
    pub fn step(&mut self, graph: &mut Graph<T>, active: &[bool]) {
        let e_count = graph.ensemble();
        assert_eq!(active.len(), e_count, "one flag per model");
        let c = self.config;
        assert!(!c.penalised() || self.penalised.is_some(), "a penalty needs the net's weights (Optimizer::penalise)");
        if let Some(max) = c.clip_norm {
            for e in 0..e_count {
                let mut total = 0.0f64;
                for (k, &p) in self.params.iter().enumerate() {
                    let g = graph.grad(p);
                    let n = g.len() / e_count;
                    let gs = &g[e * n..(e + 1) * n];
                    total += match self.penalty(k) {
                        None => gs.iter().map(|v| v.to_f64() * v.to_f64()).sum::<f64>(),
                        Some((l1, l2)) => {
                            let ws = &graph.value(p)[e * n..(e + 1) * n];
                            gs.iter().zip(ws).map(|(&g, &w)| (g + l1 * sign(w) + l2 * w).to_f64().powi(2)).sum()
                        }
                    };
                }
                self.clip[e] = T::from_f64((max / (total.sqrt() + 1e-6)).min(1.0));
            }
        }
        for (e, &go) in active.iter().enumerate() {
            if go {
                self.steps[e] += 1;
            }
        }
        let (wd, mom) = (T::from_f64(c.weight_decay), T::from_f64(c.momentum));
        // Each model's learning rate for this update (its own count: all active models share it
        // unless some were added later, which does not happen).
        let lr_of = |steps: u64| if c.scheduled() { c.lr_at(steps) } else { c.lr };
        let l2 = c.weight_decay != 0.0 && c.name != OptimKind::AdamW;
        if c.name == OptimKind::Sgd && c.momentum == 0.0 && c.clip_norm.is_none() && !l2 && !c.penalised() {
            // Plain gradient descent, the report's: no state, one pass per tensor (the small
            // tensors of fc73 make per-model set-up visible in a step of ~1 µs).
            for &p in &self.params {
                let (values, grads) = graph.param_and_grad_mut(p);
                let n = values.len() / e_count;
                for (e, ((ps, gs), _)) in values
                    .chunks_exact_mut(n)
                    .zip(grads.chunks_exact(n))
                    .zip(active)
                    .enumerate()
                    .filter(|(_, (_, a))| **a)
                {
                    let lr = T::from_f64(lr_of(self.steps[e]));
                    for (p, &g) in ps.iter_mut().zip(gs) {
                        *p -= lr * g;
                    }
                }
            }
            return;
        }
        for (k, &p) in self.params.iter().enumerate() {
            let penalty = self.penalty(k);
            let (values, grads) = graph.param_and_grad_mut(p);
            let n = values.len() / e_count;
            for e in (0..e_count).filter(|&e| active[e]) {
                let (ps, gs) = (&mut values[e * n..(e + 1) * n], &grads[e * n..(e + 1) * n]);
                // The gradient the rule sees: clipped, plus L2 decay of the parameters before
                // the update; the raw gradient itself when neither applies (the common case).
                let g: &[T] = if c.clip_norm.is_some() || l2 || penalty.is_some() {
                    let scratch = &mut self.scratch[..n];
                    let s = self.clip[e];
                    for ((d, &gi), &pi) in scratch.iter_mut().zip(gs).zip(ps.iter()) {
                        let gi = match penalty {
                            Some((l1, l2)) => gi + l1 * sign(pi) + l2 * pi,
                            None => gi,
                        };
                        let gi = if c.clip_norm.is_some() { gi * s } else { gi };
                        *d = if l2 { gi + wd * pi } else { gi };
                    }
                    scratch
                } else {
                    gs
                };
                let first_step = self.steps[e] == 1;
                let lr_e = lr_of(self.steps[e]);
                let lr = T::from_f64(lr_e);
                let m = self.first[k].get_mut(e * n..(e + 1) * n);
                let v = self.second[k].get_mut(e * n..(e + 1) * n);
                match c.name {
                    OptimKind::Sgd | OptimKind::Momentum | OptimKind::Nesterov => match m {
                        None => {
                            for (p, &g) in ps.iter_mut().zip(g) {
                                *p -= lr * g;
                            }
                        }
                        Some(buf) => {
                            let nesterov = c.name == OptimKind::Nesterov;
                            for ((p, b), &g) in ps.iter_mut().zip(buf.iter_mut()).zip(g) {
                                *b = if first_step { g } else { *b * mom + g };
                                let d = if nesterov { g + *b * mom } else { *b };
                                *p -= lr * d;
                            }
                        }
                    },
                    OptimKind::Adam | OptimKind::AdamW => {
                        let (m, v) = (m.expect("adam has a first moment"), v.expect("and a second"));
                        let t = self.steps[e] as f64;
                        let bc1 = 1.0 - c.beta1.powf(t);
                        let bc2_sqrt = T::from_f64((1.0 - c.beta2.powf(t)).sqrt());
                        let step_size = T::from_f64(lr_e / bc1);
                        let (w1, b2, w2, eps) = (
                            T::from_f64(1.0 - c.beta1),
                            T::from_f64(c.beta2),
                            T::from_f64(1.0 - c.beta2),
                            T::from_f64(c.eps),
                        );
                        let decay = T::from_f64(1.0 - lr_e * c.weight_decay);
                        let decoupled = c.name == OptimKind::AdamW;
                        for (((p, mi), vi), &g) in ps.iter_mut().zip(m.iter_mut()).zip(v.iter_mut()).zip(g) {
                            if decoupled {
                                *p *= decay;
                            }
                            *mi += w1 * (g - *mi); // torch's lerp for weights below ½
                            *vi = *vi * b2 + w2 * g * g;
                            let denom = vi.sqrt() / bc2_sqrt + eps;
                            *p -= step_size * (*mi / denom);
                        }
                    }
                    OptimKind::RmsProp => {
                        let v = v.expect("rmsprop has a square average");
                        let (a, w, eps) = (T::from_f64(c.alpha), T::from_f64(1.0 - c.alpha), T::from_f64(c.eps));
                        match m {
                            None => {
                                for ((p, vi), &g) in ps.iter_mut().zip(v.iter_mut()).zip(g) {
                                    *vi = *vi * a + w * g * g;
                                    *p -= lr * (g / (vi.sqrt() + eps));
                                }
                            }
                            Some(buf) => {
                                for (((p, vi), b), &g) in ps.iter_mut().zip(v.iter_mut()).zip(buf.iter_mut()).zip(g) {
                                    *vi = *vi * a + w * g * g;
                                    *b = *b * mom + g / (vi.sqrt() + eps);
                                    *p -= lr * *b;
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Reduction;

    /// Two models, parameters `[1, 3]` each, loss mean over 3 of (p − t)²: gradient 2(p − t)/3.
    fn problem(p0: [[f64; 3]; 2]) -> (Graph<f64>, NodeId, NodeId) {
        let mut g = Graph::new(2);
        let p = g.param(&[1, 3]);
        let t = g.input(&[1, 1, 3]).unwrap();
        g.value_mut(t).copy_from_slice(&[0.5, -1.0, 2.0]);
        let loss = g.squared_error(p, t, 1.0, Reduction::Mean).unwrap();
        g.value_mut(p).copy_from_slice(&[p0[0], p0[1]].concat());
        (g, p, loss)
    }

    /// The update rules as textbooks and PyTorch's documentation write them, in plain f64, for
    /// one parameter vector with gradient function `grad`.
    fn reference(c: &OptimConfig, mut p: Vec<f64>, steps: usize, grad: impl Fn(&[f64]) -> Vec<f64>) -> Vec<f64> {
        let n = p.len();
        let (mut m, mut v) = (vec![0.0; n], vec![0.0; n]);
        for t in 1..=steps {
            let mut g = grad(&p);
            for (gi, &pi) in g.iter_mut().zip(&p) {
                *gi +=
                    c.l1 * if pi > 0.0 {
                        1.0
                    } else if pi < 0.0 {
                        -1.0
                    } else {
                        0.0
                    } + c.l2 * pi;
            }
            if let Some(max) = c.clip_norm {
                let norm = g.iter().map(|x| x * x).sum::<f64>().sqrt();
                let coef = (max / (norm + 1e-6)).min(1.0);
                g.iter_mut().for_each(|x| *x *= coef);
            }
            let lr = c.lr_at(t as u64);
            let c = &OptimConfig { lr, schedule: Schedule::Constant, warmup: 0, ..*c };
            for i in 0..n {
                let decoupled = c.name == OptimKind::AdamW;
                if decoupled {
                    p[i] *= 1.0 - c.lr * c.weight_decay;
                }
                let gi = if decoupled { g[i] } else { g[i] + c.weight_decay * p[i] };
                match c.name {
                    OptimKind::Sgd if c.momentum == 0.0 => p[i] -= c.lr * gi,
                    OptimKind::Sgd | OptimKind::Momentum | OptimKind::Nesterov => {
                        m[i] = if t == 1 { gi } else { c.momentum * m[i] + gi };
                        let d = if c.name == OptimKind::Nesterov { gi + c.momentum * m[i] } else { m[i] };
                        p[i] -= c.lr * d;
                    }
                    OptimKind::Adam | OptimKind::AdamW => {
                        m[i] = c.beta1 * m[i] + (1.0 - c.beta1) * gi;
                        v[i] = c.beta2 * v[i] + (1.0 - c.beta2) * gi * gi;
                        let mh = m[i] / (1.0 - c.beta1.powi(t as i32));
                        let vh = v[i] / (1.0 - c.beta2.powi(t as i32));
                        p[i] -= c.lr * mh / (vh.sqrt() + c.eps);
                    }
                    OptimKind::RmsProp => {
                        v[i] = c.alpha * v[i] + (1.0 - c.alpha) * gi * gi;
                        let step = gi / (v[i].sqrt() + c.eps);
                        if c.momentum > 0.0 {
                            m[i] = c.momentum * m[i] + step;
                            p[i] -= c.lr * m[i];
                        } else {
                            p[i] -= c.lr * step;
                        }
                    }
                }
            }
        }
        p
    }

    #[test]
    fn every_optimiser_follows_its_definition_and_a_stopped_model_stays() {
        let target = [0.5, -1.0, 2.0];
        let grad = |p: &[f64]| p.iter().zip(target).map(|(x, t)| 2.0 * (x - t) / 3.0).collect::<Vec<_>>();
        let configs = [
            OptimConfig::sgd(0.3),
            OptimConfig { weight_decay: 0.1, ..OptimConfig::sgd(0.3) },
            OptimConfig { momentum: 0.8, ..OptimConfig::sgd(0.2) },
            OptimConfig::new(OptimKind::Momentum, 0.1),
            OptimConfig::new(OptimKind::Nesterov, 0.1),
            OptimConfig::new(OptimKind::Adam, 0.05),
            OptimConfig { weight_decay: 0.05, ..OptimConfig::new(OptimKind::Adam, 0.05) },
            OptimConfig::new(OptimKind::AdamW, 0.05),
            OptimConfig::new(OptimKind::RmsProp, 0.01),
            OptimConfig { momentum: 0.5, ..OptimConfig::new(OptimKind::RmsProp, 0.01) },
            OptimConfig { clip_norm: Some(0.1), ..OptimConfig::new(OptimKind::Adam, 0.05) },
            OptimConfig { clip_norm: Some(0.05), ..OptimConfig::sgd(0.5) },
            OptimConfig { l2: 0.2, ..OptimConfig::sgd(0.3) },
            OptimConfig { l1: 0.05, ..OptimConfig::sgd(0.3) },
            OptimConfig { l1: 0.01, l2: 0.1, clip_norm: Some(0.2), ..OptimConfig::new(OptimKind::Adam, 0.05) },
            OptimConfig { schedule: Schedule::Step { step_size: 4, gamma: 0.5 }, ..OptimConfig::sgd(0.3) },
            OptimConfig {
                schedule: Schedule::Exponential { gamma: 0.9 },
                warmup: 3,
                ..OptimConfig::new(OptimKind::Momentum, 0.1)
            },
            OptimConfig {
                schedule: Schedule::Cosine { t_max: 20, eta_min: 0.001 },
                warmup: 5,
                ..OptimConfig::new(OptimKind::AdamW, 0.05)
            },
        ];
        let p0 = [[3.0, -2.0, 0.25], [-1.5, 4.0, 1.0]];
        for c in configs {
            let (mut g, p, loss) = problem(p0);
            let mut opt = Optimizer::new(c, &g).penalise(&[p]);
            for step in 0..25 {
                g.forward();
                g.backward(loss);
                // Model 1 stops after 10 updates.
                opt.step(&mut g, &[true, step < 10]);
            }
            let got = g.value(p).to_vec();
            for (e, steps) in [(0, 25), (1, 10)] {
                let want = reference(&c, p0[e].to_vec(), steps, grad);
                for (a, b) in got[e * 3..e * 3 + 3].iter().zip(&want) {
                    assert!((a - b).abs() <= 1e-12 * (1.0 + b.abs()), "{c:?} model {e}: {a} vs {b}");
                }
            }
            assert_eq!((opt.steps(0), opt.steps(1)), (25, 10));
        }
    }

    #[test]
    fn schedules_are_pytorchs_stepped_once_per_update() {
        let lr = 0.8;
        let at = |schedule, warmup, t| OptimConfig { schedule, warmup, ..OptimConfig::sgd(lr) }.lr_at(t);
        let step = Schedule::Step { step_size: 2, gamma: 0.5 };
        let got: Vec<f64> = (1..=5).map(|t| at(step, 0, t)).collect();
        assert_eq!(got, [0.8, 0.8, 0.4, 0.4, 0.2]);
        let exp = Schedule::Exponential { gamma: 0.5 };
        let got: Vec<f64> = (1..=5).map(|t| at(exp, 2, t)).collect();
        assert_eq!(got, [0.4, 0.8, 0.8, 0.4, 0.2], "warm-up lr·t/w, then the schedule from its start");
        let cos = Schedule::Cosine { t_max: 4, eta_min: 0.0 };
        let got: Vec<f64> = (1..=6).map(|t| at(cos, 0, t)).collect();
        let want = [
            0.8,
            0.8 * (1.0 + (std::f64::consts::PI / 4.0).cos()) / 2.0,
            0.4,
            0.8 * (1.0 + (0.75 * std::f64::consts::PI).cos()) / 2.0,
            0.0,
            0.0,
        ];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-12, "{got:?}");
        }
        assert_eq!(at(Schedule::Constant, 0, 1000), lr);
        let bad = |schedule| OptimConfig { schedule, ..OptimConfig::sgd(0.1) }.validate().unwrap_err().0;
        assert_eq!(bad(Schedule::Step { step_size: 0, gamma: 0.1 }), "step_size");
        assert_eq!(bad(Schedule::Exponential { gamma: 0.0 }), "gamma");
        assert_eq!(bad(Schedule::Cosine { t_max: 10, eta_min: 0.2 }), "eta_min");
    }

    /// `steps` full updates of both models of `g` by `opt`.
    fn train(g: &mut Graph<f64>, loss: NodeId, mut opt: Optimizer<f64>, steps: usize) {
        for _ in 0..steps {
            g.forward();
            g.backward(loss);
            opt.step(g, &[true, true]);
        }
    }

    #[test]
    fn the_penalty_spares_what_is_not_a_weight() {
        let (mut g, p, loss) = problem([[3.0, -2.0, 0.25], [-1.5, 4.0, 1.0]]);
        let (mut h, q, loss_h) = problem([[3.0, -2.0, 0.25], [-1.5, 4.0, 1.0]]);
        let spared = Optimizer::new(OptimConfig { l1: 0.1, l2: 0.5, ..OptimConfig::sgd(0.3) }, &g).penalise(&[]);
        let plain = Optimizer::new(OptimConfig::sgd(0.3), &h);
        train(&mut g, loss, spared, 5);
        train(&mut h, loss_h, plain, 5);
        assert_eq!(g.value(p), h.value(q));
        assert_eq!(OptimConfig { l1: -0.1, ..OptimConfig::sgd(0.1) }.validate().unwrap_err().0, "l1");
        // The bias rates reach what is not a weight: l2_bias = λ on a parameter not named a weight
        // is plain l2 = λ on one that is.
        let (mut g, p, loss) = problem([[3.0, -2.0, 0.25], [-1.5, 4.0, 1.0]]);
        let (mut h, q, loss_h) = problem([[3.0, -2.0, 0.25], [-1.5, 4.0, 1.0]]);
        let bias =
            Optimizer::new(OptimConfig { l2_bias: 0.4, l1_bias: 0.02, ..OptimConfig::sgd(0.3) }, &g).penalise(&[]);
        let weight = Optimizer::new(OptimConfig { l2: 0.4, l1: 0.02, ..OptimConfig::sgd(0.3) }, &h).penalise(&[q]);
        train(&mut g, loss, bias, 5);
        train(&mut h, loss_h, weight, 5);
        assert_eq!(g.value(p), h.value(q));
    }

    #[test]
    fn names_parse_and_bad_values_name_their_field() {
        assert_eq!(OptimKind::parse("adamw"), Ok(OptimKind::AdamW));
        assert!(OptimKind::parse("adma").unwrap_err().contains("did you mean `adam`"));
        assert_eq!(OptimConfig::sgd(-1.0).validate().unwrap_err().0, "lr");
        assert_eq!(
            OptimConfig { beta2: 1.0, ..OptimConfig::new(OptimKind::Adam, 0.1) }.validate().unwrap_err().0,
            "beta2"
        );
        assert_eq!(
            OptimConfig { clip_norm: Some(0.0), ..OptimConfig::sgd(0.1) }.validate().unwrap_err().0,
            "clip_norm"
        );
    }
}

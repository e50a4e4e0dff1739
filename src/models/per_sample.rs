//! Per-sample scores of every model of an ensemble: how right each training sample is
//! ([`Net::sample_scores`]: the verdict, the probability of the true class, EL2N) and how hard it
//! pulls on the parameters ([`PerSampleTwin`]: the norm of each sample's own loss gradient,
//! GraNd).
//!
//! Definitions (Paul et al. 2021, `mansheej/data_diet`; Swayamdipta et al. 2020,
//! `allenai/cartography`): for a softmax (argmax) head the probabilities are `softmax(score)`,
//! EL2N `‖softmax(score) − onehot(y)‖₂` and the true-class probability `softmax(score)[y]`. A
//! binary head is the two-class case: `q = σ(logit)` (or the output itself, clipped to [0, 1],
//! for an output judged at ½), the probabilities `(1 − q, q)`, so EL2N is `√2·|q − y|` and the
//! true-class probability `q` or `1 − q`. GraNd is `‖∇θ ℓ(x, y)‖₂` over every parameter, `ℓ` the
//! net's per-sample loss (each head's term times its weight, before the batch reduction).

use super::{Head, Metric, Net};
use crate::data::Samples;
use crate::engine::Real;
use crate::error::{Error, Result};

/// One sample's scores under one model.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SampleScore {
    pub correct: bool,
    /// The probability the head gives the sample's true class.
    pub p_true: f64,
    /// `‖p − onehot(y)‖₂`.
    pub el2n: f64,
}

/// The head the per-sample measures are about: the only head with a class rule (binary or
/// argmax). A named error for nets with none (regression) or several.
pub fn classification_head<T: Real>(net: &Net<T>) -> std::result::Result<usize, String> {
    let classes: Vec<usize> = (0..net.heads.len())
        .filter(|&k| matches!(net.heads[k].metric, Some(Metric::Binary { .. } | Metric::Argmax)))
        .collect();
    match classes[..] {
        [k] => Ok(k),
        [] => Err("per-sample measures need a classification head (softmax_ce, sigmoid_ce or l2 on class \
                   labels); this network's heads are regression heads"
            .into()),
        _ => Err(format!("per-sample measures need one classification head; this network has {}", classes.len())),
    }
}

impl<T: Real> Net<T> {
    /// Model `e`'s scores of the first `out.len()` samples of the batch under head `h`
    /// (after a forward pass).
    pub fn sample_scores(&self, h: &Head, e: usize, out: &mut [SampleScore]) {
        let g = &self.graph;
        let (b, k) = (self.batch, g.shape(h.score)[1]);
        let score = &g.value(h.score)[e * k * b..(e + 1) * k * b];
        let target = self.targets_of(h, e);
        let t_width = g.shape(h.target)[1];
        match h.metric {
            Some(Metric::Argmax) => {
                let mut p = vec![0f64; k];
                for (s, o) in out.iter_mut().enumerate() {
                    let class = if t_width == 1 {
                        target[s].to_f64() as usize
                    } else {
                        (1..t_width).fold(0, |best, c| if target[c * b + s] > target[best * b + s] { c } else { best })
                    };
                    // The prediction as `each_correct` makes it: the first highest score.
                    let pred = (1..k).fold(0, |best, c| if score[c * b + s] > score[best * b + s] { c } else { best });
                    let top = score[pred * b + s].to_f64();
                    let mut total = 0.0;
                    for (c, pc) in p.iter_mut().enumerate() {
                        *pc = (score[c * b + s].to_f64() - top).exp();
                        total += *pc;
                    }
                    let mut sq = 0.0;
                    for (c, pc) in p.iter_mut().enumerate() {
                        *pc /= total;
                        let d = *pc - if c == class { 1.0 } else { 0.0 };
                        sq += d * d;
                    }
                    *o = SampleScore { correct: pred == class, p_true: p[class], el2n: sq.sqrt() };
                }
            }
            Some(Metric::Binary { threshold }) => {
                // In f32 with the engine's branch-free exp (probabilities of f32 logits; the C
                // library's exp was half of what tracking cost an fc73 run).
                let (t, half) = (T::from_f64(threshold), T::from_f64(0.5));
                let logit = threshold == 0.0;
                for ((o, &v), &y) in out.iter_mut().zip(score).zip(target) {
                    let right = y > half;
                    let correct = (v > t) == right;
                    let x = v.to_f64() as f32;
                    // A logit (judged at 0) gives σ; an output judged at ½ is its own probability.
                    let q = if logit { 1.0 / (1.0 + crate::engine::fastmath::exp_f32(-x)) } else { x.clamp(0.0, 1.0) };
                    let p_true = if right { q } else { 1.0 - q } as f64;
                    *o = SampleScore { correct, p_true, el2n: std::f64::consts::SQRT_2 * (1.0 - p_true) };
                }
            }
            _ => panic!("sample scores need a classification head (see classification_head)"),
        }
    }
}

impl Net<f32> {
    /// Model `e`'s verdict and true-class probability (in f32) for the first `p.len()` samples
    /// of the batch under head `h`: what [`Net::sample_scores`] gives, without EL2N, as slices,
    /// so that tracking every evaluation stays cheap (it runs for every model at every
    /// evaluation: in f64 and as records it was half of an fc73 run).
    pub fn true_class_probs(&self, h: &Head, e: usize, p: &mut [f32], right: &mut [bool]) {
        let g = &self.graph;
        let (b, k) = (self.batch, g.shape(h.score)[1]);
        let score = &g.value(h.score)[e * k * b..(e + 1) * k * b];
        let target = self.targets_of(h, e);
        let exp = crate::engine::fastmath::exp_f32;
        match h.metric {
            Some(Metric::Binary { threshold }) => {
                let t = threshold as f32;
                let n = p.len();
                let (right, score, target) = (&mut right[..n], &score[..n], &target[..n]);
                for s in 0..n {
                    right[s] = (score[s] > t) == (target[s] > 0.5);
                }
                // A logit (judged at 0) gives σ; an output judged at ½ is its own probability.
                if threshold == 0.0 {
                    for s in 0..n {
                        let q = 1.0 / (1.0 + exp(-score[s]));
                        p[s] = if target[s] > 0.5 { q } else { 1.0 - q };
                    }
                } else {
                    for s in 0..n {
                        let q = score[s].clamp(0.0, 1.0);
                        p[s] = if target[s] > 0.5 { q } else { 1.0 - q };
                    }
                }
            }
            Some(Metric::Argmax) => {
                let t_width = g.shape(h.target)[1];
                for (s, (p, r)) in p.iter_mut().zip(right.iter_mut()).enumerate() {
                    let class = if t_width == 1 {
                        target[s] as usize
                    } else {
                        (1..t_width).fold(0, |best, c| if target[c * b + s] > target[best * b + s] { c } else { best })
                    };
                    let pred = (1..k).fold(0, |best, c| if score[c * b + s] > score[best * b + s] { c } else { best });
                    let top = score[pred * b + s];
                    let total: f32 = (0..k).map(|c| exp(score[c * b + s] - top)).sum();
                    *p = exp(score[class * b + s] - top) / total;
                    *r = pred == class;
                }
            }
            _ => panic!("sample scores need a classification head (see classification_head)"),
        }
    }
}

/// A twin of a network for per-sample gradients: `slots` models of batch 1 with per-model data,
/// each slot a copy of one (model, sample) pair of the trained net, so one backward pass gives
/// `slots` per-sample gradients at once — no loop over samples.
pub struct PerSampleTwin {
    net: Net<f32>,
}

impl PerSampleTwin {
    /// Wraps `twin`, built by `spec::build_fed(…, slots, 1, true)` from the description of
    /// `of`, the net whose models it will score.
    pub fn new(twin: Net<f32>, of: &Net<f32>) -> Result<PerSampleTwin> {
        if twin.batch != 1 || twin.graph.shape(twin.input)[0] != twin.graph.ensemble() {
            return Err(Error::Usage("the per-sample twin needs batch 1 and per-model data".into()));
        }
        let per_model = |n: &Net<f32>, id| n.graph.value(id).len() / n.graph.ensemble();
        for ((name, a, _), (_, b, _)) in of.params.iter().zip(&twin.params) {
            if per_model(of, *a) != per_model(&twin, *b) {
                return Err(Error::field(
                    "samples.score_at",
                    format!(
                        "per-sample gradients need parameters that do not depend on the batch; `{name}` does (per-sample biases)"
                    ),
                ));
            }
        }
        Ok(PerSampleTwin { net: twin })
    }

    /// For every model `e` of `net` and every sample of `data`: `(scores, GraNd)` in
    /// `out[e][sample]`. `net` must be the twin's network (same parameters in the same order).
    /// Every model's parameters are read as they are (a stopped model's are its last).
    pub fn scores(&mut self, net: &Net<f32>, data: &Samples, head: usize) -> Vec<Vec<(SampleScore, f64)>> {
        let e_count = net.graph.ensemble();
        let slots = self.net.graph.ensemble();
        let pairs = e_count * data.n;
        let mut out = vec![vec![(SampleScore::default(), 0.0); data.n]; e_count];
        let mut indices = vec![[0usize; 1]; slots];
        let mut one = [SampleScore::default()];
        for start in (0..pairs).step_by(slots) {
            let used = slots.min(pairs - start);
            // Slot c holds pair start + c = (model, sample); unused slots repeat the last pair.
            let pair = |c: usize| {
                let p = start + c.min(used - 1);
                (p / data.n, p % data.n)
            };
            for ((_, id, _), (_, tid, _)) in net.params.iter().zip(&self.net.params) {
                let src = net.graph.value(*id);
                let n = src.len() / e_count;
                let dst = self.net.graph.value_mut(*tid);
                for c in 0..slots {
                    let (e, _) = pair(c);
                    dst[c * n..(c + 1) * n].copy_from_slice(&src[e * n..(e + 1) * n]);
                }
            }
            for (c, ix) in indices.iter_mut().enumerate() {
                ix[0] = pair(c).1;
            }
            let refs: Vec<&[usize]> = indices.iter().map(|i| &i[..]).collect();
            self.net.feed_models(data, &refs);
            self.net.graph.forward();
            self.net.graph.backward(self.net.loss);
            let h = &self.net.heads[head];
            for c in 0..used {
                let (e, s) = pair(c);
                self.net.sample_scores(h, c, &mut one);
                let mut sq = 0f64;
                for (_, tid, _) in &self.net.params {
                    let g = self.net.graph.grad(*tid);
                    let n = g.len() / slots;
                    sq += g[c * n..(c + 1) * n].iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>();
                }
                out[e][s] = (one[0], sq.sqrt());
            }
        }
        out
    }
}

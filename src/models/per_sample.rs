//! Per-sample scores of every model of an ensemble: how right each training sample is
//! ([`Net::true_class_probs`]: the verdict and the probability of the true class; [`Net::el2n`])
//! and how hard it pulls on the parameters ([`PerSampleTwin`]: the norm of each sample's own
//! loss gradient, GraNd).
//!
//! Definitions (Paul et al. 2021, `mansheej/data_diet`; Swayamdipta et al. 2020,
//! `allenai/cartography`): for a softmax (argmax) head the probabilities are `softmax(score)`,
//! EL2N `‖softmax(score) − onehot(y)‖₂` and the true-class probability `softmax(score)[y]`. A
//! binary head is the two-class case: `q = σ(logit)` (or the output itself, clipped to [0, 1],
//! for an output judged at ½), the probabilities `(1 − q, q)`, so EL2N is `√2·|q − y|` and the
//! true-class probability `q` or `1 − q`. GraNd is `‖∇θ ℓ(x, y)‖₂` over every parameter, `ℓ` the
//! net's per-sample loss (each head's term times its weight, before the batch reduction).

use super::{Head, Metric, Net, argmax_column};
use crate::data::Samples;
use crate::engine::{NodeId, Real};
use crate::error::{Error, Result};

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

impl Net<f32> {
    /// Model `e`'s verdict and true-class probability (in f32, with the engine's branch-free
    /// exp) for the first `p.len()` samples of the batch under head `h`, as slices, so that
    /// tracking every evaluation stays cheap (it runs for every model at every evaluation: in
    /// f64, with the C library's exp and as records, it was half of an fc73 run).
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
                    let class = if t_width == 1 { target[s] as usize } else { argmax_column(target, t_width, b, s) };
                    // The prediction as `each_correct` makes it: the first highest score.
                    let pred = argmax_column(score, k, b, s);
                    let top = score[pred * b + s];
                    let total: f32 = (0..k).map(|c| exp(score[c * b + s] - top)).sum();
                    *p = exp(score[class * b + s] - top) / total;
                    *r = pred == class;
                }
            }
            _ => panic!("sample scores need a classification head (see classification_head)"),
        }
    }

    /// Model `e`'s EL2N for the first `out.len()` samples of the batch under head `h`: for a
    /// binary head from the true-class probability (√2·(1 − p)), for a softmax head from every
    /// class's probability, in f64.
    pub fn el2n(&self, h: &Head, e: usize, out: &mut [f64]) {
        if let Some(Metric::Binary { .. }) = h.metric {
            let (mut p, mut right) = (vec![0f32; out.len()], vec![false; out.len()]);
            self.true_class_probs(h, e, &mut p, &mut right);
            for (o, &p) in out.iter_mut().zip(&p) {
                *o = std::f64::consts::SQRT_2 * (1.0 - p as f64);
            }
            return;
        }
        assert!(matches!(h.metric, Some(Metric::Argmax)), "EL2N needs a classification head (see classification_head)");
        let g = &self.graph;
        let (b, k) = (self.batch, g.shape(h.score)[1]);
        let score = &g.value(h.score)[e * k * b..(e + 1) * k * b];
        let target = self.targets_of(h, e);
        let t_width = g.shape(h.target)[1];
        let mut p = vec![0f64; k];
        for (s, o) in out.iter_mut().enumerate() {
            let class = if t_width == 1 { target[s] as usize } else { argmax_column(target, t_width, b, s) };
            let top = score[argmax_column(score, k, b, s) * b + s] as f64;
            let mut total = 0.0;
            for (c, pc) in p.iter_mut().enumerate() {
                *pc = (score[c * b + s] as f64 - top).exp();
                total += *pc;
            }
            let mut sq = 0.0;
            for (c, pc) in p.iter().enumerate() {
                let d = pc / total - if c == class { 1.0 } else { 0.0 };
                sq += d * d;
            }
            *o = sq.sqrt();
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

    /// For every model `e` of `net` and every sample of `data`: `(EL2N, GraNd)` in
    /// `out[e][sample]`. `net` must be the twin's network (same parameters in the same order).
    /// Every model's parameters are read as they are (a stopped model's are its last).
    pub fn scores(&mut self, net: &Net<f32>, data: &Samples, head: usize) -> Vec<Vec<(f64, f64)>> {
        let e_count = net.graph.ensemble();
        let slots = self.net.graph.ensemble();
        let pairs = e_count * data.n;
        let mut out = vec![vec![(0.0, 0.0); data.n]; e_count];
        let mut indices = vec![[0usize; 1]; slots];
        let mut one = [0.0];
        let tensors: Vec<(NodeId, NodeId)> =
            net.tensors().zip(self.net.tensors()).map(|((_, a), (_, b))| (a, b)).collect();
        for start in (0..pairs).step_by(slots) {
            let used = slots.min(pairs - start);
            // Slot c holds pair start + c = (model, sample); unused slots repeat the last pair.
            let pair = |c: usize| {
                let p = start + c.min(used - 1);
                (p / data.n, p % data.n)
            };
            for (id, tid) in &tensors {
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
                self.net.el2n(h, c, &mut one);
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

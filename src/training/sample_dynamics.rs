//! Per-sample training dynamics (`[samples]` in a network file): every evaluation of every
//! training sample updates its forgetting count (Toneva et al. 2019) and its data-map
//! coordinates (Swayamdipta et al. 2020); at chosen iterations every sample's EL2N and GraNd
//! (Paul et al. 2021) are taken for every seed. Definitions as the reference code computes them:
//!
//! - an *evaluation* is every evaluated iteration with full batches, and with minibatches each
//!   presentation of the sample in its minibatch, judged by the forward pass before the step
//!   (as `example_forgetting`'s `run_mnist.py` records it);
//! - a *forgetting event* is a transition from right to wrong between two consecutive
//!   evaluations; a sample never right counts as many as it had evaluations;
//! - *confidence* is the mean probability of the true class over the evaluations,
//!   *variability* its standard deviation (ddof 0), *correctness* the fraction right;
//! - EL2N and GraNd as `models::per_sample` defines them.
//!
//! Nothing here changes the training: it reads the forward pass the loop made.

use super::{At, Observer, SampleOptions};
use crate::data::Samples;
use crate::models::Net;
use crate::models::per_sample::{PerSampleTwin, classification_head};
use crate::record::Run;
use crate::record::samples::{ScoredAt, SeedSamples};

/// Models × samples of the per-sample twin's one pass (its batch-1 models): big enough that a
/// pass is a few large products, small enough to stay in cache for small nets.
const TWIN_SLOTS: usize = 256;

pub struct SampleDynamics<'a> {
    data: &'a Samples,
    opts: &'a SampleOptions,
    full_batch: bool,
    head: usize,
    seeds: Vec<SeedSamples>,
    /// Per model and sample: right at the last evaluation.
    last_right: Vec<Vec<bool>>,
    /// Per model and sample: Welford's sum of squared deviations of the true-class probability.
    m2: Vec<Vec<f64>>,
    /// One evaluation's true-class probabilities and verdicts.
    p: Vec<f32>,
    right: Vec<bool>,
    twin: Option<PerSampleTwin>,
    /// The `score_at` iterations done so far.
    scored: usize,
}

impl<'a> SampleDynamics<'a> {
    /// For a net with a classification head (checked by the caller: `classification_head`).
    pub fn new(net: &Net<f32>, data: &'a Samples, opts: &'a SampleOptions, full_batch: bool) -> SampleDynamics<'a> {
        let head = classification_head(net).expect("checked when the options were made");
        SampleDynamics {
            data,
            opts,
            full_batch,
            head,
            seeds: vec![],
            last_right: vec![],
            m2: vec![],
            p: vec![0.0; net.batch],
            right: vec![false; net.batch],
            twin: None,
            scored: 0,
        }
    }

    /// Model `e`'s scores of the batch just evaluated (samples `fed`) enter its record.
    fn record(&mut self, net: &Net<f32>, e: usize, fed: &[usize], it: usize) {
        let k = fed.len();
        let (p, right) = (&mut self.p[..k], &mut self.right[..k]);
        net.true_class_probs(&net.heads[self.head], e, p, right);
        let (r, last, m2) = (&mut self.seeds[e], &mut self.last_right[e], &mut self.m2[e]);
        if self.opts.trace {
            r.trace.extend(
                fed.iter().zip(p.iter().zip(right.iter())).map(|(&s, (&p, &ok))| (it as u32, s as u32, ok, p as f64)),
            );
        }
        if self.full_batch {
            // Every sample, in order, each evaluated as often: one reciprocal, and loops over
            // slices that vectorise.
            let count = r.evaluations[0] + 1;
            let inv = 1.0 / count as f64;
            // Every slice cut to k up front, so the loop has no bounds checks left.
            let (fe, ever, corr) = (&mut r.forgetting_events[..k], &mut r.ever_correct[..k], &mut r.correct[..k]);
            let (conf, m2, last, p, right) =
                (&mut r.confidence[..k], &mut m2[..k], &mut last[..k], &p[..k], &right[..k]);
            for s in 0..k {
                let ok = right[s];
                fe[s] += u32::from(last[s] & !ok);
                last[s] = ok;
                ever[s] |= ok;
                corr[s] += u32::from(ok);
                // Welford's update of the mean and the sum of squared deviations.
                let x = p[s] as f64;
                let d = x - conf[s];
                conf[s] += d * inv;
                m2[s] += d * (x - conf[s]);
            }
            r.evaluations[..k].fill(count);
            return;
        }
        for (j, &s) in fed.iter().enumerate() {
            let ok = right[j];
            r.forgetting_events[s] += u32::from(last[s] & !ok);
            last[s] = ok;
            r.ever_correct[s] |= ok;
            r.correct[s] += u32::from(ok);
            r.evaluations[s] += 1;
            let x = p[j] as f64;
            let d = x - r.confidence[s];
            r.confidence[s] += d / r.evaluations[s] as f64;
            m2[s] += d * (x - r.confidence[s]);
        }
    }

    /// EL2N and GraNd of every sample under every model's current parameters.
    fn score(&mut self, net: &Net<f32>, it: usize) -> crate::Result<()> {
        if self.twin.is_none() {
            let spec = net.spec.as_ref().ok_or_else(|| {
                crate::Error::Usage("per-sample gradients need a network built from a description".into())
            })?;
            let slots = TWIN_SLOTS.min(net.graph.ensemble() * self.data.n);
            let twin = crate::models::spec::build_fed(spec, self.data, slots, 1, true)?;
            self.twin = Some(PerSampleTwin::new(twin, net)?);
        }
        let per_model = self.twin.as_mut().expect("made above").scores(net, self.data, self.head);
        for (r, scores) in self.seeds.iter_mut().zip(per_model) {
            r.scored.push(ScoredAt {
                iteration: it as u32,
                el2n: scores.iter().map(|&(el2n, _)| el2n).collect(),
                grand: scores.iter().map(|&(_, g)| g).collect(),
            });
        }
        Ok(())
    }
}

impl Observer for SampleDynamics<'_> {
    fn start(&mut self, net: &mut Net<f32>, _: &mut Run) -> crate::Result<()> {
        let (e, n) = (net.graph.ensemble(), self.data.n);
        self.seeds = vec![SeedSamples::new(n); e];
        self.last_right = vec![vec![false; n]; e];
        self.m2 = vec![vec![0.0; n]; e];
        Ok(())
    }

    fn evaluated(&mut self, net: &Net<f32>, at: &At, _: &mut Run, _: &mut bool) {
        if self.full_batch {
            for e in (0..at.active.len()).filter(|&e| at.active[e]) {
                self.record(net, e, at.fed, at.it);
            }
        }
    }

    fn before_step(&mut self, net: &mut Net<f32>, at: &At, _: &mut Run) -> crate::Result<()> {
        if !self.full_batch {
            for e in (0..at.active.len()).filter(|&e| at.active[e]) {
                self.record(net, e, at.fed, at.it);
            }
        }
        while self.opts.score_at.get(self.scored) == Some(&at.it) {
            self.score(net, at.it)?;
            self.scored += 1;
        }
        Ok(())
    }

    fn end(&mut self, net: &mut Net<f32>, run: &mut Run) -> crate::Result<()> {
        // Iterations not reached because every seed had stopped: each seed's parameters are
        // its last, which is what they would have been then. (An interrupted run leaves them out.)
        let all_stopped = (0..run.seeds.len()).all(|e| run.iterations[e].is_some() || run.diverged_at[e].is_some());
        while let Some(&it) = self.opts.score_at.get(self.scored).filter(|_| all_stopped) {
            self.score(net, it)?;
            self.scored += 1;
        }
        for (r, m2) in self.seeds.iter_mut().zip(&self.m2) {
            r.variability = m2
                .iter()
                .zip(&r.evaluations)
                .map(|(m, &k)| if k == 0 { f64::NAN } else { (m / k as f64).sqrt() })
                .collect();
            for (c, &k) in r.confidence.iter_mut().zip(&r.evaluations) {
                if k == 0 {
                    *c = f64::NAN;
                }
            }
        }
        run.samples = Some(std::mem::take(&mut self.seeds));
        Ok(())
    }
}

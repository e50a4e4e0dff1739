//! The one training configuration: every study, flag and experiment-file key ends up in
//! [`TrainOptions`], with one set of defaults ([`TrainOptions::new`], the report's) and one
//! validator ([`TrainOptions::validate`]) whose errors name the experiment-file key.

use crate::error::{Error, Result};
use crate::init::WeightInit;
use crate::optim::OptimConfig;
use serde::Serialize;

// The engine's `Reduction` in files and summaries: "mean" or "sum".
impl Serialize for crate::engine::Reduction {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for crate::engine::Reduction {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        crate::engine::Reduction::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// When a seed has finished (besides diverging or reaching `max_iters`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "rule")]
pub enum StopRule {
    /// 100% training accuracy on every head that has an accuracy (the report's rule).
    Accuracy,
    /// Training loss at or below `target`.
    Loss { target: f64 },
    /// Run `max_iters`.
    None,
}

/// How parameters start: a weight scheme and one constant for every bias.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct InitOptions {
    pub weights: WeightInit,
    pub bias: f64,
}

/// The one training configuration: every study, flag and experiment-file key ends up here, with
/// one set of defaults ([`TrainOptions::new`], the report's) and one validator.
#[derive(Clone, Debug, Serialize)]
pub struct TrainOptions {
    pub seeds: usize,
    pub first_seed: u64,
    pub max_iters: usize,
    pub init: InitOptions,
    pub optim: OptimConfig,
    /// Minibatch size; `None` trains on the whole training set every iteration.
    pub batch: Option<usize>,
    /// Seed of the minibatch order, reshuffled every epoch and shared by all models (so the
    /// data batch is fed once for the whole ensemble, and a seed trains the same in any ensemble).
    pub order_seed: u64,
    /// Evaluate (rows of metrics.csv, the stop rule) every K iterations; default 1 with full
    /// batches, one epoch with minibatches (then on the whole training set).
    pub eval_every: Option<usize>,
    /// Also evaluate the held-out set every K iterations (a multiple of `eval_every`) and early
    /// at iterations 2, 3, 5, 9, 17, …; `None`: only after training.
    pub held_out_every: Option<usize>,
    pub stop: StopRule,
    /// Per-layer probes (`probes.rs`) at iteration 1, powers of two and every K iterations;
    /// 0 turns them off.
    pub probe_every: usize,
    /// The largest Hessian eigenvalue (sharpness) every K evaluated iterations, per seed, by
    /// warm-started Lanczos on exact Hessian-vector products (full batch only); 0 turns it off.
    pub sharpness_every: usize,
    /// With `sharpness_every`: also the smallest eigenvalue (column `lambda_min`).
    pub lambda_min: bool,
    /// Start every model from these parameters (safetensors) instead of the random init.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init_from: Option<std::path::PathBuf>,
    /// Write each seed's final parameters here as `seed-<s>.safetensors`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub save_params: Option<std::path::PathBuf>,
    /// With `save_params`: also the initial parameters (`seed-<s>-iter-0.safetensors`) and
    /// every K updates, `seed-<s>-iter-<K·j>.safetensors` for the seeds still training (the
    /// parameters after K·j updates).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub save_every: Option<usize>,
    /// Write every evaluated row of every seed to metrics.csv; by default rows are thinned
    /// (see `kept_rows::keep_row`) and `curves.csv` holds the exact per-iteration quantiles over seeds.
    pub all_rows: bool,
    /// A watcher (`gradlab serve`): sees rows and probes as they come, may pause or stop the
    /// run; every part then has its own thread, so all seeds move at once. Changes no number.
    #[serde(skip)]
    pub live: Option<std::sync::Arc<super::live::Live>>,
    /// Per-sample dynamics (forgetting, data maps, EL2N and GraNd), when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub samples: Option<SampleOptions>,
    /// Each model trains on its own random subset of the training set (C-scores); the net
    /// must be built with per-model data (`spec::build_fed`) on batches of
    /// `subset_batch(…)`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subset: Option<Subset>,
    /// Keep every seed's final parameters in the run record (for decision boundaries).
    #[serde(skip)]
    pub keep_final_params: bool,
    /// Per training sample, whether its label was corrupted: rows then get `fit_clean` and
    /// `fit_flipped` (`flipped_fit`, the memorisation study).
    #[serde(skip)]
    pub flipped: Option<std::sync::Arc<Vec<bool>>>,
    /// The loss and gradient along each measured step's gradient direction (`gradient_line`,
    /// Santurkar et al.'s smoothness measures).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gradient_line: Option<super::gradient_line::LineOptions>,
}

/// What `sample_dynamics` measures besides forgetting and the data map, which it always does.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SampleOptions {
    /// EL2N and GraNd of every training sample at these iterations (the parameters after
    /// `it − 1` updates), for every seed.
    pub score_at: Vec<usize>,
    /// Keep every evaluation of every sample (`sample_evaluations.csv`), for checking the
    /// measures against an independent computation.
    pub trace: bool,
}

/// A model's own training subset: `⌊n·ratio⌋` samples drawn without replacement from the
/// model's seed (so a seed has the same subset in any ensemble), as Jiang et al.'s estimator
/// draws them.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Subset {
    pub ratio: f64,
}

impl Subset {
    /// Salt of the subset streams, so they differ from the weights' streams of the same seed.
    const SALT: u64 = 0x5ca1_ab1e_c5c0_4e55;

    pub fn size(&self, n: usize) -> usize {
        ((n as f64 * self.ratio) as usize).max(1)
    }

    /// Seed `seed`'s subset (sorted) and the stream that shuffles its minibatches.
    pub fn draw(&self, seed: u64, n: usize) -> (Vec<usize>, crate::init::SeededRng) {
        let mut rng = crate::init::SeededRng::new(seed ^ Self::SALT);
        let mut all: Vec<usize> = (0..n).collect();
        rng.shuffle(&mut all);
        let mut chosen = all[..self.size(n)].to_vec();
        chosen.sort_unstable();
        (chosen, rng)
    }

    /// The minibatch a net for this subset is built with.
    pub fn batch(&self, n: usize, batch: Option<usize>) -> usize {
        batch.unwrap_or(usize::MAX).min(self.size(n))
    }
}

/// The report's learning rate, initial weight std and bias, and iteration cap.
pub use crate::optim::REPORT_LR;
pub const REPORT_INIT_STD: f64 = 0.1;
pub const REPORT_BIAS: f64 = 0.1;
pub const REPORT_MAX_ITERS: usize = 10_000;
/// Seeds per setting unless asked otherwise.
pub const DEFAULT_SEEDS: usize = 32;
pub const MAX_SEEDS: usize = 100_000;
/// Held-out loss and accuracy every this many iterations (for the learning curves).
pub const DEFAULT_HELD_OUT_EVERY: usize = 50;
/// Probes every this many iterations (and at 1 and powers of two): cheap on long runs.
pub const DEFAULT_PROBE_EVERY: usize = 100;

/// Seeds when none are asked for: [`DEFAULT_SEEDS`], or 1 when every model would start from
/// the same given parameters.
pub fn default_seeds(init_given: bool) -> usize {
    if init_given { 1 } else { DEFAULT_SEEDS }
}

impl TrainOptions {
    /// The report's defaults: plain SGD at lr 0.1, truncated-normal weights of std 0.1, biases
    /// 0.1, full batch, stop at 100% training accuracy, cap 10 000.
    pub fn new(seeds: usize) -> TrainOptions {
        TrainOptions {
            seeds,
            first_seed: 0,
            max_iters: REPORT_MAX_ITERS,
            init: InitOptions { weights: WeightInit::TruncatedNormal { std: REPORT_INIT_STD }, bias: REPORT_BIAS },
            optim: OptimConfig::sgd(REPORT_LR),
            batch: None,
            order_seed: 0,
            eval_every: None,
            held_out_every: Some(DEFAULT_HELD_OUT_EVERY),
            stop: StopRule::Accuracy,
            probe_every: DEFAULT_PROBE_EVERY,
            sharpness_every: 0,
            lambda_min: false,
            init_from: None,
            save_params: None,
            save_every: None,
            all_rows: false,
            live: None,
            samples: None,
            subset: None,
            keep_final_params: false,
            flipped: None,
            gradient_line: None,
        }
    }

    /// The report's training with another learning rate and initial weight std.
    pub fn with_sgd(self, lr: f64, init_std: f64) -> TrainOptions {
        TrainOptions {
            optim: OptimConfig::sgd(lr),
            init: InitOptions { weights: WeightInit::TruncatedNormal { std: init_std }, ..self.init },
            ..self
        }
    }

    /// The weights' std when they are (truncated) normal, for tables.
    pub fn init_std(&self) -> Option<f64> {
        match self.init.weights {
            WeightInit::TruncatedNormal { std } | WeightInit::Normal { std } => Some(std),
            _ => None,
        }
    }

    /// Rows of metrics.csv (and stop checks) every this many iterations, for `n` training samples.
    pub fn every(&self, n: usize) -> usize {
        self.eval_every.unwrap_or(match self.batch {
            Some(b) if b < n => (n / b).max(1),
            _ => 1,
        })
    }

    /// Checks every value; the error names the experiment-file key (`optim.lr`, `train.seeds`,
    /// …), which the command line turns into its flag.
    pub fn validate(&self) -> Result<()> {
        let bad = |f: &str, m: String| Err(Error::field(f, m));
        if self.seeds == 0 {
            return bad("train.seeds", "must be at least 1".into());
        }
        if self.seeds > MAX_SEEDS {
            return bad("train.seeds", format!("{} is beyond the supported {MAX_SEEDS}", self.seeds));
        }
        if self.max_iters == 0 {
            return bad("train.max_iters", "must be at least 1".into());
        }
        if self.lambda_min && self.sharpness_every == 0 {
            return bad(
                "train.lambda_min",
                "needs train.sharpness_every (the smallest eigenvalue comes with the sharpness)".into(),
            );
        }
        if self.sharpness_every > 0 && self.batch.is_some() {
            return bad(
                "train.sharpness_every",
                "is measured on the full-batch loss: it needs full-batch training (no train.batch)".into(),
            );
        }
        if let Err(m) = self.init.weights.validate() {
            return bad("init.std", m);
        }
        if !self.init.bias.is_finite() {
            return bad("init.bias", format!("must be finite, got {}", crate::names::number(self.init.bias)));
        }
        if let Err((f, m)) = self.optim.validate() {
            return bad(&format!("optim.{f}"), m);
        }
        for (f, v) in [
            ("train.batch", self.batch),
            ("train.eval_every", self.eval_every),
            ("train.held_out_every", self.held_out_every),
            ("train.save_every", self.save_every),
        ] {
            if v == Some(0) {
                return bad(f, "must be at least 1".into());
            }
        }
        if let (Some(h), Some(e)) = (self.held_out_every, self.eval_every)
            && h % e != 0
        {
            return bad("train.held_out_every", format!("{h} is not a multiple of train.eval_every = {e}"));
        }
        if self.save_every.is_some() && self.save_params.is_none() {
            return bad("train.save_every", "needs train.save_params".into());
        }
        if let Some(s) = &self.samples
            && let Some(&bad_it) = s.score_at.iter().find(|&&it| it == 0 || it > self.max_iters)
        {
            return bad(
                "samples.score_at",
                format!("iteration {bad_it} is outside 1..={} (train.max_iters)", self.max_iters),
            );
        }
        if let Some(Subset { ratio }) = self.subset
            && !(ratio > 0.0 && ratio < 1.0)
        {
            return bad("samples.cscore_ratios", format!("{ratio} is not a ratio in (0, 1)"));
        }
        if let StopRule::Loss { target } = self.stop
            && !target.is_finite()
        {
            return bad("train.target_loss", format!("{target} is not finite"));
        }
        Ok(())
    }
}

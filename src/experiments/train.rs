//! The one training loop every study uses: an ensemble of models, one seed each, trained in
//! lockstep by any optimiser on full batches or minibatches; each seed stops on its own at the
//! stop rule (by default its first 100% training accuracy, measured before that iteration's
//! update) or at its first non-finite loss, gradient or parameter; the others go on.

use crate::data::Samples;
use crate::error::{Error, Result};
use crate::init::{SeededRng, WeightInit};
use crate::models::{Init, Net, dead_fraction};
use crate::optim::{OptimConfig, Optimizer};
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
    /// warm-started power iteration (full batch only); 0 turns it off.
    pub sharpness_every: usize,
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
    /// (see [`keep_row`]) and `curves.csv` holds the exact per-iteration quantiles over seeds.
    pub all_rows: bool,
    /// A watcher (`gradlab serve`): sees rows and probes as they come, may pause or stop the
    /// run; every part then has its own thread, so all seeds move at once. Changes no number.
    #[serde(skip)]
    pub live: Option<std::sync::Arc<super::live::Live>>,
}

/// The report's learning rate, initial weight std and bias, and iteration cap.
pub const REPORT_LR: f64 = 0.1;
pub const REPORT_INIT_STD: f64 = 0.1;
pub const REPORT_BIAS: f64 = 0.1;
pub const REPORT_MAX_ITERS: usize = 10_000;
pub const MAX_SEEDS: usize = 100_000;
/// Held-out loss and accuracy every this many iterations (for the learning curves).
pub const DEFAULT_HELD_OUT_EVERY: usize = 50;
/// Probes every this many iterations (and at 1 and powers of two): cheap on long runs.
pub const DEFAULT_PROBE_EVERY: usize = 100;

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
            init_from: None,
            save_params: None,
            save_every: None,
            all_rows: false,
            live: None,
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
        if let Err(m) = self.init.weights.validate() {
            return bad("init.std", m);
        }
        if !self.init.bias.is_finite() {
            return bad("init.bias", format!("must be finite, got {}", self.init.bias));
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
        if let StopRule::Loss { target } = self.stop
            && !target.is_finite()
        {
            return bad("train.target_loss", format!("{target} is not finite"));
        }
        Ok(())
    }
}

/// Runs named settings one after another with progress and interruption, `(names, max_iters,
/// seeds, run) → (runs, ran to the end)`: the command line supplies one with progress bars and
/// Ctrl-C; `run(k, progress)` trains setting `k`. Studies that orchestrate several runs take one.
pub type Runner<'r> = dyn FnMut(
        &[String],
        usize,
        usize,
        &mut dyn FnMut(usize, &mut dyn FnMut(usize, usize) -> bool) -> Result<Run>,
    ) -> Result<(Vec<Run>, bool)>
    + 'r;

/// One setting's outcome: per seed, a row of metrics every `every` iterations until it stopped.
#[derive(Clone, Debug)]
pub struct Run {
    pub setting: String,
    pub seeds: Vec<u64>,
    /// Metric names, the columns of `rows` (CSV columns after `setting,seed,iteration`).
    pub columns: Vec<String>,
    /// Per seed: `rows × columns` values, row-major, at the iterations in `at`.
    pub rows: Vec<Vec<f32>>,
    /// Per seed: the iteration (from 1) of each row. Rows are evaluated every `every`
    /// iterations and kept as [`keep_row`] says (all of them with `all_rows`), plus every row
    /// with a sharpness measurement, held-out rows on their own log grid, and each seed's last.
    pub at: Vec<Vec<u32>>,
    pub every: usize,
    /// First iteration (from 1) at which the stop rule held (every accuracy 100% by default).
    pub iterations: Vec<Option<usize>>,
    /// First iteration at which a loss, gradient or parameter was not finite.
    pub diverged_at: Vec<Option<usize>>,
    /// Largest |parameter| of the seed while all were finite.
    pub max_abs_weight: Vec<f64>,
    /// Per seed, after training: accuracy on a held-out set, as `accuracy` is defined (for
    /// several heads the smallest); `None` when no held-out set was given; NaN for a diverged seed.
    pub held_out_accuracy: Option<Vec<f64>>,
    /// For several heads: each head's held-out accuracy per seed, by its accuracy column.
    pub held_out_heads: Vec<(String, Vec<f64>)>,
    /// Per-layer probes, when asked for.
    pub probes: Option<super::probes::Probes>,
    /// Full-batch classification: per seed and training sample, the first evaluated iteration
    /// from which the sample stayed correct (on every head with an accuracy) until the seed
    /// stopped; `None` if it was wrong at the end. A sample that flips back is not learned.
    pub learned_at: Option<Vec<Vec<Option<u32>>>>,
    /// metrics.csv gets every row rather than the thinned ones ([`TrainOptions::all_rows`]).
    pub all_rows: bool,
}

impl Run {
    /// One metric of one seed over its rows.
    pub fn column(&self, seed_index: usize, name: &str) -> Vec<f32> {
        let c = self.columns.iter().position(|n| n == name).unwrap_or_else(|| panic!("no column `{name}`"));
        self.rows[seed_index].chunks_exact(self.columns.len()).map(|r| r[c]).collect()
    }

    /// The iterations of one seed's rows.
    pub fn row_iterations(&self, seed_index: usize) -> &[u32] {
        &self.at[seed_index]
    }

    /// A metric for every seed.
    pub fn columns_of(&self, name: &str) -> Vec<Vec<f32>> {
        (0..self.seeds.len()).map(|s| self.column(s, name)).collect()
    }

    /// A metric's last value for every seed (NaN for a seed with no rows).
    pub fn column_last(&self, name: &str) -> Vec<f64> {
        self.columns_of(name).iter().map(|c| c.last().map_or(f64::NAN, |&v| v as f64)).collect()
    }

    pub fn converged(&self) -> usize {
        self.iterations.iter().flatten().count()
    }
    pub fn diverged(&self) -> usize {
        self.diverged_at.iter().flatten().count()
    }
}

/// One evaluation of a seed's samples: a correct sample keeps (or starts) its learned
/// iteration, a wrong one loses it, so what remains is where each stayed correct from.
/// `0` stands for "not learned" (iterations count from 1): a select per sample, which
/// vectorises (matching on `Option`s was a quarter of the training loop's own time).
pub fn update_learned(learned: &mut [u32], right: &[bool], it: usize) {
    let it = it as u32;
    for (slot, &ok) in learned.iter_mut().zip(right) {
        let kept = if *slot == 0 { it } else { *slot };
        *slot = if ok { kept } else { 0 };
    }
}

/// Per active model: max |p| over all parameters, or `None` if any parameter is not finite
/// (stopped models: `Some(0.0)`, unread). For the gradients (`grads`) only finiteness is used:
/// a tensor that is finite as a whole (one vectorised pass over every model) gives `Some(0.0)`
/// without the per-model scans.
fn max_abs_params(net: &Net<f32>, out: &mut [Option<f64>], grads: bool, active: &[bool]) {
    let e_count = out.len();
    out.iter_mut().for_each(|v| *v = Some(0.0));
    for &(_, id, _) in &net.params {
        let data = if grads { net.graph.grad(id) } else { net.graph.value(id) };
        if grads && max_abs_finite(data).is_some() {
            continue;
        }
        let n = data.len() / e_count;
        for (e, slot) in out.iter_mut().enumerate().filter(|(e, _)| active[*e]) {
            if let Some(m) = slot {
                *slot = max_abs_finite(&data[e * n..(e + 1) * n]).map(|l| l.max(*m as f32) as f64);
            }
        }
    }
}

/// The largest |v|, or `None` if some value is not finite. On the bits: |v|'s bits order like
/// |v| for every non-NaN value, and ±∞ and NaN are exactly those at or above ∞'s — one integer
/// max that vectorises (a float max with a finiteness sum did not: a tenth of Table 1's run).
#[inline]
fn max_abs_finite(data: &[f32]) -> Option<f32> {
    let top = data.iter().fold(0u32, |m, v| m.max(v.to_bits() & 0x7fff_ffff));
    (top < f32::INFINITY.to_bits()).then(|| f32::from_bits(top))
}

/// Per model, on a whole dataset: the total loss (on the training loss's scale), each head's
/// loss and accuracy, and the accuracy (smallest over heads that have one; NaN if none has).
#[derive(Clone, Debug)]
pub struct Evaluation {
    pub loss: Vec<f64>,
    pub accuracy: Vec<f64>,
    pub head_loss: Vec<Vec<f64>>,
    pub head_accuracy: Vec<Vec<f64>>,
}

impl Evaluation {
    fn zeros(models: usize, heads: usize) -> Evaluation {
        Evaluation {
            loss: vec![0.0; models],
            accuracy: vec![f64::NAN; models],
            head_loss: vec![vec![0.0; models]; heads],
            head_accuracy: vec![vec![0.0; models]; heads],
        }
    }

    /// Per model: the smallest accuracy among the heads that have one (NaN if none has).
    fn set_accuracy(&mut self, heads: &[crate::models::Head]) {
        for (e, acc) in self.accuracy.iter_mut().enumerate() {
            *acc = heads
                .iter()
                .zip(&self.head_accuracy)
                .filter(|(h, _)| h.metric.is_some())
                .map(|(_, a)| a[e])
                .fold(f64::NAN, |m, a| if m.is_nan() { a } else { m.min(a) });
        }
    }
}

/// Evaluates every model on `data` in batches of the net's batch size (the last one padded
/// and only its real samples counted). Leaves the net's input holding the last batch.
pub fn evaluate(net: &mut Net<f32>, data: &Samples) -> Evaluation {
    let (batch, e_count, heads) = (net.batch, net.graph.ensemble(), net.heads.len());
    let mut ev = Evaluation::zeros(e_count, heads);
    let (mut counts, mut sums) = (vec![0usize; e_count], vec![0.0f64; e_count]);
    let mut indices = vec![0usize; batch];
    for start in (0..data.n).step_by(batch) {
        let valid = batch.min(data.n - start);
        for (s, i) in indices.iter_mut().enumerate() {
            *i = start + if s < valid { s } else { 0 };
        }
        net.feed(data, &indices);
        net.graph.forward();
        for (k, h) in net.heads.iter().enumerate() {
            net.correct(h, valid, &mut counts);
            net.loss_sum(h, valid, &mut sums);
            for e in 0..e_count {
                ev.head_accuracy[k][e] += counts[e] as f64;
                ev.head_loss[k][e] += sums[e];
            }
        }
    }
    for (k, h) in net.heads.iter().enumerate() {
        for e in 0..e_count {
            ev.head_accuracy[k][e] /= data.n as f64;
            ev.head_loss[k][e] *= h.sum_scale / data.n as f64;
            ev.loss[e] += h.weight * ev.head_loss[k][e];
        }
    }
    ev.set_accuracy(&net.heads);
    ev
}

/// Trains `net` (already built for `opts.seeds` models on batches of `opts.batch` or all of
/// `data`). `progress(iteration, converged)` runs once per iteration; returning `false` stops
/// (Ctrl-C). Iteration `i` evaluates the parameters after `i − 1` updates.
pub fn train(
    setting: &str,
    net: &mut Net<f32>,
    data: &Samples,
    held_out: Option<&Samples>,
    opts: &TrainOptions,
    progress: &mut dyn FnMut(usize, usize) -> bool,
) -> Result<Run> {
    // Subnormals flush to zero on this thread while it trains (see engine::denormals).
    let _ftz = crate::engine::denormals::FlushDenormals::new();
    let e_count = opts.seeds;
    let init = Init::seeds(opts.first_seed, e_count, opts.init.weights, opts.init.bias);
    net.init(&init);
    if let Some(path) = &opts.init_from {
        crate::models::params::load_all(net, path)?;
    }
    if let (Some(dir), Some(_)) = (&opts.save_params, opts.save_every) {
        for (e, seed) in init.seeds.iter().enumerate() {
            crate::models::params::save(net, e, &dir.join(format!("seed-{seed}-iter-0.safetensors")))?;
        }
    }
    let batch = net.batch;
    let full_batch = batch == data.n;
    let every = opts.every(data.n);
    let curve = held_out.zip(opts.held_out_every);
    let many_heads = net.heads.len() > 1;
    let mut columns: Vec<String> = vec!["loss".into(), "accuracy".into()];
    if many_heads {
        columns.extend(net.heads.iter().map(|h| h.loss_column.clone()));
        columns.extend(net.heads.iter().map(|h| h.accuracy_column.clone()));
    }
    columns.push("max_abs_weight".into());
    columns.extend(net.hidden.iter().map(|(name, _)| format!("dead_fraction_{name}")));
    if curve.is_some() {
        columns.extend(["held_out_loss".into(), "held_out_accuracy".into()]);
    }
    let sharpness_every = if full_batch { opts.sharpness_every } else { 0 };
    if sharpness_every > 0 {
        columns.push("sharpness".into());
    }
    let n_cols = columns.len();

    let mut run = Run {
        setting: setting.to_string(),
        seeds: init.seeds.clone(),
        columns,
        rows: vec![Vec::new(); e_count],
        at: vec![Vec::new(); e_count],
        every,
        iterations: vec![None; e_count],
        diverged_at: vec![None; e_count],
        max_abs_weight: vec![0.0; e_count],
        held_out_accuracy: None,
        held_out_heads: vec![],
        probes: None,
        learned_at: None,
        all_rows: opts.all_rows,
    };
    let track = full_batch && net.heads.iter().any(|h| h.metric.is_some());
    let mut learned: Vec<Vec<u32>> = if track { vec![vec![0; data.n]; e_count] } else { vec![] };
    let mut right = vec![true; if track { data.n } else { 0 }];
    let mut prober = (opts.probe_every > 0).then(|| {
        let (p, probes) = super::probes::Prober::new(net, opts.probe_every);
        run.probes = Some(probes);
        p
    });
    let mut optimizer = Optimizer::new(opts.optim, &net.graph);
    let mut sharp = (sharpness_every > 0).then(|| super::curvature::Sharpness::new(net, &init.seeds));
    let mut active = vec![true; e_count];
    // The training-set metrics of the current row: from the training forward itself (full
    // batch) or from a separate pass over the whole set (minibatches).
    let heads = net.heads.len();
    let mut train_eval = Evaluation::zeros(e_count, heads);
    let mut counts = vec![0usize; e_count];
    let mut dead = vec![vec![0.0; e_count]; net.hidden.len()];
    let mut maxw = vec![None; e_count];
    let mut order: Vec<usize> = (0..data.n).collect();
    let mut shuffler = SeededRng::new(opts.order_seed);
    let mut cursor = data.n; // a new epoch starts at once
    let mut fed = false;
    let mut active_count = e_count;
    // Whether the latest row may be replaced by the next one (thinning, see `keep_row`).
    let mut replace_last = false;
    let mut held_count = 0usize;
    let live = opts.live.as_deref();
    for it in 1..=opts.max_iters {
        if live.is_some_and(|l| !l.gate(it)) {
            break;
        }
        let record = (it - 1) % every == 0;
        let sharp_due = sharpness_every > 0 && record && (it - 1) % (sharpness_every * every) == 0;
        let held = match curve {
            // Every K iterations, and early at 1, 2, 3, 5, 9, 17, … where the curve moves fast.
            Some((h, k)) if record && ((it - 1) % k == 0 || (it - 1).is_power_of_two()) => {
                fed = false;
                held_count += 1;
                Some(evaluate(net, h))
            }
            _ => None,
        };
        if full_batch {
            if !fed {
                net.feed(data, &order);
                fed = true;
            }
        } else {
            if record {
                train_eval = evaluate(net, data);
            }
            if cursor + batch > data.n {
                shuffler.shuffle(&mut order);
                cursor = 0;
            }
            net.feed(data, &order[cursor..cursor + batch]);
            cursor += batch;
        }
        // Stopped seeds are skipped where the engine can (its per-model path); their values
        // and gradients are then stale, and nothing below reads them.
        net.graph.forward_models(Some(&active));
        let g = &net.graph;
        // Each sample's verdict under every head with a rule, for the learning order; with a
        // single head they also give its accuracy count (the rule evaluated once, not twice).
        let one_rule = track && record && net.heads.len() == 1;
        if track && record {
            for e in (0..e_count).filter(|&e| active[e]) {
                right.fill(true);
                for h in net.heads.iter().filter(|h| h.metric.is_some()) {
                    net.and_correct(h, e, &mut right);
                }
                if one_rule {
                    counts[e] = right.iter().filter(|&&ok| ok).count();
                }
                update_learned(&mut learned[e], &right, it);
                if let Some(l) = live {
                    l.correct(run.seeds[e], &right);
                }
            }
        }
        if full_batch {
            for (k, h) in net.heads.iter().enumerate() {
                if !one_rule {
                    net.correct_of(h, batch, &mut counts, Some(&active));
                }
                let losses = g.value(h.loss);
                for e in 0..e_count {
                    train_eval.head_accuracy[k][e] = counts[e] as f64 / batch as f64;
                    train_eval.head_loss[k][e] = losses[e] as f64;
                }
            }
            train_eval.set_accuracy(&net.heads);
        }
        if record {
            for (d, (_, id)) in dead.iter_mut().zip(&net.hidden) {
                dead_fraction(g.value(*id), g.shape(*id), d);
            }
        }
        max_abs_params(net, &mut maxw, false, &active);
        let loss = g.value(net.loss);
        for e in 0..e_count {
            if !active[e] {
                continue; // this seed has stopped
            }
            let row_loss = if full_batch { loss[e] } else { train_eval.loss[e] as f32 };
            if record {
                let row = &mut run.rows[e];
                if replace_last {
                    row.truncate(row.len() - n_cols);
                    run.at[e].pop();
                }
                run.at[e].push(it as u32);
                row.push(row_loss);
                row.push(train_eval.accuracy[e] as f32);
                if many_heads {
                    row.extend(train_eval.head_loss.iter().map(|l| l[e] as f32));
                    row.extend(train_eval.head_accuracy.iter().map(|a| a[e] as f32));
                }
                row.push(maxw[e].map_or(f32::NAN, |m| m as f32));
                row.extend(dead.iter().map(|d| d[e] as f32));
                if curve.is_some() {
                    let (l, a) = held.as_ref().map_or((f64::NAN, f64::NAN), |h| (h.loss[e], h.accuracy[e]));
                    row.extend([l as f32, a as f32]);
                }
                if sharpness_every > 0 {
                    row.push(f32::NAN); // filled in after the backward pass below
                }
                if let Some(l) = live {
                    l.row(&run.columns, run.seeds[e], it, &row[row.len() - n_cols..], replace_last);
                }
            }
            let stop = if !loss[e].is_finite() || maxw[e].is_none() {
                run.diverged_at[e] = Some(it);
                true
            } else {
                run.max_abs_weight[e] = run.max_abs_weight[e].max(maxw[e].unwrap_or(0.0));
                let done = record
                    && match opts.stop {
                        StopRule::Accuracy => net
                            .heads
                            .iter()
                            .zip(&train_eval.head_accuracy)
                            .all(|(h, a)| h.metric.is_none() || a[e] == 1.0),
                        StopRule::Loss { target } => (row_loss as f64) <= target,
                        StopRule::None => false,
                    };
                if done {
                    run.iterations[e] = Some(it);
                }
                done
            };
            if stop {
                active[e] = false;
                active_count -= 1;
            }
        }
        if record {
            let i = (it - 1) / every;
            // A held-out measurement keeps its row on its own log grid (all of the first 64
            // measurements, then 16 per doubling), so the held-out curve stays resolved.
            let held_kept = held.is_some() && keep_row(held_count - 1);
            replace_last = !opts.all_rows && !keep_row(i) && !sharp_due && !held_kept;
        }
        let go_on = progress(it, run.converged());
        if active_count == 0 || !go_on {
            break;
        }
        net.graph.backward_models(net.loss, Some(&active));
        max_abs_params(net, &mut maxw, true, &active);
        for e in 0..e_count {
            if active[e] && maxw[e].is_none() {
                run.diverged_at[e] = Some(it); // a non-finite gradient: stop before it lands
                active[e] = false;
                active_count -= 1;
            }
        }
        let probing = prober.as_ref().is_some_and(|p| p.due(it));
        if let (true, Some(p), Some(probes)) = (probing, prober.as_mut(), run.probes.as_mut()) {
            p.measure(net, it, &active, probes);
            if let Some(l) = live {
                super::probes::report_live(l, probes, &run.seeds, &active, it);
            }
        }
        if let Some(s) = sharp.as_mut()
            && sharp_due
        {
            // Parameters and their gradients are restored exactly: the step below is unchanged.
            let lambda = s.measure(net, &active, 2, false);
            for (e, &l) in lambda.iter().enumerate() {
                if active[e] {
                    let row = &mut run.rows[e];
                    let at = row.len() - 1;
                    debug_assert_eq!(row.len() % n_cols, 0);
                    row[at] = l as f32;
                }
            }
        }
        if let Some(l) = live
            && super::probes::due(it, DEFAULT_PROBE_EVERY)
            && let Some(m) = run.seeds.iter().position(|&s| l.tracks(s))
            && active[m]
        {
            l.capture(it, super::net_landscape::parameters_of(net, m));
        }
        optimizer.step(&mut net.graph, &active);
        if let (true, Some(p), Some(probes)) = (probing, prober.as_mut(), run.probes.as_mut()) {
            p.after_step(net, it, &active, probes);
        }
        if let (Some(dir), Some(k)) = (&opts.save_params, opts.save_every)
            && it % k == 0
        {
            for (e, seed) in run.seeds.iter().enumerate() {
                if active[e] {
                    crate::models::params::save(net, e, &dir.join(format!("seed-{seed}-iter-{it}.safetensors")))?;
                }
            }
        }
    }
    if track {
        run.learned_at = Some(learned.iter().map(|l| l.iter().map(|&it| (it != 0).then_some(it)).collect()).collect());
    }
    if let Some(l) = live
        && let Some(m) = run.seeds.iter().position(|&s| l.tracks(s))
    {
        // Where the tracked seed stopped (its parameters are frozen there).
        let end = run.at[m].last().copied().unwrap_or(0) as usize;
        l.capture(end, super::net_landscape::parameters_of(net, m));
    }
    // Every seed's parameters are frozen where it stopped: save and evaluate them as they are.
    if let Some(dir) = &opts.save_params {
        for (e, seed) in run.seeds.iter().enumerate() {
            crate::models::params::save(net, e, &dir.join(format!("seed-{seed}.safetensors")))?;
        }
    }
    if let Some(h) = held_out {
        let diverged = |v: &[f64]| -> Vec<f64> {
            v.iter().zip(&run.diverged_at).map(|(&a, d)| if d.is_some() { f64::NAN } else { a }).collect()
        };
        let ev = evaluate(net, h);
        run.held_out_accuracy = Some(diverged(&ev.accuracy));
        if many_heads {
            run.held_out_heads = net
                .heads
                .iter()
                .zip(&ev.head_accuracy)
                .map(|(h, a)| (h.accuracy_column.clone(), diverged(a)))
                .collect();
        }
    }
    Ok(run)
}

/// What `summary.json` says about one setting of any study.
#[derive(Clone, Debug, Serialize)]
pub struct RunSummary {
    pub setting: String,
    pub seeds: usize,
    pub seed_values: Vec<u64>,
    pub converged: usize,
    pub diverged: usize,
    /// Neither converged nor diverged within the cap.
    pub neither: usize,
    /// Per seed: first iteration at 100%, `null` if never reached.
    pub iterations: Vec<Option<usize>>,
    /// Per seed: first iteration with a non-finite value, `null` if none.
    pub diverged_at: Vec<Option<usize>>,
    /// Per seed: the largest |parameter| while all were finite.
    pub max_abs_weight: Vec<f64>,
    /// Quantiles with non-converged seeds counted as beyond the cap (`null` if not reached).
    pub median_iterations: Option<f64>,
    pub p25_iterations: Option<f64>,
    pub p75_iterations: Option<f64>,
    /// Per seed: training accuracy at the last iteration it ran.
    pub final_train_accuracy: Vec<f64>,
    /// Per seed: accuracy on the held-out set after training (`null` if none or diverged).
    pub held_out_accuracy: Option<Vec<Option<f64>>>,
    pub median_held_out_accuracy: Option<f64>,
    /// Nets with several heads: each head's median held-out accuracy, by accuracy column.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub median_held_out_head_accuracy: Vec<(String, Option<f64>)>,
    /// Per layer and parameter: each probe's quartiles over seeds at the first probe and the end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probes: Option<Vec<super::probes::ProbeStat>>,
}

/// Median of the finite values, `None` if there are none.
fn finite_median(v: &[f64]) -> Option<f64> {
    let finite: Vec<f64> = v.iter().copied().filter(|a| a.is_finite()).collect();
    (!finite.is_empty()).then(|| crate::stats::quantile(&finite, 0.5))
}

impl RunSummary {
    pub fn of(run: &Run) -> RunSummary {
        use crate::stats::censored_quantile;
        let its: Vec<Option<f64>> = run.iterations.iter().map(|i| i.map(|v| v as f64)).collect();
        RunSummary {
            setting: run.setting.clone(),
            seeds: run.seeds.len(),
            seed_values: run.seeds.clone(),
            converged: run.converged(),
            diverged: run.diverged(),
            neither: run.seeds.len() - run.converged() - run.diverged(),
            iterations: run.iterations.clone(),
            diverged_at: run.diverged_at.clone(),
            max_abs_weight: run.max_abs_weight.clone(),
            median_iterations: censored_quantile(&its, 0.5),
            p25_iterations: censored_quantile(&its, 0.25),
            p75_iterations: censored_quantile(&its, 0.75),
            final_train_accuracy: run.column_last("accuracy"),
            held_out_accuracy: run
                .held_out_accuracy
                .as_ref()
                .map(|v| v.iter().map(|&a| a.is_finite().then_some(a)).collect()),
            median_held_out_accuracy: run.held_out_accuracy.as_deref().and_then(finite_median),
            median_held_out_head_accuracy: run
                .held_out_heads
                .iter()
                .map(|(name, v)| (name.clone(), finite_median(v)))
                .collect(),
            probes: run.probes.as_ref().map(super::probes::summary),
        }
    }
}

/// Worker threads for ensembles: `GRADLAB_THREADS`, else the machine's available parallelism.
pub fn threads() -> usize {
    std::env::var("GRADLAB_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&t| t > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1))
}

/// A sub-ensemble's tape should fit in a core's share of cache: beyond it, measured on the
/// CNN, the per-model cost of a step grows with E instead of shrinking.
pub const PART_BYTES: usize = 1 << 20;

/// Parts per worker thread a run is split into at least, when seeds allow (see [`train_parallel`]):
/// Table 1 with 1 024 seeds in 7 parts kept one core idle for the last one.
pub const PARTS_PER_THREAD: usize = 4;

/// The smallest part a run is split into for balance (fc73: 32 seeds run as 2 parts of 16, one
/// per core, where they were one ensemble on one core).
pub const MIN_PART: usize = 16;

/// Most threads a watched run uses (see [`train_parallel`]).
pub const LIVE_THREADS: usize = 64;

/// [`train`] with the seeds split into sub-ensembles ("parts") trained by a pool of threads.
/// Each seed's numbers are bit for bit those of a single ensemble (a model never depends on the
/// others), so the merged run is the same, only sooner. A part holds as many models as keep
/// its tape within [`PART_BYTES`] (one model for the CNNs), and at most a
/// [`PARTS_PER_THREAD`]-th of a thread's share (not below [`MIN_PART`]).
/// `build(n)` makes a net for `n` models.
pub fn train_parallel(
    setting: &str,
    build: &(dyn Fn(usize) -> Result<Net<f32>> + Sync),
    data: &Samples,
    held_out: Option<&Samples>,
    opts: &TrainOptions,
    progress: &mut dyn FnMut(usize, usize) -> bool,
) -> Result<Run> {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let per_model = build(1)?.graph.bytes().max(1);
    // Parts small enough that every core gets several (seeds stop at different times, so the
    // queue evens the load out), but not below MIN_PART models where the tape fits them.
    let spread = opts.seeds.div_ceil(PARTS_PER_THREAD * threads()).max(MIN_PART);
    let part_size = (PART_BYTES / per_model).min(spread).clamp(1, opts.seeds);
    let parts = opts.seeds.div_ceil(part_size);
    // Watched, every part gets its own thread (up to LIVE_THREADS) and the OS time-slices
    // them, so all seeds move together on screen. Measured on the detect CNN, 32 seeds: as fast
    // as the cores-many workers, where one lockstep part per core was 36% slower (its tape
    // outgrows the cache).
    let workers = if opts.live.is_some() { parts.min(LIVE_THREADS) } else { threads().min(parts) }.max(1);
    if parts == 1 {
        // One part: its large products split with a helper thread on another core.
        let _helper = (threads() > 1).then(crate::engine::helper::Helper::install);
        return train(setting, &mut build(opts.seeds)?, data, held_out, opts, progress);
    }
    let sizes: Vec<usize> = (0..parts).map(|p| part_size.min(opts.seeds - p * part_size)).collect();
    let stop = AtomicBool::new(false);
    let next = AtomicUsize::new(0);
    let iteration: Vec<AtomicUsize> = (0..parts).map(|_| AtomicUsize::new(0)).collect();
    let converged: Vec<AtomicUsize> = (0..parts).map(|_| AtomicUsize::new(0)).collect();
    let finished = AtomicUsize::new(0);
    let (done, finished_rx) = std::sync::mpsc::channel::<()>();
    let results: Mutex<Vec<Option<Result<Run>>>> = Mutex::new((0..parts).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let p = next.fetch_add(1, Ordering::SeqCst);
                    if p >= parts {
                        break;
                    }
                    if !stop.load(Ordering::Relaxed) {
                        let first = opts.first_seed + (p * part_size) as u64;
                        let sub = TrainOptions { seeds: sizes[p], first_seed: first, ..opts.clone() };
                        let (it, conv) = (&iteration[p], &converged[p]);
                        let r = build(sub.seeds).and_then(|mut net| {
                            train(setting, &mut net, data, held_out, &sub, &mut |i, c| {
                                it.store(i, Ordering::Relaxed);
                                conv.store(c, Ordering::Relaxed);
                                !stop.load(Ordering::Relaxed)
                            })
                        });
                        results.lock().expect("no worker panics while holding it")[p] = Some(r);
                    }
                    finished.fetch_add(1, Ordering::SeqCst);
                    let _ = done.send(());
                }
            });
        }
        // This thread reports progress and relays a stop request until every part is done,
        // woken at once by each finished part (a fixed sleep cost up to its length at the end:
        // a third of a 0.15 s fc73 run).
        while finished.load(Ordering::SeqCst) < parts {
            let it = iteration.iter().map(|a| a.load(Ordering::Relaxed)).max().unwrap_or(0);
            let conv = converged.iter().map(|a| a.load(Ordering::Relaxed)).sum();
            if !progress(it, conv) {
                stop.store(true, Ordering::Relaxed);
            }
            let _ = finished_rx.recv_timeout(std::time::Duration::from_millis(50));
        }
    });
    // Parts never started (after a stop) contribute no seeds.
    let results: Vec<Result<Run>> = results.into_inner().expect("workers are done").into_iter().flatten().collect();
    let mut merged: Option<Run> = None;
    for r in results {
        let r = r?;
        match &mut merged {
            None => merged = Some(r),
            Some(m) => {
                m.seeds.extend(r.seeds);
                m.rows.extend(r.rows);
                m.at.extend(r.at);
                m.iterations.extend(r.iterations);
                m.diverged_at.extend(r.diverged_at);
                m.max_abs_weight.extend(r.max_abs_weight);
                if let (Some(a), Some(b)) = (&mut m.held_out_accuracy, r.held_out_accuracy) {
                    a.extend(b);
                }
                for ((_, a), (_, b)) in m.held_out_heads.iter_mut().zip(r.held_out_heads) {
                    a.extend(b);
                }
                if let (Some(a), Some(b)) = (&mut m.probes, r.probes) {
                    a.extend(b);
                }
                if let (Some(a), Some(b)) = (&mut m.learned_at, r.learned_at) {
                    a.extend(b);
                }
            }
        }
    }
    let run = merged.expect("at least one part");
    let last = run.at.iter().filter_map(|a| a.last()).max().copied().unwrap_or(0);
    progress(last as usize, run.converged());
    Ok(run)
}

/// Evaluated rows a run keeps by default (row `i` is iteration `1 + i·every`): the first 64,
/// then 16 per doubling of the row index — log-spaced, ~180 rows for a 10 000-iteration
/// curve, where the early, fast part is seen row by row. Memory and metrics.csv stay small
/// with a thousand seeds; curves.csv's quantiles over seeds are exact at every kept row.
pub fn keep_row(i: usize) -> bool {
    if i < 64 {
        return true;
    }
    let octave = usize::BITS - 1 - i.leading_zeros(); // ⌊log₂ i⌋ ≥ 6
    i.is_multiple_of(1 << (octave - 4))
}

#[cfg(test)]
mod tests {
    #[test]
    fn max_abs_finite_finds_the_largest_and_every_non_finite_value() {
        let mut v: Vec<f32> = (0..37).map(|i| (i as f32 - 20.0) * 0.5).collect();
        assert_eq!(super::max_abs_finite(&v), Some(10.0));
        assert_eq!(super::max_abs_finite(&v[..5]), Some(10.0));
        assert_eq!(super::max_abs_finite(&v[30..]), Some(8.0));
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            for at in [0, 3, 15, 16, 36] {
                let keep = v[at];
                v[at] = bad;
                assert_eq!(super::max_abs_finite(&v), None, "{bad} at {at}");
                assert_eq!(
                    super::max_abs_finite(&v[..at.clamp(1, 4) + 1]),
                    if at <= 4 { None } else { Some(10.0) },
                    "short, {bad} at {at}"
                );
                v[at] = keep;
            }
        }
        assert_eq!(super::max_abs_finite(&[]), Some(0.0));
        assert_eq!(super::max_abs_finite(&[-0.0, 1e-45, -f32::MAX, 3.0]), Some(f32::MAX));
        assert_eq!(super::max_abs_finite(&[-0.0]).map(f32::to_bits), Some(0));
    }
}

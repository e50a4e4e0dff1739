//! The one training loop every study uses: an ensemble of models, one seed each, trained in
//! lockstep by any optimiser on full batches or minibatches; each seed stops on its own at the
//! stop rule (by default its first 100% training accuracy, measured before that iteration's
//! update) or at its first non-finite loss, gradient or parameter; the others go on.
//!
//! The loop ([`train`]) does the step, the evaluation schedule and the stopping rule, and writes
//! the loss and accuracy columns of each evaluated row. Everything that measures is an
//! [`Observer`] in its own file, owning its state, its columns and what it leaves in the run
//! record: [`kept_rows`] (row thinning), [`dead_units`], [`held_out`] (curves and final
//! accuracy), [`learning_order`], [`sample_dynamics`] (per-sample measures), [`probes`],
//! [`sharpness`], [`live`] (a watched run), [`checkpoints`] (saved parameters) and
//! [`subset_verdicts`] (C-score runs, where every model trains on its own subset), [`flipped_fit`]
//! (memorisation of corrupted labels), [`gradient_line`] (the landscape along each step). [`observers`] lists which a run gets. A new measurement is
//! a new file with an `impl Observer` and one line there.
//!
//! Around it: [`options`] (the one configuration, its defaults and validator), [`evaluate`]
//! (loss and accuracy on a whole dataset) and [`parallel`] (seeds split over threads).

pub mod checkpoints;
pub mod confusion;
pub mod dead_units;
pub mod evaluate;
pub mod flipped_fit;
pub mod gradient_line;
pub mod held_out;
pub mod kept_rows;
pub mod learning_order;
pub mod learning_rate;
pub mod live;
pub mod options;
pub mod parallel;
pub mod probes;
pub mod sample_dynamics;
pub mod sharpness;
pub mod subset_verdicts;

pub use evaluate::{Evaluation, evaluate};
pub use options::*;
pub use parallel::{PART_BYTES, threads, train_parallel};

use crate::data::Samples;
use crate::error::Result;
use crate::init::SeededRng;
use crate::models::{Init, Net};
use crate::optim::Optimizer;
use crate::record::Run;

/// Where the loop is, for the observers.
pub struct At<'a> {
    /// The iteration, from 1: it evaluates the parameters after `it − 1` updates.
    pub it: usize,
    /// This iteration is evaluated: it gets a row (every `Run::every`-th, from the first).
    pub evaluated: bool,
    /// The row's index among evaluated iterations: `(it − 1) / every`.
    pub row: usize,
    /// The new row replaced the previous one, which no observer kept.
    pub replaced: bool,
    /// Per model: still training. At [`Observer::evaluated`] the models that got this row; at
    /// the step hooks, those that go on to the update.
    pub active: &'a [bool],
    /// The training samples of this iteration's batch, in batch order (all of them, in order,
    /// with full batches; empty when every model trains on its own subset).
    pub fed: &'a [usize],
}

/// A measurement taken during training. Every hook has a default that does nothing; the loop
/// calls them in this order each iteration, for every observer in the order registered.
pub trait Observer {
    /// Columns this observer appends to every row, after the loop's own (`loss`, `accuracy`,
    /// per-head losses and accuracies, `max_abs_weight`).
    fn columns(&self, _net: &Net<f32>) -> Vec<String> {
        vec![]
    }
    /// Once, after the parameters are initialised (`run.columns` are final).
    fn start(&mut self, _net: &mut Net<f32>, _run: &mut Run) -> Result<()> {
        Ok(())
    }
    /// Before iteration `it`; `false` stops the run (a watcher's Stop). May block (Pause).
    fn proceed(&mut self, _it: usize) -> bool {
        true
    }
    /// At an evaluated iteration, before the training forward pass: the net may be evaluated
    /// on other data; return `true` if it was (the loop then feeds the training batch again).
    fn before_forward(&mut self, _net: &mut Net<f32>, _at: &At) -> bool {
        false
    }
    /// Whether this observer wants [`Observer::verdicts`] (full-batch runs with an accuracy).
    fn wants_verdicts(&self) -> bool {
        false
    }
    /// At an evaluated full-batch iteration, per active model `e`: each training sample's
    /// verdict (correct on every head with an accuracy).
    fn verdicts(&mut self, _e: usize, _right: &[bool], _at: &At) {}
    /// At an evaluated iteration, after the forward pass and the loop's own columns: append this
    /// observer's columns to `run.rows[e]` of every active `e`; set `keep` to keep this row from
    /// being replaced by the next one.
    fn evaluated(&mut self, _net: &Net<f32>, _at: &At, _run: &mut Run, _keep: &mut bool) {}
    /// After the backward pass, before the update: the gradients are at hand. Parameters and
    /// their gradients must be left exactly as found.
    fn before_step(&mut self, _net: &mut Net<f32>, _at: &At, _run: &mut Run) -> Result<()> {
        Ok(())
    }
    /// After the update.
    fn after_step(&mut self, _net: &Net<f32>, _at: &At, _run: &mut Run) -> Result<()> {
        Ok(())
    }
    /// After the last iteration (every seed's parameters frozen where it stopped).
    fn end(&mut self, _net: &mut Net<f32>, _run: &mut Run) -> Result<()> {
        Ok(())
    }
}

/// The observers a run gets, in hook order (which is also their columns' order). One line each.
pub fn observers<'a>(
    net: &Net<f32>,
    data: &'a Samples,
    held_out: Option<&'a Samples>,
    opts: &'a TrainOptions,
) -> Vec<Box<dyn Observer + 'a>> {
    let full_batch = net.batch == data.n;
    let scored = full_batch && net.heads.iter().any(|h| h.metric.is_some());
    let mut o: Vec<Box<dyn Observer + 'a>> = vec![Box::new(kept_rows::KeptRows { all: opts.all_rows })];
    o.push(Box::new(dead_units::DeadUnits::default()));
    if opts.optim.scheduled() {
        o.push(Box::new(learning_rate::LearningRate(opts.optim)));
    }
    if let Some(h) = held_out {
        o.push(Box::new(held_out::HeldOut::new(h, opts.held_out_every)));
    }
    if scored {
        o.push(Box::new(learning_order::LearningOrder::default()));
    }
    if opts.probe_every > 0 {
        o.push(Box::new(probes::Prober::observer(net, opts.probe_every)));
    }
    if full_batch && opts.sharpness_every > 0 {
        o.push(Box::new(sharpness::SharpnessObserver::new(opts.sharpness_every, opts.lambda_min)));
    }
    if let Some(l) = &opts.live {
        o.push(Box::new(live::Watched::new(l, opts.probe_every)));
    }
    if let Some(dir) = &opts.save_params {
        o.push(Box::new(checkpoints::Checkpoints { dir, every: opts.save_every }));
    }
    if let Some(s) = &opts.samples {
        o.push(Box::new(sample_dynamics::SampleDynamics::new(net, data, s, full_batch)));
    }
    if let Some(sub) = opts.subset {
        o.push(Box::new(subset_verdicts::SubsetVerdictsObserver::new(data, sub)));
    }
    if opts.keep_final_params {
        o.push(Box::new(checkpoints::FinalParams));
    }
    if let Some(l) = &opts.gradient_line {
        o.push(Box::new(gradient_line::GradientLine::new(data, l, opts.optim.lr)));
    }
    if let Some(f) = &opts.flipped {
        o.push(Box::new(flipped_fit::FlippedFit::new(data, f, FLIPPED_FIT_EVERY)));
    }
    // Not for C-score subset runs: nothing reads their confusion.
    if opts.subset.is_none()
        && let Some(c) = confusion::ConfusionObserver::new(net, data, held_out)
    {
        o.push(Box::new(c));
    }
    o
}

/// How often `flipped_fit` measures (besides its early log grid).
pub const FLIPPED_FIT_EVERY: usize = 10;

/// Salt of the noise streams (a seed's initialisation stream is the seed itself).
const NOISE_SALT: u64 = 0xd509_0d7a_11e5_5eed;

/// Fills every noise buffer (dropout masks, Gaussian noise) of the active models from their
/// streams, node by node.
fn draw_noise(net: &mut Net<f32>, streams: &mut [SeededRng], active: &[bool]) {
    let e_count = net.graph.ensemble();
    for (noise, buf) in net.graph.noise_buffers() {
        let n = buf.len() / e_count;
        for (e, rng) in streams.iter_mut().enumerate().filter(|(e, _)| active[*e]) {
            crate::engine::noise::draw(&mut buf[e * n..(e + 1) * n], noise, || rng.uniform());
        }
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

/// Trains `net` (already built for `opts.seeds` models on batches of `opts.batch` or all of
/// `data`) with the observers of [`observers`]. `progress(iteration, converged)` runs once per
/// iteration; returning `false` stops (Ctrl-C). Iteration `i` evaluates the parameters after
/// `i − 1` updates.
pub fn train(
    setting: &str,
    net: &mut Net<f32>,
    data: &Samples,
    held_out: Option<&Samples>,
    opts: &TrainOptions,
    progress: &mut dyn FnMut(usize, usize) -> bool,
) -> Result<Run> {
    let mut obs = observers(net, data, held_out, opts);
    train_observed(setting, net, data, opts, &mut obs, progress)
}

/// [`train`] with any observers.
pub fn train_observed(
    setting: &str,
    net: &mut Net<f32>,
    data: &Samples,
    opts: &TrainOptions,
    observers: &mut [Box<dyn Observer + '_>],
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
    let batch = net.batch;
    let full_batch = batch == data.n;
    let every = opts.every(data.n);
    let many_heads = net.heads.len() > 1;
    let mut columns: Vec<String> = vec!["loss".into(), "accuracy".into()];
    if many_heads {
        columns.extend(net.heads.iter().map(|h| h.loss_column.clone()));
        columns.extend(net.heads.iter().map(|h| h.accuracy_column.clone()));
    }
    columns.push("max_abs_weight".into());
    for o in observers.iter() {
        columns.extend(o.columns(net));
    }
    let n_cols = columns.len();
    let mut run = Run {
        setting: setting.to_string(),
        seeds: init.seeds.clone(),
        seeds_asked: e_count,
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
        samples: None,
        subsets: None,
        confusion: None,
        final_params: None,
    };
    for o in observers.iter_mut() {
        o.start(net, &mut run)?;
    }
    // Per-sample verdicts, for the observers that want them (full batch with an accuracy); with
    // one head they also give its accuracy count (the rule evaluated once, not twice).
    let scored = full_batch && net.heads.iter().any(|h| h.metric.is_some());
    let verdicts = scored && observers.iter().any(|o| o.wants_verdicts());
    let mut right = vec![true; if verdicts { data.n } else { 0 }];
    let mut optimizer = Optimizer::new(opts.optim, &net.graph).penalise(&net.weights());
    // Dropout and Gaussian noise: each model's noise from its own stream (its seed and a salt),
    // so a seed draws the same noise in any ensemble.
    let mut noise_streams: Vec<SeededRng> = if net.graph.noise_buffers().is_empty() {
        vec![]
    } else {
        init.seeds.iter().map(|&s| SeededRng::new(s ^ NOISE_SALT)).collect()
    };
    let mut active = vec![true; e_count];
    // The training-set metrics of the current row: from the training forward itself (full
    // batch) or from a separate pass over the whole set (minibatches).
    let heads = net.heads.len();
    let mut train_eval = Evaluation::zeros(e_count, heads);
    let mut counts = vec![0usize; e_count];
    let mut maxw = vec![None; e_count];
    let mut order: Vec<usize> = (0..data.n).collect();
    let mut shuffler = SeededRng::new(opts.order_seed);
    let mut cursor = data.n; // a new epoch starts at once
    // Training on subsets (C-scores): each model its own samples and minibatch order.
    let mut subsets: Vec<(Vec<usize>, SeededRng)> = match opts.subset {
        Some(sub) => init.seeds.iter().map(|&seed| sub.draw(seed, data.n)).collect(),
        None => vec![],
    };
    let epoch = if subsets.is_empty() { data.n } else { subsets[0].0.len() };
    let mut fed = false;
    let mut active_count = e_count;
    // Whether the latest row is kept, or replaced by the next one (see `kept_rows`).
    let mut kept = true;
    for it in 1..=opts.max_iters {
        if !observers.iter_mut().all(|o| o.proceed(it)) {
            break;
        }
        let record = (it - 1) % every == 0;
        // This iteration's batch: the whole set, or the next minibatch of the epoch's order.
        if !full_batch {
            if cursor + batch > epoch {
                if subsets.is_empty() {
                    shuffler.shuffle(&mut order);
                } else {
                    subsets.iter_mut().for_each(|(s, rng)| rng.shuffle(s));
                }
                cursor = 0;
            }
            cursor += batch;
        }
        let fed_now: &[usize] = match (full_batch, subsets.is_empty()) {
            (true, _) => &order,
            (false, true) => &order[cursor - batch..cursor],
            (false, false) => &[],
        };
        let mut at =
            At { it, evaluated: record, row: (it - 1) / every, replaced: false, active: &active, fed: fed_now };
        if record {
            for o in observers.iter_mut() {
                fed &= !o.before_forward(net, &at);
            }
        }
        if full_batch {
            if !fed {
                net.feed(data, &order);
                fed = true;
            }
        } else {
            if record {
                train_eval = evaluate(net, data);
            }
            if subsets.is_empty() {
                net.feed(data, fed_now);
            } else {
                let each: Vec<&[usize]> = subsets.iter().map(|(s, _)| &s[cursor - batch..cursor]).collect();
                net.feed_models(data, &each);
            }
        }
        if !noise_streams.is_empty() {
            draw_noise(net, &mut noise_streams, at.active);
        }
        // Training mode for this forward and backward: dropout's masks, BatchNorm's batch
        // statistics (which move its running estimates, of the active models only).
        net.graph.set_training(true);
        // Stopped seeds are skipped where the engine can (its per-model path); their values
        // and gradients are then stale, and nothing below reads them.
        net.graph.forward_models(Some(at.active));
        let one_rule = verdicts && record && heads == 1;
        if verdicts && record {
            for e in (0..e_count).filter(|&e| at.active[e]) {
                right.fill(true);
                for h in net.heads.iter().filter(|h| h.metric.is_some()) {
                    net.and_correct(h, e, &mut right);
                }
                if one_rule {
                    counts[e] = right.iter().filter(|&&ok| ok).count();
                }
                for o in observers.iter_mut() {
                    o.verdicts(e, &right, &at);
                }
            }
        }
        if full_batch {
            for (k, h) in net.heads.iter().enumerate() {
                if !one_rule {
                    net.correct_of(h, batch, &mut counts, Some(at.active));
                }
                let losses = net.graph.value(h.loss);
                for e in 0..e_count {
                    train_eval.head_accuracy[k][e] = counts[e] as f64 / batch as f64;
                    train_eval.head_loss[k][e] = losses[e] as f64;
                }
            }
            train_eval.set_accuracy(&net.heads);
        }
        max_abs_params(net, &mut maxw, false, at.active);
        let loss = net.graph.value(net.loss);
        let row_loss = |e: usize| if full_batch { loss[e] } else { train_eval.loss[e] as f32 };
        if record {
            at.replaced = !kept;
            for e in (0..e_count).filter(|&e| at.active[e]) {
                let row = &mut run.rows[e];
                if at.replaced {
                    row.truncate(row.len() - n_cols);
                    run.at[e].pop();
                }
                run.at[e].push(it as u32);
                row.push(row_loss(e));
                row.push(train_eval.accuracy[e] as f32);
                if many_heads {
                    row.extend(train_eval.head_loss.iter().map(|l| l[e] as f32));
                    row.extend(train_eval.head_accuracy.iter().map(|a| a[e] as f32));
                }
                row.push(maxw[e].map_or(f32::NAN, |m| m as f32));
            }
            kept = false;
            for o in observers.iter_mut() {
                o.evaluated(net, &at, &mut run, &mut kept);
            }
            debug_assert!(
                (0..e_count).all(|e| run.rows[e].len().is_multiple_of(n_cols)),
                "observers fill their columns"
            );
        }
        for e in 0..e_count {
            if !active[e] {
                continue; // this seed has stopped
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
                        StopRule::Loss { target } => (row_loss(e) as f64) <= target,
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
        let go_on = progress(it, run.converged());
        if active_count == 0 || !go_on {
            net.graph.set_training(false);
            break;
        }
        net.graph.backward_models(net.loss, Some(&active));
        net.graph.set_training(false); // evaluation from here on: dropout passes values through
        max_abs_params(net, &mut maxw, true, &active);
        for e in 0..e_count {
            if active[e] && maxw[e].is_none() {
                run.diverged_at[e] = Some(it); // a non-finite gradient: stop before it lands
                active[e] = false;
                active_count -= 1;
            }
        }
        let at = At { it, evaluated: record, row: (it - 1) / every, replaced: false, active: &active, fed: fed_now };
        for o in observers.iter_mut() {
            o.before_step(net, &at, &mut run)?;
        }
        optimizer.step(&mut net.graph, &active);
        for o in observers.iter_mut() {
            o.after_step(net, &at, &mut run)?;
        }
    }
    for o in observers.iter_mut() {
        o.end(net, &mut run)?;
    }
    Ok(run)
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

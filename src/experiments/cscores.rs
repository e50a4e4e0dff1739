//! C-scores (Jiang et al. 2021, `pluskid/structural-regularity`): a sample's expected accuracy
//! when it is held out. For each ratio r, every seed of the ensemble trains on its own random
//! ⌊n·r⌋ training samples (`TrainOptions::subset`, per-model data) for a fixed number of
//! epochs of its subset (as the reference trains each subset for a fixed number of epochs); then, per sample, `C_r = Σ(correct ∧ held out) / max(Σ held out, 1e-10)` over
//! the seeds, and the C-score is the mean of `C_r` over the ratios — the reference estimator
//! (`estimate_cscores` in its `mnist.py`).

use crate::data::Samples;
use crate::error::Result;
use crate::models::spec::{self, NetworkSpec};
use crate::record::samples::{CScores, SubsetVerdicts};
use crate::training::{StopRule, Subset, TrainOptions, train_parallel};

/// The estimator from each seed's subset and verdicts, for one ratio.
pub fn estimate(runs: &[SubsetVerdicts], n: usize) -> (Vec<f64>, usize) {
    let mut c = vec![0.0; n];
    let mut least = usize::MAX;
    for (s, cs) in c.iter_mut().enumerate() {
        let held = runs.iter().filter(|r| !r.trained_on[s]).count();
        let right = runs.iter().filter(|r| !r.trained_on[s] && r.correct[s]).count();
        *cs = right as f64 / (held as f64).max(1e-10);
        least = least.min(held);
    }
    (c, least)
}

/// Iterations of `epochs` passes over a ⌊n·ratio⌋ subset in minibatches of `batch` (the whole
/// subset when `None`; a last partial minibatch is left out, as the training loop does).
pub fn iterations(n: usize, batch: Option<usize>, ratio: f64, epochs: usize) -> usize {
    let sub = Subset { ratio };
    epochs.saturating_mul((sub.size(n) / sub.batch(n, batch)).max(1))
}

/// Epochs of the main training (`max_iters` minibatches of `batch` over `n` samples), the
/// C-score runs' default.
pub fn default_epochs(n: usize, batch: Option<usize>, max_iters: usize) -> usize {
    (max_iters * batch.unwrap_or(n).min(n)).div_ceil(n).max(1)
}

/// The training options of one ratio's runs: the experiment's, on subsets, for `iters`
/// iterations with no stop rule (as the reference trains a fixed number of epochs), no probes,
/// no held-out curves and no per-sample dynamics.
pub fn options(base: &TrainOptions, ratio: f64, iters: usize) -> TrainOptions {
    TrainOptions {
        subset: Some(Subset { ratio }),
        stop: StopRule::None,
        max_iters: iters,
        eval_every: Some(iters),
        held_out_every: None,
        probe_every: 0,
        sharpness_every: 0,
        lambda_min: false,
        samples: None,
        save_params: None,
        save_every: None,
        live: None,
        ..base.clone()
    }
}

/// Trains every ratio's ensemble through `runner` (a setting per ratio, named
/// `<setting>/cscore-<ratio>`) and estimates the C-scores; `None` when interrupted.
pub fn run(
    setting: &str,
    network: &NetworkSpec,
    data: &Samples,
    base: &TrainOptions,
    ratios: &[f64],
    epochs: usize,
    runner: &mut crate::experiments::Runner,
) -> Result<Option<CScores>> {
    let names: Vec<String> = ratios.iter().map(|r| format!("{setting}/cscore-{r}")).collect();
    let most = ratios.iter().map(|&r| iterations(data.n, base.batch, r, epochs)).max().unwrap_or(1);
    let (runs, complete) = runner(&names, most, base.seeds, &mut |k, progress| {
        let ratio = ratios[k];
        let opts = options(base, ratio, iterations(data.n, base.batch, ratio, epochs));
        opts.validate()?;
        let batch = Subset { ratio }.batch(data.n, base.batch);
        let build = |e: usize| spec::build_fed(network, data, e, batch, true);
        train_parallel(&names[k], &build, data, None, &opts, progress)
    })?;
    if !complete {
        return Ok(None);
    }
    let mut per_ratio = vec![];
    let mut min_held_out = vec![];
    for run in runs {
        let verdicts: Vec<SubsetVerdicts> = run.subsets.expect("subset runs record their verdicts");
        let (c, least) = estimate(&verdicts, data.n);
        per_ratio.push(c);
        min_held_out.push(least);
    }
    let cscore = (0..data.n).map(|s| per_ratio.iter().map(|c| c[s]).sum::<f64>() / ratios.len() as f64).collect();
    Ok(Some(CScores { ratios: ratios.to_vec(), seeds: base.seeds, epochs, per_ratio, cscore, min_held_out }))
}

//! The run record: what one setting's training leaves behind (per seed: rows of metrics,
//! stopping and divergence iterations, held-out accuracy, probes, the learning order, the
//! per-sample measures and C-score subsets) and its
//! summary for `summary.json`. A leaf: the training loop and its observers write it, studies
//! and `report/` read it.

pub mod probes;
pub mod samples;

use serde::Serialize;

/// One setting's outcome: per seed, a row of metrics every `every` iterations until it stopped.
#[derive(Clone, Debug)]
pub struct Run {
    pub setting: String,
    pub seeds: Vec<u64>,
    /// Seeds the run was asked for: more than `seeds` when it was interrupted before some of
    /// its parts started (those contribute nothing; the summary and the message say so).
    pub seeds_asked: usize,
    /// Metric names, the columns of `rows` (CSV columns after `setting,seed,iteration`).
    pub columns: Vec<String>,
    /// Per seed: `rows × columns` values, row-major, at the iterations in `at`.
    pub rows: Vec<Vec<f32>>,
    /// Per seed: the iteration (from 1) of each row. Rows are evaluated every `every`
    /// iterations and kept as `training::kept_rows::keep_row` says (all of them with `all_rows`), plus every row
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
    pub probes: Option<probes::Probes>,
    /// Full-batch classification: per seed and training sample, the first evaluated iteration
    /// from which the sample stayed correct (on every head with an accuracy) until the seed
    /// stopped; `None` if it was wrong at the end. A sample that flips back is not learned.
    pub learned_at: Option<Vec<Vec<Option<u32>>>>,
    /// metrics.csv gets every row rather than the thinned ones (`TrainOptions::all_rows`).
    pub all_rows: bool,
    /// Per seed: per-sample dynamics (forgetting, data maps, EL2N, GraNd), when asked for.
    pub samples: Option<Vec<samples::SeedSamples>>,
    /// Per seed, trained on a subset (C-scores): its subset and its verdicts after training.
    pub subsets: Option<Vec<samples::SubsetVerdicts>>,
    /// Multi-class heads: every seed's confusion matrix after training.
    pub confusion: Option<Confusion>,
    /// Every seed's parameters after training, when kept (`TrainOptions::keep_final_params`).
    pub final_params: Option<Vec<crate::models::params::Point>>,
}

/// Confusion matrices of one head after training.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Confusion {
    /// The head's target (`y`).
    pub head: String,
    /// `held_out` or `training`: the samples counted.
    pub set: String,
    pub classes: usize,
    /// Per seed: counts `[true][predicted]`, row-major; `None` for a diverged seed.
    pub per_seed: Vec<Option<Vec<u64>>>,
}

impl Confusion {
    /// Every finite seed's counts added up.
    pub fn pooled(&self) -> Vec<u64> {
        let mut out = vec![0; self.classes * self.classes];
        for c in self.per_seed.iter().flatten() {
            out.iter_mut().zip(c).for_each(|(o, v)| *o += v);
        }
        out
    }
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

/// What `summary.json` says about one setting of any study.
#[derive(Clone, Debug, Serialize)]
pub struct RunSummary {
    pub setting: String,
    /// Seeds that ran (and are summarised here), and seeds asked for (more when interrupted).
    pub seeds: usize,
    pub seeds_asked: usize,
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
    pub probes: Option<Vec<probes::ProbeStat>>,
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
            seeds_asked: run.seeds_asked.max(run.seeds.len()),
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
            probes: run.probes.as_ref().map(probes::summary),
        }
    }
}

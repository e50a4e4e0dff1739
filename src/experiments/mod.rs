//! The experiment description and the studies. `lab` is the one schema (network files: data,
//! network, initialisation, optimiser, training, sweeps; one set of defaults, one validator),
//! `presets` the report's nets in it, `legacy` the converter of older files, `sweep` shards and
//! merging. Every study has the same shape: its plan (settings, data), a way to run them (through
//! `training`, or a [`Runner`] for several settings), and `write_outputs` (summary.json,
//! metrics.csv, figures, tables); `reproduce` composes them and writes the report.

pub mod batchnorm;
pub mod check;
pub mod cnn;
pub mod cscores;
pub mod curvature;
pub mod decision_boundary;
pub mod depth;
pub mod edge_of_stability;
pub mod explosion;
pub mod fc_random;
pub mod lab;
pub mod landscape;
pub mod leaky_vs_relu;
pub mod legacy;
pub mod memorisation;
pub mod net_landscape;
pub mod presets;
pub mod reproduce;
pub mod samples_study;
pub mod sweep;

/// Runs named settings one after another with progress and interruption, `(names, max_iters,
/// seeds, run) → (runs, ran to the end)`: the command line supplies one with progress bars and
/// Ctrl-C; `run(k, progress)` trains setting `k`. Studies that orchestrate several runs take one.
pub type Runner<'r> =
    dyn FnMut(&[String], usize, usize, &mut TrainCell<'_>) -> crate::Result<(Vec<crate::record::Run>, bool)> + 'r;

/// A runner's `run(k, progress)`: trains setting `k`; `progress(iteration, converged)` returns
/// false to stop it after that iteration.
pub type TrainCell<'a> =
    dyn FnMut(usize, &mut dyn FnMut(usize, usize) -> bool) -> crate::Result<crate::record::Run> + 'a;

//! One module per study. Each exposes the same few items: a config struct, `run`, and
//! `write_outputs` (summary.json, metrics.csv, figures, tables).

pub mod check;
pub mod cnn;
pub mod curvature;
pub mod depth;
pub mod explosion;
pub mod fc_random;
pub mod lab;
pub mod landscape;
pub mod leaky_vs_relu;
pub mod memorisation;
pub mod net_landscape;
pub mod probes;
pub mod reproduce;
pub mod sweep;
pub mod train;

//! One module per study; each exposes the same few items: its settings, a way to run them, and
//! `write_outputs` (summary.json, metrics.csv, figures, tables). Shared by all of them: `train`
//! (the one configuration and training loop, `Runner`), `lab` (network files), `probes`,
//! `curvature`, `net_landscape`, `check` and `live` (a run watched while it trains).

pub mod check;
pub mod cnn;
pub mod curvature;
pub mod depth;
pub mod explosion;
pub mod fc_random;
pub mod lab;
pub mod landscape;
pub mod leaky_vs_relu;
pub mod live;
pub mod memorisation;
pub mod net_landscape;
pub mod presets;
pub mod probes;
pub mod reproduce;
pub mod sweep;
pub mod train;

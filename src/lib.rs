//! gradlab: how activations, losses, initialisation and loss reduction shape gradients, and
//! through them the speed and stability of training.
//!
//! Map of the crate, in reading order:
//! - [`engine`]: the ensemble-first tensor tape with reverse-mode autodiff (start here).
//! - [`activations`]: every activation as one generic formula; derivatives by dual numbers.
//! - [`optim`]: SGD. [`init`]: seeded RNG and truncated-normal initialisation.
//! - [`models`]: networks built on the engine (the fc73 net of Task 2).
//! - [`data`]: `.npy` loading with validation, and generators for the three datasets.
//! - [`experiments`]: one module per study (Task 2 now).
//! - [`stats`]: medians and quantiles across seeds.
//! - [`report`]: atomic file writes, CSV/JSON, figures, markdown tables.
//! - [`cli`]: the command line.
//! - [`error`]: the one user-facing error type.

pub mod activations;
pub mod bench;
pub mod cli;
pub mod data;
pub mod engine;
pub mod error;
pub mod experiments;
pub mod init;
pub mod models;
pub mod optim;
pub mod report;
pub mod stats;

pub use error::{Error, Result};

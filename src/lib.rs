//! gradlab: how activations, losses, initialisation and loss reduction shape gradients, and
//! through them the speed and stability of training.
//!
//! Map of the crate, in reading order:
//! - [`engine`]: the ensemble-first tensor tape with reverse-mode autodiff (start here).
//! - [`activations`]: every activation as one generic formula; derivatives by dual numbers.
//! - [`optim`]: SGD. [`init`]: seeded RNG and truncated-normal initialisation.
//! - [`models`]: networks built on the engine (fc73 of Task 2, the CNNs of Task 3).
//! - [`data`]: `.npy` loading with validation, and generators for the three datasets.
//! - [`experiments`]: the training loop, and one module per study (landscapes, Table 1, CNNs,
//!   exploding gradients, leaky vs ReLU, the full reproduction).
//! - [`stats`]: censored quantiles across seeds, the Mann–Whitney U test.
//! - [`report`]: atomic file writes, CSV/JSON, figures, the report document (HTML, Markdown).
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

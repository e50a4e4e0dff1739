//! gradlab: how activations, losses, initialisation and loss reduction shape gradients, and
//! through them the speed and stability of training.
//!
//! Map of the crate, in reading order:
//! - [`engine`]: the ensemble-first tensor tape with reverse-mode autodiff (start here).
//! - [`activations`]: every activation as one generic formula; derivatives by dual numbers.
//! - [`optim`]: optimisers (SGD, momentum, Nesterov, Adam, AdamW, RMSprop) with state shaped
//!   like the parameters. [`init`]: seeded RNG and weight schemes as data.
//! - [`models`]: networks built on the engine: any network from a description (`spec`), and the
//!   report's fc73 and CNNs written directly; heads, layers, parameters in and out.
//! - [`data`]: `.npy` loading with validation, the general dataset (`Samples`), and generators
//!   for the three datasets.
//! - [`experiments`]: the one training configuration and loop (`train`), network files (`lab`),
//!   and one module per study (landscapes of a neuron and of whole networks, Table 1, CNNs,
//!   exploding gradients, leaky vs ReLU, probes, depth, memorisation, curvature, the full
//!   reproduction).
//! - [`stats`]: censored quantiles across seeds, Mann–Whitney U, rank statistics, two-way shares.
//! - [`report`]: atomic file writes, CSV/JSON, figures, the report document (HTML, Markdown).
//! - [`serve`]: `gradlab serve`, the live lab in a browser (HTTP, event stream, the page).
//! - [`cli`]: the command line.
//! - [`error`]: the one user-facing error type.

pub mod atomic;
pub mod bench;
pub mod cli;
pub mod data;
pub mod engine;
pub mod error;
pub mod experiments;
pub mod init;
pub mod models;
pub mod names;
pub mod optim;
pub mod record;
pub mod report;
pub mod serve;
pub mod stats;
pub mod training;

pub use engine::activations;
pub use error::{Error, Result};

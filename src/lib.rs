//! gradlab: how activations, losses, initialisation and loss reduction shape gradients, and
//! through them the speed and stability of training.
//!
//! Map of the crate, in reading order (each module imports only those above it; `record`,
//! `names`, `atomic` and `error` are leaves):
//! - [`engine`]: the ensemble-first tensor tape with reverse-mode autodiff (start here), and
//!   [`activations`] (every activation as one generic formula; derivatives by dual numbers).
//! - [`optim`]: optimisers (SGD, momentum, Nesterov, Adam, AdamW, RMSprop) with state shaped
//!   like the parameters. [`init`]: seeded RNG and weight schemes as data.
//! - [`models`]: networks built on the engine from their description (`spec`); heads, layers,
//!   parameters in and out; per-sample scores and the batch-1 twin for per-sample gradients.
//! - [`curvature`]: exact Hessian-vector products of every model (forward-over-reverse), Lanczos
//!   for both ends of the spectrum, Hutchinson's trace, the spectral density (SLQ).
//! - [`data`]: `.npy` loading with validation, the general dataset (`Samples`), and generators
//!   for the three datasets.
//! - [`training`]: the one training configuration and loop, and its observers (probes,
//!   sharpness, learning order, per-sample dynamics, held-out curves, the live view, kept rows,
//!   checkpoints, C-score subsets), each in its own file. [`record`]: what a run leaves behind
//!   (`Run`, `RunSummary`, per-sample records).
//! - [`experiments`]: the one experiment description (network files, `lab`; the report's nets as
//!   `presets`), and one module per study (landscapes of a neuron and of whole networks, Table 1,
//!   CNNs, exploding gradients, leaky vs ReLU, depth, memorisation, per-sample measures and
//!   C-scores, curvature, the reproduction).
//! - [`stats`]: censored quantiles across seeds, Mann–Whitney U, rank statistics, two-way shares.
//! - [`report`]: CSV/JSON, figures, the probes' and per-sample files, the report document
//!   (HTML, Markdown), TensorBoard. [`atomic`]: every file written whole.
//! - [`serve`]: `gradlab serve`, the live lab in a browser (HTTP, event stream, the page).
//! - [`cli`]: the command line: flags parsed, studies called.
//! - [`error`]: the one user-facing error type. [`names`]: "did you mean …?".

pub mod atomic;
pub mod bench;
pub mod cli;
pub mod curvature;
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

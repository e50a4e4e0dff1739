//! One error type for every user-facing path. Each variant carries the evidence (file, field,
//! shapes) so the message can say what was expected, what was found, and what to do.

use std::path::{Path, PathBuf};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The command line or an option value is wrong.
    #[error("{0}")]
    Usage(String),
    /// An input file exists but its content is not what gradlab needs.
    #[error("{}: {msg}", path.display())]
    Data { path: PathBuf, msg: String },
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    /// An engine operation was given tensors of incompatible shapes (a bug in a model builder).
    #[error("{op}: {msg}")]
    Shape { op: &'static str, msg: String },
}

impl Error {
    pub fn data(path: impl AsRef<Path>, msg: impl Into<String>) -> Error {
        Error::Data { path: path.as_ref().to_path_buf(), msg: msg.into() }
    }
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Error {
        Error::Io { path: path.as_ref().to_path_buf(), source }
    }

    /// Exit codes, documented in `--help` and the README: 2 usage, 3 bad input data,
    /// 4 file-system or runtime failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) => 2,
            Error::Data { .. } => 3,
            Error::Io { .. } | Error::Shape { .. } => 4,
        }
    }
}

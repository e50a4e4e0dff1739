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
    /// A configuration value is wrong; the caller knows whether it came from a flag or a file
    /// ([`Error::in_file`]).
    #[error("`{field}`: {msg}")]
    Field { field: String, msg: String },
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

    pub fn field(field: impl Into<String>, msg: impl Into<String>) -> Error {
        Error::Field { field: field.into(), msg: msg.into() }
    }
    /// A field error as an error of the file it was read from (`FILE: field `x`: …`).
    pub fn in_file(self, path: &Path) -> Error {
        match self {
            Error::Field { field, msg } => Error::data(path, format!("field `{field}`: {msg}")),
            other => other,
        }
    }

    /// Exit codes, documented in `--help` and the README: 2 usage, 3 bad input data,
    /// 4 file-system or runtime failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) | Error::Field { .. } => 2,
            Error::Data { .. } => 3,
            Error::Io { .. } | Error::Shape { .. } => 4,
        }
    }
}

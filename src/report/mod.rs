//! Everything that leaves the process: atomic files, JSON, CSV, figures, tables.

pub mod atomic;
pub mod figures;

use crate::error::{Error, Result};
use std::path::Path;

/// Pretty JSON, written atomically. Non-finite floats become `null`.
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value)
        .map_err(|e| Error::io(path, std::io::Error::other(e)))?;
    text.push('\n');
    atomic::write_atomic(path, text.as_bytes())
}

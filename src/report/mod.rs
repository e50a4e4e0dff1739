//! Everything that leaves the process: atomic files, JSON, CSV, figures, tables.

pub mod atomic;
pub mod figures;
pub mod surface;

use crate::error::{Error, Result};
use std::path::Path;

/// Pretty JSON, written atomically. Non-finite floats become `null`.
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value)
        .map_err(|e| Error::io(path, std::io::Error::other(e)))?;
    text.push('\n');
    atomic::write_atomic(path, text.as_bytes())
}

/// Serialises a value through its `Display` form (e.g. an activation as `leaky_relu:0.2`).
pub fn display<T: std::fmt::Display, S: serde::Serializer>(
    v: &T,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.collect_str(v)
}

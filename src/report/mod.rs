//! Everything that leaves the process: atomic files, JSON, CSV, figures, tables.

pub mod atomic;
pub mod document;
pub mod figures;
pub mod surface;
pub mod tensorboard;

use crate::error::{Error, Result};
use std::path::Path;

/// Pretty JSON, written atomically. Non-finite floats become `null`.
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value).map_err(|e| Error::io(path, std::io::Error::other(e)))?;
    text.push('\n');
    atomic::write_atomic(path, text.as_bytes())
}

/// `metrics.csv`: `setting,seed,iteration` then the runs' metric columns (their union in order
/// of appearance; a run without a column leaves it empty), one row per seed and evaluated
/// iteration until that seed stopped.
pub fn write_metrics_csv(path: &Path, runs: &[crate::experiments::train::Run]) -> Result<()> {
    use std::fmt::Write;
    let mut columns: Vec<&str> = vec![];
    for c in runs.iter().flat_map(|r| &r.columns) {
        if !columns.contains(&c.as_str()) {
            columns.push(c);
        }
    }
    let mut csv = format!("setting,seed,iteration,{}\n", columns.join(","));
    for run in runs {
        let slots: Vec<Option<usize>> = columns.iter().map(|c| run.columns.iter().position(|r| r == c)).collect();
        for (seed, rows) in run.seeds.iter().zip(&run.rows) {
            for (i, row) in rows.chunks_exact(run.columns.len()).enumerate() {
                let _ = write!(csv, "{},{seed},{}", run.setting, 1 + i * run.every);
                for slot in &slots {
                    match slot {
                        Some(k) => {
                            let _ = write!(csv, ",{}", row[*k]);
                        }
                        None => csv.push(','),
                    }
                }
                csv.push('\n');
            }
        }
    }
    atomic::write_atomic(path, csv.as_bytes())
}

/// Serialises a value through its `Display` form (e.g. an activation as `leaky_relu:0.2`).
pub fn display<T: std::fmt::Display, S: serde::Serializer>(v: &T, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.collect_str(v)
}

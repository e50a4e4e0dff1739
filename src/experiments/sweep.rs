//! Sweeps on a cluster: every cell of an experiment file is one ensemble of seeds; `--shard i/n`
//! runs a deterministic share of the cells (cell k belongs to shard k mod n), each cell's
//! summary goes into one `summary.json`, and `gradlab merge` puts shard outputs back together,
//! so a job array can spread a sweep without a scheduler of gradlab's own.

use crate::error::{Error, Result};
use crate::record::{Run, RunSummary};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// `i/n`: this process runs cells k with k mod n = i.
pub fn parse_shard(s: &str) -> Result<(usize, usize)> {
    let bad = || Error::Usage(format!("--shard {s}: expected i/n with 0 ≤ i < n, e.g. 0/4"));
    let (i, n) = s.split_once('/').ok_or_else(bad)?;
    let (i, n): (usize, usize) = (i.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
    if n == 0 || i >= n {
        return Err(bad());
    }
    Ok((i, n))
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CellSummary {
    pub index: usize,
    pub name: String,
    /// This cell's values of the swept keys (`act`, `lr`, … or `optim.lr`, …).
    pub axes: std::collections::BTreeMap<String, serde_json::Value>,
    /// Seeds that ran, and that were asked for (more when interrupted before some started).
    pub seeds: usize,
    #[serde(default)]
    pub seeds_asked: usize,
    pub converged: usize,
    pub diverged: usize,
    pub iterations: Vec<Option<usize>>,
    pub median_iterations: Option<f64>,
    pub p25_iterations: Option<f64>,
    pub p75_iterations: Option<f64>,
    pub median_held_out_accuracy: Option<f64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SweepSummary {
    pub study: String,
    pub file: String,
    pub data: String,
    pub complete: bool,
    /// `[i, n]` for a shard, `null` for a whole sweep or a merge.
    pub shard: Option<(usize, usize)>,
    pub total_cells: usize,
    pub cells: Vec<CellSummary>,
}

/// What `summary.json` says about one cell of any sweep.
pub fn cell_summary(
    index: usize,
    name: &str,
    axes: std::collections::BTreeMap<String, serde_json::Value>,
    run: &Run,
) -> CellSummary {
    let s = RunSummary::of(run);
    CellSummary {
        index,
        name: name.to_string(),
        axes,
        seeds: s.seeds,
        seeds_asked: s.seeds_asked,
        converged: s.converged,
        diverged: s.diverged,
        iterations: s.iterations,
        median_iterations: s.median_iterations,
        p25_iterations: s.p25_iterations,
        p75_iterations: s.p75_iterations,
        median_held_out_accuracy: s.median_held_out_accuracy,
    }
}

/// Combines shard outputs (their `summary.json` and `metrics.csv`) into `out`; the cells must
/// come from the same file and not overlap.
pub fn merge(dirs: &[PathBuf], out: &Path) -> Result<SweepSummary> {
    let mut summaries = vec![];
    let mut csvs = vec![];
    for d in dirs {
        let path = d.join("summary.json");
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let s: SweepSummary =
            serde_json::from_str(&text).map_err(|e| Error::data(&path, format!("not a sweep summary: {e}")))?;
        let csv_path = d.join("metrics.csv");
        csvs.push(std::fs::read_to_string(&csv_path).map_err(|e| Error::io(&csv_path, e))?);
        summaries.push((path, s));
    }
    let (first_path, first) =
        summaries.first().ok_or_else(|| Error::Usage("merge needs at least one directory".into()))?;
    let mut cells: Vec<CellSummary> = vec![];
    for (path, s) in &summaries {
        if s.file != first.file || s.total_cells != first.total_cells || s.data != first.data {
            return Err(Error::data(path, format!("comes from another sweep than {}", first_path.display())));
        }
        for c in &s.cells {
            if cells.iter().any(|k| k.index == c.index) {
                return Err(Error::data(path, format!("cell {} ({}) appears twice", c.index, c.name)));
            }
            cells.push(c.clone());
        }
    }
    cells.sort_by_key(|c| c.index);
    // Rows grouped by cell, in cell order; the header once.
    let header = csvs[0].lines().next().unwrap_or_default().to_string();
    let mut rows: Vec<(usize, &str)> = vec![];
    for csv in &csvs {
        for line in csv.lines().skip(1) {
            let name = line.split(',').next().unwrap_or_default();
            let index = cells.iter().find(|c| c.name == name).map_or(usize::MAX, |c| c.index);
            rows.push((index, line));
        }
    }
    rows.sort_by_key(|r| r.0); // stable: each cell's rows keep their order
    let mut merged = header + "\n";
    for (_, line) in rows {
        merged.push_str(line);
        merged.push('\n');
    }
    let summary = SweepSummary {
        study: first.study.clone(),
        file: first.file.clone(),
        data: first.data.clone(),
        complete: summaries.iter().all(|(_, s)| s.complete) && cells.len() == first.total_cells,
        shard: None,
        total_cells: first.total_cells,
        cells,
    };
    crate::report::write_json(&out.join("summary.json"), &summary)?;
    crate::atomic::write_atomic(&out.join("metrics.csv"), merged.as_bytes())?;
    Ok(summary)
}

//! Everything that leaves the process: JSON, CSV, figures, tables (each file written whole,
//! `crate::atomic`).

pub mod boundary;
pub mod confusion;
pub mod document;
pub mod figures;
pub mod probes;
pub mod samples;
pub mod surface;
pub mod tensorboard;

use crate::error::{Error, Result};
use std::path::Path;

/// Pretty JSON, written atomically. Non-finite floats become `null`.
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value).map_err(|e| Error::io(path, std::io::Error::other(e)))?;
    text.push('\n');
    crate::atomic::write_atomic(path, text.as_bytes())
}

/// A study's per-seed rows and its curves over seeds: `metrics.csv` and `curves.csv` in `dir`.
pub fn write_run_csvs(dir: &Path, runs: &[crate::record::Run]) -> Result<()> {
    write_metrics_csv(&dir.join("metrics.csv"), runs)?;
    write_curves_csv(&dir.join("curves.csv"), runs)
}

/// `metrics.csv`: `setting,seed,iteration` then the runs' metric columns (their union in order
/// of appearance; a run without a column leaves it empty), one row per seed and evaluated
/// iteration the run kept (see `train::keep_row`) until that seed stopped. Streamed to disk (a thousand seeds' rows are gigabytes as text) and landed whole.
pub fn write_metrics_csv(path: &Path, runs: &[crate::record::Run]) -> Result<()> {
    let columns = union_of_columns(runs);
    let mut f = crate::atomic::AtomicFile::create(path)?;
    f.write(format!("setting,seed,iteration,{}\n", columns.join(",")).as_bytes())?;
    let mut line: Vec<u8> = Vec::with_capacity(256);
    let (mut int, mut float) = (itoa::Buffer::new(), ryu::Buffer::new());
    for run in runs {
        let slots: Vec<Option<usize>> = columns.iter().map(|c| run.columns.iter().position(|r| r == c)).collect();
        for ((seed, rows), at) in run.seeds.iter().zip(&run.rows).zip(&run.at) {
            for (row, it) in rows.chunks_exact(run.columns.len()).zip(at) {
                line.clear();
                line.extend_from_slice(run.setting.as_bytes());
                line.push(b',');
                line.extend_from_slice(int.format(*seed).as_bytes());
                line.push(b',');
                line.extend_from_slice(int.format(*it).as_bytes());
                for slot in &slots {
                    line.push(b',');
                    if let Some(k) = slot {
                        line.extend_from_slice(number(&mut float, row[*k]).as_bytes());
                    }
                }
                line.push(b'\n');
                f.write(&line)?;
            }
        }
    }
    f.finish()
}

/// The metric columns of several runs, in order of appearance.
fn union_of_columns(runs: &[crate::record::Run]) -> Vec<&str> {
    let mut columns: Vec<&str> = vec![];
    for c in runs.iter().flat_map(|r| &r.columns) {
        if !columns.contains(&c.as_str()) {
            columns.push(c);
        }
    }
    columns
}

/// A float as CSV text: shortest round-trip digits; `NaN`, `inf`, `-inf` as Rust prints them.
fn number(buf: &mut ryu::Buffer, v: f32) -> &str {
    if v.is_finite() {
        buf.format_finite(v)
    } else if v.is_nan() {
        "NaN"
    } else if v > 0.0 {
        "inf"
    } else {
        "-inf"
    }
}

/// A run's curves: at every iteration some seed has a row (the union over seeds), the number of
/// seeds still training and, per metric column, the 25th, 50th and 75th percentiles over seeds
/// — exact at each of those iterations. A seed that stopped holds its last finite value (a
/// converged seed stays at 100%), as in the figures; a seed with no finite value yet is left
/// out (NaN where no seed has one).
#[derive(Clone, Debug)]
pub struct Curves {
    pub iterations: Vec<u32>,
    pub seeds_running: Vec<u32>,
    /// Per column of the run: p25, median, p75 at each iteration.
    pub quartiles: Vec<[Vec<f32>; 3]>,
}

pub fn curves(run: &crate::record::Run) -> Curves {
    let width = run.columns.len().max(1);
    let grid = iteration_grid(&run.at);
    // Per seed, the next row to take in; per column and seed, the last finite value so far.
    let mut next = vec![0usize; run.seeds.len()];
    let mut held = vec![vec![f32::NAN; run.seeds.len()]; width];
    let mut values: Vec<f64> = Vec::with_capacity(run.seeds.len());
    let mut out = Curves {
        iterations: Vec::with_capacity(grid.len()),
        seeds_running: Vec::with_capacity(grid.len()),
        quartiles: run.columns.iter().map(|_| std::array::from_fn(|_| Vec::with_capacity(grid.len()))).collect(),
    };
    for &it in &grid {
        let mut running = 0;
        for (s, at) in run.at.iter().enumerate() {
            for j in rows_through(at, &mut next[s], it) {
                for (k, h) in held.iter_mut().enumerate() {
                    let v = run.rows[s][j * width + k];
                    if v.is_finite() {
                        h[s] = v;
                    }
                }
            }
            running += u32::from(at.last().is_some_and(|&l| l >= it));
        }
        out.iterations.push(it);
        out.seeds_running.push(running);
        for (k, q3) in out.quartiles.iter_mut().enumerate() {
            values.clear();
            values.extend(held[k].iter().filter(|v| v.is_finite()).map(|&v| v as f64));
            for (q, col) in [0.25, 0.5, 0.75].into_iter().zip(q3.iter_mut()) {
                col.push(if values.is_empty() {
                    f32::NAN
                } else {
                    crate::stats::quantile_by_selection(&mut values, q) as f32
                });
            }
        }
    }
    out
}

/// `curves.csv`: per setting, its [`curves`] (columns: the runs' union; a run without a column,
/// or a quartile with no seed behind it, leaves it empty).
pub fn write_curves_csv(path: &Path, runs: &[crate::record::Run]) -> Result<()> {
    let columns = union_of_columns(runs);
    let mut f = crate::atomic::AtomicFile::create(path)?;
    let mut head = String::from("setting,iteration,seeds_running");
    for c in &columns {
        head.push_str(&format!(",{c}_p25,{c}_median,{c}_p75"));
    }
    head.push('\n');
    f.write(head.as_bytes())?;
    let (mut int, mut float) = (itoa::Buffer::new(), ryu::Buffer::new());
    let mut line: Vec<u8> = Vec::with_capacity(512);
    for run in runs {
        let c = curves(run);
        let slots: Vec<Option<usize>> = columns.iter().map(|c| run.columns.iter().position(|r| r == c)).collect();
        for (i, (&it, &running)) in c.iterations.iter().zip(&c.seeds_running).enumerate() {
            line.clear();
            line.extend_from_slice(run.setting.as_bytes());
            line.push(b',');
            line.extend_from_slice(int.format(it).as_bytes());
            line.push(b',');
            line.extend_from_slice(int.format(running).as_bytes());
            for slot in &slots {
                let Some(k) = slot else {
                    line.extend_from_slice(b",,,");
                    continue;
                };
                for q in &c.quartiles[*k] {
                    line.push(b',');
                    // NaN only where no seed had a finite value (a quantile of finite values is finite).
                    if !q[i].is_nan() {
                        line.extend_from_slice(number(&mut float, q[i]).as_bytes());
                    }
                }
            }
            line.push(b'\n');
            f.write(&line)?;
        }
    }
    f.finish()
}

/// Every iteration at which some seed has a row (`at[s]`: seed `s`'s row iterations), in order.
pub fn iteration_grid(at: &[Vec<u32>]) -> Vec<u32> {
    let mut grid: Vec<u32> = at.iter().flatten().copied().collect();
    grid.sort_unstable();
    grid.dedup();
    grid
}

/// A seed's rows at or before iteration `it` not yet taken in (`next`: the first such row,
/// moved past them): walking a grid of iterations forward, each seed's latest value so far.
pub(crate) fn rows_through(at: &[u32], next: &mut usize, it: u32) -> std::ops::Range<usize> {
    let from = *next;
    while *next < at.len() && at[*next] <= it {
        *next += 1;
    }
    from..*next
}

/// Serialises a value through its `Display` form (e.g. an activation as `leaky_relu:0.2`).
pub fn display<T: std::fmt::Display, S: serde::Serializer>(v: &T, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.collect_str(v)
}

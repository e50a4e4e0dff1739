//! `gradlab run FILE.toml` and `gradlab merge`: experiment files, sweeps and shards.

use super::train::run_settings;
use crate::error::{Error, Result};
use crate::experiments::sweep::{self, SweepSummary};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The experiment file (TOML). See examples/*.toml; unknown keys are errors.
    pub file: PathBuf,
    /// Output directory [default: the file's `out`].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Run only cells k with k mod n = i (e.g. 0/4), for spreading a sweep over a job array;
    /// combine the shards' directories with `gradlab merge`.
    #[arg(long, value_name = "i/n")]
    pub shard: Option<String>,
    /// Write into the output directory even if it already holds files.
    #[arg(long)]
    pub force: bool,
    /// Run even if the sweep's total work is beyond WORK_BOUND (see --help of `run`).
    #[arg(long)]
    pub yes: bool,
}

/// Work a sweep may ask for without `--yes`, in fc73 model-iterations (one ≈ 1.5 µs here; a
/// CNN model-iteration counts as 1000): about 4 hours of this machine.
pub const WORK_BOUND: f64 = 1e10;

#[derive(Args, Debug)]
pub struct MergeArgs {
    /// The shard output directories.
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// Where the merged summary.json and metrics.csv go.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Write into --out even if it already holds files.
    #[arg(long)]
    pub force: bool,
}

pub fn run(args: &RunArgs) -> Result<ExitCode> {
    let started = std::time::Instant::now();
    let exp = sweep::load(&args.file)?;
    let shard = args.shard.as_deref().map(sweep::parse_shard).transpose()?;
    let out = args.out.clone().or_else(|| exp.spec.out.clone()).ok_or_else(|| {
        Error::Usage(format!("{}: no output directory; give --out or set `out` in the file", args.file.display()))
    })?;
    let (data, held_out) = exp.datasets()?;
    let cells: Vec<&sweep::Cell> = exp.cells.iter().filter(|c| shard.is_none_or(|(i, n)| c.index % n == i)).collect();
    if exp.spec.task == sweep::Task::Landscape {
        crate::report::atomic::prepare_out_dir(&out, args.force)?;
        return landscapes(&exp, &cells, shard, &out, started);
    }
    let names: Vec<String> = cells.iter().map(|c| c.name.clone()).collect();
    let max_iters = exp.spec.train.max_iters.unwrap_or(10_000);
    let weight = if exp.spec.task == sweep::Task::Fc { 1.0 } else { 1000.0 };
    let work = cells.len() as f64 * exp.seeds as f64 * max_iters as f64 * weight;
    if work > WORK_BOUND && !args.yes {
        return Err(Error::Usage(format!(
            "{}: {} cells × {} seeds × {max_iters} iterations is about {:.0} hours of training here; pass --yes to run it anyway, or split it with --shard",
            args.file.display(),
            cells.len(),
            exp.seeds,
            work * 1.5e-6 / 3600.0
        )));
    }
    crate::report::atomic::prepare_out_dir(&out, args.force)?;
    let (runs, complete) =
        run_settings(&names, max_iters, exp.seeds, |k, progress| exp.run_cell(cells[k], &data, &held_out, progress))?;
    let summary = SweepSummary {
        study: "sweep".into(),
        file: args.file.display().to_string(),
        task: exp.spec.task,
        data: data.source.clone(),
        complete,
        shard,
        total_cells: exp.cells.len(),
        cells: cells.iter().zip(&runs).map(|(c, r)| sweep::summarise(c, r)).collect(),
    };
    crate::report::write_json(&out.join("summary.json"), &summary)?;
    crate::report::write_metrics_csv(&out.join("metrics.csv"), &runs)?;
    if let Some(tb) = &exp.spec.train.tensorboard {
        crate::report::tensorboard::write_runs(tb, &runs)?;
    }
    println!(
        "ran {} of {} cells ({} seeds each) into {} in {:.1} s",
        runs.len(),
        exp.cells.len(),
        exp.seeds,
        out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(if complete { ExitCode::SUCCESS } else { ExitCode::from(130) })
}

pub fn merge(args: &MergeArgs) -> Result<ExitCode> {
    crate::report::atomic::prepare_out_dir(&args.out, args.force)?;
    let s = sweep::merge(&args.dirs, &args.out)?;
    println!("merged {} of {} cells into {}", s.cells.len(), s.total_cells, args.out.display());
    Ok(ExitCode::SUCCESS)
}

/// A landscape per activation, each in `<out>/<act>/`, and one summary listing them.
fn landscapes(
    exp: &sweep::Experiment,
    cells: &[&sweep::Cell],
    shard: Option<(usize, usize)>,
    out: &std::path::Path,
    started: std::time::Instant,
) -> Result<ExitCode> {
    use crate::experiments::landscape;
    #[derive(serde::Serialize)]
    struct Cell<'a> {
        index: usize,
        name: &'a str,
        config: landscape::LandscapeConfig,
        key_values: landscape::KeyValues,
    }
    let mut done = vec![];
    for c in cells {
        let cfg = exp.landscape_config(c)?;
        let dir = out.join(&c.name);
        crate::report::atomic::prepare_out_dir(&dir, true)?;
        let key_values = landscape::write_outputs(&dir, &cfg, &landscape::compute(&cfg)?)?;
        done.push(Cell { index: c.index, name: &c.name, config: cfg, key_values });
    }
    let summary = serde_json::json!({
        "study": "sweep",
        "file": exp.file.display().to_string(),
        "task": exp.spec.task,
        "complete": true,
        "shard": shard,
        "total_cells": exp.cells.len(),
        "cells": done,
    });
    crate::report::write_json(&out.join("summary.json"), &summary)?;
    println!("wrote {} landscape(s) into {} in {:.1} s", cells.len(), out.display(), started.elapsed().as_secs_f64());
    Ok(ExitCode::SUCCESS)
}

//! `gradlab run FILE.toml`, `merge`, `check`, `hessian` and `landscape --network`: the commands
//! that take a network file; each parses its flags and calls its study in `experiments/`.

use crate::error::{Error, Result};
use crate::experiments::lab;
use crate::experiments::sweep;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The experiment file (TOML): a network file (examples/networks/*.toml); unknown keys are
    /// errors. An older `task = …` file is converted to its network file, which is shown.
    pub file: PathBuf,
    /// Output directory [default: the file's `out`].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Run only cells k with k mod n = i (e.g. 0/4), for spreading a sweep over a job array;
    /// combine the shards' directories with `gradlab merge`.
    #[arg(long, value_name = "i/n")]
    pub shard: Option<String>,
    /// Replace an earlier gradlab output in the output directory (cleared first; a directory holding other files is refused).
    #[arg(long)]
    pub force: bool,
    /// Run even if the sweep's total work is beyond about four hours of this machine.
    #[arg(long)]
    pub yes: bool,
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// A network file (with a [network] table), e.g. examples/networks/digits-cnn.toml.
    pub file: PathBuf,
    /// Which cell of the file's sweep to check (0 = the first).
    #[arg(long, default_value_t = 0)]
    pub cell: usize,
    /// Training samples in the batch the loss is computed on.
    #[arg(long, default_value_t = 16)]
    pub samples: usize,
    /// Elements compared per parameter tensor (spread evenly over it; all when fewer).
    #[arg(long, default_value_t = 32)]
    pub per_tensor: usize,
}

#[derive(Args, Debug)]
pub struct HessianArgs {
    /// A network file (its data and network; the first cell of a sweep).
    pub file: PathBuf,
    /// The parameters (safetensors); the file's initialisation (first seed) without it.
    #[arg(long, value_name = "FILE")]
    pub params: Option<PathBuf>,
    /// Output directory: extremes.csv (Lanczos), density.csv, density_nodes.csv and
    /// density.svg/png (SLQ), spectrum.csv (full), summary.json (all of it, with the trace).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Replace an earlier gradlab output in --out (cleared first; a directory holding other files is refused).
    #[arg(long)]
    pub force: bool,
    /// Lanczos: this many of the largest and of the smallest eigenvalues.
    #[arg(long, default_value_t = 5, value_name = "K")]
    pub top: usize,
    /// Form the full Hessian and all its eigenvalues (default when the net has at most 3000
    /// parameters).
    #[arg(long, conflicts_with = "no_full")]
    pub full: bool,
    /// Skip the full spectrum even for a small net.
    #[arg(long)]
    pub no_full: bool,
    /// Spectral density: stochastic Lanczos quadrature runs (Rademacher starts).
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub probes: usize,
    /// Spectral density: Lanczos steps per run.
    #[arg(long, default_value_t = 60, value_name = "S")]
    pub steps: usize,
    /// Hutchinson's trace: stop when the running mean changes by less than this, relatively
    /// (PyHessian's rule).
    #[arg(long, default_value_t = 1e-3, value_name = "TOL")]
    pub trace_tol: f64,
    /// Hutchinson's trace: at most this many probes.
    #[arg(long, default_value_t = 200, value_name = "N")]
    pub max_probes: usize,
    /// Seed of the random start and probe vectors.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

#[derive(Args, Debug)]
pub struct MergeArgs {
    /// The shard output directories.
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// Where the merged summary.json and metrics.csv go.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Replace an earlier gradlab output in --out (cleared first; a directory holding other files is refused).
    #[arg(long)]
    pub force: bool,
}

/// `gradlab run FILE`: a network file's cells (or this shard's) with progress bars; an older
/// `task = …` file is converted first, and the converted file shown.
pub fn run(args: &RunArgs) -> Result<ExitCode> {
    let started = std::time::Instant::now();
    let text = std::fs::read_to_string(&args.file).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::data(&args.file, "file not found"),
        _ => Error::io(&args.file, e),
    })?;
    let lab = if crate::experiments::legacy::is_old(&text) {
        let converted = crate::experiments::legacy::convert(&args.file, &text)?;
        eprintln!("{}: an older `task = …` file; running it as this network file:\n\n{converted}", args.file.display());
        lab::parse(&args.file, &converted)?
    } else {
        lab::parse(&args.file, &text)?
    };
    let shard = args.shard.as_deref().map(sweep::parse_shard).transpose()?;
    let out = args.out.clone().or_else(|| lab.cells[0].file.out.clone()).ok_or_else(|| {
        Error::Usage(format!("{}: no output directory; give --out or set `out` in the file", args.file.display()))
    })?;
    let plan = lab::Plan { shard, out: &out, force: args.force, beyond_bound: args.yes };
    let (summary, complete) = lab::run(&lab, &plan, &mut super::train::progress_runner)?;
    for c in &summary.cells {
        let held = c.median_held_out_accuracy.map(|a| format!(", held-out accuracy {:.1}% (median)", 100.0 * a));
        println!(
            "{}: {}/{} seeds stopped by the rule, {} diverged; median iterations {}{}",
            c.name,
            c.converged,
            c.seeds,
            c.diverged,
            c.median_iterations.map_or("—".to_string(), |m| format!("{m:.0}")),
            held.unwrap_or_default()
        );
        if c.seeds < c.seeds_asked {
            println!(
                "{}: interrupted before {} of its {} seeds started; the outputs hold the {} that ran",
                c.name,
                c.seeds_asked - c.seeds,
                c.seeds_asked,
                c.seeds
            );
        }
    }
    println!(
        "ran {} of {} cells into {} in {:.1} s",
        summary.cells.len(),
        lab.cells.len(),
        out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(if complete { ExitCode::SUCCESS } else { ExitCode::from(130) })
}

pub fn check(args: &CheckArgs) -> Result<ExitCode> {
    use crate::experiments::check;
    let lab = lab::load(&args.file)?;
    let cell = lab.cells.get(args.cell).ok_or_else(|| {
        Error::Usage(format!("--cell {}: the file has {} cell(s), 0..{}", args.cell, lab.cells.len(), lab.cells.len()))
    })?;
    if args.samples == 0 || args.per_tensor == 0 {
        return Err(Error::Usage("--samples and --per-tensor must be at least 1".into()));
    }
    let (data, _) = lab.data(args.cell)?;
    let o = &cell.opts;
    let init = crate::models::Init::seeds(o.first_seed, 1, o.init.weights, o.init.bias);
    let checks = check::check(&cell.file.network, &data, &init, o.init_from.as_deref(), args.samples, args.per_tensor)
        .map_err(|e| e.in_file(&args.file))?;
    println!(
        "{} ({}): gradients at the initial parameters of seed {} on {} sample(s), f64, central differences\n",
        args.file.display(),
        cell.name,
        o.first_seed,
        args.samples.min(data.n)
    );
    print!("{}", check::table(&checks));
    let bad = checks.iter().filter(|c| !c.ok).count();
    if bad == 0 {
        println!(
            "\nall {} tensors agree (relative error ≤ {:e}; kinks judged by one-sided differences)",
            checks.len(),
            check::TOLERANCE
        );
        Ok(ExitCode::SUCCESS)
    } else {
        println!("\n{bad} of {} tensors DISAGREE with finite differences", checks.len());
        Ok(ExitCode::from(1))
    }
}

pub fn merge(args: &MergeArgs) -> Result<ExitCode> {
    crate::atomic::prepare_out_dir(&args.out, args.force)?;
    let s = sweep::merge(&args.dirs, &args.out)?;
    println!("merged {} of {} cells into {}", s.cells.len(), s.total_cells, args.out.display());
    Ok(ExitCode::SUCCESS)
}

/// `gradlab landscape --network FILE.toml --params P.safetensors`: the plane through P along two
/// filter-normalised random directions, and straight lines to --start / --other.
pub fn network_landscape(args: &super::LandscapeArgs) -> Result<ExitCode> {
    use crate::experiments::net_landscape as nl;
    let (Some(file), Some(params)) = (&args.network, &args.params) else {
        return Err(Error::Usage("--network needs --params".into()));
    };
    if !(2..=401).contains(&args.points) {
        return Err(Error::Usage(format!(
            "--points must be between 2 and 401 for a network plane, got {}",
            args.points
        )));
    }
    if !(args.span.is_finite() && args.span > 0.0) {
        return Err(Error::Usage(format!("--span must be a positive number, got {}", args.span)));
    }
    let study = nl::PlaneStudy {
        file,
        params,
        start: args.start.as_deref(),
        other: args.other.as_deref(),
        trajectory: args.trajectory.as_deref(),
        trajectory_seed: args.trajectory_seed,
        points: args.points,
        span: args.span,
        direction_seed: args.direction_seed,
        biases: args.biases,
        out: &args.out,
        force: args.force,
    };
    let (summary, samples) = nl::plane_study(&study)?;
    let grid_seconds = summary.grid_seconds;
    println!("{}", serde_json::to_string_pretty(&summary).unwrap_or_default());
    println!(
        "{}×{} plane ({} forward passes over {} samples) in {:.2} s; wrote {}",
        args.points,
        args.points,
        args.points * args.points,
        samples,
        grid_seconds,
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

pub fn hessian(args: &HessianArgs) -> Result<ExitCode> {
    use crate::experiments::curvature::{HessianStudy, SpectrumOptions};
    let summary = crate::experiments::curvature::hessian(&HessianStudy {
        file: &args.file,
        params: args.params.as_deref(),
        out: &args.out,
        force: args.force,
        options: SpectrumOptions {
            top: args.top,
            full: args.full.then_some(true).or(args.no_full.then_some(false)),
            probes: args.probes,
            steps: args.steps,
            trace_tol: args.trace_tol,
            max_probes: args.max_probes,
            seed: args.seed,
        },
    })?;
    println!("{}", serde_json::to_string_pretty(&summary).unwrap_or_default());
    Ok(ExitCode::SUCCESS)
}

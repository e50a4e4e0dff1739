//! `gradlab reproduce`: its options, a progress bar and Ctrl-C; `experiments::reproduce` runs
//! every study of the report and writes `report.html`, `report.md` and `results.json`.

use super::train::interrupt_flag;
use crate::data::Source;
use crate::error::{Error, Result};
use crate::experiments::reproduce as rp;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Instant;

#[derive(Args, Debug)]
pub struct ReproduceArgs {
    /// Seeds per setting, every section [default: 32 for Table 1, and for the CNN sections and
    /// the per-sample measures as many as --budget allows, 8 to 32; 4 with --quick].
    #[arg(long)]
    pub seeds: Option<usize>,
    /// Seconds the run should take on this machine: without --seeds, the CNN sections and the
    /// per-sample measures run fewer seeds (not below 8) where 32 would not fit, estimated from
    /// a 0.1 s measurement of a CNN training step before the run. The report says what was
    /// chosen and what it costs.
    #[arg(long, default_value_t = 180.0, value_name = "SECONDS")]
    pub budget: f64,
    /// Directory laid out like ../shared/datasets/cis680-hw1/; built-in generated data without it.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Seed of the built-in data generators (ignored with --data).
    #[arg(long, default_value_t = 0)]
    pub data_seed: u64,
    /// Output directory: report.html, report.md, results.json and one directory per study.
    #[arg(long, value_name = "DIR", default_value = "report")]
    pub out: PathBuf,
    /// A small version (4 seeds, short caps) that finishes in seconds: for trying it out and
    /// for CI, not for conclusions.
    #[arg(long)]
    pub quick: bool,
    /// Iteration cap of the exploding-gradient runs [default: 500; 50 with --quick].
    /// Divergence, when it comes, comes within the first iterations.
    #[arg(long)]
    pub explosion_iters: Option<usize>,
    /// Iteration cap of the CNN runs [default: 10000; 150 with --quick].
    #[arg(long)]
    pub cnn_iters: Option<usize>,
    /// Replace an earlier gradlab output in --out (cleared first; a directory holding other files is refused).
    #[arg(long)]
    pub force: bool,
}

struct Progress {
    bar: ProgressBar,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Each step's name and when it began: the wall time per step goes into results.json.
    began: std::cell::RefCell<Vec<(String, Instant)>>,
}

impl rp::Steps for Progress {
    fn step(&self, what: &str) {
        self.bar.inc(1);
        self.bar.set_message(what.to_string());
        self.began.borrow_mut().push((what.to_string(), Instant::now()));
    }
    fn seconds(&self) -> Vec<(String, f64)> {
        let began = self.began.borrow();
        let now = Instant::now();
        began
            .iter()
            .enumerate()
            .map(|(i, (name, t))| {
                let end = began.get(i + 1).map(|(_, e)| *e).unwrap_or(now);
                (name.clone(), (end - *t).as_secs_f64())
            })
            .collect()
    }
    fn interrupted(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
    /// Shows the run's iteration and converged count.
    fn training<'a>(&'a self, what: &'a str, seeds: usize) -> Box<dyn FnMut(usize, usize) -> bool + 'a> {
        let mut last = Instant::now();
        Box::new(move |it, converged| {
            if last.elapsed().as_millis() >= 100 {
                last = Instant::now();
                self.bar.set_message(format!("{what}: iteration {it}, {converged}/{seeds} seeds at 100%"));
            }
            !self.stop.load(Ordering::SeqCst)
        })
    }
}

pub fn reproduce(args: &ReproduceArgs) -> Result<ExitCode> {
    let started = Instant::now();
    let seeds = args.seeds.unwrap_or(if args.quick { 4 } else { crate::training::DEFAULT_SEEDS });
    if seeds == 0 || seeds > crate::training::MAX_SEEDS {
        return Err(Error::Usage(format!("--seeds must be between 1 and {}, got {seeds}", crate::training::MAX_SEEDS)));
    }
    if !(args.budget.is_finite() && args.budget > 0.0) {
        return Err(Error::Usage(format!("--budget must be a positive number of seconds, got {}", args.budget)));
    }
    // The budget chooses the expensive sections' seeds only when the user did not.
    let budget = match (args.seeds, args.quick) {
        (None, false) => {
            let threads = crate::training::parallel::threads();
            Some(rp::budget::plan(args.budget, rp::budget::calibrate()?, threads))
        }
        _ => None,
    };
    let scaled_seeds = budget.as_ref().map_or(seeds, |b| b.scaled_seeds);
    if let Some(b) = &budget {
        eprintln!(
            "budget {:.0} s: a CNN step takes {:.2} ms here ({} thread{}), the full run ~{:.0} s: {}",
            b.seconds,
            b.step_seconds * 1e3,
            b.threads,
            if b.threads == 1 { "" } else { "s" },
            b.full_estimate,
            if b.scaled_seeds == seeds {
                format!("every section runs {seeds} seeds")
            } else {
                format!(
                    "the CNN sections and per-sample measures run {} seeds (~{:.0} s; --seeds 32 for all)",
                    b.scaled_seeds, b.estimate
                )
            }
        );
    }
    let cnn_iters = args.cnn_iters.unwrap_or(if args.quick { 150 } else { crate::training::REPORT_MAX_ITERS });
    let explosion_iters = args.explosion_iters.unwrap_or(if args.quick { 50 } else { 500 });
    if cnn_iters == 0 || explosion_iters == 0 {
        return Err(Error::Usage("--cnn-iters and --explosion-iters must be at least 1".into()));
    }
    let source = match &args.data {
        Some(d) => Source::Dir(d.clone()),
        None => Source::Builtin { seed: args.data_seed },
    };
    let plan = rp::Plan {
        seeds,
        scaled_seeds,
        budget: budget.clone(),
        quick: args.quick,
        source,
        data_seed: args.data_seed,
        cnn_iters,
        explosion_iters,
        out: &args.out,
        force: args.force,
        started,
    };
    let bar = ProgressBar::new(rp::STEPS);
    bar.set_style(
        ProgressStyle::with_template("reproduce [{bar:30}] {pos}/{len} {elapsed}  {msg}")
            .expect("static template")
            .progress_chars("=> "),
    );
    let p = Progress { bar, stop: interrupt_flag(), began: Default::default() };
    let complete = rp::run(&plan, &p)?;
    p.bar.finish_and_clear();
    if !complete {
        eprintln!("interrupted: finished studies are in {}; no report was written", args.out.display());
        return Ok(ExitCode::from(130));
    }
    let seeds_said = if scaled_seeds == seeds {
        format!("{seeds} seeds per setting")
    } else {
        format!(
            "{seeds} seeds for Table 1, {scaled_seeds} for the CNNs and per-sample measures within the {:.0} s budget; --seeds 32 for all",
            args.budget
        )
    };
    println!(
        "report: {} ({seeds_said}) in {:.1} s",
        args.out.join("report.html").display(),
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

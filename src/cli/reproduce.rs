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
    /// Seeds per setting [default: 32; 4 with --quick].
    #[arg(long)]
    pub seeds: Option<usize>,
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
    /// Iteration cap of the exploding-gradient runs [default: 500; 100 with --quick].
    /// Divergence, when it comes, comes within the first iterations.
    #[arg(long)]
    pub explosion_iters: Option<usize>,
    /// Iteration cap of the CNN runs [default: 10000; 300 with --quick].
    #[arg(long)]
    pub cnn_iters: Option<usize>,
    /// Write into --out even if it already holds files.
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
    let cnn_iters = args.cnn_iters.unwrap_or(if args.quick { 300 } else { crate::training::REPORT_MAX_ITERS });
    let explosion_iters = args.explosion_iters.unwrap_or(if args.quick { 100 } else { 500 });
    if cnn_iters == 0 || explosion_iters == 0 {
        return Err(Error::Usage("--cnn-iters and --explosion-iters must be at least 1".into()));
    }
    let source = match &args.data {
        Some(d) => Source::Dir(d.clone()),
        None => Source::Builtin { seed: args.data_seed },
    };
    let plan = rp::Plan {
        seeds,
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
    println!(
        "report: {} ({} seeds per setting) in {:.1} s",
        args.out.join("report.html").display(),
        seeds,
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

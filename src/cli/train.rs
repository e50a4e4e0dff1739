//! `gradlab train …` and `gradlab table1`: resolve options, load data, train with a progress
//! bar, write outputs (also after Ctrl-C, marked incomplete).

use super::CommonArgs;
use crate::data::{self, DatasetKind, Source};
use crate::error::{Error, Result};
use crate::experiments::fc_random::{self, FcSetting, FcStudy};
use crate::experiments::train::TrainOptions;
use indicatif::{ProgressBar, ProgressStyle};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Checks the shared options; every complaint names the option and what would be accepted.
pub fn validate(c: &CommonArgs) -> Result<()> {
    let bad = |m: String| Err(Error::Usage(m));
    if c.seeds == 0 {
        return bad("--seeds must be at least 1".into());
    }
    if c.seeds > 100_000 {
        return bad(format!("--seeds {} is beyond the supported 100000", c.seeds));
    }
    if !(c.lr.is_finite() && c.lr > 0.0) {
        return bad(format!("--lr must be a positive number, got {}", c.lr));
    }
    if !(c.init_std.is_finite() && c.init_std >= 0.0) {
        return bad(format!("--init-std must be a finite number ≥ 0, got {}", c.init_std));
    }
    if !c.bias_init.is_finite() {
        return bad(format!("--bias-init must be finite, got {}", c.bias_init));
    }
    if c.max_iters == 0 {
        return bad("--max-iters must be at least 1".into());
    }
    Ok(())
}

pub fn train_options(c: &CommonArgs) -> TrainOptions {
    TrainOptions {
        seeds: c.seeds,
        first_seed: c.first_seed,
        lr: c.lr,
        init_std: c.init_std,
        bias_init: c.bias_init,
        max_iters: c.max_iters,
    }
}

pub fn source(c: &CommonArgs) -> Source {
    match &c.data {
        Some(dir) => Source::Dir(dir.clone()),
        None => Source::Builtin { seed: c.data_seed },
    }
}

/// Sets a flag on the first Ctrl-C; a second one exits at once.
fn interrupt_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let f = flag.clone();
    let _ = ctrlc::set_handler(move || {
        if f.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("\ninterrupted: finishing the current iteration and writing outputs (Ctrl-C again to quit now)");
    });
    flag
}

pub fn fc_study(c: &CommonArgs, settings: Vec<FcSetting>) -> Result<ExitCode> {
    validate(c)?;
    let data = data::load(DatasetKind::Random, &source(c))?;
    crate::report::atomic::prepare_out_dir(&c.out, c.force)?;
    let study = FcStudy { settings, train: train_options(c), reduction: c.reduction };
    let stop = interrupt_flag();
    let started = std::time::Instant::now();
    let mut runs = Vec::new();
    let total = study.settings.len();
    for (k, &setting) in study.settings.iter().enumerate() {
        let pb = ProgressBar::new(study.train.max_iters as u64);
        pb.set_style(
            ProgressStyle::with_template("{prefix:>34} [{bar:30}] {pos:>6}/{len} it  {msg}  {elapsed}")
                .expect("static template")
                .progress_chars("=> "),
        );
        pb.set_prefix(format!("[{}/{}] {}", k + 1, total, setting.name()));
        let run = fc_random::run_setting(&study, setting, &data, &mut |it, converged| {
            if it % 64 == 0 || converged == study.train.seeds {
                pb.set_position(it as u64);
                pb.set_message(format!("{converged}/{} seeds at 100%", study.train.seeds));
            }
            !stop.load(Ordering::SeqCst)
        })?;
        pb.finish_and_clear();
        runs.push(run);
        if stop.load(Ordering::SeqCst) {
            break;
        }
    }
    let complete = !stop.load(Ordering::SeqCst);
    let summaries = fc_random::write_outputs(&c.out, &study, &runs, &data, complete)?;
    println!("{}", fc_random::table1_markdown(&study, &summaries, &data));
    println!("wrote {} in {:.1} s", c.out.display(), started.elapsed().as_secs_f64());
    if complete {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("interrupted: outputs are partial and marked \"complete\": false in summary.json");
        Ok(ExitCode::from(130))
    }
}

//! `gradlab train …` and `gradlab table1`: resolve options, load data, train with a progress
//! bar, write outputs (also after Ctrl-C, marked incomplete).

use super::{CnnArgs, CommonArgs, StudyArgs};
use crate::data::{self, DatasetKind, Source};
use crate::error::{Error, Result};
use crate::experiments::cnn::{self, CnnSetting};
use crate::experiments::fc_random::{self, FcSetting, FcStudy};
use crate::experiments::presets::CnnTask;
use crate::init::WeightInit;
use crate::optim::OptimConfig;
use crate::record::Run;
use crate::training::{InitOptions, TrainOptions};
use indicatif::{ProgressBar, ProgressStyle};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The flag that sets a configuration key, for messages.
pub fn flag(field: &str) -> &str {
    match field {
        "train.seeds" => "--seeds",
        "train.max_iters" => "--max-iters",
        "train.save_every" => "--save-every",
        "optim.lr" => "--lr",
        "init.std" => "--init-std",
        "init.bias" => "--bias-init",
        "optim.clip_norm" => "--clip-norm",
        other => other,
    }
}

/// Checks the shared options with the one validator; complaints name the flag.
pub fn validate(c: &CommonArgs) -> Result<()> {
    validate_options(&train_options(c, crate::training::REPORT_LR))
}

/// The one validator, its complaint naming the command line's flag and the key at fault
/// (`--lr (key optim.lr) must be a positive number, got 0`).
pub fn validate_options(opts: &TrainOptions) -> Result<()> {
    opts.validate().map_err(|e| match e {
        Error::Field { field, msg } => match flag(&field) {
            f if f == field => Error::Usage(format!("key `{field}`: {msg}")),
            f => Error::Usage(format!("{f} (key `{field}`) {msg}")),
        },
        other => other,
    })
}

/// Creates the `--save-params` directory, if asked for.
fn prepare_params_dir(c: &CommonArgs) -> Result<()> {
    match &c.save_params {
        Some(d) if d.exists() && !d.is_dir() => {
            Err(Error::Usage(format!("--save-params {}: exists and is not a directory", d.display())))
        }
        Some(d) => std::fs::create_dir_all(d).map_err(|e| Error::io(d, e)),
        None => Ok(()),
    }
}

pub fn train_options(c: &CommonArgs, default_lr: f64) -> TrainOptions {
    TrainOptions {
        first_seed: c.first_seed,
        max_iters: c.max_iters,
        init: InitOptions { weights: WeightInit::TruncatedNormal { std: c.init_std }, bias: c.bias_init },
        optim: OptimConfig { clip_norm: c.clip_norm, ..OptimConfig::sgd(c.lr.unwrap_or(default_lr)) },
        init_from: c.init.clone(),
        save_params: c.save_params.clone(),
        save_every: c.save_every,
        probe_every: c.probe_every,
        sharpness_every: c.sharpness_every,
        lambda_min: c.lambda_min,
        held_out_every: (c.held_out_every > 0).then_some(c.held_out_every),
        all_rows: c.all_rows,
        samples: c.samples.then(|| {
            let mut score_at = c.score_at.clone();
            score_at.sort_unstable();
            score_at.dedup();
            crate::training::SampleOptions { score_at, trace: false }
        }),
        ..TrainOptions::new(c.seeds())
    }
}

pub fn source(c: &CommonArgs) -> Source {
    match &c.data {
        Some(dir) => Source::Dir(dir.clone()),
        None => Source::Builtin { seed: c.data_seed },
    }
}

/// Sets a flag on the first Ctrl-C; a second one exits at once.
/// The process's one Ctrl-C flag (a handler can be installed only once per process).
pub fn interrupt_flag() -> Arc<AtomicBool> {
    static FLAG: std::sync::OnceLock<Arc<AtomicBool>> = std::sync::OnceLock::new();
    FLAG.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        let f = flag.clone();
        let _ = ctrlc::set_handler(move || {
            if f.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
            eprintln!("\ninterrupted: finishing the current iteration and writing outputs (Ctrl-C again to quit now)");
        });
        flag
    })
    .clone()
}

/// Runs `run(k, progress)` for each of `names` in turn with a progress bar each; stops early
/// on Ctrl-C. Returns the runs finished (the last one possibly cut short) and whether all ran.
pub fn run_settings(
    names: &[String],
    max_iters: usize,
    seeds: usize,
    mut run: impl FnMut(usize, &mut dyn FnMut(usize, usize) -> bool) -> Result<Run>,
) -> Result<(Vec<Run>, bool)> {
    let stop = interrupt_flag();
    let mut runs = Vec::new();
    for (k, name) in names.iter().enumerate() {
        let pb = ProgressBar::new(max_iters as u64);
        pb.set_style(
            ProgressStyle::with_template("{prefix:>38} [{bar:30}] {pos:>6}/{len} it  {msg}  {elapsed}")
                .expect("static template")
                .progress_chars("=> "),
        );
        pb.set_prefix(format!("[{}/{}] {name}", k + 1, names.len()));
        let mut last = std::time::Instant::now();
        let r = run(k, &mut |it, converged| {
            if last.elapsed().as_millis() >= 100 || converged == seeds {
                last = std::time::Instant::now();
                pb.set_position(it as u64);
                pb.set_message(format!("{converged}/{seeds} seeds at 100%"));
            }
            !stop.load(Ordering::SeqCst)
        })?;
        pb.finish_and_clear();
        runs.push(r);
        if stop.load(Ordering::SeqCst) {
            return Ok((runs, false));
        }
    }
    Ok((runs, true))
}

/// `run_settings` as an `experiments::Runner`, for studies that orchestrate themselves.
pub fn progress_runner(
    names: &[String],
    max_iters: usize,
    seeds: usize,
    run: &mut crate::experiments::TrainCell<'_>,
) -> Result<(Vec<Run>, bool)> {
    run_settings(names, max_iters, seeds, |k, progress| run(k, progress))
}

fn finish(out: &std::path::Path, started: std::time::Instant, complete: bool) -> Result<ExitCode> {
    println!("wrote {} in {:.1} s", out.display(), started.elapsed().as_secs_f64());
    if complete {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("interrupted: outputs are partial and marked \"complete\": false in summary.json");
        Ok(ExitCode::from(130))
    }
}

pub fn fc_study(c: &CommonArgs, settings: Vec<FcSetting>) -> Result<ExitCode> {
    validate(c)?;
    let data = data::load(DatasetKind::Random, &source(c))?;
    let held_out = data::held_out(DatasetKind::Random, &source(c), data::HELD_OUT_SIZE);
    crate::atomic::prepare_out_dir(&c.out, c.force)?;
    prepare_params_dir(c)?;
    let study = FcStudy { settings, train: train_options(c, crate::training::REPORT_LR), reduction: c.reduction };
    let started = std::time::Instant::now();
    let names: Vec<String> = study.settings.iter().map(|s| s.name()).collect();
    let (runs, complete) = run_settings(&names, study.train.max_iters, study.train.seeds, |k, progress| {
        fc_random::run_setting(&study, study.settings[k], &data, Some(&held_out), progress)
    })?;
    let summaries = fc_random::write_outputs(&c.out, &study, &runs, &data, complete)?;
    if let Some(tb) = &c.tensorboard {
        crate::report::tensorboard::write_runs(tb, &runs)?;
    }
    println!("{}", fc_random::table1_markdown(&study, &summaries, &data));
    finish(&c.out, started, complete)
}

pub fn cnn(task: CnnTask, args: &CnnArgs) -> Result<ExitCode> {
    let c = &args.common;
    validate(c)?;
    let acts = super::parse_acts(&args.act)?;
    let kind = if task == CnnTask::Line { DatasetKind::Line } else { DatasetKind::Detection };
    let data = data::load(kind, &source(c))?;
    let held_out = data::held_out(kind, &source(c), data::HELD_OUT_SIZE);
    crate::atomic::prepare_out_dir(&c.out, c.force)?;
    prepare_params_dir(c)?;
    let opts = train_options(c, task.lr());
    let settings: Vec<CnnSetting> = acts
        .iter()
        .map(|&act| CnnSetting {
            act,
            reduction: c.reduction,
            init_std: c.init_std,
            untied_conv_bias: args.untied_conv_bias,
            clip_norm: None,
        })
        .collect();
    let started = std::time::Instant::now();
    let names: Vec<String> = settings.iter().map(|s| s.name()).collect();
    let (runs, complete) = run_settings(&names, opts.max_iters, opts.seeds, |k, progress| {
        cnn::run_setting(task, settings[k], &opts, &data, Some(&held_out), progress)
    })?;
    let summaries = cnn::write_outputs(&c.out, task, &settings, &opts, &runs, &data, complete)?;
    if let Some(tb) = &c.tensorboard {
        crate::report::tensorboard::write_runs(tb, &runs)?;
    }
    println!("{}", cnn::table_markdown(task, &opts, &summaries, &data));
    finish(&c.out, started, complete)
}

/// Runs each task's settings of a CNN study (`experiments::cnn::run_plan`) with progress bars.
fn cnn_plan(args: &StudyArgs, plan: Vec<(CnnTask, Vec<CnnSetting>)>) -> Result<(Vec<cnn::CnnRuns>, bool)> {
    let c = args.common();
    validate(&c)?;
    let datasets = cnn::load_plan_data(&plan, &source(&c))?;
    crate::atomic::prepare_out_dir(&c.out, c.force)?;
    let opts_for = |task: CnnTask| train_options(&c, task.lr());
    cnn::run_plan(plan, &datasets, &opts_for, &|_| vec![], &c.out, &mut progress_runner)
}

pub fn leaky_vs_relu(args: &StudyArgs) -> Result<ExitCode> {
    use crate::experiments::leaky_vs_relu as lvr;
    let started = std::time::Instant::now();
    let (runs, complete) = cnn_plan(args, lvr::plan())?;
    println!("{}", lvr::write_outputs(&args.out, &runs, complete, args.max_iters)?);
    finish(&args.out, started, complete)
}

pub fn explosion(args: &StudyArgs) -> Result<ExitCode> {
    use crate::experiments::explosion as ex;
    let started = std::time::Instant::now();
    let (runs, complete) = cnn_plan(args, ex::plan())?;
    println!("{}", ex::write_outputs(&args.out, &runs, complete, args.max_iters)?);
    finish(&args.out, started, complete)
}

pub fn samples(args: &super::SamplesArgs) -> Result<ExitCode> {
    use crate::experiments::samples_study as study;
    let cfg = study::SamplesStudy {
        seeds: args.seeds,
        noise: args.noise,
        prune: args.prune.clone(),
        ratios: args.ratios.clone(),
        tasks: args.tasks.clone(),
        max_iters: None,
    };
    cfg.validate()?;
    validate_options(&TrainOptions::new(args.seeds))?;
    crate::atomic::prepare_out_dir(&args.out, args.force)?;
    let started = std::time::Instant::now();
    let r = study::run(&cfg, &args.out, &mut progress_runner)?;
    study::write_outputs(&args.out, &r)?;
    println!("{}", study::markdown(&r));
    finish(&args.out, started, r.complete)
}

pub fn depth(args: &super::DepthArgs) -> Result<ExitCode> {
    use crate::experiments::depth;
    if args.max_depth == 0 || args.width == 0 {
        return Err(Error::Usage("--max-depth and --width must be at least 1".into()));
    }
    let opts = TrainOptions {
        max_iters: args.max_iters,
        ..TrainOptions::new(args.seeds).with_sgd(args.lr, crate::training::REPORT_INIT_STD)
    };
    validate_options(&opts)?;
    let data = data::generate(DatasetKind::Random, data::ORIGINAL_SIZE, args.data_seed);
    let samples = data.samples();
    crate::atomic::prepare_out_dir(&args.out, args.force)?;
    let started = std::time::Instant::now();
    let cells = depth::plan(args.max_depth, !args.no_batchnorm);
    let (rows, complete) =
        depth::run_study(&cells, args.width, &samples, &data.source, &opts, &args.out, &mut progress_runner)?;
    println!("{}", depth::markdown(&rows, &opts));
    finish(&args.out, started, complete)
}

pub fn edge_of_stability(args: &super::EosArgs) -> Result<ExitCode> {
    use crate::experiments::edge_of_stability as eos;
    let study =
        eos::EosStudy { lrs: args.lrs.clone(), max_iters: args.max_iters, every: args.every, seeds: args.seeds };
    study.lab()?; // the arguments' errors before the directory is touched
    crate::atomic::prepare_out_dir(&args.out, args.force)?;
    let started = std::time::Instant::now();
    let (rows, complete) = eos::run(&study, &args.out, &mut progress_runner)?;
    println!("{}", eos::markdown(&rows));
    finish(&args.out, started, complete)
}

fn task_kinds(names: &[String]) -> Result<Vec<DatasetKind>> {
    names
        .iter()
        .map(|n| match n.as_str() {
            "random" => Ok(DatasetKind::Random),
            "line" => Ok(DatasetKind::Line),
            "detection" | "detect" => Ok(DatasetKind::Detection),
            other => Err(Error::Usage(format!("--tasks: unknown task `{other}` (random, line, detection)"))),
        })
        .collect()
}

pub fn memorisation(args: &super::NoiseArgs) -> Result<ExitCode> {
    use crate::experiments::memorisation as mem;
    let kinds = task_kinds(&args.tasks)?;
    if let Some(v) = args.noise.iter().find(|v| !(0.0..=1.0).contains(*v)) {
        return Err(Error::Usage(format!("--noise {v}: shares are between 0 and 1")));
    }
    let arms = args
        .arms
        .iter()
        .map(|a| match a.as_str() {
            "none" => Ok(mem::Arm::None),
            "dropout" if (0.0..1.0).contains(&args.dropout) => Ok(mem::Arm::Dropout { rate: args.dropout }),
            "dropout" => Err(Error::Usage(format!("--dropout {}: a rate in [0, 1)", args.dropout))),
            "weight_decay" if args.weight_decay >= 0.0 => Ok(mem::Arm::WeightDecay { lambda: args.weight_decay }),
            "weight_decay" => Err(Error::Usage(format!("--weight-decay {}: must be ≥ 0", args.weight_decay))),
            "input_noise" if args.input_noise >= 0.0 => Ok(mem::Arm::InputNoise { std: args.input_noise }),
            "input_noise" => Err(Error::Usage(format!("--input-noise {}: must be ≥ 0", args.input_noise))),
            other => {
                let hint = crate::names::did_you_mean(other, &mem::Arm::NAMES);
                Err(Error::Usage(format!("--arms: unknown arm `{other}`{hint} ({})", mem::Arm::NAMES.join(", "))))
            }
        })
        .collect::<Result<Vec<_>>>()?;
    let opts = TrainOptions { max_iters: args.max_iters, ..TrainOptions::new(args.seeds) };
    validate_options(&opts)?;
    crate::atomic::prepare_out_dir(&args.out, args.force)?;
    let started = std::time::Instant::now();
    let (_, md, complete) =
        mem::noise_study(&kinds, &args.noise, &arms, args.data_seed, &opts, &args.out, &mut progress_runner)?;
    println!("{md}");
    finish(&args.out, started, complete)
}

pub fn batchnorm(args: &super::BatchnormArgs) -> Result<ExitCode> {
    use crate::experiments::batchnorm as bn;
    let tasks = args
        .tasks
        .iter()
        .map(|t| {
            bn::Task::parse(t).ok_or_else(|| {
                let hint = crate::names::did_you_mean(t, &bn::Task::NAMES);
                Error::Usage(format!("--tasks: unknown task `{t}`{hint} ({})", bn::Task::NAMES.join(", ")))
            })
        })
        .collect::<Result<Vec<_>>>()?;
    if args.seeds == 0 || args.max_iters == 0 || args.every == 0 {
        return Err(Error::Usage("--seeds, --max-iters and --every must be at least 1".into()));
    }
    if !(args.digits_lr > 0.0 && args.digits_lr.is_finite()) {
        return Err(Error::Usage(format!("--digits-lr {}: must be a positive number", args.digits_lr)));
    }
    let study =
        bn::Study { tasks, seeds: args.seeds, max_iters: args.max_iters, every: args.every, digits_lr: args.digits_lr };
    crate::atomic::prepare_out_dir(&args.out, args.force)?;
    let started = std::time::Instant::now();
    let (_, md, complete) = bn::run(&study, &args.out, &mut progress_runner)?;
    println!("{md}");
    finish(&args.out, started, complete)
}

pub fn data_vs_init(args: &super::DataVsInitArgs) -> Result<ExitCode> {
    use crate::experiments::memorisation as mem;
    let kinds = task_kinds(&args.tasks)?;
    if args.draws < 2 || args.seeds < 2 {
        return Err(Error::Usage("--draws and --seeds must be at least 2 for a decomposition".into()));
    }
    let opts = TrainOptions {
        max_iters: args.max_iters,
        held_out_every: None,
        probe_every: 0,
        ..TrainOptions::new(args.seeds)
    };
    validate_options(&opts)?;
    let files: Vec<Option<crate::data::Dataset>> = kinds
        .iter()
        .map(|&k| args.data.as_ref().map(|d| data::load(k, &Source::Dir(d.clone()))).transpose())
        .collect::<Result<_>>()?;
    crate::atomic::prepare_out_dir(&args.out, args.force)?;
    let started = std::time::Instant::now();
    let (md, complete) = mem::data_vs_init_study(&kinds, args.draws, &files, &opts, &args.out, &mut progress_runner)?;
    println!("{md}");
    finish(&args.out, started, complete)
}

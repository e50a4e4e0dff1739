//! `gradlab bench`: training-step speed of fc73 (batch 64, forward + backward + SGD) for
//! several ensemble sizes, printed next to a large square sgemm measured in the same run, so
//! the figures read as a fraction of this machine's single-core peak.

use crate::activations::Activation;
use crate::data::Samples;
use crate::data::generators;
use crate::error::Result;
use crate::experiments::presets::{Cnn, CnnTask, Fc73, LossKind};
use crate::init::WeightInit;
use crate::models::Init;
use crate::models::Net;
use crate::optim::{OptimConfig, Optimizer};
use crate::record::Run;
use std::hint::black_box;
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Shorter measurements (about 0.1 s per figure instead of 0.5 s).
    #[arg(long)]
    pub quick: bool,
    /// Ensemble sizes to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,8,32,128")]
    pub ensembles: Vec<usize>,
    /// Ensemble sizes for the CNN step, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,8")]
    pub cnn_ensembles: Vec<usize>,
    /// Only the cost of normalisation and noise layers (layernorm, batchnorm, dropout) in a training step.
    #[arg(long)]
    pub layers_only: bool,
    /// Only the curvature figures (Lanczos during training, the digits CNN).
    #[arg(long)]
    pub curvature_only: bool,
    /// Only the per-sample figures (tracking overhead, EL2N/GraNd, C-scores of the digits).
    #[arg(long)]
    pub samples_only: bool,
}

/// Calls `f` in batches until `budget` has passed; returns seconds per call (best batch).
pub fn time_per_call(budget: Duration, mut f: impl FnMut()) -> f64 {
    f(); // warm-up
    let mut batch = 1usize;
    loop {
        let t = Instant::now();
        for _ in 0..batch {
            f();
        }
        if t.elapsed() > Duration::from_millis(20) {
            break;
        }
        batch *= 2;
    }
    let (mut best, start) = (f64::INFINITY, Instant::now());
    while start.elapsed() < budget {
        let t = Instant::now();
        for _ in 0..batch {
            f();
        }
        best = best.min(t.elapsed().as_secs_f64() / batch as f64);
    }
    best
}

/// GFLOP/s of a single-threaded `n×n×n` sgemm.
pub fn sgemm_gflops(n: usize, budget: Duration) -> f64 {
    let a: Vec<f32> = (0..n * n).map(|i| (i % 7) as f32 * 0.1).collect();
    let b = a.clone();
    let mut c = vec![0f32; n * n];
    let s = time_per_call(budget, || {
        crate::engine::gemm::gemm(n, n, n, black_box(&a), [n, 1], &b, [n, 1], 0.0f32, &mut c, [n, 1])
    });
    2.0 * (n * n * n) as f64 / s / 1e9
}

/// Multiply–adds of one fc73 step per model (batch 64): forward 64·16·4 + 64·4, backward
/// dW1 64·4·16, dW2 and dHidden 2·64·4. Elementwise work is not counted.
pub const FC73_FLOPS_PER_MODEL: f64 = 2.0 * (64.0 * 16.0 * 4.0 * 2.0 + 64.0 * 4.0 * 3.0);

/// Seconds per training step (forward, backward, optimiser) of `net` on all of `data`.
pub fn step_seconds(mut net: Net<f32>, data: &Samples, optim: OptimConfig, budget: Duration) -> f64 {
    let e = net.graph.ensemble();
    net.init(&Init::seeds(0, e, WeightInit::TruncatedNormal { std: 0.1 }, 0.1));
    let all: Vec<usize> = (0..data.n).collect();
    net.feed(data, &all);
    let mut opt = Optimizer::new(optim, &net.graph);
    let active = vec![true; e];
    time_per_call(budget, || {
        net.graph.forward();
        net.graph.backward(net.loss);
        opt.step(&mut net.graph, &active);
    })
}

/// Seconds per fc73 training step for an ensemble of `e` models (on the engine's per-model
/// path where the CPU has it, see `engine::fused_mlp`).
pub fn fc73_step_seconds(e: usize, act: Activation, loss: LossKind, budget: Duration) -> Result<f64> {
    fc73_step_seconds_on(e, act, loss, budget, true)
}

/// [`fc73_step_seconds`], on the per-model path (`fused`) or operation by operation on the tape.
pub fn fc73_step_seconds_on(e: usize, act: Activation, loss: LossKind, budget: Duration, fused: bool) -> Result<f64> {
    let data = generators::random(64, 0).samples();
    let mut net = Fc73::new(act, loss).build::<f32>(e, 64)?;
    if !fused {
        net.graph.disable_fusion();
    }
    Ok(step_seconds(net, &data, OptimConfig::sgd(0.1), budget))
}

/// Multiply–adds ×2 of one detect-CNN step per model (batch 64): conv1 forward and dW
/// (16·49·6400 each), conv2 forward, dW and dX (8·784·1024 each), and the two heads.
pub const DETECT_FLOPS_PER_MODEL: f64 =
    2.0 * (2.0 * 16.0 * 49.0 * 6400.0 + 3.0 * 8.0 * 784.0 * 1024.0 + 2.0 * 3.0 * 128.0 * 64.0);

/// Seconds per training step of the two-task CNN for an ensemble of `e` models.
pub fn detect_step_seconds(e: usize, budget: Duration) -> Result<f64> {
    let data = generators::detection(64, 0);
    let net = Cnn::new(CnnTask::Detect, Activation::Relu).build::<f32>(e, 64)?;
    Ok(step_seconds(net, &data.samples(), OptimConfig::sgd(0.01), budget))
}

fn timed_training(net: Net<f32>, data: &Samples, opts: crate::training::TrainOptions) -> Result<f64> {
    let mut net = net;
    let t = Instant::now();
    crate::training::train("bench", &mut net, data, None, &opts, &mut |_, _| true)?;
    Ok(t.elapsed().as_secs_f64())
}

/// Seconds for Table 1's sigmoid+ce setting, 32 seeds × 3000 iterations (none converge so early).
fn probe_run_fc(probe_every: usize) -> Result<f64> {
    let data = generators::random(64, 0).samples();
    let net = Fc73::new(Activation::Sigmoid, LossKind::Ce).build::<f32>(32, 64)?;
    let opts = crate::training::TrainOptions { max_iters: 3000, probe_every, ..crate::training::TrainOptions::new(32) };
    timed_training(net, &data, opts)
}

/// Seconds for one detect-CNN seed × 300 iterations.
fn probe_run_detect(probe_every: usize) -> Result<f64> {
    let data = generators::detection(64, 0).samples();
    let opts = crate::training::TrainOptions {
        max_iters: 300,
        probe_every,
        stop: crate::training::StopRule::None,
        ..crate::training::TrainOptions::new(1).with_sgd(0.01, 0.1)
    };
    timed_training(Cnn::new(CnnTask::Detect, Activation::Relu).build::<f32>(1, 64)?, &data, opts)
}

/// Seconds for fc73 relu+ce, 32 seeds × 1000 iterations (no stopping), with the sharpness
/// every `every` iterations (0: none); and the mean Lanczos steps per measurement.
fn sharpness_run(every: usize) -> Result<(f64, f64)> {
    let data = generators::random(64, 0).samples();
    let net = Fc73::new(Activation::Relu, LossKind::Ce).build::<f32>(32, 64)?;
    let opts = crate::training::TrainOptions {
        max_iters: 1000,
        sharpness_every: every,
        probe_every: 0,
        held_out_every: None,
        stop: crate::training::StopRule::None,
        ..crate::training::TrainOptions::new(32)
    };
    let steps_before = crate::training::sharpness::lanczos_steps();
    let s = timed_training(net, &data, opts)?;
    let steps = crate::training::sharpness::lanczos_steps() - steps_before;
    Ok((s, if every > 0 { steps as f64 / (1000 / every) as f64 } else { 0.0 }))
}

/// A preset with `[samples]` (the given keys; `None`: no table) and these `[train]` keys
/// (`key = value` lines), as a checked lab.
fn samples_lab(preset: &str, samples: Option<&str>, train: &str) -> Result<crate::experiments::lab::Lab> {
    let bad = |e: String| crate::Error::Usage(format!("bench preset {preset}: {e}"));
    let mut doc: toml::Table = crate::experiments::presets::text(preset)?.parse().map_err(|e| bad(format!("{e}")))?;
    doc.remove("sweep");
    let extra: toml::Table = train.parse().map_err(|e| bad(format!("{e}")))?;
    for (k, v) in extra {
        crate::experiments::lab::set_key(&mut doc, &format!("train.{k}"), v).map_err(bad)?;
    }
    if let Some(keys) = samples {
        let t: toml::Table = keys.parse().map_err(|e| bad(format!("{e}")))?;
        doc.insert("samples".into(), toml::Value::Table(t));
    }
    let text = toml::to_string(&doc).map_err(|e| bad(e.to_string()))?;
    crate::experiments::lab::parse(std::path::Path::new(preset), &text)
}

/// Seconds to train a lab's one cell (every seed), both cores.
fn lab_seconds(lab: &crate::experiments::lab::Lab) -> Result<(f64, Run)> {
    let (data, held) = lab.data(0)?;
    let t = Instant::now();
    let run = lab.run_cell(0, &data, held.as_ref(), &mut |_, _| true)?;
    Ok((t.elapsed().as_secs_f64(), run))
}

/// Issue 22's figures: what per-sample tracking adds to a run, and the digits' C-scores.
fn per_sample() -> Result<()> {
    println!(
        "
per-sample measures (issue 22), whole runs on both cores, best of 3, alternating:"
    );
    println!("{:<52} {:>9} {:>9} {:>7}", "run", "plain", "tracked", "ratio");
    let cases = [
        (
            "fc73 relu+ce, 32 seeds × 3000 it., full batch",
            "fc73",
            "seeds = 32\nmax_iters = 3000\nstop = \"none\"\nprobe_every = 0",
        ),
        (
            "line relu, 8 seeds × 300 it., full batch",
            "line",
            "seeds = 8\nmax_iters = 300\nstop = \"none\"\nprobe_every = 0",
        ),
        (
            "digits MLP, 32 seeds × 440 it., minibatches of 64",
            "digits-mlp",
            "seeds = 32\nmax_iters = 440\nstop = \"none\"\nprobe_every = 0",
        ),
    ];
    for (name, preset, train) in cases {
        let (plain, tracked) = (samples_lab(preset, None, train)?, samples_lab(preset, Some(""), train)?);
        let (mut a, mut b) = (f64::INFINITY, f64::INFINITY);
        for _ in 0..3 {
            a = a.min(lab_seconds(&plain)?.0);
            b = b.min(lab_seconds(&tracked)?.0);
        }
        println!("{name:<52} {a:>7.3} s {b:>7.3} s {:>7.3}", b / a);
    }
    println!("target (issue 22): forgetting and data-map tracking cost at most 15% of the run (ratio ≤ 1.15)");
    // EL2N and GraNd of every digit under every seed: one pass of the batch-1 twin.
    let base = "seeds = 32\nmax_iters = 22\nstop = \"none\"\nprobe_every = 0";
    let (plain, _) = lab_seconds(&samples_lab("digits-mlp", None, base)?)?;
    let (scored, _) = lab_seconds(&samples_lab("digits-mlp", Some("score_at = [22]"), base)?)?;
    println!(
        "EL2N + GraNd of the 1 437 digits × 32 seeds (46 k per-sample gradients): {:.3} s ({:.1} µs each)",
        scored - plain,
        (scored - plain) / (1437.0 * 32.0) * 1e6
    );
    let lab = samples_lab("digits-mlp", None, "seeds = 32\nprobe_every = 0")?;
    let (data, _) = lab.data(0)?;
    let c = &lab.cells[0];
    let ratios: Vec<f64> = (1..=9).map(|k| k as f64 / 10.0).collect();
    let epochs = 20;
    let t = Instant::now();
    let mut runner = |names: &[String], _: usize, _: usize, f: &mut crate::experiments::TrainCell<'_>| {
        let runs = (0..names.len()).map(|k| f(k, &mut |_, _| true)).collect::<Result<Vec<_>>>()?;
        Ok((runs, true))
    };
    crate::experiments::cscores::run("bench", &c.file.network, &data, &c.opts, &ratios, epochs, &mut runner)?;
    println!(
        "C-scores of the 1 437 digits, 9 ratios × 32 seeds of the digits MLP, {epochs} epochs each: {:.2} s (target ≤ 60 s)",
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Issue 23's figures: exact Hessian-vector products and Lanczos during training and on the
/// digits CNN.
fn curvature(budget: Duration) -> Result<()> {
    println!("\ncurvature: sharpness by Lanczos on exact Hessian-vector products (Dual<f64> twin), one thread:");
    let (mut off, mut on, mut steps) = (f64::INFINITY, f64::INFINITY, 0.0);
    for _ in 0..2 {
        off = off.min(sharpness_run(0)?.0);
        let (s, k) = sharpness_run(1)?;
        on = on.min(s);
        steps = k;
    }
    println!(
        "fc73 relu+ce, 32 seeds × 1000 it.: plain {off:.3} s, sharpness every iteration {on:.3} s, ratio {:.2} ({steps:.1} Lanczos steps per measurement; target ≤ 5)",
        on / off
    );
    let data = generators::random(64, 0).samples();
    let mut net = Fc73::new(Activation::Relu, LossKind::Ce).build::<f32>(32, 64)?;
    net.init(&Init::seeds(0, 32, WeightInit::TruncatedNormal { std: 0.1 }, 0.1));
    net.feed(&data, &(0..64).collect::<Vec<_>>());
    let step = fc73_step_seconds(32, Activation::Relu, LossKind::Ce, budget)?;
    let mut hvp = crate::curvature::Hvp::new(&net);
    hvp.at(&net);
    let v = vec![vec![0.5; hvp.dim]; 32];
    let product = time_per_call(budget, || drop(hvp.apply(&v)));
    println!("fc73, E = 32: one Hessian-vector product {:.1} µs = {:.1} training steps", product * 1e6, product / step);
    let lab = crate::experiments::presets::lab("digits-cnn")?;
    let (digits, _) = lab.data(0)?;
    let spec = &lab.cells[0].file.network;
    let mut cnn = crate::models::spec::build::<f32>(spec, &digits, 1, digits.n)?;
    cnn.init(&Init::seeds(0, 1, WeightInit::HeUniform, 0.0));
    cnn.feed(&digits, &(0..digits.n).collect::<Vec<_>>());
    let mut hvp = crate::curvature::Hvp::new(&cnn);
    let t = Instant::now();
    hvp.at(&cnn);
    let start = crate::curvature::lanczos::random_vectors(hvp.dim, &mut [crate::init::SeededRng::new(0)], false);
    let o = crate::curvature::lanczos::Options { top: 1, bottom: 1, tol: 0.0, min_steps: 20, max_steps: 20 };
    let r = crate::curvature::lanczos::lanczos(&mut |v: &[Vec<f64>]| hvp.apply(v), start, &o);
    println!(
        "digits CNN ({} parameters, all {} images): 20 Lanczos steps {:.3} s (target ≤ 1 s); λmax ≈ {:.4}, λmin ≈ {:.4}",
        hvp.dim,
        digits.n,
        t.elapsed().as_secs_f64(),
        r[0].max(),
        r[0].min()
    );
    Ok(())
}

pub fn run(args: &BenchArgs) -> Result<()> {
    let budget = Duration::from_millis(if args.quick { 100 } else { 500 });
    if args.curvature_only {
        return curvature(budget);
    }
    if args.samples_only {
        return per_sample();
    }
    if args.layers_only {
        return layer_costs(budget);
    }
    let peak = sgemm_gflops(512, budget);
    println!(
        "baseline: sgemm 512×512×512, one thread: {peak:.1} GFLOP/s (matrixmultiply, its own best kernel for this CPU)"
    );
    println!(
        "kernels: {} (this CPU has {}; GRADLAB_SIMD=off|avx2|avx512 forces one); {} threads\n",
        crate::engine::simd::tier(),
        names(&crate::engine::simd::Tier::available_tiers()),
        crate::training::parallel::threads()
    );
    println!("fc73 training step (batch 64, forward + backward + SGD), one thread:");
    println!(
        "{:<14} {:>6} {:>12} {:>16} {:>10} {:>10}",
        "setting", "E", "µs/step", "µs/step/model", "GFLOP/s", "% sgemm"
    );
    for (act, loss) in [(Activation::Relu, LossKind::Ce), (Activation::Sigmoid, LossKind::L2)] {
        for &e in &args.ensembles {
            let s = fc73_step_seconds(e, act, loss, budget)?;
            let gflops = FC73_FLOPS_PER_MODEL * e as f64 / s / 1e9;
            println!(
                "{:<14} {:>6} {:>12.2} {:>16.3} {:>10.2} {:>9.1}%",
                format!("{act}+{loss}"),
                e,
                s * 1e6,
                s * 1e6 / e as f64,
                gflops,
                100.0 * gflops / peak
            );
        }
    }
    println!("\ntargets (issue 2): ≤ 3 µs/step at E = 1; ≤ 1 µs/step/model at E ≥ 32");
    println!("\ndetect CNN training step (batch 64, {:.1} MFLOP per model), one thread:", DETECT_FLOPS_PER_MODEL / 1e6);
    println!(
        "{:<14} {:>6} {:>12} {:>16} {:>10} {:>10}",
        "setting", "E", "ms/step", "ms/step/model", "GFLOP/s", "% sgemm"
    );
    for &e in &args.cnn_ensembles {
        let s = detect_step_seconds(e, budget)?;
        let gflops = DETECT_FLOPS_PER_MODEL * e as f64 / s / 1e9;
        println!(
            "{:<14} {:>6} {:>12.3} {:>16.3} {:>10.1} {:>9.1}%",
            "relu",
            e,
            s * 1e3,
            s * 1e3 / e as f64,
            gflops,
            100.0 * gflops / peak
        );
    }
    println!("targets (issue 4): ≤ 0.8 ms/step at E = 1 (≥ half the sgemm peak); per-model cost at E = 8 ≤ at E = 1");
    speed_at_the_limit(peak, budget)?;
    println!(
        "\nprobe overhead: whole training runs with probes every {} iterations (and at 1, 2, 4, …) against none, best of 2:",
        crate::training::DEFAULT_PROBE_EVERY
    );
    println!("{:<40} {:>10} {:>10} {:>8}", "run", "no probes", "probes", "ratio");
    for (name, seconds) in [
        ("Table 1 sigmoid+ce, 32 seeds × 3000 it.", &probe_run_fc as &dyn Fn(usize) -> Result<f64>),
        ("detect relu, 1 seed × 300 it.", &probe_run_detect),
    ] {
        let (mut off, mut on) = (f64::INFINITY, f64::INFINITY);
        for _ in 0..2 {
            off = off.min(seconds(0)?);
            on = on.min(seconds(crate::training::DEFAULT_PROBE_EVERY)?);
        }
        println!("{name:<40} {:>8.3} s {:>8.3} s {:>8.3}", off, on, on / off);
    }
    println!("target (issue 11): probes at the default interval cost at most 10% (ratio ≤ 1.10)");
    layer_costs(budget)?;
    per_sample()?;
    curvature(budget)?;
    println!(
        "\nwhole-network loss landscapes (filter-normalised plane through a seed's initial parameters, both cores):"
    );
    for (name, points, target) in [("fc73", 101usize, "well under 1 s"), ("detect", 51, "≤ 2 s")] {
        let lab = crate::experiments::presets::lab(name)?;
        let (data, _) = lab.data(0)?;
        let spec = &lab.cells[0].file.network;
        let build = |e: usize| crate::models::spec::build::<f32>(spec, &data, e, data.n);
        let mut one = build(1)?;
        one.init(&Init::seeds(0, 1, WeightInit::TruncatedNormal { std: 0.1 }, 0.1));
        let theta = crate::experiments::net_landscape::parameters(&one);
        let t = Instant::now();
        crate::experiments::net_landscape::plane(&build, &data, &theta, 0, false, points, 1.0)?;
        println!(
            "{name:<8} {points}×{points} = {:>6} forward passes of {} samples: {:.3} s (target {target})",
            points * points,
            data.n,
            t.elapsed().as_secs_f64()
        );
    }
    let cfg = crate::experiments::landscape::LandscapeConfig {
        act: Activation::Sigmoid,
        x: 1.0,
        y: 0.5,
        w_range: (-6.0, 6.0),
        b_range: (-6.0, 6.0),
        points: 1000,
    };
    let t = Instant::now();
    crate::experiments::landscape::compute(&cfg)?;
    println!(
        "\nlandscape: sigmoid neuron, 1000×1000 grid, all seven quantities: {:.3} s (target < 1 s)",
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The first `n` samples of `data`, as a dataset of their own.
fn first(data: &Samples, n: usize) -> Samples {
    let f = data.features();
    Samples {
        x: data.x[..n * f].to_vec(),
        n,
        targets: data
            .targets
            .iter()
            .map(|t| crate::data::Target { values: t.values[..n * t.width].to_vec(), ..t.clone() })
            .collect(),
        ..data.clone()
    }
}

/// Issue 26's layers: a training step of the digits MLP and CNN (one model, batch 64) with
/// layer normalisation, batch normalisation or dropout inserted, against the same net without
/// (dropout and BatchNorm in training mode: masks as drawn, batch statistics).
fn layer_costs(budget: Duration) -> Result<()> {
    let lab = crate::experiments::presets::lab("digits-mlp")?;
    let (data, _) = lab.data(0)?;
    let batch = first(&data, 64);
    println!(
        "
normalisation and noise layers: training step on 64 digits, one model, one thread, against the same net without:"
    );
    println!("{:<44} {:>10} {:>10} {:>8}", "net", "without", "with", "ratio");
    let mlp = |extra: &str| {
        format!(
            "layers = [{{ type = \"dense\", units = 64, act = \"relu\" }},{extra} {{ type = \"dense\", units = 10 }}]\nloss = \"softmax_ce\""
        )
    };
    let cnn = |extra: &str| {
        format!(
            "layers = [{{ type = \"conv2d\", channels = 16, kernel = 3, padding = 1, act = \"relu\" }},{extra} {{ type = \"maxpool\", kernel = 2 }}, {{ type = \"conv2d\", channels = 32, kernel = 3, act = \"relu\" }}, {{ type = \"dense\", units = 10 }}]\nloss = \"softmax_ce\""
        )
    };
    let ln = " { type = \"layernorm\" },";
    let drop = " { type = \"dropout\", rate = 0.5 },";
    // BatchNorm between a layer and its ReLU, as it is usually placed.
    let bn = |text: String| text.replacen(", act = \"relu\" },", " }, { type = \"batchnorm\", act = \"relu\" },", 1);
    for (name, without, with, training) in [
        ("MLP 64 relu + layernorm", mlp(""), mlp(ln), false),
        ("MLP 64 + batchnorm, relu", mlp(""), bn(mlp("")), true),
        ("MLP 64 relu + dropout 0.5", mlp(""), mlp(drop), true),
        ("CNN (digits-cnn) + layernorm after conv1", cnn(""), cnn(ln), false),
        ("CNN (digits-cnn), conv1 + batchnorm, relu", cnn(""), bn(cnn("")), true),
    ] {
        let time = |text: &str, training: bool| -> Result<f64> {
            let spec: crate::models::spec::NetworkSpec =
                toml::from_str(text).map_err(|e| crate::error::Error::Usage(format!("bench net: {e}")))?;
            let mut net = crate::models::spec::build::<f32>(&spec, &batch, 1, 64)?;
            if training {
                let mut rng = crate::init::SeededRng::new(1);
                net.graph.draw_noise(|| rng.uniform());
                net.graph.set_training(true);
            }
            Ok(step_seconds(net, &batch, OptimConfig::sgd(0.05), budget))
        };
        let (mut a, mut b) = (f64::INFINITY, f64::INFINITY);
        for _ in 0..2 {
            a = a.min(time(&without, false)?);
            b = b.min(time(&with, training)?);
        }
        println!("{name:<44} {:>7.1} µs {:>7.1} µs {:>8.3}", a * 1e6, b * 1e6, b / a);
    }
    println!("target (issue 26, for BatchNorm): ≤ 1.3× the net without");
    Ok(())
}

/// "portable, AVX2, AVX-512".
fn names(tiers: &[crate::engine::simd::Tier]) -> String {
    tiers.iter().map(|t| t.name()).collect::<Vec<_>>().join(", ")
}

/// Issue 12's figures: the CNN step with the SIMD kernels against the generic ones (same
/// numbers bit for bit; measured in this run), fc73 per activation, and the training loop's
/// bookkeeping on top of the bare step.
fn speed_at_the_limit(peak: f64, budget: Duration) -> Result<()> {
    println!(
        "
speed at the machine's limit (issue 12), one thread, in-run sgemm peak {peak:.1} GFLOP/s:"
    );
    // Each tier this CPU has, forced in turn (the same numbers bit for bit, tested).
    use crate::engine::simd::{self, Tier};
    let tiers = Tier::available_tiers();
    let mut detect = vec![];
    for &tier in &tiers {
        simd::force(Some(tier));
        detect.push(detect_step_seconds(1, budget)?);
    }
    simd::force(None);
    println!("detect step, E = 1, per kernel tier (this CPU has {}):", names(&tiers));
    for (&tier, &s) in tiers.iter().zip(&detect) {
        let pct = 100.0 * DETECT_FLOPS_PER_MODEL / s / 1e9 / peak;
        println!(
            "  {:<9} {:.3} ms (×{:.2} the portable kernels), {pct:.0}% of peak (target ≥ 60%)",
            tier.name(),
            s * 1e3,
            detect[0] / s
        );
    }
    {
        let cal = crate::engine::helper::calibration();
        let one = detect_step_seconds(1, budget)?;
        let stolen = crate::engine::helper::STOLEN.load(std::sync::atomic::Ordering::Relaxed);
        let helper = crate::engine::helper::Helper::install();
        let both = detect_step_seconds(1, budget)?;
        drop(helper);
        let stolen = crate::engine::helper::STOLEN.load(std::sync::atomic::Ordering::Relaxed) - stolen;
        println!(
            "detect step, E = 1, one model on both cores (convolutions split with a helper thread): {:.3} ms against {:.3} on one (×{:.2} the one-core time; target ≤ 0.7); {stolen} halves taken back from the helper",
            both * 1e3,
            one * 1e3,
            both / one
        );
        println!(
            "helper thread: calibration split {:.1} µs against {:.1} on one thread (×{:.2}; a split pays below ×{}): {} {}",
            cal.split_seconds * 1e6,
            cal.one_thread_seconds * 1e6,
            cal.split_seconds / cal.one_thread_seconds,
            crate::engine::helper::PAYS_BELOW,
            if cal.pays { "used for single-part runs" } else { "not used" },
            if cal.forced { "(forced by GRADLAB_HELPER)" } else { "" }
        );
    }
    println!("fc73 E = 32, µs per model-step on the per-model path, per kernel tier (target on AVX2: ≤ 1.2):");
    for act in [Activation::Relu, Activation::Sigmoid] {
        let mut row = format!("  {:<16}", format!("{act}+l2"));
        for &tier in &tiers {
            simd::force(Some(tier));
            let us = fc73_step_seconds_on(32, act, LossKind::L2, budget, true)? * 1e6 / 32.0;
            row += &format!(" {}: {us:.3}", tier.name());
        }
        simd::force(None);
        println!("{row}");
    }
    println!(
        "fc73 E = 32, µs per model-step, every activation (target ≤ 0.4): per-model path | tape, op by op | portable kernels"
    );
    for act in Activation::all() {
        let us = |fused: bool| -> Result<f64> {
            Ok(fc73_step_seconds_on(32, act, LossKind::L2, budget, fused)? * 1e6 / 32.0)
        };
        let (fused, tape) = (us(true)?, us(false)?);
        crate::engine::simd::switch(false);
        let portable = us(true);
        crate::engine::simd::switch(true);
        println!(
            "  {:<16} {fused:>6.3} {} | {tape:.3} (×{:.2}) | {:.3} (×{:.2})",
            format!("{act}+l2"),
            if fused <= 0.4 { "✓" } else { "✗" },
            tape / fused,
            portable.as_ref().copied().unwrap_or(f64::NAN),
            portable? / fused
        );
    }
    // `gradlab train fc` without its outputs: the figure tools/jax_fc_timing.py measures for JAX.
    {
        let data = generators::random(64, 0).samples();
        let cfg = Fc73::new(Activation::Sigmoid, LossKind::L2);
        let build = |e| cfg.build::<f32>(e, 64);
        let opts = crate::training::TrainOptions::new(32);
        let t = Instant::now();
        let run = crate::training::train_parallel("bench", &build, &data, None, &opts, &mut |_, _| true)?;
        let steps: usize = run.at.iter().map(|a| a.last().copied().unwrap_or(0) as usize).sum();
        println!(
            "fc73 sigmoid+l2, 32 seeds × {} it. as `train fc` runs them (both cores, no outputs): {:.3} s, {steps} model-steps \
             (compare: tools/jax_fc_timing.py, JAX jit + vmap + scan, run only)",
            opts.max_iters,
            t.elapsed().as_secs_f64()
        );
    }
    // The whole loop (rows, stop rule, learned-at tracking, held-out curve, probes) per model-step.
    let data = generators::random(64, 0).samples();
    let held = generators::random(64, 1).samples();
    let cfg = Fc73::new(Activation::Sigmoid, LossKind::L2);
    let opts = crate::training::TrainOptions { max_iters: 2000, ..crate::training::TrainOptions::new(128) };
    let mut net = cfg.build::<f32>(128, 64)?;
    let t = Instant::now();
    let run = crate::training::train("bench", &mut net, &data, Some(&held), &opts, &mut |_, _| true)?;
    let steps: usize = run.at.iter().map(|a| a.last().copied().unwrap_or(0) as usize).sum();
    let looped = t.elapsed().as_secs_f64() / steps as f64;
    let bare = fc73_step_seconds(128, Activation::Sigmoid, LossKind::L2, budget)? / 128.0;
    println!(
        "fc73 sigmoid+l2, 128 seeds × 2000 it. through `train` (defaults): {:.3} µs/model-step against {:.3} for the bare step (×{:.2})",
        looped * 1e6,
        bare * 1e6,
        looped / bare
    );
    Ok(())
}

//! Curvature: exact Hessian-vector products against finite differences of gradients; Lanczos
//! against the full spectrum; the in-training sharpness against an eigendecomposition at the
//! saved parameters; Hutchinson's trace and the density's moments against the exact ones; and
//! what measuring costs the training: nothing to its trajectory.

use gradlab::activations::Activation;
use gradlab::curvature::eigen::symmetric_eigenvalues;
use gradlab::curvature::lanczos::{self, Options, random_vectors};
use gradlab::curvature::{Hvp, full_hessian, trace};
use gradlab::data::generators;
use gradlab::experiments::presets::{Cnn, CnnTask, Fc73, LossKind};
use gradlab::init::{SeededRng, WeightInit};
use gradlab::models::{Init, Net};
use gradlab::training::{TrainOptions, train};

fn gradient(net: &mut Net<f64>) -> Vec<f64> {
    net.graph.forward();
    net.graph.backward(net.loss);
    net.params.iter().flat_map(|(_, id, _)| net.graph.grad(*id).to_vec()).collect()
}

/// `Hv` by central differences of f64 gradients, for one model (ensemble 1).
fn finite_difference_hvp(net: &mut Net<f64>, v: &[f64], eps: f64) -> Vec<f64> {
    let ids: Vec<_> = net.params.iter().map(|(_, id, _)| *id).collect();
    let theta: Vec<Vec<f64>> = ids.iter().map(|&id| net.graph.value(id).to_vec()).collect();
    let mut at = |sign: f64| {
        let mut k = 0;
        for (&id, t) in ids.iter().zip(&theta) {
            for (x, &t0) in net.graph.value_mut(id).iter_mut().zip(t) {
                *x = t0 + sign * eps * v[k];
                k += 1;
            }
        }
        gradient(net)
    };
    let (up, down) = (at(1.0), at(-1.0));
    let _ = at(0.0);
    up.iter().zip(&down).map(|(a, b)| (a - b) / (2.0 * eps)).collect()
}

#[test]
fn exact_products_equal_central_differences_and_each_model_has_its_own() {
    let random = generators::random(64, 1);
    let line = generators::line(16, 2);
    let cases: Vec<(&str, Box<dyn Fn(usize) -> Net<f64>>, &gradlab::data::Dataset)> = vec![
        ("sigmoid+l2", Box::new(|e| Fc73::new(Activation::Sigmoid, LossKind::L2).build(e, 64).unwrap()), &random),
        ("tanh+ce", Box::new(|e| Fc73::new(Activation::Tanh, LossKind::Ce).build(e, 64).unwrap()), &random),
        // ReLU, convolutions: a kink is crossed only if a difference step straddles one.
        ("line relu cnn", Box::new(|e| Cnn::new(CnnTask::Line, Activation::Relu).build(e, 16).unwrap()), &line),
    ];
    for (name, build, data) in cases {
        let mut net = build(2);
        net.init(&Init::seeds(5, 2, WeightInit::Normal { std: 0.3 }, 0.1));
        net.set_data(data);
        let mut hvp = Hvp::new(&net);
        hvp.at(&net);
        let mut rngs: Vec<SeededRng> = (0..2).map(SeededRng::new).collect();
        let v = random_vectors(hvp.dim, &mut rngs, false);
        let hv = hvp.apply(&v);
        for m in 0..2 {
            let mut one = build(1);
            for ((_, a, _), (_, b, _)) in one.params.clone().iter().zip(&net.params) {
                let n = net.graph.value(*b).len() / 2;
                let src = net.graph.value(*b)[m * n..(m + 1) * n].to_vec();
                one.graph.value_mut(*a).copy_from_slice(&src);
            }
            one.set_data(data);
            // A step of 1e-5 straddles a ReLU kink in this case (one entry off by 300): the
            // reason the products are not differences. 1e-6 straddles none here.
            let fd = finite_difference_hvp(&mut one, &v[m], 1e-6);
            let scale = fd.iter().map(|x| x.abs()).fold(0.0, f64::max);
            let err = hv[m].iter().zip(&fd).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
            assert!(scale > 1e-6 && err <= 1e-6 * scale, "{name} model {m}: max error {err:e} of {scale:e}");
        }
        // Another model's direction never leaks in: zero for model 1 gives zero for model 1.
        let zeroed = vec![v[0].clone(), vec![0.0; hvp.dim]];
        let hz = hvp.apply(&zeroed);
        assert_eq!(hz[0], hv[0], "{name}");
        assert!(hz[1].iter().all(|x| *x == 0.0), "{name}");
    }
}

#[test]
fn lanczos_top_five_equal_the_full_spectrum() {
    let data = generators::random(64, 3);
    for (act, loss) in [(Activation::Relu, LossKind::Ce), (Activation::Sigmoid, LossKind::L2)] {
        let mut net = Fc73::new(act, loss).build::<f64>(1, 64).unwrap();
        net.init(&Init::seeds(11, 1, WeightInit::Normal { std: 0.5 }, 0.1));
        net.set_data(&data);
        let mut hvp = Hvp::new(&net);
        hvp.at(&net);
        let ev = symmetric_eigenvalues(&full_hessian(&mut hvp), hvp.dim);
        let start = random_vectors(hvp.dim, &mut [SeededRng::new(1)], false);
        let o = Options { top: 5, bottom: 5, tol: 1e-10, min_steps: 2, max_steps: 73 };
        let r = lanczos::lanczos(&mut |v: &[Vec<f64>]| hvp.apply(v), start, &o).remove(0);
        let n = r.values.len();
        let scale = ev[0].abs().max(ev[72].abs());
        for i in 0..5 {
            assert!((r.values[i] - ev[i]).abs() <= 1e-6 * scale, "{act}+{loss} top {i}: {} vs {}", r.values[i], ev[i]);
            let (a, b) = (r.values[n - 1 - i], ev[72 - i]);
            assert!((a - b).abs() <= 1e-6 * scale, "{act}+{loss} bottom {i}: {a} vs {b}");
        }
    }
}

#[test]
fn in_training_sharpness_equals_the_eigendecomposition_at_the_saved_parameters() {
    let data = generators::random(64, 7);
    let samples = data.samples();
    let dir = std::env::temp_dir().join(format!("gradlab-sharpness-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    // New random parameters (seeds 40 and 41, std 0.4), a case of their own.
    for (act, loss) in [(Activation::Relu, LossKind::Ce), (Activation::Sigmoid, LossKind::L2)] {
        std::fs::create_dir_all(&dir).unwrap();
        let cfg = Fc73::new(act, loss);
        let mut net = cfg.build::<f32>(2, 64).unwrap();
        let opts = TrainOptions {
            first_seed: 40,
            max_iters: 3,
            sharpness_every: 1,
            lambda_min: true,
            all_rows: true,
            save_params: Some(dir.clone()),
            save_every: Some(1),
            init: gradlab::training::InitOptions { weights: WeightInit::Normal { std: 0.4 }, bias: 0.1 },
            stop: gradlab::training::StopRule::None,
            ..TrainOptions::new(2)
        };
        let run = train("s", &mut net, &samples, None, &opts, &mut |_, _| true).unwrap();
        for (m, seed) in [40u64, 41].into_iter().enumerate() {
            let (sharp, low) = (run.column(m, "sharpness"), run.column(m, "lambda_min"));
            for it in [1usize, 3] {
                let mut one = cfg.build::<f64>(1, 64).unwrap();
                let file = dir.join(format!("seed-{seed}-iter-{}.safetensors", it - 1));
                gradlab::models::params::load_all(&mut one, &file).unwrap();
                one.set_data(&data);
                let mut hvp = Hvp::new(&one);
                hvp.at(&one);
                let ev = symmetric_eigenvalues(&full_hessian(&mut hvp), hvp.dim);
                let (max, min) = (ev[0], ev[ev.len() - 1]);
                let (got_max, got_min) = (sharp[it - 1] as f64, low[it - 1] as f64);
                assert!(
                    (got_max - max).abs() <= 1e-3 * max.abs(),
                    "{act}+{loss} seed {seed} it {it}: {got_max} vs {max}"
                );
                assert!(
                    (got_min - min).abs() <= 1e-3 * max.abs().max(min.abs()),
                    "{act}+{loss} seed {seed} it {it}: λmin {got_min} vs {min}"
                );
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn hutchinson_and_the_density_moments_agree_with_the_exact_spectrum() {
    let data = generators::random(64, 2);
    let mut net = Fc73::new(Activation::Tanh, LossKind::L2).build::<f64>(1, 64).unwrap();
    net.init(&Init::seeds(9, 1, WeightInit::Normal { std: 1.0 }, 0.1));
    net.set_data(&data);
    let mut hvp = Hvp::new(&net);
    hvp.at(&net);
    let p = hvp.dim;
    let ev = symmetric_eigenvalues(&full_hessian(&mut hvp), p);
    let exact_trace: f64 = ev.iter().sum();
    let mut rngs = vec![SeededRng::new(5)];
    let t = trace::hutchinson(&mut |v: &[Vec<f64>]| hvp.apply(v), p, &mut rngs, 1e-4, 500).remove(0);
    assert!(t.probes > 2, "{t:?}");
    assert!((t.trace - exact_trace).abs() <= 3.0 * t.standard_error, "{t:?} vs exact {exact_trace}");
    // SLQ: each run's Σwθ and Σwθ² are unbiased for tr(H)/n and tr(H²)/n; 40 runs are within
    // three standard errors of the exact moments.
    let runs = lanczos::density(&mut |v: &[Vec<f64>]| hvp.apply(v), p, &mut rngs, 40, 10).remove(0);
    for k in [1, 2] {
        let per_run: Vec<f64> = runs.iter().map(|r| r.iter().map(|(x, w)| w * x.powi(k)).sum()).collect();
        let n = per_run.len() as f64;
        let mean = per_run.iter().sum::<f64>() / n;
        let se = (per_run.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0) / n).sqrt();
        let exact = ev.iter().map(|x| x.powi(k)).sum::<f64>() / p as f64;
        assert!(se > 0.0 && (mean - exact).abs() <= 3.0 * se, "moment {k}: {mean} ± {se} vs {exact}");
    }
}

#[test]
fn measuring_sharpness_changes_nothing_of_the_training() {
    let data = generators::random(64, 0).samples();
    let cfg = Fc73::new(Activation::Relu, LossKind::Ce);
    let run = |every| {
        let mut net = cfg.build::<f32>(3, 64).unwrap();
        let opts = TrainOptions { max_iters: 200, sharpness_every: every, all_rows: true, ..TrainOptions::new(3) };
        train("s", &mut net, &data, None, &opts, &mut |_, _| true).unwrap()
    };
    let (with, without) = (run(5), run(0));
    assert_eq!(with.columns.last().map(String::as_str), Some("sharpness"));
    let k = without.columns.len();
    for (a, b) in with.rows.iter().zip(&without.rows) {
        let trimmed: Vec<f32> = a.chunks_exact(k + 1).flat_map(|r| r[..k].to_vec()).collect();
        assert!(trimmed.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan())));
    }
    let s = with.column(0, "sharpness");
    assert!(s[0].is_finite() && s[0] > 0.0 && s[1].is_nan() && s[5].is_finite(), "{:?}", &s[..6]);
}

fn gradlab(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_gradlab")).args(args).output().unwrap()
}

#[test]
fn the_hessian_command_gives_extremes_trace_density_and_spectrum() {
    let dir = std::env::temp_dir().join(format!("gradlab-hessian-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let small = dir.join("small.toml");
    std::fs::write(&small, "[data]\ngenerator = \"random\"\n[network]\nlayers = [{ type = \"dense\", units = 4, act = \"sigmoid\" }, { type = \"dense\", units = 1 }]\nloss = \"sigmoid_ce\"\n[optim]\nlr = 0.5\n").unwrap();
    let out = dir.join("h");
    let o = gradlab(&["hessian", small.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let spectrum = std::fs::read_to_string(out.join("spectrum.csv")).unwrap();
    assert_eq!(spectrum.lines().count(), 1 + 73);
    let s: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!((s["parameters"].as_u64(), s["two_over_lr"].as_f64()), (Some(73), Some(4.0)));
    let floats =
        |v: &serde_json::Value| -> Vec<f64> { v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect() };
    let (top, exact_top) = (floats(&s["lanczos"]["top"]), floats(&s["full"]["top"]));
    assert!(top.windows(2).all(|w| w[0] >= w[1]), "descending: {top:?}");
    for (a, b) in top.iter().zip(&exact_top) {
        assert!((a - b).abs() <= 1e-9 * exact_top[0].abs(), "{top:?} vs {exact_top:?}");
    }
    // The spectrum's total is the trace of the Hessian, formed here from its diagonal.
    let data = generators::random(64, 0);
    let mut net = Fc73::new(Activation::Sigmoid, LossKind::Ce).build::<f64>(1, 64).unwrap();
    net.init(&Init::seeds(0, 1, WeightInit::TruncatedNormal { std: 0.1 }, 0.1));
    net.set_data(&data);
    let mut hvp = Hvp::new(&net);
    hvp.at(&net);
    let h = full_hessian(&mut hvp);
    let trace: f64 = (0..73).map(|i| h[i * 73 + i]).sum();
    let total: f64 = spectrum.lines().skip(1).map(|l| l.split(',').nth(1).unwrap().parse::<f64>().unwrap()).sum();
    assert!((trace - total).abs() <= 1e-8 * trace.abs().max(1.0), "trace {trace} vs Σλ {total}");
    let (est, se) = (s["trace"]["hutchinson"].as_f64().unwrap(), s["trace"]["standard_error"].as_f64().unwrap());
    assert!((est - trace).abs() <= 3.0 * se, "Hutchinson {est} ± {se} vs {trace}");
    assert!(std::fs::read_to_string(out.join("density.csv")).unwrap().lines().count() == 1001);
    assert!(out.join("density.svg").exists() && out.join("extremes.csv").exists());
    // A net beyond the full Hessian's limit: Lanczos, trace and density, no spectrum; --full refused.
    let big = dir.join("big.toml");
    std::fs::write(&big, "[data]\ngenerator = \"line\"\n[network]\nlayers = [{ type = \"dense\", units = 16, act = \"relu\" }, { type = \"dense\", units = 1 }]\nloss = \"sigmoid_ce\"\n").unwrap();
    let o = gradlab(&["hessian", big.to_str().unwrap(), "--out", dir.join("h2").to_str().unwrap(), "--steps", "10"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!dir.join("h2/spectrum.csv").exists() && dir.join("h2/extremes.csv").exists());
    let o = gradlab(&["hessian", big.to_str().unwrap(), "--out", dir.join("h3").to_str().unwrap(), "--full"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("up to 3000"), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn curvature_keys_and_flags_that_cannot_apply_are_named_errors() {
    let dir = std::env::temp_dir().join(format!("gradlab-curv-keys-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let base = "[data]\ngenerator = \"random\"\n[network]\nlayers = [{ type = \"dense\", units = 4, act = \"relu\" }, { type = \"dense\", units = 1 }]\nloss = \"sigmoid_ce\"\n[train]\nmax_iters = 5\n";
    for (extra, field) in
        [("lambda_min = true\n", "train.lambda_min"), ("sharpness_every = 1\n", "train.sharpness_every")]
    {
        let file = dir.join("net.toml");
        let text = format!("{base}{extra}");
        // The second with minibatches.
        let text = if field == "train.sharpness_every" {
            text.replace("\"random\"\n", "\"random\"\nbatch = 16\n")
        } else {
            text
        };
        std::fs::write(&file, text).unwrap();
        let o = gradlab(&["run", file.to_str().unwrap(), "--out", dir.join("o").to_str().unwrap(), "--force"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(3), "a file's error: {err}");
        assert!(err.contains(field), "{field}: {err}");
    }
    let o = gradlab(&["study", "edge-of-stability", "--lrs", "0.1,-1", "--out", dir.join("e").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--lrs"));
    assert!(!dir.join("e").exists(), "nothing written before the arguments are checked");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_edge_of_stability_study_reports_the_threshold_crossing() {
    // A short run at a large step: the sharpness at initialisation (≈ 11) is above 2/η = 8,
    // so it is at the threshold at once and the loss rises somewhere.
    let dir = std::env::temp_dir().join(format!("gradlab-eos-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let o = gradlab(&[
        "study",
        "edge-of-stability",
        "--lrs",
        "0.25",
        "--max-iters",
        "30",
        "--every",
        "10",
        "--seeds",
        "1",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let s: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("summary.json")).unwrap()).unwrap();
    let row = &s["rows"][0];
    assert_eq!(row["two_over_lr"].as_f64(), Some(8.0));
    assert!(row["sharpness_initial"].as_f64().unwrap() > 8.0, "{row}");
    assert_eq!((row["first_at_threshold"].as_f64(), row["seeds_at_threshold"].as_u64()), (Some(1.0), Some(1)));
    assert!(dir.join("edge_of_stability.png").exists() && dir.join("eos.csv").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

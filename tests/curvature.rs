//! Sharpness by power iteration on finite-difference Hessian-vector products, against the full
//! Hessian's eigenvalues (Jacobi), and its cost to training: none to the trajectory.

use gradlab::activations::Activation;
use gradlab::data::generators;
use gradlab::experiments::curvature::{full_hessian, symmetric_eigenvalues};
use gradlab::experiments::presets::{Fc73, LossKind};
use gradlab::init::WeightInit;
use gradlab::models::Init;
use gradlab::training::sharpness::Sharpness;
use gradlab::training::{TrainOptions, train};

#[test]
fn power_iteration_finds_the_top_eigenvalue_of_the_full_hessian() {
    let data = generators::random(64, 1);
    for (act, loss) in [(Activation::Sigmoid, LossKind::Ce), (Activation::Tanh, LossKind::L2)] {
        // Two models with different parameters: each gets its own estimate.
        let mut net = Fc73::new(act, loss).build::<f64>(2, 64).unwrap();
        net.init(&Init::seeds(3, 2, WeightInit::Normal { std: 1.0 }, 0.1));
        net.set_data(&data);
        net.graph.forward();
        net.graph.backward(net.loss);
        let mut s = Sharpness::new(&net, &[3, 4]);
        // Enough steps for the slow case (|λ₁| and |λ₂| within 4% of each other for tanh+l2).
        let lambda = s.measure(&mut net, &[true, true], 2000, true).to_vec();
        for m in 0..2 {
            let mut one = Fc73::new(act, loss).build::<f64>(1, 64).unwrap();
            for ((_, a, _), (_, b, _)) in one.params.clone().iter().zip(&net.params) {
                let n = net.graph.value(*b).len() / 2;
                let src = net.graph.value(*b)[m * n..(m + 1) * n].to_vec();
                one.graph.value_mut(*a).copy_from_slice(&src);
            }
            one.set_data(&data);
            let h = full_hessian(&mut one);
            let p = one.graph.param_count();
            assert_eq!((p, h.len()), (73, 73 * 73));
            let ev = symmetric_eigenvalues(&h, p);
            let top = if ev[0].abs() >= ev[p - 1].abs() { ev[0] } else { ev[p - 1] };
            assert!(
                (lambda[m] - top).abs() <= 1e-5 * top.abs(),
                "{act}+{loss} model {m}: power iteration {} vs eigendecomposition {top} (spectrum {:.3?}…)",
                lambda[m],
                &ev[..3]
            );
        }
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

#[test]
fn the_hessian_command_gives_the_spectrum_and_refuses_big_networks() {
    let dir = std::env::temp_dir().join(format!("gradlab-hessian-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let small = dir.join("small.toml");
    std::fs::write(&small, "[data]\ngenerator = \"random\"\n[network]\nlayers = [{ type = \"dense\", units = 4, act = \"sigmoid\" }, { type = \"dense\", units = 1 }]\nloss = \"sigmoid_ce\"\n[optim]\nlr = 0.5\n").unwrap();
    let out = dir.join("h");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_gradlab"))
        .args(["hessian", small.to_str().unwrap(), "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let spectrum = std::fs::read_to_string(out.join("spectrum.csv")).unwrap();
    assert_eq!(spectrum.lines().count(), 1 + 73);
    let s: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!((s["parameters"].as_u64(), s["two_over_lr"].as_f64()), (Some(73), Some(4.0)));
    let top: Vec<f64> = s["top"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    assert!(top.windows(2).all(|w| w[0] >= w[1]), "descending: {top:?}");
    // The trace equals the sum of the eigenvalues: spot-check the spectrum's total against the
    // Hessian's diagonal from a direct computation.
    let data = generators::random(64, 0);
    let mut net = Fc73::new(Activation::Sigmoid, LossKind::Ce).build::<f64>(1, 64).unwrap();
    net.init(&Init::seeds(0, 1, WeightInit::TruncatedNormal { std: 0.1 }, 0.1));
    net.set_data(&data);
    let h = full_hessian(&mut net);
    let trace: f64 = (0..73).map(|i| h[i * 73 + i]).sum();
    let total: f64 = spectrum.lines().skip(1).map(|l| l.split(',').nth(1).unwrap().parse::<f64>().unwrap()).sum();
    assert!((trace - total).abs() <= 1e-8 * trace.abs().max(1.0), "trace {trace} vs Σλ {total}");
    let big = dir.join("big.toml");
    std::fs::write(&big, "[data]\ngenerator = \"line\"\n[network]\nlayers = [{ type = \"dense\", units = 64, act = \"relu\" }, { type = \"dense\", units = 1 }]\nloss = \"sigmoid_ce\"\n").unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_gradlab"))
        .args(["hessian", big.to_str().unwrap(), "--out", dir.join("h2").to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("up to 3000"));
    std::fs::remove_dir_all(&dir).unwrap();
}

//! TensorFlow Playground's datasets in experiment files: the split and the input features as
//! the data reaches the network, its default net learning what it learns there, the L1/L2
//! penalty as a term of the loss, and confusion matrices that agree with held-out accuracy.

use gradlab::data::playground::{self, Feature, Playground};
use gradlab::experiments::lab::{self, Lab};
use gradlab::record::Run;
use std::path::Path;

fn parse(text: &str) -> Lab {
    lab::parse(Path::new("test.toml"), text).unwrap_or_else(|e| panic!("{e}"))
}

fn run(lab: &Lab) -> Run {
    let (data, held) = lab.data(0).unwrap();
    let build = |e: usize| lab.build(0, &data, e);
    gradlab::training::train_parallel("t", &build, &data, held.as_ref(), &lab.cells[0].opts, &mut |_, _| true).unwrap()
}

/// A compiled-in preset's text, edited.
fn text(name: &str, edit: impl Fn(String) -> String) -> String {
    edit(gradlab::experiments::presets::text(name).unwrap().to_string())
}

fn preset(name: &str, edit: impl Fn(String) -> String) -> Lab {
    parse(&text(name, edit))
}

#[test]
fn features_reach_the_network_as_the_playground_computes_them() {
    let lab = preset("playground-xor", |t| {
        t.replace("features = [\"x1\", \"x2\"]", "features = [\"x1*x2\", \"sin(x1)\", \"x2^2\"]")
            .replace("train_ratio = 0.5", "train_ratio = 0.3")
    });
    let (train, held) = lab.data(0).unwrap();
    let held = held.unwrap();
    assert_eq!((train.n, held.n, train.shape.clone()), (150, 350, vec![3]));
    let (raw, _) = playground::generate(Playground::Xor, 500, 0.0, 0.3, 0);
    let want = playground::transform(&raw.x, &[Feature::X1X2, Feature::SinX1, Feature::X2Squared]);
    assert_eq!(train.x, want);
    for i in 0..train.n {
        let (x1, x2) = (raw.x[2 * i] as f64, raw.x[2 * i + 1] as f64);
        assert!((train.x[3 * i] as f64 - x1 * x2).abs() < 1e-4 * (1.0 + (x1 * x2).abs()));
        // The XOR label is the sign of x₁x₂ without noise.
        let label = raw.target("label").unwrap().values[i];
        assert_eq!(label > 0.0, x1 * x2 >= 0.0, "sample {i}");
    }
}

#[test]
fn the_default_net_learns_the_circle_and_xor_needs_its_product_feature() {
    // As on the Playground: the circle with x₁, x₂ alone; the XOR needs x₁x₂ or more units.
    let held_accuracy = |lab: &Lab| {
        let r = run(lab);
        gradlab::stats::quantile(&r.held_out_accuracy.unwrap(), 0.5)
    };
    let circle = held_accuracy(&preset("playground-circle", |t| t.replace("seeds = 16", "seeds = 4")));
    assert!(circle > 0.95, "circle {circle}");
    let product = preset("playground-xor", |t| {
        t.replace("seeds = 16", "seeds = 4").replace("features = [\"x1\", \"x2\"]", "features = [\"x1*x2\"]")
    });
    let xor = held_accuracy(&product);
    assert!(xor > 0.95, "xor with x₁x₂ {xor}");
    let linear = preset("playground-xor", |t| {
        t.replace("seeds = 16", "seeds = 4").replace(
            "layers = [\n  { type = \"dense\", units = 4, act = \"tanh\" },\n  { type = \"dense\", units = 2, act = \"tanh\" },\n",
            "layers = [\n",
        )
    });
    let lin = held_accuracy(&linear);
    assert!(lin < 0.75, "a linear model cannot do XOR: {lin}");
}

#[test]
fn an_l2_penalty_shrinks_the_weights_and_spares_the_biases() {
    // Plain SGD with l2 = λ: w ← w − lr·(∇ + λw). One full-batch step from saved parameters
    // against the same step without the penalty: the weights differ by exactly lr·λ·w, the
    // biases not at all.
    let text = |l2: &str| {
        format!(
            "[data]\ngenerator = \"gauss\"\nn = 40\ntrain_ratio = 1.0\n[network]\nlayers = [{{ type = \"dense\", units = 3, act = \"tanh\" }}, {{ type = \"dense\", units = 1 }}]\nloss = \"sigmoid_ce\"\n[optim]\nlr = 0.5\n{l2}\n[train]\nseeds = 2\nmax_iters = 1\nstop = \"none\"\n"
        )
    };
    let params = |t: &str| {
        let lab = parse(t);
        let (data, _) = lab.data(0).unwrap();
        let mut net = lab.build(0, &data, 2).unwrap();
        let mut opts = lab.cells[0].opts.clone();
        opts.max_iters = 1;
        gradlab::training::train("t", &mut net, &data, None, &opts, &mut |_, _| true).unwrap();
        (0..2).map(|m| gradlab::models::params::of_model(&net, m)).collect::<Vec<_>>()
    };
    let init = {
        let lab = parse(&text(""));
        let (data, _) = lab.data(0).unwrap();
        let mut net = lab.build(0, &data, 2).unwrap();
        net.init(&gradlab::models::Init::seeds(0, 2, lab.cells[0].opts.init.weights, lab.cells[0].opts.init.bias));
        (0..2).map(|m| gradlab::models::params::of_model(&net, m)).collect::<Vec<_>>()
    };
    let plain = params(&text(""));
    let penalised = params(&text("l2 = 0.1"));
    for m in 0..2 {
        for (t, name) in [(0, "weight"), (1, "bias"), (2, "weight"), (3, "bias")] {
            for ((a, b), w0) in plain[m][t].iter().zip(&penalised[m][t]).zip(&init[m][t]) {
                let want = if name == "weight" { -0.5 * 0.1 * w0 } else { 0.0 };
                assert!(((b - a) - want).abs() < 1e-6, "seed {m} tensor {t}: {} vs {want}", b - a);
            }
        }
    }
}

#[test]
fn the_confusion_matrix_agrees_with_held_out_accuracy() {
    let lab =
        preset("digits-mlp", |t| t.replace("seeds = 8", "seeds = 3").replace("max_iters = 2000", "max_iters = 200"));
    let r = run(&lab);
    let c = r.confusion.as_ref().expect("a softmax head has a confusion matrix");
    assert_eq!((c.classes, c.set.as_str(), c.per_seed.len()), (10, "held_out", 3));
    let acc = r.held_out_accuracy.as_ref().unwrap();
    for (counts, a) in c.per_seed.iter().zip(acc) {
        let counts = counts.as_ref().unwrap();
        let total: u64 = counts.iter().sum();
        let right: u64 = (0..10).map(|k| counts[k * 10 + k]).sum();
        assert_eq!(total, 360, "every held-out digit counted once");
        assert!((right as f64 / total as f64 - a).abs() < 1e-12, "{right}/{total} vs {a}");
        // Rows are the true classes: each row sums to that class's count.
        let (_, held) = lab.data(0).unwrap();
        let y = &held.unwrap().targets[0].values;
        for k in 0..10 {
            let n = y.iter().filter(|&&v| v as usize == k).count() as u64;
            assert_eq!(counts[k * 10..(k + 1) * 10].iter().sum::<u64>(), n);
        }
    }
    // A binary head has none.
    let binary = preset("playground-circle", |t| {
        t.replace("seeds = 16", "seeds = 1").replace("max_iters = 2500", "max_iters = 5")
    });
    assert!(run(&binary).confusion.is_none());
}

#[test]
fn a_run_on_2d_data_draws_its_boundary_and_a_multi_class_run_its_confusion() {
    let dir = std::env::temp_dir().join(format!("gradlab-pg-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, text: String| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let circle = write(
        "circle.toml",
        text("playground-circle", |t| {
            t.replace("seeds = 16", "seeds = 2").replace("max_iters = 2500", "max_iters = 50")
        }),
    );
    let digits = write(
        "digits.toml",
        text("digits-mlp", |t| t.replace("seeds = 8", "seeds = 2").replace("max_iters = 2000", "max_iters = 50")),
    );
    for (file, out, has, lacks) in [
        (&circle, "c", "decision_boundary.png", "confusion.png"),
        (&digits, "d", "confusion.png", "decision_boundary.png"),
    ] {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_gradlab"))
            .args(["run", file.to_str().unwrap(), "--out", dir.join(out).to_str().unwrap()])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(dir.join(out).join(has).is_file(), "{out}: {has}");
        assert!(dir.join(out).join(has.replace(".png", ".svg")).is_file());
        assert!(!dir.join(out).join(lacks).exists(), "{out}: {lacks}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

//! The engine against independent implementations: a hand-derived backpropagation of the
//! fc73 net written with plain loops (no engine code), and the ensemble against solo runs.

use gradlab::activations::Activation;
use gradlab::experiments::presets::{Fc73, LossKind};
use gradlab::models::Init;
use gradlab::optim::{OptimConfig, Optimizer};

/// One plain gradient-descent step of every model.
fn sgd_step<T: gradlab::engine::Real>(g: &mut gradlab::engine::Graph<T>, lr: &[f64]) {
    let active = vec![true; g.ensemble()];
    Optimizer::new(OptimConfig::sgd(lr[0]), g).step(g, &active);
}

/// Loss and gradients of the 16→4→1 net for one model, derived by hand:
/// h = W1·x + b1, a = act(h), o = W2·a + b2;
/// CE:  ℓ = softplus(o) − y·o,   ∂ℓ/∂o = σ(o) − y;
/// L2:  ℓ = (σ(o) − y)²,         ∂ℓ/∂o = 2(σ(o) − y)·σ(o)(1 − σ(o));
/// mean over the batch. Derivatives of the hidden activation are written out per activation.
struct Manual {
    loss: f64,
    gw1: Vec<f64>,
    gb1: Vec<f64>,
    gw2: Vec<f64>,
    gb2: Vec<f64>,
}

fn manual(
    act: &str,
    loss_kind: LossKind,
    per_sample: bool,
    w1: &[f64],
    b1: &[f64],
    w2: &[f64],
    b2: &[f64],
    x: &[f32],
    y: &[f32],
) -> Manual {
    let n = y.len();
    let sig = |v: f64| 1.0 / (1.0 + (-v).exp());
    let (f, df): (fn(f64) -> f64, fn(f64) -> f64) = match act {
        "sigmoid" => (
            |v| 1.0 / (1.0 + (-v).exp()),
            |v| {
                let s = 1.0 / (1.0 + (-v).exp());
                s * (1.0 - s)
            },
        ),
        "relu" => (|v| v.max(0.0), |v| if v > 0.0 { 1.0 } else { 0.0 }),
        "tanh" => (|v| v.tanh(), |v| 1.0 - v.tanh().powi(2)),
        _ => unreachable!(),
    };
    let mut m =
        Manual { loss: 0.0, gw1: vec![0.0; 64], gb1: vec![0.0; b1.len()], gw2: vec![0.0; 4], gb2: vec![0.0; b2.len()] };
    for s in 0..n {
        let xs: Vec<f64> = x[s * 16..(s + 1) * 16].iter().map(|&v| v as f64).collect();
        let yb = y[s] as f64;
        let bias1 = |j: usize| if per_sample { b1[j * n + s] } else { b1[j] };
        let h: Vec<f64> = (0..4).map(|j| (0..16).map(|i| w1[j * 16 + i] * xs[i]).sum::<f64>() + bias1(j)).collect();
        let a: Vec<f64> = h.iter().map(|&v| f(v)).collect();
        let o = (0..4).map(|j| w2[j] * a[j]).sum::<f64>() + if per_sample { b2[s] } else { b2[0] };
        let p = sig(o);
        let (l, dl_do) = match loss_kind {
            LossKind::Ce => (o.max(0.0) + (-o.abs()).exp().ln_1p() - yb * o, p - yb),
            LossKind::L2 => ((p - yb).powi(2), 2.0 * (p - yb) * p * (1.0 - p)),
        };
        m.loss += l / n as f64;
        let g = dl_do / n as f64;
        if per_sample {
            m.gb2[s] += g
        } else {
            m.gb2[0] += g
        }
        for j in 0..4 {
            m.gw2[j] += g * a[j];
            let gh = g * w2[j] * df(h[j]);
            if per_sample {
                m.gb1[j * n + s] += gh
            } else {
                m.gb1[j] += gh
            }
            for i in 0..16 {
                m.gw1[j * 16 + i] += gh * xs[i];
            }
        }
    }
    m
}

fn close(a: &[f64], b: &[f64], tol: f64, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= tol * (1.0 + y.abs()), "{what}[{i}]: engine {x} vs reference {y}");
    }
}

#[test]
fn fc73_gradients_match_hand_derived_backprop_in_f64_and_f32() {
    let data = gradlab::data::generators::random(64, 1);
    let e = 3;
    for (name, act) in [("sigmoid", Activation::Sigmoid), ("relu", Activation::Relu), ("tanh", Activation::Tanh)] {
        for loss in [LossKind::L2, LossKind::Ce] {
            for per_sample in [false, true] {
                let cfg = Fc73 { per_sample_bias: per_sample, ..Fc73::new(act, loss) };
                let init = Init::seeds(100, e, gradlab::init::WeightInit::TruncatedNormal { std: 0.3 }, 0.1);
                let mut n64 = cfg.build::<f64>(e, 64).unwrap();
                let mut n32 = cfg.build::<f32>(e, 64).unwrap();
                n64.init(&init);
                n32.init(&init);
                n64.set_data(&data);
                n32.set_data(&data);
                // A few SGD steps first, so the check is not only at the initial point.
                for _ in 0..5 {
                    n64.graph.forward();
                    n64.graph.backward(n64.loss);
                    sgd_step(&mut n64.graph, &[0.5; 3]);
                    n32.graph.forward();
                    n32.graph.backward(n32.loss);
                    sgd_step(&mut n32.graph, &[0.5; 3]);
                }
                n64.graph.forward();
                n64.graph.backward(n64.loss);
                n32.graph.forward();
                n32.graph.backward(n32.loss);
                let slab = |v: &[f64], k: usize| v[k * v.len() / e..(k + 1) * v.len() / e].to_vec();
                let to64 = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<f64>>();
                for k in 0..e {
                    let g = &n64.graph;
                    let m = manual(
                        name,
                        loss,
                        per_sample,
                        &slab(g.value(n64.param("fc1.weight")), k),
                        &slab(g.value(n64.param("fc1.bias")), k),
                        &slab(g.value(n64.param("fc2.weight")), k),
                        &slab(g.value(n64.param("fc2.bias")), k),
                        &data.images,
                        &data.labels,
                    );
                    let what = format!("{name}+{loss} per_sample={per_sample} model {k}");
                    close(&[g.value(n64.loss)[k]], &[m.loss], 1e-12, &format!("{what} loss"));
                    for (id, want, label) in [
                        (n64.param("fc1.weight"), &m.gw1, "dW1"),
                        (n64.param("fc1.bias"), &m.gb1, "db1"),
                        (n64.param("fc2.weight"), &m.gw2, "dW2"),
                        (n64.param("fc2.bias"), &m.gb2, "db2"),
                    ] {
                        close(&slab(g.grad(id), k), want, 1e-10, &format!("{what} {label} f64"));
                    }
                    // f32 engine: same trajectory and gradients to single precision.
                    let g32 = &n32.graph;
                    for (id, id64, label) in [
                        (n32.param("fc1.weight"), n64.param("fc1.weight"), "dW1"),
                        (n32.param("fc1.bias"), n64.param("fc1.bias"), "db1"),
                        (n32.param("fc2.weight"), n64.param("fc2.weight"), "dW2"),
                        (n32.param("fc2.bias"), n64.param("fc2.bias"), "db2"),
                    ] {
                        let scale = slab(g.grad(id64), k).iter().fold(0.0f64, |a, b| a.max(b.abs()));
                        let got = slab(&to64(g32.grad(id)), k);
                        let want = slab(g.grad(id64), k);
                        for (x, y) in got.iter().zip(&want) {
                            assert!((x - y).abs() <= 1e-4 * scale + 1e-7, "{what} {label} f32: {x} vs {y}");
                        }
                    }
                }
            }
        }
    }
}

/// Trains `steps` SGD steps and returns every model's loss per step and final parameters, in f32.
fn trajectory(cfg: &Fc73, seeds: &[u64], steps: usize) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
    let data = gradlab::data::generators::random(64, 0);
    let e = seeds.len();
    let mut net = cfg.build::<f32>(e, 64).unwrap();
    net.init(&Init {
        seeds: seeds.to_vec(),
        weights: gradlab::init::WeightInit::TruncatedNormal { std: 0.1 },
        bias: 0.1,
    });
    net.set_data(&data);
    let mut losses = vec![vec![]; e];
    for _ in 0..steps {
        net.graph.forward();
        for (k, l) in net.graph.value(net.loss).iter().enumerate() {
            losses[k].push(*l);
        }
        net.graph.backward(net.loss);
        sgd_step(&mut net.graph, &vec![0.1; e]);
    }
    let params = net.graph.params().iter().map(|&p| net.graph.value(p).to_vec()).collect();
    (losses, params)
}

#[test]
fn an_ensemble_member_follows_its_solo_trajectory_bit_for_bit() {
    for (act, loss) in [(Activation::Sigmoid, LossKind::Ce), (Activation::Relu, LossKind::L2)] {
        let cfg = Fc73::new(act, loss);
        // Small and large ensembles (the large one batches all models into one product).
        for seeds in [vec![5u64, 9, 2, 40], (0..40).collect::<Vec<u64>>()] {
            let (ens, _) = trajectory(&cfg, &seeds, 200);
            for k in [0, 2, seeds.len() - 1] {
                let (solo, _) = trajectory(&cfg, &[seeds[k]], 200);
                assert_eq!(ens[k], solo[0], "seed {} differs inside an ensemble of {}", seeds[k], seeds.len());
            }
            assert_ne!(ens[0], ens[1], "different seeds must differ");
        }
    }
}

#[test]
fn a_seed_makes_a_run_bit_for_bit_reproducible() {
    let cfg = Fc73::new(Activation::Relu, LossKind::L2);
    assert_eq!(trajectory(&cfg, &[1, 2, 3], 100), trajectory(&cfg, &[1, 2, 3], 100));
}

#[test]
fn training_reduces_the_loss_and_sum_reduction_scales_the_gradient_by_the_batch() {
    let data = gradlab::data::generators::random(64, 0);
    let mut grads = vec![];
    for reduction in [gradlab::engine::Reduction::Mean, gradlab::engine::Reduction::Sum] {
        let cfg = Fc73 { reduction, ..Fc73::new(Activation::Relu, LossKind::Ce) };
        let mut net = cfg.build::<f64>(1, 64).unwrap();
        net.init(&Init::seeds(0, 1, gradlab::init::WeightInit::TruncatedNormal { std: 0.1 }, 0.1));
        net.set_data(&data);
        net.graph.forward();
        net.graph.backward(net.loss);
        grads.push(net.graph.grad(net.param("fc1.weight")).to_vec());
    }
    for (m, s) in grads[0].iter().zip(&grads[1]) {
        assert!((s - 64.0 * m).abs() <= 1e-12 * (1.0 + s.abs()));
    }
    let (losses, _) = trajectory(&Fc73::new(Activation::Relu, LossKind::Ce), &[0], 500);
    assert!(losses[0][499] < 0.8 * losses[0][0], "{} → {}", losses[0][0], losses[0][499]);
}

//! Per-layer probes equal a direct computation from the same tensors, and obey the identities
//! that hold whatever the network: plain SGD moves a tensor by lr·‖g‖, so its update ratio is
//! lr·‖g‖/‖w‖; a ReLU's saturated fraction is its share of values ≤ 0.

use gradlab::activations::Activation;
use gradlab::data::generators;
use gradlab::experiments::presets::{Fc73, LossKind};
use gradlab::init::WeightInit;
use gradlab::models::Init;
use gradlab::optim::{OptimConfig, Optimizer};
use gradlab::training::probes::{Prober, due};
use gradlab::training::{TrainOptions, train};

#[test]
fn probes_of_fc73_equal_a_direct_computation() {
    let data = generators::random(64, 3);
    for act in [Activation::Relu, Activation::Sigmoid] {
        let e = 3;
        let mut net = Fc73::new(act, LossKind::L2).build::<f32>(e, 64).unwrap();
        net.init(&Init::seeds(5, e, WeightInit::Normal { std: 0.8 }, 0.1));
        net.set_data(&data);
        net.graph.forward();
        net.graph.backward(net.loss);
        let (mut prober, mut probes) = Prober::new(&net, 100);
        let active = [true, false, true];
        prober.measure(&net, 1, &active, &mut probes);
        let before: Vec<Vec<f32>> = net.params.iter().map(|(_, id, _)| net.graph.value(*id).to_vec()).collect();
        let lr = 0.5;
        Optimizer::new(OptimConfig::sgd(lr), &net.graph).step(&mut net.graph, &active);
        prober.measure_update(&net, 1, &active, &mut probes);
        assert!(probes.rows[1].is_empty(), "a stopped seed is not probed");
        let get = |e: usize, layer: &str, q: &str| {
            let k = probes.key(layer, q).unwrap_or_else(|| panic!("no probe {layer}/{q}"));
            probes.rows[e].iter().find(|r| r.1 as usize == k).unwrap().2 as f64
        };
        for e in [0, 2] {
            // fc1: hidden activations [E, 4, 64]; its pre-activation gradient.
            let l = &net.layers[0];
            let n = 4 * 64;
            let a: Vec<f64> = net.graph.value(l.post)[e * n..(e + 1) * n].iter().map(|&v| v as f64).collect();
            let mean = a.iter().sum::<f64>() / n as f64;
            let std = (a.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64).sqrt();
            let mut sorted = a.clone();
            sorted.sort_by(f64::total_cmp);
            let rank = |q: f64| sorted[(q * (n - 1) as f64).round() as usize];
            let close = |x: f64, y: f64, what: &str| {
                assert!((x - y).abs() <= 1e-5 * (1.0 + y.abs()), "{act} seed {e} {what}: {x} vs {y}")
            };
            close(get(e, "fc1", "act_mean"), mean, "mean");
            close(get(e, "fc1", "act_std"), std, "std");
            close(get(e, "fc1", "act_p02"), rank(0.02), "p02");
            close(get(e, "fc1", "act_p98"), rank(0.98), "p98");
            let pre: Vec<f64> = net.graph.value(l.pre)[e * n..(e + 1) * n].iter().map(|&v| v as f64).collect();
            let saturated = match act {
                // ReLU: derivative 0 exactly on the zero side.
                Activation::Relu => pre.iter().filter(|&&x| x <= 0.0).count(),
                // Sigmoid: σ'(x) < 1% of ¼ ⇔ |x| > 2·acosh(10) ≈ 5.99.
                _ => pre.iter().filter(|&&x| x.abs() > 2.0 * 10f64.acosh()).count(),
            };
            close(get(e, "fc1", "saturated_fraction"), saturated as f64 / n as f64, "saturated");
            let g: Vec<f64> = net.graph.grad(l.pre)[e * n..(e + 1) * n].iter().map(|&v| v as f64).collect();
            close(get(e, "fc1", "grad_rms"), (g.iter().map(|v| v * v).sum::<f64>() / n as f64).sqrt(), "grad rms");
            close(get(e, "fc1", "grad_max"), g.iter().fold(0.0, |m, v| m.max(v.abs())), "grad max");
            // Every parameter tensor: plain SGD moved it by lr·g.
            for (p, (name, id, _)) in net.params.iter().enumerate() {
                let m = before[p].len() / e_count(&net);
                let w0 = &before[p][e * m..(e + 1) * m];
                let w1 = &net.graph.value(*id)[e * m..(e + 1) * m];
                let gn = get(e, name, "param_grad_norm");
                let wn = (w0.iter().map(|&v| v as f64 * v as f64).sum::<f64>()).sqrt();
                close(get(e, name, "param_norm"), wn, "weight norm");
                let moved = w0.iter().zip(w1).map(|(&a, &b)| (a as f64 - b as f64).powi(2)).sum::<f64>().sqrt();
                close(moved, lr * gn, &format!("{name}: ‖Δw‖ = lr·‖g‖"));
                let ratio = get(e, name, "update_ratio");
                assert!((ratio - lr * gn / wn).abs() <= 1e-4 * ratio, "{name}: ratio {ratio} vs {}", lr * gn / wn);
            }
        }
    }
}

fn e_count(net: &gradlab::models::Net<f32>) -> usize {
    net.graph.ensemble()
}

#[test]
fn probes_run_on_their_schedule_inside_training_and_cost_no_trajectory() {
    let data = generators::random(64, 0).samples();
    let cfg = Fc73::new(Activation::Sigmoid, LossKind::Ce);
    let run = |probe_every| {
        let mut net = cfg.build::<f32>(2, 64).unwrap();
        let opts = TrainOptions { max_iters: 300, probe_every, ..TrainOptions::new(2) };
        train("s", &mut net, &data, None, &opts, &mut |_, _| true).unwrap()
    };
    let (with, without) = (run(100), run(0));
    assert_eq!(with.rows, without.rows, "probing changes nothing of the training");
    assert!(without.probes.is_none());
    let p = with.probes.unwrap();
    let its: Vec<u32> = p.series(p.key("fc1", "grad_rms").unwrap()).iter().map(|(it, _)| *it).collect();
    assert_eq!(its, vec![1, 2, 4, 8, 16, 32, 64, 100, 128, 200, 256, 300]);
    assert!(its.iter().all(|&i| due(i as usize, 100)));
}

#[test]
fn the_depth_study_writes_its_table_and_a_one_layer_ratio_is_one() {
    let out = std::env::temp_dir().join(format!("gradlab-depth-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_gradlab"))
        .args([
            "study",
            "depth",
            "--seeds",
            "2",
            "--max-depth",
            "2",
            "--max-iters",
            "30",
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let s: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    let cells = s["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 2 * 3 * 3 * 2, "without and with BatchNorm × activations × initialisations × depths");
    assert_eq!(cells.iter().filter(|c| c["batchnorm"] == true).count(), 3 * 3 * 2);
    for c in cells {
        let r = c["ratio_init"][1].as_f64().unwrap();
        if c["depth"] == 1 {
            assert_eq!(r, 1.0, "one hidden layer is both first and last");
        } else {
            assert!(r > 0.0 && r.is_finite(), "{c}");
        }
    }
    // Sigmoid with the report's small weights shrinks the gradient towards the input more than
    // He initialisation does (Glorot & Bengio's finding; here at depth 2 already).
    let ratio = |act: &str, init: &str, bn: bool| {
        cells.iter().find(|c| c["act"] == act && c["init"] == init && c["depth"] == 2 && c["batchnorm"] == bn).unwrap()
            ["ratio_init"][1]
            .as_f64()
            .unwrap()
    };
    assert!(ratio("sigmoid", "truncated_normal(0.1)", false) < ratio("sigmoid", "he_uniform", false));
    // BatchNorm rescales every layer's input: the report's small weights no longer shrink the
    // gradient on its way down (the ratio is measured at the dense layers' outputs).
    assert!(ratio("sigmoid", "truncated_normal(0.1)", true) > 2.0 * ratio("sigmoid", "truncated_normal(0.1)", false));
    let md = std::fs::read_to_string(out.join("depth.md")).unwrap();
    assert!(md.contains("Does BatchNorm let the deep nets train?") && md.contains("2 hidden sigmoid layers"), "{md}");
    for f in ["depth.md", "depth.svg", "depth.png"] {
        assert!(out.join(f).is_file(), "missing {f}");
    }
    std::fs::remove_dir_all(&out).unwrap();
}

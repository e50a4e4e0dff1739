//! The CNNs of Task 3: whole-network gradients, ensemble independence, divergence handling.

use gradlab::activations::Activation;
use gradlab::data::generators;
use gradlab::engine::Reduction;
use gradlab::experiments::presets::{Cnn, CnnTask};
use gradlab::models::Init;
use gradlab::optim::{OptimConfig, Optimizer};
use gradlab::training::{TrainOptions, train};

/// One plain gradient-descent step of every model.
fn sgd_step<T: gradlab::engine::Real>(g: &mut gradlab::engine::Graph<T>, lr: &[f64]) {
    let active = vec![true; g.ensemble()];
    Optimizer::new(OptimConfig::sgd(lr[0]), g).step(g, &active);
}

fn cfg(task: CnnTask, act: Activation, untied: bool) -> Cnn {
    Cnn { task, act, reduction: Reduction::Mean, untied_conv_bias: untied }
}

#[test]
fn whole_two_task_network_gradient_matches_finite_differences() {
    let data = generators::detection(3, 5);
    for untied in [false, true] {
        let mut net = cfg(CnnTask::Detect, Activation::Tanh, untied).build::<f64>(2, 3).unwrap();
        net.init(&Init::seeds(1, 2, gradlab::init::WeightInit::TruncatedNormal { std: 0.3 }, 0.1));
        net.set_data(&data);
        net.graph.forward();
        net.graph.backward(net.loss);
        let params = net.params.clone();
        let mut rng = gradlab::init::SeededRng::new(9);
        for (name, id, _) in params {
            let analytic = net.graph.grad(id).to_vec();
            // 12 random elements of every parameter tensor.
            for _ in 0..12 {
                let j = rng.int(0, analytic.len() as i64 - 1) as usize;
                let orig = net.graph.value(id)[j];
                let h = 1e-6;
                let mut total = |v: f64| {
                    net.graph.value_mut(id)[j] = v;
                    net.graph.forward();
                    net.graph.value(net.loss).iter().sum::<f64>()
                };
                let numeric = (total(orig + h) - total(orig - h)) / (2.0 * h);
                total(orig);
                let tol = 1e-6 * (1.0 + numeric.abs().max(analytic[j].abs()));
                assert!(
                    (analytic[j] - numeric).abs() <= tol,
                    "{name}[{j}] untied={untied}: {} vs {numeric}",
                    analytic[j]
                );
            }
        }
    }
}

#[test]
fn a_cnn_ensemble_member_follows_its_solo_trajectory_bit_for_bit() {
    let data = generators::detection(64, 2);
    let run = |seeds: &[u64]| {
        let e = seeds.len();
        let mut net = cfg(CnnTask::Detect, Activation::Relu, false).build::<f32>(e, 64).unwrap();
        net.init(&Init {
            seeds: seeds.to_vec(),
            weights: gradlab::init::WeightInit::TruncatedNormal { std: 0.1 },
            bias: 0.1,
        });
        net.set_data(&data);
        let mut losses = vec![vec![]; e];
        for _ in 0..4 {
            net.graph.forward();
            for (k, l) in net.graph.value(net.loss).iter().enumerate() {
                losses[k].push(*l);
            }
            net.graph.backward(net.loss);
            sgd_step(&mut net.graph, &vec![0.01; e]);
        }
        losses
    };
    let ens = run(&[4, 7, 11]);
    assert_eq!(ens[1], run(&[7])[0]);
    assert_eq!(ens[2], run(&[11])[0]);
    assert_ne!(ens[0], ens[1]);
}

#[test]
fn diverging_seeds_stop_at_their_first_non_finite_value_and_the_others_go_on() {
    let data = generators::line(64, 1);
    // A huge step on a summed loss blows some seeds up within a few iterations.
    let c = Cnn { reduction: Reduction::Sum, ..cfg(CnnTask::Line, Activation::Identity, false) };
    let mut net = c.build::<f32>(6, 64).unwrap();
    let opts = TrainOptions { first_seed: 0, max_iters: 40, ..TrainOptions::new(6).with_sgd(1.0, 3.0) };
    let run = train("blowup", &mut net, &data.samples(), None, &opts, &mut |_, _| true).unwrap();
    assert!(run.diverged() > 0, "some seed must diverge: {:?}", run.diverged_at);
    for s in 0..6 {
        let rows = run.rows[s].len() / run.columns.len();
        match run.diverged_at[s] {
            Some(at) => {
                assert_eq!(rows, at, "seed {s}: rows kept up to the divergence");
                assert!(run.max_abs_weight[s].is_finite());
            }
            None => assert!(run.iterations[s].is_some() || rows == 40, "seed {s} stopped early without a reason"),
        }
    }
    let w = run.column(0, "max_abs_weight");
    assert!(w[0] > 0.0 && w[0] <= 6.0 + 0.1, "initial max |weight| {} within 2 std", w[0]);
}

#[test]
fn dead_fraction_columns_are_recorded_and_bounded() {
    let data = generators::line(64, 3);
    let mut net = cfg(CnnTask::Line, Activation::Relu, false).build::<f32>(2, 64).unwrap();
    let opts = TrainOptions { first_seed: 0, max_iters: 5, ..TrainOptions::new(2).with_sgd(0.1, 0.1) };
    let held = generators::line(128, 99);
    let run = train("relu", &mut net, &data.samples(), Some(&held.samples()), &opts, &mut |_, _| true).unwrap();
    let h = run.held_out_accuracy.as_ref().unwrap();
    assert!(h.len() == 2 && h.iter().all(|a| (0.0..=1.0).contains(a)), "{h:?}");
    for col in ["dead_fraction_conv1", "dead_fraction_conv2"] {
        let v = run.column(0, col);
        assert_eq!(v.len(), 5);
        assert!(v.iter().all(|x| (0.0..=1.0).contains(x)), "{col}: {v:?}");
    }
}

#[test]
fn training_in_parts_on_threads_equals_one_ensemble_bit_for_bit() {
    use gradlab::training::train_parallel;
    let data = generators::detection(64, 4);
    let c = cfg(CnnTask::Detect, Activation::Relu, false);
    let opts = TrainOptions { first_seed: 5, max_iters: 4, ..TrainOptions::new(3).with_sgd(0.01, 0.1) };
    let mut net = c.build::<f32>(3, 64).unwrap();
    let whole = train("relu", &mut net, &data.samples(), None, &opts, &mut |_, _| true).unwrap();
    let parts =
        train_parallel("relu", &|e| c.build::<f32>(e, 64), &data.samples(), None, &opts, &mut |_, _| true).unwrap();
    assert_eq!(parts.seeds, whole.seeds);
    assert_eq!(parts.rows, whole.rows);
    assert_eq!(parts.max_abs_weight, whole.max_abs_weight);
}

/// One model on two cores: with a helper thread taking half of each large convolution's rows,
/// a training run is the same bit for bit as on one core (the helper's flushed subnormals are
/// checked in `engine::helper`).
#[test]
fn one_model_on_two_cores_trains_bit_for_bit_as_on_one() {
    let data = generators::detection(64, 2).samples();
    let opts = TrainOptions { max_iters: 60, all_rows: true, ..TrainOptions::new(1).with_sgd(0.01, 0.3) };
    let run = |helper: bool| {
        let _h = helper.then(gradlab::engine::helper::Helper::install);
        let mut net = cfg(CnnTask::Detect, Activation::Relu, false).build::<f32>(1, 64).unwrap();
        train("helper", &mut net, &data, None, &opts, &mut |_, _| true).unwrap()
    };
    let (one, two) = (run(false), run(true));
    assert_eq!(one.at, two.at);
    let bits = |r: &gradlab::record::Run| r.rows[0].iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert!(bits(&one) == bits(&two), "rows differ");
    assert_eq!(one.at[0].len(), 60, "every iteration recorded, none diverged");
}

//! Sharpness by power iteration on finite-difference Hessian-vector products, against the full
//! Hessian's eigenvalues (Jacobi), and its cost to training: none to the trajectory.

use gradlab::activations::Activation;
use gradlab::data::generators;
use gradlab::experiments::curvature::{Sharpness, full_hessian, symmetric_eigenvalues};
use gradlab::experiments::train::{TrainOptions, train};
use gradlab::init::WeightInit;
use gradlab::models::Init;
use gradlab::models::fc::{self, FcConfig, LossKind};

#[test]
fn power_iteration_finds_the_top_eigenvalue_of_the_full_hessian() {
    let data = generators::random(64, 1);
    for (act, loss) in [(Activation::Sigmoid, LossKind::Ce), (Activation::Tanh, LossKind::L2)] {
        // Two models with different parameters: each gets its own estimate.
        let mut net = fc::build::<f64>(&FcConfig::new(act, loss), 2, 64).unwrap();
        net.init(&Init::seeds(3, 2, WeightInit::Normal { std: 1.0 }, 0.1));
        net.set_data(&data);
        net.graph.forward();
        net.graph.backward(net.loss);
        let mut s = Sharpness::new(&net, &[3, 4]);
        // Enough steps for the slow case (|λ₁| and |λ₂| within 4% of each other for tanh+l2).
        let lambda = s.measure(&mut net, &[true, true], 2000, true).to_vec();
        for m in 0..2 {
            let mut one = fc::build::<f64>(&FcConfig::new(act, loss), 1, 64).unwrap();
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
    let cfg = FcConfig::new(Activation::Relu, LossKind::Ce);
    let run = |every| {
        let mut net = fc::build::<f32>(&cfg, 3, 64).unwrap();
        let opts = TrainOptions { max_iters: 200, sharpness_every: every, ..TrainOptions::new(3) };
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

//! Every operation, activation and whole network against central finite differences in f64,
//! for a single model (E = 1) and an ensemble (E = 3).

use gradlab::activations::Activation;
use gradlab::engine::loss::sigmoid_cross_entropy;
use gradlab::engine::scalar::Dual;
use gradlab::engine::{Graph, NodeId, Reduction};
use gradlab::experiments::presets::{Fc73, LossKind};
use gradlab::init::{SeededRng, WeightInit};

/// Points away from the kinks of relu-like functions, spanning saturation.
const POINTS: [f64; 10] = [-6.0, -2.5, -1.0, -0.3, -0.05, 0.07, 0.4, 1.3, 3.0, 7.5];

fn fd(f: impl Fn(f64) -> f64, x: f64) -> f64 {
    let h = 1e-6 * (1.0 + x.abs());
    (f(x + h) - f(x - h)) / (2.0 * h)
}

#[test]
fn every_activation_derivative_matches_finite_differences() {
    for act in
        Activation::all().into_iter().chain([Activation::LeakyRelu { slope: 0.25 }, Activation::Elu { alpha: 0.5 }])
    {
        for x in POINTS {
            let want = fd(|v| act.apply(v), x);
            let (_, d64) = act.value_and_derivative(x);
            assert!((d64 - want).abs() <= 1e-7 * (1.0 + want.abs()), "{act} at {x}: dual {d64} vs fd {want}");
            // The f32 path the engine trains with: same formula, f32 rounding.
            let (v32, d32) = act.value_and_derivative(x as f32);
            assert!((d32 as f64 - want).abs() <= 2e-6 * (1.0 + want.abs()), "{act} f32 at {x}: {d32} vs {want}");
            assert!((v32 as f64 - act.apply(x)).abs() <= 2e-6 * (1.0 + act.apply(x).abs()), "{act} f32 value at {x}");
        }
    }
}

#[test]
fn stable_cross_entropy_matches_naive_where_finite_and_stays_finite_elsewhere() {
    let naive = |o: f64, y: f64| {
        let p = 1.0 / (1.0 + (-o).exp());
        -(y * p.ln() + (1.0 - y) * (1.0 - p).ln())
    };
    for o in [-30.0, -8.0, -1.0, -1e-3, 0.0, 0.5, 4.0, 20.0, 30.0] {
        for y in [0.0, 0.3, 1.0] {
            let (s, n) = (sigmoid_cross_entropy(o, y), naive(o, y));
            assert!(n.is_finite(), "naive must be finite here");
            // The naive form itself loses digits to cancellation in 1 − σ(o), about ε·e^|o|.
            let tol = 1e-9 * (1.0 + n.abs()) + 1e-15 * o.abs().exp();
            assert!((s - n).abs() <= tol, "o={o} y={y}: stable {s} naive {n}");
        }
    }
    for (o, y, want) in [(1000.0, 0.0, 1000.0), (-1000.0, 1.0, 1000.0), (1000.0, 1.0, 0.0), (-1000.0, 0.0, 0.0)] {
        assert!(naive(o, y).is_nan() || naive(o, y).is_infinite(), "the naive form breaks at o={o}");
        let s = sigmoid_cross_entropy(o, y);
        assert!((s - want).abs() < 1e-9, "o={o} y={y}: {s}");
        let d = sigmoid_cross_entropy(Dual::var(o), Dual { v: y, d: 0.0 }).d;
        assert!(
            d.is_finite() && (d - (if o > 0.0 { 1.0 } else { 0.0 } - y)).abs() < 1e-12,
            "gradient σ(o)−y at {o}: {d}"
        );
        let s32 = sigmoid_cross_entropy(o as f32, y as f32);
        assert!(s32.is_finite() && (s32 as f64 - want).abs() < 1e-3);
    }
}

/// Fills every parameter of `g` with values in [-scale, scale).
fn randomise(g: &mut Graph<f64>, ids: &[NodeId], seed: u64, scale: f64) {
    let mut rng = SeededRng::new(seed);
    for &id in ids {
        for v in g.value_mut(id) {
            *v = (rng.uniform() * 2.0 - 1.0) * scale;
        }
    }
}

/// Checks `∂(Σₑ loss[e])/∂node` from backward against central differences, element by element.
fn check(g: &mut Graph<f64>, loss: NodeId, wrt: &[NodeId], what: &str) {
    g.forward();
    g.backward(loss);
    let total = |g: &mut Graph<f64>| {
        g.forward();
        g.value(loss).iter().sum::<f64>()
    };
    for &id in wrt {
        let analytic = g.grad(id).to_vec();
        assert_eq!(analytic.len(), g.value(id).len(), "{what}: node has a gradient buffer");
        for j in 0..analytic.len() {
            let orig = g.value(id)[j];
            let h = 1e-6 * (1.0 + orig.abs());
            g.value_mut(id)[j] = orig + h;
            let up = total(g);
            g.value_mut(id)[j] = orig - h;
            let down = total(g);
            g.value_mut(id)[j] = orig;
            let numeric = (up - down) / (2.0 * h);
            let tol = 1e-6 * (1.0 + numeric.abs().max(analytic[j].abs()));
            assert!(
                (analytic[j] - numeric).abs() <= tol,
                "{what}: element {j}: backward {} vs finite difference {numeric}",
                analytic[j]
            );
        }
    }
}

fn targets(g: &mut Graph<f64>, shape: &[usize], seed: u64, binary: bool) -> NodeId {
    let t = g.input(shape).unwrap();
    let mut rng = SeededRng::new(seed);
    for v in g.value_mut(t) {
        *v = if binary { f64::from(rng.bernoulli(0.5)) } else { rng.uniform() * 3.0 };
    }
    t
}

#[test]
fn dense_with_every_bias_kind_input_kind_and_input_layout() {
    // (channels, spatial): features only; one channel with a spatial map; several of both.
    for (ch, sp) in [(6, vec![]), (1, vec![2, 3]), (2, vec![3])] {
        for e in [1, 3] {
            for per_sample in [false, true] {
                for shared_input in [true, false] {
                    let (b, fout) = (5, 3);
                    let fin = ch * sp.iter().product::<usize>();
                    let mut g = Graph::<f64>::new(e);
                    let mut x_shape = vec![ch];
                    x_shape.extend(&sp);
                    x_shape.push(b);
                    // A per-model input is a parameter here, so its gradient (dX) is checked too.
                    let x = if shared_input {
                        let mut s = vec![1];
                        s.extend(&x_shape);
                        g.input(&s).unwrap()
                    } else {
                        g.param(&x_shape)
                    };
                    let w = g.param(&[fout, fin]);
                    let bias = g.param(&if per_sample { vec![fout, b] } else { vec![fout] });
                    let y = g.dense(x, w, Some(bias)).unwrap();
                    let t = targets(&mut g, &[1, fout, b], 9, false);
                    let loss = g.squared_error(y, t, 0.5, Reduction::Mean).unwrap();
                    randomise(&mut g, &[x, w, bias], 1, 1.0);
                    let wrt: Vec<NodeId> = if shared_input { vec![w, bias] } else { vec![x, w, bias] };
                    check(
                        &mut g,
                        loss,
                        &wrt,
                        &format!("dense {x_shape:?} E={e} per_sample={per_sample} shared_input={shared_input}"),
                    );
                }
            }
        }
    }
}

#[test]
fn dense_without_bias_and_chained_layers_pass_gradients_through() {
    let mut g = Graph::<f64>::new(2);
    let x = g.input(&[1, 5, 4]).unwrap();
    let w1 = g.param(&[3, 5]);
    let w2 = g.param(&[2, 3]);
    let h = g.dense(x, w1, None).unwrap();
    let a = g.activation(h, Activation::Tanh);
    let y = g.dense(a, w2, None).unwrap();
    let t = targets(&mut g, &[1, 2, 4], 3, false);
    let loss = g.squared_error(y, t, 1.0, Reduction::Sum).unwrap();
    let mut rng = SeededRng::new(5);
    for v in g.value_mut(x) {
        *v = rng.uniform();
    }
    randomise(&mut g, &[w1, w2], 2, 1.0);
    check(&mut g, loss, &[w1, w2], "dense→tanh→dense");
}

#[test]
fn every_activation_inside_a_graph() {
    for act in Activation::all() {
        for e in [1, 3] {
            let mut g = Graph::<f64>::new(e);
            let x = g.param(&[2, 7]);
            let y = g.activation(x, act);
            let t = targets(&mut g, &[1, 2, 7], 4, false);
            let loss = g.squared_error(y, t, 1.0, Reduction::Mean).unwrap();
            randomise(&mut g, &[x], 11, 3.0);
            // Keep clear of kinks at 0, where a finite difference straddles two slopes.
            for v in g.value_mut(x) {
                if v.abs() < 0.05 {
                    *v += 0.1;
                }
            }
            check(&mut g, loss, &[x], &format!("activation {act}, E={e}"));
        }
    }
}

#[test]
fn losses_with_both_reductions_and_a_weighted_sum() {
    for e in [1, 3] {
        for reduction in [Reduction::Mean, Reduction::Sum] {
            let mut g = Graph::<f64>::new(e);
            let logits = g.param(&[1, 6]);
            let pred = g.param(&[1, 6]);
            let labels = targets(&mut g, &[1, 1, 6], 7, true);
            let widths = targets(&mut g, &[1, 1, 6], 8, false);
            let ce = g.sigmoid_cross_entropy(logits, labels, reduction).unwrap();
            let reg = g.squared_error(pred, widths, 0.5, reduction).unwrap();
            let total = g.weighted_sum(&[(ce, 1.0), (reg, 0.01)]).unwrap();
            randomise(&mut g, &[logits, pred], 3, 4.0);
            check(&mut g, ce, &[logits], &format!("sigmoid CE {reduction:?} E={e}"));
            check(&mut g, reg, &[pred], &format!("squared error {reduction:?} E={e}"));
            check(&mut g, total, &[logits, pred], &format!("CE + 0.01·reg {reduction:?} E={e}"));
        }
    }
}

#[test]
fn whole_fc_network_every_setting() {
    let data = gradlab::data::generators::random(16, 3);
    for act in [Activation::Sigmoid, Activation::Relu, Activation::LeakyRelu { slope: 0.1 }, Activation::Gelu] {
        for loss in [LossKind::L2, LossKind::Ce] {
            for per_sample_bias in [false, true] {
                for e in [1, 3] {
                    let cfg = Fc73 { per_sample_bias, ..Fc73::new(act, loss) };
                    let mut net = cfg.build::<f64>(e, 16).unwrap();
                    net.init(&gradlab::models::Init::seeds(
                        10,
                        e,
                        gradlab::init::WeightInit::TruncatedNormal { std: 0.5 },
                        0.1,
                    ));
                    net.set_data(&data);
                    let params = net.graph.params();
                    check(
                        &mut net.graph,
                        net.loss,
                        &params,
                        &format!("fc {act}+{loss} per_sample_bias={per_sample_bias} E={e}"),
                    );
                }
            }
        }
    }
}

#[test]
fn conv2d_every_bias_kind_input_kind_stride_and_padding() {
    use gradlab::engine::conv2d::Conv2dSpec;
    for spec in [Conv2dSpec::default(), Conv2dSpec { stride: 2, padding: 0 }, Conv2dSpec { stride: 2, padding: 1 }] {
        for e in [1, 3] {
            for untied in [false, true] {
                for shared_input in [true, false] {
                    let (c, b, h, w, out, k) = (2, 3, 6, 5, 3, 3);
                    let mut g = Graph::<f64>::new(e);
                    let x = if shared_input { g.input(&[1, c, h, w, b]).unwrap() } else { g.param(&[c, h, w, b]) };
                    let kern = g.param(&[out, c, k, k]);
                    let (oh, ow) = (spec.out_size(h, k).unwrap(), spec.out_size(w, k).unwrap());
                    let bias = g.param(&if untied { vec![out, oh, ow] } else { vec![out] });
                    let y = g.conv2d(x, kern, Some(bias), spec).unwrap();
                    let a = g.activation(y, Activation::Tanh);
                    // A second convolution takes a per-model input, so dX is exercised too.
                    let kern2 = g.param(&[2, out, 2, 2]);
                    let y2 = g.conv2d(a, kern2, None, Conv2dSpec::default()).unwrap();
                    let head = g.param(&[1, 2 * (oh - 1) * (ow - 1)]);
                    let logits = g.dense(y2, head, None).unwrap();
                    let t = targets(&mut g, &[1, 1, b], 5, true);
                    let loss = g.sigmoid_cross_entropy(logits, t, Reduction::Mean).unwrap();
                    if shared_input {
                        let mut rng = SeededRng::new(4);
                        for v in g.value_mut(x) {
                            *v = rng.uniform();
                        }
                    }
                    randomise(&mut g, &[x, kern, bias, kern2, head], 6, 0.8);
                    let mut wrt = vec![kern, bias, kern2, head];
                    if !shared_input {
                        wrt.push(x);
                    }
                    check(
                        &mut g,
                        loss,
                        &wrt,
                        &format!("conv2d {spec:?} E={e} untied={untied} shared_input={shared_input}"),
                    );
                }
            }
        }
    }
}

/// Class indices 0..k for a `[1 or E, 1, B]` target.
fn classes(g: &mut Graph<f64>, shape: &[usize], k: usize, seed: u64) -> NodeId {
    let t = g.input(shape).unwrap();
    let mut rng = SeededRng::new(seed);
    for v in g.value_mut(t) {
        *v = rng.int(0, k as i64 - 1) as f64;
    }
    t
}

#[test]
fn softmax_cross_entropy_with_both_reductions_and_target_layouts() {
    for e in [1, 3] {
        for reduction in [Reduction::Mean, Reduction::Sum] {
            for per_model_targets in [false, true] {
                let mut g = Graph::<f64>::new(e);
                let logits = g.param(&[4, 5]);
                let t = classes(&mut g, &[if per_model_targets { e } else { 1 }, 1, 5], 4, 3);
                let loss = g.softmax_cross_entropy(logits, t, reduction).unwrap();
                randomise(&mut g, &[logits], 7, 4.0);
                check(
                    &mut g,
                    loss,
                    &[logits],
                    &format!("softmax CE E={e} {reduction:?} per-model targets {per_model_targets}"),
                );
            }
        }
    }
    // Stable where exp overflows: finite loss, gradient softmax − one-hot.
    let mut g = Graph::<f64>::new(1);
    let logits = g.param(&[3, 1]);
    let t = g.input(&[1, 1, 1]).unwrap();
    g.value_mut(t)[0] = 2.0;
    g.value_mut(logits).copy_from_slice(&[1000.0, -1000.0, 990.0]);
    let loss = g.softmax_cross_entropy(logits, t, Reduction::Mean).unwrap();
    g.forward();
    g.backward(loss);
    // logsumexp(1000, −1000, 990) − 990 = 10 + ln(1 + e⁻¹⁰).
    let want = 10.0 + (-10.0f64).exp().ln_1p();
    assert!((g.value(loss)[0] - want).abs() < 1e-9, "{} vs {want}", g.value(loss)[0]);
    let grad = g.grad(logits);
    assert!((grad[0] - 1.0).abs() < 1e-4 && (grad[2] + 1.0).abs() < 1e-4 && grad[1].abs() < 1e-12, "{grad:?}");
}

#[test]
fn max_and_average_pooling_with_strides_shared_and_per_model_input() {
    use gradlab::engine::pool::PoolKind;
    for kind in [PoolKind::Max, PoolKind::Avg] {
        for (k, stride) in [(2, 2), (3, 1), (2, 3)] {
            for e in [1, 3] {
                // Per-model input as a parameter, so dX is checked; values spread so that no two
                // in a window tie (a tie is a kink of max).
                let mut g = Graph::<f64>::new(e);
                let x = g.param(&[2, 7, 6, 3]);
                let y = g.pool(x, kind, k, stride).unwrap();
                let s = g.shape(y).to_vec();
                let t = targets(&mut g, &[1, s[1], s[2], s[3], s[4]], 5, false);
                let loss = g.squared_error(y, t, 1.0, Reduction::Mean).unwrap();
                randomise(&mut g, &[x], 13, 2.0);
                check(&mut g, loss, &[x], &format!("{kind:?} pool k={k} stride={stride} E={e}"));
            }
        }
    }
}

#[test]
fn networks_from_descriptions_pass_the_gradient_check() {
    use gradlab::data::{Samples, Target};
    use gradlab::experiments::check::check as fd_check;
    use gradlab::models::spec::{Layer, NetworkSpec, OutputSpec};
    // Images 1×6×6, ten classes; conv (padding) → maxpool → conv → residual → dense, softmax.
    let mut rng = SeededRng::new(21);
    let n = 12;
    let data = Samples {
        x: (0..n * 36).map(|_| rng.uniform() * 2.0 - 1.0).map(|v| v as f32).collect(),
        shape: vec![1, 6, 6],
        n,
        targets: vec![Target {
            name: "y".into(),
            values: (0..n).map(|i| (i % 10) as f32).collect(),
            width: 1,
            classes: Some(10),
        }],
        source: "test".into(),
    };
    let conv = |channels, kernel, padding, act: &str| Layer::Conv2d {
        channels,
        kernel,
        stride: 1,
        padding,
        act: Some(act.into()),
        bias: Default::default(),
        name: None,
    };
    let spec = NetworkSpec {
        layers: vec![
            conv(3, 3, 1, "tanh"),
            Layer::Maxpool { kernel: 2, stride: None, name: None },
            conv(3, 3, 1, "elu"),
            Layer::Residual { from: 1, act: Some("softplus".into()), name: None },
            Layer::Avgpool { kernel: 2, stride: Some(1), name: None },
            Layer::Dense { units: 10, act: None, bias: Default::default(), name: None },
        ],
        output: OutputSpec { loss: Some("softmax_ce".into()), ..Default::default() },
        heads: None,
    };
    for weights in [WeightInit::XavierUniform { gain: 1.0 }, WeightInit::HeNormal] {
        let init = gradlab::models::Init::seeds(4, 1, weights, 0.05);
        let checks = fd_check(&spec, &data, &init, None, 8, 40).unwrap();
        assert_eq!(checks.len(), 6, "weight and bias of two convolutions and the dense layer");
        for c in &checks {
            assert!(c.ok && c.max_rel_error < 1e-6, "{weights}: {c:?}");
        }
    }
    // Layer normalisation after a convolution and after a dense layer (γ from 1, β from 0: the
    // file's path, so `gradlab check` covers it), parameters named as PyTorch's LayerNorm.
    let normed = NetworkSpec {
        layers: vec![
            conv(3, 3, 1, "identity"),
            Layer::Layernorm { eps: 1e-5, act: Some("relu".into()), name: Some("ln1".into()) },
            Layer::Dense { units: 6, act: None, bias: Default::default(), name: None },
            Layer::Layernorm { eps: 1e-5, act: Some("tanh".into()), name: None },
            Layer::Dense { units: 10, act: None, bias: Default::default(), name: None },
        ],
        output: OutputSpec { loss: Some("softmax_ce".into()), ..Default::default() },
        heads: None,
    };
    let init = gradlab::models::Init::seeds(2, 1, WeightInit::HeNormal, 0.05);
    let checks = fd_check(&normed, &data, &init, None, 8, 40).unwrap();
    let names: Vec<&str> = checks.iter().map(|c| c.name.as_str()).collect();
    assert!(
        names.contains(&"ln1.weight") && names.contains(&"ln1.bias") && names.contains(&"layers.3.weight"),
        "{names:?}"
    );
    for c in &checks {
        assert!(c.ok && c.max_rel_error < 1e-6, "layernorm: {c:?}");
    }
    // An L2 head on one-hot targets with a sigmoid output, and two heads with weights.
    let l2 = NetworkSpec {
        layers: vec![
            Layer::Dense { units: 5, act: Some("gelu".into()), bias: Default::default(), name: None },
            Layer::Dense { units: 10, act: None, bias: Default::default(), name: None },
        ],
        output: OutputSpec { loss: Some("l2".into()), output_act: Some("sigmoid".into()), ..Default::default() },
        heads: None,
    };
    let init = gradlab::models::Init::seeds(1, 1, WeightInit::Normal { std: 0.5 }, 0.0);
    for c in fd_check(&l2, &data, &init, None, 12, 50).unwrap() {
        assert!(c.ok, "l2 one-hot: {c:?}");
    }
}

/// Layer normalisation after a dense and after a conv layer: gradients of the layers below (so
/// of its input), of γ and β, against central differences; and its output normalised.
#[test]
fn layer_norm_after_dense_and_conv_layers() {
    use gradlab::engine::conv2d::Conv2dSpec;
    for conv in [false, true] {
        let e = 2;
        let mut g = Graph::<f64>::new(e);
        let (x, w, feat) = if conv {
            let x = g.input(&[1, 2, 5, 5, 3]).unwrap();
            let w = g.param(&[3, 2, 3, 3]);
            (x, w, vec![3, 3, 3])
        } else {
            let x = g.input(&[1, 5, 3]).unwrap();
            (x, g.param(&[4, 5]), vec![4])
        };
        let y = if conv { g.conv2d(x, w, None, Conv2dSpec::default()).unwrap() } else { g.dense(x, w, None).unwrap() };
        let gamma = g.param(&feat);
        let beta = g.param(&feat);
        let n = g.layer_norm(y, gamma, beta, 1e-5).unwrap();
        let a = g.activation(n, Activation::Tanh);
        let f: usize = feat.iter().product();
        let head = g.param(&[1, f]);
        let out = g.dense(a, head, None).unwrap();
        let t = targets(&mut g, &[1, 1, 3], 4, false);
        let loss = g.squared_error(out, t, 1.0, Reduction::Mean).unwrap();
        let mut rng = SeededRng::new(9);
        for v in g.value_mut(x) {
            *v = rng.uniform() * 2.0 - 1.0;
        }
        randomise(&mut g, &[w, head, beta], 3, 1.0);
        for v in g.value_mut(gamma) {
            *v = 0.5 + rng.uniform();
        }
        let what = if conv { "conv→layernorm→tanh→dense" } else { "dense→layernorm→tanh→dense" };
        check(&mut g, loss, &[w, gamma, beta, head], what);
        // With γ = 1, β = 0 every sample of every model has mean 0 and variance σ²/(σ² + ε),
        // σ² its input's (biased) variance over the features.
        g.value_mut(gamma).fill(1.0);
        g.value_mut(beta).fill(0.0);
        g.forward();
        let moments = |v: &[f64], m: usize, s: usize| {
            let xs: Vec<f64> = (0..f).map(|k| v[m * f * 3 + k * 3 + s]).collect();
            let mean = xs.iter().sum::<f64>() / f as f64;
            (mean, xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / f as f64)
        };
        for m in 0..e {
            for s in 0..3 {
                let (mean, var) = moments(g.value(n), m, s);
                let (_, var_in) = moments(g.value(y), m, s);
                let want = var_in / (var_in + 1e-5);
                assert!(mean.abs() < 1e-12 && (var - want).abs() < 1e-12, "{what}: mean {mean}, var {var} vs {want}");
            }
        }
    }
}

/// Dropout in training mode with a fixed mask: the gradient through it is the mask's, against
/// central differences; out of training it is the identity; masks have the rate asked for.
#[test]
fn dropout_with_a_fixed_mask_and_out_of_training() {
    let mut g = Graph::<f64>::new(2);
    let x = g.input(&[1, 5, 4]).unwrap();
    let w1 = g.param(&[6, 5]);
    let h = g.dense(x, w1, None).unwrap();
    let d = g.dropout(h, 0.5).unwrap();
    let a = g.activation(d, Activation::Tanh);
    let w2 = g.param(&[1, 6]);
    let y = g.dense(a, w2, None).unwrap();
    let t = targets(&mut g, &[1, 1, 4], 3, false);
    let loss = g.squared_error(y, t, 1.0, Reduction::Mean).unwrap();
    let mut rng = SeededRng::new(7);
    for v in g.value_mut(x) {
        *v = rng.uniform() * 2.0 - 1.0;
    }
    randomise(&mut g, &[w1, w2], 2, 1.0);
    g.draw_noise(|| rng.uniform());
    g.set_training(true);
    check(&mut g, loss, &[w1, w2], "dense→dropout→tanh→dense (training)");
    g.forward();
    let (hv, dv) = (g.value(h).to_vec(), g.value(d).to_vec());
    let zeros = dv.iter().filter(|&&v| v == 0.0).count();
    assert!(zeros > 0 && zeros < dv.len(), "some dropped, some kept");
    for (a, b) in hv.iter().zip(&dv) {
        assert!(*b == 0.0 || *b == 2.0 * a, "kept values are scaled by 1/(1 − p)");
    }
    g.set_training(false);
    check(&mut g, loss, &[w1, w2], "dense→dropout→tanh→dense (evaluation)");
    g.forward();
    assert_eq!(g.value(h), g.value(d), "the identity out of training");
    // The rate: 0.3 of 100 000 draws zeroed, within 1%.
    let mut m = vec![0.0f64; 100_000];
    gradlab::engine::noise::draw(&mut m, gradlab::engine::noise::Noise::Dropout { rate: 0.3 }, || rng.uniform());
    let dropped = m.iter().filter(|&&v| v == 0.0).count() as f64 / m.len() as f64;
    assert!((dropped - 0.3).abs() < 0.01 && m.iter().all(|&v| v == 0.0 || v == 1.0 / 0.7), "{dropped}");
    // Gaussian noise: mean 0 and standard deviation σ over 100 000 draws.
    gradlab::engine::noise::draw(&mut m, gradlab::engine::noise::Noise::Gaussian { std: 0.25 }, || rng.uniform());
    let mean = m.iter().sum::<f64>() / m.len() as f64;
    let sd = (m.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / m.len() as f64).sqrt();
    assert!(mean.abs() < 0.005 && (sd - 0.25).abs() < 0.005, "mean {mean}, sd {sd}");
}

/// Batch normalisation after a dense and after a conv layer, for two models: in training mode
/// (batch statistics) and in evaluation mode (running estimates) the gradients of the layers
/// below, γ and β against central differences; the output normalised per model and channel;
/// the running estimates moved by PyTorch's rule (unbiased variance, momentum 0.1) and only for
/// the models being trained; evaluation normalises with them.
#[test]
fn batch_norm_after_dense_and_conv_layers_in_both_modes() {
    use gradlab::engine::batch_norm::BatchNormSpec;
    use gradlab::engine::conv2d::Conv2dSpec;
    let spec = BatchNormSpec { eps: 1e-5, momentum: 0.1 };
    for conv in [false, true] {
        let e = 2;
        let mut g = Graph::<f64>::new(e);
        let (x, w, c, per) = if conv {
            let x = g.input(&[1, 2, 5, 5, 3]).unwrap();
            (x, g.param(&[3, 2, 3, 3]), 3, 9 * 3)
        } else {
            let x = g.input(&[1, 5, 6]).unwrap();
            (x, g.param(&[4, 5]), 4, 6)
        };
        let b = g.param(&[c]);
        let y = if conv {
            g.conv2d(x, w, Some(b), Conv2dSpec::default()).unwrap()
        } else {
            g.dense(x, w, Some(b)).unwrap()
        };
        let (gamma, beta) = (g.param(&[c]), g.param(&[c]));
        let (mean, var) = (g.state(&[c]), g.state(&[c]));
        let n = g.batch_norm(y, [gamma, beta], [mean, var], spec).unwrap();
        let a = g.activation(n, Activation::Tanh);
        let head = g.param(&[1, c * per / if conv { 3 } else { 6 }]);
        let out = g.dense(a, head, None).unwrap();
        let batch = if conv { 3 } else { 6 };
        let t = targets(&mut g, &[1, 1, batch], 4, false);
        let loss = g.squared_error(out, t, 1.0, Reduction::Mean).unwrap();
        let mut rng = SeededRng::new(9);
        for v in g.value_mut(x) {
            *v = rng.uniform() * 2.0 - 1.0;
        }
        randomise(&mut g, &[w, b, head, beta], 3, 1.0);
        for v in g.value_mut(gamma) {
            *v = 0.5 + rng.uniform();
        }
        for v in g.value_mut(mean) {
            *v = rng.uniform() - 0.5;
        }
        for v in g.value_mut(var) {
            *v = 0.5 + rng.uniform();
        }
        let what = if conv { "conv→batchnorm→tanh→dense" } else { "dense→batchnorm→tanh→dense" };
        g.set_training(true);
        check(&mut g, loss, &[w, gamma, beta, head], &format!("{what} (training)"));
        // The bias before the normalisation has gradient 0: the batch mean takes it away.
        assert!(g.grad(b).iter().all(|v| v.abs() < 1e-12), "{what}: bias before batchnorm");
        g.set_training(false);
        check(&mut g, loss, &[w, b, gamma, beta, head], &format!("{what} (evaluation)"));
        // Evaluation: (y − running mean)/√(running var + ε)·γ + β, and nothing moves.
        let (m0, v0) = (g.value(mean).to_vec(), g.value(var).to_vec());
        g.forward();
        assert_eq!((g.value(mean), g.value(var)), (&m0[..], &v0[..]), "{what}: evaluation moves nothing");
        for k in 0..e * c {
            let (yk, nk) = (&g.value(y)[k * per..(k + 1) * per], &g.value(n)[k * per..(k + 1) * per]);
            for (&yv, &nv) in yk.iter().zip(nk) {
                let want = (yv - m0[k]) / (v0[k] + 1e-5).sqrt() * g.value(gamma)[k] + g.value(beta)[k];
                assert!((nv - want).abs() < 1e-12, "{what}: evaluation output");
            }
        }
        // Training with γ = 1, β = 0: mean 0 and variance σ²/(σ² + ε) per model and channel;
        // the running estimates of model 1 only (model 0 stopped) move by r ← 0.9·r + 0.1·s.
        g.value_mut(gamma).fill(1.0);
        g.value_mut(beta).fill(0.0);
        g.set_training(true);
        g.forward_models(Some(&[false, true]));
        for k in 0..e * c {
            let stats = |v: &[f64]| {
                let xs = &v[k * per..(k + 1) * per];
                let mu = xs.iter().sum::<f64>() / per as f64;
                (mu, xs.iter().map(|x| (x - mu).powi(2)).sum::<f64>() / per as f64)
            };
            let (mu, s2) = stats(g.value(y));
            let (out_mu, out_var) = stats(g.value(n));
            assert!(out_mu.abs() < 1e-12 && (out_var - s2 / (s2 + 1e-5)).abs() < 1e-12, "{what}: normalised");
            let model = k / c;
            let (want_m, want_v) = if model == 1 {
                (0.9 * m0[k] + 0.1 * mu, 0.9 * v0[k] + 0.1 * s2 * per as f64 / (per - 1) as f64)
            } else {
                (m0[k], v0[k])
            };
            assert!((g.value(mean)[k] - want_m).abs() < 1e-14, "{what}: running mean of model {model}");
            assert!((g.value(var)[k] - want_v).abs() < 1e-14, "{what}: running var of model {model}");
        }
    }
}

//! Per-sample measures (issue 22) against independent computations from the same runs: the
//! forgetting counts, data-map coordinates and correctness recomputed from the per-evaluation
//! trace with the reference code's definitions (`example_forgetting`, `cartography`); GraNd
//! against central differences of one sample's loss in f64; EL2N against its formula; C-scores'
//! estimator by hand; ensemble = solo; named errors.

use gradlab::experiments::cscores::estimate;
use gradlab::experiments::lab::{self, Lab};
use gradlab::models::Net;
use gradlab::models::spec;
use gradlab::record::Run;
use gradlab::record::samples::SubsetVerdicts;
use std::path::Path;

const FC73: &str = r#"
[data]
generator = "random"
n = 64
seed = 0
[network]
layers = [
  { type = "dense", units = 4, act = "relu", name = "fc1" },
  { type = "dense", units = 1, name = "fc2" },
]
loss = "sigmoid_ce"
[optim]
name = "sgd"
lr = 0.1
[train]
seeds = 6
max_iters = 600
"#;

fn parse(text: &str) -> Lab {
    lab::parse(Path::new("test.toml"), text).unwrap()
}

fn run(lab: &Lab) -> Run {
    let (data, held) = lab.data(0).unwrap();
    lab.run_cell(0, &data, held.as_ref(), &mut |_, _| true).unwrap()
}

/// Toneva et al.'s count and the data-map coordinates from one seed's trace, written the way
/// the reference code computes them (cartography's loop; numpy's mean and std, two passes).
fn reference(evals: &[(bool, f64)]) -> (u32, f64, f64, f64) {
    let (mut learnt, mut forgotten) = (false, 0u32);
    for &(ok, _) in evals {
        if learnt && !ok {
            forgotten += 1;
        }
        learnt = ok;
    }
    let never = !evals.iter().any(|e| e.0);
    let count = if never { evals.len() as u32 } else { forgotten };
    let n = evals.len() as f64;
    let mean = evals.iter().map(|e| e.1).sum::<f64>() / n;
    let std = (evals.iter().map(|e| (e.1 - mean).powi(2)).sum::<f64>() / n).sqrt();
    let correct = evals.iter().filter(|e| e.0).count() as f64 / n;
    (count, mean, std, correct)
}

fn check_against_trace(run: &Run, n: usize) -> usize {
    let seeds = run.samples.as_ref().expect("per-sample record");
    let mut forgets = 0;
    for r in seeds {
        assert!(!r.trace.is_empty());
        for s in 0..n {
            let evals: Vec<(bool, f64)> = r.trace.iter().filter(|t| t.1 as usize == s).map(|t| (t.2, t.3)).collect();
            let (count, conf, var, corr) = reference(&evals);
            assert_eq!(r.evaluations[s] as usize, evals.len(), "sample {s}");
            assert_eq!(r.forgetting(s), count, "sample {s}");
            assert!((r.confidence[s] - conf).abs() < 1e-12, "confidence of {s}: {} vs {conf}", r.confidence[s]);
            assert!((r.variability[s] - var).abs() < 1e-9, "variability of {s}: {} vs {var}", r.variability[s]);
            assert_eq!(r.correctness(s), corr);
            forgets += r.forgetting_events[s] as usize;
        }
    }
    forgets
}

#[test]
fn full_batch_measures_equal_the_reference_definitions_over_the_trace() {
    let lab = parse(&format!("{FC73}\n[samples]\ntrace = true\n"));
    let run = run(&lab);
    let forgets = check_against_trace(&run, 64);
    assert!(forgets > 0, "the case has forgetting events to count");
    let seeds = run.samples.as_ref().unwrap();
    for (e, r) in seeds.iter().enumerate() {
        // Full batch: every sample is evaluated at every evaluated iteration the seed ran.
        let rows = run.at[e].last().copied().unwrap() as u32;
        assert!(r.evaluations.iter().all(|&k| k == rows), "seed {e}: {} rows", rows);
        // The trace's probabilities are the net's: its verdict is p_true > ½ on a logit head.
        assert!(r.trace.iter().all(|t| t.2 == (t.3 > 0.5) || (t.3 - 0.5).abs() < 1e-6));
    }
}

#[test]
fn minibatch_measures_count_presentations() {
    let text = FC73
        .replace("seed = 0\n[network]", "seed = 0\nbatch = 16\n[network]")
        .replace("max_iters = 600", "max_iters = 200");
    let lab = parse(&format!("{text}\n[samples]\ntrace = true\n"));
    let run = run(&lab);
    check_against_trace(&run, 64);
    for (e, r) in run.samples.as_ref().unwrap().iter().enumerate() {
        // Each update presented 16 samples (the loop's last iteration, if it broke, did not).
        let presented: u32 = r.evaluations.iter().sum();
        let its = run.iterations[e].unwrap_or(200) as u32;
        assert!(presented == 16 * its || presented == 16 * (its - 1), "seed {e}: {presented} for {its} iterations");
        // An epoch is 4 minibatches: every sample once per epoch.
        let (lo, hi) = (r.evaluations.iter().min().unwrap(), r.evaluations.iter().max().unwrap());
        assert!(hi - lo <= 1, "one presentation per epoch each: {lo}..{hi}");
    }
}

#[test]
fn per_sample_records_are_bit_for_bit_those_of_a_solo_run() {
    let many = run(&parse(&format!("{FC73}\n[samples]\nscore_at = [1, 40]\n")));
    let solo_text = FC73.replace("seeds = 6", "seeds = 1\nfirst_seed = 4");
    let solo = run(&parse(&format!("{solo_text}\n[samples]\nscore_at = [1, 40]\n")));
    let (a, b) = (&many.samples.as_ref().unwrap()[4], &solo.samples.as_ref().unwrap()[0]);
    assert_eq!(a.evaluations, b.evaluations);
    assert_eq!(a.forgetting_events, b.forgetting_events);
    assert_eq!(a.confidence, b.confidence);
    assert_eq!(a.variability, b.variability);
    assert_eq!(a.scored.len(), 2);
    for (x, y) in a.scored.iter().zip(&b.scored) {
        assert_eq!((x.iteration, &x.el2n, &x.grand), (y.iteration, &y.el2n, &y.grand));
    }
    // And measuring changes no training number.
    let plain = run(&parse(FC73));
    let bits = |r: &Run| r.rows.iter().map(|v| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>()).collect::<Vec<_>>();
    assert_eq!(bits(&plain), bits(&many));
    assert_eq!(plain.iterations, many.iterations);
}

/// One sample's loss in f64 at the given parameters (`net` built for 1 model on batch 1).
fn loss_at(net: &mut Net<f64>, params: &[(String, Vec<f64>)]) -> f64 {
    for (name, v) in params {
        let id = net.param(name);
        net.graph.value_mut(id).copy_from_slice(v);
    }
    net.graph.forward();
    net.graph.value(net.loss)[0]
}

#[test]
fn grand_and_el2n_equal_central_differences_and_the_formula() {
    let dir = std::env::temp_dir().join(format!("gradlab-samples-grand-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let text = format!("{FC73}\n[samples]\nscore_at = [1, 30]\n")
        .replace("[train]", &format!("[train]\nsave_every = 29\nsave_params = {:?}", dir.display().to_string()));
    let lab = parse(&text);
    let run = run(&lab);
    let (data, _) = lab.data(0).unwrap();
    let seeds = run.samples.as_ref().unwrap();
    for (e, seed) in [(0usize, 0u64), (3, 3)] {
        // The parameters after 29 updates (iteration 30) of this seed.
        let file = dir.join(format!("seed-{seed}-iter-29.safetensors"));
        let mut net: Net<f64> = spec::build(&lab.cells[0].file.network, &data, 1, 1).unwrap();
        let bytes = std::fs::read(&file).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let params: Vec<(String, Vec<f64>)> = net
            .params
            .iter()
            .map(|(name, ..)| {
                let t = st.tensor(name).unwrap();
                let v = t.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64).collect();
                (name.clone(), v)
            })
            .collect();
        let scored = seeds[e].scored.iter().find(|s| s.iteration == 30).unwrap();
        for s in [0usize, 7, 33, 63] {
            net.feed(&data, &[s]);
            let mut p = params.clone();
            let mut sq = 0.0;
            for k in 0..p.len() {
                for j in 0..p[k].1.len() {
                    let x = p[k].1[j];
                    let h = 1e-6;
                    p[k].1[j] = x + h;
                    let up = loss_at(&mut net, &p);
                    p[k].1[j] = x - h;
                    let down = loss_at(&mut net, &p);
                    p[k].1[j] = x;
                    sq += ((up - down) / (2.0 * h)).powi(2);
                }
            }
            let fd = sq.sqrt();
            let g = scored.grand[s];
            assert!((g - fd).abs() <= 1e-4 * fd.max(1e-3), "seed {seed} sample {s}: GraNd {g} vs differences {fd}");
            // EL2N of a logit head: √2·|σ(o) − y|.
            loss_at(&mut net, &params);
            let o = net.graph.value(net.heads[0].score)[0];
            let y = data.targets[0].values[s] as f64;
            let want = std::f64::consts::SQRT_2 * (1.0 / (1.0 + (-o).exp()) - y).abs();
            assert!((scored.el2n[s] - want).abs() < 1e-6, "EL2N {} vs {want}", scored.el2n[s]);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn softmax_el2n_is_the_distance_to_the_one_hot_row() {
    // The digits MLP, a few minibatches: EL2N² + (its own complement) add up as the formula says.
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/networks/digits-mlp.toml"))
        .unwrap()
        .replace("seeds = 8", "seeds = 2")
        .replace("max_iters = 2000", "max_iters = 30");
    let lab = parse(&format!("{text}\n[samples]\nscore_at = [30]\n"));
    let run = run(&lab);
    let (data, _) = lab.data(0).unwrap();
    let sc = &run.samples.as_ref().unwrap()[1].scored[0];
    assert_eq!(sc.el2n.len(), data.n);
    // ‖p − e_y‖² = Σ p² − 2 p_y + 1 ∈ [0, 2]; and GraNd > 0 everywhere.
    assert!(sc.el2n.iter().all(|&v| (0.0..=std::f64::consts::SQRT_2 + 1e-9).contains(&v)));
    assert!(sc.grand.iter().all(|&g| g > 0.0 && g.is_finite()));
    // Hard samples (large EL2N) pull harder: the two agree on ranks.
    let (rho, _) = gradlab::stats::spearman(&sc.el2n, &sc.grand);
    assert!(rho > 0.2, "EL2N and GraNd rank alike, ρ = {rho}");
}

#[test]
fn cscore_estimator_is_the_reference_one() {
    // 3 seeds, 4 samples: held out by seeds {1,2}, {0}, {}, {0,1,2}.
    let v = |trained: [bool; 4], correct: [bool; 4]| SubsetVerdicts {
        trained_on: trained.to_vec(),
        correct: correct.to_vec(),
    };
    let runs = [
        v([true, false, true, false], [true, true, true, false]),
        v([false, true, true, false], [true, false, false, true]),
        v([false, true, true, false], [false, true, true, true]),
    ];
    let (c, least) = estimate(&runs, 4);
    assert_eq!(c, vec![0.5, 1.0, 0.0, 2.0 / 3.0]);
    assert_eq!(least, 0);
}

#[test]
fn cscore_runs_train_each_seed_on_its_own_subset_as_it_would_alone() {
    let text = format!("{FC73}\n[samples]\ncscore_ratios = [0.25, 0.75]\ncscore_epochs = 300\n");
    let lab = parse(&text);
    let (data, _) = lab.data(0).unwrap();
    let c = &lab.cells[0];
    let mut runner = |names: &[String], _: usize, _: usize, f: &mut gradlab::experiments::TrainCell<'_>| {
        let runs = (0..names.len()).map(|k| f(k, &mut |_, _| true)).collect::<gradlab::Result<Vec<_>>>()?;
        Ok((runs, true))
    };
    let est =
        gradlab::experiments::cscores::run("base", &c.file.network, &data, &c.opts, &[0.25, 0.75], 300, &mut runner)
            .unwrap()
            .unwrap();
    assert_eq!(est.per_ratio.len(), 2);
    assert!(est.cscore.iter().all(|v| (0.0..=1.0).contains(v)));
    // Seed 2's subset and verdicts at ratio 0.75 equal a one-seed run's.
    let opts = gradlab::experiments::cscores::options(&c.opts, 0.75, 300);
    let build = |e: usize| spec::build_fed(&c.file.network, &data, e, 48, true);
    let all = gradlab::training::train_parallel("x", &build, &data, None, &opts, &mut |_, _| true).unwrap();
    let solo_opts = gradlab::training::TrainOptions { seeds: 1, first_seed: 2, ..opts.clone() };
    let solo =
        gradlab::training::train("x", &mut build(1).unwrap(), &data, None, &solo_opts, &mut |_, _| true).unwrap();
    let (a, b) = (&all.subsets.as_ref().unwrap()[2], &solo.subsets.as_ref().unwrap()[0]);
    assert_eq!(a.trained_on.iter().filter(|&&t| t).count(), 48, "⌊64·0.75⌋ samples");
    assert_eq!((&a.trained_on, &a.correct), (&b.trained_on, &b.correct));
    assert_ne!(all.subsets.as_ref().unwrap()[0].trained_on, a.trained_on, "each seed its own subset");
    // A model trained on its subset gets it right more often than the held-out rest.
    let acc = |v: &SubsetVerdicts, on: bool| {
        let idx: Vec<usize> = (0..64).filter(|&s| v.trained_on[s] == on).collect();
        idx.iter().filter(|&&s| v.correct[s]).count() as f64 / idx.len() as f64
    };
    assert!(acc(a, true) > acc(a, false));
}

#[test]
fn bad_samples_keys_are_named_errors() {
    let err = |extra: &str, base: &str| {
        lab::parse(Path::new("t.toml"), &format!("{base}\n{extra}\n")).err().map(|e| e.to_string()).unwrap_or_default()
    };
    let e = err("[samples]\nscore_at = [0]", FC73);
    assert!(e.contains("samples.score_at") && e.contains("outside"), "{e}");
    let e = err("[samples]\nscore_at = [601]", FC73);
    assert!(e.contains("samples.score_at"), "{e}");
    let e = err("[samples]\ncscore_ratios = [0.5, 1.2]", FC73);
    assert!(e.contains("samples.cscore_ratios") && e.contains("1.2"), "{e}");
    let e = err("[samples]\ncscore_ratios = [0.0]", FC73);
    assert!(e.contains("samples.cscore_ratios"), "{e}");
    let e = err("[samples]\ncscore_epochs = 10", FC73);
    assert!(e.contains("samples.cscore_epochs") && e.contains("needs"), "{e}");
    let e = err("[samples]\nscore_every = 3", FC73);
    assert!(e.contains("score_every"), "{e}");
    // A regression head has no per-sample measures.
    let regression = FC73
        .replace("generator = \"random\"\nn = 64\nseed = 0", "generator = \"detection\"\nn = 64\nseed = 0")
        .replace("loss = \"sigmoid_ce\"", "loss = \"l2\"\ntarget = \"width\"\ntolerance = 0.5");
    let e = err("[samples]", &regression);
    assert!(e.contains("samples") && e.contains("classification head"), "{e}");
    // Per-sample biases: no per-sample gradients.
    let per_sample = FC73.replace("units = 4, act = \"relu\"", "units = 4, act = \"relu\", bias = \"per_sample\"");
    let e = err("[samples]\nscore_at = [1]", &per_sample);
    assert!(e.contains("samples.score_at") && e.contains("per-sample biases"), "{e}");
    // Without score_at they are fine.
    assert!(err("[samples]", &per_sample).is_empty());
}

#[test]
fn tensorboard_gets_the_per_sample_scalars() {
    let run = run(&parse(&format!("{FC73}\n[samples]\nscore_at = [5]\n")));
    let dir = std::env::temp_dir().join(format!("gradlab-samples-tb-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    gradlab::report::tensorboard::write_runs(&dir, std::slice::from_ref(&run)).unwrap();
    let r = &run.samples.as_ref().unwrap()[2];
    let seed_dir = dir.join(&run.setting).join("seed-2");
    let file = std::fs::read_dir(&seed_dir).unwrap().next().unwrap().unwrap().path();
    let scalars = gradlab::report::tensorboard::read_scalars(&std::fs::read(file).unwrap()).unwrap();
    let get = |tag: &str| scalars.iter().find(|s| s.1 == tag).unwrap_or_else(|| panic!("no {tag}")).clone();
    let unforgettable = (0..64).filter(|&s| r.ever_correct[s] && r.forgetting_events[s] == 0).count();
    assert_eq!(get("samples/unforgettable").2, unforgettable as f32);
    assert_eq!(get("samples/unforgettable").0, *run.at[2].last().unwrap() as i64);
    let el2n = get("samples/el2n");
    assert_eq!(el2n.0, 5);
    let want = r.scored[0].el2n.iter().map(|&v| v as f32 as f64).sum::<f64>() as f32 / 64.0;
    assert!((el2n.2 - want).abs() < 1e-6);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn grand_of_a_cnn_equals_a_solo_batch_one_gradient() {
    // The line CNN: the twin's per-model convolutions against a one-model, batch-1 net on
    // shared data (another kernel path), from each seed's initial parameters.
    let text = presets_text("line").replace("seeds = 32", "seeds = 3").replace("max_iters = 10000", "max_iters = 3");
    let lab = parse(&format!("{text}\n[samples]\nscore_at = [1]\n"));
    let run = run(&lab);
    let (data, _) = lab.data(0).unwrap();
    let c = &lab.cells[0];
    for e in [0usize, 2] {
        let mut net: Net<f32> = spec::build(&c.file.network, &data, 1, 1).unwrap();
        net.init(&gradlab::models::Init::seeds(e as u64, 1, c.opts.init.weights, c.opts.init.bias));
        for s in [0usize, 17, 63] {
            net.feed(&data, &[s]);
            net.graph.forward();
            net.graph.backward(net.loss);
            let sq: f64 = net
                .params
                .iter()
                .map(|(_, id, _)| net.graph.grad(*id).iter().map(|&g| (g as f64).powi(2)).sum::<f64>())
                .sum();
            let g = run.samples.as_ref().unwrap()[e].scored[0].grand[s];
            assert!((g - sq.sqrt()).abs() <= 1e-4 * sq.sqrt(), "seed {e} sample {s}: {g} vs {}", sq.sqrt());
        }
    }
}

fn presets_text(name: &str) -> String {
    gradlab::experiments::presets::text(name).unwrap().to_string()
}

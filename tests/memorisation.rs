//! The per-sample bookkeeping of the learning order, and the studies built on it.

use gradlab::activations::Activation;
use gradlab::data::generators;
use gradlab::experiments::memorisation::{ease, sample_order};
use gradlab::experiments::presets::{Fc73, LossKind};
use gradlab::training::learning_order::update_learned;
use gradlab::training::{TrainOptions, train};

#[test]
fn a_sample_that_flips_back_is_not_learned() {
    let mut learned = vec![0; 3]; // 0: not learned
    update_learned(&mut learned, &[true, false, true], 1);
    update_learned(&mut learned, &[true, true, false], 2); // sample 2 flips back
    update_learned(&mut learned, &[true, true, true], 3);
    assert_eq!(learned, [1, 2, 3]);
    update_learned(&mut learned, &[false, true, true], 4);
    assert_eq!(learned, [0, 2, 3]);
}

#[test]
fn converged_seeds_have_learned_every_sample_by_their_stop() {
    let data = generators::random(64, 0);
    let mut net = Fc73::new(Activation::Relu, LossKind::Ce).build::<f32>(4, 64).unwrap();
    let opts = TrainOptions { max_iters: 3000, ..TrainOptions::new(4) };
    let run = train("relu+ce", &mut net, &data.samples(), None, &opts, &mut |_, _| true).unwrap();
    let learned = run.learned_at.as_ref().unwrap();
    for (e, row) in learned.iter().enumerate() {
        if let Some(stop) = run.iterations[e] {
            assert!(row.iter().all(|v| v.is_some_and(|it| it as usize <= stop)), "seed {e}: {row:?}");
            assert!(row.contains(&Some(stop as u32)) || stop == 1, "some sample was learned last, at the stop");
        }
    }
    let o = sample_order(&run, &data).unwrap();
    assert_eq!(o.median_learned.len(), 64);
    assert!((0.0..=1.0).contains(&o.kendall_w), "{}", o.kendall_w);
    assert_eq!(o.ease.as_deref(), Some("teacher's margin"));
    let (_, margins) = ease(&data).unwrap();
    assert!(margins.iter().all(|m| *m >= 0.0));
}

fn gradlab(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_gradlab")).args(args).output().unwrap()
}

#[test]
fn the_noise_and_data_vs_init_studies_write_their_tables() {
    let out = std::env::temp_dir().join(format!("gradlab-mem-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let noise = out.join("noise");
    let o = gradlab(&[
        "study",
        "memorisation",
        "--tasks",
        "line",
        "--seeds",
        "2",
        "--noise",
        "0,1",
        "--arms",
        "none,dropout",
        "--max-iters",
        "30",
        "--out",
        noise.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let s: serde_json::Value = serde_json::from_slice(&std::fs::read(noise.join("summary.json")).unwrap()).unwrap();
    let rows = s["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 4);
    let cells: Vec<(f64, &str)> =
        rows.iter().map(|r| (r["noise"].as_f64().unwrap(), r["arm"].as_str().unwrap())).collect();
    assert_eq!(cells, [(0.0, "none"), (0.0, "dropout"), (1.0, "none"), (1.0, "dropout")]);
    assert_eq!(rows[1]["rate"].as_f64(), Some(0.5));
    assert!(noise.join("line/curves.png").is_file() && noise.join("noise.md").is_file());
    assert!(noise.join("line/fit.png").is_file(), "Fig. 8 for a level with corrupted labels");
    let bad = gradlab(&["study", "memorisation", "--noise", "1.5", "--out", out.join("x").to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(2));
    let bad = gradlab(&["study", "memorisation", "--arms", "dropuot", "--out", out.join("y").to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("did you mean `dropout`"));
    assert_eq!(bad.status.code(), Some(2));
    let dvi = out.join("dvi");
    let o = gradlab(&[
        "study",
        "data-vs-init",
        "--tasks",
        "random",
        "--draws",
        "3",
        "--seeds",
        "3",
        "--max-iters",
        "2000",
        "--out",
        dvi.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let s: serde_json::Value = serde_json::from_slice(&std::fs::read(dvi.join("summary.json")).unwrap()).unwrap();
    let d = &s["tasks"][0]["decomposition"];
    let total =
        d["data_share"].as_f64().unwrap() + d["init_share"].as_f64().unwrap() + d["rest_share"].as_f64().unwrap();
    assert!((total - 1.0).abs() < 1e-9, "{d}");
    assert_eq!(s["tasks"][0]["iterations"].as_array().unwrap().len(), 3);
    std::fs::remove_dir_all(&out).unwrap();
}

/// The fit of clean and corrupted labels: for a net without dropout or noise (evaluation =
/// training), the two shares weighted by their counts are exactly the training accuracy of the
/// rows where they were measured; the corrupted labels are those the flips changed; with a
/// dropout arm the fit is evaluation mode's (not the masked training forward's accuracy).
#[test]
fn clean_and_corrupted_fit_add_up_to_the_training_accuracy() {
    use gradlab::data::DatasetKind;
    use gradlab::experiments::memorisation::{Arm, preset_of, with_label_noise};
    let clean = gradlab::data::load(DatasetKind::Line, &gradlab::data::Source::Builtin { seed: 0 }).unwrap();
    let noisy = with_label_noise(&clean, 0.5, 0);
    let flipped: Vec<bool> = clean.labels.iter().zip(&noisy.labels).map(|(a, b)| a != b).collect();
    let n_flip = flipped.iter().filter(|&&f| f).count();
    assert!(n_flip > 5 && n_flip < 40, "about a quarter of 64 change under 50% coin flips: {n_flip}");
    let samples = noisy.samples();
    let lab = gradlab::experiments::presets::lab(preset_of(DatasetKind::Line)).unwrap();
    let base = TrainOptions {
        seeds: 3,
        max_iters: 120,
        stop: gradlab::training::StopRule::None,
        flipped: Some(std::sync::Arc::new(flipped.clone())),
        ..lab.cells[0].opts.clone()
    };
    for arm in [Arm::None, Arm::Dropout { rate: 0.5 }] {
        let (spec, opts) = arm.apply(&lab.cells[0].file.network, &base);
        let mut net = gradlab::models::spec::build::<f32>(&spec, &samples, 3, samples.n).unwrap();
        let run = train("line", &mut net, &samples, None, &opts, &mut |_, _| true).unwrap();
        let mut measured = 0;
        let mut differs = 0;
        for s in 0..3 {
            let (acc, c, f) = (run.column(s, "accuracy"), run.column(s, "fit_clean"), run.column(s, "fit_flipped"));
            for i in 0..acc.len() {
                if c[i].is_nan() {
                    assert!(f[i].is_nan());
                    continue;
                }
                measured += 1;
                let both = (c[i] as f64 * (64 - n_flip) as f64 + f[i] as f64 * n_flip as f64) / 64.0;
                if arm == Arm::None {
                    assert!((both - acc[i] as f64).abs() < 1e-6, "seed {s} row {i}: {both} vs {}", acc[i]);
                } else if (both - acc[i] as f64).abs() > 1e-6 {
                    differs += 1;
                }
            }
        }
        assert!(measured >= 3 * 13, "measured at 1, 2, 3, 5, 9, 17, … and every 10: {measured}");
        if arm != Arm::None {
            assert!(differs > 0, "dropout's fit is evaluation mode's, not the masked forward's accuracy");
        }
    }
}

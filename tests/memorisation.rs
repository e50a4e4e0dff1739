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
        "--max-iters",
        "30",
        "--out",
        noise.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let s: serde_json::Value = serde_json::from_slice(&std::fs::read(noise.join("summary.json")).unwrap()).unwrap();
    let rows = s["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!((rows[0]["noise"].as_f64(), rows[1]["noise"].as_f64()), (Some(0.0), Some(1.0)));
    assert!(noise.join("line/curves.png").is_file() && noise.join("noise.md").is_file());
    let bad = gradlab(&["study", "memorisation", "--noise", "1.5", "--out", out.join("x").to_str().unwrap()]);
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

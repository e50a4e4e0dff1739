//! Parameters as safetensors: round trip, continuing a run, and named errors for bad files.

use gradlab::activations::Activation;
use gradlab::data::generators;
use gradlab::experiments::presets::{Fc73, LossKind};
use gradlab::models::params;
use gradlab::training::{TrainOptions, train};
use std::path::PathBuf;
use std::process::Command;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gradlab-params-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn save_then_load_gives_the_same_parameters_for_every_net_and_variant() {
    let dir = tmp("roundtrip");
    let fc_cfg = Fc73 { per_sample_bias: true, ..Fc73::new(Activation::Relu, LossKind::Ce) };
    let det = gradlab::experiments::presets::Cnn {
        task: gradlab::experiments::presets::CnnTask::Detect,
        act: Activation::Relu,
        reduction: gradlab::engine::Reduction::Mean,
        untied_conv_bias: true,
    };
    let nets = vec![fc_cfg.build::<f32>(3, 64).unwrap(), det.build::<f32>(3, 64).unwrap()];
    for (k, mut net) in nets.into_iter().enumerate() {
        net.init(&gradlab::models::Init::seeds(4, 3, gradlab::init::WeightInit::TruncatedNormal { std: 0.1 }, 0.1));
        let path = dir.join(format!("net{k}.safetensors"));
        params::save(&net, 1, &path).unwrap();
        let mut fresh = if k == 0 { fc_cfg.build::<f32>(2, 64).unwrap() } else { det.build::<f32>(2, 64).unwrap() };
        params::load_all(&mut fresh, &path).unwrap();
        for (name, id, _) in &net.params {
            let n = net.graph.value(*id).len() / 3;
            let want = &net.graph.value(*id)[n..2 * n];
            let got = fresh.graph.value(fresh.param(name));
            assert_eq!(&got[..n], want, "{name}, model 0");
            assert_eq!(&got[n..], want, "{name}, model 1");
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn saving_and_continuing_follows_the_uninterrupted_run_bit_for_bit() {
    let dir = tmp("continue");
    let data = generators::random(64, 2);
    let cfg = Fc73::new(Activation::Sigmoid, LossKind::Ce); // no seed reaches 100% this early
    let run = |opts: &TrainOptions| {
        let mut net = cfg.build::<f32>(1, 64).unwrap();
        train("s", &mut net, &data.samples(), None, opts, &mut |_, _| true).unwrap()
    };
    let base = TrainOptions { first_seed: 7, all_rows: true, ..TrainOptions::new(1) };
    let whole = run(&TrainOptions { max_iters: 100, ..base.clone() });
    run(&TrainOptions { max_iters: 50, save_params: Some(dir.clone()), save_every: Some(20), ..base.clone() });
    let rest = run(&TrainOptions { max_iters: 50, init_from: Some(dir.join("seed-7.safetensors")), ..base.clone() });
    assert_eq!(whole.iterations, vec![None]);
    assert_eq!(rest.column(0, "loss"), whole.column(0, "loss")[50..].to_vec());
    // A periodic save after 20 updates continues like the whole run from iteration 21.
    let from20 =
        run(&TrainOptions { max_iters: 30, init_from: Some(dir.join("seed-7-iter-20.safetensors")), ..base.clone() });
    assert_eq!(from20.column(0, "loss"), whole.column(0, "loss")[20..50].to_vec());
    assert!(dir.join("seed-7-iter-40.safetensors").is_file() && !dir.join("seed-7-iter-60.safetensors").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A safetensors file with the given tensors (name, dtype, shape, little-endian bytes).
fn file(tensors: &[(&str, safetensors::Dtype, Vec<usize>, Vec<u8>)]) -> Vec<u8> {
    let views: Vec<(String, safetensors::tensor::TensorView)> = tensors
        .iter()
        .map(|(n, d, s, b)| (n.to_string(), safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    safetensors::serialize(views, None).unwrap()
}

#[test]
fn bad_parameter_files_are_refused_with_the_tensor_named() {
    use safetensors::Dtype::{F32, F64, I32};
    let dir = tmp("bad");
    let f32s = |n: usize| vec![0u8; 4 * n];
    let good = vec![
        ("fc1.weight", F32, vec![4, 16], f32s(64)),
        ("fc1.bias", F32, vec![4], f32s(4)),
        ("fc2.weight", F64, vec![1, 4], vec![0u8; 32]),
        ("fc2.bias", F32, vec![1], f32s(1)),
    ];
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (file(&good[..3]), "tensor `fc2.bias` is missing"),
        (file(&[good.clone(), vec![("extra", F32, vec![1], f32s(1))]].concat()), "unexpected tensor(s) extra"),
        (
            file(&[&good[..3], &[("fc2.bias", F32, vec![2], f32s(2))]].concat()),
            "tensor `fc2.bias`: expected shape [1], found [2]",
        ),
        (
            file(&[&good[..3], &[("fc2.bias", I32, vec![1], f32s(1))]].concat()),
            "tensor `fc2.bias`: dtype I32 is not supported",
        ),
        (b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}      ".to_vec(), "not a valid safetensors file"),
    ];
    let out = dir.join("out");
    let run = |init: &PathBuf| {
        Command::new(env!("CARGO_BIN_EXE_gradlab"))
            .args(["train", "fc", "--seeds", "1", "--max-iters", "2", "--force", "--init"])
            .arg(init)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap()
    };
    let ok = dir.join("good.safetensors");
    std::fs::write(&ok, file(&good)).unwrap();
    let o = run(&ok);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for (k, (bytes, msg)) in cases.into_iter().enumerate() {
        let path = dir.join(format!("bad{k}.safetensors"));
        std::fs::write(&path, bytes).unwrap();
        let o = run(&path);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(3), "case {k}: {err}");
        assert!(
            err.contains(msg) && err.contains(&format!("bad{k}.safetensors")),
            "case {k}: expected `{msg}` in {err}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

//! The open lab: the report's presets train bit for bit like an independent builder of the same
//! nets (`common/twins.rs`), from a file and through the studies alike; any
//! network trains with any optimiser on minibatches with the ensemble guarantees intact, sweeps
//! shard and merge, and bad files get named errors with nothing written.

use gradlab::activations::Activation;
use gradlab::data::{self, DatasetKind};
use gradlab::engine::Reduction;
use gradlab::experiments::cnn::{self, CnnSetting};
use gradlab::experiments::fc_random::{self, FcSetting, FcStudy};
use gradlab::experiments::lab::{self, Lab, set_key};
use gradlab::experiments::presets::{Cnn, CnnTask, Fc73, LossKind};
use gradlab::record::Run;
use gradlab::training::train_parallel;
use gradlab::training::{TrainOptions, evaluate, train};
#[path = "common/twins.rs"]
mod twins;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use twins::{CnnTwin, Fc73Twin};

fn gradlab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gradlab")).args(args).output().expect("runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gradlab-lab-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn preset(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/networks").join(format!("{name}.toml"))
}

/// A preset file with some keys set (and its sweep dropped), parsed as a lab.
fn preset_with(name: &str, keys: &[(&str, toml::Value)]) -> Lab {
    let path = preset(name);
    let mut doc: toml::Table = std::fs::read_to_string(&path).unwrap().parse().unwrap();
    doc.remove("sweep");
    for (k, v) in keys {
        set_key(&mut doc, k, v.clone()).unwrap();
    }
    lab::parse(&path, &toml::to_string(&doc).unwrap()).unwrap()
}

fn run_lab(lab: &Lab) -> Run {
    let (data, _) = lab::load_data(&lab.cells[0].file.data).unwrap();
    lab.run_cell(0, &data, None, &mut |_, _| true).unwrap()
}

/// Two runs of the same training: identical columns, rows, stopping iterations and weights.
fn assert_same(what: &str, a: &Run, b: &Run) {
    assert_eq!(a.columns, b.columns, "{what}");
    assert_eq!(a.seeds, b.seeds, "{what}");
    assert_eq!(a.iterations, b.iterations, "{what}");
    assert_eq!(a.max_abs_weight, b.max_abs_weight, "{what}");
    for (s, (ra, rb)) in a.rows.iter().zip(&b.rows).enumerate() {
        assert!(!ra.is_empty(), "{what}: seed {s} has rows");
        let same = ra.len() == rb.len() && ra.iter().zip(rb).all(|(x, y)| x.to_bits() == y.to_bits());
        assert!(same, "{what}: seed {s} rows differ");
    }
}

fn v<T: Into<toml::Value>>(x: T) -> toml::Value {
    x.into()
}

#[test]
fn the_fc73_preset_trains_bit_for_bit_like_the_independent_builder() {
    let data = data::generate(DatasetKind::Random, 64, 0);
    for (act, loss, per_sample) in [
        (Activation::Relu, LossKind::Ce, false),
        (Activation::Sigmoid, LossKind::L2, false),
        (Activation::Sigmoid, LossKind::L2, true),
    ] {
        let mut keys =
            vec![("train.seeds", v(3)), ("train.max_iters", v(400)), ("network.layers.0.act", v(act.to_string()))];
        if loss == LossKind::L2 {
            keys.push(("network.loss", v("l2")));
            keys.push(("network.output_act", v("sigmoid")));
        }
        if per_sample {
            keys.push(("network.layers.0.bias", v("per_sample")));
            keys.push(("network.layers.1.bias", v("per_sample")));
        }
        let lab = preset_with("fc73", &keys);
        let from_file = run_lab(&lab);
        let study = FcStudy {
            settings: vec![],
            train: TrainOptions { max_iters: 400, ..TrainOptions::new(3) },
            reduction: Reduction::Mean,
        };
        let setting = FcSetting { act, loss, per_sample_bias: per_sample };
        let studied = fc_random::run_setting(&study, setting, &data, None, &mut |_, _| true).unwrap();
        let twin = Fc73Twin { per_sample_bias: per_sample, ..Fc73Twin::new(act, loss == LossKind::L2) };
        let built = train_parallel(
            &setting.name(),
            &|e| twins::fc73::<f32>(&twin, e, 64),
            &data.samples(),
            None,
            &study.train,
            &mut |_, _| true,
        )
        .unwrap();
        assert_same(&setting.name(), &from_file, &built);
        assert_same(&setting.name(), &studied, &built);
    }
}

#[test]
fn the_cnn_presets_train_bit_for_bit_like_the_independent_builders() {
    for (task, name, untied, iters) in [
        (CnnTask::Line, "line", false, 30),
        (CnnTask::Detect, "detect", false, 12),
        (CnnTask::Detect, "detect", true, 8),
    ] {
        let mut keys = vec![("train.seeds", v(2)), ("train.max_iters", v(iters))];
        if untied {
            keys.push(("network.layers.0.bias", v("untied")));
            keys.push(("network.layers.1.bias", v("untied")));
        }
        let from_file = run_lab(&preset_with(name, &keys));
        let kind = if task == CnnTask::Line { DatasetKind::Line } else { DatasetKind::Detection };
        let data = data::generate(kind, 64, 0);
        let opts = TrainOptions { max_iters: iters as usize, ..TrainOptions::new(2) }.with_sgd(task.lr(), 0.1);
        let setting = CnnSetting { untied_conv_bias: untied, ..CnnSetting::new(Activation::Relu) };
        let studied = cnn::run_setting(task, setting, &opts, &data, None, &mut |_, _| true).unwrap();
        let twin = CnnTwin {
            detect: task == CnnTask::Detect,
            act: Activation::Relu,
            reduction: Reduction::Mean,
            untied_conv_bias: untied,
        };
        let built =
            train_parallel("relu", &|e| twins::cnn::<f32>(&twin, e, 64), &data.samples(), None, &opts, &mut |_, _| {
                true
            })
            .unwrap();
        assert_same(&format!("{name} untied={untied}"), &from_file, &built);
        assert_same(&format!("{name} untied={untied}"), &studied, &built);
        assert!(from_file.rows[0].len() / from_file.columns.len() > 1);
    }
}

const SMALL_NET: &str = r#"
[data]
generator = "random"
n = 64
batch = 16
[network]
layers = [
  { type = "dense", units = 8, act = "tanh" },
  { type = "dense", units = 8, act = "relu" },
  { type = "residual", from = 0 },
  { type = "dense", units = 1 },
]
loss = "sigmoid_ce"
[init]
weights = "xavier_normal"
bias = 0.0
[optim]
name = "adam"
lr = 0.01
clip_norm = 1.0
[train]
seeds = 4
first_seed = 10
max_iters = 40
eval_every = 4
held_out_every = 8
"#;

#[test]
fn an_ensemble_member_equals_its_solo_run_with_minibatches_adam_and_clipping() {
    let dir = tmp("solo");
    let path = dir.join("net.toml");
    let lab = lab::parse(&path, SMALL_NET).unwrap();
    let (data, held) = lab::load_data(&lab.cells[0].file.data).unwrap();
    let held = held.unwrap();
    let opts = lab.cells[0].opts.clone();
    assert_eq!((opts.every(data.n), opts.batch), (4, Some(16)));
    let mut whole_net = lab.build(0, &data, 4).unwrap();
    let whole = train("w", &mut whole_net, &data, Some(&held), &opts, &mut |_, _| true).unwrap();
    // Rows every 4 iterations (1, 5, …, 37).
    let rows = whole.rows[0].len() / whole.columns.len();
    assert_eq!(rows, 10, "iterations 1, 5, …, 37");
    let h = whole.column(0, "held_out_accuracy");
    // Held-out every 8 iterations and early where 1 less is a power of two: 1, 5, 9, 17, 25, 33.
    let evaluated: Vec<bool> = h.iter().map(|v| v.is_finite()).collect();
    assert_eq!(evaluated, [true, true, true, false, true, false, true, false, true, false], "{h:?}");
    for member in [0usize, 3] {
        let solo_opts = TrainOptions { seeds: 1, first_seed: opts.first_seed + member as u64, ..opts.clone() };
        let mut solo_net = lab.build(0, &data, 1).unwrap();
        let solo = train("s", &mut solo_net, &data, Some(&held), &solo_opts, &mut |_, _| true).unwrap();
        let same = solo.rows[0].iter().zip(&whole.rows[member]).all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(same && solo.rows[0].len() == whole.rows[member].len(), "member {member} differs from its solo run");
    }
    // Training went somewhere: the loss fell.
    let loss = whole.column(0, "loss");
    assert!(loss.last().unwrap() < &(0.8 * loss[0]), "{loss:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn evaluation_in_padded_batches_equals_one_batch_of_everything() {
    let lab = lab::parse(Path::new("x.toml"), SMALL_NET).unwrap();
    let (data, held) = lab::load_data(&lab.cells[0].file.data).unwrap();
    let held = held.unwrap();
    let part = gradlab::data::Samples {
        x: held.x[..50 * held.features()].to_vec(),
        n: 50,
        targets: held
            .targets
            .iter()
            .map(|t| gradlab::data::Target { values: t.values[..50].to_vec(), ..t.clone() })
            .collect(),
        ..held.clone()
    };
    let init = gradlab::models::Init::seeds(3, 2, lab.cells[0].opts.init.weights, 0.0);
    let mut small = lab.build(0, &data, 2).unwrap(); // batch 16: 50 = 3·16 + 2 padded
    small.init(&init);
    let mut big = gradlab::models::spec::build::<f32>(&lab.cells[0].file.network, &part, 2, 50).unwrap();
    big.init(&init);
    let (a, b) = (evaluate(&mut small, &part), evaluate(&mut big, &part));
    assert_eq!(a.accuracy, b.accuracy);
    for (x, y) in a.loss.iter().zip(&b.loss) {
        assert!((x - y).abs() <= 1e-6 * y.abs(), "{x} vs {y}");
    }
    assert!(a.accuracy.iter().all(|&v| (0.0..=1.0).contains(&v)));
}

#[test]
fn a_lab_sweep_shards_and_merges_to_the_unsharded_run() {
    let dir = tmp("shards");
    let file = dir.join("sweep.toml");
    let text = SMALL_NET.replace("max_iters = 40", "max_iters = 12")
        + "[sweep]\n\"optim.lr\" = [0.01, 0.003]\n\"network.layers.0.act\" = [\"tanh\", \"sigmoid\"]\n";
    std::fs::write(&file, text).unwrap();
    let f = file.to_str().unwrap();
    let whole = dir.join("whole");
    let o = gradlab(&["run", f, "--out", whole.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut shards = vec![];
    for i in 0..3 {
        let d = dir.join(format!("s{i}"));
        let o = gradlab(&["run", f, "--shard", &format!("{i}/3"), "--out", d.to_str().unwrap()]);
        assert!(o.status.success(), "{}", stderr(&o));
        shards.push(d.to_str().unwrap().to_string());
    }
    let merged = dir.join("merged");
    let mut args = vec!["merge"];
    args.extend(shards.iter().map(String::as_str));
    args.extend(["--out", merged.to_str().unwrap()]);
    assert!(gradlab(&args).status.success());
    let read = |d: &Path, f: &str| std::fs::read_to_string(d.join(f)).unwrap();
    assert_eq!(read(&whole, "metrics.csv"), read(&merged, "metrics.csv"));
    let cells =
        |d: &Path| serde_json::from_str::<serde_json::Value>(&read(d, "summary.json")).unwrap()["cells"].clone();
    assert_eq!(cells(&whole), cells(&merged));
    let c = cells(&whole);
    assert_eq!(c.as_array().unwrap().len(), 4);
    assert_eq!(c[1]["name"], "optim.lr=0.01+network.layers.0.act=sigmoid");
    assert_eq!(c[1]["axes"]["optim.lr"], 0.01);
    for f in ["curves.svg", "curves.png", "network.txt"] {
        assert!(whole.join(f).is_file(), "missing {f}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Writes a `.npy` of little-endian f64 or i64 values.
fn npy(path: &Path, shape: &[usize], descr: &str, values: &[f64]) {
    let payload: Vec<u8> = if descr == "<i8" {
        values.iter().flat_map(|&v| (v as i64).to_le_bytes()).collect()
    } else {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    };
    std::fs::write(path, gradlab::data::npy::npy_bytes(shape, descr, false, &payload)).unwrap();
}

#[test]
fn bad_network_files_get_named_errors_and_write_nothing() {
    let dir = tmp("bad");
    npy(&dir.join("x.npy"), &[6, 4], "<f8", &[0.5; 24]);
    npy(&dir.join("yf.npy"), &[6], "<f8", &[0.0, 1.0, 0.5, 1.0, 0.0, 1.0]);
    npy(&dir.join("y9.npy"), &[6], "<i8", &[0.0, 9.0, 3.0, 1.0, 2.0, 4.0]);
    let data = |y: &str| format!("[data]\nx = \"{0}/x.npy\"\ny = \"{0}/{y}\"\n", dir.display());
    let dense = "[network]\nlayers = [{ type = \"dense\", units = 5 }]\nloss = \"softmax_ce\"\n";
    let cases: Vec<(String, &str, &str)> = vec![
        (data("y9.npy") + "[network]\nlayers = [{ type = \"denes\", units = 5 }]\nloss = \"softmax_ce\"\n", "denes", "unknown variant"),
        (data("y9.npy") + dense + "[optim]\nname = \"adma\"\n", "optim.name", "did you mean `adam`"),
        (data("y9.npy") + dense + "[optim]\nlrr = 0.1\n", "lrr", "unknown field"),
        (data("y9.npy") + dense + "[optim]\nname = \"sgd\"\nbeta1 = 0.9\n", "optim.beta1", "does not apply"),
        (data("y9.npy") + dense + "[optim]\nlr = -1\n", "optim.lr", "positive"),
        (data("yf.npy") + dense, "network.loss", "softmax_ce needs integer class labels"),
        (data("y9.npy") + dense, "network.loss", "labels up to 9"),
        (data("y9.npy") + "[network]\nlayers = [{ type = \"conv2d\", channels = 2, kernel = 3 }]\nloss = \"softmax_ce\"\n", "network.layers.0", "conv2d needs image input"),
        (data("y9.npy") + "[network]\nlayers = [{ type = \"dense\", units = 10, act = \"rleu\" }]\nloss = \"softmax_ce\"\n", "network.layers.0.act", "relu"),
        (data("y9.npy") + "[network]\nlayers = [{ type = \"dense\", units = 10 }, { type = \"residual\", from = 3 }]\nloss = \"softmax_ce\"\n", "network.layers.1", "earlier layer"),
        (data("y9.npy") + "[network]\nlayers = [{ type = \"dense\", units = 10 }]\nloss = \"softmax_ce\"\ntarget = \"width\"\n", "network.target", "no target `width`"),
        (data("missing.npy") + dense, "missing.npy", "not found"),
        ("[data]\ngenerator = \"random\"\n[network]\nlayers = [{ type = \"conv2d\", channels = 2, kernel = 7 }, { type = \"dense\", units = 1 }]\nloss = \"sigmoid_ce\"\n".into(), "network.layers.0", "does not fit"),
        ("[data]\ngenerator = \"lines\"\n".to_string() + dense, "data.generator", "did you mean `line`"),
        ("[data]\ngenerator = \"spirall\"\n".to_string() + dense, "data.generator", "did you mean `spiral`"),
        ("[data]\ngenerator = \"spiral\"\nnoise = 2\n".to_string() + dense, "data.noise", "must be in [0, 1]"),
        ("[data]\ngenerator = \"circle\"\ntrain_ratio = 0\n".to_string() + dense, "data.train_ratio", "must be in (0, 1]"),
        ("[data]\ngenerator = \"xor\"\nheld_out_n = 10\n".to_string() + dense, "data.held_out_n", "train_ratio"),
        ("[data]\ngenerator = \"line\"\nnoise = 0.1\n".to_string() + dense, "data.noise", "Playground's sets"),
        ("[data]\ngenerator = \"xor\"\nfeatures = [\"x1\", \"sinx2\"]\n".to_string() + dense, "data.features.1", "did you mean `sin(x2)`"),
        ("[data]\ngenerator = \"xor\"\nfeatures = [\"x1\", \"x1\"]\n".to_string() + dense, "data.features.1", "listed twice"),
        ("[data]\ngenerator = \"digits\"\nfeatures = [\"x1\"]\n".to_string() + dense, "data.features", "two features"),
        (data("y9.npy") + dense + "[optim]\nl2 = -0.1\n", "optim.l2", "≥ 0"),
        (data("y9.npy") + dense + "[optim]\nschedule = \"cosin\"\n", "optim.schedule", "did you mean `cosine`"),
        (data("y9.npy") + "[network]\nlayers = [{ type = \"dense\", units = 5 }, { type = \"dropout\", rate = 1.0 }, { type = \"dense\", units = 10 }]\nloss = \"softmax_ce\"\n", "network.layers.1.rate", "must be in [0, 1)"),
        (data("y9.npy") + "[network]\nlayers = [{ type = \"dense\", units = 10 }, { type = \"dropout\", rate = 0.5 }]\nloss = \"softmax_ce\"\n", "network.layers.1", "cannot be the output"),
        (data("y9.npy") + "[network]\nlayers = [{ type = \"layernorm\" }, { type = \"dense\", units = 10 }]\nloss = \"softmax_ce\"\n", "network.layers.0", "put a layer before it"),
        (data("y9.npy") + "[network]\nlayers = [{ type = \"gaussian_noise\", std = -1 }, { type = \"dense\", units = 10 }]\nloss = \"softmax_ce\"\n", "network.layers.0.std", "≥ 0"),
        (data("y9.npy") + "[network]\nlayers = [{ type = \"dense\", units = 10 }, { type = \"batchnorm\" }]\nloss = \"softmax_ce\"\n", "network.layers.1", "a batchnorm cannot be the output"),
        (data("y9.npy") + "[network]\nlayers = [{ type = \"dense\", units = 5 }, { type = \"batchnorm\", momentum = 1.5 }, { type = \"dense\", units = 10 }]\nloss = \"softmax_ce\"\n", "network.layers.1.momentum", "must be in [0, 1]"),
        (data("y9.npy") + "[network]\nlayers = [{ type = \"dense\", units = 5 }, { type = \"batchnorm\", eps = 0 }, { type = \"dense\", units = 10 }]\nloss = \"softmax_ce\"\n", "network.layers.1.eps", "positive"),
        (data("y9.npy") + dense + "[optim]\nschedule = \"step\"\n", "optim.step_size", "is missing (schedule = \"step\" needs it)"),
        (data("y9.npy") + dense + "[optim]\nschedule = \"exponential\"\n", "optim.gamma", "is missing"),
        (data("y9.npy") + dense + "[optim]\ngamma = 0.5\n", "optim.gamma", "does not apply to schedule = \"constant\""),
        (data("y9.npy") + dense + "[optim]\nschedule = \"step\"\nstep_size = 0\n", "optim.step_size", "at least 1"),
        (data("y9.npy") + dense + "[optim]\nlr = 0.1\nschedule = \"cosine\"\neta_min = 0.5\n", "optim.eta_min", "must be in [0, lr"),
        ("[data]\ngenerator = \"random\"\nn = 100000000\n".to_string() + dense, "data.n", "beyond the supported"),
        ("[data]\ngenerator = \"digits\"\nn = 100\n".to_string() + dense, "data.n", "does not apply to the built-in digits"),
        ("[data]\ngenerator = \"random\"\n[network]\nlayers = [{ type = \"dense\", units = 4, name = \"fc1\" }, { type = \"dense\", units = 1, name = \"fc1\" }]\nloss = \"sigmoid_ce\"\n".into(), "network.layers.1.name", "used twice"),
        ("[data]\ngenerator = \"line\"\n[network]\nlayers = [{ type = \"dense\", units = 1 }]\nloss = \"sigmoid_ce\"\n[sweep]\n\"network.layers.4.act\" = [\"relu\"]\n".into(), "sweep.network.layers.4.act", "beyond"),
    ];
    for (k, (text, field, msg)) in cases.iter().enumerate() {
        let file = dir.join(format!("case{k}.toml"));
        std::fs::write(&file, text).unwrap();
        let out = dir.join(format!("out{k}"));
        let o = gradlab(&["run", file.to_str().unwrap(), "--out", out.to_str().unwrap()]);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(3), "case {k}: {e}");
        assert!(e.contains(&format!("case{k}.toml")) || e.contains(field), "case {k} names no file: {e}");
        assert!(e.contains(field) && e.contains(msg), "case {k}: wanted `{field}` and `{msg}` in: {e}");
        assert!(!out.exists(), "case {k}: nothing is written");
        assert!(!e.contains("panicked"), "case {k}: {e}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A schedule changes only the rate of each update: γ = 1 trains bit for bit like no schedule,
/// and the `lr` column is the rate each row's update used.
#[test]
fn a_schedule_sets_each_updates_rate_and_nothing_else() {
    let base = |optim: &str| {
        format!(
            "[data]\ngenerator = \"digits\"\nscale = 0.0625\nbatch = 64\n[network]\nlayers = [{{ type = \"dense\", units = 16, act = \"relu\" }}, {{ type = \"dense\", units = 10 }}]\nloss = \"softmax_ce\"\n[optim]\nname = \"adam\"\nlr = 0.01\n{optim}\n[train]\nseeds = 3\nmax_iters = 120\neval_every = 10\nstop = \"none\"\n"
        )
    };
    let run = |text: String| {
        let lab = lab::parse(Path::new("s.toml"), &text).unwrap();
        run_lab(&lab)
    };
    let plain = run(base(""));
    let flat = run(base("schedule = \"step\"\nstep_size = 7\ngamma = 1.0"));
    assert!(flat.columns.iter().any(|c| c == "lr") && !plain.columns.iter().any(|c| c == "lr"));
    for e in 0..3 {
        let strip = |r: &Run| -> Vec<f32> {
            r.rows[e]
                .chunks_exact(r.columns.len())
                .flat_map(|row| {
                    row.iter().enumerate().filter(|(k, _)| r.columns[*k] != "lr").map(|(_, v)| *v).collect::<Vec<_>>()
                })
                .collect()
        };
        assert_eq!(strip(&plain), strip(&flat), "seed {e}");
    }
    let warm = run(base("schedule = \"cosine\"\nwarmup = 20\neta_min = 0.001"));
    let c = warm.columns.iter().position(|c| c == "lr").unwrap();
    let cfg = gradlab::optim::OptimConfig {
        schedule: gradlab::optim::Schedule::Cosine { t_max: 100, eta_min: 0.001 },
        warmup: 20,
        ..gradlab::optim::OptimConfig::new(gradlab::optim::OptimKind::Adam, 0.01)
    };
    for (row, &it) in warm.rows[0].chunks_exact(warm.columns.len()).zip(&warm.at[0]) {
        assert_eq!(row[c], cfg.lr_at(it as u64) as f32, "iteration {it}");
    }
    assert!(warm.rows[0][c] < 0.001, "warm-up starts at lr/20");
}

/// Layer normalisation in a file: γ starts at 1 and β at 0 under PyTorch's names, the net
/// learns the digits, and a seed in an ensemble is bit for bit that seed alone.
#[test]
fn a_layernorm_net_learns_and_an_ensemble_member_is_its_solo_run() {
    let text = |seeds: usize, first: usize| {
        format!(
            "[data]\ngenerator = \"digits\"\nscale = 0.0625\nbatch = 64\n[network]\nlayers = [{{ type = \"dense\", units = 32 }}, {{ type = \"layernorm\", act = \"relu\", name = \"ln\" }}, {{ type = \"dense\", units = 10 }}]\nloss = \"softmax_ce\"\n[init]\nweights = \"he_uniform\"\nbias = 0.1\n[optim]\nname = \"adam\"\nlr = 0.005\n[train]\nseeds = {seeds}\nfirst_seed = {first}\nmax_iters = 300\nstop = \"none\"\n"
        )
    };
    let lab3 = lab::parse(Path::new("ln.toml"), &text(3, 0)).unwrap();
    let (data, _) = lab3.data(0).unwrap();
    let mut net = lab3.build(0, &data, 1).unwrap();
    net.init(&gradlab::models::Init::seeds(0, 1, lab3.cells[0].opts.init.weights, 0.1));
    let ln_w = net.param("ln.weight");
    let ln_b = net.param("ln.bias");
    assert!(net.graph.value(ln_w).iter().all(|&v| v == 1.0) && net.graph.value(ln_b).iter().all(|&v| v == 0.0));
    assert!(net.graph.value(net.param("layers.0.bias")).iter().all(|&v| v == 0.1));
    let three = run_lab(&lab3);
    for e in 0..3 {
        let acc = *three.column(e, "accuracy").last().unwrap();
        assert!(acc > 0.95, "seed {e}: training accuracy {acc}");
    }
    let alone = run_lab(&lab::parse(Path::new("ln.toml"), &text(1, 2)).unwrap());
    assert_eq!(alone.rows[0], three.rows[2], "seed 2 alone and in an ensemble of 3");
}

/// Dropout in a file: masks from each seed's own stream (a seed in an ensemble is bit for bit
/// that seed alone, and two runs are the same), rate 0 trains exactly like no dropout layer, a
/// positive rate changes training, and evaluation (held-out) passes values through.
#[test]
fn dropout_masks_are_each_seeds_own_and_evaluation_passes_through() {
    let text = |seeds: usize, first: usize, dropout: &str| {
        format!(
            "[data]\ngenerator = \"digits\"\nscale = 0.0625\nbatch = 64\n[network]\nlayers = [{{ type = \"dense\", units = 32, act = \"relu\" }},{dropout} {{ type = \"dense\", units = 10 }}]\nloss = \"softmax_ce\"\n[init]\nweights = \"he_uniform\"\n[optim]\nname = \"adam\"\nlr = 0.005\n[train]\nseeds = {seeds}\nfirst_seed = {first}\nmax_iters = 150\neval_every = 10\nstop = \"none\"\n"
        )
    };
    let half = " { type = \"dropout\", rate = 0.5 },";
    let parse = |t: String| lab::parse(Path::new("d.toml"), &t).unwrap();
    let three = run_lab(&parse(text(3, 0, half)));
    let again = run_lab(&parse(text(3, 0, half)));
    assert_eq!(three.rows, again.rows, "masks are reproducible");
    let alone = run_lab(&parse(text(1, 1, half)));
    assert_eq!(alone.rows[0], three.rows[1], "seed 1 alone and in an ensemble of 3");
    let plain = run_lab(&parse(text(3, 0, "")));
    let zero = run_lab(&parse(text(3, 0, " { type = \"dropout\", rate = 0.0 },")));
    assert_eq!(plain.rows, zero.rows, "rate 0 is no dropout");
    assert_ne!(plain.rows, three.rows, "rate 0.5 changes training");
    // Gaussian noise after the first layer: the same guarantees; σ = 0 is no noise.
    let noisy = " { type = \"gaussian_noise\", std = 0.3 },";
    let three_n = run_lab(&parse(text(3, 0, noisy)));
    assert_eq!(run_lab(&parse(text(1, 2, noisy))).rows[0], three_n.rows[2], "noise: seed 2 alone and in 3");
    assert_ne!(three_n.rows, plain.rows);
    assert_eq!(run_lab(&parse(text(3, 0, " { type = \"gaussian_noise\", std = 0.0 },"))).rows, plain.rows);
    // Evaluation passes values through: the trained dropout net evaluates like the same
    // parameters in a net without the dropout layer.
    let lab_d = parse(text(1, 0, half));
    let (data, held) = lab_d.data(0).unwrap();
    let held = held.unwrap();
    let mut net = lab_d.build(0, &data, 1).unwrap();
    let mut opts = lab_d.cells[0].opts.clone();
    opts.held_out_every = None;
    let r = train("d", &mut net, &data, Some(&held), &opts, &mut |_, _| true).unwrap();
    let lab_p = parse(text(1, 0, ""));
    let mut twin = lab_p.build(0, &data, 1).unwrap();
    for ((_, a, _), (_, b, _)) in net.params.iter().zip(&twin.params.clone()) {
        let v = net.graph.value(*a).to_vec();
        twin.graph.value_mut(*b).copy_from_slice(&v);
    }
    let (ev_d, ev_p) = (evaluate(&mut net, &held), evaluate(&mut twin, &held));
    assert_eq!(ev_d.loss, ev_p.loss);
    assert_eq!(r.held_out_accuracy.unwrap(), ev_p.accuracy, "the run's held-out accuracy is evaluation mode's");
}

/// BatchNorm in a file: γ, β, running mean and variance start at 1, 0, 0, 1 under PyTorch's
/// names; the net learns the digits; a seed in an ensemble is bit for bit that seed alone
/// (running estimates included); the saved file holds the running estimates, and the run's
/// held-out accuracy is what evaluation mode gives from that file; a file without them is a
/// named error; `gradlab check` passes in both modes.
#[test]
fn a_batchnorm_net_learns_saves_its_running_estimates_and_evaluates_with_them() {
    let dir = tmp("bn");
    let text = |seeds: usize, first: usize| {
        format!(
            "[data]\ngenerator = \"digits\"\nscale = 0.0625\nbatch = 64\n[network]\nlayers = [{{ type = \"conv2d\", channels = 8, kernel = 3, padding = 1 }}, {{ type = \"batchnorm\", act = \"relu\", name = \"bn1\" }}, {{ type = \"maxpool\", kernel = 2 }}, {{ type = \"dense\", units = 32 }}, {{ type = \"batchnorm\", act = \"relu\", name = \"bn2\" }}, {{ type = \"dense\", units = 10 }}]\nloss = \"softmax_ce\"\n[init]\nweights = \"he_uniform\"\n[optim]\nname = \"momentum\"\nlr = 0.05\nmomentum = 0.9\n[train]\nseeds = {seeds}\nfirst_seed = {first}\nmax_iters = 200\nstop = \"none\"\nsave_params = \"{}\"\n",
            dir.join(format!("params-{seeds}")).display()
        )
    };
    let lab3 = lab::parse(Path::new("bn.toml"), &text(3, 0)).unwrap();
    let (data, held) = lab3.data(0).unwrap();
    let held = held.unwrap();
    let mut net = lab3.build(0, &data, 1).unwrap();
    net.init(&gradlab::models::Init::seeds(0, 1, lab3.cells[0].opts.init.weights, 0.0));
    for (name, want) in [("bn1.weight", 1.0), ("bn1.bias", 0.0)] {
        assert!(net.graph.value(net.param(name)).iter().all(|&v| v == want), "{name}");
    }
    let names: Vec<&str> = net.buffers.iter().map(|b| b.0.as_str()).collect();
    assert_eq!(names, ["bn1.running_mean", "bn1.running_var", "bn2.running_mean", "bn2.running_var"]);
    for (name, id, _) in &net.buffers {
        let want = if name.ends_with("var") { 1.0 } else { 0.0 };
        assert!(net.graph.value(*id).iter().all(|&v| v == want), "{name}");
    }
    let three = lab3.run_cell(0, &data, Some(&held), &mut |_, _| true).unwrap();
    for e in 0..3 {
        assert!(three.held_out_accuracy.as_ref().unwrap()[e] > 0.93, "seed {e}: {:?}", three.held_out_accuracy);
    }
    let lab1 = lab::parse(Path::new("bn.toml"), &text(1, 2)).unwrap();
    let alone = lab1.run_cell(0, &data, Some(&held), &mut |_, _| true).unwrap();
    let bits = |r: &[f32]| r.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&alone.rows[0]), bits(&three.rows[2]), "seed 2 alone and in an ensemble of 3");
    let (solo, member) = (dir.join("params-1/seed-2.safetensors"), dir.join("params-3/seed-2.safetensors"));
    assert_eq!(std::fs::read(&solo).unwrap(), std::fs::read(&member).unwrap(), "the same saved model");
    let bytes = std::fs::read(&solo).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    for (name, shape) in [("bn1.running_mean", vec![8]), ("bn1.running_var", vec![8]), ("bn2.running_var", vec![32])] {
        let t = st.tensor(name).unwrap();
        assert_eq!(t.shape(), &shape[..], "{name}");
        let v: Vec<f32> = t.data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
        let moved = if name.ends_with("var") { v.iter().any(|&x| x != 1.0) } else { v.iter().any(|&x| x != 0.0) };
        assert!(moved && v.iter().all(|x| x.is_finite()), "{name} was tracked: {v:?}");
    }
    // Evaluation mode from the saved file: the run's held-out accuracy exactly; with fresh
    // running estimates (0, 1) instead, another one.
    let mut eval_net = lab1.build(0, &held, 1).unwrap();
    gradlab::models::params::load_all(&mut eval_net, &solo).unwrap();
    let ev = evaluate(&mut eval_net, &held);
    assert_eq!(
        ev.accuracy[0],
        alone.held_out_accuracy.unwrap()[0],
        "held-out = evaluation mode with the saved estimates"
    );
    for (name, id, _) in eval_net.buffers.clone() {
        eval_net.graph.value_mut(id).fill(if name.ends_with("var") { 1.0 } else { 0.0 });
    }
    let fresh = evaluate(&mut eval_net, &held);
    assert_ne!(fresh.loss[0], ev.loss[0], "the running estimates are what evaluation uses");
    // A file without the running estimates: a named error.
    let no_stats: Vec<(String, safetensors::tensor::TensorView)> =
        st.tensors().into_iter().filter(|(n, _)| !n.contains("running")).collect();
    let partial = dir.join("partial.safetensors");
    std::fs::write(&partial, safetensors::serialize(no_stats, None).unwrap()).unwrap();
    let err = gradlab::models::params::load_all(&mut eval_net, &partial).unwrap_err().to_string();
    assert!(err.contains("bn1.running_mean") && err.contains("missing"), "{err}");
    // `gradlab check` covers both modes.
    let file = dir.join("bn.toml");
    std::fs::write(&file, text(1, 0)).unwrap();
    let o = gradlab(&["check", file.to_str().unwrap(), "--per-tensor", "8"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success() && out.contains("training") && out.contains("evaluation"), "{out}{}", stderr(&o));
    assert!(!out.contains("MISMATCH"), "{out}");
}

#[test]
fn check_passes_on_every_preset_and_example() {
    for name in ["fc73", "line", "detect", "digits-mlp", "digits-cnn"] {
        let path = preset(name);
        let o = Command::new(env!("CARGO_BIN_EXE_gradlab"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["check", path.to_str().unwrap(), "--per-tensor", "12"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success(), "{name}: {text}{}", stderr(&o));
        assert!(text.contains("tensors agree") && !text.contains("MISMATCH"), "{name}: {text}");
    }
}

#[test]
fn the_digits_cnn_learns_the_real_digits() {
    let path = preset("digits-cnn");
    let mut doc: toml::Table = std::fs::read_to_string(&path).unwrap().parse().unwrap();
    for (k, val) in [("train.seeds", v(2)), ("train.max_iters", v(300))] {
        set_key(&mut doc, k, val).unwrap();
    }
    let lab = lab::parse(&path, &toml::to_string(&doc).unwrap()).unwrap();
    let (data, held) = lab::load_data(&lab.cells[0].file.data).unwrap();
    assert_eq!((data.n, data.shape.clone(), data.target("y").unwrap().classes), (1437, vec![1, 8, 8], Some(10)));
    let run = lab.run_cell(0, &data, held.as_ref(), &mut |_, _| true).unwrap();
    let acc = run.held_out_accuracy.unwrap();
    assert!(acc.iter().all(|&a| a > 0.9), "held-out accuracy after 300 iterations: {acc:?}");
    assert_eq!(held.map(|h| h.n), Some(360));
}

#[test]
fn the_built_in_digits_are_the_workplace_files() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets/digits");
    if !dir.is_dir() {
        eprintln!("skipping: ../shared/datasets/digits is absent");
        return;
    }
    for (name, bytes) in gradlab::data::digits::FILES {
        assert!(std::fs::read(dir.join(name)).unwrap() == bytes, "{name} differs from the original");
    }
}

#[test]
fn a_network_landscape_passes_through_the_saved_parameters() {
    let dir = tmp("landscape");
    let net = dir.join("net.toml");
    let params = dir.join("params");
    std::fs::write(
        &net,
        format!(
            "[data]\ngenerator = \"random\"\n[network]\nlayers = [{{ type = \"dense\", units = 4, act = \"relu\" }}, {{ type = \"dense\", units = 1 }}]\nloss = \"sigmoid_ce\"\n[train]\nseeds = 2\nmax_iters = 3000\nsave_params = \"{}\"\nsave_every = 1000\n",
            params.display()
        ),
    )
    .unwrap();
    let run = dir.join("run");
    assert!(gradlab(&["run", net.to_str().unwrap(), "--out", run.to_str().unwrap()]).status.success());
    let out = dir.join("ls");
    let p = |f: &str| params.join(f).to_str().unwrap().to_string();
    let o = gradlab(&[
        "landscape",
        "--network",
        net.to_str().unwrap(),
        "--params",
        &p("seed-0.safetensors"),
        "--start",
        &p("seed-0-iter-0.safetensors"),
        "--other",
        &p("seed-1.safetensors"),
        "--points",
        "21",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let grid = std::fs::read_to_string(out.join("grid.csv")).unwrap();
    assert_eq!(grid.lines().count(), 1 + 21 * 21);
    // The centre of the plane is the saved parameters: its loss is the run's last loss of seed 0
    // (a converged seed stops before its next update, so its file holds what was evaluated last).
    let summary: serde_json::Value = serde_json::from_slice(&std::fs::read(run.join("summary.json")).unwrap()).unwrap();
    assert!(summary["cells"][0]["iterations"][0].is_u64(), "seed 0 converged");
    let metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let last: f64 = metrics
        .lines()
        .rfind(|l| l.split(',').nth(1) == Some("0"))
        .unwrap()
        .split(',')
        .nth(3)
        .unwrap()
        .parse()
        .unwrap();
    let centre = grid.lines().find(|l| l.starts_with("0,0,")).unwrap();
    let at: f64 = centre.split(',').nth(2).unwrap().parse().unwrap();
    assert!((at - last).abs() <= 1e-6 * last, "plane centre {at} vs the run's last loss {last}");
    let s: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    let lines = s["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 2);
    assert!((lines[0]["loss_end"].as_f64().unwrap() - at).abs() < 1e-9, "the start line ends at the parameters");
    for f in ["plane.png", "plane-surface.svg", "lines.csv", "lines.png", "directions.safetensors"] {
        assert!(out.join(f).is_file(), "missing {f}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn filter_normalised_directions_have_the_parameters_row_norms() {
    use gradlab::experiments::net_landscape::{filter_normalized, parameters};
    let lab = lab::parse(Path::new("x.toml"), SMALL_NET).unwrap();
    let (data, _) = lab::load_data(&lab.cells[0].file.data).unwrap();
    let mut net = lab.build(0, &data, 1).unwrap();
    net.init(&gradlab::models::Init::seeds(2, 1, gradlab::init::WeightInit::HeNormal, 0.3));
    let theta = parameters(&net);
    let d = filter_normalized(&net, &theta, 7, false);
    for ((name, id, kind), (t, dv)) in net.params.iter().zip(theta.iter().zip(&d)) {
        if *kind == gradlab::models::ParamKind::Bias {
            assert!(dv.iter().all(|v| *v == 0.0), "{name}: biases stay");
            continue;
        }
        let rows = net.graph.shape(*id)[1];
        let per = t.len() / rows;
        for (tr, dr) in t.chunks(per).zip(dv.chunks(per)) {
            let n = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
            assert!((n(tr) - n(dr)).abs() <= 1e-5 * n(tr), "{name}: row norms {} vs {}", n(tr), n(dr));
        }
    }
}

#[test]
fn the_presets_have_the_reports_parameter_names_and_counts() {
    let fc = Fc73::new(Activation::Sigmoid, LossKind::L2).build::<f32>(3, 64).unwrap();
    let names: Vec<&str> = fc.params.iter().map(|(n, ..)| n.as_str()).collect();
    assert_eq!(names, ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]);
    assert_eq!(fc.graph.param_count(), 73);
    let ps = Fc73 { per_sample_bias: true, ..Fc73::new(Activation::Relu, LossKind::Ce) };
    assert_eq!(ps.build::<f32>(3, 64).unwrap().graph.param_count(), 73 - 5 + 64 * 5);
    let line = Cnn::new(CnnTask::Line, Activation::Relu).build::<f32>(2, 4).unwrap();
    assert_eq!(line.graph.param_count(), 784 + 16 + 6272 + 8 + 129);
    let det = Cnn { untied_conv_bias: true, ..Cnn::new(CnnTask::Detect, Activation::Relu) };
    let det = det.build::<f32>(2, 4).unwrap();
    assert_eq!(det.graph.param_count(), 784 + 1600 + 6272 + 128 + 129 * 2);
    let names: Vec<&str> = det.params.iter().map(|(n, ..)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "conv1.weight",
            "conv1.bias",
            "conv2.weight",
            "conv2.bias",
            "cls.weight",
            "cls.bias",
            "reg.weight",
            "reg.bias"
        ]
    );
    let layers: Vec<&str> = det.layers.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(layers, ["conv1", "conv2", "cls", "reg"]);
}

#[test]
fn an_unknown_preset_is_named_with_a_suggestion() {
    let e = gradlab::experiments::presets::text("fc37").unwrap_err().to_string();
    assert!(e.contains("fc37") && e.contains("fc73"), "{e}");
}

/// Santurkar et al.'s measures along the gradient (`gradient_line`): measuring changes no number
/// of training (BatchNorm's running estimates and the parameters put back), and at iteration 1
/// the columns equal the loss range, largest gradient change and effective β recomputed here
/// in f64 from each seed's initial parameters on the full batch.
#[test]
fn the_line_along_the_gradient_is_what_it_says_and_changes_no_number() {
    use gradlab::training::gradient_line::LineOptions;
    let text = "[data]\ngenerator = \"digits\"\nscale = 0.0625\n[network]\nlayers = [{ type = \"dense\", units = 16 }, { type = \"batchnorm\", act = \"relu\" }, { type = \"dense\", units = 10 }]\nloss = \"softmax_ce\"\n[init]\nweights = \"he_uniform\"\n[optim]\nname = \"sgd\"\nlr = 0.2\n[train]\nseeds = 3\nmax_iters = 25\nstop = \"none\"\n";
    let mut lab_ = lab::parse(Path::new("line.toml"), text).unwrap();
    let (data, _) = lab_.data(0).unwrap();
    let plain = lab_.run_cell(0, &data, None, &mut |_, _| true).unwrap();
    lab_.cells[0].opts.gradient_line = Some(LineOptions::new(4));
    let measured = lab_.run_cell(0, &data, None, &mut |_, _| true).unwrap();
    for s in 0..3 {
        for col in ["loss", "accuracy"] {
            let bits = |r: &Run| r.column(s, col).iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&plain), bits(&measured), "seed {s}: {col}");
        }
        let every: Vec<bool> = measured.column(s, "line_beta").iter().map(|v| v.is_finite()).collect();
        assert!(every.iter().enumerate().all(|(i, &m)| m == (i % 4 == 0)), "measured every 4 rows: {every:?}");
    }
    // Iteration 1 again, by hand in f64: θ − η·g for η = {¼, ½, 1, 2, 4}·lr on the full batch.
    let spec = &lab_.cells[0].file.network;
    for s in 0..3u64 {
        let mut net = gradlab::models::spec::build::<f64>(spec, &data, 1, data.n).unwrap();
        net.init(&gradlab::models::Init::seeds(s, 1, lab_.cells[0].opts.init.weights, 0.0));
        let all: Vec<usize> = (0..data.n).collect();
        net.feed(&data, &all);
        let states: Vec<(gradlab::engine::NodeId, Vec<f64>)> =
            net.buffers.iter().map(|b| (b.1, net.graph.value(b.1).to_vec())).collect();
        let at = |net: &mut gradlab::models::Net<f64>| {
            for (id, v) in &states {
                net.graph.value_mut(*id).copy_from_slice(v);
            }
            net.graph.set_training(true);
            net.graph.forward();
            net.graph.backward(net.loss);
            let g: Vec<f64> = net.params.iter().flat_map(|p| net.graph.grad(p.1).to_vec()).collect();
            (net.graph.value(net.loss)[0], g)
        };
        let theta: Vec<Vec<f64>> = net.params.iter().map(|p| net.graph.value(p.1).to_vec()).collect();
        let (l0, g0) = at(&mut net);
        let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
        let (mut hi, mut lo, mut change, mut beta) = (l0, l0, 0f64, 0f64);
        for k in [0.25, 0.5, 1.0, 2.0, 4.0] {
            let eta = k * 0.2;
            let mut off = 0;
            for (p, t) in net.params.clone().iter().zip(&theta) {
                let v = net.graph.value_mut(p.1);
                for (i, x) in v.iter_mut().enumerate() {
                    *x = t[i] - eta * g0[off + i];
                }
                off += t.len();
            }
            let (l, g) = at(&mut net);
            (hi, lo) = (hi.max(l), lo.min(l));
            let d: Vec<f64> = g.iter().zip(&g0).map(|(a, b)| a - b).collect();
            change = change.max(norm(&d));
            beta = beta.max(norm(&d) / (eta * norm(&g0)));
        }
        let got = |c: &str| measured.column(s as usize, c)[0] as f64;
        for (c, want) in [("line_loss_range", hi - lo), ("line_grad_change", change), ("line_beta", beta)] {
            assert!((got(c) - want).abs() <= 2e-3 * want.abs(), "seed {s} {c}: {} vs {want}", got(c));
        }
    }
}

/// `gradlab study batchnorm` writes its table, figure and computed sentences; BatchNorm goes
/// before every hidden activation of the presets (and not after the output); bad tasks are
/// named.
#[test]
fn the_batchnorm_study_writes_its_table_and_inserts_batchnorm_where_it_belongs() {
    use gradlab::experiments::batchnorm::with_batchnorm;
    use gradlab::models::spec::Layer;
    let detect = gradlab::experiments::presets::lab("detect").unwrap();
    let bn = with_batchnorm(&detect.cells[0].file.network);
    let kinds: Vec<&str> = bn
        .layers
        .iter()
        .map(|l| match l {
            Layer::Conv2d { act: None, .. } => "conv",
            Layer::Batchnorm { act: Some(_), .. } => "bn+act",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["conv", "bn+act", "conv", "bn+act"], "{:?}", bn.layers);
    let out = tmp("bnstudy");
    let o = gradlab(&[
        "study",
        "batchnorm",
        "--seeds",
        "2",
        "--max-iters",
        "30",
        "--every",
        "5",
        "--tasks",
        "line,digits",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    let rows = s["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 4);
    for r in rows {
        for m in ["loss_range", "grad_change", "beta"] {
            let v = r[m][1].as_f64().unwrap();
            assert!(v > 0.0 && v.is_finite(), "{r}");
        }
    }
    assert_eq!(s["claims"].as_array().unwrap().len(), 2);
    for f in ["batchnorm.md", "batchnorm.png", "line/metrics.csv", "digits/curves.png"] {
        assert!(out.join(f).is_file(), "{f}");
    }
    let bad = gradlab(&["study", "batchnorm", "--tasks", "digts", "--out", out.join("x").to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("did you mean `digits`"), "{}", stderr(&bad));
}

/// The Python package's keyword overrides: a short name is the one section field it names, a
/// dotted key is taken as it is, a misspelt one gets a suggestion; the result goes through the
/// same validator as a file (`parse_doc`).
#[test]
fn short_keys_name_one_field_and_parse_doc_validates_like_a_file() {
    assert_eq!(lab::dotted_key("lr").unwrap(), "optim.lr");
    assert_eq!(lab::dotted_key("seeds").unwrap(), "train.seeds");
    assert_eq!(lab::dotted_key("batch").unwrap(), "data.batch");
    assert_eq!(lab::dotted_key("std").unwrap(), "init.std");
    assert_eq!(lab::dotted_key("network.layers.0.act").unwrap(), "network.layers.0.act");
    let e = lab::dotted_key("lrr").unwrap_err();
    assert!(e.contains("`lrr`") && e.contains("did you mean `lr`"), "{e}");
    let mut doc: toml::Table = gradlab::experiments::presets::text("fc73").unwrap().parse().unwrap();
    set_key(&mut doc, &lab::dotted_key("seeds").unwrap(), toml::Value::Integer(0)).unwrap();
    let e = lab::parse_doc(Path::new("<experiment>"), doc.clone()).unwrap_err().to_string();
    assert!(e.starts_with("<experiment>: field `train.seeds`"), "{e}");
    set_key(&mut doc, "train.seeds", toml::Value::Integer(3)).unwrap();
    let l = lab::parse_doc(Path::new("<experiment>"), doc).unwrap();
    assert_eq!(l.cells.len(), 2);
    assert!(l.cells.iter().all(|c| c.opts.seeds == 3));
}

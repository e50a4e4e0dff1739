//! Experiment files, sweeps and shards; the older `task = …` files, converted to network files.

use gradlab::experiments::{lab, legacy};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn gradlab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gradlab")).args(args).output().expect("runs")
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gradlab-sweep-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

const SMALL: &str = r#"
task = "fc"
[train]
seeds = 3
max_iters = 300
[sweep]
act = ["relu", "sigmoid"]
loss = ["ce", "l2"]
lr = [0.1, 0.3]
"#;

fn summary(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("summary.json")).unwrap()).unwrap()
}

#[test]
fn merged_shards_equal_the_unsharded_run() {
    let dir = tmp("shards");
    let file = dir.join("small.toml");
    std::fs::write(&file, SMALL).unwrap();
    let f = file.to_str().unwrap();
    let whole = dir.join("whole");
    assert!(gradlab(&["run", f, "--out", whole.to_str().unwrap()]).status.success());
    let mut shards = vec![];
    for i in 0..3 {
        let d = dir.join(format!("shard{i}"));
        let o = gradlab(&["run", f, "--shard", &format!("{i}/3"), "--out", d.to_str().unwrap()]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(summary(&d)["cells"].as_array().unwrap().len(), if i < 2 { 3 } else { 2 });
        shards.push(d.to_str().unwrap().to_string());
    }
    let merged = dir.join("merged");
    let mut args = vec!["merge"];
    args.extend(shards.iter().map(String::as_str));
    args.extend(["--out", merged.to_str().unwrap()]);
    assert!(gradlab(&args).status.success());
    let (w, m) = (summary(&whole), summary(&merged));
    assert_eq!(w["total_cells"], 8);
    assert_eq!(w["cells"], m["cells"], "same cells, same numbers");
    assert_eq!(m["complete"], true);
    assert_eq!(
        std::fs::read_to_string(whole.join("metrics.csv")).unwrap(),
        std::fs::read_to_string(merged.join("metrics.csv")).unwrap()
    );
    // A shard given twice is refused.
    let again = gradlab(&["merge", &shards[0], &shards[0], "--out", dir.join("twice").to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&again.stderr).contains("appears twice"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_old_files_name_the_file_and_the_key() {
    let dir = tmp("bad");
    let cases: &[(&str, &str)] = &[
        ("task = \"fc\"\n[train]\nseedz = 3\n", "unknown field `train.seedz`"),
        ("task = \"fc\"\n[sweep]\nlr = \"fast\"\n", "field `sweep.lr`: must be a list"),
        ("task = \"fc\"\n[train]\nseeds = \"many\"\n", "invalid type"),
        ("task = \"fc\"\n[sweep]\nact = [\"relu\", \"sigmod\"]\n", "did you mean `sigmoid`"),
        ("task = \"fc\"\n[sweep]\nlr = [0.1, 0.0]\n", "field `optim.lr`: must be a positive number, got 0"),
        ("task = \"fc\"\n[train]\nseeds = 0\n", "field `train.seeds`"),
        ("task = \"fc\"\n[train]\nmax_iters = 0\n", "field `train.max_iters`: must be at least 1"),
        ("task = \"line\"\n[sweep]\nloss = [\"ce\"]\n", "field `sweep.loss`: applies to task = \"fc\" only"),
        ("task = \"conv\"\n", "unknown task `conv`"),
        ("task = \"fc\"\n[sweep]\nloss = [\"mse\"]\n", "unknown loss `mse`"),
        ("task = \"fc\"\n[sweep]\nact = []\n", "field `sweep.act`: is an empty list"),
        ("task = \"fc\"\n[sweep]\nreduction = [\"avg\"]\n", "unknown reduction `avg` (mean, sum)"),
        ("task = \"landscape\"\n[landscape]\npoints = 50\n", "run `gradlab landscape --act"),
        ("task = \"fc\"\n[landscape]\npoints = 10\n", "unknown field `landscape`"),
        ("task = \"fc\"\n[train]\nsave_every = 5\n", "field `train.save_every`: needs train.save_params"),
    ];
    for (k, (text, msg)) in cases.iter().enumerate() {
        let file = dir.join(format!("case{k}.toml"));
        std::fs::write(&file, text).unwrap();
        let out = dir.join(format!("out{k}"));
        let o = gradlab(&["run", file.to_str().unwrap(), "--out", out.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(3), "case {k}: {err}");
        assert!(err.contains(msg) && err.contains(&format!("case{k}.toml")), "case {k}: expected `{msg}`: {err}");
        assert!(!out.exists() && !err.contains("panicked"), "case {k}: nothing is written");
    }
    let valid = dir.join("valid.toml");
    std::fs::write(&valid, "task = \"fc\"\n").unwrap();
    for shard in ["3/3", "1", "a/2", "0/0"] {
        let o = gradlab(&["run", valid.to_str().unwrap(), "--shard", shard, "--out", dir.join("x").to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2), "--shard {shard}");
        assert!(String::from_utf8_lossy(&o.stderr).contains("expected i/n"));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_example_files_describe_the_reports_settings() {
    use gradlab::experiments::lab::load;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples");
    let t1 = load(&root.join("table1.toml")).unwrap();
    assert_eq!(t1.cells.len(), 4);
    assert!(t1.cells.iter().all(|c| c.opts.optim.lr == 0.1 && c.opts.init_std() == Some(0.1) && c.opts.seeds == 32));
    let l2: Vec<&str> = t1.cells.iter().filter_map(|c| c.file.network.output.output_act.as_deref()).collect();
    assert_eq!(l2, ["sigmoid", "sigmoid"], "the two L2 cells put a sigmoid on the logit");
    let ps = load(&root.join("table1-per-sample-bias.toml")).unwrap();
    let net = ps.build(0, &ps.data(0).unwrap().0, 1).unwrap();
    assert_eq!(net.graph.param_count(), 73 - 5 + 5 * 64, "per-sample biases");
    let cnn = load(&root.join("cnn-leaky-vs-relu.toml")).unwrap();
    assert_eq!(cnn.cells.len(), 2);
    assert_eq!(cnn.cells[1].name, "network.layers.0.act=leaky_relu+network.layers.1.act=leaky_relu");
    let ex = load(&root.join("explosion.toml")).unwrap();
    assert_eq!(ex.cells.len(), 4);
    assert!(ex.cells.iter().all(|c| c.opts.optim.lr == 0.01 && c.opts.max_iters == 500), "detect's learning rate");
}

#[test]
fn an_old_file_runs_as_its_converted_network_file_and_says_so() {
    let dir = tmp("opts");
    let train = dir.join("train.toml");
    let text = format!(
        "task = \"fc\"\n[train]\nseeds = 2\nmax_iters = 30\nsave_params = \"{}\"\ntensorboard = \"{}\"\n[sweep]\nact = [\"relu\"]\nlr = [0.1, 0.2]\n",
        dir.join("params").display(),
        dir.join("tb").display()
    );
    std::fs::write(&train, text).unwrap();
    let out = dir.join("train");
    let o = gradlab(&["run", train.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("running it as this network file") && err.contains("[network]"), "{err}");
    assert!(dir.join("params/optim.lr=0.2/seed-1.safetensors").is_file());
    assert!(dir.join("tb/optim.lr=0.1/seed-0").is_dir());
    // The same as the network file it was shown as, saved and run.
    let shown = &err[err.find("# Converted").unwrap()..];
    let file = dir.join("converted.toml");
    std::fs::write(
        &file,
        shown
            .replace(dir.join("params").to_str().unwrap(), dir.join("p2").to_str().unwrap())
            .replace(dir.join("tb").to_str().unwrap(), dir.join("tb2").to_str().unwrap()),
    )
    .unwrap();
    let again = dir.join("again");
    assert!(gradlab(&["run", file.to_str().unwrap(), "--out", again.to_str().unwrap()]).status.success());
    assert_eq!(
        std::fs::read_to_string(out.join("metrics.csv")).unwrap(),
        std::fs::read_to_string(again.join("metrics.csv")).unwrap()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_absurd_sweep_is_refused_unless_yes() {
    let dir = tmp("absurd");
    let file = dir.join("huge.toml");
    std::fs::write(
        &file,
        "task = \"detect\"\n[train]\nseeds = 1000\nmax_iters = 100000\n[sweep]\nlr = [0.1, 0.2, 0.3]\n",
    )
    .unwrap();
    let out = dir.join("out");
    let o = gradlab(&["run", file.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--yes") && err.contains("hours"), "{err}");
    assert!(!out.exists(), "nothing is created for a refused sweep");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_old_table1_file_becomes_the_fc73_preset_with_a_joint_loss_axis() {
    let old = "task = \"fc\"\n[train]\nseeds = 4\nbias_init = 0.2\n[sweep]\nact = [\"relu\", \"sigmoid\"]\nloss = [\"ce\", \"l2\"]\nlr = [0.5]\n";
    let text = legacy::convert(Path::new("t.toml"), old).unwrap();
    let lab = lab::parse(Path::new("t.toml"), &text).unwrap();
    let names: Vec<&str> = lab.cells.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names.len(), 4, "{names:?}");
    assert_eq!(names[1], "network.layers.0.act=relu+network.loss=l2+network.output_act=sigmoid");
    let c = &lab.cells[1];
    assert_eq!((c.opts.seeds, c.opts.optim.lr, c.opts.init.bias), (4, 0.5, 0.2));
    assert_eq!(c.file.network.output.output_act.as_deref(), Some("sigmoid"));
    assert_eq!(lab.cells[2].file.network.output.loss.as_deref(), Some("sigmoid_ce"));
}

#[test]
fn an_old_cnn_file_sweeps_both_conv_activations_together() {
    let old = "task = \"detect\"\n[sweep]\nact = [\"relu\", \"tanh\"]\nreduction = [\"sum\"]\n";
    let lab = lab::parse(Path::new("d.toml"), &legacy::convert(Path::new("d.toml"), old).unwrap()).unwrap();
    assert_eq!(lab.cells.len(), 2);
    let n = &lab.cells[1].file.network;
    use gradlab::models::spec::Layer;
    let acts: Vec<Option<String>> = n
        .layers
        .iter()
        .map(|l| match l {
            Layer::Conv2d { act, .. } => act.clone(),
            _ => None,
        })
        .collect();
    assert_eq!(acts, [Some("tanh".to_string()), Some("tanh".to_string())]);
    assert_eq!(n.heads.as_ref().unwrap()[0].output.reduction, Some(gradlab::engine::Reduction::Sum));
    assert_eq!(lab.cells[1].opts.optim.lr, 0.01, "detect's learning rate from its preset");
}

#[test]
fn old_files_with_bad_keys_or_a_landscape_task_get_named_errors() {
    let e = legacy::convert(Path::new("x.toml"), "task = \"line\"\n[train]\nper_sample_bias = true\n").unwrap_err();
    assert!(e.to_string().contains("train.per_sample_bias"), "{e}");
    let e = legacy::convert(Path::new("x.toml"), "task = \"fc\"\n[sweep]\nact = []\n").unwrap_err();
    assert!(e.to_string().contains("sweep.act") && e.to_string().contains("empty"), "{e}");
    let e = legacy::convert(Path::new("x.toml"), "task = \"fc\"\nbogus = 1\n").unwrap_err();
    assert!(e.to_string().contains("bogus"), "{e}");
    let land = "task = \"landscape\"\n[landscape]\nrange = 1.0\n[sweep]\nact = [\"leaky_relu\"]\n";
    let e = legacy::convert(Path::new("l.toml"), land).unwrap_err().to_string();
    assert!(e.contains("gradlab landscape --act"), "{e}");
}

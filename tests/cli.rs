//! The binary, run as a user would: help, successful runs, and bad input with named errors and
//! distinct exit codes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn gradlab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gradlab")).args(args).output().expect("runs")
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gradlab-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn help_explains_every_option_with_its_default() {
    let o = gradlab(&["train", "fc", "--help"]);
    assert!(o.status.success());
    let h = String::from_utf8_lossy(&o.stdout);
    for needle in [
        "--seeds",
        "[default: 32; 1 with --init]",
        "--lr",
        "[default: 0.1]",
        "--init-std",
        "--max-iters",
        "[default: 10000]",
        "--reduction",
        "--per-sample-bias",
        "--data",
        "--out",
        "Exit codes",
    ] {
        assert!(h.contains(needle), "help lacks {needle}:\n{h}");
    }
    assert!(gradlab(&["--help"]).status.success());
    assert!(gradlab(&["table1", "--help"]).status.success());
}

#[test]
fn a_small_run_writes_every_output_whole() {
    let out = tmp("small");
    let o = gradlab(&[
        "train",
        "fc",
        "--act",
        "relu,sigmoid",
        "--loss",
        "ce",
        "--seeds",
        "3",
        "--max-iters",
        "40",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    for f in ["metrics.csv", "summary.json", "table1.md", "curves.svg", "curves.png"] {
        assert!(out.join(f).is_file(), "missing {f}");
    }
    let summary: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    let settings = summary["settings"].as_array().unwrap();
    assert_eq!(settings.len(), 2);
    assert_eq!(settings[0]["setting"], "relu+ce");
    assert_eq!(settings[0]["seeds"], 3);
    assert_eq!(settings[0]["iterations"].as_array().unwrap().len(), 3);
    assert_eq!(summary["complete"], true);
    let csv = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("setting,seed,iteration,loss,accuracy,max_abs_weight,dead_fraction_fc1,held_out_loss,held_out_accuracy")
    );
    let first: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(&first[..3], &["relu+ce", "0", "1"]);
    // 2 settings × 3 seeds × at most 40 iterations, each seed at least 1 row.
    let rows = csv.lines().count() - 1;
    assert!((6..=240).contains(&rows), "{rows} rows");
    assert!(std::fs::read(out.join("curves.png")).unwrap().starts_with(b"\x89PNG"));
    // Refuses to mix with an earlier run unless --force.
    let again = gradlab(&["train", "fc", "--seeds", "1", "--max-iters", "2", "--out", out.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(2));
    assert!(stderr(&again).contains("not empty") && stderr(&again).contains("--force"));
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn bad_options_exit_2_and_say_what_to_do() {
    let out = tmp("bad");
    let o = out.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["--act", "sigmod"], "did you mean `sigmoid`"),
        (&["--seeds", "0"], "--seeds (key `train.seeds`) must be at least 1"),
        (&["--lr", "-1"], "--lr (key `optim.lr`) must be a positive number"),
        (&["--lr", "0"], "--lr (key `optim.lr`) must be a positive number"),
        (&["--max-iters", "0"], "--max-iters (key `train.max_iters`) must be at least 1"),
        (&["--loss", "mse"], "invalid value 'mse'"),
        (&["--reduction", "avg"], "invalid value 'avg'"),
    ];
    for (extra, msg) in cases {
        let mut args = vec!["train", "fc", "--out", o];
        args.extend_from_slice(extra);
        let r = gradlab(&args);
        assert_eq!(r.status.code(), Some(2), "{extra:?}: {}", stderr(&r));
        assert!(stderr(&r).contains(msg), "{extra:?}: {}", stderr(&r));
    }
    assert!(!out.exists(), "nothing is created on a usage error");
}

fn write_npy(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn bad_data_exits_3_and_names_the_file_and_problem() {
    use gradlab::data::npy::{f64_npy, npy_bytes};
    let root = tmp("data");
    let out = root.join("out");
    let imgs = root.join("random/random_imgs.npy");
    let labs = root.join("random/random_labs.npy");
    let run = || {
        gradlab(&[
            "train",
            "fc",
            "--seeds",
            "1",
            "--max-iters",
            "1",
            "--data",
            root.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
    };
    let expect = |o: Output, file: &Path, msg: &str| {
        assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
        let e = stderr(&o);
        assert!(
            e.contains(file.file_name().unwrap().to_str().unwrap()) && e.contains(msg),
            "expected `{msg}` about {}: {e}",
            file.display()
        );
    };
    std::fs::create_dir_all(&root).unwrap();
    expect(run(), &imgs, "not found");
    write_npy(&imgs, &f64_npy(&[2, 4, 4], &[0.5; 32]));
    expect(run(), &labs, "not found");
    write_npy(&labs, &f64_npy(&[3], &[0.0, 1.0, 1.0]));
    expect(run(), &labs, "3 labels for 2 images");
    write_npy(&labs, &f64_npy(&[2], &[0.0, 2.0]));
    expect(run(), &labs, "labels must be 0 or 1");
    write_npy(&imgs, &f64_npy(&[2, 5, 5], &[0.0; 50]));
    expect(run(), &imgs, "expected N×4×4");
    write_npy(&imgs, &f64_npy(&[2, 4, 4], &[f64::NAN; 32]));
    expect(run(), &imgs, "must be finite");
    write_npy(&imgs, &npy_bytes(&[2, 4, 4], ">f8", false, &[0u8; 256]));
    expect(run(), &imgs, "big-endian");
    write_npy(&imgs, &f64_npy(&[0, 4, 4], &[]));
    expect(run(), &imgs, "empty");
    write_npy(&imgs, b"not numpy");
    expect(run(), &imgs, "magic");
    assert!(!out.exists());
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn the_original_data_trains() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets/cis680-hw1");
    if !dir.is_dir() {
        eprintln!("skipped: ../shared/datasets/cis680-hw1 is absent (CI always has it)");
        return;
    }
    let out = tmp("orig");
    let o = gradlab(&[
        "train",
        "fc",
        "--act",
        "relu",
        "--loss",
        "ce",
        "--seeds",
        "4",
        "--data",
        dir.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let summary: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    // ReLU+CE memorises the random labels within the cap (JAX reference: median 930).
    assert_eq!(summary["settings"][0]["converged"], 4, "{summary}");
    assert!(summary["settings"][0]["median_iterations"].as_f64().unwrap() < 3000.0);
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn landscape_writes_figures_grid_and_summary() {
    let out = tmp("landscape");
    let o = gradlab(&[
        "landscape",
        "--act",
        "leaky_relu",
        "--range",
        "1",
        "--points",
        "30",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    for f in [
        "grid.csv",
        "summary.json",
        "summary.md",
        "heatmaps.png",
        "surfaces.svg",
        "output-surface.png",
        "dl2_dw-heatmap.svg",
    ] {
        assert!(out.join(f).is_file(), "missing {f}");
    }
    assert!(!out.join("ce-heatmap.png").exists(), "no CE figure for leaky ReLU");
    let csv = std::fs::read_to_string(out.join("grid.csv")).unwrap();
    assert_eq!(csv.lines().next(), Some("w,b,output,l2,dl2_dw,dl2_db,ce,dce_dw,dce_db"));
    assert_eq!(csv.lines().count(), 1 + 30 * 30);
    assert!(csv.lines().nth(1).unwrap().ends_with(",,,"), "CE columns empty");
    let summary: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["config"]["act"], "leaky_relu");
    assert!(summary["key_values"]["ce_at_probe"].is_null());
    std::fs::remove_dir_all(&out).unwrap();

    for (args, msg) in [
        (vec!["--points", "1"], "--points must be between"),
        (vec!["--w-range", "1,-1"], "A < B"),
        (vec!["--act", "sigmoidd"], "did you mean `sigmoid`"),
        (vec!["--range", "0"], "--range must be a positive number"),
    ] {
        let mut a = vec!["landscape", "--out", out.to_str().unwrap()];
        a.extend(args);
        let r = gradlab(&a);
        assert_eq!(r.status.code(), Some(2), "{a:?}");
        assert!(stderr(&r).contains(msg), "{a:?}: {}", stderr(&r));
    }
}

#[test]
fn cnn_commands_write_their_columns_and_studies_their_reports() {
    let out = tmp("detect");
    let o = gradlab(&[
        "train",
        "detect",
        "--act",
        "relu,leaky_relu",
        "--seeds",
        "2",
        "--max-iters",
        "3",
        "--untied-conv-bias",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let csv = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    assert_eq!(
        csv.lines().next(),
        Some(
            "setting,seed,iteration,loss,accuracy,cls_loss,reg_loss,cls_accuracy,reg_accuracy,max_abs_weight,dead_fraction_conv1,dead_fraction_conv2,held_out_loss,held_out_accuracy"
        )
    );
    assert_eq!(csv.lines().count(), 1 + 2 * 2 * 3);
    let summary: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["settings"][1]["setting"], "leaky_relu+untied");
    assert_eq!(summary["config"]["optim"]["lr"], 0.01, "detect's default learning rate");
    for f in ["curves.png", "weights.svg", "dead.png", "table.md"] {
        assert!(out.join(f).is_file(), "missing {f}");
    }
    std::fs::remove_dir_all(&out).unwrap();

    let out = tmp("explosion");
    let o = gradlab(&["study", "explosion", "--seeds", "2", "--max-iters", "2", "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let summary: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    let settings = summary["tasks"][0]["settings"].as_array().unwrap();
    let names: Vec<&str> = settings.iter().map(|s| s["setting"].as_str().unwrap()).collect();
    assert_eq!(names, ["relu", "relu+sum", "relu+std1", "relu+sum+clip1", "relu+std1+clip1"]);
    assert!(
        out.join("line/metrics.csv").is_file()
            && out.join("detect/weights.png").is_file()
            && out.join("table.md").is_file()
    );
    std::fs::remove_dir_all(&out).unwrap();

    let out = tmp("lvr");
    let o = gradlab(&["study", "leaky-vs-relu", "--seeds", "3", "--max-iters", "2", "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let summary: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["comparisons"].as_array().unwrap().len(), 2);
    assert!(summary["comparisons"][0]["p_value"].as_f64().unwrap() <= 1.0);
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn reproduce_quick_writes_a_complete_parseable_report() {
    let out = tmp("reproduce");
    let o = gradlab(&[
        "reproduce",
        "--quick",
        "--seeds",
        "2",
        "--cnn-iters",
        "20",
        "--explosion-iters",
        "10",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let results: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(results["seeds"], 2);
    assert_eq!(results["task2_fc"]["settings"].as_array().unwrap().len(), 5);
    assert_eq!(results["task4_leaky_vs_relu"].as_array().unwrap().len(), 2);
    assert!(results["task1_landscape"]["key_values"]["dl2_dw_fraction_of_max"].as_f64().unwrap() < 1e-3);
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>") && html.contains("<svg") && !html.contains("<script"));
    for section in ["Task 1", "Task 2", "Task 3", "Task 4", "Differences from the original report", "memorise"] {
        assert!(html.contains(section), "report lacks {section}");
    }
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    // Every figure the markdown references exists.
    for line in md.lines().filter(|l| l.starts_with("![")) {
        let path = line.split("](").nth(1).unwrap().trim_end_matches(')');
        assert!(out.join(path).is_file(), "missing figure {path}");
    }
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn ctrl_c_stops_at_an_iteration_boundary_and_writes_partial_outputs() {
    let out = tmp("sigint");
    let child = Command::new(env!("CARGO_BIN_EXE_gradlab"))
        // A learning rate this small never reaches 100%: the run goes on until interrupted.
        .args(["train", "fc", "--lr", "1e-9", "--seeds", "4", "--max-iters", "100000000", "--out"])
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("runs");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let killed = Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("kill runs");
    assert!(killed.success());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    assert!(stderr(&o).contains("interrupted"));
    let summary: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["complete"], false);
    let csv = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    assert!(csv.lines().count() > 1000, "rows up to the interruption are kept");
    assert!(csv.ends_with('\n'), "the CSV is whole");
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn tensorboard_event_files_hold_every_metric_with_valid_crcs() {
    use gradlab::report::tensorboard::read_scalars;
    let out = tmp("tb-out");
    let tb = tmp("tb");
    let o = gradlab(&[
        "train",
        "detect",
        "--seeds",
        "2",
        "--max-iters",
        "3",
        "--out",
        out.to_str().unwrap(),
        "--tensorboard",
        tb.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let csv = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    for seed in ["0", "1"] {
        let dir = tb.join("relu").join(format!("seed-{seed}"));
        let file = std::fs::read_dir(&dir).unwrap().next().unwrap().unwrap().path();
        assert!(file.file_name().unwrap().to_str().unwrap().starts_with("events.out.tfevents."));
        let scalars = read_scalars(&std::fs::read(&file).unwrap()).unwrap();
        // Every finite metric of every iteration, equal to the CSV's value.
        for row in csv.lines().skip(1).filter(|l| l.split(',').nth(1) == Some(seed)) {
            let cells: Vec<&str> = row.split(',').collect();
            let step: i64 = cells[2].parse().unwrap();
            for (col, cell) in header.iter().zip(&cells).skip(3) {
                let v: f32 = cell.parse().unwrap();
                let found = scalars.iter().find(|(s, t, _)| *s == step && t == col).map(|x| x.2);
                // Held-out columns are NaN between evaluations; TensorBoard gets finite values only.
                assert_eq!(found, v.is_finite().then_some(v), "seed {seed} step {step} {col}");
            }
        }
        // The probes: scalars per layer, histograms at the first probe (iteration 1) and the last.
        use gradlab::report::tensorboard::{Logged, read_events};
        let events = read_events(&std::fs::read(&file).unwrap()).unwrap();
        assert!(scalars.iter().any(|(s, t, _)| *s == 1 && t == "probe/conv1/grad_rms"));
        let hist_steps: Vec<i64> = events
            .iter()
            .filter_map(|l| match l {
                Logged::Histogram(s, t, h) if t == "hist/conv2/activation" => {
                    assert!(h.num > 0.0 && h.bucket.iter().sum::<f64>() == h.num);
                    Some(*s)
                }
                _ => None,
            })
            .collect();
        assert_eq!(hist_steps, [1, 2], "first probe and the last one (iteration 2; 3 is never trained from)");
    }
    std::fs::remove_dir_all(&out).unwrap();
    std::fs::remove_dir_all(&tb).unwrap();
}

#[test]
fn more_bad_inputs_get_named_errors_and_exit_codes() {
    use gradlab::data::npy::{f64_npy, npy_bytes};
    let root = tmp("more");
    std::fs::create_dir_all(root.join("detection")).unwrap();
    let write = |name: &str, bytes: Vec<u8>| std::fs::write(root.join("detection").join(name), bytes).unwrap();
    write("detection_imgs.npy", f64_npy(&[2, 16, 16], &[0.0; 512]));
    write("detection_labs.npy", f64_npy(&[2], &[0.0, 1.0]));
    write("detection_width.npy", f64_npy(&[2], &[3.0, 0.0]));
    let out = root.join("out");
    let run = |extra: &[&str]| {
        let mut a = vec!["train", "detect", "--seeds", "1", "--max-iters", "1", "--data", root.to_str().unwrap()];
        a.extend_from_slice(extra);
        gradlab(&a)
    };
    let o = run(&["--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3));
    assert!(
        stderr(&o).contains("detection_width.npy") && stderr(&o).contains("widths must be positive"),
        "{}",
        stderr(&o)
    );
    write("detection_width.npy", f64_npy(&[2], &[3.0, 2.0]));
    for (bytes, msg) in [
        (npy_bytes(&[2, 16, 16], "<f8", true, &[0u8; 4096]), "Fortran"),
        (npy_bytes(&[2, 16, 16], "<c8", false, &[0u8; 4096]), "unsupported dtype"),
        (f64_npy(&[2, 16, 16], &[0.0; 512])[..200].to_vec(), "truncated"),
    ] {
        write("detection_imgs.npy", bytes);
        let o = run(&["--out", out.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(3), "{msg}: {}", stderr(&o));
        assert!(stderr(&o).contains("detection_imgs.npy") && stderr(&o).contains(msg), "{msg}: {}", stderr(&o));
    }
    write("detection_imgs.npy", f64_npy(&[2, 16, 16], &[0.0; 512]));
    // --out is a file: a usage error. --out below a file: the file system refuses (exit 4).
    let file = root.join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let o = run(&["--out", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("exists and is not a directory"));
    let o = run(&["--out", file.join("sub").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(stderr(&o).contains("a-file/sub"));
    // The data are fine otherwise: a run works.
    let o = run(&["--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn study_samples_writes_its_measures_and_names_bad_tasks() {
    let out = tmp("study-samples");
    let o = gradlab(&[
        "study",
        "samples",
        "--tasks",
        "random",
        "--seeds",
        "3",
        "--ratios",
        "0.5",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["complete"], true);
    let task = &summary["tasks"][0];
    assert_eq!(task["task"], "random");
    let precision = task["noise_precision"].as_array().unwrap();
    assert!(precision.iter().all(|p| (0.0..=1.0).contains(&p[1].as_f64().unwrap())));
    for f in
        ["samples.md", "random/sample_measures.csv", "random/data-map-base.png", "random-noise/sample_measures.json"]
    {
        assert!(out.join(f).exists(), "missing {f}");
    }
    let csv = std::fs::read_to_string(out.join("random/sample_measures.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 4 * 64, "3 seeds and the mean, 64 samples each");
    assert!(csv.lines().next().unwrap().ends_with("learned_at,cscore"));
    let o = gradlab(&["study", "samples", "--tasks", "randm", "--out", tmp("study-samples-bad").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("did you mean `random`"), "{}", stderr(&o));
    let _ = std::fs::remove_dir_all(&out);
}

//! Hostile input (issue 36): each case the exit code or HTTP status, the message's key words,
//! and that nothing was left half-written — and for the server, that it still answers after.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use gradlab::serve::{ServeConfig, Server, start};

#[path = "common/http.rs"]
mod http_client;

fn gradlab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gradlab")).args(args).output().expect("runs")
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gradlab-hostile-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A network file `text` run with `gradlab run` into a fresh `out`: (exit code, stderr, out).
fn run_file(name: &str, text: &str) -> (i32, String, PathBuf) {
    let dir = tmp(name);
    let file = dir.join("net.toml");
    std::fs::write(&file, text).unwrap();
    let out = dir.join("out");
    let o = gradlab(&["run", file.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    (o.status.code().unwrap_or(-1), String::from_utf8_lossy(&o.stderr).into_owned(), out)
}

/// No file under `dir` (if it exists), so nothing half-written.
fn empty_or_absent(dir: &Path) -> bool {
    !dir.exists() || std::fs::read_dir(dir).unwrap().next().is_none()
}

const DIGITS: &str = "[data]\ngenerator = \"digits\"\nscale = 0.0625\nbatch = 64\n";

#[test]
fn a_network_too_large_for_memory_is_a_named_error_before_any_allocation() {
    let text = format!(
        "{DIGITS}[network]\nlayers = [ {{ type = \"dense\", units = 100000000, act = \"relu\" }}, {{ type = \"dense\", units = 10 }} ]\nloss = \"softmax_ce\"\n[train]\nseeds = 2\nmax_iters = 2\n"
    );
    let (code, err, out) = run_file("huge", &text);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("network") && err.contains("memory budget") && err.contains("GB"), "{err}");
    assert!(!err.contains("panicked") && !err.contains("memory allocation"), "{err}");
    assert!(empty_or_absent(&out));
}

#[test]
fn the_memory_budget_is_the_users_to_set() {
    // Fine at the default budget, refused at 1 MB.
    let dir = tmp("budget");
    let file = dir.join("net.toml");
    std::fs::write(
        &file,
        format!(
            "{DIGITS}[network]\nlayers = [ {{ type = \"dense\", units = 4096, act = \"relu\" }}, {{ type = \"dense\", units = 10 }} ]\nloss = \"softmax_ce\"\n[train]\nseeds = 2\nmax_iters = 2\n"
        ),
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_gradlab"))
        .args(["run", file.to_str().unwrap(), "--out", dir.join("out").to_str().unwrap()])
        .env("GRADLAB_MEMORY", "1M")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(err.contains("memory budget of 1.0 MB"), "{err}");
}

#[test]
fn sweeps_whose_cell_count_overflows_are_refused_not_wrapped() {
    let base = format!(
        "{DIGITS}[network]\nlayers = [ {{ type = \"dense\", units = 4 }} ]\nloss = \"softmax_ce\"\n[train]\nseeds = 1\nmax_iters = 1\n[sweep]\n"
    );
    let axis = |key: &str, n: usize| format!("\"{key}\" = [{}]\n", vec!["0.1"; n].join(", "));
    // Four axes of 65 536 values: 2⁶⁴ cells, which wrap to 0 in unchecked arithmetic.
    let four = base.clone()
        + &axis("optim.lr", 65536)
        + &axis("optim.momentum", 65536)
        + &axis("init.bias", 65536)
        + &axis("init.std", 65536);
    let (code, err, out) = run_file("sweep-wrap", &four);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("sweep") && err.contains("65536 × 65536 × 65536 × 65536") && err.contains("beyond"), "{err}");
    assert!(empty_or_absent(&out));
    let (code, err, _) = run_file("sweep-big", &(base + &axis("optim.lr", 400) + &axis("init.bias", 400)));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("160000") || err.contains("400 × 400"), "{err}");
}

#[test]
fn a_swept_value_with_a_dot_gives_each_cell_its_own_figures() {
    let text = format!(
        "{DIGITS}[network]\nlayers = [ {{ type = \"dense\", units = 8, act = \"relu\" }}, {{ type = \"dense\", units = 10 }} ]\nloss = \"softmax_ce\"\n[train]\nseeds = 1\nmax_iters = 3\nprobe_every = 1\n[sweep]\n\"optim.lr\" = [0.1, 0.5]\n"
    );
    let (code, err, out) = run_file("sweep-dot", &text);
    assert_eq!(code, 0, "{err}");
    let names: Vec<String> =
        std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    for lr in ["0.1", "0.5"] {
        assert!(
            names.iter().any(|n| n.starts_with("histograms-") && n.ends_with(&format!("lr={lr}.png"))),
            "no figure for lr {lr}: {names:?}"
        );
    }
}

fn server(runs: &Path) -> Server {
    start(ServeConfig { host: "127.0.0.1".parse().unwrap(), port: 0, runs: runs.to_path_buf(), data: vec![] }).unwrap()
}

fn post(s: &Server, path: &str, body: &str) -> (u16, String) {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], s.addr.port()));
    let (status, _, raw) = http_client::request(addr, "POST", path, Some(body), &[]);
    (status, String::from_utf8_lossy(&raw).into_owned())
}

fn still_answers(s: &Server) {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], s.addr.port()));
    let (status, _, _) = http_client::request(addr, "GET", "/api/presets", None, &[]);
    assert_eq!(status, 200, "the server still answers");
}

fn fc73_text(iters: usize) -> String {
    let text = include_str!("../examples/networks/fc73.toml");
    text.split("[sweep]")
        .next()
        .unwrap()
        .replace("seeds = 32", "seeds = 2")
        .replace("max_iters = 10000", &format!("max_iters = {iters}"))
}

#[test]
fn no_request_ends_the_server() {
    let runs = tmp("serve-runs");
    let s = server(&runs);
    // A pace too small (or not a number) for a Duration: 400, named.
    for pace in ["1e-300", "-1", "0"] {
        let body = format!("{{\"toml\": {}, \"pace\": {pace}}}", serde_json::to_string(&fc73_text(5)).unwrap());
        let (status, text) = post(&s, "/api/runs", &body);
        assert_eq!(status, 400, "pace {pace}: {text}");
        assert!(text.contains("pace"), "{text}");
        still_answers(&s);
    }
    // A pace control on a running run.
    let body = serde_json::json!({ "toml": fc73_text(100_000), "pace": 50.0 }).to_string();
    let (status, text) = post(&s, "/api/runs", &body);
    assert_eq!(status, 201, "{text}");
    let id = serde_json::from_str::<serde_json::Value>(&text).unwrap()["id"].as_str().unwrap().to_string();
    let (status, text) = post(&s, &format!("/api/runs/{id}/control"), "{\"action\": \"pace\", \"per_second\": 1e-300}");
    assert_eq!(status, 400, "{text}");
    still_answers(&s);
    let (status, _) = post(&s, &format!("/api/runs/{id}/control"), "{\"action\": \"stop\"}");
    assert_eq!(status, 200);
    // A network of 25 GB posted to validation: a named 400, no allocation.
    let huge = fc73_text(5).replace("units = 4", "units = 100000000");
    assert!(huge.contains("100000000"), "the preset has a layer of 4 units");
    let (status, text) = post(&s, "/api/validate", &serde_json::json!({ "toml": huge }).to_string());
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("memory budget"), "{text}");
    still_answers(&s);
}

/// Waits (up to 10 s) until run `id` no longer trains (one run at a time per server).
fn finished(s: &Server, id: &str) {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], s.addr.port()));
    let t = std::time::Instant::now();
    while t.elapsed().as_secs() < 10 {
        let (_, _, raw) = http_client::request(addr, "GET", &format!("/api/runs/{id}"), None, &[]);
        if !String::from_utf8_lossy(&raw).contains("\"running\"") {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("run {id} still running after 10 s");
}

#[test]
fn two_servers_sharing_a_runs_directory_never_share_a_run() {
    let runs = tmp("serve-shared");
    let (a, b) = (server(&runs), server(&runs));
    let body = serde_json::json!({ "toml": fc73_text(3) }).to_string();
    let mut ids = std::collections::BTreeSet::new();
    for _ in 0..3 {
        for s in [&a, &b] {
            let (status, text) = post(s, "/api/runs", &body);
            assert_eq!(status, 201, "{text}");
            let id = serde_json::from_str::<serde_json::Value>(&text).unwrap()["id"].as_str().unwrap().to_string();
            assert!(ids.insert(id.clone()), "run id {id} given twice");
            finished(s, &id);
        }
    }
    assert_eq!(std::fs::read_dir(&runs).unwrap().count(), 6);
}

#[test]
fn counts_and_transforms_that_would_go_wrong_are_named_errors() {
    let dense = "[network]\nlayers = [ { type = \"dense\", units = 8, act = \"relu\" }, { type = \"dense\", units = 10 } ]\nloss = \"softmax_ce\"\n";
    let cases: Vec<(&str, String, i32, &[&str])> = vec![
        (
            "cscore-epochs",
            format!("{DIGITS}{dense}[train]\nseeds = 1\nmax_iters = 2\n[samples]\ncscore_ratios = [0.5]\ncscore_epochs = 9223372036854775000\n"),
            3,
            &["samples.cscore_epochs", "beyond"],
        ),
        (
            // Within the epoch limit, but the C-scores alone are days of training.
            "cscore-work",
            format!("{DIGITS}{dense}[train]\nseeds = 64\nmax_iters = 2\n[samples]\ncscore_ratios = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]\ncscore_epochs = 1000000\n"),
            2,
            &["hours", "--yes"],
        ),
        (
            "scale",
            format!("[data]\ngenerator = \"digits\"\nscale = 1e39\nbatch = 64\n{dense}[train]\nseeds = 1\nmax_iters = 2\n"),
            3,
            &["data.scale", "inf", "finite"],
        ),
        (
            "batchnorm-one",
            "[data]\ngenerator = \"digits\"\nbatch = 1\n[network]\nlayers = [ { type = \"dense\", units = 8 }, { type = \"batchnorm\", act = \"relu\" }, { type = \"dense\", units = 10 } ]\nloss = \"softmax_ce\"\n[train]\nseeds = 1\nmax_iters = 2\n".into(),
            3,
            &["data.batch", "BatchNorm"],
        ),
        (
            "name-comma",
            format!("{DIGITS}[network]\nlayers = [ {{ type = \"dense\", units = 8, act = \"relu\", name = \"a,b\" }}, {{ type = \"dense\", units = 10 }} ]\nloss = \"softmax_ce\"\n[train]\nseeds = 1\nmax_iters = 2\n"),
            3,
            &["network.layers.0.name", "plain name"],
        ),
        (
            "name-newline",
            format!("{DIGITS}[network]\nlayers = [ {{ type = \"dense\", units = 8, act = \"relu\", name = \"a\\nb\" }}, {{ type = \"dense\", units = 10 }} ]\nloss = \"softmax_ce\"\n[train]\nseeds = 1\nmax_iters = 2\n"),
            3,
            &["network.layers.0.name", "plain name"],
        ),
    ];
    let mut cases = cases;
    // Found by the property tests: a padding whose sizes wrapped in unchecked arithmetic.
    cases.push((
        "conv-padding",
        "[data]\ngenerator = \"line\"\n[network]\nlayers = [ { type = \"conv2d\", channels = 4, kernel = 3, padding = 4611686018427387904 }, { type = \"dense\", units = 1 } ]\nloss = \"sigmoid_ce\"\n[train]\nseeds = 1\nmax_iters = 2\n".into(),
        3,
        &["network.layers.0", "beyond any memory"],
    ));
    for (name, text, want, words) in cases {
        let (code, err, out) = run_file(name, &text);
        assert_eq!(code, want, "{name}: {err}");
        for w in words {
            assert!(err.contains(w), "{name}: `{w}` not in: {err}");
        }
        assert!(!err.contains("panicked"), "{name}: {err}");
        assert!(empty_or_absent(&out), "{name}: outputs left");
    }
}

#[test]
fn readers_refuse_devices_and_read_what_spreadsheets_write() {
    // `--params /dev/zero` grew a gigabyte a second: a device is not a parameters file.
    #[cfg(unix)]
    {
        let dir = tmp("devzero");
        let net = dir.join("fc73.toml");
        std::fs::write(&net, include_str!("../examples/networks/fc73.toml")).unwrap();
        let o = gradlab(&[
            "hessian",
            net.to_str().unwrap(),
            "--params",
            "/dev/zero",
            "--out",
            dir.join("out").to_str().unwrap(),
        ]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(3), "{err}");
        assert!(err.contains("/dev/zero") && err.contains("not a regular file"), "{err}");
        assert!(empty_or_absent(&dir.join("out")));
    }
    // A CSV with a UTF-8 byte-order mark: its first column keeps its name; a missing CSV or
    // archive is bad input (3), as a missing .npy is, with no hint about the course layout.
    let dir = tmp("csv");
    let mut csv = String::from("\u{feff}x1,x2,label\n");
    for i in 0..20 {
        csv += &format!("{},{},{}\n", i as f32 * 0.1, 1.0 - i as f32 * 0.1, i % 2);
    }
    std::fs::write(dir.join("t.csv"), csv).unwrap();
    let text = |x: &str| {
        format!(
            "[data]\nx = \"{0}/{x}\"\ny = \"{0}/t.csv:label\"\n[network]\nlayers = [{{ type = \"dense\", units = 2 }}]\nloss = \"softmax_ce\"\n[train]\nseeds = 1\nmax_iters = 2\n",
            dir.display()
        )
    };
    let (code, err, _) = run_file("csv-bom", &text("t.csv:x1,x2"));
    assert_eq!(code, 0, "{err}");
    for missing in ["none.csv:x1", "none.npz:x", "none.npy"] {
        let (code, err, out) = run_file("missing", &text(missing));
        assert_eq!(code, 3, "{missing}: {err}");
        assert!(err.contains("not found") && !err.contains("--data"), "{missing}: {err}");
        assert!(empty_or_absent(&out));
    }
}

#[test]
fn the_server_reads_no_file_outside_its_data_and_answers_only_its_own_name() {
    let root = tmp("serve-data");
    let (inside, outside) = (root.join("data"), root.join("outside"));
    std::fs::create_dir_all(&inside).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret.csv"), "SECRET-FIRST-LINE\n1\n").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(outside.join("secret.csv"), inside.join("link.csv")).unwrap();
    let s = start(ServeConfig {
        host: "127.0.0.1".parse().unwrap(),
        port: 0,
        runs: root.join("runs"),
        data: vec![inside.clone()],
    })
    .unwrap();
    #[cfg(unix)]
    for x in ["link.csv:a", "link.csv"] {
        let toml = format!(
            "[data]\nx = \"{0}/{x}\"\ny = \"{0}/{x}\"\n[network]\nlayers = [{{ type = \"dense\", units = 2 }}]\nloss = \"softmax_ce\"\n",
            inside.display()
        );
        let (status, text) = post(&s, "/api/validate", &serde_json::json!({ "toml": toml }).to_string());
        assert_eq!(status, 400, "{x}: {text}");
        assert!(text.contains("not in a data directory") && !text.contains("SECRET"), "{x}: {text}");
    }
    // DNS rebinding: another site's name in `Host` is refused on a loopback server.
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], s.addr.port()));
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    use std::io::{Read, Write};
    stream.write_all(b"GET /api/presets HTTP/1.1\r\nHost: evil.example:80\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    still_answers(&s);
}

/// An interrupted CNN run whose seeds run in parts says how many of the asked seeds ran
/// (it returned seeds 0 and 1 of 8 as if 2 had been asked).
#[test]
fn an_interrupted_run_says_how_many_of_its_seeds_ran() {
    let dir = tmp("interrupt");
    let file = dir.join("line.toml");
    let text = include_str!("../examples/networks/line.toml")
        .replace("seeds = 32", "seeds = 8")
        .replace("max_iters = 10000", "max_iters = 100000\nstop = \"none\"");
    assert!(text.contains("stop = \"none\""), "the preset has a cap line to extend");
    std::fs::write(&file, text).unwrap();
    let out = dir.join("out");
    let child = Command::new(env!("CARGO_BIN_EXE_gradlab"))
        .args(["run", file.to_str().unwrap(), "--out", out.to_str().unwrap()])
        .env("GRADLAB_THREADS", "2")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert!(Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap().success());
    let o = child.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(130), "{said}");
    let summary: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    let cell = &summary["cells"][0];
    assert_eq!(summary["complete"], false);
    assert_eq!(cell["seeds_asked"], 8, "{cell}");
    let ran = cell["seeds"].as_u64().unwrap();
    assert!((1..8).contains(&ran), "{cell}");
    assert!(said.contains(&format!("{} of its 8 seeds started", 8 - ran)), "{said}");
}

/// The README's promise: every full-batch classification run records the learning order,
/// `gradlab run` of a network file included.
#[test]
fn a_network_files_run_writes_its_learning_order() {
    let text = include_str!("../examples/networks/line.toml").replace("seeds = 32", "seeds = 3");
    let (code, err, out) = run_file("order", &text);
    assert_eq!(code, 0, "{err}");
    let csv = std::fs::read_to_string(out.join("samples.csv")).unwrap();
    assert_eq!(csv.lines().next(), Some("setting,seed,sample,learned_at"));
    assert_eq!(csv.lines().count(), 1 + 3 * 64, "a row per seed and sample");
    let order: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("learning_order.json")).unwrap()).unwrap();
    assert_eq!(order[0]["seeds"], 3);
    assert_eq!(order[0]["median_learned"].as_array().unwrap().len(), 64);
}

#[test]
fn outputs_stay_true_a_late_error_writes_nothing_and_force_leaves_nothing_stale() {
    let dir = tmp("late");
    let params = dir.join("params");
    let o = gradlab(&[
        "train",
        "fc",
        "--seeds",
        "1",
        "--max-iters",
        "2",
        "--save-params",
        params.to_str().unwrap(),
        "--out",
        dir.join("train").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let net = dir.join("fc73.toml");
    std::fs::write(&net, include_str!("../examples/networks/fc73.toml")).unwrap();
    let out = dir.join("landscape");
    let o = gradlab(&[
        "landscape",
        "--network",
        net.to_str().unwrap(),
        "--params",
        params.join("seed-0.safetensors").to_str().unwrap(),
        "--other",
        dir.join("missing.safetensors").to_str().unwrap(),
        "--points",
        "5",
        "--out",
        out.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(err.contains("missing.safetensors") && err.contains("not found"), "{err}");
    assert!(empty_or_absent(&out), "nothing written before the error");
    // --force replaces an earlier output whole: a file of the earlier run does not survive.
    let run_out = dir.join("train");
    std::fs::write(run_out.join("confusion.png"), b"stale").unwrap();
    let o =
        gradlab(&["train", "fc", "--seeds", "1", "--max-iters", "2", "--force", "--out", run_out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!run_out.join("confusion.png").exists(), "a stale file survived --force");
    assert!(run_out.join("summary.json").is_file());
    // A directory that is no earlier output is not cleared, even with --force.
    let mine = dir.join("mine");
    std::fs::create_dir_all(&mine).unwrap();
    std::fs::write(mine.join("thesis.tex"), b"precious").unwrap();
    let o = gradlab(&["train", "fc", "--seeds", "1", "--max-iters", "2", "--force", "--out", mine.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read(mine.join("thesis.tex")).unwrap(), b"precious");
}

/// Small messages: an archive member compressed with bzip2 is named as such (it read as
/// "missing"); a huge number is printed short; the server's neuron names its own parameters.
#[test]
fn small_messages_say_what_is_wrong() {
    let dir = tmp("small");
    // A stored .npz member, its compression method then set to 12 (bzip2) in both headers.
    let npy = {
        let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }";
        let pad = (64 - (10 + header.len() + 1) % 64) % 64;
        let mut h = format!("{header}{}", " ".repeat(pad));
        h.push('\n');
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        b.extend((h.len() as u16).to_le_bytes());
        b.extend(h.as_bytes());
        for v in [1f32, 2.0, 3.0, 4.0] {
            b.extend(v.to_le_bytes());
        }
        b
    };
    let mut zipped = std::io::Cursor::new(Vec::new());
    {
        let mut w = zip::ZipWriter::new(&mut zipped);
        let opts = zip::write::FileOptions::default().compression_method(zip::CompressionMethod::Stored);
        w.start_file("x.npy", opts).unwrap();
        std::io::Write::write_all(&mut w, &npy).unwrap();
        w.finish().unwrap();
    }
    let mut bytes = zipped.into_inner();
    let local = 0usize;
    assert_eq!(&bytes[local..local + 4], b"PK\x03\x04");
    bytes[local + 8] = 12;
    let central = bytes.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
    bytes[central + 10] = 12;
    std::fs::write(dir.join("a.npz"), &bytes).unwrap();
    let text = format!(
        "[data]\nx = \"{0}/a.npz:x\"\ny = \"{0}/a.npz:x\"\n[network]\nlayers = [{{ type = \"dense\", units = 2 }}]\nloss = \"l2\"\n",
        dir.display()
    );
    let (code, err, _) = run_file("bzip2", &text);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("array `x` cannot be read") && err.contains("deflate"), "{err}");
    // A learning rate of 1e300 is said as 1e300, not as 301 digits.
    let text = format!(
        "{DIGITS}[network]\nlayers = [ {{ type = \"dense\", units = 10 }} ]\nloss = \"softmax_ce\"\n[optim]\nmomentum = 1e300\n"
    );
    let (code, err, _) = run_file("big-number", &text);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("1e300") && !err.contains("00000000000"), "{err}");
    // The server's neuron: its own parameter names, a 400, and it still answers.
    let s = server(&tmp("neuron-runs"));
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], s.addr.port()));
    let (status, _, raw) = http_client::request(addr, "GET", "/api/neuron?act=sigmoid&w=1e300&b=0", None, &[]);
    let text = String::from_utf8_lossy(&raw);
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("w must be") && text.contains("1e300") && !text.contains("--"), "{text}");
    still_answers(&s);
}

//! `gradlab serve` over real HTTP: a server on an ephemeral port, spoken to with plain
//! HTTP/1.1 over a socket (no client library: what is tested is what goes over the wire).

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use gradlab::serve::{ServeConfig, Server, start};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gradlab-serve-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn server(runs: &Path, data: Vec<PathBuf>, host: &str) -> Server {
    start(ServeConfig { host: host.parse().unwrap(), port: 0, runs: runs.to_path_buf(), data }).unwrap()
}

fn local(s: &Server) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], s.addr.port()))
}

#[path = "common/http.rs"]
mod http_client;
use http_client::read_head;

/// One request; the response's status, head and body as text.
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> (u16, String, String) {
    let (status, head, raw) = http_client::request(addr, method, path, body, headers);
    (status, head, String::from_utf8(raw).unwrap())
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

fn experiment(toml: &str) -> String {
    serde_json::json!({ "toml": toml }).to_string()
}

/// The fc73 preset as the page gets it, with seeds and cap set.
fn fc73(seeds: usize, iters: usize) -> String {
    let text = include_str!("../examples/networks/fc73.toml");
    let body: String = text.split("[sweep]").next().unwrap().to_string();
    body.replace("seeds = 32", &format!("seeds = {seeds}"))
        .replace("max_iters = 10000", &format!("max_iters = {iters}"))
}

/// Reads a run's event stream to its end: the events' names and JSON payloads.
fn events(addr: SocketAddr, id: &str) -> Vec<(String, serde_json::Value)> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    write!(s, "GET /api/runs/{id}/events HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n").unwrap();
    let mut r = BufReader::new(s);
    let (status, head) = read_head(&mut r);
    assert_eq!(status, 200, "{head}");
    assert!(head.contains("content-type: text/event-stream"), "{head}");
    // The body is chunked; events are "event: NAME\ndata: JSON\n\n". Chunk-size lines are
    // skipped by reading line by line and keeping only event and data lines.
    let mut out = vec![];
    let mut name = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap() == 0 {
            break;
        }
        let line = line.trim_end();
        if let Some(n) = line.strip_prefix("event: ") {
            name = n.to_string();
        } else if let Some(d) = line.strip_prefix("data: ") {
            out.push((name.clone(), json(d)));
            if name == "end" {
                break;
            }
        }
    }
    out
}

fn start_run(addr: SocketAddr, toml: &str) -> String {
    let (status, _, body) = http(addr, "POST", "/api/runs", Some(&experiment(toml)), &[]);
    assert_eq!(status, 201, "{body}");
    json(&body)["id"].as_str().unwrap().to_string()
}

#[test]
fn a_run_streams_live_and_writes_exactly_what_gradlab_run_writes() {
    let runs = tmp("stream");
    let s = server(&runs, vec![], "127.0.0.1");
    let addr = local(&s);
    let (status, head, page) = http(addr, "GET", "/", None, &[]);
    assert_eq!(status, 200);
    assert!(head.contains("text/html") && page.contains("app.js"), "{head}");
    let (_, _, js) = http(addr, "GET", "/app.js", None, &[]);
    assert!(js.contains("EventSource"));

    let (status, _, presets) = http(addr, "GET", "/api/presets", None, &[]);
    assert_eq!(status, 200);
    let presets = json(&presets);
    let names: Vec<&str> = presets.as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    let compiled: Vec<&str> = gradlab::experiments::presets::PRESETS.iter().map(|p| p.0).collect();
    assert_eq!(names, compiled);
    assert!(names.contains(&"playground-spiral") && names.contains(&"digits-cnn"));
    // Each preset is one cell: a [sweep] survives only as comments.
    for p in presets.as_array().unwrap() {
        let t = p["toml"].as_str().unwrap();
        assert!(!t.lines().any(|l| l.trim() == "[sweep]"), "{t}");
    }

    let toml = fc73(6, 3000);
    let id = start_run(addr, &toml);
    let evs = events(addr, &id);
    assert_eq!(evs[0].0, "start");
    assert_eq!(evs[0].1["preview"]["height"], 4, "fc73's 16 inputs are shown as 4×4 images");
    let (last_name, last) = evs.last().unwrap();
    assert_eq!(last_name, "end");
    assert_eq!(last["status"], "done");
    // Every seed's rows arrived, with loss and accuracy columns.
    let cols: Vec<String> = serde_json::from_value(last["columns"].clone()).unwrap();
    assert_eq!(&cols[..2], ["loss", "accuracy"]);
    let mut seen = [0usize; 6];
    for (_, e) in &evs[1..] {
        for r in e["rows"].as_array().unwrap() {
            seen[r[0].as_u64().unwrap() as usize] += 1;
        }
    }
    assert!(seen.iter().all(|&n| n > 10), "rows per seed {seen:?}");
    assert_eq!(last["correct"].as_array().unwrap().len(), 64, "the first seed's per-sample correctness");
    assert!(!last["probes"].as_array().unwrap().is_empty());
    // The landscape in the plane of seed 0's path: centred on where it stopped, so the loss at
    // the centre is seed 0's last training loss.
    let land = &last["landscape"];
    let n = land["axis"].as_array().unwrap().len();
    assert_eq!(n, 41);
    let centre = land["loss"][(n / 2) * n + n / 2].as_f64().unwrap();
    let seed0_last = evs[1..]
        .iter()
        .flat_map(|(_, e)| e["rows"].as_array().unwrap().iter().filter(|r| r[0] == 0).cloned().collect::<Vec<_>>())
        .last()
        .unwrap();
    let loss = seed0_last[3].as_f64().unwrap();
    assert!((centre - loss).abs() <= 1e-6 * loss.abs().max(1e-3), "centre {centre} vs seed 0's last loss {loss}");
    let path = land["path"].as_array().unwrap();
    assert!(path.len() >= 5 && path.last().unwrap()[0].as_f64().unwrap().abs() < 1e-9, "the path ends at the centre");

    // The run directory holds gradlab run's outputs, and they equal a CLI run of the same file:
    // watching (and training in lockstep parts) changes no number.
    let dir = runs.join(&id);
    for f in ["experiment.toml", "summary.json", "metrics.csv", "curves.csv", "layers.csv", "network.txt", "curves.svg"]
    {
        assert!(dir.join(f).is_file(), "{f}");
    }
    let cli = runs.join("cli");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gradlab"))
        .args(["run", dir.join("experiment.toml").to_str().unwrap(), "--out", cli.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read(dir.join("metrics.csv")).unwrap(), std::fs::read(cli.join("metrics.csv")).unwrap());
    let served = json(&std::fs::read_to_string(dir.join("summary.json")).unwrap());
    let direct = json(&std::fs::read_to_string(cli.join("summary.json")).unwrap());
    assert_eq!(served["complete"], true);
    assert_eq!(served["cells"], direct["cells"]);

    // The run's info and curves, and the runs list.
    let (_, _, info) = http(addr, "GET", &format!("/api/runs/{id}"), None, &[]);
    let info = json(&info);
    assert_eq!(info["status"], "done");
    assert!(info["command"].as_str().unwrap().starts_with("gradlab run "));
    let (status, _, curves) = http(addr, "GET", &format!("/api/runs/{id}/curves"), None, &[]);
    assert_eq!(status, 200);
    assert!(json(&curves)["loss_median"].as_array().unwrap().len() > 50);
    let (_, _, list) = http(addr, "GET", "/api/runs", None, &[]);
    let listed = json(&list).as_array().unwrap().iter().find(|r| r["id"] == id.as_str()).cloned().unwrap();
    assert_eq!(listed["status"], "done");
    assert!(listed["title"].as_str().unwrap().ends_with("[relu, sgd, lr 0.1]"), "{listed}");
    assert_eq!(listed["summary"]["converged"], direct["cells"][0]["converged"]);
    s.stop();
    std::fs::remove_dir_all(&runs).unwrap();
}

/// 2D data: the boundary streamed at the end is every seed's output over the grid at its final
/// parameters (checked against the CLI's saved parameters of the same experiment); a softmax
/// head's confusion matrix is the run's confusion.csv, pooled.
#[test]
fn the_boundary_and_the_confusion_matrix_are_the_runs_own() {
    use gradlab::experiments::decision_boundary as db;
    let runs = tmp("boundary");
    let s = server(&runs, vec![], "127.0.0.1");
    let addr = local(&s);
    let text = gradlab::experiments::presets::text("playground-gauss").unwrap();
    let toml = text.replace("seeds = 16", "seeds = 3").replace("max_iters = 2500", "max_iters = 300");
    let id = start_run(addr, &toml);
    let evs = events(addr, &id);
    let points = &evs[0].1["points"];
    assert_eq!(points["train"].as_array().unwrap().len(), 250);
    assert_eq!(points["test"].as_array().unwrap().len(), 250);
    assert_eq!(points["extent"], serde_json::json!([-6.0, 6.0, -6.0, 6.0]));
    // Sent when it changed: the last one sent is the end's.
    let sent: Vec<&serde_json::Value> = evs.iter().map(|(_, e)| &e["boundary"]).filter(|b| !b.is_null()).collect();
    let b = *sent.last().unwrap();
    assert_eq!(b["iteration"], 300);
    let iterations: Vec<u64> = sent.iter().map(|b| b["iteration"].as_u64().unwrap()).collect();
    assert!(iterations.windows(2).all(|w| w[0] <= w[1]), "{iterations:?}");
    let n = b["n"].as_u64().unwrap() as usize;
    let served: Vec<f64> = b["seed0"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    assert_eq!(served.len(), n * n);
    assert_eq!(b["units"].as_array().unwrap().len(), 6);

    // The same experiment from the command line, parameters saved: seed 0's boundary.
    let saved = runs.join("params");
    let file = runs.join("gauss.toml");
    std::fs::write(
        &file,
        format!("{toml}\n").replace("[train]\n", &format!("[train]\nsave_params = \"{}\"\n", saved.display())),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gradlab"))
        .args(["run", file.to_str().unwrap(), "--out", runs.join("cli").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lab = gradlab::experiments::lab::parse(&file, &std::fs::read_to_string(&file).unwrap()).unwrap();
    let (data, _) = lab.data(0).unwrap();
    let mut one = lab.build(0, &data, 1).unwrap();
    gradlab::models::params::load_all(&mut one, &saved.join("seed-0.safetensors")).unwrap();
    let theta = gradlab::models::params::of_model(&one, 0);
    let plane = db::Plane::of(&data, None, true).unwrap();
    let mut grid = db::grid_net(&lab.cells[0].file.network, &data, 1, n).unwrap();
    let mine = db::compute(&mut grid, &plane, &data, &[&theta]);
    for (a, b) in served.iter().zip(&mine.seed0) {
        assert!((a - *b as f64).abs() <= 6e-4, "{a} vs {b}");
    }
    // The Gauss clusters are learned: the boundary separates them (corners of opposite sign).
    assert!(mine.seed0[0] * mine.seed0[n * n - 1] < 0.0 || mine.seed0[n - 1] * mine.seed0[n * (n - 1)] < 0.0);

    let digits = gradlab::experiments::presets::text("digits-mlp").unwrap();
    let digits = digits.replace("seeds = 8", "seeds = 2").replace("max_iters = 2000", "max_iters = 100");
    let id = start_run(addr, &digits);
    let evs = events(addr, &id);
    let (_, last) = evs.last().unwrap();
    assert!(evs[0].1["points"].is_null(), "64 features: no plane");
    let c = &last["confusion"];
    assert_eq!((c["classes"].as_u64(), c["set"].as_str(), c["seeds"].as_u64()), (Some(10), Some("held_out"), Some(2)));
    let csv = std::fs::read_to_string(runs.join(&id).join("confusion.csv")).unwrap();
    let pooled: Vec<u64> = csv
        .lines()
        .filter(|l| l.contains(",pooled,"))
        .map(|l| l.rsplit(',').next().unwrap().parse().unwrap())
        .collect();
    let counts: Vec<u64> = c["counts"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
    assert_eq!(counts, pooled);
    assert_eq!(counts.iter().sum::<u64>(), 2 * 360);
    s.stop();
    std::fs::remove_dir_all(&runs).unwrap();
}

#[test]
fn pause_step_and_stop_leave_whole_outputs_marked_incomplete() {
    let runs = tmp("stop");
    let s = server(&runs, vec![], "127.0.0.1");
    let addr = local(&s);
    // The line CNN with 3 seeds trains as 3 parts on their own threads; no stop rule, so
    // nothing ends by itself. A step must hold every part at the same iteration.
    let toml = include_str!("../examples/networks/line.toml")
        .replace("seeds = 32", "seeds = 3")
        .replace("max_iters = 10000", "max_iters = 100000\nstop = \"none\"");
    let id = start_run(addr, &toml);
    let control = |action: &str| {
        let (status, _, body) = http(
            addr,
            "POST",
            &format!("/api/runs/{id}/control"),
            Some(&format!("{{\"action\": \"{action}\", \"steps\": 3}}")),
            &[],
        );
        assert_eq!(status, 200, "{body}");
    };
    let info = || json(&http(addr, "GET", &format!("/api/runs/{id}"), None, &[]).2);
    std::thread::sleep(Duration::from_millis(100));
    control("pause");
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(info()["status"], "paused");
    let at = info()["iteration"].as_u64().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(info()["iteration"].as_u64().unwrap(), at, "a paused run stays where it is");
    // Step 3: every part runs exactly three more iterations, then it is paused again.
    control("step");
    let t = Instant::now();
    while info()["iteration"].as_u64().unwrap() < at + 3 && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(100));
    let after = info();
    assert_eq!((after["iteration"].as_u64().unwrap(), after["status"].as_str()), (at + 3, Some("paused")));

    // Another run is refused while this one trains.
    let (status, _, body) = http(addr, "POST", "/api/runs", Some(&experiment(&fc73(2, 10))), &[]);
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("one run at a time"));
    control("stop");
    let evs = events(addr, &id);
    let last = &evs.last().unwrap().1;
    assert_eq!(last["status"], "stopped");
    assert_eq!(last["iteration"].as_u64(), Some(at + 3), "stopped where the step held it");
    // Every seed (each its own part) ends at that same iteration: its last row is there.
    let mut ends = [0u64; 3];
    for (_, e) in &evs[1..] {
        for r in e["rows"].as_array().unwrap() {
            let s = r[0].as_u64().unwrap() as usize;
            ends[s] = ends[s].max(r[1].as_u64().unwrap());
        }
    }
    assert_eq!(ends, [at + 3; 3]);
    let summary = json(&std::fs::read_to_string(runs.join(&id).join("summary.json")).unwrap());
    assert_eq!(summary["complete"], false, "a stopped run is marked incomplete");
    let metrics = std::fs::read_to_string(runs.join(&id).join("metrics.csv")).unwrap();
    assert!(metrics.lines().count() > 4 && metrics.ends_with('\n'));
    let unknown = http(addr, "POST", &format!("/api/runs/{id}/control"), Some("{\"action\": \"fly\"}"), &[]);
    assert_eq!(unknown.0, 400);
    s.stop();
    std::fs::remove_dir_all(&runs).unwrap();
}

#[test]
fn bad_requests_get_4xx_with_the_validators_message() {
    let runs = tmp("bad");
    let data = tmp("bad-data");
    let s = server(&runs, vec![data.clone()], "127.0.0.1");
    let addr = local(&s);
    let post = |path: &str, body: &str| http(addr, "POST", path, Some(body), &[]);
    let cases: Vec<(String, &str)> = vec![
        (fc73(4, 100).replace("lr = 0.1", "lr = -1"), "optim.lr"),
        (fc73(4, 100).replace("[optim]", "[optim]\nbeta9 = 1"), "beta9"),
        (fc73(4, 100).replace("act = \"relu\"", "act = \"relux\""), "relux"),
        (fc73(300, 100), "train.seeds"),
        (fc73(4, 1_000_000), "train.max_iters"),
        (format!("out = \"/tmp/x\"\n{}", fc73(4, 100)), "`out`"),
        (fc73(4, 100).replace("[train]", "[train]\nsave_params = \"/etc\""), "train.save_params"),
        (
            fc73(4, 100).replace("generator = \"random\"", "x = \"/etc/passwd\"\ny = \"/etc/passwd\""),
            "not in a data directory",
        ),
        (
            fc73(4, 100).replace(
                "generator = \"random\"",
                &format!("x = \"{}/../../etc/passwd\"\ny = \"{}/y.npy\"", data.display(), data.display()),
            ),
            "not in a data directory",
        ),
        (
            fc73(4, 100)
                .replace(
                    "generator = \"random\"",
                    &format!("x = \"{}/missing.npy\"\ny = \"{}/y.npy\"\n#", data.display(), data.display()),
                )
                .replace("n = 64\nseed = 0\n", ""),
            "missing.npy",
        ),
        (format!("{}\n[sweep]\n\"optim.lr\" = [0.1, 0.2]\n", fc73(4, 100)), "one cell"),
        ("this is not toml = = =".to_string(), "experiment.toml"),
    ];
    for (toml, needle) in &cases {
        for path in ["/api/validate", "/api/runs"] {
            let (status, _, body) = post(path, &experiment(toml));
            assert_eq!(status, 400, "{path} {needle}: {body}");
            let msg = json(&body)["error"].as_str().unwrap().to_string();
            assert!(msg.contains(needle), "{needle} not in {msg}");
        }
    }
    assert_eq!(std::fs::read_dir(&runs).unwrap().count(), 0, "nothing was started or written");
    // A good file validates.
    let (status, _, body) = post("/api/validate", &experiment(&fc73(4, 100)));
    assert_eq!((status, json(&body)["seeds"].as_u64()), (200, Some(4)), "{body}");
    // Not JSON, too big, unknown runs and paths that try to leave the runs directory.
    assert_eq!(post("/api/runs", "{not json").0, 400);
    let big = experiment(&format!("{}\n# {}", fc73(4, 100), "x".repeat(100_000)));
    assert_eq!(post("/api/runs", &big).0, 413);
    for path in ["/api/runs/nope", "/api/runs/..%2F..%2Fetc/curves", "/api/runs/nope/events", "/api/nothing"] {
        assert_eq!(http(addr, "GET", path, None, &[]).0, 404, "{path}");
    }
    assert_eq!(http(addr, "GET", "/api/neuron?act=nonsense", None, &[]).0, 400);
    s.stop();
    std::fs::remove_dir_all(&runs).unwrap();
    std::fs::remove_dir_all(&data).unwrap();
}

#[test]
fn off_loopback_every_api_call_needs_the_token() {
    let runs = tmp("token");
    let s = server(&runs, vec![], "0.0.0.0");
    let addr = local(&s);
    let token = s.token.clone().expect("a token off loopback");
    assert!(token.len() >= 16 && s.url().contains(&token));
    assert_eq!(http(addr, "GET", "/api/presets", None, &[]).0, 401);
    assert_eq!(http(addr, "GET", "/api/presets?token=wrong", None, &[]).0, 401);
    assert_eq!(http(addr, "GET", "/api/presets", None, &[("X-Gradlab-Token", &token)]).0, 200);
    assert_eq!(http(addr, "GET", &format!("/api/presets?token={token}"), None, &[]).0, 200);
    assert_eq!(http(addr, "POST", "/api/runs", Some(&experiment(&fc73(2, 10))), &[]).0, 401);
    assert_eq!(http(addr, "GET", "/", None, &[]).0, 200, "the page itself carries no data");
    s.stop();
    let local_server = server(&runs, vec![], "127.0.0.1");
    assert!(local_server.token.is_none());
    drop(local_server);
    std::fs::remove_dir_all(&runs).unwrap();
}

#[test]
fn the_neuron_endpoint_is_task_1s_landscape() {
    let runs = tmp("neuron");
    let s = server(&runs, vec![], "127.0.0.1");
    let (status, _, body) = http(local(&s), "GET", "/api/neuron?w=1.5&b=-0.5", None, &[]);
    assert_eq!(status, 200);
    let v = json(&body);
    assert_eq!(v["ws"].as_array().unwrap().len(), 61);
    // At (w, b) with x = 1, y = 0.5: ŷ = σ(1), L2 = (ŷ − y)², ∂L2/∂w = 2(ŷ − y)·ŷ(1 − ŷ)·x,
    // CE's gradient = (ŷ − y)·x.
    let yhat = 1.0 / (1.0 + (-1.0f64).exp());
    let at = &v["at"];
    let close = |a: &serde_json::Value, b: f64| (a.as_f64().unwrap() - b).abs() < 1e-12;
    assert!(close(&at["output"], yhat));
    assert!(close(&at["l2"]["loss"], (yhat - 0.5).powi(2)));
    assert!(close(&at["l2"]["dw"], 2.0 * (yhat - 0.5) * yhat * (1.0 - yhat)));
    assert!(close(&at["ce"]["dw"], yhat - 0.5) && close(&at["ce"]["db"], yhat - 0.5));
    let started = Instant::now();
    s.stop();
    assert!(started.elapsed() < Duration::from_secs(5), "the server stops promptly");
    std::fs::remove_dir_all(&runs).unwrap();
}

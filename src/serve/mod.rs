//! `gradlab serve`: the lab in a browser. A local web app (axum on a small tokio runtime) that
//! runs experiment files — the same schema, validator and outputs as `gradlab run` — and streams
//! each run's rows, probes and per-sample correctness as server-sent events while it trains.
//!
//! Training runs on its own threads (`train_parallel`, lockstep while watched); the HTTP side
//! only reads the run's [`Live`] state and sets its control (run, pause, step, stop).
//!
//! Safety: bound to 127.0.0.1 unless `--host` says otherwise, and then every API call needs the
//! token printed at start. Request bodies are capped; experiment text goes through the CLI's
//! validator; data paths must lie in the allowed data directories; outputs go only to the runs
//! directory; seeds and iterations are bounded; one run trains at a time.

mod page;

use crate::error::{Error, Result};
use crate::experiments::lab;
use crate::training::live::{Control, Live};
use axum::Router;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Largest request body (an experiment file is a few hundred bytes).
pub const MAX_BODY: usize = 64 * 1024;
/// Bounds on what the page may ask for.
pub const MAX_SEEDS: usize = 256;
pub const MAX_ITERS: usize = 100_000;
/// How often a watcher's stream is refreshed.
const TICK: Duration = Duration::from_millis(200);

#[derive(Clone, Debug)]
pub struct ServeConfig {
    pub host: IpAddr,
    pub port: u16,
    /// Where runs are written (created if missing).
    pub runs: PathBuf,
    /// Directories an experiment's data files may come from.
    pub data: Vec<PathBuf>,
}

/// A started server; dropped or [`Server::stop`]ped, it shuts down.
pub struct Server {
    pub addr: SocketAddr,
    /// Required on every API call when the host is not loopback.
    pub token: Option<String>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    app: Arc<App>,
}

impl Server {
    /// The page's address, with the token when one is needed.
    pub fn url(&self) -> String {
        let host = if self.addr.ip().is_unspecified() { "127.0.0.1".to_string() } else { self.addr.ip().to_string() };
        match &self.token {
            Some(t) => format!("http://{host}:{}/?token={t}", self.addr.port()),
            None => format!("http://{host}:{}/", self.addr.port()),
        }
    }

    pub fn stop(mut self) {
        self.shut();
    }

    /// Stops every run still training and waits (up to `limit`) until each has written its
    /// outputs, marked incomplete. Returns how many were stopped.
    pub fn stop_runs(&self, limit: Duration) -> usize {
        let training: Vec<Arc<LiveRun>> = self
            .app
            .runs
            .lock()
            .expect("runs lock")
            .values()
            .filter(|r| matches!(*r.status.lock().expect("status"), Status::Running))
            .cloned()
            .collect();
        for r in &training {
            r.live.set(Control::Stop);
        }
        let t = Instant::now();
        while t.elapsed() < limit && training.iter().any(|r| *r.status.lock().expect("status") == Status::Running) {
            std::thread::sleep(Duration::from_millis(50));
        }
        training.len()
    }

    fn shut(&mut self) {
        if let Some(s) = self.shutdown.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shut();
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
enum Status {
    Running,
    Paused,
    Done,
    Stopped,
    Failed,
}

/// A run started from the page, while the server lives.
struct LiveRun {
    id: String,
    toml: String,
    seeds: usize,
    max_iters: usize,
    live: Arc<Live>,
    status: Mutex<Status>,
    error: Mutex<Option<String>>,
    started: Instant,
    seconds: Mutex<Option<f64>>,
    /// The first training samples as images, for the predictions view.
    preview: Value,
    /// After training: the loss over the plane of the first seed's path (see [`path_plane`]).
    landscape: Mutex<Value>,
    /// 2D data: the decision boundary, recomputed when the seeds' parameters change.
    boundary: Option<BoundaryView>,
    /// After training, multi-class heads: the confusion matrix pooled over seeds.
    confusion: Mutex<Value>,
}

/// What the page's boundary view needs of a run on 2D data.
struct BoundaryView {
    plane: crate::experiments::decision_boundary::Plane,
    /// The training samples as the network sees them (for the grid's targets).
    train: crate::data::Samples,
    /// The raw points, for the start event.
    points: Value,
    spec: crate::models::spec::NetworkSpec,
    /// A net over the grid for every seed, built on first use; the last boundary and the
    /// parameter version it was computed from.
    net: Mutex<Option<crate::models::Net<f32>>>,
    last: Mutex<(u64, Value)>,
}

/// Grid side of the boundary the page draws (the Playground's heatmap is 100 × 100 cells of
/// which it draws every point; 48 is smooth at its size and light to send 5 times a second).
const BOUNDARY_GRID: usize = 48;

/// The page's view of 2D data: its plane, points (`[x₁, x₂, value]`, value in the boundary's
/// scale: ±1 for two classes, the class for more, the target for regression), and the net's input.
fn boundary_view(
    lab: &lab::Lab,
    data: &crate::data::Samples,
    held: Option<&crate::data::Samples>,
) -> Option<BoundaryView> {
    let d = &lab.cells[0].file.data;
    let (raw, raw_held) = lab::untransformed(d, data, held).ok()?;
    let plane = crate::experiments::decision_boundary::Plane::of_data(d, &raw)?;
    let target = lab.cells[0].file.network.output.target.clone().unwrap_or_else(|| "y".into());
    let (train, classes) = crate::experiments::decision_boundary::points(&raw, &target);
    let test = raw_held.as_ref().map(|h| crate::experiments::decision_boundary::points(h, &target).0);
    let points = json!({
        "extent": plane.extent,
        "classes": classes,
        "train": train,
        "test": test,
    });
    let spec = lab.cells[0].file.network.clone();
    Some(BoundaryView {
        plane,
        train: data.clone(),
        points,
        spec,
        net: Mutex::new(None),
        last: Mutex::new((0, Value::Null)),
    })
}

/// The run's boundary at its latest parameters with the parameter version it is of, when that
/// version is not `sent` (the watcher's); recomputed only when the parameters changed.
fn boundary(run: &LiveRun, sent: u64) -> Option<(u64, Value)> {
    use crate::experiments::decision_boundary as db;
    let view = run.boundary.as_ref()?;
    let (version, params, at) = {
        let s = run.live.state.lock().expect("state");
        if s.params_version == sent {
            return None;
        }
        let last = view.last.lock().expect("boundary");
        if s.params_version == last.0 {
            return Some(last.clone());
        }
        drop(last);
        // Every seed once captured (the first capture of a part comes at its first evaluation).
        if s.params.iter().any(|p| p.is_none()) {
            return None;
        }
        let params: Vec<crate::models::params::Point> =
            s.params.iter().map(|p| p.as_ref().expect("all").1.clone()).collect();
        (s.params_version, params, s.params[0].as_ref().map_or(0, |p| p.0))
    };
    let mut net = view.net.lock().expect("boundary net");
    if net.is_none() {
        *net = db::grid_net(&view.spec, &view.train, params.len(), BOUNDARY_GRID).ok();
    }
    let net = net.as_mut()?;
    let refs: Vec<&crate::models::params::Point> = params.iter().collect();
    let b = db::compute(net, &view.plane, &view.train, &refs);
    let round = |v: &[f32]| -> Vec<f32> { v.iter().map(|x| (x * 1000.0).round() / 1000.0).collect() };
    let out = json!({
        "iteration": at,
        "n": b.n,
        "extent": b.extent,
        "classes": b.classes,
        "seed0": round(&b.seed0),
        "median": round(&b.median),
        "agreement": round(&b.agreement),
        "units": b.units.iter().map(|(l, u, m)| json!({"layer": l, "unit": u, "values": round(m)})).collect::<Vec<_>>(),
    });
    *view.last.lock().expect("boundary") = (version, out.clone());
    Some((version, out))
}

struct App {
    runs_dir: PathBuf,
    data_dirs: Vec<PathBuf>,
    token: Option<String>,
    runs: Mutex<HashMap<String, Arc<LiveRun>>>,
    counter: std::sync::atomic::AtomicUsize,
}

/// An API error: a status and the message shown in the page.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, axum::Json(json!({ "error": self.1 }))).into_response()
    }
}

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, msg.into())
}

fn not_found(what: &str) -> ApiError {
    ApiError(StatusCode::NOT_FOUND, format!("no {what}"))
}

type Api<T> = std::result::Result<T, ApiError>;

/// Binds and starts serving on a background thread.
pub fn start(cfg: ServeConfig) -> Result<Server> {
    std::fs::create_dir_all(&cfg.runs).map_err(|e| Error::io(&cfg.runs, e))?;
    let runs_dir = cfg.runs.canonicalize().map_err(|e| Error::io(&cfg.runs, e))?;
    let data_dirs = cfg.data.iter().filter_map(|d| d.canonicalize().ok()).collect();
    let token = (!cfg.host.is_loopback()).then(new_token);
    let listener = std::net::TcpListener::bind((cfg.host, cfg.port))
        .map_err(|e| Error::Usage(format!("cannot listen on {}:{}: {e}", cfg.host, cfg.port)))?;
    listener.set_nonblocking(true).map_err(|e| Error::io(&cfg.runs, e))?;
    let addr = listener.local_addr().map_err(|e| Error::io(&cfg.runs, e))?;
    let app = Arc::new(App {
        runs_dir,
        data_dirs,
        token: token.clone(),
        runs: Mutex::new(HashMap::new()),
        counter: Default::default(),
    });
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| Error::Usage(format!("cannot start the server: {e}")))?;
    let shared = app.clone();
    let thread = std::thread::spawn(move || {
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("a bound listener");
            let _ = axum::serve(listener, router(app))
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
    });
    Ok(Server { addr, token, shutdown: Some(tx), thread: Some(thread), app: shared })
}

fn router(app: Arc<App>) -> Router {
    let api = Router::new()
        .route("/presets", get(presets))
        .route("/validate", post(validate))
        .route("/runs", get(list_runs).post(start_run))
        .route("/runs/{id}", get(run_info))
        .route("/runs/{id}/control", post(control))
        .route("/runs/{id}/events", get(events))
        .route("/runs/{id}/curves", get(curves))
        .route("/neuron", get(neuron))
        .layer(middleware::from_fn_with_state(app.clone(), require_token));
    Router::new()
        .route("/", get(|| async { page::html(page::INDEX_HTML) }))
        .route("/app.js", get(|| async { ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], page::APP_JS) }))
        .route("/style.css", get(|| async { ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], page::STYLE_CSS) }))
        .nest("/api", api)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(app)
}

/// With a token set, an API call must carry it (`X-Gradlab-Token`, or `?token=` for the event
/// stream, which a browser cannot give headers).
///
/// Without a token (bound to loopback), the `Host` must be a loopback name: a page on another
/// site whose name an attacker points at 127.0.0.1 (DNS rebinding) reaches the port, but says
/// its own name in `Host`, and is refused.
async fn require_token(State(app): State<Arc<App>>, headers: HeaderMap, req: Request, next: Next) -> Response {
    if app.token.is_none() {
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
        if !loopback_host(host) {
            return ApiError(
                StatusCode::FORBIDDEN,
                format!("Host `{host}` is not this machine's loopback name (localhost, 127.0.0.1, [::1])"),
            )
            .into_response();
        }
    }
    if let Some(t) = &app.token {
        let header_ok = headers.get("x-gradlab-token").and_then(|v| v.to_str().ok()) == Some(t.as_str());
        let query_ok = req.uri().query().is_some_and(|q| q.split('&').any(|kv| kv == format!("token={t}")));
        if !header_ok && !query_ok {
            return ApiError(StatusCode::UNAUTHORIZED, "a token is required: open the address printed at start".into())
                .into_response();
        }
    }
    next.run(req).await
}

/// `localhost`, `127.x.y.z` or `[::1]`, with or without a port.
fn loopback_host(host: &str) -> bool {
    let name = if host.starts_with('[') {
        host.split_once(']').map_or(host, |(h, _)| h).trim_start_matches('[')
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn new_token() -> String {
    use rand_core::{Rng, SeedableRng};
    let mut seed = [0u8; 32];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut seed);
    }
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    for (i, b) in t.to_le_bytes().iter().enumerate() {
        seed[i] ^= b;
    }
    let mut rng = rand_chacha::ChaCha8Rng::from_seed(seed);
    (0..24).map(|_| format!("{:x}", rng.next_u32() % 16)).collect()
}

async fn presets() -> axum::Json<Value> {
    axum::Json(Value::Array(
        crate::experiments::presets::PRESETS
            .iter()
            .map(|(name, text)| json!({"name": name, "toml": one_cell(text)}))
            .collect(),
    ))
}

/// A preset as the page runs it: one cell. A `[sweep]` table is kept as comments, so the
/// values it would try are at hand to type in.
fn one_cell(text: &str) -> String {
    let mut out = String::new();
    let mut in_sweep = false;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('[') && !t.starts_with("[[") {
            in_sweep = t == "[sweep]";
            if in_sweep {
                out.push_str("# [sweep] (the page runs one cell; `gradlab run` runs them all):\n");
                continue;
            }
        }
        if in_sweep && !t.is_empty() {
            out.push_str("#   ");
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[derive(serde::Deserialize)]
struct Experiment {
    toml: String,
    /// At most this many iterations a second (the page's speed; absent: full speed).
    pace: Option<f64>,
}

/// The experiment as `gradlab run` reads it, plus the server's own limits. Paths are checked
/// on the raw text first: nothing outside the data directories is opened, not even to fail.
fn check(app: &App, text: &str) -> Api<lab::Lab> {
    let path = Path::new("experiment.toml");
    let Ok(doc) = text.parse::<toml::Table>() else {
        // Not TOML: the reader's own message (it fails before looking at any path).
        return Err(bad(lab::parse(path, text).err().map_or("experiment.toml: not TOML".into(), |e| e.to_string())));
    };
    if doc.contains_key("sweep") {
        return Err(bad("experiment.toml: `sweep`: the page runs one cell (run sweeps with `gradlab run`)"));
    }
    let refuse = |key: &str| bad(format!("experiment.toml: `{key}`: the server decides where outputs go; remove it"));
    if doc.contains_key("out") {
        return Err(refuse("out"));
    }
    let train = doc.get("train").and_then(|t| t.as_table());
    for key in ["save_params", "tensorboard"] {
        if train.is_some_and(|t| t.contains_key(key)) {
            return Err(refuse(&format!("train.{key}")));
        }
    }
    if train.is_some_and(|t| t.contains_key("init")) {
        return Err(bad("experiment.toml: `train.init`: starting from a parameter file is not offered in the page"));
    }
    if let Some(data) = doc.get("data").and_then(|d| d.as_table()) {
        let mut files: Vec<(String, &str)> = vec![];
        for (k, v) in data {
            match v {
                toml::Value::String(p)
                    if ["x", "y", "held_out_x", "held_out_y", "course_dir"].contains(&k.as_str()) =>
                {
                    files.push((format!("data.{k}"), p))
                }
                toml::Value::Table(t) => {
                    files.extend(t.iter().filter_map(|(n, p)| p.as_str().map(|p| (format!("data.{k}.{n}"), p))))
                }
                _ => {}
            }
        }
        for (key, p) in files {
            // The real path of the file part (`t.csv` of `t.csv:a,b`): a link inside a data
            // directory to a file outside it is outside.
            if !readable(app, Path::new(crate::data::npy::file_of(p))) {
                return Err(bad(format!(
                    "experiment.toml: `{key}`: {p} is not in a data directory this server may read ({}); start it with --data DIR",
                    if app.data_dirs.is_empty() {
                        "none given".to_string()
                    } else {
                        app.data_dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ")
                    }
                )));
            }
        }
    }
    let lab = lab::parse(path, text).map_err(|e| bad(e.to_string()))?;
    let c = &lab.cells[0];
    if c.opts.seeds > MAX_SEEDS {
        return Err(bad(format!(
            "experiment.toml: `train.seeds`: at most {MAX_SEEDS} in the page, got {}",
            c.opts.seeds
        )));
    }
    if c.opts.max_iters > MAX_ITERS {
        return Err(bad(format!(
            "experiment.toml: `train.max_iters`: at most {MAX_ITERS} in the page, got {}",
            c.opts.max_iters
        )));
    }
    Ok(lab)
}

/// Whether `p` (relative to the working directory) lies in an allowed data directory: its real
/// path if it exists (symbolic links followed), else its path with `.` and `..` resolved.
fn readable(app: &App, p: &Path) -> bool {
    let Ok(cwd) = std::env::current_dir() else { return false };
    let resolved = match p.canonicalize() {
        Ok(c) => c,
        Err(_) => {
            let mut out = PathBuf::new();
            for part in cwd.join(p).components() {
                match part {
                    std::path::Component::ParentDir => {
                        out.pop();
                    }
                    std::path::Component::CurDir => {}
                    other => out.push(other),
                }
            }
            out
        }
    };
    app.data_dirs.iter().any(|d| resolved.starts_with(d))
}

/// `f` on a blocking thread: checking an experiment and loading its data (a large generated data
/// set takes seconds) would stall every other request on the one async worker.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Api<T> + Send + 'static) -> Api<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, format!("checking the experiment failed: {e}")))?
}

async fn validate(State(app): State<Arc<App>>, axum::Json(e): axum::Json<Experiment>) -> Api<axum::Json<Value>> {
    let lab = blocking({
        let app = app.clone();
        move || check(&app, &e.toml)
    })
    .await?;
    let c = &lab.cells[0];
    Ok(axum::Json(json!({ "ok": true, "seeds": c.opts.seeds, "max_iters": c.opts.max_iters })))
}

async fn start_run(
    State(app): State<Arc<App>>,
    axum::Json(e): axum::Json<Experiment>,
) -> Api<(StatusCode, axum::Json<Value>)> {
    let pace = checked_pace(e.pace)?;
    let (lab, (data, held)) = blocking({
        let (app, text) = (app.clone(), e.toml.clone());
        move || {
            let lab = check(&app, &text)?;
            let data = lab.data(0).map_err(|e| bad(e.to_string()))?;
            Ok((lab, data))
        }
    })
    .await?;
    {
        let runs = app.runs.lock().expect("runs lock");
        if let Some(r) =
            runs.values().find(|r| matches!(*r.status.lock().expect("status"), Status::Running | Status::Paused))
        {
            return Err(ApiError(
                StatusCode::CONFLICT,
                format!("run {} is still training; stop it first (one run at a time)", r.id),
            ));
        }
    }
    let c = &lab.cells[0];
    // A run's directory is created exclusively: two servers sharing `--runs` (or a clock that
    // went back) take the next number instead of writing into each other's run.
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    std::fs::create_dir_all(&app.runs_dir).map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let (id, dir) = loop {
        let n = app.counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let id = format!("run-{stamp}-{n}");
        let dir = app.runs_dir.join(&id);
        match std::fs::create_dir(&dir) {
            Ok(()) => break (id, dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 1_000_000 => continue,
            Err(e) => return Err(ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
        }
    };
    crate::atomic::write_atomic(&dir.join("experiment.toml"), e.toml.as_bytes())
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let boundary = boundary_view(&lab, &data, held.as_ref());
    let live = Live::new(c.opts.first_seed, c.opts.seeds);
    let live = Arc::new(if boundary.is_some() { live.keeping_parameters() } else { live });
    live.set_pace(pace);
    let run = Arc::new(LiveRun {
        id: id.clone(),
        toml: e.toml.clone(),
        seeds: c.opts.seeds,
        max_iters: c.opts.max_iters,
        live: live.clone(),
        status: Mutex::new(Status::Running),
        error: Mutex::new(None),
        started: Instant::now(),
        seconds: Mutex::new(None),
        // 2D data is drawn as points over its boundary, not as images.
        preview: if boundary.is_some() { Value::Null } else { preview(&data) },
        landscape: Mutex::new(Value::Null),
        boundary,
        confusion: Mutex::new(Value::Null),
    });
    app.runs.lock().expect("runs lock").insert(id.clone(), run.clone());
    std::thread::spawn(move || {
        let opts = crate::training::TrainOptions { live: Some(live.clone()), ..lab.cells[0].opts.clone() };
        let build = |e: usize| lab.build(0, &data, e);
        let result =
            crate::training::train_parallel(&lab.cells[0].name, &build, &data, held.as_ref(), &opts, &mut |_, _| true)
                .and_then(|r| {
                    if let Some(c) = &r.confusion {
                        *run.confusion.lock().expect("confusion") = json!({
                            "classes": c.classes, "set": c.set, "seeds": c.per_seed.iter().flatten().count(), "counts": c.pooled(),
                        });
                    }
                    let complete = live.control() != Control::Stop;
                    lab::write_outputs(&dir, &lab, &[(0, r)], &[], &data, complete, None).map(|_| complete)
                });
        *run.seconds.lock().expect("seconds") = Some(run.started.elapsed().as_secs_f64());
        if result.is_ok() {
            let path = std::mem::take(&mut live.state.lock().expect("state").trajectory);
            let build =
                |e: usize| crate::models::spec::build::<f32>(&lab.cells[0].file.network, &data, e, data.n.min(256));
            if let Ok(Some(v)) = path_plane(&build, &data, &path) {
                *run.landscape.lock().expect("landscape") = v;
            }
        }
        *run.status.lock().expect("status") = match result {
            Ok(true) => Status::Done,
            Ok(false) => Status::Stopped,
            Err(e) => {
                *run.error.lock().expect("error") = Some(e.to_string());
                Status::Failed
            }
        };
        live.state.lock().expect("state").version += 1;
    });
    Ok((StatusCode::CREATED, axum::Json(json!({ "id": id }))))
}

/// The training loss over the plane spanned by the top two principal directions of the first
/// seed's path (its parameters at iteration 1, powers of two, every 100 and the end), centred on
/// the end, with the path's coordinates: `gradlab landscape --trajectory`'s PCA plane.
fn path_plane(
    build: &(dyn Fn(usize) -> Result<crate::models::Net<f32>> + Sync),
    data: &crate::data::Samples,
    path: &[(u32, crate::experiments::net_landscape::Point)],
) -> Result<Option<Value>> {
    use crate::experiments::net_landscape as nl;
    let Some((_, end)) = path.last() else { return Ok(None) };
    let points: Vec<nl::Point> = path.iter().map(|(_, p)| p.clone()).collect();
    let Some(((d1, d2), explained, coords)) = nl::pca_plane(&points, end) else { return Ok(None) };
    const N: usize = 41;
    let reach = coords.iter().map(|(a, b)| a.abs().max(b.abs())).fold(0.0, f64::max).max(1e-6) * 1.25;
    let axis = nl::axis(N, reach);
    let coefs: Vec<Vec<f64>> = axis.iter().flat_map(|&b| axis.iter().map(move |&a| vec![a, b])).collect();
    let (loss, _) = nl::evaluate_points(build, data, end, &[&d1, &d2], &coefs, 256)?;
    Ok(Some(json!({
        "axis": axis,
        "loss": loss.iter().map(|&l| if l.is_finite() { json!(l) } else { Value::Null }).collect::<Vec<_>>(),
        "path": coords.iter().map(|(a, b)| [*a, *b]).collect::<Vec<_>>(),
        "iterations": path.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        "explained": [explained.0, explained.1],
    })))
}

/// The first samples' inputs as images (channel 0 of `[C, H, W]`, or a square feature vector).
fn preview(data: &crate::data::Samples) -> Value {
    let (h, w) = match data.shape.as_slice() {
        [_, h, w] => (*h, *w),
        [f] if (*f as f64).sqrt().fract() == 0.0 && *f >= 4 => {
            let s = (*f as f64).sqrt() as usize;
            (s, s)
        }
        _ => return Value::Null,
    };
    let count = data.n.min(64);
    let f = data.features();
    let images: Vec<Vec<f32>> = (0..count).map(|i| data.x[i * f..i * f + h * w].to_vec()).collect();
    json!({ "height": h, "width": w, "images": images })
}

fn find(app: &App, id: &str) -> Option<Arc<LiveRun>> {
    app.runs.lock().expect("runs lock").get(id).cloned()
}

/// A run id names a directory directly under the runs directory, nothing else.
fn run_dir(app: &App, id: &str) -> Api<PathBuf> {
    let ok = !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    let dir = app.runs_dir.join(id);
    if ok && dir.is_dir() { Ok(dir) } else { Err(not_found("such run")) }
}

fn status_of(r: &LiveRun) -> Status {
    let s = *r.status.lock().expect("status");
    if s == Status::Running && r.live.held() { Status::Paused } else { s }
}

fn command(app: &App, id: &str) -> String {
    format!("gradlab run {} --out {id}-cli", app.runs_dir.join(id).join("experiment.toml").display())
}

async fn list_runs(State(app): State<Arc<App>>) -> Api<axum::Json<Value>> {
    let mut out = vec![];
    let entries =
        std::fs::read_dir(&app.runs_dir).map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    for entry in entries.flatten() {
        let id = entry.file_name().to_string_lossy().to_string();
        if !entry.path().join("experiment.toml").is_file() {
            continue;
        }
        let (summary, status) = stored(&app, &id, &entry.path());
        let cell = if summary.is_null() { Value::Null } else { summary["cells"][0].clone() };
        let name =
            std::fs::read_to_string(entry.path().join("experiment.toml")).map(|t| describe(&t)).unwrap_or_default();
        out.push(json!({ "id": id, "status": status, "title": name, "summary": cell }));
    }
    out.sort_by(|a, b| b["id"].as_str().cmp(&a["id"].as_str()));
    Ok(axum::Json(Value::Array(out)))
}

/// A run directory's `summary.json` (null if none) and the run's status: live from this server
/// if it trains here, else read off the outputs (complete, marked incomplete, or none: failed).
fn stored(app: &App, id: &str, dir: &Path) -> (Value, Status) {
    let summary: Value = std::fs::read_to_string(dir.join("summary.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    let status = match find(app, id) {
        Some(r) => status_of(&r),
        None if summary.is_null() => Status::Failed,
        None if summary["complete"] == json!(true) => Status::Done,
        None => Status::Stopped,
    };
    (summary, status)
}

/// A run's line in the list: the file's first comment, then what is most often changed
/// (first activation, optimiser, learning rate), so two runs of one preset can be told apart.
fn describe(text: &str) -> String {
    let title: String = text
        .lines()
        .next()
        .filter(|l| l.starts_with('#'))
        .map(|l| l.trim_start_matches('#').trim().chars().take(60).collect())
        .unwrap_or_default();
    let Ok(doc) = text.parse::<toml::Table>() else { return title };
    let get = |path: &[&str]| -> Option<String> {
        let mut v: &toml::Value = doc.get(path[0])?;
        for k in &path[1..] {
            v = match k.parse::<usize>() {
                Ok(i) => v.as_array()?.get(i)?,
                Err(_) => v.get(k)?,
            };
        }
        Some(v.as_str().map_or_else(|| v.to_string(), str::to_string))
    };
    let parts: Vec<String> = [
        get(&["network", "layers", "0", "act"]),
        get(&["optim", "name"]).or(Some("sgd".into())),
        get(&["optim", "lr"]).map(|lr| format!("lr {lr}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    format!("{title} [{}]", parts.join(", "))
}

async fn run_info(State(app): State<Arc<App>>, UrlPath(id): UrlPath<String>) -> Api<axum::Json<Value>> {
    let dir = run_dir(&app, &id)?;
    let toml = std::fs::read_to_string(dir.join("experiment.toml")).unwrap_or_default();
    let (summary, status) = stored(&app, &id, &dir);
    let live = find(&app, &id);
    Ok(axum::Json(json!({
        "id": id,
        "status": status,
        "toml": toml,
        "summary": summary,
        "command": command(&app, &id),
        "error": live.as_ref().and_then(|r| r.error.lock().expect("error").clone()),
        "seconds": live.as_ref().and_then(|r| *r.seconds.lock().expect("seconds")),
        "iteration": live.as_ref().map(|r| r.live.state.lock().expect("state").iteration),
    })))
}

#[derive(serde::Deserialize)]
struct ControlRequest {
    action: String,
    steps: Option<usize>,
    /// `pace`: iterations a second (absent: full speed).
    per_second: Option<f64>,
}

/// The slowest and fastest pace a run may be given (iterations a second).
const PACE_RANGE: (f64, f64) = (1e-3, 1e7);

/// `pace` as a request gives it: absent (full speed), or a number in [`PACE_RANGE`].
fn checked_pace(pace: Option<f64>) -> Api<Option<f64>> {
    match pace {
        Some(p) if !(p.is_finite() && (PACE_RANGE.0..=PACE_RANGE.1).contains(&p)) => Err(bad(format!(
            "pace must be between {} and {} iterations a second (or absent: full speed), got {p:e}",
            PACE_RANGE.0, PACE_RANGE.1
        ))),
        p => Ok(p),
    }
}

async fn control(
    State(app): State<Arc<App>>,
    UrlPath(id): UrlPath<String>,
    axum::Json(c): axum::Json<ControlRequest>,
) -> Api<axum::Json<Value>> {
    let run = find(&app, &id).ok_or_else(|| not_found("run training in this server with that id"))?;
    let c = match c.action.as_str() {
        "run" => Control::Run,
        "pause" => Control::Pause,
        "step" => Control::Step(c.steps.unwrap_or(1).clamp(1, MAX_ITERS)),
        "stop" => Control::Stop,
        "pace" => {
            run.live.set_pace(checked_pace(c.per_second)?);
            return Ok(axum::Json(json!({ "ok": true })));
        }
        other => return Err(bad(format!("unknown action `{other}` (run, pause, step, stop, pace)"))),
    };
    run.live.set(c);
    Ok(axum::Json(json!({ "ok": true })))
}

/// The run's state since the watcher's cursor: new rows per seed (`[seed, iteration, values…]`,
/// with the rows a thinned run replaced sent again), probes' medians per layer, correctness.
fn delta(run: &LiveRun, sent: &mut [usize], boundary_sent: &mut u64) -> Value {
    let status = status_of(run); // before the state lock: it takes that lock itself
    // So does this; a watcher gets the boundary only when it changed since it last got it.
    let boundary = match boundary(run, *boundary_sent) {
        Some((version, b)) => {
            *boundary_sent = version;
            b
        }
        None => Value::Null,
    };
    let s = run.live.state.lock().expect("state");
    let mut rows = vec![];
    for (seed, seed_rows) in s.rows.iter().enumerate() {
        // Rows carry their index: a replaced row reappears under the same index.
        let from = seed_rows.iter().position(|r| r.1 as usize >= sent[seed]).unwrap_or(seed_rows.len());
        let from = from.saturating_sub(1);
        for (it, index, values) in &seed_rows[from..] {
            let mut r = vec![json!(seed), json!(it), json!(index)];
            r.extend(values.iter().map(|v| if v.is_finite() { json!(v) } else { Value::Null }));
            rows.push(Value::Array(r));
        }
        sent[seed] = seed_rows.last().map_or(0, |r| r.1 as usize + 1);
    }
    let mut layers: Vec<String> = vec![];
    for p in s.probes.iter().flatten() {
        if !layers.contains(&p.0) {
            layers.push(p.0.clone());
        }
    }
    let probes: Vec<Value> = layers
        .iter()
        .map(|l| {
            let pick = |f: fn(&(String, f32, f32)) -> f32| -> Vec<f64> {
                s.probes.iter().flatten().filter(|p| &p.0 == l).map(f).filter(|v| v.is_finite()).map(|v| v as f64).collect()
            };
            let q = |v: &[f64], x: f64| if v.is_empty() { Value::Null } else { json!(crate::stats::quantile(v, x)) };
            let (g, sat) = (pick(|p| p.1), pick(|p| p.2));
            json!({ "layer": l, "grad_rms": [q(&g, 0.25), q(&g, 0.5), q(&g, 0.75)], "saturated": [q(&sat, 0.25), q(&sat, 0.5), q(&sat, 0.75)] })
        })
        .collect();
    json!({
        "status": status,
        "iteration": s.iteration,
        "max_iters": run.max_iters,
        "seeds": run.seeds,
        "columns": s.columns,
        "rows": rows,
        "probes": probes,
        "correct": s.correct,
        "elapsed": run.seconds.lock().expect("seconds").unwrap_or_else(|| run.started.elapsed().as_secs_f64()),
        "landscape": run.landscape.lock().expect("landscape").clone(),
        "boundary": boundary,
        "confusion": run.confusion.lock().expect("confusion").clone(),
        "error": run.error.lock().expect("error").clone(),
    })
}

async fn events(
    State(app): State<Arc<App>>,
    UrlPath(id): UrlPath<String>,
) -> Api<Sse<impl futures_util::Stream<Item = std::result::Result<Event, std::convert::Infallible>>>> {
    let run = find(&app, &id).ok_or_else(|| not_found("run training in this server with that id"))?;
    let points = run.boundary.as_ref().map_or(Value::Null, |b| b.points.clone());
    let first = json!({ "preview": run.preview, "toml": run.toml, "points": points });
    // Per watcher: rows sent per seed and the boundary version sent.
    let start = (run, (vec![0usize; 0], 0u64), u64::MAX, false, Some(first));
    let stream = futures_util::stream::unfold(start, |(run, mut sent, mut seen, finished, first)| async move {
        if finished {
            return None;
        }
        if let Some(f) = first {
            sent.0 = vec![0; run.seeds];
            let ev = Event::default().event("start").data(f.to_string());
            return Some((Ok(ev), (run, sent, seen, false, None)));
        }
        loop {
            let version = run.live.state.lock().expect("state").version;
            let status = status_of(&run);
            let over = matches!(status, Status::Done | Status::Stopped | Status::Failed);
            if version != seen || over {
                seen = version;
                let d = delta(&run, &mut sent.0, &mut sent.1);
                let name = if over { "end" } else { "update" };
                let ev = Event::default().event(name).data(d.to_string());
                return Some((Ok(ev), (run, sent, seen, over, None)));
            }
            tokio::time::sleep(TICK).await;
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// A finished run's curves (curves.csv: medians and IQR per kept iteration), for comparing.
async fn curves(State(app): State<Arc<App>>, UrlPath(id): UrlPath<String>) -> Api<axum::Json<Value>> {
    let dir = run_dir(&app, &id)?;
    let text = std::fs::read_to_string(dir.join("curves.csv")).map_err(|_| not_found("curves for that run yet"))?;
    let mut lines = text.lines();
    let head: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    let mut cols: Vec<Vec<Value>> = vec![vec![]; head.len()];
    for l in lines {
        for (k, v) in l.split(',').enumerate().take(head.len()) {
            cols[k].push(v.parse::<f64>().ok().filter(|x| x.is_finite()).map_or(Value::Null, |x| json!(x)));
        }
    }
    let map: serde_json::Map<String, Value> =
        head.iter().zip(cols).skip(1).map(|(h, c)| (h.to_string(), Value::Array(c))).collect();
    Ok(axum::Json(Value::Object(map)))
}

#[derive(serde::Deserialize)]
struct NeuronQuery {
    act: Option<String>,
    x: Option<f64>,
    y: Option<f64>,
    w: Option<f64>,
    b: Option<f64>,
}

/// Task 1's neuron: the L2 and CE losses over (w, b) on a 61×61 grid in [−6, 6]², and at (w, b)
/// if given, both losses and their gradients — all from gradlab's own landscape code.
async fn neuron(Query(q): Query<NeuronQuery>) -> Api<axum::Json<Value>> {
    use crate::experiments::landscape::{LandscapeConfig, compute};
    let act = crate::activations::Activation::parse(q.act.as_deref().unwrap_or("sigmoid")).map_err(bad)?;
    // The page's own names for the values (not the command line's flags), checked here.
    for (name, v) in [("x", q.x), ("y", q.y), ("w", q.w), ("b", q.b)] {
        if let Some(v) = v.filter(|v| !(v.is_finite() && v.abs() <= 1e6)) {
            return Err(bad(format!("{name} must be a number within ±1e6, got {}", crate::names::number(v))));
        }
    }
    let base = LandscapeConfig {
        act,
        x: q.x.unwrap_or(1.0),
        y: q.y.unwrap_or(0.5),
        w_range: (-6.0, 6.0),
        b_range: (-6.0, 6.0),
        points: 61,
    };
    let grid = compute(&base).map_err(|e| bad(e.to_string()))?;
    let at = match (q.w, q.b) {
        (Some(w), Some(b)) if w.is_finite() && b.is_finite() => {
            // A 2×2 grid whose first corner is (w, b): the point itself, computed the same way.
            let p =
                compute(&LandscapeConfig { w_range: (w, w + 1.0), b_range: (b, b + 1.0), points: 2, ..base.clone() })
                    .map_err(|e| bad(e.to_string()))?;
            let ce = p.ce.as_ref().map(|[l, dw, db]| json!({ "loss": l[0], "dw": dw[0], "db": db[0] }));
            json!({ "w": w, "b": b, "output": p.output[0], "l2": { "loss": p.l2[0], "dw": p.dl2_dw[0], "db": p.dl2_db[0] }, "ce": ce })
        }
        _ => Value::Null,
    };
    Ok(axum::Json(json!({
        "ws": grid.ws,
        "bs": grid.bs,
        "l2": grid.l2,
        "ce": grid.ce.as_ref().map(|c| c[0].clone()),
        "at": at,
    })))
}

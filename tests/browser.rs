//! The live lab in a real browser: headless Chromium driven through chromedriver's WebDriver
//! protocol (plain HTTP + JSON). Loads the page, starts a run, waits for the curves to move and
//! the run to finish, checks that the summary the page shows is `summary.json`'s, and saves
//! screenshots at a laptop and a phone size (target/browser-shots/).
//!
//! Needs `chromedriver` and `chromium` (Debian: chromium-driver, chromium). Without them the
//! test says so and passes, unless GRADLAB_BROWSER_TEST=require (as `.ci/run` sets it).

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

fn find(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    names.iter().find_map(|n| std::env::split_paths(&path).map(|d| d.join(n)).find(|p| p.is_file()))
}

#[path = "common/http.rs"]
mod http_client;

/// A WebDriver call: JSON in, JSON out.
fn request(addr: SocketAddr, method: &str, path: &str, body: Option<&Value>) -> Value {
    let body = body.map(|b| b.to_string());
    let (_, _, raw) = http_client::request(addr, method, path, body.as_deref(), &[]);
    serde_json::from_slice(&raw).unwrap_or_else(|e| panic!("{method} {path}: {e}: {}", String::from_utf8_lossy(&raw)))
}

struct Driver {
    addr: SocketAddr,
    child: Child,
    session: String,
}

impl Driver {
    fn start(chromedriver: &Path, chromium: &Path) -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let t = Instant::now();
        while TcpStream::connect(addr).is_err() {
            assert!(t.elapsed() < Duration::from_secs(20), "chromedriver did not listen");
            std::thread::sleep(Duration::from_millis(100));
        }
        let caps = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1366,900"]
        }}}});
        let r = request(addr, "POST", "/session", Some(&caps));
        let session = r["value"]["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {r}")).to_string();
        Driver { addr, child, session }
    }

    fn call(&self, method: &str, what: &str, body: Option<Value>) -> Value {
        let r = request(self.addr, method, &format!("/session/{}/{what}", self.session), body.as_ref());
        assert!(r["value"].get("error").is_none(), "{what}: {r}");
        r["value"].clone()
    }

    fn script(&self, js: &str) -> Value {
        self.call("POST", "execute/sync", Some(json!({"script": js, "args": []})))
    }

    fn wait_for(&self, js: &str, limit: Duration) -> Value {
        let t = Instant::now();
        loop {
            let v = self.script(js);
            if v.as_bool() != Some(false) && !v.is_null() {
                return v;
            }
            assert!(t.elapsed() < limit, "timed out waiting for `{js}`");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn screenshot(&self, path: &Path) {
        let b64 = self.call("GET", "screenshot", None);
        std::fs::write(path, base64(b64.as_str().unwrap())).unwrap();
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = request(self.addr, "DELETE", &format!("/session/{}", self.session), None);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn base64(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let bytes: Vec<u8> = s.bytes().filter(|&c| c != b'=' && !c.is_ascii_whitespace()).map(val).collect();
    let mut out = vec![];
    for q in bytes.chunks(4) {
        let n = q.iter().enumerate().fold(0u32, |a, (i, &v)| a | (v as u32) << (18 - 6 * i));
        out.extend_from_slice(&n.to_be_bytes()[1..q.len()]);
    }
    out
}

/// chromedriver and chromium, or `None` (the test then passes, unless they are required).
fn browser() -> Option<(PathBuf, PathBuf)> {
    let (Some(chromedriver), Some(chromium)) =
        (find(&["chromedriver"]), find(&["chromium", "chromium-browser", "google-chrome"]))
    else {
        assert!(
            std::env::var("GRADLAB_BROWSER_TEST").as_deref() != Ok("require"),
            "GRADLAB_BROWSER_TEST=require but chromedriver or chromium is missing"
        );
        eprintln!("skipped: chromedriver or chromium not found (apt-get install chromium chromium-driver)");
        return None;
    };
    Some((chromedriver, chromium))
}

/// One browser at a time: two chromedriver sessions starting together on two cores had one
/// reset its connection in CI.
static ONE_BROWSER: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A server on an ephemeral port with its runs directory, a browser on it, where screenshots
/// go, and the turn to use the browser (held for the test); `None` when there is no browser
/// (and it is not required).
fn setup(name: &str) -> Option<(gradlab::serve::Server, Driver, PathBuf, PathBuf, std::sync::MutexGuard<'static, ()>)> {
    let (chromedriver, chromium) = browser()?;
    let turn = ONE_BROWSER.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let runs = std::env::temp_dir().join(format!("gradlab-browser-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&runs);
    let server = gradlab::serve::start(gradlab::serve::ServeConfig {
        host: "127.0.0.1".parse().unwrap(),
        port: 0,
        runs: runs.clone(),
        data: vec![],
    })
    .unwrap();
    let driver = Driver::start(&chromedriver, &chromium);
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("browser-shots");
    std::fs::create_dir_all(&shots).unwrap();
    Some((server, driver, runs, shots, turn))
}

/// A Playground user: picks the spiral, watches the boundary move, shares the link; the link
/// opens the same experiment.
#[test]
fn the_spiral_boundary_moves_and_the_url_reopens_the_experiment() {
    let Some((server, driver, runs, shots, _turn)) = setup("spiral") else { return };
    driver.call("POST", "url", Some(json!({"url": server.url()})));
    driver.wait_for("return document.querySelectorAll('button.preset').length > 6", Duration::from_secs(20));
    driver.script(
        "[...document.querySelectorAll('button.preset')].find(b => b.textContent === 'playground-spiral').click();",
    );
    driver.wait_for(
        "return document.getElementById('toml').value.includes('generator = \"spiral\"')",
        Duration::from_secs(10),
    );
    // Edited as a user would: 8 seeds, noise 0.1, and the features x₁² and x₂² added.
    driver.script("const s = document.getElementById('f-seeds'); s.value = '8'; s.dispatchEvent(new Event('change'));");
    driver.script(
        "const t = document.getElementById('toml'); \
         t.value = t.value.replace('noise = 0.0', 'noise = 0.1').replace('features = [\"x1\", \"x2\"]', 'features = [\"x1\", \"x2\", \"x1^2\", \"x2^2\"]'); \
         t.dispatchEvent(new Event('input')); t.dispatchEvent(new Event('change'));",
    );
    let toml = driver.script("return document.getElementById('toml').value").as_str().unwrap().to_string();
    assert!(toml.contains("seeds = 8") && toml.contains("noise = 0.1") && toml.contains("\"x1^2\""), "{toml}");
    let href = driver.script("return location.href").as_str().unwrap().to_string();
    assert!(href.contains("#preset=playground-spiral") && href.contains("toml="), "{href}");
    assert_eq!(driver.script("return document.getElementById('f-pace').value").as_str(), Some("500"));

    driver.script("document.getElementById('run').click();");
    driver.wait_for("return typeof run !== 'undefined' && run && run.boundary && run.points", Duration::from_secs(30));
    let first = driver.script("return [run.boundary.iteration, run.boundary.seed0.join(',')]");
    assert_eq!(driver.script("return run.points.train.length").as_u64(), Some(250));
    assert_eq!(driver.script("return run.boundary.seed0.length").as_u64(), Some(48 * 48));
    assert_eq!(driver.script("return document.getElementById('boundary-card').hidden"), json!(false));
    // The boundary moves while it trains: a later iteration with other values.
    let later = format!(
        "return run.boundary.iteration > {} + 200 && run.boundary.seed0.join(',') !== {}",
        first[0],
        serde_json::to_string(&first[1]).unwrap()
    );
    driver.wait_for(&later, Duration::from_secs(30));
    assert_eq!(driver.script("return run.status").as_str(), Some("running"), "seen while training");
    driver.script("const b = document.getElementById('b-test'); b.click();");
    driver.script("document.getElementById('boundary-card').scrollIntoView()");
    // The median map is drawn: its centre pixel is not blank.
    let pixel = driver.script(
        "const c = document.getElementById('b-median'); const d = c.getContext('2d').getImageData(c.width / 2, c.height / 4, 1, 1).data; return [...d]",
    );
    assert_eq!(pixel[3].as_u64(), Some(255), "{pixel}");
    driver.screenshot(&shots.join("spiral-laptop.png"));
    driver.wait_for("return document.body.dataset.state === 'done'", Duration::from_secs(60));
    let units = driver.script("return run.boundary.units.length").as_u64();
    assert_eq!(units, Some(6), "4 + 2 hidden units drawn one by one");
    let id = driver.script("return run.id").as_str().unwrap().to_string();
    let written = std::fs::read_to_string(runs.join(&id).join("experiment.toml")).unwrap();
    assert_eq!(written, toml, "the run trained the text on screen");

    // The link opens the same experiment.
    driver.call("POST", "url", Some(json!({"url": "about:blank"})));
    driver.call("POST", "url", Some(json!({"url": href})));
    driver.wait_for("return document.querySelectorAll('button.preset').length > 6", Duration::from_secs(20));
    driver.wait_for("return document.getElementById('toml').value.length > 0", Duration::from_secs(10));
    let reopened = driver.script("return document.getElementById('toml').value").as_str().unwrap().to_string();
    assert_eq!(reopened, toml);
    assert_eq!(driver.script("return document.getElementById('f-seeds').value").as_str(), Some("8"));
    let on = driver.script("return document.querySelector('button.preset.on').textContent");
    assert_eq!(on.as_str(), Some("playground-spiral"));

    driver.script("document.getElementById('run').click();");
    driver.wait_for("return run && run.boundary", Duration::from_secs(30));
    driver.call("POST", "window/rect", Some(json!({"width": 390, "height": 844})));
    std::thread::sleep(Duration::from_millis(300));
    driver.script("document.getElementById('boundary-card').scrollIntoView()");
    std::thread::sleep(Duration::from_millis(300));
    driver.screenshot(&shots.join("spiral-phone.png"));
    let wide = driver.script("return document.documentElement.scrollWidth <= window.innerWidth + 1");
    assert_eq!(wide, json!(true), "the page fits a phone");
    driver.wait_for("return document.body.dataset.state === 'done'", Duration::from_secs(60));
    drop(driver);
    server.stop();
    std::fs::remove_dir_all(&runs).unwrap();
}

#[test]
fn the_page_trains_live_and_shows_summary_json() {
    let Some((server, driver, runs, shots, _turn)) = setup("line") else { return };

    // A user: opens the page, picks the `line` preset, sets 8 seeds, presses Run.
    driver.call("POST", "url", Some(json!({"url": server.url()})));
    let presets = gradlab::experiments::presets::PRESETS.len();
    driver.wait_for(
        &format!("return document.querySelectorAll('button.preset').length === {presets}"),
        Duration::from_secs(20),
    );
    driver.script("[...document.querySelectorAll('button.preset')].find(b => b.textContent === 'line').click();");
    driver.wait_for(
        "return document.getElementById('toml').value.includes('generator = \"line\"')",
        Duration::from_secs(10),
    );
    driver.script("const s = document.getElementById('f-seeds'); s.value = '8'; s.dispatchEvent(new Event('change'));");
    assert!(driver.script("return document.getElementById('toml').value").as_str().unwrap().contains("seeds = 8"));
    let t = Instant::now();
    driver.script("document.getElementById('run').click();");
    // The curves move while it trains: rows arrive for every seed and the loss chart is drawn.
    driver.wait_for(
        "return typeof run !== 'undefined' && run && run.seeds.filter(r => r && r.length > 3).length === 8",
        Duration::from_secs(60),
    );
    let first_update = t.elapsed();
    driver.wait_for("return document.body.dataset.state === 'done'", Duration::from_secs(120));
    driver.screenshot(&shots.join("laptop.png"));

    // The summary the page shows is the run's summary.json.
    let shown = driver.script("return Object.assign({}, document.getElementById('summary').dataset)");
    let id = driver.script("return run.id").as_str().unwrap().to_string();
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(runs.join(&id).join("summary.json")).unwrap()).unwrap();
    let cell = &summary["cells"][0];
    let num = |v: &Value| v.as_str().and_then(|s| s.parse::<f64>().ok());
    assert_eq!(num(&shown["seeds"]), cell["seeds"].as_f64(), "{shown}");
    assert_eq!(num(&shown["converged"]), cell["converged"].as_f64(), "{shown}");
    assert_eq!(num(&shown["diverged"]), cell["diverged"].as_f64(), "{shown}");
    assert_eq!(num(&shown["medianIterations"]), cell["median_iterations"].as_f64(), "{shown}");
    assert_eq!(num(&shown["heldOut"]), cell["median_held_out_accuracy"].as_f64(), "{shown}");
    assert_eq!(shown["complete"], "true");
    let text = driver.script("return document.getElementById('summary').textContent").as_str().unwrap().to_string();
    assert!(text.contains(&format!("{}/{} seeds", cell["converged"], cell["seeds"])), "{text}");
    // Every sample is shown with the first seed's verdict; the run list has the run.
    let marked = driver.script("return document.querySelectorAll('#samples canvas.ok, #samples canvas.bad').length");
    assert_eq!(marked.as_u64(), Some(64));
    driver.wait_for(
        &format!("return document.getElementById('runs').textContent.includes('{id}')"),
        Duration::from_secs(10),
    );

    // A second run with leaky ReLU, then the two compared on the same axes.
    driver.script(
        "const a = document.getElementById('f-act'); a.value = 'leaky_relu'; a.dispatchEvent(new Event('change'));",
    );
    driver.script("document.getElementById('run').click();");
    driver.wait_for(
        &format!("return run.id !== '{id}' && document.body.dataset.state === 'done'"),
        Duration::from_secs(120),
    );
    let second = driver.script("return run.id").as_str().unwrap().to_string();
    assert!(
        std::fs::read_to_string(runs.join(&second).join("experiment.toml")).unwrap().contains("act = \"leaky_relu\"")
    );
    driver.wait_for(
        &format!("return document.getElementById('runs').textContent.includes('{second}')"),
        Duration::from_secs(10),
    );
    driver.script("document.querySelectorAll('#runs input[type=checkbox]').forEach(b => b.click());");
    driver.wait_for("return !document.getElementById('compare-fig').hidden", Duration::from_secs(10));
    let cap = driver.script("return document.getElementById('compare-cap').textContent").as_str().unwrap().to_string();
    assert!(cap.contains(&id) && cap.contains(&second), "{cap}");
    driver.script("const m = document.getElementById('compare-metric'); m.value = 'held_out_accuracy'; m.dispatchEvent(new Event('change'));");
    driver.wait_for(
        "return document.getElementById('compare-cap').textContent.startsWith('held-out accuracy')",
        Duration::from_secs(10),
    );
    driver.script("document.getElementById('runs-card').scrollIntoView()");
    driver.screenshot(&shots.join("compare.png"));

    // Task 1's neuron answers a drag with gradlab's numbers.
    driver.wait_for(
        "return document.getElementById('neuron-at').textContent.includes('∂CE/∂w')",
        Duration::from_secs(10),
    );

    // A phone-sized window: one column, nothing wider than the screen.
    driver.call("POST", "window/rect", Some(json!({"width": 390, "height": 844})));
    std::thread::sleep(Duration::from_millis(300));
    driver.screenshot(&shots.join("phone.png"));
    let widths = driver.script(
        "return [document.documentElement.scrollWidth, window.innerWidth, \
         [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > window.innerWidth + 1).map(e => e.tagName + '#' + e.id + '.' + e.className).slice(0, 8)]",
    );
    assert!(widths[0].as_f64() <= widths[1].as_f64().map(|w| w + 1.0), "the page is wider than a phone: {widths}");
    eprintln!("first live rows after {first_update:?}; screenshots in {}", shots.display());
    drop(driver);
    server.stop();
    std::fs::remove_dir_all(&runs).unwrap();
}

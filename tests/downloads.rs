//! Data where users keep it: named sets downloaded once into the cache and checked (served here
//! by a loopback HTTP server, so no test needs the network), and the file formats beside `.npy`
//! (IDX, `.npz`, CSV), with a named error for each way they go wrong and nothing half-written.

use gradlab::data::download::{self, Pinned};
use gradlab::data::{idx, mnist, npy};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// A response: the body, and how many of its bytes to send before hanging up (a truncated
/// download) while `Content-Length` promises all of them.
#[derive(Clone)]
struct Served {
    body: Vec<u8>,
    send: usize,
}

/// Serves `files` by path on 127.0.0.1 until the test ends; counts requests.
fn serve(files: HashMap<String, Served>) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}/", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let files = Arc::new(Mutex::new(files));
    let counter = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            counter.fetch_add(1, Ordering::SeqCst);
            let mut buf = [0u8; 4096];
            let n = s.read(&mut buf).unwrap_or(0);
            let req = String::from_utf8_lossy(&buf[..n]).to_string();
            let path = req.split_whitespace().nth(1).unwrap_or("/").trim_start_matches('/').to_string();
            let found = files.lock().unwrap().get(&path).cloned();
            match found {
                Some(f) => {
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        f.body.len()
                    );
                    let _ = s.write_all(head.as_bytes());
                    let _ = s.write_all(&f.body[..f.send]);
                }
                None => {
                    let _ = s.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                }
            }
            let _ = s.flush();
        }
    });
    (base, hits)
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(vec![], flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gradlab-dl-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Everything in `dir`, recursively, as relative names.
fn listing(dir: &Path) -> Vec<String> {
    let mut out = vec![];
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(listing(&p).into_iter().map(|n| format!("{}/{n}", e.file_name().to_string_lossy())));
            } else {
                out.push(e.file_name().to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}

/// A small MNIST-shaped set: 6 training and 3 test images of 4×4 with labels.
fn small_set() -> Vec<(String, Vec<u8>)> {
    let images = |n: usize, k: u8| {
        idx::to_bytes(&[n, 4, 4], &(0..n * 16).map(|i| (i as u8).wrapping_mul(k)).collect::<Vec<_>>())
    };
    vec![
        ("train-images-idx3-ubyte.gz".into(), gz(&images(6, 7))),
        ("train-labels-idx1-ubyte.gz".into(), gz(&idx::to_bytes(&[6], &[5, 0, 4, 1, 9, 2]))),
        ("t10k-images-idx3-ubyte.gz".into(), gz(&images(3, 3))),
        ("t10k-labels-idx1-ubyte.gz".into(), gz(&idx::to_bytes(&[3], &[7, 2, 1]))),
    ]
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

fn remote(base: &str, files: &[(String, Vec<u8>)]) -> mnist::RemoteSet<'static> {
    let pin = |k: usize| Pinned {
        url: leak(format!("{base}{}", files[k].0)),
        size: files[k].1.len() as u64,
        sha256: leak(download::sha256_hex(&files[k].1)),
    };
    mnist::RemoteSet { name: "small", files: [pin(0), pin(1), pin(2), pin(3)] }
}

#[test]
fn a_named_set_downloads_once_checks_out_and_reads_as_idx() {
    let files = small_set();
    let (base, hits) =
        serve(files.iter().map(|(n, b)| (n.clone(), Served { body: b.clone(), send: b.len() })).collect());
    let set = remote(&base, &files);
    let cache = tmp("ok");
    let (train, held) = mnist::load(&set, &cache, 1.0 / 255.0, None, Some(2)).unwrap();
    assert_eq!((train.n, train.shape.clone(), held.n), (6, vec![1, 4, 4], 2));
    assert_eq!(train.targets[0].values, vec![5.0, 0.0, 4.0, 1.0, 9.0, 2.0]);
    assert_eq!(train.targets[0].classes, Some(10));
    assert_eq!(train.x[3], (3u8.wrapping_mul(7)) as f32 / 255.0);
    assert_eq!(held.targets[0].values, vec![7.0, 2.0]);
    assert_eq!(hits.load(Ordering::SeqCst), 4);
    assert_eq!(
        listing(&cache),
        [
            "small/t10k-images-idx3-ubyte.gz",
            "small/t10k-labels-idx1-ubyte.gz",
            "small/train-images-idx3-ubyte.gz",
            "small/train-labels-idx1-ubyte.gz"
        ]
    );
    // Cached: a second load asks the server nothing.
    mnist::load(&set, &cache, 1.0, None, None).unwrap();
    assert_eq!(hits.load(Ordering::SeqCst), 4);
    // A cached file of the pinned size but other content (issue 36: trusted by size, it was
    // trained on): a named error, checked on every use, and nothing fetched or trained.
    let victim = cache.join("small/train-labels-idx1-ubyte.gz");
    let mut bytes = std::fs::read(&victim).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&victim, &bytes).unwrap();
    let e = mnist::load(&set, &cache, 1.0, None, None).unwrap_err().to_string();
    assert!(e.contains("train-labels") && e.contains("SHA-256") && e.contains("delete it"), "{e}");
    assert_eq!(hits.load(Ordering::SeqCst), 4);
    std::fs::remove_dir_all(&cache).unwrap();
}

#[test]
fn bad_downloads_are_named_and_leave_nothing_behind() {
    let files = small_set();
    let body = files[1].1.clone();
    let mut served: HashMap<String, Served> = HashMap::new();
    served.insert("ok.gz".into(), Served { body: body.clone(), send: body.len() });
    served.insert("short.gz".into(), Served { body: body.clone(), send: body.len() / 2 });
    let (base, _) = serve(served);
    let sum = download::sha256_hex(&body);
    let size = body.len() as u64;

    // A checksum that does not match (an altered file or a wrong mirror).
    let cache = tmp("bad");
    let wrong = Pinned { url: leak(format!("{base}ok.gz")), size, sha256: "00".repeat(32).leak() };
    let e = download::fetch(&wrong, &cache.join("ok.gz"), &mut |_, _| {}).unwrap_err().to_string();
    assert!(e.contains("checksum mismatch") && e.contains(&sum) && e.contains("ok.gz"), "{e}");
    assert!(listing(&cache).is_empty(), "{:?}", listing(&cache));

    // A download that stops half-way.
    let short = Pinned { url: leak(format!("{base}short.gz")), size, sha256: leak(sum.clone()) };
    let e = download::fetch(&short, &cache.join("short.gz"), &mut |_, _| {}).unwrap_err().to_string();
    assert!(e.contains("short.gz") && e.contains("download failed"), "{e}");
    assert!(listing(&cache).is_empty(), "{:?}", listing(&cache));

    // A file the server does not have.
    let missing = Pinned { url: leak(format!("{base}missing.gz")), size, sha256: leak(sum.clone()) };
    let e = download::fetch(&missing, &cache.join("missing.gz"), &mut |_, _| {}).unwrap_err().to_string();
    assert!(e.contains("404"), "{e}");
    assert!(listing(&cache).is_empty());

    // A cache that cannot be written: a read-only directory (or, as root, which writes anyway,
    // a directory under /sys).
    let ro = cache.join("read-only");
    std::fs::create_dir_all(&ro).unwrap();
    let mut perms = std::fs::metadata(&ro).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o555);
    std::fs::set_permissions(&ro, perms).unwrap();
    let target = if std::fs::write(ro.join("probe"), b"x").is_ok() {
        PathBuf::from("/sys/gradlab-cache/set")
    } else {
        ro.join("set")
    };
    let ok = Pinned { url: leak(format!("{base}ok.gz")), size, sha256: leak(sum) };
    let e = download::fetch(&ok, &target.join("ok.gz"), &mut |_, _| {}).unwrap_err().to_string();
    assert!(e.contains("cannot write the download cache") && e.contains(target.to_str().unwrap()), "{e}");
    assert!(!target.join("ok.gz").exists());
    // The good file arrives whole where the cache is writable.
    download::fetch(&ok, &cache.join("ok.gz"), &mut |_, _| {}).unwrap();
    assert_eq!(std::fs::read(cache.join("ok.gz")).unwrap(), body);
    let mut perms = std::fs::metadata(&ro).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&ro, perms).unwrap();
    std::fs::remove_dir_all(&cache).unwrap();
}

#[test]
fn malformed_idx_files_are_named() {
    let good = idx::to_bytes(&[2, 2], &[1, 2, 3, 4]);
    assert_eq!(idx::parse(&good).unwrap(), idx::Idx { shape: vec![2, 2], data: vec![1, 2, 3, 4] });
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (vec![1, 0, 8, 1, 0, 0, 0, 1, 5], "first two bytes must be zero"),
        (vec![0, 0, 0x0d, 1, 0, 0, 0, 1, 0, 0, 0, 0], "type code 0x0d"),
        (vec![0, 0, 8, 3, 0, 0, 0, 2], "incomplete"),
        (good[..good.len() - 1].to_vec(), "4 values) but 3 bytes follow"),
    ];
    for (bytes, msg) in cases {
        let e = idx::parse(&bytes).unwrap_err();
        assert!(e.contains(msg), "{e}");
    }
    let dir = tmp("idx");
    std::fs::write(dir.join("bad.gz"), [0x1f, 0x8b, 8, 0, 1, 2, 3]).unwrap();
    let e = idx::read(&dir.join("bad.gz")).unwrap_err().to_string();
    assert!(e.contains("bad.gz") && e.contains("gzip"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A `.npz` (a zip of `.npy` files, stored as NumPy writes them uncompressed).
fn npz(path: &Path, arrays: &[(&str, Vec<u8>)]) {
    let mut z = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    for (name, bytes) in arrays {
        z.start_file(
            format!("{name}.npy"),
            zip::write::FileOptions::default().compression_method(zip::CompressionMethod::Stored),
        )
        .unwrap();
        z.write_all(bytes).unwrap();
    }
    z.finish().unwrap();
}

#[test]
fn npz_and_csv_sources_read_like_npy_and_fail_by_name() {
    let dir = tmp("formats");
    let x = npy::npy_bytes(
        &[3, 2],
        "<f4",
        false,
        &[1f32, 2.0, 3.0, 4.0, 5.0, 6.0].iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<_>>(),
    );
    let y = npy::npy_bytes(&[3], "|u1", false, &[0, 1, 1]);
    npz(&dir.join("d.npz"), &[("x_train", x), ("y_train", y)]);
    let a = npy::read_array(&dir.join("d.npz:x_train")).unwrap();
    assert_eq!((a.shape.clone(), a.data.clone(), a.integer), (vec![3, 2], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], false));
    assert!(npy::read_array(&dir.join("d.npz:y_train")).unwrap().integer);
    let e = npy::read_array(&dir.join("d.npz:x_test")).unwrap_err().to_string();
    assert!(e.contains("d.npz") && e.contains("no array `x_test`") && e.contains("x_train, y_train"), "{e}");
    let e = npy::read_array(&dir.join("d.npz")).unwrap_err().to_string();
    assert!(e.contains("needs the array's name"), "{e}");

    std::fs::write(dir.join("t.csv"), "x1,x2,label\n0.5,-1,1\n1.5,2,0\n\n-3,4e-1,1\n").unwrap();
    let all = npy::read_array(&dir.join("t.csv")).unwrap();
    assert_eq!((all.shape.clone(), all.data[4]), (vec![3, 3], 2.0));
    let xs = npy::read_array(&dir.join("t.csv:x1,x2")).unwrap();
    assert_eq!(
        (xs.shape.clone(), xs.data.clone(), xs.integer),
        (vec![3, 2], vec![0.5, -1.0, 1.5, 2.0, -3.0, 0.4], false)
    );
    let label = npy::read_array(&dir.join("t.csv:label")).unwrap();
    assert_eq!((label.shape.clone(), label.integer), (vec![3, 1], true));
    let e = npy::read_array(&dir.join("t.csv:x3")).unwrap_err().to_string();
    assert!(e.contains("no column `x3`") && e.contains("x1, x2, label"), "{e}");
    std::fs::write(dir.join("ragged.csv"), "1,2\n3,4\n5\n").unwrap();
    let e = npy::read_array(&dir.join("ragged.csv")).unwrap_err().to_string();
    assert!(e.contains("ragged.csv") && e.contains("line 3: 1 values, the rows before have 2"), "{e}");
    std::fs::write(dir.join("word.csv"), "1,2\n3,abc\n").unwrap();
    let e = npy::read_array(&dir.join("word.csv")).unwrap_err().to_string();
    assert!(e.contains("line 2, column 2: `abc` is not a number"), "{e}");

    // Through an experiment file: CSV columns as inputs and class labels, trained.
    let toml = format!(
        "[data]\nx = \"{0}/t.csv:x1,x2\"\ny = \"{0}/t.csv:label\"\n[network]\nlayers = [{{ type = \"dense\", units = 2 }}]\nloss = \"softmax_ce\"\n[train]\nseeds = 2\nmax_iters = 5\n",
        dir.display()
    );
    let lab = gradlab::experiments::lab::parse(Path::new("csv.toml"), &toml).unwrap();
    let (data, _) = lab.data(0).unwrap();
    assert_eq!((data.n, data.shape.clone(), data.targets[0].classes), (3, vec![2], Some(2)));
    std::fs::remove_dir_all(&dir).unwrap();
}

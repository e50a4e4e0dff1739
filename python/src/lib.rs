//! `gradlab._gradlab`: the native half of the Python package. It reads an experiment (file text,
//! path or dict) through gradlab's one schema and validator, trains with the GIL released, and
//! hands the run record to NumPy. Arrays that gradlab produces once (a seed's metric rows, its
//! row iterations, its final parameters, the per-sample vectors, the curves) are moved into
//! NumPy without a copy; the few that are rearranged on the way (probe rows split into columns,
//! a per-sample trace, `learned_at`'s "never" as NaN) are copies. The Python half
//! (`gradlab/__init__.py`) wraps the dicts returned here in classes, a progress bar and pandas.

use gradlab::Error;
use gradlab::experiments::lab::{self, Lab};
use gradlab::experiments::sweep::SweepSummary;
use gradlab::record::Run;
use numpy::ndarray::{Array2, ArrayD, IxDyn};
use numpy::{PyArray, PyArray1, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// One cell's tensors: safetensors name and shape (one model's, without the seed axis).
type CellShapes = Vec<(String, Vec<usize>)>;

/// gradlab's errors as Python's: a file that cannot be read is an `OSError`, everything else
/// (a field, a value, a shape, a missing tensor) a `ValueError` with gradlab's message, which
/// names the file (or `<experiment>`), the key and the problem.
fn py_err(e: Error) -> PyErr {
    match e {
        // A data file the experiment names is missing: Python's own exception for it.
        Error::Data { ref msg, .. } if msg.starts_with("file not found") => {
            pyo3::exceptions::PyFileNotFoundError::new_err(e.to_string())
        }
        Error::Io { .. } => PyOSError::new_err(e.to_string()),
        e => PyValueError::new_err(e.to_string()),
    }
}

/// A Python value as a TOML value (the dict form of an experiment, keyword overrides).
fn to_toml(key: &str, v: &Bound<'_, PyAny>) -> PyResult<toml::Value> {
    let bad = |what: String| PyValueError::new_err(format!("`{key}`: {what}"));
    if v.is_instance_of::<PyBool>() {
        return Ok(toml::Value::Boolean(v.extract()?));
    }
    if v.is_instance_of::<PyInt>() {
        return Ok(toml::Value::Integer(v.extract().map_err(|_| bad("integer out of range".into()))?));
    }
    if v.is_instance_of::<PyFloat>() {
        return Ok(toml::Value::Float(v.extract()?));
    }
    if v.is_instance_of::<PyString>() {
        return Ok(toml::Value::String(v.extract()?));
    }
    if let Ok(d) = v.cast::<PyDict>() {
        let mut t = toml::Table::new();
        for (k, item) in d.iter() {
            let k: String = k.extract().map_err(|_| bad("dict keys must be strings".into()))?;
            let sub = format!("{key}.{k}");
            t.insert(k, to_toml(&sub, &item)?);
        }
        return Ok(toml::Value::Table(t));
    }
    if v.is_instance_of::<PyList>() || v.is_instance_of::<PyTuple>() {
        let mut items = vec![];
        for (i, item) in v.try_iter()?.enumerate() {
            items.push(to_toml(&format!("{key}.{i}"), &item?)?);
        }
        return Ok(toml::Value::Array(items));
    }
    if v.is_none() {
        return Err(bad("None is not a value (leave the key out for its default)".into()));
    }
    // os.PathLike (a pathlib.Path), NumPy scalars and 0-d arrays.
    let py = v.py();
    if v.hasattr("__fspath__")? {
        let s = py.import("os")?.call_method1("fspath", (v,))?;
        return to_toml(key, &s);
    }
    if v.hasattr("item")? && v.getattr("ndim").and_then(|n| n.extract::<usize>()).is_ok_and(|n| n == 0) {
        return to_toml(key, &v.call_method0("item")?);
    }
    Err(bad(format!("a {} is not a value of an experiment", v.get_type().name()?)))
}

/// Reads an experiment into a checked [`Lab`]: `kind` is `"path"` (a network file, or an older
/// `task = …` file), `"text"` (a network file's text) or `"dict"` (the same schema as a dict);
/// `overrides` set keys (a short name of a `[data]`, `[init]`, `[optim]` or `[train]` field, or
/// a dotted key) before the one validator runs.
fn read_lab(kind: &str, source: &Bound<'_, PyAny>, overrides: &Bound<'_, PyDict>) -> PyResult<Lab> {
    let (name, mut doc): (PathBuf, toml::Table) = match kind {
        "path" => {
            let path: PathBuf = source.extract()?;
            let text = String::from_utf8(read_file(&path)?)
                .map_err(|_| py_err(Error::data(&path, "not UTF-8 text (a network file is TOML)")))?;
            let doc = document(&path, text)?;
            (path, doc)
        }
        "text" => {
            let path = PathBuf::from("<experiment>");
            let doc = document(&path, source.extract()?)?;
            (path, doc)
        }
        "dict" => match to_toml("experiment", source)? {
            toml::Value::Table(t) => (PathBuf::from("<experiment>"), t),
            _ => return Err(PyValueError::new_err("an experiment dict must map section names to tables")),
        },
        other => return Err(PyValueError::new_err(format!("unknown experiment kind `{other}`"))),
    };
    for (k, v) in overrides.iter() {
        let k: String = k.extract()?;
        let value = to_toml(&k, &v)?;
        // `sweep={…}` replaces the sweep; a section's name with a dict sets the keys below it
        // (`network={"loss": "l2"}`); any other name is a field's short name or a dotted key.
        let assignments = match (k.as_str(), &value) {
            ("sweep", toml::Value::Table(_)) => {
                doc.insert(k.clone(), value);
                continue;
            }
            ("data" | "network" | "init" | "optim" | "train" | "samples", toml::Value::Table(_)) => {
                lab::assignments(&k, &value)
            }
            _ => {
                let key = lab::dotted_key(&k).map_err(|m| PyValueError::new_err(format!("keyword {m}")))?;
                vec![(key, value)]
            }
        };
        for (key, value) in assignments {
            lab::set_key(&mut doc, &key, value).map_err(|m| PyValueError::new_err(format!("`{key}`: {m}")))?;
            // A key given here is no longer swept: the value given wins over the file's list.
            if let Some(toml::Value::Table(sweep)) = doc.get_mut("sweep") {
                sweep.remove(&key);
            }
        }
    }
    // Checking reads the data (a download, for MNIST): without the GIL.
    source.py().detach(|| lab::parse_doc(&name, doc)).map_err(py_err)
}

/// A file's bytes; a missing file is Python's `FileNotFoundError`.
fn read_file(path: &Path) -> PyResult<Vec<u8>> {
    std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            pyo3::exceptions::PyFileNotFoundError::new_err(format!("{}: file not found", path.display()))
        }
        _ => py_err(Error::io(path, e)),
    })
}

/// A network file's text as a TOML document (an older `task = …` file converted first, as `gradlab
/// run` does); `path` names it in errors.
fn document(path: &Path, text: String) -> PyResult<toml::Table> {
    let text = if gradlab::experiments::legacy::is_old(&text) {
        gradlab::experiments::legacy::convert(path, &text).map_err(py_err)?
    } else {
        text
    };
    text.parse().map_err(|e: toml::de::Error| py_err(Error::data(path, e.to_string().trim())))
}

/// Moves a vector into NumPy (no copy).
fn array1<'py, T: numpy::Element>(py: Python<'py>, v: Vec<T>) -> Bound<'py, PyArray1<T>> {
    PyArray1::from_vec(py, v)
}

/// Moves a row-major vector into a NumPy array of `shape` (no copy).
fn array_nd<'py, T: numpy::Element>(py: Python<'py>, v: Vec<T>, shape: &[usize]) -> PyResult<Bound<'py, PyAny>> {
    let a = ArrayD::from_shape_vec(IxDyn(shape), v).map_err(|e| PyValueError::new_err(e.to_string()))?;
    Ok(PyArray::from_owned_array(py, a).into_any())
}

fn options_to_py<'py>(py: Python<'py>, v: &[Option<usize>]) -> PyResult<Bound<'py, PyList>> {
    PyList::new(py, v.iter().copied())
}

/// Python objects from JSON (summaries), through Python's own `json`.
fn json_to_py<'py>(py: Python<'py>, v: &impl serde::Serialize) -> PyResult<Bound<'py, PyAny>> {
    let text = serde_json::to_string(v).map_err(|e| PyValueError::new_err(e.to_string()))?;
    py.import("json")?.call_method1("loads", (text,))
}

/// One cell's run as a dict of NumPy arrays and plain values (see the module's comment for which
/// are copies). `names` are the net's tensors (safetensors names) with their shapes.
fn run_to_py<'py>(
    py: Python<'py>,
    cell: &lab::LabCell,
    mut run: Run,
    cscores: Option<gradlab::record::samples::CScores>,
    names: &[(String, Vec<usize>)],
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("summary", json_to_py(py, &gradlab::record::RunSummary::of(&run))?)?;
    d.set_item("name", &cell.name)?;
    d.set_item("index", cell.index)?;
    d.set_item("axes", json_to_py(py, &cell.axes)?)?;
    d.set_item("every", run.every)?;
    d.set_item("columns", PyList::new(py, &run.columns)?)?;
    let curves = gradlab::report::curves(&run);
    let cd = PyDict::new(py);
    cd.set_item("iteration", array1(py, curves.iterations))?;
    cd.set_item("seeds_running", array1(py, curves.seeds_running))?;
    for (name, [p25, med, p75]) in run.columns.iter().zip(curves.quartiles) {
        cd.set_item(format!("{name}_p25"), array1(py, p25))?;
        cd.set_item(format!("{name}_median"), array1(py, med))?;
        cd.set_item(format!("{name}_p75"), array1(py, p75))?;
    }
    d.set_item("curves", cd)?;
    let width = run.columns.len();
    let rows = PyList::empty(py);
    for r in std::mem::take(&mut run.rows) {
        let n = r.len().checked_div(width).unwrap_or(0);
        let a = Array2::from_shape_vec((n, width), r).map_err(|e| PyValueError::new_err(e.to_string()))?;
        rows.append(PyArray::from_owned_array(py, a))?;
    }
    d.set_item("rows", rows)?;
    d.set_item("at", PyList::new(py, std::mem::take(&mut run.at).into_iter().map(|a| array1(py, a)))?)?;
    d.set_item("seeds", array1(py, std::mem::take(&mut run.seeds)))?;
    d.set_item("iterations", options_to_py(py, &run.iterations)?)?;
    d.set_item("diverged_at", options_to_py(py, &run.diverged_at)?)?;
    d.set_item("max_abs_weight", array1(py, std::mem::take(&mut run.max_abs_weight)))?;
    d.set_item("held_out_accuracy", run.held_out_accuracy.take().map(|v| array1(py, v)))?;
    let heads = PyDict::new(py);
    for (name, v) in std::mem::take(&mut run.held_out_heads) {
        heads.set_item(name, array1(py, v))?;
    }
    d.set_item("held_out_heads", heads)?;
    if let Some(p) = run.probes.take() {
        let pd = PyDict::new(py);
        pd.set_item("keys", PyList::new(py, p.keys.iter().map(|(l, q)| (l.as_str(), *q)))?)?;
        let per_seed = PyList::empty(py);
        for rows in &p.rows {
            let s = PyDict::new(py);
            s.set_item("iteration", array1(py, rows.iter().map(|r| r.0).collect::<Vec<u32>>()))?;
            s.set_item("key", array1(py, rows.iter().map(|r| r.1).collect::<Vec<u16>>()))?;
            s.set_item("value", array1(py, rows.iter().map(|r| r.2).collect::<Vec<f32>>()))?;
            per_seed.append(s)?;
        }
        pd.set_item("rows", per_seed)?;
        pd.set_item("histogram_keys", PyList::new(py, p.hist_keys.iter().map(|(l, k)| (l.as_str(), *k)))?)?;
        let hist = |v: Vec<Vec<Vec<f32>>>| -> PyResult<Bound<'py, PyList>> {
            let out = PyList::empty(py);
            for seed in v {
                out.append(PyList::new(py, seed.into_iter().map(|h| array1(py, h)))?)?;
            }
            Ok(out)
        };
        pd.set_item("first", hist(p.first)?)?;
        pd.set_item("last", hist(p.last)?)?;
        pd.set_item("last_iteration", array1(py, p.last_iteration))?;
        d.set_item("probes", pd)?;
    } else {
        d.set_item("probes", py.None())?;
    }
    if let Some(learned) = run.learned_at.take() {
        let never = |v: Vec<Option<u32>>| v.into_iter().map(|x| x.map_or(f64::NAN, f64::from)).collect::<Vec<f64>>();
        d.set_item("learned_at", PyList::new(py, learned.into_iter().map(|v| array1(py, never(v))))?)?;
    } else {
        d.set_item("learned_at", py.None())?;
    }
    if let Some(samples) = run.samples.take() {
        let out = PyList::empty(py);
        for s in samples {
            let sd = PyDict::new(py);
            let forgetting: Vec<u32> = (0..s.evaluations.len()).map(|i| s.forgetting(i)).collect();
            let correctness: Vec<f64> = (0..s.evaluations.len()).map(|i| s.correctness(i)).collect();
            sd.set_item("forgetting", array1(py, forgetting))?;
            sd.set_item("correctness", array1(py, correctness))?;
            sd.set_item("evaluations", array1(py, s.evaluations))?;
            sd.set_item("correct", array1(py, s.correct))?;
            sd.set_item("forgetting_events", array1(py, s.forgetting_events))?;
            sd.set_item("ever_correct", array1(py, s.ever_correct))?;
            sd.set_item("confidence", array1(py, s.confidence))?;
            sd.set_item("variability", array1(py, s.variability))?;
            let scored = PyList::empty(py);
            for sc in s.scored {
                let x = PyDict::new(py);
                x.set_item("iteration", sc.iteration)?;
                x.set_item("el2n", array1(py, sc.el2n))?;
                x.set_item("grand", array1(py, sc.grand))?;
                scored.append(x)?;
            }
            sd.set_item("scored", scored)?;
            if !s.trace.is_empty() {
                let t = PyDict::new(py);
                t.set_item("iteration", array1(py, s.trace.iter().map(|r| r.0).collect::<Vec<u32>>()))?;
                t.set_item("sample", array1(py, s.trace.iter().map(|r| r.1).collect::<Vec<u32>>()))?;
                t.set_item("correct", array1(py, s.trace.iter().map(|r| r.2).collect::<Vec<bool>>()))?;
                t.set_item("p_true", array1(py, s.trace.iter().map(|r| r.3).collect::<Vec<f64>>()))?;
                sd.set_item("trace", t)?;
            }
            out.append(sd)?;
        }
        d.set_item("samples", out)?;
    } else {
        d.set_item("samples", py.None())?;
    }
    if let Some(c) = cscores {
        let cd = PyDict::new(py);
        cd.set_item("ratios", array1(py, c.ratios.clone()))?;
        cd.set_item("seeds", c.seeds)?;
        cd.set_item("epochs", c.epochs)?;
        let n = c.cscore.len();
        let per_ratio: Vec<f64> = c.per_ratio.into_iter().flatten().collect();
        cd.set_item("per_ratio", array_nd(py, per_ratio, &[c.ratios.len(), n])?)?;
        cd.set_item("cscore", array1(py, c.cscore))?;
        cd.set_item("min_held_out", array1(py, c.min_held_out.iter().map(|&v| v as u64).collect::<Vec<u64>>()))?;
        d.set_item("cscores", cd)?;
    } else {
        d.set_item("cscores", py.None())?;
    }
    if let Some(conf) = run.confusion.take() {
        let cd = PyDict::new(py);
        cd.set_item("head", &conf.head)?;
        cd.set_item("set", &conf.set)?;
        cd.set_item("classes", conf.classes)?;
        cd.set_item("pooled", array_nd(py, conf.pooled(), &[conf.classes, conf.classes])?)?;
        let per = PyList::empty(py);
        for c in conf.per_seed {
            match c {
                Some(c) => per.append(array_nd(py, c, &[conf.classes, conf.classes])?)?,
                None => per.append(py.None())?,
            }
        }
        cd.set_item("per_seed", per)?;
        d.set_item("confusion", cd)?;
    } else {
        d.set_item("confusion", py.None())?;
    }
    let params = PyList::empty(py);
    for point in run.final_params.take().unwrap_or_default() {
        let p = PyDict::new(py);
        for ((name, shape), t) in names.iter().zip(point) {
            p.set_item(name, array_nd(py, t, shape)?)?;
        }
        params.append(p)?;
    }
    d.set_item("params", params)?;
    Ok(d)
}

/// Trains every cell of an experiment with the GIL released. `progress(cell, cells, name,
/// iteration, max_iters, converged, seeds)` is called with the GIL about every 100 ms (and once
/// at each cell's end with `iteration = -1`); Python's signal handlers run at the same moments,
/// so Ctrl-C (KeyboardInterrupt) stops the run after the current iteration: the returned dict
/// then has `complete = False` and `interrupted` holds the exception (as it does for an
/// exception raised by `progress`, which stops the run the same way). With `out`, the outputs
/// `gradlab run` writes land there too.
#[pyfunction]
#[pyo3(signature = (kind, source, overrides, out=None, force=false, progress=None))]
fn run<'py>(
    py: Python<'py>,
    kind: &str,
    source: &Bound<'py, PyAny>,
    overrides: &Bound<'py, PyDict>,
    out: Option<PathBuf>,
    force: bool,
    progress: Option<Py<PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let mut lab = read_lab(kind, source, overrides)?;
    // Every seed's final parameters are handed back (the command line keeps them only for 2D data).
    for c in &mut lab.cells {
        c.opts.keep_final_params = true;
    }
    let cells: Vec<usize> = (0..lab.cells.len()).collect();
    if let Some(o) = &out {
        gradlab::atomic::prepare_out_dir(o, force).map_err(py_err)?;
    }
    // Set (with the GIL) when Python's signal handlers raised: the run stops after the iteration.
    let interrupted: std::sync::Mutex<Option<PyErr>> = std::sync::Mutex::new(None);
    let lab_ref = &lab;
    let interrupted_ref = &interrupted;
    let stopped = move || interrupted_ref.lock().map_or(true, |e| e.is_some());
    let trained = py.detach(move || -> gradlab::Result<(lab::Trained, Option<SweepSummary>, Vec<CellShapes>)> {
        let mut runner = |names: &[String],
                          max_iters: usize,
                          seeds: usize,
                          run: &mut gradlab::experiments::TrainCell<'_>|
         -> gradlab::Result<(Vec<Run>, bool)> {
            let mut runs = vec![];
            for (k, name) in names.iter().enumerate() {
                if stopped() {
                    return Ok((runs, false));
                }
                let mut last: Option<Instant> = None;
                let tell = |it: i64, converged: usize| -> bool {
                    Python::attach(|py| {
                        // Python runs signal handlers inside the callback too: a KeyboardInterrupt
                        // (or any error of the callback) surfaces from either call.
                        let called = match &progress {
                            Some(p) => {
                                p.call1(py, (k, names.len(), name.as_str(), it, max_iters, converged, seeds)).map(drop)
                            }
                            None => Ok(()),
                        };
                        if let Err(e) = called.and_then(|()| py.check_signals())
                            && let Ok(mut slot) = interrupted_ref.lock()
                        {
                            slot.get_or_insert(e);
                        }
                    });
                    !stopped()
                };
                let r = run(k, &mut |it, converged| {
                    if last.is_none_or(|t| t.elapsed() >= Duration::from_millis(100)) {
                        last = Some(Instant::now());
                        return tell(it as i64, converged);
                    }
                    !stopped()
                })?;
                tell(-1, 0);
                runs.push(r);
            }
            let complete = !stopped();
            Ok((runs, complete))
        };
        let trained = lab::train(lab_ref, &cells, lab_ref.data(0)?, &mut runner)?;
        // Each cell's tensor names and shapes (a sweep may change a layer's width).
        let mut names = vec![];
        let mut loaded: Vec<(&lab::DataSection, gradlab::data::Samples)> = vec![];
        for (k, _) in &trained.runs {
            let section = &lab_ref.cells[*k].file.data;
            if !loaded.iter().any(|(d, _)| *d == section) {
                loaded.push((section, lab_ref.data(*k)?.0));
            }
            let data = &loaded.iter().find(|(d, _)| *d == section).expect("just loaded").1;
            let net = lab_ref.build(*k, data, 1)?;
            let shapes: Vec<(String, Vec<usize>)> =
                net.tensors().map(|(n, id)| (n.to_string(), net.graph.shape(id)[1..].to_vec())).collect();
            names.push(shapes);
        }
        let summary = match &out {
            Some(o) => Some(lab::write_outputs(
                o,
                lab_ref,
                &trained.runs,
                &trained.cscores,
                &trained.data,
                trained.complete,
                None,
            )?),
            None => None,
        };
        Ok((trained, summary, names))
    });
    let (trained, written, names) = trained.map_err(py_err)?;
    // summary.json's content (what `out` received, when given).
    let summary = written.unwrap_or_else(|| SweepSummary {
        study: "lab".into(),
        file: lab.path.display().to_string(),
        data: trained.data.source.clone(),
        complete: trained.complete,
        shard: None,
        total_cells: lab.cells.len(),
        cells: trained
            .runs
            .iter()
            .map(|(k, r)| {
                let c = &lab.cells[*k];
                gradlab::experiments::sweep::cell_summary(c.index, &c.name, c.axes.clone(), r)
            })
            .collect(),
    });
    let d = PyDict::new(py);
    d.set_item("summary", json_to_py(py, &summary)?)?;
    d.set_item("file", lab.path.display().to_string())?;
    d.set_item("complete", trained.complete)?;
    let interrupted = interrupted.into_inner().ok().flatten();
    d.set_item("interrupted", interrupted.map(|e| e.into_value(py)))?;
    let runs = PyList::empty(py);
    for (((k, r), c), names) in trained.runs.into_iter().zip(trained.cscores).zip(&names) {
        runs.append(run_to_py(py, &lab.cells[k], r, c, names)?)?;
    }
    d.set_item("runs", runs)?;
    d.set_item("total_cells", lab.cells.len())?;
    Ok(d)
}

/// The compiled-in presets: `(name, network file text)`.
#[pyfunction]
fn presets() -> Vec<(&'static str, &'static str)> {
    gradlab::experiments::presets::PRESETS.to_vec()
}

/// Every cell's resolved experiment (sweep values set) as dicts, checked: what `run` would train.
#[pyfunction]
fn cells<'py>(
    py: Python<'py>,
    kind: &str,
    source: &Bound<'py, PyAny>,
    overrides: &Bound<'py, PyDict>,
) -> PyResult<Bound<'py, PyList>> {
    let lab = read_lab(kind, source, overrides)?;
    let out = PyList::empty(py);
    for c in &lab.cells {
        let d = PyDict::new(py);
        d.set_item("name", &c.name)?;
        d.set_item("axes", json_to_py(py, &c.axes)?)?;
        d.set_item("experiment", json_to_py(py, &c.file)?)?;
        d.set_item("seeds", c.opts.seeds)?;
        d.set_item("max_iters", c.opts.max_iters)?;
        out.append(d)?;
    }
    Ok(out)
}

/// Parameters given from Python: a safetensors path, or a dict of float64 arrays by name.
fn params_bytes(py: Python<'_>, params: &Bound<'_, PyAny>) -> PyResult<(Vec<u8>, PathBuf)> {
    if let Ok(d) = params.cast::<PyDict>() {
        let mut blobs: Vec<(String, Vec<usize>, Vec<u8>)> = vec![];
        for (k, v) in d.iter() {
            let name: String = k.extract()?;
            let a = py.import("numpy")?.call_method1("ascontiguousarray", (v, "float64"))?;
            let a = a.cast::<numpy::PyArrayDyn<f64>>().map_err(|e| PyValueError::new_err(e.to_string()))?;
            let ro = a.readonly();
            let shape = ro.shape().to_vec();
            let bytes: Vec<u8> = ro.as_slice()?.iter().flat_map(|x| x.to_le_bytes()).collect();
            blobs.push((name, shape, bytes));
        }
        let views: Vec<(String, safetensors::tensor::TensorView)> = blobs
            .iter()
            .map(|(n, s, b)| {
                safetensors::tensor::TensorView::new(safetensors::Dtype::F64, s.clone(), b)
                    .map(|v| (n.clone(), v))
                    .map_err(|e| PyValueError::new_err(format!("`{n}`: {e}")))
            })
            .collect::<PyResult<_>>()?;
        let bytes = safetensors::serialize(views, None).map_err(|e| PyValueError::new_err(e.to_string()))?;
        return Ok((bytes, PathBuf::from("<params>")));
    }
    let path: PathBuf = params.extract()?;
    Ok((read_file(&path)?, path))
}

/// The loss landscape on the plane through `params` along two filter-normalised directions
/// (Li et al.), as `gradlab landscape --network` computes it.
#[pyfunction]
#[pyo3(signature = (kind, source, overrides, params, points=51, span=1.0, direction_seed=0, biases=false))]
#[allow(clippy::too_many_arguments)]
fn landscape<'py>(
    py: Python<'py>,
    kind: &str,
    source: &Bound<'py, PyAny>,
    overrides: &Bound<'py, PyDict>,
    params: &Bound<'py, PyAny>,
    points: usize,
    span: f64,
    direction_seed: u64,
    biases: bool,
) -> PyResult<Bound<'py, PyDict>> {
    use gradlab::experiments::net_landscape as nl;
    if !(2..=401).contains(&points) {
        return Err(PyValueError::new_err(format!("points must be between 2 and 401, got {points}")));
    }
    if !(span.is_finite() && span > 0.0) {
        return Err(PyValueError::new_err(format!("span must be a positive number, got {span}")));
    }
    let lab = read_lab(kind, source, overrides)?;
    let (bytes, name) = params_bytes(py, params)?;
    let (data, _) = lab.data(0).map_err(py_err)?;
    let network = &lab.cells[0].file.network;
    let batch = data.n.min(256);
    let path = lab.path.clone();
    let result = py.detach(|| -> gradlab::Result<_> {
        let build =
            |e: usize| gradlab::models::spec::build::<f32>(network, &data, e, batch).map_err(|err| err.in_file(&path));
        let mut one = build(1)?;
        gradlab::models::params::load_bytes(&mut one, None, &bytes, &name)?;
        let theta = nl::parameters(&one);
        let ((d1, d2), loss, acc) = nl::plane(&build, &data, &theta, direction_seed, biases, points, span)?;
        let names: Vec<(String, Vec<usize>)> =
            one.tensors().map(|(n, id)| (n.to_string(), one.graph.shape(id)[1..].to_vec())).collect();
        Ok((d1, d2, loss, acc, names))
    });
    let (d1, d2, loss, acc, names) = result.map_err(py_err)?;
    let d = PyDict::new(py);
    d.set_item("alpha", array1(py, nl::axis(points, span)))?;
    d.set_item("beta", array1(py, nl::axis(points, span)))?;
    d.set_item("loss", array_nd(py, loss, &[points, points])?)?;
    d.set_item("accuracy", array_nd(py, acc, &[points, points])?)?;
    for (key, dir) in [("d1", d1), ("d2", d2)] {
        let p = PyDict::new(py);
        for ((n, shape), t) in names.iter().zip(dir) {
            p.set_item(n, array_nd(py, t, shape)?)?;
        }
        d.set_item(key, p)?;
    }
    Ok(d)
}

/// The curvature of the training loss at `params` (or the first seed's initialisation), as
/// `gradlab hessian` measures it.
#[pyfunction]
#[pyo3(signature = (kind, source, overrides, params=None, top=5, full=None, probes=4, steps=60, trace_tol=1e-3, max_probes=200, seed=0))]
#[allow(clippy::too_many_arguments)]
fn hessian<'py>(
    py: Python<'py>,
    kind: &str,
    source: &Bound<'py, PyAny>,
    overrides: &Bound<'py, PyDict>,
    params: Option<&Bound<'py, PyAny>>,
    top: usize,
    full: Option<bool>,
    probes: usize,
    steps: usize,
    trace_tol: f64,
    max_probes: usize,
    seed: u64,
) -> PyResult<Bound<'py, PyDict>> {
    use gradlab::experiments::curvature::{SpectrumOptions, spectrum};
    let lab = read_lab(kind, source, overrides)?;
    let point = params.map(|p| params_bytes(py, p)).transpose()?;
    let o = SpectrumOptions { top, full, probes, steps, trace_tol, max_probes, seed };
    let sp =
        py.detach(|| spectrum(&lab, point.as_ref().map(|(b, n)| (b.as_slice(), n.as_path())), &o)).map_err(py_err)?;
    let d = PyDict::new(py);
    let named = point.as_ref().map(|(_, n)| n.as_path()).filter(|n| *n != Path::new("<params>"));
    d.set_item("summary", json_to_py(py, &sp.summary(&lab.path, named, lab.cells[0].opts.optim.lr, probes))?)?;
    d.set_item("top", array1(py, sp.top.iter().map(|p| p.0).collect::<Vec<f64>>()))?;
    d.set_item("top_residuals", array1(py, sp.top.iter().map(|p| p.1).collect::<Vec<f64>>()))?;
    d.set_item("bottom", array1(py, sp.bottom.iter().map(|p| p.0).collect::<Vec<f64>>()))?;
    d.set_item("bottom_residuals", array1(py, sp.bottom.iter().map(|p| p.1).collect::<Vec<f64>>()))?;
    d.set_item("trace", sp.trace.trace)?;
    d.set_item("trace_standard_error", sp.trace.standard_error)?;
    d.set_item("density_grid", array1(py, sp.density_grid))?;
    d.set_item("density", array1(py, sp.density))?;
    let nodes = PyList::empty(py);
    for r in sp.density_runs {
        let (t, w): (Vec<f64>, Vec<f64>) = r.into_iter().unzip();
        nodes.append((array1(py, t), array1(py, w)))?;
    }
    d.set_item("density_nodes", nodes)?;
    d.set_item("eigenvalues", sp.full.map(|v| array1(py, v)))?;
    Ok(d)
}

/// Every parameter tensor's gradient against central finite differences in f64, as `gradlab
/// check` does (both modes for nets with BatchNorm or noise layers).
#[pyfunction]
#[pyo3(signature = (kind, source, overrides, cell=0, samples=8, per_tensor=16))]
fn check<'py>(
    py: Python<'py>,
    kind: &str,
    source: &Bound<'py, PyAny>,
    overrides: &Bound<'py, PyDict>,
    cell: usize,
    samples: usize,
    per_tensor: usize,
) -> PyResult<Bound<'py, PyList>> {
    let lab = read_lab(kind, source, overrides)?;
    let c = lab
        .cells
        .get(cell)
        .ok_or_else(|| PyValueError::new_err(format!("cell {cell}: the experiment has {} cell(s)", lab.cells.len())))?;
    if samples == 0 || per_tensor == 0 {
        return Err(PyValueError::new_err("samples and per_tensor must be at least 1"));
    }
    let (data, _) = lab.data(cell).map_err(py_err)?;
    let o = &c.opts;
    let init = gradlab::models::Init::seeds(o.first_seed, 1, o.init.weights, o.init.bias);
    let checks = py
        .detach(|| {
            gradlab::experiments::check::check(
                &c.file.network,
                &data,
                &init,
                o.init_from.as_deref(),
                samples,
                per_tensor,
            )
        })
        .map_err(|e| py_err(e.in_file(&lab.path)))?;
    let out = PyList::empty(py);
    for t in checks {
        let d = PyDict::new(py);
        d.set_item("name", &t.name)?;
        d.set_item("mode", t.mode)?;
        d.set_item("shape", PyTuple::new(py, &t.shape)?)?;
        d.set_item("checked", t.checked)?;
        d.set_item("at_kink", t.at_kink)?;
        d.set_item("max_rel_error", t.max_rel_error)?;
        d.set_item("max_abs_error", t.max_abs_error)?;
        d.set_item("ok", t.ok)?;
        out.append(d)?;
    }
    Ok(out)
}

/// Task 1: one sigmoid (or any activation's) neuron's loss and gradient surfaces over (w, b).
#[pyfunction]
#[pyo3(signature = (act="sigmoid", x=1.0, y=0.5, w_range=(-4.0, 4.0), b_range=(-4.0, 4.0), points=201))]
fn neuron_landscape<'py>(
    py: Python<'py>,
    act: &str,
    x: f64,
    y: f64,
    w_range: (f64, f64),
    b_range: (f64, f64),
    points: usize,
) -> PyResult<Bound<'py, PyDict>> {
    use gradlab::experiments::landscape::{LandscapeConfig, compute};
    let act = gradlab::activations::Activation::parse(act).map_err(|e| PyValueError::new_err(format!("act: {e}")))?;
    let cfg = LandscapeConfig { act, x, y, w_range, b_range, points };
    cfg.validate().map_err(py_err)?;
    let l = py.detach(|| compute(&cfg)).map_err(py_err)?;
    let d = PyDict::new(py);
    d.set_item("w", array1(py, l.ws.clone()))?;
    d.set_item("b", array1(py, l.bs.clone()))?;
    for (name, _, v) in l.quantities() {
        d.set_item(name, array_nd(py, v.to_vec(), &[l.bs.len(), l.ws.len()])?)?;
    }
    Ok(d)
}

#[pymodule]
fn _gradlab(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(run, m)?)?;
    m.add_function(wrap_pyfunction!(presets, m)?)?;
    m.add_function(wrap_pyfunction!(cells, m)?)?;
    m.add_function(wrap_pyfunction!(landscape, m)?)?;
    m.add_function(wrap_pyfunction!(hessian, m)?)?;
    m.add_function(wrap_pyfunction!(check, m)?)?;
    m.add_function(wrap_pyfunction!(neuron_landscape, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}

//! What a run's sharpness column (measured during training by `training::sharpness`, with
//! `crate::curvature`'s Lanczos) says against 2/lr. Cohen et al. 2021
//! found that under full-batch gradient descent the sharpness rises until it hovers near 2/lr,
//! the largest curvature a step of size lr can follow without oscillating away ("edge of
//! stability"); `--sharpness-every K` records it during training.

/// What a run's sharpness column says, against the edge of stability 2/lr.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SharpnessRow {
    pub setting: String,
    pub lr: f64,
    pub two_over_lr: f64,
    /// Medians over seeds of: the sharpness at iteration 1; the median over the second half of
    /// each seed's measured iterations; the largest.
    pub first: Option<f64>,
    pub late: Option<f64>,
    pub max: Option<f64>,
    pub converged: usize,
    pub seeds: usize,
    pub median_iterations: Option<f64>,
}

pub fn sharpness_row(lr: f64, run: &crate::record::Run) -> SharpnessRow {
    let (mut first, mut late, mut max) = (vec![], vec![], vec![]);
    if run.columns.iter().any(|c| c == "sharpness") {
        for s in 0..run.seeds.len() {
            let v: Vec<f64> = run.column(s, "sharpness").iter().filter(|x| x.is_finite()).map(|&x| x as f64).collect();
            if let (Some(&a), Some(m)) = (v.first(), v.iter().copied().reduce(f64::max)) {
                first.push(a);
                max.push(m);
                late.push(crate::stats::quantile(&v[v.len() / 2..], 0.5));
            }
        }
    }
    let med = |v: &[f64]| (!v.is_empty()).then(|| crate::stats::quantile(v, 0.5));
    let s = crate::record::RunSummary::of(run);
    SharpnessRow {
        setting: run.setting.clone(),
        lr,
        two_over_lr: 2.0 / lr,
        first: med(&first),
        late: med(&late),
        max: med(&max),
        converged: s.converged,
        seeds: s.seeds,
        median_iterations: s.median_iterations,
    }
}

/// `gradlab hessian`: the curvature of a network file's training loss at one point.
pub struct HessianStudy<'a> {
    pub file: &'a std::path::Path,
    /// Parameters (safetensors); the file's initialisation (first seed) without.
    pub params: Option<&'a std::path::Path>,
    pub out: &'a std::path::Path,
    pub force: bool,
    /// Lanczos's `top` largest and smallest eigenvalues.
    pub top: usize,
    /// The full spectrum: `None` when the net has at most `FULL_MAX` parameters.
    pub full: Option<bool>,
    /// Stochastic Lanczos quadrature: runs and steps per run.
    pub probes: usize,
    pub steps: usize,
    /// Hutchinson: PyHessian's tolerance on the running mean, and the probe cap.
    pub trace_tol: f64,
    pub max_probes: usize,
    pub seed: u64,
}

/// The largest net whose full Hessian is formed (P products and a P × P Jacobi solve).
pub const FULL_MAX: usize = 3000;

pub fn hessian(s: &HessianStudy) -> crate::Result<serde_json::Value> {
    use crate::curvature::{Hvp, full_hessian, lanczos, trace};
    use crate::error::Error;
    use crate::init::SeededRng;
    let lab = crate::experiments::lab::load(s.file)?;
    let cell = &lab.cells[0];
    let (data, _) = lab.data(0)?;
    let mut net: crate::models::Net<f64> =
        crate::models::spec::build(&cell.file.network, &data, 1, data.n).map_err(|e| e.in_file(s.file))?;
    let p = net.graph.param_count();
    let full = s.full.unwrap_or(p <= FULL_MAX);
    if full && p > FULL_MAX {
        return Err(Error::Usage(format!(
            "{}: {p} parameters; the full Hessian (--full) is for networks up to {FULL_MAX}; Lanczos, the trace and the density need no limit",
            s.file.display()
        )));
    }
    if s.top == 0 || s.probes == 0 || s.steps < 2 || !(s.trace_tol > 0.0) || s.max_probes < 2 {
        return Err(Error::Usage(
            "--top and --probes must be at least 1, --steps and --max-probes at least 2, --trace-tol positive".into(),
        ));
    }
    net.init(&crate::models::Init::seeds(cell.opts.first_seed, 1, cell.opts.init.weights, cell.opts.init.bias));
    if let Some(path) = s.params {
        crate::models::params::load_all(&mut net, path)?;
    }
    crate::atomic::prepare_out_dir(s.out, s.force)?;
    let all: Vec<usize> = (0..data.n).collect();
    net.feed(&data, &all);
    let mut hvp = Hvp::new(&net);
    hvp.at(&net);
    let (loss, _) = hvp.gradient();
    let mut rngs = vec![SeededRng::new(s.seed)];
    let timed = |f: &mut dyn FnMut()| {
        let t = std::time::Instant::now();
        f();
        t.elapsed().as_secs_f64()
    };

    // Lanczos: both ends, to a tight residual.
    let mut ritz = lanczos::Ritz::default();
    let o = lanczos::Options { top: s.top, bottom: s.top, tol: 1e-10, min_steps: 2, max_steps: p.min(300) };
    let lanczos_seconds = timed(&mut || {
        let start = lanczos::random_vectors(p, &mut rngs, false);
        ritz = lanczos::lanczos(&mut |v: &[Vec<f64>]| hvp.apply(v), start, &o).remove(0);
    });
    let k = s.top.min(ritz.values.len());
    let top = &ritz.values[..k];
    let bottom: Vec<f64> = ritz.values[ritz.values.len() - k..].to_vec();
    let mut csv = String::from("end,rank,eigenvalue,residual\n");
    for i in 0..k {
        csv.push_str(&format!("top,{},{},{}\n", i + 1, ritz.values[i], ritz.residuals[i]));
    }
    for i in 0..k {
        let j = ritz.values.len() - 1 - i;
        csv.push_str(&format!("bottom,{},{},{}\n", i + 1, ritz.values[j], ritz.residuals[j]));
    }
    crate::atomic::write_atomic(&s.out.join("extremes.csv"), csv.as_bytes())?;

    // Hutchinson's trace.
    let mut tr = vec![];
    let trace_seconds = timed(&mut || {
        tr = trace::hutchinson(&mut |v: &[Vec<f64>]| hvp.apply(v), p, &mut rngs, s.trace_tol, s.max_probes);
    });
    let tr = tr.remove(0);

    // Spectral density by stochastic Lanczos quadrature.
    let mut runs = vec![];
    let steps = s.steps.min(p);
    let density_seconds = timed(&mut || {
        runs = lanczos::density(&mut |v: &[Vec<f64>]| hvp.apply(v), p, &mut rngs, s.probes, steps).remove(0);
    });
    let moment = |k: i32| {
        runs.iter().map(|r| r.iter().map(|(t, w)| w * t.powi(k)).sum::<f64>()).sum::<f64>() / runs.len() as f64
    };
    let (grid, density) = lanczos::broadened(&runs, 1000, 1e-5, 0.01);
    let mut csv = String::from("eigenvalue,density\n");
    for (x, d) in grid.iter().zip(&density) {
        csv.push_str(&format!("{x},{d}\n"));
    }
    crate::atomic::write_atomic(&s.out.join("density.csv"), csv.as_bytes())?;
    let mut nodes = String::from("run,node,weight\n");
    for (r, run) in runs.iter().enumerate() {
        for (t, w) in run {
            nodes.push_str(&format!("{r},{t},{w}\n"));
        }
    }
    crate::atomic::write_atomic(&s.out.join("density_nodes.csv"), nodes.as_bytes())?;

    // The full spectrum (small nets): the reference for the three estimates above.
    let mut exact = serde_json::Value::Null;
    let mut series = vec![(
        "stochastic Lanczos quadrature".to_string(),
        grid.iter().copied().zip(density.iter().copied()).collect(),
        false,
    )];
    if full {
        let started = std::time::Instant::now();
        let h = full_hessian(&mut hvp);
        let ev = crate::curvature::eigen::symmetric_eigenvalues(&h, p);
        let mut csv = String::from("rank,eigenvalue\n");
        for (i, v) in ev.iter().enumerate() {
            csv.push_str(&format!("{},{v}\n", i + 1));
        }
        crate::atomic::write_atomic(&s.out.join("spectrum.csv"), csv.as_bytes())?;
        let pts: Vec<(f64, f64)> = ev.iter().map(|&l| (l, 1.0 / p as f64)).collect();
        let (g, d) = lanczos::broadened(&[pts], 1000, 1e-5, 0.01);
        series.push(("full spectrum, broadened alike".into(), g.into_iter().zip(d).collect(), false));
        let n = p as f64;
        exact = serde_json::json!({
            "top": &ev[..ev.len().min(10)],
            "bottom": &ev[ev.len().saturating_sub(5)..],
            "negative": ev.iter().filter(|v| **v < 0.0).count(),
            "trace": ev.iter().sum::<f64>(),
            "mean": ev.iter().sum::<f64>() / n,
            "second_moment": ev.iter().map(|x| x * x).sum::<f64>() / n,
            "seconds": started.elapsed().as_secs_f64(),
        });
    }
    crate::report::figures::render(
        &s.out.join("density"),
        &crate::report::figures::XyPanels {
            title: format!("Hessian eigenvalue density of {} ({p} parameters)", s.file.display()),
            panels: vec![crate::report::figures::XyPanel {
                title: format!("{} SLQ runs × {steps} Lanczos steps, Gaussian broadening", s.probes),
                x_desc: "eigenvalue".into(),
                y_desc: "density (log scale)".into(),
                log_y: true,
                series: series
                    .into_iter()
                    .map(|(l, v, d): (String, Vec<(f64, f64)>, bool)| {
                        (l, v.into_iter().map(|(x, y)| (x, y + 1e-7)).collect(), d)
                    })
                    .collect(),
                levels: vec![],
            }],
            columns: 1,
        },
    )?;
    let lr = cell.opts.optim.lr;
    let summary = serde_json::json!({
        "file": s.file.display().to_string(),
        "params": s.params.map(|p| p.display().to_string()),
        "parameters": p,
        "loss": loss[0],
        "lanczos": {"top": top, "bottom": bottom, "steps": ritz.steps, "seconds": lanczos_seconds},
        "trace": {"hutchinson": tr.trace, "standard_error": tr.standard_error, "probes": tr.probes, "seconds": trace_seconds},
        "density": {"runs": s.probes, "steps": steps, "mean": moment(1), "second_moment": moment(2), "seconds": density_seconds},
        "full": exact,
        "lr": lr,
        "two_over_lr": 2.0 / lr,
        "hessian_vector_products": hvp.products,
    });
    crate::report::write_json(&s.out.join("summary.json"), &summary)?;
    Ok(summary)
}

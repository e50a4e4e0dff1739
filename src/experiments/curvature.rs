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

/// How to measure the curvature at one point (`gradlab hessian`'s flags, `gradlab.hessian`'s
/// keywords).
#[derive(Clone, Debug)]
pub struct SpectrumOptions {
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

/// `gradlab hessian`: the curvature of a network file's training loss at one point.
pub struct HessianStudy<'a> {
    pub file: &'a std::path::Path,
    /// Parameters (safetensors); the file's initialisation (first seed) without.
    pub params: Option<&'a std::path::Path>,
    pub out: &'a std::path::Path,
    pub force: bool,
    pub options: SpectrumOptions,
}

/// The largest net whose full Hessian is formed (P products and a P × P Jacobi solve).
pub const FULL_MAX: usize = 3000;

/// The curvature of the training loss at one point, every estimate with its time.
#[derive(Clone, Debug)]
pub struct Spectrum {
    pub parameters: usize,
    pub loss: f64,
    /// Lanczos: the `top` largest (descending) and smallest (ascending from the least) Ritz
    /// values with their residuals, and the steps taken.
    pub top: Vec<(f64, f64)>,
    pub bottom: Vec<(f64, f64)>,
    pub lanczos_steps: usize,
    pub trace: crate::curvature::trace::Trace,
    /// Stochastic Lanczos quadrature: each run's nodes and weights, their Gaussian-broadened
    /// density on a grid, and the steps per run.
    pub density_runs: Vec<Vec<(f64, f64)>>,
    pub density_grid: Vec<f64>,
    pub density: Vec<f64>,
    pub density_steps: usize,
    /// Every eigenvalue, descending (small nets).
    pub full: Option<Vec<f64>>,
    /// Seconds of Lanczos, the trace, the density and the full spectrum.
    pub seconds: [f64; 4],
    pub hessian_vector_products: usize,
}

/// Measures cell 0 of `lab` at `params` (safetensors bytes and the name they are known by), or
/// at its first seed's initialisation, on its whole training set.
pub fn spectrum(
    lab: &crate::experiments::lab::Lab,
    params: Option<(&[u8], &std::path::Path)>,
    o: &SpectrumOptions,
) -> crate::Result<Spectrum> {
    use crate::curvature::{Hvp, full_hessian, lanczos, trace};
    use crate::error::Error;
    use crate::init::SeededRng;
    let file = &lab.path;
    let cell = &lab.cells[0];
    let (data, _) = lab.data(0)?;
    let mut net: crate::models::Net<f64> =
        crate::models::spec::build(&cell.file.network, &data, 1, data.n).map_err(|e| e.in_file(file))?;
    let p = net.graph.param_count();
    let full = o.full.unwrap_or(p <= FULL_MAX);
    if full && p > FULL_MAX {
        return Err(Error::Usage(format!(
            "{}: {p} parameters; the full Hessian (--full) is for networks up to {FULL_MAX}; Lanczos, the trace and the density need no limit",
            file.display()
        )));
    }
    if o.top == 0 || o.probes == 0 || o.steps < 2 || !(o.trace_tol > 0.0) || o.max_probes < 2 {
        return Err(Error::Usage(
            "--top and --probes must be at least 1, --steps and --max-probes at least 2, --trace-tol positive".into(),
        ));
    }
    net.init(&crate::models::Init::seeds(cell.opts.first_seed, 1, cell.opts.init.weights, cell.opts.init.bias));
    if let Some((bytes, path)) = params {
        crate::models::params::load_bytes(&mut net, None, bytes, path)?;
    }
    let all: Vec<usize> = (0..data.n).collect();
    net.feed(&data, &all);
    let mut hvp = Hvp::new(&net);
    hvp.at(&net);
    let (loss, _) = hvp.gradient();
    let mut rngs = vec![SeededRng::new(o.seed)];
    let timed = |f: &mut dyn FnMut()| {
        let t = std::time::Instant::now();
        f();
        t.elapsed().as_secs_f64()
    };

    // Lanczos: both ends, to a tight residual.
    let mut ritz = lanczos::Ritz::default();
    let lo = lanczos::Options { top: o.top, bottom: o.top, tol: 1e-10, min_steps: 2, max_steps: p.min(300) };
    let lanczos_seconds = timed(&mut || {
        let start = lanczos::random_vectors(p, &mut rngs, false);
        ritz = lanczos::lanczos(&mut |v: &[Vec<f64>]| hvp.apply(v), start, &lo).remove(0);
    });
    let k = o.top.min(ritz.values.len());
    let pair = |j: usize| (ritz.values[j], ritz.residuals[j]);
    let top: Vec<(f64, f64)> = (0..k).map(pair).collect();
    let bottom: Vec<(f64, f64)> = (0..k).map(|i| pair(ritz.values.len() - 1 - i)).collect();

    // Hutchinson's trace.
    let mut tr = vec![];
    let trace_seconds = timed(&mut || {
        tr = trace::hutchinson(&mut |v: &[Vec<f64>]| hvp.apply(v), p, &mut rngs, o.trace_tol, o.max_probes);
    });

    // Spectral density by stochastic Lanczos quadrature.
    let mut runs = vec![];
    let steps = o.steps.min(p);
    let density_seconds = timed(&mut || {
        runs = lanczos::density(&mut |v: &[Vec<f64>]| hvp.apply(v), p, &mut rngs, o.probes, steps).remove(0);
    });
    let (density_grid, density) = lanczos::broadened(&runs, 1000, 1e-5, 0.01);

    // The full spectrum (small nets): the reference for the three estimates above.
    let mut full_seconds = 0.0;
    let full = full.then(|| {
        let started = std::time::Instant::now();
        let h = full_hessian(&mut hvp);
        let ev = crate::curvature::eigen::symmetric_eigenvalues(&h, p);
        full_seconds = started.elapsed().as_secs_f64();
        ev
    });
    Ok(Spectrum {
        parameters: p,
        loss: loss[0],
        top,
        bottom,
        lanczos_steps: ritz.steps,
        trace: tr.remove(0),
        density_runs: runs,
        density_grid,
        density,
        density_steps: steps,
        full,
        seconds: [lanczos_seconds, trace_seconds, density_seconds, full_seconds],
        hessian_vector_products: hvp.products,
    })
}

impl Spectrum {
    /// What `summary.json` says (`file` and `params` name the point; `lr` the file's rate).
    pub fn summary(
        &self,
        file: &std::path::Path,
        params: Option<&std::path::Path>,
        lr: f64,
        probes: usize,
    ) -> serde_json::Value {
        let moment = |k: i32| {
            self.density_runs.iter().map(|r| r.iter().map(|(t, w)| w * t.powi(k)).sum::<f64>()).sum::<f64>()
                / self.density_runs.len() as f64
        };
        let values = |v: &[(f64, f64)]| v.iter().map(|p| p.0).collect::<Vec<f64>>();
        let exact = match &self.full {
            None => serde_json::Value::Null,
            Some(ev) => {
                let n = ev.len() as f64;
                serde_json::json!({
                    "top": &ev[..ev.len().min(10)],
                    "bottom": &ev[ev.len().saturating_sub(5)..],
                    "negative": ev.iter().filter(|v| **v < 0.0).count(),
                    "trace": ev.iter().sum::<f64>(),
                    "mean": ev.iter().sum::<f64>() / n,
                    "second_moment": ev.iter().map(|x| x * x).sum::<f64>() / n,
                    "seconds": self.seconds[3],
                })
            }
        };
        let t = &self.trace;
        // summary.json lists the bottom end as Lanczos orders it, descending to the least.
        let bottom_descending: Vec<f64> = self.bottom.iter().rev().map(|p| p.0).collect();
        serde_json::json!({
            "file": file.display().to_string(),
            "params": params.map(|p| p.display().to_string()),
            "parameters": self.parameters,
            "loss": self.loss,
            "lanczos": {"top": values(&self.top), "bottom": bottom_descending, "steps": self.lanczos_steps, "seconds": self.seconds[0]},
            "trace": {"hutchinson": t.trace, "standard_error": t.standard_error, "probes": t.probes, "seconds": self.seconds[1]},
            "density": {"runs": probes, "steps": self.density_steps, "mean": moment(1), "second_moment": moment(2), "seconds": self.seconds[2]},
            "full": exact,
            "lr": lr,
            "two_over_lr": 2.0 / lr,
            "hessian_vector_products": self.hessian_vector_products,
        })
    }
}

/// `gradlab hessian`: [`spectrum`], written as extremes.csv, density.csv, density_nodes.csv,
/// spectrum.csv (small nets), the density figure and summary.json.
pub fn hessian(s: &HessianStudy) -> crate::Result<serde_json::Value> {
    use crate::curvature::lanczos;
    let lab = crate::experiments::lab::load(s.file)?;
    let bytes = s.params.map(|path| crate::models::params::read_params_file(path)).transpose()?;
    let point = bytes.as_deref().zip(s.params);
    // A directory that is not free is found before the work, not after it.
    crate::atomic::prepare_out_dir(s.out, s.force)?;
    let sp = spectrum(&lab, point, &s.options)?;
    let p = sp.parameters;
    let mut csv = String::from("end,rank,eigenvalue,residual\n");
    for (i, (v, r)) in sp.top.iter().enumerate() {
        csv.push_str(&format!("top,{},{v},{r}\n", i + 1));
    }
    for (i, (v, r)) in sp.bottom.iter().enumerate() {
        csv.push_str(&format!("bottom,{},{v},{r}\n", i + 1));
    }
    crate::atomic::write_atomic(&s.out.join("extremes.csv"), csv.as_bytes())?;
    let mut csv = String::from("eigenvalue,density\n");
    for (x, d) in sp.density_grid.iter().zip(&sp.density) {
        csv.push_str(&format!("{x},{d}\n"));
    }
    crate::atomic::write_atomic(&s.out.join("density.csv"), csv.as_bytes())?;
    let mut nodes = String::from("run,node,weight\n");
    for (r, run) in sp.density_runs.iter().enumerate() {
        for (t, w) in run {
            nodes.push_str(&format!("{r},{t},{w}\n"));
        }
    }
    crate::atomic::write_atomic(&s.out.join("density_nodes.csv"), nodes.as_bytes())?;
    let mut series = vec![(
        "stochastic Lanczos quadrature".to_string(),
        sp.density_grid.iter().copied().zip(sp.density.iter().copied()).collect(),
        false,
    )];
    if let Some(ev) = &sp.full {
        let mut csv = String::from("rank,eigenvalue\n");
        for (i, v) in ev.iter().enumerate() {
            csv.push_str(&format!("{},{v}\n", i + 1));
        }
        crate::atomic::write_atomic(&s.out.join("spectrum.csv"), csv.as_bytes())?;
        let pts: Vec<(f64, f64)> = ev.iter().map(|&l| (l, 1.0 / p as f64)).collect();
        let (g, d) = lanczos::broadened(&[pts], 1000, 1e-5, 0.01);
        series.push(("full spectrum, broadened alike".into(), g.into_iter().zip(d).collect(), false));
    }
    let steps = sp.density_steps;
    crate::report::figures::render(
        &s.out.join("density"),
        &crate::report::figures::XyPanels {
            title: format!("Hessian eigenvalue density of {} ({p} parameters)", s.file.display()),
            panels: vec![crate::report::figures::XyPanel {
                title: format!("{} SLQ runs × {steps} Lanczos steps, Gaussian broadening", s.options.probes),
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
    let summary = sp.summary(s.file, s.params, lab.cells[0].opts.optim.lr, s.options.probes);
    crate::report::write_json(&s.out.join("summary.json"), &summary)?;
    Ok(summary)
}

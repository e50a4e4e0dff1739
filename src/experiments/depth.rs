//! The depth study, going past the report as Glorot & Bengio (2010) did: MLPs of 1 to D hidden
//! layers on a built-in dataset, sigmoid / tanh / ReLU × initialisation (the report's truncated
//! normal of std 0.1, Xavier, He). Measured per cell over many seeds: the ratio of the first
//! hidden layer's back-propagated gradient RMS to the last hidden layer's (below 1: gradients
//! shrink towards the input), at initialisation and at the end; iterations to 100%; the fraction
//! converged. Every cell also runs with BatchNorm between each hidden layer and its activation
//! (the standard modern remedy): do the deep sigmoid and std-0.1 ReLU nets then train?

use crate::activations::Activation;
use crate::data::Samples;
use crate::error::Result;
use crate::init::WeightInit;
use crate::models::spec::{Layer, NetworkSpec, OutputSpec};
use crate::record::{Run, RunSummary};
use crate::report::figures::{Band, CurvePanels, Panel, render};
use crate::training::{InitOptions, TrainOptions, train_parallel};
use serde::Serialize;
use std::path::Path;

#[derive(Clone, Debug, Serialize)]
pub struct DepthCell {
    pub depth: usize,
    #[serde(serialize_with = "crate::report::display")]
    pub act: Activation,
    /// `truncated_normal(0.1)`, `xavier_uniform` or `he_uniform`.
    pub init: &'static str,
    #[serde(skip)]
    pub weights: WeightInit,
    /// BatchNorm between each hidden dense layer and its activation.
    pub batchnorm: bool,
}

impl DepthCell {
    pub fn name(&self) -> String {
        format!("depth{}+{}+{}{}", self.depth, self.act, self.init, if self.batchnorm { "+bn" } else { "" })
    }

    /// The layer holding hidden layer `k`'s dense pre-activation (two layers per hidden layer
    /// with BatchNorm).
    pub fn hidden_layer(&self, k: usize) -> String {
        format!("layers.{}", if self.batchnorm { 2 * k } else { k })
    }
}

pub const INITS: [(&str, WeightInit); 3] = [
    ("truncated_normal(0.1)", WeightInit::TruncatedNormal { std: 0.1 }),
    ("xavier_uniform", WeightInit::XavierUniform { gain: 1.0 }),
    ("he_uniform", WeightInit::HeUniform),
];

/// Every depth 1..=max_depth × sigmoid, tanh, ReLU × the three initialisations, without and
/// (`batchnorm`) with BatchNorm.
pub fn plan(max_depth: usize, batchnorm: bool) -> Vec<DepthCell> {
    let mut cells = vec![];
    for bn in if batchnorm { vec![false, true] } else { vec![false] } {
        for act in [Activation::Sigmoid, Activation::Tanh, Activation::Relu] {
            for (init, weights) in INITS {
                for depth in 1..=max_depth {
                    cells.push(DepthCell { depth, act, init, weights, batchnorm: bn });
                }
            }
        }
    }
    cells
}

/// `depth` hidden dense layers of `width` units with `act` (with BatchNorm: dense, then
/// BatchNorm with `act`), then one logit (sigmoid CE).
pub fn network(cell: &DepthCell, width: usize) -> NetworkSpec {
    let mut layers: Vec<Layer> = (0..cell.depth)
        .map(|_| Layer::Dense { units: width, act: Some(cell.act.to_string()), bias: Default::default(), name: None })
        .collect();
    layers.push(Layer::Dense { units: 1, act: None, bias: Default::default(), name: None });
    let spec = NetworkSpec {
        layers,
        output: OutputSpec { loss: Some("sigmoid_ce".into()), ..Default::default() },
        heads: None,
    };
    if cell.batchnorm { crate::experiments::batchnorm::with_batchnorm(&spec) } else { spec }
}

/// Trains one cell: biases 0 (as `torch.nn.init` users would), the report's SGD otherwise.
pub fn run_cell(
    cell: &DepthCell,
    width: usize,
    data: &Samples,
    opts: &TrainOptions,
    progress: &mut dyn FnMut(usize, usize) -> bool,
) -> Result<Run> {
    let spec = network(cell, width);
    let opts = TrainOptions { init: InitOptions { weights: cell.weights, bias: 0.0 }, ..opts.clone() };
    let build = |e: usize| crate::models::spec::build::<f32>(&spec, data, e, data.n);
    let mut run = train_parallel(&cell.name(), &build, data, None, &opts, progress)?;
    run.setting = cell.name();
    Ok(run)
}

/// Trains every cell and writes the study's outputs; returns its rows and whether it ran to
/// the end.
pub fn run_study(
    cells: &[DepthCell],
    width: usize,
    data: &Samples,
    source: &str,
    opts: &TrainOptions,
    out: &Path,
    runner: &mut crate::experiments::Runner,
) -> Result<(Vec<DepthRow>, bool)> {
    let names: Vec<String> = cells.iter().map(|c| c.name()).collect();
    let (runs, complete) = runner(&names, opts.max_iters, opts.seeds, &mut |k, progress| {
        run_cell(&cells[k], width, data, opts, progress)
    })?;
    let rows: Vec<DepthRow> = cells.iter().zip(&runs).map(|(c, r)| summarise(c, r)).collect();
    write_outputs(out, &rows, opts, width, source, complete)?;
    Ok((rows, complete))
}

/// One row of the study's table.
#[derive(Clone, Debug, Serialize)]
pub struct DepthRow {
    #[serde(flatten)]
    pub cell: DepthCell,
    /// First / last hidden layer's back-propagated gradient RMS, `[p25, median, p75]` over seeds,
    /// at iteration 1 and at each seed's last probe.
    pub ratio_init: [f64; 3],
    pub ratio_end: [f64; 3],
    pub seeds: usize,
    pub converged: usize,
    pub diverged: usize,
    pub median_iterations: Option<f64>,
}

/// Quartiles of the positive finite values (NaN each if there are none).
fn quartiles(v: &[f64]) -> [f64; 3] {
    let positive: Vec<f64> = v.iter().copied().filter(|x| *x > 0.0).collect();
    crate::stats::quartiles(&positive)
}

pub fn summarise(cell: &DepthCell, run: &Run) -> DepthRow {
    let s = RunSummary::of(run);
    let (mut init, mut end) = (vec![], vec![]);
    if let Some(p) = &run.probes {
        let (first, last) = (cell.hidden_layer(0), cell.hidden_layer(cell.depth - 1));
        if let (Some(a), Some(b)) = (p.key(&first, "grad_rms"), p.key(&last, "grad_rms")) {
            let ((a0, a1), (b0, b1)) = (p.first_and_last(a), p.first_and_last(b));
            init = a0.iter().zip(&b0).map(|(x, y)| x / y).collect();
            end = a1.iter().zip(&b1).map(|(x, y)| x / y).collect();
        }
    }
    DepthRow {
        cell: cell.clone(),
        ratio_init: quartiles(&init),
        ratio_end: quartiles(&end),
        seeds: s.seeds,
        converged: s.converged,
        diverged: s.diverged,
        median_iterations: s.median_iterations,
    }
}

/// `summary.json`, `depth.md` and two figures: the gradient ratio at initialisation against
/// depth, and the fraction of seeds converged against depth (a panel per activation, a line per
/// initialisation).
pub fn write_outputs(
    dir: &Path,
    rows: &[DepthRow],
    opts: &TrainOptions,
    width: usize,
    data: &str,
    complete: bool,
) -> Result<()> {
    #[derive(Serialize)]
    struct Summary<'a> {
        study: &'static str,
        complete: bool,
        data: &'a str,
        width: usize,
        config: &'a TrainOptions,
        cells: &'a [DepthRow],
    }
    crate::report::write_json(
        &dir.join("summary.json"),
        &Summary { study: "depth", complete, data, width, config: opts, cells: rows },
    )?;
    crate::atomic::write_atomic(&dir.join("depth.md"), markdown(rows, opts).as_bytes())?;
    let acts: Vec<String> = {
        let mut v: Vec<String> = vec![];
        for r in rows {
            let a = r.cell.act.to_string();
            if !v.contains(&a) {
                v.push(a);
            }
        }
        v
    };
    let panel = |act: &str, title: &str, y: &str, log: bool, value: &dyn Fn(&DepthRow) -> [f64; 3]| Panel {
        title: format!("{act}: {title}"),
        y_label: y.into(),
        log_y: log,
        y_range: (!log).then_some((0.0, 1.02)),
        series: [false, true]
            .iter()
            .flat_map(|&bn| INITS.iter().map(move |(init, _)| (bn, init)))
            .filter(|&(bn, _)| rows.iter().any(|r| r.cell.batchnorm == bn))
            .map(|(bn, init)| {
                let mut b = Band { iterations: vec![], median: vec![], lo: vec![], hi: vec![] };
                for r in rows
                    .iter()
                    .filter(|r| r.cell.act.to_string() == act && r.cell.init == *init && r.cell.batchnorm == bn)
                {
                    let [lo, m, hi] = value(r);
                    if m.is_finite() {
                        b.iterations.push(r.cell.depth as f64);
                        b.lo.push(lo);
                        b.median.push(m);
                        b.hi.push(hi);
                    }
                }
                (format!("{init}{}", if bn { " + BatchNorm" } else { "" }), b)
            })
            .collect(),
        x_names: (1..=rows.iter().map(|r| r.cell.depth).max().unwrap_or(1)).map(|d| d.to_string()).collect(),
        x_desc: "hidden layers".into(),
    };
    let mut panels = vec![];
    for act in &acts {
        panels.push(panel(
            act,
            "first / last hidden layer gradient RMS at iteration 1",
            "ratio (median, IQR)",
            true,
            &|r| r.ratio_init,
        ));
        panels.push(panel(act, "fraction of seeds at 100%", "converged fraction", false, &|r| {
            let f = r.converged as f64 / r.seeds.max(1) as f64;
            [f, f, f]
        }));
    }
    render(
        &dir.join("depth"),
        &CurvePanels {
            title: format!("Depth study: MLPs of width {width}, x axis = hidden layers"),
            panels,
            columns: 2,
        },
    )
}

pub fn markdown(rows: &[DepthRow], opts: &TrainOptions) -> String {
    let mut md = format!(
        "# Depth study\n\n{} seeds per cell, SGD lr {}, biases 0, cap {} iterations. Ratio: the first hidden layer's back-propagated gradient RMS over the last hidden layer's (median and IQR over seeds); below 1 the gradient shrinks on its way to the input.\n\n| activation | init | BatchNorm | depth | ratio at iteration 1 | ratio at the end | converged | median iterations |\n|---|---|---|---:|---:|---:|---:|---:|\n",
        opts.seeds, opts.optim.lr, opts.max_iters
    );
    let n = |v: f64| if v >= 0.01 { format!("{v:.3}") } else { format!("{v:.1e}") };
    let f =
        |q: [f64; 3]| if q[1].is_finite() { format!("{} ({}–{})", n(q[1]), n(q[0]), n(q[2])) } else { "—".into() };
    for r in rows {
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {}/{} | {} |\n",
            r.cell.act,
            r.cell.init,
            if r.cell.batchnorm { "yes" } else { "no" },
            r.cell.depth,
            f(r.ratio_init),
            f(r.ratio_end),
            r.converged,
            r.seeds,
            r.median_iterations.map_or(format!("> {}", opts.max_iters), |m| format!("{m:.0}"))
        ));
    }
    let claims = batchnorm_sentences(rows, opts.max_iters);
    if !claims.is_empty() {
        md.push_str("\n## Does BatchNorm let the deep nets train?\n\n");
        for c in claims {
            md.push_str(&format!("- {c}\n"));
        }
    }
    md
}

/// Computed sentences: at the greatest depth, each activation × initialisation without and with
/// BatchNorm — seeds converged, median iterations, and the gradient ratio at iteration 1.
pub fn batchnorm_sentences(rows: &[DepthRow], cap: usize) -> Vec<String> {
    let Some(deep) = rows.iter().map(|r| r.cell.depth).max() else { return vec![] };
    let it = |v: Option<f64>| v.map_or(format!("> {cap}"), |m| format!("{m:.0}"));
    let n = |v: f64| if v >= 0.01 { format!("{v:.2}") } else { format!("{v:.1e}") };
    let mut out = vec![];
    for plain in rows.iter().filter(|r| r.cell.depth == deep && !r.cell.batchnorm) {
        let Some(bn) = rows.iter().find(|r| {
            r.cell.depth == deep && r.cell.batchnorm && r.cell.act == plain.cell.act && r.cell.init == plain.cell.init
        }) else {
            continue;
        };
        let verdict = match (plain.converged * 2 < plain.seeds, bn.converged * 2 >= bn.seeds) {
            (true, true) => "BatchNorm lets it train",
            (true, false) => "it does not train with or without BatchNorm",
            (false, true) if bn.median_iterations < plain.median_iterations => "BatchNorm speeds it up",
            (false, true) => "BatchNorm does not speed it up",
            (false, false) => "BatchNorm stops it from training",
        };
        out.push(format!(
            "{deep} hidden {} layers, {}: {}/{} seeds reach 100% (median {} iterations, first/last gradient ratio {} at iteration 1) without BatchNorm, {}/{} ({}, ratio {}) with it: {verdict}.",
            plain.cell.act,
            plain.cell.init,
            plain.converged,
            plain.seeds,
            it(plain.median_iterations),
            n(plain.ratio_init[1]),
            bn.converged,
            bn.seeds,
            it(bn.median_iterations),
            n(bn.ratio_init[1]),
        ));
    }
    out
}

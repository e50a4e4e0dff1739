//! Task 4: leaky ReLU against ReLU in both CNNs, over many seeds, with a rank test on
//! iterations-to-100% — the question the report could not settle ("random perturbations
//! caused by different random weight initialization").

use crate::activations::Activation;
use crate::experiments::cnn::{CnnRuns, CnnSetting};
use crate::experiments::presets::CnnTask;
use crate::record::Run;
use crate::stats::{censored_quantile, mann_whitney_u};
use serde::Serialize;
use std::fmt::Write;

/// The runs: ReLU then leaky ReLU (slope 0.1), on line then detect.
pub fn plan() -> Vec<(CnnTask, Vec<CnnSetting>)> {
    let settings = vec![CnnSetting::new(Activation::Relu), CnnSetting::new(Activation::LeakyRelu { slope: 0.1 })];
    vec![(CnnTask::Line, settings.clone()), (CnnTask::Detect, settings)]
}

#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    pub task: &'static str,
    pub seeds: usize,
    pub relu_converged: usize,
    pub leaky_converged: usize,
    pub relu_median: Option<f64>,
    pub relu_iqr: (Option<f64>, Option<f64>),
    pub leaky_median: Option<f64>,
    pub leaky_iqr: (Option<f64>, Option<f64>),
    /// Mann–Whitney U of the ReLU sample, non-converged seeds ranked above every count.
    pub mann_whitney_u: f64,
    pub p_value: f64,
    /// p < 0.05.
    pub distinguishable: bool,
    pub verdict: String,
}

fn its(run: &Run) -> Vec<Option<f64>> {
    run.iterations.iter().map(|i| i.map(|v| v as f64)).collect()
}

pub fn compare(task: CnnTask, relu: &Run, leaky: &Run, cap: usize) -> Comparison {
    let (a, b) = (its(relu), its(leaky));
    let inf = |v: &[Option<f64>]| v.iter().map(|x| x.unwrap_or(f64::INFINITY)).collect::<Vec<_>>();
    let (u, p) = mann_whitney_u(&inf(&a), &inf(&b));
    let q = |v: &[Option<f64>], x| censored_quantile(v, x);
    let fmt = |v: Option<f64>| v.map(|x| format!("{x:.0}")).unwrap_or_else(|| format!("> {cap}"));
    let distinguishable = p < 0.05;
    let verdict = format!(
        "On {}, with {} seeds each, ReLU reached 100% in a median of {} iterations (IQR {}–{}) and leaky ReLU in {} (IQR {}–{}); Mann–Whitney U = {u:.0}, two-sided p = {p:.3}: the difference is {} from seed-to-seed noise at the 5% level{}.",
        task.name(),
        relu.seeds.len(),
        fmt(q(&a, 0.5)),
        fmt(q(&a, 0.25)),
        fmt(q(&a, 0.75)),
        fmt(q(&b, 0.5)),
        fmt(q(&b, 0.25)),
        fmt(q(&b, 0.75)),
        if distinguishable { "distinguishable" } else { "not distinguishable" },
        match (distinguishable, q(&a, 0.5), q(&b, 0.5)) {
            (true, Some(r), Some(l)) if l > r => " (leaky ReLU is slower)",
            (true, Some(r), Some(l)) if l < r => " (leaky ReLU is faster)",
            _ => "",
        }
    );
    Comparison {
        task: task.name(),
        seeds: relu.seeds.len(),
        relu_converged: relu.converged(),
        leaky_converged: leaky.converged(),
        relu_median: q(&a, 0.5),
        relu_iqr: (q(&a, 0.25), q(&a, 0.75)),
        leaky_median: q(&b, 0.5),
        leaky_iqr: (q(&b, 0.25), q(&b, 0.75)),
        mann_whitney_u: u,
        p_value: p,
        distinguishable,
        verdict,
    }
}

/// Dead units at the end of training: median over seeds of each layer's final dead fraction.
pub fn final_dead_fractions(run: &Run) -> Vec<(String, f64)> {
    run.columns
        .iter()
        .filter(|c| c.starts_with("dead_fraction_"))
        .map(|c| {
            let last: Vec<f64> = run.columns_of(c).iter().filter_map(|v| v.last().map(|&x| x as f64)).collect();
            (c.trim_start_matches("dead_fraction_").to_string(), crate::stats::quantile(&last, 0.5))
        })
        .collect()
}

pub fn markdown(comparisons: &[Comparison], runs: &[CnnRuns]) -> String {
    let mut md = String::from("# Leaky ReLU against ReLU\n\n");
    md.push_str("| task | ReLU converged | ReLU median (IQR) | leaky converged | leaky median (IQR) | U | p |\n|---|---:|---:|---:|---:|---:|---:|\n");
    let f = |v: Option<f64>| v.map(|x| format!("{x:.0}")).unwrap_or_else(|| "—".into());
    for c in comparisons {
        let _ = writeln!(
            md,
            "| {} | {}/{} | {} ({}–{}) | {}/{} | {} ({}–{}) | {:.0} | {:.3} |",
            c.task,
            c.relu_converged,
            c.seeds,
            f(c.relu_median),
            f(c.relu_iqr.0),
            f(c.relu_iqr.1),
            c.leaky_converged,
            c.seeds,
            f(c.leaky_median),
            f(c.leaky_iqr.0),
            f(c.leaky_iqr.1),
            c.mann_whitney_u,
            c.p_value
        );
    }
    md.push('\n');
    for c in comparisons {
        let _ = writeln!(md, "{}\n", c.verdict);
    }
    md.push_str(
        "Dead units at the end of training (median over seeds of the fraction of units ≤ 0 for every sample):\n\n",
    );
    for CnnRuns { task, runs: rs, .. } in runs {
        for r in rs {
            let parts: Vec<String> =
                final_dead_fractions(r).iter().map(|(l, v)| format!("{l} {:.1}%", 100.0 * v)).collect();
            let _ = writeln!(md, "- {} {}: {}", task.name(), r.setting, parts.join(", "));
        }
    }
    md
}

/// Writes the study's `summary.json` and `comparison.md` into `out` (each task's runs are in
/// `out/<task>/` already); returns the Markdown.
pub fn write_outputs(
    out: &std::path::Path,
    runs: &[CnnRuns],
    complete: bool,
    max_iters: usize,
) -> crate::Result<String> {
    let sources: Vec<String> = runs.iter().map(|c| c.data.clone()).collect();
    let comparisons: Vec<Comparison> =
        runs.iter().filter(|c| c.runs.len() == 2).map(|c| compare(c.task, &c.runs[0], &c.runs[1], max_iters)).collect();
    let md = markdown(&comparisons, runs);
    #[derive(serde::Serialize)]
    struct Summary<'a> {
        study: &'static str,
        complete: bool,
        data: &'a [String],
        comparisons: &'a [Comparison],
    }
    let summary = Summary { study: "task4-leaky-vs-relu", complete, data: &sources, comparisons: &comparisons };
    crate::report::write_json(&out.join("summary.json"), &summary)?;
    crate::atomic::write_atomic(&out.join("comparison.md"), md.as_bytes())?;
    Ok(md)
}

//! Task 3's exploding gradients: both CNNs with the loss summed over the batch (an
//! effectively 64× larger step) and with initial weights of std 1.0 instead of 0.1, against the
//! baseline; how many seeds converge, diverge (first non-finite value) or do neither.

use crate::activations::Activation;
use crate::engine::Reduction;
use crate::experiments::cnn::{CnnRuns, CnnSetting};
use crate::experiments::presets::CnnTask;
use std::fmt::Write;

/// Gradient-norm bound of the clipped variants.
pub const CLIP: f64 = 1.0;

/// Baseline, summed loss, and large initial weights, each also with the gradient norm clipped,
/// on line then detect (ReLU).
pub fn plan() -> Vec<(CnnTask, Vec<CnnSetting>)> {
    let base = CnnSetting::new(Activation::Relu);
    let sum = CnnSetting { reduction: Reduction::Sum, ..base };
    let std1 = CnnSetting { init_std: 1.0, ..base };
    let clip = |s: CnnSetting| CnnSetting { clip_norm: Some(CLIP), ..s };
    let settings = vec![base, sum, std1, clip(sum), clip(std1)];
    vec![(CnnTask::Line, settings.clone()), (CnnTask::Detect, settings)]
}

pub fn markdown(runs: &[CnnRuns], cap: usize) -> String {
    let mut md = String::from(
        "# Exploding gradients\n\n| task | setting | converged | diverged | neither | median first non-finite iteration | median max \\|weight\\| | largest max \\|weight\\| |\n|---|---|---:|---:|---:|---:|---:|---:|\n",
    );
    for CnnRuns { task, runs: rs, .. } in runs {
        for r in rs {
            let div: Vec<f64> = r.diverged_at.iter().flatten().map(|&v| v as f64).collect();
            let largest = r.max_abs_weight.iter().copied().fold(0.0, f64::max);
            let _ = writeln!(
                md,
                "| {} | {} | {}/{} | {} | {} | {} | {:.3e} | {:.3e} |",
                task.name(),
                r.setting,
                r.converged(),
                r.seeds.len(),
                r.diverged(),
                r.seeds.len() - r.converged() - r.diverged(),
                if div.is_empty() { "—".into() } else { format!("{:.0}", crate::stats::quantile(&div, 0.5)) },
                crate::stats::quantile(&r.max_abs_weight, 0.5),
                largest
            );
        }
    }
    let _ = writeln!(
        md,
        "\n`sum` sums the classification loss over the batch instead of averaging it (the gradient, so the step, is 64× larger); `std1` draws initial weights with std 1.0 instead of 0.1; `clip1` clips each model's global gradient norm to 1 before every step. A seed diverges at its first non-finite loss, gradient or parameter; \"neither\" means it neither reached 100% nor diverged within {cap} iterations. Max |weight| is the largest |parameter| while all were finite."
    );
    md
}

/// Writes the study's `summary.json` and `table.md` into `out` (each task's runs are in
/// `out/<task>/` already); returns the Markdown.
pub fn write_outputs(
    out: &std::path::Path,
    runs: &[CnnRuns],
    complete: bool,
    max_iters: usize,
) -> crate::Result<String> {
    use crate::record::RunSummary;
    let sources: Vec<String> = runs.iter().map(|c| c.data.clone()).collect();
    let md = markdown(runs, max_iters);
    #[derive(serde::Serialize)]
    struct Task {
        task: &'static str,
        settings: Vec<RunSummary>,
    }
    #[derive(serde::Serialize)]
    struct Summary<'a> {
        study: &'static str,
        complete: bool,
        data: &'a [String],
        tasks: Vec<Task>,
    }
    let tasks = runs
        .iter()
        .map(|c| Task { task: c.task.name(), settings: c.runs.iter().map(RunSummary::of).collect() })
        .collect();
    crate::report::write_json(
        &out.join("summary.json"),
        &Summary { study: "task3-explosion", complete, data: &sources, tasks },
    )?;
    crate::atomic::write_atomic(&out.join("table.md"), md.as_bytes())?;
    Ok(md)
}

//! The edge of stability (Cohen et al. 2021, `locuslab/edge-of-stability`), reproduced on data
//! gradlab has: their demo's fully connected tanh [200, 200] net with the square loss
//! ½‖f(x) − onehot(y)‖² (mean over samples), full-batch gradient descent at several learning
//! rates η, on the built-in digits (preset `digits-eos`). Under gradient descent the sharpness
//! (λmax of the training loss's Hessian, Lanczos on exact products) rises until it reaches 2/η —
//! the largest curvature a step η can follow without oscillating — and then hovers there while
//! the loss keeps falling, non-monotonically.

use crate::error::{Error, Result};
use crate::record::{Run, RunSummary};
use crate::report::figures::{XyPanel, XyPanels, render};
use serde::Serialize;
use std::path::Path;

/// What is run.
#[derive(Clone, Debug, Serialize)]
pub struct EosStudy {
    pub lrs: Vec<f64>,
    pub max_iters: usize,
    /// The sharpness every this many iterations.
    pub every: usize,
    pub seeds: usize,
}

impl EosStudy {
    /// The preset with this study's keys set, one cell per learning rate.
    pub fn lab(&self) -> Result<crate::experiments::lab::Lab> {
        if self.lrs.is_empty() || self.lrs.iter().any(|&l| !(l.is_finite() && l > 0.0)) {
            return Err(Error::Usage(format!("--lrs must be positive numbers, got {:?}", self.lrs)));
        }
        if self.every == 0 || self.max_iters == 0 || self.seeds == 0 {
            return Err(Error::Usage("--every, --max-iters and --seeds must be at least 1".into()));
        }
        let name = "digits-eos";
        let mut doc: toml::Table =
            crate::experiments::presets::text(name)?.parse().map_err(|e| Error::Usage(format!("{e}")))?;
        for (k, v) in
            [("train.max_iters", self.max_iters), ("train.sharpness_every", self.every), ("train.seeds", self.seeds)]
        {
            crate::experiments::lab::set_key(&mut doc, k, toml::Value::Integer(v as i64)).map_err(Error::Usage)?;
        }
        // One cell per learning rate: a sweep over the (dotted) key `optim.lr`.
        let lrs = self.lrs.iter().map(|&l| toml::Value::Float(l)).collect();
        doc.insert(
            "sweep".into(),
            toml::Value::Table(toml::Table::from_iter([("optim.lr".to_string(), toml::Value::Array(lrs))])),
        );
        crate::experiments::lab::parse(Path::new("examples/networks/digits-eos.toml"), &doc.to_string())
    }
}

/// One learning rate's result, medians over seeds.
#[derive(Clone, Debug, Serialize)]
pub struct EosRow {
    pub lr: f64,
    pub two_over_lr: f64,
    pub sharpness_initial: Option<f64>,
    /// The first measured iteration at which the sharpness is at least 2/η (per seed; median
    /// over the seeds that get there), and how many do.
    pub first_at_threshold: Option<f64>,
    pub seeds_at_threshold: usize,
    /// The sharpness over 2/η, median over the measurements after the first at the threshold
    /// (or over the second half when it is never reached): ≈ 1 when it hovers at the edge.
    pub hover_ratio: Option<f64>,
    /// Iterations whose loss rose above the previous one's (gradient descent on a locally
    /// quadratic loss below the edge would never do so).
    pub loss_increases: f64,
    pub final_loss: Option<f64>,
    pub final_accuracy: Option<f64>,
    pub seeds: usize,
    pub diverged: usize,
}

pub fn summarise(lr: f64, run: &Run) -> EosRow {
    let edge = 2.0 / lr;
    let med = |v: &[f64]| (!v.is_empty()).then(|| crate::stats::quantile(v, 0.5));
    let (mut initial, mut first, mut ratio, mut increases, mut loss, mut acc) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for s in 0..run.seeds.len() {
        let at: Vec<u32> = run.at[s].clone();
        let sharp = run.column(s, "sharpness");
        let measured: Vec<(u32, f64)> =
            at.iter().zip(&sharp).filter(|(_, x)| x.is_finite()).map(|(&i, &x)| (i, x as f64)).collect();
        if let Some(&(_, x)) = measured.first() {
            initial.push(x);
        }
        let reached = measured.iter().position(|&(_, x)| x >= edge);
        if let Some(k) = reached {
            first.push(measured[k].0 as f64);
        }
        let after = &measured[reached.unwrap_or(measured.len() / 2)..];
        ratio.extend(after.iter().map(|&(_, x)| x / edge));
        let l = run.column(s, "loss");
        increases.push(l.windows(2).filter(|w| w[1] > w[0]).count() as f64);
        if let Some(&x) = l.iter().rev().find(|x| x.is_finite()) {
            loss.push(x as f64);
        }
        if let Some(&x) = run.column(s, "accuracy").iter().rev().find(|x| x.is_finite()) {
            acc.push(x as f64);
        }
    }
    let s = RunSummary::of(run);
    EosRow {
        lr,
        two_over_lr: edge,
        sharpness_initial: med(&initial),
        first_at_threshold: med(&first),
        seeds_at_threshold: first.len(),
        hover_ratio: med(&ratio),
        loss_increases: med(&increases).unwrap_or(0.0),
        final_loss: med(&loss),
        final_accuracy: med(&acc),
        seeds: s.seeds,
        diverged: s.diverged,
    }
}

/// Trains every learning rate (all rows kept, so the loss is seen at every iteration) and
/// writes `eos.csv`, `summary.json`, `metrics.csv` and the figure; returns the rows and
/// whether the study ran to the end.
pub fn run(study: &EosStudy, out: &Path, runner: &mut crate::experiments::Runner) -> Result<(Vec<EosRow>, bool)> {
    let lab = study.lab()?;
    let (data, _) = lab.data(0)?;
    let names: Vec<String> = study.lrs.iter().map(|l| format!("lr {l}")).collect();
    let (runs, complete) = runner(&names, study.max_iters, study.seeds, &mut |k, progress| {
        let mut run = lab.run_cell(k, &data, None, progress)?;
        run.setting = names[k].clone();
        Ok(run)
    })?;
    let rows: Vec<EosRow> = study.lrs.iter().zip(&runs).map(|(&l, r)| summarise(l, r)).collect();
    write_outputs(out, study, &rows, &runs, complete)?;
    Ok((rows, complete))
}

pub fn write_outputs(out: &Path, study: &EosStudy, rows: &[EosRow], runs: &[Run], complete: bool) -> Result<()> {
    let o = |x: Option<f64>| x.map_or(String::new(), |v| v.to_string());
    let mut csv = String::from(
        "lr,two_over_lr,sharpness_initial,first_at_threshold,seeds_at_threshold,hover_ratio,loss_increases,final_loss,final_accuracy,seeds,diverged\n",
    );
    for r in rows {
        csv.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{}\n",
            r.lr,
            r.two_over_lr,
            o(r.sharpness_initial),
            o(r.first_at_threshold),
            r.seeds_at_threshold,
            o(r.hover_ratio),
            r.loss_increases,
            o(r.final_loss),
            o(r.final_accuracy),
            r.seeds,
            r.diverged
        ));
    }
    crate::atomic::write_atomic(&out.join("eos.csv"), csv.as_bytes())?;
    crate::report::write_json(
        &out.join("summary.json"),
        &serde_json::json!({"study": "edge-of-stability", "complete": complete, "config": study, "rows": rows}),
    )?;
    crate::report::write_metrics_csv(&out.join("metrics.csv"), runs)?;
    let mut panels = vec![];
    for (row, run) in rows.iter().zip(runs) {
        let pts = |col: &str, s: usize| -> Vec<(f64, f64)> {
            run.at[s]
                .iter()
                .zip(run.column(s, col))
                .filter(|(_, y)| y.is_finite())
                .map(|(&i, y)| (i as f64, y as f64))
                .collect()
        };
        panels.push(XyPanel {
            title: format!("η = {}: training loss", row.lr),
            x_desc: "iteration".into(),
            y_desc: "loss".into(),
            log_y: true,
            series: (0..run.seeds.len()).map(|s| (String::new(), pts("loss", s), false)).collect(),
            levels: vec![],
        });
        panels.push(XyPanel {
            title: format!("η = {}: sharpness", row.lr),
            x_desc: "iteration".into(),
            y_desc: "λmax of the Hessian".into(),
            log_y: false,
            series: (0..run.seeds.len()).map(|s| (String::new(), pts("sharpness", s), true)).collect(),
            levels: vec![(format!("2/η = {}", crate::report::figures::tick(row.two_over_lr)), row.two_over_lr)],
        });
    }
    render(
        &out.join("edge_of_stability"),
        &XyPanels {
            title: "Full-batch gradient descent on the digits: sharpness rises to 2/η and hovers there (tanh 200-200, square loss)".into(),
            panels,
            columns: 2,
        },
    )
}

/// The study's table, as Markdown.
pub fn markdown(rows: &[EosRow]) -> String {
    let f = |x: Option<f64>| x.map_or("—".to_string(), |v| format!("{v:.3}"));
    let mut s = String::from(
        "| η | 2/η | sharpness at 1 | first at ≥ 2/η (seeds) | sharpness / (2/η) after | loss rises | final loss | final accuracy |\n|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        s.push_str(&format!(
            "| {} | {:.1} | {} | {} ({}/{}) | {} | {:.0} | {} | {} |\n",
            r.lr,
            r.two_over_lr,
            f(r.sharpness_initial),
            r.first_at_threshold.map_or("never".into(), |v| format!("{v:.0}")),
            r.seeds_at_threshold,
            r.seeds,
            f(r.hover_ratio),
            r.loss_increases,
            f(r.final_loss),
            f(r.final_accuracy)
        ));
    }
    s
}

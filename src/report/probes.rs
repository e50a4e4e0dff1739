//! The probes of a study's runs as files: `layers.csv`, `layers-quartiles.csv` and the gradient
//! flow, probe and histogram figures.

use crate::record::probes::Probes;
use crate::stats::quartiles;

/// Seeds whose probe rows layers.csv lists by default (all with `all_rows`).
pub const PER_SEED_ROWS: usize = 32;

/// Writes `layers.csv` (`setting,seed,iteration,layer,quantity,value`) and the figures:
/// `gradient_flow` (back-propagated gradient RMS per layer at the first probe and the end,
/// median and IQR over seeds, one panel per setting), `probes` (per layer: gradient RMS and
/// saturated fraction over iterations) and `histograms-<setting>` (activations, back-propagated
/// and weight gradients at the first probe and the end, pooled over seeds).
pub fn write_outputs(dir: &std::path::Path, runs: &[crate::record::Run]) -> crate::error::Result<()> {
    use crate::report::figures::{Band, CurvePanels, Histograms, Panel, render};
    use std::fmt::Write;
    let with: Vec<(&crate::record::Run, &Probes)> =
        runs.iter().filter_map(|r| r.probes.as_ref().map(|p| (r, p))).collect();
    if with.is_empty() {
        return Ok(());
    }
    // Per seed: every seed with `all_rows`, else the first PER_SEED_ROWS (a thousand seeds'
    // probes are hundreds of megabytes of text); the quartiles over all seeds always.
    let mut csv = crate::atomic::AtomicFile::create(&dir.join("layers.csv"))?;
    csv.write(b"setting,seed,iteration,layer,quantity,value\n")?;
    let mut line = String::new();
    for (run, p) in &with {
        let seeds = if run.all_rows { run.seeds.len() } else { PER_SEED_ROWS.min(run.seeds.len()) };
        for (seed, rows) in run.seeds.iter().zip(&p.rows).take(seeds) {
            line.clear();
            for &(it, key, v) in rows {
                let (layer, q) = &p.keys[key as usize];
                let _ = writeln!(line, "{},{seed},{it},{layer},{q},{v}", run.setting);
            }
            csv.write(line.as_bytes())?;
        }
    }
    csv.finish()?;
    let mut quart = String::from("setting,iteration,layer,quantity,seeds,p25,median,p75\n");
    for (run, p) in &with {
        for ((layer, q), series) in p.keys.iter().zip(p.all_series()) {
            for (it, values) in series {
                let [a, b, c] = quartiles(&values);
                let _ = writeln!(quart, "{},{it},{layer},{q},{},{a},{b},{c}", run.setting, values.len());
            }
        }
    }
    crate::atomic::write_atomic(&dir.join("layers-quartiles.csv"), quart.as_bytes())?;
    let band_of = |points: Vec<(f64, Vec<f64>)>| {
        let mut b = Band { iterations: vec![], median: vec![], lo: vec![], hi: vec![] };
        for (x, v) in points {
            let q = quartiles(&v);
            if q[1].is_finite() {
                b.iterations.push(x);
                b.lo.push(q[0]);
                b.median.push(q[1]);
                b.hi.push(q[2]);
            }
        }
        b
    };
    // Gradient flow: one panel per setting.
    let mut flow = vec![];
    for (run, p) in &with {
        let keys: Vec<(usize, &str)> = p
            .keys
            .iter()
            .enumerate()
            .filter(|(_, (_, q))| *q == "grad_rms")
            .map(|(k, (l, _))| (k, l.as_str()))
            .collect();
        let (mut first, mut end) = (vec![], vec![]);
        for (x, &(k, _)) in keys.iter().enumerate() {
            let (a, b) = p.first_and_last(k);
            first.push(((x + 1) as f64, a));
            end.push(((x + 1) as f64, b));
        }
        flow.push(Panel {
            title: run.setting.clone(),
            y_label: "back-propagated gradient RMS (median, IQR)".into(),
            log_y: true,
            y_range: None,
            series: vec![("first probe (iteration 1)".into(), band_of(first)), ("end".into(), band_of(end))],
            x_names: keys.iter().map(|(_, l)| l.to_string()).collect(),
            x_desc: String::new(),
        });
    }
    render(
        &dir.join("gradient_flow"),
        &CurvePanels {
            title: "Gradient flow: ∂loss/∂(pre-activation) per layer, over seeds".into(),
            panels: flow,
            columns: 2,
        },
    )?;
    // Time series: per layer of the first run's network (shared by every setting of a study).
    let layers: Vec<String> = {
        let mut v: Vec<String> = vec![];
        for (l, q) in &with[0].1.keys {
            if *q == "grad_rms" && !v.contains(l) {
                v.push(l.clone());
            }
        }
        v
    };
    let mut panels = vec![];
    for layer in &layers {
        for (q, title, log) in [("grad_rms", "gradient RMS", true), ("saturated_fraction", "saturated fraction", false)]
        {
            let series: Vec<(String, Band)> = with
                .iter()
                .filter_map(|(run, p)| {
                    let k = p.key(layer, q)?;
                    Some((
                        run.setting.clone(),
                        band_of(p.series(k).into_iter().map(|(it, v)| (it as f64, v)).collect()),
                    ))
                })
                .collect();
            if !series.is_empty() {
                panels.push(Panel {
                    title: format!("{layer}: {title}"),
                    y_label: format!("{q} (median, IQR)"),
                    log_y: log,
                    y_range: (!log).then_some((0.0, 1.02)),
                    series,
                    x_names: vec![],
                    x_desc: String::new(),
                });
            }
        }
    }
    render(&dir.join("probes"), &CurvePanels { title: "Per-layer probes over training".into(), panels, columns: 2 })?;
    for (run, p) in &with {
        let panels = p
            .hist_keys
            .iter()
            .enumerate()
            .map(|(h, (layer, kind))| {
                let pool = |moment: &Vec<Vec<Vec<f32>>>| {
                    moment.iter().flat_map(|s| s[h].iter().copied()).collect::<Vec<f32>>()
                };
                (
                    format!("{layer}: {}", kind.replace('_', " ")),
                    vec![("first probe".to_string(), pool(&p.first)), ("end".to_string(), pool(&p.last))],
                )
            })
            .collect();
        let name = run.setting.replace(['/', ' '], "_");
        render(
            &dir.join(format!("histograms-{name}")),
            &Histograms {
                title: format!("{}: distributions pooled over {} seeds", run.setting, p.rows.len()),
                panels,
                columns: 3,
            },
        )?;
    }
    Ok(())
}

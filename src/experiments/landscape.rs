//! Tasks 1 and 4: one neuron ŷ = act(w·x + b) with target y, over a grid of (w, b): the
//! output, the L2 and cross-entropy losses, and their gradients — computed by the same engine
//! and automatic differentiation that train networks, one grid point per ensemble member.

use crate::activations::Activation;
use crate::engine::{Graph, Reduction};
use crate::error::{Error, Result};
use crate::report;
use crate::report::surface::{GridFigure, GridPanel, GridPanels};
use serde::Serialize;
use std::fmt::Write;
use std::path::Path;

/// The largest grid side accepted: 4000² points need about 2 GB.
pub const MAX_POINTS: usize = 4000;

#[derive(Clone, Debug, Serialize)]
pub struct LandscapeConfig {
    #[serde(serialize_with = "crate::report::display")]
    pub act: Activation,
    pub x: f64,
    pub y: f64,
    pub w_range: (f64, f64),
    pub b_range: (f64, f64),
    pub points: usize,
}

impl LandscapeConfig {
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Usage(m));
        if !(2..=MAX_POINTS).contains(&self.points) {
            return bad(format!("--points must be between 2 and {MAX_POINTS}, got {}", self.points));
        }
        for (name, (lo, hi)) in [("--w-range", self.w_range), ("--b-range", self.b_range)] {
            if !(lo.is_finite() && hi.is_finite() && lo < hi) {
                return bad(format!("{name} must be two finite numbers A,B with A < B, got {lo},{hi}"));
            }
        }
        if !self.x.is_finite() || !self.y.is_finite() {
            return bad("--x and --y must be finite".into());
        }
        Ok(())
    }

    fn axis(range: (f64, f64), n: usize) -> Vec<f64> {
        (0..n).map(|i| range.0 + (range.1 - range.0) * i as f64 / (n - 1) as f64).collect()
    }

    /// Cross-entropy needs ŷ in (0, 1) everywhere: only a sigmoid output guarantees it, and
    /// then it is computed from the pre-activation in the stable form.
    pub fn has_ce(&self) -> bool {
        self.act.is_probability()
    }
}

/// Every quantity on the grid, row-major over (b, w): index `ib·n_w + iw`.
#[derive(Clone, Debug)]
pub struct Landscape {
    pub ws: Vec<f64>,
    pub bs: Vec<f64>,
    pub output: Vec<f64>,
    pub l2: Vec<f64>,
    pub dl2_dw: Vec<f64>,
    pub dl2_db: Vec<f64>,
    /// `None` when cross-entropy is undefined for the activation.
    pub ce: Option<[Vec<f64>; 3]>,
}

pub fn compute(cfg: &LandscapeConfig) -> Result<Landscape> {
    cfg.validate()?;
    let ws = LandscapeConfig::axis(cfg.w_range, cfg.points);
    let bs = LandscapeConfig::axis(cfg.b_range, cfg.points);
    let n = ws.len() * bs.len();
    // One model per grid point: weight [1, 1] and bias [1], a batch of one sample.
    let mut g = Graph::<f64>::new(n);
    let x = g.input(&[1, 1, 1])?;
    let t = g.input(&[1, 1, 1])?;
    let w = g.param(&[1, 1]);
    let b = g.param(&[1]);
    let z = g.dense(x, w, Some(b))?;
    let out = g.activation(z, cfg.act);
    let l2 = g.squared_error(out, t, 1.0, Reduction::Mean)?;
    let ce = if cfg.has_ce() { Some(g.sigmoid_cross_entropy(z, t, Reduction::Mean)?) } else { None };
    g.value_mut(x)[0] = cfg.x;
    g.value_mut(t)[0] = cfg.y;
    for (ib, &bv) in bs.iter().enumerate() {
        for (iw, &wv) in ws.iter().enumerate() {
            g.value_mut(w)[ib * ws.len() + iw] = wv;
            g.value_mut(b)[ib * ws.len() + iw] = bv;
        }
    }
    g.forward();
    g.backward(l2);
    let (dl2_dw, dl2_db) = (g.grad(w).to_vec(), g.grad(b).to_vec());
    let ce = ce.map(|ce| {
        g.backward(ce);
        [g.value(ce).to_vec(), g.grad(w).to_vec(), g.grad(b).to_vec()]
    });
    Ok(Landscape { output: g.value(out).to_vec(), l2: g.value(l2).to_vec(), dl2_dw, dl2_db, ce, ws, bs })
}

impl Landscape {
    /// `(file name, title, values)` of every quantity computed, in the report's order.
    pub fn quantities(&self) -> Vec<(&'static str, &'static str, &[f64])> {
        let mut q: Vec<(&'static str, &'static str, &[f64])> = vec![
            ("output", "output ŷ", &self.output),
            ("l2", "L2 loss (ŷ − y)²", &self.l2),
            ("dl2_dw", "∂L2/∂w", &self.dl2_dw),
            ("dl2_db", "∂L2/∂b", &self.dl2_db),
        ];
        if let Some([ce, dw, db]) = &self.ce {
            q.push(("ce", "cross-entropy", ce));
            q.push(("dce_dw", "∂CE/∂w", dw));
            q.push(("dce_db", "∂CE/∂b", db));
        }
        q
    }

    /// Index of the grid point nearest to (w, b), if (w, b) lies inside the grid.
    pub fn nearest(&self, w: f64, b: f64) -> Option<usize> {
        let inside = |v: f64, axis: &[f64]| v >= axis[0] && v <= *axis.last().unwrap();
        if !inside(w, &self.ws) || !inside(b, &self.bs) {
            return None;
        }
        let pos = |v: f64, axis: &[f64]| ((v - axis[0]) / (axis[1] - axis[0])).round() as usize;
        Some(pos(b, &self.bs).min(self.bs.len() - 1) * self.ws.len() + pos(w, &self.ws).min(self.ws.len() - 1))
    }
}

/// Numbers read off the grids for the summary and `summary.json`.
#[derive(Clone, Debug, Serialize)]
pub struct KeyValues {
    /// The probe point (w, b) = (5, 5) of the report, or the grid corner nearest to it.
    pub probe: (f64, f64),
    pub output_at_probe: f64,
    pub l2_at_probe: f64,
    pub dl2_dw_at_probe: f64,
    pub max_abs_dl2_dw: f64,
    /// |∂L2/∂w| at the probe as a fraction of its maximum over the grid.
    pub dl2_dw_fraction_of_max: f64,
    pub ce_at_probe: Option<f64>,
    pub dce_dw_at_probe: Option<f64>,
    pub max_abs_dce_dw: Option<f64>,
    pub dce_dw_fraction_of_max: Option<f64>,
    /// Share of the grid where |∂L/∂w| is below 1% of its maximum.
    pub dl2_dw_below_1pct_fraction: f64,
    pub dce_dw_below_1pct_fraction: Option<f64>,
    /// Along the diagonal w = b (t ≥ 0), beyond the point where |∂L/∂w| peaks: the first t at
    /// which it has fallen below 1% of its maximum — where saturation sets in (`None`: never
    /// within the grid). Starting at the peak skips the minimum of the loss, where every
    /// gradient vanishes for the good reason.
    pub dl2_dw_below_1pct_on_diagonal_from: Option<f64>,
    pub dce_dw_below_1pct_on_diagonal_from: Option<f64>,
}

pub fn key_values(l: &Landscape) -> KeyValues {
    let max_abs = |v: &[f64]| v.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    let probe_w = 5.0f64.clamp(l.ws[0], *l.ws.last().unwrap());
    let probe_b = 5.0f64.clamp(l.bs[0], *l.bs.last().unwrap());
    let i = l.nearest(probe_w, probe_b).expect("clamped into the grid");
    let below = |v: &[f64]| {
        let m = max_abs(v);
        v.iter().filter(|x| x.abs() < 0.01 * m).count() as f64 / v.len() as f64
    };
    // Points on the diagonal: for each w ≥ 0, the grid point with b nearest to w.
    let diagonal = |v: &[f64]| {
        let m = max_abs(v);
        let line: Vec<(f64, f64)> =
            l.ws.iter().filter(|&&w| w >= 0.0).filter_map(|&w| l.nearest(w, w).map(|k| (w, v[k].abs()))).collect();
        let peak =
            line.iter().enumerate().fold((0, 0.0), |best, (i, &(_, g))| if g > best.1 { (i, g) } else { best }).0;
        line[peak..].iter().find(|&&(_, g)| g < 0.01 * m).map(|&(w, _)| w)
    };
    let ce = l.ce.as_ref();
    KeyValues {
        probe: (l.ws[i % l.ws.len()], l.bs[i / l.ws.len()]),
        output_at_probe: l.output[i],
        l2_at_probe: l.l2[i],
        dl2_dw_at_probe: l.dl2_dw[i],
        max_abs_dl2_dw: max_abs(&l.dl2_dw),
        dl2_dw_fraction_of_max: l.dl2_dw[i].abs() / max_abs(&l.dl2_dw),
        ce_at_probe: ce.map(|c| c[0][i]),
        dce_dw_at_probe: ce.map(|c| c[1][i]),
        max_abs_dce_dw: ce.map(|c| max_abs(&c[1])),
        dce_dw_fraction_of_max: ce.map(|c| c[1][i].abs() / max_abs(&c[1])),
        dl2_dw_below_1pct_fraction: below(&l.dl2_dw),
        dce_dw_below_1pct_fraction: ce.map(|c| below(&c[1])),
        dl2_dw_below_1pct_on_diagonal_from: diagonal(&l.dl2_dw),
        dce_dw_below_1pct_on_diagonal_from: ce.and_then(|c| diagonal(&c[1])),
    }
}

/// The findings, in words, with the numbers of this run.
pub fn summary_markdown(cfg: &LandscapeConfig, k: &KeyValues) -> String {
    let mut md = format!(
        "# Landscape of one {act} neuron\n\nŷ = {act}(w·x + b) with x = {}, target y = {}; w ∈ [{}, {}], b ∈ [{}, {}], {}×{} grid. Gradients by the engine's automatic differentiation.\n\n",
        cfg.x,
        cfg.y,
        cfg.w_range.0,
        cfg.w_range.1,
        cfg.b_range.0,
        cfg.b_range.1,
        cfg.points,
        cfg.points,
        act = cfg.act
    );
    let (pw, pb) = k.probe;
    let _ = writeln!(
        md,
        "At (w, b) = ({pw:.3}, {pb:.3}): ŷ = {:.4}, L2 = {:.4}, ∂L2/∂w = {:.3e} ({:.2}% of its largest magnitude on the grid, {:.3e}).",
        k.output_at_probe,
        k.l2_at_probe,
        k.dl2_dw_at_probe,
        100.0 * k.dl2_dw_fraction_of_max,
        k.max_abs_dl2_dw
    );
    if let (Some(ce), Some(d), Some(f), Some(m)) =
        (k.ce_at_probe, k.dce_dw_at_probe, k.dce_dw_fraction_of_max, k.max_abs_dce_dw)
    {
        let _ = writeln!(
            md,
            "There the cross-entropy is {ce:.4} and ∂CE/∂w = {d:.4}, {:.1}% of its largest magnitude ({m:.4}).",
            100.0 * f
        );
        let verdict = if f > 10.0 * k.dl2_dw_fraction_of_max {
            "the L2 gradient has all but vanished where the neuron saturates, while the cross-entropy gradient stays large as long as the error does: the report's finding holds."
        } else {
            "the two gradients are comparable here; the report's finding does not show at this point."
        };
        let _ = writeln!(md, "\nSo {verdict}\n");
    } else {
        let _ =
            writeln!(md, "\nCross-entropy is not shown: it needs ŷ in (0, 1), which {} does not guarantee.\n", cfg.act);
    }
    let _ = writeln!(
        md,
        "|∂L2/∂w| is below 1% of its maximum on {:.1}% of the grid{}.",
        100.0 * k.dl2_dw_below_1pct_fraction,
        diag(k.dl2_dw_below_1pct_on_diagonal_from)
    );
    if let Some(f) = k.dce_dw_below_1pct_fraction {
        let _ = writeln!(
            md,
            "|∂CE/∂w| is below 1% of its maximum on {:.1}% of the grid{}.",
            100.0 * f,
            diag(k.dce_dw_below_1pct_on_diagonal_from)
        );
    }
    md
}

fn diag(t: Option<f64>) -> String {
    match t {
        Some(t) => format!("; along the diagonal w = b, past its peak, it has fallen below that by w = b = {t:.2}"),
        None => "; along the diagonal w = b, past its peak, it never falls below that within the grid".into(),
    }
}

#[derive(Serialize)]
struct Summary<'a> {
    study: &'static str,
    config: &'a LandscapeConfig,
    cross_entropy: &'static str,
    key_values: &'a KeyValues,
}

/// Writes `grid.csv`, `summary.json`, `summary.md`, and per quantity `<q>-surface` and
/// `<q>-heatmap` (SVG + PNG), plus `heatmaps` and `surfaces` laying the set side by side.
pub fn write_outputs(dir: &Path, cfg: &LandscapeConfig, l: &Landscape) -> Result<KeyValues> {
    let mut csv = String::from("w,b,output,l2,dl2_dw,dl2_db,ce,dce_dw,dce_db\n");
    for (ib, &b) in l.bs.iter().enumerate() {
        for (iw, &w) in l.ws.iter().enumerate() {
            let i = ib * l.ws.len() + iw;
            let _ = write!(csv, "{w},{b},{},{},{},{}", l.output[i], l.l2[i], l.dl2_dw[i], l.dl2_db[i]);
            match &l.ce {
                Some([ce, dw, db]) => writeln!(csv, ",{},{},{}", ce[i], dw[i], db[i]),
                None => writeln!(csv, ",,,"),
            }
            .expect("writing to a String");
        }
    }
    crate::atomic::write_atomic(&dir.join("grid.csv"), csv.as_bytes())?;
    let k = key_values(l);
    let summary = Summary {
        study: "landscape",
        config: cfg,
        cross_entropy: if l.ce.is_some() {
            "computed from the pre-activation (stable form)"
        } else {
            "undefined for this activation (output not confined to (0, 1)); skipped"
        },
        key_values: &k,
    };
    report::write_json(&dir.join("summary.json"), &summary)?;
    crate::atomic::write_atomic(&dir.join("summary.md"), summary_markdown(cfg, &k).as_bytes())?;

    let panels: Vec<GridPanel> = l
        .quantities()
        .into_iter()
        .map(|(name, title, v)| GridPanel::new(name, &format!("{title} — {}", cfg.act), &l.ws, &l.bs, v))
        .collect();
    for p in &panels {
        report::figures::render(&dir.join(format!("{}-heatmap", p.name)), &GridFigure::heatmap(p))?;
        report::figures::render(&dir.join(format!("{}-surface", p.name)), &GridFigure::surface(p))?;
    }
    let title = format!("{} neuron, x = {}, y = {}", cfg.act, cfg.x, cfg.y);
    report::figures::render(
        &dir.join("heatmaps"),
        &GridPanels { title: title.clone(), panels: panels.clone(), surface: false },
    )?;
    report::figures::render(&dir.join("surfaces"), &GridPanels { title, panels, surface: true })?;
    Ok(k)
}

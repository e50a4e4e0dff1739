//! Figures with `plotters`, each drawn once into an SVG and once into a PNG. Text uses the
//! DejaVu Sans font compiled into the binary, so rendering needs no system fonts or libraries.

use crate::atomic::write_atomic;
use crate::error::{Error, Result};
use crate::record::Run;
use crate::stats::quantile;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;
use std::sync::Once;

/// Qualitative colours (Tableau 10), distinguishable in print and by most colour-blind readers.
pub const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

fn register_fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular());
        let _ = plotters::style::register_font("sans-serif", FontStyle::Bold, dejavu::sans::bold());
    });
}

/// A figure that can draw itself on any plotters backend.
pub trait Figure {
    fn size(&self) -> (u32, u32);
    fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, Shift>) -> std::result::Result<(), String>;
}

/// Draws `fig` into `<base>.svg` and `<base>.png`, both written atomically.
pub fn render(base: &Path, fig: &impl Figure) -> Result<()> {
    register_fonts();
    let size = fig.size();
    // `.svg` and `.png` appended, never replacing a dot of the name (a sweep cell's
    // `optim.lr=0.1` keeps its value, so two cells' figures never share a file).
    let with = |ext: &str| {
        let mut name = base.as_os_str().to_owned();
        name.push(ext);
        std::path::PathBuf::from(name)
    };
    let (svg_path, png_path) = (with(".svg"), with(".png"));
    let fail = |p: &Path, e: String| Error::io(p, std::io::Error::other(format!("drawing failed: {e}")));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        fig.draw(root).map_err(|e| fail(&svg_path, e))?;
    }
    write_atomic(&svg_path, svg.as_bytes())?;
    let mut rgb = vec![0u8; (size.0 * size.1 * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, size).into_drawing_area();
        fig.draw(root).map_err(|e| fail(&png_path, e))?;
    }
    let mut png_bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut png_bytes, size.0, size.1);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        // Flat-colour plots compress almost as well with the fast setting, at a fraction of the time.
        enc.set_compression(png::Compression::Fast);
        let mut w = enc.write_header().map_err(|e| fail(&png_path, e.to_string()))?;
        w.write_image_data(&rgb).map_err(|e| fail(&png_path, e.to_string()))?;
    }
    write_atomic(&png_path, &png_bytes)
}

/// Median and a quantile band across seeds at up to `max_points` iterations (1-based), a
/// stopped seed holding its last finite value (a converged seed stays at 100%).
#[derive(Clone, Debug)]
pub struct Band {
    pub iterations: Vec<f64>,
    pub median: Vec<f64>,
    pub lo: Vec<f64>,
    pub hi: Vec<f64>,
}

/// `quantiles` = (0.25, 0.75) for an interquartile band, (0, 1) for the range. `curves[s]`
/// holds seed `s`'s values at the iterations `at[s]`; the band is taken at up to `max_points`
/// of the iterations where any seed has a row (evenly by index, and the last).
pub fn band(curves: &[Vec<f32>], at: &[Vec<u32>], max_points: usize, quantiles: (f64, f64)) -> Band {
    let grid = super::iteration_grid(at);
    let step = grid.len().div_ceil(max_points.max(1)).max(1);
    let mut picks: Vec<u32> = grid.iter().step_by(step).copied().collect();
    if let Some(&last) = grid.last()
        && picks.last() != Some(&last)
    {
        picks.push(last);
    }
    let mut b = Band { iterations: vec![], median: vec![], lo: vec![], hi: vec![] };
    let mut next = vec![0usize; curves.len()];
    let mut held = vec![f32::NAN; curves.len()];
    for it in picks {
        for (s, (c, a)) in curves.iter().zip(at).enumerate() {
            for j in super::rows_through(a, &mut next[s], it) {
                if c[j].is_finite() {
                    held[s] = c[j];
                }
            }
        }
        let xs: Vec<f64> = held.iter().filter(|v| v.is_finite()).map(|&v| v as f64).collect();
        if xs.is_empty() {
            continue;
        }
        b.iterations.push(it as f64);
        b.median.push(quantile(&xs, 0.5));
        b.lo.push(quantile(&xs, quantiles.0));
        b.hi.push(quantile(&xs, quantiles.1));
    }
    b
}

pub(crate) fn e2s<E: std::fmt::Debug>(e: E) -> String {
    format!("{e:?}")
}

/// A tick label with at most 3 significant digits and no float noise: 0.3, 1500, 2e-4.
pub fn tick(v: f64) -> String {
    tick_within(v, 0.0)
}

/// Like [`tick`], on an axis spanning `span`: values within 1e-9·span of zero are "0" (tick
/// positions like −0.4 + 2·0.2 carry rounding noise of about 1e-17).
pub fn tick_within(v: f64, span: f64) -> String {
    if v == 0.0 || v.abs() < 1e-9 * span {
        return "0".into();
    }
    let a = v.abs();
    if !(1e-3..1e5).contains(&a) {
        let s = format!("{v:.1e}");
        return s.replace(".0e", "e");
    }
    let digits = (2 - a.log10().floor() as i32).max(0) as usize;
    let s = format!("{v:.digits$}");
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s }
}

/// One panel of curves: a median line and a band per series.
#[derive(Clone, Debug)]
pub struct Panel {
    pub title: String,
    pub y_label: String,
    pub log_y: bool,
    /// Fixed y range; otherwise from the data.
    pub y_range: Option<(f64, f64)>,
    pub series: Vec<(String, Band)>,
    /// Names of the x positions 1, 2, … (a categorical axis, e.g. layers); empty: iterations.
    pub x_names: Vec<String>,
    /// The x axis's description; empty: "iteration", or "layer" with `x_names`.
    pub x_desc: String,
}

impl Panel {
    /// `column` of each run, one series per run, banded over seeds.
    pub fn of_runs(runs: &[&Run], column: &str, title: &str, log_y: bool, quantiles: (f64, f64)) -> Panel {
        let band_name = if quantiles == (0.0, 1.0) { "range" } else { "IQR" };
        Panel {
            title: title.into(),
            y_label: format!("{column} (median, {band_name})"),
            log_y,
            y_range: if column.contains("accuracy") || column.starts_with("dead_fraction") {
                Some((0.0, 1.02))
            } else {
                None
            },
            series: runs
                .iter()
                .map(|r| (r.setting.clone(), band(&r.columns_of(column), &r.at, 600, quantiles)))
                .collect(),
            x_names: vec![],
            x_desc: String::new(),
        }
    }

    fn range(&self) -> (f64, f64) {
        if let Some(r) = self.y_range {
            return r;
        }
        let vals = self.series.iter().flat_map(|(_, b)| b.lo.iter().chain(&b.hi).copied()).filter(|v| v.is_finite());
        if self.log_y {
            let (lo, hi) =
                vals.filter(|v| *v > 0.0).fold((f64::INFINITY, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
            if lo.is_finite() { ((lo * 0.7).max(1e-30), hi * 1.4) } else { (1e-3, 1.0) }
        } else {
            let (lo, hi) = vals.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
            if !lo.is_finite() {
                (0.0, 1.0)
            } else if hi - lo < 1e-12 {
                (lo - 0.5, hi + 0.5)
            } else {
                (lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo))
            }
        }
    }

    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>, x_max: f64) -> std::result::Result<(), String> {
        let mut builder = ChartBuilder::on(area);
        builder.caption(&self.title, ("sans-serif", 20)).margin(12).x_label_area_size(42).y_label_area_size(64);
        let named = !self.x_names.is_empty();
        let x_range = if named { 0.5..self.x_names.len() as f64 + 0.5 } else { 1.0..x_max.max(2.0) };
        let x_tick = |v: f64| {
            if !named {
                return tick(v);
            }
            let i = v.round();
            if (v - i).abs() < 1e-6 && i >= 1.0 {
                self.x_names.get(i as usize - 1).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        };
        let (lo, hi) = self.range();
        let legend = if self.y_label.starts_with("accuracy") || self.y_label.contains("_accuracy") {
            SeriesLabelPosition::LowerRight
        } else if !self.x_names.is_empty() {
            // Per-layer profiles rise towards the output: the upper left stays clear.
            SeriesLabelPosition::UpperLeft
        } else {
            SeriesLabelPosition::UpperRight
        };
        macro_rules! draw_into {
            ($chart:expr) => {{
                let mut chart = $chart;
                chart
                    .configure_mesh()
                    .x_desc(if !self.x_desc.is_empty() {
                        self.x_desc.as_str()
                    } else if named {
                        "layer"
                    } else {
                        "iteration"
                    })
                    .x_labels(if named { self.x_names.len() + 2 } else { 10 })
                    .y_desc(self.y_label.as_str())
                    .label_style(("sans-serif", 14))
                    .x_label_formatter(&|v| x_tick(*v))
                    .y_label_formatter(&|v| if self.log_y { tick(*v) } else { tick_within(*v, hi - lo) })
                    .axis_desc_style(("sans-serif", 16))
                    .light_line_style(WHITE.mix(0.0))
                    .draw()
                    .map_err(e2s)?;
                let clamp = |y: f64| y.clamp(lo, hi);
                for (k, (label, b)) in self.series.iter().enumerate() {
                    let color = COLORS[k % COLORS.len()];
                    let mut poly: Vec<(f64, f64)> =
                        b.iterations.iter().zip(&b.hi).map(|(&x, &y)| (x, clamp(y))).collect();
                    poly.extend(b.iterations.iter().zip(&b.lo).rev().map(|(&x, &y)| (x, clamp(y))));
                    chart.draw_series(std::iter::once(Polygon::new(poly, color.mix(0.18).filled()))).map_err(e2s)?;
                    chart
                        .draw_series(LineSeries::new(
                            b.iterations.iter().zip(&b.median).map(|(&x, &y)| (x, clamp(y))),
                            color.stroke_width(2),
                        ))
                        .map_err(e2s)?
                        .label(label.as_str())
                        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(3)));
                }
                chart
                    .configure_series_labels()
                    .position(legend)
                    .label_font(("sans-serif", 13))
                    .background_style(WHITE.mix(0.85))
                    .border_style(BLACK.mix(0.3))
                    .draw()
                    .map_err(e2s)?;
            }};
        }
        if self.log_y {
            draw_into!(builder.build_cartesian_2d(x_range, (lo..hi).log_scale()).map_err(e2s)?);
        } else {
            draw_into!(builder.build_cartesian_2d(x_range, lo..hi).map_err(e2s)?);
        }
        Ok(())
    }
}

/// Panels of curves against iteration, side by side (`columns` to a row), one colour per setting.
pub struct CurvePanels {
    pub title: String,
    pub panels: Vec<Panel>,
    pub columns: usize,
}

impl CurvePanels {
    /// Loss (log axis) and accuracy, median over seeds with an interquartile band.
    /// With held-out columns in every run, held-out loss and accuracy beside them.
    pub fn loss_and_accuracy(title: &str, runs: &[&Run]) -> CurvePanels {
        let mut panels = vec![
            Panel::of_runs(runs, "loss", "loss", true, (0.25, 0.75)),
            Panel::of_runs(runs, "accuracy", "training accuracy", false, (0.25, 0.75)),
        ];
        if !runs.is_empty() && runs.iter().all(|r| r.columns.iter().any(|c| c == "held_out_accuracy")) {
            panels.push(Panel::of_runs(runs, "held_out_loss", "held-out loss", true, (0.25, 0.75)));
            panels.push(Panel::of_runs(runs, "held_out_accuracy", "held-out accuracy", false, (0.25, 0.75)));
        }
        CurvePanels { title: title.into(), panels, columns: 2 }
    }
}

impl Figure for CurvePanels {
    fn size(&self) -> (u32, u32) {
        let cols = self.columns.min(self.panels.len()).max(1) as u32;
        let rows = self.panels.len().div_ceil(self.columns.max(1)).max(1) as u32;
        (cols * 700, rows * 480 + 40)
    }
    fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, Shift>) -> std::result::Result<(), String> {
        let x_max = self
            .panels
            .iter()
            .filter(|p| p.x_names.is_empty())
            .flat_map(|p| p.series.iter().flat_map(|(_, b)| b.iterations.last().copied()))
            .fold(1.0, f64::max);
        root.fill(&WHITE).map_err(e2s)?;
        let root = root.titled(&self.title, ("sans-serif", 24)).map_err(e2s)?;
        let cols = self.columns.min(self.panels.len()).max(1);
        let rows = self.panels.len().div_ceil(cols).max(1);
        for (area, p) in root.split_evenly((rows, cols)).iter().zip(&self.panels) {
            p.draw(area, x_max)?;
        }
        root.present().map_err(e2s)
    }
}

/// Histograms: per panel, one density curve per labelled sample (e.g. at initialisation and at
/// the end), on common bins between the pooled 0.5th and 99.5th percentiles.
pub struct Histograms {
    pub title: String,
    pub panels: Vec<(String, Vec<(String, Vec<f32>)>)>,
    pub columns: usize,
}

impl Figure for Histograms {
    fn size(&self) -> (u32, u32) {
        let cols = self.columns.min(self.panels.len()).max(1) as u32;
        let rows = self.panels.len().div_ceil(self.columns.max(1)).max(1) as u32;
        (cols * 460, rows * 320 + 40)
    }
    fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, Shift>) -> std::result::Result<(), String> {
        root.fill(&WHITE).map_err(e2s)?;
        let root = root.titled(&self.title, ("sans-serif", 22)).map_err(e2s)?;
        let cols = self.columns.min(self.panels.len()).max(1);
        let rows = self.panels.len().div_ceil(cols).max(1);
        const BINS: usize = 40;
        for (area, (title, samples)) in root.split_evenly((rows, cols)).iter().zip(&self.panels) {
            let mut pooled: Vec<f64> =
                samples.iter().flat_map(|(_, v)| v.iter().map(|&x| x as f64)).filter(|x| x.is_finite()).collect();
            if pooled.is_empty() {
                continue;
            }
            pooled.sort_unstable_by(f64::total_cmp);
            let (mut lo, mut hi) = (quantile(&pooled, 0.005), quantile(&pooled, 0.995));
            if hi - lo < 1e-12 {
                (lo, hi) = (lo - 0.5, hi + 0.5);
            }
            let width = (hi - lo) / BINS as f64;
            let curves: Vec<(String, Vec<(f64, f64)>)> = samples
                .iter()
                .map(|(label, v)| {
                    let mut counts = [0usize; BINS];
                    for &x in v {
                        let x = x as f64;
                        if x.is_finite() && x >= lo && x <= hi {
                            counts[(((x - lo) / width) as usize).min(BINS - 1)] += 1;
                        }
                    }
                    let total = v.len().max(1) as f64;
                    (
                        label.clone(),
                        (0..BINS).map(|i| (lo + (i as f64 + 0.5) * width, counts[i] as f64 / total)).collect(),
                    )
                })
                .collect();
            let top = curves.iter().flat_map(|(_, c)| c.iter().map(|p| p.1)).fold(0.0, f64::max).max(1e-9) * 1.1;
            let mut chart = ChartBuilder::on(area)
                .caption(title, ("sans-serif", 15))
                .margin(8)
                .x_label_area_size(30)
                .y_label_area_size(48)
                .build_cartesian_2d(lo..hi, 0.0..top)
                .map_err(e2s)?;
            chart
                .configure_mesh()
                .label_style(("sans-serif", 11))
                .x_labels(5)
                .y_labels(4)
                .x_label_formatter(&|v| tick_within(*v, hi - lo))
                .y_label_formatter(&|v| tick(*v))
                .light_line_style(WHITE.mix(0.0))
                .draw()
                .map_err(e2s)?;
            for (k, (label, c)) in curves.iter().enumerate() {
                let color = COLORS[k % COLORS.len()];
                chart
                    .draw_series(LineSeries::new(c.iter().copied(), color.stroke_width(2)))
                    .map_err(e2s)?
                    .label(label.as_str())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], color.stroke_width(3)));
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .label_font(("sans-serif", 11))
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK.mix(0.3))
                .draw()
                .map_err(e2s)?;
        }
        root.present().map_err(e2s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_labels_are_short_and_exact() {
        assert_eq!(tick(0.30000000000000004), "0.3");
        assert_eq!(tick(1000.0), "1000");
        assert_eq!(tick(0.0002), "2e-4");
        assert_eq!(tick(0.125), "0.125");
        assert_eq!(tick(0.0), "0");
        assert_eq!(tick(-1.5), "-1.5");
        assert_eq!(tick_within(5.551115123125783e-17, 0.8), "0");
        assert_eq!(tick_within(0.2, 0.8), "0.2");
    }

    #[test]
    fn band_holds_a_stopped_seeds_last_finite_value() {
        let curves = vec![vec![0.0f32, 0.5, 1.0], vec![0.0, 0.25, 0.5, 0.75, 1.0]];
        let at = |n: u32, every: u32| (0..n).map(|i| 1 + i * every).collect::<Vec<u32>>();
        let b = band(&curves, &[at(3, 1), at(5, 1)], 100, (0.25, 0.75));
        assert_eq!(b.iterations, vec![1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(b.median, vec![0.0, 0.375, 0.75, 0.875, 1.0]);
        // A diverged seed's NaN is not drawn: it holds its last finite value.
        let r = band(&[vec![1.0f32, f32::NAN], vec![3.0, 5.0]], &[at(2, 1), at(2, 1)], 100, (0.0, 1.0));
        assert_eq!((r.lo[1], r.hi[1]), (1.0, 5.0));
        assert_eq!(
            band(&curves, &[at(3, 10), at(5, 10)], 100, (0.0, 1.0)).iterations,
            vec![1.0, 11.0, 21.0, 31.0, 41.0]
        );
        // Thinned rows: seeds kept different iterations; each holds its value until its next row.
        let t = band(&[vec![1.0f32, 3.0], vec![2.0, 4.0, 6.0]], &[vec![1, 9], vec![1, 5, 9]], 100, (0.0, 1.0));
        assert_eq!(t.iterations, vec![1.0, 5.0, 9.0]);
        assert_eq!((t.lo.clone(), t.hi.clone()), (vec![1.0, 1.0, 3.0], vec![2.0, 4.0, 6.0]));
    }
}

/// One panel of x–y series (lines or dots) with optional dotted horizontal reference lines.
#[derive(Clone, Debug, Default)]
pub struct XyPanel {
    pub title: String,
    pub x_desc: String,
    pub y_desc: String,
    pub log_y: bool,
    /// `(label, points, dots)`: dots instead of a line where `dots`.
    pub series: Vec<(String, Vec<(f64, f64)>, bool)>,
    /// `(label, y)`, drawn dotted in the colour of the series with the same index.
    pub levels: Vec<(String, f64)>,
}

/// Panels of x–y series side by side (`columns` to a row).
pub struct XyPanels {
    pub title: String,
    pub panels: Vec<XyPanel>,
    pub columns: usize,
}

impl XyPanel {
    fn ranges(&self) -> ((f64, f64), (f64, f64)) {
        let finite = |p: &&(f64, f64)| p.0.is_finite() && p.1.is_finite() && (!self.log_y || p.1 > 0.0);
        let pts: Vec<(f64, f64)> = self.series.iter().flat_map(|s| s.1.iter().filter(finite).copied()).collect();
        let fold = |f: fn(&(f64, f64)) -> f64| {
            pts.iter().map(f).fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)))
        };
        let (mut x, mut y) = (fold(|p| p.0), fold(|p| p.1));
        for &(_, l) in &self.levels {
            if l.is_finite() && (!self.log_y || l > 0.0) {
                y = (y.0.min(l), y.1.max(l));
            }
        }
        if !x.0.is_finite() {
            x = (0.0, 1.0);
        }
        if x.1 - x.0 < 1e-12 {
            x = (x.0 - 0.5, x.1 + 0.5);
        }
        if !y.0.is_finite() {
            y = if self.log_y { (1e-3, 1.0) } else { (0.0, 1.0) };
        }
        y = if self.log_y {
            (y.0 * 0.7, y.1 * 1.4)
        } else if y.1 - y.0 < 1e-12 {
            (y.0 - 0.5, y.1 + 0.5)
        } else {
            (y.0 - 0.05 * (y.1 - y.0), y.1 + 0.05 * (y.1 - y.0))
        };
        (x, y)
    }

    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> std::result::Result<(), String> {
        let ((x0, x1), (y0, y1)) = self.ranges();
        let mut builder = ChartBuilder::on(area);
        builder.caption(&self.title, ("sans-serif", 18)).margin(12).x_label_area_size(42).y_label_area_size(64);
        macro_rules! draw_into {
            ($chart:expr) => {{
                let mut chart = $chart;
                chart
                    .configure_mesh()
                    .x_desc(self.x_desc.as_str())
                    .y_desc(self.y_desc.as_str())
                    .label_style(("sans-serif", 13))
                    .x_label_formatter(&|v| tick_within(*v, x1 - x0))
                    .y_label_formatter(&|v| if self.log_y { tick(*v) } else { tick_within(*v, y1 - y0) })
                    .axis_desc_style(("sans-serif", 15))
                    .light_line_style(WHITE.mix(0.0))
                    .draw()
                    .map_err(e2s)?;
                let clamp = |(x, y): (f64, f64)| (x, y.clamp(y0, y1));
                for (k, (label, pts, dots)) in self.series.iter().enumerate() {
                    let color = COLORS[k % COLORS.len()];
                    let pts = pts.iter().copied().filter(|p| p.0.is_finite() && p.1.is_finite()).map(clamp);
                    let drawn = if *dots {
                        chart.draw_series(pts.map(|p| Circle::new(p, 2, color.filled()))).map_err(e2s)?
                    } else {
                        chart.draw_series(LineSeries::new(pts, color.stroke_width(2))).map_err(e2s)?
                    };
                    if !label.is_empty() {
                        drawn
                            .label(label.as_str())
                            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(3)));
                    }
                }
                for (k, (label, l)) in self.levels.iter().enumerate() {
                    let color = COLORS[k % COLORS.len()];
                    // Dotted: short dashes along the level.
                    let n = 60;
                    let dashes = (0..n).step_by(2).map(|i| {
                        let a = x0 + (x1 - x0) * i as f64 / n as f64;
                        let b = x0 + (x1 - x0) * (i as f64 + 1.0) / n as f64;
                        PathElement::new(vec![(a, *l), (b, *l)], color.stroke_width(1))
                    });
                    let drawn = chart.draw_series(dashes).map_err(e2s)?;
                    if !label.is_empty() {
                        drawn
                            .label(label.as_str())
                            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 6, y)], color.stroke_width(1)));
                    }
                }
                let labelled =
                    self.series.iter().any(|s| !s.0.is_empty()) || self.levels.iter().any(|l| !l.0.is_empty());
                if labelled {
                    chart
                        .configure_series_labels()
                        .position(SeriesLabelPosition::UpperRight)
                        .label_font(("sans-serif", 12))
                        .background_style(WHITE.mix(0.85))
                        .border_style(BLACK.mix(0.3))
                        .draw()
                        .map_err(e2s)?;
                }
            }};
        }
        if self.log_y {
            draw_into!(builder.build_cartesian_2d(x0..x1, (y0..y1).log_scale()).map_err(e2s)?);
        } else {
            draw_into!(builder.build_cartesian_2d(x0..x1, y0..y1).map_err(e2s)?);
        }
        Ok(())
    }
}

impl Figure for XyPanels {
    fn size(&self) -> (u32, u32) {
        let cols = self.columns.min(self.panels.len()).max(1) as u32;
        let rows = self.panels.len().div_ceil(self.columns.max(1)).max(1) as u32;
        (cols * 560, rows * 400 + 40)
    }
    fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, Shift>) -> std::result::Result<(), String> {
        root.fill(&WHITE).map_err(e2s)?;
        let root = root.titled(&self.title, ("sans-serif", 22)).map_err(e2s)?;
        let cols = self.columns.min(self.panels.len()).max(1);
        let rows = self.panels.len().div_ceil(cols).max(1);
        for (area, p) in root.split_evenly((rows, cols)).iter().zip(&self.panels) {
            p.draw(area)?;
        }
        root.present().map_err(e2s)
    }
}

//! Figures with `plotters`, each drawn once into an SVG and once into a PNG. Text uses the
//! DejaVu Sans font compiled into the binary, so rendering needs no system fonts or libraries.

use super::atomic::write_atomic;
use crate::error::{Error, Result};
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
    let svg_path = base.with_extension("svg");
    let png_path = base.with_extension("png");
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
        let mut w = enc.write_header().map_err(|e| fail(&png_path, e.to_string()))?;
        w.write_image_data(&rgb).map_err(|e| fail(&png_path, e.to_string()))?;
    }
    write_atomic(&png_path, &png_bytes)
}

/// Per-seed training curves of one setting; a seed's curve ends where it stopped.
pub struct Curves {
    pub label: String,
    pub loss: Vec<Vec<f32>>,
    pub accuracy: Vec<Vec<f32>>,
}

/// Median and interquartile band across seeds at `points` iterations (1-based), a stopped
/// seed holding its last value (a converged seed stays at 100%).
pub struct Band {
    pub iterations: Vec<f64>,
    pub median: Vec<f64>,
    pub p25: Vec<f64>,
    pub p75: Vec<f64>,
}

pub fn band(curves: &[Vec<f32>], max_points: usize) -> Band {
    let len = curves.iter().map(Vec::len).max().unwrap_or(0);
    let step = len.div_ceil(max_points.max(1)).max(1);
    let mut idx: Vec<usize> = (0..len).step_by(step).collect();
    if len > 0 && idx.last() != Some(&(len - 1)) {
        idx.push(len - 1);
    }
    let mut b = Band { iterations: vec![], median: vec![], p25: vec![], p75: vec![] };
    for i in idx {
        let xs: Vec<f64> = curves
            .iter()
            .filter(|c| !c.is_empty())
            .map(|c| c[i.min(c.len() - 1)] as f64)
            .filter(|v| v.is_finite())
            .collect();
        if xs.is_empty() {
            continue;
        }
        b.iterations.push((i + 1) as f64);
        b.median.push(quantile(&xs, 0.5));
        b.p25.push(quantile(&xs, 0.25));
        b.p75.push(quantile(&xs, 0.75));
    }
    b
}

fn e2s<E: std::fmt::Debug>(e: E) -> String {
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

/// One panel: median line and IQR band per series.
#[allow(clippy::too_many_arguments)]
fn band_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    caption: &str,
    y_label: &str,
    series: &[(String, Band)],
    x_max: f64,
    log_y: bool,
    y_range: (f64, f64),
    legend: SeriesLabelPosition,
) -> std::result::Result<(), String> {
    let mut builder = ChartBuilder::on(area);
    builder.caption(caption, ("sans-serif", 20)).margin(12).x_label_area_size(42).y_label_area_size(64);
    let x_range = 1.0..x_max.max(2.0);
    macro_rules! draw_into {
        ($chart:expr, $clamp:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .x_desc("iteration")
                .y_desc(y_label)
                .label_style(("sans-serif", 14))
                .x_label_formatter(&|v| tick(*v))
                .y_label_formatter(&|v| tick(*v))
                .axis_desc_style(("sans-serif", 16))
                .light_line_style(WHITE.mix(0.0))
                .draw()
                .map_err(e2s)?;
            for (k, (label, b)) in series.iter().enumerate() {
                let color = COLORS[k % COLORS.len()];
                let clamp = $clamp;
                let mut poly: Vec<(f64, f64)> = b.iterations.iter().zip(&b.p75).map(|(&x, &y)| (x, clamp(y))).collect();
                poly.extend(b.iterations.iter().zip(&b.p25).rev().map(|(&x, &y)| (x, clamp(y))));
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
                .position(legend.clone())
                .label_font(("sans-serif", 13))
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK.mix(0.3))
                .draw()
                .map_err(e2s)?;
        }};
    }
    if log_y {
        let (lo, hi) = y_range;
        draw_into!(builder.build_cartesian_2d(x_range, (lo..hi).log_scale()).map_err(e2s)?, |y: f64| y.clamp(lo, hi));
    } else {
        let (lo, hi) = y_range;
        draw_into!(builder.build_cartesian_2d(x_range, lo..hi).map_err(e2s)?, |y: f64| y.clamp(lo, hi));
    }
    Ok(())
}

/// Loss (log axis) and accuracy against iteration: median over seeds with an interquartile
/// band, one colour per setting.
pub struct TrainingCurves {
    pub title: String,
    pub loss: Vec<(String, Band)>,
    pub accuracy: Vec<(String, Band)>,
}

impl TrainingCurves {
    pub fn new(title: &str, sets: &[Curves]) -> TrainingCurves {
        TrainingCurves {
            title: title.to_string(),
            loss: sets.iter().map(|c| (c.label.clone(), band(&c.loss, 600))).collect(),
            accuracy: sets.iter().map(|c| (c.label.clone(), band(&c.accuracy, 600))).collect(),
        }
    }
}

impl Figure for TrainingCurves {
    fn size(&self) -> (u32, u32) {
        (1400, 520)
    }
    fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, Shift>) -> std::result::Result<(), String> {
        let x_max = self.loss.iter().flat_map(|(_, b)| b.iterations.last().copied()).fold(1.0, f64::max);
        let finite_pos = self
            .loss
            .iter()
            .flat_map(|(_, b)| b.p25.iter().chain(&b.p75).copied())
            .filter(|v| v.is_finite() && *v > 0.0);
        let (lo, hi) = finite_pos.fold((f64::INFINITY, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
        let (lo, hi) = if lo.is_finite() { ((lo * 0.7).max(1e-9), hi * 1.4) } else { (1e-3, 1.0) };
        root.fill(&WHITE).map_err(e2s)?;
        let root = root.titled(&self.title, ("sans-serif", 24)).map_err(e2s)?;
        let (left, right) = root.split_horizontally(root.dim_in_pixel().0 / 2);
        band_panel(
            &left,
            "loss",
            "loss (median, IQR band)",
            &self.loss,
            x_max,
            true,
            (lo, hi),
            SeriesLabelPosition::UpperRight,
        )?;
        band_panel(
            &right,
            "training accuracy",
            "accuracy (median, IQR band)",
            &self.accuracy,
            x_max,
            false,
            (0.0, 1.02),
            SeriesLabelPosition::LowerRight,
        )?;
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
    fn band_holds_a_stopped_seeds_last_value() {
        let curves = vec![vec![0.0f32, 0.5, 1.0], vec![0.0, 0.25, 0.5, 0.75, 1.0]];
        let b = band(&curves, 100);
        assert_eq!(b.iterations, vec![1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(b.median, vec![0.0, 0.375, 0.75, 0.875, 1.0]);
    }
}

//! Figures of a quantity over the (w, b) grid: a heatmap with contour lines and a 3D surface,
//! each with a colour bar (viridis), and panels of several side by side.

use super::figures::{Figure, e2s, tick, tick_within};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::colors::colormaps::{ColorMap, ViridisRGB};

/// One quantity on a grid, downsampled for drawing; `values[ib][iw]`.
#[derive(Clone, Debug)]
pub struct GridPanel {
    pub name: String,
    pub title: String,
    pub ws: Vec<f64>,
    pub bs: Vec<f64>,
    pub values: Vec<Vec<f64>>,
    /// Colour and z range: the finite minimum and maximum of the full grid.
    pub range: (f64, f64),
    /// Names of the horizontal and vertical axes ("weight", "bias" for a neuron).
    pub axes: (String, String),
    /// A path drawn over the heatmap (e.g. a training trajectory), start marked.
    pub path: Vec<(f64, f64)>,
}

/// Every `step`-th index, always including the last.
fn picks(n: usize, max: usize) -> Vec<usize> {
    let step = n.div_ceil(max).max(1);
    let mut v: Vec<usize> = (0..n).step_by(step).collect();
    if v.last() != Some(&(n - 1)) {
        v.push(n - 1);
    }
    v
}

impl GridPanel {
    /// `values` is row-major over (b, w), as `experiments::landscape` stores it.
    pub fn new(name: &str, title: &str, ws: &[f64], bs: &[f64], values: &[f64]) -> GridPanel {
        let (iw, ib) = (picks(ws.len(), 64), picks(bs.len(), 64));
        let finite = values.iter().copied().filter(|v| v.is_finite());
        let (lo, hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
        let range = if !lo.is_finite() {
            (0.0, 1.0)
        } else if hi - lo < 1e-12 * (1.0 + lo.abs()) {
            (lo - 0.5, hi + 0.5)
        } else {
            (lo, hi)
        };
        GridPanel {
            name: name.into(),
            title: title.into(),
            ws: iw.iter().map(|&i| ws[i]).collect(),
            bs: ib.iter().map(|&j| bs[j]).collect(),
            values: ib.iter().map(|&j| iw.iter().map(|&i| values[j * ws.len() + i]).collect()).collect(),
            range,
            axes: ("weight".into(), "bias".into()),
            path: vec![],
        }
    }

    /// The same panel with a path over it.
    pub fn with_path(self, path: Vec<(f64, f64)>) -> GridPanel {
        GridPanel { path, ..self }
    }

    /// The same panel with other axis names.
    pub fn with_axes(self, x: &str, y: &str) -> GridPanel {
        GridPanel { axes: (x.into(), y.into()), ..self }
    }

    fn color(&self, v: f64) -> RGBColor {
        ViridisRGB.get_color_normalized(v.clamp(self.range.0, self.range.1), self.range.0, self.range.1)
    }

    /// A coarser copy for 3D surfaces (each cell is a polygon).
    fn coarse(&self, max: usize) -> GridPanel {
        let (iw, ib) = (picks(self.ws.len(), max), picks(self.bs.len(), max));
        GridPanel {
            ws: iw.iter().map(|&i| self.ws[i]).collect(),
            bs: ib.iter().map(|&j| self.bs[j]).collect(),
            values: ib.iter().map(|&j| iw.iter().map(|&i| self.values[j][i]).collect()).collect(),
            ..self.clone()
        }
    }
}

/// Contour segments at `level` by marching squares; each segment joins two edge crossings.
pub fn contour_segments(p: &GridPanel, level: f64) -> Vec<[(f64, f64); 2]> {
    let mut segs = vec![];
    for j in 0..p.bs.len().saturating_sub(1) {
        for i in 0..p.ws.len().saturating_sub(1) {
            // Corners counter-clockwise from (w_i, b_j).
            let c = [(i, j), (i + 1, j), (i + 1, j + 1), (i, j + 1)];
            let mut pts = vec![];
            for k in 0..4 {
                let (a, b) = (c[k], c[(k + 1) % 4]);
                let (va, vb) = (p.values[a.1][a.0], p.values[b.1][b.0]);
                if !(va.is_finite() && vb.is_finite()) || (va >= level) == (vb >= level) {
                    continue;
                }
                let t = (level - va) / (vb - va);
                let lerp = |x: f64, y: f64| x + t * (y - x);
                pts.push((lerp(p.ws[a.0], p.ws[b.0]), lerp(p.bs[a.1], p.bs[b.1])));
            }
            for pair in pts.chunks_exact(2) {
                segs.push([pair[0], pair[1]]);
            }
        }
    }
    segs
}

fn colour_bar<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, p: &GridPanel, font: u32) -> Result<(), String> {
    let (lo, hi) = p.range;
    let mut chart = ChartBuilder::on(area)
        .margin_top(40)
        .margin_bottom(50)
        .margin_right(6)
        .y_label_area_size(0)
        .right_y_label_area_size(font * 4)
        .build_cartesian_2d(0.0..1.0, lo..hi)
        .map_err(e2s)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_labels(6)
        .y_label_formatter(&|v| tick_within(*v, hi - lo))
        .label_style(("sans-serif", font))
        .draw()
        .map_err(e2s)?;
    let steps = 100;
    chart
        .draw_series((0..steps).map(|k| {
            let (a, b) = (lo + (hi - lo) * k as f64 / steps as f64, lo + (hi - lo) * (k + 1) as f64 / steps as f64);
            Rectangle::new([(0.0, a), (1.0, b)], p.color((a + b) / 2.0).filled())
        }))
        .map_err(e2s)?;
    Ok(())
}

fn heatmap<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, p: &GridPanel, font: u32) -> Result<(), String> {
    let bar_w = font * 6;
    let (main, bar) = area.split_horizontally(area.dim_in_pixel().0.saturating_sub(bar_w));
    let (w0, w1, b0, b1) = (p.ws[0], *p.ws.last().unwrap(), p.bs[0], *p.bs.last().unwrap());
    let mut chart = ChartBuilder::on(&main)
        .caption(&p.title, ("sans-serif", font + 4))
        .margin(8)
        .x_label_area_size(font * 3)
        .y_label_area_size(font * 3 + 6)
        .build_cartesian_2d(w0..w1, b0..b1)
        .map_err(e2s)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc(p.axes.0.as_str())
        .y_desc(p.axes.1.as_str())
        .x_label_formatter(&|v| tick(*v))
        .y_label_formatter(&|v| tick(*v))
        .label_style(("sans-serif", font))
        .axis_desc_style(("sans-serif", font + 2))
        .draw()
        .map_err(e2s)?;
    // Cells centred on the grid points, clipped to the axes.
    let half = |v: &[f64], i: usize| {
        let lo = if i == 0 { v[0] } else { (v[i - 1] + v[i]) / 2.0 };
        let hi = if i + 1 == v.len() { v[i] } else { (v[i] + v[i + 1]) / 2.0 };
        (lo, hi)
    };
    chart
        .draw_series(p.bs.iter().enumerate().flat_map(|(j, _)| {
            p.ws.iter().enumerate().map(move |(i, _)| {
                let ((xa, xb), (ya, yb)) = (half(&p.ws, i), half(&p.bs, j));
                Rectangle::new([(xa, ya), (xb, yb)], p.color(p.values[j][i]).filled())
            })
        }))
        .map_err(e2s)?;
    let (lo, hi) = p.range;
    for k in 1..8 {
        let level = lo + (hi - lo) * k as f64 / 8.0;
        let style = if k == 4 { WHITE.mix(0.9).stroke_width(2) } else { WHITE.mix(0.7).stroke_width(1) };
        chart
            .draw_series(contour_segments(p, level).into_iter().map(|s| PathElement::new(s.to_vec(), style)))
            .map_err(e2s)?;
    }
    if !p.path.is_empty() {
        let red = RGBColor(214, 39, 40);
        chart.draw_series(std::iter::once(PathElement::new(p.path.clone(), red.stroke_width(2)))).map_err(e2s)?;
        chart.draw_series(p.path.iter().map(|&pt| Circle::new(pt, 2, red.filled()))).map_err(e2s)?;
        chart.draw_series(std::iter::once(Circle::new(p.path[0], 6, WHITE.filled()))).map_err(e2s)?;
    }
    colour_bar(&bar, p, font)
}

fn surface<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, p: &GridPanel, font: u32) -> Result<(), String> {
    let bar_w = font * 6;
    let (main, bar) = area.split_horizontally(area.dim_in_pixel().0.saturating_sub(bar_w));
    let c = p.coarse(40);
    let (w0, w1, b0, b1) = (c.ws[0], *c.ws.last().unwrap(), c.bs[0], *c.bs.last().unwrap());
    let (lo, hi) = p.range;
    let mut chart = ChartBuilder::on(&main)
        .caption(&p.title, ("sans-serif", font + 4))
        .margin(font)
        .build_cartesian_3d(w0..w1, lo..hi, b0..b1)
        .map_err(e2s)?;
    chart.with_projection(|mut pb| {
        // Looking from the (−w, +b) corner, like matplotlib's default view: a sigmoid's
        // S-shaped rise along w + b shows in profile.
        pb.yaw = -0.4;
        pb.pitch = 0.35;
        pb.scale = 0.8;
        pb.into_matrix()
    });
    chart
        .configure_axes()
        .light_grid_style(BLACK.mix(0.08))
        .max_light_lines(2)
        .label_style(("sans-serif", font - 2))
        .x_formatter(&|v| tick(*v))
        .y_formatter(&|v| tick_within(*v, hi - lo))
        .z_formatter(&|v| tick(*v))
        .draw()
        .map_err(e2s)?;
    let (dw, db) = (c.ws[1] - c.ws[0], c.bs[1] - c.bs[0]);
    let lookup = |w: f64, b: f64| {
        let i = (((w - w0) / dw).round() as usize).min(c.ws.len() - 1);
        let j = (((b - b0) / db).round() as usize).min(c.bs.len() - 1);
        c.values[j][i].clamp(lo, hi)
    };
    let style = |v: &f64| p.color(*v).mix(0.95).filled();
    chart
        .draw_series(SurfaceSeries::xoz(c.ws.iter().copied(), c.bs.iter().copied(), lookup).style_func(&style))
        .map_err(e2s)?;
    let text = ("sans-serif", font + 2).into_font().color(&BLACK);
    chart
        .draw_series(
            [
                (p.axes.0.as_str(), ((w0 + w1) / 2.0, lo, b1 + 0.3 * (b1 - b0))),
                (p.axes.1.as_str(), (w0 - 0.3 * (w1 - w0), lo, (b0 + b1) / 2.0)),
            ]
            .map(|(label, at)| Text::new(label.to_string(), at, text.clone())),
        )
        .map_err(e2s)?;
    colour_bar(&bar, p, font)
}

/// One quantity as a single figure.
pub struct GridFigure<'a> {
    panel: &'a GridPanel,
    surface: bool,
}

impl GridFigure<'_> {
    pub fn heatmap(panel: &GridPanel) -> GridFigure<'_> {
        GridFigure { panel, surface: false }
    }
    pub fn surface(panel: &GridPanel) -> GridFigure<'_> {
        GridFigure { panel, surface: true }
    }
}

impl Figure for GridFigure<'_> {
    fn size(&self) -> (u32, u32) {
        (760, 620)
    }
    fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, Shift>) -> Result<(), String> {
        root.fill(&WHITE).map_err(e2s)?;
        if self.surface {
            surface(&root, self.panel, 15)?
        } else {
            heatmap(&root, self.panel, 15)?
        }
        root.present().map_err(e2s)
    }
}

/// Several quantities side by side, four to a row, on the same (w, b) axes.
pub struct GridPanels {
    pub title: String,
    pub panels: Vec<GridPanel>,
    pub surface: bool,
}

impl Figure for GridPanels {
    fn size(&self) -> (u32, u32) {
        let cols = self.panels.len().clamp(1, 4) as u32;
        let rows = self.panels.len().div_ceil(4).max(1) as u32;
        (cols * 520, rows * 440 + 50)
    }
    fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, Shift>) -> Result<(), String> {
        root.fill(&WHITE).map_err(e2s)?;
        let root = root.titled(&self.title, ("sans-serif", 26)).map_err(e2s)?;
        let cols = self.panels.len().clamp(1, 4);
        let rows = self.panels.len().div_ceil(4).max(1);
        for (area, p) in root.split_evenly((rows, cols)).iter().zip(&self.panels) {
            if self.surface { surface(area, p, 13)? } else { heatmap(area, p, 13)? }
        }
        root.present().map_err(e2s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contours_of_a_plane_are_straight_lines_at_the_right_place() {
        // v = w on a 5×5 grid over [0, 4]²: the level 1.5 contour is the line w = 1.5.
        let ws: Vec<f64> = (0..5).map(f64::from).collect();
        let values: Vec<f64> = (0..25).map(|k| (k % 5) as f64).collect();
        let p = GridPanel::new("w", "w", &ws, &ws, &values);
        let segs = contour_segments(&p, 1.5);
        assert_eq!(segs.len(), 4, "one segment per row of cells");
        for s in segs {
            for (w, _) in s {
                assert!((w - 1.5).abs() < 1e-12);
            }
        }
        assert!(contour_segments(&p, 10.0).is_empty());
    }

    #[test]
    fn downsampling_keeps_both_ends() {
        assert_eq!(picks(5, 10), vec![0, 1, 2, 3, 4]);
        let p = picks(1000, 120);
        assert_eq!((p[0], *p.last().unwrap()), (0, 999));
        assert!(p.len() <= 121);
    }
}

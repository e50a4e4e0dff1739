//! The decision boundary of 2D data as a figure: seed 0's output over the plane beside the median
//! over seeds (faded where the seeds disagree), in TensorFlow Playground's colours (orange −1,
//! white 0, blue +1), the training points on top.

use super::figures::{Figure, e2s, tick};
use crate::experiments::decision_boundary::Boundary;
use plotters::coord::Shift;
use plotters::prelude::*;

pub struct BoundaryFigure<'a> {
    pub title: String,
    pub boundary: &'a Boundary,
    /// `[x₁, x₂, value]`, value on the boundary's scale.
    pub points: &'a [[f32; 3]],
    pub seeds: usize,
}

const NEG: (f64, f64, f64) = (245.0, 147.0, 34.0);
const POS: (f64, f64, f64) = (8.0, 119.0, 189.0);
const CLASSES: [RGBColor; 8] = super::figures::COLORS;

/// The Playground's diverging scale, `fade` (0..1) towards white.
fn diverging(v: f64, fade: f64) -> RGBColor {
    let t = v.clamp(-1.0, 1.0);
    let (r, g, b) = if t < 0.0 { NEG } else { POS };
    let a = t.abs() * fade;
    let mix = |c: f64| (255.0 + (c - 255.0) * a).round() as u8;
    RGBColor(mix(r), mix(g), mix(b))
}

impl Figure for BoundaryFigure<'_> {
    fn size(&self) -> (u32, u32) {
        (980, 540)
    }
    fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, Shift>) -> std::result::Result<(), String> {
        root.fill(&WHITE).map_err(e2s)?;
        let root = root.titled(&self.title, ("sans-serif", 16)).map_err(e2s)?;
        let b = self.boundary;
        let n = b.n;
        let [x0, x1, y0, y1] = b.extent;
        let panels = root.split_evenly((1, 2));
        let captions = ["seed 0".to_string(), format!("median over {} seeds (pale where they disagree)", self.seeds)];
        for (k, area) in panels.iter().enumerate() {
            let mut chart = ChartBuilder::on(area)
                .caption(&captions[k], ("sans-serif", 14))
                .margin(12)
                .x_label_area_size(28)
                .y_label_area_size(36)
                .build_cartesian_2d(x0..x1, y0..y1)
                .map_err(e2s)?;
            chart
                .configure_mesh()
                .disable_mesh()
                .x_desc("x₁")
                .y_desc("x₂")
                .x_label_formatter(&|v| tick(*v))
                .y_label_formatter(&|v| tick(*v))
                .label_style(("sans-serif", 11))
                .draw()
                .map_err(e2s)?;
            let (dx, dy) = ((x1 - x0) / n as f64, (y1 - y0) / n as f64);
            let values = if k == 0 { &b.seed0 } else { &b.median };
            chart
                .draw_series((0..n * n).map(|s| {
                    let (i, j) = (s % n, s / n);
                    let v = values[s] as f64;
                    let colour = match b.classes {
                        Some(_) => {
                            let c = CLASSES[v as usize % CLASSES.len()];
                            RGBColor(c.0 / 2 + 128, c.1 / 2 + 128, c.2 / 2 + 128)
                        }
                        None => {
                            let fade = if k == 1 { (2.0 * b.agreement[s] as f64 - 1.0).clamp(0.0, 1.0) } else { 1.0 };
                            diverging(v, fade)
                        }
                    };
                    let top = y1 - j as f64 * dy;
                    let left = x0 + i as f64 * dx;
                    Rectangle::new([(left, top), (left + dx, top - dy)], colour.filled())
                }))
                .map_err(e2s)?;
            chart
                .draw_series(self.points.iter().map(|p| {
                    let colour = match b.classes {
                        Some(_) => CLASSES[p[2] as usize % CLASSES.len()],
                        None => diverging(
                            if p[2] == 0.0 { 0.0 } else { p[2].signum() as f64 * (p[2].abs() as f64).max(0.5) },
                            1.0,
                        ),
                    };
                    Circle::new((p[0] as f64, p[1] as f64), 3, colour.filled())
                }))
                .map_err(e2s)?;
            chart
                .draw_series(
                    self.points.iter().map(|p| Circle::new((p[0] as f64, p[1] as f64), 3, WHITE.stroke_width(1))),
                )
                .map_err(e2s)?;
        }
        Ok(())
    }
}

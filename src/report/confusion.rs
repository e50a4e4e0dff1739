//! Confusion matrices of multi-class heads: `confusion.csv` (per seed and pooled over seeds,
//! one row per true and predicted class) and `confusion.png`/`.svg` (pooled, each true class's
//! row as shares, the counts written in).

use super::figures::{Figure, e2s, render};
use crate::error::Result;
use crate::record::{Confusion, Run};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::fmt::Write;
use std::path::Path;

/// Writes the files for the runs that have a confusion matrix (one run: `confusion.*`; several
/// cells: the CSV has their setting in a column, the figure is the first's).
pub fn write_outputs(dir: &Path, runs: &[&Run]) -> Result<()> {
    let with: Vec<(&Run, &Confusion)> = runs.iter().filter_map(|r| r.confusion.as_ref().map(|c| (*r, c))).collect();
    let Some((first, c)) = with.first() else { return Ok(()) };
    let mut csv = String::from("setting,set,seed,true,predicted,count\n");
    for (r, c) in &with {
        let k = c.classes;
        let mut rows = |seed: &str, counts: &[u64]| {
            for t in 0..k {
                for p in 0..k {
                    let _ = writeln!(csv, "{},{},{seed},{t},{p},{}", r.setting, c.set, counts[t * k + p]);
                }
            }
        };
        for (s, counts) in r.seeds.iter().zip(&c.per_seed) {
            if let Some(counts) = counts {
                rows(&s.to_string(), counts);
            }
        }
        rows("pooled", &c.pooled());
    }
    crate::atomic::write_atomic(&dir.join("confusion.csv"), csv.as_bytes())?;
    let seeds = c.per_seed.iter().flatten().count();
    if seeds == 0 {
        return Ok(());
    }
    let set = if c.set == "held_out" { "held-out" } else { "training" };
    let title =
        format!("{}: {set} confusion of `{}`, pooled over {seeds} seeds (rows: true class)", first.setting, c.head);
    render(&dir.join("confusion"), &Matrix { title, classes: c.classes, counts: c.pooled() })
}

struct Matrix {
    title: String,
    classes: usize,
    counts: Vec<u64>,
}

impl Figure for Matrix {
    fn size(&self) -> (u32, u32) {
        let side = (self.classes as u32 * 52).clamp(260, 720);
        (side + 150, side + 110)
    }
    fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, Shift>) -> std::result::Result<(), String> {
        root.fill(&WHITE).map_err(e2s)?;
        let root = root.titled(&self.title, ("sans-serif", 14)).map_err(e2s)?;
        let k = self.classes;
        let (w, h) = root.dim_in_pixel();
        let side = (w as i32 - 150).min(h as i32 - 70);
        let cell = side / k as i32;
        let (x0, y0) = (90, 20);
        let label = ("sans-serif", 12).into_font();
        for t in 0..k {
            let row = &self.counts[t * k..(t + 1) * k];
            let total = row.iter().sum::<u64>().max(1) as f64;
            for (p, &n) in row.iter().enumerate() {
                let share = n as f64 / total;
                // Right answers in blue, confusions in red; white at none.
                let (r, g, b) = if t == p { (31, 119, 180) } else { (214, 39, 40) };
                let mix = |c: u8| (255.0 - (255.0 - c as f64) * share.sqrt()).round() as u8;
                let (x, y) = (x0 + p as i32 * cell, y0 + t as i32 * cell);
                root.draw(&Rectangle::new([(x, y), (x + cell, y + cell)], RGBColor(mix(r), mix(g), mix(b)).filled()))
                    .map_err(e2s)?;
                root.draw(&Rectangle::new([(x, y), (x + cell, y + cell)], RGBColor(220, 224, 230))).map_err(e2s)?;
                if n > 0 && cell >= 22 {
                    let ink = if share > 0.5 { WHITE } else { BLACK };
                    let text = n.to_string();
                    let size = (cell as f64 * 0.3).clamp(8.0, 14.0);
                    let font = ("sans-serif", size).into_font().color(&ink);
                    let tw = text.len() as i32 * (size * 0.6) as i32;
                    root.draw(&Text::new(text, (x + (cell - tw) / 2, y + cell / 2 - size as i32 / 2), font))
                        .map_err(e2s)?;
                }
            }
            root.draw(&Text::new(t.to_string(), (x0 - 20, y0 + t as i32 * cell + cell / 2 - 6), label.clone()))
                .map_err(e2s)?;
            root.draw(&Text::new(
                t.to_string(),
                (x0 + t as i32 * cell + cell / 2 - 4, y0 + k as i32 * cell + 6),
                label.clone(),
            ))
            .map_err(e2s)?;
        }
        root.draw(&Text::new("true", (10, y0 + side / 2), label.clone())).map_err(e2s)?;
        root.draw(&Text::new("predicted", (x0 + side / 2 - 28, y0 + side + 26), label)).map_err(e2s)?;
        Ok(())
    }
}

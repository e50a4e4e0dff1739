//! Sharpness during training: per model the largest Hessian eigenvalue of the training loss
//! (column `sharpness`) and, where asked, the smallest (`lambda_min`), by Lanczos on exact
//! Hessian-vector products (`crate::curvature`), every K evaluated iterations (full batch only).
//! Warm-started from the previous measurement's Ritz vectors. The products run on a twin of the
//! net in `Dual<f64>`: the training net is only read, so training is unchanged.

use super::{At, Observer};
use crate::curvature::lanczos::{Options, lanczos, random_vectors};
use crate::curvature::{Hvp, Vectors};
use crate::engine::Real;
use crate::init::SeededRng;
use crate::models::Net;
use crate::record::Run;

/// Lanczos stops when the watched Ritz pairs' residuals are below this, relative to the
/// largest |Ritz value| (an eigenvalue then lies within that of each), or after `MAX_STEPS`.
pub const TOLERANCE: f64 = 1e-4;
pub const MAX_STEPS: usize = 60;

/// Lanczos steps taken by every measurement so far in this process (for `gradlab bench`).
static STEPS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
pub fn lanczos_steps() -> usize {
    STEPS.load(std::sync::atomic::Ordering::Relaxed)
}

/// The extreme Hessian eigenvalues of every model at the net's current parameters and fed data.
pub struct Sharpness {
    hvp: Hvp,
    rngs: Vec<SeededRng>,
    /// The previous measurement's Ritz vectors per model (the next start).
    warm: Option<Vectors>,
    bottom: bool,
    /// The latest estimates per model (NaN before the first): λmax, λmin (NaN unless asked).
    pub lambda: Vec<f64>,
    pub lambda_min: Vec<f64>,
    /// Lanczos steps (Hessian-vector products) of the latest measurement.
    pub steps: usize,
}

impl Sharpness {
    /// Start vectors are drawn from each model's seed (a model's estimate never depends on
    /// the others, like everything else in an ensemble). `bottom`: also λmin.
    pub fn new<T: Real>(net: &Net<T>, seeds: &[u64], bottom: bool) -> Sharpness {
        let hvp = Hvp::new(net);
        let e = hvp.ensemble();
        Sharpness {
            rngs: seeds.iter().take(e).map(|&s| SeededRng::new(s ^ 0x4845_5353)).collect(),
            hvp,
            warm: None,
            bottom,
            lambda: vec![f64::NAN; e],
            lambda_min: vec![f64::NAN; e],
            steps: 0,
        }
    }

    /// Measures at the net's parameters; only the `active` models' estimates are updated.
    pub fn measure<T: Real>(&mut self, net: &Net<T>, active: &[bool]) {
        self.hvp.at(net);
        let dim = self.hvp.dim;
        let mut start = random_vectors(dim, &mut self.rngs, false);
        if let Some(warm) = &self.warm {
            // The previous Ritz vectors, with a hundredth of a fresh random direction so that a
            // new top eigenvector is never missed for want of a component along it.
            for (s, w) in start.iter_mut().zip(warm) {
                let r = crate::curvature::dot(s, s).sqrt();
                s.iter_mut().zip(w).for_each(|(x, &wi)| *x = wi + 0.01 * *x / r);
            }
        }
        let hvp = &mut self.hvp;
        let ritz =
            lanczos(&mut |v: &[Vec<f64>]| hvp.apply(v), start, &Options::extremes(self.bottom, TOLERANCE, MAX_STEPS));
        self.steps = ritz.iter().map(|r| r.steps).max().unwrap_or(0);
        STEPS.fetch_add(self.steps, std::sync::atomic::Ordering::Relaxed);
        for (m, r) in ritz.iter().enumerate().filter(|(m, _)| active[*m]) {
            self.lambda[m] = r.max();
            if self.bottom {
                self.lambda_min[m] = r.min();
            }
        }
        let mut warm = Vec::with_capacity(ritz.len());
        for r in ritz {
            let mut w = vec![0.0; dim];
            for y in &r.vectors {
                crate::curvature::axpy(&mut w, 1.0, y);
            }
            warm.push(w);
        }
        self.warm = Some(warm);
    }
}

/// The sharpness columns of a run.
pub struct SharpnessObserver {
    /// Every this many evaluated iterations.
    every: usize,
    bottom: bool,
    lanczos: Option<Sharpness>,
    column: usize,
    due: bool,
}

impl SharpnessObserver {
    pub fn new(every: usize, bottom: bool) -> SharpnessObserver {
        SharpnessObserver { every, bottom, lanczos: None, column: 0, due: false }
    }
}

impl Observer for SharpnessObserver {
    fn columns(&self, _: &Net<f32>) -> Vec<String> {
        let mut c = vec!["sharpness".to_string()];
        if self.bottom {
            c.push("lambda_min".into());
        }
        c
    }

    fn start(&mut self, net: &mut Net<f32>, run: &mut Run) -> crate::Result<()> {
        self.lanczos = Some(Sharpness::new(net, &run.seeds, self.bottom));
        self.column = run.columns.iter().position(|c| c == "sharpness").expect("its column");
        Ok(())
    }

    fn evaluated(&mut self, _: &Net<f32>, at: &At, run: &mut Run, keep: &mut bool) {
        self.due = at.row.is_multiple_of(self.every);
        for (row, _) in run.rows.iter_mut().zip(at.active).filter(|(_, a)| **a) {
            row.push(f32::NAN); // filled in before the step
            if self.bottom {
                row.push(f32::NAN);
            }
        }
        *keep |= self.due;
    }

    fn before_step(&mut self, net: &mut Net<f32>, at: &At, run: &mut Run) -> crate::Result<()> {
        if !(at.evaluated && std::mem::take(&mut self.due)) {
            return Ok(());
        }
        let s = self.lanczos.as_mut().expect("started");
        s.measure(net, at.active);
        let n_cols = run.columns.len();
        for (e, row) in run.rows.iter_mut().enumerate().filter(|(e, _)| at.active[*e]) {
            let at_row = row.len() - n_cols + self.column;
            row[at_row] = s.lambda[e] as f32;
            if self.bottom {
                row[at_row + 1] = s.lambda_min[e] as f32;
            }
        }
        Ok(())
    }
}

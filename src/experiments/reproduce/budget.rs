//! The main job's time budget: how many seeds the expensive sections of `gradlab reproduce`
//! run so that the whole stays within `--budget` seconds on this machine.
//!
//! The CNN sections (Tasks 3–4, the exploding-gradient runs, label noise) are three quarters of
//! a full run, and the per-sample measures most of the rest; both scale with their seeds. Their
//! cost on this machine is estimated from one measurement, taken before any work: a training
//! step of the report's detect CNN for one model on this thread ([`calibrate`], ~0.1 s). A
//! reference run of the whole job measured the same step and each section's wall time at 32
//! seeds on two threads (the constants below); the estimate scales those by the step's ratio
//! and the threads. Table 1 (fc73, milliseconds a run) always runs every seed.

use crate::activations::Activation;
use crate::error::Result;
use crate::experiments::presets::{Cnn, CnnTask};
use crate::init::WeightInit;
use crate::models::Init;
use crate::optim::{OptimConfig, Optimizer};
use std::time::{Duration, Instant};

/// The reference run (`gradlab reproduce --seeds 32`, 2026-12-08, Intel Xeon with AVX-512,
/// 2 threads): its [`calibrate`] figure, and its sections' wall seconds (`results.json`'s
/// `step_seconds`): everything but the two scaled sections, the per-sample measures (32 seeds),
/// and the CNN sections (32 seeds). 108 s in all.
pub const REFERENCE_STEP_SECONDS: f64 = 0.60e-3;
pub const REFERENCE_THREADS: f64 = 2.0;
pub const REFERENCE_FIXED_SECONDS: f64 = 5.0;
pub const REFERENCE_SAMPLES_SECONDS: f64 = 22.0;
pub const REFERENCE_CNN_SECONDS: f64 = 81.0;
/// Seeds of the reference run, and the fewest the budget may choose (fewer say little about a
/// median or a rank test).
pub const FULL_SEEDS: usize = 32;
pub const MIN_SEEDS: usize = 8;

/// What the budget decided, for the report.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Budget {
    pub seconds: f64,
    /// The calibration step on this machine, and the threads training runs on.
    pub step_seconds: f64,
    pub threads: usize,
    /// Seeds of the sections the budget scales: the CNNs and the per-sample measures.
    pub scaled_seeds: usize,
    /// The whole run's estimated seconds at those seeds, and at the full 32.
    pub estimate: f64,
    pub full_estimate: f64,
}

/// Seconds per training step of the report's detect CNN (batch 64, one model) on this thread:
/// the best of a few steps after a warm-up.
pub fn calibrate() -> Result<f64> {
    let data = crate::data::generators::detection(64, 0).samples();
    let mut net = Cnn::new(CnnTask::Detect, Activation::Relu).build::<f32>(1, 64)?;
    net.init(&Init::seeds(0, 1, WeightInit::TruncatedNormal { std: 0.1 }, 0.1));
    net.feed(&data, &(0..data.n).collect::<Vec<_>>());
    let mut opt = Optimizer::new(OptimConfig::sgd(0.01), &net.graph);
    let active = [true];
    let (mut best, start) = (f64::INFINITY, Instant::now());
    for k in 0.. {
        let t = Instant::now();
        net.graph.forward();
        net.graph.backward(net.loss);
        opt.step(&mut net.graph, &active);
        if k > 0 {
            best = best.min(t.elapsed().as_secs_f64());
        }
        if k >= 5 && start.elapsed() > Duration::from_millis(60) || k >= 200 {
            break;
        }
    }
    Ok(best)
}

/// The largest seeds (a multiple of 4, from [`MIN_SEEDS`] to [`FULL_SEEDS`]) whose estimate
/// fits `seconds`, for a machine whose calibration step takes `step_seconds` on `threads`.
pub fn plan(seconds: f64, step_seconds: f64, threads: usize) -> Budget {
    // Slower steps cost proportionally; more threads (up to the seeds) share the work.
    let speed = step_seconds / REFERENCE_STEP_SECONDS * REFERENCE_THREADS / threads.max(1) as f64;
    let estimate = |s: usize| {
        let share = s as f64 / FULL_SEEDS as f64;
        speed * (REFERENCE_FIXED_SECONDS + share * (REFERENCE_SAMPLES_SECONDS + REFERENCE_CNN_SECONDS))
    };
    let seeds = (MIN_SEEDS..=FULL_SEEDS).rev().step_by(4).find(|&s| estimate(s) <= seconds).unwrap_or(MIN_SEEDS);
    Budget {
        seconds,
        step_seconds,
        threads,
        scaled_seeds: seeds,
        estimate: estimate(seeds),
        full_estimate: estimate(FULL_SEEDS),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_machine_runs_every_seed_and_a_slower_one_fewer() {
        let here = plan(180.0, REFERENCE_STEP_SECONDS, 2);
        assert_eq!(here.scaled_seeds, FULL_SEEDS);
        assert!((here.full_estimate - 108.0).abs() < 1e-9, "{here:?}");
        // Three times slower: 324 s at 32 seeds; 16 seeds make 3·(5 + 51.5) = 169.5 s.
        let slow = plan(180.0, 3.0 * REFERENCE_STEP_SECONDS, 2);
        assert_eq!(slow.scaled_seeds, 16, "{slow:?}");
        assert!(slow.estimate <= 180.0 && slow.full_estimate > 180.0, "{slow:?}");
        // One thread instead of two counts like a step twice as slow.
        assert_eq!(plan(180.0, 1.5 * REFERENCE_STEP_SECONDS, 1).scaled_seeds, 16);
        // Never below the minimum, whatever the budget.
        assert_eq!(plan(1.0, 100.0 * REFERENCE_STEP_SECONDS, 1).scaled_seeds, MIN_SEEDS);
    }
}

//! An ensemble split into sub-ensembles ("parts") trained by a pool of threads: each seed's
//! numbers are bit for bit those of one ensemble, only sooner.

use super::{TrainOptions, train};
use crate::data::Samples;
use crate::error::Result;
use crate::models::Net;
use crate::record::Run;

/// Worker threads for ensembles: `GRADLAB_THREADS`, else the machine's available parallelism.
pub fn threads() -> usize {
    std::env::var("GRADLAB_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&t| t > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1))
}

/// A sub-ensemble's tape should fit in a core's share of cache: beyond it, measured on the
/// CNN, the per-model cost of a step grows with E instead of shrinking.
pub const PART_BYTES: usize = 1 << 20;

/// Parts per worker thread a run is split into at least, when seeds allow (see [`train_parallel`]):
/// Table 1 with 1 024 seeds in 7 parts kept one core idle for the last one.
pub const PARTS_PER_THREAD: usize = 4;

/// The smallest part a run is split into for balance (fc73: 32 seeds run as 2 parts of 16, one
/// per core, where they were one ensemble on one core).
pub const MIN_PART: usize = 16;

/// Most threads a watched run uses (see [`train_parallel`]).
pub const LIVE_THREADS: usize = 64;

/// [`train`] with the seeds split into sub-ensembles ("parts") trained by a pool of threads.
/// Each seed's numbers are bit for bit those of a single ensemble (a model never depends on the
/// others), so the merged run is the same, only sooner. A part holds as many models as keep
/// its tape within [`PART_BYTES`] (one model for the CNNs), and at most a
/// [`PARTS_PER_THREAD`]-th of a thread's share (not below [`MIN_PART`]).
/// `build(n)` makes a net for `n` models.
pub fn train_parallel(
    setting: &str,
    build: &(dyn Fn(usize) -> Result<Net<f32>> + Sync),
    data: &Samples,
    held_out: Option<&Samples>,
    opts: &TrainOptions,
    progress: &mut dyn FnMut(usize, usize) -> bool,
) -> Result<Run> {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let per_model = build(1)?.graph.bytes().max(1);
    // Parts small enough that every core gets several (seeds stop at different times, so the
    // queue evens the load out), but not below MIN_PART models where the tape fits them.
    let spread = opts.seeds.div_ceil(PARTS_PER_THREAD * threads()).max(MIN_PART);
    let part_size = (PART_BYTES / per_model).min(spread).clamp(1, opts.seeds);
    let parts = opts.seeds.div_ceil(part_size);
    // Watched, every part gets its own thread (up to LIVE_THREADS) and the OS time-slices
    // them, so all seeds move together on screen. Measured on the detect CNN, 32 seeds: as fast
    // as the cores-many workers, where one lockstep part per core was 36% slower (its tape
    // outgrows the cache).
    let workers = if opts.live.is_some() { parts.min(LIVE_THREADS) } else { threads().min(parts) }.max(1);
    if parts == 1 {
        // One part: its large products split with a helper thread on another core, where a
        // split measured faster than one thread on this machine (`helper::pays`).
        let _helper = (threads() > 1 && crate::engine::helper::pays()).then(crate::engine::helper::Helper::install);
        return train(setting, &mut build(opts.seeds)?, data, held_out, opts, progress);
    }
    let sizes: Vec<usize> = (0..parts).map(|p| part_size.min(opts.seeds - p * part_size)).collect();
    let stop = AtomicBool::new(false);
    let next = AtomicUsize::new(0);
    let iteration: Vec<AtomicUsize> = (0..parts).map(|_| AtomicUsize::new(0)).collect();
    let converged: Vec<AtomicUsize> = (0..parts).map(|_| AtomicUsize::new(0)).collect();
    let finished = AtomicUsize::new(0);
    let (done, finished_rx) = std::sync::mpsc::channel::<()>();
    let results: Mutex<Vec<Option<Result<Run>>>> = Mutex::new((0..parts).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let p = next.fetch_add(1, Ordering::SeqCst);
                    if p >= parts {
                        break;
                    }
                    if !stop.load(Ordering::Relaxed) {
                        let first = opts.first_seed + (p * part_size) as u64;
                        let sub = TrainOptions { seeds: sizes[p], first_seed: first, ..opts.clone() };
                        let (it, conv) = (&iteration[p], &converged[p]);
                        let r = build(sub.seeds).and_then(|mut net| {
                            train(setting, &mut net, data, held_out, &sub, &mut |i, c| {
                                it.store(i, Ordering::Relaxed);
                                conv.store(c, Ordering::Relaxed);
                                !stop.load(Ordering::Relaxed)
                            })
                        });
                        results.lock().expect("no worker panics while holding it")[p] = Some(r);
                    }
                    finished.fetch_add(1, Ordering::SeqCst);
                    let _ = done.send(());
                }
            });
        }
        // This thread reports progress and relays a stop request until every part is done,
        // woken at once by each finished part (a fixed sleep cost up to its length at the end:
        // a third of a 0.15 s fc73 run).
        while finished.load(Ordering::SeqCst) < parts {
            let it = iteration.iter().map(|a| a.load(Ordering::Relaxed)).max().unwrap_or(0);
            let conv = converged.iter().map(|a| a.load(Ordering::Relaxed)).sum();
            if !progress(it, conv) {
                stop.store(true, Ordering::Relaxed);
            }
            let _ = finished_rx.recv_timeout(std::time::Duration::from_millis(50));
        }
    });
    // Parts never started (after a stop) contribute no seeds.
    let results: Vec<Result<Run>> = results.into_inner().expect("workers are done").into_iter().flatten().collect();
    let mut merged: Option<Run> = None;
    for r in results {
        let r = r?;
        match &mut merged {
            None => merged = Some(r),
            Some(m) => {
                m.seeds.extend(r.seeds);
                m.rows.extend(r.rows);
                m.at.extend(r.at);
                m.iterations.extend(r.iterations);
                m.diverged_at.extend(r.diverged_at);
                m.max_abs_weight.extend(r.max_abs_weight);
                if let (Some(a), Some(b)) = (&mut m.held_out_accuracy, r.held_out_accuracy) {
                    a.extend(b);
                }
                for ((_, a), (_, b)) in m.held_out_heads.iter_mut().zip(r.held_out_heads) {
                    a.extend(b);
                }
                if let (Some(a), Some(b)) = (&mut m.probes, r.probes) {
                    a.extend(b);
                }
                if let (Some(a), Some(b)) = (&mut m.learned_at, r.learned_at) {
                    a.extend(b);
                }
                if let (Some(a), Some(b)) = (&mut m.samples, r.samples) {
                    a.extend(b);
                }
                if let (Some(a), Some(b)) = (&mut m.subsets, r.subsets) {
                    a.extend(b);
                }
                if let (Some(a), Some(b)) = (&mut m.final_params, r.final_params) {
                    a.extend(b);
                }
                if let (Some(a), Some(b)) = (&mut m.confusion, r.confusion) {
                    a.per_seed.extend(b.per_seed);
                }
            }
        }
    }
    let mut run = merged.expect("at least one part");
    run.seeds_asked = opts.seeds;
    let last = run.at.iter().filter_map(|a| a.last()).max().copied().unwrap_or(0);
    progress(last as usize, run.converged());
    Ok(run)
}

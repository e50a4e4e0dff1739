//! The one training loop every study uses: full-batch SGD of an ensemble, one seed per model,
//! each seed stopping at its own first 100% (accuracy measured before that iteration's update)
//! or at its first non-finite loss, gradient or parameter; the others go on.

use crate::data::Dataset;
use crate::error::Result;
use crate::models::{Init, Net, binary_accuracy, dead_fraction, regression_accuracy};
use crate::optim::sgd_step;
use serde::Serialize;

/// Options shared by every training study.
#[derive(Clone, Debug, Serialize)]
pub struct TrainOptions {
    pub seeds: usize,
    pub first_seed: u64,
    pub lr: f64,
    pub init_std: f64,
    pub bias_init: f64,
    pub max_iters: usize,
    /// Start every model from these parameters (safetensors) instead of the random init.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init_from: Option<std::path::PathBuf>,
    /// Write each seed's final parameters here as `seed-<s>.safetensors`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub save_params: Option<std::path::PathBuf>,
    /// With `save_params`: also every K updates, `seed-<s>-iter-<K·j>.safetensors` for the
    /// seeds still training (the parameters after K·j updates).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub save_every: Option<usize>,
}

impl TrainOptions {
    /// The report's defaults: lr 0.1, weights std 0.1, biases 0.1, cap 10 000.
    pub fn new(seeds: usize) -> TrainOptions {
        TrainOptions {
            seeds,
            first_seed: 0,
            lr: 0.1,
            init_std: 0.1,
            bias_init: 0.1,
            max_iters: 10_000,
            init_from: None,
            save_params: None,
            save_every: None,
        }
    }
}

/// One setting's outcome: per seed, a row of metrics per iteration until it stopped.
#[derive(Clone, Debug)]
pub struct Run {
    pub setting: String,
    pub seeds: Vec<u64>,
    /// Metric names, the columns of `rows` (CSV columns after `setting,seed,iteration`).
    pub columns: Vec<String>,
    /// Per seed: `iterations × columns` values, row-major.
    pub rows: Vec<Vec<f32>>,
    /// First iteration (from 1) at which every accuracy was 100%.
    pub iterations: Vec<Option<usize>>,
    /// First iteration at which a loss, gradient or parameter was not finite.
    pub diverged_at: Vec<Option<usize>>,
    /// Largest |parameter| of the seed while all were finite.
    pub max_abs_weight: Vec<f64>,
    /// Per seed, after training: accuracy on a held-out set from the same distribution, as
    /// `accuracy` is defined (for two tasks the smaller of class and width accuracy); `None`
    /// when no held-out set was given; NaN for a diverged seed.
    pub held_out_accuracy: Option<Vec<f64>>,
    /// The two parts of a two-task net's held-out accuracy: class, width.
    pub held_out_parts: Option<(Vec<f64>, Vec<f64>)>,
}

impl Run {
    /// One metric of one seed over its iterations.
    pub fn column(&self, seed_index: usize, name: &str) -> Vec<f32> {
        let c = self.columns.iter().position(|n| n == name).unwrap_or_else(|| panic!("no column `{name}`"));
        self.rows[seed_index].chunks_exact(self.columns.len()).map(|r| r[c]).collect()
    }

    /// A metric for every seed.
    pub fn columns_of(&self, name: &str) -> Vec<Vec<f32>> {
        (0..self.seeds.len()).map(|s| self.column(s, name)).collect()
    }

    /// A metric's last value for every seed (NaN for a seed with no rows).
    pub fn column_last(&self, name: &str) -> Vec<f64> {
        self.columns_of(name).iter().map(|c| c.last().map_or(f64::NAN, |&v| v as f64)).collect()
    }

    pub fn converged(&self) -> usize {
        self.iterations.iter().flatten().count()
    }
    pub fn diverged(&self) -> usize {
        self.diverged_at.iter().flatten().count()
    }
}

/// Per model: max |p| over all parameters, or `None` if any parameter is not finite.
fn max_abs_params(net: &Net<f32>, out: &mut [Option<f64>], grads: bool) {
    let e_count = out.len();
    out.iter_mut().for_each(|v| *v = Some(0.0));
    for &(_, id, _) in &net.params {
        let data = if grads { net.graph.grad(id) } else { net.graph.value(id) };
        let n = data.len() / e_count;
        for (e, slot) in out.iter_mut().enumerate() {
            if let Some(m) = slot {
                let mut local = *m as f32;
                let mut finite = true;
                for &v in &data[e * n..(e + 1) * n] {
                    finite &= v.is_finite();
                    local = local.max(v.abs());
                }
                *slot = finite.then_some(local as f64);
            }
        }
    }
}

/// Trains `net` (already built for `opts.seeds` models) on the whole of `data`.
/// `progress(iteration, converged)` runs once per iteration; returning `false` stops (Ctrl-C).
/// Per model, on `data`: class accuracy, and width accuracy for a two-task net (`None`
/// otherwise); evaluated in batches of the net's batch size (`data.n` must be a multiple).
pub fn evaluate(net: &mut Net<f32>, data: &Dataset) -> (Vec<f64>, Option<Vec<f64>>) {
    let (batch, e_count) = (net.batch, net.graph.ensemble());
    assert_eq!(data.n % batch, 0, "held-out size {} is not a multiple of the batch {batch}", data.n);
    let batches = (data.n / batch) as f64;
    let (mut cls_total, mut reg_total) = (vec![0.0; e_count], vec![0.0; e_count]);
    let (mut cls, mut reg) = (vec![0.0; e_count], vec![0.0; e_count]);
    for start in (0..data.n).step_by(batch) {
        let part = data.slice(start, batch);
        net.set_data(&part);
        net.graph.forward();
        binary_accuracy(net.graph.value(net.logits), &part.labels, &mut cls);
        if let (Some(r), Some(w)) = (net.regression, &part.widths) {
            regression_accuracy(net.graph.value(r), w, &mut reg);
        }
        for e in 0..e_count {
            cls_total[e] += cls[e] / batches;
            reg_total[e] += reg[e] / batches;
        }
    }
    (cls_total, net.regression.is_some().then_some(reg_total))
}

pub fn train(
    setting: &str,
    net: &mut Net<f32>,
    data: &Dataset,
    held_out: Option<&Dataset>,
    opts: &TrainOptions,
    progress: &mut dyn FnMut(usize, usize) -> bool,
) -> Result<Run> {
    let e_count = opts.seeds;
    let init = Init::seeds(opts.first_seed, e_count, opts.init_std, opts.bias_init);
    net.init(&init);
    if let Some(path) = &opts.init_from {
        crate::models::params::load_all(net, path)?;
    }
    net.set_data(data);
    let two_task = net.regression.is_some();
    let mut columns: Vec<String> = vec!["loss".into(), "accuracy".into()];
    if two_task {
        columns.extend(["ce_loss", "reg_loss", "cls_accuracy", "reg_accuracy"].map(String::from));
    }
    columns.push("max_abs_weight".into());
    columns.extend(net.hidden.iter().map(|(name, _)| format!("dead_fraction_{name}")));

    let mut run = Run {
        setting: setting.to_string(),
        seeds: init.seeds.clone(),
        columns,
        rows: vec![Vec::new(); e_count],
        iterations: vec![None; e_count],
        diverged_at: vec![None; e_count],
        max_abs_weight: vec![0.0; e_count],
        held_out_accuracy: None,
        held_out_parts: None,
    };
    let mut lr = vec![opts.lr as f32; e_count];
    let (mut cls, mut reg) = (vec![0.0; e_count], vec![1.0; e_count]);
    let mut dead = vec![vec![0.0; e_count]; net.hidden.len()];
    let mut maxw = vec![None; e_count];
    let mut active = e_count;
    for it in 1..=opts.max_iters {
        net.graph.forward();
        let g = &net.graph;
        binary_accuracy(g.value(net.logits), &data.labels, &mut cls);
        if let (Some(r), Some(w)) = (net.regression, &data.widths) {
            regression_accuracy(g.value(r), w, &mut reg);
        }
        for (d, &(_, id)) in dead.iter_mut().zip(&net.hidden) {
            dead_fraction(g.value(id), g.shape(id), d);
        }
        max_abs_params(net, &mut maxw, false);
        let loss = g.value(net.loss);
        for e in 0..e_count {
            if lr[e] == 0.0 {
                continue; // this seed has stopped
            }
            let row = &mut run.rows[e];
            row.push(loss[e]);
            row.push(cls[e].min(reg[e]) as f32);
            if let (Some(c), Some(r)) = (net.ce_loss, net.reg_loss) {
                row.extend([g.value(c)[e], g.value(r)[e], cls[e] as f32, reg[e] as f32]);
            }
            row.push(maxw[e].map_or(f32::NAN, |m| m as f32));
            row.extend(dead.iter().map(|d| d[e] as f32));
            let stop = if !loss[e].is_finite() || maxw[e].is_none() {
                run.diverged_at[e] = Some(it);
                true
            } else {
                run.max_abs_weight[e] = run.max_abs_weight[e].max(maxw[e].unwrap_or(0.0));
                let done = cls[e] == 1.0 && reg[e] == 1.0;
                if done {
                    run.iterations[e] = Some(it);
                }
                done
            };
            if stop {
                lr[e] = 0.0;
                active -= 1;
            }
        }
        let go_on = progress(it, run.converged());
        if active == 0 || !go_on {
            break;
        }
        net.graph.backward(net.loss);
        max_abs_params(net, &mut maxw, true);
        for e in 0..e_count {
            if lr[e] != 0.0 && maxw[e].is_none() {
                run.diverged_at[e] = Some(it); // a non-finite gradient: stop before it lands
                lr[e] = 0.0;
                active -= 1;
            }
        }
        sgd_step(&mut net.graph, &lr);
        if let (Some(dir), Some(k)) = (&opts.save_params, opts.save_every)
            && it % k == 0
        {
            for (e, seed) in run.seeds.iter().enumerate() {
                if lr[e] != 0.0 {
                    crate::models::params::save(net, e, &dir.join(format!("seed-{seed}-iter-{it}.safetensors")))?;
                }
            }
        }
    }
    // Every seed's parameters are frozen where it stopped: save and evaluate them as they are.
    if let Some(dir) = &opts.save_params {
        for (e, seed) in run.seeds.iter().enumerate() {
            crate::models::params::save(net, e, &dir.join(format!("seed-{seed}.safetensors")))?;
        }
    }
    if let Some(h) = held_out {
        let diverged = |mut v: Vec<f64>| {
            for (a, d) in v.iter_mut().zip(&run.diverged_at) {
                if d.is_some() {
                    *a = f64::NAN;
                }
            }
            v
        };
        let (cls, reg) = evaluate(net, h);
        let (cls, reg) = (diverged(cls), reg.map(diverged));
        run.held_out_accuracy = Some(match &reg {
            Some(reg) => cls.iter().zip(reg).map(|(c, r)| c.min(*r)).collect(),
            None => cls.clone(),
        });
        run.held_out_parts = reg.map(|reg| (cls, reg));
    }
    Ok(run)
}

/// What `summary.json` says about one setting of any study.
#[derive(Clone, Debug, Serialize)]
pub struct RunSummary {
    pub setting: String,
    pub seeds: usize,
    pub seed_values: Vec<u64>,
    pub converged: usize,
    pub diverged: usize,
    /// Neither converged nor diverged within the cap.
    pub neither: usize,
    /// Per seed: first iteration at 100%, `null` if never reached.
    pub iterations: Vec<Option<usize>>,
    /// Per seed: first iteration with a non-finite value, `null` if none.
    pub diverged_at: Vec<Option<usize>>,
    /// Per seed: the largest |parameter| while all were finite.
    pub max_abs_weight: Vec<f64>,
    /// Quantiles with non-converged seeds counted as beyond the cap (`null` if not reached).
    pub median_iterations: Option<f64>,
    pub p25_iterations: Option<f64>,
    pub p75_iterations: Option<f64>,
    /// Per seed: training accuracy at the last iteration it ran.
    pub final_train_accuracy: Vec<f64>,
    /// Per seed: accuracy on the held-out set after training (`null` if none or diverged).
    pub held_out_accuracy: Option<Vec<Option<f64>>>,
    pub median_held_out_accuracy: Option<f64>,
    /// Two-task nets: median held-out class and width accuracy.
    pub median_held_out_class_accuracy: Option<f64>,
    pub median_held_out_width_accuracy: Option<f64>,
}

/// Median of the finite values, `None` if there are none.
fn finite_median(v: &[f64]) -> Option<f64> {
    let finite: Vec<f64> = v.iter().copied().filter(|a| a.is_finite()).collect();
    (!finite.is_empty()).then(|| crate::stats::quantile(&finite, 0.5))
}

impl RunSummary {
    pub fn of(run: &Run) -> RunSummary {
        use crate::stats::censored_quantile;
        let its: Vec<Option<f64>> = run.iterations.iter().map(|i| i.map(|v| v as f64)).collect();
        RunSummary {
            setting: run.setting.clone(),
            seeds: run.seeds.len(),
            seed_values: run.seeds.clone(),
            converged: run.converged(),
            diverged: run.diverged(),
            neither: run.seeds.len() - run.converged() - run.diverged(),
            iterations: run.iterations.clone(),
            diverged_at: run.diverged_at.clone(),
            max_abs_weight: run.max_abs_weight.clone(),
            median_iterations: censored_quantile(&its, 0.5),
            p25_iterations: censored_quantile(&its, 0.25),
            p75_iterations: censored_quantile(&its, 0.75),
            final_train_accuracy: run.column_last("accuracy"),
            held_out_accuracy: run
                .held_out_accuracy
                .as_ref()
                .map(|v| v.iter().map(|&a| a.is_finite().then_some(a)).collect()),
            median_held_out_accuracy: run.held_out_accuracy.as_deref().and_then(finite_median),
            median_held_out_class_accuracy: run.held_out_parts.as_ref().and_then(|p| finite_median(&p.0)),
            median_held_out_width_accuracy: run.held_out_parts.as_ref().and_then(|p| finite_median(&p.1)),
        }
    }
}

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

/// [`train`] with the seeds split into sub-ensembles ("parts") trained by a pool of threads.
/// Each seed's numbers are bit for bit those of a single ensemble (a model never depends on the
/// others), so the merged run is the same, only sooner. A part holds as many models as keep
/// its tape within [`PART_BYTES`] (the whole ensemble for fc73, one model for the CNNs).
/// `build(n)` makes a net for `n` models.
pub fn train_parallel(
    setting: &str,
    build: &(dyn Fn(usize) -> Result<Net<f32>> + Sync),
    data: &Dataset,
    held_out: Option<&Dataset>,
    opts: &TrainOptions,
    progress: &mut dyn FnMut(usize, usize) -> bool,
) -> Result<Run> {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let per_model = build(1)?.graph.bytes().max(1);
    let part_size = (PART_BYTES / per_model).clamp(1, opts.seeds);
    let parts = opts.seeds.div_ceil(part_size);
    let workers = threads().min(parts).max(1);
    if parts == 1 {
        return train(setting, &mut build(opts.seeds)?, data, held_out, opts, progress);
    }
    let sizes: Vec<usize> = (0..parts).map(|p| part_size.min(opts.seeds - p * part_size)).collect();
    let stop = AtomicBool::new(false);
    let next = AtomicUsize::new(0);
    let iteration: Vec<AtomicUsize> = (0..parts).map(|_| AtomicUsize::new(0)).collect();
    let converged: Vec<AtomicUsize> = (0..parts).map(|_| AtomicUsize::new(0)).collect();
    let finished = AtomicUsize::new(0);
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
                }
            });
        }
        // This thread reports progress and relays a stop request until every part is done.
        while finished.load(Ordering::SeqCst) < parts {
            let it = iteration.iter().map(|a| a.load(Ordering::Relaxed)).max().unwrap_or(0);
            let conv = converged.iter().map(|a| a.load(Ordering::Relaxed)).sum();
            if !progress(it, conv) {
                stop.store(true, Ordering::Relaxed);
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
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
                m.iterations.extend(r.iterations);
                m.diverged_at.extend(r.diverged_at);
                m.max_abs_weight.extend(r.max_abs_weight);
                if let (Some(a), Some(b)) = (&mut m.held_out_accuracy, r.held_out_accuracy) {
                    a.extend(b);
                }
                if let (Some((a1, a2)), Some((b1, b2))) = (&mut m.held_out_parts, r.held_out_parts) {
                    a1.extend(b1);
                    a2.extend(b2);
                }
            }
        }
    }
    let run = merged.expect("at least one part");
    let last = run.rows.iter().map(|r| r.len() / run.columns.len()).max().unwrap_or(0);
    progress(last, run.converged());
    Ok(run)
}

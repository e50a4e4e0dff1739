//! `gradlab reproduce`: every study of the report in one run, and the report itself — every
//! number and every finding in it computed from this run's results, none pasted in.

use crate::experiments::cnn::CnnRuns;
use crate::experiments::fc_random::{FcStudy, SettingSummary};
use crate::experiments::landscape::{KeyValues, LandscapeConfig};
use crate::experiments::leaky_vs_relu::{Comparison, final_dead_fractions};
use crate::record::{Run, RunSummary};
use crate::report::document::Document;
use crate::stats::quantile;
use serde::Serialize;

/// Everything the report is written from.
pub struct Results {
    /// Seeds of Table 1, and of the CNN sections and the per-sample measures.
    pub seeds: usize,
    pub scaled_seeds: usize,
    /// What the time budget decided, if one chose the seeds.
    pub budget: Option<super::budget::Budget>,
    pub quick: bool,
    pub data: String,
    pub wall_seconds: f64,
    /// Wall time of each step of the run, in order (the last is writing the report).
    pub step_seconds: Vec<(String, f64)>,
    pub task1: (LandscapeConfig, KeyValues),
    pub task2: (FcStudy, Vec<SettingSummary>, String),
    /// ReLU and leaky ReLU on line, then detect.
    pub cnn: Vec<CnnRuns>,
    pub comparisons: Vec<Comparison>,
    pub explosion: Vec<CnnRuns>,
    pub task4: (LandscapeConfig, KeyValues),
    /// The learning order and held-out curves of the report's main runs.
    pub learning: Vec<crate::experiments::memorisation::LearningFacts>,
    /// line with 0%, 50% and 100% of its training labels replaced by coin flips.
    pub noise: Vec<crate::experiments::memorisation::NoiseRow>,
    /// Planes through seed 0's solution of Table 1's four settings.
    pub planes: Vec<crate::experiments::net_landscape::SettingPlane>,
    /// Sharpness of Table 1's four settings, and of Sigmoid+CE at larger learning rates.
    pub sharpness: (Vec<crate::experiments::curvature::SharpnessRow>, Vec<crate::experiments::curvature::SharpnessRow>),
    /// Per-sample measures side by side (`study samples` on random and the digits).
    pub samples: crate::experiments::samples_study::SamplesResult,
}

/// "32 seeds", or "32 seeds for Table 1, 16 for the CNNs and the per-sample measures".
fn seeds_phrase(r: &Results) -> String {
    if r.scaled_seeds == r.seeds {
        format!("{} seeds per setting", r.seeds)
    } else {
        format!(
            "{} seeds per setting for Table 1, {} for the CNNs and the per-sample measures",
            r.seeds, r.scaled_seeds
        )
    }
}

/// What the time budget chose and what that costs.
fn budget_sentence(r: &Results, b: &super::budget::Budget) -> String {
    let machine = format!(
        "this machine's calibration step (the detect CNN, one model, one thread) took {:.2} ms, training on {} thread{}",
        b.step_seconds * 1e3,
        b.threads,
        if b.threads == 1 { "" } else { "s" }
    );
    if b.scaled_seeds >= super::budget::FULL_SEEDS {
        format!(
            "Time budget {:.0} s: {machine}; the full run was estimated at {:.0} s, so every section ran all {} seeds.",
            b.seconds, b.full_estimate, r.seeds
        )
    } else {
        format!(
            "Time budget {:.0} s: {machine}; the full run was estimated at {:.0} s, so the CNN sections and the per-sample measures ran {} seeds instead of {} (estimated {:.0} s). Fewer seeds widen the interquartile bands and weaken the rank tests: with n seeds a side, the smallest two-sided Mann–Whitney p-value is 2/C(2n, n) ({:.1e} at n = {}), and the notch around a median (McGill et al.'s ±1.57·IQR/√n, roughly a 95% interval) spans ±{:.2} of the seeds' IQR. `gradlab reproduce --seeds 32` runs everything with 32 seeds; the full studies are `gradlab study leaky-vs-relu`, `gradlab study explosion`, `gradlab study memorisation` and `gradlab study samples`.",
            b.seconds,
            b.full_estimate,
            b.scaled_seeds,
            r.seeds,
            b.estimate,
            2.0 / binomial(2 * b.scaled_seeds, b.scaled_seeds),
            b.scaled_seeds,
            1.57 / (b.scaled_seeds as f64).sqrt()
        )
    }
}

/// C(n, k) as a float.
fn binomial(n: usize, k: usize) -> f64 {
    (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
}

fn it(v: Option<f64>, cap: usize) -> String {
    v.map(|x| format!("{x:.0}")).unwrap_or_else(|| format!("> {cap}"))
}

fn pct(v: Option<f64>) -> String {
    v.map(|x| format!("{:.1}%", 100.0 * x)).unwrap_or_else(|| "—".into())
}

fn summary_row(s: &RunSummary, cap: usize) -> Vec<String> {
    vec![
        s.setting.clone(),
        format!("{}/{}", s.converged, s.seeds),
        s.diverged.to_string(),
        it(s.median_iterations, cap),
        format!("{}–{}", it(s.p25_iterations, cap), it(s.p75_iterations, cap)),
        pct(s.median_held_out_accuracy),
    ]
}

/// The report, and the machine-readable results behind it.
/// The report: its sections in order, and `results.json`.
pub fn document(r: &Results) -> (Document, serde_json::Value) {
    let mut d = Document { title: "gradlab: CIS 680 HW1, reproduced and re-tested".into(), blocks: vec![] };
    d.p(format!(
        "Every number below was measured in this run: {}{}, data: {}. Wall time {:.0} s. Iterations are full-batch gradient steps counted from 1; a seed that never reached 100% training accuracy counts as beyond the cap, so medians appear only when more than half converged. Held-out accuracy: the trained nets on 640 fresh samples from the same distribution (built-in generators).",
        seeds_phrase(r),
        if r.quick { " (quick mode: short caps, few seeds — for trying it out, not for conclusions)" } else { "" },
        r.data,
        r.wall_seconds
    ));
    if let Some(b) = &r.budget {
        d.p(budget_sentence(r, b));
    }
    task1(&mut d, r);
    task2(&mut d, r);
    task3(&mut d, r);
    task4(&mut d, r);
    easy_first(&mut d, r);
    per_sample(&mut d, r);
    let generalisation = generalisation(&mut d, r);
    differences(&mut d, r);
    (d, results_json(r, &generalisation))
}

/// Task 1: one neuron's landscapes and what saturation does to each loss's gradient.
fn task1(d: &mut Document, r: &Results) {
    let (c1, k1) = &r.task1;
    d.h(1, "Task 1 — one sigmoid neuron: losses and gradients");
    d.p(format!(
        "ŷ = σ(w·x + b), x = {}, target y = {}, w and b over [{}, {}] on a {}×{} grid; gradients by the same automatic differentiation that trains the networks.",
        c1.x, c1.y, c1.w_range.0, c1.w_range.1, c1.points, c1.points
    ));
    d.figure("task1-landscape/surfaces", "Output, L2 and cross-entropy losses and their gradients over (w, b).");
    d.figure("task1-landscape/heatmaps", "The same quantities as heatmaps with contour lines.");
    let ce_frac = k1.dce_dw_fraction_of_max.unwrap_or(f64::NAN);
    d.p(format!(
        "At (w, b) = ({:.2}, {:.2}) the neuron is saturated (ŷ = {:.4}, target {}): ∂L2/∂w = {:.2e}, **{:.3}%** of its largest magnitude on the grid, while ∂CE/∂w = {:.3}, **{:.1}%** of its largest. |∂L2/∂w| is below 1% of its maximum on {:.1}% of the grid; |∂CE/∂w| on {:.1}%. {}",
        k1.probe.0,
        k1.probe.1,
        k1.output_at_probe,
        c1.y,
        k1.dl2_dw_at_probe,
        100.0 * k1.dl2_dw_fraction_of_max,
        k1.dce_dw_at_probe.unwrap_or(f64::NAN),
        100.0 * ce_frac,
        100.0 * k1.dl2_dw_below_1pct_fraction,
        100.0 * k1.dce_dw_below_1pct_fraction.unwrap_or(f64::NAN),
        if ce_frac > 10.0 * k1.dl2_dw_fraction_of_max {
            "The report's finding holds: the L2 gradient vanishes where the neuron saturates, the cross-entropy gradient stays as large as the error."
        } else {
            "The report's finding does not show here."
        }
    ));
}

/// Task 2: Table 1, its gradients, the landscape around its solutions and its sharpness.
fn task2(d: &mut Document, r: &Results) {
    let (study, sums, _) = &r.task2;
    let cap2 = study.train.max_iters;
    d.h(1, "Task 2 — the 73-parameter net on random labels (Table 1)");
    d.p(format!(
        "16 → 4 → 1, lr {}, weights {}, biases {}, full batch of 64, cap {} iterations, data: {}.",
        study.train.optim.lr, study.train.init.weights, study.train.init.bias, cap2, r.task2.2
    ));
    let rows: Vec<Vec<String>> = sums
        .iter()
        .map(|s| {
            let mut row = summary_row(&s.run, cap2);
            row.remove(2);
            row.push(s.report_iterations.map(|v| v.to_string()).unwrap_or_else(|| "—".into()));
            row
        })
        .collect();
    d.table(
        &["setting", "converged", "median iterations", "IQR", "held-out accuracy", "report"],
        rows,
        Some("Iterations to 100% training accuracy. Always predicting 0 scores 82.8% (11 positives in 64).".into()),
    );
    d.figure("task2-fc/curves", "Loss and accuracy against iteration, median over seeds with interquartile band.");
    let ordered: Vec<&SettingSummary> = {
        let mut v: Vec<&SettingSummary> = sums.iter().filter(|s| !s.per_sample_bias).collect();
        v.sort_by(|a, b| {
            let k = |s: &SettingSummary| s.run.median_iterations.unwrap_or(f64::INFINITY);
            k(a).partial_cmp(&k(b)).expect("no NaN")
        });
        v
    };
    d.p(format!(
        "Fastest to slowest by median: {}. The report's order was ReLU+CE, ReLU+L2, Sigmoid+L2, Sigmoid+CE.",
        ordered
            .iter()
            .map(|s| format!("{} ({})", s.run.setting, it(s.run.median_iterations, cap2)))
            .collect::<Vec<_>>()
            .join(", ")
    ));

    d.h(2, "The gradients inside the net");
    d.p(task2_gradients(sums));
    d.figure(
        "task2-fc/gradient_flow",
        "Back-propagated gradient RMS (∂loss/∂pre-activation) per layer at iteration 1 and at the end, median and IQR over seeds.",
    );
    d.figure(
        "task2-fc/probes",
        "Per layer over training: back-propagated gradient RMS and the saturated fraction (derivative below 1% of its maximum), median and IQR over seeds.",
    );

    d.h(2, "The landscape the networks train on");
    let items: Vec<String> = r
        .planes
        .iter()
        .map(|p| {
            format!(
                "{}: loss {:.3} at seed 0's solution ({:.3} the lowest on its plane); within twice that loss on {:.0}% of the plane α, β ∈ [−1, 1]; on the straight line to seed 1's solution the loss rises by up to {:.3} above the chord{}",
                p.setting,
                p.loss_at_solution,
                p.min_on_plane,
                100.0 * p.share_within_2x,
                p.barrier_to_seed_1,
                if p.barrier_to_seed_1 > p.loss_at_solution { " — a barrier higher than the solutions themselves" } else { "" }
            )
        })
        .collect();
    d.p("The plane through a seed's final parameters along two random directions, each filter scaled to the weights' norm (Li et al. 2018), and the straight line between two seeds' solutions:");
    d.bullets(items);
    d.figure(
        "task2-fc/landscape/planes",
        "log10 training loss on the plane through seed 0's solution of each Table 1 setting.",
    );
    d.figure("task2-fc/landscape/sigmoid-l2-surface", "Sigmoid+L2 around its seed-0 end: the plateau as a surface.");

    d.h(2, "The curvature the networks train on");
    let (t1, big) = &r.sharpness;
    let f = |v: Option<f64>| v.map_or("—".into(), |x| format!("{x:.3}"));
    let mut rows: Vec<Vec<String>> = t1
        .iter()
        .chain(big.iter())
        .map(|s| {
            vec![
                s.setting.clone(),
                format!("{}", s.lr),
                format!("{:.3}", s.two_over_lr),
                f(s.first),
                f(s.late),
                format!("{}/{} ({})", s.converged, s.seeds, it(s.median_iterations, 10_000)),
            ]
        })
        .collect();
    rows.sort_by(|a, b| a[1].partial_cmp(&b[1]).unwrap_or(std::cmp::Ordering::Equal));
    d.table(
        &["setting", "lr", "2/lr", "sharpness at iteration 1", "late (2nd half)", "converged (median iterations)"],
        rows,
        Some("Sharpness: the largest Hessian eigenvalue of the training loss, by Lanczos on exact Hessian-vector products (forward-over-reverse in f64; a ReLU kink contributes nothing, as in automatic differentiation), warm-started, to a relative residual of 1e-4 (every 10 iterations for Table 1, every iteration for the large steps); medians over seeds. Early on the ReLU nets' Hessians are indefinite, with a negative eigenvalue almost as large: Lanczos finds the positive end, which power iteration did not. `gradlab study edge-of-stability` runs Cohen et al.'s own set-up on the digits.".into()),
    );
    let below = t1.iter().all(|s| s.late.is_none_or(|m| m < 0.5 * s.two_over_lr));
    let near: Vec<String> = big
        .iter()
        .filter_map(|s| s.late.map(|l| format!("lr {}: {:.3} against 2/lr = {:.3}", s.lr, l, s.two_over_lr)))
        .collect();
    d.p(format!(
        "At the report's lr 0.1 the edge of stability is 2/lr = 20: {}. With larger steps, the late sharpness of Sigmoid+CE: {}. Cohen et al. (2021) found full-batch gradient descent drives the sharpness up to about 2/lr and holds it there; here, where the initial sharpness exceeds 2/lr the training moves to flatter ground and settles near 2/lr, and where it is below, it stays below.",
        if below {
            {
                let top = t1.iter().filter_map(|s| s.late.map(|l| (l, &s.setting))).max_by(|a, b| a.0.total_cmp(&b.0));
                format!(
                    "every Table 1 setting's late sharpness stays below half of it (these steps are too small to feel the curvature; the largest, {}, sits at {} of 2/lr)",
                    top.map_or("—".into(), |(l, s)| format!("{s}'s {l:.2}")),
                    top.map_or("—".into(), |(l, _)| format!("{:.0}%", 100.0 * l / 20.0))
                )
            }
        } else {
            "some Table 1 setting's late sharpness comes within a factor 2 of it".to_string()
        },
        near.join("; ")
    ));
}

/// Task 3: the CNNs, and the exploding-gradient study.
fn task3(d: &mut Document, r: &Results) {
    d.h(1, "Task 3 — convolutional nets on line and detection");
    d.p("Trunk: conv 7×7 1→16, ReLU, conv 7×7 16→8, ReLU, flatten (128). line: one logit, sigmoid cross-entropy, lr 0.1. detect: a class logit and a width regressor, loss CE + 0.01·½Σ(ŵ − w)², lr 0.01, done when class accuracy and width accuracy (|ŵ − w| < 0.5) are both 100%.");
    let mut rows = vec![];
    for c in &r.cnn {
        let s = RunSummary::of(&c.runs[0]);
        let mut row = summary_row(&s, c.opts.max_iters);
        row[0] = format!("{} {}", c.task.name(), row[0]);
        rows.push(row);
    }
    d.table(&["task", "converged", "diverged", "median iterations", "IQR", "held-out accuracy"], rows, None);
    for c in &r.cnn {
        d.figure(
            format!("task3-4-cnn/{}/curves-relu", c.task.name()),
            format!("{} with ReLU: median over seeds with interquartile band.", c.task.name()),
        );
    }
    if let [line, detect] = &r.cnn[..] {
        let m = |c: &CnnRuns| RunSummary::of(&c.runs[0]).median_iterations;
        d.p(format!(
            "The one-task net needs a median of {} iterations, the two-task net {}: {}.",
            it(m(line), line.opts.max_iters),
            it(m(detect), detect.opts.max_iters),
            match (m(line), m(detect)) {
                (Some(a), Some(b)) if b > a =>
                    format!("the detection net is {:.0}× slower, as the report found", b / a),
                _ => "the report's ordering (detection slower) does not show in this run".into(),
            }
        ));
    }
    d.h(2, "Exploding gradients");
    let mut rows = vec![];
    for c in &r.explosion {
        for run in &c.runs {
            let s = RunSummary::of(run);
            let div: Vec<f64> = run.diverged_at.iter().flatten().map(|&v| v as f64).collect();
            rows.push(vec![
                format!("{} {}", c.task.name(), s.setting),
                format!("{}/{}", s.converged, s.seeds),
                format!("{}/{}", s.diverged, s.seeds),
                format!("{}/{}", s.neither, s.seeds),
                if div.is_empty() { "—".into() } else { format!("{:.0}", quantile(&div, 0.5)) },
                format!("{:.2e}", quantile(&run.max_abs_weight, 0.5)),
                format!("{:.2e}", run.max_abs_weight.iter().copied().fold(0.0, f64::max)),
            ]);
        }
    }
    let cap_ex = r.explosion.first().map(|c| c.opts.max_iters).unwrap_or(0);
    d.table(
        &["task and setting", "converged", "diverged", "neither", "median divergence iteration", "median max |w|", "largest max |w|"],
        rows,
        Some(format!("`sum`: loss summed over the batch (64× the step). `std1`: initial weights with std 1.0. `clip1`: each model's global gradient norm clipped to 1 before every step. Cap {cap_ex} iterations; the plain `relu` rows are Task 3's runs (cap {}). Max |w|: largest |parameter| while all were finite.", r.cnn.first().map(|c| c.opts.max_iters).unwrap_or(0))),
    );
    for c in &r.explosion {
        d.p(explosion_measured(c));
    }
    for c in &r.explosion {
        d.figure(
            format!("task3-explosion/{}/weights", c.task.name()),
            format!("{}: largest |parameter| per iteration, median and range over seeds (log axis).", c.task.name()),
        );
    }
}

/// Task 4: leaky ReLU against ReLU, and the leaky neuron's landscape.
fn task4(d: &mut Document, r: &Results) {
    let (c4, k4) = &r.task4;
    d.h(1, "Task 4 — leaky ReLU");
    d.p(format!(
        "LeakyReLU(x) = max(0.1·x, x), neuron over w, b ∈ [{}, {}]. Cross-entropy is undefined for an output outside (0, 1) and is not drawn. |∂L2/∂w| is below 1% of its maximum on {:.1}% of the grid: the leaky slope keeps the gradient alive where a sigmoid's dies.",
        c4.w_range.0,
        c4.w_range.1,
        100.0 * k4.dl2_dw_below_1pct_fraction
    ));
    d.figure("task4-landscape/surfaces", "Leaky-ReLU neuron: output, L2 loss and its gradients.");
    let rows: Vec<Vec<String>> = r
        .comparisons
        .iter()
        .map(|c| {
            vec![
                c.task.to_string(),
                format!("{} ({}–{})", it(c.relu_median, 0), it(c.relu_iqr.0, 0), it(c.relu_iqr.1, 0)),
                format!("{} ({}–{})", it(c.leaky_median, 0), it(c.leaky_iqr.0, 0), it(c.leaky_iqr.1, 0)),
                format!("{:.0}", c.mann_whitney_u),
                format!("{:.3}", c.p_value),
            ]
        })
        .collect();
    d.table(&["task", "ReLU median (IQR)", "leaky ReLU median (IQR)", "Mann–Whitney U", "p (two-sided)"], rows, None);
    for c in &r.comparisons {
        d.p(c.verdict.clone());
    }
    for c in &r.cnn {
        d.figure(
            format!("task3-4-cnn/{}/curves", c.task.name()),
            format!("{}: ReLU against leaky ReLU, median over seeds with interquartile band.", c.task.name()),
        );
    }
    d.h(2, "Dead units");
    let mut dead_items = vec![];
    for c in &r.cnn {
        for run in &c.runs {
            let parts: Vec<String> =
                final_dead_fractions(run).iter().map(|(l, v)| format!("{l} {:.1}%", 100.0 * v)).collect();
            dead_items.push(format!("{} {}: {}", c.task.name(), run.setting, parts.join(", ")));
        }
    }
    d.p("Fraction of units (channel and position) whose activation is ≤ 0 for every sample, at the end of training, median over seeds:");
    d.bullets(dead_items);
    let mut saturation = vec![];
    for c in &r.cnn {
        for run in &c.runs {
            let s = RunSummary::of(run);
            let parts: Vec<String> = ["conv1", "conv2"]
                .iter()
                .filter_map(|l| probe_end(&s, l, "saturated_fraction").map(|v| format!("{l} {:.1}%", 100.0 * v)))
                .collect();
            if !parts.is_empty() {
                saturation.push(format!("{} {}: {}", c.task.name(), run.setting, parts.join(", ")));
            }
        }
    }
    if !saturation.is_empty() {
        d.p("Saturated fraction at each seed's last probe (units × samples where the activation's derivative is below 1% of its maximum; for ReLU its zero side, while leaky ReLU's derivative never falls below 10% of its maximum, so it cannot saturate), median over seeds:");
        d.bullets(saturation);
    }
    for c in &r.cnn {
        d.figure(
            format!("task3-4-cnn/{}/dead", c.task.name()),
            format!("{}: dead-unit fractions during training.", c.task.name()),
        );
    }
}

/// The report's "easy patterns first" claim: the learning order and label noise.
fn easy_first(d: &mut Document, r: &Results) {
    d.h(1, "Beyond the report: easy patterns first, then memorisation?");
    d.p("The report (Task 3) says the net learns the easiest, most generalisable patterns first and then memorises the rest. Per seed and training sample, gradlab records the iteration from which the sample stayed correct (a sample that flips back is not learned); the seeds' orders are compared with Kendall's W and related to a measurable ease: the teacher's margin for random, the gap between blob and bar for line, the shape's size for detect.");
    d.bullets(r.learning.iter().map(crate::experiments::memorisation::learning_sentence).collect());
    if let (Some(clean), Some(all)) = (r.noise.first(), r.noise.iter().find(|n| n.noise == 1.0)) {
        let cap = r.cnn.first().map_or(0, |c| c.opts.max_iters);
        let rows: Vec<Vec<String>> = r
            .noise
            .iter()
            .map(|n| {
                vec![
                    format!("{:.0}%", 100.0 * n.noise),
                    format!("{}/{}", n.converged, n.seeds),
                    it(n.median_iterations, cap),
                    pct(Some(n.median_final_train_accuracy)),
                    pct(n.median_held_out_accuracy),
                ]
            })
            .collect();
        d.table(
            &[
                "labels replaced by coin flips",
                "seeds at 100%",
                "median iterations",
                "final training accuracy",
                "held-out accuracy (true labels)",
            ],
            rows,
            Some("line, ReLU; the 0% row is Task 3's run.".into()),
        );
        let verdict = if all.converged * 2 > all.seeds {
            "it memorises labels that carry no pattern at all"
        } else {
            "most seeds cannot memorise labels that carry no pattern within the cap"
        };
        d.p(format!(
            "With every training label replaced by a coin flip, {}/{} seeds still reach 100% training accuracy (median {} iterations, against {} with the true labels) while held-out accuracy falls from {} to {}: {verdict}. Read with the learning order above, this is the report's picture measured: the patterns that generalise come first, and the capacity to fit anything is there too.",
            all.converged,
            all.seeds,
            it(all.median_iterations, cap),
            it(clean.median_iterations, cap),
            pct(clean.median_held_out_accuracy),
            pct(all.median_held_out_accuracy)
        ));
        d.figure("task3-noise/curves", "line with 0%, 50% and 100% of its training labels replaced by coin flips: training and held-out curves, median over seeds.");
    }
    d.p("The share of the spread of iterations that comes from the data draw against the initial weights is measured by `gradlab study data-vs-init` (minutes; not part of this report).");
}

/// Which samples are hard, by each measure the field uses, on the same seeds.
fn per_sample(d: &mut Document, r: &Results) {
    let s = &r.samples;
    d.h(1, "Which samples are hard? The field's per-sample measures side by side");
    d.p(format!(
        "The learning order is one answer to \"which samples are easy\"; the field has several more, each published with its own code and run one model at a time. On the same {} seeds per task gradlab records forgetting events (Toneva et al. 2019), the data map's confidence, variability and correctness (Swayamdipta et al. 2020), EL2N and GraNd early in training (Paul et al. 2021) and C-scores from subsets of {} ratios (Jiang et al. 2021). ρ is Spearman's over the training samples, signed so that + means two measures call the same samples hard.",
        s.config.seeds,
        s.config.ratios.len()
    ));
    let mut bullets = vec![];
    for t in &s.tasks {
        let rhos: Vec<f64> = t.summary.spearman.iter().map(|x| x.2).filter(|v| v.is_finite()).collect();
        let mut sorted = rhos.clone();
        sorted.sort_by(f64::total_cmp);
        let med = if sorted.is_empty() { f64::NAN } else { crate::stats::quantile(&sorted, 0.5) };
        let c = t.summary.spearman.iter().filter(|x| x.0 == "forgetting" && x.1 == "cscore").map(|x| x.2).next();
        let best = t.noise_precision.iter().max_by(|a, b| a.1.total_cmp(&b.1));
        bullets.push(format!(
            "{} ({} samples): median ρ over the {} pairs of measures {:+.2} (from {:+.2} to {:+.2}){}; {} samples unforgettable in every seed. With {:.0}% of the labels set to another class, {} finds them best: {:.0}% of its hardest {:.0}% are flipped (chance {:.0}%).",
            t.task,
            t.samples,
            rhos.len(),
            med,
            sorted.first().copied().unwrap_or(f64::NAN),
            sorted.last().copied().unwrap_or(f64::NAN),
            c.map_or(String::new(), |c| format!("; forgetting against C-score {c:+.2}")),
            t.summary.unforgettable,
            100.0 * s.config.noise,
            best.map_or("—".to_string(), |b| b.0.clone()),
            100.0 * best.map_or(f64::NAN, |b| b.1),
            100.0 * s.config.noise,
            100.0 * s.config.noise
        ));
    }
    d.bullets(bullets);
    if !s.pruning.is_empty() {
        let base = s.pruning.iter().find(|p| p.measure == "none").map_or(f64::NAN, |p| p.held_out_accuracy);
        let most = s.pruning.iter().map(|p| p.removed).fold(0.0, f64::max);
        let at_most: Vec<&crate::experiments::samples_study::PruneRow> =
            s.pruning.iter().filter(|p| p.removed == most && p.measure != "none").collect();
        let random = at_most.iter().find(|p| p.measure == "random").map_or(f64::NAN, |p| p.held_out_accuracy);
        let best = at_most
            .iter()
            .filter(|p| p.measure != "random")
            .max_by(|a, b| a.held_out_accuracy.total_cmp(&b.held_out_accuracy));
        d.p(format!(
            "Pruning (Toneva et al. Fig. 5): trained again on the digits without the {:.0}% easiest samples, the MLP keeps {} held-out accuracy by {} against {} with {:.0}% removed at random ({} with every sample).{}",
            100.0 * most,
            pct(best.map(|b| b.held_out_accuracy)),
            best.map_or("—".to_string(), |b| b.measure.clone()),
            pct(Some(random)),
            100.0 * most,
            pct(Some(base)),
            match best {
                Some(b) if b.held_out_accuracy >= random => " Removing what the measures call easy costs less than removing at random: the easy samples are the redundant ones.",
                Some(_) => " Removing what the measures call easy costs more than removing at random here.",
                None => "",
            }
        ));
        d.figure("samples/pruning", "Held-out accuracy of the digits MLP trained without the k% easiest samples by each measure, or k% at random (median over seeds).");
    }
    if s.tasks.iter().any(|t| t.task == "digits") {
        d.figure("samples/digits/data-map-base", "The digits' data map: per sample the mean over seeds of the true-class probability (confidence) against its standard deviation over training (variability), coloured by the share of evaluations right.");
        d.figure(
            "samples/digits/extremes-base-cscore",
            "Per class, the 8 digits with the highest C-score (left) and the 8 with the lowest (right).",
        );
    }
    d.p("`gradlab study samples` adds the report's CNN tasks (line, detection); every run's per-sample CSV, data maps and extremes are in `samples/`.");
}

/// One row of the generalisation table: task, setting, median training and held-out accuracy.
type Generalisation = (&'static str, String, f64, Option<f64>);

/// Training against held-out accuracy; returns the rows results.json lists.
fn generalisation(d: &mut Document, r: &Results) -> Vec<Generalisation> {
    let sums = &r.task2.1;
    d.h(1, "Beyond the report: do the nets memorise?");
    let mut rows = vec![];
    let mut generalisation = vec![];
    for s in sums.iter() {
        let train = quantile(&s.run.final_train_accuracy, 0.5);
        rows.push(vec![format!("random {}", s.run.setting), pct(Some(train)), pct(s.run.median_held_out_accuracy)]);
        generalisation.push(("random", s.run.setting.clone(), train, s.run.median_held_out_accuracy));
    }
    for c in &r.cnn {
        for run in &c.runs {
            let s = RunSummary::of(run);
            let train = quantile(&s.final_train_accuracy, 0.5);
            let head =
                |name: &str| s.median_held_out_head_accuracy.iter().find(|(n, _)| n == name).and_then(|(_, a)| *a);
            let held = match (head("cls_accuracy"), head("reg_accuracy")) {
                (Some(cls), Some(w)) => {
                    format!("{} (class {}, width {})", pct(s.median_held_out_accuracy), pct(Some(cls)), pct(Some(w)))
                }
                _ => pct(s.median_held_out_accuracy),
            };
            rows.push(vec![format!("{} {}", c.task.name(), s.setting), pct(Some(train)), held]);
            generalisation.push((c.task.name(), s.setting.clone(), train, s.median_held_out_accuracy));
            if let Some(cls) = head("cls_accuracy") {
                generalisation.push(("detect class", s.setting.clone(), train, Some(cls)));
            }
        }
    }
    d.table(
        &["task and setting", "training accuracy (final)", "held-out accuracy"],
        rows,
        Some("Medians over seeds.".into()),
    );
    let best = |task: &str| generalisation.iter().filter(|g| g.0 == task).filter_map(|g| g.3).fold(f64::NAN, f64::max);
    // Chance: always answering the majority class (random: 53 of 64 are 0), or a coin for the
    // balanced class labels (detect must also get the width right, so its chance is lower).
    let verdict = |task: &str, chance: f64| {
        let b = best(task);
        let what = if b >= 0.9 {
            "the nets learned the rule, not only the samples"
        } else if b >= chance + 0.1 {
            "the nets generalise in part"
        } else {
            "no better than chance: memorisation"
        };
        format!("{task}: best held-out accuracy {:.1}% (chance about {:.0}%) — {what}", 100.0 * b, 100.0 * chance)
    };
    d.p(format!(
        "The report says the nets memorise. Trained on 64 samples (final training accuracy in the table) and tested on 640 fresh ones: {}; {}; {}; {}.",
        verdict("random", 53.0 / 64.0),
        verdict("line", 0.5),
        verdict("detect class", 0.5),
        verdict("detect", 0.31)
    ));
    d.p("For detect, held-out accuracy counts as training accuracy does: the smaller of the class accuracy and the width accuracy (|ŵ − w| < 0.5); both parts are in the table. Width accuracy has no coin-flip chance level: always guessing the commonest width (3) is right 31% of the time.");
    if r.data.contains('/') {
        d.p("With the original files, the held-out sets still come from gradlab's generators, whose distribution only approximates the files' (for random, with a labelling rule unrelated to the file's), so these numbers include that shift; with built-in data the held-out samples share the training distribution exactly.");
    }
    generalisation
}

/// Where this run differs from the report, and why.
fn differences(d: &mut Document, r: &Results) {
    let sums = &r.task2.1;
    let cap2 = r.task2.0.train.max_iters;
    d.h(1, "Differences from the original report");
    let mut diffs = vec![];
    let find = |name: &str| sums.iter().find(|s| s.run.setting == name);
    if let (Some(tied), Some(ps)) = (find("sigmoid+l2"), find("sigmoid+l2+per-sample-bias")) {
        diffs.push(format!(
            "**Table 1, Sigmoid+L2.** The report gives 2000 iterations. The correctly tied network reached 100% in {}/{} seeds within {} iterations (median {}); the variant the original code ran — one bias per sample — reached it in {}/{} seeds with a median of {}: the report's number comes from that variant.",
            tied.run.converged, tied.run.seeds, cap2, it(tied.run.median_iterations, cap2), ps.run.converged, ps.run.seeds, it(ps.run.median_iterations, cap2)
        ));
    }
    for c in &r.comparisons {
        diffs.push(format!(
            "**Leaky ReLU on {}.** The report could not tell the difference from seed noise; with {} seeds, p = {:.3}: {}.",
            c.task,
            c.seeds,
            c.p_value,
            if c.distinguishable { "the difference is real" } else { "it is indeed not distinguishable" }
        ));
    }
    for c in &r.explosion {
        for run in &c.runs[1..] {
            diffs.push(format!(
                "**Exploding gradients, {} {}.** The report saw weights near 1e30, then NaN, with some trials still succeeding: here {}/{} seeds diverged, {}/{} converged, and the largest finite |parameter| was {:.1e}.",
                c.task.name(),
                run.setting,
                run.diverged(),
                run.seeds.len(),
                run.converged(),
                run.seeds.len(),
                run.max_abs_weight.iter().copied().fold(0.0, f64::max)
            ));
        }
    }
    diffs.push("**The random dataset is not random.** Its positives have 9–13 lit pixels (mean 10.7) against 7.5 for the negatives and its labels are linearly separable; gradlab's generator draws labels from a random linear teacher to match (tests/data.rs checks both properties on the original file).".into());
    diffs.push("**Conv biases.** The original two-task net had one conv bias per position and channel; gradlab uses per-channel biases by default (`--untied-conv-bias` runs the original).".into());
    d.bullets(diffs);
}

/// Every number of the report, for machines.
fn results_json(r: &Results, generalisation: &[Generalisation]) -> serde_json::Value {
    let ((c1, k1), (study, sums, _), (c4, k4)) = (&r.task1, &r.task2, &r.task4);
    let cnn_json = |cs: &[CnnRuns]| -> serde_json::Value {
        cs.iter()
            .map(|c| {
                serde_json::json!({
                    "task": c.task.name(),
                    "data": c.data,
                    "config": c.opts,
                    "settings": c.runs.iter().map(RunSummary::of).collect::<Vec<_>>(),
                })
            })
            .collect()
    };
    #[derive(Serialize)]
    struct Gen<'a> {
        task: &'a str,
        setting: &'a str,
        train_accuracy: f64,
        held_out_accuracy: Option<f64>,
    }
    let json = serde_json::json!({
        "seeds": r.seeds,
        "scaled_seeds": r.scaled_seeds,
        "budget": r.budget,
        "quick": r.quick,
        "data": r.data,
        "wall_seconds": r.wall_seconds,
        "step_seconds": r.step_seconds.iter().map(|(n, s)| serde_json::json!({"step": n, "seconds": (s * 1000.0).round() / 1000.0})).collect::<Vec<_>>(),
        "task1_landscape": {"config": c1, "key_values": k1},
        "task2_fc": {"config": study, "settings": sums},
        "task3_cnn": cnn_json(&r.cnn),
        "task3_explosion": cnn_json(&r.explosion),
        "task4_landscape": {"config": c4, "key_values": k4},
        "task4_leaky_vs_relu": r.comparisons,
        "learning_order": r.learning,
        "label_noise": r.noise,
        "sharpness": {"table1": &r.sharpness.0, "large_steps": &r.sharpness.1},
        "landscapes": &r.planes,
        "per_sample": &r.samples,
        "generalisation": generalisation.iter().map(|g| Gen { task: g.0, setting: &g.1, train_accuracy: g.2, held_out_accuracy: g.3 }).collect::<Vec<_>>(),
    });
    json
}

/// Computed sentences for one task of the explosion study: the back-propagated gradient at
/// iteration 1 per layer under each setting (from the probes), and what clipping changed.
fn explosion_measured(c: &CnnRuns) -> String {
    let task = c.task.name();
    let find = |name: &str| c.runs.iter().find(|r| r.setting == name);
    let rms = |run: &Run, layer: &str| -> Option<f64> {
        let p = run.probes.as_ref()?;
        let (first, _) = p.first_and_last(p.key(layer, "grad_rms")?);
        (!first.is_empty()).then(|| quantile(&first, 0.5))
    };
    let mut parts = vec![];
    if let Some(base) = find("relu") {
        for name in ["relu", "relu+sum", "relu+std1"] {
            if let Some(run) = find(name) {
                let (a, b) = (rms(run, "conv1"), rms(run, "conv2"));
                if let (Some(a), Some(b), Some(a0)) = (a, b, rms(base, "conv1")) {
                    let ratio = if name == "relu" {
                        String::new()
                    } else {
                        format!(" ({:.0}× the plain run at conv1)", a / a0)
                    };
                    parts.push(format!("{name} {a:.2e} / {b:.2e}{ratio}"));
                }
            }
        }
    }
    let mut s = if parts.is_empty() {
        format!("{task}: no probes were recorded.")
    } else {
        format!(
            "{task}, measured inside the net: the back-propagated gradient RMS at iteration 1 (median over seeds), conv1 / conv2: {}.",
            parts.join("; ")
        )
    };
    for (plain, clipped) in [("relu+sum", "relu+sum+clip1"), ("relu+std1", "relu+std1+clip1")] {
        if let (Some(a), Some(b)) = (find(plain), find(clipped)) {
            s.push_str(&format!(
                " Clipping the gradient norm to 1 turns {plain} from {}/{} converged and {} diverged into {}/{} converged and {} diverged.",
                a.converged(),
                a.seeds.len(),
                a.diverged(),
                b.converged(),
                b.seeds.len(),
                b.diverged()
            ));
        }
    }
    s
}

/// A probe's median over seeds at the first probe (`first`) or at the end, from a summary.
fn probe_stat(s: &RunSummary, layer: &str, quantity: &str, end: bool) -> Option<f64> {
    let p = s.probes.as_ref()?.iter().find(|p| p.layer == layer && p.quantity == quantity)?;
    let v = if end { p.end[1] } else { p.first[1] };
    v.is_finite().then_some(v)
}

fn probe_end(s: &RunSummary, layer: &str, quantity: &str) -> Option<f64> {
    probe_stat(s, layer, quantity, true)
}

/// Computed sentences for Task 2: the output layer's gradient under L2 and CE, the saturated
/// share of samples under L2, and how much of the output's gradient reaches the hidden layer.
fn task2_gradients(sums: &[SettingSummary]) -> String {
    let find = |name: &str| sums.iter().find(|s| s.run.setting == name).map(|s| &s.run);
    let mut out = vec![];
    if let (Some(l2), Some(ce)) = (find("sigmoid+l2"), find("sigmoid+ce")) {
        let g = |s: &RunSummary, end| probe_stat(s, "fc2", "grad_rms", end);
        if let (Some(a0), Some(a1), Some(b0), Some(b1)) = (g(l2, false), g(l2, true), g(ce, false), g(ce, true)) {
            out.push(format!(
                "The output layer's back-propagated gradient (RMS of ∂loss/∂logit over samples, median over seeds) starts at {a0:.2e} under L2 against {b0:.2e} under cross-entropy ({:.1}× smaller) for sigmoid hidden units, and ends at {a1:.2e} against {b1:.2e}.",
                b0 / a0
            ));
        }
        if let Some(sat) = probe_end(l2, "fc2", "saturated_fraction") {
            out.push(format!(
                "Under L2 the output passes through a sigmoid: at the end, {:.1}% of the samples (median over seeds) sit where σ′ is below 1% of its maximum, Task 1's flat region measured inside the net; cross-entropy differentiates the logit directly and has no such region.",
                100.0 * sat
            ));
        }
    }
    let shrink = |name: &str| {
        let s = find(name)?;
        Some(probe_stat(s, "fc1", "grad_rms", false)? / probe_stat(s, "fc2", "grad_rms", false)?)
    };
    if let (Some(a), Some(b)) = (shrink("sigmoid+ce"), shrink("relu+l2")) {
        out.push(format!(
            "Why Sigmoid+CE trains slower than ReLU+L2: at iteration 1 the gradient reaching the hidden layer's pre-activations is {a:.3}× the output's for Sigmoid+CE against {b:.3}× for ReLU+L2 (σ′ ≤ ¼ at every hidden unit, against 1 on ReLU's active side)."
        ));
    }
    if out.is_empty() { "No probes were recorded.".into() } else { out.join(" ") }
}

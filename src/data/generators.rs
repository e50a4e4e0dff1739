//! Seeded generators for the three datasets, matching the original files' distributions
//! (sizes, value sets, class balance, shape statistics; `tests/data.rs` compares them).
//! They let gradlab run without any files and draw held-out sets from the same distribution.

use super::{Dataset, DatasetKind};
use crate::init::SeededRng;

/// `n` labels with exactly `round(n·fraction)` ones, in random order.
fn balanced_labels(rng: &mut SeededRng, n: usize, fraction: f64) -> Vec<f32> {
    let ones = (n as f64 * fraction).round() as usize;
    let mut labels: Vec<f32> = (0..n).map(|i| if i < ones { 1.0 } else { 0.0 }).collect();
    rng.shuffle(&mut labels);
    labels
}

/// 4×4 images of fair coin flips; 11 of 64 labels positive, as in the original file.
///
/// The original labels are not independent of the images: positives have 9–13 lit pixels
/// (mean 10.7) against 7.5 for negatives, and the labels are linearly separable (a perceptron
/// separates them). So the labels here come from a random linear teacher, as that structure
/// suggests: each pixel gets a weight drawn from N(0.2, 0.2²) and the samples with the
/// highest weighted sums are the positives. (Independent labels make a much harder problem:
/// Table 1's nets then rarely reach 100% within 10 000 iterations.)
pub fn random(n: usize, seed: u64) -> Dataset {
    random_drawn(n, seed, seed)
}

/// `random` with the teacher (the labelling rule, from `world`) and the samples (images and
/// tie-breaks, from `sample`) seeded apart: a held-out set shares the training set's teacher.
pub fn random_drawn(n: usize, world: u64, sample: u64) -> Dataset {
    let mut teacher_rng = SeededRng::new(world);
    let teacher: Vec<f64> = (0..16).map(|_| 0.2 + 0.2 * teacher_rng.normal()).collect();
    let mut rng = SeededRng::new(sample ^ 0x5A4D_504C_4553);
    let images: Vec<f32> = (0..n * 16).map(|_| if rng.bernoulli(0.5) { 1.0 } else { 0.0 }).collect();
    // Tiny noise breaks ties between equal scores at random.
    let scores: Vec<f64> = images
        .chunks_exact(16)
        .map(|x| x.iter().zip(&teacher).map(|(&p, w)| p as f64 * w).sum::<f64>() + 1e-9 * rng.uniform())
        .collect();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| scores[b].partial_cmp(&scores[a]).expect("finite scores"));
    let mut labels = vec![0f32; n];
    let positives = (n as f64 * 11.0 / 64.0).round() as usize;
    for &i in &order[..positives] {
        labels[i] = 1.0;
    }
    // The teacher's margin: distance of each score from the midpoint between the lowest
    // positive and the highest negative score.
    let threshold = match (positives.checked_sub(1).map(|k| scores[order[k]]), order.get(positives)) {
        (Some(lo_pos), Some(&hi_neg)) => (lo_pos + scores[hi_neg]) / 2.0,
        _ => 0.0,
    };
    let margin: Vec<f32> = scores.iter().map(|s| (s - threshold).abs() as f32).collect();
    let source = if world == sample {
        format!("built-in generator, seed {world}")
    } else {
        format!("built-in generator, teacher seed {world}, sample seed {sample}")
    };
    let mut d = Dataset::new(DatasetKind::Random, images, n, 4, labels, None, source);
    d.margin = Some(margin);
    d
}

/// 16×16: a vertical bar (2–4 wide, 10–13 tall) and a square blob (side 1, 3, 5 or 7) that
/// lies entirely left of the bar (label 1) or right of it (label 0). Blob and bar may touch.
pub fn line(n: usize, seed: u64) -> Dataset {
    let mut rng = SeededRng::new(seed);
    let labels = balanced_labels(&mut rng, n, 0.5);
    let mut images = vec![0f32; n * 256];
    for (img, &label) in images.chunks_exact_mut(256).zip(&labels) {
        let mut set = |y: i64, x: i64| {
            // Label 0 is the mirror image of a label-1 layout.
            let x = if label > 0.5 { x } else { 15 - x };
            img[(y * 16 + x) as usize] = 1.0;
        };
        let (bar_w, bar_h, bar_top, bar_x) = (rng.int(2, 4), rng.int(10, 13), rng.int(1, 3), rng.int(7, 10));
        let u = rng.uniform();
        let side = match u {
            u if u < 0.11 => 1,
            u if u < 0.36 => 3,
            u if u < 0.86 => 5,
            _ => 7,
        }
        .min(bar_x);
        let blob_x = rng.int(0, bar_x - side);
        let blob_y = rng.int(1, 15 - side);
        for y in bar_top..(bar_top + bar_h).min(15) {
            for x in bar_x..bar_x + bar_w {
                set(y, x);
            }
        }
        for y in blob_y..blob_y + side {
            for x in blob_x..blob_x + side {
                set(y, x);
            }
        }
    }
    Dataset::new(DatasetKind::Line, images, n, 16, labels, None, format!("built-in generator, seed {seed}"))
}

/// 16×16, one filled shape of size `w = 1 + Binomial(6, 0.4)` (1..7): label 1 a square of side
/// 2w+1, label 0 a diamond of radius w; centre uniform in [w, 15−w] ∩ [4, 11] on each axis.
pub fn detection(n: usize, seed: u64) -> Dataset {
    let mut rng = SeededRng::new(seed);
    let labels = balanced_labels(&mut rng, n, 0.5);
    let mut images = vec![0f32; n * 256];
    let mut widths = Vec::with_capacity(n);
    for (img, &label) in images.chunks_exact_mut(256).zip(&labels) {
        let w = 1 + (0..6).filter(|_| rng.bernoulli(0.4)).count() as i64;
        let cy = rng.int(w.max(4), (15 - w).min(11));
        let cx = rng.int(w.max(4), (15 - w).min(11));
        for y in 0..16i64 {
            for x in 0..16i64 {
                let (dy, dx) = ((y - cy).abs(), (x - cx).abs());
                let inside = if label > 0.5 { dy <= w && dx <= w } else { dy + dx <= w };
                if inside {
                    img[(y * 16 + x) as usize] = 1.0;
                }
            }
        }
        widths.push(w as f32);
    }
    Dataset::new(
        DatasetKind::Detection,
        images,
        n,
        16,
        labels,
        Some(widths),
        format!("built-in generator, seed {seed}"),
    )
}

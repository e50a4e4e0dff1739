//! Data: the built-in generators reproduce the original files' distributions, and the loader
//! reads the original files. Tests that need `../shared` say so and skip when it is absent.

use gradlab::data::{self, Dataset, DatasetKind, generate};
use std::path::PathBuf;

fn shared() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets/cis680-hw1");
    if p.is_dir() {
        Some(p)
    } else {
        eprintln!("skipped: ../shared/datasets/cis680-hw1 is absent (CI always has it)");
        None
    }
}

fn ones(d: &Dataset) -> usize {
    d.labels.iter().filter(|&&l| l == 1.0).count()
}

/// For a label-1 detection image the shape is a (2w+1)² square, for label 0 a diamond of
/// 2w² + 2w + 1 pixels; both centred inside the image.
fn detection_shapes_are_consistent(d: &Dataset) {
    let w = d.widths.as_ref().unwrap();
    for i in 0..d.n {
        let img = &d.images[i * 256..(i + 1) * 256];
        let area = img.iter().filter(|&&v| v == 1.0).count();
        let r = w[i] as usize;
        let want = if d.labels[i] == 1.0 { (2 * r + 1).pow(2) } else { 2 * r * r + 2 * r + 1 };
        assert_eq!(area, want, "image {i}: label {} width {r}", d.labels[i]);
    }
}

/// Columns of the bar (the tallest vertical run) and the blob's column range: label 1 ⇔ blob left.
fn line_layout_matches_label(d: &Dataset) {
    for i in 0..d.n {
        let img = &d.images[i * 256..(i + 1) * 256];
        let run = |x: usize| {
            let (mut best, mut cur) = (0, 0);
            for y in 0..16 {
                cur = if img[y * 16 + x] == 1.0 { cur + 1 } else { 0 };
                best = best.max(cur);
            }
            best
        };
        let bar: Vec<usize> = (0..16).filter(|&x| run(x) >= 8).collect();
        assert!(!bar.is_empty(), "image {i}: no bar");
        let others: Vec<usize> =
            (0..16).filter(|x| !bar.contains(x) && (0..16).any(|y| img[y * 16 + x] == 1.0)).collect();
        if others.is_empty() {
            continue; // a blob hidden in the bar's columns (happens in the original too)
        }
        let left = others.iter().all(|&x| x < bar[0]);
        let right = others.iter().all(|&x| x > *bar.last().unwrap());
        assert!(left || right, "image {i}: blob on both sides");
        assert_eq!(left, d.labels[i] == 1.0, "image {i}: label {} but blob left = {left}", d.labels[i]);
    }
}

/// Epochs a perceptron needs to separate the labels linearly, if it can within `cap`.
fn perceptron_epochs(d: &Dataset, cap: usize) -> Option<usize> {
    let p = d.pixels();
    let mut w = vec![0f64; p + 1];
    for epoch in 0..cap {
        let mut mistakes = 0;
        for i in 0..d.n {
            let x = &d.images[i * p..(i + 1) * p];
            let t = if d.labels[i] == 1.0 { 1.0 } else { -1.0 };
            let score: f64 = x.iter().zip(&w).map(|(&a, b)| a as f64 * b).sum::<f64>() + w[p];
            if score * t <= 0.0 {
                mistakes += 1;
                x.iter().zip(w.iter_mut()).for_each(|(&a, b)| *b += t * a as f64);
                w[p] += t;
            }
        }
        if mistakes == 0 {
            return Some(epoch);
        }
    }
    None
}

/// Mean number of lit pixels of the positives minus that of the negatives.
fn lit_pixel_gap(d: &Dataset) -> f32 {
    let p = d.pixels();
    let (mut pos, mut neg) = ((0.0, 0.0), (0.0, 0.0));
    for i in 0..d.n {
        let lit: f32 = d.images[i * p..(i + 1) * p].iter().sum();
        let acc = if d.labels[i] == 1.0 { &mut pos } else { &mut neg };
        *acc = (acc.0 + lit, acc.1 + 1.0);
    }
    pos.0 / pos.1 - neg.0 / neg.1
}

#[test]
fn random_labels_have_the_originals_structure() {
    // The original file's labels are linearly separable and favour images with more lit
    // pixels (gap 3.2); the generator's linear teacher reproduces both.
    for seed in 0..5 {
        let r = generate(DatasetKind::Random, 64, seed);
        assert!(perceptron_epochs(&r, 5000).is_some(), "seed {seed}: not linearly separable");
        let gap = lit_pixel_gap(&r);
        assert!((1.5..5.0).contains(&gap), "seed {seed}: lit-pixel gap {gap}");
    }
    if let Some(dir) = shared() {
        let r = data::load_dir(DatasetKind::Random, &dir).unwrap();
        assert!(perceptron_epochs(&r, 5000).is_some());
        assert!((lit_pixel_gap(&r) - 3.2).abs() < 0.1, "{}", lit_pixel_gap(&r));
    }
}

#[test]
fn generators_match_the_documented_distributions() {
    let r = generate(DatasetKind::Random, 64, 3);
    assert_eq!((r.n, r.side, r.images.len()), (64, 4, 1024));
    assert!(r.images.iter().all(|&v| v == 0.0 || v == 1.0));
    assert_eq!(ones(&r), 11);
    let frac = r.images.iter().sum::<f32>() / 1024.0;
    assert!((frac - 0.5).abs() < 0.06, "pixel fraction {frac}");

    let l = generate(DatasetKind::Line, 64, 3);
    assert_eq!((l.n, l.side, ones(&l)), (64, 16, 32));
    line_layout_matches_label(&l);
    line_layout_matches_label(&generate(DatasetKind::Line, 500, 11));

    let d = generate(DatasetKind::Detection, 64, 3);
    assert_eq!((d.n, d.side, ones(&d)), (64, 16, 32));
    let big = generate(DatasetKind::Detection, 2000, 4);
    detection_shapes_are_consistent(&big);
    let w = big.widths.as_ref().unwrap();
    assert!(w.iter().all(|&v| (1.0..=7.0).contains(&v)));
    let mean = w.iter().sum::<f32>() / w.len() as f32;
    assert!((mean - 3.4).abs() < 0.15, "mean width {mean} (original: 3.45)");
}

#[test]
fn generators_are_seeded() {
    for kind in [DatasetKind::Random, DatasetKind::Line, DatasetKind::Detection] {
        let (a, b, c) = (generate(kind, 64, 1), generate(kind, 64, 1), generate(kind, 64, 2));
        assert_eq!(a.images, b.images);
        assert_eq!(a.labels, b.labels);
        assert_ne!(a.images, c.images, "{kind:?}");
    }
}

#[test]
fn original_files_load_and_agree_with_the_generators_rules() {
    let Some(dir) = shared() else { return };
    let r = data::load_dir(DatasetKind::Random, &dir).unwrap();
    assert_eq!((r.n, r.side, ones(&r)), (64, 4, 11));
    let l = data::load_dir(DatasetKind::Line, &dir).unwrap();
    assert_eq!((l.n, l.side, ones(&l)), (64, 16, 32));
    line_layout_matches_label(&l);
    let d = data::load_dir(DatasetKind::Detection, &dir).unwrap();
    assert_eq!((d.n, ones(&d)), (64, 32));
    detection_shapes_are_consistent(&d);
    // Statistics the generators were fitted to, compared on 4000 generated samples.
    let g = generate(DatasetKind::Line, 4000, 0);
    let fill = |d: &Dataset| d.images.iter().sum::<f32>() / d.images.len() as f32;
    assert!((fill(&g) - fill(&l)).abs() < 0.04, "line fill: generated {} original {}", fill(&g), fill(&l));
    let gd = generate(DatasetKind::Detection, 4000, 0);
    assert!((fill(&gd) - fill(&d)).abs() < 0.04, "detection fill: generated {} original {}", fill(&gd), fill(&d));
}

//! Datasets: the three kinds of the report, loaded from `.npy` files laid out like
//! `../shared/datasets/cis680-hw1/` (validated) or drawn from the built-in generators; the
//! compiled-in digits (`digits`); TensorFlow Playground's 2D sets and input features
//! (`playground`); MNIST and Fashion-MNIST by name (`mnist`: fetched once into the cache by
//! `download`, read from `idx`).

pub mod digits;
pub mod download;
pub mod generators;
pub mod idx;
pub mod mnist;
pub mod npy;
pub mod playground;
pub mod read;
pub mod samples;

pub use samples::{Samples, Target};

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DatasetKind {
    /// 4×4 random binary images with random labels (Task 2).
    Random,
    /// 16×16 bar-and-blob images (Task 3, one task).
    Line,
    /// 16×16 square-or-diamond images with a width (Task 3, two tasks).
    Detection,
}

impl DatasetKind {
    pub fn name(self) -> &'static str {
        match self {
            DatasetKind::Random => "random",
            DatasetKind::Line => "line",
            DatasetKind::Detection => "detection",
        }
    }
    pub fn side(self) -> usize {
        if self == DatasetKind::Random { 4 } else { 16 }
    }
}

/// A full-batch dataset: `n` square images of `side × side`, row-major, with labels in {0, 1}.
#[derive(Clone, Debug)]
pub struct Dataset {
    pub kind: DatasetKind,
    pub images: Vec<f32>,
    pub n: usize,
    pub side: usize,
    pub labels: Vec<f32>,
    /// The regression target of `detection`.
    pub widths: Option<Vec<f32>>,
    /// Where it came from, for reports: a path or the generator and its seed.
    pub source: String,
    /// Per sample, how far it is from the labelling rule's boundary, when the generator knows
    /// (`random`: the teacher's margin); see `experiments::memorisation::ease` for the others.
    pub margin: Option<Vec<f32>>,
}

impl Dataset {
    pub fn new(
        kind: DatasetKind,
        images: Vec<f32>,
        n: usize,
        side: usize,
        labels: Vec<f32>,
        widths: Option<Vec<f32>>,
        source: String,
    ) -> Dataset {
        debug_assert_eq!(images.len(), n * side * side);
        Dataset { kind, images, n, side, labels, widths, source, margin: None }
    }

    pub fn pixels(&self) -> usize {
        self.side * self.side
    }

    /// Samples `start..start + len` as a dataset of their own.
    pub fn slice(&self, start: usize, len: usize) -> Dataset {
        let p = self.pixels();
        Dataset {
            kind: self.kind,
            images: self.images[start * p..(start + len) * p].to_vec(),
            n: len,
            side: self.side,
            labels: self.labels[start..start + len].to_vec(),
            widths: self.widths.as_ref().map(|w| w[start..start + len].to_vec()),
            source: self.source.clone(),
            margin: self.margin.as_ref().map(|m| m[start..start + len].to_vec()),
        }
    }
}

/// Where data comes from.
#[derive(Clone, Debug)]
pub enum Source {
    /// The built-in generator with this seed, 64 samples like the original files.
    Builtin { seed: u64 },
    /// A directory laid out like `../shared/datasets/cis680-hw1/`.
    Dir(PathBuf),
}

impl Source {
    pub fn describe(&self) -> String {
        match self {
            Source::Builtin { seed } => format!("built-in generator (seed {seed})"),
            Source::Dir(d) => d.display().to_string(),
        }
    }
}

/// Size of the original datasets, and of the generated ones by default.
pub const ORIGINAL_SIZE: usize = 64;

pub fn load(kind: DatasetKind, source: &Source) -> Result<Dataset> {
    match source {
        Source::Builtin { seed } => Ok(generate(kind, ORIGINAL_SIZE, *seed)),
        Source::Dir(dir) => load_dir(kind, dir),
    }
}

pub fn generate(kind: DatasetKind, n: usize, seed: u64) -> Dataset {
    match kind {
        DatasetKind::Random => generators::random(n, seed),
        DatasetKind::Line => generators::line(n, seed),
        DatasetKind::Detection => generators::detection(n, seed),
    }
}

/// Samples in each held-out set (ten batches of 64).
pub const HELD_OUT_SIZE: usize = 640;

/// Offset between a training set's generator seed and its held-out set's.
pub const HELD_OUT_SEED_OFFSET: u64 = 1_000_003;

/// A fresh set of `n` samples from the distribution of `source`'s training data, for measuring
/// generalisation. Built-in data: the same generator (for `random`, the same labelling teacher)
/// with other samples. Files: the built-in generator; for `random` its teacher is not the
/// file's unknown labelling rule, so held-out accuracy there is at chance by construction.
pub fn held_out(kind: DatasetKind, source: &Source, n: usize) -> Dataset {
    let seed = match source {
        Source::Builtin { seed } => *seed,
        Source::Dir(_) => 0,
    };
    let mut d = match kind {
        DatasetKind::Random => generators::random_drawn(n, seed, seed + HELD_OUT_SEED_OFFSET),
        _ => generate(kind, n, seed + HELD_OUT_SEED_OFFSET),
    };
    d.source = format!("held out: {}", d.source);
    d
}

/// Reads `DIR/<name>/<name>_imgs.npy`, `_labs.npy` (and `_width.npy` for detection) and checks
/// everything a training run relies on.
pub fn load_dir(kind: DatasetKind, dir: &Path) -> Result<Dataset> {
    let name = kind.name();
    if !dir.is_dir() {
        return Err(Error::data(
            dir,
            "--data must be a directory laid out like ../shared/datasets/cis680-hw1/ (random/, line/, detection/)",
        ));
    }
    let file = |suffix: &str| dir.join(name).join(format!("{name}_{suffix}.npy"));
    let (img_path, lab_path) = (file("imgs"), file("labs"));
    let imgs = npy::read_course_npy(&img_path)?;
    let side = kind.side();
    if imgs.shape.len() != 3 || imgs.shape[1] != side || imgs.shape[2] != side {
        return Err(Error::data(&img_path, format!("images have shape {:?}; expected N×{side}×{side}", imgs.shape)));
    }
    let n = imgs.shape[0];
    if n == 0 {
        return Err(Error::data(&img_path, "the dataset is empty (N = 0)"));
    }
    check_finite(&img_path, "image", &imgs.data)?;
    let labs = npy::read_course_npy(&lab_path)?;
    let labels = check_vector(&lab_path, "labels", &labs, n)?;
    if let Some(i) = labels.iter().position(|&l| l != 0.0 && l != 1.0) {
        return Err(Error::data(&lab_path, format!("label {i} is {}; labels must be 0 or 1", labels[i])));
    }
    let widths = if kind == DatasetKind::Detection {
        let path = file("width");
        let w = check_vector(&path, "widths", &npy::read_course_npy(&path)?, n)?;
        if let Some(i) = w.iter().position(|&v| v <= 0.0) {
            return Err(Error::data(&path, format!("width {i} is {}; widths must be positive", w[i])));
        }
        Some(w)
    } else {
        None
    };
    let images = imgs.data.iter().map(|&v| v as f32).collect();
    Ok(Dataset::new(
        kind,
        images,
        n,
        side,
        labels.iter().map(|&v| v as f32).collect(),
        widths.map(|w| w.iter().map(|&v| v as f32).collect()),
        lab_path.parent().unwrap_or(dir).display().to_string(),
    ))
}

fn check_finite(path: &Path, what: &str, data: &[f64]) -> Result<()> {
    match data.iter().position(|v| !v.is_finite()) {
        Some(i) => {
            Err(Error::data(path, format!("{what} value at flat index {i} is {}; data must be finite", data[i])))
        }
        None => Ok(()),
    }
}

fn check_vector(path: &Path, what: &str, a: &npy::NpyArray, n: usize) -> Result<Vec<f64>> {
    let len = a.data.len();
    if a.shape.len() != 1 && !(a.shape.len() == 2 && a.shape[1] == 1) {
        return Err(Error::data(path, format!("{what} have shape {:?}; expected a vector of {n}", a.shape)));
    }
    if len != n {
        return Err(Error::data(path, format!("{len} {what} for {n} images; the counts must match")));
    }
    check_finite(path, what, &a.data)?;
    Ok(a.data.clone())
}

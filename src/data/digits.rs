//! The 8×8 UCI digits (1 797 images, ten classes), compiled in so that examples run on any clone:
//! the split of `data/digits/` (1 437 training, 360 held-out images; CC BY 4.0, UCI Machine
//! Learning Repository — see that folder's README), read by the same `.npy` reader as files.

use super::npy;
use super::samples::{Samples, load_with};
use crate::error::{Error, Result};
use std::path::Path;

/// The four files, as shipped in `data/digits/`.
pub const FILES: [(&str, &[u8]); 4] = [
    ("train_x.npy", include_bytes!("../../data/digits/train_x.npy")),
    ("train_y.npy", include_bytes!("../../data/digits/train_y.npy")),
    ("test_x.npy", include_bytes!("../../data/digits/test_x.npy")),
    ("test_y.npy", include_bytes!("../../data/digits/test_y.npy")),
];

fn read(path: &Path) -> Result<npy::NpyArray> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let (_, bytes) = FILES.iter().find(|(n, _)| *n == name).expect("only the compiled-in files are asked for");
    npy::parse_npy(bytes).map_err(|e| Error::data(path, e))
}

/// Training and held-out samples (`y`: classes 0–9), inputs multiplied by `scale`.
pub fn load(scale: f64) -> Result<(Samples, Samples)> {
    let dir = Path::new("built-in digits");
    let part = |x: &str, y: &str| -> Result<Samples> {
        let y = dir.join(y);
        load_with(&read, &dir.join(x), &[("y".to_string(), y.as_path())], scale)
    };
    Ok((part("train_x.npy", "train_y.npy")?, part("test_x.npy", "test_y.npy")?))
}

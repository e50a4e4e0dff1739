//! The one dataset form every network trains on: `n` samples of one shape (features `[F]` or
//! images `[C, H, W]`), flattened row-major, and named targets (`y`, and e.g. `width` for the
//! two-task detection data). Built-in datasets convert to it; experiment files load it from
//! `.npy` files of any common dtype, validated with errors that name the file.

use super::npy;
use crate::error::{Error, Result};
use std::path::Path;

/// One named target: `width` values per sample, row-major `[n, width]`.
#[derive(Clone, Debug)]
pub struct Target {
    pub name: String,
    pub values: Vec<f32>,
    pub width: usize,
    /// Integer class labels `0..classes` (from an integer or bool file); `None` for real-valued
    /// (regression) targets.
    pub classes: Option<usize>,
}

#[derive(Clone, Debug)]
pub struct Samples {
    /// `[n, shape...]`, row-major.
    pub x: Vec<f32>,
    /// One sample's shape: `[F]` or `[C, H, W]`.
    pub shape: Vec<usize>,
    pub n: usize,
    pub targets: Vec<Target>,
    /// Where it came from, for reports.
    pub source: String,
}

impl Samples {
    /// Values per sample.
    pub fn features(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn target(&self, name: &str) -> Option<&Target> {
        self.targets.iter().find(|t| t.name == name)
    }

    /// The target names, for error messages.
    pub fn target_names(&self) -> String {
        self.targets.iter().map(|t| format!("`{}`", t.name)).collect::<Vec<_>>().join(", ")
    }
}

impl super::Dataset {
    /// As samples of shape `[1, side, side]` with targets `y` (two classes) and, for
    /// detection, `width` (real-valued).
    pub fn samples(&self) -> Samples {
        let mut targets = vec![Target { name: "y".into(), values: self.labels.clone(), width: 1, classes: Some(2) }];
        if let Some(w) = &self.widths {
            targets.push(Target { name: "width".into(), values: w.clone(), width: 1, classes: None });
        }
        Samples {
            x: self.images.clone(),
            shape: vec![1, self.side, self.side],
            n: self.n,
            targets,
            source: self.source.clone(),
        }
    }
}

/// Reads the inputs `x` (`[N, F]`, `[N, H, W]` or `[N, C, H, W]`) multiplied by `scale`, and
/// each named target (`[N]` or `[N, T]`); integer targets are class labels.
pub fn load_files(x: &Path, targets: &[(String, &Path)], scale: f64) -> Result<Samples> {
    load_with(&npy::read_array, x, targets, scale)
}

/// [`load_files`] with another reader of `.npy` arrays (the compiled-in digits).
pub fn load_with(
    read: &dyn Fn(&Path) -> Result<npy::NpyArray>,
    x: &Path,
    targets: &[(String, &Path)],
    scale: f64,
) -> Result<Samples> {
    let a = read(x)?;
    let shape = match a.shape.as_slice() {
        [_, f] => vec![*f],
        [_, h, w] => vec![1, *h, *w],
        [_, c, h, w] => vec![*c, *h, *w],
        other => {
            return Err(Error::data(
                x,
                format!("inputs have shape {other:?}; expected [N, F], [N, H, W] or [N, C, H, W]"),
            ));
        }
    };
    let n = a.shape[0];
    if n == 0 || shape.contains(&0) {
        return Err(Error::data(x, format!("the dataset is empty (shape {:?})", a.shape)));
    }
    if let Some(i) = a.data.iter().position(|v| !v.is_finite()) {
        return Err(Error::data(x, format!("input value at flat index {i} is {}; data must be finite", a.data[i])));
    }
    let mut out = Samples {
        x: a.data.iter().map(|&v| (v * scale) as f32).collect(),
        shape,
        n,
        targets: vec![],
        source: x.parent().unwrap_or(x).display().to_string(),
    };
    for (name, path) in targets {
        out.targets.push(load_target(read(path)?, name, path, n)?);
    }
    Ok(out)
}

fn load_target(a: npy::NpyArray, name: &str, path: &Path, n: usize) -> Result<Target> {
    let width = match a.shape.as_slice() {
        [m] if *m == n => 1,
        [m, t] if *m == n && *t > 0 => *t,
        other => {
            return Err(Error::data(
                path,
                format!("targets have shape {other:?}; expected [{n}] or [{n}, T] for {n} inputs"),
            ));
        }
    };
    if let Some(i) = a.data.iter().position(|v| !v.is_finite()) {
        return Err(Error::data(path, format!("target at flat index {i} is {}; targets must be finite", a.data[i])));
    }
    let classes = if a.integer {
        if width != 1 {
            return Err(Error::data(
                path,
                format!("integer targets are class labels and must be [{n}], not [{n}, {width}]"),
            ));
        }
        if let Some(i) = a.data.iter().position(|&v| v < 0.0) {
            return Err(Error::data(path, format!("label {i} is {}; class labels start at 0", a.data[i])));
        }
        let max = a.data.iter().fold(0.0f64, |m, &v| m.max(v));
        if max >= (1 << 24) as f64 {
            return Err(Error::data(path, format!("label {max} is too large for a class index")));
        }
        Some(max as usize + 1)
    } else {
        None
    };
    Ok(Target { name: name.to_string(), values: a.data.iter().map(|&v| v as f32).collect(), width, classes })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::npy::npy_bytes;

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn uint8_images_and_int_labels_load_as_classes() {
        let dir = std::env::temp_dir().join(format!("gradlab-samples-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let x = write(&dir, "x.npy", &npy_bytes(&[2, 2, 2], "|u1", false, &[0, 16, 8, 4, 1, 2, 3, 16]));
        let y = write(
            &dir,
            "y.npy",
            &npy_bytes(&[2], "<i8", false, &[[3u8, 0, 0, 0, 0, 0, 0, 0], [9, 0, 0, 0, 0, 0, 0, 0]].concat()),
        );
        let s = load_files(&x, &[("y".into(), &y)], 1.0 / 16.0).unwrap();
        assert_eq!((s.n, s.shape.clone(), s.features()), (2, vec![1, 2, 2], 4));
        assert_eq!(&s.x[..4], &[0.0, 1.0, 0.5, 0.25]);
        let t = s.target("y").unwrap();
        assert_eq!((t.classes, t.values.clone()), (Some(10), vec![3.0, 9.0]));
        let short = write(&dir, "short.npy", &npy_bytes(&[1], "<i8", false, &[0u8; 8]));
        let err = load_files(&x, &[("y".into(), &short)], 1.0).unwrap_err().to_string();
        assert!(err.contains("short.npy") && err.contains("expected [2]"), "{err}");
        let neg = write(&dir, "neg.npy", &npy_bytes(&[2], "|i1", false, &[0, 0xff]));
        let err = load_files(&x, &[("y".into(), &neg)], 1.0).unwrap_err().to_string();
        assert!(err.contains("class labels start at 0"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

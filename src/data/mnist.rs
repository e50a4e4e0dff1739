//! MNIST and Fashion-MNIST by name: the four IDX files of each, downloaded once into the cache
//! ([`super::download`]) from the addresses TensorFlow Datasets uses, checked against the sizes
//! and SHA-256 sums it pins (`tensorflow_datasets/url_checksums/`), and read as 28×28 images
//! (uint8; `[data] scale` turns them into [0, 1] with 1/255) with class labels 0–9: the 60 000
//! training images train, the 10 000 test images are held out.

use super::download::{self, Pinned};
use super::idx;
use super::{Samples, Target};
use crate::error::{Error, Result};
use std::path::Path;

/// A published set: its name, cache folder and files (training images, training labels, test
/// images, test labels).
#[derive(Clone, Copy, Debug)]
pub struct RemoteSet<'a> {
    pub name: &'a str,
    pub files: [Pinned<'a>; 4],
}

macro_rules! pinned {
    ($base:expr, $file:literal, $size:literal, $sum:literal) => {
        Pinned { url: concat!($base, $file), size: $size, sha256: $sum }
    };
}

pub const MNIST: RemoteSet<'static> = RemoteSet {
    name: "mnist",
    files: [
        pinned!(
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
            "train-images-idx3-ubyte.gz",
            9912422,
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"
        ),
        pinned!(
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
            "train-labels-idx1-ubyte.gz",
            28881,
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"
        ),
        pinned!(
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
            "t10k-images-idx3-ubyte.gz",
            1648877,
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"
        ),
        pinned!(
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
            "t10k-labels-idx1-ubyte.gz",
            4542,
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"
        ),
    ],
};

pub const FASHION_MNIST: RemoteSet<'static> = RemoteSet {
    name: "fashion_mnist",
    files: [
        pinned!(
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "train-images-idx3-ubyte.gz",
            26421880,
            "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"
        ),
        pinned!(
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "train-labels-idx1-ubyte.gz",
            29515,
            "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"
        ),
        pinned!(
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "t10k-images-idx3-ubyte.gz",
            4422102,
            "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"
        ),
        pinned!(
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "t10k-labels-idx1-ubyte.gz",
            5148,
            "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"
        ),
    ],
};

pub const NAMES: &[&str] = &["mnist", "fashion_mnist"];

pub fn by_name(name: &str) -> Option<RemoteSet<'static>> {
    match name {
        "mnist" => Some(MNIST),
        "fashion_mnist" => Some(FASHION_MNIST),
        _ => None,
    }
}

/// Training and held-out samples of `set`, fetched into `cache/<name>/` when missing, inputs
/// multiplied by `scale`, the first `n` / `held_out_n` of each when given.
pub fn load(
    set: &RemoteSet,
    cache: &Path,
    scale: f64,
    n: Option<usize>,
    held_out_n: Option<usize>,
) -> Result<(Samples, Samples)> {
    let dir = cache.join(set.name);
    let mut paths = vec![];
    for f in &set.files {
        let name = f.url.rsplit('/').next().unwrap_or(f.url);
        let dest = dir.join(name);
        let bar = (!dest.exists()).then(|| {
            let b = indicatif::ProgressBar::new(f.size);
            b.set_style(
                indicatif::ProgressStyle::with_template("{msg} {bar:30} {bytes}/{total_bytes} ({eta})")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            b.set_message(format!("downloading {}/{name}", set.name));
            b
        });
        let p = download::fetch(f, &dest, &mut |got, _| {
            if let Some(b) = &bar {
                b.set_position(got);
            }
        })?;
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        paths.push(p);
    }
    let part = |images: &Path, labels: &Path, limit: Option<usize>, what: &str| -> Result<Samples> {
        let x = idx::read(images)?;
        let y = idx::read(labels)?;
        let [count, h, w] = x.shape[..] else {
            return Err(Error::data(images, format!("images have shape {:?}; expected [N, height, width]", x.shape)));
        };
        if count == 0 || h == 0 || w == 0 {
            return Err(Error::data(
                images,
                format!("images have shape {:?}: no images, or images of no pixels", x.shape),
            ));
        }
        if y.shape != [count] {
            return Err(Error::data(
                labels,
                format!("labels have shape {:?}; expected [{count}] for the images", y.shape),
            ));
        }
        if let Some(i) = y.data.iter().position(|&l| l > 9) {
            return Err(Error::data(labels, format!("label {i} is {}; classes are 0–9", y.data[i])));
        }
        let m = limit.unwrap_or(count).min(count);
        let s = h * w;
        Ok(Samples {
            x: x.data[..m * s].iter().map(|&v| (v as f64 * scale) as f32).collect(),
            shape: vec![1, h, w],
            n: m,
            targets: vec![Target {
                name: "y".into(),
                values: y.data[..m].iter().map(|&v| v as f32).collect(),
                width: 1,
                classes: Some(10),
            }],
            source: format!("{} ({what}, {m} of {count}) in {}", set.name, dir.display()),
        })
    };
    let train = part(&paths[0], &paths[1], n, "training")?;
    let held = part(&paths[2], &paths[3], held_out_n, "test")?;
    Ok((train, held))
}

//! Seeded random numbers and parameter initialisation: schemes are data ([`WeightInit`]), with
//! fan-in and fan-out read from the PyTorch layout (`[out, in]`, `[out, in, kh, kw]`) as
//! `torch.nn.init` reads them, so one scheme serves dense and convolutional layers.
//!
//! Each model draws from its own ChaCha8 stream seeded by its seed alone, so seed `s` starts
//! from the same parameters whether it trains alone or inside any ensemble, on any machine.
//! Normal deviates use Box–Muller in f64 (written here, so the stream never changes with a
//! dependency's version).

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

pub struct SeededRng(ChaCha8Rng);

impl SeededRng {
    pub fn new(seed: u64) -> SeededRng {
        SeededRng(ChaCha8Rng::seed_from_u64(seed))
    }

    /// Uniform in [0, 1) with 53 random bits.
    pub fn uniform(&mut self) -> f64 {
        (self.0.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform integer in `lo..=hi`.
    pub fn int(&mut self, lo: i64, hi: i64) -> i64 {
        assert!(lo <= hi);
        lo + (self.uniform() * (hi - lo + 1) as f64).floor() as i64
    }

    pub fn bernoulli(&mut self, p: f64) -> bool {
        self.uniform() < p
    }

    /// Standard normal deviate (Box–Muller; one of the pair is used, so the stream is simple).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform(); // (0, 1]: ln is finite
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Normal with mean 0 and standard deviation `std`, redrawn while beyond 2 std
    /// (TensorFlow's `truncated_normal`, the report's initialiser).
    pub fn truncated_normal(&mut self, std: f64) -> f64 {
        loop {
            let z = self.normal();
            if z.abs() <= 2.0 {
                return z * std;
            }
        }
    }

    /// Uniform in [-limit, limit).
    pub fn symmetric(&mut self, limit: f64) -> f64 {
        (2.0 * self.uniform() - 1.0) * limit
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.int(0, i as i64) as usize;
            v.swap(i, j);
        }
    }
}

/// How a weight tensor is drawn. The Xavier/He variants follow `torch.nn.init`
/// (`xavier_uniform_`, `xavier_normal_`, `kaiming_uniform_`/`kaiming_normal_` with their
/// default `a = 0`, fan-in mode, gain √2).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
#[serde(tag = "scheme", rename_all = "snake_case")]
pub enum WeightInit {
    /// Normal redrawn beyond 2 std (TensorFlow's `truncated_normal`, the report's initialiser).
    TruncatedNormal {
        std: f64,
    },
    Normal {
        std: f64,
    },
    /// Uniform in [-limit, limit).
    Uniform {
        limit: f64,
    },
    XavierUniform {
        gain: f64,
    },
    XavierNormal {
        gain: f64,
    },
    HeUniform,
    HeNormal,
    /// Uniform in ±1/√fan_in: PyTorch's default for `nn.Linear` and `nn.Conv2d` weights.
    LecunUniform,
}

impl WeightInit {
    pub const NAMES: &'static [&'static str] = &[
        "truncated_normal",
        "normal",
        "uniform",
        "xavier_uniform",
        "xavier_normal",
        "he_uniform",
        "he_normal",
        "lecun_uniform",
    ];

    /// A scheme by name; `scale` is the std (normal kinds), the limit (uniform) or the gain
    /// (Xavier; 1 by default) and is not taken by He.
    pub fn from_name(name: &str, scale: Option<f64>) -> Result<WeightInit, String> {
        let need = |what: &str| scale.ok_or(format!("`{name}` needs `{what}`"));
        Ok(match name {
            "truncated_normal" => WeightInit::TruncatedNormal { std: need("std")? },
            "normal" => WeightInit::Normal { std: need("std")? },
            "uniform" => WeightInit::Uniform { limit: need("limit")? },
            "xavier_uniform" => WeightInit::XavierUniform { gain: scale.unwrap_or(1.0) },
            "xavier_normal" => WeightInit::XavierNormal { gain: scale.unwrap_or(1.0) },
            "he_uniform" | "he_normal" | "lecun_uniform" if scale.is_some() => {
                return Err(format!("`{name}` takes no std, limit or gain (its scale is fixed by fan_in)"));
            }
            "lecun_uniform" => WeightInit::LecunUniform,
            "he_uniform" => WeightInit::HeUniform,
            "he_normal" => WeightInit::HeNormal,
            other => {
                let hint = crate::names::did_you_mean(other, Self::NAMES);
                return Err(format!("unknown initialisation `{other}`{hint} (known: {})", Self::NAMES.join(", ")));
            }
        })
    }

    /// One value for a tensor of PyTorch shape `shape`.
    pub fn draw(&self, rng: &mut SeededRng, shape: &[usize]) -> f64 {
        let (fan_in, fan_out) = fans(shape);
        match *self {
            WeightInit::TruncatedNormal { std } => rng.truncated_normal(std),
            WeightInit::Normal { std } => rng.normal() * std,
            WeightInit::Uniform { limit } => rng.symmetric(limit),
            WeightInit::XavierUniform { gain } => rng.symmetric(gain * (6.0 / (fan_in + fan_out) as f64).sqrt()),
            WeightInit::XavierNormal { gain } => rng.normal() * gain * (2.0 / (fan_in + fan_out) as f64).sqrt(),
            WeightInit::HeUniform => rng.symmetric((6.0 / fan_in as f64).sqrt()),
            WeightInit::HeNormal => rng.normal() * (2.0 / fan_in as f64).sqrt(),
            WeightInit::LecunUniform => rng.symmetric((1.0 / fan_in as f64).sqrt()),
        }
    }

    /// The scale must be finite and not negative.
    pub fn validate(&self) -> Result<(), String> {
        let v = match *self {
            WeightInit::TruncatedNormal { std } | WeightInit::Normal { std } => std,
            WeightInit::Uniform { limit } => limit,
            WeightInit::XavierUniform { gain } | WeightInit::XavierNormal { gain } => gain,
            WeightInit::HeUniform | WeightInit::HeNormal | WeightInit::LecunUniform => 0.0,
        };
        if v.is_finite() && v >= 0.0 { Ok(()) } else { Err(format!("must be a finite number ≥ 0, got {v}")) }
    }
}

impl std::fmt::Display for WeightInit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WeightInit::TruncatedNormal { std } => write!(f, "truncated normal std {std}"),
            WeightInit::Normal { std } => write!(f, "normal std {std}"),
            WeightInit::Uniform { limit } => write!(f, "uniform ±{limit}"),
            WeightInit::XavierUniform { gain } => write!(f, "xavier uniform (gain {gain})"),
            WeightInit::XavierNormal { gain } => write!(f, "xavier normal (gain {gain})"),
            WeightInit::HeUniform => f.write_str("he uniform"),
            WeightInit::HeNormal => f.write_str("he normal"),
            WeightInit::LecunUniform => f.write_str("lecun uniform (PyTorch's default)"),
        }
    }
}

/// `(fan_in, fan_out)` of a weight in PyTorch layout: dims 0 and 1 times the receptive field.
pub fn fans(shape: &[usize]) -> (usize, usize) {
    let field: usize = shape.iter().skip(2).product();
    match shape {
        [] => (1, 1),
        [n] => (*n, *n),
        [out, inp, ..] => (inp * field, out * field),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fans_follow_torch_layouts() {
        assert_eq!(fans(&[4, 16]), (16, 4));
        assert_eq!(fans(&[8, 16, 7, 7]), (16 * 49, 8 * 49));
    }

    #[test]
    fn xavier_and_he_have_torch_spreads() {
        let spread = |init: WeightInit, shape: &[usize]| {
            let mut r = SeededRng::new(11);
            let xs: Vec<f64> = (0..200_000).map(|_| init.draw(&mut r, shape)).collect();
            (xs.iter().map(|x| x * x).sum::<f64>() / xs.len() as f64).sqrt()
        };
        // Uniform on [-a, a] has std a/√3; xavier_uniform a = √(6/(in+out)) → std √(2/(in+out)).
        let want = (2.0f64 / 20.0).sqrt();
        assert!((spread(WeightInit::XavierUniform { gain: 1.0 }, &[4, 16]) - want).abs() < 3e-3 * want.max(1.0));
        assert!((spread(WeightInit::XavierNormal { gain: 1.0 }, &[4, 16]) - want).abs() < 3e-3 * want.max(1.0));
        let he = (2.0f64 / 16.0).sqrt();
        assert!((spread(WeightInit::HeUniform, &[4, 16]) - he).abs() < 3e-3);
        assert!((spread(WeightInit::HeNormal, &[4, 16]) - he).abs() < 3e-3);
        let mut r = SeededRng::new(3);
        let limit = (6.0f64 / 20.0).sqrt();
        assert!((0..10_000).all(|_| WeightInit::XavierUniform { gain: 1.0 }.draw(&mut r, &[4, 16]).abs() <= limit));
    }

    #[test]
    fn names_parse_with_suggestions() {
        assert_eq!(WeightInit::from_name("normal", Some(0.5)), Ok(WeightInit::Normal { std: 0.5 }));
        assert!(WeightInit::from_name("normal", None).unwrap_err().contains("std"));
        assert!(WeightInit::from_name("xavier_unifrom", None).unwrap_err().contains("xavier_uniform"));
        assert!(WeightInit::from_name("he_normal", Some(1.0)).is_err());
    }

    #[test]
    fn truncated_normal_is_truncated_and_has_the_right_spread() {
        let mut r = SeededRng::new(7);
        let xs: Vec<f64> = (0..200_000).map(|_| r.truncated_normal(0.1)).collect();
        assert!(xs.iter().all(|x| x.abs() <= 0.2));
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64;
        // A normal truncated at ±2σ has standard deviation 0.8796σ.
        assert!(mean.abs() < 1e-3, "mean {mean}");
        assert!((var.sqrt() - 0.087_96).abs() < 1e-3, "std {}", var.sqrt());
    }

    #[test]
    fn same_seed_same_stream_different_seed_different_stream() {
        let draw = |s| {
            let mut r = SeededRng::new(s);
            (0..8).map(|_| r.normal()).collect::<Vec<_>>()
        };
        assert_eq!(draw(3), draw(3));
        assert_ne!(draw(3), draw(4));
    }
}

//! Seeded random numbers and parameter initialisation.
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

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.int(0, i as i64) as usize;
            v.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

//! Elementwise activation. Forward evaluates the activation's formula once on dual numbers,
//! which yields value and derivative together; the derivative is saved for backward.
//! In f32, the activations with an exponential run `activation_simd`'s SIMD twins (AVX-512 or
//! AVX2) where the CPU has them.

use super::real::Real;
use super::simd::{as_f32, as_f32_mut};
use crate::engine::activations::Activation;

pub fn forward<T: Real>(act: Activation, x: &[T], y: &mut [T], dydx: &mut [T]) {
    if let (Some(xf), Some(yf), Some(df)) = (as_f32(x), as_f32_mut(y), as_f32_mut(dydx))
        && super::simd::enabled()
        && super::activation_simd::map_with_derivative(act, xf, yf, df)
    {
        return;
    }
    act.map_with_derivative(x, y, dydx);
}

/// `gx += gy·act′`; with `overwrite` (`gx` stands for zeros) `gx = 0 + gy·act′`, the same
/// numbers without reading it.
pub fn backward<T: Real>(gy: &[T], dydx: &[T], gx: &mut [T], overwrite: bool) {
    if overwrite {
        for ((g, &d), &s) in gx.iter_mut().zip(gy).zip(dydx) {
            *g = T::default() + d * s;
        }
    } else {
        for ((g, &d), &s) in gx.iter_mut().zip(gy).zip(dydx) {
            *g += d * s;
        }
    }
}

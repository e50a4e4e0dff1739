//! Elementwise activation. Forward evaluates the activation's formula once on dual numbers,
//! which yields value and derivative together; the derivative is saved for backward.
//! Sigmoid and tanh in f32 run `activation_simd`'s AVX-512 twins where the CPU has them.

use super::real::Real;
use super::simd::{as_f32, as_f32_mut};
use crate::activations::Activation;

pub fn forward<T: Real>(act: Activation, x: &[T], y: &mut [T], dydx: &mut [T]) {
    let simd: Option<fn(&[f32], &mut [f32], &mut [f32])> = match act {
        Activation::Sigmoid => Some(super::activation_simd::sigmoid),
        Activation::Tanh => Some(super::activation_simd::tanh),
        _ => None,
    };
    if let (Some(f), Some(xf), Some(yf), Some(df)) = (simd, as_f32(x), as_f32_mut(y), as_f32_mut(dydx))
        && super::simd::enabled()
    {
        return f(xf, yf, df);
    }
    act.map_with_derivative(x, y, dydx);
}

pub fn backward<T: Real>(gy: &[T], dydx: &[T], gx: &mut [T]) {
    for ((g, &d), &s) in gx.iter_mut().zip(gy).zip(dydx) {
        *g += d * s;
    }
}

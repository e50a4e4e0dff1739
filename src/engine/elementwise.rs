//! Elementwise activation. Forward evaluates the activation's formula once on dual numbers,
//! which yields value and derivative together; the derivative is saved for backward.

use super::real::Real;
use crate::activations::Activation;

pub fn forward<T: Real>(act: Activation, x: &[T], y: &mut [T], dydx: &mut [T]) {
    act.map_with_derivative(x, y, dydx);
}

pub fn backward<T: Real>(gy: &[T], dydx: &[T], gx: &mut [T]) {
    for ((g, &d), &s) in gx.iter_mut().zip(gy).zip(dydx) {
        *g += d * s;
    }
}

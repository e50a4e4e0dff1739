//! The scalar types formulas are written over: `f32`, `f64`, and [`Dual`] numbers.
//!
//! An activation is written once as a generic function of `S: Scalar`. Evaluated on `f32`
//! it trains; on `f64` it serves finite-difference checks; on `Dual<T>` (forward-mode
//! automatic differentiation) it yields its own derivative, so no derivative is ever
//! written by hand.

use std::fmt::Debug;
use std::ops::{Add, Div, Mul, Neg, Sub};

/// What an activation or loss formula may use: arithmetic, a few transcendental functions,
/// and the real part for branching (`relu` asks `x.re() > 0`).
pub trait Scalar:
    Copy + Debug + Add<Output = Self> + Sub<Output = Self> + Mul<Output = Self> + Div<Output = Self> + Neg<Output = Self>
{
    /// A constant (its derivative is zero).
    fn cst(v: f64) -> Self;
    /// The real part, for branching and comparisons.
    fn re(self) -> f64;
    fn abs(self) -> Self;
    fn exp(self) -> Self;
    fn ln(self) -> Self;
    fn ln_1p(self) -> Self;
    fn tanh(self) -> Self;
    fn erf(self) -> Self;
}

impl Scalar for f64 {
    #[inline(always)]
    fn cst(v: f64) -> Self {
        v
    }
    #[inline(always)]
    fn re(self) -> f64 {
        self
    }
    #[inline(always)]
    fn abs(self) -> Self {
        f64::abs(self)
    }
    #[inline(always)]
    fn exp(self) -> Self {
        f64::exp(self)
    }
    #[inline(always)]
    fn ln(self) -> Self {
        f64::ln(self)
    }
    #[inline(always)]
    fn ln_1p(self) -> Self {
        f64::ln_1p(self)
    }
    #[inline(always)]
    fn tanh(self) -> Self {
        f64::tanh(self)
    }
    #[inline(always)]
    fn erf(self) -> Self {
        libm::erf(self)
    }
}

impl Scalar for f32 {
    #[inline(always)]
    fn cst(v: f64) -> Self {
        v as f32
    }
    #[inline(always)]
    fn re(self) -> f64 {
        self as f64
    }
    #[inline(always)]
    fn abs(self) -> Self {
        f32::abs(self)
    }
    #[inline(always)]
    fn exp(self) -> Self {
        super::fastmath::exp_f32(self)
    }
    #[inline(always)]
    fn ln(self) -> Self {
        f32::ln(self)
    }
    #[inline(always)]
    fn ln_1p(self) -> Self {
        super::fastmath::ln_1p_f32(self)
    }
    #[inline(always)]
    fn tanh(self) -> Self {
        super::fastmath::tanh_f32(self)
    }
    #[inline(always)]
    fn erf(self) -> Self {
        super::fastmath::erf_f32(self)
    }
}

/// A dual number `v + d·ε` with `ε² = 0`: evaluating `f` on `Dual { v: x, d: 1 }` gives
/// `Dual { v: f(x), d: f'(x) }`.
/// `repr(C)`: a slice of `Dual<f64>` is an interleaved slice of f64 (value, tangent, …), which
/// the matrix kernel reads with doubled strides (`Real for Dual<f64>`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[repr(C)]
pub struct Dual<T> {
    pub v: T,
    pub d: T,
}

impl<T: Scalar> Dual<T> {
    /// The variable `x` itself: derivative 1.
    #[inline(always)]
    pub fn var(x: T) -> Self {
        Dual { v: x, d: T::cst(1.0) }
    }
}

impl<T: Scalar> Add for Dual<T> {
    type Output = Self;
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        Dual { v: self.v + o.v, d: self.d + o.d }
    }
}
impl<T: Scalar> Sub for Dual<T> {
    type Output = Self;
    #[inline(always)]
    fn sub(self, o: Self) -> Self {
        Dual { v: self.v - o.v, d: self.d - o.d }
    }
}
impl<T: Scalar> Mul for Dual<T> {
    type Output = Self;
    #[inline(always)]
    fn mul(self, o: Self) -> Self {
        Dual { v: self.v * o.v, d: self.d * o.v + self.v * o.d }
    }
}
impl<T: Scalar> Div for Dual<T> {
    type Output = Self;
    #[inline(always)]
    fn div(self, o: Self) -> Self {
        let q = self.v / o.v;
        Dual { v: q, d: (self.d - q * o.d) / o.v }
    }
}
impl<T: Scalar> Neg for Dual<T> {
    type Output = Self;
    #[inline(always)]
    fn neg(self) -> Self {
        Dual { v: -self.v, d: -self.d }
    }
}

impl<T: Scalar> Scalar for Dual<T> {
    #[inline(always)]
    fn cst(v: f64) -> Self {
        Dual { v: T::cst(v), d: T::cst(0.0) }
    }
    #[inline(always)]
    fn re(self) -> f64 {
        self.v.re()
    }
    /// `|x|` with derivative sign(x), taking x = 0 as the negative side (|x| = −x there), to
    /// agree with formulas that branch on `x > 0`: a smooth function written with `abs` then
    /// gets its true derivative at 0 too (tested for sigmoid and softplus).
    #[inline(always)]
    fn abs(self) -> Self {
        if self.v.re() > 0.0 { self } else { -self }
    }
    #[inline(always)]
    fn exp(self) -> Self {
        let e = self.v.exp();
        Dual { v: e, d: self.d * e }
    }
    #[inline(always)]
    fn ln(self) -> Self {
        Dual { v: self.v.ln(), d: self.d / self.v }
    }
    #[inline(always)]
    fn ln_1p(self) -> Self {
        Dual { v: self.v.ln_1p(), d: self.d / (T::cst(1.0) + self.v) }
    }
    #[inline(always)]
    fn tanh(self) -> Self {
        let t = self.v.tanh();
        Dual { v: t, d: self.d * (T::cst(1.0) - t * t) }
    }
    #[inline(always)]
    fn erf(self) -> Self {
        // d/dx erf(x) = 2/√π · exp(−x²)
        let g = T::cst(std::f64::consts::FRAC_2_SQRT_PI) * (-(self.v * self.v)).exp();
        Dual { v: self.v.erf(), d: self.d * g }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fd(f: impl Fn(f64) -> f64, x: f64) -> f64 {
        let h = 1e-6 * (1.0 + x.abs());
        (f(x + h) - f(x - h)) / (2.0 * h)
    }

    #[test]
    fn dual_primitives_match_finite_differences() {
        type F = fn(Dual<f64>) -> Dual<f64>;
        type G = fn(f64) -> f64;
        let cases: [(&str, F, G, &[f64]); 7] = [
            ("exp", |x| x.exp(), |x| x.exp(), &[-3.0, 0.0, 2.5]),
            ("ln", |x| x.ln(), |x| x.ln(), &[0.1, 1.0, 7.0]),
            ("ln_1p", |x| x.ln_1p(), |x| x.ln_1p(), &[-0.5, 0.0, 3.0]),
            ("tanh", |x| x.tanh(), |x| x.tanh(), &[-2.0, 0.3, 4.0]),
            ("erf", |x| x.erf(), libm::erf, &[-1.5, 0.0, 0.7]),
            ("div", |x| Dual::cst(3.0) / (x * x + Dual::cst(1.0)), |x| 3.0 / (x * x + 1.0), &[-2.0, 0.5]),
            ("sub_neg", |x| -(x - x * x * x), |x| -(x - x * x * x), &[-1.0, 2.0]),
        ];
        for (name, f, g, xs) in cases {
            for &x in xs {
                let d = f(Dual::var(x)).d;
                let want = fd(g, x);
                assert!((d - want).abs() <= 1e-7 * (1.0 + want.abs()), "{name} at {x}: dual {d}, fd {want}");
            }
        }
    }
}

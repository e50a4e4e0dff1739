//! Activation functions: one generic formula each.
//!
//! To add an activation: add a variant, one arm in [`Activation::apply`] and its name in
//! [`Activation::NAMES`] / [`Activation::parse`]. The derivative comes from evaluating the
//! same formula on dual numbers (see `engine::scalar`), and `tests/gradcheck.rs` checks it
//! against finite differences automatically for every entry of [`Activation::all`].

use crate::engine::scalar::{Dual, Scalar};
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    Identity,
    Sigmoid,
    Tanh,
    Relu,
    /// `max(slope·x, x)`; the report uses slope 0.1.
    LeakyRelu {
        slope: f64,
    },
    Elu {
        alpha: f64,
    },
    Selu,
    /// Exact GELU, `x·Φ(x)` with the error function.
    Gelu,
    Softplus,
    /// `x·σ(x)` (also called SiLU).
    Swish,
}

/// Numerically stable logistic function: never evaluates `exp` of a large positive number.
#[inline(always)]
pub fn sigmoid<S: Scalar>(x: S) -> S {
    // e = exp(−|x|) ≤ 1: σ(x) = 1/(1+e) for x ≥ 0 and e/(1+e) otherwise. One exp, and
    // both sides cheap, so a loop over it vectorises.
    let one = S::cst(1.0);
    let e = (-x.abs()).exp();
    let inv = one / (one + e);
    if x.re() > 0.0 { inv } else { e * inv }
}

/// Numerically stable `ln(1 + eˣ)`.
#[inline(always)]
pub fn softplus<S: Scalar>(x: S) -> S {
    // max(x, 0) + ln(1 + e^−|x|): one exp and one ln_1p whatever the sign.
    let relu = if x.re() > 0.0 { x } else { x * S::cst(0.0) };
    relu + (-x.abs()).exp().ln_1p()
}

impl Activation {
    pub const NAMES: &'static [&'static str] =
        &["identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu", "gelu", "softplus", "swish"];

    /// The formula, written once. Always inlined, so a loop over a tensor with a fixed
    /// activation compiles to a loop over that one formula.
    #[inline(always)]
    pub fn apply<S: Scalar>(self, x: S) -> S {
        let zero = S::cst(0.0);
        match self {
            Activation::Identity => x,
            Activation::Sigmoid => sigmoid(x),
            Activation::Tanh => x.tanh(),
            // `x * 0` rather than a constant keeps the derivative exactly 0 for x ≤ 0.
            Activation::Relu => {
                if x.re() > 0.0 {
                    x
                } else {
                    x * zero
                }
            }
            Activation::LeakyRelu { slope } => {
                if x.re() > 0.0 {
                    x
                } else {
                    x * S::cst(slope)
                }
            }
            Activation::Elu { alpha } => {
                if x.re() > 0.0 {
                    x
                } else {
                    S::cst(alpha) * (x.exp() - S::cst(1.0))
                }
            }
            Activation::Selu => {
                let (alpha, scale) = SELU;
                let inner = if x.re() > 0.0 { x } else { S::cst(alpha) * (x.exp() - S::cst(1.0)) };
                S::cst(scale) * inner
            }
            Activation::Gelu => S::cst(0.5) * x * (S::cst(1.0) + (x * S::cst(std::f64::consts::FRAC_1_SQRT_2)).erf()),
            Activation::Softplus => softplus(x),
            Activation::Swish => x * sigmoid(x),
        }
    }

    /// Value and derivative at `x`, from one dual-number evaluation.
    #[inline(always)]
    pub fn value_and_derivative<T: Scalar>(self, x: T) -> (T, T) {
        let y = self.apply(Dual::var(x));
        (y.v, y.d)
    }

    /// `y[i] = f(x[i])` and `dydx[i] = f'(x[i])` over slices. The match on the activation
    /// happens once, outside the loop, so each loop is specialised to one formula (and can be
    /// vectorised). A new variant must be listed here too; the compiler insists.
    pub fn map_with_derivative<T: Scalar>(self, x: &[T], y: &mut [T], dydx: &mut [T]) {
        #[inline(always)]
        fn each<T: Scalar>(a: Activation, x: &[T], y: &mut [T], dydx: &mut [T]) {
            for ((&xi, yi), di) in x.iter().zip(y.iter_mut()).zip(dydx.iter_mut()) {
                (*yi, *di) = a.value_and_derivative(xi);
            }
        }
        match self {
            a @ Activation::Identity => each(a, x, y, dydx),
            // σ′(x) = e/(1+e)² with e = exp(−|x|) on both sides: one division instead of the
            // dual numbers' three (a quarter of a Table 1 step), and exact in the tails where
            // σ(1−σ) would round to 0. Gradient checks and the JAX trajectories cover it.
            Activation::Sigmoid => {
                let one = T::cst(1.0);
                for ((&xi, yi), di) in x.iter().zip(y.iter_mut()).zip(dydx.iter_mut()) {
                    let e = (-xi.abs()).exp();
                    let inv = one / (one + e);
                    *yi = if xi.re() > 0.0 { inv } else { e * inv };
                    *di = e * inv * inv;
                }
            }
            a @ Activation::Tanh => each(a, x, y, dydx),
            // As the dual numbers compute them (x·0 keeps a negative input's −0; the slope's
            // derivative term is 1·s + x·0, and 1·0 = 0 for ReLU), without them.
            Activation::Relu => piecewise_linear(x, y, dydx, T::cst(0.0)),
            Activation::LeakyRelu { slope } => piecewise_linear(x, y, dydx, T::cst(slope)),
            Activation::Elu { alpha } => exponential_linear(x, y, dydx, T::cst(alpha), None),
            Activation::Selu => exponential_linear(x, y, dydx, T::cst(SELU.0), Some(T::cst(SELU.1))),
            a @ Activation::Gelu => each(a, x, y, dydx),
            a @ Activation::Softplus => each(a, x, y, dydx),
            a @ Activation::Swish => each(a, x, y, dydx),
        }
    }

    /// Parses `sigmoid`, `relu`, `leaky_relu` (slope 0.1), `leaky_relu:0.2`, `elu`, `elu:0.5`, …
    pub fn parse(s: &str) -> Result<Activation, String> {
        let (name, param) = match s.split_once(':') {
            Some((n, p)) => {
                let v: f64 = p.parse().map_err(|_| format!("activation `{s}`: parameter `{p}` is not a number"))?;
                if !v.is_finite() {
                    return Err(format!("activation `{s}`: parameter must be finite"));
                }
                (n, Some(v))
            }
            None => (s, None),
        };
        let act = match name {
            "identity" | "linear" => Activation::Identity,
            "sigmoid" => Activation::Sigmoid,
            "tanh" => Activation::Tanh,
            "relu" => Activation::Relu,
            "leaky_relu" | "leakyrelu" | "lrelu" => Activation::LeakyRelu { slope: param.unwrap_or(0.1) },
            "elu" => Activation::Elu { alpha: param.unwrap_or(1.0) },
            "selu" => Activation::Selu,
            "gelu" => Activation::Gelu,
            "softplus" => Activation::Softplus,
            "swish" | "silu" => Activation::Swish,
            _ => {
                let hint = crate::names::did_you_mean(name, Activation::NAMES);
                return Err(format!("unknown activation `{name}` (known: {}){hint}", Activation::NAMES.join(", ")));
            }
        };
        if param.is_some() && !matches!(act, Activation::LeakyRelu { .. } | Activation::Elu { .. }) {
            return Err(format!("activation `{name}` takes no parameter (got `{s}`)"));
        }
        Ok(act)
    }

    /// One of each, with default parameters: what the gradient tests iterate over.
    pub fn all() -> Vec<Activation> {
        Activation::NAMES.iter().map(|n| Activation::parse(n).expect("every listed name parses")).collect()
    }

    /// Whether the output always lies in (0, 1), so cross-entropy on it is defined.
    pub fn is_probability(self) -> bool {
        matches!(self, Activation::Sigmoid)
    }
}

/// SELU's α and scale (Klambauer et al. 2017).
pub const SELU: (f64, f64) = (1.673_263_242_354_377_3, 1.050_700_987_355_480_5);

/// ELU and SELU (`scale`) over slices, as the dual numbers compute them without them:
/// inner = `x > 0 ? (x, 1) : (α(eˣ − 1), 0·(eˣ − 1) + α·eˣ)`, then `(s·v, 0·v + s·d)`.
#[inline(always)]
fn exponential_linear<T: Scalar>(x: &[T], y: &mut [T], dydx: &mut [T], alpha: T, scale: Option<T>) {
    let (zero, one) = (T::cst(0.0), T::cst(1.0));
    for ((&xi, yi), di) in x.iter().zip(y.iter_mut()).zip(dydx.iter_mut()) {
        let e = xi.exp();
        let em1 = e - one;
        let on = xi.re() > 0.0;
        let v = if on { xi } else { alpha * em1 };
        let d = if on { one } else { zero * em1 + alpha * e };
        (*yi, *di) = match scale {
            None => (v, d),
            Some(s) => (s * v, zero * v + s * d),
        };
    }
}

/// ReLU (`slope` 0) and leaky ReLU over slices: `x > 0 ? (x, 1) : (x·s, 1·s + x·0)`.
#[inline(always)]
fn piecewise_linear<T: Scalar>(x: &[T], y: &mut [T], dydx: &mut [T], slope: T) {
    let (zero, one) = (T::cst(0.0), T::cst(1.0));
    let off = one * slope;
    for ((&xi, yi), di) in x.iter().zip(y.iter_mut()).zip(dydx.iter_mut()) {
        let on = xi.re() > 0.0;
        *yi = if on { xi } else { xi * slope };
        *di = if on { one } else { off + xi * zero };
    }
}

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Activation::Identity => write!(f, "identity"),
            Activation::Sigmoid => write!(f, "sigmoid"),
            Activation::Tanh => write!(f, "tanh"),
            Activation::Relu => write!(f, "relu"),
            Activation::LeakyRelu { slope } if *slope == 0.1 => write!(f, "leaky_relu"),
            Activation::LeakyRelu { slope } => write!(f, "leaky_relu:{slope}"),
            Activation::Elu { alpha } if *alpha == 1.0 => write!(f, "elu"),
            Activation::Elu { alpha } => write!(f, "elu:{alpha}"),
            Activation::Selu => write!(f, "selu"),
            Activation::Gelu => write!(f, "gelu"),
            Activation::Softplus => write!(f, "softplus"),
            Activation::Swish => write!(f, "swish"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The specialised loops agree with one dual-number evaluation: (leaky) ReLU, ELU and SELU bit
    /// for bit (special values included; a NaN is a NaN), sigmoid to an ulp or two (its derivative
    /// is formed differently).
    #[test]
    fn specialised_loops_agree_with_the_dual_numbers() {
        let xs: Vec<f32> =
            vec![-3.5, -1e-30, -0.0, 0.0, 1e-30, 0.25, 7.0, 30.0, -30.0, f32::INFINITY, f32::NEG_INFINITY, f32::NAN];
        let (mut y, mut d) = (vec![0f32; xs.len()], vec![0f32; xs.len()]);
        for act in [
            Activation::Relu,
            Activation::LeakyRelu { slope: 0.1 },
            Activation::LeakyRelu { slope: 0.3 },
            Activation::Elu { alpha: 1.0 },
            Activation::Elu { alpha: 0.5 },
            Activation::Selu,
        ] {
            act.map_with_derivative(&xs, &mut y, &mut d);
            for (i, &x) in xs.iter().enumerate() {
                let (vy, vd) = act.value_and_derivative(x);
                let same = |a: f32, b: f32| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
                assert!(same(y[i], vy) && same(d[i], vd), "{act} at {x}: {:?} vs {:?}", (y[i], d[i]), (vy, vd));
            }
        }
        Activation::Sigmoid.map_with_derivative(&xs[..9], &mut y[..9], &mut d[..9]);
        for (i, &x) in xs[..9].iter().enumerate() {
            let (vy, vd) = Activation::Sigmoid.value_and_derivative(x);
            assert!((y[i] - vy).abs() <= 2.0 * f32::EPSILON * vy.abs(), "σ({x})");
            assert!((d[i] - vd).abs() <= 4.0 * f32::EPSILON * vd.abs(), "σ'({x}): {} vs {vd}", d[i]);
        }
    }

    #[test]
    fn names_round_trip_through_display() {
        for a in Activation::all() {
            assert_eq!(Activation::parse(&a.to_string()), Ok(a));
        }
        let a = Activation::parse("leaky_relu:0.2").unwrap();
        assert_eq!(a, Activation::LeakyRelu { slope: 0.2 });
        assert_eq!(Activation::parse(&a.to_string()), Ok(a));
    }

    #[test]
    fn unknown_names_suggest_a_fix() {
        let e = Activation::parse("leaky_rlu").unwrap_err();
        assert!(e.contains("did you mean `leaky_relu`"), "{e}");
        assert!(Activation::parse("relu:0.3").unwrap_err().contains("takes no parameter"));
        assert!(Activation::parse("elu:abc").unwrap_err().contains("not a number"));
    }

    #[test]
    fn formulas_match_textbook_values() {
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        assert!(close(Activation::Sigmoid.apply(0.0), 0.5));
        assert!(close(Activation::Sigmoid.apply(-800.0), 0.0) && Activation::Sigmoid.apply(-800.0f64).is_finite());
        assert!(close(Activation::LeakyRelu { slope: 0.1 }.apply(-2.0), -0.2));
        assert!(close(Activation::Relu.apply(-2.0), 0.0) && close(Activation::Relu.apply(3.0), 3.0));
        assert!(close(Activation::Softplus.apply(0.0), std::f64::consts::LN_2));
        assert!(close(Activation::Softplus.apply(1000.0), 1000.0));
        assert!(close(Activation::Gelu.apply(1.0), 0.841_344_746_068_542_9));
        assert!(close(Activation::Swish.apply(1.0), 1.0 / (1.0 + (-1.0f64).exp())));
        assert!(close(Activation::Selu.apply(1.0), 1.050_700_987_355_480_5));
        assert!(close(Activation::Elu { alpha: 1.0 }.apply(-1.0), (-1.0f64).exp() - 1.0));
    }

    #[test]
    fn smooth_activations_have_their_true_derivative_at_exactly_zero() {
        // The derivatives at 0 from calculus: σ'(0) = 1/4, softplus'(0) = 1/2, swish'(0) = 1/2,
        // gelu'(0) = 1/2, tanh'(0) = 1, elu'(0) = 1 (α = 1), identity'(0) = 1.
        let cases = [
            (Activation::Sigmoid, 0.25),
            (Activation::Softplus, 0.5),
            (Activation::Swish, 0.5),
            (Activation::Gelu, 0.5),
            (Activation::Tanh, 1.0),
            (Activation::Elu { alpha: 1.0 }, 1.0),
            (Activation::Identity, 1.0),
        ];
        for (a, want) in cases {
            assert!(
                (a.value_and_derivative(0.0f64).1 - want).abs() < 1e-12,
                "{a}: {}",
                a.value_and_derivative(0.0f64).1
            );
            assert!((a.value_and_derivative(0.0f32).1 - want as f32).abs() < 1e-6, "{a} f32");
            assert!((a.value_and_derivative(-0.0f64).1 - want).abs() < 1e-12, "{a} at -0");
        }
    }

    #[test]
    fn relu_derivative_at_zero_is_zero_like_the_frameworks() {
        assert_eq!(Activation::Relu.value_and_derivative(0.0f64), (0.0, 0.0));
        assert_eq!(Activation::LeakyRelu { slope: 0.1 }.value_and_derivative(0.0f64).1, 0.1);
    }
}

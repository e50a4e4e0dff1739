//! TensorFlow Playground's six 2D datasets and its input features, following its
//! `src/dataset.ts` and `src/playground.ts` formula by formula and draw by draw: each generator
//! takes the uniform source that stands for `Math.random()` and consumes it in the same order, so
//! that given the same stream it returns the Playground's points (its seeded `seedrandom` stream
//! itself is not reproduced; gradlab draws from ChaCha8 with the data seed). Then, as the
//! Playground does, the points are shuffled (its Fisher–Yates) and split at
//! `⌊n · train_ratio⌋` into training and held-out (its "test") samples.
//!
//! Classification labels are the Playground's ±1 as target `label` and as classes 0/1 (`y`:
//! 1 for +1), so either a tanh output with squared error (the Playground's) or a cross-entropy
//! head can train on them. Regression targets (`plane`, `multi_gaussian`) are `y` in [−1, 1].

use super::{Samples, Target};
use crate::init::SeededRng;

/// One of the Playground's datasets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Playground {
    Circle,
    Xor,
    Gauss,
    Spiral,
    /// Regression: `(x + y)/10` (the Playground's "reg-plane").
    Plane,
    /// Regression: six signed bumps (the Playground's "reg-gauss").
    MultiGaussian,
}

impl Playground {
    pub const NAMES: &'static [&'static str] = &["circle", "xor", "gauss", "spiral", "plane", "multi_gaussian"];

    pub fn parse(name: &str) -> Option<Playground> {
        Some(match name {
            "circle" => Playground::Circle,
            "xor" => Playground::Xor,
            "gauss" => Playground::Gauss,
            "spiral" => Playground::Spiral,
            "plane" => Playground::Plane,
            "multi_gaussian" => Playground::MultiGaussian,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        Playground::NAMES[self as usize]
    }

    pub fn regression(self) -> bool {
        matches!(self, Playground::Plane | Playground::MultiGaussian)
    }

    /// The Playground's sample count: 500 to classify, 1 200 to regress.
    pub fn default_n(self) -> usize {
        if self.regression() { 1200 } else { 500 }
    }

    /// `n` points `(x, y, label)` drawn with `random` (uniform in [0, 1), the Playground's
    /// `Math.random`); `noise` is the Playground's slider over 100 (0 to 0.5).
    pub fn points(self, n: usize, noise: f64, random: &mut dyn FnMut() -> f64) -> Vec<[f64; 3]> {
        match self {
            Playground::Circle => circle(n, noise, random),
            Playground::Xor => xor(n, noise, random),
            Playground::Gauss => two_gauss(n, noise, random),
            Playground::Spiral => spiral(n, noise, random),
            Playground::Plane => regression(n, noise, random, plane_label),
            Playground::MultiGaussian => regression(n, noise, random, multi_gaussian_label),
        }
    }
}

/// The Playground's ranges: every dataset lies in [−6, 6]² (its heatmap's domain).
pub const DOMAIN: f64 = 6.0;

fn uniform(random: &mut dyn FnMut() -> f64, a: f64, b: f64) -> f64 {
    random() * (b - a) + a
}

/// Marsaglia's polar method, as the Playground's `normalRandom(mean, variance)`.
fn normal(random: &mut dyn FnMut() -> f64, mean: f64, variance: f64) -> f64 {
    let (mut v1, mut s);
    loop {
        v1 = 2.0 * random() - 1.0;
        let v2 = 2.0 * random() - 1.0;
        s = v1 * v1 + v2 * v2;
        if s <= 1.0 {
            break;
        }
    }
    let result = (-2.0 * s.ln() / s).sqrt() * v1;
    mean + variance.sqrt() * result
}

/// JavaScript's `for (i = 0; i < n / 2; i++)`: ⌈n/2⌉ iterations.
fn half(n: usize) -> usize {
    n.div_ceil(2)
}

fn circle(n: usize, noise: f64, random: &mut dyn FnMut() -> f64) -> Vec<[f64; 3]> {
    let radius = 5.0;
    let label = |x: f64, y: f64| if (x * x + y * y).sqrt() < radius * 0.5 { 1.0 } else { -1.0 };
    let mut points = vec![];
    for (r_lo, r_hi) in [(0.0, radius * 0.5), (radius * 0.7, radius)] {
        for _ in 0..half(n) {
            let r = uniform(random, r_lo, r_hi);
            let angle = uniform(random, 0.0, 2.0 * std::f64::consts::PI);
            let (x, y) = (r * angle.sin(), r * angle.cos());
            let noise_x = uniform(random, -radius, radius) * noise;
            let noise_y = uniform(random, -radius, radius) * noise;
            points.push([x, y, label(x + noise_x, y + noise_y)]);
        }
    }
    points
}

fn xor(n: usize, noise: f64, random: &mut dyn FnMut() -> f64) -> Vec<[f64; 3]> {
    let padding = 0.3;
    let pad = |v: f64| v + if v > 0.0 { padding } else { -padding };
    (0..n)
        .map(|_| {
            let x = pad(uniform(random, -5.0, 5.0));
            let y = pad(uniform(random, -5.0, 5.0));
            let noise_x = uniform(random, -5.0, 5.0) * noise;
            let noise_y = uniform(random, -5.0, 5.0) * noise;
            [x, y, if (x + noise_x) * (y + noise_y) >= 0.0 { 1.0 } else { -1.0 }]
        })
        .collect()
}

fn two_gauss(n: usize, noise: f64, random: &mut dyn FnMut() -> f64) -> Vec<[f64; 3]> {
    // d3.scale.linear().domain([0, .5]).range([0.5, 4]) (not clamped).
    let variance = 0.5 + noise / 0.5 * 3.5;
    let mut points = vec![];
    for (c, label) in [(2.0, 1.0), (-2.0, -1.0)] {
        for _ in 0..half(n) {
            let x = normal(random, c, variance);
            let y = normal(random, c, variance);
            points.push([x, y, label]);
        }
    }
    points
}

fn spiral(n: usize, noise: f64, random: &mut dyn FnMut() -> f64) -> Vec<[f64; 3]> {
    let m = n as f64 / 2.0; // `n / 2` in JavaScript: not rounded
    let mut points = vec![];
    for (delta_t, label) in [(0.0, 1.0), (std::f64::consts::PI, -1.0)] {
        let mut i = 0.0;
        while i < m {
            let r = i / m * 5.0;
            let t = 1.75 * i / m * 2.0 * std::f64::consts::PI + delta_t;
            let x = r * t.sin() + uniform(random, -1.0, 1.0) * noise;
            let y = r * t.cos() + uniform(random, -1.0, 1.0) * noise;
            points.push([x, y, label]);
            i += 1.0;
        }
    }
    points
}

/// Points uniform in [−6, 6]², each labelled at its noisy twin (the regression sets).
fn regression(n: usize, noise: f64, random: &mut dyn FnMut() -> f64, label: fn(f64, f64) -> f64) -> Vec<[f64; 3]> {
    let radius = 6.0;
    (0..n)
        .map(|_| {
            let x = uniform(random, -radius, radius);
            let y = uniform(random, -radius, radius);
            let noise_x = uniform(random, -radius, radius) * noise;
            let noise_y = uniform(random, -radius, radius) * noise;
            [x, y, label(x + noise_x, y + noise_y)]
        })
        .collect()
}

/// d3.scale.linear().domain([-10, 10]).range([-1, 1]) of x + y.
fn plane_label(x: f64, y: f64) -> f64 {
    (x + y) / 10.0
}

/// The six bumps of "reg-gauss": centre and sign.
const BUMPS: [(f64, f64, f64); 6] =
    [(-4.0, 2.5, 1.0), (0.0, 2.5, -1.0), (4.0, 2.5, 1.0), (-4.0, -2.5, -1.0), (0.0, -2.5, 1.0), (4.0, -2.5, -1.0)];

/// The bump largest in absolute value at `(x, y)`: sign · clamp(1 − d/2, 0, 1).
fn multi_gaussian_label(x: f64, y: f64) -> f64 {
    let mut label: f64 = 0.0;
    for (cx, cy, sign) in BUMPS {
        let d = ((x - cx).powi(2) + (y - cy).powi(2)).sqrt();
        // d3.scale.linear().domain([0, 2]).range([1, 0]).clamp(true)
        let new = sign * (1.0 - d / 2.0).clamp(0.0, 1.0);
        if new.abs() > label.abs() {
            label = new;
        }
    }
    label
}

/// The Playground's `shuffle`: Fisher–Yates from the end, `⌊random · counter⌋`.
pub fn shuffle<T>(v: &mut [T], random: &mut dyn FnMut() -> f64) {
    let mut counter = v.len();
    while counter > 0 {
        let index = (random() * counter as f64).floor() as usize;
        counter -= 1;
        v.swap(counter, index);
    }
}

/// One of the Playground's input features of a point `(x₁, x₂)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feature {
    X1,
    X2,
    X1Squared,
    X2Squared,
    X1X2,
    SinX1,
    SinX2,
}

impl Feature {
    pub const NAMES: &'static [&'static str] = &["x1", "x2", "x1^2", "x2^2", "x1*x2", "sin(x1)", "sin(x2)"];
    const ALL: [Feature; 7] = [
        Feature::X1,
        Feature::X2,
        Feature::X1Squared,
        Feature::X2Squared,
        Feature::X1X2,
        Feature::SinX1,
        Feature::SinX2,
    ];

    pub fn parse(name: &str) -> Result<Feature, String> {
        match Feature::NAMES.iter().position(|n| *n == name) {
            Some(i) => Ok(Feature::ALL[i]),
            None => {
                let hint = crate::names::did_you_mean(name, Feature::NAMES);
                Err(format!("unknown feature `{name}`{hint} (known: {})", Feature::NAMES.join(", ")))
            }
        }
    }

    pub fn of(self, x1: f64, x2: f64) -> f64 {
        match self {
            Feature::X1 => x1,
            Feature::X2 => x2,
            Feature::X1Squared => x1 * x1,
            Feature::X2Squared => x2 * x2,
            Feature::X1X2 => x1 * x2,
            Feature::SinX1 => x1.sin(),
            Feature::SinX2 => x2.sin(),
        }
    }
}

/// Rows of `[x₁, x₂]` (row-major `[n, 2]`) as rows of `features`.
pub fn transform(points: &[f32], features: &[Feature]) -> Vec<f32> {
    points.chunks_exact(2).flat_map(|p| features.iter().map(move |f| f.of(p[0] as f64, p[1] as f64) as f32)).collect()
}

/// Samples of `[x₁, x₂]` with the Playground's targets.
fn samples(points: &[[f64; 3]], regression: bool, source: String) -> Samples {
    let x: Vec<f32> = points.iter().flat_map(|p| [p[0] as f32, p[1] as f32]).collect();
    let mut targets = vec![];
    if regression {
        targets.push(Target {
            name: "y".into(),
            values: points.iter().map(|p| p[2] as f32).collect(),
            width: 1,
            classes: None,
        });
    } else {
        let classes = points.iter().map(|p| if p[2] > 0.0 { 1.0 } else { 0.0 }).collect();
        targets.push(Target { name: "y".into(), values: classes, width: 1, classes: Some(2) });
        targets.push(Target {
            name: "label".into(),
            values: points.iter().map(|p| p[2] as f32).collect(),
            width: 1,
            classes: None,
        });
    }
    Samples { x, shape: vec![2], n: points.len(), targets, source }
}

/// `n` points of `kind` drawn from `seed`, shuffled and split as the Playground does: the first
/// `⌊n · train_ratio⌋` train, the rest are held out (none when the ratio is 1).
pub fn generate(kind: Playground, n: usize, noise: f64, train_ratio: f64, seed: u64) -> (Samples, Option<Samples>) {
    let mut rng = SeededRng::new(seed);
    let mut random = || rng.uniform();
    let mut points = kind.points(n, noise, &mut random);
    shuffle(&mut points, &mut random);
    let split = ((points.len() as f64 * train_ratio).floor() as usize).clamp(1, points.len());
    let source = |part: &str| format!("built-in generator {} ({part}), noise {noise}, seed {seed}", kind.name());
    let train = samples(&points[..split], kind.regression(), source("training"));
    let held = (split < points.len()).then(|| samples(&points[split..], kind.regression(), source("held out")));
    (train, held)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scripted `Math.random`: the given values in turn.
    fn script(values: &[f64]) -> impl FnMut() -> f64 + '_ {
        let mut i = 0;
        move || {
            i += 1;
            values[i - 1]
        }
    }

    #[test]
    fn each_generator_is_the_playground_formula_draw_by_draw() {
        let pi = std::f64::consts::PI;
        // circle, 2 points, noise 0.1: one inside (r ∈ [0, 2.5)), one outside (r ∈ [3.5, 5)).
        // Draws per point: r, angle, noise x, noise y.
        let d = [0.5, 0.25, 0.5, 0.5, 0.0, 0.75, 1.0 - 1e-12, 0.5];
        let p = circle(2, 0.1, &mut script(&d));
        let (r0, a0) = (1.25, 0.5 * pi);
        assert!((p[0][0] - r0 * a0.sin()).abs() < 1e-12 && (p[0][1] - r0 * a0.cos()).abs() < 1e-12);
        assert_eq!(p[0][2], 1.0); // noise 0: inside the circle of radius 2.5
        let (r1, a1) = (3.5, 1.5 * pi);
        assert!((p[1][0] - r1 * a1.sin()).abs() < 1e-12 && (p[1][1] - r1 * a1.cos()).abs() < 1e-9);
        // its label is judged at the noisy point: x − 3.5 + 0.5 = −3.0 + (−5 + 10·(1−1e-12))·0.1
        assert_eq!(p[1][2], -1.0);
        // A noisy label flips: a point inside at r = 2.4 pushed out by noise 0.5·5 = 2.5.
        let flipped = circle(1, 0.5, &mut script(&[0.96, 0.25, 1.0 - 1e-12, 0.5, 0.8, 0.0, 0.5, 0.5]));
        assert_eq!(flipped[0][2], -1.0);

        // xor: padding 0.3 away from zero, label from the noisy point's quadrant.
        let p = xor(1, 0.0, &mut script(&[0.7, 0.2, 0.5, 0.5]));
        assert!((p[0][0] - 2.3).abs() < 1e-12 && (p[0][1] - (-3.3)).abs() < 1e-12 && p[0][2] == -1.0);
        let p = xor(1, 0.5, &mut script(&[0.7, 0.6, 0.0, 0.5]));
        // x = 2.3, y = 1.3; noise x = −5·0.5 = −2.5 → (−0.2)·1.3 < 0 → −1
        assert_eq!(p[0][2], -1.0);

        // gauss: variance 0.5 + noise/0.5·3.5; polar method with a rejected pair first.
        let p = two_gauss(2, 0.1, &mut script(&[0.99, 0.99, 0.75, 0.5, 0.5, 0.75, 0.25, 0.5, 0.5, 0.25]));
        let variance: f64 = 0.5 + 0.2 * 3.5;
        let polar = |v1: f64, v2: f64| {
            let s = v1 * v1 + v2 * v2;
            (-2.0 * f64::ln(s) / s).sqrt() * v1
        };
        assert!((p[0][0] - (2.0 + variance.sqrt() * polar(0.5, 0.0))).abs() < 1e-12);
        assert!((p[0][1] - (2.0 + variance.sqrt() * polar(0.0, 0.5))).abs() < 1e-12);
        assert!((p[1][0] - (-2.0 + variance.sqrt() * polar(-0.5, 0.0))).abs() < 1e-12);
        assert_eq!((p[0][2], p[1][2]), (1.0, -1.0));

        // spiral: point i of n/2 at r = 5i/(n/2), t = 1.75·2π·i/(n/2) (+π for the second arm).
        let d = [0.5; 8];
        let p = spiral(4, 0.3, &mut script(&d));
        let (r, t) = (2.5, 1.75 * 0.5 * 2.0 * pi);
        assert!((p[1][0] - r * t.sin()).abs() < 1e-12 && (p[1][1] - r * t.cos()).abs() < 1e-12);
        assert!((p[3][0] - r * (t + pi).sin()).abs() < 1e-12 && p[3][2] == -1.0 && p[0][2] == 1.0);
        assert_eq!((p[0][0], p[0][1]), (0.0, 0.0));

        // plane: (x + y)/10 at the noisy point.
        let p = regression(1, 0.5, &mut script(&[0.75, 0.25, 1.0, 0.5]), plane_label);
        // x = 3, y = −3; noise x = 6·0.5 = 3 → (6 − 3)/10
        assert!((p[0][0] - 3.0).abs() < 1e-12 && (p[0][1] + 3.0).abs() < 1e-12 && (p[0][2] - 0.3).abs() < 1e-12);

        // multi_gaussian: at a bump's centre its sign; one unit away half of it; far away 0.
        assert_eq!(multi_gaussian_label(0.0, 2.5), -1.0);
        assert!((multi_gaussian_label(4.0, -1.5) + 0.5).abs() < 1e-12);
        assert_eq!(multi_gaussian_label(2.0, 0.0), 0.0);
        let p = regression(1, 0.0, &mut script(&[1.0 / 6.0, 17.0 / 24.0, 0.5, 0.5]), multi_gaussian_label);
        assert!((p[0][0] + 4.0).abs() < 1e-12 && (p[0][2] - 1.0).abs() < 1e-9, "{p:?}");
    }

    #[test]
    fn shuffle_and_split_follow_the_playground() {
        // Fisher–Yates from the end: counter 3 picks ⌊0.9·3⌋ = 2 (swap 2↔2), counter 2 picks 0.
        let mut v = [10, 20, 30];
        shuffle(&mut v, &mut script(&[0.9, 0.1, 0.0]));
        assert_eq!(v, [20, 10, 30]);
        let (train, held) = generate(Playground::Spiral, 500, 0.0, 0.5, 3);
        let held = held.unwrap();
        assert_eq!((train.n, held.n, train.shape.clone()), (250, 250, vec![2]));
        let ones = train.target("y").unwrap().values.iter().filter(|&&v| v == 1.0).count()
            + held.target("y").unwrap().values.iter().filter(|&&v| v == 1.0).count();
        assert_eq!(ones, 250, "the two arms of 250 points each");
        let (x, _) = generate(Playground::Spiral, 500, 0.0, 0.5, 3);
        assert_eq!(x.x, train.x, "a seed gives the same data");
        let (other, _) = generate(Playground::Spiral, 500, 0.0, 0.5, 4);
        assert_ne!(other.x, train.x);
        let (all, none) = generate(Playground::Plane, 1200, 0.0, 1.0, 0);
        assert!(none.is_none() && all.n == 1200 && all.target("y").unwrap().classes.is_none());
        assert!(all.x.iter().all(|v| v.abs() <= DOMAIN as f32));
    }

    #[test]
    fn features_are_the_playground_inputs() {
        let fs: Vec<Feature> = Feature::NAMES.iter().map(|n| Feature::parse(n).unwrap()).collect();
        let out = transform(&[2.0, -3.0], &fs);
        let want = [2.0, -3.0, 4.0, 9.0, -6.0, 2f64.sin() as f32, (-3f64).sin() as f32];
        assert_eq!(out, want);
        assert!(Feature::parse("sinx1").unwrap_err().contains("did you mean `sin(x1)`"));
    }
}

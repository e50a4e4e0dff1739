//! Landscapes: the engine's gradients on the (w, b) grid against closed forms (sigmoid) and
//! finite differences (every activation), the stable cross-entropy everywhere, and the finding.

use gradlab::activations::Activation;
use gradlab::experiments::landscape::{LandscapeConfig, compute, key_values};

fn cfg(act: Activation, x: f64, y: f64, range: f64, points: usize) -> LandscapeConfig {
    LandscapeConfig { act, x, y, w_range: (-range, range), b_range: (-range, range), points }
}

#[test]
fn sigmoid_gradients_match_the_closed_forms() {
    let (x, y) = (0.7, 0.3);
    let l = compute(&cfg(Activation::Sigmoid, x, y, 6.0, 41)).unwrap();
    let [ce, dce_dw, dce_db] = l.ce.as_ref().expect("sigmoid has CE");
    for (ib, &b) in l.bs.iter().enumerate() {
        for (iw, &w) in l.ws.iter().enumerate() {
            let i = ib * l.ws.len() + iw;
            let s = 1.0 / (1.0 + (-(w * x + b)).exp());
            let close = |got: f64, want: f64, what: &str| {
                assert!((got - want).abs() <= 1e-12 * (1.0 + want.abs()), "{what} at ({w}, {b}): {got} vs {want}")
            };
            close(l.output[i], s, "ŷ");
            close(l.l2[i], (s - y).powi(2), "L2");
            close(l.dl2_dw[i], 2.0 * (s - y) * s * (1.0 - s) * x, "∂L2/∂w");
            close(l.dl2_db[i], 2.0 * (s - y) * s * (1.0 - s), "∂L2/∂b");
            close(ce[i], -(y * s.ln() + (1.0 - y) * (1.0 - s).ln()), "CE");
            close(dce_dw[i], (s - y) * x, "∂CE/∂w");
            close(dce_db[i], s - y, "∂CE/∂b");
        }
    }
}

#[test]
fn every_activation_matches_finite_differences_on_the_grid() {
    let (x, y) = (1.3, 0.5);
    for act in Activation::all() {
        let l = compute(&cfg(act, x, y, 2.0, 12)).unwrap();
        let loss = |w: f64, b: f64| (act.apply(w * x + b) - y).powi(2);
        for (ib, &b) in l.bs.iter().enumerate() {
            for (iw, &w) in l.ws.iter().enumerate() {
                if (w * x + b).abs() < 1e-3 {
                    continue; // a kink of relu-like activations
                }
                let i = ib * l.ws.len() + iw;
                let h = 1e-6;
                let fd_w = (loss(w + h, b) - loss(w - h, b)) / (2.0 * h);
                let fd_b = (loss(w, b + h) - loss(w, b - h)) / (2.0 * h);
                assert!(
                    (l.dl2_dw[i] - fd_w).abs() <= 1e-6 * (1.0 + fd_w.abs()),
                    "{act} ∂L2/∂w at ({w}, {b}): {} vs {fd_w}",
                    l.dl2_dw[i]
                );
                assert!(
                    (l.dl2_db[i] - fd_b).abs() <= 1e-6 * (1.0 + fd_b.abs()),
                    "{act} ∂L2/∂b at ({w}, {b}): {} vs {fd_b}",
                    l.dl2_db[i]
                );
            }
        }
        assert_eq!(l.ce.is_some(), act == Activation::Sigmoid, "{act}: CE only where ŷ ∈ (0, 1)");
    }
}

#[test]
fn cross_entropy_is_finite_everywhere_even_far_out() {
    let l = compute(&cfg(Activation::Sigmoid, 1.0, 0.5, 200.0, 101)).unwrap();
    let [ce, dw, db] = l.ce.as_ref().unwrap();
    assert!(ce.iter().chain(dw).chain(db).all(|v| v.is_finite()));
    // At w = b = 200 the logit is 400: CE = softplus(400) − 0.5·400 = 200.
    let k = l.nearest(200.0, 200.0).unwrap();
    assert!((ce[k] - 200.0).abs() < 1e-9, "{}", ce[k]);
}

#[test]
fn the_reports_finding_is_read_off_the_grid() {
    let l = compute(&cfg(Activation::Sigmoid, 1.0, 0.5, 6.0, 100)).unwrap();
    let k = key_values(&l);
    assert!((k.probe.0 - 5.0).abs() < 0.07 && (k.probe.1 - 5.0).abs() < 0.07);
    assert!(k.dl2_dw_fraction_of_max < 1e-3, "L2 gradient at (5, 5) is {} of max", k.dl2_dw_fraction_of_max);
    assert!(k.dce_dw_fraction_of_max.unwrap() > 0.99, "CE gradient at (5, 5) is {:?} of max", k.dce_dw_fraction_of_max);
    let t = k.dl2_dw_below_1pct_on_diagonal_from.expect("L2 saturates on the diagonal");
    // 2(σ−½)σ(1−σ) with σ = σ(2t) falls below 1% of its maximum 0.0962 near t ≈ 3.6.
    assert!((3.3..3.9).contains(&t), "{t}");
    assert_eq!(k.dce_dw_below_1pct_on_diagonal_from, None);
}

#[test]
fn bad_configurations_are_refused() {
    assert!(compute(&cfg(Activation::Sigmoid, 1.0, 0.5, 6.0, 1)).is_err());
    assert!(
        compute(&cfg(Activation::Sigmoid, 1.0, 0.5, 6.0, 5000)).unwrap_err().to_string().contains("between 2 and 4000")
    );
    let mut c = cfg(Activation::Sigmoid, 1.0, 0.5, 6.0, 10);
    c.w_range = (1.0, -1.0);
    assert!(compute(&c).unwrap_err().to_string().contains("A < B"));
}

//! `gradlab check FILE.toml`: a network's gradients against finite differences, the way
//! gradlab's own tests prove theirs. The network is built in f64 for one model on the first
//! few training samples, at its initial parameters (from its seed, or `train.init`); for each
//! parameter tensor, a spread of elements is perturbed by ±h and the loss's central difference
//! compared with backpropagation. Where the loss has a kink at the point (ReLU at exactly 0, a
//! max-pool tie), the gradient must lie between the two one-sided differences (a subgradient).
//! A network whose training differs from its evaluation (BatchNorm's batch statistics, dropout,
//! Gaussian noise) is checked in both modes: in training mode through one fixed draw of its
//! noise, from the seed's stream.

use crate::data::Samples;
use crate::engine::{NodeId, Op};
use crate::error::Result;
use crate::models::{Init, Net, spec::NetworkSpec};
use serde::Serialize;

/// The verdict for one parameter tensor.
#[derive(Clone, Debug, Serialize)]
pub struct TensorCheck {
    pub name: String,
    /// `evaluation` or `training`.
    pub mode: &'static str,
    pub shape: Vec<usize>,
    /// Elements compared.
    pub checked: usize,
    /// Of those, elements at a kink, judged by the one-sided differences.
    pub at_kink: usize,
    /// Largest |backprop − central difference| / (max(|backprop|, |difference|) + noise), where
    /// noise = 100·ε·max(|loss|, 1)/h is the rounding floor of a difference quotient.
    pub max_rel_error: f64,
    pub max_abs_error: f64,
    pub ok: bool,
}

/// Relative agreement required of a central difference in f64 (its error is ~h² and ~ε/h).
pub const TOLERANCE: f64 = 1e-6;
/// Step, relative to the parameter's size.
const STEP: f64 = 1e-5;

/// Checks up to `per_tensor` elements of every parameter tensor of `spec` on the first
/// `samples` samples of `data`.
pub fn check(
    spec: &NetworkSpec,
    data: &Samples,
    init: &Init,
    init_from: Option<&std::path::Path>,
    samples: usize,
    per_tensor: usize,
) -> Result<Vec<TensorCheck>> {
    let batch = samples.min(data.n).max(1);
    let mut net: Net<f64> = crate::models::spec::build(spec, data, 1, batch)?;
    net.init(init);
    if let Some(path) = init_from {
        crate::models::params::load_all(&mut net, path)?;
    }
    let indices: Vec<usize> = (0..batch).collect();
    net.feed(data, &indices);
    let modes_differ =
        (0..net.graph.len()).any(|i| matches!(net.graph.op(NodeId(i)), Op::BatchNorm { .. } | Op::Noise { .. }));
    let mut out = check_mode(&mut net, per_tensor, "evaluation");
    if modes_differ {
        let mut rng = crate::init::SeededRng::new(init.seeds[0] ^ 0x5eed_c0de);
        net.graph.draw_noise(|| rng.uniform());
        net.graph.set_training(true);
        out.extend(check_mode(&mut net, per_tensor, "training"));
    }
    Ok(out)
}

/// Every parameter tensor of the fed `net` in the graph's current mode.
fn check_mode(net: &mut Net<f64>, per_tensor: usize, mode: &'static str) -> Vec<TensorCheck> {
    net.graph.forward();
    net.graph.backward(net.loss);
    let loss = |net: &mut Net<f64>| {
        net.graph.forward();
        net.graph.value(net.loss)[0]
    };
    let mid_loss = net.graph.value(net.loss)[0];
    let mut out = vec![];
    for (name, id, _) in net.params.clone() {
        let grad = net.graph.grad(id).to_vec();
        let n = grad.len();
        let picks: Vec<usize> =
            if n <= per_tensor { (0..n).collect() } else { (0..per_tensor).map(|k| k * n / per_tensor).collect() };
        let mut c = TensorCheck {
            name,
            mode,
            shape: net.graph.shape(id)[1..].to_vec(),
            checked: picks.len(),
            at_kink: 0,
            max_rel_error: 0.0,
            max_abs_error: 0.0,
            ok: true,
        };
        for i in picks {
            let p0 = net.graph.value(id)[i];
            let h = STEP * p0.abs().max(1.0);
            net.graph.value_mut(id)[i] = p0 + h;
            let up = loss(net);
            net.graph.value_mut(id)[i] = p0 - h;
            let down = loss(net);
            net.graph.value_mut(id)[i] = p0;
            let mid = loss(net);
            let central = (up - down) / (2.0 * h);
            let g = grad[i];
            let abs = (g - central).abs();
            let noise = 100.0 * f64::EPSILON * mid_loss.abs().max(1.0) / h;
            let rel = abs / (g.abs().max(central.abs()) + noise);
            // Below the rounding floor (a gradient that is exactly 0, as a bias before BatchNorm's
            // mean subtraction in training) the quotient cannot tell them apart: a pass.
            if rel > TOLERANCE && abs > noise {
                // A kink: the one-sided slopes differ; backprop must return one of them or a
                // value between (a subgradient).
                let (left, right) = ((mid - down) / h, (up - mid) / h);
                let slack = 1e-4 * left.abs().max(right.abs()).max(1e-6);
                if (left - right).abs() > slack && g >= left.min(right) - slack && g <= left.max(right) + slack {
                    c.at_kink += 1;
                    continue;
                }
                c.ok = false;
            }
            c.max_rel_error = c.max_rel_error.max(rel);
            c.max_abs_error = c.max_abs_error.max(abs);
        }
        out.push(c);
    }
    out
}

/// A table of the verdicts.
pub fn table(checks: &[TensorCheck]) -> String {
    let mut s = format!(
        "{:<24} {:<10} {:<18} {:>7} {:>6} {:>12} {:>12}  verdict\n",
        "parameter", "mode", "shape", "checked", "kinks", "max rel err", "max abs err"
    );
    for c in checks {
        s.push_str(&format!(
            "{:<24} {:<10} {:<18} {:>7} {:>6} {:>12.2e} {:>12.2e}  {}\n",
            c.name,
            c.mode,
            format!("{:?}", c.shape),
            c.checked,
            c.at_kink,
            c.max_rel_error,
            c.max_abs_error,
            if c.ok { "ok" } else { "MISMATCH" }
        ));
    }
    s
}

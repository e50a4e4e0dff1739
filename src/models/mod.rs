//! Networks built on the engine. Each model lists its weights and biases so that one
//! initialiser serves them all.

pub mod fc;

use crate::engine::{Graph, NodeId, Real};
use crate::init::SeededRng;

/// How the ensemble's parameters start: one seed and one weight std per model.
#[derive(Clone, Debug)]
pub struct Init {
    pub seeds: Vec<u64>,
    pub weight_std: Vec<f64>,
    pub bias: f64,
}

impl Init {
    /// Seeds `first..first+n`, the same std for all.
    pub fn seeds(first: u64, n: usize, weight_std: f64, bias: f64) -> Init {
        Init {
            seeds: (first..first + n as u64).collect(),
            weight_std: vec![weight_std; n],
            bias,
        }
    }
}

/// Weights: truncated normal (redrawn beyond 2 std), drawn from the model's own seed, in the
/// order `weights` lists them, row-major in PyTorch layout. Biases: the constant `init.bias`.
pub fn init_params<T: Real>(
    graph: &mut Graph<T>,
    weights: &[NodeId],
    biases: &[NodeId],
    init: &Init,
) {
    let e_count = graph.ensemble();
    assert_eq!(init.seeds.len(), e_count, "one seed per model");
    assert_eq!(init.weight_std.len(), e_count, "one std per model");
    for e in 0..e_count {
        let mut rng = SeededRng::new(init.seeds[e]);
        for &w in weights {
            let values = graph.value_mut(w);
            let n = values.len() / e_count;
            for v in &mut values[e * n..(e + 1) * n] {
                *v = T::from_f64(rng.truncated_normal(init.weight_std[e]));
            }
        }
    }
    for &b in biases {
        graph.value_mut(b).fill(T::from_f64(init.bias));
    }
}

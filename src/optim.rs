//! Plain stochastic gradient descent with one learning rate per ensemble member.

use crate::engine::{Graph, Real};

/// `p[e] ← p[e] − lr[e]·∂loss[e]/∂p[e]` for every parameter. A zero rate freezes a model
/// (skipped, so a non-finite gradient of a stopped model never reaches its parameters).
pub fn sgd_step<T: Real>(graph: &mut Graph<T>, lr: &[T]) {
    assert_eq!(lr.len(), graph.ensemble(), "one learning rate per model");
    for p in graph.params() {
        let (values, grads) = graph.param_and_grad_mut(p);
        let per_model = values.len() / lr.len();
        for ((vs, gs), &rate) in values.chunks_exact_mut(per_model).zip(grads.chunks_exact(per_model)).zip(lr) {
            if rate == T::default() {
                continue;
            }
            for (v, &g) in vs.iter_mut().zip(gs) {
                *v -= rate * g;
            }
        }
    }
}

//! Curvature of the training loss, for every model of an ensemble at once.
//!
//! - [`Hvp`]: exact Hessian-vector products, forward-over-reverse: a twin of the net in
//!   `Dual<f64>` carries a direction in its parameters' tangents, and its gradients' tangents
//!   are `Hv` (no difference step, no kink trouble with ReLU: a branch follows the point).
//! - [`lanczos`]: Lanczos with full reorthogonalisation — the extreme eigenvalues at both ends
//!   (the sharpness, and λmin of an indefinite Hessian), warm-startable, to a residual
//!   tolerance; stochastic Lanczos quadrature for the spectral density (PyHessian's `density`).
//! - [`trace`]: Hutchinson's trace estimator (PyHessian's `trace`), with its standard error.
//! - [`eigen`]: symmetric eigenpairs — Lanczos's tridiagonal matrices by implicit QL, dense
//!   ones by Jacobi (the full Hessian of small nets, [`full_hessian`]).

pub mod eigen;
pub mod lanczos;
pub mod trace;

use crate::engine::scalar::Dual;
use crate::engine::{NodeId, Real};
use crate::models::Net;

/// One vector per model, each with every parameter of that model, in `Net::params` order.
pub type Vectors = Vec<Vec<f64>>;

/// Hessian-vector products of every model's training loss at the point last given to [`Hvp::at`].
pub struct Hvp {
    net: Net<Dual<f64>>,
    /// Each parameter's node and its size per model.
    params: Vec<(NodeId, usize)>,
    /// Every data node (inputs and targets) and state (BatchNorm's running estimates), copied
    /// from the net at each `at`.
    inputs: Vec<NodeId>,
    /// Parameters per model.
    pub dim: usize,
    /// Products computed so far.
    pub products: usize,
}

impl Hvp {
    pub fn new<T: Real>(net: &Net<T>) -> Hvp {
        let twin = net.convert(|x| Dual { v: x.to_f64(), d: 0.0 });
        let e = net.graph.ensemble();
        let params: Vec<(NodeId, usize)> =
            net.params.iter().map(|(_, id, _)| (*id, net.graph.value(*id).len() / e)).collect();
        let inputs = (0..net.graph.len())
            .map(NodeId)
            .filter(|&id| matches!(net.graph.op(id), crate::engine::Op::Input | crate::engine::Op::State))
            .collect();
        let dim = params.iter().map(|p| p.1).sum();
        Hvp { net: twin, params, inputs, dim, products: 0 }
    }

    pub fn ensemble(&self) -> usize {
        self.net.graph.ensemble()
    }

    /// Takes the net's current parameters and fed data (the point the Hessian is taken at).
    pub fn at<T: Real>(&mut self, net: &Net<T>) {
        for id in self.inputs.iter().chain(self.params.iter().map(|p| &p.0)) {
            for (d, s) in self.net.graph.value_mut(*id).iter_mut().zip(net.graph.value(*id)) {
                *d = Dual { v: s.to_f64(), d: 0.0 };
            }
        }
    }

    /// `H_m·v[m]` for every model `m` (one forward and backward pass of the twin).
    pub fn apply(&mut self, v: &[Vec<f64>]) -> Vectors {
        let e = self.ensemble();
        assert!(v.len() == e && v.iter().all(|x| x.len() == self.dim), "one vector of {} per model", self.dim);
        let mut offset = 0;
        for &(id, n) in &self.params {
            let vals = self.net.graph.value_mut(id);
            for (m, vm) in v.iter().enumerate() {
                for (x, &d) in vals[m * n..(m + 1) * n].iter_mut().zip(&vm[offset..offset + n]) {
                    x.d = d;
                }
            }
            offset += n;
        }
        self.net.graph.forward();
        self.net.graph.backward(self.net.loss);
        self.products += 1;
        self.gather(|x| x.d)
    }

    /// Every model's loss and gradient at the point.
    pub fn gradient(&mut self) -> (Vec<f64>, Vectors) {
        let zeros = vec![vec![0.0; self.dim]; self.ensemble()];
        let _ = self.apply(&zeros);
        let loss = self.net.graph.value(self.net.loss).iter().map(|x| x.v).collect();
        (loss, self.gather(|x| x.v))
    }

    fn gather(&self, part: impl Fn(&Dual<f64>) -> f64) -> Vectors {
        let e = self.ensemble();
        let mut out = vec![Vec::with_capacity(self.dim); e];
        for &(id, n) in &self.params {
            let g = self.net.graph.grad(id);
            for (m, o) in out.iter_mut().enumerate() {
                o.extend(g[m * n..(m + 1) * n].iter().map(&part));
            }
        }
        out
    }
}

/// The full Hessian of model 0's loss (`P × P`, row-major), one exact product per column,
/// symmetrised (the products are symmetric to rounding). For small networks.
pub fn full_hessian(hvp: &mut Hvp) -> Vec<f64> {
    let (p, e) = (hvp.dim, hvp.ensemble());
    let mut h = vec![0.0; p * p];
    let mut v = vec![vec![0.0; p]; e];
    for c in 0..p {
        v[0][c] = 1.0;
        let col = hvp.apply(&v);
        v[0][c] = 0.0;
        for r in 0..p {
            h[r * p + c] = col[0][r];
        }
    }
    for r in 0..p {
        for c in r + 1..p {
            let s = 0.5 * (h[r * p + c] + h[c * p + r]);
            h[r * p + c] = s;
            h[c * p + r] = s;
        }
    }
    h
}

/// `Σ aᵢbᵢ`.
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// `a ← a + c·b`.
pub fn axpy(a: &mut [f64], c: f64, b: &[f64]) {
    a.iter_mut().zip(b).for_each(|(x, y)| *x += c * y);
}

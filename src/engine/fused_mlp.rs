//! One hidden layer on a shared input — `x → dense → activation → dense (one output) →
//! [activation] → sigmoid cross-entropy or squared error`, biases per unit or per sample:
//! Task 2's fc73 (both variants) and any such network from a file — run model by model instead
//! of operation by operation.
//!
//! The tape runs each operation over the whole ensemble, so between two operations every
//! model's activations and gradients leave L1, each product is a call per layer, and each step
//! pays for every model, also those that have stopped. Here a run of up to four consecutive
//! models goes through the first layer's products together (one model's weight gradient is a
//! chain of dependent FMAs: latency-bound alone), everything else model by model in L1, the
//! output layer in registers; gradients are written, not cleared and added to; and the models
//! to run can be chosen (`Graph::forward_models`): a training run skips the seeds that have
//! stopped. Measured: ×1.2–1.35 on the tape at E = 32 (`gradlab bench`), and Table 1 with
//! 1 024 seeds computes 21 M model-steps instead of 37 M.
//!
//! Every number is made by the operations the tape's kernels do, in their order — the same
//! SIMD products (`gemm_simd`), activation and loss code on one model's slab (`loss_simd` for
//! sigmoid cross-entropy), and `0 + g·d`
//! where the tape adds into a cleared buffer — and every buffer the tape writes is written
//! (values, saved derivatives, gradients), so nothing downstream can tell: tested bit for bit
//! against the tape. Used for f32 where the SIMD kernels run, with a batch that is a multiple
//! of 16, at least 16 input features, and products small enough for the tape's direct kernels.

// Models are indexed across several buffers at once: index loops say so more plainly.
#![allow(clippy::needless_range_loop)]

use super::gemm::SMALL;
use super::graph::{Graph, NodeId, Op, Reduction};
use super::real::Real;
use super::simd::{as_f32, as_f32_mut};
use super::{elementwise, gemm_simd, loss};
use crate::engine::activations::Activation;

/// The recognised network: its nodes, sizes, and the input transposed (once per new input).
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    x: NodeId,
    targets: NodeId,
    w1: NodeId,
    b1: NodeId,
    pre: NodeId,
    hidden: NodeId,
    act: Activation,
    w2: NodeId,
    b2: NodeId,
    logits: NodeId,
    /// The output activation and its node, if any.
    output: Option<(NodeId, Activation)>,
    pub(crate) loss: NodeId,
    /// `Some(scale)` for squared error, `None` for sigmoid cross-entropy.
    squared_error: Option<f64>,
    reduction: Reduction,
    features: usize,
    width: usize,
    batch: usize,
    /// One bias per sample in both layers (`[E, H, B]`, `[E, 1, B]`: the original Task 2 code's
    /// variant) instead of per unit.
    per_sample: bool,
    /// `x` transposed, `[B, F]`: the layout of the weight gradient's product.
    xt: Vec<f32>,
    /// Whether `xt` is `x`'s transpose: false after any `Graph::value_mut` (a full-batch run
    /// feeds once, so its forwards skip the transpose; measured: a tenth of a 16-model step).
    xt_valid: bool,
}

impl Plan {
    pub(crate) fn touched(&mut self) {
        self.xt_valid = false;
    }
}

/// The plan for `g` if it is exactly such a network (and the SIMD kernels run), else `None`.
pub(crate) fn plan<T: Real>(g: &Graph<T>) -> Option<Plan> {
    if std::any::TypeId::of::<T>() != std::any::TypeId::of::<f32>() || !super::simd::enabled() {
        return None;
    }
    let e = g.ensemble();
    // The computed nodes, in order (at most 5 for a network this path covers). Planning
    // happens in the first forward, so it allocates nothing for the networks it rejects.
    let mut computed = [(NodeId(0), &Op::Input); 5];
    let mut count = 0;
    for id in (0..g.len()).map(NodeId).filter(|&id| !matches!(g.op(id), Op::Input | Op::Param)) {
        if count == computed.len() {
            return None;
        }
        computed[count] = (id, g.op(id));
        count += 1;
    }
    let (pre, hidden, logits, rest) = match &computed[..count] {
        [(pre, Op::Dense { .. }), (hidden, Op::Activation { .. }), (logits, Op::Dense { .. }), rest @ ..] => {
            (*pre, *hidden, *logits, rest)
        }
        _ => return None,
    };
    let Op::Dense { x, w: w1, b: Some(b1) } = *g.op(pre) else { return None };
    let Op::Activation { x: into_act, act } = *g.op(hidden) else { return None };
    let Op::Dense { x: into_out, w: w2, b: Some(b2) } = *g.op(logits) else { return None };
    let (output, loss, pred, targets, squared_error, reduction) = match rest {
        [(out, Op::Activation { x: o, act: a }), (loss, Op::SquaredError { pred, targets, scale, reduction })]
            if *o == logits && pred == out =>
        {
            (Some((*out, *a)), *loss, *pred, *targets, Some(*scale), *reduction)
        }
        [(loss, Op::SquaredError { pred, targets, scale, reduction })] => {
            (None, *loss, *pred, *targets, Some(*scale), *reduction)
        }
        [(loss, Op::SigmoidCrossEntropy { logits: l, targets, reduction })] => {
            (None, *loss, *l, *targets, None, *reduction)
        }
        _ => return None,
    };
    let (xs, ts) = (g.shape(x), g.shape(targets));
    if xs.len() != 3 || xs[0] != 1 || !matches!(g.op(x), Op::Input) || !matches!(g.op(targets), Op::Input) {
        return None;
    }
    let (features, batch, width) = (xs[1], xs[2], g.shape(w1)[1]);
    let shapes_fit = into_act == pre
        && into_out == hidden
        && (output.is_some() || pred == logits)
        && ts == [1, 1, batch]
        && (g.shape(b1) == [e, width] && g.shape(b2) == [e, 1]
            || g.shape(b1) == [e, width, batch] && g.shape(b2) == [e, 1, batch])
        && g.shape(w2) == [e, 1, width]
        && [w1, b1, w2, b2].iter().all(|p| matches!(g.op(*p), Op::Param))
        && g.params().len() == 4;
    // Where the tape's products would take another kernel (matrixmultiply for large ones, the
    // dot kernel for the weight gradient of fewer than 16 features), the numbers would differ.
    let kernels_fit = features >= 16 && batch.is_multiple_of(16) && batch > 0 && width * features * batch < SMALL;
    (shapes_fit && kernels_fit).then(|| Plan {
        x,
        targets,
        w1,
        b1,
        pre,
        hidden,
        act,
        w2,
        b2,
        logits,
        output,
        loss,
        squared_error,
        reduction,
        features,
        width,
        batch,
        per_sample: g.shape(b1).len() == 3,
        xt: vec![0.0; features * batch],
        xt_valid: false,
    })
}

/// Models per run: consecutive models whose rows go through the first layer's products together.
const RUN: usize = 4;

/// `(first, count)` of the runs of consecutive flagged models, at most [`RUN`] long.
fn runs(models: Option<&[bool]>, e_count: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
    let on = move |e: usize| models.is_none_or(|m| m[e]);
    let mut e = 0;
    std::iter::from_fn(move || {
        while e < e_count && !on(e) {
            e += 1;
        }
        if e == e_count {
            return None;
        }
        let first = e;
        while e < e_count && on(e) && e - first < RUN {
            e += 1;
        }
        Some((first, e - first))
    })
}

/// One model's slab of a per-model buffer.
fn slab<T>(v: &[T], e: usize, n: usize) -> &[T] {
    &v[e * n..(e + 1) * n]
}

fn slab_mut<T>(v: &mut [T], e: usize, n: usize) -> &mut [T] {
    &mut v[e * n..(e + 1) * n]
}

fn f32s<T: Real>(v: &[T]) -> &[f32] {
    as_f32(v).expect("a plan exists only for f32")
}

fn f32s_mut<T: Real>(v: &mut [T]) -> &mut [f32] {
    as_f32_mut(v).expect("a plan exists only for f32")
}

/// Forward for the models flagged in `models` (all if `None`).
pub(crate) fn forward<T: Real>(g: &mut Graph<T>, p: &mut Plan, models: Option<&[bool]>) {
    let (f, h, b, e_count) = (p.features, p.width, p.batch, g.ensemble());
    let (values, saved) = g.buffers_mut();
    let mut pre = std::mem::take(&mut values[p.pre.0]);
    let mut hidden = std::mem::take(&mut values[p.hidden.0]);
    let mut logits = std::mem::take(&mut values[p.logits.0]);
    let mut out = p.output.map(|(o, _)| std::mem::take(&mut values[o.0]));
    let mut loss_v = std::mem::take(&mut values[p.loss.0]);
    let mut dhidden = std::mem::take(&mut saved[p.hidden.0]);
    let mut dout = p.output.map(|(o, _)| std::mem::take(&mut saved[o.0]));
    let mut loss_s = std::mem::take(&mut saved[p.loss.0]);
    let x = f32s(&values[p.x.0]);
    if !p.xt_valid {
        super::tensor::transpose(x, f, b, &mut p.xt);
        // The tape's dense node keeps the same transpose as its scratch.
        if let Some(dst) = as_f32_mut(&mut saved[p.pre.0]).filter(|s| s.len() == p.xt.len()) {
            dst.copy_from_slice(&p.xt);
        }
        p.xt_valid = true;
    }
    {
        let (w1, b1, w2, b2) =
            (f32s(&values[p.w1.0]), f32s(&values[p.b1.0]), f32s(&values[p.w2.0]), f32s(&values[p.b2.0]));
        let targets = f32s(&values[p.targets.0]);
        let (pre_f, hid_f, log_f) = (f32s_mut(&mut pre), f32s_mut(&mut hidden), f32s_mut(&mut logits));
        let (dhid_f, loss_f) = (f32s_mut(&mut dhidden), f32s_mut(&mut loss_v));
        let (dldp, terms) = f32s_mut(&mut loss_s).split_at_mut(e_count * b);
        let mut out_f = out.as_mut().zip(dout.as_mut()).map(|(o, d)| (f32s_mut(o), f32s_mut(d)));
        let ce_scale: f32 = loss::reduction_scale(p.reduction, b);
        for (first, n) in runs(models, e_count) {
            // pre = W1·x + b1 for the run's models (their rows are consecutive): the product,
            // then the bias added (as the dense node does); then the activation.
            let r = first * h..(first + n) * h;
            let pe = &mut pre_f[r.start * b..r.end * b];
            gemm_simd::axpy(n * h, f, b, &w1[r.start * f..r.end * f], [f, 1], x, b, 0.0, pe, b);
            let bias = if p.per_sample { &b1[r.start * b..r.end * b] } else { &b1[r.clone()] };
            super::dense::add_bias(pe, bias, b);
            elementwise::forward(p.act, pe, &mut hid_f[r.start * b..r.end * b], &mut dhid_f[r.start * b..r.end * b]);
            for e in first..first + n {
                let le = slab_mut(log_f, e, b);
                let bias = if p.per_sample { slab(b2, e, b) } else { &b2[e..e + 1] };
                output::forward(slab(w2, e, h), slab(hid_f, e, h * b), bias, le);
            }
            let o = first * b..(first + n) * b;
            if let (Some((out, d)), Some((_, a))) = (&mut out_f, p.output) {
                elementwise::forward(a, &log_f[o.clone()], &mut out[o.clone()], &mut d[o]);
            }
            for e in first..first + n {
                let pred = out_f.as_ref().map_or(&log_f[..], |(o, _)| &o[..]);
                let (de, te) = (slab_mut(dldp, e, b), slab_mut(terms, e, b));
                loss_f[e] = match p.squared_error {
                    None => super::loss_simd::sigmoid_cross_entropy(slab(pred, e, b), targets, ce_scale, de, te),
                    Some(_) => loss::model_loss(p.squared_error, slab(pred, e, b), targets, p.reduction, de, te),
                };
            }
        }
    }
    values[p.pre.0] = pre;
    values[p.hidden.0] = hidden;
    values[p.logits.0] = logits;
    values[p.loss.0] = loss_v;
    saved[p.hidden.0] = dhidden;
    saved[p.loss.0] = loss_s;
    if let (Some((o, _)), Some(v), Some(d)) = (p.output, out, dout) {
        values[o.0] = v;
        saved[o.0] = d;
    }
}

/// Backward from the plan's loss for the models flagged in `models` (all if `None`); the
/// gradients of the others are left as they were.
pub(crate) fn backward<T: Real>(g: &mut Graph<T>, p: &Plan, models: Option<&[bool]>) {
    let (f, h, b, e_count) = (p.features, p.width, p.batch, g.ensemble());
    let (values, saved, grads) = g.gradient_buffers_mut();
    grads[p.loss.0].fill(T::from_f64(1.0));
    let take = |grads: &mut [Vec<T>], id: NodeId| std::mem::take(&mut grads[id.0]);
    let (mut g_pre, mut g_hidden, mut g_logits) = (take(grads, p.pre), take(grads, p.hidden), take(grads, p.logits));
    let mut g_out = p.output.map(|(o, _)| take(grads, o));
    let (mut gw1, mut gb1, mut gw2, mut gb2) =
        (take(grads, p.w1), take(grads, p.b1), take(grads, p.w2), take(grads, p.b2));
    {
        let hidden = f32s(&values[p.hidden.0]);
        let w2 = f32s(&values[p.w2.0]);
        let dhidden = f32s(&saved[p.hidden.0]);
        let dldp = f32s(&saved[p.loss.0][..e_count * b]);
        let (g_pre, g_hidden, g_logits) = (f32s_mut(&mut g_pre), f32s_mut(&mut g_hidden), f32s_mut(&mut g_logits));
        let (gw1, gb1, gw2, gb2) = (f32s_mut(&mut gw1), f32s_mut(&mut gb1), f32s_mut(&mut gw2), f32s_mut(&mut gb2));
        for (first, n) in runs(models, e_count) {
            // The loss's gradient into its prediction, and through the output activation:
            // `0 + 1·∂ℓ/∂p`, then `0 + g·act′`, as the tape adds into cleared buffers.
            let o = first * b..(first + n) * b;
            let gl = &mut g_logits[o.clone()];
            match (&mut g_out, p.output) {
                (Some(go), Some((out, _))) => {
                    let go = &mut f32s_mut(go)[o.clone()];
                    for (gp, &d) in go.iter_mut().zip(&dldp[o.clone()]) {
                        *gp = 0.0 + 1.0 * d;
                    }
                    for ((g, &gp), &d) in gl.iter_mut().zip(go.iter()).zip(&f32s(&saved[out.0])[o]) {
                        *g = 0.0 + gp * d;
                    }
                }
                _ => {
                    for (g, &d) in gl.iter_mut().zip(&dldp[o]) {
                        *g = 0.0 + 1.0 * d;
                    }
                }
            }
            // Output layer, model by model: weight gradient (as the dot kernel), bias gradient
            // (a lane sum) and the gradient into the hidden units (as the axpy kernel), each
            // added to a zero as the tape does —
            // and on through the hidden activation to the first layer's bias gradient.
            for e in first..first + n {
                output::backward(
                    slab(g_logits, e, b),
                    slab(hidden, e, h * b),
                    slab(w2, e, h),
                    slab(dhidden, e, h * b),
                    OutputGradients {
                        w2: slab_mut(gw2, e, h),
                        b2: if p.per_sample { slab_mut(gb2, e, b) } else { &mut gb2[e..e + 1] },
                        hidden: slab_mut(g_hidden, e, h * b),
                        pre: slab_mut(g_pre, e, h * b),
                        b1: if p.per_sample { slab_mut(gb1, e, h * b) } else { slab_mut(gb1, e, h) },
                    },
                );
            }
            // The first layer's weight gradient for the whole run in one product: each
            // element's sum over the batch is one chain of dependent FMAs, so one model's few
            // rows would wait on latency (measured: half the speed).
            let r = first * h..(first + n) * h;
            let gw = &mut gw1[r.start * f..r.end * f];
            gw.fill(0.0);
            gemm_simd::axpy(n * h, b, f, &g_pre[r.start * b..r.end * b], [b, 1], &p.xt, f, 1.0, gw, f);
        }
    }
    grads[p.pre.0] = g_pre;
    grads[p.hidden.0] = g_hidden;
    grads[p.logits.0] = g_logits;
    if let (Some((o, _)), Some(v)) = (p.output, g_out) {
        grads[o.0] = v;
    }
    grads[p.w1.0] = gw1;
    grads[p.b1.0] = gb1;
    grads[p.w2.0] = gw2;
    grads[p.b2.0] = gb2;
}

/// One model's gradients that [`output::backward`] writes.
/// The biases' gradients are one per unit (`b2` 1, `b1` H long) or one per sample (B, H·B).
struct OutputGradients<'a> {
    w2: &'a mut [f32],
    b2: &'a mut [f32],
    hidden: &'a mut [f32],
    pre: &'a mut [f32],
    b1: &'a mut [f32],
}

/// The output layer of one model in registers, with the arithmetic of the kernels the tape
/// calls for it (their names below), lane by lane and in their order.
mod output {
    use super::OutputGradients;

    const L: usize = 16;

    /// `o = w2·h + b2`: the axpy kernel's chain over the hidden units from zero, then the bias
    /// (one, or one per sample).
    pub fn forward(w2: &[f32], hidden: &[f32], b2: &[f32], o: &mut [f32]) {
        let b = o.len();
        assert!(
            b.is_multiple_of(L) && hidden.len() == w2.len() * b && (b2.len() == 1 || b2.len() == b),
            "fused_mlp: output layer shapes"
        );
        // A plan exists only where `simd::enabled()` found a tier; shapes asserted.
        crate::engine::simd::dispatch!(kernels, forward(w2, hidden, b2, o))
    }

    /// From `go` (the gradient at the logits): `∂w2` (dot kernel: one lane per batch position
    /// mod 16, pairwise sum, `+ 1·0`), `∂b2` (`0 +` lane sum), `∂hidden` (axpy kernel with k = 1:
    /// `w2·go + 1·0`), `∂pre = 0 + ∂hidden·act′` and `∂b1` (`0 +` lane sum of each row).
    pub fn backward(go: &[f32], hidden: &[f32], w2: &[f32], dhidden: &[f32], out: OutputGradients) {
        let (b, h) = (go.len(), w2.len());
        assert!(
            b.is_multiple_of(L)
                && hidden.len() == h * b
                && dhidden.len() == h * b
                && out.w2.len() == h
                && out.hidden.len() == h * b
                && out.pre.len() == h * b
                && (out.b2.len() == 1 && out.b1.len() == h || out.b2.len() == b && out.b1.len() == h * b),
            "fused_mlp: output layer shapes"
        );
        crate::engine::simd::dispatch!(kernels, backward(go, hidden, w2, dhidden, out))
    }

    #[cfg(target_arch = "x86_64")]
    mod kernels {
        use super::{L, OutputGradients};
        use crate::engine::lanes::Lanes;

        crate::engine::simd::tiered! {
            fn forward(w2: &[f32], hidden: &[f32], b2: &[f32], o: &mut [f32]);
            fn backward(go: &[f32], hidden: &[f32], w2: &[f32], dhidden: &[f32], out: OutputGradients);
        }

        #[inline(always)]
        unsafe fn forward<V: Lanes>(w2: &[f32], hidden: &[f32], b2: &[f32], o: &mut [f32]) {
            let b = o.len();
            let mut c = 0;
            while c < b {
                let mut acc = V::zero();
                for (j, &w) in w2.iter().enumerate() {
                    // SAFETY: c + 16 ≤ b and j·b + c + 16 ≤ hidden.len() (asserted).
                    acc = V::fmadd(V::splat(w), unsafe { V::load(hidden.as_ptr().add(j * b + c)) }, acc);
                }
                // SAFETY: as above (a per-sample bias is b long).
                let bias = if b2.len() == 1 { V::splat(b2[0]) } else { unsafe { V::load(b2.as_ptr().add(c)) } };
                // SAFETY: as above.
                unsafe { V::store(o.as_mut_ptr().add(c), V::add(acc, bias)) };
                c += L;
            }
        }

        /// One hidden unit `j`: its output-weight gradient and bias gradient (as registers of
        /// 16 lanes, reduced by the caller); ∂hidden and ∂pre (and a per-sample ∂b1) stored
        /// through the raw pointers `(hidden, pre, b1)` (the caller's reductions share b1).
        #[inline(always)]
        #[allow(clippy::too_many_arguments)]
        unsafe fn unit<V: Lanes>(
            j: usize,
            go: &[f32],
            hidden: &[f32],
            w2: &[f32],
            dhidden: &[f32],
            to: (*mut f32, *mut f32, *mut f32),
            per_sample: bool,
        ) -> (V, V) {
            let b = go.len();
            let zero = V::zero();
            let (mut dot, mut bias, w) = (zero, zero, V::splat(w2[j]));
            let mut c = 0;
            while c < b {
                let at = j * b + c;
                // SAFETY: c + 16 ≤ b and at + 16 ≤ h·b = every buffer's length (asserted).
                unsafe {
                    let g = V::load(go.as_ptr().add(c));
                    dot = V::fmadd(g, V::load(hidden.as_ptr().add(at)), dot);
                    let gh = V::add(V::fmadd(w, g, zero), V::mul(V::splat(1.0), zero));
                    let gp = V::add(zero, V::mul(gh, V::load(dhidden.as_ptr().add(at))));
                    bias = V::add(bias, gp);
                    V::store(to.0.add(at), gh);
                    V::store(to.1.add(at), gp);
                    if per_sample {
                        V::store(to.2.add(at), V::add(zero, gp));
                    }
                }
                c += L;
            }
            (dot, bias)
        }

        #[inline(always)]
        unsafe fn backward<V: Lanes>(go: &[f32], hidden: &[f32], w2: &[f32], dhidden: &[f32], out: OutputGradients) {
            let b = go.len();
            let zero = V::zero();
            let mut lanes = zero;
            let mut c = 0;
            while c < b {
                // SAFETY: c + 16 ≤ b.
                lanes = V::add(lanes, unsafe { V::load(go.as_ptr().add(c)) });
                c += L;
            }
            if out.b2.len() == 1 {
                out.b2[0] = 0.0 + V::pairwise(lanes);
            } else {
                // One bias per sample: its gradient is `0 + g` (the tape adds gy into a zero).
                let mut c = 0;
                while c < b {
                    // SAFETY: c + 16 ≤ b = out.b2.len().
                    unsafe { V::store(out.b2.as_mut_ptr().add(c), V::add(zero, V::load(go.as_ptr().add(c)))) };
                    c += L;
                }
            }
            let per_sample = out.b1.len() > w2.len();
            let to = (out.hidden.as_mut_ptr(), out.pre.as_mut_ptr(), out.b1.as_mut_ptr());
            let pb1 = to.2;
            // Four hidden units at a time, their eight sums reduced together (`pairwise4`).
            let h = w2.len();
            let mut j0 = 0;
            while j0 < h {
                // SAFETY (the units and b1's writes): j0 + q < h and the shapes were asserted.
                unsafe {
                    if j0 + 4 <= h {
                        let u0 = unit::<V>(j0, go, hidden, w2, dhidden, to, per_sample);
                        let u1 = unit::<V>(j0 + 1, go, hidden, w2, dhidden, to, per_sample);
                        let u2 = unit::<V>(j0 + 2, go, hidden, w2, dhidden, to, per_sample);
                        let u3 = unit::<V>(j0 + 3, go, hidden, w2, dhidden, to, per_sample);
                        let (d, bs) = (V::pairwise4([u0.0, u1.0, u2.0, u3.0]), V::pairwise4([u0.1, u1.1, u2.1, u3.1]));
                        for q in 0..4 {
                            out.w2[j0 + q] = d[q] + 1.0 * 0.0;
                            if !per_sample {
                                *pb1.add(j0 + q) = 0.0 + bs[q];
                            }
                        }
                        j0 += 4;
                    } else {
                        let (d, bs) = unit::<V>(j0, go, hidden, w2, dhidden, to, per_sample);
                        out.w2[j0] = V::pairwise(d) + 1.0 * 0.0;
                        if !per_sample {
                            *pb1.add(j0) = 0.0 + V::pairwise(bs);
                        }
                        j0 += 1;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::data::generators;
    use crate::engine::Real;
    use crate::engine::activations::Activation;
    use crate::engine::{NodeId, Reduction};
    use crate::init::WeightInit;
    use crate::models::{Init, Net};
    use crate::optim::{OptimConfig, Optimizer};

    /// fc73's shape with other widths: `inputs` → `hidden` (act) → 1 logit, sigmoid CE or
    /// σ + L2, built from its description like every network.
    #[derive(Clone, Copy, Debug)]
    struct Fc73Twin {
        act: Activation,
        l2: bool,
        reduction: Reduction,
        per_sample_bias: bool,
        inputs: usize,
        hidden: usize,
    }

    impl Fc73Twin {
        fn new(act: Activation, l2: bool) -> Fc73Twin {
            Fc73Twin { act, l2, reduction: Reduction::Mean, per_sample_bias: false, inputs: 16, hidden: 4 }
        }
    }

    mod twins {
        use super::*;
        use crate::models::spec::{BiasKind, Layer, NetworkSpec, OutputSpec};

        pub fn fc73<T: Real>(c: &Fc73Twin, e: usize, batch: usize) -> crate::Result<Net<T>> {
            let bias = if c.per_sample_bias { BiasKind::PerSample } else { BiasKind::Tied };
            let dense = |units, act: Option<String>| Layer::Dense { units, act, bias, name: None };
            let spec = NetworkSpec {
                layers: vec![dense(c.hidden, Some(c.act.to_string())), dense(1, None)],
                output: OutputSpec {
                    loss: Some(if c.l2 { "l2" } else { "sigmoid_ce" }.into()),
                    output_act: c.l2.then(|| "sigmoid".into()),
                    reduction: Some(c.reduction),
                    ..Default::default()
                },
                heads: None,
            };
            let mut shape = generators::random(1, 0).samples();
            shape.shape = vec![c.inputs];
            crate::models::spec::build(&spec, &shape, e, batch)
        }
    }

    fn net(act: Activation, l2: bool, reduction: Reduction, e: usize) -> Net<f32> {
        net_of(Fc73Twin { reduction, ..Fc73Twin::new(act, l2) }, e)
    }

    fn net_of(cfg: Fc73Twin, e: usize) -> Net<f32> {
        let mut net = twins::fc73::<f32>(&cfg, e, 64).unwrap();
        // Large initial weights, so that activations saturate and some gradients underflow.
        net.init(&Init::seeds(3, e, WeightInit::Normal { std: 1.5 }, 0.1));
        let data = generators::random(64, 1).samples();
        net.feed(&data, &(0..64).collect::<Vec<_>>());
        net
    }

    /// Every value, saved derivative and gradient of every node.
    fn state(net: &Net<f32>) -> Vec<Vec<u32>> {
        let g = &net.graph;
        (0..g.len())
            .map(NodeId)
            .flat_map(|id| {
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<u32>>();
                [
                    bits(g.value(id)),
                    bits(g.grad(id)),
                    bits(g.activation_derivative(id).unwrap_or(&[])),
                    bits(g.loss_terms(id).unwrap_or(&[])),
                ]
            })
            .collect()
    }

    /// `f` with every SIMD tier this CPU has (the fused path runs only on one).
    fn on_every_tier(f: impl Fn()) {
        let tiers = crate::engine::simd::simd_tiers();
        if tiers.is_empty() {
            eprintln!("skipped: no SIMD tier on this machine");
        }
        for tier in tiers {
            let _tier = crate::engine::simd::Forced::new(tier);
            f();
        }
    }

    /// Ten SGD steps of the fused path and of the tape leave every buffer equal bit for bit,
    /// for every activation, both losses and both reductions.
    #[test]
    fn equals_the_tape_bit_for_bit() {
        on_every_tier(|| {
            for act in Activation::all() {
                for loss in [true, false] {
                    for reduction in Reduction::ALL {
                        let (mut a, mut b) = (net(act, loss, reduction, 5), net(act, loss, reduction, 5));
                        b.graph.disable_fusion();
                        assert!(a.graph.is_fused() && !b.graph.is_fused());
                        let (mut oa, mut ob) = (
                            Optimizer::new(OptimConfig::sgd(0.5), &a.graph),
                            Optimizer::new(OptimConfig::sgd(0.5), &b.graph),
                        );
                        let active = vec![true; 5];
                        for step in 0..10 {
                            for (n, o) in [(&mut a, &mut oa), (&mut b, &mut ob)] {
                                n.graph.forward();
                                n.graph.backward(n.loss);
                                o.step(&mut n.graph, &active);
                            }
                            assert!(state(&a) == state(&b), "{act} {loss} {reduction}: differ after step {step}");
                        }
                    }
                }
            }
        });
    }

    /// New data fed between steps (minibatches) reaches the per-model path's cached transpose.
    #[test]
    fn sees_new_inputs() {
        on_every_tier(|| {
            let (mut a, mut b) =
                (net(Activation::Relu, false, Reduction::Mean, 3), net(Activation::Relu, false, Reduction::Mean, 3));
            b.graph.disable_fusion();
            for seed in [5u64, 6, 7] {
                let data = generators::random(64, seed).samples();
                for n in [&mut a, &mut b] {
                    n.graph.forward();
                    n.graph.backward(n.loss);
                    n.feed(&data, &(0..64).rev().collect::<Vec<_>>());
                }
            }
            a.graph.forward();
            b.graph.forward();
            assert!(state(&a) == state(&b));
        });
    }

    /// The other shapes the path covers: biases per sample (the original Task 2 variant), and
    /// hidden widths that are not a multiple of four (the reductions' remainder).
    #[test]
    fn equals_the_tape_with_per_sample_biases_and_odd_widths() {
        on_every_tier(|| {
            for (per_sample_bias, hidden, inputs) in [(true, 4, 16), (false, 6, 16), (true, 7, 20), (false, 1, 32)] {
                for loss in [true, false] {
                    let cfg = Fc73Twin { per_sample_bias, hidden, inputs, ..Fc73Twin::new(Activation::Tanh, loss) };
                    let data = generators::random(64, 1).samples();
                    let mk = || {
                        let mut n = twins::fc73::<f32>(&cfg, 3, 64).unwrap();
                        n.init(&Init::seeds(3, 3, WeightInit::Normal { std: 1.5 }, 0.1));
                        if inputs == 16 {
                            n.feed(&data, &(0..64).collect::<Vec<_>>());
                        } else {
                            let x = n.input;
                            n.graph
                                .value_mut(x)
                                .iter_mut()
                                .enumerate()
                                .for_each(|(i, v)| *v = ((i * 37 % 101) as f32 - 50.0) * 0.02);
                        }
                        n
                    };
                    let (mut a, mut b) = (mk(), mk());
                    b.graph.disable_fusion();
                    assert!(a.graph.is_fused(), "{cfg:?}");
                    let (mut oa, mut ob) = (
                        Optimizer::new(OptimConfig::sgd(0.5), &a.graph),
                        Optimizer::new(OptimConfig::sgd(0.5), &b.graph),
                    );
                    for step in 0..5 {
                        for (n, o) in [(&mut a, &mut oa), (&mut b, &mut ob)] {
                            n.graph.forward();
                            n.graph.backward(n.loss);
                            o.step(&mut n.graph, &[true; 3]);
                        }
                        assert!(state(&a) == state(&b), "{cfg:?}: differ after step {step}");
                    }
                }
            }
        });
    }

    /// Models left out keep their values and gradients; the others equal a full pass.
    #[test]
    fn skips_the_models_left_out() {
        on_every_tier(|| {
            let (mut a, mut b) =
                (net(Activation::Tanh, true, Reduction::Mean, 4), net(Activation::Tanh, true, Reduction::Mean, 4));
            a.graph.forward();
            a.graph.backward(a.loss);
            let before = state(&a);
            // Change every parameter of every model, then run models 1 and 3 only.
            for n in [&mut a, &mut b] {
                for p in n.graph.params() {
                    n.graph.value_mut(p).iter_mut().for_each(|v| *v *= 0.5);
                }
            }
            let models = [false, true, false, true];
            a.graph.forward_models(Some(&models));
            a.graph.backward_models(a.loss, Some(&models));
            b.graph.forward();
            b.graph.backward(b.loss);
            let g = &a.graph;
            for (i, (was, (now, full))) in before.iter().zip(state(&a).iter().zip(state(&b))).enumerate() {
                let node = NodeId(i / 4);
                let per_model = now.len() / 4;
                // Buffers shared by the models (inputs, the loss's seed of 1) are not per model.
                if per_model == 0 || g.shape(node)[0] != 4 || now.len() % 4 != 0 {
                    continue;
                }
                let param = g.params().contains(&node) && i % 4 == 0;
                for e in 0..4 {
                    let r = e * per_model..(e + 1) * per_model;
                    if models[e] {
                        assert_eq!(now[r.clone()], full[r], "node {i}: model {e} computed");
                    } else if !param {
                        assert_eq!(now[r.clone()], was[r], "node {i}: model {e} left out");
                    }
                }
            }
        });
    }

    /// Networks the path does not cover run on the tape.
    #[test]
    fn plans_only_what_it_covers() {
        on_every_tier(|| {
            let mut fc73 = net(Activation::Sigmoid, true, Reduction::Mean, 2);
            assert!(fc73.graph.is_fused());
            let per_sample = Fc73Twin { per_sample_bias: true, ..Fc73Twin::new(Activation::Sigmoid, true) };
            assert!(twins::fc73::<f32>(&per_sample, 2, 64).unwrap().graph.is_fused(), "per-sample biases");
            let odd_batch = Fc73Twin::new(Activation::Relu, false);
            assert!(!twins::fc73::<f32>(&odd_batch, 2, 60).unwrap().graph.is_fused(), "batch 60");
            assert!(!twins::fc73::<f64>(&odd_batch, 2, 64).unwrap().graph.is_fused(), "f64");
            let few = Fc73Twin { inputs: 8, ..odd_batch };
            assert!(!twins::fc73::<f32>(&few, 2, 64).unwrap().graph.is_fused(), "8 input features");
        });
    }
}

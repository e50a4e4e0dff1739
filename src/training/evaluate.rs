//! Loss and accuracy of every model of an ensemble on a whole dataset, in batches of the net's
//! batch size.

use crate::data::Samples;
use crate::models::Net;

/// Per model, on a whole dataset: the total loss (on the training loss's scale), each head's
/// loss and accuracy, and the accuracy (smallest over heads that have one; NaN if none has).
#[derive(Clone, Debug)]
pub struct Evaluation {
    pub loss: Vec<f64>,
    pub accuracy: Vec<f64>,
    pub head_loss: Vec<Vec<f64>>,
    pub head_accuracy: Vec<Vec<f64>>,
}

impl Evaluation {
    pub(crate) fn zeros(models: usize, heads: usize) -> Evaluation {
        Evaluation {
            loss: vec![0.0; models],
            accuracy: vec![f64::NAN; models],
            head_loss: vec![vec![0.0; models]; heads],
            head_accuracy: vec![vec![0.0; models]; heads],
        }
    }

    /// Per model: the smallest accuracy among the heads that have one (NaN if none has).
    pub(crate) fn set_accuracy(&mut self, heads: &[crate::models::Head]) {
        for (e, acc) in self.accuracy.iter_mut().enumerate() {
            *acc = heads
                .iter()
                .zip(&self.head_accuracy)
                .filter(|(h, _)| h.metric.is_some())
                .map(|(_, a)| a[e])
                .fold(f64::NAN, |m, a| if m.is_nan() { a } else { m.min(a) });
        }
    }
}

/// Feeds `data` through every model in batches of the net's batch size (the last one padded
/// with sample 0) and calls `f(net, indices, valid)` after each forward pass: the batch's sample
/// indices and how many of them are real. Leaves the net's input holding the last batch.
pub fn each_batch(net: &mut Net<f32>, data: &Samples, mut f: impl FnMut(&Net<f32>, &[usize], usize)) {
    let batch = net.batch;
    let mut indices = vec![0usize; batch];
    for start in (0..data.n).step_by(batch) {
        let valid = batch.min(data.n - start);
        for (s, i) in indices.iter_mut().enumerate() {
            *i = start + if s < valid { s } else { 0 };
        }
        net.feed(data, &indices);
        net.graph.forward();
        f(net, &indices, valid);
    }
}

/// Evaluates every model on `data` in batches of the net's batch size (the last one padded
/// and only its real samples counted). Leaves the net's input holding the last batch.
pub fn evaluate(net: &mut Net<f32>, data: &Samples) -> Evaluation {
    let (e_count, heads) = (net.graph.ensemble(), net.heads.len());
    let mut ev = Evaluation::zeros(e_count, heads);
    let (mut counts, mut sums) = (vec![0usize; e_count], vec![0.0f64; e_count]);
    each_batch(net, data, |net, _, valid| {
        for (k, h) in net.heads.iter().enumerate() {
            net.correct(h, valid, &mut counts);
            net.loss_sum(h, valid, &mut sums);
            for e in 0..e_count {
                ev.head_accuracy[k][e] += counts[e] as f64;
                ev.head_loss[k][e] += sums[e];
            }
        }
    });
    for (k, h) in net.heads.iter().enumerate() {
        for e in 0..e_count {
            ev.head_accuracy[k][e] /= data.n as f64;
            ev.head_loss[k][e] *= h.sum_scale / data.n as f64;
            ev.loss[e] += h.weight * ev.head_loss[k][e];
        }
    }
    ev.set_accuracy(&net.heads);
    ev
}

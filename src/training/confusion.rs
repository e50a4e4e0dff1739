//! Confusion matrices of multi-class heads after training: per seed, how many samples of each
//! true class each class was predicted as (the head's argmax), on the held-out set when there
//! is one, else on the training set. Diverged seeds get none.

use super::Observer;
use crate::data::Samples;
use crate::models::{Metric, Net};
use crate::record::{Confusion, Run};

pub struct ConfusionObserver<'a> {
    data: &'a Samples,
    set: &'static str,
}

impl<'a> ConfusionObserver<'a> {
    /// An observer for `net` when its first classifying head has more than one output unit.
    pub fn new(net: &Net<f32>, train: &'a Samples, held_out: Option<&'a Samples>) -> Option<ConfusionObserver<'a>> {
        head(net)?;
        Some(match held_out {
            Some(h) => ConfusionObserver { data: h, set: "held_out" },
            None => ConfusionObserver { data: train, set: "training" },
        })
    }
}

/// The first head that predicts one of several classes: its index and class count.
fn head(net: &Net<f32>) -> Option<(usize, usize)> {
    net.heads.iter().enumerate().find_map(|(k, h)| {
        let units = net.graph.shape(h.score)[1];
        (matches!(h.metric, Some(Metric::Argmax)) && units > 1).then_some((k, units))
    })
}

/// Per model of `net`: counts `[true][predicted]` (row-major `classes × classes`) of head `k`
/// over every sample of `data`, in batches of the net's size.
pub fn confusion(net: &mut Net<f32>, data: &Samples, k: usize, classes: usize) -> Vec<Vec<u64>> {
    let (batch, e_count) = (net.batch, net.graph.ensemble());
    let mut counts = vec![vec![0u64; classes * classes]; e_count];
    let target = data.target(&net.heads[k].target_name).expect("targets are checked when the net is built");
    super::evaluate::each_batch(net, data, |net, indices, valid| {
        let score = net.graph.value(net.heads[k].score);
        let per = classes * batch;
        for (e, c) in counts.iter_mut().enumerate() {
            let v = &score[e * per..(e + 1) * per];
            for (s, &i) in indices[..valid].iter().enumerate() {
                let truth = target.values[i] as usize;
                if truth < classes {
                    c[truth * classes + crate::models::argmax_column(v, classes, batch, s)] += 1;
                }
            }
        }
    });
    counts
}

impl Observer for ConfusionObserver<'_> {
    fn end(&mut self, net: &mut Net<f32>, run: &mut Run) -> crate::Result<()> {
        let (k, classes) = head(net).expect("checked in new");
        let counts = confusion(net, self.data, k, classes);
        let per_seed = counts.into_iter().zip(&run.diverged_at).map(|(c, d)| d.is_none().then_some(c)).collect();
        run.confusion =
            Some(Confusion { head: net.heads[k].target_name.clone(), set: self.set.to_string(), classes, per_seed });
        Ok(())
    }
}

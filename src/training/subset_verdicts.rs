//! For C-scores (Jiang et al. 2021, `pluskid/structural-regularity`): after a model trained on
//! its own subset (`TrainOptions::subset`), its verdict on every training sample, beside which
//! samples it trained on. The estimator is in `experiments::cscores`.

use super::Observer;
use crate::data::Samples;
use crate::models::Net;
use crate::models::per_sample::classification_head;
use crate::record::Run;
use crate::record::samples::SubsetVerdicts;

pub struct SubsetVerdictsObserver<'a> {
    data: &'a Samples,
    subset: super::Subset,
}

impl<'a> SubsetVerdictsObserver<'a> {
    pub fn new(data: &'a Samples, subset: super::Subset) -> SubsetVerdictsObserver<'a> {
        SubsetVerdictsObserver { data, subset }
    }
}

impl Observer for SubsetVerdictsObserver<'_> {
    fn end(&mut self, net: &mut Net<f32>, run: &mut Run) -> crate::Result<()> {
        let head = classification_head(net).map_err(|m| crate::Error::field("samples.cscore_ratios", m))?;
        let sub = self.subset;
        let (e_count, n, batch) = (net.graph.ensemble(), self.data.n, net.batch);
        let mut out: Vec<SubsetVerdicts> = run
            .seeds
            .iter()
            .map(|&seed| {
                let mut trained_on = vec![false; n];
                sub.draw(seed, n).0.into_iter().for_each(|s| trained_on[s] = true);
                SubsetVerdicts { trained_on, correct: vec![false; n] }
            })
            .collect();
        let (mut p, mut right) = (vec![0f32; batch], vec![false; batch]);
        let mut indices = vec![0usize; batch];
        for start in (0..n).step_by(batch) {
            let valid = batch.min(n - start);
            for (s, i) in indices.iter_mut().enumerate() {
                *i = start + if s < valid { s } else { 0 };
            }
            net.feed(self.data, &indices);
            net.graph.forward();
            for (e, v) in out.iter_mut().enumerate().take(e_count) {
                net.true_class_probs(&net.heads[head], e, &mut p, &mut right);
                v.correct[start..start + valid].copy_from_slice(&right[..valid]);
            }
        }
        run.subsets = Some(out);
        Ok(())
    }
}

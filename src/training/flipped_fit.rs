//! Memorisation of corrupted labels, as Arpit et al. (2017, Fig. 8) follow it: each model's
//! accuracy, in evaluation mode (no dropout, no input noise, BatchNorm's running estimates),
//! against the labels it is trained on (the `y` head's), separately on the training samples whose label was
//! corrupted (`fit_flipped`: how much of the noise it has memorised) and on the others
//! (`fit_clean`: the real patterns). Measured at iteration 1, every K iterations and early at
//! 2, 3, 5, 9, 17, … (NaN between), each measurement's row kept.

use super::evaluate::each_batch;
use super::{At, Observer};
use crate::data::Samples;
use crate::models::Net;
use crate::record::Run;

pub struct FlippedFit<'a> {
    data: &'a Samples,
    flipped: &'a [bool],
    /// Clean and corrupted samples.
    counts: (usize, usize),
    every: usize,
    /// Per model, this iteration's (clean, flipped) fit, if measured.
    now: Option<Vec<(f64, f64)>>,
}

impl<'a> FlippedFit<'a> {
    pub fn new(data: &'a Samples, flipped: &'a [bool], every: usize) -> FlippedFit<'a> {
        assert_eq!(flipped.len(), data.n, "one flag per training sample");
        let n_flipped = flipped.iter().filter(|&&f| f).count();
        FlippedFit { data, flipped, counts: (data.n - n_flipped, n_flipped), every: every.max(1), now: None }
    }
}

impl Observer for FlippedFit<'_> {
    fn columns(&self, _: &Net<f32>) -> Vec<String> {
        vec!["fit_clean".into(), "fit_flipped".into()]
    }

    fn before_forward(&mut self, net: &mut Net<f32>, at: &At) -> bool {
        if !super::held_out::early_and_every(at.it, self.every) {
            self.now = None;
            return false;
        }
        let e_count = net.graph.ensemble();
        let mut right = vec![true; net.batch];
        let mut hits = vec![(0usize, 0usize); e_count];
        let flipped = self.flipped;
        // The label's head (`y`) when there is one: detection's width head has no corrupted
        // targets.
        let labelled = net.heads.iter().any(|h| h.target_name == "y" && h.metric.is_some());
        let judged: Vec<usize> = (0..net.heads.len())
            .filter(|&k| net.heads[k].metric.is_some() && (!labelled || net.heads[k].target_name == "y"))
            .collect();
        each_batch(net, self.data, |net, indices, valid| {
            for (e, hit) in hits.iter_mut().enumerate() {
                let r = &mut right[..valid];
                r.fill(true);
                for &k in &judged {
                    net.and_correct(&net.heads[k], e, r);
                }
                for (&ok, &i) in r.iter().zip(indices) {
                    if ok {
                        if flipped[i] { hit.1 += 1 } else { hit.0 += 1 }
                    }
                }
            }
        });
        let (n_clean, n_flipped) = self.counts;
        let share = |k: usize, n: usize| if n == 0 { f64::NAN } else { k as f64 / n as f64 };
        self.now = Some(hits.iter().map(|&(c, f)| (share(c, n_clean), share(f, n_flipped))).collect());
        true
    }

    fn evaluated(&mut self, _: &Net<f32>, at: &At, run: &mut Run, keep: &mut bool) {
        for (e, row) in run.rows.iter_mut().enumerate().filter(|(e, _)| at.active[*e]) {
            let (c, f) = self.now.as_ref().map_or((f64::NAN, f64::NAN), |v| v[e]);
            row.extend([c as f32, f as f32]);
        }
        *keep |= self.now.is_some();
    }
}

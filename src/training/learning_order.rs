//! The learning order (full-batch classification): per seed and training sample, the first
//! evaluated iteration from which the sample stayed correct on every head with an accuracy until
//! the seed stopped (`Run::learned_at`; `None` if it was wrong at the end). A sample that flips
//! back is not learned.

use super::{At, Observer};
use crate::models::Net;
use crate::record::Run;

#[derive(Default)]
pub struct LearningOrder {
    /// Per model and sample: the learned iteration, 0 for not (yet) learned.
    learned: Vec<Vec<u32>>,
}

impl Observer for LearningOrder {
    fn start(&mut self, net: &mut Net<f32>, _: &mut Run) -> crate::Result<()> {
        self.learned = vec![vec![0; net.batch]; net.graph.ensemble()];
        Ok(())
    }

    fn wants_verdicts(&self) -> bool {
        true
    }

    fn verdicts(&mut self, e: usize, right: &[bool], at: &At) {
        update_learned(&mut self.learned[e], right, at.it);
    }

    fn end(&mut self, _: &mut Net<f32>, run: &mut Run) -> crate::Result<()> {
        let learned = std::mem::take(&mut self.learned);
        run.learned_at = Some(learned.iter().map(|l| l.iter().map(|&it| (it != 0).then_some(it)).collect()).collect());
        Ok(())
    }
}

/// One evaluation of a seed's samples: a correct sample keeps (or starts) its learned
/// iteration, a wrong one loses it, so what remains is where each stayed correct from.
/// `0` stands for "not learned" (iterations count from 1): a select per sample, which
/// vectorises (matching on `Option`s was a quarter of the training loop's own time).
pub fn update_learned(learned: &mut [u32], right: &[bool], it: usize) {
    let it = it as u32;
    for (slot, &ok) in learned.iter_mut().zip(right) {
        let kept = if *slot == 0 { it } else { *slot };
        *slot = if ok { kept } else { 0 };
    }
}

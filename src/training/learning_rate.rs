//! The learning rate as a metrics column (`lr`) when it changes over training (a schedule or a
//! warm-up): at each row, the rate of that iteration's update.

use super::{At, Observer};
use crate::models::Net;
use crate::optim::OptimConfig;
use crate::record::Run;

pub struct LearningRate(pub OptimConfig);

impl Observer for LearningRate {
    fn columns(&self, _: &Net<f32>) -> Vec<String> {
        vec!["lr".into()]
    }

    fn evaluated(&mut self, _: &Net<f32>, at: &At, run: &mut Run, _: &mut bool) {
        let lr = self.0.lr_at(at.it as u64) as f32;
        for (_, row) in run.rows.iter_mut().enumerate().filter(|(e, _)| at.active[*e]) {
            row.push(lr);
        }
    }
}

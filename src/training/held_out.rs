//! The held-out set: its loss and accuracy every K evaluated iterations and early at 1, 2, 3, 5,
//! 9, 17, … (`held_out_loss`, `held_out_accuracy`; NaN between measurements), each measurement's
//! row kept on its own log grid; and every seed's accuracy after training (the run record's
//! `held_out_accuracy`, per head with several).

use super::kept_rows::keep_row;
use super::{At, Evaluation, Observer, evaluate};
use crate::data::Samples;
use crate::models::Net;
use crate::record::Run;

/// Whether iteration `it` is measured on the grid held-out curves use: iterations 1, 2, 3, 5,
/// 9, 17, … (`it − 1` a power of two) and every `k` from the first.
pub fn early_and_every(it: usize, k: usize) -> bool {
    (it - 1).is_multiple_of(k) || (it - 1).is_power_of_two()
}

pub struct HeldOut<'a> {
    data: &'a Samples,
    /// The curve's interval; `None`: only the accuracy after training.
    every: Option<usize>,
    /// This iteration's measurement, if one was taken.
    now: Option<Evaluation>,
    measured: usize,
}

impl<'a> HeldOut<'a> {
    pub fn new(data: &'a Samples, every: Option<usize>) -> HeldOut<'a> {
        HeldOut { data, every, now: None, measured: 0 }
    }
}

impl Observer for HeldOut<'_> {
    fn columns(&self, _: &Net<f32>) -> Vec<String> {
        match self.every {
            Some(_) => vec!["held_out_loss".into(), "held_out_accuracy".into()],
            None => vec![],
        }
    }

    fn before_forward(&mut self, net: &mut Net<f32>, at: &At) -> bool {
        // Every K iterations, and early at 1, 2, 3, 5, 9, 17, … where the curve moves fast.
        self.now = match self.every {
            Some(k) if early_and_every(at.it, k) => {
                self.measured += 1;
                Some(evaluate(net, self.data))
            }
            _ => None,
        };
        self.now.is_some()
    }

    fn evaluated(&mut self, _: &Net<f32>, at: &At, run: &mut Run, keep: &mut bool) {
        if self.every.is_none() {
            return;
        }
        for (e, row) in run.rows.iter_mut().enumerate().filter(|(e, _)| at.active[*e]) {
            let (l, a) = self.now.as_ref().map_or((f64::NAN, f64::NAN), |h| (h.loss[e], h.accuracy[e]));
            row.extend([l as f32, a as f32]);
        }
        // A measurement keeps its row on its own log grid (all of the first 64 measurements,
        // then 16 per doubling), so the held-out curve stays resolved.
        *keep |= self.now.is_some() && keep_row(self.measured - 1);
    }

    fn end(&mut self, net: &mut Net<f32>, run: &mut Run) -> crate::Result<()> {
        let diverged = |v: &[f64]| -> Vec<f64> {
            v.iter().zip(&run.diverged_at).map(|(&a, d)| if d.is_some() { f64::NAN } else { a }).collect()
        };
        let ev = evaluate(net, self.data);
        run.held_out_accuracy = Some(diverged(&ev.accuracy));
        if net.heads.len() > 1 {
            run.held_out_heads = net
                .heads
                .iter()
                .zip(&ev.head_accuracy)
                .map(|(h, a)| (h.accuracy_column.clone(), diverged(a)))
                .collect();
        }
        Ok(())
    }
}

//! Dead units: per hidden layer, the fraction of units ≤ 0 for every sample of the batch
//! (`dead_fraction_<layer>` columns), at every evaluated iteration.

use super::{At, Observer};
use crate::models::{Net, dead_fraction};
use crate::record::Run;

#[derive(Default)]
pub struct DeadUnits {
    /// Per hidden layer, per model: the fraction at the current row.
    fractions: Vec<Vec<f64>>,
}

impl Observer for DeadUnits {
    fn columns(&self, net: &Net<f32>) -> Vec<String> {
        net.hidden.iter().map(|(name, _)| format!("dead_fraction_{name}")).collect()
    }

    fn start(&mut self, net: &mut Net<f32>, _: &mut Run) -> crate::Result<()> {
        self.fractions = vec![vec![0.0; net.graph.ensemble()]; net.hidden.len()];
        Ok(())
    }

    fn evaluated(&mut self, net: &Net<f32>, at: &At, run: &mut Run, _: &mut bool) {
        for (d, (_, id)) in self.fractions.iter_mut().zip(&net.hidden) {
            dead_fraction(net.graph.value(*id), net.graph.shape(*id), d);
        }
        for (e, row) in run.rows.iter_mut().enumerate().filter(|(e, _)| at.active[*e]) {
            row.extend(self.fractions.iter().map(|d| d[e] as f32));
        }
    }
}

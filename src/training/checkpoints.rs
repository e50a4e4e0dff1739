//! Saved parameters (`save_params`): each seed's final parameters as `seed-<s>.safetensors`, and
//! with `save_every` K also the initial ones (`seed-<s>-iter-0`) and every K updates
//! (`seed-<s>-iter-<K·j>`, the parameters after K·j updates) for the seeds still training;
//! or every seed's final parameters kept in the run record (`FinalParams`: decision boundaries).

use super::{At, Observer};
use crate::models::{Net, params};
use crate::record::Run;
use std::path::Path;

pub struct Checkpoints<'a> {
    pub dir: &'a Path,
    pub every: Option<usize>,
}

impl Observer for Checkpoints<'_> {
    fn start(&mut self, net: &mut Net<f32>, run: &mut Run) -> crate::Result<()> {
        if self.every.is_some() {
            for (e, seed) in run.seeds.iter().enumerate() {
                params::save(net, e, &self.dir.join(format!("seed-{seed}-iter-0.safetensors")))?;
            }
        }
        Ok(())
    }

    fn after_step(&mut self, net: &Net<f32>, at: &At, run: &mut Run) -> crate::Result<()> {
        if let Some(k) = self.every
            && at.it.is_multiple_of(k)
        {
            for (e, seed) in run.seeds.iter().enumerate().filter(|(e, _)| at.active[*e]) {
                params::save(net, e, &self.dir.join(format!("seed-{seed}-iter-{}.safetensors", at.it)))?;
            }
        }
        Ok(())
    }

    fn end(&mut self, net: &mut Net<f32>, run: &mut Run) -> crate::Result<()> {
        // Every seed's parameters are frozen where it stopped: saved as they are.
        for (e, seed) in run.seeds.iter().enumerate() {
            params::save(net, e, &self.dir.join(format!("seed-{seed}.safetensors")))?;
        }
        Ok(())
    }
}

/// Every seed's final parameters into the run record (`Run::final_params`).
pub struct FinalParams;

impl Observer for FinalParams {
    fn end(&mut self, net: &mut Net<f32>, run: &mut Run) -> crate::Result<()> {
        run.final_params = Some((0..run.seeds.len()).map(|m| params::of_model(net, m)).collect());
        Ok(())
    }
}

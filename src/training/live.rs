//! A training run watched while it runs: the [`Watched`] observer reports each kept row, each
//! probe, the first seed's per-sample correctness and its path here, and asks here before every
//! iteration whether to go on (pause, single steps, stop). `gradlab serve` streams this state to
//! the page; nothing in the training depends on it (a watched run's numbers are the unwatched
//! run's).

use super::{At, Observer};
use crate::models::Net;
use crate::record::Run;
use crate::record::probes::Probes;
use std::sync::{Condvar, Mutex};

/// What the watcher asks of the training.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    Run,
    Pause,
    /// Run this many more iterations, then pause (as asked; held as `Until`).
    Step(usize),
    /// Every part runs up to and including this iteration, then waits.
    Until(usize),
    Stop,
}

/// One seed's rows: `(iteration, row index, values by column)`.
pub type SeedRows = Vec<(u32, u32, Vec<f32>)>;

#[derive(Clone, Debug, Default)]
pub struct LiveState {
    pub columns: Vec<String>,
    /// Per seed (index from the run's first seed): its kept rows so far.
    pub rows: Vec<SeedRows>,
    /// Per seed: the latest probe of every layer, `(layer, grad_rms, saturated_fraction)`.
    pub probes: Vec<Vec<(String, f32, f32)>>,
    /// The first seed's per-sample correctness at its latest kept row (full batch only).
    pub correct: Vec<bool>,
    /// The first seed's parameters at iteration 1, powers of two, every 100 and where it
    /// stopped: its path, for the landscape in the path's own plane.
    pub trajectory: Vec<(u32, crate::models::params::Point)>,
    /// Iteration reached (the furthest part).
    pub iteration: usize,
    /// Bumped on every change, so a watcher sends only when something happened.
    pub version: u64,
}

#[derive(Debug)]
pub struct Live {
    pub(crate) first_seed: u64,
    control: Mutex<Control>,
    wake: Condvar,
    pub state: Mutex<LiveState>,
}

impl Live {
    pub fn new(first_seed: u64, seeds: usize) -> Live {
        Live {
            first_seed,
            control: Mutex::new(Control::Run),
            wake: Condvar::new(),
            state: Mutex::new(LiveState {
                rows: vec![vec![]; seeds],
                probes: vec![vec![]; seeds],
                ..Default::default()
            }),
        }
    }

    pub fn set(&self, c: Control) {
        let c = match c {
            // Counted from the furthest part, so that every part (and every seed) stops at the
            // same iteration, whichever part asks first.
            Control::Step(n) => Control::Until(self.state.lock().expect("state lock").iteration + n),
            other => other,
        };
        *self.control.lock().expect("control lock") = c;
        self.wake.notify_all();
    }

    /// Whether training is held: paused, or every part has reached its step's end.
    pub fn held(&self) -> bool {
        match self.control() {
            Control::Pause => true,
            Control::Until(t) => self.state.lock().expect("state lock").iteration >= t,
            _ => false,
        }
    }

    pub fn control(&self) -> Control {
        *self.control.lock().expect("control lock")
    }

    /// Called by the training before iteration `it`: blocks while paused or beyond a step's
    /// end; `false` to stop.
    pub fn gate(&self, it: usize) -> bool {
        let mut c = self.control.lock().expect("control lock");
        loop {
            match *c {
                Control::Run => return true,
                Control::Stop => return false,
                Control::Until(t) if it <= t => return true,
                Control::Step(_) | Control::Until(_) | Control::Pause => {
                    c = self.wake.wait(c).expect("control lock");
                }
            }
        }
    }

    fn index(&self, seed: u64) -> usize {
        (seed - self.first_seed) as usize
    }

    /// A seed's new row; it replaces the seed's previous one if that was not kept
    /// (`replace_previous`, the run's own thinning).
    pub fn row(&self, columns: &[String], seed: u64, it: usize, values: &[f32], replace_previous: bool) {
        let i = self.index(seed);
        let mut s = self.state.lock().expect("state lock");
        if s.columns.is_empty() {
            s.columns = columns.to_vec();
        }
        let Some(rows) = s.rows.get_mut(i) else { return };
        if replace_previous {
            rows.pop();
        }
        let index = rows.last().map_or(0, |r| r.1 + 1);
        rows.push((it as u32, index, values.to_vec()));
        s.iteration = s.iteration.max(it);
        s.version += 1;
    }

    pub fn probe(&self, seed: u64, layers: Vec<(String, f32, f32)>) {
        let i = self.index(seed);
        let mut s = self.state.lock().expect("state lock");
        if let Some(p) = s.probes.get_mut(i) {
            *p = layers;
            s.version += 1;
        }
    }

    /// Whether `seed` is the watched one (the first): its path and per-sample correctness are kept.
    pub fn tracks(&self, seed: u64) -> bool {
        seed == self.first_seed
    }

    /// The tracked seed's parameters at `it` (a later capture at the same iteration replaces it).
    pub fn capture(&self, it: usize, p: crate::models::params::Point) {
        let mut s = self.state.lock().expect("state lock");
        if s.trajectory.last().is_some_and(|(i, _)| *i as usize == it) {
            s.trajectory.pop();
        }
        s.trajectory.push((it as u32, p));
    }

    /// The first seed's per-sample correctness.
    pub fn correct(&self, seed: u64, right: &[bool]) {
        if self.tracks(seed) {
            let mut s = self.state.lock().expect("state lock");
            s.correct = right.to_vec();
            s.version += 1;
        }
    }
}

/// The observer that keeps a [`Live`] up to date.
pub struct Watched<'a> {
    live: &'a Live,
    probe_every: usize,
    /// The index of the tracked seed in this part, if it is here.
    tracked: Option<usize>,
}

impl<'a> Watched<'a> {
    pub fn new(live: &'a std::sync::Arc<Live>, probe_every: usize) -> Watched<'a> {
        Watched { live, probe_every, tracked: None }
    }
}

impl Observer for Watched<'_> {
    fn start(&mut self, _: &mut Net<f32>, run: &mut Run) -> crate::Result<()> {
        self.tracked = run.seeds.iter().position(|&s| self.live.tracks(s));
        Ok(())
    }

    fn proceed(&mut self, it: usize) -> bool {
        self.live.gate(it)
    }

    fn wants_verdicts(&self) -> bool {
        true
    }

    fn verdicts(&mut self, e: usize, right: &[bool], _: &At) {
        if Some(e) == self.tracked {
            self.live.correct(self.live.first_seed, right);
        }
    }

    fn evaluated(&mut self, _: &Net<f32>, at: &At, run: &mut Run, _: &mut bool) {
        let n = run.columns.len();
        for (e, row) in run.rows.iter().enumerate().filter(|(e, _)| at.active[*e]) {
            self.live.row(&run.columns, run.seeds[e], at.it, &row[row.len() - n..], at.replaced);
        }
    }

    fn before_step(&mut self, net: &mut Net<f32>, at: &At, run: &mut Run) -> crate::Result<()> {
        if let (true, Some(p)) = (super::probes::due(at.it, self.probe_every), &run.probes) {
            report_live(self.live, p, &run.seeds, at.active, at.it);
        }
        // The tracked seed's path: iteration 1, powers of two and every 100.
        if let Some(m) = self.tracked
            && super::probes::due(at.it, super::DEFAULT_PROBE_EVERY)
            && at.active[m]
        {
            self.live.capture(at.it, crate::models::params::of_model(net, m));
        }
        Ok(())
    }

    fn end(&mut self, net: &mut Net<f32>, run: &mut Run) -> crate::Result<()> {
        if let Some(m) = self.tracked {
            // Where the tracked seed stopped (its parameters are frozen there).
            let end = run.at[m].last().copied().unwrap_or(0) as usize;
            self.live.capture(end, crate::models::params::of_model(net, m));
        }
        Ok(())
    }
}

/// The probe just taken at `it`, per active seed: each layer's gradient RMS and saturated
/// fraction, for a live view.
fn report_live(live: &Live, p: &Probes, seeds: &[u64], active: &[bool], it: usize) {
    for (e, rows) in p.rows.iter().enumerate().filter(|(e, _)| active[*e]) {
        let mut layers: Vec<(String, f32, f32)> = vec![];
        // The probe just taken is the tail of the seed's rows.
        for &(_, key, v) in rows.iter().rev().take_while(|r| r.0 == it as u32) {
            let (layer, q) = &p.keys[key as usize];
            let slot = match layers.iter().position(|l| &l.0 == layer) {
                Some(k) => k,
                None => {
                    layers.push((layer.clone(), f32::NAN, f32::NAN));
                    layers.len() - 1
                }
            };
            match *q {
                "grad_rms" => layers[slot].1 = v,
                "saturated_fraction" => layers[slot].2 = v,
                _ => {}
            }
        }
        layers.retain(|l| l.1.is_finite() || l.2.is_finite());
        layers.reverse();
        live.probe(seeds[e], layers);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_then_pauses_and_stop_ends_a_pause() {
        let live = std::sync::Arc::new(Live::new(0, 1));
        live.row(&["loss".into()], 0, 5, &[1.0], false); // the run is at iteration 5
        live.set(Control::Step(2));
        assert_eq!(live.control(), Control::Until(7));
        // Two parts at iterations 6 and 7 both go on: a step is counted in iterations.
        assert!(live.gate(6) && live.gate(7) && live.gate(6));
        assert!(!live.held(), "not all parts are there yet");
        live.row(&["loss".into()], 0, 7, &[1.0], false);
        assert!(live.held());
        let l = live.clone();
        let waiter = std::thread::spawn(move || l.gate(8));
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(!waiter.is_finished(), "a paused run waits");
        live.set(Control::Stop);
        assert!(!waiter.join().unwrap(), "stop ends the wait with `false`");
    }
}

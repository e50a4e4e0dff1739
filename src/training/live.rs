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
    /// Per seed, when the watcher keeps them ([`Live::keeping_parameters`]): its parameters at
    /// its latest capture (every ~100 ms of training and at its end), for decision boundaries.
    pub params: Vec<Option<(u32, crate::models::params::Point)>>,
    /// Bumped on every capture of `params`.
    pub params_version: u64,
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
    keep_params: bool,
    /// At most this many iterations per second, counted from the first iteration (`None`: as
    /// fast as it goes): a run of a small net watched as it learns. Waiting changes no number.
    pace: Mutex<Option<Pace>>,
}

/// Iterations a second, and when and at which iteration the count started (set by the first
/// iteration after the pace was set or training resumed).
type Pace = (f64, Option<(std::time::Instant, usize)>);

impl Live {
    pub fn new(first_seed: u64, seeds: usize) -> Live {
        Live {
            first_seed,
            control: Mutex::new(Control::Run),
            wake: Condvar::new(),
            state: Mutex::new(LiveState {
                rows: vec![vec![]; seeds],
                probes: vec![vec![]; seeds],
                params: vec![None; seeds],
                ..Default::default()
            }),
            keep_params: false,
            pace: Mutex::new(None),
        }
    }

    /// Training goes at most `per_second` iterations a second from now on (`None`: full speed).
    pub fn set_pace(&self, per_second: Option<f64>) {
        *self.pace.lock().expect("pace lock") = per_second.filter(|p| p.is_finite() && *p > 0.0).map(|p| (p, None));
    }

    /// Sleeps until iteration `it` is due under the pace.
    fn wait_for_pace(&self, it: usize) {
        let due = {
            let mut pace = self.pace.lock().expect("pace lock");
            let Some((rate, origin)) = pace.as_mut() else { return };
            let (t0, it0) = *origin.get_or_insert((std::time::Instant::now(), it));
            // Beyond what a Duration or an Instant holds: "not yet", a second at a time.
            std::time::Duration::try_from_secs_f64(it.saturating_sub(it0) as f64 / *rate)
                .ok()
                .and_then(|d| t0.checked_add(d))
        };
        let now = std::time::Instant::now();
        match due {
            Some(due) if due > now => std::thread::sleep((due - now).min(std::time::Duration::from_secs(1))),
            Some(_) => {}
            None => std::thread::sleep(std::time::Duration::from_secs(1)),
        }
    }

    /// Also keep every seed's current parameters (`LiveState::params`).
    pub fn keeping_parameters(mut self) -> Live {
        self.keep_params = true;
        self
    }

    /// Seed `seed`'s parameters at `it`.
    pub fn parameters(&self, seed: u64, it: usize, p: crate::models::params::Point) {
        let i = self.index(seed);
        let mut s = self.state.lock().expect("state lock");
        if let Some(slot) = s.params.get_mut(i) {
            *slot = Some((it as u32, p));
            s.params_version += 1;
            s.version += 1;
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
        // After a pause the pace counts from where training resumes.
        if let Some((_, origin)) = self.pace.lock().expect("pace lock").as_mut() {
            *origin = None;
        }
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
        self.wait_for_pace(it);
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
    /// When this part last captured its seeds' parameters.
    captured: Option<std::time::Instant>,
    /// The last iteration this part was let through.
    last_it: usize,
}

/// How often a part captures its seeds' parameters for the page: fast enough to watch a
/// boundary move, rare enough to cost nothing.
const CAPTURE_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

impl<'a> Watched<'a> {
    pub fn new(live: &'a std::sync::Arc<Live>, probe_every: usize) -> Watched<'a> {
        Watched { live, probe_every, tracked: None, captured: None, last_it: 0 }
    }

    fn capture_all(&mut self, net: &Net<f32>, run: &Run, it: impl Fn(usize) -> usize, active: &[bool]) {
        for (m, &seed) in run.seeds.iter().enumerate().filter(|(m, _)| active[*m]) {
            self.live.parameters(seed, it(m), crate::models::params::of_model(net, m));
        }
        self.captured = Some(std::time::Instant::now());
    }
}

impl Observer for Watched<'_> {
    fn start(&mut self, _: &mut Net<f32>, run: &mut Run) -> crate::Result<()> {
        self.tracked = run.seeds.iter().position(|&s| self.live.tracks(s));
        Ok(())
    }

    fn proceed(&mut self, it: usize) -> bool {
        self.last_it = it;
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

    fn evaluated(&mut self, net: &Net<f32>, at: &At, run: &mut Run, _: &mut bool) {
        let n = run.columns.len();
        for (e, row) in run.rows.iter().enumerate().filter(|(e, _)| at.active[*e]) {
            self.live.row(&run.columns, run.seeds[e], at.it, &row[row.len() - n..], at.replaced);
        }
        if self.live.keep_params && self.captured.is_none_or(|t| t.elapsed() >= CAPTURE_EVERY) {
            self.capture_all(net, run, |_| at.it, at.active);
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
        if self.live.keep_params {
            // Where each seed's parameters stopped: its stopping or diverging iteration, else the
            // last one trained.
            let ends: Vec<usize> = (0..run.seeds.len())
                .map(|m| run.iterations[m].or(run.diverged_at[m]).unwrap_or(self.last_it))
                .collect();
            self.capture_all(net, run, |m| ends[m], &vec![true; run.seeds.len()]);
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

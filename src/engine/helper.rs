//! A second core for one model's large products.
//!
//! An ensemble is split into parts, one per core; a run with a single part (one seed, or the
//! live lab with few) would leave the other cores idle. [`Helper::install`] starts a thread
//! that waits for half of each large product of this thread ([`join`]); the convolution
//! kernels split their output rows in two (forward, weight gradient) or their input channels
//! (input gradient), which changes no number (each value is computed by the same operations
//! wherever it runs), and the helper adopts the caller's floating-point control (flushed
//! subnormals) for each half.
//!
//! Two cores must never be slower than one. So: a half the helper has not started by the
//! time the caller finished its own is taken back and run by the caller (a helper that the OS
//! has not scheduled — a busy machine, a second vCPU that is only a hyperthread — costs a
//! check, not a wait); the helper spins only briefly between products (the halves take ~50 µs,
//! and waking a sleeping thread costs about that: per-call threads and rayon's pool both made a
//! detect step slower), then yields its core, then sleeps; and whether to use a helper at all
//! is decided once per process by measuring ([`pays`]): a split of a fixed amount of work
//! against the same work on one thread.

use std::cell::{Cell, UnsafeCell};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

const IDLE: u8 = 0;
/// A job is posted; the helper may take it (→ RUNNING) or the caller take it back (→ IDLE).
const READY: u8 = 1;
const DONE: u8 = 2;
const FAILED: u8 = 3;
const QUIT: u8 = 4;
const RUNNING: u8 = 5;

/// A job: the closure to run and the caller's floating-point control.
type Job = (*mut (dyn FnMut() + Send), u32);

/// The hand-off between a thread and its helper: a state and the job it names.
struct Slot {
    state: AtomicU8,
    /// The helper sleeps after a while without work (a paused live run, a long evaluation): it
    /// says so here, and `join` wakes it.
    parked: AtomicBool,
    thread: std::sync::OnceLock<std::thread::Thread>,
    /// The right half of a [`join`] (lifetime erased: `join` waits until it has run) and the
    /// caller's floating-point control; written only while the state is IDLE by the caller.
    job: UnsafeCell<Option<Job>>,
}

// SAFETY: `job` is written by the caller before it publishes READY (Release) and read by the
// helper after it observes READY (Acquire); the caller does not touch it again until DONE.
unsafe impl Sync for Slot {}
// SAFETY: as above; the raw closure pointer is only dereferenced by the helper during a join.
unsafe impl Send for Slot {}

thread_local! {
    static CURRENT: Cell<Option<*const Slot>> = const { Cell::new(None) };
}

/// A helper thread for the installing thread's products, until dropped.
pub struct Helper {
    slot: Arc<Slot>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Helper {
    /// Starts the helper and makes it this thread's (replacing none: installs do not nest).
    pub fn install() -> Helper {
        let slot = Arc::new(Slot {
            state: AtomicU8::new(IDLE),
            parked: AtomicBool::new(false),
            thread: std::sync::OnceLock::new(),
            job: UnsafeCell::new(None),
        });
        let theirs = Arc::clone(&slot);
        let thread = std::thread::Builder::new()
            .name("gradlab-helper".into())
            .spawn(move || serve(&theirs))
            .expect("a helper thread starts");
        CURRENT.set(Some(Arc::as_ptr(&slot)));
        Helper { slot, thread: Some(thread) }
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        CURRENT.set(None);
        self.slot.state.store(QUIT, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

/// Spins without work before the helper yields its core between looks: ~30 µs, longer than
/// the gaps between a training step's products.
const SPINS_BEFORE_YIELD: u32 = 1 << 11;
/// Looks (spins, then yields) without work before the helper sleeps: ~1 ms, far shorter than a
/// paused run.
const LOOKS_BEFORE_SLEEP: u32 = 1 << 12;

fn serve(slot: &Slot) {
    let _ = slot.thread.set(std::thread::current());
    let mut idle = 0u32;
    loop {
        match slot.state.load(Ordering::Acquire) {
            READY => {
                idle = 0;
                // The caller may have taken the job back: only the winner of READY runs it.
                if slot.state.compare_exchange(READY, RUNNING, Ordering::AcqRel, Ordering::Acquire).is_err() {
                    continue;
                }
                // SAFETY: READY was published after the job was written (see `Slot`), and the
                // caller no longer touches it once the state is RUNNING.
                let (job, control) = unsafe { (*slot.job.get()).take() }.expect("a job is set before READY");
                super::denormals::set_control(control);
                // SAFETY: the caller waits in `join` until DONE or FAILED, so the closure and
                // everything it borrows outlive this call.
                let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| unsafe { (*job)() })).is_ok();
                slot.state.store(if ok { DONE } else { FAILED }, Ordering::Release);
            }
            QUIT => return,
            _ if idle >= LOOKS_BEFORE_SLEEP => {
                // Say so, then look once more: `join` either sees `parked` and wakes us, or
                // published READY before we looked (both SeqCst).
                slot.parked.store(true, Ordering::SeqCst);
                if slot.state.load(Ordering::SeqCst) == IDLE {
                    std::thread::park_timeout(std::time::Duration::from_millis(100));
                }
                slot.parked.store(false, Ordering::SeqCst);
                idle = 0;
            }
            _ => {
                idle += 1;
                if idle < SPINS_BEFORE_YIELD {
                    std::hint::spin_loop();
                } else {
                    std::thread::yield_now();
                }
            }
        }
    }
}

/// Whether this thread has an idle helper (a product worth splitting can use it).
pub fn available() -> bool {
    // SAFETY: the pointer is valid while the installing guard lives on this thread.
    CURRENT.get().is_some_and(|s| unsafe { &*s }.state.load(Ordering::Acquire) == IDLE)
}

/// Runs `left` on this thread and `right` on its helper at the same time, returning when both
/// are done; without an idle helper, one after the other here.
pub fn join(left: impl FnOnce() + Send, right: impl FnOnce() + Send) {
    let Some(slot) = CURRENT.get().filter(|_| available()) else {
        left();
        right();
        return;
    };
    // SAFETY: valid while the installing guard lives on this thread.
    let slot = unsafe { &*slot };
    let mut right = Some(right);
    let mut call = move || (right.take().expect("run once"))();
    let job: &mut (dyn FnMut() + Send) = &mut call;
    // SAFETY: lifetime erasure only: this function does not return (or unwind) before the
    // helper reports DONE or FAILED, so `call` outlives every use of the pointer.
    let job: *mut (dyn FnMut() + Send + 'static) = unsafe { std::mem::transmute(job) };
    // SAFETY: the slot is IDLE (checked above), so the helper does not read `job` now.
    unsafe { *slot.job.get() = Some((job, super::denormals::control())) };
    slot.state.store(READY, Ordering::SeqCst);
    if slot.parked.load(Ordering::SeqCst)
        && let Some(t) = slot.thread.get()
    {
        t.unpark();
    }
    let mine = std::panic::catch_unwind(std::panic::AssertUnwindSafe(left));
    // Not started by the helper yet: take it back and run it here (see the module's notes).
    if slot.state.compare_exchange(READY, IDLE, Ordering::AcqRel, Ordering::Acquire).is_ok() {
        // SAFETY: the helper never took the job (it only does after winning READY → RUNNING).
        unsafe { *slot.job.get() = None };
        STOLEN.fetch_add(1, Ordering::Relaxed);
        if let Err(p) = mine {
            std::panic::resume_unwind(p);
        }
        return call();
    }
    let mut spins = 0u32;
    let theirs = loop {
        match slot.state.load(Ordering::Acquire) {
            DONE => break true,
            FAILED => break false,
            _ if spins < SPINS_BEFORE_YIELD => {
                spins += 1;
                std::hint::spin_loop()
            }
            // A helper descheduled mid-job: give it the core rather than spin against it.
            _ => std::thread::yield_now(),
        }
    };
    slot.state.store(IDLE, Ordering::Release);
    if let Err(p) = mine {
        std::panic::resume_unwind(p);
    }
    assert!(theirs, "the helper thread's half of a product panicked");
}

/// Halves the caller took back from a helper that had not started them (for the benchmark).
pub static STOLEN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The outcome of [`pays`]' measurement: the work's time split with a helper over its time on
/// one thread (best of several alternating rounds), and the decision.
#[derive(Clone, Copy, Debug)]
pub struct Calibration {
    pub one_thread_seconds: f64,
    pub split_seconds: f64,
    pub pays: bool,
    /// `GRADLAB_HELPER=on|off` decided instead of the measurement.
    pub forced: bool,
}

/// A split pays when it takes at most this share of the one-thread time (two cores at work
/// with room for the hand-off; a hyperthread sibling or a busy core measures ~0.9–1.3).
pub const PAYS_BELOW: f64 = 0.75;

/// Whether a second thread speeds up one model's products on this machine now: measured once
/// per process (a few milliseconds: the same fixed arithmetic — dependent FMA chains over an
/// L1-resident array, ~40 µs a half, the size of a convolution's half — run on this thread
/// alone and split with a helper, alternating, best of 20 each, after waking the helper and ten unmeasured splits), unless `GRADLAB_HELPER=on|off`
/// says. One core (`GRADLAB_THREADS=1` or one CPU) never installs one.
pub fn pays() -> bool {
    calibration().pays
}

/// [`pays`]' measurement (cached).
pub fn calibration() -> Calibration {
    use std::sync::OnceLock;
    static CAL: OnceLock<Calibration> = OnceLock::new();
    *CAL.get_or_init(|| {
        let forced = match std::env::var("GRADLAB_HELPER").unwrap_or_default().as_str() {
            "on" | "1" => Some(true),
            "off" | "0" => Some(false),
            _ => None,
        };
        let (one, split) = measure_split();
        match forced {
            Some(pays) => Calibration { one_thread_seconds: one, split_seconds: split, pays, forced: true },
            None => Calibration {
                one_thread_seconds: one,
                split_seconds: split,
                pays: split <= PAYS_BELOW * one,
                forced: false,
            },
        }
    })
}

/// Spins until `flag` is set, for at most `limit`: a left half of a [`join`] that gives the
/// helper time to start the right one (a left half that ends first takes the right one back).
fn wait_for(flag: &AtomicBool, limit: std::time::Duration) {
    let t = std::time::Instant::now();
    while !flag.load(Ordering::Acquire) && t.elapsed() < limit {
        std::hint::spin_loop();
    }
}

/// (one thread, split) seconds for the calibration's work.
fn measure_split() -> (f64, f64) {
    use std::time::Instant;
    /// Dependent FMAs over a 4 KB slice, `rounds` times: ~40 µs for the sizes below.
    fn work(v: &mut [f32], rounds: usize) {
        for _ in 0..rounds {
            for x in v.iter_mut() {
                *x = x.mul_add(0.999_9, 1e-4);
            }
        }
        std::hint::black_box(v);
    }
    const ROUNDS: usize = 800;
    let (mut a, mut b) = (vec![1f32; 1024], vec![1f32; 1024]);
    let helper = Helper::install();
    // Wake the helper's core first (an idle vCPU takes a while to be scheduled): a few joins
    // whose left half waits, up to 5 ms each, for the helper to start the right one.
    for _ in 0..3 {
        let started = AtomicBool::new(false);
        join(|| wait_for(&started, std::time::Duration::from_millis(5)), || started.store(true, Ordering::Release));
    }
    for _ in 0..10 {
        join(|| work(&mut a, ROUNDS), || work(&mut b, ROUNDS));
    }
    let (mut one, mut split) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..20 {
        let t = Instant::now();
        work(&mut a, ROUNDS);
        work(&mut b, ROUNDS);
        one = one.min(t.elapsed().as_secs_f64());
        let t = Instant::now();
        join(|| work(&mut a, ROUNDS), || work(&mut b, ROUNDS));
        split = split.min(t.elapsed().as_secs_f64());
    }
    drop(helper);
    (one, split)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_halves_run_and_borrow_the_callers_data() {
        let mut a = vec![0u64; 1000];
        let (lo, hi) = a.split_at_mut(500);
        join(|| lo.iter_mut().for_each(|v| *v = 1), || hi.iter_mut().for_each(|v| *v = 2)); // no helper
        assert_eq!(a.iter().sum::<u64>(), 1500);
        let _h = Helper::install();
        for round in 0..100u64 {
            let (lo, hi) = a.split_at_mut(500);
            let here = std::thread::current().id();
            let mut elsewhere = None;
            let started = AtomicBool::new(false);
            join(
                || {
                    lo.iter_mut().for_each(|v| *v = round);
                    until(&started)
                },
                || {
                    started.store(true, Ordering::SeqCst);
                    elsewhere = Some(std::thread::current().id());
                    hi.iter_mut().for_each(|v| *v = round + 1)
                },
            );
            assert_ne!(elsewhere, Some(here), "the right half ran on the helper");
            assert_eq!(a.iter().sum::<u64>(), 500 * round + 500 * (round + 1));
        }
    }

    /// [`wait_for`] with the tests' patience: two seconds.
    fn until(flag: &AtomicBool) {
        wait_for(flag, std::time::Duration::from_secs(2))
    }

    #[test]
    fn a_sleeping_helper_wakes_for_the_next_product() {
        let _h = Helper::install();
        std::thread::sleep(std::time::Duration::from_millis(50)); // long enough to fall asleep
        for _ in 0..3 {
            let mut elsewhere = None;
            let started = AtomicBool::new(false);
            join(
                || until(&started),
                || {
                    started.store(true, Ordering::SeqCst);
                    elsewhere = Some(std::thread::current().id())
                },
            );
            assert!(elsewhere.is_some_and(|id| id != std::thread::current().id()));
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// A half the helper has not started when the caller's ends is taken back and run by the
    /// caller: both halves done, whatever the helper does (here: asleep, then racing).
    #[test]
    fn a_half_the_helper_has_not_started_is_taken_back() {
        let _h = Helper::install();
        std::thread::sleep(std::time::Duration::from_millis(50)); // asleep: slow to start
        let before = STOLEN.load(Ordering::Relaxed);
        let mut ran = [0u32; 2];
        for _ in 0..1000 {
            let (l, r) = ran.split_at_mut(1);
            join(|| l[0] += 1, || r[0] += 1);
        }
        assert_eq!(ran, [1000, 1000]);
        assert!(STOLEN.load(Ordering::Relaxed) > before, "an empty left half took at least one right half back");
    }

    #[test]
    fn the_helper_computes_with_the_callers_flushed_subnormals() {
        let _h = Helper::install();
        let _ftz = super::super::denormals::FlushDenormals::new();
        let mut there = 1.0f32;
        let mut elsewhere = None;
        let started = AtomicBool::new(false);
        join(
            || until(&started),
            || {
                started.store(true, Ordering::SeqCst);
                elsewhere = Some(std::thread::current().id());
                there = std::hint::black_box(1e-38f32) * std::hint::black_box(0.01f32)
            },
        );
        assert!(elsewhere.is_some_and(|id| id != std::thread::current().id()), "ran on the helper");
        #[cfg(target_arch = "x86_64")]
        assert_eq!(there, 0.0, "flushed on the helper too");
    }

    /// The calibration measured something and decided by its rule (or the variable's word).
    #[test]
    fn the_calibration_decides_by_its_measurement() {
        let c = calibration();
        assert!(c.one_thread_seconds > 0.0 && c.split_seconds > 0.0, "{c:?}");
        if !c.forced {
            assert_eq!(c.pays, c.split_seconds <= PAYS_BELOW * c.one_thread_seconds, "{c:?}");
        }
    }
}

//! A second core for one model's large products.
//!
//! An ensemble is split into parts, one per core; a run with a single part (one seed, or the
//! live lab with few) would leave the other cores idle. [`Helper::install`] starts a thread
//! that waits, spinning, for half of each large product of this thread ([`join`]); the
//! convolution kernels split their output rows in two (forward, weight gradient) or their input
//! channels (input gradient, AVX-512 kernel), which changes no number (each value is computed by
//! the same operations wherever it runs), and the helper adopts the caller's
//! floating-point control (flushed subnormals) for each half. Spinning rather than sleeping
//! between products: the halves take ~50 µs, and waking a sleeping thread costs about that
//! (per-call threads and rayon's pool both made a detect step slower); after ~1 ms without work
//! (a paused live run) it sleeps until the next product wakes it.

use std::cell::{Cell, UnsafeCell};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

const IDLE: u8 = 0;
const READY: u8 = 1;
const DONE: u8 = 2;
const FAILED: u8 = 3;
const QUIT: u8 = 4;

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

/// Spins without work before the helper sleeps: ~1 ms, far longer than the gaps between a
/// training step's products, far shorter than a paused run.
const SPINS_BEFORE_SLEEP: u32 = 1 << 16;

fn serve(slot: &Slot) {
    let _ = slot.thread.set(std::thread::current());
    let mut idle_spins = 0u32;
    loop {
        match slot.state.load(Ordering::Acquire) {
            READY => {
                idle_spins = 0;
                // SAFETY: READY was published after the job was written (see `Slot`).
                let (job, control) = unsafe { (*slot.job.get()).take() }.expect("a job is set before READY");
                super::denormals::set_control(control);
                // SAFETY: the caller waits in `join` until DONE or FAILED, so the closure and
                // everything it borrows outlive this call.
                let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| unsafe { (*job)() })).is_ok();
                slot.state.store(if ok { DONE } else { FAILED }, Ordering::Release);
            }
            QUIT => return,
            _ if idle_spins >= SPINS_BEFORE_SLEEP => {
                // Say so, then look once more: `join` either sees `parked` and wakes us, or
                // published READY before we looked (both SeqCst).
                slot.parked.store(true, Ordering::SeqCst);
                if slot.state.load(Ordering::SeqCst) == IDLE {
                    std::thread::park_timeout(std::time::Duration::from_millis(100));
                }
                slot.parked.store(false, Ordering::SeqCst);
                idle_spins = 0;
            }
            _ => {
                idle_spins += 1;
                std::hint::spin_loop();
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
    let theirs = loop {
        match slot.state.load(Ordering::Acquire) {
            DONE => break true,
            FAILED => break false,
            _ => std::hint::spin_loop(),
        }
    };
    slot.state.store(IDLE, Ordering::Release);
    if let Err(p) = mine {
        std::panic::resume_unwind(p);
    }
    assert!(theirs, "the helper thread's half of a product panicked");
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
            join(
                || lo.iter_mut().for_each(|v| *v = round),
                || {
                    elsewhere = Some(std::thread::current().id());
                    hi.iter_mut().for_each(|v| *v = round + 1)
                },
            );
            assert_ne!(elsewhere, Some(here), "the right half ran on the helper");
            assert_eq!(a.iter().sum::<u64>(), 500 * round + 500 * (round + 1));
        }
    }

    #[test]
    fn a_sleeping_helper_wakes_for_the_next_product() {
        let _h = Helper::install();
        std::thread::sleep(std::time::Duration::from_millis(50)); // long enough to fall asleep
        for _ in 0..3 {
            let mut elsewhere = None;
            join(|| {}, || elsewhere = Some(std::thread::current().id()));
            assert!(elsewhere.is_some_and(|id| id != std::thread::current().id()));
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    #[test]
    fn the_helper_computes_with_the_callers_flushed_subnormals() {
        let _h = Helper::install();
        let _ftz = super::super::denormals::FlushDenormals::new();
        let mut there = 1.0f32;
        join(|| {}, || there = std::hint::black_box(1e-38f32) * std::hint::black_box(0.01f32));
        #[cfg(target_arch = "x86_64")]
        assert_eq!(there, 0.0, "flushed on the helper too");
    }
}

//! A persistent worker pool (std only): threads are created once, with the backend, and
//! parked between jobs, so a matmul costs no thread spawn and no allocation.
//!
//! A job is a `&dyn Fn()` that every participant calls; it claims work items from its own
//! atomic counter until none are left, so which thread computes an item never changes what is
//! computed. The caller publishes the job (epoch bump), runs it itself, then closes it and
//! waits only for workers that are inside it. A worker that was not scheduled in time simply
//! finds nothing left: on a loaded machine the caller never waits for a thread that has not
//! started. Workers spin briefly on the epoch before sleeping on a condvar, because decode
//! issues hundreds of small matmuls per token a few microseconds apart.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A job: every participant calls it; it shares out its own work.
type Job<'a> = dyn Fn() + Sync + 'a;

/// How long an idle worker spins before it sleeps.
const SPIN: Duration = Duration::from_micros(300);

struct Shared {
    /// Bumped once per job (SeqCst with `sleepers`, so a wake-up is never lost).
    epoch: AtomicUsize,
    /// Whether the current job may still be entered (SeqCst with `active`).
    open: AtomicBool,
    /// Workers inside the current job.
    active: AtomicUsize,
    /// A worker's job panicked (reported by [`Pool::run`]).
    panicked: AtomicBool,
    /// The current job: a `*const Job` whose lifetime [`Pool::run`] guarantees by not
    /// returning before every worker is done with it. Stored as a thin pointer to a fat one.
    job: AtomicPtr<&'static Job<'static>>,
    quit: AtomicBool,
    sleepers: AtomicUsize,
    lock: Mutex<()>,
    wake: Condvar,
}

/// The pool (see the module docs). Dropping it stops and joins the workers.
pub struct Pool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
}

impl Pool {
    /// A pool of `threads` threads in all: the caller plus `threads − 1` workers. Fails if the
    /// OS refuses a thread.
    pub fn new(threads: usize) -> std::io::Result<Pool> {
        let shared = Arc::new(Shared {
            epoch: AtomicUsize::new(0),
            open: AtomicBool::new(false),
            active: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            job: AtomicPtr::new(core::ptr::null_mut()),
            quit: AtomicBool::new(false),
            sleepers: AtomicUsize::new(0),
            lock: Mutex::new(()),
            wake: Condvar::new(),
        });
        let n = threads.max(1);
        let mut pool = Pool { shared, workers: Vec::with_capacity(n - 1) };
        for i in 1..n {
            let sh = Arc::clone(&pool.shared);
            let h = std::thread::Builder::new()
                .name(format!("npu-cpu-{i}"))
                .spawn(move || worker(sh))?;
            pool.workers.push(h);
        }
        Ok(pool)
    }

    /// Threads, the caller included.
    pub fn threads(&self) -> usize {
        self.workers.len() + 1
    }

    /// Runs `job` on the calling thread and on every worker that gets to it before the caller
    /// is done; returns when no worker is inside it any more. Returns false if a worker's call
    /// panicked.
    pub fn run(&self, job: &Job<'_>) -> bool {
        if self.workers.is_empty() {
            job();
            return true;
        }
        let sh = &*self.shared;
        // SAFETY: workers dereference the pointer only while `open` is set or after they
        // counted themselves into `active` and saw `open`; this function clears `open`, then
        // waits for `active` to reach 0 before returning (and does not unwind before that:
        // the caller's call runs under catch_unwind), so the job outlives every use.
        let erased: &'static Job<'static> =
            unsafe { core::mem::transmute::<&Job<'_>, &'static Job<'static>>(job) };
        let slot = &erased as *const &'static Job<'static> as *mut &'static Job<'static>;
        sh.job.store(slot, Ordering::SeqCst);
        sh.open.store(true, Ordering::SeqCst);
        sh.epoch.fetch_add(1, Ordering::SeqCst);
        if sh.sleepers.load(Ordering::SeqCst) > 0 {
            let _g = sh.lock.lock().unwrap_or_else(|e| e.into_inner());
            sh.wake.notify_all();
        }
        let mine = catch_unwind(AssertUnwindSafe(job));
        sh.open.store(false, Ordering::SeqCst);
        let mut spins = 0u32;
        while sh.active.load(Ordering::SeqCst) > 0 {
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(1024) {
                std::thread::yield_now();
            } else {
                core::hint::spin_loop();
            }
        }
        sh.job.store(core::ptr::null_mut(), Ordering::SeqCst);
        if let Err(p) = mine {
            std::panic::resume_unwind(p);
        }
        !sh.panicked.swap(false, Ordering::SeqCst)
    }
}

fn worker(sh: Arc<Shared>) {
    let mut seen = 0usize;
    loop {
        // Spin, then sleep, until a new epoch or quit.
        let start = Instant::now();
        let mut spins = 0u32;
        loop {
            if sh.quit.load(Ordering::Acquire) {
                return;
            }
            if sh.epoch.load(Ordering::SeqCst) != seen {
                break;
            }
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(256) && start.elapsed() > SPIN {
                let mut g = sh.lock.lock().unwrap_or_else(|e| e.into_inner());
                sh.sleepers.fetch_add(1, Ordering::SeqCst);
                while sh.epoch.load(Ordering::SeqCst) == seen && !sh.quit.load(Ordering::SeqCst) {
                    g = sh.wake.wait(g).unwrap_or_else(|e| e.into_inner());
                }
                sh.sleepers.fetch_sub(1, Ordering::SeqCst);
                drop(g);
            } else {
                core::hint::spin_loop();
            }
        }
        seen = sh.epoch.load(Ordering::SeqCst);
        sh.active.fetch_add(1, Ordering::SeqCst);
        if sh.open.load(Ordering::SeqCst) {
            let p = sh.job.load(Ordering::SeqCst);
            if !p.is_null() {
                // SAFETY: see Pool::run: the job stays valid while we are counted in `active`.
                let job: &Job<'static> = unsafe { *p };
                if catch_unwind(AssertUnwindSafe(job)).is_err() {
                    sh.panicked.store(true, Ordering::SeqCst);
                }
            }
        }
        sh.active.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shared.quit.store(true, Ordering::SeqCst);
        {
            let _g = self.shared.lock.lock().unwrap_or_else(|e| e.into_inner());
            self.shared.wake.notify_all();
        }
        for h in self.workers.drain(..) {
            let _ = h.join();
        }
    }
}

//! The worker's stop request, shared by its slots: SIGINT/SIGTERM (watched here, on their own
//! thread) and a Spot interruption notice (spot.rs, through `request_within`) ask the worker to
//! claim nothing more. Running scripts then get a grace period, counted from when the request
//! is first seen; a Spot notice can only shorten it (to fit EC2's two-minute warning) and a
//! second signal ends it at once. Each signal is acknowledged on stderr (unless -q), so a
//! person at the terminal knows what the worker is doing. This file only holds the state and
//! answers "stop?" and "grace over?": it never kills a script or touches the store (slot.rs
//! kills the scripts and hands their tasks back once the grace is over).

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub struct Shutdown {
    requested: Arc<AtomicBool>,
    since: OnceLock<Instant>,
    /// Milliseconds; a Spot notice may shorten it to fit the two-minute warning.
    grace_ms: AtomicU64,
    /// Scripts running now, for the acknowledgement.
    running: AtomicUsize,
}

impl Shutdown {
    pub fn new(grace: Duration) -> Self {
        Self {
            requested: Arc::new(AtomicBool::new(false)),
            since: OnceLock::new(),
            grace_ms: AtomicU64::new(grace.as_millis() as u64),
            running: AtomicUsize::new(0),
        }
    }

    /// Turns SIGINT and SIGTERM into stop requests instead of killing the process: the first
    /// starts the grace period, a second ends it. Signals are read on their own thread, where
    /// printing is safe.
    pub fn watch_signals(self: &Arc<Self>) -> std::io::Result<()> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
        let me = Arc::clone(self);
        std::thread::spawn(move || {
            for (n, signal) in signals.forever().enumerate() {
                let name = if signal == SIGINT {
                    "SIGINT"
                } else {
                    "SIGTERM"
                };
                if n == 0 {
                    let grace = me.grace_ms.load(Ordering::SeqCst) as f64 / 1000.0;
                    let running = me.running.load(Ordering::SeqCst);
                    crate::note!(
                        "stopping ({name}): claiming nothing more; {running} running task(s) get \
                         {grace:.0}s, then they are killed and handed back (again to stop now)"
                    );
                    me.request();
                } else {
                    crate::note!(
                        "stopping now ({name}): killing running tasks and handing them back"
                    );
                    me.grace_ms.store(0, Ordering::SeqCst);
                    me.request();
                }
            }
        });
        Ok(())
    }

    /// A script started (for the count in the acknowledgement).
    pub fn task_started(&self) {
        self.running.fetch_add(1, Ordering::SeqCst);
    }

    /// A script ended.
    pub fn task_ended(&self) {
        self.running.fetch_sub(1, Ordering::SeqCst);
    }

    pub fn request(&self) {
        self.requested.store(true, Ordering::SeqCst);
    }

    /// A stop that must be over within `limit` (a Spot interruption notice).
    pub fn request_within(&self, limit: Duration) {
        self.grace_ms
            .fetch_min(limit.as_millis() as u64, Ordering::SeqCst);
        self.request();
    }

    pub fn requested(&self) -> bool {
        let asked = self.requested.load(Ordering::SeqCst);
        if asked {
            self.since.get_or_init(Instant::now);
        }
        asked
    }

    /// True once a stop was requested and the grace period has run out.
    pub fn grace_over(&self) -> bool {
        self.requested()
            && self.since.get().is_some_and(|since| {
                since.elapsed() >= Duration::from_millis(self.grace_ms.load(Ordering::SeqCst))
            })
    }

    /// Sleeps up to `d`, waking early when a stop is requested.
    pub fn sleep(&self, d: Duration) {
        let until = Instant::now() + d;
        while !self.requested() {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            std::thread::sleep(left.min(Duration::from_millis(100)));
        }
    }
}

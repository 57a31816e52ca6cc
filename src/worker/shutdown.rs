//! When to stop: SIGINT/SIGTERM (later also a Spot interruption notice) ask the worker to claim
//! nothing more; running scripts get a grace period, counted from the first request.

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub struct Shutdown {
    requested: Arc<AtomicBool>,
    since: OnceLock<Instant>,
    /// Milliseconds; a Spot notice may shorten it to fit the two-minute warning.
    grace_ms: AtomicU64,
}

impl Shutdown {
    pub fn new(grace: Duration) -> Self {
        Self {
            requested: Arc::new(AtomicBool::new(false)),
            since: OnceLock::new(),
            grace_ms: AtomicU64::new(grace.as_millis() as u64),
        }
    }

    /// Turns SIGINT and SIGTERM into a stop request instead of killing the process.
    pub fn on_signals(self) -> std::io::Result<Self> {
        for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            signal_hook::flag::register(signal, Arc::clone(&self.requested))?;
        }
        Ok(self)
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

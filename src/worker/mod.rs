//! Worker mode: claim one task, run its script, heartbeat while it runs, record the outcome,
//! repeat until the collection is drained. Never runs a task it does not hold, and never
//! overwrites a task it lost.

mod identity;
mod imds;
mod logs;
mod polled;
mod process;
mod record;
mod reported;
mod run;
mod setup;
mod shutdown;
mod slot;
mod spot;
mod warden;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub use identity::{default_owner, detect as detect_owner, step_from_tag};
pub use logs::LogShipper;
pub use setup::{Prepared, Setup, results_prefix};
pub use shutdown::Shutdown;
pub use spot::watch_spot_notice;

use crate::error::Result;
use crate::store::TaskStore;

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct Options {
    pub collection: String,
    /// Recorded on every task it runs.
    pub owner: String,
    /// Tasks run in parallel.
    pub slots: usize,
    /// Stop after claiming this many tasks.
    pub max_tasks: Option<u64>,
    /// How long a claim holds without a heartbeat; heartbeats come every lease/3.
    pub lease: Duration,
    /// What to do when nothing is claimable.
    pub wait: Wait,
    /// Longest pause between looks at a collection with nothing claimable.
    pub max_idle: Duration,
    /// With `--wait`/`--watch`: a slot that found nothing to claim for this long leaves.
    pub idle_timeout: Option<Duration>,
    /// Set for every script besides the task's own variables (e.g. ANAMO_RESULTS).
    pub script_env: Vec<(String, String)>,
    /// Take nothing new after this long.
    pub stop_claiming_after: Option<Duration>,
    /// Each run's output goes to `DIR/COLLECTION/TASK_ID/RUN.log` (runs never renumber).
    pub log_dir: Option<PathBuf>,
    /// Copies each finished attempt's log to S3 (`--log-uri`).
    pub log_shipper: Option<std::sync::Arc<LogShipper>>,
}

/// What a worker does when nothing in its collection is claimable (after promoting waiting
/// tasks whose upstream is done).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Exit.
    Exit,
    /// `--wait`: stay while something can become claimable without a person acting.
    Flow,
    /// `--watch`: stay until stopped, for tasks added later.
    Forever,
}

/// The longest pause between looks at a collection with nothing claimable.
pub const MAX_IDLE: Duration = Duration::from_secs(30);

/// What a worker did, for its one-line summary.
#[derive(Debug, Default)]
pub struct Tally {
    pub done: AtomicU64,
    pub failed: AtomicU64,
    /// Failed runs that went back to `todo` for another attempt.
    pub retried: AtomicU64,
    /// Handed back on stop without burning an attempt.
    pub released: AtomicU64,
    /// Taken away (lease lost) while running; their outcome was not written.
    pub lost: AtomicU64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub done: u64,
    pub failed: u64,
    pub retried: u64,
    pub released: u64,
    pub lost: u64,
    /// Logs that could not be copied to S3 (kept on the machine).
    pub log_uploads_failed: u64,
    pub wall: Duration,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} done, {} failed, {} retried, {} released, {} lost in {:.1}s",
            self.done,
            self.failed,
            self.retried,
            self.released,
            self.lost,
            self.wall.as_secs_f64()
        )?;
        if self.log_uploads_failed > 0 {
            write!(
                f,
                "; {} log upload(s) failed (kept on this machine)",
                self.log_uploads_failed
            )?;
        }
        Ok(())
    }
}

/// Runs the worker until the collection is drained, a limit is reached or a stop is requested.
/// Returns the summary, and the first store error that ended a slot, if any.
pub fn run(store: &dyn TaskStore, opts: &Options, shutdown: &Shutdown) -> (Summary, Result<()>) {
    let started = Instant::now();
    // Nothing runs unwatched: without its warden a worker claims nothing.
    let warden = match warden::Warden::start() {
        Ok(w) => w,
        Err(e) => {
            let e = crate::error::Error::Invalid(format!(
                "cannot start the worker's warden (bash): {e}; scripts run under bash, so it \
                 must be on PATH. Nothing was claimed"
            ));
            return (Summary::default(), Err(e));
        }
    };
    let reports = match reported::ReportDir::create() {
        Ok(r) => r,
        Err(e) => {
            let e = crate::error::Error::Invalid(format!(
                "cannot make a folder for the scripts' {} and {} files under {}: {e}; set \
                 TMPDIR to a writable folder. Nothing was claimed",
                reported::METRICS_VAR,
                reported::OUTPUTS_VAR,
                std::env::temp_dir().display()
            ));
            return (Summary::default(), Err(e));
        }
    };
    let tally = Tally::default();
    let claimed = AtomicU64::new(0);
    let halted = AtomicBool::new(false);
    let told_blocked = AtomicBool::new(false);
    let told_waiting = AtomicBool::new(false);
    let told_idle = AtomicBool::new(false);
    let last_survey = std::sync::Mutex::new(None);
    let stranded_looks = std::sync::atomic::AtomicU32::new(0);
    let last_leave = std::sync::Mutex::new(None);
    let ctx = slot::SlotContext {
        store,
        warden: &warden,
        reports: &reports,
        opts,
        shutdown,
        tally: &tally,
        claimed: &claimed,
        started,
        halted: &halted,
        told_blocked: &told_blocked,
        told_waiting: &told_waiting,
        told_idle: &told_idle,
        last_survey: &last_survey,
        stranded_looks: &stranded_looks,
        last_leave: &last_leave,
    };
    let results: Vec<Result<()>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..opts.slots.max(1))
            .map(|_| s.spawn(|| slot::run(&ctx)))
            .collect();
        // A panic outside a task (slot.rs catches those inside one) is still a failure.
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(crate::error::Error::Internal(
                        "a worker slot panicked outside any task".into(),
                    ))
                })
            })
            .collect()
    });
    let load = |a: &AtomicU64| a.load(Ordering::SeqCst);
    let summary = Summary {
        done: load(&tally.done),
        failed: load(&tally.failed),
        retried: load(&tally.retried),
        released: load(&tally.released),
        lost: load(&tally.lost),
        log_uploads_failed: opts.log_shipper.as_ref().map_or(0, |s| s.failed()),
        wall: started.elapsed(),
    };
    (summary, results.into_iter().collect())
}

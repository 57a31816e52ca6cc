//! One worker slot: claim -> run -> heartbeat -> finish, in a loop. A worker has `--slots` of
//! them, sharing one store connection and one stop signal.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tracing::{info, warn};

use super::process::{self, Running};
use super::{Options, Shutdown, Tally};
use crate::clock::now_ms;
use crate::error::Result;
use crate::model::{Claim, Outcome, TaskState};
use crate::store::TaskStore;

pub(super) struct SlotContext<'a> {
    pub store: &'a dyn TaskStore,
    pub opts: &'a Options,
    pub shutdown: &'a Shutdown,
    pub tally: &'a Tally,
    pub claimed: &'a AtomicU64,
    pub started: Instant,
}

/// Longest pause between polls of an empty collection with `--wait`.
const MAX_IDLE: Duration = Duration::from_secs(30);
/// How often a running script is checked against stop requests and timeouts.
const TICK: Duration = Duration::from_millis(100);
/// Store writes that must not be lost (a result, a release) are tried this many times.
const WRITE_TRIES: u32 = 4;
/// Exit code recorded for a script killed at its timeout, as coreutils `timeout` does.
const TIMEOUT_EXIT: i32 = 124;

pub(super) fn run(ctx: &SlotContext<'_>) -> Result<()> {
    let mut idle = Duration::from_millis(250);
    loop {
        if ctx.shutdown.requested() || budget_spent(ctx) {
            return Ok(());
        }
        if let Some(max) = ctx.opts.max_tasks {
            // Reserve a place before claiming so parallel slots never overshoot.
            if ctx.claimed.fetch_add(1, Ordering::SeqCst) >= max {
                return Ok(());
            }
        }
        let claim = with_retries("claim", || {
            ctx.store
                .claim(&ctx.opts.collection, &ctx.opts.owner, ctx.opts.lease)
        });
        match claim {
            Ok(Some(claim)) => {
                idle = Duration::from_millis(250);
                run_task(ctx, claim);
            }
            Ok(None) => {
                if ctx.opts.max_tasks.is_some() {
                    ctx.claimed.fetch_sub(1, Ordering::SeqCst);
                }
                if !ctx.opts.wait {
                    return Ok(());
                }
                ctx.shutdown.sleep(idle);
                idle = (idle * 2).min(MAX_IDLE);
            }
            Err(e) => return Err(e),
        }
    }
}

fn budget_spent(ctx: &SlotContext<'_>) -> bool {
    ctx.opts
        .stop_claiming_after
        .is_some_and(|d| ctx.started.elapsed() >= d)
}

/// Transient store errors (a busy database, a throttled request) get a few tries with backoff.
fn with_retries<T>(what: &str, mut f: impl FnMut() -> Result<T>) -> Result<T> {
    let mut pause = Duration::from_millis(500);
    let mut tries = 1;
    loop {
        match f() {
            Ok(v) => return Ok(v),
            Err(e) if tries < WRITE_TRIES => {
                warn!("{what} failed (try {tries} of {WRITE_TRIES}): {e}");
                tries += 1;
                std::thread::sleep(pause);
                pause *= 2;
            }
            Err(e) => return Err(e),
        }
    }
}

/// How a run ended, before it is written.
enum Ending {
    Exited(Outcome),
    /// Stopped by the worker: hand the task back.
    Released,
    /// The lease was lost: write nothing.
    Lost,
}

fn run_task(ctx: &SlotContext<'_>, mut claim: Claim) {
    let task = &claim.task;
    info!(
        "running {}/{} (attempt {} of {})",
        task.collection, task.task_id, task.attempts, task.max_attempts
    );
    let log = ctx.opts.log_dir.as_ref().map(|dir| {
        let p = dir
            .join(&task.collection)
            .join(&task.task_id)
            .join(format!("{}.log", task.attempts));
        std::path::absolute(&p).unwrap_or(p)
    });
    let mut ending = match process::spawn(task, log.as_deref()) {
        Ok(running) => supervise(ctx, &mut claim, &running, log.as_deref()),
        Err(e) => Ending::Exited(Outcome {
            exit_code: None,
            succeeded: false,
            error_tail: Some(format!("anamo: could not start bash: {e}")),
            log_uri: None,
            finished_at: now_ms(),
        }),
    };
    if let (Ending::Exited(outcome), Some(shipper), Some(local)) =
        (&mut ending, &ctx.opts.log_shipper, &log)
    {
        outcome.log_uri = Some(shipper.ship(local, &claim.task));
    }
    record(ctx, &claim, ending);
}

/// Waits for the script while heartbeating, watching the timeout and stop requests.
fn supervise(
    ctx: &SlotContext<'_>,
    claim: &mut Claim,
    running: &Running,
    log: Option<&std::path::Path>,
) -> Ending {
    let lease = ctx.opts.lease;
    let beat_every = lease / 3;
    let mut next_beat = Instant::now() + beat_every;
    let deadline = claim
        .task
        .timeout_secs
        .map(|s| Instant::now() + Duration::from_secs(s));
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = running.wait_timeout(TICK) {
            break status;
        }
        let now = Instant::now();
        if ctx.shutdown.grace_over() {
            running.kill();
            running.finish_output();
            return Ending::Released;
        }
        if deadline.is_some_and(|d| now >= d) {
            timed_out = true;
            if let Some(status) = running.kill() {
                break status;
            }
        }
        if now >= next_beat {
            match ctx.store.heartbeat(claim, lease) {
                Ok(true) => next_beat = now + beat_every,
                Ok(false) => {
                    warn!(
                        "lost the lease on {}/{}; killing its script",
                        claim.task.collection, claim.task.task_id
                    );
                    running.kill();
                    running.finish_output();
                    return Ending::Lost;
                }
                // Keep going: the lease has time left, and a later beat may get through.
                Err(e) => {
                    warn!("heartbeat failed: {e}");
                    next_beat = now + beat_every.min(Duration::from_secs(5));
                }
            }
        }
    };
    let mut tail = running.finish_output();
    let code = match &status {
        Ok(s) => Some(process::exit_code(s)),
        Err(e) => {
            note(&mut tail, &format!("anamo: lost the script: {e}"));
            None
        }
    };
    let (succeeded, code) = if timed_out {
        let secs = claim.task.timeout_secs.unwrap_or(0);
        note(
            &mut tail,
            &format!("anamo: timed out after {secs}s and was killed"),
        );
        (false, Some(TIMEOUT_EXIT))
    } else {
        if let Some(c) = code.filter(|c| *c != 0) {
            note(
                &mut tail,
                &format!("anamo: the script exited with code {c}"),
            );
        }
        (code == Some(0), code)
    };
    Ending::Exited(Outcome {
        exit_code: code,
        succeeded,
        error_tail: (!succeeded).then_some(tail),
        log_uri: log.map(|p| p.display().to_string()),
        finished_at: now_ms(),
    })
}

/// Adds anamo's own line to a stderr tail.
fn note(tail: &mut String, line: &str) {
    if !tail.is_empty() && !tail.ends_with('\n') {
        tail.push('\n');
    }
    tail.push_str(line);
}

/// Writes the ending to the store and counts it.
fn record(ctx: &SlotContext<'_>, claim: &Claim, ending: Ending) {
    let t = &claim.task;
    let tally = ctx.tally;
    let count = |c: &AtomicU64| {
        c.fetch_add(1, Ordering::SeqCst);
    };
    match ending {
        Ending::Lost => count(&tally.lost),
        Ending::Released => match with_retries("release", || ctx.store.release(claim)) {
            Ok(true) => count(&tally.released),
            Ok(false) => count(&tally.lost),
            Err(e) => {
                warn!(
                    "could not release {}/{}: {e}; its lease will expire",
                    t.collection, t.task_id
                );
                count(&tally.lost);
            }
        },
        Ending::Exited(outcome) => {
            match with_retries("finish", || ctx.store.finish(claim, &outcome)) {
                Ok(Some(TaskState::Done)) => count(&tally.done),
                Ok(Some(TaskState::Todo)) => count(&tally.retried),
                Ok(Some(_)) => count(&tally.failed),
                Ok(None) => {
                    warn!(
                        "{}/{} was taken away before it finished; its result is dropped",
                        t.collection, t.task_id
                    );
                    count(&tally.lost);
                }
                Err(e) => {
                    warn!(
                        "could not record {}/{}: {e}; its lease will expire and it will run again",
                        t.collection, t.task_id
                    );
                    count(&tally.lost);
                }
            }
        }
    }
}

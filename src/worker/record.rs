//! Writing a run's ending to the store: the outcome while the lease holds, a release, the
//! promotion of what waited on a done task; each counted in the worker's tally.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tracing::{info, warn};

use super::slot::{MAX_STORE_PAUSE, SlotContext};
use crate::backoff::Backoff;
use crate::clock::now_ms;
use crate::error::Result;
use crate::model::{Claim, Outcome, TaskState};

/// How a run ended, before it is written.
pub(super) enum Ending {
    Exited(Outcome),
    /// Stopped by the worker: hand the task back.
    Released,
    /// The lease was lost: write nothing.
    Lost,
}

/// A release is tried this many times; if it still fails, the lease expires on its own.
const WRITE_TRIES: u32 = 4;

/// A release gets a few tries with backoff when the failure may pass; its lease covers the
/// rest. A failure that will not pass (a damaged task) is not tried again.
fn with_retries<T>(what: &str, mut f: impl FnMut() -> Result<T>) -> Result<T> {
    let mut backoff = Backoff::new(Duration::from_millis(500), MAX_STORE_PAUSE);
    let mut tries = 1;
    loop {
        match f() {
            Ok(v) => return Ok(v),
            Err(e) if e.is_transient() && tries < WRITE_TRIES => {
                warn!("{what} failed (try {tries} of {WRITE_TRIES}): {e}");
                tries += 1;
                std::thread::sleep(backoff.next_pause());
            }
            Err(e) => return Err(e),
        }
    }
}

/// Writes the ending to the store and counts it.
pub(super) fn record(ctx: &SlotContext<'_>, claim: &Claim, ending: Ending) {
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
        Ending::Exited(outcome) => match finish_while_held(ctx, claim, &outcome) {
            Ok(Some(TaskState::Done)) => {
                count(&tally.done);
                promote_downstream(ctx, claim);
            }
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
        },
    }
}

/// Releases the tasks that waited for this one (same sample, a later step). A failure here
/// loses nothing: the task is done, and whatever it should have released is promoted by the
/// next idle worker of that step or `anamo tasks release-stale`.
fn promote_downstream(ctx: &SlotContext<'_>, claim: &Claim) {
    let t = &claim.task;
    let Some(sample) = &t.sample else { return };
    match with_retries("promotion", || ctx.store.promote(sample)) {
        Ok(0) => {}
        Ok(n) => info!(
            "{}/{} done: {n} waiting task(s) of {sample} may run now",
            t.collection, t.task_id
        ),
        Err(e) => warn!(
            "could not release the tasks waiting for {}/{}: {e}; an idle worker or \
             `anamo tasks release-stale` will",
            t.collection, t.task_id
        ),
    }
}

/// Writes a run's outcome, trying again for as long as the lease holds: a result is worth
/// more than the few requests it takes to get it through throttling or a network fault.
fn finish_while_held(
    ctx: &SlotContext<'_>,
    claim: &Claim,
    outcome: &Outcome,
) -> Result<Option<TaskState>> {
    let held_until = claim.task.lease_until.unwrap_or(0);
    let mut backoff = Backoff::new(Duration::from_millis(500), MAX_STORE_PAUSE);
    let mut tries = 1;
    loop {
        match ctx.store.finish(claim, outcome) {
            Ok(v) => return Ok(v),
            Err(e) => {
                let left = Duration::from_millis((held_until - now_ms()).max(0) as u64);
                if left <= backoff.peek() {
                    return Err(e);
                }
                let pause = backoff.next_pause();
                warn!(
                    "recording {}/{} failed (try {tries}): {e}; trying again in {pause:?}, \
                     {:.0}s of lease left",
                    claim.task.collection,
                    claim.task.task_id,
                    left.as_secs_f64()
                );
                std::thread::sleep(pause);
                tries += 1;
            }
        }
    }
}

//! One worker slot: claim -> run -> heartbeat -> finish, in a loop. A worker has `--slots` of
//! them, sharing one store connection and one stop signal. Here the loop and what a slot does
//! when nothing is claimable; `run.rs` runs a claimed task and `record.rs` writes its ending.

use std::panic::AssertUnwindSafe;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};

use super::{Options, Shutdown, Tally, Wait};
use crate::backoff::Backoff;
use crate::error::{Error, Result};
use crate::model::{Claim, ClaimAttempt, Survey, Unclaimable};
use crate::store::{TaskStore, flow};

pub(super) struct SlotContext<'a> {
    pub store: &'a dyn TaskStore,
    /// Kills what the scripts started if the worker dies.
    pub warden: &'a super::warden::Warden,
    /// Where runs write what they report.
    pub reports: &'a super::reported::ReportDir,
    pub opts: &'a Options,
    pub shutdown: &'a Shutdown,
    pub tally: &'a Tally,
    pub claimed: &'a AtomicU64,
    pub started: Instant,
    /// Set when a slot panicked: the others claim nothing more, finish what they run, and
    /// the worker exits non-zero.
    pub halted: &'a AtomicBool,
    /// Set once the blocked waiting tasks were reported, so slots do not repeat it.
    pub told_blocked: &'a AtomicBool,
    /// Set once the waiting tasks a worker without --wait leaves were reported.
    pub told_waiting: &'a AtomicBool,
    /// Set once a slot left on --idle-timeout, so the note comes once.
    pub told_idle: &'a AtomicBool,
    /// The last look at the collection's waiting tasks, shared by the slots (one look serves
    /// every slot that runs dry at about the same time).
    pub last_survey: &'a Mutex<Option<(Instant, Survey)>>,
    /// Looks at the table's `todo` tasks made after the claim index showed none: a bounded
    /// number, then the worker names what no claim can see and fails.
    pub stranded_looks: &'a AtomicU32,
    /// When a slot last found the table's step drained on its way out: it stands for the
    /// slots that leave about together, so a worker reads the step once, not once a slot.
    pub last_leave: &'a Mutex<Option<Instant>>,
}

/// How many times a worker looks again when the table holds `todo` tasks the claim index did
/// not show (the index lags a write by about a second), and the pause between looks.
const STRANDED_LOOKS: u32 = 3;
const STRANDED_PAUSE: Duration = Duration::from_secs(2);

/// How long a look at the waiting tasks that promoted nothing stands for every slot.
const SURVEY_STANDS: Duration = Duration::from_secs(10);

/// Longest pause between tries of a claim or a result while the store keeps failing.
pub(super) const MAX_STORE_PAUSE: Duration = Duration::from_secs(30);

pub(super) fn run(ctx: &SlotContext<'_>) -> Result<()> {
    let mut idle = Backoff::steady(Duration::from_millis(250), ctx.opts.max_idle);
    let mut failing = Backoff::new(Duration::from_millis(500), MAX_STORE_PAUSE);
    // Since when this slot has found nothing to claim (for --idle-timeout).
    let mut empty_since: Option<Instant> = None;
    loop {
        if ctx.shutdown.requested() || ctx.halted.load(Ordering::SeqCst) || budget_spent(ctx) {
            return Ok(());
        }
        if let Some(max) = ctx.opts.max_tasks {
            // Reserve a place before claiming so parallel slots never overshoot.
            if ctx.claimed.fetch_add(1, Ordering::SeqCst) >= max {
                return Ok(());
            }
        }
        let attempt = ctx
            .store
            .try_claim(&ctx.opts.collection, &ctx.opts.owner, ctx.opts.lease);
        let unreserve = || {
            if ctx.opts.max_tasks.is_some() {
                ctx.claimed.fetch_sub(1, Ordering::SeqCst);
            }
        };
        match attempt {
            Ok(ClaimAttempt::Claimed(claim)) => {
                // What a look found was the index catching up: later looks start over.
                ctx.stranded_looks.store(0, Ordering::SeqCst);
                idle.reset();
                empty_since = None;
                failing.reset();
                run_guarded(ctx, claim)?;
            }
            // Others were faster: work exists, so look again after the pause, never exit.
            Ok(ClaimAttempt::Contended(pause)) => {
                unreserve();
                // Work was there: the idle clock starts again.
                empty_since = None;
                debug!("lost a race for a task; trying again in {pause:?}");
                ctx.shutdown.sleep(pause);
            }
            Ok(ClaimAttempt::Empty) => {
                unreserve();
                match when_empty(ctx)? {
                    Idle::Claim => {
                        idle.reset();
                        empty_since = None;
                    }
                    Idle::Exit => match leave(ctx)? {
                        Leave::Go => return Ok(()),
                        Leave::LookAgain => {}
                    },
                    Idle::Poll => {
                        let since = *empty_since.get_or_insert_with(Instant::now);
                        if let Some(limit) = ctx.opts.idle_timeout
                            && since.elapsed() >= limit
                        {
                            if !ctx.told_idle.swap(true, Ordering::SeqCst) {
                                crate::note!(
                                    "nothing to claim in {} for {}; leaving (--idle-timeout)",
                                    ctx.opts.collection,
                                    humantime::format_duration(limit)
                                );
                            }
                            match leave(ctx)? {
                                Leave::Go => return Ok(()),
                                Leave::LookAgain => continue,
                            }
                        }
                        let pause = idle.next_pause();
                        ctx.shutdown
                            .sleep(pause.min(limit_left(ctx.opts.idle_timeout, since)));
                    }
                }
            }
            // Throttling or a network fault that outlasted the store's own retries: a worker
            // does not die of it; it waits and asks again.
            Err(e) if e.is_transient() => {
                unreserve();
                let pause = failing.next_pause();
                warn!("claim failed: {e}; trying again in {pause:?}");
                ctx.shutdown.sleep(pause);
            }
            Err(e) => return Err(e),
        }
    }
}

/// Runs a claimed task; a panic in its slot hands the task back, halts the worker's other
/// slots and becomes an error naming the task, never a silent success.
fn run_guarded(ctx: &SlotContext<'_>, mut claim: Claim) -> Result<()> {
    let ran = std::panic::catch_unwind(AssertUnwindSafe(|| super::run::run_task(ctx, &mut claim)));
    let Err(panic) = ran else {
        return Ok(());
    };
    ctx.halted.store(true, Ordering::SeqCst);
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("no message");
    let fate = match ctx.store.release(&claim) {
        Ok(true) => "the task was handed back",
        _ => "its lease will expire and it will run again",
    };
    Err(Error::Internal(format!(
        "a worker slot panicked while running {}/{} ({message}); {fate}",
        claim.task.collection, claim.task.task_id
    )))
}

/// What a slot does when nothing is claimable.
enum Idle {
    /// Waiting tasks were just promoted: claim again now.
    Claim,
    Exit,
    /// Look again after a pause.
    Poll,
}

/// Nothing is claimable: promote waiting tasks whose upstream is done (a promotion a crash
/// skipped), then exit, unless `--wait` and something can still become claimable without a
/// person acting (a waiting task whose upstream is under way, or a task of this step running
/// elsewhere, whose lease may run out), or `--watch`.
fn when_empty(ctx: &SlotContext<'_>) -> Result<Idle> {
    let collection = &ctx.opts.collection;
    let wait = ctx.opts.wait;
    let survey = if wait == Wait::Exit {
        // A full look, once for the slots that run dry about together: held while it runs,
        // so those that come meanwhile wait for it and use it.
        let mut last = ctx.last_survey.lock().unwrap_or_else(|e| e.into_inner());
        match *last {
            Some((at, s)) if at.elapsed() < SURVEY_STANDS && s.promoted == 0 => s,
            _ => {
                let s = flow::survey(ctx.store, Some(collection), false)?;
                *last = Some((Instant::now(), s));
                s
            }
        }
    } else {
        // Polling: a look that stops at the first task that will run is cheap, and must be
        // fresh, or a worker would stay on a stale answer.
        flow::survey(ctx.store, Some(collection), wait == Wait::Flow)?
    };
    if survey.promoted > 0 {
        info!(
            "{} waiting task(s) of {collection} whose upstream was done may run now",
            survey.promoted
        );
        return Ok(Idle::Claim);
    }
    let stay = match wait {
        Wait::Forever => return Ok(Idle::Poll),
        Wait::Flow => survey.will_run > 0 || ctx.store.has_running(collection)?,
        Wait::Exit => false,
    };
    if stay {
        return Ok(Idle::Poll);
    }
    // A task promoted by another worker between this slot's claim and its look is claimable
    // now, and no longer waiting: the look does not count it. A --wait worker, which stayed
    // for such tasks, leaves only when none is. (Without --wait a worker leaves what becomes
    // claimable after its claim, as it leaves tasks added after it.)
    if wait == Wait::Flow && ctx.store.count_claimable(collection)? > 0 {
        return Ok(Idle::Claim);
    }
    if survey.will_run > 0 && !ctx.told_waiting.swap(true, Ordering::SeqCst) {
        crate::note!(
            "{} task(s) of {collection} wait for upstream work still under way; this worker \
             leaves them (pass --wait to stay for them)",
            survey.will_run
        );
    }
    if survey.blocked > 0 && !ctx.told_blocked.swap(true, Ordering::SeqCst) {
        crate::note!(
            "{} task(s) of {collection} wait for upstream tasks that failed or do not exist \
             (in the step before or further up); nothing will run them until a person acts \
             (see `anamo query blocked-samples` after a sync)",
            survey.blocked
        );
    }
    Ok(Idle::Exit)
}

/// A slot found nothing to claim and is about to leave. The claim index showed nothing, so
/// the step should hold no `todo` task: one the table holds is either just written (the index
/// lags), or one no claim will ever see (written by hand without what a claim needs, or an
/// index entry lost). The first kind is looked at again a few times; what is still there then
/// is named, and the worker fails rather than report a drained step.
fn leave(ctx: &SlotContext<'_>) -> Result<Leave> {
    let collection = &ctx.opts.collection;
    let found = {
        // Held while it reads, so the slots that come meanwhile wait for it and use it.
        let mut last = ctx.last_leave.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|at| at.elapsed() < SURVEY_STANDS) {
            return Ok(Leave::Go);
        }
        let found = ctx.store.unclaimable(Some(collection), true)?;
        if found.is_empty() {
            *last = Some(Instant::now());
            return Ok(Leave::Go);
        }
        found
    };
    let whole = found.iter().filter(|u| u.missing.is_empty()).count();
    if whole > 0
        && ctx.stranded_looks.fetch_add(1, Ordering::SeqCst) < STRANDED_LOOKS
        && !ctx.shutdown.requested()
    {
        ctx.shutdown.sleep(STRANDED_PAUSE);
        return Ok(Leave::LookAgain);
    }
    let mut lines = vec![];
    if let Some(first) = found.iter().find(|u| u.missing.is_empty()) {
        lines.push(format!(
            "{whole} todo task(s) of {collection} are in the table but not in the claim index, \
             so no worker can see them (first {}/{}); `anamo store check --repair` writes \
             them again so the index shows them",
            first.key.collection, first.key.task_id
        ));
    }
    lines.extend(Unclaimable::summary(&found));
    Err(Error::Invalid(lines.join("; ")))
}

/// What a slot about to leave does.
enum Leave {
    Go,
    /// Claim again: the claim index may show what it did not a moment ago.
    LookAgain,
}

/// What is left of the idle timeout (all the time there is without one): a slot does not
/// sleep past it.
fn limit_left(limit: Option<Duration>, since: Instant) -> Duration {
    limit.map_or(Duration::MAX, |l| {
        l.saturating_sub(since.elapsed())
            .max(Duration::from_millis(10))
    })
}

fn budget_spent(ctx: &SlotContext<'_>) -> bool {
    ctx.opts
        .stop_claiming_after
        .is_some_and(|d| ctx.started.elapsed() >= d)
}

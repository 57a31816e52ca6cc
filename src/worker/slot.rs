//! One worker slot: claim -> run -> heartbeat -> finish, in a loop. A worker has `--slots` of
//! them, sharing one store connection and one stop signal.

use std::panic::AssertUnwindSafe;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};

use super::process::{self, Running};
use super::reported::{METRICS_VAR, OUTPUTS_VAR, ReportFiles};
use super::{Options, Shutdown, Tally, Wait};
use crate::backoff::Backoff;
use crate::clock::now_ms;
use crate::error::{Error, Result};
use crate::model::{Claim, ClaimAttempt, Outcome, Survey, Task, TaskState, Unclaimable};
use crate::store::{TaskStore, flow};

pub(super) struct SlotContext<'a> {
    pub store: &'a dyn TaskStore,
    /// Kills what the scripts started if the worker dies.
    pub warden: &'a super::warden::Warden,
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

/// How often a running script is checked against stop requests and timeouts.
const TICK: Duration = Duration::from_millis(100);
/// A release is tried this many times; if it still fails, the lease expires on its own.
const WRITE_TRIES: u32 = 4;
/// Longest pause between tries of a claim or a result while the store keeps failing.
const MAX_STORE_PAUSE: Duration = Duration::from_secs(30);
/// Exit code recorded for a script killed at its timeout, as coreutils `timeout` does.
const TIMEOUT_EXIT: i32 = 124;

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
    let ran = std::panic::catch_unwind(AssertUnwindSafe(|| run_task(ctx, &mut claim)));
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

/// How a run ended, before it is written.
enum Ending {
    Exited(Outcome),
    /// Stopped by the worker: hand the task back.
    Released,
    /// The lease was lost: write nothing.
    Lost,
}

fn run_task(ctx: &SlotContext<'_>, claim: &mut Claim) {
    let task = &claim.task;
    info!(
        "running {}/{} (run {}, attempt {} of {})",
        task.collection, task.task_id, task.runs, task.attempts, task.max_attempts
    );
    // Named by the run's number, which never repeats: a retried or replaced task never writes
    // over an earlier run's log.
    let log = ctx.opts.log_dir.as_ref().map(|dir| {
        let p = dir
            .join(&task.collection)
            .join(&task.task_id)
            .join(format!("{}.log", task.runs));
        std::path::absolute(&p).unwrap_or(p)
    });
    let reports = match ReportFiles::create(task) {
        Ok(files) => files,
        Err(e) => {
            let line =
                format!("anamo: could not make the run's {METRICS_VAR}/{OUTPUTS_VAR} files: {e}");
            record(
                ctx,
                claim,
                Ending::Exited(Outcome::not_started(line, now_ms())),
            );
            return;
        }
    };
    let env: Vec<(String, String)> = ctx
        .opts
        .script_env
        .iter()
        .cloned()
        .chain(reports.env())
        .collect();
    let mut ending = match process::spawn(task, log.as_deref(), &env, ctx.warden) {
        Ok(running) => {
            ctx.shutdown.task_started();
            let ending = supervise(ctx, claim, &running, log.as_deref());
            ctx.shutdown.task_ended();
            ending
        }
        Err(e) => Ending::Exited(Outcome::not_started(
            format!("anamo: could not start bash: {e}"),
            now_ms(),
        )),
    };
    if let Ending::Exited(outcome) = &mut ending {
        take_reports(&claim.task, outcome, &reports, log.as_deref());
    }
    if let (Ending::Exited(outcome), Some(shipper), Some(local)) =
        (&mut ending, &ctx.opts.log_shipper, &log)
    {
        outcome.log_uri = Some(shipper.ship(local, &claim.task));
    }
    record(ctx, claim, ending);
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
    // A fault hook for the test of a panicking slot; not in release builds.
    #[cfg(debug_assertions)]
    if std::env::var("ANAMO_DEBUG_PANIC_ON").as_deref() == Ok(claim.task.task_id.as_str()) {
        panic!("ANAMO_DEBUG_PANIC_ON={}", claim.task.task_id);
    }
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
                Ok(true) => {
                    debug!(
                        "heartbeat {}/{}: held for another {:?}",
                        claim.task.collection, claim.task.task_id, lease
                    );
                    next_beat = now + beat_every;
                }
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
        let line = format!("anamo: timed out after {secs}s and was killed");
        // The log says why it ends where it does, as the task's error tail does.
        append_to_log(log, &line);
        note(&mut tail, &line);
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
        reported: Default::default(),
    })
}

/// Puts what the script reported on its outcome; a report that cannot be read fails the run
/// (kept for the record on a run that failed anyway), with its line in the tail and the log.
fn take_reports(
    task: &Task,
    outcome: &mut Outcome,
    reports: &ReportFiles,
    log: Option<&std::path::Path>,
) {
    match reports.read() {
        Ok(reported) => outcome.reported = reported,
        Err(line) => {
            warn!("{}/{}: {line}", task.collection, task.task_id);
            append_to_log(log, &line);
            let tail = outcome.error_tail.get_or_insert_with(String::new);
            note(tail, &line);
            outcome.succeeded = false;
        }
    }
}

/// Adds anamo's own line to a run's log, so the log says why the run ends as it does.
fn append_to_log(log: Option<&std::path::Path>, line: &str) {
    let Some(path) = log else { return };
    let appended = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, format!("{line}\n").as_bytes()));
    if let Err(e) = appended {
        warn!("could not add a line to {}: {e}", path.display());
    }
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

//! One run of a claimed task: its report files, its script started and supervised (heartbeat,
//! timeout, stop requests), what it reported read, its log shipped; then `record.rs` writes the
//! ending.

use std::time::{Duration, Instant};

use tracing::{debug, info, warn};

use super::process::{self, Running};
use super::record::{Ending, record};
use super::reported::ReportFiles;
use super::slot::SlotContext;
use crate::clock::now_ms;
use crate::model::{Claim, Outcome, Task};

/// How often a running script is checked against stop requests and timeouts.
const TICK: Duration = Duration::from_millis(100);
/// Exit code recorded for a script killed at its timeout, as coreutils `timeout` does.
const TIMEOUT_EXIT: i32 = 124;

pub(super) fn run_task(ctx: &SlotContext<'_>, claim: &mut Claim) {
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
    let reports = ctx.reports.files_for(task);
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

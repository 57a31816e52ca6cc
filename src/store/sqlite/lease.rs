//! A worker's hold on a task: claim, heartbeat, finish, release, and the sweep of leases that
//! ran out. Each is one statement or one IMMEDIATE transaction (the caller's), conditional on
//! the version the worker holds, so a worker that lost its task changes nothing.

use std::time::Duration;

use rusqlite::types::ToSql;
use rusqlite::{Connection, OptionalExtension, params};

use super::rows::get_task;
use crate::clock::now_ms;
use crate::error::Result;
use crate::model::{Claim, ClaimAttempt, Outcome, StaleReport, TaskState, state_after_run};

/// A stale task on its last attempt is not run again: its worker died on it every time.
/// `$scope` picks the collection; it is spelled out (not `?1 IS NULL OR ...`) so that SQLite
/// uses the claim index instead of scanning the table.
macro_rules! fail_exhausted_leases {
    ($scope:literal) => {
        concat!(
            "UPDATE tasks SET state = 'failed', lease_until = NULL, finished_at = ?2, \
             updated_at = ?2, version = version + 1, \
             error_tail = coalesce(error_tail || char(10), '') || 'anamo: the lease of ' || \
             coalesce(owner, '?') || ' expired on the last attempt (worker lost)' \
             WHERE ",
            $scope,
            " AND state = 'running' AND lease_until < ?2 AND attempts >= max_attempts"
        )
    };
}
const FAIL_EXHAUSTED_IN: &str = fail_exhausted_leases!("collection = ?1");
const FAIL_EXHAUSTED_ALL: &str = fail_exhausted_leases!("?1 IS NULL");

/// Claims one task of `collection`: a `todo` one first, else one whose lease ran out. Run in
/// an IMMEDIATE transaction, it cannot lose a race, so it never answers `Contended`.
pub(super) fn try_claim(
    tx: &Connection,
    collection: &str,
    owner: &str,
    lease: Duration,
) -> Result<ClaimAttempt> {
    let now = now_ms();
    let until = now + lease.as_millis() as i64;
    tx.prepare_cached(FAIL_EXHAUSTED_IN)?
        .execute(params![collection, now])?;
    let todo = tx
        .prepare_cached(
            "SELECT task_id, version FROM tasks WHERE collection = ?1 AND state = 'todo' LIMIT 1",
        )?
        .query_row(params![collection], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })
        .optional()?;
    let candidate = match todo {
        Some(c) => Some(c),
        None => tx
            .prepare_cached(
                "SELECT task_id, version FROM tasks WHERE collection = ?1 \
                 AND state = 'running' AND lease_until < ?2 LIMIT 1",
            )?
            .query_row(params![collection, now], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?,
    };
    let Some((task_id, version)) = candidate else {
        return Ok(ClaimAttempt::Empty);
    };
    let won = tx
        .prepare_cached(
            "UPDATE tasks SET state = 'running', owner = ?3, lease_until = ?4, \
             attempts = attempts + 1, runs = runs + 1, started_at = ?5, finished_at = NULL, \
             exit_code = NULL, updated_at = ?5, version = version + 1 \
             WHERE collection = ?1 AND task_id = ?2 AND version = ?6",
        )?
        .execute(params![collection, task_id, owner, until, now, version])?;
    let task = if won == 1 {
        get_task(tx, collection, &task_id)?
    } else {
        None
    };
    Ok(task.map_or(ClaimAttempt::Empty, |task| {
        ClaimAttempt::Claimed(Claim { task })
    }))
}

/// The condition of every write by the worker holding a task: its owner, at the version it
/// holds, still running. `?1`..`?4` are the task's collection, id, owner and version.
macro_rules! held {
    ($set:literal) => {
        concat!(
            "UPDATE tasks SET ",
            $set,
            ", version = version + 1 WHERE collection = ?1 AND task_id = ?2 AND owner = ?3 \
             AND version = ?4 AND state = 'running'"
        )
    };
}

/// Runs one of the [`held!`] writes for the holder of `claim`, `more` bound from `?5`; true
/// when it still held the task.
fn update_held(
    conn: &Connection,
    sql: &'static str,
    claim: &Claim,
    more: &[&dyn ToSql],
) -> Result<bool> {
    let t = &claim.task;
    let owner = claim.owner();
    let mut values: Vec<&dyn ToSql> = vec![&t.collection, &t.task_id, &owner, &t.version];
    values.extend_from_slice(more);
    Ok(conn.prepare_cached(sql)?.execute(values.as_slice())? == 1)
}

/// Moves the lease on; false when the claim was lost.
pub(super) fn heartbeat(conn: &Connection, claim: &mut Claim, lease: Duration) -> Result<bool> {
    let now = now_ms();
    let until = now + lease.as_millis() as i64;
    // Not `updated_at`: a lease extension is not a change an incremental sync needs.
    let sql = held!("lease_until = ?5");
    let held = update_held(conn, sql, claim, &[&until])?;
    if held {
        claim.task.version += 1;
        claim.task.lease_until = Some(until);
    }
    Ok(held)
}

/// Records a run's outcome; the state it left, or `None` when the claim was lost.
pub(super) fn finish(
    conn: &Connection,
    claim: &Claim,
    outcome: &Outcome,
) -> Result<Option<TaskState>> {
    let t = &claim.task;
    let state = state_after_run(outcome.succeeded, t.attempts, t.max_attempts);
    let sql = held!(
        "state = ?5, lease_until = NULL, finished_at = ?6, exit_code = ?7, error_tail = ?8, \
         log_uri = ?9, updated_at = ?6, reported = ?10"
    );
    let reported = outcome.reported.to_json();
    let more: [&dyn ToSql; 6] = [
        &state.as_str(),
        &outcome.finished_at,
        &outcome.exit_code,
        &outcome.error_tail,
        &outcome.log_uri,
        &reported,
    ];
    Ok(update_held(conn, sql, claim, &more)?.then_some(state))
}

/// Gives a claimed task back unrun (its attempt does not count); false when it was lost.
pub(super) fn release(conn: &Connection, claim: &Claim) -> Result<bool> {
    let sql = held!(
        "state = 'todo', lease_until = NULL, attempts = max(attempts - 1, 0), updated_at = ?5"
    );
    update_held(conn, sql, claim, &[&now_ms()])
}

/// Puts back every task whose lease ran out (failing those on their last attempt).
pub(super) fn release_stale(tx: &Connection, collection: Option<&str>) -> Result<StaleReport> {
    let now = now_ms();
    let (scope, fail) = match collection {
        Some(_) => ("collection = ?1", FAIL_EXHAUSTED_IN),
        None => ("?1 IS NULL", FAIL_EXHAUSTED_ALL),
    };
    let failed = tx.execute(fail, params![collection, now])? as u64;
    let released = tx.execute(
        &format!(
            "UPDATE tasks SET state = 'todo', lease_until = NULL, updated_at = ?2, \
             version = version + 1 \
             WHERE {scope} AND state = 'running' AND lease_until < ?2"
        ),
        params![collection, now],
    )? as u64;
    Ok(StaleReport { released, failed })
}

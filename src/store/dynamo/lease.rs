//! The lease protocol on DynamoDB, what a worker does with a task: claim it (the claimer in
//! claim.rs picks, index.rs sends), keep its lease with heartbeats, finish the run, or release
//! it unrun; and end `failed` a task whose lease expired on its last attempt. Every write here
//! is conditional on the owner and version the worker holds, so a worker that lost its lease
//! can never overwrite the task: a failed condition is an answer (`false`, `None`), not an
//! error. Nothing here reads the table to decide (the condition decides), scans, or names an
//! attribute (item.rs builds the writes).

use std::time::Duration;

use super::DynamoStore;
use super::claim::{SHARDS, Step};
use super::item;
use crate::clock::now_ms;
use crate::error::Result;
use crate::model::{Claim, ClaimAttempt, Outcome, TaskKey, TaskState, state_after_run};

/// A claim write sent for `owner` on `key` at `version` whose answer never came.
pub(super) struct Unsettled {
    key: TaskKey,
    version: i64,
    owner: String,
    /// The claim's `:now` (its `started_at`): tells the lost claim from a later claim of the
    /// same task by this worker, which also leaves it running under our name.
    at: i64,
}

/// The claims of this process still unsettled; a poisoned lock still holds a valid list.
fn unsettled(store: &DynamoStore) -> std::sync::MutexGuard<'_, Vec<Unsettled>> {
    store.unsettled.lock().unwrap_or_else(|e| e.into_inner())
}

/// Notes a claim whose every try failed in transit (throttled, timed out): it may have landed.
pub(super) fn remember_unsettled(
    store: &DynamoStore,
    c: &super::claim::Candidate,
    owner: &str,
    at: i64,
) {
    unsettled(store).push(Unsettled {
        key: c.key.clone(),
        version: c.version,
        owner: owner.to_string(),
        at,
    });
}

/// A claim of ours that landed although its answer was lost: the task is running under our
/// name with the version that claim wrote. Without this it would sit `running` until its
/// lease ran out, and a worker that then found the queue empty would leave it behind. Reads
/// our unsettled claims one at a time until one proves ours. One whose task still has the
/// version the claim expected is kept: a try that timed out may still be on its way and land
/// later (a busy endpoint serves it after the client gave up), so it is not settled until the
/// task moves on; the rest wait for later claims.
fn settle_unsettled(store: &DynamoStore, collection: &str, owner: &str) -> Result<Option<Claim>> {
    let mut pending: Vec<Unsettled> = {
        let mut list = unsettled(store);
        let (ours, rest): (Vec<_>, Vec<_>) = list
            .drain(..)
            .partition(|u| u.owner == owner && u.key.collection == collection);
        *list = rest;
        ours
    };
    let mut kept = vec![];
    let mut found = None;
    while let Some(next) = pending.pop() {
        if found.is_some() {
            kept.push(next);
            continue;
        }
        let task = match super::reads::get(store, &next.key.collection, &next.key.task_id) {
            Ok(task) => task,
            Err(e) => {
                // Still unreachable: settle them at a later claim.
                kept.push(next);
                kept.append(&mut pending);
                unsettled(store).append(&mut kept);
                return Err(e);
            }
        };
        match task {
            Some(t)
                if t.state == TaskState::Running
                    && t.owner.as_deref() == Some(owner)
                    && t.version == next.version + 1
                    && t.started_at == Some(next.at) =>
            {
                tracing::info!(
                    "claim of {}/{} had landed although its answer was lost; running it",
                    t.collection,
                    t.task_id
                );
                found = Some(Claim { task: t });
            }
            // Unchanged since: the lost try may still land.
            Some(t) if t.version == next.version => kept.push(next),
            _ => {}
        }
    }
    unsettled(store).append(&mut kept);
    Ok(found)
}

/// Whether a claim of ours on `collection` is still unsettled: until it is, an empty index
/// does not mean an empty queue (the task may be ours, running, with nobody running it).
fn has_unsettled(store: &DynamoStore, collection: &str, owner: &str) -> bool {
    unsettled(store)
        .iter()
        .any(|u| u.owner == owner && u.key.collection == collection)
}

/// How long a worker whose only work may be an unsettled claim waits before looking again.
const UNSETTLED_PAUSE: Duration = Duration::from_secs(1);

/// Steps the claimer (claim.rs) until it wins, finds every shard empty, or loses a race
/// (then the caller pauses and tries again: lost races never end a worker). A claim of ours
/// whose answer was lost is settled first.
pub(super) fn try_claim(
    store: &DynamoStore,
    collection: &str,
    owner: &str,
    lease: Duration,
) -> Result<ClaimAttempt> {
    if let Some(claim) = settle_unsettled(store, collection, owner)? {
        return Ok(ClaimAttempt::Claimed(claim));
    }
    let lease_ms = lease.as_millis() as i64;
    let since = now_ms();
    // Each step makes progress (a shard read, a candidate used up); the bound is a guard.
    for _ in 0..4 * SHARDS {
        match store
            .claimer
            .step(store, collection, owner, lease_ms, now_ms(), since)?
        {
            Step::Claimed(task) => {
                // Taken again by this claim: a lost try of ours on it can no longer land.
                unsettled(store).retain(|u| {
                    u.key.task_id != task.task_id || u.key.collection != task.collection
                });
                return Ok(ClaimAttempt::Claimed(Claim { task }));
            }
            // A claim of ours still unsettled is a race not yet decided, never an empty queue.
            Step::Drained if has_unsettled(store, collection, owner) => {
                return Ok(ClaimAttempt::Contended(UNSETTLED_PAUSE));
            }
            Step::Drained => return Ok(ClaimAttempt::Empty),
            Step::Pause(pause) => return Ok(ClaimAttempt::Contended(pause)),
            Step::Again => {}
        }
    }
    Ok(ClaimAttempt::Contended(Duration::ZERO))
}

/// Extends the lease; on success the claim carries the new version and lease.
pub(super) fn heartbeat(store: &DynamoStore, claim: &mut Claim, lease: Duration) -> Result<bool> {
    let now = now_ms();
    let until = now + lease.as_millis() as i64;
    let out = store
        .rt
        .block_on(store.update(item::heartbeat(claim, now, until)))?;
    if out.is_some() {
        claim.task.version += 1;
        claim.task.lease_until = Some(until);
    }
    Ok(out.is_some())
}

/// Records the run's outcome; the state it left, or `None` when the lease was lost.
pub(super) fn finish(
    store: &DynamoStore,
    claim: &Claim,
    outcome: &Outcome,
) -> Result<Option<TaskState>> {
    let t = &claim.task;
    let state = state_after_run(outcome.succeeded, t.attempts, t.max_attempts);
    let out = store
        .rt
        .block_on(store.update(item::finish(claim, state, outcome, now_ms())))?;
    Ok(out.map(|_| state))
}

/// Hands the task back unrun (the attempt does not count).
pub(super) fn release(store: &DynamoStore, claim: &Claim) -> Result<bool> {
    let out = store
        .rt
        .block_on(store.update(item::release(claim, now_ms())))?;
    Ok(out.is_some())
}

impl DynamoStore {
    /// Ends a running task whose worker died on its last attempt: `failed`, out of the index.
    pub(super) async fn fail_lost(&self, k: &TaskKey, version: i64, now: i64) -> Result<bool> {
        let out = self.update(item::fail_lost(k, version, now)).await?;
        Ok(out.is_some())
    }
}

//! The item format of the DynamoDB store: the only place that knows attribute names. This
//! file holds the names, the key, and the small readers the others share; task.rs turns a Task
//! into an item and back (tombstones, marks, a sample's tasks), expr.rs builds every read's
//! key condition, filter and projection, update.rs every conditional write. Nothing here sends
//! a request or decides when a write happens (lease.rs, bulk.rs, reads.rs and index.rs do),
//! and nothing reads the clock: times come in.

mod expr;
mod task;
#[cfg(test)]
mod tests;
mod update;

pub use expr::*;
pub use task::*;
pub use update::*;

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use crate::model::TaskState;

pub type Item = HashMap<String, AttributeValue>;
/// The values of an expression, by placeholder (`:now`).
pub type Values = Vec<(&'static str, AttributeValue)>;

/// The table's partition key.
pub const COLLECTION: &str = "collection";
/// The table's sort key.
pub const TASK_ID: &str = "task_id";
/// The partition key of the sample index.
pub const SAMPLE: &str = "sample";
/// The upstream steps of a task added `--after` them (a list of strings).
const AFTER: &str = "after";
/// When a done-mark was written.
const MARKED_AT: &str = "marked_at";
/// When a task was removed (on its tombstone).
const REMOVED_AT: &str = "removed_at";
/// On a tombstone: withdrawn with its dropped sample, not deleted.
const WITHDRAWN: &str = "withdrawn";
const SCRIPT: &str = "script";
/// The script attribute, for the claim path's check of what an index entry lacks.
pub const SCRIPT_ATTR: &str = SCRIPT;
const ATTRS: &str = "attrs";
const STATE: &str = "state";
const ATTEMPTS: &str = "attempts";
/// Runs ever made (never reset; missing on items of an older anamo: read as `attempts`).
const RUNS: &str = "runs";
const MAX_ATTEMPTS: &str = "max_attempts";
const TIMEOUT_SECS: &str = "timeout_secs";
const OWNER: &str = "owner";
const LEASE_UNTIL: &str = "lease_until";
const CREATED_AT: &str = "created_at";
const UPDATED_AT: &str = "updated_at";
/// `updated_at`, the sort key of the change index.
pub const UPDATED_AT_KEY: &str = UPDATED_AT;
const STARTED_AT: &str = "started_at";
const FINISHED_AT: &str = "finished_at";
const EXIT_CODE: &str = "exit_code";
const LOG_URI: &str = "log_uri";
const ERROR_TAIL: &str = "error_tail";
/// What the last finished run reported (metrics, outputs), as JSON: one string keeps the
/// item's size plain to count against DynamoDB's 400 KB.
const REPORTED: &str = "reported";
/// A task's QC gates (`mean_coverage >= 15`), a list of strings.
const REQUIRE: &str = "require";
/// Why a held task is held, or who released it and why.
const GATE_NOTE: &str = "gate_note";
const VERSION: &str = "version";
/// The sort key of the sparse claim index: when the task may be claimed (creation time
/// while `todo`, lease expiry while `running`). Finished tasks do not have it, so the index
/// holds only tasks that are or will become claimable.
pub const CLAIMABLE_AT: &str = "claimable_at";
/// The partition key of the claim index: `collection#NN`, one of the collection's shards
/// (claim.rs). Set when the task is written and never changed.
pub const CLAIM_SHARD: &str = "claim_shard";
/// The sharded claim index on (claim_shard, claimable_at).
pub const INDEX: &str = "claim_by_shard";
/// The unsharded index of tables made before sharding, on (collection, claimable_at);
/// `anamo store init` replaces it.
pub const LEGACY_INDEX: &str = "claimable";
/// Attributes the claim index carries, so a claim needs no extra read.
pub const PROJECTED: &[&str] = &[STATE, ATTEMPTS, MAX_ATTEMPTS, VERSION];
/// The index of every task with a sample (and every done-mark) on (sample): one small Query
/// gives a sample's tasks in all steps, which is what the flow decides promotions on.
pub const SAMPLE_INDEX: &str = "by_sample";
/// Attributes the sample index carries.
pub const SAMPLE_PROJECTED: &[&str] = &[STATE, VERSION, AFTER];
/// `claimable_at` of a waiting task: later than any lease, so the claim index lists the
/// task (a worker finds its collection's waiting tasks there) but no claim ever takes it.
pub const NEVER: i64 = 9_007_199_254_740_991;
/// The partition of done-marks: a done task deleted from the store leaves one per step and
/// sample (task id `STEP/SAMPLE`), so what waits on it is still released. '/' cannot start
/// a collection name, so no task ever lands here.
pub const MARKS: &str = "/done";
/// The partition prefix of tombstones: a removed task leaves one in `/removed/STEP` under its
/// own id, with its sample (so the sample index shows it), final state and times. One
/// partition per step, as for the tasks themselves.
const REMOVED: &str = "/removed/";
/// The partition key of the change index: one of [`CHANGE_SHARDS`] (`"07"`), from the item's
/// key. Set when an item is written (a task, a tombstone) and never changed.
pub const CHANGE_SHARD: &str = "change_shard";
/// How many partitions the change index spreads its writes over; a read asks each.
pub const CHANGE_SHARDS: u32 = 16;
/// The change index on (change_shard, updated_at), keys only: what an incremental sync
/// reads. A lease extension does not move `updated_at`, so heartbeats never write it.
pub const CHANGE_INDEX: &str = "by_change";
/// The partition of the store's own notes: the one here says since when the change index
/// answers for every item (`since`, epoch ms).
const META: &str = "/meta";
/// The note's id in [`META`].
const CHANGES_NOTE: &str = "changes";
const SINCE: &str = "since";
/// The partition of dropped samples' marks (task id: the sample): `add` skips their tasks.
const DROPPED: &str = "/dropped";
/// When a sample was dropped, and why (on its mark).
const DROPPED_AT: &str = "dropped_at";
const REASON: &str = "reason";

pub fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_string())
}

pub fn n(v: impl std::fmt::Display) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// An item's size as DynamoDB counts it for read and write units: each attribute's name and
/// value (strings and binaries by length, numbers about a byte per two digits, lists and maps
/// three bytes plus their elements).
pub fn size(item: &Item) -> u64 {
    fn value(v: &AttributeValue) -> u64 {
        match v {
            AttributeValue::S(s) => s.len() as u64,
            AttributeValue::N(n) => n.len().div_ceil(2) as u64 + 1,
            AttributeValue::B(b) => b.as_ref().len() as u64,
            AttributeValue::L(l) => 3 + l.iter().map(|e| 1 + value(e)).sum::<u64>(),
            AttributeValue::M(m) => {
                3 + m
                    .iter()
                    .map(|(k, e)| 1 + k.len() as u64 + value(e))
                    .sum::<u64>()
            }
            AttributeValue::Ss(v) => v.iter().map(|s| s.len() as u64).sum(),
            AttributeValue::Ns(v) => v.iter().map(|n| n.len().div_ceil(2) as u64 + 1).sum(),
            _ => 1,
        }
    }
    item.iter().map(|(k, v)| k.len() as u64 + value(v)).sum()
}

/// The change shard of an item, from its key.
pub fn change_shard_of(collection: &str, task_id: &str) -> AttributeValue {
    let shard = super::claim::shard_of(&format!("{collection}/{task_id}")) % CHANGE_SHARDS;
    s(&format!("{shard:02}"))
}

/// Gives a new item its change shard and `updated_at` (tombstones and marks have no other).
pub fn with_change(mut item: Item, now: i64) -> Item {
    if let Some(k) = task_key(&item) {
        item.insert(
            CHANGE_SHARD.into(),
            change_shard_of(&k.collection, &k.task_id),
        );
    }
    item.entry(UPDATED_AT.into()).or_insert_with(|| n(now));
    item
}

/// The note that the change index answers for every item since `since`.
pub fn changes_note(since: i64) -> Item {
    let mut item = key(META, CHANGES_NOTE);
    item.insert(SINCE.into(), n(since));
    item
}

/// The key of that note.
pub fn changes_note_key() -> Item {
    key(META, CHANGES_NOTE)
}

/// Since when the note says the change index answers.
pub fn changes_note_since(item: &Item) -> Option<i64> {
    attr_n(item, SINCE)
}

/// The claim shard a task belongs to.
pub fn shard_of_task(collection: &str, task_id: &str) -> String {
    super::claim::shard_key(collection, super::claim::shard_of(task_id))
}

pub fn key(collection: &str, task_id: &str) -> Item {
    HashMap::from([
        (COLLECTION.to_string(), s(collection)),
        (TASK_ID.to_string(), s(task_id)),
    ])
}
// Single attributes of items that need not be whole tasks (index projections, stale leases).

fn attr_n(item: &Item, name: &str) -> Option<i64> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse::<f64>().ok().map(|f| f as i64),
        _ => None,
    }
}

fn attr_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v),
        _ => None,
    }
}

/// Attribute names used in an expression: every `#name` token stands for `name`, so reserved
/// words (state, owner, ...) never clash.
pub fn names_in(expressions: &[&str]) -> HashMap<String, String> {
    let mut names = HashMap::new();
    for e in expressions {
        let mut rest = *e;
        while let Some(i) = rest.find('#') {
            let tail = &rest[i + 1..];
            let len = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            names.insert(format!("#{}", &tail[..len]), tail[..len].to_string());
            rest = &tail[len..];
        }
    }
    names
}

/// Values by placeholder, as a request takes them.
pub fn values_map(values: Values) -> HashMap<String, AttributeValue> {
    values
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}

/// The placeholder and value of a state in an expression (`:running` = "running").
pub(crate) fn state_value(state: TaskState) -> (&'static str, AttributeValue) {
    let placeholder = match state {
        TaskState::Waiting => ":waiting",
        TaskState::Held => ":held",
        TaskState::Todo => ":todo",
        TaskState::Running => ":running",
        TaskState::Done => ":done",
        TaskState::Failed => ":failed",
    };
    (placeholder, s(state.as_str()))
}

//! The item format of the DynamoDB store: Task <-> item, and every expression that names an
//! attribute (key conditions, filters, projections, conditional updates) with the placeholders
//! it uses. This is the only file that knows attribute names: the rest of the store uses the
//! constants and builders here. Nothing here sends a request or decides when a write happens
//! (lease.rs, bulk.rs, reads.rs and index.rs do), and nothing reads the clock: times come in.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use crate::model::{
    Attrs, Claim, LastRun, NewTask, Outcome, SampleTask, Task, TaskFilter, TaskKey, TaskState,
    Tombstone,
};

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
const STARTED_AT: &str = "started_at";
const FINISHED_AT: &str = "finished_at";
const EXIT_CODE: &str = "exit_code";
const LOG_URI: &str = "log_uri";
const ERROR_TAIL: &str = "error_tail";
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

/// A new task's item in `state`: `todo` and claimable from `now`, or `waiting`.
pub fn from_new(t: &NewTask, now: i64, version: i64, state: TaskState) -> Item {
    let mut item = key(&t.collection, &t.task_id);
    item.insert(SCRIPT.into(), s(&t.script));
    item.insert(STATE.into(), s(state.as_str()));
    if !t.after.is_empty() {
        item.insert(
            AFTER.into(),
            AttributeValue::L(t.after.iter().map(|a| s(a)).collect()),
        );
    }
    item.insert(ATTEMPTS.into(), n(0));
    item.insert(MAX_ATTEMPTS.into(), n(t.max_attempts));
    item.insert(CREATED_AT.into(), n(now));
    item.insert(UPDATED_AT.into(), n(now));
    item.insert(VERSION.into(), n(version));
    let claimable_at = if state == TaskState::Waiting {
        NEVER
    } else {
        now
    };
    item.insert(CLAIMABLE_AT.into(), n(claimable_at));
    item.insert(
        CLAIM_SHARD.into(),
        s(&shard_of_task(&t.collection, &t.task_id)),
    );
    if let Some(sample) = &t.sample {
        item.insert(SAMPLE.into(), s(sample));
    }
    if let Some(secs) = t.timeout_secs {
        item.insert(TIMEOUT_SECS.into(), n(secs));
    }
    if !t.attrs.is_empty() {
        let map = t.attrs.iter().map(|(k, v)| (k.clone(), s(v))).collect();
        item.insert(ATTRS.into(), AttributeValue::M(map));
    }
    item
}

fn get_s(item: &Item, name: &str) -> Result<Option<String>, String> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(AttributeValue::S(v)) => Ok(Some(v.clone())),
        Some(_) => Err(format!("attribute '{name}' is not a string")),
    }
}

fn get_n(item: &Item, name: &str) -> Result<Option<i64>, String> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(AttributeValue::N(v)) => v
            .parse::<f64>()
            .map(|f| Some(f as i64))
            .map_err(|_| format!("attribute '{name}' is not a number")),
        Some(_) => Err(format!("attribute '{name}' is not a number")),
    }
}

fn get_list(item: &Item, name: &str) -> Result<Vec<String>, String> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(vec![]),
        Some(AttributeValue::L(list)) => list
            .iter()
            .map(|v| match v {
                AttributeValue::S(x) => Ok(x.clone()),
                _ => Err(format!(
                    "attribute '{name}' holds a value that is not a string"
                )),
            })
            .collect(),
        Some(_) => Err(format!("attribute '{name}' is not a list")),
    }
}

fn need<T>(v: Option<T>, name: &str) -> Result<T, String> {
    v.ok_or_else(|| format!("missing required attribute '{name}'"))
}

/// The key of an item, as far as it can be read (for reporting damaged items).
pub fn key_text(item: &Item) -> String {
    let part = |n: &str| get_s(item, n).ok().flatten().unwrap_or_else(|| "?".into());
    format!("{}/{}", part(COLLECTION), part(TASK_ID))
}

pub fn task_key(item: &Item) -> Option<TaskKey> {
    Some(TaskKey {
        collection: get_s(item, COLLECTION).ok()??,
        task_id: get_s(item, TASK_ID).ok()??,
    })
}

/// Reads a task; an item written by hand without required attributes is an error message.
pub fn to_task(item: &Item) -> Result<Task, String> {
    let state: String = need(get_s(item, STATE)?, STATE)?;
    let attrs: Attrs = match item.get(ATTRS) {
        None => Attrs::new(),
        Some(AttributeValue::M(m)) => m
            .iter()
            .map(|(k, v)| match v {
                AttributeValue::S(s) => Ok((k.clone(), s.clone())),
                _ => Err(format!("attribute {ATTRS}.{k} is not a string")),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(format!("attribute '{ATTRS}' is not a map")),
    };
    Ok(Task {
        collection: need(get_s(item, COLLECTION)?, COLLECTION)?,
        task_id: need(get_s(item, TASK_ID)?, TASK_ID)?,
        sample: get_s(item, SAMPLE)?,
        script: need(get_s(item, SCRIPT)?, SCRIPT)?,
        attrs,
        after: get_list(item, AFTER)?,
        state: state.parse()?,
        attempts: get_n(item, ATTEMPTS)?.unwrap_or(0) as u32,
        runs: get_n(item, RUNS)?
            .unwrap_or(0)
            .max(get_n(item, ATTEMPTS)?.unwrap_or(0)) as u32,
        // Missing on a task written by hand: 0, and such a task is named not claimable
        // (`missing_for_claim`) rather than hidden as damaged.
        max_attempts: get_n(item, MAX_ATTEMPTS)?.unwrap_or(0) as u32,
        timeout_secs: get_n(item, TIMEOUT_SECS)?.map(|v| v as u64),
        owner: get_s(item, OWNER)?,
        lease_until: get_n(item, LEASE_UNTIL)?,
        created_at: get_n(item, CREATED_AT)?.unwrap_or(0),
        updated_at: get_n(item, UPDATED_AT)?.unwrap_or(0),
        started_at: get_n(item, STARTED_AT)?,
        finished_at: get_n(item, FINISHED_AT)?,
        exit_code: get_n(item, EXIT_CODE)?.map(|v| v as i32),
        log_uri: get_s(item, LOG_URI)?,
        error_tail: get_s(item, ERROR_TAIL)?,
        // Missing on a task written by hand: 0, as for max_attempts.
        version: get_n(item, VERSION)?.unwrap_or(0),
    })
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

/// The version of an item as the claim index or a scan shows it.
pub fn version(item: &Item) -> Option<i64> {
    attr_n(item, VERSION)
}

/// The version of an item read back by `add` ([`KEY_VERSION_STATE`]); only a whole number
/// counts, so an item with anything else there is written as new.
pub fn exact_version(item: &Item) -> Option<i64> {
    match item.get(VERSION) {
        Some(AttributeValue::N(v)) => v.parse().ok(),
        _ => None,
    }
}

/// Whether the task is `running`.
pub fn is_running(item: &Item) -> bool {
    attr_s(item, STATE) == Some("running")
}

/// Whether the task has used its last attempt (attempts >= max_attempts, a missing count
/// below any number).
pub fn attempts_used_up(item: &Item) -> bool {
    attr_n(item, ATTEMPTS) >= attr_n(item, MAX_ATTEMPTS)
}

/// Whether the item is bookkeeping (a done-mark or a tombstone), not a task: its collection
/// starts with '/', which no step name can.
pub fn is_mark(item: &Item) -> bool {
    attr_s(item, COLLECTION).is_some_and(|c| c.starts_with('/'))
}

/// The done-mark of `step` for `sample`, as an older anamo wrote it (still read, no longer
/// written: tombstones say more).
#[cfg(test)]
pub fn mark(step: &str, sample: &str, now: i64) -> Item {
    let mut item = key(MARKS, &format!("{step}/{sample}"));
    item.insert(SAMPLE.into(), s(sample));
    item.insert(MARKED_AT.into(), n(now));
    item
}

/// The key of a dropped sample's mark.
pub fn dropped_key(sample: &str) -> Item {
    key(DROPPED, sample)
}

/// The mark of a sample dropped from the study.
pub fn dropped(sample: &str, now: i64, reason: &str) -> Item {
    let mut item = dropped_key(sample);
    item.insert(DROPPED_AT.into(), n(now));
    item.insert(REASON.into(), s(reason));
    item
}

/// The sample and the time of a dropped sample's mark.
pub fn dropped_mark(item: &Item) -> Option<(String, i64)> {
    let k = task_key(item)?;
    (k.collection == DROPPED).then(|| (k.task_id, attr_n(item, DROPPED_AT).unwrap_or(0)))
}

/// The key of the tombstone of `collection/task_id`.
pub fn tombstone_key(collection: &str, task_id: &str) -> Item {
    key(&format!("{REMOVED}{collection}"), task_id)
}

/// The partition of `step`'s tombstones, for a Query of them.
pub fn tombstones_of(step: &str) -> Expr {
    in_collection(&format!("{REMOVED}{step}"))
}

/// The tombstone a removed task leaves (`withdrawn`: with its dropped sample).
pub fn tombstone(t: &Task, now: i64, withdrawn: bool) -> Item {
    let mut item = tombstone_key(&t.collection, &t.task_id);
    if let Some(sample) = &t.sample {
        item.insert(SAMPLE.into(), s(sample));
    }
    item.insert(STATE.into(), s(t.state.as_str()));
    item.insert(CREATED_AT.into(), n(t.created_at));
    if let Some(f) = t.finished_at {
        item.insert(FINISHED_AT.into(), n(f));
    }
    item.insert(REMOVED_AT.into(), n(now));
    item.insert(RUNS.into(), n(t.runs));
    // Its last run, for a catalog that never saw the task.
    item.insert(ATTEMPTS.into(), n(t.attempts));
    for (name, value) in [
        (OWNER, &t.owner),
        (LOG_URI, &t.log_uri),
        (ERROR_TAIL, &t.error_tail),
    ] {
        if let Some(v) = value {
            item.insert(name.into(), s(v));
        }
    }
    if let Some(v) = t.started_at {
        item.insert(STARTED_AT.into(), n(v));
    }
    if let Some(v) = t.exit_code {
        item.insert(EXIT_CODE.into(), n(v));
    }
    if withdrawn {
        item.insert(WITHDRAWN.into(), AttributeValue::Bool(true));
    }
    item
}

/// A tombstone item read back; `None` when it is not one or cannot be read.
pub fn to_tombstone(item: &Item) -> Option<Tombstone> {
    let k = task_key(item)?;
    let collection = k.collection.strip_prefix(REMOVED)?.to_string();
    Some(Tombstone {
        collection,
        task_id: k.task_id,
        sample: attr_s(item, SAMPLE).map(str::to_string),
        state: attr_s(item, STATE)?.parse().ok()?,
        created_at: attr_n(item, CREATED_AT)?,
        finished_at: attr_n(item, FINISHED_AT),
        removed_at: attr_n(item, REMOVED_AT)?,
        runs: attr_n(item, RUNS).unwrap_or(0) as u32,
        withdrawn: matches!(item.get(WITHDRAWN), Some(AttributeValue::Bool(true))),
        last_run: LastRun {
            attempts: attr_n(item, ATTEMPTS).unwrap_or(0) as u32,
            owner: attr_s(item, OWNER).map(str::to_string),
            started_at: attr_n(item, STARTED_AT),
            exit_code: attr_n(item, EXIT_CODE).map(|v| v as i32),
            log_uri: attr_s(item, LOG_URI).map(str::to_string),
            error_tail: attr_s(item, ERROR_TAIL).map(str::to_string),
        },
    })
}

/// What the sample index (or a full read) shows of an item: a task of the sample, live or
/// removed (a tombstone or an old done-mark). Times are there only in full reads: the index
/// does not carry them.
pub fn of_sample(item: &Item) -> Option<SampleTask> {
    let k = task_key(item)?;
    if k.collection == MARKS {
        let (step, _) = k.task_id.split_once('/')?;
        return Some(SampleTask {
            collection: step.to_string(),
            task_id: String::new(),
            state: TaskState::Done,
            version: 0,
            after: vec![],
            created_at: None,
            finished_at: None,
            removed_at: Some(attr_n(item, MARKED_AT).unwrap_or(0)),
        });
    }
    if let Some(step) = k.collection.strip_prefix(REMOVED) {
        return Some(SampleTask {
            collection: step.to_string(),
            task_id: k.task_id,
            state: attr_s(item, STATE)?.parse().ok()?,
            version: 0,
            after: vec![],
            created_at: attr_n(item, CREATED_AT),
            finished_at: attr_n(item, FINISHED_AT),
            // Not in the index: known to be removed, the time read in full when needed.
            removed_at: Some(attr_n(item, REMOVED_AT).unwrap_or(0)),
        });
    }
    Some(SampleTask {
        state: attr_s(item, STATE)?.parse().ok()?,
        version: attr_n(item, VERSION)?,
        after: get_list(item, AFTER).ok()?,
        created_at: attr_n(item, CREATED_AT),
        finished_at: attr_n(item, FINISHED_AT),
        removed_at: None,
        collection: k.collection,
        task_id: k.task_id,
    })
}

/// The key of a sample's task as `of_sample` gave it: the task's, or its tombstone's.
pub fn key_of_sample_task(t: &SampleTask) -> Item {
    if t.is_live() {
        key(&t.collection, &t.task_id)
    } else {
        tombstone_key(&t.collection, &t.task_id)
    }
}

/// When the task of an item was first added, when it can be read.
pub fn created_at(item: &Item) -> Option<i64> {
    attr_n(item, CREATED_AT)
}

/// Runs an item's task has made (`attempts` on items of an older anamo).
pub fn runs(item: &Item) -> u32 {
    attr_n(item, RUNS)
        .unwrap_or(0)
        .max(attr_n(item, ATTEMPTS).unwrap_or(0)) as u32
}

/// `item` numbering its runs on from `runs` (a task replaced, or re-added after removal).
pub fn with_runs(mut item: Item, runs: u32) -> Item {
    item.insert(RUNS.into(), n(runs));
    item
}

/// `item` with its creation time set to `at`: a task replaced in place keeps the time it was
/// first added (a lane stays a lane: README "Progress, defined once").
pub fn with_created_at(mut item: Item, at: i64) -> Item {
    item.insert(CREATED_AT.into(), n(at));
    item
}

/// The state of an item, when it can be read.
pub fn state_of(item: &Item) -> Option<TaskState> {
    attr_s(item, STATE)?.parse().ok()
}

/// The sample of an item, when it has one.
pub fn sample_of(item: &Item) -> Option<&str> {
    attr_s(item, SAMPLE)
}

/// The collection and state of an item, for counting; `None` when either cannot be read, and
/// for done-marks.
pub fn collection_and_state(item: &Item) -> Option<(&str, TaskState)> {
    let collection = attr_s(item, COLLECTION).filter(|c| !c.starts_with('/'))?;
    let state = attr_s(item, STATE)?.parse::<TaskState>().ok()?;
    Some((collection, state))
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

// Reads: key conditions, filters and projections.

/// A key condition or filter and the values it uses.
#[derive(Debug, Clone)]
pub struct Expr {
    pub text: String,
    pub values: Values,
}

impl Expr {
    fn new(text: &str, values: Values) -> Self {
        Self {
            text: text.to_string(),
            values,
        }
    }
}

/// The names and values of a request whose expressions are `parts`.
pub fn names_and_values(
    parts: &[&Expr],
) -> (HashMap<String, String>, HashMap<String, AttributeValue>) {
    let texts: Vec<&str> = parts.iter().map(|p| p.text.as_str()).collect();
    let values = parts.iter().flat_map(|p| p.values.clone()).collect();
    (names_in(&texts), values_map(values))
}

/// The key condition of a Query of one collection.
pub fn in_collection(collection: &str) -> Expr {
    Expr::new("#collection = :c", vec![(":c", s(collection))])
}

/// The key condition of a Query of every entry of one shard of the claim index.
pub fn in_shard(shard_key: &str) -> Expr {
    Expr::new("#claim_shard = :shard", vec![(":shard", s(shard_key))])
}

/// The key condition of a Query of one shard of the claim index for tasks claimable at `now`.
pub fn claimable_now(shard_key: &str, now: i64) -> Expr {
    Expr::new(
        "#claim_shard = :shard AND #claimable_at <= :now",
        vec![(":shard", s(shard_key)), (":now", n(now))],
    )
}

/// The key condition of a Query of one shard of the claim index for running tasks whose
/// lease runs past `now` (a waiting task's NEVER is not a lease).
pub fn held_at(shard_key: &str, now: i64) -> Expr {
    Expr::new(
        "#claim_shard = :shard AND #claimable_at BETWEEN :now AND :last",
        vec![
            (":shard", s(shard_key)),
            (":now", n(now)),
            (":last", n(NEVER - 1)),
        ],
    )
}

/// The key condition of a Query of one shard of the claim index for waiting tasks.
pub fn waiting_in(shard_key: &str) -> Expr {
    Expr::new(
        "#claim_shard = :shard AND #claimable_at = :never",
        vec![(":shard", s(shard_key)), (":never", n(NEVER))],
    )
}

/// The key condition of a Query of the sample index.
pub fn of_the_sample(sample: &str) -> Expr {
    Expr::new("#sample = :sample", vec![(":sample", s(sample))])
}

/// The key condition of a Query of the done-marks of one step.
pub fn marks_of(step: &str) -> Expr {
    Expr::new(
        "#collection = :marks AND begins_with(#task_id, :step)",
        vec![(":marks", s(MARKS)), (":step", s(&format!("{step}/")))],
    )
}

/// Waiting tasks (a filter).
pub fn waiting() -> Expr {
    Expr::new("#state = :waiting", vec![(":waiting", s("waiting"))])
}

/// Running tasks whose lease expired before `now`.
pub fn stale_at(now: i64) -> Expr {
    Expr::new(
        "#state = :running AND #lease_until < :now",
        vec![(":running", s("running")), (":now", n(now))],
    )
}

/// Failed tasks.
pub fn failed() -> Expr {
    Expr::new("#state = :failed", vec![(":failed", s("failed"))])
}

/// A filter for the state, sample and id parts of `filter` (the collection is the caller's:
/// a key condition); `None` when it has none of them.
pub fn matching(filter: &TaskFilter) -> Option<Expr> {
    let mut conds = vec![];
    let mut values = vec![];
    if let Some(st) = filter.state {
        conds.push("#state = :state");
        values.push((":state", s(st.as_str())));
    }
    if let Some(sm) = &filter.sample {
        conds.push("#sample = :sample");
        values.push((":sample", s(sm)));
    }
    if let Some(id) = &filter.task_id {
        conds.push("#task_id = :task_id");
        values.push((":task_id", s(id)));
    }
    (!conds.is_empty()).then(|| Expr {
        text: conds.join(" AND "),
        values,
    })
}

/// The projection that reads an item's key and version.
pub const KEY_VERSION_STATE: &str =
    "#collection, #task_id, #version, #state, #created_at, #attempts, #runs";
/// The projection that reads an item's key.
pub const KEY_ONLY: &str = "#collection, #task_id";
/// The projection that reads an item's key and sample.
pub const KEY_AND_SAMPLE: &str = "#collection, #task_id, #sample";
/// A filter for items without their claim shard (made before sharding).
pub const NO_SHARD: &str = "attribute_not_exists(#claim_shard)";

/// What a claim needs on a task, besides its key: the index keys that put it in the claim
/// index, what the index projects for the claim's condition and the task it returns, and
/// the script. A task written by hand without one of them can never be claimed.
pub const CLAIM_NEEDS: &[&str] = &[
    CLAIM_SHARD,
    CLAIMABLE_AT,
    VERSION,
    ATTEMPTS,
    MAX_ATTEMPTS,
    SCRIPT,
];

/// The filter and projection of a read of tasks no claim can take: `todo` (or `waiting`,
/// which a promotion makes `todo`) and missing one of [`CLAIM_NEEDS`]. With `every_todo`, every
/// `todo` task instead, for a worker that found the claim index empty and must tell a task
/// the index does not show from one it cannot take.
pub fn unclaimable_filter(every_todo: bool) -> (Expr, String) {
    // `attribute_type` is false for an attribute that is not there: NOT of it finds both the
    // missing and the malformed (a version written as a string).
    let unusable: Vec<String> = CLAIM_NEEDS
        .iter()
        .map(|a| {
            let kind = if NUMERIC_CLAIM_NEEDS.contains(a) {
                ":N"
            } else {
                ":S"
            };
            format!("NOT attribute_type(#{a}, {kind})")
        })
        .collect();
    let mut values = vec![(":todo", s("todo"))];
    let text = if every_todo {
        "#state = :todo".to_string()
    } else {
        values.extend([(":waiting", s("waiting")), (":N", s("N")), (":S", s("S"))]);
        values.extend(stateless_values());
        format!(
            "(#state IN (:todo, :waiting) AND ({})) OR {STATELESS}",
            unusable.join(" OR ")
        )
    };
    let projection = std::iter::once(format!("#{COLLECTION}, #{TASK_ID}, #{STATE}"))
        .chain(CLAIM_NEEDS.iter().map(|a| format!("#{a}")))
        .collect::<Vec<_>>()
        .join(", ");
    (Expr::new(&text, values), projection)
}

/// The claim attributes that are numbers (the rest are strings).
const NUMERIC_CLAIM_NEEDS: &[&str] = &[CLAIMABLE_AT, VERSION, ATTEMPTS, MAX_ATTEMPTS];

/// Which of [`CLAIM_NEEDS`] an item holds with the wrong type (a version written as a
/// string): those no repair can fill in, only writing the task again.
pub fn malformed_for_claim(item: &Item) -> Vec<&'static str> {
    missing_for_claim(item)
        .into_iter()
        .filter(|a| item.contains_key(*a))
        .collect()
}

/// The filter and projection of a store check's one read: every `todo` and `waiting` task,
/// with its claim attributes and when it was last written.
pub fn claim_check_read() -> (Expr, String) {
    let (_, projection) = unclaimable_filter(true);
    let mut values = vec![(":todo", s("todo")), (":waiting", s("waiting"))];
    values.extend(stateless_values());
    (
        Expr::new(
            &format!("#state IN (:todo, :waiting) OR {STATELESS}"),
            values,
        ),
        format!("{projection}, #{UPDATED_AT}"),
    )
}

/// A task item (not a mark) whose state is missing or not one anamo writes: nothing claims,
/// counts or promotes it, so the reads of tasks no claim can take name it too.
const STATELESS: &str = "(NOT (#state IN (:todo, :waiting, :running, :done, :failed)) \
                         AND NOT begins_with(#collection, :mark))";

/// The values [`STATELESS`] names beside `:todo` and `:waiting`, which its callers give.
fn stateless_values() -> [(&'static str, AttributeValue); 4] {
    [
        (":running", s("running")),
        (":done", s("done")),
        (":failed", s("failed")),
        (":mark", s("/")),
    ]
}

/// What keeps an item from being claimed: a state anamo does not know (named `state`), then
/// each of [`CLAIM_NEEDS`] it lacks or holds with the wrong type.
pub fn unclaimable_because(item: &Item) -> Vec<&'static str> {
    let stateless = state_of(item).is_none().then_some(STATE);
    stateless
        .into_iter()
        .chain(missing_for_claim(item))
        .collect()
}

/// When an item was last written (0 when it does not say).
pub fn updated_at(item: &Item) -> i64 {
    attr_n(item, UPDATED_AT).unwrap_or(0)
}

/// Which of [`CLAIM_NEEDS`] an item lacks (or holds with the wrong type).
pub fn missing_for_claim(item: &Item) -> Vec<&'static str> {
    CLAIM_NEEDS
        .iter()
        .copied()
        .filter(|a| match item.get(*a) {
            Some(AttributeValue::N(v)) => {
                !NUMERIC_CLAIM_NEEDS.contains(a) || v.parse::<f64>().is_err()
            }
            Some(AttributeValue::S(_)) => ![CLAIM_SHARD, SCRIPT].contains(a),
            _ => true,
        })
        .collect()
}

// Writes: each conditional update a task goes through.

/// One conditional UpdateItem: the key, what it sets and removes, the condition it needs and
/// the values both use. A task's writes move its version on and carry `:v` (the version they
/// expect), `:now` (written to updated_at) and, when a worker holds the task, `:owner`: what
/// [`bears_write`] looks for after an ambiguous failure.
#[derive(Debug, Clone)]
pub struct Update {
    pub key: Item,
    pub expression: String,
    pub condition: &'static str,
    pub values: Values,
}

impl Update {
    fn new(k: &TaskKey, expression: &str, condition: &'static str, values: Values) -> Self {
        Self {
            key: key(&k.collection, &k.task_id),
            expression: expression.to_string(),
            condition,
            values,
        }
    }

    /// The attribute names its expression and condition use.
    pub fn names(&self) -> HashMap<String, String> {
        names_in(&[&self.expression, self.condition])
    }
}

fn key_of(t: &Task) -> TaskKey {
    TaskKey {
        collection: t.collection.clone(),
        task_id: t.task_id.clone(),
    }
}

/// Takes a task for `owner` until `until`: running, one more attempt, and claimable again
/// when the lease runs out. Only if it is still the version the index showed and claimable.
pub fn claim(k: &TaskKey, version: i64, owner: &str, now: i64, until: i64) -> Update {
    Update::new(
        k,
        "SET #state = :running, #owner = :owner, #lease_until = :until, \
         #claimable_at = :until, #attempts = #attempts + :one, \
         #runs = if_not_exists(#runs, :zero) + :one, \
         #started_at = :now, #updated_at = :now, #version = #version + :one \
         REMOVE #finished_at, #exit_code",
        "#version = :v AND #claimable_at <= :now",
        vec![
            (":running", s("running")),
            (":owner", s(owner)),
            (":until", n(until)),
            (":zero", n(0)),
            (":one", n(1)),
            (":now", n(now)),
            (":v", n(version)),
        ],
    )
}

/// The condition of every write by the worker holding a task.
const HELD: &str = "#owner = :owner AND #version = :v AND #state = :running";

/// Extends the lease of a held task to `until`.
pub fn heartbeat(claim: &Claim, now: i64, until: i64) -> Update {
    let t = &claim.task;
    Update::new(
        &key_of(t),
        "SET #lease_until = :until, #claimable_at = :until, #updated_at = :now, \
         #version = #version + :one",
        HELD,
        vec![
            (":until", n(until)),
            (":now", n(now)),
            (":one", n(1)),
            (":owner", s(claim.owner())),
            (":v", n(t.version)),
            (":running", s("running")),
        ],
    )
}

/// Ends a run of a held task in `state`, with what the run left.
pub fn finish(claim: &Claim, state: TaskState, outcome: &Outcome, now: i64) -> Update {
    let t = &claim.task;
    let mut set = vec![
        "#state = :state",
        "#finished_at = :at",
        "#updated_at = :now",
        "#version = #version + :one",
    ];
    let mut remove = vec!["#lease_until"];
    let mut values = vec![
        (":state", s(state.as_str())),
        (":at", n(outcome.finished_at)),
        (":now", n(now)),
        (":one", n(1)),
        (":owner", s(claim.owner())),
        (":v", n(t.version)),
        (":running", s("running")),
    ];
    // A retried task is claimable again at once; a finished one leaves the index.
    if state == TaskState::Todo {
        set.push("#claimable_at = :at");
    } else {
        remove.push("#claimable_at");
    }
    for ((assign, name, placeholder), value) in [
        (
            ("#exit_code = :exit_code", "#exit_code", ":exit_code"),
            outcome.exit_code.map(n),
        ),
        (
            ("#error_tail = :error_tail", "#error_tail", ":error_tail"),
            outcome.error_tail.as_deref().map(s),
        ),
        (
            ("#log_uri = :log_uri", "#log_uri", ":log_uri"),
            outcome.log_uri.as_deref().map(s),
        ),
    ] {
        match value {
            Some(v) => {
                set.push(assign);
                values.push((placeholder, v));
            }
            None => remove.push(name),
        }
    }
    let expression = format!("SET {} REMOVE {}", set.join(", "), remove.join(", "));
    Update::new(&key_of(t), &expression, HELD, values)
}

/// Hands a held task back unrun: `todo`, claimable at once, the attempt not counted.
pub fn release(claim: &Claim, now: i64) -> Update {
    let t = &claim.task;
    Update::new(
        &key_of(t),
        "SET #state = :todo, #attempts = #attempts - :one, #claimable_at = :now, \
         #updated_at = :now, #version = #version + :one REMOVE #lease_until",
        HELD,
        vec![
            (":todo", s("todo")),
            (":one", n(1)),
            (":now", n(now)),
            (":owner", s(claim.owner())),
            (":v", n(t.version)),
            (":running", s("running")),
        ],
    )
}

/// Hands a running task whose lease expired back to `todo`, claimable at once.
pub fn requeue_stale(k: &TaskKey, version: i64, now: i64) -> Update {
    Update::new(
        k,
        "SET #state = :todo, #claimable_at = :now, #updated_at = :now, \
         #version = #version + :one REMOVE #lease_until",
        "#version = :v AND #state = :running",
        vec![
            (":todo", s("todo")),
            (":running", s("running")),
            (":now", n(now)),
            (":one", n(1)),
            (":v", n(version)),
        ],
    )
}

/// Ends a running task whose worker died on its last attempt: `failed`, out of the index.
pub fn fail_lost(k: &TaskKey, version: i64, now: i64) -> Update {
    Update::new(
        k,
        "SET #state = :failed, #finished_at = :now, #updated_at = :now, \
         #version = #version + :one, #error_tail = :why \
         REMOVE #claimable_at, #lease_until",
        "#version = :v AND #state = :running",
        vec![
            (":failed", s("failed")),
            (":running", s("running")),
            (":now", n(now)),
            (":one", n(1)),
            (":v", n(version)),
            (
                ":why",
                s("anamo: the lease expired on the last attempt (worker lost)"),
            ),
        ],
    )
}

/// Moves a waiting task to `todo`, claimable at once; only at `version` and still waiting,
/// so a promotion applied twice changes nothing.
pub fn promote(k: &TaskKey, version: i64, now: i64) -> Update {
    Update::new(
        k,
        "SET #state = :todo, #claimable_at = :now, #updated_at = :now, \
         #version = #version + :one",
        "#version = :v AND #state = :waiting",
        vec![
            (":todo", s("todo")),
            (":waiting", s("waiting")),
            (":now", n(now)),
            (":one", n(1)),
            (":v", n(version)),
        ],
    )
}

/// Puts a failed task back to `todo` with its attempts reset.
pub fn retry_failed(t: &Task, now: i64) -> Update {
    Update::new(
        &key_of(t),
        "SET #state = :todo, #attempts = :zero, #claimable_at = :now, \
         #updated_at = :now, #version = #version + :one \
         REMOVE #exit_code, #finished_at, #lease_until",
        "#version = :v AND #state = :failed",
        vec![
            (":todo", s("todo")),
            (":zero", n(0)),
            (":now", n(now)),
            (":one", n(1)),
            (":v", n(t.version)),
            (":failed", s("failed")),
        ],
    )
}

/// Gives an item of a table made before sharding its claim shard (a task deleted meanwhile
/// is not brought back). Not a task write: the version stays, and `store init` sends it once.
pub fn set_shard(k: &TaskKey) -> Update {
    Update::new(
        k,
        "SET #claim_shard = :s",
        "attribute_exists(#task_id) AND attribute_not_exists(#claim_shard)",
        vec![(":s", s(&shard_of_task(&k.collection, &k.task_id)))],
    )
}

/// Gives a `todo` or `waiting` task written without them the claim attributes it lacks, as
/// `tasks add` writes them (shard from its id, claimable now or never while waiting, version
/// and attempts 0, the default attempt limit); what it has is left. Only while its state is
/// still `state`. The script cannot be made up: [`missing_for_claim`] names it for a person.
pub fn give_claim_attributes(k: &TaskKey, state: TaskState, now: i64) -> Update {
    let claimable_at = if state == TaskState::Waiting {
        NEVER
    } else {
        now
    };
    Update::new(
        k,
        "SET #claim_shard = if_not_exists(#claim_shard, :shard), \
         #claimable_at = if_not_exists(#claimable_at, :at), \
         #attempts = if_not_exists(#attempts, :zero), \
         #max_attempts = if_not_exists(#max_attempts, :max), \
         #version = if_not_exists(#version, :zero) + :one, #updated_at = :now",
        "#state = :state",
        vec![
            (":shard", s(&shard_of_task(&k.collection, &k.task_id))),
            (":at", n(claimable_at)),
            (":zero", n(0)),
            (":one", n(1)),
            (":max", n(crate::model::DEFAULT_MAX_ATTEMPTS)),
            (":now", n(now)),
            (":state", s(state.as_str())),
        ],
    )
}

/// Writes a whole `todo` task's claim keys again (its shard, claimable now, version on), so
/// an index that lost its entry, or holds it where no claim reads, shows it again. Only if it
/// is still that version and `todo`.
pub fn reindex(k: &TaskKey, version: i64, now: i64) -> Update {
    Update::new(
        k,
        "SET #claim_shard = :shard, #claimable_at = :now, #updated_at = :now, \
         #version = #version + :one",
        "#version = :v AND #state = :todo",
        vec![
            (":shard", s(&shard_of_task(&k.collection, &k.task_id))),
            (":now", n(now)),
            (":one", n(1)),
            (":v", n(version)),
            (":todo", s("todo")),
        ],
    )
}

/// Whether `item` is what an update with these values leaves: the version after `:v`, the
/// `:now` it wrote, and its `:owner` when it names one.
pub fn bears_write(item: &Item, values: &HashMap<String, AttributeValue>) -> bool {
    let num = |v: Option<&AttributeValue>| match v {
        Some(AttributeValue::N(x)) => x.parse::<i64>().ok(),
        _ => None,
    };
    let (Some(v), Some(now)) = (num(values.get(":v")), num(values.get(":now"))) else {
        return false;
    };
    let owner_ok = match values.get(":owner") {
        Some(AttributeValue::S(o)) => attr_s(item, OWNER) == Some(o.as_str()),
        _ => true,
    };
    attr_n(item, VERSION) == Some(v + 1) && attr_n(item, UPDATED_AT) == Some(now) && owner_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage() {
        let t = NewTask {
            collection: "A".into(),
            task_id: "t1".into(),
            sample: Some("S1".into()),
            script: "true".into(),
            attrs: Attrs::from([("ref".to_string(), "hg38".to_string())]),
            max_attempts: 3,
            timeout_secs: Some(60),
            after: vec!["Up".into()],
        };
        let item = from_new(&t, 5, 0, TaskState::Todo);
        let back = to_task(&item).unwrap();
        assert_eq!(
            (back.task_id.as_str(), back.attrs["ref"].as_str()),
            ("t1", "hg38")
        );
        let mut broken = item.clone();
        broken.remove("script");
        assert_eq!(
            to_task(&broken).unwrap_err(),
            "missing required attribute 'script'"
        );
        assert_eq!(key_text(&broken), "A/t1");
    }

    #[test]
    fn names_are_found() {
        let n = names_in(&["SET #state = :s, #version = #version + :one", "#owner = :o"]);
        assert_eq!(n.len(), 3);
        assert_eq!(n["#state"], "state");
    }

    /// Every `#name` of every expression is an attribute this file writes or reads, and every
    /// placeholder of a write has its value and the reverse (DynamoDB refuses unused ones).
    #[test]
    fn expressions_name_known_attributes_and_their_values() {
        let known = [
            COLLECTION,
            TASK_ID,
            SAMPLE,
            SCRIPT,
            ATTRS,
            STATE,
            ATTEMPTS,
            MAX_ATTEMPTS,
            TIMEOUT_SECS,
            OWNER,
            LEASE_UNTIL,
            CREATED_AT,
            UPDATED_AT,
            STARTED_AT,
            FINISHED_AT,
            EXIT_CODE,
            LOG_URI,
            ERROR_TAIL,
            VERSION,
            CLAIMABLE_AT,
            CLAIM_SHARD,
            AFTER,
            MARKED_AT,
            REMOVED_AT,
            WITHDRAWN,
            RUNS,
            DROPPED_AT,
            REASON,
        ];
        let k = TaskKey {
            collection: "A".into(),
            task_id: "t1".into(),
        };
        let mut task = to_task(&from_new(
            &NewTask {
                collection: "A".into(),
                task_id: "t1".into(),
                sample: None,
                script: "true".into(),
                attrs: Attrs::new(),
                max_attempts: 3,
                timeout_secs: None,
                after: vec![],
            },
            5,
            0,
            TaskState::Todo,
        ))
        .unwrap();
        task.owner = Some("w".into());
        let held = Claim { task: task.clone() };
        let mut failed_run = Outcome::success(9);
        failed_run.exit_code = None;
        failed_run.log_uri = Some("s3://b/l".into());
        let updates = [
            claim(&k, 1, "w", 2, 3),
            heartbeat(&held, 1, 2),
            finish(&held, TaskState::Done, &Outcome::success(9), 9),
            finish(&held, TaskState::Todo, &failed_run, 9),
            release(&held, 1),
            requeue_stale(&k, 1, 2),
            fail_lost(&k, 1, 2),
            retry_failed(&task, 1),
            promote(&k, 1, 2),
            set_shard(&k),
        ];
        let filter = TaskFilter {
            collection: None,
            state: Some(TaskState::Todo),
            sample: Some("S".into()),
            task_id: Some("t".into()),
        };
        let reads = [
            in_collection("A"),
            claimable_now("A#00", 1),
            stale_at(1),
            failed(),
            matching(&filter).unwrap(),
            waiting_in("A#00"),
            held_at("A#00", 1),
            of_the_sample("S"),
            marks_of("A"),
            waiting(),
        ];
        let mut texts: Vec<(String, Vec<&str>)> = updates
            .iter()
            .map(|u| {
                let text = format!("{} {}", u.expression, u.condition);
                (text, u.values.iter().map(|(p, _)| *p).collect())
            })
            .collect();
        texts.extend(
            reads
                .iter()
                .map(|e| (e.text.clone(), e.values.iter().map(|(p, _)| *p).collect())),
        );
        for projection in [KEY_VERSION_STATE, KEY_ONLY, KEY_AND_SAMPLE, NO_SHARD] {
            texts.push((projection.to_string(), vec![]));
        }
        for (text, placeholders) in &texts {
            for name in names_in(&[text]).values() {
                assert!(known.contains(&name.as_str()), "{name} in {text}");
            }
            let mut used: Vec<&str> = text
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .filter(|w| w.starts_with(':'))
                .collect();
            used.sort();
            used.dedup();
            let mut given = placeholders.clone();
            given.sort();
            assert_eq!(used, given, "{text}");
        }
    }

    #[test]
    fn old_done_marks_and_tombstones_read_as_removed_tasks() {
        let from_mark = of_sample(&mark("A", "S1", 7)).unwrap();
        assert_eq!(
            (
                from_mark.collection.as_str(),
                from_mark.state,
                from_mark.removed_at
            ),
            ("A", TaskState::Done, Some(7))
        );
        let task = to_task(&from_new(
            &NewTask {
                collection: "A".into(),
                task_id: "S1-L2".into(),
                sample: Some("S1".into()),
                script: "true".into(),
                attrs: Attrs::new(),
                max_attempts: 3,
                timeout_secs: None,
                after: vec![],
            },
            5,
            0,
            TaskState::Todo,
        ))
        .unwrap();
        let stone = tombstone(&task, 9, false);
        assert!(is_mark(&stone));
        let back = to_tombstone(&stone).unwrap();
        assert_eq!(
            (
                back.collection.as_str(),
                back.task_id.as_str(),
                back.removed_at
            ),
            ("A", "S1-L2", 9)
        );
        let seen = of_sample(&stone).unwrap();
        assert_eq!(
            (seen.state, seen.removed_at, seen.created_at),
            (TaskState::Todo, Some(9), Some(5))
        );
        assert_eq!(key_of_sample_task(&seen), tombstone_key("A", "S1-L2"));
    }
}

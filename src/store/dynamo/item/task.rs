//! A task as an item and back: a new task's item, the reader that turns an item into a Task
//! (a damaged one into a message), tombstones, done-marks, dropped samples' marks, and what
//! the sample index shows of an item.

use aws_sdk_dynamodb::types::AttributeValue;

use super::*;
use crate::model::{
    Attrs, LastRun, NewTask, Reported, SampleTask, Task, TaskKey, TaskState, Tombstone,
    UpstreamReport,
};

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
    if !t.require.is_empty() {
        item.insert(
            REQUIRE.into(),
            AttributeValue::L(t.require.iter().map(|g| s(g)).collect()),
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
    with_change(item, now)
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
        reported: reported(item)?,
        require: get_list(item, REQUIRE)?,
        gate_note: get_s(item, GATE_NOTE)?,
        // Missing on a task written by hand: 0, as for max_attempts.
        version: get_n(item, VERSION)?.unwrap_or(0),
    })
}

/// What an item's last run reported (nothing when the attribute is missing).
fn reported(item: &Item) -> Result<Reported, String> {
    get_s(item, REPORTED)?.map_or(Ok(Reported::default()), |text| Reported::from_json(&text))
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
    attr_s(item, STATE) == Some(TaskState::Running.as_str())
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
    with_change(item, now)
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
    if let Some(v) = t.reported.to_json() {
        item.insert(REPORTED.into(), s(&v));
    }
    if let Some(v) = t.exit_code {
        item.insert(EXIT_CODE.into(), n(v));
    }
    if withdrawn {
        item.insert(WITHDRAWN.into(), AttributeValue::Bool(true));
    }
    // Its `updated_at` is its removal: an incremental sync learns of the removal by it.
    with_change(item, now)
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
            // An unreadable report is kept as none: the tombstone's state still counts.
            reported: reported(item).unwrap_or_default(),
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
            require: vec![],
            gate_note: None,
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
            require: vec![],
            gate_note: None,
        });
    }
    Some(SampleTask {
        state: attr_s(item, STATE)?.parse().ok()?,
        version: attr_n(item, VERSION)?,
        after: get_list(item, AFTER).ok()?,
        created_at: attr_n(item, CREATED_AT),
        finished_at: attr_n(item, FINISHED_AT),
        removed_at: None,
        // Not in the index: the flow reads every waiting and held task again in full.
        require: get_list(item, REQUIRE).ok()?,
        gate_note: attr_s(item, GATE_NOTE).map(str::to_string),
        collection: k.collection,
        task_id: k.task_id,
    })
}

/// What an item (a task or a tombstone) reported on its last run, when it reported metrics.
pub fn upstream_report(item: &Item) -> Option<UpstreamReport> {
    let k = task_key(item)?;
    let collection = k
        .collection
        .strip_prefix(REMOVED)
        .unwrap_or(&k.collection)
        .to_string();
    let metrics = reported(item).ok()?.metrics;
    if metrics.is_empty() {
        return None;
    }
    Some(UpstreamReport {
        collection,
        task_id: k.task_id,
        run: runs(item),
        finished_at: attr_n(item, FINISHED_AT),
        metrics,
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

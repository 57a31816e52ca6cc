//! Reads: every key condition, filter and projection the store's Queries and Scans use, with
//! the values they name.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use super::*;
use crate::model::{TaskFilter, TaskState};

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

/// The key condition of a Query of one shard of the change index for items written at or
/// after `since`.
pub fn changed_since(shard: u32, since: i64) -> Expr {
    Expr::new(
        "#change_shard = :cs AND #updated_at >= :since",
        vec![(":cs", s(&format!("{shard:02}"))), (":since", n(since))],
    )
}

/// A filter for the items of one step: its tasks and its tombstones.
pub fn of_step(collection: &str) -> Expr {
    Expr::new(
        "#collection IN (:c, :rc)",
        vec![
            (":c", s(collection)),
            (":rc", s(&format!("{REMOVED}{collection}"))),
        ],
    )
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

/// Waiting and held tasks (a filter): what the flow looks at.
pub fn waiting() -> Expr {
    Expr::new(
        "#state IN (:waiting, :held)",
        vec![
            state_value(TaskState::Waiting),
            state_value(TaskState::Held),
        ],
    )
}

/// Running tasks whose lease expired before `now`.
pub fn stale_at(now: i64) -> Expr {
    Expr::new(
        "#state = :running AND #lease_until < :now",
        vec![state_value(TaskState::Running), (":now", n(now))],
    )
}

/// Failed tasks.
pub fn failed() -> Expr {
    Expr::new("#state = :failed", vec![state_value(TaskState::Failed)])
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
/// A filter for items without their change shard (made before the change index).
pub const NO_CHANGE_SHARD: &str = "attribute_not_exists(#change_shard)";
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
    let mut values = vec![state_value(TaskState::Todo)];
    let text = if every_todo {
        "#state = :todo".to_string()
    } else {
        values.extend([
            state_value(TaskState::Waiting),
            (":N", s("N")),
            (":S", s("S")),
        ]);
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
    let mut values = vec![
        state_value(TaskState::Todo),
        state_value(TaskState::Waiting),
    ];
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
const STATELESS: &str = "(NOT (#state IN (:todo, :waiting, :held, :running, :done, :failed)) \
                         AND NOT begins_with(#collection, :mark))";

/// The values [`STATELESS`] names beside `:todo` and `:waiting`, which its callers give.
fn stateless_values() -> [(&'static str, AttributeValue); 5] {
    [
        state_value(TaskState::Held),
        state_value(TaskState::Running),
        state_value(TaskState::Done),
        state_value(TaskState::Failed),
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

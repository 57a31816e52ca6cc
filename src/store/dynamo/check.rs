//! `anamo store check` (and `tasks release-stale`) on DynamoDB: tasks no claim can take,
//! found by reading the table beside the claim index, and given back what a claim needs.
//! Two kinds: a `todo` or `waiting` task written (by hand, by a tool) without a claim
//! attribute, and a whole `todo` task the claim index does not show (an index entry lost: the
//! index lags a write, but must never hide a task for good). Both leave a worker reporting
//! "0 done" while work is left. Nothing here deletes or runs a task.

use std::collections::{BTreeSet, HashSet};

use super::DynamoStore;
use super::claim::{SHARDS, shard_key};
use super::item::{self, INDEX};
use crate::clock::now_ms;
use crate::error::Result;
use crate::model::{ClaimFinding, TaskKey, TaskState};

/// A task written this recently may not be in the index yet: not called missing from it.
const INDEX_LAG_MS: i64 = 10_000;

pub(super) fn check_claims(
    store: &DynamoStore,
    collection: Option<&str>,
    repair: bool,
) -> Result<Vec<ClaimFinding>> {
    let now = now_ms();
    let mut findings = vec![];
    // One read of the step's (or table's) todo and waiting tasks serves both kinds.
    let (filter, projection) = item::claim_check_read();
    let items = store
        .rt
        .block_on(store.filtered(collection, Some(&filter), Some(&projection)))?;
    let mut whole_todo = vec![];
    for it in items.into_iter().filter(|it| !item::is_mark(it)) {
        let Some(key) = item::task_key(&it) else {
            continue;
        };
        let Some(state) = item::state_of(&it) else {
            // Nothing claims, counts or promotes it; only writing it again makes it a task.
            findings.push(ClaimFinding {
                problem: format!("without a state anamo knows; {}", write_again(&key)),
                key,
                repaired: false,
                repairable: false,
            });
            continue;
        };
        let missing = item::missing_for_claim(&it);
        if missing.is_empty() {
            // Written long enough ago that the index should show it.
            if state == TaskState::Todo && item::updated_at(&it) < now - INDEX_LAG_MS {
                whole_todo.push((key, item::version(&it)));
            }
            continue;
        }
        let malformed = item::malformed_for_claim(&it);
        let problem = if !malformed.is_empty() {
            Some(format!(
                "{state} with {} of the wrong type; {}",
                malformed.join(", "),
                write_again(&key)
            ))
        } else if missing.contains(&item::SCRIPT_ATTR) {
            Some(format!(
                "{state} without {}: no script can be made up; {}",
                missing.join(", "),
                write_again(&key)
            ))
        } else {
            None
        };
        if let Some(problem) = problem {
            findings.push(ClaimFinding {
                key,
                problem,
                repaired: false,
                repairable: false,
            });
            continue;
        }
        let repaired = repair
            && store
                .rt
                .block_on(store.update(item::give_claim_attributes(&key, state, now)))?
                .is_some();
        findings.push(ClaimFinding {
            key,
            problem: format!("{state} without {}", missing.join(", ")),
            repaired,
            repairable: true,
        });
    }
    // Whole todo tasks the claim index does not show.
    if whole_todo.is_empty() {
        return Ok(findings);
    }
    let collections: BTreeSet<&str> = whole_todo
        .iter()
        .map(|(k, _)| k.collection.as_str())
        .collect();
    let indexed = index_keys(store, collections)?;
    for (key, version) in whole_todo {
        if indexed.contains(&key) {
            continue;
        }
        let repaired = repair
            && match version {
                Some(v) => store
                    .rt
                    .block_on(store.update(item::reindex(&key, v, now)))?
                    .is_some(),
                None => false,
            };
        findings.push(ClaimFinding {
            key,
            problem: "todo but not in the claim index".into(),
            repaired,
            repairable: true,
        });
    }
    Ok(findings)
}

/// The fix of a task no repair can complete: write it again (`tasks add` writes over an item
/// it cannot read as a task).
fn write_again(key: &TaskKey) -> String {
    format!(
        "add it again with `anamo tasks add -c {} --id {} --script ...` (written over this item)",
        key.collection, key.task_id
    )
}

/// The keys of the claim index's entries in the shards of `collections`: where claims read.
/// An entry anywhere else (a shard that is not the task's) is as lost as a missing one.
fn index_keys<'a>(
    store: &DynamoStore,
    collections: impl IntoIterator<Item = &'a str>,
) -> Result<HashSet<TaskKey>> {
    let mut keys = HashSet::new();
    for c in collections {
        for shard in 0..SHARDS {
            let items = store.rt.block_on(store.query_all(
                Some(INDEX),
                &item::in_shard(&shard_key(c, shard)),
                None,
                Some(item::KEY_ONLY),
                false,
            ))?;
            keys.extend(
                items.iter().filter_map(item::task_key).filter(|k| {
                    item::shard_of_task(&k.collection, &k.task_id) == shard_key(c, shard)
                }),
            );
        }
    }
    Ok(keys)
}

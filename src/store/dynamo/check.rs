//! `anamo store check` (and `tasks release-stale`) on DynamoDB: tasks no claim can take,
//! found by reading the table beside the claim index, and given back what a claim needs.
//! Two kinds: a `todo` or `waiting` task written (by hand, by a tool) without a claim
//! attribute, and a whole `todo` task the claim index does not show (an index entry lost: the
//! index lags a write, but must never hide a task for good). Both leave a worker reporting
//! "0 done" while work is left. Nothing here deletes or runs a task.

use std::collections::HashSet;

use super::DynamoStore;
use super::claim::{SHARDS, shard_key};
use super::item::{self, Expr, INDEX, Item};
use crate::clock::now_ms;
use crate::error::Result;
use crate::model::{ClaimFinding, TaskKey};

/// A task written this recently may not be in the index yet: not called missing from it.
const INDEX_LAG_MS: i64 = 10_000;

pub(super) fn check_claims(
    store: &DynamoStore,
    collection: Option<&str>,
    repair: bool,
) -> Result<Vec<ClaimFinding>> {
    let now = now_ms();
    let mut findings = vec![];
    // Hand-written tasks lacking what a claim needs.
    let (filter, _) = item::unclaimable_filter(false);
    for it in read_table(store, collection, &filter)? {
        let (Some(key), Some(state)) = (item::task_key(&it), item::state_of(&it)) else {
            continue;
        };
        let missing = item::missing_for_claim(&it);
        let malformed = item::malformed_for_claim(&it);
        if !malformed.is_empty() {
            let problem = format!(
                "{state} with {} of the wrong type; add it again with `anamo tasks add -c {} \
                 --id {} --script ...` (written over this item)",
                malformed.join(", "),
                key.collection,
                key.task_id
            );
            findings.push(ClaimFinding {
                key,
                problem,
                repaired: false,
            });
            continue;
        }
        let problem = format!("{state} without {}", missing.join(", "));
        if missing.contains(&item::SCRIPT_ATTR) {
            let problem = format!(
                "{problem}: no script can be made up; add it again with `anamo tasks add -c {} \
                 --id {} --script ...` (written over this item)",
                key.collection, key.task_id
            );
            findings.push(ClaimFinding {
                key,
                problem,
                repaired: false,
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
            problem,
            repaired,
        });
    }
    // Whole todo tasks the claim index does not show.
    let (every_todo, _) = item::unclaimable_filter(true);
    let todo: Vec<Item> = read_table(store, collection, &every_todo)?
        .into_iter()
        .filter(|it| item::missing_for_claim(it).is_empty())
        .filter(|it| item::updated_at(it) < now - INDEX_LAG_MS)
        .collect();
    if todo.is_empty() {
        return Ok(findings);
    }
    let collections: std::collections::BTreeSet<&str> = todo
        .iter()
        .filter_map(|it| item::collection_and_state(it).map(|(c, _)| c))
        .collect();
    let indexed = index_keys(store, collections.iter().copied())?;
    for it in todo {
        let Some(key) = item::task_key(&it) else {
            continue;
        };
        if indexed.contains(&key) {
            continue;
        }
        let repaired = repair
            && match item::version(&it) {
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
        });
    }
    Ok(findings)
}

/// The tasks of the table (or of one collection) that pass `filter`, with their claim
/// attributes only; bookkeeping items are left out.
fn read_table(store: &DynamoStore, collection: Option<&str>, filter: &Expr) -> Result<Vec<Item>> {
    let projection = item::claim_check_projection();
    let items = store
        .rt
        .block_on(store.filtered(collection, Some(filter), Some(&projection)))?;
    Ok(items.into_iter().filter(|it| !item::is_mark(it)).collect())
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

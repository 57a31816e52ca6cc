//! Writes to many tasks at once, for the `tasks` commands: `add` (BatchGetItem to see which
//! ids exist, then BatchWriteItem), `delete`, `retry` of failed tasks and `release_stale`
//! (expired leases). Batches go 25 writes or 100 reads at a time, and what DynamoDB leaves
//! unprocessed is sent again (writes with backoff). Retry and release_stale write each task
//! with its own conditional update, so a task that changed since it was read is left alone.
//! The worker's path never comes through here, and nothing here names an attribute (item.rs
//! does).

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::{DeleteRequest, PutRequest, WriteRequest};

use super::item::{self, Item, key};
use super::retry::retrying;
use super::{DynamoStore, aws_error};
use crate::backoff::Backoff;
use crate::clock::now_ms;
use crate::error::{Error, Result};
use crate::model::{
    AddOptions, AddReport, NewTask, Seen, Selector, Skipped, StaleReport, TaskKey, TaskState,
    Tombstone,
};

pub(super) fn add(store: &DynamoStore, tasks: &[NewTask], opts: AddOptions) -> Result<AddReport> {
    store.rt.block_on(async {
        let keys: Vec<TaskKey> = tasks.iter().map(NewTask::key).collect();
        let existing = store.existing(&keys).await?;
        let removed = store.tombstones(&keys).await?;
        let dropped = store.dropped_samples(tasks).await?;
        let now = now_ms();
        let mut report = AddReport::default();
        let mut written = vec![];
        let mut forget = vec![];
        for t in tasks {
            let k = t.key();
            // A dropped sample's tasks are not added, whatever --replace says.
            if let Some(at) = t.sample.as_ref().and_then(|s| dropped.get(s)) {
                report.skipped.push(Skipped {
                    collection: k.collection,
                    task_id: k.task_id,
                    seen: Seen::SampleDropped { at: *at },
                });
                continue;
            }
            let seen = match (existing.get(&k), removed.get(&k)) {
                (Some(live), _) => Some((Some(*live), Seen::Present(live.state))),
                // Withdrawn with its sample: adding it again is allowed (its runs number on).
                (None, Some(gone)) if gone.withdrawn => {
                    forget.push(delete_request(item::tombstone_key(
                        &k.collection,
                        &k.task_id,
                    ))?);
                    None
                }
                (None, Some(gone)) => Some((
                    None,
                    Seen::Removed {
                        state: gone.state,
                        at: gone.removed_at,
                    },
                )),
                (None, None) => None,
            };
            let written_as = match seen {
                None => {
                    report.added += 1;
                    None
                }
                // The version moves on, so a worker holding the old task loses it; a removed
                // one is live again and its tombstone goes.
                Some((version, seen)) if opts.replace => {
                    if matches!(seen, Seen::Removed { .. }) {
                        report.added += 1;
                        forget.push(delete_request(item::tombstone_key(
                            &k.collection,
                            &k.task_id,
                        ))?);
                    } else {
                        report.replaced += 1;
                    }
                    version
                }
                Some((_, seen)) => {
                    report.skipped.push(Skipped {
                        collection: k.collection,
                        task_id: k.task_id,
                        seen,
                    });
                    continue;
                }
            };
            written.push((t, written_as));
        }
        // Decided before anything is written: a refused batch writes nothing.
        let batch: Vec<&NewTask> = written.iter().map(|(t, _)| *t).collect();
        let states = store
            .start_states(&batch, opts.allow_missing_upstream)
            .await?;
        let mut puts = vec![];
        for ((t, live), (state, blocked)) in written.into_iter().zip(states) {
            report.waiting += (state == TaskState::Waiting) as u64;
            report.blocked += (state == TaskState::Waiting && blocked) as u64;
            let version = live.map_or(0, |l| l.version + 1);
            let mut new = item::from_new(t, now, version, state);
            if let Some(created) = live.and_then(|l| l.created_at) {
                new = item::with_created_at(new, created);
            }
            // Runs number on: from the task replaced, or from the tombstone of a re-add.
            let runs = live
                .map(|l| l.runs)
                .or_else(|| removed.get(&t.key()).map(|g| g.runs))
                .unwrap_or(0);
            puts.push(put_request(item::with_runs(new, runs))?);
        }
        store.batch_write(puts).await?;
        store.batch_write(forget).await?;
        Ok(report)
    })
}

/// What `add` reads of a task that is already in the store.
#[derive(Debug, Clone, Copy)]
struct Live {
    version: i64,
    state: TaskState,
    created_at: Option<i64>,
    runs: u32,
}

fn delete_request(key: Item) -> Result<WriteRequest> {
    let del = DeleteRequest::builder()
        .set_key(Some(key))
        .build()
        .map_err(super::built_wrong)?;
    Ok(WriteRequest::builder().delete_request(del).build())
}

fn put_request(item: Item) -> Result<WriteRequest> {
    let put = PutRequest::builder()
        .set_item(Some(item))
        .build()
        .map_err(super::built_wrong)?;
    Ok(WriteRequest::builder().put_request(put).build())
}

/// Hands expired leases back to `todo`, or ends them `failed` on their last attempt.
pub(super) fn release_stale(store: &DynamoStore, collection: Option<&str>) -> Result<StaleReport> {
    store.rt.block_on(async {
        let now = now_ms();
        let stale = store.items(collection, Some(item::stale_at(now))).await?;
        let mut report = StaleReport::default();
        for it in stale {
            let Some(k) = item::task_key(&it) else {
                continue;
            };
            let version = item::version(&it).unwrap_or(-1);
            if item::attempts_used_up(&it) {
                report.failed += store.fail_lost(&k, version, now).await? as u64;
                continue;
            }
            let done = store.update(item::requeue_stale(&k, version, now)).await?;
            report.released += done.is_some() as u64;
        }
        Ok(report)
    })
}

pub(super) fn retry(store: &DynamoStore, collection: &str, selector: &Selector) -> Result<u64> {
    if let Selector::State(st) = selector
        && *st != TaskState::Failed
    {
        return Err(Error::Invalid(format!(
            "only failed tasks can be retried, not {st} ones"
        )));
    }
    store.rt.block_on(async {
        let failed = store.items(Some(collection), Some(item::failed())).await?;
        let now = now_ms();
        let mut n_done = 0;
        for it in failed {
            let Ok(task) = item::to_task(&it) else {
                continue;
            };
            if !selector.matches(&task) {
                continue;
            }
            let out = store.update(item::retry_failed(&task, now)).await?;
            n_done += out.is_some() as u64;
        }
        Ok(n_done)
    })
}

pub(super) fn delete(store: &DynamoStore, collection: &str, selector: &Selector) -> Result<u64> {
    store.rt.block_on(async {
        let items = store.items(Some(collection), None).await?;
        let mut requests = vec![];
        let mut tombstones = vec![];
        let now = now_ms();
        for it in items {
            let chosen = match item::to_task(&it) {
                Ok(task) => {
                    let chosen = selector.matches(&task);
                    // Every removed task leaves its tombstone (the flow still judges it, and
                    // a later add does not bring it back in silence).
                    if chosen {
                        let withdrawn = matches!(selector, Selector::Withdrawn(_));
                        tombstones.push(put_request(item::tombstone(&task, now, withdrawn))?);
                    }
                    chosen
                }
                // An item anamo cannot read as a task (written by hand without a state,
                // say) goes when everything goes or when it is named: it has no history to
                // keep, and naming it is how a person clears it.
                Err(_) => match (selector, item::task_key(&it)) {
                    (Selector::All, _) => true,
                    (Selector::Ids(ids), Some(k)) => ids.contains(&k.task_id),
                    _ => false,
                },
            };
            let Some(k) = item::task_key(&it) else {
                continue;
            };
            if chosen {
                requests.push(delete_request(key(&k.collection, &k.task_id))?);
            }
        }
        let count = requests.len() as u64;
        // Tombstones first: a delete cut short leaves tombstones beside their tasks (the
        // flow reads both as the one task), never tasks gone without a trace.
        store.batch_write(tombstones).await?;
        store.batch_write(requests).await?;
        Ok(count)
    })
}

impl DynamoStore {
    /// Writes requests 25 at a time, retrying what DynamoDB leaves unprocessed with backoff.
    async fn batch_write(&self, requests: Vec<WriteRequest>) -> Result<()> {
        for chunk in requests.chunks(25) {
            let mut pending = HashMap::from([(self.table.clone(), chunk.to_vec())]);
            let mut backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(5));
            for attempt in 0.. {
                let out = retrying(|| {
                    let sent = self
                        .client
                        .batch_write_item()
                        .set_request_items(Some(pending.clone()))
                        .send();
                    async move { sent.await.map_err(|e| aws_error("writing tasks", e)) }
                })
                .await?;
                pending = out.unprocessed_items.unwrap_or_default();
                pending.retain(|_, v| !v.is_empty());
                if pending.is_empty() {
                    break;
                }
                if attempt >= 10 {
                    return Err(Error::Aws(
                        "writing tasks: DynamoDB kept items unprocessed after 10 tries (throttled); try again".into(),
                    ));
                }
                tokio::time::sleep(backoff.next_pause()).await;
            }
        }
        Ok(())
    }

    /// The keys that exist, read consistently with BatchGetItem.
    async fn existing(&self, keys: &[TaskKey]) -> Result<HashMap<TaskKey, Live>> {
        let wanted: Vec<Item> = keys
            .iter()
            .map(|k| key(&k.collection, &k.task_id))
            .collect();
        let found = self.get_many(wanted, Some(item::KEY_VERSION_STATE)).await?;
        Ok(found
            .iter()
            .filter_map(|it| {
                let k = item::task_key(it)?;
                let live = Live {
                    version: item::exact_version(it)?,
                    state: item::state_of(it)?,
                    created_at: item::created_at(it),
                    runs: item::runs(it),
                };
                Some((k, live))
            })
            .collect())
    }

    /// The tombstones of the keys that have one, read consistently.
    async fn tombstones(&self, keys: &[TaskKey]) -> Result<HashMap<TaskKey, Tombstone>> {
        let wanted: Vec<Item> = keys
            .iter()
            .map(|k| item::tombstone_key(&k.collection, &k.task_id))
            .collect();
        let found = self.get_many(wanted, None).await?;
        Ok(found
            .iter()
            .filter_map(item::to_tombstone)
            .map(|t| (TaskKey::new(&t.collection, &t.task_id), t))
            .collect())
    }

    /// The drop marks of the batch's samples: sample -> when it was dropped.
    async fn dropped_samples(&self, tasks: &[NewTask]) -> Result<HashMap<String, i64>> {
        let samples: std::collections::BTreeSet<&str> =
            tasks.iter().filter_map(|t| t.sample.as_deref()).collect();
        let wanted: Vec<Item> = samples.into_iter().map(item::dropped_key).collect();
        let found = self.get_many(wanted, None).await?;
        Ok(found.iter().filter_map(item::dropped_mark).collect())
    }
}

/// Marks a sample dropped (see `TaskStore::drop_sample`).
pub(super) fn drop_sample(store: &DynamoStore, sample: &str, reason: &str) -> Result<()> {
    store.rt.block_on(async {
        let mark = put_request(item::dropped(sample, now_ms(), reason))?;
        store.batch_write(vec![mark]).await
    })
}

/// Takes a sample's drop mark away; `false` when it had none.
pub(super) fn reinstate_sample(store: &DynamoStore, sample: &str) -> Result<bool> {
    store.rt.block_on(async {
        let key = item::dropped_key(sample);
        if store.get_item(&key).await?.is_none() {
            return Ok(false);
        }
        store.batch_write(vec![delete_request(key)?]).await?;
        Ok(true)
    })
}

//! Reads of the DynamoDB store: one task by key, pages of tasks (a Query of one collection or
//! a Scan of the table), the parallel Scan that streams the whole table, counts by state and
//! the claimable count from the claim index. Gets, whole reads and the stream read
//! consistently; a listed page and the index (which DynamoDB keeps eventually consistent) may
//! lag. Every read but the stream retries failures that may pass. A read never writes, and an
//! item that cannot be read as a task is reported as damaged in a listing, never raised.
//! Nothing here names an attribute (item.rs does).

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::time::Duration;

use aws_sdk_dynamodb::types::KeysAndAttributes;

use super::claim::SHARDS;
use super::item::{self, Expr, Item, key, names_and_values, names_in};
use super::retry::retrying;
use super::{DynamoStore, aws_error};
use crate::clock::now_ms;
use crate::error::{Error, Result};
use crate::model::{Damaged, Page, StateCount, Task, TaskFilter, TaskKey, TaskState, Unclaimable};

/// Segments of a whole-table Scan read at once.
const SEGMENTS: i32 = 4;

pub(super) fn get(store: &DynamoStore, collection: &str, task_id: &str) -> Result<Option<Task>> {
    store.rt.block_on(async {
        store
            .get_item(&key(collection, task_id))
            .await?
            .map(|it| {
                item::to_task(&it).map_err(|reason| Error::Damaged {
                    collection: collection.into(),
                    task_id: task_id.into(),
                    reason,
                })
            })
            .transpose()
    })
}

/// One page: a Query of `filter.collection`, or a Scan of the table, from after `after`.
pub(super) fn scan(
    store: &DynamoStore,
    filter: &TaskFilter,
    after: Option<&TaskKey>,
    limit: usize,
) -> Result<Page> {
    let matching = item::matching(filter);
    let in_collection = filter.collection.as_deref().map(item::in_collection);
    let start = after.map(|k| key(&k.collection, &k.task_id));
    let limit = limit.clamp(1, 10_000) as i32;
    let (matching, in_collection, start) = (&matching, &in_collection, &start);
    let (items, last) = store.rt.block_on(retrying(|| async move {
        let filter_expr = matching.as_ref().map(|m| m.text.clone());
        match in_collection {
            Some(key_cond) => {
                let parts: Vec<&Expr> = matching.iter().chain([key_cond]).collect();
                let (names, values) = names_and_values(&parts);
                let out = store
                    .client
                    .query()
                    .table_name(&store.table)
                    .key_condition_expression(&key_cond.text)
                    .set_filter_expression(filter_expr)
                    .set_expression_attribute_names(Some(names))
                    .set_expression_attribute_values(Some(values))
                    .set_exclusive_start_key(start.clone())
                    .limit(limit)
                    .send()
                    .await
                    .map_err(|e| aws_error("reading tasks", e))?;
                Ok((out.items.unwrap_or_default(), out.last_evaluated_key))
            }
            None => {
                let parts: Vec<&Expr> = matching.iter().collect();
                let (names, values) = names_and_values(&parts);
                let out = store
                    .client
                    .scan()
                    .table_name(&store.table)
                    .set_filter_expression(filter_expr)
                    .set_expression_attribute_names((!names.is_empty()).then_some(names))
                    .set_expression_attribute_values((!values.is_empty()).then_some(values))
                    .set_exclusive_start_key(start.clone())
                    .limit(limit)
                    .send()
                    .await
                    .map_err(|e| aws_error("reading tasks", e))?;
                Ok((out.items.unwrap_or_default(), out.last_evaluated_key))
            }
        }
    }))?;
    store.tally(&items);
    let mut page = page_of(items);
    page.next = last.as_ref().and_then(item::task_key);
    Ok(page)
}

pub(super) fn counts(store: &DynamoStore, collection: Option<&str>) -> Result<Vec<StateCount>> {
    let items = store.rt.block_on(store.items(collection, None))?;
    let mut counts: HashMap<(String, TaskState), u64> = HashMap::new();
    for it in items {
        let Some((c, st)) = item::collection_and_state(&it) else {
            continue;
        };
        *counts.entry((c.to_string(), st)).or_default() += 1;
    }
    let mut out: Vec<StateCount> = counts
        .into_iter()
        .map(|((collection, state), count)| StateCount {
            collection,
            state,
            count,
        })
        .collect();
    out.sort_by(|a, b| (&a.collection, a.state).cmp(&(&b.collection, b.state)));
    Ok(out)
}

/// Counted from the claim index, shard by shard (every page): what the index shows
/// claimable now, never a Scan of the table. Counted with the claim's own reading of an
/// entry ([`super::index::candidate`]): an entry a claim cannot take is not work.
pub(super) fn count_claimable(store: &DynamoStore, collection: &str) -> Result<u64> {
    store.rt.block_on(async {
        let now = now_ms();
        let mut total = 0u64;
        for shard in 0..SHARDS {
            total += retrying(|| async move {
                let mut pages = store
                    .claimable_now(collection, shard, now)
                    .into_paginator()
                    .send();
                let mut count = 0u64;
                while let Some(page) = pages.next().await {
                    let page = page.map_err(|e| aws_error("counting claimable tasks", e))?;
                    count += page
                        .items()
                        .iter()
                        .filter(|it| super::index::candidate(it).is_some())
                        .count() as u64;
                }
                Ok(count)
            })
            .await?;
        }
        Ok(total)
    })
}

/// Tasks no claim can take, read from the table (not the index): see
/// [`item::unclaimable_filter`].
pub(super) fn unclaimable(
    store: &DynamoStore,
    collection: Option<&str>,
    every_todo: bool,
) -> Result<Vec<Unclaimable>> {
    let (filter, projection) = item::unclaimable_filter(every_todo);
    let items = store
        .rt
        .block_on(store.filtered(collection, Some(&filter), Some(&projection)))?;
    Ok(items
        .iter()
        .filter(|it| !item::is_mark(it))
        .filter_map(|it| {
            Some(Unclaimable {
                key: item::task_key(it)?,
                missing: item::unclaimable_because(it)
                    .into_iter()
                    .map(str::to_string)
                    .collect(),
            })
        })
        .collect())
}

/// Whether any shard of the claim index holds a running task with a live lease: one item
/// of one Query at most per shard.
pub(super) fn has_running(store: &DynamoStore, collection: &str) -> Result<bool> {
    use std::sync::atomic::Ordering;
    let first = store.running_shard.load(Ordering::Relaxed) % SHARDS;
    store.rt.block_on(async {
        let now = now_ms();
        for shard in (0..SHARDS).map(|i| (first + i) % SHARDS) {
            let cond = item::held_at(&super::claim::shard_key(collection, shard), now);
            let (names, values) = names_and_values(&[&cond]);
            let found = retrying(|| {
                let sent = store
                    .client
                    .query()
                    .table_name(&store.table)
                    .index_name(item::INDEX)
                    .key_condition_expression(&cond.text)
                    .set_expression_attribute_names(Some(names.clone()))
                    .set_expression_attribute_values(Some(values.clone()))
                    .limit(1)
                    .send();
                async move {
                    let out = sent
                        .await
                        .map_err(|e| aws_error("looking for running tasks", e))?;
                    Ok(out.count > 0)
                }
            })
            .await?;
            if found {
                store.running_shard.store(shard, Ordering::Relaxed);
                return Ok(true);
            }
        }
        Ok(false)
    })
}

/// A read across collections is a parallel Scan (filtered, for a lookup by id or state):
/// SEGMENTS segments, each through the SDK paginator to its last page (DynamoDB filters
/// after each page's Limit, so one page proves nothing), their pages handed to `f` as
/// they come (bounded channel: memory stays flat). One collection is a Query.
pub(super) fn stream(
    store: &DynamoStore,
    filter: &TaskFilter,
    page_size: usize,
    f: &mut dyn FnMut(Page) -> Result<ControlFlow<()>>,
) -> Result<()> {
    if let Some(collection) = &filter.collection {
        return stream_step(store, collection, filter, page_size, f);
    }
    let matching = item::matching(filter);
    let (names, values) = names_and_values(&matching.iter().collect::<Vec<_>>());
    let filter_expr = matching.map(|m| m.text);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Vec<Item>>>(SEGMENTS as usize);
    for segment in 0..SEGMENTS {
        let tx = tx.clone();
        let mut pages = store
            .client
            .scan()
            .table_name(&store.table)
            .segment(segment)
            .total_segments(SEGMENTS)
            .set_filter_expression(filter_expr.clone())
            .set_expression_attribute_names((!names.is_empty()).then(|| names.clone()))
            .set_expression_attribute_values((!values.is_empty()).then(|| values.clone()))
            .limit(page_size.clamp(1, 10_000) as i32)
            .consistent_read(true)
            .into_paginator()
            .send();
        store.rt.spawn(async move {
            while let Some(page) = pages.next().await {
                let page = page
                    .map(|p| p.items.unwrap_or_default())
                    .map_err(|e| aws_error("reading tasks", e));
                let failed = page.is_err();
                if tx.send(page).await.is_err() || failed {
                    return;
                }
            }
        });
    }
    drop(tx);
    while let Some(items) = store.rt.block_on(rx.recv()) {
        let items = items?;
        store.tally(&items);
        if f(page_of(items))?.is_break() {
            return Ok(());
        }
    }
    Ok(())
}

/// One step's tasks page by page (a Query of its partition), then, for a whole read, its
/// tombstones: a sync of one step learns of its removed tasks as a sync of all does.
fn stream_step(
    store: &DynamoStore,
    collection: &str,
    filter: &TaskFilter,
    page_size: usize,
    f: &mut dyn FnMut(Page) -> Result<ControlFlow<()>>,
) -> Result<()> {
    let mut stopped = false;
    crate::store::stream_by_scan(store, filter, page_size, &mut |page| {
        let flow = f(page)?;
        stopped = flow.is_break();
        Ok(flow)
    })?;
    let whole = filter.state.is_none() && filter.sample.is_none() && filter.task_id.is_none();
    if stopped || !whole {
        return Ok(());
    }
    let removed = item::tombstones_of(collection);
    let items = store
        .rt
        .block_on(store.query_all(None, &removed, None, None, true))?;
    store.tally(&items);
    for chunk in items.chunks(page_size.max(1)) {
        if f(page_of(chunk.to_vec()))?.is_break() {
            break;
        }
    }
    Ok(())
}

impl DynamoStore {
    /// One item by key, read consistently.
    pub(super) async fn get_item(&self, key: &Item) -> Result<Option<Item>> {
        retrying(|| async move {
            let out = self
                .client
                .get_item()
                .table_name(&self.table)
                .set_key(Some(key.clone()))
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| aws_error("reading a task", e))?;
            Ok(out.item)
        })
        .await
    }

    /// Items by key, read consistently 100 at a time (`projection` when given).
    pub(super) async fn get_many(
        &self,
        keys: Vec<Item>,
        projection: Option<&str>,
    ) -> Result<Vec<Item>> {
        let mut found = vec![];
        for chunk in keys.chunks(100) {
            let mut pending = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(chunk.to_vec()))
                    .set_projection_expression(projection.map(str::to_string))
                    .set_expression_attribute_names(projection.map(|p| names_in(&[p])))
                    .consistent_read(true)
                    .build()
                    .map_err(super::built_wrong)?,
            );
            while let Some(req) = pending.take() {
                let out = retrying(|| {
                    let sent = self
                        .client
                        .batch_get_item()
                        .request_items(&self.table, req.clone())
                        .send();
                    async move { sent.await.map_err(|e| aws_error("reading tasks", e)) }
                })
                .await?;
                found.extend(
                    out.responses
                        .unwrap_or_default()
                        .remove(&self.table)
                        .unwrap_or_default(),
                );
                pending = out
                    .unprocessed_keys
                    .unwrap_or_default()
                    .remove(&self.table)
                    .filter(|k| !k.keys().is_empty());
                if pending.is_some() {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        Ok(found)
    }

    /// Every item of one Query (all pages, read again from the start after a passing fault):
    /// of the table or an index, filtered and projected when asked.
    pub(super) async fn query_all(
        &self,
        index: Option<&str>,
        key_cond: &Expr,
        filter: Option<&Expr>,
        projection: Option<&str>,
        consistent: bool,
    ) -> Result<Vec<Item>> {
        retrying(|| async move {
            let parts: Vec<&Expr> = filter.into_iter().chain([key_cond]).collect();
            let (mut names, values) = names_and_values(&parts);
            if let Some(p) = projection {
                names.extend(names_in(&[p]));
            }
            let mut pages = self
                .client
                .query()
                .table_name(&self.table)
                .set_index_name(index.map(str::to_string))
                .key_condition_expression(&key_cond.text)
                .set_filter_expression(filter.map(|f| f.text.clone()))
                .set_projection_expression(projection.map(str::to_string))
                .set_expression_attribute_names(Some(names))
                .set_expression_attribute_values(Some(values))
                .consistent_read(consistent)
                .into_paginator()
                .send();
            let mut out = vec![];
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| aws_error("reading tasks", e))?;
                out.extend(page.items.unwrap_or_default());
            }
            Ok(out)
        })
        .await
    }

    /// Every item of a collection (a consistent Query) or of the table (a consistent Scan),
    /// page by page through the SDK paginator; a transient failure reads again from the start.
    pub(super) async fn items(
        &self,
        collection: Option<&str>,
        filter: Option<Expr>,
    ) -> Result<Vec<Item>> {
        self.filtered(collection, filter.as_ref(), None).await
    }

    /// The items of a collection (a consistent Query) or of the table (a consistent Scan)
    /// that pass `filter`, with only `projection`'s attributes when it is given.
    pub(super) async fn filtered(
        &self,
        collection: Option<&str>,
        filter: Option<&Expr>,
        projection: Option<&str>,
    ) -> Result<Vec<Item>> {
        match collection {
            Some(c) => {
                self.query_all(None, &item::in_collection(c), filter, projection, true)
                    .await
            }
            None => retrying(|| self.scan_all(filter, projection)).await,
        }
    }

    async fn scan_all(&self, filter: Option<&Expr>, projection: Option<&str>) -> Result<Vec<Item>> {
        let parts: Vec<&Expr> = filter.into_iter().collect();
        let (mut names, values) = names_and_values(&parts);
        names.extend(projection.map(|p| names_in(&[p])).unwrap_or_default());
        let mut pages = self
            .client
            .scan()
            .table_name(&self.table)
            .set_filter_expression(filter.map(|f| f.text.clone()))
            .set_projection_expression(projection.map(str::to_string))
            .set_expression_attribute_names((!names.is_empty()).then_some(names))
            .set_expression_attribute_values((!values.is_empty()).then_some(values))
            .consistent_read(true)
            .into_paginator()
            .send();
        let mut out = vec![];
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| aws_error("reading tasks", e))?;
            out.extend(page.items.unwrap_or_default());
        }
        Ok(out)
    }
}

/// Items as a page of tasks; items that cannot be read are reported, not raised, tombstones
/// go to `removed`, and other bookkeeping (done-marks, drop marks) is left out.
pub(super) fn page_of(items: Vec<Item>) -> Page {
    let mut page = Page::default();
    for it in items {
        if item::is_mark(&it) {
            page.removed.extend(item::to_tombstone(&it));
            continue;
        }
        match item::to_task(&it) {
            Ok(t) => {
                let missing = item::missing_for_claim(&it);
                if matches!(t.state, TaskState::Todo | TaskState::Waiting) && !missing.is_empty() {
                    page.unclaimable.push(Unclaimable {
                        key: TaskKey {
                            collection: t.collection.clone(),
                            task_id: t.task_id.clone(),
                        },
                        missing: missing.into_iter().map(str::to_string).collect(),
                    });
                }
                page.tasks.push(t)
            }
            Err(reason) => page.damaged.push(Damaged {
                key: item::key_text(&it),
                reason,
            }),
        }
    }
    page
}

//! The change index, what an incremental sync reads: a keys-only index on (change_shard,
//! updated_at), spread over [`CHANGE_SHARDS`] partitions as AWS's pattern for a time index
//! is (a scatter-query reads them all). Every item gets its shard when written; every write
//! but a lease extension moves `updated_at`, so the index costs one index write per state
//! change and none per heartbeat. A note in the table (`/meta`, `changes`) says since when
//! the index answers for every item: `store init` writes it when it makes the index, after
//! giving every older item its shard.

use std::ops::ControlFlow;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    CreateGlobalSecondaryIndexAction, GlobalSecondaryIndex, GlobalSecondaryIndexUpdate, KeyType,
    Projection, ProjectionType, ScalarAttributeType,
};

use super::item::{self, CHANGE_INDEX, CHANGE_SHARD, CHANGE_SHARDS, Item, UPDATED_AT_KEY};
use super::{DynamoStore, aws_error};
use crate::clock::now_ms;
use crate::error::Result;
use crate::model::{Page, Task, TaskKey};

/// The change index as `create_table` takes it.
pub(super) fn index() -> Result<GlobalSecondaryIndex> {
    GlobalSecondaryIndex::builder()
        .index_name(CHANGE_INDEX)
        .key_schema(super::table::key(CHANGE_SHARD, KeyType::Hash)?)
        .key_schema(super::table::key(UPDATED_AT_KEY, KeyType::Range)?)
        .projection(keys_only())
        .build()
        .map_err(super::built_wrong)
}

fn keys_only() -> Projection {
    Projection::builder()
        .projection_type(ProjectionType::KeysOnly)
        .build()
}

/// The attribute definitions the change index adds to a table.
pub(super) fn attributes() -> Result<[aws_sdk_dynamodb::types::AttributeDefinition; 2]> {
    Ok([
        super::table::attr(CHANGE_SHARD, ScalarAttributeType::S)?,
        super::table::attr(UPDATED_AT_KEY, ScalarAttributeType::N)?,
    ])
}

/// Writes the note that the index answers for every item since `since`: the one PutItem
/// anamo makes, by `store init` (whose policy allows it).
pub(super) async fn write_note(client: &Client, table: &str, since: i64) -> Result<()> {
    super::retry::retrying(|| async move {
        client
            .put_item()
            .table_name(table)
            .set_item(Some(item::changes_note(since)))
            .send()
            .await
            .map_err(|e| aws_error(&format!("noting the change index of table {table}"), e))
    })
    .await?;
    Ok(())
}

/// Adds the change index to a table made before it, gives every item its shard, then notes
/// since when the index answers. Safe to run again: each step checks what is done. Returns
/// how many items were given their shard.
pub(super) async fn add_index(
    client: &Client,
    table: &str,
    units: Option<(i64, i64)>,
) -> Result<u64> {
    let doing = format!("adding the change index to table {table}");
    // Items written from here on carry their shard (by this anamo); older ones get it below.
    let started = now_ms();
    if !super::table::has_index(client, table, CHANGE_INDEX).await? {
        let create = CreateGlobalSecondaryIndexAction::builder()
            .index_name(CHANGE_INDEX)
            .key_schema(super::table::key(CHANGE_SHARD, KeyType::Hash)?)
            .key_schema(super::table::key(UPDATED_AT_KEY, KeyType::Range)?)
            .projection(keys_only())
            .set_provisioned_throughput(super::table::throughput(units)?)
            .build()
            .map_err(super::built_wrong)?;
        let [shard, updated] = attributes()?;
        client
            .update_table()
            .table_name(table)
            .attribute_definitions(shard)
            .attribute_definitions(updated)
            .global_secondary_index_updates(
                GlobalSecondaryIndexUpdate::builder().create(create).build(),
            )
            .send()
            .await
            .map_err(|e| aws_error(&doing, e))?;
        super::table::wait_active(client, table).await?;
    }
    let set = backfill(client, table).await?;
    write_note(client, table, started).await?;
    Ok(set)
}

/// Sets `change_shard` (and `updated_at` when missing) on every item that has none; a task
/// deleted meanwhile is not brought back. Returns how many were set.
async fn backfill(client: &Client, table: &str) -> Result<u64> {
    let now = now_ms();
    let update = |k: &TaskKey| item::set_change_shard(k, now);
    super::table::update_each(client, table, item::NO_CHANGE_SHARD, update).await
}

impl DynamoStore {
    /// Since when the change index answers (its note), or `None` when the table has none.
    pub(super) fn changes_since(&self) -> Result<Option<i64>> {
        let note = self.rt.block_on(self.get_item(&item::changes_note_key()))?;
        Ok(note.as_ref().and_then(item::changes_note_since))
    }

    /// Every item written at or after `since`: each shard of the change index read for keys
    /// (eventually consistent: the caller's overlap covers its lag), then the items read by
    /// key, consistently, a page at a time.
    pub(super) fn stream_changes(
        &self,
        since: i64,
        collection: Option<&str>,
        page_size: usize,
        f: &mut dyn FnMut(Page) -> Result<ControlFlow<()>>,
    ) -> Result<()> {
        let filter = collection.map(item::of_step);
        for shard in 0..CHANGE_SHARDS {
            let cond = item::changed_since(shard, since);
            let entries = self.rt.block_on(self.query_all(
                Some(CHANGE_INDEX),
                &cond,
                filter.as_ref(),
                // The entries whole (table and index keys): what the read is billed for.
                None,
                false,
            ))?;
            self.tally_entries(&entries);
            let keys: Vec<Item> = entries
                .iter()
                .filter_map(item::task_key)
                .map(|k| item::key(&k.collection, &k.task_id))
                .collect();
            for chunk in keys.chunks(page_size.clamp(1, 10_000)) {
                let items = self.rt.block_on(self.get_many(chunk.to_vec(), None))?;
                self.tally(&items);
                if f(super::reads::page_of(items))?.is_break() {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Tasks by key, read consistently (those gone left out).
    pub(super) fn read_tasks(&self, keys: &[TaskKey]) -> Result<Vec<Task>> {
        let keys = keys
            .iter()
            .map(|k| item::key(&k.collection, &k.task_id))
            .collect();
        let items = self.rt.block_on(self.get_many(keys, None))?;
        self.tally(&items);
        Ok(super::reads::page_of(items).tasks)
    }
}

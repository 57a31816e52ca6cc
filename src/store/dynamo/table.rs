//! The DynamoDB table: `anamo store init` creates it (on-demand billing, key collection +
//! task_id, and the sparse, sharded claim index) or repairs in place what shape.rs finds
//! repairable (an index missing or projecting too little, the unsharded index of an older
//! anamo); every open checks it is the right shape. Nothing here deletes a table or
//! an item, or touches a task beyond giving it its claim shard; names of attributes and
//! indexes come from item.rs.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, CreateGlobalSecondaryIndexAction,
    DeleteGlobalSecondaryIndexAction, GlobalSecondaryIndex, GlobalSecondaryIndexUpdate,
    IndexStatus, KeySchemaElement, KeyType, Projection, ProjectionType, ProvisionedThroughput,
    ScalarAttributeType, TableDescription, TableStatus,
};

use super::aws_error;
use super::item::{
    self, CHANGE_INDEX, CLAIM_SHARD, CLAIMABLE_AT, COLLECTION, INDEX, LEGACY_INDEX, PROJECTED,
    SAMPLE, SAMPLE_INDEX, SAMPLE_PROJECTED, TASK_ID, names_in, values_map,
};
use super::shape::{self, Repair, Shape};
use crate::error::{Error, Result};

pub(super) fn key(name: &str, kind: KeyType) -> Result<KeySchemaElement> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .map_err(super::built_wrong)
}

pub(super) fn attr(name: &str, kind: ScalarAttributeType) -> Result<AttributeDefinition> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(kind)
        .build()
        .map_err(super::built_wrong)
}

/// What `init` did.
#[derive(Debug, PartialEq, Eq)]
pub enum Init {
    Created,
    AlreadyThere {
        /// Read and write units when the table is provisioned, not on-demand.
        provisioned: Option<(i64, i64)>,
    },
    /// What was changed in place, one clause each ("index X added ...").
    Repaired {
        done: Vec<String>,
        provisioned: Option<(i64, i64)>,
    },
}

fn projection() -> Projection {
    include(PROJECTED)
}

fn include(attributes: &[&str]) -> Projection {
    Projection::builder()
        .projection_type(ProjectionType::Include)
        .set_non_key_attributes(Some(attributes.iter().map(|s| s.to_string()).collect()))
        .build()
}

/// The index of tasks by sample (and done-marks), for the flow between steps.
fn sample_index() -> Result<GlobalSecondaryIndex> {
    GlobalSecondaryIndex::builder()
        .index_name(SAMPLE_INDEX)
        .key_schema(key(SAMPLE, KeyType::Hash)?)
        .projection(include(SAMPLE_PROJECTED))
        .build()
        .map_err(super::built_wrong)
}

/// Adds the sample index to a table made before chained steps, and waits for it.
async fn add_sample_index(client: &Client, table: &str, units: Option<(i64, i64)>) -> Result<()> {
    let index = sample_index()?;
    let create = CreateGlobalSecondaryIndexAction::builder()
        .index_name(SAMPLE_INDEX)
        .set_key_schema(Some(index.key_schema().to_vec()))
        .set_projection(index.projection().cloned())
        .set_provisioned_throughput(throughput(units)?)
        .build()
        .map_err(super::built_wrong)?;
    client
        .update_table()
        .table_name(table)
        .attribute_definitions(attr(SAMPLE, ScalarAttributeType::S)?)
        .global_secondary_index_updates(
            GlobalSecondaryIndexUpdate::builder().create(create).build(),
        )
        .send()
        .await
        .map_err(|e| aws_error(&format!("adding the sample index to table {table}"), e))?;
    wait_active(client, table).await
}

/// Creates the table and its indexes and waits until all are ACTIVE; a table of anamo's
/// shape is left alone, one that differs in what can change in place (an index missing, or
/// projecting too little) is repaired, and any other is refused.
pub async fn init(client: &Client, table: &str) -> Result<Init> {
    let Some(described) = describe(client, table).await? else {
        return create(client, table).await;
    };
    let shape = match shape::judge(&described) {
        Shape::Busy { .. } => {
            wait_active(client, table).await?;
            match describe(client, table).await? {
                Some(t) => shape::judge(&t),
                None => return create(client, table).await,
            }
        }
        other => other,
    };
    match shape {
        Shape::Current { provisioned } => Ok(Init::AlreadyThere { provisioned }),
        Shape::Refused(line) => Err(Error::TableShape(line)),
        Shape::Busy { index, status } => Err(busy(table, &index, &status)),
        Shape::Repairable(repairs) => {
            // DynamoDB refuses an index without units on a provisioned table: a new one gets
            // the table's own.
            let units = shape::provisioned(&described);
            let mut done = vec![];
            for repair in repairs {
                let did = apply(client, table, repair, units).await?;
                done.push(match units {
                    Some((r, w)) => format!("{did}, with the table's {r} read and {w} write units"),
                    None => did,
                });
            }
            Ok(Init::Repaired {
                done,
                provisioned: units,
            })
        }
    }
}

/// Makes one repair and says what it did.
async fn apply(
    client: &Client,
    table: &str,
    repair: Repair,
    units: Option<(i64, i64)>,
) -> Result<String> {
    Ok(match repair {
        Repair::AddClaimIndex { drop_legacy } => {
            let tasks = add_claim_index(client, table, drop_legacy, units).await?;
            let dropped = if drop_legacy {
                format!(", old index {LEGACY_INDEX} removed")
            } else {
                String::new()
            };
            format!("index {INDEX} added ({tasks} tasks given their shard){dropped}")
        }
        Repair::AddSampleIndex => {
            add_sample_index(client, table, units).await?;
            format!("index {SAMPLE_INDEX} added (chained steps, --after)")
        }
        Repair::AddChangeIndex => {
            let items = super::changes::add_index(client, table, units).await?;
            format!(
                "index {CHANGE_INDEX} added ({items} items given their change shard; `anamo \
                 sync` reads only what changed from its next full scan on)"
            )
        }
        Repair::Rebuild {
            index,
            projects,
            lacks,
        } => {
            drop_index(client, table, index).await?;
            if index == INDEX {
                add_claim_index(client, table, false, units).await?;
            } else {
                add_sample_index(client, table, units).await?;
            }
            format!(
                "index {index} made again with the attributes anamo reads (it projected \
                 {projects}, without {})",
                lacks.join(", ")
            )
        }
    })
}

fn busy(table: &str, index: &str, status: &str) -> Error {
    Error::TableShape(format!(
        "table {table} has index '{index}' {status}; wait until it is ACTIVE \
         (`aws dynamodb describe-table --table-name {table}`) and run again"
    ))
}

async fn create(client: &Client, table: &str) -> Result<Init> {
    let [change_shard, updated_at] = super::changes::attributes()?;
    let index = GlobalSecondaryIndex::builder()
        .index_name(INDEX)
        .key_schema(key(CLAIM_SHARD, KeyType::Hash)?)
        .key_schema(key(CLAIMABLE_AT, KeyType::Range)?)
        .projection(projection())
        .build()
        .map_err(super::built_wrong)?;
    client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr(COLLECTION, ScalarAttributeType::S)?)
        .attribute_definitions(attr(TASK_ID, ScalarAttributeType::S)?)
        .attribute_definitions(attr(CLAIMABLE_AT, ScalarAttributeType::N)?)
        .attribute_definitions(attr(CLAIM_SHARD, ScalarAttributeType::S)?)
        .attribute_definitions(attr(SAMPLE, ScalarAttributeType::S)?)
        .key_schema(key(COLLECTION, KeyType::Hash)?)
        .key_schema(key(TASK_ID, KeyType::Range)?)
        .attribute_definitions(change_shard)
        .attribute_definitions(updated_at)
        .global_secondary_indexes(index)
        .global_secondary_indexes(sample_index()?)
        .global_secondary_indexes(super::changes::index()?)
        .send()
        .await
        .map_err(|e| aws_error(&format!("creating table {table}"), e))?;
    wait_active(client, table).await?;
    // A new table's index answers for every item it will ever hold.
    super::changes::write_note(client, table, 0).await?;
    Ok(Init::Created)
}

/// Adds the sharded claim index, gives every item its shard, then drops the unsharded index
/// of an older anamo when asked. Safe to run again if interrupted: each step checks what is
/// done. Returns how many items were given their shard.
async fn add_claim_index(
    client: &Client,
    table: &str,
    drop_legacy: bool,
    units: Option<(i64, i64)>,
) -> Result<u64> {
    let doing = format!("upgrading table {table}");
    if !has_index(client, table, INDEX).await? {
        let create = CreateGlobalSecondaryIndexAction::builder()
            .index_name(INDEX)
            .key_schema(key(CLAIM_SHARD, KeyType::Hash)?)
            .key_schema(key(CLAIMABLE_AT, KeyType::Range)?)
            .projection(projection())
            .set_provisioned_throughput(throughput(units)?)
            .build()
            .map_err(super::built_wrong)?;
        client
            .update_table()
            .table_name(table)
            .attribute_definitions(attr(CLAIM_SHARD, ScalarAttributeType::S)?)
            .attribute_definitions(attr(CLAIMABLE_AT, ScalarAttributeType::N)?)
            .global_secondary_index_updates(
                GlobalSecondaryIndexUpdate::builder().create(create).build(),
            )
            .send()
            .await
            .map_err(|e| aws_error(&doing, e))?;
        wait_active(client, table).await?;
    }
    let tasks = backfill_shards(client, table).await?;
    if drop_legacy {
        drop_index(client, table, LEGACY_INDEX).await?;
    }
    Ok(tasks)
}

/// An index's read and write units on a provisioned table (`None` on demand).
pub(super) fn throughput(units: Option<(i64, i64)>) -> Result<Option<ProvisionedThroughput>> {
    units
        .map(|(read, write)| {
            ProvisionedThroughput::builder()
                .read_capacity_units(read)
                .write_capacity_units(write)
                .build()
                .map_err(super::built_wrong)
        })
        .transpose()
}

/// Whether the table has an index of this name (in any state).
pub(super) async fn has_index(client: &Client, table: &str, index: &str) -> Result<bool> {
    Ok(describe(client, table).await?.is_some_and(|t| {
        t.global_secondary_indexes()
            .iter()
            .any(|i| i.index_name() == Some(index))
    }))
}

/// Removes an index and waits until it is gone.
async fn drop_index(client: &Client, table: &str, index: &str) -> Result<()> {
    let delete = DeleteGlobalSecondaryIndexAction::builder()
        .index_name(index)
        .build()
        .map_err(super::built_wrong)?;
    client
        .update_table()
        .table_name(table)
        .global_secondary_index_updates(
            GlobalSecondaryIndexUpdate::builder().delete(delete).build(),
        )
        .send()
        .await
        .map_err(|e| aws_error(&format!("removing index {index} of table {table}"), e))?;
    let until = Instant::now() + Duration::from_secs(300);
    while has_index(client, table, index).await? {
        if Instant::now() > until {
            return Err(Error::TableShape(format!(
                "index {index} of table {table} is still there after 5 minutes; check it in \
                 the AWS console and run `anamo store init` again"
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(())
}

/// Sets `claim_shard` on every item that has none (conditional: a task deleted meanwhile is
/// not brought back). Returns how many were set.
async fn backfill_shards(client: &Client, table: &str) -> Result<u64> {
    update_each(client, table, item::NO_SHARD, item::set_shard).await
}

/// Applies `update` to every item `filter` picks, read by a consistent Scan of their keys; an
/// update whose condition fails (its item deleted meanwhile) is skipped. Returns how many
/// were updated: the backfills of an upgrade in place.
pub(super) async fn update_each(
    client: &Client,
    table: &str,
    filter: &str,
    update: impl Fn(&crate::model::TaskKey) -> item::Update,
) -> Result<u64> {
    let mut pages = client
        .scan()
        .table_name(table)
        .filter_expression(filter)
        .projection_expression(item::KEY_ONLY)
        .set_expression_attribute_names(Some(names_in(&[filter, item::KEY_ONLY])))
        .consistent_read(true)
        .into_paginator()
        .send();
    let mut set = 0;
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| aws_error(&format!("reading table {table}"), e))?;
        for it in page.items.unwrap_or_default() {
            let Some(k) = item::task_key(&it) else {
                continue;
            };
            let update = update(&k);
            let out = client
                .update_item()
                .table_name(table)
                .set_expression_attribute_names(Some(update.names()))
                .update_expression(&update.expression)
                .condition_expression(update.condition)
                .set_key(Some(update.key))
                .set_expression_attribute_values(Some(values_map(update.values)))
                .send()
                .await;
            match out {
                Ok(_) => set += 1,
                Err(e) if super::conditional_failed(&e) => {}
                Err(e) => return Err(aws_error(&format!("upgrading table {table}"), e)),
            }
        }
    }
    Ok(set)
}

/// Waits until the table and all its indexes are ACTIVE (five minutes at most).
pub(super) async fn wait_active(client: &Client, table: &str) -> Result<()> {
    let until = Instant::now() + Duration::from_secs(300);
    loop {
        let out = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| aws_error(&format!("describing table {table}"), e))?;
        let t = out.table();
        let table_ready = t.and_then(|t| t.table_status()) == Some(&TableStatus::Active);
        let index_ready = t.is_some_and(|t| {
            t.global_secondary_indexes()
                .iter()
                .all(|i| i.index_status() == Some(&IndexStatus::Active))
        });
        if table_ready && index_ready {
            return Ok(());
        }
        if Instant::now() > until {
            return Err(Error::TableShape(format!(
                "table {table} is not ACTIVE after 5 minutes; check it in the AWS console"
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// True when the table exists in anamo's shape; false when it does not exist; an error with
/// the line naming the difference and the fix when it has another shape.
pub async fn check(client: &Client, table: &str) -> Result<bool> {
    let Some(described) = describe(client, table).await? else {
        return Ok(false);
    };
    match shape::judge(&described) {
        Shape::Current { .. } => Ok(true),
        Shape::Refused(line) => Err(Error::TableShape(line)),
        Shape::Busy { index, status } => Err(busy(table, &index, &status)),
        // Without the change index a table works: `sync` reads it whole.
        Shape::Repairable(repairs)
            if repairs.iter().all(|r| matches!(r, Repair::AddChangeIndex)) =>
        {
            Ok(true)
        }
        Shape::Repairable(repairs) => Err(Error::TableShape(format!(
            "table {table} {}; bring it to anamo's shape in place with `anamo store init \
             --store dynamodb://{table}` (stop its workers first)",
            repairs[0].problem()
        ))),
    }
}

/// The table's description, or `None` when there is no such table.
async fn describe(client: &Client, table: &str) -> Result<Option<TableDescription>> {
    match client.describe_table().table_name(table).send().await {
        Ok(out) => Ok(out.table),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(aws_error(&format!("describing table {table}"), e)),
    }
}

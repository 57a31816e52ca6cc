//! The DynamoDB table: `anamo store init` creates it (on-demand billing, key collection +
//! task_id, and the sparse, sharded claim index) or upgrades a table made before the index was
//! sharded, in place; every open checks it is the right shape. Nothing here deletes a table or
//! an item, or touches a task beyond giving it its claim shard; names of attributes and
//! indexes come from item.rs.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, CreateGlobalSecondaryIndexAction,
    DeleteGlobalSecondaryIndexAction, GlobalSecondaryIndex, GlobalSecondaryIndexUpdate,
    IndexStatus, KeySchemaElement, KeyType, Projection, ProjectionType, ScalarAttributeType,
    TableStatus,
};

use super::aws_error;
use super::item::{
    self, CLAIM_SHARD, CLAIMABLE_AT, COLLECTION, INDEX, LEGACY_INDEX, PROJECTED, SAMPLE,
    SAMPLE_INDEX, SAMPLE_PROJECTED, TASK_ID, names_in, values_map,
};
use crate::error::{Error, Result};

fn key(name: &str, kind: KeyType) -> Result<KeySchemaElement> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .map_err(|e| Error::Internal(format!("a DynamoDB request built wrong: {e}")))
}

fn attr(name: &str, kind: ScalarAttributeType) -> Result<AttributeDefinition> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(kind)
        .build()
        .map_err(|e| Error::Internal(format!("a DynamoDB request built wrong: {e}")))
}

/// What `init` did.
#[derive(Debug, PartialEq, Eq)]
pub enum Init {
    Created,
    AlreadyThere,
    /// A table with the unsharded index of an older anamo now has the sharded one; `tasks`
    /// items were given their shard.
    Upgraded {
        tasks: u64,
    },
    /// A table of an anamo before chained steps now has the sample index.
    AddedSampleIndex,
}

/// What a table is, as far as anamo is concerned.
enum Shape {
    Missing,
    Current,
    /// Made by an anamo before the claim index was sharded.
    Legacy,
    /// Made by an anamo before chained steps: no sample index.
    NoSampleIndex,
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
        .map_err(|e| Error::Internal(format!("a DynamoDB request built wrong: {e}")))
}

/// Adds the sample index to a table made before chained steps, and waits for it.
async fn add_sample_index(client: &Client, table: &str) -> Result<()> {
    let index = sample_index()?;
    let create = CreateGlobalSecondaryIndexAction::builder()
        .index_name(SAMPLE_INDEX)
        .set_key_schema(Some(index.key_schema().to_vec()))
        .set_projection(index.projection().cloned())
        .build()
        .map_err(|e| Error::Internal(format!("a DynamoDB request built wrong: {e}")))?;
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

/// Creates the table and its index and waits until both are ACTIVE; a table that is already
/// there with the right shape is left alone, and one of an older anamo is upgraded.
pub async fn init(client: &Client, table: &str) -> Result<Init> {
    match shape(client, table).await? {
        Shape::Current => return Ok(Init::AlreadyThere),
        Shape::Legacy => {
            let upgraded = upgrade(client, table).await?;
            if matches!(shape(client, table).await?, Shape::NoSampleIndex) {
                add_sample_index(client, table).await?;
            }
            return Ok(upgraded);
        }
        Shape::NoSampleIndex => {
            add_sample_index(client, table).await?;
            return Ok(Init::AddedSampleIndex);
        }
        Shape::Missing => {}
    }
    let index = GlobalSecondaryIndex::builder()
        .index_name(INDEX)
        .key_schema(key(CLAIM_SHARD, KeyType::Hash)?)
        .key_schema(key(CLAIMABLE_AT, KeyType::Range)?)
        .projection(projection())
        .build()
        .map_err(|e| Error::Internal(format!("a DynamoDB request built wrong: {e}")))?;
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
        .global_secondary_indexes(index)
        .global_secondary_indexes(sample_index()?)
        .send()
        .await
        .map_err(|e| aws_error(&format!("creating table {table}"), e))?;
    wait_active(client, table).await?;
    Ok(Init::Created)
}

/// Adds the sharded index to a table of an older anamo, gives every item its shard, then
/// drops the old index. Safe to run again if interrupted: each step checks what is done.
async fn upgrade(client: &Client, table: &str) -> Result<Init> {
    let doing = format!("upgrading table {table}");
    let described = client
        .describe_table()
        .table_name(table)
        .send()
        .await
        .map_err(|e| aws_error(&doing, e))?;
    let has_new = described.table().is_some_and(|t| {
        t.global_secondary_indexes()
            .iter()
            .any(|i| i.index_name() == Some(INDEX))
    });
    if !has_new {
        let create = CreateGlobalSecondaryIndexAction::builder()
            .index_name(INDEX)
            .key_schema(key(CLAIM_SHARD, KeyType::Hash)?)
            .key_schema(key(CLAIMABLE_AT, KeyType::Range)?)
            .projection(projection())
            .build()
            .map_err(|e| Error::Internal(format!("a DynamoDB request built wrong: {e}")))?;
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
    let delete = DeleteGlobalSecondaryIndexAction::builder()
        .index_name(LEGACY_INDEX)
        .build()
        .map_err(|e| Error::Internal(format!("a DynamoDB request built wrong: {e}")))?;
    client
        .update_table()
        .table_name(table)
        .global_secondary_index_updates(
            GlobalSecondaryIndexUpdate::builder().delete(delete).build(),
        )
        .send()
        .await
        .map_err(|e| aws_error(&doing, e))?;
    Ok(Init::Upgraded { tasks })
}

/// Sets `claim_shard` on every item that has none (conditional: a task deleted meanwhile is
/// not brought back). Returns how many were set.
async fn backfill_shards(client: &Client, table: &str) -> Result<u64> {
    let mut pages = client
        .scan()
        .table_name(table)
        .filter_expression(item::NO_SHARD)
        .projection_expression(item::KEY_ONLY)
        .set_expression_attribute_names(Some(names_in(&[item::NO_SHARD, item::KEY_ONLY])))
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
            let update = item::set_shard(&k);
            let out = client
                .update_item()
                .table_name(table)
                .update_expression(&update.expression)
                .condition_expression(update.condition)
                .set_expression_attribute_names(Some(update.names()))
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
async fn wait_active(client: &Client, table: &str) -> Result<()> {
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
            return Err(Error::Invalid(format!(
                "table {table} is not ACTIVE after 5 minutes; check it in the AWS console"
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// True when the table exists with our key schema and index; false when it does not exist;
/// an error naming the difference (and the fix) when it has another shape.
pub async fn check(client: &Client, table: &str) -> Result<bool> {
    match shape(client, table).await? {
        Shape::Current => Ok(true),
        Shape::Missing => Ok(false),
        Shape::Legacy => Err(Error::Invalid(format!(
            "table {table} has the unsharded claim index of an older anamo; upgrade it in \
             place with `anamo store init --store dynamodb://{table}` (stop older workers first)"
        ))),
        Shape::NoSampleIndex => Err(Error::Invalid(format!(
            "table {table} has no '{SAMPLE_INDEX}' index (made before chained steps); add it \
             in place with `anamo store init --store dynamodb://{table}`"
        ))),
    }
}

async fn shape(client: &Client, table: &str) -> Result<Shape> {
    let out = match client.describe_table().table_name(table).send().await {
        Ok(out) => out,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            return Ok(Shape::Missing);
        }
        Err(e) => return Err(aws_error(&format!("describing table {table}"), e)),
    };
    let Some(t) = out.table() else {
        return Ok(Shape::Missing);
    };
    let keys: Vec<String> = t
        .key_schema()
        .iter()
        .map(|k| format!("{} ({})", k.attribute_name(), k.key_type().as_str()))
        .collect();
    if keys != [format!("{COLLECTION} (HASH)"), format!("{TASK_ID} (RANGE)")] {
        return Err(Error::Invalid(format!(
            "table {table} has key schema {}, not {COLLECTION} (HASH) + {TASK_ID} (RANGE); \
             point --store at an anamo table or create one with `anamo store init`",
            keys.join(" + ")
        )));
    }
    let index_on = |name: &str, hash: &str| {
        t.global_secondary_indexes().iter().any(|i| {
            i.index_name() == Some(name)
                && i.key_schema()
                    .iter()
                    .map(|k| k.attribute_name())
                    .collect::<Vec<_>>()
                    == [hash, CLAIMABLE_AT]
        })
    };
    if index_on(INDEX, CLAIM_SHARD) {
        let by_sample = t
            .global_secondary_indexes()
            .iter()
            .any(|i| i.index_name() == Some(SAMPLE_INDEX));
        return Ok(if by_sample {
            Shape::Current
        } else {
            Shape::NoSampleIndex
        });
    }
    if index_on(LEGACY_INDEX, COLLECTION) {
        return Ok(Shape::Legacy);
    }
    Err(Error::Invalid(format!(
        "table {table} has no '{INDEX}' index on ({CLAIM_SHARD}, {CLAIMABLE_AT}); \
         it was not made by `anamo store init`"
    )))
}

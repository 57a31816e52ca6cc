//! The DynamoDB table: `anamo store init` creates it (on-demand billing, key collection +
//! task_id, and the sparse `claimable` index), and every open checks it is the right shape.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, IndexStatus, KeySchemaElement, KeyType,
    Projection, ProjectionType, ScalarAttributeType, TableStatus,
};

use super::aws_error;
use super::item::{CLAIMABLE_AT, INDEX};
use crate::error::{Error, Result};

/// Attributes the claim index carries, so a claim needs no extra read.
const PROJECTED: &[&str] = &["state", "attempts", "max_attempts", "version"];

fn key(name: &str, kind: KeyType) -> Result<KeySchemaElement> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .map_err(|e| Error::Invalid(e.to_string()))
}

fn attr(name: &str, kind: ScalarAttributeType) -> Result<AttributeDefinition> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(kind)
        .build()
        .map_err(|e| Error::Invalid(e.to_string()))
}

/// What `init` did.
#[derive(Debug, PartialEq, Eq)]
pub enum Init {
    Created,
    AlreadyThere,
}

/// Creates the table and its index and waits until both are ACTIVE; a table that is already
/// there with the right shape is left alone.
pub async fn init(client: &Client, table: &str) -> Result<Init> {
    if check(client, table).await? {
        return Ok(Init::AlreadyThere);
    }
    let index = GlobalSecondaryIndex::builder()
        .index_name(INDEX)
        .key_schema(key("collection", KeyType::Hash)?)
        .key_schema(key(CLAIMABLE_AT, KeyType::Range)?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::Include)
                .set_non_key_attributes(Some(PROJECTED.iter().map(|s| s.to_string()).collect()))
                .build(),
        )
        .build()
        .map_err(|e| Error::Invalid(e.to_string()))?;
    client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("collection", ScalarAttributeType::S)?)
        .attribute_definitions(attr("task_id", ScalarAttributeType::S)?)
        .attribute_definitions(attr(CLAIMABLE_AT, ScalarAttributeType::N)?)
        .key_schema(key("collection", KeyType::Hash)?)
        .key_schema(key("task_id", KeyType::Range)?)
        .global_secondary_indexes(index)
        .send()
        .await
        .map_err(|e| aws_error(&format!("creating table {table}"), e))?;
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
            return Ok(Init::Created);
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
/// an error naming the difference when it has another shape.
pub async fn check(client: &Client, table: &str) -> Result<bool> {
    let out = match client.describe_table().table_name(table).send().await {
        Ok(out) => out,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            return Ok(false);
        }
        Err(e) => return Err(aws_error(&format!("describing table {table}"), e)),
    };
    let Some(t) = out.table() else {
        return Ok(false);
    };
    let keys: Vec<(&str, &KeyType)> = t
        .key_schema()
        .iter()
        .map(|k| (k.attribute_name(), k.key_type()))
        .collect();
    let wanted = [("collection", &KeyType::Hash), ("task_id", &KeyType::Range)];
    if keys != wanted {
        return Err(Error::Invalid(format!(
            "table {table} has key schema {keys:?}, not collection (HASH) + task_id (RANGE); \
             point --store at an anamo table or create one with `anamo store init`"
        )));
    }
    let has_index = t.global_secondary_indexes().iter().any(|i| {
        i.index_name() == Some(INDEX)
            && i.key_schema()
                .iter()
                .map(|k| k.attribute_name())
                .collect::<Vec<_>>()
                == ["collection", CLAIMABLE_AT]
    });
    if !has_index {
        return Err(Error::Invalid(format!(
            "table {table} has no '{INDEX}' index on (collection, {CLAIMABLE_AT}); \
             it was not made by `anamo store init`"
        )));
    }
    Ok(true)
}

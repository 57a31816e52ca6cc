//! The claim requests on DynamoDB: a Query of one shard of the claim index, and the
//! conditional UpdateItem that takes a task. The index is eventually consistent, so what it
//! shows may be stale; the write's condition (same version, still claimable) makes a stale
//! candidate cost one failed write and nothing else.

use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;

use super::claim::{Candidate, ClaimRequests, Take, shard_key};
use super::item::{self, INDEX, Item, key, n, names_in, s};
use super::retry::retrying;
use super::{DynamoStore, attr_n, attr_s, aws_error};
use crate::error::{Error, Result};

impl DynamoStore {
    /// The Query of one shard of the claim index for tasks claimable at `now`, oldest first:
    /// what a claim reads and what `count_claimable` counts.
    pub(super) fn claimable_now(
        &self,
        collection: &str,
        shard: u32,
        now: i64,
    ) -> QueryFluentBuilder {
        self.client
            .query()
            .table_name(&self.table)
            .index_name(INDEX)
            .key_condition_expression("#claim_shard = :shard AND #claimable_at <= :now")
            .set_expression_attribute_names(Some(names_in(&["#claim_shard #claimable_at"])))
            .expression_attribute_values(":shard", s(&shard_key(collection, shard)))
            .expression_attribute_values(":now", n(now))
    }
}

impl ClaimRequests for DynamoStore {
    fn candidates(
        &self,
        collection: &str,
        shard: u32,
        now: i64,
        limit: usize,
    ) -> Result<(Vec<Candidate>, bool)> {
        self.rt.block_on(retrying(|| async move {
            let out = self
                .claimable_now(collection, shard, now)
                .limit(limit as i32)
                .send()
                .await
                .map_err(|e| aws_error("looking for a task to claim", e))?;
            let more = out.last_evaluated_key.is_some();
            let found = out.items.unwrap_or_default();
            Ok((found.iter().filter_map(candidate).collect(), more))
        }))
    }

    fn take(&self, c: &Candidate, owner: &str, now: i64, until: i64) -> Result<Take> {
        let won = self.rt.block_on(self.update(
            key(&c.key.collection, &c.key.task_id),
            "SET #state = :running, #owner = :owner, #lease_until = :until, \
             #claimable_at = :until, #attempts = #attempts + :one, \
             #started_at = :now, #updated_at = :now, #version = #version + :one \
             REMOVE #finished_at, #exit_code",
            "#version = :v AND #claimable_at <= :now",
            vec![
                (":running", s("running")),
                (":owner", s(owner)),
                (":until", n(until)),
                (":one", n(1)),
                (":now", n(now)),
                (":v", n(c.version)),
            ],
        ))?;
        match won {
            None => Ok(Take::Lost),
            Some(new) => item::to_task(&new)
                .map(Take::Won)
                .map_err(|reason| Error::Damaged {
                    collection: c.key.collection.clone(),
                    task_id: c.key.task_id.clone(),
                    reason,
                }),
        }
    }

    fn fail_lost(&self, c: &Candidate, now: i64) -> Result<()> {
        self.rt
            .block_on(DynamoStore::fail_lost(self, &c.key, c.version, now))
            .map(|_| ())
    }
}

/// A candidate as the index projects it (key, version, state, attempts).
fn candidate(it: &Item) -> Option<Candidate> {
    Some(Candidate {
        key: item::task_key(it)?,
        version: attr_n(it, "version")?,
        exhausted: attr_s(it, "state") == Some("running")
            && attr_n(it, "attempts") >= attr_n(it, "max_attempts"),
    })
}

//! The claim requests on DynamoDB: a Query of one shard of the claim index, and the
//! conditional UpdateItem that takes a task. The index is eventually consistent, so what it
//! shows may be stale; the write's condition (same version, still claimable) makes a stale
//! candidate cost one failed write and nothing else. Nothing here chooses a shard or a
//! candidate (claim.rs does), sleeps, or names an attribute (item.rs does).

use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;

use super::claim::{Candidate, ClaimRequests, Take, shard_key};
use super::item::{self, INDEX, Item, names_and_values};
use super::retry::retrying;
use super::{DynamoStore, aws_error};
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
        let key_cond = item::claimable_now(&shard_key(collection, shard), now);
        let (names, values) = names_and_values(&[&key_cond]);
        self.client
            .query()
            .table_name(&self.table)
            .index_name(INDEX)
            .key_condition_expression(key_cond.text)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
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
        let won = self
            .rt
            .block_on(self.update(item::claim(&c.key, c.version, owner, now, until)))
            .inspect_err(|e| {
                if e.is_transient() {
                    super::lease::remember_unsettled(self, c, owner, now);
                }
            })?;
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

/// A candidate as the index projects it (key, version, state, attempts), or `None` for an
/// index entry a claim cannot take (written by hand without what the claim's write needs).
/// `count_claimable` counts with this too, so a worker never waits for what it cannot claim.
pub(super) fn candidate(it: &Item) -> Option<Candidate> {
    let lacks = item::missing_for_claim(it);
    // The index does not carry the script: a task without one is named by other reads.
    if lacks.iter().any(|a| *a != item::SCRIPT_ATTR) {
        return None;
    }
    Some(Candidate {
        key: item::task_key(it)?,
        version: item::version(it)?,
        exhausted: item::is_running(it) && item::attempts_used_up(it),
    })
}

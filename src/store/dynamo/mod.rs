//! The production store: one DynamoDB table shared by a fleet of workers. Claims read the
//! sparse, sharded claim index (never a Scan), so a claim costs the same at 100 or 10^6 tasks,
//! and win with one conditional UpdateItem (claim.rs spreads a fleet over the shards). Every
//! write is conditional; a lost race is not an error. Every call retries throttling and other
//! passing faults (retry.rs).

pub mod claim;
mod index;
mod item;
mod retry;
mod table;

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeValue, DeleteRequest, KeysAndAttributes, PutRequest, ReturnValue, WriteRequest,
};
use tokio::runtime::Runtime;

pub use item::{CLAIM_SHARD, CLAIMABLE_AT, INDEX, LEGACY_INDEX};
pub use table::Init;

use self::claim::{Claimer, SHARDS, Step};
use self::item::{Item, key, n, names_in, s};
use self::retry::retrying;
use super::TaskStore;
use crate::aws::{self, AwsOptions};
use crate::clock::now_ms;
use crate::error::{Error, Result};
use crate::model::{
    AddReport, Claim, ClaimAttempt, Damaged, NewTask, Outcome, Page, Selector, StaleReport,
    StateCount, Task, TaskFilter, TaskKey, TaskState, state_after_run,
};

pub struct DynamoStore {
    rt: Runtime,
    client: Client,
    table: String,
    /// This process's claim state (candidates in hand, shard, lost races), shared by slots.
    claimer: Claimer,
}

/// One line for a failed DynamoDB call; a missing table names the command that creates it.
pub(crate) fn aws_error<E: ProvideErrorMetadata + std::error::Error, R>(
    doing: &str,
    e: SdkError<E, R>,
) -> Error {
    let missing_table = e
        .as_service_error()
        .and_then(|s| s.code())
        .is_some_and(|c| c == "ResourceNotFoundException");
    if missing_table {
        return Error::Aws(format!(
            "{doing}: the table does not exist; create it with `anamo store init`"
        ));
    }
    aws::sdk_error("DynamoDB", doing, e)
}

fn conditional_failed<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    e.as_service_error()
        .and_then(|s| s.code())
        .is_some_and(|c| c == "ConditionalCheckFailedException")
}

impl DynamoStore {
    /// Connects to an existing anamo table (checked for its shape).
    pub fn open(table: &str, opts: &AwsOptions) -> Result<Self> {
        let store = Self::connect(table, opts)?;
        if !store.rt.block_on(table::check(&store.client, table))? {
            // Name where we looked: a wrong region must not read as "make a second table".
            let config = store.client.config();
            let mut place = format!(
                "in region {}",
                config.region().map_or("(none set)", |r| r.as_ref())
            );
            let endpoint = opts.endpoint_url.clone().or_else(|| {
                ["AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL"]
                    .iter()
                    .find_map(|v| std::env::var(v).ok().filter(|e| !e.is_empty()))
            });
            if let Some(endpoint) = &endpoint {
                place.push_str(&format!(" at {endpoint}"));
            }
            return Err(Error::Invalid(format!(
                "DynamoDB table '{table}' does not exist {place}; check --region (or AWS_REGION, \
                 the profile's region), or create it with `anamo store init --store dynamodb://{table}`"
            )));
        }
        Ok(store)
    }

    /// Connects without checking the table (for `store init`).
    pub fn connect(table: &str, opts: &AwsOptions) -> Result<Self> {
        let rt = aws::runtime()?;
        let config = rt.block_on(aws::config(opts));
        Ok(Self {
            client: Client::new(&config),
            rt,
            table: table.to_string(),
            claimer: Claimer::new(SHARDS, seed()),
        })
    }

    /// Creates the table, or upgrades one made by an older anamo in place.
    pub fn init(&self) -> Result<Init> {
        self.rt.block_on(table::init(&self.client, &self.table))
    }

    /// One conditional update; `Ok(None)` when its condition failed. Transient failures are
    /// retried here (not by the SDK); when a retry then fails its condition, an earlier try
    /// may have landed with its answer lost on the way back (a timeout, a dropped
    /// connection), so the item is read to see whether it bears this write (version + 1, this
    /// `:now`, this `:owner`) before calling it lost: a claim won but believed lost would sit
    /// `running` with nobody on it until its lease ran out.
    async fn update(
        &self,
        key: Item,
        set: &str,
        condition: &str,
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<Option<Item>> {
        let values: HashMap<String, AttributeValue> = values
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        let names = names_in(&[set, condition]);
        let ambiguous = std::cell::Cell::new(false);
        let out = retrying(|| {
            let sent = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key.clone()))
                .update_expression(set)
                .condition_expression(condition)
                .set_expression_attribute_names(Some(names.clone()))
                .set_expression_attribute_values((!values.is_empty()).then(|| values.clone()))
                .return_values(ReturnValue::AllNew)
                // The SDK must not retry a conditional write on its own: a try that timed out
                // may have landed, and only this layer, seeing the failure, knows to check.
                .customize()
                .config_override(
                    aws_sdk_dynamodb::config::Builder::default()
                        .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled()),
                )
                .send();
            let ambiguous = &ambiguous;
            async move {
                match sent.await {
                    Ok(o) => Ok(Some(o.attributes.unwrap_or_default())),
                    Err(e) if conditional_failed(&e) => Ok(None),
                    Err(e) => {
                        let e = aws_error("updating a task", e);
                        ambiguous.set(ambiguous.get() || e.is_transient());
                        Err(e)
                    }
                }
            }
        })
        .await?;
        if out.is_none() && ambiguous.get() {
            let current = self.get_item(&key).await?;
            if let Some(item) = current.filter(|it| bears_write(it, &values)) {
                return Ok(Some(item));
            }
        }
        Ok(out)
    }

    /// One item by key, read consistently.
    async fn get_item(&self, key: &Item) -> Result<Option<Item>> {
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

    /// Ends a running task whose worker died on its last attempt: `failed`, out of the index.
    async fn fail_lost(&self, k: &TaskKey, version: i64, now: i64) -> Result<bool> {
        let out = self
            .update(
                key(&k.collection, &k.task_id),
                "SET #state = :failed, #finished_at = :now, #updated_at = :now, \
                 #version = #version + :one, #error_tail = :why \
                 REMOVE #claimable_at, #lease_until",
                "#version = :v AND #state = :running",
                vec![
                    (":failed", s("failed")),
                    (":running", s("running")),
                    (":now", n(now)),
                    (":one", n(1)),
                    (":v", n(version)),
                    (
                        ":why",
                        s("anamo: the lease expired on the last attempt (worker lost)"),
                    ),
                ],
            )
            .await?;
        Ok(out.is_some())
    }

    /// Every item of a collection (or the table), page by page through the SDK paginator;
    /// a transient failure reads again from the start.
    async fn items(
        &self,
        collection: Option<&str>,
        filter: Option<(&str, Vec<(&str, AttributeValue)>)>,
    ) -> Result<Vec<Item>> {
        retrying(|| self.items_once(collection, filter.clone())).await
    }

    async fn items_once(
        &self,
        collection: Option<&str>,
        filter: Option<(&str, Vec<(&str, AttributeValue)>)>,
    ) -> Result<Vec<Item>> {
        let mut out = vec![];
        let (filter_expr, filter_values) = match filter {
            Some((e, v)) => (Some(e.to_string()), v),
            None => (None, vec![]),
        };
        let mut values: HashMap<String, AttributeValue> = filter_values
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        let mut exprs: Vec<&str> = vec![];
        if let Some(f) = &filter_expr {
            exprs.push(f);
        }
        match collection {
            Some(c) => {
                values.insert(":c".into(), s(c));
                exprs.push("#collection = :c");
                let mut pages = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .key_condition_expression("#collection = :c")
                    .set_filter_expression(filter_expr.clone())
                    .set_expression_attribute_names(Some(names_in(&exprs)))
                    .set_expression_attribute_values(Some(values))
                    .consistent_read(true)
                    .into_paginator()
                    .send();
                while let Some(page) = pages.next().await {
                    let page = page.map_err(|e| aws_error("reading tasks", e))?;
                    out.extend(page.items.unwrap_or_default());
                }
            }
            None => {
                let names = names_in(&exprs);
                let mut pages = self
                    .client
                    .scan()
                    .table_name(&self.table)
                    .set_filter_expression(filter_expr.clone())
                    .set_expression_attribute_names((!names.is_empty()).then_some(names))
                    .set_expression_attribute_values((!values.is_empty()).then_some(values))
                    .consistent_read(true)
                    .into_paginator()
                    .send();
                while let Some(page) = pages.next().await {
                    let page = page.map_err(|e| aws_error("reading tasks", e))?;
                    out.extend(page.items.unwrap_or_default());
                }
            }
        }
        Ok(out)
    }

    /// Writes requests 25 at a time, retrying what DynamoDB leaves unprocessed with backoff.
    async fn batch_write(&self, requests: Vec<WriteRequest>) -> Result<()> {
        for chunk in requests.chunks(25) {
            let mut pending = HashMap::from([(self.table.clone(), chunk.to_vec())]);
            let mut pause = Duration::from_millis(50);
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
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
        }
        Ok(())
    }

    /// Versions of the keys that exist, read 100 at a time with BatchGetItem.
    async fn existing(&self, keys: &[(String, String)]) -> Result<HashMap<(String, String), i64>> {
        let mut found = HashMap::new();
        for chunk in keys.chunks(100) {
            let wanted: Vec<Item> = chunk.iter().map(|(c, t)| key(c, t)).collect();
            let mut pending = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(wanted))
                    .projection_expression("#collection, #task_id, #version")
                    .set_expression_attribute_names(Some(names_in(&[
                        "#collection #task_id #version",
                    ])))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| Error::Invalid(e.to_string()))?,
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
                for it in out
                    .responses
                    .unwrap_or_default()
                    .remove(&self.table)
                    .unwrap_or_default()
                {
                    if let (Some(k), Ok(v)) = (item::task_key(&it), version_of(&it)) {
                        found.insert((k.collection, k.task_id), v);
                    }
                }
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
}

fn version_of(item: &Item) -> std::result::Result<i64, ()> {
    match item.get("version") {
        Some(AttributeValue::N(v)) => v.parse().map_err(|_| ()),
        _ => Err(()),
    }
}

fn attr_n(item: &Item, name: &str) -> Option<i64> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse::<f64>().ok().map(|f| f as i64),
        _ => None,
    }
}

fn attr_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v),
        _ => None,
    }
}

/// A seed for this process's claimer: workers started in the same millisecond on different
/// machines must still choose differently.
fn seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let host = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    let mut h = nanos ^ (std::process::id() as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for b in host.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Whether `item` is what an update with these values leaves: the version after `:v`, the
/// `:now` it wrote, and its `:owner` when it names one.
fn bears_write(item: &Item, values: &HashMap<String, AttributeValue>) -> bool {
    let num = |v: Option<&AttributeValue>| match v {
        Some(AttributeValue::N(x)) => x.parse::<i64>().ok(),
        _ => None,
    };
    let (Some(v), Some(now)) = (num(values.get(":v")), num(values.get(":now"))) else {
        return false;
    };
    let owner_ok = match values.get(":owner") {
        Some(AttributeValue::S(o)) => attr_s(item, "owner") == Some(o.as_str()),
        _ => true,
    };
    attr_n(item, "version") == Some(v + 1) && attr_n(item, "updated_at") == Some(now) && owner_ok
}

impl TaskStore for DynamoStore {
    fn add(&self, tasks: &[NewTask], replace: bool) -> Result<AddReport> {
        self.rt.block_on(async {
            let keys: Vec<(String, String)> = tasks
                .iter()
                .map(|t| (t.collection.clone(), t.task_id.clone()))
                .collect();
            let existing = self.existing(&keys).await?;
            let now = now_ms();
            let mut report = AddReport::default();
            let mut puts = vec![];
            for t in tasks {
                let k = (t.collection.clone(), t.task_id.clone());
                let version = match existing.get(&k) {
                    None => {
                        report.added += 1;
                        0
                    }
                    // The version moves on, so a worker holding the old task loses it.
                    Some(v) if replace => {
                        report.replaced += 1;
                        v + 1
                    }
                    Some(_) => {
                        report.skipped.push(k);
                        continue;
                    }
                };
                let put = PutRequest::builder()
                    .set_item(Some(item::from_new(t, now, version)))
                    .build()
                    .map_err(|e| Error::Invalid(e.to_string()))?;
                puts.push(WriteRequest::builder().put_request(put).build());
            }
            self.batch_write(puts).await?;
            Ok(report)
        })
    }

    /// Steps the claimer (claim.rs) until it wins, finds every shard empty, or loses a race
    /// (then the caller pauses and tries again: lost races never end a worker).
    fn try_claim(&self, collection: &str, owner: &str, lease: Duration) -> Result<ClaimAttempt> {
        let lease_ms = lease.as_millis() as i64;
        let since = now_ms();
        // Each step makes progress (a shard read, a candidate used up); the bound is a guard.
        for _ in 0..4 * SHARDS {
            match self
                .claimer
                .step(self, collection, owner, lease_ms, now_ms(), since)?
            {
                Step::Claimed(task) => return Ok(ClaimAttempt::Claimed(Claim { task })),
                Step::Drained => return Ok(ClaimAttempt::Empty),
                Step::Pause(pause) => return Ok(ClaimAttempt::Contended(pause)),
                Step::Again => {}
            }
        }
        Ok(ClaimAttempt::Contended(Duration::ZERO))
    }

    fn heartbeat(&self, claim: &mut Claim, lease: Duration) -> Result<bool> {
        let t = &claim.task;
        let now = now_ms();
        let until = now + lease.as_millis() as i64;
        let out = self.rt.block_on(self.update(
            key(&t.collection, &t.task_id),
            "SET #lease_until = :until, #claimable_at = :until, #updated_at = :now, \
             #version = #version + :one",
            "#owner = :owner AND #version = :v AND #state = :running",
            vec![
                (":until", n(until)),
                (":now", n(now)),
                (":one", n(1)),
                (":owner", s(claim.owner())),
                (":v", n(t.version)),
                (":running", s("running")),
            ],
        ))?;
        if out.is_some() {
            claim.task.version += 1;
            claim.task.lease_until = Some(until);
            claim.task.updated_at = now;
        }
        Ok(out.is_some())
    }

    fn finish(&self, claim: &Claim, outcome: &Outcome) -> Result<Option<TaskState>> {
        let t = &claim.task;
        let state = state_after_run(outcome.succeeded, t.attempts, t.max_attempts);
        let mut set = vec![
            "#state = :state",
            "#finished_at = :at",
            "#updated_at = :now",
            "#version = #version + :one",
        ];
        let mut remove = vec!["#lease_until"];
        let mut values = vec![
            (":state", s(state.as_str())),
            (":at", n(outcome.finished_at)),
            (":now", n(now_ms())),
            (":one", n(1)),
            (":owner", s(claim.owner())),
            (":v", n(t.version)),
            (":running", s("running")),
        ];
        // A retried task is claimable again at once; a finished one leaves the index.
        if state == TaskState::Todo {
            set.push("#claimable_at = :at");
        } else {
            remove.push("#claimable_at");
        }
        for (name, value) in [
            ("exit_code", outcome.exit_code.map(n)),
            ("error_tail", outcome.error_tail.as_deref().map(s)),
            ("log_uri", outcome.log_uri.as_deref().map(s)),
        ] {
            match value {
                Some(v) => {
                    set.push(match name {
                        "exit_code" => "#exit_code = :exit_code",
                        "error_tail" => "#error_tail = :error_tail",
                        _ => "#log_uri = :log_uri",
                    });
                    values.push((
                        match name {
                            "exit_code" => ":exit_code",
                            "error_tail" => ":error_tail",
                            _ => ":log_uri",
                        },
                        v,
                    ));
                }
                None => remove.push(match name {
                    "exit_code" => "#exit_code",
                    "error_tail" => "#error_tail",
                    _ => "#log_uri",
                }),
            }
        }
        let expr = format!("SET {} REMOVE {}", set.join(", "), remove.join(", "));
        let out = self.rt.block_on(self.update(
            key(&t.collection, &t.task_id),
            &expr,
            "#owner = :owner AND #version = :v AND #state = :running",
            values,
        ))?;
        Ok(out.map(|_| state))
    }

    fn release(&self, claim: &Claim) -> Result<bool> {
        let t = &claim.task;
        let now = now_ms();
        let out = self.rt.block_on(self.update(
            key(&t.collection, &t.task_id),
            "SET #state = :todo, #attempts = #attempts - :one, #claimable_at = :now, \
             #updated_at = :now, #version = #version + :one REMOVE #lease_until",
            "#owner = :owner AND #version = :v AND #state = :running",
            vec![
                (":todo", s("todo")),
                (":one", n(1)),
                (":now", n(now)),
                (":owner", s(claim.owner())),
                (":v", n(t.version)),
                (":running", s("running")),
            ],
        ))?;
        Ok(out.is_some())
    }

    fn release_stale(&self, collection: Option<&str>) -> Result<StaleReport> {
        self.rt.block_on(async {
            let now = now_ms();
            let stale = self
                .items(
                    collection,
                    Some((
                        "#state = :running AND #lease_until < :now",
                        vec![(":running", s("running")), (":now", n(now))],
                    )),
                )
                .await?;
            let mut report = StaleReport::default();
            for it in stale {
                let Some(k) = item::task_key(&it) else {
                    continue;
                };
                let version = attr_n(&it, "version").unwrap_or(-1);
                let last = attr_n(&it, "attempts") >= attr_n(&it, "max_attempts");
                if last {
                    report.failed += self.fail_lost(&k, version, now).await? as u64;
                    continue;
                }
                let done = self
                    .update(
                        key(&k.collection, &k.task_id),
                        "SET #state = :todo, #claimable_at = :now, #updated_at = :now, \
                         #version = #version + :one REMOVE #lease_until",
                        "#version = :v AND #state = :running",
                        vec![
                            (":todo", s("todo")),
                            (":running", s("running")),
                            (":now", n(now)),
                            (":one", n(1)),
                            (":v", n(version)),
                        ],
                    )
                    .await?;
                report.released += done.is_some() as u64;
            }
            Ok(report)
        })
    }

    fn retry(&self, collection: &str, selector: &Selector) -> Result<u64> {
        if let Selector::State(st) = selector
            && *st != TaskState::Failed
        {
            return Err(Error::Invalid(format!(
                "only failed tasks can be retried, not {st} ones"
            )));
        }
        self.rt.block_on(async {
            let failed = self
                .items(
                    Some(collection),
                    Some(("#state = :failed", vec![(":failed", s("failed"))])),
                )
                .await?;
            let now = now_ms();
            let mut n_done = 0;
            for it in failed {
                let Ok(task) = item::to_task(&it) else {
                    continue;
                };
                if !selector.matches(&task) {
                    continue;
                }
                let out = self
                    .update(
                        key(&task.collection, &task.task_id),
                        "SET #state = :todo, #attempts = :zero, #claimable_at = :now, \
                         #updated_at = :now, #version = #version + :one \
                         REMOVE #exit_code, #finished_at, #lease_until",
                        "#version = :v AND #state = :failed",
                        vec![
                            (":todo", s("todo")),
                            (":zero", n(0)),
                            (":now", n(now)),
                            (":one", n(1)),
                            (":v", n(task.version)),
                            (":failed", s("failed")),
                        ],
                    )
                    .await?;
                n_done += out.is_some() as u64;
            }
            Ok(n_done)
        })
    }

    fn delete(&self, collection: &str, selector: &Selector) -> Result<u64> {
        self.rt.block_on(async {
            let items = self.items(Some(collection), None).await?;
            let mut requests = vec![];
            for it in items {
                let chosen = match item::to_task(&it) {
                    Ok(task) => selector.matches(&task),
                    // A damaged item can still go when everything goes.
                    Err(_) => matches!(selector, Selector::All),
                };
                let Some(k) = item::task_key(&it) else {
                    continue;
                };
                if chosen {
                    let del = DeleteRequest::builder()
                        .set_key(Some(key(&k.collection, &k.task_id)))
                        .build()
                        .map_err(|e| Error::Invalid(e.to_string()))?;
                    requests.push(WriteRequest::builder().delete_request(del).build());
                }
            }
            let count = requests.len() as u64;
            self.batch_write(requests).await?;
            Ok(count)
        })
    }

    fn get(&self, collection: &str, task_id: &str) -> Result<Option<Task>> {
        self.rt.block_on(async {
            self.get_item(&key(collection, task_id))
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

    fn scan(&self, filter: &TaskFilter, after: Option<&TaskKey>, limit: usize) -> Result<Page> {
        let (filter_expr, mut values) = filter_of(filter);
        if let Some(c) = &filter.collection {
            values.insert(":c".into(), s(c));
        }
        let start = after.map(|k| key(&k.collection, &k.task_id));
        let limit = limit.clamp(1, 10_000) as i32;
        let (filter_expr, values, start) = (&filter_expr, &values, &start);
        let (items, last) = self.rt.block_on(retrying(|| async move {
            match &filter.collection {
                Some(_) => {
                    let exprs = [filter_expr.as_deref().unwrap_or(""), "#collection = :c"];
                    let out = self
                        .client
                        .query()
                        .table_name(&self.table)
                        .key_condition_expression("#collection = :c")
                        .set_filter_expression(filter_expr.clone())
                        .set_expression_attribute_names(Some(names_in(&exprs)))
                        .set_expression_attribute_values(Some(values.clone()))
                        .set_exclusive_start_key(start.clone())
                        .limit(limit)
                        .send()
                        .await
                        .map_err(|e| aws_error("reading tasks", e))?;
                    Ok((out.items.unwrap_or_default(), out.last_evaluated_key))
                }
                None => {
                    let names = names_in(&[filter_expr.as_deref().unwrap_or("")]);
                    let out = self
                        .client
                        .scan()
                        .table_name(&self.table)
                        .set_filter_expression(filter_expr.clone())
                        .set_expression_attribute_names((!names.is_empty()).then_some(names))
                        .set_expression_attribute_values(
                            (!values.is_empty()).then(|| values.clone()),
                        )
                        .set_exclusive_start_key(start.clone())
                        .limit(limit)
                        .send()
                        .await
                        .map_err(|e| aws_error("reading tasks", e))?;
                    Ok((out.items.unwrap_or_default(), out.last_evaluated_key))
                }
            }
        }))?;
        let mut page = page_of(items);
        page.next = last.as_ref().and_then(item::task_key);
        Ok(page)
    }

    fn counts(&self, collection: Option<&str>) -> Result<Vec<StateCount>> {
        let items = self.rt.block_on(self.items(collection, None))?;
        let mut counts: HashMap<(String, TaskState), u64> = HashMap::new();
        for it in items {
            let (Some(c), Some(Ok(st))) = (
                attr_s(&it, "collection"),
                attr_s(&it, "state").map(str::parse::<TaskState>),
            ) else {
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

    /// Counted from the claim index, shard by shard (Select COUNT, every page): what the
    /// index shows claimable now, never a Scan of the table.
    fn count_claimable(&self, collection: &str) -> Result<u64> {
        self.rt.block_on(async {
            let now = now_ms();
            let mut total = 0u64;
            for shard in 0..SHARDS {
                total += retrying(|| async move {
                    let mut pages = self
                        .claimable_now(collection, shard, now)
                        .select(aws_sdk_dynamodb::types::Select::Count)
                        .into_paginator()
                        .send();
                    let mut count = 0u64;
                    while let Some(page) = pages.next().await {
                        let page = page.map_err(|e| aws_error("counting claimable tasks", e))?;
                        count += page.count.max(0) as u64;
                    }
                    Ok(count)
                })
                .await?;
            }
            Ok(total)
        })
    }

    fn describe(&self) -> String {
        format!("dynamodb://{}", self.table)
    }

    /// The table and its region: one name in two regions is two stores.
    fn identity(&self) -> String {
        let config = self.client.config();
        let region = config.region().map_or("(no region)", |r| r.as_ref());
        format!("dynamodb://{} in {region}", self.table)
    }

    /// A read across collections is a parallel Scan (filtered, for a lookup by id or state):
    /// SEGMENTS segments, each through the SDK paginator to its last page (DynamoDB filters
    /// after each page's Limit, so one page proves nothing), their pages handed to `f` as
    /// they come (bounded channel: memory stays flat). One collection is a Query.
    fn stream(
        &self,
        filter: &TaskFilter,
        page_size: usize,
        f: &mut dyn FnMut(Page) -> Result<ControlFlow<()>>,
    ) -> Result<()> {
        if filter.collection.is_some() {
            return super::stream_by_scan(self, filter, page_size, f);
        }
        let (filter_expr, values) = filter_of(filter);
        let names = names_in(&[filter_expr.as_deref().unwrap_or("")]);
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Vec<Item>>>(SEGMENTS as usize);
        for segment in 0..SEGMENTS {
            let tx = tx.clone();
            let mut pages = self
                .client
                .scan()
                .table_name(&self.table)
                .segment(segment)
                .total_segments(SEGMENTS)
                .set_filter_expression(filter_expr.clone())
                .set_expression_attribute_names((!names.is_empty()).then(|| names.clone()))
                .set_expression_attribute_values((!values.is_empty()).then(|| values.clone()))
                .limit(page_size.clamp(1, 10_000) as i32)
                .consistent_read(true)
                .into_paginator()
                .send();
            self.rt.spawn(async move {
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
        while let Some(items) = self.rt.block_on(rx.recv()) {
            if f(page_of(items?))?.is_break() {
                return Ok(());
            }
        }
        Ok(())
    }
}

/// Segments of a whole-table Scan read at once.
const SEGMENTS: i32 = 4;

/// A filter expression and its values for the state, sample and id parts of `filter`.
fn filter_of(filter: &TaskFilter) -> (Option<String>, HashMap<String, AttributeValue>) {
    let mut conds = vec![];
    let mut values = HashMap::new();
    if let Some(st) = filter.state {
        conds.push("#state = :state");
        values.insert(":state".into(), s(st.as_str()));
    }
    if let Some(sm) = &filter.sample {
        conds.push("#sample = :sample");
        values.insert(":sample".into(), s(sm));
    }
    if let Some(id) = &filter.task_id {
        conds.push("#task_id = :task_id");
        values.insert(":task_id".into(), s(id));
    }
    ((!conds.is_empty()).then(|| conds.join(" AND ")), values)
}

/// Items as a page of tasks; items that cannot be read are reported, not raised.
fn page_of(items: Vec<Item>) -> Page {
    let mut page = Page::default();
    for it in items {
        match item::to_task(&it) {
            Ok(t) => page.tasks.push(t),
            Err(reason) => page.damaged.push(Damaged {
                key: item::key_text(&it),
                reason,
            }),
        }
    }
    page
}

//! The production store: one DynamoDB table shared by a fleet of workers. Claims read the
//! sparse, sharded claim index (never a Scan), so a claim costs the same at 100 or 10^6 tasks,
//! and win with one conditional UpdateItem (claim.rs spreads a fleet over the shards). Every
//! write is conditional; a lost race is not an error. Every call retries throttling and other
//! passing faults (retry.rs).
//!
//! This file owns the connection (the struct, `open`, `connect`) and the one conditional write
//! every other file goes through (`DynamoStore::update`); the `TaskStore` impl only hands each
//! call to the file that owns it: lease.rs (claim, heartbeat, finish, release), bulk.rs (add,
//! delete, retry, release_stale), reads.rs (get, scan, counts, stream), flow.rs (a sample's
//! tasks, waiting tasks, promotions), table.rs (init). It
//! never names an attribute: item.rs builds every expression.

mod bulk;
mod changes;
mod check;
pub mod claim;
mod flow;
mod index;
mod item;
mod lease;
mod reads;
mod retry;
mod shape;
mod table;

use std::cell::Cell;
use std::ops::ControlFlow;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::ReturnValue;
use tokio::runtime::Runtime;

pub use item::{CHANGE_INDEX, CLAIM_SHARD, CLAIMABLE_AT, INDEX, LEGACY_INDEX, SAMPLE_INDEX};
pub use table::Init;

use self::claim::{Claimer, SHARDS};
use self::item::{Item, Update, values_map};
use self::retry::retrying;
use super::TaskStore;
use crate::aws::{self, AwsOptions};
use crate::error::{Error, Result};
use crate::model::{
    AddOptions, AddReport, Claim, ClaimAttempt, ClaimFinding, NewTask, Outcome, Page, SampleTask,
    SampleView, Selector, Settle, StaleReport, StateCount, Task, TaskFilter, TaskKey, TaskState,
    Tombstone, Unclaimable, UpstreamReport,
};

pub struct DynamoStore {
    rt: Runtime,
    client: Client,
    table: String,
    /// This process's claim state (candidates in hand, shard, lost races), shared by slots.
    claimer: Claimer,
    /// Claim writes whose answer never came (every try failed in transit): each may have
    /// landed, leaving the task running under our name. Settled before the next claim.
    unsettled: std::sync::Mutex<Vec<lease::Unsettled>>,
    /// The shard where `has_running` last found a running task: asked first next time, so a
    /// worker that waits for one long task reads one shard per look, not sixteen.
    running_shard: std::sync::atomic::AtomicU32,
    /// Items and bytes the sync reads have read: what a benchmark compares.
    read: ReadTally,
}

/// Items, index entries, and their bytes (by DynamoDB's item size rule) read so far.
#[derive(Debug, Default)]
struct ReadTally {
    items: std::sync::atomic::AtomicU64,
    entries: std::sync::atomic::AtomicU64,
    bytes: std::sync::atomic::AtomicU64,
}

/// The table and region of a DynamoDB store's identity (`dynamodb://TABLE in REGION`, as
/// `identity` writes it); `None` for another store's.
pub fn table_and_region(identity: &str) -> Option<(&str, &str)> {
    identity.strip_prefix("dynamodb://")?.split_once(" in ")
}

/// A request a builder refused: our code built it wrong, not the user's input.
pub(crate) fn built_wrong(e: aws_sdk_dynamodb::error::BuildError) -> Error {
    Error::Internal(format!("a DynamoDB request built wrong: {e}"))
}

/// One line for a failed DynamoDB call; a missing table names the command that creates it.
pub(crate) fn aws_error<E: ProvideErrorMetadata + std::error::Error + 'static>(
    doing: &str,
    e: SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>,
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
            // Workers started in the same millisecond on different machines choose differently.
            claimer: Claimer::new(SHARDS, crate::backoff::seed()),
            unsettled: Default::default(),
            running_shard: Default::default(),
            read: ReadTally::default(),
        })
    }

    /// What this handle's sync reads (whole or changed) have read so far: table items,
    /// change-index entries, and the bytes of both as DynamoDB sizes them.
    pub fn read_so_far(&self) -> (u64, u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        let r = &self.read;
        (
            r.items.load(Relaxed),
            r.entries.load(Relaxed),
            r.bytes.load(Relaxed),
        )
    }

    /// Counts table items a sync read.
    fn tally(&self, items: &[item::Item]) {
        self.count(items, &self.read.items);
    }

    /// Counts change-index entries a sync read.
    fn tally_entries(&self, entries: &[item::Item]) {
        self.count(entries, &self.read.entries);
    }

    fn count(&self, read: &[item::Item], counter: &std::sync::atomic::AtomicU64) {
        use std::sync::atomic::Ordering::Relaxed;
        let bytes: u64 = read.iter().map(item::size).sum();
        counter.fetch_add(read.len() as u64, Relaxed);
        self.read.bytes.fetch_add(bytes, Relaxed);
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
    async fn update(&self, update: Update) -> Result<Option<Item>> {
        let names = update.names();
        let Update {
            key,
            expression,
            condition,
            values,
        } = update;
        let values = values_map(values);
        let ambiguous = Cell::new(false);
        let out = retrying(|| {
            let sent = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key.clone()))
                .update_expression(&expression)
                .condition_expression(&condition)
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
            if let Some(item) = current.filter(|it| item::bears_write(it, &values)) {
                return Ok(Some(item));
            }
        }
        Ok(out)
    }
}

impl TaskStore for DynamoStore {
    fn add_tasks(&self, tasks: &[NewTask], opts: AddOptions) -> Result<AddReport> {
        let mut report = bulk::add(self, tasks, opts)?;
        crate::store::flow::settle_gated(self, tasks, &mut report)?;
        Ok(report)
    }

    fn sample_view(&self, sample: &str) -> Result<SampleView> {
        flow::sample_view(self, sample)
    }

    fn sample_views(&self, samples: &[String]) -> Result<Vec<SampleView>> {
        flow::sample_views(self, samples)
    }

    fn waiting_samples(&self, collection: Option<&str>) -> Result<Vec<String>> {
        flow::waiting_samples(self, collection)
    }

    fn settle_task(
        &self,
        collection: &str,
        task_id: &str,
        version: i64,
        settle: &Settle,
    ) -> Result<bool> {
        flow::settle_task(self, collection, task_id, version, settle)
    }

    fn upstream_reports(&self, tasks: &[SampleTask]) -> Result<Vec<UpstreamReport>> {
        flow::upstream_reports(self, tasks)
    }

    fn try_claim(&self, collection: &str, owner: &str, lease: Duration) -> Result<ClaimAttempt> {
        lease::try_claim(self, collection, owner, lease)
    }

    fn heartbeat(&self, claim: &mut Claim, lease: Duration) -> Result<bool> {
        lease::heartbeat(self, claim, lease)
    }

    fn finish(&self, claim: &Claim, outcome: &Outcome) -> Result<Option<TaskState>> {
        lease::finish(self, claim, outcome)
    }

    fn release(&self, claim: &Claim) -> Result<bool> {
        lease::release(self, claim)
    }

    fn release_stale(&self, collection: Option<&str>) -> Result<StaleReport> {
        bulk::release_stale(self, collection)
    }

    fn retry(&self, collection: &str, selector: &Selector) -> Result<u64> {
        bulk::retry(self, collection, selector)
    }

    fn delete(&self, collection: &str, selector: &Selector) -> Result<u64> {
        bulk::delete(self, collection, selector)
    }

    fn get(&self, collection: &str, task_id: &str) -> Result<Option<Task>> {
        reads::get(self, collection, task_id)
    }

    fn drop_sample(&self, sample: &str, reason: &str) -> Result<()> {
        bulk::drop_sample(self, sample, reason)
    }

    fn reinstate_sample(&self, sample: &str) -> Result<bool> {
        bulk::reinstate_sample(self, sample)
    }

    fn tombstone(&self, collection: &str, task_id: &str) -> Result<Option<Tombstone>> {
        let key = item::tombstone_key(collection, task_id);
        Ok(self
            .rt
            .block_on(self.get_item(&key))?
            .as_ref()
            .and_then(item::to_tombstone))
    }

    fn changes_since(&self) -> Result<Option<i64>> {
        DynamoStore::changes_since(self)
    }

    fn stream_changes(
        &self,
        since: i64,
        collection: Option<&str>,
        page_size: usize,
        f: &mut dyn FnMut(Page) -> Result<ControlFlow<()>>,
    ) -> Result<()> {
        DynamoStore::stream_changes(self, since, collection, page_size, f)
    }

    fn read_tasks(&self, keys: &[TaskKey]) -> Result<Vec<Task>> {
        DynamoStore::read_tasks(self, keys)
    }

    fn scan(&self, filter: &TaskFilter, after: Option<&TaskKey>, limit: usize) -> Result<Page> {
        reads::scan(self, filter, after, limit)
    }

    fn counts(&self, collection: Option<&str>) -> Result<Vec<StateCount>> {
        reads::counts(self, collection)
    }

    fn counts_cheaply(&self) -> bool {
        false
    }

    fn count_claimable(&self, collection: &str) -> Result<u64> {
        reads::count_claimable(self, collection)
    }

    fn has_running(&self, collection: &str) -> Result<bool> {
        reads::has_running(self, collection)
    }

    fn unclaimable(&self, collection: Option<&str>, every_todo: bool) -> Result<Vec<Unclaimable>> {
        reads::unclaimable(self, collection, every_todo)
    }

    fn check_claims(&self, collection: Option<&str>, repair: bool) -> Result<Vec<ClaimFinding>> {
        check::check_claims(self, collection, repair)
    }

    /// The table, with its region when that is not us-east-1 (AWS's own default): a
    /// message about a store in eu-west-1 says so.
    fn describe(&self) -> String {
        match self.client.config().region().map(|r| r.as_ref()) {
            Some(region) if region != "us-east-1" => {
                format!("dynamodb://{} ({region})", self.table)
            }
            _ => self.url(),
        }
    }

    fn url(&self) -> String {
        format!("dynamodb://{}", self.table)
    }

    /// The table and its region: one name in two regions is two stores
    /// ([`table_and_region`] reads it back).
    fn identity(&self) -> String {
        let config = self.client.config();
        let region = config.region().map_or("(no region)", |r| r.as_ref());
        format!("dynamodb://{} in {region}", self.table)
    }

    fn stream(
        &self,
        filter: &TaskFilter,
        page_size: usize,
        f: &mut dyn FnMut(Page) -> Result<ControlFlow<()>>,
    ) -> Result<()> {
        reads::stream(self, filter, page_size, f)
    }
}

//! The live task queue: one trait, and `open` to pick the backend from a store URL.
//! A store never knows about the catalog; `sync` is the only bridge between them.

pub mod dynamo;
pub mod flow;
mod sqlite;

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::model::{
    AddOptions, AddReport, Claim, ClaimAttempt, ClaimFinding, Damaged, NewTask, Outcome, Page,
    SampleTask, SampleView, Selector, Settle, StaleReport, StateCount, Task, TaskFilter, TaskKey,
    TaskState, Tombstone, Unclaimable, UpstreamReport,
};

pub use sqlite::SqliteStore;

/// The store used when neither --store nor ANAMO_STORE names one.
pub const DEFAULT_STORE: &str = "sqlite://anamo-tasks.db";

/// Every write is conditional on the task's state, owner and version, so two workers can never
/// both believe they hold a task, and a worker that lost its lease cannot overwrite the result.
pub trait TaskStore: Send + Sync {
    /// Adds a batch: all of it or none. Existing ids are skipped and reported, unless
    /// `replace`, which overwrites them and puts them back to `todo`. A task `--after` a step
    /// starts `waiting` unless its sample's tasks there are done (flow.rs); one whose sample
    /// has no task upstream refuses the batch, unless `allow_missing_upstream`.
    fn add_tasks(&self, tasks: &[NewTask], opts: AddOptions) -> Result<AddReport>;

    /// `add_tasks` with `replace` alone.
    fn add(&self, tasks: &[NewTask], replace: bool) -> Result<AddReport> {
        self.add_tasks(
            tasks,
            AddOptions {
                replace,
                ..AddOptions::default()
            },
        )
    }

    /// Every task of `sample` in every step, and the steps where done tasks of it were
    /// deleted: what the flow decides promotions on.
    fn sample_view(&self, sample: &str) -> Result<SampleView>;

    /// `sample_view` of each sample, in order. A store that can read several at once (DynamoDB)
    /// does; the default reads one after the other.
    fn sample_views(&self, samples: &[String]) -> Result<Vec<SampleView>> {
        samples.iter().map(|s| self.sample_view(s)).collect()
    }

    /// The samples with a waiting task in `collection` (in every collection when `None`).
    fn waiting_samples(&self, collection: Option<&str>) -> Result<Vec<String>>;

    /// Settles a waiting or held task, if it is still at `version`: its upstream done, `todo`
    /// and claimable at once, or `held` with the reason; from held only, a release (`todo`) or
    /// waiting again (its upstream re-run). `false` when it was not (already settled, replaced
    /// or deleted).
    fn settle_task(
        &self,
        collection: &str,
        task_id: &str,
        version: i64,
        settle: &Settle,
    ) -> Result<bool>;

    /// What each of `tasks` (a sample's tasks, live or removed) reported on its last run, for
    /// those that reported metrics: what gates downstream judge.
    fn upstream_reports(&self, tasks: &[SampleTask]) -> Result<Vec<UpstreamReport>>;

    /// Settles the waiting (and held) tasks of `sample` whose upstream is done: `todo`, or
    /// `held` by a gate; how many it moved. Called by the worker that finished a task of the
    /// sample; harmless to repeat.
    fn promote(&self, sample: &str) -> Result<u64> {
        flow::promote(self, sample)
    }

    /// One try at atomically taking a claimable task of `collection` (`todo`, or `running`
    /// with an expired lease) for `owner`, with a lease of `lease`. `Empty` only when nothing
    /// is claimable; lost races are `Contended`, for the caller to retry after the pause.
    fn try_claim(&self, collection: &str, owner: &str, lease: Duration) -> Result<ClaimAttempt>;

    /// Takes a claimable task, retrying lost races for as long as claimable work exists.
    /// `None` when nothing is claimable.
    fn claim(&self, collection: &str, owner: &str, lease: Duration) -> Result<Option<Claim>> {
        loop {
            match self.try_claim(collection, owner, lease)? {
                ClaimAttempt::Claimed(c) => return Ok(Some(c)),
                ClaimAttempt::Empty => return Ok(None),
                ClaimAttempt::Contended(pause) => std::thread::sleep(pause),
            }
        }
    }

    /// Extends the lease. `false` means the task was taken away: stop working on it.
    fn heartbeat(&self, claim: &mut Claim, lease: Duration) -> Result<bool>;

    /// Records a run's outcome. Returns the state the task is left in, or `None` when the
    /// claim was lost (nothing written).
    fn finish(&self, claim: &Claim, outcome: &Outcome) -> Result<Option<TaskState>>;

    /// Hands a running task back to `todo` without burning an attempt. `false` if lost.
    fn release(&self, claim: &Claim) -> Result<bool>;

    /// Hands back every task whose lease has expired (to `todo`, or `failed` when it was on
    /// its last attempt).
    fn release_stale(&self, collection: Option<&str>) -> Result<StaleReport>;

    /// Puts failed tasks back to `todo` with their attempts reset. Returns how many.
    fn retry(&self, collection: &str, selector: &Selector) -> Result<u64>;

    /// Deletes tasks. Returns how many.
    fn delete(&self, collection: &str, selector: &Selector) -> Result<u64>;

    /// One task by key.
    fn get(&self, collection: &str, task_id: &str) -> Result<Option<Task>>;

    /// What the store remembers of a task it removed: its tombstone, if it keeps one.
    fn tombstone(&self, collection: &str, task_id: &str) -> Result<Option<Tombstone>>;

    /// Marks `sample` dropped from the study: `add_tasks` skips its tasks (as `Seen::SampleDropped`)
    /// until `reinstate_sample`. Idempotent.
    fn drop_sample(&self, sample: &str, reason: &str) -> Result<()>;

    /// Takes a sample's drop mark away (it is back in the study); `false` when it had none.
    fn reinstate_sample(&self, sample: &str) -> Result<bool>;

    /// A page of at most `limit` tasks, starting after `after`. Records that cannot be read
    /// are reported in the page, not raised as errors.
    fn scan(&self, filter: &TaskFilter, after: Option<&TaskKey>, limit: usize) -> Result<Page>;

    /// Number of tasks per collection and state.
    fn counts(&self, collection: Option<&str>) -> Result<Vec<StateCount>>;

    /// Whether `counts` costs little beside a sync's own read: a SQLite count does; a
    /// DynamoDB one reads the whole table, so a full sync's progress shows no total there.
    fn counts_cheaply(&self) -> bool {
        true
    }

    /// Tasks of `collection` a worker could claim now: `todo`, and `running` ones whose lease
    /// has expired (their worker died: a Spot reclaim leaves exactly these).
    fn count_claimable(&self, collection: &str) -> Result<u64>;

    /// Whether a task of `collection` is running under a lease that has not expired: one
    /// that may still come back claimable (its worker lost) without anyone acting.
    fn has_running(&self, collection: &str) -> Result<bool>;

    /// Tasks no claim can ever take as they are: `todo` or `waiting` but written (by hand)
    /// without an attribute a claim needs. With `every_todo`, every `todo` task of the
    /// collection instead (with what it lacks, often nothing): asked by a worker that found
    /// nothing to claim, to tell a drained step from tasks the claim index does not show.
    /// A store whose rows cannot lack them (SQLite) has none.
    fn unclaimable(
        &self,
        _collection: Option<&str>,
        _every_todo: bool,
    ) -> Result<Vec<Unclaimable>> {
        Ok(vec![])
    }

    /// Finds the tasks no claim can take (`unclaimable`'s first kind, and whole `todo` tasks
    /// a claim index does not show) and, with `repair`, gives each what a claim needs.
    fn check_claims(&self, _collection: Option<&str>, _repair: bool) -> Result<Vec<ClaimFinding>> {
        Ok(vec![])
    }

    /// Where the store lives, for messages.
    fn describe(&self) -> String;

    /// The store as `--store` takes it (for the workers a launch starts).
    fn url(&self) -> String {
        self.describe()
    }

    /// What makes this store this one, the same from any directory or machine: the catalog
    /// remembers it, so a sync from another store is not merged in silently.
    fn identity(&self) -> String {
        self.describe()
    }

    /// Since when (epoch ms) the store's change feed answers for every change: from any later
    /// time, [`TaskStore::stream_changes`] reads every task and tombstone written since.
    /// `None`: the store has no change index (a DynamoDB table made before it; `anamo store
    /// init` adds it), so a sync reads it whole.
    fn changes_since(&self) -> Result<Option<i64>>;

    /// Hands `f` every task written at or after `since` (its `updated_at`, which every write
    /// but a lease extension moves) and every tombstone left since, in `collection` or all,
    /// a page at a time: what an incremental sync reads.
    fn stream_changes(
        &self,
        since: i64,
        collection: Option<&str>,
        page_size: usize,
        f: &mut dyn FnMut(Page) -> Result<ControlFlow<()>>,
    ) -> Result<()>;

    /// These tasks as they are now, read by key (those gone are left out): an incremental
    /// sync reads the running tasks it knows again, whose leases move without a change.
    fn read_tasks(&self, keys: &[TaskKey]) -> Result<Vec<Task>>;

    /// Hands every page of tasks matching `filter` to `f`, in no particular order, until `f`
    /// says stop. Stores that can read in parallel (DynamoDB's segmented Scan) do so; the
    /// default follows `scan` page by page.
    fn stream(
        &self,
        filter: &TaskFilter,
        page_size: usize,
        f: &mut dyn FnMut(Page) -> Result<ControlFlow<()>>,
    ) -> Result<()> {
        stream_by_scan(self, filter, page_size, f)
    }
}

/// What a sync reads of a store: its tasks and tombstones, streamed, and its names. Every
/// store is one; a test stands in for a store with these three methods alone.
pub trait TaskSource: Sync {
    /// As [`TaskStore::stream`].
    fn stream(
        &self,
        filter: &TaskFilter,
        page_size: usize,
        f: &mut dyn FnMut(Page) -> Result<ControlFlow<()>>,
    ) -> Result<()>;

    /// As [`TaskStore::describe`].
    fn describe(&self) -> String;

    /// As [`TaskStore::identity`].
    fn identity(&self) -> String;

    /// As [`TaskStore::changes_since`]; a source without a change feed is read whole.
    fn changes_since(&self) -> Result<Option<i64>> {
        Ok(None)
    }

    /// As [`TaskStore::stream_changes`]; never called when `changes_since` is `None`.
    fn stream_changes(
        &self,
        _since: i64,
        _collection: Option<&str>,
        _page_size: usize,
        _f: &mut dyn FnMut(Page) -> Result<ControlFlow<()>>,
    ) -> Result<()> {
        Err(Error::Internal("this source has no change feed".into()))
    }

    /// As [`TaskStore::read_tasks`].
    fn read_tasks(&self, _keys: &[TaskKey]) -> Result<Vec<Task>> {
        Ok(vec![])
    }
}

impl<S: TaskStore + ?Sized> TaskSource for S {
    fn stream(
        &self,
        filter: &TaskFilter,
        page_size: usize,
        f: &mut dyn FnMut(Page) -> Result<ControlFlow<()>>,
    ) -> Result<()> {
        TaskStore::stream(self, filter, page_size, f)
    }

    fn describe(&self) -> String {
        TaskStore::describe(self)
    }

    fn identity(&self) -> String {
        TaskStore::identity(self)
    }

    fn changes_since(&self) -> Result<Option<i64>> {
        TaskStore::changes_since(self)
    }

    fn stream_changes(
        &self,
        since: i64,
        collection: Option<&str>,
        page_size: usize,
        f: &mut dyn FnMut(Page) -> Result<ControlFlow<()>>,
    ) -> Result<()> {
        TaskStore::stream_changes(self, since, collection, page_size, f)
    }

    fn read_tasks(&self, keys: &[TaskKey]) -> Result<Vec<Task>> {
        TaskStore::read_tasks(self, keys)
    }
}

pub use crate::db::OpenMode;

/// A parsed store URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    Sqlite(PathBuf),
    /// A DynamoDB table name.
    Dynamo(String),
}

impl StoreUrl {
    pub fn parse(url: &str) -> Result<Self> {
        let url = url.trim();
        if let Some(table) = url.strip_prefix("dynamodb://") {
            let valid = (3..=255).contains(&table.len())
                && table
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
            if !valid {
                return Err(Error::Invalid(format!(
                    "'{table}' is not a DynamoDB table name (3-255 letters, digits, '_', '-', '.')"
                )));
            }
            return Ok(Self::Dynamo(table.to_string()));
        }
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(Error::BadStoreUrl(url.into()));
            }
            return Ok(Self::Sqlite(PathBuf::from(path)));
        }
        if url.is_empty() || url.contains("://") {
            return Err(Error::BadStoreUrl(url.into()));
        }
        Ok(Self::Sqlite(PathBuf::from(url)))
    }
}

/// Opens the store a URL names; `aws` is used only by a DynamoDB store.
pub fn open(url: &str, mode: OpenMode, aws: &crate::aws::AwsOptions) -> Result<Box<dyn TaskStore>> {
    match StoreUrl::parse(url)? {
        StoreUrl::Sqlite(path) => Ok(Box::new(SqliteStore::open(&path, mode)?)),
        // Only a DynamoDB store loads AWS configuration.
        StoreUrl::Dynamo(table) => Ok(Box::new(dynamo::DynamoStore::open(&table, aws)?)),
    }
}

/// `TaskStore::stream` page by page through `scan`: the default, and what a store falls back
/// to for filtered reads.
pub fn stream_by_scan<S: TaskStore + ?Sized>(
    store: &S,
    filter: &TaskFilter,
    page_size: usize,
    f: &mut dyn FnMut(Page) -> Result<ControlFlow<()>>,
) -> Result<()> {
    let mut after: Option<TaskKey> = None;
    loop {
        let mut page = store.scan(filter, after.as_ref(), page_size)?;
        let next = page.next.take();
        if f(page)?.is_break() {
            return Ok(());
        }
        match next {
            Some(k) => after = Some(k),
            None => return Ok(()),
        }
    }
}

/// Whether `collection` holds any task (damaged ones included): one page of one task.
pub fn has_tasks(store: &dyn TaskStore, collection: &str) -> Result<bool> {
    let filter = TaskFilter {
        collection: Some(collection.to_string()),
        ..TaskFilter::default()
    };
    let page = store.scan(&filter, None, 1)?;
    Ok(!page.tasks.is_empty() || !page.damaged.is_empty())
}

/// A task by id, in one collection or across all of them; an id in several collections
/// without `collection` is an error that says to pass it.
pub fn find_task(
    store: &dyn TaskStore,
    id: &str,
    collection: Option<&str>,
) -> Result<Option<Task>> {
    if let Some(c) = collection {
        return store.get(c, id);
    }
    let filter = TaskFilter {
        task_id: Some(id.to_string()),
        ..TaskFilter::default()
    };
    // Every page, to the end: on DynamoDB a filtered page may be empty while later ones hold
    // the task, and an id in two collections must be said, not one picked.
    let mut found = vec![];
    store.stream(&filter, 1_000, &mut |page| {
        found.extend(page.tasks);
        Ok(ControlFlow::Continue(()))
    })?;
    found.sort_by(|a, b| a.collection.cmp(&b.collection));
    if found.len() > 1 {
        let names: Vec<_> = found.iter().map(|t| t.collection.as_str()).collect();
        return Err(Error::Invalid(format!(
            "task id '{id}' is in several collections ({}); pass --collection",
            names.join(", ")
        )));
    }
    Ok(found.pop())
}

/// Calls `f` on every task matching `filter` (or the damaged record in its place), page by
/// page, without holding them all, until `f` says to stop.
pub fn for_each_task(
    store: &dyn TaskStore,
    filter: &TaskFilter,
    page_size: usize,
    mut f: impl FnMut(std::result::Result<Task, Damaged>) -> Result<ControlFlow<()>>,
) -> Result<()> {
    stream_by_scan(store, filter, page_size, &mut |page| {
        for item in page
            .damaged
            .into_iter()
            .map(Err)
            .chain(page.tasks.into_iter().map(Ok))
        {
            if f(item)?.is_break() {
                return Ok(ControlFlow::Break(()));
            }
        }
        Ok(ControlFlow::Continue(()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_urls() {
        assert_eq!(
            StoreUrl::parse("sqlite://x.db").unwrap(),
            StoreUrl::Sqlite("x.db".into())
        );
        assert_eq!(
            StoreUrl::parse("x.db").unwrap(),
            StoreUrl::Sqlite("x.db".into())
        );
        assert!(StoreUrl::parse("redis://x").is_err());
        assert!(StoreUrl::parse("sqlite://").is_err());
    }
}

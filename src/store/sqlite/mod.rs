//! The embedded task store: one SQLite file that many worker processes on one machine share.
//! WAL lets readers run beside the single writer; every claim is a `BEGIN IMMEDIATE`
//! transaction, so two processes can never pick the same task. Never touches the catalog.
//!
//! Laid out as `store/dynamo/` is: this file owns the connection (`with` and `write`, the
//! only places that name the file in an error) and hands each `TaskStore` call to the file
//! that owns it: lease.rs (claim, heartbeat, finish, release, stale leases), bulk.rs (add,
//! retry, delete), reads.rs (pages, tombstones, counts), flow.rs (a sample's tasks, waiting
//! tasks, promotions, dropped samples); rows.rs turns rows into the model.

mod bulk;
mod flow;
mod lease;
mod reads;
mod rows;

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior};

use super::TaskStore;
use crate::db::{self, OpenMode, Schema};
use crate::error::{Result, in_db};
use crate::model::{
    AddOptions, AddReport, Claim, ClaimAttempt, NewTask, Outcome, Page, SampleTask, SampleView,
    Selector, Settle, StaleReport, StateCount, Task, TaskFilter, TaskKey, TaskState, Tombstone,
    UpstreamReport,
};

/// The embedded store's schema: its own application id ("anmT"), so a catalog or a stranger's
/// database is refused instead of being migrated.
const SCHEMA: Schema = Schema {
    what: "task store",
    application_id: 0x616E_6D54,
    migrations: &[
        include_str!("../../../migrations/store/0001_tasks.sql"),
        include_str!("../../../migrations/store/0002_flow.sql"),
        include_str!("../../../migrations/store/0003_tombstones.sql"),
        include_str!("../../../migrations/store/0004_runs.sql"),
        include_str!("../../../migrations/store/0005_withdrawn.sql"),
        include_str!("../../../migrations/store/0006_dropped_samples.sql"),
        include_str!("../../../migrations/store/0007_reported.sql"),
        include_str!("../../../migrations/store/0008_gates.sql"),
        include_str!("../../../migrations/store/0009_changes.sql"),
    ],
    flag: "--store/ANAMO_STORE",
    creator: "`anamo tasks add`",
    // Claims touch a few index pages; the default cache is plenty.
    cache_kib: 2000,
};

pub struct SqliteStore {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl SqliteStore {
    pub fn open(path: &Path, mode: OpenMode) -> Result<Self> {
        Ok(Self {
            path: path.to_path_buf(),
            conn: Mutex::new(db::open(path, &SCHEMA, mode)?),
        })
    }

    /// Runs `f` on the connection; a SQLite failure names this file.
    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        // A panic while holding the lock leaves no half-done SQL behind (transactions roll
        // back on drop), so a poisoned lock is still safe to use.
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        in_db(f(&mut conn), "task store", &self.path)
    }

    /// Runs `f` in one IMMEDIATE transaction, committed when `f` succeeds and rolled back
    /// when it fails.
    fn write<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        self.with(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let value = f(&tx)?;
            tx.commit()?;
            Ok(value)
        })
    }
}

impl TaskStore for SqliteStore {
    fn add_tasks(&self, tasks: &[NewTask], opts: AddOptions) -> Result<AddReport> {
        let mut report = self.write(|tx| bulk::add_tasks(tx, tasks, opts))?;
        crate::store::flow::settle_gated(self, tasks, &mut report)?;
        Ok(report)
    }

    fn try_claim(&self, collection: &str, owner: &str, lease: Duration) -> Result<ClaimAttempt> {
        self.write(|tx| lease::try_claim(tx, collection, owner, lease))
    }

    fn heartbeat(&self, claim: &mut Claim, lease: Duration) -> Result<bool> {
        self.with(|conn| lease::heartbeat(conn, claim, lease))
    }

    fn finish(&self, claim: &Claim, outcome: &Outcome) -> Result<Option<TaskState>> {
        self.with(|conn| lease::finish(conn, claim, outcome))
    }

    fn release(&self, claim: &Claim) -> Result<bool> {
        self.with(|conn| lease::release(conn, claim))
    }

    fn release_stale(&self, collection: Option<&str>) -> Result<StaleReport> {
        self.write(|tx| lease::release_stale(tx, collection))
    }

    fn retry(&self, collection: &str, selector: &Selector) -> Result<u64> {
        self.with(|conn| bulk::retry(conn, collection, selector))
    }

    fn delete(&self, collection: &str, selector: &Selector) -> Result<u64> {
        self.write(|tx| bulk::delete(tx, collection, selector))
    }

    fn sample_view(&self, sample: &str) -> Result<SampleView> {
        self.with(|conn| flow::view_of(conn, sample))
    }

    fn waiting_samples(&self, collection: Option<&str>) -> Result<Vec<String>> {
        self.with(|conn| flow::waiting_samples(conn, collection))
    }

    fn settle_task(
        &self,
        collection: &str,
        task_id: &str,
        version: i64,
        settle: &Settle,
    ) -> Result<bool> {
        self.with(|conn| flow::settle_task(conn, collection, task_id, version, settle))
    }

    fn upstream_reports(&self, tasks: &[SampleTask]) -> Result<Vec<UpstreamReport>> {
        self.with(|conn| flow::upstream_reports(conn, tasks))
    }

    fn get(&self, collection: &str, task_id: &str) -> Result<Option<Task>> {
        self.with(|conn| rows::get_task(conn, collection, task_id))
    }

    fn tombstone(&self, collection: &str, task_id: &str) -> Result<Option<Tombstone>> {
        self.with(|conn| rows::tombstone_of(conn, collection, task_id))
    }

    fn drop_sample(&self, sample: &str, reason: &str) -> Result<()> {
        self.with(|conn| flow::drop_sample(conn, sample, reason))
    }

    fn reinstate_sample(&self, sample: &str) -> Result<bool> {
        self.with(|conn| flow::reinstate_sample(conn, sample))
    }

    /// The tasks page by page, then the tombstones of the same collection, so that a sync
    /// learns of every removed task.
    fn stream(
        &self,
        filter: &TaskFilter,
        page_size: usize,
        f: &mut dyn FnMut(Page) -> Result<ControlFlow<()>>,
    ) -> Result<()> {
        let mut stopped = false;
        super::stream_by_scan(self, filter, page_size, &mut |page| {
            let flow = f(page)?;
            stopped = flow.is_break();
            Ok(flow)
        })?;
        let whole = filter.state.is_none() && filter.sample.is_none() && filter.task_id.is_none();
        if stopped || !whole {
            return Ok(());
        }
        let collection = filter.collection.as_deref();
        self.with(|conn| reads::stream_tombstones(conn, collection, page_size, f))
    }

    /// Every write but a lease extension moves `updated_at`, and tombstones are kept: the
    /// feed answers for all time.
    fn changes_since(&self) -> Result<Option<i64>> {
        Ok(Some(0))
    }

    fn stream_changes(
        &self,
        since: i64,
        collection: Option<&str>,
        page_size: usize,
        f: &mut dyn FnMut(Page) -> Result<ControlFlow<()>>,
    ) -> Result<()> {
        self.with(|conn| reads::stream_changes(conn, since, collection, page_size, f))
    }

    fn read_tasks(&self, keys: &[TaskKey]) -> Result<Vec<Task>> {
        self.with(|conn| {
            let mut found = vec![];
            for k in keys {
                found.extend(rows::get_task(conn, &k.collection, &k.task_id)?);
            }
            Ok(found)
        })
    }

    fn scan(&self, filter: &TaskFilter, after: Option<&TaskKey>, limit: usize) -> Result<Page> {
        self.with(|conn| reads::scan(conn, filter, after, limit))
    }

    fn counts(&self, collection: Option<&str>) -> Result<Vec<StateCount>> {
        self.with(|conn| reads::counts(conn, collection))
    }

    fn count_claimable(&self, collection: &str) -> Result<u64> {
        self.with(|conn| reads::count_claimable(conn, collection))
    }

    fn has_running(&self, collection: &str) -> Result<bool> {
        self.with(|conn| reads::has_running(conn, collection))
    }

    fn describe(&self) -> String {
        format!("sqlite://{}", self.path.display())
    }

    /// The file's absolute path: `tasks.db` here and `../x/tasks.db` there are one store.
    fn identity(&self) -> String {
        let path = std::fs::canonicalize(&self.path).unwrap_or_else(|_| self.path.clone());
        format!("sqlite://{}", path.display())
    }
}

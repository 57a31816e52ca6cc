//! The embedded task store: one SQLite file that many worker processes on one machine share.
//! WAL lets readers run beside the single writer; every claim is a `BEGIN IMMEDIATE`
//! transaction, so two processes can never pick the same task. Never touches the catalog.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::types::{ToSql, Type};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use super::TaskStore;
use super::flow::Refusal;
use crate::clock::now_ms;
use crate::db::{self, OpenMode, Schema};
use crate::error::{Error, Result};
use crate::model::{
    AddOptions, AddReport, Attrs, Claim, ClaimAttempt, Damaged, LastRun, NewTask, Outcome, Page,
    SampleTask, SampleView, Seen, Selector, Skipped, StaleReport, StateCount, Task, TaskFilter,
    TaskKey, TaskState, Tombstone, state_after_run,
};

/// The embedded store's schema: its own application id ("anmT"), so a catalog or a stranger's
/// database is refused instead of being migrated.
const SCHEMA: Schema = Schema {
    what: "task store",
    application_id: 0x616E_6D54,
    migrations: &[
        include_str!("../../migrations/store/0001_tasks.sql"),
        include_str!("../../migrations/store/0002_flow.sql"),
        include_str!("../../migrations/store/0003_tombstones.sql"),
        include_str!("../../migrations/store/0004_runs.sql"),
        include_str!("../../migrations/store/0005_withdrawn.sql"),
        include_str!("../../migrations/store/0006_dropped_samples.sql"),
    ],
    flag: "--store/ANAMO_STORE",
    creator: "`anamo tasks add`",
    // Claims touch a few index pages; the default cache is plenty.
    cache_kib: 2000,
};

const COLUMNS: &str = "collection, task_id, sample, script, attrs, state, attempts, max_attempts, \
    timeout_secs, owner, lease_until, created_at, updated_at, started_at, finished_at, exit_code, \
    log_uri, error_tail, version, after_steps, runs";

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

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves no half-done SQL behind (transactions roll
        // back on drop), so a poisoned lock is still safe to use.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn conversion(idx: usize, message: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, message.into())
}

fn task_from_row(row: &Row<'_>) -> rusqlite::Result<Task> {
    let attrs: String = row.get(4)?;
    let attrs: Attrs =
        serde_json::from_str(&attrs).map_err(|e| conversion(4, format!("attrs: {e}")))?;
    let state: String = row.get(5)?;
    let state: TaskState = state.parse().map_err(|e: String| conversion(5, e))?;
    Ok(Task {
        collection: row.get(0)?,
        task_id: row.get(1)?,
        sample: row.get(2)?,
        script: row.get(3)?,
        attrs,
        state,
        attempts: row.get(6)?,
        max_attempts: row.get(7)?,
        timeout_secs: row.get::<_, Option<i64>>(8)?.map(|v| v.max(0) as u64),
        owner: row.get(9)?,
        lease_until: row.get(10)?,
        created_at: row.get(11)?,
        updated_at: row.get(12)?,
        started_at: row.get(13)?,
        finished_at: row.get(14)?,
        exit_code: row.get(15)?,
        log_uri: row.get(16)?,
        error_tail: row.get(17)?,
        version: row.get(18)?,
        after: after_from(row.get(19)?).map_err(|e| conversion(19, e))?,
        runs: row.get(20)?,
    })
}

/// The upstream steps of a task, from their column (a JSON array; NULL when none).
fn after_from(column: Option<String>) -> std::result::Result<Vec<String>, String> {
    match column {
        None => Ok(vec![]),
        Some(text) => serde_json::from_str(&text).map_err(|e| format!("after_steps: {e}")),
    }
}

/// The column value of a task's upstream steps.
fn after_column(after: &[String]) -> Option<String> {
    (!after.is_empty()).then(|| serde_json::Value::from(after.to_vec()).to_string())
}

/// Every task of `sample`, live and removed (flow.rs decides on them).
fn view_of(conn: &Connection, sample: &str) -> Result<SampleView> {
    let mut view = SampleView::default();
    let mut stmt = conn.prepare_cached(
        "SELECT collection, task_id, state, version, after_steps, created_at, finished_at \
         FROM tasks WHERE sample = ?1",
    )?;
    let mut rows = stmt.query(params![sample])?;
    while let Some(r) = rows.next()? {
        let state: String = r.get(2)?;
        let collection: String = r.get(0)?;
        let task_id: String = r.get(1)?;
        let damaged = |reason: String| Error::Damaged {
            collection: collection.clone(),
            task_id: task_id.clone(),
            reason,
        };
        view.tasks.push(SampleTask {
            state: state.parse().map_err(damaged)?,
            version: r.get(3)?,
            after: after_from(r.get(4)?).map_err(damaged)?,
            created_at: r.get(5)?,
            finished_at: r.get(6)?,
            removed_at: None,
            collection,
            task_id,
        });
    }
    // Tombstones, and an older store's done-marks as removed done tasks of no known id.
    let mut gone = conn.prepare_cached(
        "SELECT collection, task_id, state, created_at, finished_at, removed_at \
         FROM tombstones WHERE sample = ?1 \
         UNION ALL SELECT collection, '', 'done', NULL, NULL, marked_at \
         FROM done_marks WHERE sample = ?1",
    )?;
    let mut rows = gone.query(params![sample])?;
    while let Some(r) = rows.next()? {
        let collection: String = r.get(0)?;
        let task_id: String = r.get(1)?;
        let state = stored_state(&r.get::<_, String>(2)?, &collection, &task_id)?;
        view.tasks.push(SampleTask {
            collection,
            task_id,
            state,
            version: 0,
            after: vec![],
            created_at: r.get(3)?,
            finished_at: r.get(4)?,
            removed_at: Some(r.get(5)?),
        });
    }
    Ok(view)
}

/// A state read back from the store; one that cannot be read is damage to that task.
fn stored_state(text: &str, collection: &str, task_id: &str) -> Result<TaskState> {
    text.parse().map_err(|reason| Error::Damaged {
        collection: collection.to_string(),
        task_id: task_id.to_string(),
        reason,
    })
}

/// The columns `tombstone_from_row` reads, in its order.
const TOMBSTONE_COLUMNS: &str = "collection, task_id, sample, state, created_at, finished_at, \
    removed_at, runs, withdrawn, attempts, owner, started_at, exit_code, log_uri, error_tail";

/// A tombstone from a row of [`TOMBSTONE_COLUMNS`]; a state that cannot be read is damage.
fn tombstone_from_row(r: &Row<'_>) -> Result<Tombstone> {
    let collection: String = r.get(0)?;
    let task_id: String = r.get(1)?;
    let state = stored_state(&r.get::<_, String>(3)?, &collection, &task_id)?;
    Ok(Tombstone {
        collection,
        task_id,
        sample: r.get(2)?,
        state,
        created_at: r.get(4)?,
        finished_at: r.get(5)?,
        removed_at: r.get(6)?,
        runs: r.get(7)?,
        withdrawn: r.get(8)?,
        last_run: LastRun {
            attempts: r.get(9)?,
            owner: r.get(10)?,
            started_at: r.get(11)?,
            exit_code: r.get(12)?,
            log_uri: r.get(13)?,
            error_tail: r.get(14)?,
        },
    })
}

/// The tombstone of one removed task, if the store keeps one.
fn tombstone_of(conn: &Connection, collection: &str, task_id: &str) -> Result<Option<Tombstone>> {
    let sql = format!(
        "SELECT {TOMBSTONE_COLUMNS} FROM tombstones WHERE collection = ?1 AND task_id = ?2"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params![collection, task_id])?;
    match rows.next()? {
        Some(r) => Ok(Some(tombstone_from_row(r)?)),
        None => Ok(None),
    }
}

fn get_task(conn: &Connection, collection: &str, task_id: &str) -> Result<Option<Task>> {
    let sql = format!("SELECT {COLUMNS} FROM tasks WHERE collection = ?1 AND task_id = ?2");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row(params![collection, task_id], task_from_row)
        .optional()?)
}

/// A stale task on its last attempt is not run again: its worker died on it every time.
/// `$scope` picks the collection; it is spelled out (not `?1 IS NULL OR ...`) so that SQLite
/// uses the claim index instead of scanning the table.
macro_rules! fail_exhausted_leases {
    ($scope:literal) => {
        concat!(
            "UPDATE tasks SET state = 'failed', lease_until = NULL, finished_at = ?2, \
             updated_at = ?2, version = version + 1, \
             error_tail = coalesce(error_tail || char(10), '') || 'anamo: the lease of ' || \
             coalesce(owner, '?') || ' expired on the last attempt (worker lost)' \
             WHERE ",
            $scope,
            " AND state = 'running' AND lease_until < ?2 AND attempts >= max_attempts"
        )
    };
}
const FAIL_EXHAUSTED_IN: &str = fail_exhausted_leases!("collection = ?1");
const FAIL_EXHAUSTED_ALL: &str = fail_exhausted_leases!("?1 IS NULL");

/// `cond`'s anonymous `?` parameters numbered from `first` (`?2, ?3, ...`), so that it can sit
/// beside numbered ones.
fn numbered(cond: &str, first: usize) -> String {
    let mut out = String::new();
    let mut next = first;
    for c in cond.chars() {
        if c == '?' {
            out.push_str(&format!("?{next}"));
            next += 1;
        } else {
            out.push(c);
        }
    }
    out
}

/// SQL for a selector within a collection: a condition and its parameters.
fn selector_sql(selector: &Selector) -> (String, Vec<Box<dyn ToSql>>) {
    match selector {
        Selector::All => ("1".into(), vec![]),
        Selector::Sample(s) => ("sample = ?".into(), vec![Box::new(s.clone())]),
        Selector::State(s) => ("state = ?".into(), vec![Box::new(s.as_str())]),
        Selector::Withdrawn(s) => (
            "sample = ? AND state IN ('waiting', 'todo')".into(),
            vec![Box::new(s.clone())],
        ),
        Selector::Ids(ids) => (
            format!("task_id IN ({})", vec!["?"; ids.len()].join(",")),
            ids.iter()
                .map(|i| Box::new(i.clone()) as Box<dyn ToSql>)
                .collect(),
        ),
    }
}

impl TaskStore for SqliteStore {
    fn add_tasks(&self, tasks: &[NewTask], opts: AddOptions) -> Result<AddReport> {
        let result = (|| -> Result<AddReport> {
            let mut conn = self.conn();
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let now = now_ms();
            let mut report = AddReport::default();
            // Written first as `waiting` when they wait for a step, then each is set against
            // its sample's tasks, so an upstream task later in the same batch counts.
            let mut flowing = vec![];
            {
                let mut exists = tx.prepare_cached(
                    "SELECT state FROM tasks WHERE collection = ?1 AND task_id = ?2",
                )?;
                let mut insert = tx.prepare_cached(
                    "INSERT INTO tasks (collection, task_id, sample, script, attrs, state, \
                     max_attempts, timeout_secs, created_at, updated_at, after_steps) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?9, ?6, ?7, ?8, ?8, ?10) \
                     ON CONFLICT (collection, task_id) DO NOTHING",
                )?;
                // Replacing resets the task; a worker still holding it loses its claim, because
                // the version moves on.
                let mut overwrite = tx.prepare_cached(
                    "UPDATE tasks SET sample = ?3, script = ?4, attrs = ?5, state = ?9, \
                     max_attempts = ?6, timeout_secs = ?7, attempts = 0, owner = NULL, \
                     lease_until = NULL, started_at = NULL, finished_at = NULL, exit_code = NULL, \
                     log_uri = NULL, error_tail = NULL, updated_at = ?8, version = version + 1, \
                     after_steps = ?10 \
                     WHERE collection = ?1 AND task_id = ?2",
                )?;
                let mut forget = tx.prepare_cached(
                    "DELETE FROM tombstones WHERE collection = ?1 AND task_id = ?2",
                )?;
                let mut dropped =
                    tx.prepare_cached("SELECT dropped_at FROM dropped_samples WHERE sample = ?1")?;
                let mut renumber = tx.prepare_cached(
                    "UPDATE tasks SET runs = ?3 WHERE collection = ?1 AND task_id = ?2",
                )?;
                for t in tasks {
                    let attrs = serde_json::to_string(&t.attrs)
                        .map_err(|e| Error::Invalid(format!("attributes of {}: {e}", t.task_id)))?;
                    let state = if t.after.is_empty() {
                        TaskState::Todo
                    } else {
                        TaskState::Waiting
                    };
                    let values = params![
                        t.collection,
                        t.task_id,
                        t.sample,
                        t.script,
                        attrs,
                        t.max_attempts,
                        t.timeout_secs.map(|v| v.min(i64::MAX as u64) as i64),
                        now,
                        state.as_str(),
                        after_column(&t.after),
                    ];
                    let present: Option<String> = exists
                        .query_row(params![t.collection, t.task_id], |r| r.get(0))
                        .optional()?;
                    let present: Option<TaskState> = match present {
                        Some(state) => Some(stored_state(&state, &t.collection, &t.task_id)?),
                        None => None,
                    };
                    let gone = match present {
                        Some(_) => None,
                        None => tombstone_of(&tx, &t.collection, &t.task_id)?,
                    };
                    // A dropped sample's tasks are not added, whatever --replace says.
                    let dropped_at: Option<i64> = match &t.sample {
                        Some(s) => dropped.query_row(params![s], |r| r.get(0)).optional()?,
                        None => None,
                    };
                    if let Some(at) = dropped_at {
                        report.skipped.push(Skipped {
                            collection: t.collection.clone(),
                            task_id: t.task_id.clone(),
                            seen: Seen::SampleDropped { at },
                        });
                        continue;
                    }
                    match (present, gone) {
                        (Some(_), _) if opts.replace => {
                            overwrite.execute(values)?;
                            report.replaced += 1;
                        }
                        (Some(state), _) => {
                            report.skipped.push(Skipped {
                                collection: t.collection.clone(),
                                task_id: t.task_id.clone(),
                                seen: Seen::Present(state),
                            });
                            continue;
                        }
                        // Asked for, or withdrawn with its sample: live again. Its tombstone
                        // goes, so the flow sees it once, and its runs number on.
                        (None, Some(g)) if opts.replace || g.withdrawn => {
                            forget.execute(params![t.collection, t.task_id])?;
                            insert.execute(values)?;
                            renumber.execute(params![t.collection, t.task_id, g.runs])?;
                            report.added += 1;
                        }
                        (None, Some(g)) => {
                            report.skipped.push(Skipped {
                                collection: t.collection.clone(),
                                task_id: t.task_id.clone(),
                                seen: Seen::Removed {
                                    state: g.state,
                                    at: g.removed_at,
                                },
                            });
                            continue;
                        }
                        (None, None) => {
                            insert.execute(values)?;
                            report.added += 1;
                        }
                    }
                    if state == TaskState::Waiting {
                        flowing.push(t);
                    }
                }
            }
            let mut missing = vec![];
            for t in flowing {
                let Some(sample) = &t.sample else { continue };
                let view = view_of(&tx, sample)?;
                match super::flow::initial_state(&view, t) {
                    Ok(TaskState::Todo) => {
                        tx.prepare_cached(
                            "UPDATE tasks SET state = 'todo' \
                             WHERE collection = ?1 AND task_id = ?2 AND state = 'waiting'",
                        )?
                        .execute(params![t.collection, t.task_id])?;
                    }
                    Ok(_) => {
                        report.waiting += 1;
                        report.blocked += super::flow::blocked_now(&view, t) as u64;
                    }
                    Err(refusal) => {
                        report.waiting += 1;
                        missing.push((t, refusal));
                    }
                }
            }
            // A loop is never allowed; a missing upstream on request. Dropping `tx` rolls the
            // whole batch back.
            missing.sort_by_key(|(_, r)| !matches!(r, Refusal::Loop(_)));
            if let Some((t, refusal)) = missing
                .iter()
                .find(|(_, r)| !opts.allow_missing_upstream || matches!(r, Refusal::Loop(_)))
            {
                let alike = missing.iter().filter(|(_, r)| r == refusal).count();
                let step = match refusal {
                    Refusal::Missing(s) | Refusal::Loop(s) => s,
                };
                let exists: bool = tx.query_row(
                    "SELECT EXISTS (SELECT 1 FROM tasks WHERE collection = ?1) \
                     OR EXISTS (SELECT 1 FROM tombstones WHERE collection = ?1) \
                     OR EXISTS (SELECT 1 FROM done_marks WHERE collection = ?1)",
                    params![step],
                    |r| r.get(0),
                )?;
                return Err(super::flow::refused(t, refusal, alike, exists));
            }
            tx.commit()?;
            Ok(report)
        })();
        crate::error::in_db(result, "task store", &self.path)
    }

    /// One IMMEDIATE transaction: it cannot lose a race, so it never answers `Contended`.
    fn try_claim(&self, collection: &str, owner: &str, lease: Duration) -> Result<ClaimAttempt> {
        let result = (|| -> Result<ClaimAttempt> {
            let mut conn = self.conn();
            let now = now_ms();
            let until = now + lease.as_millis() as i64;
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.prepare_cached(FAIL_EXHAUSTED_IN)?
                .execute(params![collection, now])?;
            let todo = tx
                .prepare_cached(
                    "SELECT task_id, version FROM tasks WHERE collection = ?1 AND state = 'todo' LIMIT 1",
                )?
                .query_row(params![collection], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
                .optional()?;
            let candidate = match todo {
                Some(c) => Some(c),
                None => tx
                    .prepare_cached(
                        "SELECT task_id, version FROM tasks WHERE collection = ?1 \
                         AND state = 'running' AND lease_until < ?2 LIMIT 1",
                    )?
                    .query_row(params![collection, now], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?,
            };
            let Some((task_id, version)) = candidate else {
                tx.commit()?;
                return Ok(ClaimAttempt::Empty);
            };
            let won = tx
                .prepare_cached(
                    "UPDATE tasks SET state = 'running', owner = ?3, lease_until = ?4, \
                     attempts = attempts + 1, runs = runs + 1, started_at = ?5, finished_at = NULL, \
                     exit_code = NULL, \
                     updated_at = ?5, version = version + 1 \
                     WHERE collection = ?1 AND task_id = ?2 AND version = ?6",
                )?
                .execute(params![collection, task_id, owner, until, now, version])?;
            let task = if won == 1 {
                get_task(&tx, collection, &task_id)?
            } else {
                None
            };
            tx.commit()?;
            Ok(task.map_or(ClaimAttempt::Empty, |task| {
                ClaimAttempt::Claimed(Claim { task })
            }))
        })();
        crate::error::in_db(result, "task store", &self.path)
    }

    fn heartbeat(&self, claim: &mut Claim, lease: Duration) -> Result<bool> {
        let result = (|| -> Result<bool> {
            let conn = self.conn();
            let now = now_ms();
            let until = now + lease.as_millis() as i64;
            let t = &claim.task;
            let n = conn
                .prepare_cached(
                    "UPDATE tasks SET lease_until = ?5, updated_at = ?6, version = version + 1 \
                     WHERE collection = ?1 AND task_id = ?2 AND owner = ?3 AND version = ?4 \
                     AND state = 'running'",
                )?
                .execute(params![
                    t.collection,
                    t.task_id,
                    claim.owner(),
                    t.version,
                    until,
                    now
                ])?;
            if n == 1 {
                claim.task.version += 1;
                claim.task.lease_until = Some(until);
                claim.task.updated_at = now;
            }
            Ok(n == 1)
        })();

        crate::error::in_db(result, "task store", &self.path)
    }

    fn finish(&self, claim: &Claim, outcome: &Outcome) -> Result<Option<TaskState>> {
        let result = (|| -> Result<Option<TaskState>> {
            let conn = self.conn();
            let t = &claim.task;
            let state = state_after_run(outcome.succeeded, t.attempts, t.max_attempts);
            let n = conn
                .prepare_cached(
                    "UPDATE tasks SET state = ?5, lease_until = NULL, finished_at = ?6, \
                     exit_code = ?7, error_tail = ?8, log_uri = ?9, updated_at = ?6, \
                     version = version + 1 \
                     WHERE collection = ?1 AND task_id = ?2 AND owner = ?3 AND version = ?4 \
                     AND state = 'running'",
                )?
                .execute(params![
                    t.collection,
                    t.task_id,
                    claim.owner(),
                    t.version,
                    state.as_str(),
                    outcome.finished_at,
                    outcome.exit_code,
                    outcome.error_tail,
                    outcome.log_uri
                ])?;
            Ok((n == 1).then_some(state))
        })();

        crate::error::in_db(result, "task store", &self.path)
    }

    fn release(&self, claim: &Claim) -> Result<bool> {
        let result = (|| -> Result<bool> {
            let conn = self.conn();
            let t = &claim.task;
            let n = conn
                .prepare_cached(
                    "UPDATE tasks SET state = 'todo', lease_until = NULL, \
                     attempts = max(attempts - 1, 0), updated_at = ?5, version = version + 1 \
                     WHERE collection = ?1 AND task_id = ?2 AND owner = ?3 AND version = ?4 \
                     AND state = 'running'",
                )?
                .execute(params![
                    t.collection,
                    t.task_id,
                    claim.owner(),
                    t.version,
                    now_ms()
                ])?;
            Ok(n == 1)
        })();

        crate::error::in_db(result, "task store", &self.path)
    }

    fn release_stale(&self, collection: Option<&str>) -> Result<StaleReport> {
        let result = (|| -> Result<StaleReport> {
            let mut conn = self.conn();
            let now = now_ms();
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let scope = if collection.is_some() {
                "collection = ?1"
            } else {
                "?1 IS NULL"
            };
            let fail = if collection.is_some() {
                FAIL_EXHAUSTED_IN
            } else {
                FAIL_EXHAUSTED_ALL
            };
            let failed = tx.execute(fail, params![collection, now])? as u64;
            let released = tx.execute(
                &format!(
                    "UPDATE tasks SET state = 'todo', lease_until = NULL, updated_at = ?2, \
                     version = version + 1 \
                     WHERE {scope} AND state = 'running' AND lease_until < ?2"
                ),
                params![collection, now],
            )? as u64;
            tx.commit()?;
            Ok(StaleReport { released, failed })
        })();

        crate::error::in_db(result, "task store", &self.path)
    }

    fn retry(&self, collection: &str, selector: &Selector) -> Result<u64> {
        let result = (|| -> Result<u64> {
            if let Selector::State(s) = selector
                && *s != TaskState::Failed
            {
                return Err(Error::Invalid(format!(
                    "only failed tasks can be retried, not {s} ones"
                )));
            }
            let (cond, args) = selector_sql(selector);
            let sql = format!(
                "UPDATE tasks SET state = 'todo', attempts = 0, owner = NULL, lease_until = NULL, \
                 exit_code = NULL, finished_at = NULL, updated_at = ?, version = version + 1 \
                 WHERE collection = ? AND state = 'failed' AND {cond}"
            );
            let mut all: Vec<&dyn ToSql> = vec![];
            let now = now_ms();
            all.push(&now);
            all.push(&collection);
            all.extend(args.iter().map(|a| a.as_ref()));
            let conn = self.conn();
            Ok(conn.execute(&sql, all.as_slice())? as u64)
        })();

        crate::error::in_db(result, "task store", &self.path)
    }

    fn delete(&self, collection: &str, selector: &Selector) -> Result<u64> {
        let result = (|| -> Result<u64> {
            let (cond, args) = selector_sql(selector);
            let mut all: Vec<&dyn ToSql> = vec![&collection];
            all.extend(args.iter().map(|a| a.as_ref()));
            let mut conn = self.conn();
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            // Every removed task leaves its tombstone, so what waits on it is still judged by
            // the one rule and a later add does not bring it back in silence.
            let now = now_ms();
            let mut marked = all.clone();
            marked.push(&now);
            tx.execute(
                &format!(
                    "INSERT OR REPLACE INTO tombstones \
                     (collection, task_id, sample, state, created_at, finished_at, removed_at, \
                     runs, withdrawn, attempts, owner, started_at, exit_code, log_uri, error_tail) \
                     SELECT collection, task_id, sample, state, created_at, finished_at, ?{}, runs, \
                     {}, attempts, owner, started_at, exit_code, log_uri, error_tail \
                     FROM tasks WHERE collection = ?1 AND {}",
                    marked.len(),
                    matches!(selector, Selector::Withdrawn(_)) as i32,
                    numbered(&cond, 2)
                ),
                marked.as_slice(),
            )?;
            let n = tx.execute(
                &format!("DELETE FROM tasks WHERE collection = ? AND {cond}"),
                all.as_slice(),
            )? as u64;
            tx.commit()?;
            Ok(n)
        })();

        crate::error::in_db(result, "task store", &self.path)
    }

    fn sample_view(&self, sample: &str) -> Result<SampleView> {
        let result = view_of(&self.conn(), sample);
        crate::error::in_db(result, "task store", &self.path)
    }

    fn waiting_samples(&self, collection: Option<&str>) -> Result<Vec<String>> {
        let result = (|| -> Result<Vec<String>> {
            let conn = self.conn();
            let mut stmt = conn.prepare_cached(
                "SELECT DISTINCT sample FROM tasks WHERE state = 'waiting' \
                 AND (?1 IS NULL OR collection = ?1) AND sample IS NOT NULL",
            )?;
            let samples = stmt
                .query_map(params![collection], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            Ok(samples)
        })();
        crate::error::in_db(result, "task store", &self.path)
    }

    fn promote_task(&self, collection: &str, task_id: &str, version: i64) -> Result<bool> {
        let result = (|| -> Result<bool> {
            let n = self
                .conn()
                .prepare_cached(
                    "UPDATE tasks SET state = 'todo', updated_at = ?4, version = version + 1 \
                     WHERE collection = ?1 AND task_id = ?2 AND version = ?3 \
                     AND state = 'waiting'",
                )?
                .execute(params![collection, task_id, version, now_ms()])?;
            Ok(n == 1)
        })();
        crate::error::in_db(result, "task store", &self.path)
    }

    fn get(&self, collection: &str, task_id: &str) -> Result<Option<Task>> {
        let result = get_task(&self.conn(), collection, task_id);

        crate::error::in_db(result, "task store", &self.path)
    }

    fn tombstone(&self, collection: &str, task_id: &str) -> Result<Option<Tombstone>> {
        let result = tombstone_of(&self.conn(), collection, task_id);
        crate::error::in_db(result, "task store", &self.path)
    }

    fn drop_sample(&self, sample: &str, reason: &str) -> Result<()> {
        let result = self
            .conn()
            .execute(
                "INSERT INTO dropped_samples (sample, dropped_at, reason) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (sample) DO NOTHING",
                params![sample, now_ms(), reason],
            )
            .map(|_| ())
            .map_err(Error::from);
        crate::error::in_db(result, "task store", &self.path)
    }

    fn reinstate_sample(&self, sample: &str) -> Result<bool> {
        let result = self
            .conn()
            .execute(
                "DELETE FROM dropped_samples WHERE sample = ?1",
                params![sample],
            )
            .map(|n| n > 0)
            .map_err(Error::from);
        crate::error::in_db(result, "task store", &self.path)
    }

    /// The tasks page by page, then the tombstones of the same collection (all of them: they
    /// are small), so that a sync learns of every removed task.
    fn stream(
        &self,
        filter: &TaskFilter,
        page_size: usize,
        f: &mut dyn FnMut(Page) -> Result<std::ops::ControlFlow<()>>,
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
        // Streamed a page at a time, never the whole table in memory.
        let result = (|| -> Result<()> {
            let conn = self.conn();
            let sql = format!(
                "SELECT {TOMBSTONE_COLUMNS} FROM tombstones WHERE ?1 IS NULL OR collection = ?1"
            );
            let mut stmt = conn.prepare(&sql)?;
            let mut rows = stmt.query(params![filter.collection])?;
            let mut page = Page::default();
            while let Some(r) = rows.next()? {
                page.removed.push(tombstone_from_row(r)?);
                if page.removed.len() >= page_size.max(1)
                    && f(std::mem::take(&mut page))?.is_break()
                {
                    return Ok(());
                }
            }
            if !page.removed.is_empty() {
                let _ = f(page)?;
            }
            Ok(())
        })();
        crate::error::in_db(result, "task store", &self.path)
    }

    fn scan(&self, filter: &TaskFilter, after: Option<&TaskKey>, limit: usize) -> Result<Page> {
        let result = (|| -> Result<Page> {
            let mut conds: Vec<&str> = vec![];
            let mut args: Vec<&dyn ToSql> = vec![];
            if let Some(c) = &filter.collection {
                conds.push("collection = ?");
                args.push(c);
            }
            let state = filter.state.map(TaskState::as_str);
            if let Some(s) = &state {
                conds.push("state = ?");
                args.push(s);
            }
            if let Some(s) = &filter.sample {
                conds.push("sample = ?");
                args.push(s);
            }
            if let Some(id) = &filter.task_id {
                conds.push("task_id = ?");
                args.push(id);
            }
            if let Some(k) = after {
                conds.push("(collection, task_id) > (?, ?)");
                args.push(&k.collection);
                args.push(&k.task_id);
            }
            let limit = limit as i64;
            args.push(&limit);
            let cond = if conds.is_empty() {
                "1".to_string()
            } else {
                conds.join(" AND ")
            };
            let sql = format!(
                "SELECT {COLUMNS} FROM tasks WHERE {cond} ORDER BY collection, task_id LIMIT ?"
            );
            let conn = self.conn();
            let mut stmt = conn.prepare_cached(&sql)?;
            let mut rows = stmt.query(args.as_slice())?;
            let mut page = Page::default();
            let mut read = 0;
            let mut last = None;
            while let Some(row) = rows.next()? {
                read += 1;
                let key = TaskKey {
                    collection: row.get(0)?,
                    task_id: row.get(1)?,
                };
                match task_from_row(row) {
                    Ok(task) => page.tasks.push(task),
                    Err(e) => page.damaged.push(Damaged {
                        key: format!("{}/{}", key.collection, key.task_id),
                        reason: e.to_string(),
                    }),
                }
                last = Some(key);
            }
            if read == limit {
                page.next = last;
            }
            Ok(page)
        })();

        crate::error::in_db(result, "task store", &self.path)
    }

    fn counts(&self, collection: Option<&str>) -> Result<Vec<StateCount>> {
        let result = (|| -> Result<Vec<StateCount>> {
            let conn = self.conn();
            let mut stmt = conn.prepare_cached(
                "SELECT collection, state, count(*) FROM tasks WHERE (?1 IS NULL OR collection = ?1) \
                 GROUP BY collection, state ORDER BY collection, state",
            )?;
            let rows = stmt.query_map(params![collection], |r| {
                let state: String = r.get(1)?;
                Ok(StateCount {
                    collection: r.get(0)?,
                    state: state.parse().map_err(|e: String| conversion(1, e))?,
                    count: r.get::<_, i64>(2)? as u64,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })();

        crate::error::in_db(result, "task store", &self.path)
    }

    fn count_claimable(&self, collection: &str) -> Result<u64> {
        let result = (|| -> Result<u64> {
            let n: i64 = self
                .conn()
                .prepare_cached(
                    "SELECT count(*) FROM tasks WHERE collection = ?1 \
                 AND (state = 'todo' OR (state = 'running' AND lease_until < ?2))",
                )?
                .query_row(params![collection, now_ms()], |r| r.get(0))?;
            Ok(n as u64)
        })();

        crate::error::in_db(result, "task store", &self.path)
    }

    fn has_running(&self, collection: &str) -> Result<bool> {
        let result = (|| -> Result<bool> {
            Ok(self
                .conn()
                .prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM tasks WHERE collection = ?1 \
                     AND state = 'running' AND lease_until >= ?2)",
                )?
                .query_row(params![collection, now_ms()], |r| r.get(0))?)
        })();
        crate::error::in_db(result, "task store", &self.path)
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

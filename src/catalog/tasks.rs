//! Writing tasks seen in the store into the catalog: insert new ones, update changed ones,
//! record first sightings and state changes in `task_events`, and mark tasks gone from a complete scan as removed
//! (never delete them). Plain single-row statements: no triggers, no UPSERT, so SQLite needs no
//! statement journal and a batch costs little more than its rows.

use rusqlite::{OptionalExtension, params};

use super::reported::{self, RunReport};
use super::runs::SyncRun;
use super::{Catalog, CatalogRead};
use crate::error::Result;
use crate::model::{Task, TaskKey, Tombstone};

/// `from_state` of a task's first event: the catalog had not seen it before.
pub const UNSEEN: &str = "unseen";

/// Writes one sync run's tasks.
pub struct TaskWriter<'c> {
    catalog: &'c mut Catalog,
    run: SyncRun,
    /// The catalog had no task in scope when the run began: every task is new, so the
    /// per-task lookup is skipped (a first sync of a big store is twice as common as it sounds:
    /// every new study starts with one).
    fresh: bool,
}

/// What a batch changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchCounts {
    pub new: u64,
    /// Tasks whose state changed since the catalog last saw them.
    pub changed: u64,
}

const FIELDS: &str = "sample = ?3, script = ?4, attrs = ?5, state = ?6, attempts = ?7, \
    max_attempts = ?8, timeout_secs = ?9, owner = ?10, lease_until = ?11, created_at = ?12, \
    updated_at = ?13, started_at = ?14, finished_at = ?15, exit_code = ?16, log_uri = ?17, \
    error_tail = ?18, version = ?19, last_seen_at = ?20, removed_at = NULL, after_steps = ?21, \
    runs = ?22, reported = ?23, require = ?24, gate_note = ?25";

impl Catalog {
    /// After a complete scan by `run`: tasks it did not see are gone from the store.
    pub fn mark_removed(&mut self, run: &SyncRun, collection: Option<&str>) -> Result<u64> {
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE tasks SET removed_at = ?1 WHERE removed_at IS NULL AND last_seen_at < ?1 \
                 AND (?2 IS NULL OR collection = ?2)",
                params![run.started_at, collection],
            )?;
            Ok(n as u64)
        })
    }

    /// Marks these tasks removed from the store now (they were deleted on purpose); a later
    /// sync that sees one of them again clears the mark.
    pub fn mark_tasks_removed(&mut self, keys: &[TaskKey]) -> Result<u64> {
        self.write(|tx| {
            let mut n = 0;
            {
                let mut mark = tx.prepare_cached(
                    "UPDATE tasks SET removed_at = ?3 \
                     WHERE collection = ?1 AND task_id = ?2 AND removed_at IS NULL",
                )?;
                let now = crate::clock::now_ms();
                for k in keys {
                    n += mark.execute(params![k.collection, k.task_id, now])? as u64;
                }
            }
            Ok(n)
        })
    }

    /// A writer for `run`; `collection` is the scope of the scan (all when `None`).
    pub fn task_writer(
        &mut self,
        run: &SyncRun,
        collection: Option<&str>,
    ) -> Result<TaskWriter<'_>> {
        let any = self.read(|conn| {
            Ok(conn.query_row(
                "SELECT EXISTS (SELECT 1 FROM tasks WHERE ?1 IS NULL OR collection = ?1)",
                params![collection],
                |r| r.get::<_, bool>(0),
            )?)
        })?;
        Ok(TaskWriter {
            catalog: self,
            run: run.clone(),
            fresh: !any,
        })
    }
}

impl TaskWriter<'_> {
    /// Writes what the store's tombstones tell of removed tasks, in one transaction: a task the
    /// catalog never saw (added and removed between syncs, or from another machine) is recorded
    /// removed, with its last state; one it thought live takes the tombstone's state and
    /// removal. A removal the catalog recorded itself (`tasks delete`) is left as it is.
    /// Returns how many rows it wrote.
    pub fn write_tombstones(&mut self, removed: &[Tombstone]) -> Result<u64> {
        self.catalog.write(|tx| {
            let seen_at = self.run.started_at;
            let run_id = self.run.id;
            let mut n = 0;
            {
                let mut upsert = tx.prepare_cached(
                    "INSERT INTO tasks (collection, task_id, sample, state, attempts, created_at, \
                     updated_at, finished_at, first_seen_at, last_seen_at, removed_at, runs, \
                     owner, started_at, exit_code, log_uri, error_tail, reported) \
                     VALUES (?1, ?2, ?3, ?4, ?10, ?5, ?7, ?6, ?8, ?8, ?7, ?9, ?11, ?12, ?13, ?14, \
                     ?15, ?16) \
                     ON CONFLICT (collection, task_id) DO UPDATE SET state = excluded.state, \
                     finished_at = coalesce(excluded.finished_at, finished_at), \
                     runs = max(coalesce(runs, 0), excluded.runs), removed_at = excluded.removed_at, \
                     attempts = excluded.attempts, owner = coalesce(excluded.owner, owner), \
                     started_at = coalesce(excluded.started_at, started_at), \
                     exit_code = coalesce(excluded.exit_code, exit_code), \
                     log_uri = coalesce(excluded.log_uri, log_uri), \
                     error_tail = coalesce(excluded.error_tail, error_tail), \
                     reported = coalesce(excluded.reported, reported) \
                     WHERE removed_at IS NULL",
                )?;
                let mut event = tx.prepare_cached(
                    "INSERT INTO task_events (collection, task_id, at, from_state, to_state, \
                     attempts, source, sync_run, run) \
                     SELECT ?1, ?2, ?3, ?4, ?5, 0, 'sync', ?6, ?7 \
                     WHERE NOT EXISTS (SELECT 1 FROM task_events \
                                       WHERE collection = ?1 AND task_id = ?2 AND to_state = ?5)",
                )?;
                for t in removed {
                    let wrote = upsert.execute(params![
                        t.collection,
                        t.task_id,
                        t.sample,
                        t.state.as_str(),
                        t.created_at,
                        t.finished_at,
                        t.removed_at,
                        seen_at,
                        t.runs,
                        t.last_run.attempts,
                        t.last_run.owner,
                        t.last_run.started_at,
                        t.last_run.exit_code,
                        t.last_run.log_uri,
                        t.last_run.error_tail,
                        t.last_run.reported.to_json()
                    ])?;
                    if wrote > 0 {
                        n += 1;
                        reported::write(tx, &RunReport::of_tombstone(t))?;
                        event.execute(params![
                            t.collection,
                            t.task_id,
                            t.finished_at.unwrap_or(t.removed_at),
                            UNSEEN,
                            t.state.as_str(),
                            run_id,
                            t.runs
                        ])?;
                    }
                }
            }
            Ok(n)
        })
    }

    /// Writes a batch in one transaction: all of it lands, or none.
    pub fn write_batch(&mut self, tasks: &[Task]) -> Result<BatchCounts> {
        self.catalog.write(|tx| {
            let seen_at = self.run.started_at;
            let run_id = self.run.id;
            let mut counts = BatchCounts::default();
            {
                let mut lookup = tx.prepare_cached(
                    "SELECT state, version, removed_at IS NOT NULL, updated_at FROM tasks \
                     WHERE collection = ?1 AND task_id = ?2",
                )?;
                let mut insert = tx.prepare_cached(
                    "INSERT INTO tasks (collection, task_id, sample, script, attrs, state, attempts, \
                     max_attempts, timeout_secs, owner, lease_until, created_at, updated_at, \
                     started_at, finished_at, exit_code, log_uri, error_tail, version, \
                     first_seen_at, last_seen_at, after_steps, runs, reported, require, \
                     gate_note) VALUES (?1, ?2, ?3, ?4, ?5, \
                     ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?20, \
                     ?21, ?22, ?23, ?24, ?25)",
                )?;
                let mut update = tx.prepare_cached(&format!(
                    "UPDATE tasks SET {FIELDS} WHERE collection = ?1 AND task_id = ?2"
                ))?;
                let mut touch = tx.prepare_cached(
                    "UPDATE tasks SET last_seen_at = ?3 WHERE collection = ?1 AND task_id = ?2",
                )?;
                let mut event = tx.prepare_cached(
                    "INSERT INTO task_events (collection, task_id, at, from_state, to_state, \
                     attempts, owner, exit_code, source, sync_run, run) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'sync', ?9, ?10)",
                )?;
                for t in tasks {
                    // A row written from a tombstone has no version.
                    let known: Option<(String, Option<i64>, bool, i64)> = if self.fresh {
                        None
                    } else {
                        lookup
                            .query_row(params![t.collection, t.task_id], |r| {
                                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                            })
                            .optional()?
                    };
                    // A task deleted and added again starts at its first version: its
                    // `updated_at` tells the two apart.
                    let unchanged = known.as_ref().is_some_and(|(state, version, removed, at)| {
                        state == t.state.as_str()
                            && *version == Some(t.version)
                            && *at == t.updated_at
                            && !removed
                    });
                    if unchanged {
                        touch.execute(params![t.collection, t.task_id, seen_at])?;
                        continue;
                    }
                    let attrs = serde_json::to_string(&t.attrs).unwrap_or_else(|_| "{}".into());
                    let after = (!t.after.is_empty())
                        .then(|| serde_json::Value::from(t.after.clone()).to_string());
                    let require = (!t.require.is_empty())
                        .then(|| serde_json::Value::from(t.require.clone()).to_string());
                    let values = params![
                        t.collection,
                        t.task_id,
                        t.sample,
                        t.script,
                        attrs,
                        t.state.as_str(),
                        t.attempts,
                        t.max_attempts,
                        t.timeout_secs.map(|v| v as i64),
                        t.owner,
                        t.lease_until,
                        t.created_at,
                        t.updated_at,
                        t.started_at,
                        t.finished_at,
                        t.exit_code,
                        t.log_uri,
                        t.error_tail,
                        t.version,
                        seen_at,
                        after,
                        t.runs,
                        t.reported.to_json(),
                        require,
                        t.gate_note
                    ];
                    // The event to record: a first sighting, or a change of state.
                    let from_state = match known {
                        None => {
                            insert.execute(values)?;
                            counts.new += 1;
                            // The first sighting is history too: a task first seen done (or
                            // failed after retries) still shows when and where it got there.
                            Some(UNSEEN.to_string())
                        }
                        Some((old_state, ..)) => {
                            update.execute(values)?;
                            (old_state != t.state.as_str()).then(|| {
                                counts.changed += 1;
                                old_state
                            })
                        }
                    };
                    reported::write(tx, &RunReport::of_task(t))?;
                    if let Some(from_state) = from_state {
                        event.execute(params![
                            t.collection,
                            t.task_id,
                            t.updated_at,
                            from_state,
                            t.state.as_str(),
                            t.attempts,
                            t.owner,
                            t.exit_code,
                            run_id,
                            t.runs
                        ])?;
                    }
                }
            }
            Ok(counts)
        })
    }
}

impl CatalogRead {
    /// The tasks among `keys` that the catalog saw removed from the store, in any state: adding
    /// one again would run it again and overwrite its history at the next sync.
    pub fn removed_in_history(
        &self,
        keys: &[TaskKey],
    ) -> Result<std::collections::HashMap<TaskKey, Removed>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT state, removed_at, progress, \
                    (SELECT r.task_id FROM tasks r INDEXED BY tasks_by_sample \
                     WHERE p.progress = 'superseded' AND r.sample = p.sample \
                       AND r.collection = p.collection AND r.state = 'done' \
                       AND r.task_id <> p.task_id \
                       AND r.created_at >= coalesce(p.finished_at, p.updated_at) \
                     ORDER BY r.created_at LIMIT 1) \
             FROM task_progress p \
             WHERE collection = ?1 AND task_id = ?2 AND removed_at IS NOT NULL",
            )?;
            let mut found = std::collections::HashMap::new();
            for k in keys {
                let row = stmt
                    .query_row(params![k.collection, k.task_id], |r| {
                        Ok(Removed {
                            state: r.get(0)?,
                            at: r.get(1)?,
                            superseded_by: r.get(3)?,
                        })
                    })
                    .optional()?;
                if let Some(removed) = row {
                    found.insert(k.clone(), removed);
                }
            }
            Ok(found)
        })
    }
}

/// A task the catalog saw removed from the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    /// Its state when last seen.
    pub state: String,
    pub at: i64,
    /// The done task that replaced it, when it failed and was replaced.
    pub superseded_by: Option<String>,
}

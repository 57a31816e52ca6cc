//! Writes over many tasks at once: add (with replace, tombstones and dropped samples), retry
//! and delete by selector. Each runs in the caller's IMMEDIATE transaction, so a refused add
//! leaves nothing behind.

use rusqlite::types::ToSql;
use rusqlite::{CachedStatement, Connection, OptionalExtension, params};

use super::flow::view_of;
use super::rows::{after_column, stored_state, tombstone_of};
use crate::clock::now_ms;
use crate::error::{Error, Result};
use crate::model::{AddOptions, AddReport, NewTask, Seen, Selector, Skipped, TaskState};
use crate::store::flow::{self, Refusal};

/// Adds `tasks`: written first as `waiting` when they wait for a step, then each is set
/// against its sample's tasks, so an upstream task later in the same batch counts.
pub(super) fn add_tasks(tx: &Connection, tasks: &[NewTask], opts: AddOptions) -> Result<AddReport> {
    let now = now_ms();
    let mut report = AddReport::default();
    let mut flowing = vec![];
    {
        let mut adder = Adder::prepare(tx)?;
        for t in tasks {
            if adder.put(t, opts, now, &mut report)? && !t.after.is_empty() {
                flowing.push(t);
            }
        }
    }
    settle_flowing(tx, flowing, opts, &mut report)?;
    Ok(report)
}

/// The statements an add runs for each task, prepared once.
struct Adder<'c> {
    tx: &'c Connection,
    exists: CachedStatement<'c>,
    insert: CachedStatement<'c>,
    overwrite: CachedStatement<'c>,
    forget: CachedStatement<'c>,
    dropped: CachedStatement<'c>,
    renumber: CachedStatement<'c>,
}

impl<'c> Adder<'c> {
    fn prepare(tx: &'c Connection) -> Result<Self> {
        Ok(Self {
            tx,
            exists: tx
                .prepare_cached("SELECT state FROM tasks WHERE collection = ?1 AND task_id = ?2")?,
            insert: tx.prepare_cached(
                "INSERT INTO tasks (collection, task_id, sample, script, attrs, state, \
                 max_attempts, timeout_secs, created_at, updated_at, after_steps, require) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?9, ?6, ?7, ?8, ?8, ?10, ?11) \
                 ON CONFLICT (collection, task_id) DO NOTHING",
            )?,
            // Replacing resets the task; a worker still holding it loses its claim, because
            // the version moves on.
            overwrite: tx.prepare_cached(
                "UPDATE tasks SET sample = ?3, script = ?4, attrs = ?5, state = ?9, \
                 max_attempts = ?6, timeout_secs = ?7, attempts = 0, owner = NULL, \
                 lease_until = NULL, started_at = NULL, finished_at = NULL, exit_code = NULL, \
                 log_uri = NULL, error_tail = NULL, reported = NULL, updated_at = ?8, \
                 version = version + 1, \
                 after_steps = ?10, require = ?11, gate_note = NULL \
                 WHERE collection = ?1 AND task_id = ?2",
            )?,
            forget: tx
                .prepare_cached("DELETE FROM tombstones WHERE collection = ?1 AND task_id = ?2")?,
            dropped: tx
                .prepare_cached("SELECT dropped_at FROM dropped_samples WHERE sample = ?1")?,
            renumber: tx.prepare_cached(
                "UPDATE tasks SET runs = ?3 WHERE collection = ?1 AND task_id = ?2",
            )?,
        })
    }

    /// Writes one task, or counts why not; true when it was written.
    fn put(
        &mut self,
        t: &NewTask,
        opts: AddOptions,
        now: i64,
        report: &mut AddReport,
    ) -> Result<bool> {
        let attrs = serde_json::to_string(&t.attrs)
            .map_err(|e| Error::Internal(format!("attributes of {}: {e}", t.task_id)))?;
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
            after_column(&t.require),
        ];
        let skip = |seen| Skipped {
            collection: t.collection.clone(),
            task_id: t.task_id.clone(),
            seen,
        };
        // A dropped sample's tasks are not added, whatever --replace says.
        if let Some(s) = &t.sample
            && let Some(at) = self
                .dropped
                .query_row(params![s], |r| r.get(0))
                .optional()?
        {
            report.skipped.push(skip(Seen::SampleDropped { at }));
            return Ok(false);
        }
        let present: Option<String> = self
            .exists
            .query_row(params![t.collection, t.task_id], |r| r.get(0))
            .optional()?;
        if let Some(present) = present {
            if !opts.replace {
                let state = stored_state(&present, &t.collection, &t.task_id)?;
                report.skipped.push(skip(Seen::Present(state)));
                return Ok(false);
            }
            self.overwrite.execute(values)?;
            report.replaced += 1;
            return Ok(true);
        }
        match tombstone_of(self.tx, &t.collection, &t.task_id)? {
            // Asked for, or withdrawn with its sample: live again. Its tombstone goes, so the
            // flow sees it once, and its runs number on.
            Some(g) if opts.replace || g.withdrawn => {
                self.forget.execute(params![t.collection, t.task_id])?;
                self.insert.execute(values)?;
                self.renumber
                    .execute(params![t.collection, t.task_id, g.runs])?;
            }
            Some(g) => {
                report.skipped.push(skip(Seen::Removed {
                    state: g.state,
                    at: g.removed_at,
                }));
                return Ok(false);
            }
            None => {
                self.insert.execute(values)?;
            }
        }
        report.added += 1;
        Ok(true)
    }
}

/// Sets each waiting task just written against its sample's tasks: `todo` when its upstream
/// is done. A loop is never allowed, a missing upstream only on request; the error that
/// refuses one rolls the whole batch back (the caller's transaction is not committed).
fn settle_flowing(
    tx: &Connection,
    flowing: Vec<&NewTask>,
    opts: AddOptions,
    report: &mut AddReport,
) -> Result<()> {
    let mut missing = vec![];
    for t in flowing {
        let Some(sample) = &t.sample else { continue };
        let view = view_of(tx, sample)?;
        match flow::initial_state(&view, t) {
            Ok(TaskState::Todo) => {
                tx.prepare_cached(
                    "UPDATE tasks SET state = 'todo' \
                     WHERE collection = ?1 AND task_id = ?2 AND state = 'waiting'",
                )?
                .execute(params![t.collection, t.task_id])?;
            }
            Ok(_) => {
                report.waiting += 1;
                report.blocked += flow::blocked_now(&view, t) as u64;
            }
            Err(refusal) => {
                report.waiting += 1;
                missing.push((t, refusal));
            }
        }
    }
    missing.sort_by_key(|(_, r)| !matches!(r, Refusal::Loop(_)));
    let refused = missing
        .iter()
        .find(|(_, r)| !opts.allow_missing_upstream || matches!(r, Refusal::Loop(_)));
    let Some((t, refusal)) = refused else {
        return Ok(());
    };
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
    Err(flow::refused(t, refusal, alike, exists))
}

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
            "sample = ? AND state IN ('waiting', 'held', 'todo')".into(),
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

/// Puts the failed tasks `selector` picks back to `todo` with fresh attempts.
pub(super) fn retry(conn: &Connection, collection: &str, selector: &Selector) -> Result<u64> {
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
    let now = now_ms();
    let mut all: Vec<&dyn ToSql> = vec![&now, &collection];
    all.extend(args.iter().map(|a| a.as_ref()));
    Ok(conn.execute(&sql, all.as_slice())? as u64)
}

/// Removes the tasks `selector` picks. Every removed task leaves its tombstone, so what waits
/// on it is still judged by the one rule and a later add does not bring it back in silence.
pub(super) fn delete(tx: &Connection, collection: &str, selector: &Selector) -> Result<u64> {
    let (cond, args) = selector_sql(selector);
    let mut all: Vec<&dyn ToSql> = vec![&collection];
    all.extend(args.iter().map(|a| a.as_ref()));
    let now = now_ms();
    let mut marked = all.clone();
    marked.push(&now);
    tx.execute(
        &format!(
            "INSERT OR REPLACE INTO tombstones \
             (collection, task_id, sample, state, created_at, finished_at, removed_at, \
             runs, withdrawn, attempts, owner, started_at, exit_code, log_uri, error_tail, \
             reported) \
             SELECT collection, task_id, sample, state, created_at, finished_at, ?{}, runs, \
             {}, attempts, owner, started_at, exit_code, log_uri, error_tail, reported \
             FROM tasks WHERE collection = ?1 AND {}",
            marked.len(),
            matches!(selector, Selector::Withdrawn(_)) as i32,
            numbered(&cond, 2)
        ),
        marked.as_slice(),
    )?;
    Ok(tx.execute(
        &format!("DELETE FROM tasks WHERE collection = ? AND {cond}"),
        all.as_slice(),
    )? as u64)
}

//! Reads that change nothing: pages of tasks, the tombstones a sync learns removals from, and
//! the counts behind `tasks counts` and the worker's drain checks.

use std::ops::ControlFlow;

use rusqlite::types::ToSql;
use rusqlite::{Connection, params};

use super::rows::{COLUMNS, TOMBSTONE_COLUMNS, conversion, task_from_row, tombstone_from_row};
use crate::clock::now_ms;
use crate::error::Result;
use crate::model::{Damaged, Page, StateCount, TaskFilter, TaskKey, TaskState};

/// One page of tasks in key order, after `after`; `next` is set when more may follow.
pub(super) fn scan(
    conn: &Connection,
    filter: &TaskFilter,
    after: Option<&TaskKey>,
    limit: usize,
) -> Result<Page> {
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
    let sql =
        format!("SELECT {COLUMNS} FROM tasks WHERE {cond} ORDER BY collection, task_id LIMIT ?");
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
}

/// The tombstones of `collection` (or all), handed to `f` a page at a time, never the whole
/// table in memory.
pub(super) fn stream_tombstones(
    conn: &Connection,
    collection: Option<&str>,
    page_size: usize,
    f: &mut dyn FnMut(Page) -> Result<ControlFlow<()>>,
) -> Result<()> {
    let sql =
        format!("SELECT {TOMBSTONE_COLUMNS} FROM tombstones WHERE ?1 IS NULL OR collection = ?1");
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query(params![collection])?;
    let mut page = Page::default();
    while let Some(r) = rows.next()? {
        page.removed.push(tombstone_from_row(r)?);
        if page.removed.len() >= page_size.max(1) && f(std::mem::take(&mut page))?.is_break() {
            return Ok(());
        }
    }
    if !page.removed.is_empty() {
        let _ = f(page)?;
    }
    Ok(())
}

/// The tasks written at or after `since` (by `updated_at`), then the tombstones left since
/// (by `removed_at`), in `collection` or all, a page at a time: an incremental sync's read.
pub(super) fn stream_changes(
    conn: &Connection,
    since: i64,
    collection: Option<&str>,
    page_size: usize,
    f: &mut dyn FnMut(Page) -> Result<ControlFlow<()>>,
) -> Result<()> {
    let page_size = page_size.max(1);
    let sql = format!(
        "SELECT {COLUMNS} FROM tasks INDEXED BY tasks_by_change \
         WHERE updated_at >= ?1 AND (?2 IS NULL OR collection = ?2)"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params![since, collection])?;
    let mut page = Page::default();
    while let Some(row) = rows.next()? {
        match task_from_row(row) {
            Ok(task) => page.tasks.push(task),
            Err(e) => page.damaged.push(Damaged {
                key: format!("{}/{}", row.get::<_, String>(0)?, row.get::<_, String>(1)?),
                reason: e.to_string(),
            }),
        }
        if page.tasks.len() + page.damaged.len() >= page_size
            && f(std::mem::take(&mut page))?.is_break()
        {
            return Ok(());
        }
    }
    let sql = format!(
        "SELECT {TOMBSTONE_COLUMNS} FROM tombstones INDEXED BY tombstones_by_removal \
         WHERE removed_at >= ?1 AND (?2 IS NULL OR collection = ?2)"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params![since, collection])?;
    while let Some(r) = rows.next()? {
        page.removed.push(tombstone_from_row(r)?);
        if page.removed.len() >= page_size && f(std::mem::take(&mut page))?.is_break() {
            return Ok(());
        }
    }
    if !(page.tasks.is_empty() && page.damaged.is_empty() && page.removed.is_empty()) {
        let _ = f(page)?;
    }
    Ok(())
}

/// Tasks per collection and state.
pub(super) fn counts(conn: &Connection, collection: Option<&str>) -> Result<Vec<StateCount>> {
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
}

/// Tasks a claim could take now: `todo`, or running on a lease that ran out.
pub(super) fn count_claimable(conn: &Connection, collection: &str) -> Result<u64> {
    let n: i64 = conn
        .prepare_cached(
            "SELECT count(*) FROM tasks WHERE collection = ?1 \
             AND (state = 'todo' OR (state = 'running' AND lease_until < ?2))",
        )?
        .query_row(params![collection, now_ms()], |r| r.get(0))?;
    Ok(n as u64)
}

/// Whether a task of `collection` runs on a live lease.
pub(super) fn has_running(conn: &Connection, collection: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM tasks WHERE collection = ?1 \
             AND state = 'running' AND lease_until >= ?2)",
        )?
        .query_row(params![collection, now_ms()], |r| r.get(0))?)
}

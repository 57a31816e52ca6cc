//! A task and a tombstone as SQLite rows: the column lists, the readers that turn a row into
//! the model, and the two single-row reads every other file builds on.

use rusqlite::types::Type;
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::error::{Error, Result};
use crate::model::{Attrs, LastRun, Reported, Task, TaskState, Tombstone};

/// The columns `task_from_row` reads, in its order.
pub(super) const COLUMNS: &str = "collection, task_id, sample, script, attrs, state, attempts, \
    max_attempts, timeout_secs, owner, lease_until, created_at, updated_at, started_at, \
    finished_at, exit_code, log_uri, error_tail, version, after_steps, runs, reported, require, \
    gate_note";

/// The columns `tombstone_from_row` reads, in its order.
pub(super) const TOMBSTONE_COLUMNS: &str = "collection, task_id, sample, state, created_at, \
    finished_at, removed_at, runs, withdrawn, attempts, owner, started_at, exit_code, log_uri, \
    error_tail, reported";

pub(super) fn conversion(idx: usize, message: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, message.into())
}

/// A task from a row of [`COLUMNS`].
pub(super) fn task_from_row(row: &Row<'_>) -> rusqlite::Result<Task> {
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
        reported: reported_from(row.get(21)?).map_err(|e| conversion(21, e))?,
        require: list_from(row.get(22)?, "require").map_err(|e| conversion(22, e))?,
        gate_note: row.get(23)?,
    })
}

/// The upstream steps of a task, from their column (a JSON array; NULL when none).
pub(super) fn after_from(column: Option<String>) -> std::result::Result<Vec<String>, String> {
    list_from(column, "after_steps")
}

/// A list of strings from its column (a JSON array; NULL when none).
pub(super) fn list_from(
    column: Option<String>,
    name: &str,
) -> std::result::Result<Vec<String>, String> {
    match column {
        None => Ok(vec![]),
        Some(text) => serde_json::from_str(&text).map_err(|e| format!("{name}: {e}")),
    }
}

/// What a run reported, from its column (JSON; NULL when nothing).
pub(super) fn reported_from(column: Option<String>) -> std::result::Result<Reported, String> {
    column.map_or(Ok(Reported::default()), |text| Reported::from_json(&text))
}

/// The column value of a task's upstream steps, or of its gates.
pub(super) fn after_column(after: &[String]) -> Option<String> {
    (!after.is_empty()).then(|| serde_json::Value::from(after.to_vec()).to_string())
}

/// A state read back from the store; one that cannot be read is damage to that task.
pub(super) fn stored_state(text: &str, collection: &str, task_id: &str) -> Result<TaskState> {
    text.parse().map_err(|reason| Error::Damaged {
        collection: collection.to_string(),
        task_id: task_id.to_string(),
        reason,
    })
}

/// A tombstone from a row of [`TOMBSTONE_COLUMNS`]; a state that cannot be read is damage.
pub(super) fn tombstone_from_row(r: &Row<'_>) -> Result<Tombstone> {
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
            reported: reported_from(r.get(15)?).map_err(|e| conversion(15, e))?,
        },
    })
}

/// The tombstone of one removed task, if the store keeps one.
pub(super) fn tombstone_of(
    conn: &Connection,
    collection: &str,
    task_id: &str,
) -> Result<Option<Tombstone>> {
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

/// One live task.
pub(super) fn get_task(conn: &Connection, collection: &str, task_id: &str) -> Result<Option<Task>> {
    let sql = format!("SELECT {COLUMNS} FROM tasks WHERE collection = ?1 AND task_id = ?2");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row(params![collection, task_id], task_from_row)
        .optional()?)
}

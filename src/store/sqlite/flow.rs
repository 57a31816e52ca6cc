//! What chained steps read and write: a sample's tasks (live and removed), the samples with
//! waiting tasks, what upstream tasks reported (for gates), a waiting or held task settled,
//! and a sample dropped from the study.

use rusqlite::{Connection, params};

use super::rows::{after_from, list_from, reported_from, stored_state};
use crate::clock::now_ms;
use crate::error::{Error, Result};
use crate::model::{SampleTask, SampleView, Settle, UpstreamReport};

/// Every task of `sample`, live and removed (store/flow.rs decides on them).
pub(super) fn view_of(conn: &Connection, sample: &str) -> Result<SampleView> {
    let mut view = SampleView::default();
    let mut stmt = conn.prepare_cached(
        "SELECT collection, task_id, state, version, after_steps, created_at, finished_at, \
         require, gate_note FROM tasks WHERE sample = ?1",
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
            require: list_from(r.get(7)?, "require").map_err(damaged)?,
            gate_note: r.get(8)?,
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
            require: vec![],
            gate_note: None,
        });
    }
    Ok(view)
}

/// The samples with a waiting or held task (in `collection`, or anywhere).
pub(super) fn waiting_samples(conn: &Connection, collection: Option<&str>) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT DISTINCT sample FROM tasks WHERE state IN ('waiting', 'held') \
         AND (?1 IS NULL OR collection = ?1) AND sample IS NOT NULL",
    )?;
    let samples = stmt
        .query_map(params![collection], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(samples)
}

/// Settles a waiting or held task at `version`: `todo` (its gates pass, or released) or
/// `held` with the reason; false when it is no longer that version (or, for a release, not
/// held).
pub(super) fn settle_task(
    conn: &Connection,
    collection: &str,
    task_id: &str,
    version: i64,
    settle: &Settle,
) -> Result<bool> {
    let (state, note, from) = match settle {
        Settle::Run(note) => ("todo", note.as_deref(), "'waiting', 'held'"),
        Settle::Hold(why) => ("held", Some(why.as_str()), "'waiting', 'held'"),
        Settle::Release(why) => ("todo", Some(why.as_str()), "'held'"),
        Settle::Wait(why) => ("waiting", Some(why.as_str()), "'held'"),
    };
    let sql = format!(
        "UPDATE tasks SET state = ?4, gate_note = ?5, updated_at = ?6, \
         version = version + 1 \
         WHERE collection = ?1 AND task_id = ?2 AND version = ?3 AND state IN ({from})"
    );
    let n = conn.prepare_cached(&sql)?.execute(params![
        collection,
        task_id,
        version,
        state,
        note,
        now_ms()
    ])?;
    Ok(n == 1)
}

/// What each of `tasks` (live or removed) reported on its last run, where it reported metrics.
pub(super) fn upstream_reports(
    conn: &Connection,
    tasks: &[SampleTask],
) -> Result<Vec<UpstreamReport>> {
    let mut live = conn.prepare_cached(
        "SELECT runs, finished_at, reported FROM tasks WHERE collection = ?1 AND task_id = ?2",
    )?;
    let mut gone = conn.prepare_cached(
        "SELECT runs, finished_at, reported FROM tombstones \
         WHERE collection = ?1 AND task_id = ?2",
    )?;
    let mut out = vec![];
    for t in tasks {
        let stmt = if t.is_live() { &mut live } else { &mut gone };
        let mut rows = stmt.query(params![t.collection, t.task_id])?;
        let Some(r) = rows.next()? else { continue };
        let reported = reported_from(r.get(2)?).map_err(|reason| Error::Damaged {
            collection: t.collection.clone(),
            task_id: t.task_id.clone(),
            reason,
        })?;
        if !reported.metrics.is_empty() {
            out.push(UpstreamReport {
                collection: t.collection.clone(),
                task_id: t.task_id.clone(),
                run: r.get(0)?,
                finished_at: r.get(1)?,
                metrics: reported.metrics,
            });
        }
    }
    Ok(out)
}

/// Marks a sample dropped (the first reason stays).
pub(super) fn drop_sample(conn: &Connection, sample: &str, reason: &str) -> Result<()> {
    conn.execute(
        "INSERT INTO dropped_samples (sample, dropped_at, reason) VALUES (?1, ?2, ?3) \
         ON CONFLICT (sample) DO NOTHING",
        params![sample, now_ms(), reason],
    )?;
    Ok(())
}

/// Takes a sample back into the study; false when it was not dropped.
pub(super) fn reinstate_sample(conn: &Connection, sample: &str) -> Result<bool> {
    let n = conn.execute(
        "DELETE FROM dropped_samples WHERE sample = ?1",
        params![sample],
    )?;
    Ok(n > 0)
}

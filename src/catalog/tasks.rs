//! Writing tasks seen in the store into the catalog: upsert in batches, record state changes in
//! `task_events`, and mark tasks gone from a complete scan as removed (never delete them).

use rusqlite::params;

use super::Catalog;
use super::runs::SyncRun;
use crate::error::Result;
use crate::model::Task;

/// Writes one sync run's tasks. State changes become `task_events` through temporary triggers,
/// so inserts and updates cannot forget them; the triggers go when the writer is dropped.
pub struct TaskWriter<'c> {
    catalog: &'c mut Catalog,
    run: SyncRun,
}

const UPSERT: &str = "INSERT INTO tasks (collection, task_id, sample, script, attrs, state, \
    attempts, max_attempts, timeout_secs, owner, lease_until, created_at, updated_at, started_at, \
    finished_at, exit_code, log_uri, error_tail, version, first_seen_at, last_seen_at) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?20) \
    ON CONFLICT (collection, task_id) DO UPDATE SET sample = excluded.sample, \
    script = excluded.script, attrs = excluded.attrs, state = excluded.state, \
    attempts = excluded.attempts, max_attempts = excluded.max_attempts, \
    timeout_secs = excluded.timeout_secs, owner = excluded.owner, \
    lease_until = excluded.lease_until, created_at = excluded.created_at, \
    updated_at = excluded.updated_at, started_at = excluded.started_at, \
    finished_at = excluded.finished_at, exit_code = excluded.exit_code, \
    log_uri = excluded.log_uri, error_tail = excluded.error_tail, version = excluded.version, \
    last_seen_at = excluded.last_seen_at, removed_at = NULL";

impl Catalog {
    pub fn task_writer(&mut self, run: &SyncRun) -> Result<TaskWriter<'_>> {
        let id = run.id;
        let event = |from: &str| {
            format!(
                "INSERT INTO main.task_events (collection, task_id, at, from_state, to_state, \
                 attempts, owner, exit_code, source, sync_run) VALUES (new.collection, \
                 new.task_id, coalesce(new.updated_at, new.created_at, new.last_seen_at), {from}, \
                 new.state, new.attempts, new.owner, new.exit_code, 'sync', {id});"
            )
        };
        self.conn().execute_batch(&format!(
            "DROP TRIGGER IF EXISTS temp.anamo_sync_new; DROP TRIGGER IF EXISTS temp.anamo_sync_change;
             CREATE TEMP TRIGGER anamo_sync_new AFTER INSERT ON main.tasks BEGIN {} END;
             CREATE TEMP TRIGGER anamo_sync_change AFTER UPDATE OF state ON main.tasks
                 WHEN old.state IS NOT new.state BEGIN {} END;",
            event("NULL"),
            event("old.state")
        ))?;
        Ok(TaskWriter {
            catalog: self,
            run: run.clone(),
        })
    }
}

impl TaskWriter<'_> {
    /// Upserts a batch in one transaction: all of it lands, or none.
    pub fn write_batch(&mut self, tasks: &[Task]) -> Result<()> {
        let seen_at = self.run.started_at;
        let tx = self.catalog.conn_mut().transaction()?;
        {
            let mut upsert = tx.prepare_cached(UPSERT)?;
            for t in tasks {
                let attrs = serde_json::to_string(&t.attrs).unwrap_or_else(|_| "{}".into());
                upsert.execute(params![
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
                    seen_at
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// After a complete scan: tasks this run did not see are gone from the store.
    pub fn mark_removed(&mut self, collection: Option<&str>) -> Result<u64> {
        let n = self.catalog.conn().execute(
            "UPDATE tasks SET removed_at = ?1 WHERE removed_at IS NULL AND last_seen_at < ?1 \
             AND (?2 IS NULL OR collection = ?2)",
            params![self.run.started_at, collection],
        )?;
        Ok(n as u64)
    }

    /// (new, changed) tasks this run recorded.
    pub fn event_counts(&self) -> Result<(u64, u64)> {
        Ok(self.catalog.conn().query_row(
            "SELECT coalesce(sum(from_state IS NULL), 0), coalesce(sum(from_state IS NOT NULL), 0) \
             FROM task_events WHERE sync_run = ?1",
            params![self.run.id],
            |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
        )?)
    }
}

impl Drop for TaskWriter<'_> {
    fn drop(&mut self) {
        let _ = self.catalog.conn().execute_batch(
            "DROP TRIGGER IF EXISTS temp.anamo_sync_new; DROP TRIGGER IF EXISTS temp.anamo_sync_change;",
        );
    }
}

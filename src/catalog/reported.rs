//! What runs reported, as sync writes it: each metric of a run that ended done into
//! `qc_metrics` (source `STEP/TASK run N`, beside imported ones), and the files it wrote into
//! `outputs` (the task's latest done run's list). A failed run's report stays on its task row
//! only, for the record: it gates nothing and is no sample's QC.

use rusqlite::{Transaction, params};

use crate::error::Result;
use crate::model::{MetricValue, Reported, Task, TaskState, Tombstone};

/// One task's report as sync sees it.
pub struct RunReport<'a> {
    pub step: &'a str,
    pub task_id: &'a str,
    pub sample: Option<&'a str>,
    pub state: TaskState,
    pub run: u32,
    /// When the run ended (epoch ms): when its metrics were recorded.
    pub at: i64,
    pub reported: &'a Reported,
}

impl<'a> RunReport<'a> {
    /// A live task's last run, as the store holds it.
    pub fn of_task(t: &'a Task) -> Self {
        Self {
            step: &t.collection,
            task_id: &t.task_id,
            sample: t.sample.as_deref(),
            state: t.state,
            run: t.runs,
            at: t.finished_at.unwrap_or(t.updated_at),
            reported: &t.reported,
        }
    }

    /// A removed task's last run, as its tombstone keeps it.
    pub fn of_tombstone(t: &'a Tombstone) -> Self {
        Self {
            step: &t.collection,
            task_id: &t.task_id,
            sample: t.sample.as_deref(),
            state: t.state,
            run: t.runs,
            at: t.finished_at.unwrap_or(t.removed_at),
            reported: &t.last_run.reported,
        }
    }
}

/// The source a reported metric is filed under, as messages name it.
pub fn source_of(step: &str, task_id: &str, run: u32) -> String {
    format!("{step}/{task_id} run {run}")
}

/// Writes a done run's report; anything else writes nothing here.
pub fn write(tx: &Transaction<'_>, r: &RunReport<'_>) -> Result<()> {
    if r.state != TaskState::Done || r.reported.is_empty() {
        return Ok(());
    }
    if let Some(sample) = r.sample {
        let mut metric = tx.prepare_cached(
            "INSERT INTO qc_metrics (sample_id, metric, value, text, source, step, task_id, run, \
             recorded_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
             ON CONFLICT (sample_id, metric, source) DO UPDATE SET value = excluded.value, \
             text = excluded.text, recorded_at = excluded.recorded_at",
        )?;
        let source = source_of(r.step, r.task_id, r.run);
        for (name, value) in &r.reported.metrics {
            let (number, word) = match value {
                MetricValue::Number(n) => (Some(*n), None),
                MetricValue::Text(t) => (None, Some(t.as_str())),
            };
            metric.execute(params![
                sample, name, number, word, source, r.step, r.task_id, r.run, r.at
            ])?;
        }
    }
    // The files of the task's latest done run: a re-run's list replaces the last one.
    tx.prepare_cached("DELETE FROM outputs WHERE step = ?1 AND task_id = ?2")?
        .execute(params![r.step, r.task_id])?;
    let mut output = tx.prepare_cached(
        "INSERT OR REPLACE INTO outputs (step, task_id, uri, sample_id, kind, run, reported_at, \
         bucket, key) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    for o in &r.reported.outputs {
        // (Checked s3://BUCKET/KEY when the worker read it.)
        let s3 = o
            .uri
            .strip_prefix("s3://")
            .and_then(|rest| rest.split_once('/'));
        output.execute(params![
            r.step,
            r.task_id,
            o.uri,
            r.sample,
            o.kind,
            r.run,
            r.at,
            s3.map(|(bucket, _)| bucket),
            s3.map(|(_, key)| key),
        ])?;
    }
    Ok(())
}

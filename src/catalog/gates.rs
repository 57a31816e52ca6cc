//! The QC gates as the catalog saw them, for `anamo report`: each step's gates (`require`),
//! the distribution over the cohort of the metric each reads (what the runs reported, each
//! sample's latest, binned in SQL: never the cohort in memory), and the samples each holds.

use rusqlite::params;

use super::CatalogRead;
use crate::error::Result;
use crate::model::{Gate, MetricValue};

/// Bars of a gate's histogram.
const BINS: i64 = 24;

/// A held task: (sample, task, why).
pub type Held = (String, String, String);

/// One gate of one step.
#[derive(Debug, Clone, PartialEq)]
pub struct GateView {
    pub step: String,
    pub gate: Gate,
    /// The metric's latest reported value per sample, binned: (lowest, bin width, counts).
    /// `None` when no sample reported it as a number (or the gate compares a word).
    pub histogram: Option<(f64, f64, Vec<u64>)>,
    /// Samples the step's tasks of this gate are held for, first `listed` of them: (sample,
    /// task, why).
    pub held: Vec<Held>,
    /// All the step's tasks held with this gate (beyond those listed).
    pub held_total: u64,
}

impl CatalogRead {
    /// Every gate a step's tasks carry, with its metric's distribution and what it holds.
    pub fn gates(&self, listed: usize) -> Result<Vec<GateView>> {
        self.read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT DISTINCT t.collection, g.value
                 FROM tasks t, json_each(t.require) g
                 WHERE t.require IS NOT NULL
                 ORDER BY t.collection, g.value",
            )?;
            let gates: Vec<(String, String)> = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            let mut out = vec![];
            for (step, text) in gates {
                // Checked when added: one that no longer parses is left off the page.
                let Ok(gate) = Gate::parse(&text) else {
                    continue;
                };
                let histogram = match gate.value {
                    MetricValue::Number(_) => histogram(conn, &step, &gate.metric)?,
                    MetricValue::Text(_) => None,
                };
                let (held, held_total) = held(conn, &step, &text, listed)?;
                out.push(GateView {
                    step,
                    gate,
                    histogram,
                    held,
                    held_total,
                });
            }
            Ok(out)
        })
    }
}

/// The latest reported number of `metric` for each sample with a task in `step`, binned.
fn histogram(
    conn: &rusqlite::Connection,
    step: &str,
    metric: &str,
) -> Result<Option<(f64, f64, Vec<u64>)>> {
    const OF_STEP: &str = "FROM qc_latest q
         WHERE q.metric = ?1 AND q.step IS NOT NULL AND q.value IS NOT NULL
           AND q.sample_id IN (SELECT sample FROM tasks WHERE collection = ?2)";
    let (lo, hi): (Option<f64>, Option<f64>) = conn.query_row(
        &format!("SELECT min(q.value), max(q.value) {OF_STEP}"),
        params![metric, step],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let (Some(lo), Some(hi)) = (lo, hi) else {
        return Ok(None);
    };
    let width = ((hi - lo) / BINS as f64).max(f64::EPSILON);
    let mut counts = vec![0u64; BINS as usize];
    let mut stmt = conn.prepare(&format!(
        "SELECT min(CAST((q.value - ?3) / ?4 AS INTEGER), ?5), count(*) {OF_STEP}
         GROUP BY 1"
    ))?;
    let rows = stmt.query_map(params![metric, step, lo, width, BINS - 1], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
    })?;
    for row in rows {
        let (bin, n) = row?;
        if let Some(c) = counts.get_mut(bin.clamp(0, BINS - 1) as usize) {
            *c += n.max(0) as u64;
        }
    }
    Ok(Some((lo, width, counts)))
}

/// The step's held tasks that carry `gate`: the first `listed` (sample, task, why), and how
/// many in all.
fn held(
    conn: &rusqlite::Connection,
    step: &str,
    gate: &str,
    listed: usize,
) -> Result<(Vec<Held>, u64)> {
    const HELD: &str = "FROM task_progress t
         WHERE t.collection = ?1 AND t.state = 'held' AND t.progress = 'held'
           AND EXISTS (SELECT 1 FROM json_each(t.require) g WHERE g.value = ?2)";
    let total: i64 = conn.query_row(
        &format!("SELECT count(*) {HELD}"),
        params![step, gate],
        |r| r.get(0),
    )?;
    let mut stmt = conn.prepare(&format!(
        "SELECT coalesce(t.sample, ''), t.task_id, coalesce(t.gate_note, '') {HELD}
         ORDER BY t.sample, t.task_id LIMIT ?3"
    ))?;
    let rows = stmt
        .query_map(params![step, gate, listed as i64], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok((rows, total.max(0) as u64))
}

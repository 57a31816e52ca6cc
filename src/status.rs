//! The overview a person looks at first: per step, in workflow order, counts by state, percent
//! done, throughput over the last 24 hours and an ETA at the recent pace. Read from the catalog.

use std::io::Write;

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Value, json};

use crate::clock::{now_ms, rfc3339};
use crate::error::Result;
use crate::output::{Format, RowWriter};

const DAY_MS: i64 = 24 * 3600 * 1000;
const HOUR_MS: f64 = 3_600_000.0;
/// Finishes in the last 24 hours needed before a pace is worth an ETA.
pub const ETA_MIN_FINISHES: u64 = 5;

#[derive(Debug, Clone, PartialEq)]
pub struct StepRow {
    pub step: String,
    pub todo: u64,
    pub running: u64,
    pub done: u64,
    pub failed: u64,
    pub total: u64,
    pub done_24h: u64,
    /// EC2 instances of the step pending or running at the last instance sync.
    pub instances: u64,
    /// When the first of the last 24 hours' finishes happened (epoch ms).
    pub first_done_24h: Option<i64>,
    /// Set apart (the `progress` view's definition): removed before they were done,
    pub abandoned: u64,
    /// failed but replaced by a done task of the same sample,
    pub superseded: u64,
    /// and of dropped samples.
    pub dropped: u64,
}

impl StepRow {
    pub fn pct_done(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            100.0 * self.done as f64 / self.total as f64
        }
    }

    /// Hours left at the recent pace, as of `now`: the tasks done in the last 24 hours over
    /// the time since the first of them finished. `None` without enough data: fewer than
    /// [`ETA_MIN_FINISHES`] finishes in that window (a pace from one or two tasks is noise).
    pub fn eta_hours(&self, now: i64) -> Option<f64> {
        let left = self.todo + self.running;
        if self.total == 0 {
            return None;
        }
        if left == 0 {
            return Some(0.0);
        }
        if self.done_24h < ETA_MIN_FINISHES {
            return None;
        }
        let since = self.first_done_24h?;
        let hours = ((now - since).max(1_000)) as f64 / HOUR_MS;
        Some(left as f64 / (self.done_24h as f64 / hours))
    }
}

/// One row per step: those in `steps` first (in order, even with no task yet), then any other
/// collection the catalog has seen.
pub fn overview(conn: &Connection) -> Result<Vec<StepRow>> {
    let since = now_ms() - DAY_MS;
    let mut stmt = conn.prepare(
        "WITH names AS (
             SELECT collection, ordinal FROM steps
             UNION SELECT DISTINCT collection, NULL FROM tasks
                   WHERE collection NOT IN (SELECT collection FROM steps))
         SELECT n.collection,
                coalesce(p.todo, 0), coalesce(p.running, 0), coalesce(p.done, 0),
                coalesce(p.failed, 0), coalesce(p.total, 0),
                (SELECT count(*) FROM task_progress t WHERE t.progress = 'done'
                    AND t.finished_at >= ?1 AND t.collection = n.collection),
                (SELECT count(*) FROM instances i WHERE i.step = n.collection
                    AND i.state IN ('pending', 'running')),
                (SELECT min(t.finished_at) FROM task_progress t WHERE t.progress = 'done'
                    AND t.finished_at >= ?1 AND t.collection = n.collection),
                coalesce(p.abandoned, 0), coalesce(p.superseded, 0), coalesce(p.dropped, 0)
         FROM names n LEFT JOIN progress p ON p.collection = n.collection
         ORDER BY n.ordinal IS NULL, n.ordinal, n.collection",
    )?;
    let rows = stmt.query_map(params![since], |r| {
        let n = |i| r.get::<_, i64>(i).map(|v| v.max(0) as u64);
        Ok(StepRow {
            step: r.get(0)?,
            todo: n(1)?,
            running: n(2)?,
            done: n(3)?,
            failed: n(4)?,
            total: n(5)?,
            done_24h: n(6)?,
            instances: n(7)?,
            first_done_24h: r.get(8)?,
            abandoned: n(9)?,
            superseded: n(10)?,
            dropped: n(11)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// When tasks were last synced into the catalog.
pub fn last_task_sync(conn: &Connection) -> Result<Option<i64>> {
    Ok(conn
        .query_row(
            "SELECT max(finished_at) FROM sync_runs WHERE status = 'ok' AND source LIKE 'tasks:%'",
            [],
            |r| r.get::<_, Option<i64>>(0),
        )
        .optional()?
        .flatten())
}

/// A line saying how fresh the catalog is, and whether a sync is running or the last one
/// did not finish (the numbers below it are then older, or partial).
pub fn freshness(conn: &Connection, catalog: &std::path::Path) -> Result<String> {
    let last_ok = match last_task_sync(conn)? {
        Some(at) => {
            let minutes = (now_ms() - at) / 60_000;
            format!(
                "tasks as of the last sync, {} ({minutes} min ago)",
                rfc3339(at)
            )
        }
        None => "tasks never fully synced: run `anamo sync`".to_string(),
    };
    // The newest tasks run that is not ok: running now, or ended without finishing.
    let unfinished: Option<(String, i64, Option<String>)> = conn
        .query_row(
            "SELECT status, started_at, error FROM sync_runs WHERE source LIKE 'tasks:%' \
             AND id > coalesce((SELECT max(id) FROM sync_runs WHERE status = 'ok' \
                                AND source LIKE 'tasks:%'), 0) \
             ORDER BY id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    Ok(match unfinished {
        Some(_) if crate::catalog::sync_in_progress(catalog) => {
            format!("a sync is running now; {last_ok}")
        }
        Some((_, started, error)) => format!(
            "the last sync (started {}) did not finish{}; {last_ok}",
            rfc3339(started),
            error.map(|e| format!(": {e}")).unwrap_or_default()
        ),
        None => last_ok,
    })
}

fn bar(pct: f64) -> String {
    let filled = ((pct / 100.0) * 20.0).round().clamp(0.0, 20.0) as usize;
    format!(
        "{}{} {pct:>5.1}%",
        "█".repeat(filled),
        "░".repeat(20 - filled)
    )
}

/// What a step sets apart, in words ("" when nothing).
fn apart_text(r: &StepRow) -> String {
    [
        (r.abandoned, "abandoned"),
        (r.superseded, "superseded"),
        (r.dropped, "dropped"),
    ]
    .iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{n} {what}"))
    .collect::<Vec<_>>()
    .join(", ")
}

fn eta_text(h: Option<f64>) -> String {
    match h {
        Some(0.0) => "done".into(),
        Some(h) if h < 1.0 => format!("{}m", (h * 60.0).ceil().max(1.0)),
        Some(h) if h < 48.0 => format!("{h:.1}h"),
        Some(h) => format!("{:.1}d", h / 24.0),
        None => "-".into(),
    }
}

/// Writes the overview: a table with bars for people, plain numbers for programs.
pub fn render(rows: &[StepRow], format: Format, out: impl Write) -> Result<()> {
    let people = format == Format::Table;
    let now = now_ms();
    let mut columns = vec!["step", "todo", "running", "done", "failed", "total"];
    columns.extend(if people {
        ["progress", "done_24h", "eta", "instances"].as_slice()
    } else {
        [
            "pct_done",
            "done_24h",
            "eta_hours",
            "instances",
            "abandoned",
            "superseded",
            "dropped",
        ]
        .as_slice()
    });
    if people {
        columns.push("set apart");
    }
    let mut w = RowWriter::new(format, columns.iter().map(|c| c.to_string()).collect(), out)?;
    for r in rows {
        let mut row: Vec<Value> = vec![
            json!(r.step),
            json!(r.todo),
            json!(r.running),
            json!(r.done),
            json!(r.failed),
            json!(r.total),
        ];
        if people {
            row.extend([
                json!(bar(r.pct_done())),
                json!(r.done_24h),
                json!(eta_text(r.eta_hours(now))),
                json!(r.instances),
                json!(apart_text(r)),
            ]);
        } else {
            let eta = r.eta_hours(now).map(|h| (h * 100.0).round() / 100.0);
            row.extend([
                json!((r.pct_done() * 10.0).round() / 10.0),
                json!(r.done_24h),
                json!(eta),
                json!(r.instances),
                json!(r.abandoned),
                json!(r.superseded),
                json!(r.dropped),
            ]);
        }
        w.write_row(&row)?;
    }
    w.finish()?;
    Ok(())
}

/// One sample's journey: each step (in order) with its task, state, times and exit code.
pub const SAMPLE_JOURNEY: &str = "WITH names AS (
        SELECT collection, ordinal FROM steps
        UNION SELECT DISTINCT collection, NULL FROM tasks
              WHERE sample = :sample AND collection NOT IN (SELECT collection FROM steps))
    SELECT n.collection AS step, t.task_id,
           coalesce(t.progress,
                    CASE WHEN (SELECT status FROM samples WHERE sample_id = :sample) = 'dropped'
                         THEN 'dropped' ELSE 'not added' END) AS state,
           t.attempts,
           t.owner,
           strftime('%Y-%m-%dT%H:%M:%SZ', t.started_at / 1000.0, 'unixepoch') AS started,
           strftime('%Y-%m-%dT%H:%M:%SZ', t.finished_at / 1000.0, 'unixepoch') AS finished,
           round((t.finished_at - t.started_at) / 1000.0, 1) AS seconds,
           t.exit_code
    FROM names n LEFT JOIN task_progress t ON t.collection = n.collection AND t.sample = :sample
    ORDER BY n.ordinal IS NULL, n.ordinal, n.collection, t.started_at";

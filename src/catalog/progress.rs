//! Typed reads behind `status`: per-step progress (the `progress` view), how fresh the tasks
//! are, one sample's presence, a task's log reference and the workflow order. Plain queries on
//! a read-only connection; rendering belongs to `status.rs` and the commands.

use rusqlite::{Connection, OptionalExtension, params};

use super::CatalogRead;
use crate::clock::now_ms;
use crate::error::Result;

const DAY_MS: i64 = 24 * 3600 * 1000;
const HOUR_MS: f64 = 3_600_000.0;
/// Finishes in the last 24 hours needed before a pace is worth an ETA.
pub const ETA_MIN_FINISHES: u64 = 5;

#[derive(Debug, Clone, PartialEq)]
pub struct StepRow {
    pub step: String,
    /// Waiting for their sample's upstream tasks (`--after`).
    pub waiting: u64,
    /// Held by a QC gate (`--require`): a person releases them, or a re-run upstream passes
    /// the gate. Left out of the ETA, as blocked work is.
    pub held: u64,
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
    /// What the step's priced instances cost so far (`instance_costs`), US dollars; `None`
    /// without any priced instance.
    pub cost_usd: Option<f64>,
    /// The step's instances without a known price (not counted in `cost_usd`).
    pub unpriced_instances: u64,
    /// Set apart (the `progress` view's definition): removed before they were done,
    pub abandoned: u64,
    /// failed but replaced by a done task of the same sample,
    pub superseded: u64,
    /// and of dropped samples.
    pub dropped: u64,
    /// Waiting tasks that nothing will run until a person acts (`blocked-samples`): left out
    /// of the ETA, and said.
    pub blocked: u64,
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
        // Blocked work is not forecast: nothing will run it until a person acts.
        let left = self.waiting.saturating_sub(self.blocked) + self.todo + self.running;
        if self.total == 0 {
            return None;
        }
        // Done only with nothing left, nothing blocked and nothing failed: a failure waits for
        // a person as blocked work does.
        if left == 0 {
            return (self.blocked == 0 && self.failed == 0 && self.held == 0).then_some(0.0);
        }
        if self.done_24h < ETA_MIN_FINISHES {
            return None;
        }
        let since = self.first_done_24h?;
        let hours = ((now - since).max(1_000)) as f64 / HOUR_MS;
        Some(left as f64 / (self.done_24h as f64 / hours))
    }
}

impl CatalogRead {
    /// One row per step: those in `steps` first (in order, even with no task yet), then any other
    /// collection the catalog has seen.
    pub fn overview(&self) -> Result<Vec<StepRow>> {
        self.read(|conn| {
            let since = now_ms() - DAY_MS;
            let mut stmt = conn.prepare(
                "WITH names AS (
                 SELECT collection, ordinal FROM steps
                 UNION SELECT DISTINCT collection, NULL FROM tasks
                       WHERE collection NOT IN (SELECT collection FROM steps)),
             -- The cost view worked out once, not once per step and figure.
             costs AS MATERIALIZED (
                 SELECT step, sum(usd) AS usd, sum(usd IS NULL) AS unpriced
                 FROM instance_costs GROUP BY step)
             SELECT n.collection,
                    coalesce(p.waiting, 0), coalesce(p.todo, 0), coalesce(p.running, 0),
                    coalesce(p.done, 0),
                    coalesce(p.failed, 0), coalesce(p.total, 0),
                    (SELECT count(*) FROM done_tasks d
                        WHERE d.collection = n.collection AND d.finished_at >= ?1),
                    (SELECT count(*) FROM instances i WHERE i.step = n.collection
                        AND i.state IN ('pending', 'running')),
                    (SELECT min(d.finished_at) FROM done_tasks d
                        WHERE d.collection = n.collection AND d.finished_at >= ?1),
                    coalesce(p.abandoned, 0), coalesce(p.superseded, 0), coalesce(p.dropped, 0),
                    c.usd, coalesce(c.unpriced, 0), coalesce(p.held, 0)
             FROM names n LEFT JOIN progress p ON p.collection = n.collection
             LEFT JOIN costs c ON c.step = n.collection
             ORDER BY n.ordinal IS NULL, n.ordinal, n.collection",
            )?;
            let rows = stmt.query_map(params![since], |r| {
                let n = |i| r.get::<_, i64>(i).map(|v| v.max(0) as u64);
                Ok(StepRow {
                    step: r.get(0)?,
                    waiting: n(1)?,
                    todo: n(2)?,
                    running: n(3)?,
                    done: n(4)?,
                    failed: n(5)?,
                    total: n(6)?,
                    done_24h: n(7)?,
                    instances: n(8)?,
                    first_done_24h: r.get(9)?,
                    abandoned: n(10)?,
                    superseded: n(11)?,
                    dropped: n(12)?,
                    cost_usd: r.get(13)?,
                    unpriced_instances: n(14)?,
                    held: n(15)?,
                    blocked: 0,
                })
            })?;
            let mut rows: Vec<StepRow> = rows.collect::<rusqlite::Result<_>>()?;
            let blocked = blocked_per_step(conn)?;
            for r in &mut rows {
                r.blocked = blocked.get(&r.step).copied().unwrap_or(0);
            }
            Ok(rows)
        })
    }

    /// Samples with tasks that are not among the imported samples, when any sample is imported
    /// (without a sheet every sample is such, and nothing is worth saying).
    pub fn samples_not_imported(&self) -> Result<u64> {
        self.read(|conn| {
            let n: i64 = conn.query_row(
                // Each sample once (off the sample index), then one key lookup each: a third
                // faster than checking every task's sample.
                "SELECT CASE WHEN EXISTS (SELECT 1 FROM samples) THEN
                 (SELECT count(*) FROM (SELECT DISTINCT sample FROM tasks
                                        WHERE sample IS NOT NULL) t
                  WHERE NOT EXISTS (SELECT 1 FROM samples s WHERE s.sample_id = t.sample))
             ELSE 0 END",
                [],
                |r| r.get(0),
            )?;
            Ok(n.max(0) as u64)
        })
    }

    pub fn freshness(&self) -> Result<Freshness> {
        self.read(|conn| {
        let last_ok = conn
            .query_row(
                "SELECT max(finished_at) FROM sync_runs WHERE status = 'ok' AND source LIKE 'tasks:%' \
                 AND source NOT LIKE '% (before delete)'",
                [],
                |r| r.get::<_, Option<i64>>(0),
            )
            .optional()?
            .flatten();
        let unfinished = conn
            .query_row(
                "SELECT started_at, error FROM sync_runs WHERE source LIKE 'tasks:%' \
                 AND source NOT LIKE '% (before delete)' \
                 AND id > coalesce((SELECT max(id) FROM sync_runs WHERE status = 'ok' \
                                    AND source LIKE 'tasks:%' \
                                    AND source NOT LIKE '% (before delete)'), 0) \
                 ORDER BY id DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        Ok(Freshness {
            last_ok,
            unfinished,
        })
    })
    }

    pub fn sample_presence(&self, sample: &str) -> Result<SamplePresence> {
        self.read(|conn| {
            let imported = conn
                .query_row(
                    "SELECT cohort, status FROM samples WHERE sample_id = ?1",
                    [sample],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let tasks: i64 = conn.query_row(
                "SELECT count(*) FROM tasks WHERE sample = ?1",
                [sample],
                |r| r.get(0),
            )?;
            Ok(SamplePresence {
                imported,
                tasks: tasks.max(0) as u64,
            })
        })
    }

    /// The catalog's tasks with this id (in `collection` when given); at most two, enough to tell
    /// an ambiguous id.
    pub fn log_refs(&self, task_id: &str, collection: Option<&str>) -> Result<Vec<LogRef>> {
        self.read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT collection, max(coalesce(runs, 0), attempts), log_uri, state, \
                    removed_at IS NOT NULL FROM tasks \
             WHERE task_id = ?1 AND (?2 IS NULL OR collection = ?2) LIMIT 2",
            )?;
            let rows = stmt
                .query_map(params![task_id, collection], |r| {
                    Ok(LogRef {
                        collection: r.get(0)?,
                        runs: r.get(1)?,
                        log_uri: r.get(2)?,
                        state: r.get(3)?,
                        removed: r.get(4)?,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            Ok(rows)
        })
    }

    /// The workflow order as `steps set` recorded it (only the steps named there).
    pub fn step_order(&self) -> Result<Vec<String>> {
        self.read(|conn| {
            let mut stmt = conn.prepare("SELECT collection FROM steps ORDER BY ordinal")?;
            let steps = stmt
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            Ok(steps)
        })
    }
}

/// The saved report that says which waiting tasks are held, and by what: the one place the
/// catalog words the flow's "blocked".
const BLOCKED_SAMPLES: &str = include_str!("../../queries/blocked-samples.sql");

/// Waiting tasks held for good per step, counted from `blocked-samples`' own rows.
fn blocked_per_step(conn: &Connection) -> Result<std::collections::HashMap<String, u64>> {
    let report = BLOCKED_SAMPLES.trim().trim_end_matches(';');
    // Waiting tasks only: a held task's own row (upstream '(gate)') is counted as held.
    let sql = format!(
        "SELECT step, count(DISTINCT task_id) FROM ({report}) \
         WHERE upstream_task <> '(gate)' GROUP BY step"
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(rusqlite::named_params! {":step": ""}, |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?.max(0) as u64))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// How fresh the catalog's tasks are.
#[derive(Debug, Clone, PartialEq)]
pub struct Freshness {
    /// When the last complete task sync finished (epoch ms).
    pub last_ok: Option<i64>,
    /// The newest task sync after that one, which did not finish (running now, or ended
    /// early): when it started and the error it recorded.
    pub unfinished: Option<(i64, Option<String>)>,
}

/// What the catalog knows of one sample: its imported row (if any) and how many tasks name it.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplePresence {
    /// (cohort, status) from the sample sheet.
    pub imported: Option<(Option<String>, String)>,
    pub tasks: u64,
}

/// Where a task's last log is, as the catalog last saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct LogRef {
    pub collection: String,
    pub state: String,
    /// Runs made (each run's log is RUN.log beside the last one).
    pub runs: u32,
    pub log_uri: Option<String>,
    /// Removed from the store (the catalog's history).
    pub removed: bool,
}

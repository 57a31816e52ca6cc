//! The catalog's history for `anamo report`, beside `progress.rs`'s per-step overview: tasks finished
//! per day and step, failures, and where each sample stands in each step (the least advanced
//! first, and counts per cohort for a cohort too large to list). Plain queries on a read-only
//! connection; the HTML belongs to `report/`.

use std::collections::{BTreeMap, BinaryHeap};

use rusqlite::params;

use super::CatalogRead;
use crate::error::Result;

/// Tasks of a step finished (done) on one UTC day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayCount {
    pub step: String,
    /// `YYYY-MM-DD`.
    pub day: String,
    pub done: u64,
}

impl CatalogRead {
    /// Done tasks per step and UTC day, oldest day first.
    pub fn finished_per_day(&self) -> Result<Vec<DayCount>> {
        self.read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT collection, date(finished_at / 1000, 'unixepoch') AS day, count(*)
             FROM done_tasks WHERE finished_at IS NOT NULL
             GROUP BY collection, day ORDER BY day, collection",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(DayCount {
                    step: r.get(0)?,
                    day: r.get(1)?,
                    done: r.get::<_, i64>(2)?.max(0) as u64,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// At most `limit` failed tasks, in workflow order, the latest first within a step; and how
    /// many there are in all.
    pub fn failures(&self, limit: usize) -> Result<(Vec<Failure>, u64)> {
        self.read(|conn| {
            let total: i64 = conn.query_row(
                "SELECT count(*) FROM task_progress WHERE state = 'failed' AND progress = 'failed'",
                [],
                |r| r.get(0),
            )?;
            let mut stmt = conn.prepare(
                // The progress comes off the index; the row is read for the listed ones only.
                "SELECT t.collection, t.task_id, t.sample, x.exit_code, substr(x.error_tail, -300)
             FROM task_progress t LEFT JOIN steps s ON s.collection = t.collection
             JOIN tasks x ON x.collection = t.collection AND x.task_id = t.task_id
             WHERE t.state = 'failed' AND t.progress = 'failed'
             ORDER BY s.ordinal IS NULL, s.ordinal, t.collection, t.finished_at DESC
             LIMIT ?1",
            )?;
            let rows = stmt.query_map(params![limit as i64], |r| {
                Ok(Failure {
                    step: r.get(0)?,
                    task_id: r.get(1)?,
                    sample: r.get(2)?,
                    exit_code: r.get(3)?,
                    error_tail: r.get(4)?,
                })
            })?;
            Ok((rows.collect::<rusqlite::Result<_>>()?, total.max(0) as u64))
        })
    }

    /// One streamed pass (the view is worked out once: at 100,000 samples a second read of it
    /// costs a second), keeping only the `limit` least advanced samples and the cohort counts.
    pub fn sample_standing(&self, limit: usize) -> Result<SampleStanding> {
        self.read(|conn| {
            let total: i64 = conn.query_row("SELECT count(*) FROM samples", [], |r| r.get(0))?;
            let mut stmt = conn.prepare(
                "SELECT sample_id, cohort, ordinal, collection, state FROM sample_progress
             ORDER BY sample_id",
            )?;
            let mut rows = stmt.query([])?;
            let mut heap: BinaryHeap<(u64, String, Option<String>, Vec<String>)> =
                BinaryHeap::new();
            let mut counts: BTreeMap<(String, i64, String, String), u64> = BTreeMap::new();
            let mut current: Option<Reading> = None;
            let finish = |sample: Reading, heap: &mut BinaryHeap<_>| {
                let Reading {
                    id,
                    cohort,
                    mut states,
                } = sample;
                states.sort();
                let done = states.iter().filter(|(_, s)| s == "done").count() as u64;
                heap.push((
                    done,
                    id,
                    cohort,
                    states.into_iter().map(|(_, s)| s).collect(),
                ));
                if heap.len() > limit {
                    heap.pop();
                }
            };
            while let Some(r) = rows.next()? {
                let id: String = r.get(0)?;
                let cohort: Option<String> = r.get(1)?;
                let ordinal: i64 = r.get(2)?;
                let step: String = r.get(3)?;
                let state: String = r.get(4)?;
                *counts
                    .entry((
                        cohort.clone().unwrap_or_else(|| "(none)".into()),
                        ordinal,
                        step,
                        state.clone(),
                    ))
                    .or_default() += 1;
                match &mut current {
                    Some(r) if r.id == id => r.states.push((ordinal, state)),
                    _ => {
                        if let Some(done) = current.take() {
                            finish(done, &mut heap);
                        }
                        current = Some(Reading {
                            id,
                            cohort,
                            states: vec![(ordinal, state)],
                        });
                    }
                }
            }
            if let Some(done) = current.take() {
                finish(done, &mut heap);
            }
            let listed = heap
                .into_sorted_vec()
                .into_iter()
                .map(|(_, sample, cohort, states)| SampleRow {
                    sample,
                    cohort,
                    states,
                })
                .collect();
            let cohorts = counts
                .into_iter()
                .map(|((cohort, _, step, state), samples)| CohortCount {
                    cohort,
                    step,
                    state,
                    samples,
                })
                .collect();
            Ok(SampleStanding {
                listed,
                total: total.max(0) as u64,
                cohorts,
            })
        })
    }

    /// When each source (tasks of a store, instances, a bucket) was last synced completely. The
    /// copies `tasks delete` makes of the tasks it removes are not syncs of the store: left out.
    pub fn last_syncs(&self) -> Result<Vec<(String, i64)>> {
        self.read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT source, max(finished_at) FROM sync_runs
             WHERE status = 'ok' AND finished_at IS NOT NULL
               AND source NOT LIKE '% (before delete)'
             GROUP BY source ORDER BY source",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    pub fn finished_over_time(&self, buckets: usize) -> Result<OverTime> {
        self.read(|conn| {
            let (from, to): (Option<i64>, Option<i64>) = conn.query_row(
                "SELECT min(finished_at), max(finished_at) FROM done_tasks
             WHERE finished_at IS NOT NULL",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            let (Some(from), Some(to)) = (from, to) else {
                return Ok(OverTime::default());
            };
            let buckets = buckets.max(1);
            let span = (to - from).max(1);
            let mut stmt = conn.prepare(
                "SELECT t.collection,
                    min(?3 - 1, (t.finished_at - ?1) * ?3 / ?2) AS bucket, count(*)
             FROM done_tasks t LEFT JOIN steps s ON s.collection = t.collection
             WHERE t.finished_at IS NOT NULL
             GROUP BY t.collection, bucket
             ORDER BY s.ordinal IS NULL, s.ordinal, t.collection, bucket",
            )?;
            let mut steps: Vec<(String, Vec<u64>)> = vec![];
            let mut rows = stmt.query(params![from, span, buckets as i64])?;
            while let Some(r) = rows.next()? {
                let step: String = r.get(0)?;
                let bucket = r.get::<_, i64>(1)?.clamp(0, buckets as i64 - 1) as usize;
                let n = r.get::<_, i64>(2)?.max(0) as u64;
                if steps.last().is_none_or(|(s, _)| *s != step) {
                    steps.push((step, vec![0; buckets]));
                }
                if let Some((_, counts)) = steps.last_mut() {
                    counts[bucket] += n;
                }
            }
            Ok(OverTime { from, to, steps })
        })
    }

    pub fn run_times(&self) -> Result<Vec<RunTimes>> {
        self.read(|conn| {
            let mut steps = conn.prepare(
                "SELECT t.collection, count(*) FROM done_tasks t
             LEFT JOIN steps s ON s.collection = t.collection
             WHERE t.started_at IS NOT NULL AND t.finished_at IS NOT NULL
             GROUP BY t.collection ORDER BY s.ordinal IS NULL, min(s.ordinal), t.collection",
            )?;
            let steps: Vec<(String, i64)> = steps
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            // One sort per step: the rows at the five places, by their rank.
            let mut at = conn.prepare(
                "WITH ranked AS (
                 SELECT (finished_at - started_at) / 1000.0 AS secs,
                        row_number() OVER (ORDER BY finished_at - started_at) - 1 AS k
                 FROM done_tasks
                 WHERE collection = ?1
                   AND started_at IS NOT NULL AND finished_at IS NOT NULL)
             SELECT k, secs FROM ranked WHERE k IN (?2, ?3, ?4, ?5, ?6)",
            )?;
            let mut out = vec![];
            for (step, n) in steps {
                let places: Vec<i64> = (0..5).map(|k| (n - 1).max(0) * k / 4).collect();
                let mut quartiles = [0.0; 5];
                let mut rows = at.query(params![
                    step, places[0], places[1], places[2], places[3], places[4]
                ])?;
                while let Some(r) = rows.next()? {
                    let (k, secs): (i64, f64) = (r.get(0)?, r.get(1)?);
                    for (q, place) in quartiles.iter_mut().zip(&places) {
                        if *place == k {
                            *q = secs;
                        }
                    }
                }
                out.push(RunTimes {
                    step,
                    tasks: n.max(0) as u64,
                    quartiles,
                });
            }
            Ok(out)
        })
    }

    /// The `limit` longest done runs, longest first.
    pub fn slowest(&self, limit: usize) -> Result<Vec<SlowTask>> {
        self.read(|conn| {
            let mut stmt = conn.prepare(
                // Ranked off the index; the owner is read from the row of the few listed.
                "SELECT d.collection, d.task_id, d.sample, d.secs, t.owner
             FROM (SELECT collection, task_id, sample,
                          (finished_at - started_at) / 1000.0 AS secs
                   FROM done_tasks
                   WHERE started_at IS NOT NULL AND finished_at IS NOT NULL
                   ORDER BY secs DESC LIMIT ?1) d
             JOIN tasks t ON t.collection = d.collection AND t.task_id = d.task_id
             ORDER BY d.secs DESC",
            )?;
            let rows = stmt.query_map(params![limit as i64], |r| {
                Ok(SlowTask {
                    step: r.get(0)?,
                    task_id: r.get(1)?,
                    sample: r.get(2)?,
                    seconds: r.get(3)?,
                    owner: r.get(4)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// How many EC2 instances the catalog has seen (`sync --instances` or `launch`).
    pub fn instance_count(&self) -> Result<u64> {
        self.read(|conn| {
            let n: i64 = conn.query_row("SELECT count(*) FROM instances", [], |r| r.get(0))?;
            Ok(n.max(0) as u64)
        })
    }

    /// The instances that ran tasks between `from` and `to` (each task's last run, as the task
    /// rows keep it), the first `limit` by launch time; and how many more there were.
    pub fn instance_timeline(
        &self,
        from: i64,
        to: i64,
        limit: usize,
    ) -> Result<(Vec<InstanceRuns>, u64)> {
        self.read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT i.instance_id, i.step, i.lifecycle, t.collection, t.task_id, t.state,
                    max(t.started_at, ?1),
                    min(coalesce(t.finished_at, i.terminated_at, ?2), ?2)
             FROM tasks t JOIN instances i ON i.instance_id = t.owner
             WHERE t.state IN ('done', 'failed', 'running') AND t.started_at IS NOT NULL
               AND t.started_at < ?2 AND coalesce(t.finished_at, i.terminated_at, ?2) > ?1
             ORDER BY i.launch_time, i.instance_id, t.started_at",
            )?;
            let mut rows = stmt.query(params![from, to])?;
            let mut out: Vec<InstanceRuns> = vec![];
            let mut more = 0u64;
            let mut skipping: Option<String> = None;
            while let Some(r) = rows.next()? {
                let id: String = r.get(0)?;
                let same = out.last().is_some_and(|i| i.instance_id == id);
                if !same && skipping.as_deref() != Some(&id) && out.len() >= limit {
                    more += 1;
                    skipping = Some(id);
                    continue;
                }
                if skipping.as_deref() == Some(&id) {
                    continue;
                }
                if !same {
                    out.push(InstanceRuns {
                        instance_id: id,
                        step: r.get(1)?,
                        lifecycle: r.get(2)?,
                        runs: vec![],
                    });
                }
                if let Some(i) = out.last_mut() {
                    i.runs.push(Run {
                        step: r.get(3)?,
                        task_id: r.get(4)?,
                        state: r.get(5)?,
                        start: r.get(6)?,
                        end: r.get(7)?,
                    });
                }
            }
            Ok((out, more))
        })
    }

    pub fn objects_by_kind(&self) -> Result<Vec<KindTotal>> {
        self.read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT coalesce(kind, 'other'), count(*), coalesce(sum(size), 0),
                    count(DISTINCT sample_id)
             FROM objects WHERE removed_at IS NULL
             GROUP BY 1 ORDER BY 1",
            )?;
            let rows = stmt.query_map([], |r| {
                let n = |i| r.get::<_, i64>(i).map(|v| v.max(0) as u64);
                Ok(KindTotal {
                    kind: r.get(0)?,
                    files: n(1)?,
                    bytes: n(2)?,
                    samples: n(3)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// Active samples with no live file of `kind` (the `samples-missing-files` report's rows):
    /// the first `limit` ids, and how many there are.
    pub fn samples_missing(&self, kind: &str, limit: usize) -> Result<(Vec<String>, u64)> {
        self.read(|conn| {
            let missing = "FROM samples s WHERE s.status <> 'dropped'
             AND NOT EXISTS (SELECT 1 FROM objects o WHERE o.sample_id = s.sample_id
                             AND o.kind = ?1 AND o.removed_at IS NULL)";
            let total: i64 =
                conn.query_row(&format!("SELECT count(*) {missing}"), [kind], |r| r.get(0))?;
            let mut stmt = conn.prepare(&format!(
                "SELECT s.sample_id {missing} ORDER BY s.sample_id LIMIT ?2"
            ))?;
            let ids = stmt
                .query_map(params![kind, limit as i64], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            Ok((ids, total.max(0) as u64))
        })
    }
}

/// A task that failed for good (the `failed-tasks` report's rows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub step: String,
    pub task_id: String,
    pub sample: Option<String>,
    pub exit_code: Option<i64>,
    pub error_tail: Option<String>,
}

/// One sample's state in every step (`sample_progress`), steps in workflow order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleRow {
    pub sample: String,
    pub cohort: Option<String>,
    pub states: Vec<String>,
}

/// Samples of a cohort in one state of one step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CohortCount {
    pub cohort: String,
    pub step: String,
    pub state: String,
    pub samples: u64,
}

/// Where the imported samples stand, from one pass over `sample_progress`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SampleStanding {
    /// The first `limit` samples, the least advanced first (fewest steps done, then id), with
    /// their state in each step in workflow order.
    pub listed: Vec<SampleRow>,
    /// How many samples are imported.
    pub total: u64,
    /// Samples per cohort (`(none)` without one), step and state; cohorts by name, steps in
    /// workflow order, states by name.
    pub cohorts: Vec<CohortCount>,
}

/// The sample being read from the stream: its id, cohort, and (ordinal, state) per step.
struct Reading {
    id: String,
    cohort: Option<String>,
    states: Vec<(i64, String)>,
}

/// Done tasks over time: the span of finish times cut into `buckets` equal parts, and per step
/// how many finished in each part (SQL does the counting: a million tasks stay in the catalog).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OverTime {
    /// First and last finish (epoch ms).
    pub from: i64,
    pub to: i64,
    /// Per step in workflow order: finishes per bucket.
    pub steps: Vec<(String, Vec<u64>)>,
}

/// How long a step's done tasks ran (finish - start), in seconds: the five-number summary,
/// each read at its place in the sorted run times (SQLite has no percentile function).
#[derive(Debug, Clone, PartialEq)]
pub struct RunTimes {
    pub step: String,
    pub tasks: u64,
    /// Minimum, lower quartile, median, upper quartile, maximum.
    pub quartiles: [f64; 5],
}

/// One of the longest runs.
#[derive(Debug, Clone, PartialEq)]
pub struct SlowTask {
    pub step: String,
    pub task_id: String,
    pub sample: Option<String>,
    pub seconds: f64,
    pub owner: Option<String>,
}

/// One task's last run on an instance, cut to a window (epoch ms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub step: String,
    pub task_id: String,
    /// done, failed or running (a running task ends at the window's end, or when its instance
    /// was seen terminated).
    pub state: String,
    pub start: i64,
    pub end: i64,
}

/// An instance and the runs it had in the window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceRuns {
    pub instance_id: String,
    pub step: Option<String>,
    pub lifecycle: Option<String>,
    pub runs: Vec<Run>,
}

/// The live S3 objects of one kind, as the last objects sync listed them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindTotal {
    pub kind: String,
    pub files: u64,
    pub bytes: u64,
    /// Samples with at least one file of the kind.
    pub samples: u64,
}

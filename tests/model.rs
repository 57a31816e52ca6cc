//! The judge of the one rule (README "Progress, defined once"): random histories of adds (lanes,
//! replacements, `--after`, `--replace`, from a machine without the catalog), runs that end done,
//! failed or killed mid-run (each reporting a random metric `q`, which step B's tasks gate on:
//! `--require 'q >= 50'`), retries, deletes in every state, re-adds, drops and re-activations,
//! releases of held tasks, and syncs, played on a real store and catalog beside a reference
//! model written here from the definition alone (it shares no code with what it judges). After
//! every operation the store's live tasks must equal the model's (what the flow promoted or
//! held included); after every sync every catalog surface must: each task's progress, each
//! sample's state per step, the step counts `status` prints (held among them), samples-left,
//! samples-done, failed-tasks, blocked-samples (held tasks among them) and throughput-by-day.
//! A failure is shrunk and printed as a shell script of anamo commands.
//!
//! `ANAMO_MODEL_CASES` sets how many histories (default 200 on SQLite, 50 on DynamoDB) and
//! `ANAMO_MODEL_SEED` a seed to replay; scripts/model-soak.sh runs thousands.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use anamo::catalog::Catalog;
use anamo::model::{AddOptions, NewTask, Outcome, Selector, TaskFilter, TaskState};
use anamo::store::dynamo::DynamoStore;
use anamo::store::{OpenMode, SqliteStore, TaskStore};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};

const STEPS: [&str; 3] = ["A", "B", "C"];
/// The step whose tasks carry a QC gate, `q >= THRESHOLD`, on what step A's tasks reported.
const GATED: usize = 1;
const THRESHOLD: u8 = 50;

thread_local! {
    /// Operations played and surfaces compared on this thread (one test's), for the figures a
    /// run prints.
    static OPS: Cell<u64> = const { Cell::new(0) };
    static COMPARED: Cell<u64> = const { Cell::new(0) };
    /// Held tasks seen in the store after an operation: that the gates were exercised.
    static HELD: Cell<u64> = const { Cell::new(0) };
}

/// Counts one surface compared with the model.
fn compared() {
    COMPARED.with(|c| c.set(c.get() + 1));
}
const SAMPLES: [&str; 3] = ["S1", "S2", "S3"];
/// Task ids of a sample in a step: the plain one, two lanes, and a replacement's id.
const IDS: [&str; 4] = ["", "-L1", "-L2", "-v2"];

#[derive(Debug, Clone)]
enum Op {
    Add {
        step: usize,
        sample: usize,
        id: usize,
        max_attempts: u32,
        replace: bool,
    },
    Run {
        step: usize,
        ok: bool,
        /// The metric `q` the run reports (step B's tasks require `q >= 50` of step A's).
        q: u8,
    },
    Kill {
        step: usize,
    },
    Retry {
        step: usize,
        sample: usize,
        id: usize,
    },
    Delete {
        step: usize,
        sample: usize,
        id: usize,
    },
    Drop {
        sample: usize,
    },
    Reactivate {
        sample: usize,
    },
    /// A person releases the sample's held B tasks.
    Release {
        sample: usize,
    },
    Sync,
}

fn task_id(sample: usize, id: usize) -> String {
    format!("{}{}", SAMPLES[sample], IDS[id])
}

fn op() -> impl Strategy<Value = Op> {
    let step = 0..STEPS.len();
    let sample = 0..SAMPLES.len();
    let id = 0..IDS.len();
    prop_oneof![
        6 => (step.clone(), sample.clone(), id.clone(), 1u32..=2, prop::bool::weighted(0.2)).prop_map(
            |(step, sample, id, max_attempts, replace)| Op::Add { step, sample, id, max_attempts, replace }
        ),
        8 => (step.clone(), prop::bool::weighted(0.7), 0u8..100).prop_map(|(step, ok, q)| Op::Run { step, ok, q }),
        1 => step.clone().prop_map(|step| Op::Kill { step }),
        2 => (step.clone(), sample.clone(), id.clone()).prop_map(|(step, sample, id)| Op::Retry { step, sample, id }),
        2 => (step.clone(), sample.clone(), id.clone()).prop_map(|(step, sample, id)| Op::Delete { step, sample, id }),
        1 => sample.clone().prop_map(|sample| Op::Drop { sample }),
        1 => sample.clone().prop_map(|sample| Op::Reactivate { sample }),
        1 => sample.clone().prop_map(|sample| Op::Release { sample }),
        2 => Just(Op::Sync),
    ]
}

fn history() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(op(), 5..40).prop_map(|mut ops| {
        ops.push(Op::Sync);
        ops
    })
}

// ---------------------------------------------------------------------------------------------
// The reference model, from the README's definition.

#[derive(Debug, Clone)]
struct MTask {
    step: usize,
    sample: usize,
    id: String,
    state: TaskState,
    /// Logical times: each operation is one tick later than the one before.
    created: u64,
    finished: Option<u64>,
    removed: bool,
    /// Removed as withdrawn with its dropped sample: adding it again is allowed.
    withdrawn: bool,
    attempts: u32,
    /// Runs ever made: never reset.
    runs: u32,
    max_attempts: u32,
    /// The `q` its last finished run reported (kept on its tombstone).
    q: Option<u8>,
}

#[derive(Debug, Default)]
struct Model {
    tasks: Vec<MTask>,
    dropped: BTreeSet<usize>,
    tick: u64,
}

impl Model {
    fn find(&mut self, step: usize, id: &str) -> Option<&mut MTask> {
        self.tasks.iter_mut().find(|t| t.step == step && t.id == id)
    }

    fn of(&self, sample: usize, step: usize) -> impl Iterator<Item = &MTask> {
        self.tasks
            .iter()
            .filter(move |t| t.sample == sample && t.step == step)
    }

    /// A task's standing; `with_drops`: false for what the store sees (it knows no drops).
    fn standing(&self, t: &MTask, with_drops: bool) -> &'static str {
        if with_drops && self.dropped.contains(&t.sample) {
            return "dropped";
        }
        if t.state == TaskState::Done {
            return "done";
        }
        if t.state == TaskState::Failed {
            let failed_at = t.finished.expect("a failed task has failed at some time");
            let replaced = self
                .of(t.sample, t.step)
                .any(|r| r.state == TaskState::Done && r.created > failed_at);
            if replaced {
                return "superseded";
            }
        }
        if t.removed {
            return "abandoned";
        }
        t.state.as_str()
    }

    fn step_state(&self, sample: usize, step: usize, with_drops: bool) -> &'static str {
        if with_drops && self.dropped.contains(&sample) {
            return "dropped";
        }
        let standings: Vec<&str> = self
            .of(sample, step)
            .map(|t| self.standing(t, with_drops))
            .collect();
        if standings.is_empty() {
            return "not added";
        }
        for s in ["failed", "held", "running", "todo", "waiting", "done"] {
            if standings.contains(&s) {
                return s;
            }
        }
        "abandoned"
    }

    /// Waiting (and held) tasks of the sample whose upstream step is done become todo, or
    /// held by B's gate, and held ones whose upstream is no longer done wait again (one pass,
    /// as the worker that finished a task of the sample, or a delete, promotes).
    fn promote(&mut self, sample: usize) {
        // A held task whose upstream is no longer done (re-run, a new lane) waits again.
        let again: Vec<usize> = (0..self.tasks.len())
            .filter(|&i| {
                let t = &self.tasks[i];
                t.sample == sample
                    && !t.removed
                    && t.state == TaskState::Held
                    && self.step_state(sample, t.step - 1, false) != "done"
            })
            .collect();
        for i in again {
            self.tasks[i].state = TaskState::Waiting;
        }
        let ready: Vec<usize> = (0..self.tasks.len())
            .filter(|&i| {
                let t = &self.tasks[i];
                t.sample == sample
                    && !t.removed
                    && matches!(t.state, TaskState::Waiting | TaskState::Held)
                    && self.step_state(sample, t.step - 1, false) == "done"
            })
            .collect();
        for i in ready {
            let (step, sample) = (self.tasks[i].step, self.tasks[i].sample);
            self.tasks[i].state = self.judged(step, sample);
        }
    }

    /// The state a task of `step` whose upstream is done settles in: B requires `q >= 50`
    /// of the A task that finished done last (live or removed); the others run.
    fn judged(&self, step: usize, sample: usize) -> TaskState {
        if step != GATED {
            return TaskState::Todo;
        }
        let latest = self
            .of(sample, step - 1)
            .filter(|u| self.standing(u, false) == "done" && u.q.is_some())
            .max_by_key(|u| u.finished);
        match latest.and_then(|u| u.q) {
            Some(q) if q >= THRESHOLD => TaskState::Todo,
            _ => TaskState::Held,
        }
    }

    /// Live tasks: (step, id) -> (state, runs).
    fn live(&self) -> BTreeMap<(String, String), (String, u32)> {
        self.tasks
            .iter()
            .filter(|t| !t.removed)
            .map(|t| {
                (
                    (STEPS[t.step].to_string(), t.id.clone()),
                    (t.state.to_string(), t.runs),
                )
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// The system under test: a store, a catalog, and the library calls the commands make.

struct System {
    store: Box<dyn TaskStore>,
    catalog: Catalog,
    catalog_path: std::path::PathBuf,
    dir: std::path::PathBuf,
}

fn new_task(step: usize, sample: usize, id: usize, max_attempts: u32) -> NewTask {
    NewTask {
        collection: STEPS[step].into(),
        task_id: task_id(sample, id),
        sample: Some(SAMPLES[sample].into()),
        script: "true".into(),
        attrs: Default::default(),
        max_attempts,
        timeout_secs: None,
        after: if step == 0 {
            vec![]
        } else {
            vec![STEPS[step - 1].into()]
        },
        require: if step == GATED {
            vec![format!("q >= {THRESHOLD}")]
        } else {
            vec![]
        },
    }
}

fn outcome(ok: bool, q: u8) -> Outcome {
    Outcome {
        exit_code: Some(if ok { 0 } else { 1 }),
        succeeded: ok,
        error_tail: (!ok).then(|| "boom".into()),
        log_uri: None,
        finished_at: anamo::clock::now_ms(),
        reported: anamo::model::Reported {
            metrics: [("q".to_string(), anamo::model::MetricValue::Number(q as f64))].into(),
            outputs: vec![],
        },
    }
}

fn fail(msg: String) -> TestCaseError {
    TestCaseError::fail(msg)
}

/// Lets the clock move on, so that the store's millisecond times order operations as the
/// model's ticks do ("added after that failure").
fn tick(model: &mut Model) {
    model.tick += 1;
    std::thread::sleep(Duration::from_millis(2));
}

fn apply(sys: &mut System, model: &mut Model, op: &Op) -> Result<(), TestCaseError> {
    OPS.with(|c| c.set(c.get() + 1));
    let s = sys.store.as_ref();
    match *op {
        Op::Add {
            step,
            sample,
            id,
            max_attempts,
            replace,
        } => {
            let t = new_task(step, sample, id, max_attempts);
            let opts = AddOptions {
                replace,
                allow_missing_upstream: true,
            };
            let report = s
                .add_tasks(std::slice::from_ref(&t), opts)
                .map_err(|e| fail(format!("add: {e}")))?;
            let start = if step == 0 {
                TaskState::Todo
            } else if model.step_state(sample, step - 1, false) == "done" {
                model.judged(step, sample)
            } else {
                TaskState::Waiting
            };
            let now = model.tick;
            if model.dropped.contains(&sample) {
                // Nothing of a dropped sample is added, whatever --replace says.
                prop_assert_eq!((report.added, report.replaced), (0, 0));
                prop_assert_eq!(report.skipped.len(), 1);
                tick(model);
                return compare_store(sys.store.as_ref(), model);
            }
            match model.find(step, &t.task_id) {
                // Withdrawn with its sample: added again, as new (its runs number on).
                Some(m) if m.withdrawn && m.removed => {
                    prop_assert_eq!((report.added, report.replaced), (1, 0));
                    m.created = now;
                    m.removed = false;
                    m.withdrawn = false;
                    m.state = start;
                    m.attempts = 0;
                    m.finished = None;
                    m.max_attempts = max_attempts;
                    m.q = None;
                }
                Some(_) if !replace => {
                    prop_assert_eq!(report.skipped.len(), 1, "a task seen before is skipped");
                }
                Some(m) => {
                    // Back from removal it is added again; a live one is replaced.
                    let (added, replaced) = if m.removed { (1, 0) } else { (0, 1) };
                    prop_assert_eq!((report.added, report.replaced), (added, replaced));
                    if m.removed {
                        m.created = now;
                    }
                    m.removed = false;
                    m.withdrawn = false;
                    m.state = start;
                    m.attempts = 0;
                    m.finished = None;
                    m.max_attempts = max_attempts;
                    m.q = None;
                }
                None => {
                    prop_assert_eq!(report.added, 1);
                    model.tasks.push(MTask {
                        step,
                        sample,
                        id: t.task_id.clone(),
                        state: start,
                        created: now,
                        finished: None,
                        removed: false,
                        withdrawn: false,
                        attempts: 0,
                        runs: 0,
                        max_attempts,
                        q: None,
                    });
                }
            }
        }
        Op::Run { step, ok, q } => {
            let claim = s
                .claim(STEPS[step], "model", Duration::from_secs(60))
                .map_err(|e| fail(format!("claim: {e}")))?;
            let Some(claim) = claim else {
                let claimable = model
                    .tasks
                    .iter()
                    .any(|t| t.step == step && !t.removed && t.state == TaskState::Todo);
                prop_assert!(
                    !claimable,
                    "claim found nothing while the model has todo tasks"
                );
                return Ok(());
            };
            let now = model.tick;
            let m = model
                .find(step, &claim.task.task_id)
                .filter(|m| !m.removed && m.state == TaskState::Todo)
                .ok_or_else(|| fail(format!("claimed {} which is not todo", claim.task.task_id)))?;
            m.attempts += 1;
            m.runs += 1;
            let state = s
                .finish(&claim, &outcome(ok, q))
                .map_err(|e| fail(format!("finish: {e}")))?;
            m.finished = Some(now);
            m.q = Some(q);
            m.state = if ok {
                TaskState::Done
            } else if m.attempts < m.max_attempts {
                TaskState::Todo
            } else {
                TaskState::Failed
            };
            prop_assert_eq!(state, Some(m.state));
            let sample = m.sample;
            if ok {
                s.promote(SAMPLES[sample])
                    .map_err(|e| fail(format!("promote: {e}")))?;
                model.promote(sample);
            }
        }
        Op::Kill { step } => {
            let claim = s
                .claim(STEPS[step], "doomed", Duration::from_millis(1))
                .map_err(|e| fail(format!("claim: {e}")))?;
            let Some(claim) = claim else { return Ok(()) };
            std::thread::sleep(Duration::from_millis(5));
            s.release_stale(Some(STEPS[step]))
                .map_err(|e| fail(format!("release_stale: {e}")))?;
            let now = model.tick;
            let m = model
                .find(step, &claim.task.task_id)
                .ok_or_else(|| fail("killed an unknown task".into()))?;
            m.attempts += 1;
            m.runs += 1;
            if m.attempts >= m.max_attempts {
                m.state = TaskState::Failed;
                m.finished = Some(now);
            } else {
                m.state = TaskState::Todo;
            }
        }
        Op::Retry { step, sample, id } => {
            let tid = task_id(sample, id);
            anamo::store::flow::retry_unreplaced(s, STEPS[step], &Selector::Ids(vec![tid.clone()]))
                .map_err(|e| fail(format!("retry: {e}")))?;
            // A failure a fix replaced is left alone.
            let replaced = model
                .tasks
                .iter()
                .find(|t| t.step == step && t.id == tid)
                .is_some_and(|t| model.standing(t, false) == "superseded");
            if let Some(m) = model.find(step, &tid)
                && !m.removed
                && m.state == TaskState::Failed
                && !replaced
            {
                m.state = TaskState::Todo;
                m.attempts = 0;
                m.finished = None;
            }
        }
        Op::Delete { step, sample, id } => {
            let tid = task_id(sample, id);
            anamo::sync::delete_with_history(
                s,
                &mut sys.catalog,
                STEPS[step],
                &Selector::Ids(vec![tid.clone()]),
            )
            .map_err(|e| fail(format!("delete: {e}")))?;
            if let Some(m) = model.find(step, &tid)
                && !m.removed
            {
                m.removed = true;
                let unfinished = m.state != TaskState::Done;
                if unfinished {
                    model.promote(sample);
                }
            }
        }
        Op::Drop { sample } => {
            sys.catalog
                .drop_sample(SAMPLES[sample], "model")
                .map_err(|e| fail(format!("drop: {e}")))?;
            anamo::sync::drop_from_queue(s, &mut sys.catalog, SAMPLES[sample], "model", false)
                .map_err(|e| fail(format!("withdraw: {e}")))?;
            model.dropped.insert(sample);
            for t in model
                .tasks
                .iter_mut()
                .filter(|t| t.sample == sample && !t.removed)
            {
                if matches!(
                    t.state,
                    TaskState::Waiting | TaskState::Held | TaskState::Todo
                ) {
                    t.removed = true;
                    t.withdrawn = true;
                }
            }
        }
        Op::Reactivate { sample } => {
            let sheet = sys.dir.join("active.csv");
            std::fs::write(
                &sheet,
                format!("sample_id,status\n{},active\n", SAMPLES[sample]),
            )
            .map_err(|e| fail(format!("{e}")))?;
            let imported = sys
                .catalog
                .import_samples(&sheet)
                .map_err(|e| fail(format!("reactivate: {e}")))?;
            for (back, _) in &imported.reactivated {
                s.reinstate_sample(back)
                    .map_err(|e| fail(format!("reinstate: {e}")))?;
            }
            model.dropped.remove(&sample);
        }
        Op::Release { sample } => {
            let held: Vec<anamo::model::Task> = s
                .scan(
                    &TaskFilter {
                        collection: Some(STEPS[GATED].into()),
                        state: Some(TaskState::Held),
                        sample: Some(SAMPLES[sample].into()),
                        task_id: None,
                    },
                    None,
                    1_000,
                )
                .map_err(|e| fail(format!("scan: {e}")))?
                .tasks;
            for t in held {
                let why = anamo::model::Settle::Release("model".into());
                s.settle_task(&t.collection, &t.task_id, t.version, &why)
                    .map_err(|e| fail(format!("release: {e}")))?;
            }
            for t in model
                .tasks
                .iter_mut()
                .filter(|t| t.sample == sample && t.step == GATED && !t.removed)
            {
                if t.state == TaskState::Held {
                    t.state = TaskState::Todo;
                }
            }
        }
        Op::Sync => {
            let bar = indicatif::ProgressBar::hidden();
            anamo::sync::sync_tasks(s, &mut sys.catalog, &Default::default(), &bar)
                .map_err(|e| fail(format!("sync: {e}")))?;
            compare_catalog(sys, model)?;
        }
    }
    tick(model);
    compare_store(sys.store.as_ref(), model)
}

fn compare_store(s: &dyn TaskStore, model: &Model) -> Result<(), TestCaseError> {
    let page = s
        .scan(&TaskFilter::default(), None, 10_000)
        .map_err(|e| fail(format!("scan: {e}")))?;
    let live: BTreeMap<(String, String), (String, u32)> = page
        .tasks
        .iter()
        .map(|t| {
            (
                (t.collection.clone(), t.task_id.clone()),
                (t.state.to_string(), t.runs),
            )
        })
        .collect();
    compared();
    let held = live.values().filter(|(state, _)| state == "held").count() as u64;
    HELD.with(|c| c.set(c.get() + held));
    prop_assert_eq!(live, model.live(), "the store's live tasks");
    Ok(())
}

/// Rows of a query as strings.
fn rows(
    path: &Path,
    sql: &str,
    params: &[(&str, &str)],
) -> Result<Vec<Vec<String>>, TestCaseError> {
    let conn = anamo::catalog::CatalogRead::open(path).map_err(|e| fail(format!("{e}")))?;
    let params: BTreeMap<String, String> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let table = anamo::query::table(&conn, sql, &params, usize::MAX)
        .map_err(|e| fail(format!("{sql}: {e}")))?;
    Ok(table
        .rows
        .into_iter()
        .map(|r| {
            r.into_iter()
                .map(|v| match v {
                    serde_json::Value::String(s) => s,
                    v => v.to_string(),
                })
                .collect()
        })
        .collect())
}

fn saved(name: &str) -> String {
    anamo::query::saved::built_in(name).expect(name).sql
}

fn compare_catalog(sys: &System, model: &Model) -> Result<(), TestCaseError> {
    let path = &sys.catalog_path;
    // Each task's progress.
    let got: BTreeSet<Vec<String>> = rows(
        path,
        "SELECT collection, task_id, progress FROM task_progress",
        &[],
    )?
    .into_iter()
    .collect();
    let want: BTreeSet<Vec<String>> = model
        .tasks
        .iter()
        .map(|t| {
            vec![
                STEPS[t.step].to_string(),
                t.id.clone(),
                model.standing(t, true).to_string(),
            ]
        })
        .collect();
    compared();
    prop_assert_eq!(got, want, "task_progress");
    // Each sample's state per step.
    let got: BTreeSet<Vec<String>> = rows(
        path,
        "SELECT sample_id, collection, state FROM sample_progress",
        &[],
    )?
    .into_iter()
    .collect();
    let mut want = BTreeSet::new();
    for (si, sample) in SAMPLES.iter().enumerate() {
        for (st, step) in STEPS.iter().enumerate() {
            want.insert(vec![
                sample.to_string(),
                step.to_string(),
                model.step_state(si, st, true).to_string(),
            ]);
        }
    }
    compared();
    prop_assert_eq!(got.clone(), want, "sample_progress");
    // The report's sample grid: every sample, its state per step in workflow order.
    let conn = anamo::catalog::CatalogRead::open(path).map_err(|e| fail(format!("{e}")))?;
    let grid = conn
        .sample_standing(1_000)
        .map_err(|e| fail(format!("{e}")))?;
    let cells: BTreeSet<Vec<String>> = grid
        .listed
        .iter()
        .flat_map(|row| {
            row.states
                .iter()
                .zip(STEPS)
                .map(|(state, step)| vec![row.sample.clone(), step.to_string(), state.clone()])
        })
        .collect();
    compared();
    prop_assert_eq!(cells, got, "the report's sample grid");
    // The step counts `status` prints.
    let columns = [
        "waiting",
        "held",
        "todo",
        "running",
        "done",
        "failed",
        "abandoned",
        "superseded",
        "dropped",
    ];
    let got: BTreeMap<String, Vec<String>> = rows(
        path,
        &format!("SELECT collection, {} FROM progress", columns.join(", ")),
        &[],
    )?
    .into_iter()
    .map(|mut r| (r.remove(0), r))
    .collect();
    let mut want = BTreeMap::new();
    for (st, step) in STEPS.iter().enumerate() {
        let of_step: Vec<&MTask> = model.tasks.iter().filter(|t| t.step == st).collect();
        if of_step.is_empty() {
            continue;
        }
        let counts = columns
            .iter()
            .map(|c| {
                of_step
                    .iter()
                    .filter(|t| model.standing(t, true) == *c)
                    .count()
                    .to_string()
            })
            .collect();
        want.insert(step.to_string(), counts);
    }
    compared();
    prop_assert_eq!(got, want, "progress (status)");
    // `status` itself: its rows, blocked work included.
    let conn = anamo::catalog::CatalogRead::open(path).map_err(|e| fail(format!("{e}")))?;
    let overview = conn.overview().map_err(|e| fail(format!("{e}")))?;
    let blocked = model_blocked(model);
    for (st, step) in STEPS.iter().enumerate() {
        let row = overview.iter().find(|r| r.step == *step);
        let count = |what: &str| {
            model
                .tasks
                .iter()
                .filter(|t| t.step == st && model.standing(t, true) == what)
                .count() as u64
        };
        let held: BTreeSet<&String> = blocked
            .iter()
            .filter(|b| b[0] == *step && b[2] != "(gate)")
            .map(|b| &b[1])
            .collect();
        let want = (
            count("waiting"),
            count("held"),
            count("todo"),
            count("running"),
            count("done"),
            count("failed"),
            count("abandoned"),
            count("superseded"),
            count("dropped"),
            held.len() as u64,
        );
        let got = row.map_or((0, 0, 0, 0, 0, 0, 0, 0, 0, 0), |r| {
            (
                r.waiting,
                r.held,
                r.todo,
                r.running,
                r.done,
                r.failed,
                r.abandoned,
                r.superseded,
                r.dropped,
                r.blocked,
            )
        });
        compared();
        prop_assert_eq!(got, want, "status row of {}", step);
        // The report's tasks-done-per-day table, summed over the days.
        let per_day: u64 = conn
            .finished_per_day()
            .map_err(|e| fail(format!("{e}")))?
            .iter()
            .filter(|d| d.step == *step)
            .map(|d| d.done)
            .sum();
        compared();
        prop_assert_eq!(per_day, want.4, "the report's per-day table for {}", step);
        if let Some(r) = row {
            let left = want.0 - want.9 + want.2 + want.3;
            let eta = r.eta_hours(anamo::clock::now_ms());
            prop_assert!(
                (eta == Some(0.0))
                    == (left == 0 && want.9 == 0 && want.5 == 0 && want.1 == 0 && r.total > 0),
                "status says done for {} only when nothing is left or blocked",
                step
            );
        }
    }
    for (st, step) in STEPS.iter().enumerate() {
        // samples-left
        let got: BTreeSet<Vec<String>> = rows(path, &saved("samples-left"), &[("step", step)])?
            .into_iter()
            .map(|r| vec![r[0].clone(), r[2].clone()])
            .collect();
        let want: BTreeSet<Vec<String>> = (0..SAMPLES.len())
            .filter(|si| !model.dropped.contains(si))
            .map(|si| (si, model.step_state(si, st, true)))
            .filter(|(_, state)| *state != "done")
            .map(|(si, state)| vec![SAMPLES[si].to_string(), state.to_string()])
            .collect();
        compared();
        prop_assert_eq!(got, want, "samples-left {}", step);
        // samples-done: done in this step and every one before it.
        let got: BTreeSet<String> = rows(path, &saved("samples-done"), &[("step", step)])?
            .into_iter()
            .map(|r| r[0].clone())
            .collect();
        let want: BTreeSet<String> = (0..SAMPLES.len())
            .filter(|si| !model.dropped.contains(si))
            .filter(|&si| (0..=st).all(|up| model.step_state(si, up, true) == "done"))
            .map(|si| SAMPLES[si].to_string())
            .collect();
        compared();
        prop_assert_eq!(got, want, "samples-done {}", step);
        // throughput-by-day, summed over the days.
        let got: u64 = rows(path, &saved("throughput-by-day"), &[("step", step)])?
            .iter()
            .map(|r| r[2].parse::<u64>().unwrap_or(0))
            .sum();
        let want = model
            .tasks
            .iter()
            .filter(|t| t.step == st && model.standing(t, true) == "done")
            .count() as u64;
        compared();
        prop_assert_eq!(got, want, "throughput-by-day {}", step);
    }
    // status --sample (sample-timeline): each task's standing and the sample's state per step.
    for (si, sample) in SAMPLES.iter().enumerate() {
        let got: BTreeSet<Vec<String>> =
            rows(path, &saved("sample-timeline"), &[("sample", sample)])?
                .into_iter()
                .map(|r| {
                    let id = if r[1] == "null" {
                        String::new()
                    } else {
                        r[1].clone()
                    };
                    vec![r[0].clone(), id, r[2].clone(), r[r.len() - 1].clone()]
                })
                .collect();
        let mut want = BTreeSet::new();
        for (st, step) in STEPS.iter().enumerate() {
            let step_state = model.step_state(si, st, true);
            let mut any = false;
            for t in model.of(si, st) {
                any = true;
                want.insert(vec![
                    step.to_string(),
                    t.id.clone(),
                    model.standing(t, true).to_string(),
                    step_state.to_string(),
                ]);
            }
            if !any {
                want.insert(vec![
                    step.to_string(),
                    String::new(),
                    step_state.to_string(),
                    step_state.to_string(),
                ]);
            }
        }
        compared();
        prop_assert_eq!(got, want, "status --sample {}", sample);
    }
    // failed-tasks
    let got: BTreeSet<Vec<String>> = rows(path, &saved("failed-tasks"), &[("step", "")])?
        .into_iter()
        .map(|r| vec![r[0].clone(), r[1].clone()])
        .collect();
    let want: BTreeSet<Vec<String>> = model
        .tasks
        .iter()
        .filter(|t| model.standing(t, true) == "failed")
        .map(|t| vec![STEPS[t.step].to_string(), t.id.clone()])
        .collect();
    compared();
    prop_assert_eq!(got, want, "failed-tasks");
    // blocked-samples: each waiting task and why it is held.
    let got: BTreeSet<Vec<String>> = rows(path, &saved("blocked-samples"), &[("step", "")])?
        .into_iter()
        .map(|r| vec![r[1].clone(), r[2].clone(), r[4].clone(), r[5].clone()])
        .collect();
    compared();
    prop_assert_eq!(got, model_blocked(model), "blocked-samples");
    Ok(())
}

/// (step, task, upstream task, upstream state) of every waiting task held by what only a
/// person can fix, following chains, and of every task a QC gate holds (`(gate)`).
fn model_blocked(model: &Model) -> BTreeSet<Vec<String>> {
    let waiting: Vec<&MTask> = model
        .tasks
        .iter()
        .filter(|t| model.standing(t, true) == "waiting")
        .collect();
    let mut held: BTreeSet<Vec<String>> = BTreeSet::new();
    let mut held_ids: BTreeSet<(usize, String)> = BTreeSet::new();
    for w in &waiting {
        let up = w.step - 1;
        for u in model.of(w.sample, up) {
            // A failure whose fix (a task added after it) is under way holds nothing for good.
            let fixing = model.of(w.sample, up).any(|r| {
                !r.removed
                    && matches!(
                        r.state,
                        TaskState::Todo | TaskState::Running | TaskState::Waiting
                    )
                    && u.finished.is_some_and(|f| r.created > f)
            });
            if model.standing(u, true) == "held" {
                held.insert(vec![
                    STEPS[w.step].into(),
                    w.id.clone(),
                    u.id.clone(),
                    "held".into(),
                ]);
                held_ids.insert((w.step, w.id.clone()));
            }
            if model.standing(u, true) == "failed" && !fixing {
                held.insert(vec![
                    STEPS[w.step].into(),
                    w.id.clone(),
                    u.id.clone(),
                    "failed".into(),
                ]);
                held_ids.insert((w.step, w.id.clone()));
            }
        }
        let state = model.step_state(w.sample, up, true);
        if state == "not added" || state == "abandoned" {
            held.insert(vec![
                STEPS[w.step].into(),
                w.id.clone(),
                "(none)".into(),
                state.into(),
            ]);
            held_ids.insert((w.step, w.id.clone()));
        }
    }
    // The tasks a gate holds, themselves.
    for t in model
        .tasks
        .iter()
        .filter(|t| model.standing(t, true) == "held")
    {
        held.insert(vec![
            STEPS[t.step].into(),
            t.id.clone(),
            "(gate)".into(),
            "held".into(),
        ]);
    }
    // Held through a held task upstream, step by step (A -> B -> C).
    for (st, step) in STEPS.iter().enumerate().skip(1) {
        for w in waiting.iter().filter(|w| w.step == st) {
            let above: Vec<String> = waiting
                .iter()
                .filter(|h| h.step == st - 1 && h.sample == w.sample)
                .filter(|h| held_ids.contains(&(h.step, h.id.clone())))
                .map(|h| h.id.clone())
                .collect();
            for h in above {
                held.insert(vec![step.to_string(), w.id.clone(), h, "blocked".into()]);
                held_ids.insert((w.step, w.id.clone()));
            }
        }
    }
    held
}

/// The history as a shell script of anamo commands that replays it.
fn as_script(ops: &[Op]) -> String {
    let mut out = String::from(
        "# replay: in an empty folder, with anamo on PATH\nprintf 'sample_id\\nS1\\nS2\\nS3\\n' > samples.csv && anamo samples import samples.csv\n",
    );
    for op in ops {
        let line = match *op {
            Op::Add {
                step,
                sample,
                id,
                max_attempts,
                replace,
            } => format!(
                "anamo tasks add -c {} --id {} --sample {} --script 'echo q=$(cat q) >> \"$ANAMO_METRICS\"; exit $(cat outcome)' --max-attempts {max_attempts}{}{}{}",
                STEPS[step],
                task_id(sample, id),
                SAMPLES[sample],
                if step > 0 {
                    format!(" --after {} --allow-missing-upstream", STEPS[step - 1])
                } else {
                    String::new()
                },
                if replace { " --replace" } else { "" },
                if step == GATED {
                    format!(" --require 'q >= {THRESHOLD}'")
                } else {
                    String::new()
                }
            ),
            Op::Run { step, ok, q } => format!(
                "echo {} > outcome && echo {q} > q && anamo worker -c {} --max-tasks 1",
                if ok { 0 } else { 1 },
                STEPS[step]
            ),
            Op::Release { sample } => format!(
                "anamo tasks release -c {} --sample {} --reason model",
                STEPS[GATED], SAMPLES[sample]
            ),
            Op::Kill { step } => format!(
                "echo 0 > outcome && (anamo worker -c {0} --max-tasks 1 --lease 1s & sleep 0.2; kill -9 $!); sleep 1.1; anamo tasks release-stale -c {0}",
                STEPS[step]
            ),
            Op::Retry { step, sample, id } => format!(
                "anamo tasks retry -c {} --id {}",
                STEPS[step],
                task_id(sample, id)
            ),
            Op::Delete { step, sample, id } => format!(
                "anamo tasks delete -c {} --id {}",
                STEPS[step],
                task_id(sample, id)
            ),
            Op::Drop { sample } => format!("anamo samples drop {} --reason model", SAMPLES[sample]),
            Op::Reactivate { sample } => format!(
                "printf 'sample_id,status\\n{},active\\n' > active.csv && anamo samples import active.csv",
                SAMPLES[sample]
            ),
            Op::Sync => "anamo sync && anamo status".into(),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// Plays one history on a fresh system.
fn play(open: &dyn Fn(&Path) -> Box<dyn TaskStore>, ops: &[Op]) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().map_err(|e| fail(format!("{e}")))?;
    let catalog_path = dir.path().join("anamo.db");
    let mut catalog = Catalog::open(&catalog_path).map_err(|e| fail(format!("{e}")))?;
    let sheet = dir.path().join("samples.csv");
    std::fs::write(&sheet, "sample_id\nS1\nS2\nS3\n").map_err(|e| fail(format!("{e}")))?;
    catalog
        .import_samples(&sheet)
        .map_err(|e| fail(format!("{e}")))?;
    catalog
        .set_steps(&STEPS.map(String::from))
        .map_err(|e| fail(format!("{e}")))?;
    let mut sys = System {
        store: open(dir.path()),
        catalog,
        catalog_path,
        dir: dir.path().to_path_buf(),
    };
    let mut model = Model::default();
    for op in ops {
        apply(&mut sys, &mut model, op)?;
    }
    Ok(())
}

/// Runs `cases` histories from a fixed seed and as many from a random one (printed), and
/// panics with the shrunk history as a script when one fails.
fn judge(store: &str, cases: u32, open: &dyn Fn(&Path) -> Box<dyn TaskStore>) {
    let cases = std::env::var("ANAMO_MODEL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    let random: u64 = std::env::var("ANAMO_MODEL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| anamo::clock::now_ms() as u64);
    for (label, seed, n) in [
        ("fixed", 20261202u64, cases / 2),
        ("random", random, cases - cases / 2),
    ] {
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&seed.to_le_bytes());
        let config = Config {
            cases: n,
            failure_persistence: None,
            max_shrink_iters: 2_000,
            ..Config::default()
        };
        let mut runner =
            TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes));
        let (ops, seen, held) = (
            OPS.with(Cell::get),
            COMPARED.with(Cell::get),
            HELD.with(Cell::get),
        );
        let result = runner.run(&history(), |ops| play(open, &ops));
        eprintln!(
            "model test on {store}: {n} histories from the {label} seed {seed}: {} operations, \
             {} surfaces compared, {} held task(s) seen, {} disagreement(s)",
            OPS.with(Cell::get) - ops,
            COMPARED.with(Cell::get) - seen,
            HELD.with(Cell::get) - held,
            result.is_err() as u32
        );
        if let Err(e) = result {
            let script = match &e {
                proptest::test_runner::TestError::Fail(_, ops) => as_script(ops),
                _ => String::new(),
            };
            panic!(
                "the {store} store or catalog disagrees with the model (seed {seed}, \
                 ANAMO_MODEL_SEED={seed} replays it): {e}\nshrunk history:\n{script}"
            );
        }
    }
}

#[test]
fn every_surface_agrees_with_the_model_on_sqlite() {
    judge("SQLite", 200, &|dir| {
        Box::new(SqliteStore::open(&dir.join("tasks.db"), OpenMode::Create).expect("store"))
    });
}

#[test]
fn every_surface_agrees_with_the_model_on_dynamodb() {
    let _alone = crate::harness::heavy();
    let Some(moto) = crate::harness::moto::Moto::start() else {
        return;
    };
    let aws = moto.aws();
    let n = std::sync::atomic::AtomicU64::new(0);
    judge("DynamoDB", 50, &|_dir| {
        let table = format!(
            "model-{}",
            n.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let store = DynamoStore::connect(&table, &aws).expect("connect");
        store.init().expect("table");
        Box::new(DynamoStore::open(&table, &aws).expect("store"))
    });
}

//! One behaviour suite for every task store: the same functions run against each backend, so
//! the stores cannot drift. Each backend provides a fixture that opens fresh handles onto one
//! empty store.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use anamo::model::{
    AddOptions, Attrs, MetricValue, NewTask, Outcome, Output, Reported, Selector, TaskFilter,
    TaskState,
};
use anamo::store::dynamo::DynamoStore;
use anamo::store::flow;
use anamo::store::{OpenMode, SqliteStore, TaskStore};

/// Opens handles onto one store (as separate processes would).
pub trait Fixture {
    fn open(&self) -> Box<dyn TaskStore>;
    /// False when the backend cannot run here (an emulator not installed outside CI).
    fn available(&self) -> bool {
        true
    }
}

fn task(collection: &str, id: &str) -> NewTask {
    NewTask {
        collection: collection.into(),
        task_id: id.into(),
        sample: Some(format!("sample-{id}")),
        script: format!("echo {id}"),
        attrs: Attrs::from([("ref".to_string(), "hg38".to_string())]),
        max_attempts: 2,
        timeout_secs: None,
        after: vec![],
        require: vec![],
    }
}

fn tasks(collection: &str, n: usize) -> Vec<NewTask> {
    (0..n)
        .map(|i| task(collection, &format!("t{i:04}")))
        .collect()
}

fn outcome(succeeded: bool) -> Outcome {
    Outcome {
        exit_code: Some(if succeeded { 0 } else { 1 }),
        succeeded,
        error_tail: (!succeeded).then(|| "boom".to_string()),
        log_uri: Some("/logs/x.log".into()),
        finished_at: anamo::clock::now_ms(),
        reported: Reported::default(),
    }
}

/// A report as a script would make it: coverage and a sex call, one CRAM.
fn report(coverage: f64) -> Reported {
    Reported {
        metrics: [
            ("mean_coverage".to_string(), MetricValue::Number(coverage)),
            ("sex".to_string(), MetricValue::Text("F".into())),
        ]
        .into(),
        outputs: vec![Output {
            kind: "cram".into(),
            uri: "s3://cohort/S1.cram".into(),
        }],
    }
}

const LEASE: Duration = Duration::from_secs(60);

pub fn add_is_idempotent_and_replace_resets(f: &dyn Fixture) {
    let s = f.open();
    let r = s.add(&tasks("A", 3), false).unwrap();
    assert_eq!((r.added, r.replaced, r.skipped.len()), (3, 0, 0));
    let r = s.add(&tasks("A", 4), false).unwrap();
    assert_eq!((r.added, r.skipped.len()), (1, 3));
    assert_eq!(
        (
            r.skipped[0].collection.as_str(),
            r.skipped[0].task_id.as_str()
        ),
        ("A", "t0000")
    );
    assert_eq!(
        r.skipped[0].seen,
        anamo::model::Seen::Present(TaskState::Todo)
    );
    let c = s.claim("A", "w1", LEASE).unwrap().unwrap();
    let mut new = task("A", &c.task.task_id);
    new.script = "echo replaced".into();
    let r = s.add(&[new], true).unwrap();
    assert_eq!(r.replaced, 1);
    let t = s.get("A", &c.task.task_id).unwrap().unwrap();
    assert_eq!(
        (t.state, t.attempts, t.script.as_str()),
        (TaskState::Todo, 0, "echo replaced")
    );
    assert_eq!(
        s.finish(&c, &outcome(true)).unwrap(),
        None,
        "replaced task is not the claimed one"
    );
}

pub fn claim_takes_tasks_in_order_with_a_lease(f: &dyn Fixture) {
    let s = f.open();
    assert!(s.claim("A", "w1", LEASE).unwrap().is_none(), "empty store");
    s.add(&tasks("A", 2), false).unwrap();
    s.add(&tasks("B", 1), false).unwrap();
    let before = anamo::clock::now_ms();
    let c = s.claim("A", "w1", LEASE).unwrap().unwrap();
    let t = &c.task;
    // The SQLite store hands out the oldest first; DynamoDB picks among the first few.
    assert_eq!(t.collection, "A");
    assert!(
        ["t0000", "t0001"].contains(&t.task_id.as_str()),
        "{}",
        t.task_id
    );
    assert_eq!(
        (t.state, t.attempts, t.owner.as_deref()),
        (TaskState::Running, 1, Some("w1"))
    );
    assert!(t.lease_until.unwrap() >= before + 59_000);
    assert_eq!(t.attrs["ref"], "hg38");
    assert_eq!(t.sample, Some(format!("sample-{}", t.task_id)));
    let c2 = s.claim("A", "w2", LEASE).unwrap().unwrap();
    assert_ne!(
        c2.task.task_id, c.task.task_id,
        "a held task is not claimed twice"
    );
    assert!(
        s.claim("A", "w3", LEASE).unwrap().is_none(),
        "running tasks are not claimable"
    );
    assert_eq!(
        s.claim("B", "w3", LEASE).unwrap().unwrap().task.collection,
        "B"
    );
}

pub fn an_expired_lease_is_taken_over_and_the_old_holder_loses(f: &dyn Fixture) {
    let s = f.open();
    s.add(&tasks("A", 1), false).unwrap();
    let mut old = s
        .claim("A", "w1", Duration::from_millis(1))
        .unwrap()
        .unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let new = s.claim("A", "w2", LEASE).unwrap().unwrap();
    assert_eq!(
        (new.task.attempts, new.task.owner.as_deref()),
        (2, Some("w2"))
    );
    assert!(
        !s.heartbeat(&mut old, LEASE).unwrap(),
        "old holder's heartbeat fails"
    );
    assert_eq!(
        s.finish(&old, &outcome(true)).unwrap(),
        None,
        "old holder cannot finish"
    );
    assert!(!s.release(&old).unwrap(), "old holder cannot release");
    assert_eq!(
        s.finish(&new, &outcome(true)).unwrap(),
        Some(TaskState::Done)
    );
}

pub fn heartbeat_extends_the_lease(f: &dyn Fixture) {
    let s = f.open();
    s.add(&tasks("A", 1), false).unwrap();
    let mut c = s
        .claim("A", "w1", Duration::from_millis(300))
        .unwrap()
        .unwrap();
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(150));
        assert!(s.heartbeat(&mut c, Duration::from_millis(300)).unwrap());
    }
    assert!(
        s.claim("A", "w2", LEASE).unwrap().is_none(),
        "heartbeats keep it held"
    );
    assert_eq!(s.finish(&c, &outcome(true)).unwrap(), Some(TaskState::Done));
    let t = s.get("A", "t0000").unwrap().unwrap();
    assert_eq!(
        (t.state, t.exit_code, t.owner.as_deref()),
        (TaskState::Done, Some(0), Some("w1"))
    );
    assert_eq!(t.log_uri.as_deref(), Some("/logs/x.log"));
    assert!(t.finished_at.is_some() && t.lease_until.is_none());
}

pub fn failures_retry_until_the_last_attempt(f: &dyn Fixture) {
    let s = f.open();
    s.add(&tasks("A", 1), false).unwrap();
    let c = s.claim("A", "w1", LEASE).unwrap().unwrap();
    assert_eq!(
        s.finish(&c, &outcome(false)).unwrap(),
        Some(TaskState::Todo)
    );
    let c = s.claim("A", "w1", LEASE).unwrap().unwrap();
    assert_eq!(c.task.attempts, 2);
    assert_eq!(
        s.finish(&c, &outcome(false)).unwrap(),
        Some(TaskState::Failed)
    );
    let t = s.get("A", "t0000").unwrap().unwrap();
    assert_eq!(
        (t.state, t.exit_code, t.error_tail.as_deref()),
        (TaskState::Failed, Some(1), Some("boom"))
    );
    assert!(
        s.claim("A", "w1", LEASE).unwrap().is_none(),
        "failed tasks are not claimable"
    );
}

pub fn release_gives_the_task_back_without_an_attempt(f: &dyn Fixture) {
    let s = f.open();
    s.add(&tasks("A", 1), false).unwrap();
    let c = s.claim("A", "w1", LEASE).unwrap().unwrap();
    assert!(s.release(&c).unwrap());
    let t = s.get("A", "t0000").unwrap().unwrap();
    assert_eq!(
        (t.state, t.attempts, t.lease_until),
        (TaskState::Todo, 0, None)
    );
    assert!(!s.release(&c).unwrap(), "a second release is refused");
}

pub fn release_stale_hands_back_or_fails_expired_leases(f: &dyn Fixture) {
    let s = f.open();
    s.add(&tasks("A", 2), false).unwrap();
    let short = Duration::from_millis(1);
    let held = Duration::from_millis(300);
    s.claim("A", "w1", held).unwrap().unwrap();
    s.claim("A", "w1", held).unwrap().unwrap();
    std::thread::sleep(Duration::from_millis(350));
    // Take one over once more: it is then on its last attempt (2 of 2).
    let last = s.claim("A", "w2", short).unwrap().unwrap();
    assert_eq!(last.task.attempts, 2);
    std::thread::sleep(Duration::from_millis(20));
    let r = s.release_stale(Some("A")).unwrap();
    assert_eq!((r.released, r.failed), (1, 1));
    let t = s.get("A", &last.task.task_id).unwrap().unwrap();
    assert_eq!(t.state, TaskState::Failed);
    assert!(
        t.error_tail
            .unwrap()
            .contains("expired on the last attempt")
    );
    assert_eq!(s.release_stale(None).unwrap().released, 0);
}

pub fn retry_and_delete_by_selector(f: &dyn Fixture) {
    let s = f.open();
    let mut batch = tasks("A", 3);
    for t in &mut batch {
        t.max_attempts = 1;
    }
    batch[2].sample = Some("shared".into());
    batch[1].sample = Some("shared".into());
    s.add(&batch, false).unwrap();
    for _ in 0..3 {
        let c = s.claim("A", "w", LEASE).unwrap().unwrap();
        s.finish(&c, &outcome(false)).unwrap();
    }
    assert_eq!(
        s.retry("A", &Selector::Ids(vec!["t0000".into()])).unwrap(),
        1
    );
    assert_eq!(s.retry("A", &Selector::Sample("shared".into())).unwrap(), 2);
    assert_eq!(s.retry("A", &Selector::All).unwrap(), 0);
    assert!(s.retry("A", &Selector::State(TaskState::Done)).is_err());
    let t = s.get("A", "t0001").unwrap().unwrap();
    assert_eq!(
        (t.state, t.attempts, t.exit_code),
        (TaskState::Todo, 0, None)
    );
    assert_eq!(
        s.delete("A", &Selector::Sample("shared".into())).unwrap(),
        2
    );
    assert_eq!(s.delete("A", &Selector::State(TaskState::Todo)).unwrap(), 1);
    assert_eq!(s.delete("A", &Selector::All).unwrap(), 0);
    assert!(s.get("A", "t0000").unwrap().is_none());
}

pub fn a_runs_report_travels_with_its_finish_and_outlives_the_task(f: &dyn Fixture) {
    let s = f.open();
    let mut one = task("A", "t1");
    one.max_attempts = 2;
    s.add(&[one], false).unwrap();
    // A failed run's report is kept for the record.
    let c = s.claim("A", "w", LEASE).unwrap().unwrap();
    let mut failed = outcome(false);
    failed.reported = report(12.0);
    assert_eq!(s.finish(&c, &failed).unwrap(), Some(TaskState::Todo));
    assert_eq!(s.get("A", "t1").unwrap().unwrap().reported, report(12.0));
    // The next finish writes its own, in the same conditional write.
    let c = s.claim("A", "w", LEASE).unwrap().unwrap();
    let mut done = outcome(true);
    done.reported = report(31.5);
    assert_eq!(s.finish(&c, &done).unwrap(), Some(TaskState::Done));
    let t = s.get("A", "t1").unwrap().unwrap();
    assert_eq!(t.reported, report(31.5));
    // A lost claim writes nothing, report included.
    let stale = c;
    let mut other = outcome(true);
    other.reported = report(1.0);
    assert_eq!(s.finish(&stale, &other).unwrap(), None);
    assert_eq!(s.get("A", "t1").unwrap().unwrap().reported, report(31.5));
    // Deleted, its tombstone keeps it (a gate downstream still reads it).
    assert_eq!(s.delete("A", &Selector::All).unwrap(), 1);
    let gone = s.tombstone("A", "t1").unwrap().unwrap();
    assert_eq!(gone.last_run.reported, report(31.5));
    // A task that reported nothing reads as an empty report.
    s.add(&[task("A", "t2")], false).unwrap();
    let c = s.claim("A", "w", LEASE).unwrap().unwrap();
    s.finish(&c, &outcome(true)).unwrap();
    assert!(s.get("A", "t2").unwrap().unwrap().reported.is_empty());
}

pub fn scan_pages_through_everything_in_key_order(f: &dyn Fixture) {
    let s = f.open();
    s.add(&tasks("B", 7), false).unwrap();
    s.add(&tasks("A", 5), false).unwrap();
    let mut seen = vec![];
    anamo::store::for_each_task(s.as_ref(), &TaskFilter::default(), 3, |t| {
        let t = t.unwrap();
        seen.push(format!("{}/{}", t.collection, t.task_id));
        Ok(std::ops::ControlFlow::Continue(()))
    })
    .unwrap();
    assert_eq!(seen.len(), 12);
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted);
    let only_b = s
        .scan(
            &TaskFilter {
                collection: Some("B".into()),
                ..Default::default()
            },
            None,
            100,
        )
        .unwrap()
        .tasks;
    assert_eq!(only_b.len(), 7);
    let c = s.claim("A", "w", LEASE).unwrap().unwrap();
    let running = s
        .scan(
            &TaskFilter {
                state: Some(TaskState::Running),
                ..Default::default()
            },
            None,
            100,
        )
        .unwrap()
        .tasks;
    assert_eq!(running.len(), 1);
    assert_eq!(running[0].task_id, c.task.task_id);
    let by_sample = s
        .scan(
            &TaskFilter {
                sample: Some("sample-t0003".into()),
                ..Default::default()
            },
            None,
            100,
        )
        .unwrap()
        .tasks;
    assert_eq!(by_sample.len(), 2);
    let counts = s.counts(None).unwrap();
    let get = |c: &str, st: TaskState| {
        counts
            .iter()
            .find(|x| x.collection == c && x.state == st)
            .map_or(0, |x| x.count)
    };
    assert_eq!(
        (
            get("A", TaskState::Todo),
            get("A", TaskState::Running),
            get("B", TaskState::Todo)
        ),
        (4, 1, 7)
    );
    assert_eq!(s.counts(Some("B")).unwrap().len(), 1);
}

/// Many handles claiming at once: every task is claimed exactly once.
pub fn concurrent_claims_never_share_a_task(f: &dyn Fixture) {
    f.open().add(&tasks("A", 200), false).unwrap();
    let claimed = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for w in 0..4 {
            let claimed = &claimed;
            let store = f.open();
            scope.spawn(move || {
                let owner = format!("w{w}");
                while let Some(c) = store.claim("A", &owner, LEASE).unwrap() {
                    claimed.lock().unwrap().push(c.task.task_id.clone());
                    assert_eq!(
                        store.finish(&c, &outcome(true)).unwrap(),
                        Some(TaskState::Done)
                    );
                }
            });
        }
    });
    let claimed = claimed.into_inner().unwrap();
    let unique: HashSet<_> = claimed.iter().collect();
    assert_eq!(claimed.len(), 200);
    assert_eq!(unique.len(), 200);
}

/// A task of `sample` in `collection`, waiting for its sample's tasks in `after`.
fn step_task(collection: &str, sample: &str, after: &[&str]) -> NewTask {
    let mut t = task(collection, &format!("{sample}-{collection}"));
    t.sample = Some(sample.into());
    t.after = after.iter().map(|a| a.to_string()).collect();
    t
}

fn state_of(s: &dyn TaskStore, collection: &str, id: &str) -> TaskState {
    s.get(collection, id).unwrap().unwrap().state
}

/// Claims the task of `collection` for `sample` (the only claimable one there) and ends it.
fn run_one(s: &dyn TaskStore, collection: &str, succeeded: bool) -> anamo::model::Task {
    let c = s
        .claim(collection, "w", LEASE)
        .unwrap()
        .expect("a claimable task");
    s.finish(&c, &outcome(succeeded)).unwrap();
    c.task
}

pub fn a_waiting_task_runs_exactly_when_its_sample_upstream_is_done(f: &dyn Fixture) {
    let s = f.open();
    let mut lane2 = step_task("A", "S1", &[]);
    lane2.task_id = "S1-A-lane2".into();
    s.add(
        &[step_task("A", "S1", &[]), lane2, step_task("A", "S2", &[])],
        false,
    )
    .unwrap();
    let r = s
        .add(
            &[step_task("B", "S1", &["A"]), step_task("B", "S2", &["A"])],
            false,
        )
        .unwrap();
    assert_eq!((r.added, r.waiting), (2, 2));
    assert_eq!(state_of(&*s, "B", "S1-B"), TaskState::Waiting);
    assert!(
        s.claim("B", "w", LEASE).unwrap().is_none(),
        "waiting is never claimable"
    );
    assert_eq!(s.count_claimable("B").unwrap(), 0);
    // S1 has two tasks in A: the first one done releases nothing. (Claims come in no set
    // order on every store: hold all three, finish S1's.)
    let held: Vec<_> = (0..3)
        .map(|_| s.claim("A", "w", LEASE).unwrap().unwrap())
        .collect();
    let (s1, s2): (Vec<_>, Vec<_>) = held
        .into_iter()
        .partition(|c| c.task.sample.as_deref() == Some("S1"));
    s.finish(&s1[0], &outcome(true)).unwrap();
    assert_eq!(s.promote("S1").unwrap(), 0);
    assert_eq!(state_of(&*s, "B", "S1-B"), TaskState::Waiting);
    s.finish(&s1[1], &outcome(true)).unwrap();
    assert!(s.release(&s2[0]).unwrap());
    let waiting = s.get("B", "S1-B").unwrap().unwrap();
    assert_eq!(s.promote("S1").unwrap(), 1);
    assert_eq!(state_of(&*s, "B", "S1-B"), TaskState::Todo);
    assert_eq!(
        state_of(&*s, "B", "S2-B"),
        TaskState::Waiting,
        "S2 is not done in A"
    );
    // Applied twice, or at the old version, a promotion changes nothing.
    assert_eq!(s.promote("S1").unwrap(), 0);
    let run = anamo::model::Settle::Run(None);
    assert!(!s.settle_task("B", "S1-B", waiting.version, &run).unwrap());
    let c = s.claim("B", "w", LEASE).unwrap().unwrap();
    assert_eq!(c.task.task_id, "S1-B");
    assert!(s.claim("B", "w", LEASE).unwrap().is_none());
    let counts = s.counts(Some("B")).unwrap();
    assert!(
        counts
            .iter()
            .any(|c| c.state == TaskState::Waiting && c.count == 1),
        "{counts:?}"
    );
}

pub fn a_failed_upstream_keeps_it_waiting_until_a_retry_lets_the_flow_resume(f: &dyn Fixture) {
    let s = f.open();
    let mut up = step_task("A", "S1", &[]);
    up.max_attempts = 1;
    s.add(&[up], false).unwrap();
    s.add(&[step_task("B", "S1", &["A"])], false).unwrap();
    run_one(&*s, "A", false);
    assert_eq!(s.promote("S1").unwrap(), 0);
    assert_eq!(state_of(&*s, "B", "S1-B"), TaskState::Waiting);
    let survey = flow::survey(&*s, Some("B"), false).unwrap();
    assert_eq!(
        (survey.promoted, survey.will_run, survey.blocked),
        (0, 0, 1)
    );
    assert_eq!(s.retry("A", &Selector::All).unwrap(), 1);
    let survey = flow::survey(&*s, Some("B"), false).unwrap();
    assert_eq!(
        (survey.will_run, survey.blocked),
        (1, 0),
        "a retry unblocks it"
    );
    run_one(&*s, "A", true);
    assert_eq!(s.promote("S1").unwrap(), 1);
    assert_eq!(state_of(&*s, "B", "S1-B"), TaskState::Todo);
}

pub fn a_task_after_two_steps_waits_for_both(f: &dyn Fixture) {
    let s = f.open();
    s.add(
        &[step_task("A", "S1", &[]), step_task("B", "S1", &[])],
        false,
    )
    .unwrap();
    s.add(&[step_task("C", "S1", &["A", "B"])], false).unwrap();
    run_one(&*s, "A", true);
    assert_eq!(s.promote("S1").unwrap(), 0);
    assert_eq!(state_of(&*s, "C", "S1-C"), TaskState::Waiting);
    run_one(&*s, "B", true);
    assert_eq!(s.promote("S1").unwrap(), 1);
    assert_eq!(state_of(&*s, "C", "S1-C"), TaskState::Todo);
}

pub fn adding_after_a_step_checks_what_is_upstream(f: &dyn Fixture) {
    let s = f.open();
    // A step with no task at all: most likely misspelt.
    let e = s
        .add(&[step_task("B", "S1", &["A"])], false)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("task 'S1-B' of B waits for step 'A', which has no task at all in the store"),
        "{e}"
    );
    // A step with tasks, but none of these samples: the batch is refused whole.
    s.add(&[step_task("A", "S7", &[])], false).unwrap();
    let e = s
        .add(
            &[step_task("B", "S1", &["A"]), step_task("B", "S2", &["A"])],
            false,
        )
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("task 'S1-B' of B waits for sample 'S1' in A, which has no task for it (and 1 more task(s) like it); nothing was added"),
        "{e}"
    );
    assert!(s.get("B", "S1-B").unwrap().is_none() && s.get("B", "S2-B").unwrap().is_none());
    // (Unfinished: deleting it leaves no done-mark.)
    assert_eq!(s.delete("A", &Selector::All).unwrap(), 1);
    let allowed = AddOptions {
        allow_missing_upstream: true,
        ..AddOptions::default()
    };
    s.add_tasks(&[step_task("B", "S1", &["A"])], allowed)
        .unwrap();
    assert_eq!(state_of(&*s, "B", "S1-B"), TaskState::Waiting);
    assert_eq!(flow::survey(&*s, Some("B"), false).unwrap().blocked, 1);
    // Upstream added and done: the waiting task is released; a new task after it starts todo.
    s.add(&[step_task("A", "S1", &[])], false).unwrap();
    assert_eq!(flow::survey(&*s, Some("B"), false).unwrap().will_run, 1);
    run_one(&*s, "A", true);
    assert_eq!(s.promote("S1").unwrap(), 1);
    let r = s.add(&[step_task("C", "S1", &["A"])], false).unwrap();
    assert_eq!(r.waiting, 0);
    assert_eq!(state_of(&*s, "C", "S1-C"), TaskState::Todo);
    // A done task deleted from the store still counts as done for what is added after it.
    assert_eq!(s.delete("A", &Selector::All).unwrap(), 1);
    s.add(&[step_task("D", "S1", &["A"])], false).unwrap();
    assert_eq!(state_of(&*s, "D", "S1-D"), TaskState::Todo);
    // Upstream in the same batch counts: it waits for it.
    s.add(
        &[step_task("F", "S9", &["E"]), step_task("E", "S9", &[])],
        false,
    )
    .unwrap();
    assert_eq!(state_of(&*s, "F", "S9-F"), TaskState::Waiting);
}

pub fn a_promotion_a_crash_skipped_is_repaired_by_a_survey(f: &dyn Fixture) {
    let s = f.open();
    s.add(
        &[step_task("A", "S1", &[]), step_task("A", "S2", &[])],
        false,
    )
    .unwrap();
    s.add(
        &[step_task("B", "S1", &["A"]), step_task("B", "S2", &["A"])],
        false,
    )
    .unwrap();
    // Finished, but the worker died before promoting.
    run_one(&*s, "A", true);
    assert!(!s.has_running("A").unwrap());
    let held = s.claim("A", "w", LEASE).unwrap().unwrap();
    assert!(s.has_running("A").unwrap());
    let survey = flow::survey(&*s, Some("B"), false).unwrap();
    assert_eq!(
        (survey.promoted, survey.will_run, survey.blocked),
        (1, 1, 0)
    );
    assert_eq!(s.count_claimable("B").unwrap(), 1);
    s.finish(&held, &outcome(true)).unwrap();
    assert_eq!(flow::survey(&*s, None, false).unwrap().promoted, 1);
    assert_eq!(s.waiting_samples(None).unwrap(), Vec::<String>::new());
}

/// Runs `collection/id` to the end with a report of this coverage (none when `None`).
fn run_reporting(s: &dyn TaskStore, collection: &str, coverage: Option<f64>, ok: bool) {
    let c = s.claim(collection, "w", LEASE).unwrap().unwrap();
    let mut o = outcome(ok);
    if let Some(cov) = coverage {
        o.reported = report(cov);
    }
    s.finish(&c, &o).unwrap();
    if ok && let Some(sample) = &c.task.sample {
        s.promote(sample).unwrap();
    }
}

fn gated(collection: &str, id: &str, after: &str, gates: &[&str]) -> NewTask {
    let mut t = task(collection, id);
    t.after = vec![after.into()];
    t.require = gates.iter().map(|g| g.to_string()).collect();
    t
}

pub fn gates_hold_release_and_judge_a_rerun_again(f: &dyn Fixture) {
    let s = f.open();
    let state = |c: &str, id: &str| s.get(c, id).unwrap().unwrap().state;
    let note = |c: &str, id: &str| s.get(c, id).unwrap().unwrap().gate_note.unwrap_or_default();
    // Upstream done under the threshold, then the gated task added: held at once.
    s.add(&[task("A", "t1")], false).unwrap();
    run_reporting(&*s, "A", Some(12.0), true);
    let r = s
        .add(&[gated("B", "t1", "A", &["mean_coverage >= 15"])], false)
        .unwrap();
    assert_eq!((r.added, r.waiting, r.held), (1, 0, 1));
    assert_eq!(state("B", "t1"), TaskState::Held);
    assert_eq!(note("B", "t1"), "held: mean_coverage 12 < 15 (A/t1 run 1)");
    assert_eq!(s.count_claimable("B").unwrap(), 0);
    // What waits on a held task is blocked: a person decides.
    let r = s.add(&[gated("C", "t1", "B", &[])], false).unwrap();
    assert_eq!((r.waiting, r.blocked), (1, 1));
    // A re-run upstream with better data is judged again, and passes.
    s.add(&[task("A", "t1")], true).unwrap();
    run_reporting(&*s, "A", Some(31.5), true);
    assert_eq!(state("B", "t1"), TaskState::Todo);
    assert!(
        note("B", "t1").starts_with("passed on a later upstream run; was held: mean_coverage 12"),
        "{}",
        note("B", "t1")
    );
    // Added before its upstream finished: held by the promotion, then released by a person.
    s.add(&[task("A", "t2")], false).unwrap();
    s.add(
        &[gated(
            "B",
            "t2",
            "A",
            &["mean_coverage >= 15", "sex == 'F'"],
        )],
        false,
    )
    .unwrap();
    assert_eq!(state("B", "t2"), TaskState::Waiting);
    run_reporting(&*s, "A", Some(9.5), true);
    assert_eq!(state("B", "t2"), TaskState::Held);
    assert_eq!(note("B", "t2"), "held: mean_coverage 9.5 < 15 (A/t2 run 1)");
    let t = s.get("B", "t2").unwrap().unwrap();
    let why = anamo::model::Settle::Release("released by me: fine".into());
    assert!(s.settle_task("B", "t2", t.version, &why).unwrap());
    assert!(!s.settle_task("B", "t2", t.version, &why).unwrap());
    assert_eq!(state("B", "t2"), TaskState::Todo);
    assert_eq!(note("B", "t2"), "released by me: fine");
    // A released task is not judged again.
    s.promote("sample-t2").unwrap();
    assert_eq!(state("B", "t2"), TaskState::Todo);
    // Nothing reported: held, saying so.
    s.add(&[task("A", "t3")], false).unwrap();
    run_reporting(&*s, "A", None, true);
    s.add(&[gated("B", "t3", "A", &["mean_coverage >= 15"])], false)
        .unwrap();
    assert_eq!(note("B", "t3"), "held: no mean_coverage reported");
    // A failed run's metrics gate nothing: the task waits on the failure.
    let mut once = task("A", "t4");
    once.max_attempts = 1;
    s.add(&[once], false).unwrap();
    run_reporting(&*s, "A", Some(40.0), false);
    s.add(&[gated("B", "t4", "A", &["mean_coverage >= 15"])], false)
        .unwrap();
    assert_eq!(state("B", "t4"), TaskState::Waiting);
    // The upstream task deleted after it was done: its tombstone's report still passes it.
    s.add(&[task("A", "t5")], false).unwrap();
    run_reporting(&*s, "A", Some(40.0), true);
    s.delete("A", &Selector::Ids(vec!["t5".into()])).unwrap();
    let r = s
        .add(&[gated("B", "t5", "A", &["mean_coverage >= 15"])], false)
        .unwrap();
    assert_eq!((r.waiting, r.held), (0, 0));
    assert_eq!(state("B", "t5"), TaskState::Todo);
    // Held, then its upstream re-run: an idle worker's look finds it waiting again (work that
    // will run, so a --wait worker stays), and the re-run's report judges it.
    s.add(&[task("A", "t7")], false).unwrap();
    run_reporting(&*s, "A", Some(2.0), true);
    s.add(&[gated("B", "t7", "A", &["mean_coverage >= 15"])], false)
        .unwrap();
    assert_eq!(state("B", "t7"), TaskState::Held);
    s.add(&[task("A", "t7")], true).unwrap();
    let look = flow::survey(&*s, Some("B"), false).unwrap();
    // (t4's task, waiting on a failure, is the blocked one)
    assert_eq!((look.will_run, look.blocked), (1, 1), "{look:?}");
    assert_eq!(state("B", "t7"), TaskState::Waiting);
    assert!(
        note("B", "t7").starts_with("waits for its upstream's new run; was held: mean_coverage 2"),
        "{}",
        note("B", "t7")
    );
    run_reporting(&*s, "A", Some(20.0), true);
    assert_eq!(state("B", "t7"), TaskState::Todo);
    // Dropping the sample withdraws its held task.
    s.add(&[task("A", "t6")], false).unwrap();
    run_reporting(&*s, "A", Some(1.0), true);
    s.add(&[gated("B", "t6", "A", &["mean_coverage >= 15"])], false)
        .unwrap();
    assert_eq!(state("B", "t6"), TaskState::Held);
    s.drop_sample("sample-t6", "failed QC").unwrap();
    assert_eq!(
        s.delete("B", &Selector::Withdrawn("sample-t6".into()))
            .unwrap(),
        1
    );
}

/// Runs every suite function against one backend.
#[macro_export]
macro_rules! store_suite {
    ($backend:ident, $fixture:expr) => {
        mod $backend {
            use super::*;
            $crate::store_suite!(@tests $fixture;
                add_is_idempotent_and_replace_resets,
                claim_takes_tasks_in_order_with_a_lease,
                an_expired_lease_is_taken_over_and_the_old_holder_loses,
                heartbeat_extends_the_lease,
                failures_retry_until_the_last_attempt,
                release_gives_the_task_back_without_an_attempt,
                release_stale_hands_back_or_fails_expired_leases,
                retry_and_delete_by_selector,
                a_runs_report_travels_with_its_finish_and_outlives_the_task,
                scan_pages_through_everything_in_key_order,
                concurrent_claims_never_share_a_task,
                a_waiting_task_runs_exactly_when_its_sample_upstream_is_done,
                a_failed_upstream_keeps_it_waiting_until_a_retry_lets_the_flow_resume,
                a_task_after_two_steps_waits_for_both,
                adding_after_a_step_checks_what_is_upstream,
                a_promotion_a_crash_skipped_is_repaired_by_a_survey,
                gates_hold_release_and_judge_a_rerun_again
            );
        }
    };
    (@tests $fixture:expr; $($name:ident),*) => {
        $(
            #[test]
            fn $name() {
                let fixture = $fixture;
                if fixture.available() {
                    super::$name(&fixture);
                }
            }
        )*
    };
}

struct SqliteFixture {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
}

impl SqliteFixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tasks.db");
        Self { _dir: dir, path }
    }
}

impl Fixture for SqliteFixture {
    fn open(&self) -> Box<dyn TaskStore> {
        Box::new(SqliteStore::open(&self.path, OpenMode::Create).unwrap())
    }
}

store_suite!(sqlite, SqliteFixture::new());

use crate::harness::Emulator;

/// A fresh table on a fresh emulator per test.
struct DynamoFixture {
    emulator: Option<Box<dyn Emulator>>,
    table: String,
}

impl DynamoFixture {
    fn new(emulator: Option<Box<dyn Emulator>>) -> Self {
        let table = "anamo-suite".to_string();
        if let Some(e) = &emulator {
            let store = DynamoStore::connect(&table, &e.aws()).unwrap();
            store.init().unwrap();
        }
        Self { emulator, table }
    }
}

impl Fixture for DynamoFixture {
    fn open(&self) -> Box<dyn TaskStore> {
        let e = self.emulator.as_ref().expect("emulator");
        Box::new(DynamoStore::open(&self.table, &e.aws()).unwrap())
    }

    fn available(&self) -> bool {
        self.emulator.is_some()
    }
}

fn on_moto() -> DynamoFixture {
    DynamoFixture::new(
        crate::harness::moto::Moto::start().map(|m| Box::new(m) as Box<dyn Emulator>),
    )
}

/// The same suite on a second, independent DynamoDB: where two emulators differ, the test
/// that shows it says what DynamoDB itself does.
fn on_dynalite() -> DynamoFixture {
    DynamoFixture::new(
        crate::harness::dynalite::Dynalite::start().map(|d| Box::new(d) as Box<dyn Emulator>),
    )
}

store_suite!(dynamodb, on_moto());
store_suite!(dynalite, on_dynalite());

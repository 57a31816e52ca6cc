//! The cost of the flow between steps on the SQLite store: 1,000 samples x 3 chained steps
//! (B --after A, C --after B), every task claimed and finished by one worker, and each done
//! task's promotion of what waited on it; beside the same 3,000 tasks with no chaining, claimed
//! and finished without promotions; and the chained ones again with two QC gates on each
//! downstream task (`--require 'q >= 10' --require 'r < 5'`, every run reporting both, every
//! gate passing), whose promotions read the upstream's reports. Prints each, the ratios, and a
//! promotion's own cost with and without gates. Asserts nothing about time. Run: `cargo bench --bench flow`.
//! ANAMO_BENCH_SAMPLES sets the number of samples (default 1000).

use std::time::{Duration, Instant};

use anamo::model::{Attrs, MetricValue, NewTask, Outcome};
use anamo::store::{OpenMode, SqliteStore, TaskStore};

const STEPS: [&str; 3] = ["Alignment", "ReadProcessing", "VariantCalling"];

fn main() {
    let samples: usize = std::env::var("ANAMO_BENCH_SAMPLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let tasks = samples * STEPS.len();
    println!(
        "{samples} samples x {} steps = {tasks} tasks on the SQLite store, one worker",
        STEPS.len()
    );
    // Best of three of each, interleaved, so a busy moment does not land on one side only.
    let mut plain = Run::default();
    let mut chained = Run::default();
    let mut gated = Run::default();
    for _ in 0..3 {
        plain = plain.best(run(samples, Mode::Independent));
        chained = chained.best(run(samples, Mode::Chained));
        gated = gated.best(run(samples, Mode::Gated));
    }
    let per = |d: Duration| d.as_secs_f64() * 1e6 / tasks as f64;
    println!("{:<48} {:>12} {:>12}", "", "add (ms)", "us per task");
    println!(
        "{:<48} {:>12.1} {:>12.1}",
        "independent steps: claim + finish",
        plain.add.as_secs_f64() * 1e3,
        per(plain.work)
    );
    println!(
        "{:<48} {:>12.1} {:>12.1}",
        "chained (--after): claim + finish + promote",
        chained.add.as_secs_f64() * 1e3,
        per(chained.work)
    );
    println!(
        "  ratio chained / independent, per task: {:.2}",
        per(chained.work) / per(plain.work)
    );
    println!(
        "{:<48} {:>12.1} {:>12.1}",
        "chained, two QC gates per downstream task",
        gated.add.as_secs_f64() * 1e3,
        per(gated.work)
    );
    println!(
        "  ratio gated / chained, per task: {:.2}",
        per(gated.work) / per(chained.work)
    );
    let promotion = |r: &Run| r.promote.as_secs_f64() * 1e6 / tasks as f64;
    println!(
        "  a promotion alone (read the sample's tasks, move what may run): {:.1} us per done task",
        promotion(&chained)
    );
    println!(
        "  a promotion with two gates (also read the upstream's reports, judge): {:.1} us per \
         done task; ratio {:.2}",
        promotion(&gated),
        promotion(&gated) / promotion(&chained)
    );
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Independent,
    Chained,
    Gated,
}

#[derive(Debug, Clone, Copy)]
struct Run {
    add: Duration,
    work: Duration,
    promote: Duration,
}

impl Default for Run {
    fn default() -> Self {
        Self {
            add: Duration::MAX,
            work: Duration::MAX,
            promote: Duration::MAX,
        }
    }
}

impl Run {
    fn best(self, other: Run) -> Run {
        if other.work < self.work { other } else { self }
    }
}

fn run(samples: usize, mode: Mode) -> Run {
    let chained = mode != Mode::Independent;
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(&dir.path().join("bench.db"), OpenMode::Create).expect("store");
    let batch: Vec<NewTask> = STEPS
        .iter()
        .enumerate()
        .flat_map(|(n, step)| {
            (0..samples).map(move |i| NewTask {
                collection: step.to_string(),
                task_id: format!("S{i:05}"),
                sample: Some(format!("S{i:05}")),
                script: "run.sh".into(),
                attrs: Attrs::new(),
                max_attempts: 3,
                timeout_secs: None,
                after: if chained && n > 0 {
                    vec![STEPS[n - 1].to_string()]
                } else {
                    vec![]
                },
                require: if mode == Mode::Gated && n > 0 {
                    vec!["q >= 10".into(), "r < 5".into()]
                } else {
                    vec![]
                },
            })
        })
        .collect();
    let started = Instant::now();
    store.add(&batch, false).expect("add");
    let add = started.elapsed();
    let lease = Duration::from_secs(600);
    let mut promote = Duration::ZERO;
    let started = Instant::now();
    for step in STEPS {
        while let Some(claim) = store.claim(step, "bench", lease).expect("claim") {
            let mut outcome = Outcome::success(anamo::clock::now_ms());
            if mode == Mode::Gated {
                outcome.reported.metrics = [
                    ("q".to_string(), MetricValue::Number(50.0)),
                    ("r".to_string(), MetricValue::Number(1.0)),
                ]
                .into();
            }
            store.finish(&claim, &outcome).expect("finish");
            if chained {
                let t = Instant::now();
                store
                    .promote(claim.task.sample.as_deref().expect("a sample"))
                    .expect("promote");
                promote += t.elapsed();
            }
        }
    }
    let work = started.elapsed();
    let counts = store.counts(None).expect("counts");
    assert!(
        counts
            .iter()
            .all(|c| c.state == anamo::model::TaskState::Done),
        "every task done: {counts:?}"
    );
    Run { add, work, promote }
}

//! Catalog benchmarks, each beside its reference measured in the same run:
//! 1. `anamo sync` of a store of N tasks (default 1M): rows/s and the process's peak RSS.
//! 2. `anamo query samples-left` on a catalog of 100k samples x 5 steps, against the same SQL
//!    in the `sqlite3` shell (Debian package sqlite3): median wall time of repeated runs.
//!
//! Prints figures; asserts nothing about time. Run: `cargo bench --bench catalog`.
//! ANAMO_BENCH_TASKS and ANAMO_BENCH_SAMPLES change the sizes.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anamo::catalog::Catalog;
use anamo::model::{Attrs, NewTask};
use anamo::store::{OpenMode, SqliteStore, TaskStore};
use rusqlite::params;
use support::{env_or, measure, measure_with};

#[path = "support/mod.rs"]
mod support;

const BIN: &str = env!("CARGO_BIN_EXE_anamo");

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let tasks = env_or("ANAMO_BENCH_TASKS", 1_000_000);
    let samples = env_or("ANAMO_BENCH_SAMPLES", 100_000);
    bench_sync(dir.path(), tasks);
    bench_samples_left(dir.path(), samples);
}

fn bench_sync(dir: &Path, n: usize) {
    let store_path = dir.join("sync-store.db");
    let store = SqliteStore::open(&store_path, OpenMode::Create).expect("store");
    let chunk = 100_000;
    for start in (0..n).step_by(chunk) {
        let batch: Vec<NewTask> = (start..(start + chunk).min(n))
            .map(|i| NewTask {
                collection: ["Alignment", "ReadProcessing", "VariantCalling"][i % 3].into(),
                task_id: format!("S{:07}", i / 3),
                sample: Some(format!("S{:07}", i / 3)),
                script: format!("run-step.sh S{:07} --threads 16 --ref GRCh38", i / 3),
                attrs: Attrs::from([
                    ("reference".to_string(), "GRCh38".to_string()),
                    (
                        "fastq".to_string(),
                        format!("s3://bucket/fastq/S{:07}/", i / 3),
                    ),
                ]),
                max_attempts: 3,
                timeout_secs: None,
                after: vec![],
                require: vec![],
            })
            .collect();
        store.add(&batch, false).expect("add");
    }
    drop(store);
    let catalog = dir.join("sync-catalog.db");
    let run = |label: &str| -> f64 {
        let (t, rss) = measure(
            Command::new(BIN)
                .args(["sync"])
                .env("ANAMO_STORE", &store_path)
                .env("ANAMO_CATALOG", &catalog),
        );
        println!(
            "sync {label:<22} {n:>9} tasks {:>8.2} s {:>10.0} rows/s   peak RSS {rss:>6.1} MiB",
            t.as_secs_f64(),
            n as f64 / t.as_secs_f64()
        );
        n as f64 / t.as_secs_f64()
    };
    let first = run("(first: all new)");
    let again = run("(again: no change)");
    if let Some(reference) = sync_reference(dir, &store_path, n, Events::Without) {
        println!(
            "  ratio anamo / sqlite3 shell: first sync {:.2}, re-sync {:.2}",
            first / reference,
            again / reference
        );
    }
    if let Some(same_work) = sync_reference(dir, &store_path, n, Events::With) {
        println!(
            "  ratio anamo / sqlite3 shell writing the same rows (tasks and their first-sighting \
             events): first sync {:.2}",
            first / same_work
        );
    }
}

/// Whether the reference also writes the first-sighting event of each task, as sync does.
#[derive(Clone, Copy, PartialEq)]
enum Events {
    Without,
    With,
}

/// The reference for sync: the sqlite3 shell copying the same rows into an empty catalog of
/// the same schema (indexes included) with one INSERT ... SELECT, which is as fast as SQLite
/// itself writes these rows, with no reading of a store, no decoding and no bookkeeping. With
/// `Events::With` it writes what a first sync writes: each task and its first-sighting event.
fn sync_reference(dir: &Path, store_path: &Path, n: usize, events: Events) -> Option<f64> {
    if Command::new("sqlite3").arg("-version").output().is_err() {
        println!("  sqlite3 shell not found (apt-get install sqlite3): no reference figure");
        return None;
    }
    let catalog = dir.join(match events {
        Events::Without => "reference-catalog.db",
        Events::With => "reference-events-catalog.db",
    });
    // An empty catalog, created and migrated by anamo itself.
    Catalog::open(&catalog).expect("catalog");
    let sql = format!(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-32768; \
         ATTACH '{}' AS store; \
         INSERT INTO tasks (collection, task_id, sample, script, attrs, state, attempts, \
             max_attempts, timeout_secs, owner, lease_until, created_at, updated_at, started_at, \
             finished_at, exit_code, log_uri, error_tail, version, first_seen_at, last_seen_at) \
         SELECT collection, task_id, sample, script, attrs, state, attempts, max_attempts, \
             timeout_secs, owner, lease_until, created_at, updated_at, started_at, finished_at, \
             exit_code, log_uri, error_tail, version, 0, 0 FROM store.tasks; {}",
        store_path.display(),
        if events == Events::With {
            "INSERT INTO task_events (collection, task_id, at, from_state, to_state, attempts, \
                 owner, exit_code, source, sync_run, run) \
             SELECT collection, task_id, updated_at, 'unseen', state, attempts, owner, exit_code, \
                 'sync', 1, attempts FROM store.tasks;"
        } else {
            ""
        }
    );
    let (t, _) = measure(Command::new("sqlite3").arg(&catalog).arg(&sql));
    println!(
        "  sqlite3 shell INSERT ... SELECT of the same {n} rows{}: {:>6.2} s {:>10.0} rows/s",
        if events == Events::With {
            " and their events"
        } else {
            ""
        },
        t.as_secs_f64(),
        n as f64 / t.as_secs_f64()
    );
    Some(n as f64 / t.as_secs_f64())
}

fn bench_samples_left(dir: &Path, samples: usize) {
    let path = dir.join("query-catalog.db");
    // The catalog makes the schema; the rows go in by plain SQL (its connection is private).
    drop(Catalog::open(&path).expect("catalog"));
    let mut conn = rusqlite::Connection::open(&path).expect("catalog connection");
    let steps = [
        "S1_Alignment",
        "S2_ReadProcessing",
        "S3_BQSR",
        "S4_VariantCalling",
        "S5_Joint",
    ];
    let tx = conn.transaction().expect("tx");
    {
        let mut sample = tx
            .prepare("INSERT INTO samples (sample_id, cohort, imported_at) VALUES (?1, ?2, 0)")
            .expect("prepare");
        let mut task = tx
            .prepare(
                "INSERT INTO tasks (collection, task_id, sample, state, attempts, started_at, \
                 finished_at, first_seen_at, last_seen_at) VALUES (?1, ?2, ?2, ?3, 1, ?4, ?5, 0, 0)",
            )
            .expect("prepare");
        for (o, s) in steps.iter().enumerate() {
            tx.execute(
                "INSERT INTO steps (collection, ordinal) VALUES (?1, ?2)",
                params![s, o as i64 + 1],
            )
            .expect("step");
        }
        for i in 0..samples {
            let id = format!("S{i:07}");
            sample
                .execute(params![id, format!("cohort-{}", i % 7)])
                .expect("sample");
            for (o, s) in steps.iter().enumerate() {
                // All samples through step 3, 90% through step 4, half through step 5.
                let done = o < 3 || (o == 3 && i % 10 != 0) || (o == 4 && i % 2 == 0);
                let state = if done { "done" } else { "todo" };
                task.execute(params![
                    s,
                    id,
                    state,
                    i as i64 * 1000,
                    i as i64 * 1000 + 60_000
                ])
                .expect("task");
            }
        }
    }
    tx.commit().expect("commit");
    drop(conn);

    let report = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/queries/samples-left.sql"
    ))
    .expect("report");
    let literal = report.replace(":step", "'S4_VariantCalling'");
    let runs = 15;
    let median = |cmd: &mut dyn FnMut() -> Duration| {
        let mut times: Vec<Duration> = (0..runs).map(|_| cmd()).collect();
        times.sort();
        times[runs / 2]
    };
    let anamo = median(&mut || {
        measure(Command::new(BIN).args(["--catalog"]).arg(&path).args([
            "query",
            "samples-left",
            "-p",
            "step=S4_VariantCalling",
            "--format",
            "tsv",
        ]))
        .0
    });
    let rows = Command::new(BIN)
        .arg("--catalog")
        .arg(&path)
        .args(["query", "samples-left", "-p", "step=S4_VariantCalling"])
        .output()
        .map(|o| {
            o.stdout
                .iter()
                .filter(|b| **b == b'\n')
                .count()
                .saturating_sub(1)
        })
        .unwrap_or(0);
    println!(
        "samples-left on {samples} samples x {} steps ({rows} rows out)",
        steps.len()
    );
    println!(
        "  anamo query   median of {runs}: {:>7.1} ms",
        anamo.as_secs_f64() * 1e3
    );
    if Command::new("sqlite3").arg("-version").output().is_err() {
        println!("  sqlite3 shell not found (apt-get install sqlite3): no reference figure");
        return;
    }
    let shell = median(&mut || {
        // The SQL goes in on stdin: the report starts with `--`, which the shell's
        // argument parser would take for an option.
        measure_with(
            Command::new("sqlite3")
                .args(["-readonly", "-header", "-separator", "\t"])
                .arg(&path),
            Some(&literal),
        )
        .0
    });
    println!(
        "  sqlite3 shell median of {runs}: {:>7.1} ms",
        shell.as_secs_f64() * 1e3
    );
    println!(
        "  ratio anamo / sqlite3: {:.2}",
        anamo.as_secs_f64() / shell.as_secs_f64()
    );
}

//! `anamo tasks list` against `anamo query` on the same rows, same run: a store of N tasks
//! (default 400k; ANAMO_BENCH_LIST_TASKS) synced into a catalog, then both commands write every
//! row as TSV (and JSON Lines) to /dev/null. Prints wall time, rows/s and peak RSS, at N/8 and
//! at N, so growth shows: linear time and flat memory are the goal. Asserts nothing.
//! Run: `cargo bench --bench list`.

use std::path::Path;
use std::process::Command;

use anamo::model::{Attrs, NewTask};
use anamo::store::{OpenMode, SqliteStore, TaskStore};
use support::{env_or, measure};

#[path = "support/mod.rs"]
mod support;

const BIN: &str = env!("CARGO_BIN_EXE_anamo");

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let n = env_or("ANAMO_BENCH_LIST_TASKS", 400_000);
    println!("tasks list against query, the same rows, to /dev/null");
    println!(
        "{:>9} {:>6} {:>22} {:>22} {:>7} {:>7}",
        "tasks", "format", "tasks list s (MiB)", "query s (MiB)", "ratio", "rss x"
    );
    for size in [n / 8, n] {
        let (store, catalog) = fill(dir.path(), size);
        for format in ["tsv", "jsonl"] {
            let (list_t, list_rss) = measure(
                Command::new(BIN)
                    .args(["tasks", "list", "--format", format])
                    .env("ANAMO_STORE", &store),
            );
            let (query_t, query_rss) = measure(
                Command::new(BIN)
                    .args(["query", "SELECT * FROM tasks", "--format", format])
                    .env("ANAMO_CATALOG", &catalog),
            );
            println!(
                "{size:>9} {format:>6} {:>13.2} ({list_rss:>5.1}) {:>13.2} ({query_rss:>5.1}) {:>7.2} {:>7.2}",
                list_t.as_secs_f64(),
                query_t.as_secs_f64(),
                list_t.as_secs_f64() / query_t.as_secs_f64(),
                list_rss / query_rss
            );
        }
    }
}

/// A store of `n` tasks over three steps, and a catalog synced from it.
fn fill(dir: &Path, n: usize) -> (std::path::PathBuf, std::path::PathBuf) {
    let store_path = dir.join(format!("list-store-{n}.db"));
    let store = SqliteStore::open(&store_path, OpenMode::Create).expect("store");
    let chunk = 50_000;
    for start in (0..n).step_by(chunk) {
        let batch: Vec<NewTask> = (start..(start + chunk).min(n))
            .map(|i| NewTask {
                collection: ["Alignment", "ReadProcessing", "VariantCalling"][i % 3].into(),
                task_id: format!("S{:07}", i / 3),
                sample: Some(format!("S{:07}", i / 3)),
                script: format!("run-step.sh S{:07} --threads 16", i / 3),
                attrs: Attrs::from([("reference".to_string(), "GRCh38".to_string())]),
                max_attempts: 3,
                timeout_secs: None,
                after: vec![],
                require: vec![],
            })
            .collect();
        store.add(&batch, false).expect("add");
    }
    drop(store);
    let catalog = dir.join(format!("list-catalog-{n}.db"));
    let status = Command::new(BIN)
        .args(["-q", "sync"])
        .env("ANAMO_STORE", &store_path)
        .env("ANAMO_CATALOG", &catalog)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("sync");
    assert!(status.success(), "sync failed");
    (store_path, catalog)
}

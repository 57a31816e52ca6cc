//! Claim + finish throughput of the SQLite store: 1, 2 and 4 concurrent workers (each with its
//! own connection, as separate processes would have), over stores of 1k and 100k tasks.
//! Prints figures; asserts nothing about time. Run: `cargo bench --bench claim`.
//! ANAMO_BENCH_CLAIMS sets how many claims each configuration makes (default 2000).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anamo::model::{Attrs, NewTask, Outcome};
use anamo::store::{OpenMode, SqliteStore, TaskStore};

fn main() {
    let claims: u64 = std::env::var("ANAMO_BENCH_CLAIMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    println!("claim+finish on the SQLite store, {claims} claims per row");
    println!(
        "{:>12} {:>8} {:>12} {:>14}",
        "store size", "workers", "tasks/s", "us per task"
    );
    let workers = [1usize, 2, 4];
    let mut rates = vec![];
    for size in [1_000u64, 100_000] {
        for &w in &workers {
            let (rate, per_task) = run(size, w, claims.min(size));
            println!("{size:>12} {w:>8} {rate:>12.0} {per_task:>14.1}");
            rates.push(rate);
        }
    }
    // Flat means a claim costs the same in a big store as in a small one: the ratio is near 1.
    let (small, big) = rates.split_at(workers.len());
    for ((w, s), b) in workers.iter().zip(small).zip(big) {
        println!(
            "  flatness, {w} worker(s): rate at 100000 / rate at 1000 = {:.2}",
            b / s
        );
    }
}

fn run(size: u64, workers: usize, claims: u64) -> (f64, f64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bench.db");
    let store = SqliteStore::open(&path, OpenMode::Create).expect("store");
    let batch: Vec<NewTask> = (0..size)
        .map(|i| NewTask {
            collection: "Alignment".into(),
            task_id: format!("S{i:07}"),
            sample: Some(format!("S{i:07}")),
            script: "align.sh".into(),
            attrs: Attrs::from([("ref".to_string(), "hg38".to_string())]),
            max_attempts: 3,
            timeout_secs: None,
            after: vec![],
            require: vec![],
        })
        .collect();
    store.add(&batch, false).expect("add");
    drop(store);
    let left = AtomicU64::new(claims);
    let lease = Duration::from_secs(600);
    let started = Instant::now();
    std::thread::scope(|s| {
        for w in 0..workers {
            let left = &left;
            let path = &path;
            s.spawn(move || {
                let store = SqliteStore::open(path, OpenMode::MustExist).expect("store");
                let owner = format!("bench:{w}");
                while left
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok()
                {
                    let claim = store
                        .claim("Alignment", &owner, lease)
                        .expect("claim")
                        .expect("a task");
                    let outcome = Outcome::success(anamo::clock::now_ms());
                    store
                        .finish(&claim, &outcome)
                        .expect("finish")
                        .expect("still held");
                }
            });
        }
    });
    let secs = started.elapsed().as_secs_f64();
    (claims as f64 / secs, secs * 1e6 / claims as f64)
}

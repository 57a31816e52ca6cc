//! Incremental sync against a full scan on DynamoDB (the moto emulator), in the same run: a
//! table of ANAMO_BENCH_SYNC_TASKS tasks (default 200,000) is synced whole into a catalog;
//! then 1% of its tasks change (claimed and finished, as workers do) and one sync reads only
//! what changed, beside a full scan of the same table into a second catalog. Items and bytes
//! are those the store's reads returned, sized by DynamoDB's item size rule (moto does not
//! report consumed capacity); requests come from moto's request log. Also the requests per
//! task of the worker's claim, heartbeat and finish. Run: `cargo bench --bench incremental`.

use std::time::{Duration, Instant};

use anamo::catalog::Catalog;
use anamo::model::{NewTask, Outcome};
use anamo::store::TaskStore;
use anamo::store::dynamo::DynamoStore;
use anamo::sync::{SyncKind, TaskSyncOptions, TaskSyncReport};

/// The overlap of the incremental sync.
const OVERLAP: Duration = Duration::from_secs(2);

#[path = "support/mod.rs"]
mod support;

fn main() {
    let Some((moto, url)) = support::start_moto() else {
        println!("moto is not installed: run scripts/test.sh once (it installs it into .venv/)");
        return;
    };
    let aws = support::emulator(&url);
    let size = support::env_or("ANAMO_BENCH_SYNC_TASKS", 200_000);
    let changed = size / 100;
    DynamoStore::connect("sync-bench", &aws)
        .unwrap()
        .init()
        .unwrap();
    let store = DynamoStore::open("sync-bench", &aws).unwrap();
    let started = Instant::now();
    for chunk in (0..size).collect::<Vec<_>>().chunks(5_000) {
        let batch: Vec<NewTask> = chunk
            .iter()
            .map(|i| NewTask {
                collection: "Alignment".into(),
                task_id: format!("S{i:07}"),
                sample: Some(format!("S{i:07}")),
                script: format!("align.sh S{i:07} s3://cohort/fastq/S{i:07}/ GRCh38"),
                attrs: [("reference".to_string(), "GRCh38".to_string())].into(),
                max_attempts: 3,
                timeout_secs: None,
                after: vec![],
                require: vec![],
            })
            .collect();
        store.add(&batch, false).unwrap();
    }
    eprintln!(
        "filled {size} tasks in {:.0}s",
        started.elapsed().as_secs_f64()
    );

    // The tasks were added seconds ago: a 2-second overlap here stands for the 5-minute default
    // on a table filled more than five minutes before its first sync.
    std::thread::sleep(OVERLAP + Duration::from_secs(1));
    let dir = tempfile::tempdir().unwrap();
    let mut incremental = Catalog::open(&dir.path().join("incremental.db")).unwrap();
    let mut full = Catalog::open(&dir.path().join("full.db")).unwrap();
    sync(&store, &mut incremental, false);

    // 1% of the tasks change: claimed (with a heartbeat) and finished, as a worker does.
    let worker = DynamoStore::open("sync-bench", &aws).unwrap();
    let before = moto.requests();
    for _ in 0..changed {
        let mut claim = worker
            .claim("Alignment", "bench", Duration::from_secs(600))
            .unwrap()
            .unwrap();
        worker
            .heartbeat(&mut claim, Duration::from_secs(600))
            .unwrap();
        worker
            .finish(&claim, &Outcome::success(anamo::clock::now_ms()))
            .unwrap()
            .unwrap();
    }
    let per_task = (moto.requests() - before) as f64 / changed as f64;

    let (inc, inc_read, inc_requests, inc_time) = measured(&moto, &store, &mut incremental, false);
    assert!(
        matches!(inc.kind, SyncKind::Incremental { .. }),
        "{:?}",
        inc.kind
    );
    let (whole, full_read, full_requests, full_time) = measured(&moto, &store, &mut full, true);
    assert_eq!(
        inc.counts.changed, changed as u64,
        "the incremental sync saw every change"
    );
    assert_eq!(whole.counts.seen, size as u64);

    println!(
        "sync of a {size}-task table on DynamoDB (moto) after {changed} tasks ({}%) changed \
         (overlap {}s)",
        changed * 100 / size,
        OVERLAP.as_secs()
    );
    println!(
        "| | table items read | index entries read | bytes read (both) | requests | seconds |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for (label, (items, entries, bytes), requests, time) in [
        (
            "incremental (changes since the mark)",
            inc_read,
            inc_requests,
            inc_time,
        ),
        ("full scan (reference)", full_read, full_requests, full_time),
    ] {
        println!(
            "| {label} | {items} | {entries} | {bytes} | {requests} | {:.2} |",
            time.as_secs_f64()
        );
    }
    println!(
        "ratio incremental / full: items {:.4}, items and index entries {:.4}, bytes {:.4} \
         (target <= 0.02), time {:.3}",
        inc_read.0 as f64 / full_read.0 as f64,
        (inc_read.0 + inc_read.1) as f64 / full_read.0 as f64,
        inc_read.2 as f64 / full_read.2 as f64,
        inc_time.as_secs_f64() / full_time.as_secs_f64()
    );
    println!(
        "worker requests per task, claim + one heartbeat + finish, uncontended: {per_task:.2} \
         (of which the heartbeat is 1 and moves no index but the claim index's lease)"
    );
}

fn sync(store: &DynamoStore, catalog: &mut Catalog, full: bool) -> TaskSyncReport {
    let opts = TaskSyncOptions {
        full,
        overlap: OVERLAP,
        ..TaskSyncOptions::default()
    };
    anamo::sync::sync_tasks(store, catalog, &opts, &indicatif::ProgressBar::hidden()).unwrap()
}

/// One sync, with the items and bytes it read, its requests and its time.
fn measured(
    moto: &support::Moto,
    store: &DynamoStore,
    catalog: &mut Catalog,
    full: bool,
) -> (TaskSyncReport, (u64, u64, u64), usize, Duration) {
    let (items, entries, bytes) = store.read_so_far();
    let requests = moto.requests();
    let started = Instant::now();
    let report = sync(store, catalog, full);
    let took = started.elapsed();
    let (items_after, entries_after, bytes_after) = store.read_so_far();
    (
        report,
        (
            items_after - items,
            entries_after - entries,
            bytes_after - bytes,
        ),
        moto.requests() - requests,
        took,
    )
}

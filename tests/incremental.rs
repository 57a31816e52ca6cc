//! Incremental sync against full sync: random histories of changes (adds, replacements,
//! claims, heartbeats, finishes, retries, deletes from a machine without the catalog,
//! tombstones expiring as a TTL would end them) with syncs at random points, played on a real
//! store into two catalogs. Catalog A syncs as `anamo sync` does (incremental once it can,
//! full when asked, of the whole store or one step) with no overlap at all, so nothing but the
//! change feed itself can make it right; catalog B makes a full scan at every same point.
//! After every sync the two must hold the same rows in every table (the sync bookkeeping
//! aside); at the end, A's live tasks must equal a fresh full sync's. A failure is shrunk to
//! the shortest history that shows it.
//!
//! `ANAMO_INCREMENTAL_CASES` sets how many histories (default 60 on SQLite, 20 on DynamoDB),
//! `ANAMO_MODEL_SEED` a seed to replay.

use std::path::Path;
use std::time::Duration;

use anamo::catalog::Catalog;
use anamo::model::{Claim, NewTask, Outcome, Selector};
use anamo::store::dynamo::DynamoStore;
use anamo::store::{OpenMode, SqliteStore, TaskStore};
use anamo::sync::{SyncKind, TaskSyncOptions};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use rusqlite::Connection;
use rusqlite::types::Value;

const STEPS: [&str; 2] = ["A", "B"];
const IDS: usize = 5;

#[derive(Debug, Clone)]
enum Op {
    Add {
        step: usize,
        id: usize,
        replace: bool,
    },
    Claim {
        step: usize,
    },
    Heartbeat {
        which: usize,
    },
    Finish {
        which: usize,
        ok: bool,
    },
    Retry {
        step: usize,
        id: usize,
    },
    Delete {
        step: usize,
        id: usize,
    },
    /// Tombstones older than the last sync vanish, as a TTL on them would end them.
    Expire,
    Sync {
        full: bool,
        step: Option<usize>,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let step = 0..STEPS.len();
    let id = 0..IDS;
    prop_oneof![
        4 => (step.clone(), id.clone(), prop::bool::weighted(0.2))
            .prop_map(|(step, id, replace)| Op::Add { step, id, replace }),
        3 => step.clone().prop_map(|step| Op::Claim { step }),
        2 => (0..4usize).prop_map(|which| Op::Heartbeat { which }),
        3 => (0..4usize, prop::bool::weighted(0.7)).prop_map(|(which, ok)| Op::Finish { which, ok }),
        1 => (step.clone(), id.clone()).prop_map(|(step, id)| Op::Retry { step, id }),
        2 => (step.clone(), id.clone()).prop_map(|(step, id)| Op::Delete { step, id }),
        1 => Just(Op::Expire),
        3 => (prop::bool::weighted(0.2), prop::option::weighted(0.25, step))
            .prop_map(|(full, step)| Op::Sync { full, step }),
    ]
}

fn history() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(op(), 5..40).prop_map(|mut ops| {
        ops.push(Op::Sync {
            full: false,
            step: None,
        });
        ops
    })
}

/// A store under test and how to make its tombstones expire.
struct Subject {
    store: Box<dyn TaskStore>,
    /// Removes the tombstones left before this time (epoch ms).
    expire: Box<dyn Fn(i64)>,
}

struct System {
    subject: Subject,
    /// Syncs as `anamo sync` does, with no overlap.
    a: Catalog,
    /// A full scan at every sync.
    b: Catalog,
    claims: Vec<Claim>,
    /// When the last sync of every step began: tombstones before it were seen by both
    /// catalogs (a TTL shorter than the time between such syncs would lose removals).
    last_sync: Option<i64>,
    /// How many of A's syncs were incremental.
    incremental: u64,
}

fn fail(msg: impl std::fmt::Display) -> TestCaseError {
    TestCaseError::fail(msg.to_string())
}

fn task(step: usize, id: usize) -> NewTask {
    NewTask {
        collection: STEPS[step].into(),
        task_id: format!("t{id}"),
        sample: Some(format!("S{id}")),
        script: format!("run {id}"),
        attrs: Default::default(),
        max_attempts: 2,
        timeout_secs: None,
        after: vec![],
        require: vec![],
    }
}

fn opts(full: bool, step: Option<usize>) -> TaskSyncOptions {
    TaskSyncOptions {
        collection: step.map(|s| STEPS[s].to_string()),
        full,
        overlap: Duration::ZERO,
        ..TaskSyncOptions::default()
    }
}

fn apply(sys: &mut System, op: &Op) -> Result<(), TestCaseError> {
    // Each operation in its own millisecond, as on any real store.
    std::thread::sleep(Duration::from_millis(2));
    let s = sys.subject.store.as_ref();
    let lease = Duration::from_secs(600);
    match *op {
        Op::Add { step, id, replace } => {
            s.add(&[task(step, id)], replace).map_err(fail)?;
        }
        Op::Claim { step } => {
            if let Some(claim) = s.claim(STEPS[step], "w1", lease).map_err(fail)? {
                sys.claims.push(claim);
            }
        }
        Op::Heartbeat { which } => {
            if !sys.claims.is_empty() {
                let i = which % sys.claims.len();
                s.heartbeat(&mut sys.claims[i], lease).map_err(fail)?;
            }
        }
        Op::Finish { which, ok } => {
            if !sys.claims.is_empty() {
                let claim = sys.claims.remove(which % sys.claims.len());
                let mut outcome = Outcome::success(anamo::clock::now_ms());
                if !ok {
                    outcome.exit_code = Some(1);
                    outcome.succeeded = false;
                    outcome.error_tail = Some("boom".into());
                }
                s.finish(&claim, &outcome).map_err(fail)?;
            }
        }
        Op::Retry { step, id } => {
            s.retry(STEPS[step], &Selector::Ids(vec![format!("t{id}")]))
                .map_err(fail)?;
        }
        Op::Delete { step, id } => {
            s.delete(STEPS[step], &Selector::Ids(vec![format!("t{id}")]))
                .map_err(fail)?;
        }
        Op::Expire => {
            if let Some(t) = sys.last_sync {
                (sys.subject.expire)(t);
            }
        }
        Op::Sync { full, step } => {
            // Only a sync of every step has been offered every tombstone left before it.
            if step.is_none() {
                sys.last_sync = Some(anamo::clock::now_ms());
            }
            let bar = indicatif::ProgressBar::hidden();
            let a =
                anamo::sync::sync_tasks(s, &mut sys.a, &opts(full, step), &bar).map_err(fail)?;
            if matches!(a.kind, SyncKind::Incremental { .. }) {
                sys.incremental += 1;
            }
            anamo::sync::sync_tasks(s, &mut sys.b, &opts(true, step), &bar).map_err(fail)?;
            same_catalogs(&sys.a, &sys.b)?;
        }
    }
    Ok(())
}

/// Columns that say when a sync saw a row, not what the store holds.
const WHEN_SEEN: &[&str] = &["first_seen_at", "last_seen_at", "id"];
/// Tables of the syncs' own bookkeeping.
const BOOKKEEPING: &[&str] = &["sync_runs", "catalog_meta"];

/// Every row of `table` (without the columns that say when a sync saw it), sorted.
fn rows(conn: &Connection, table: &str, only_live: bool) -> Vec<Vec<Value>> {
    let columns: Vec<String> = conn
        .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
        .expect("columns")
        .query_map([], |r| r.get(0))
        .expect("columns")
        .map(|c| c.expect("column"))
        .filter(|c: &String| !WHEN_SEEN.contains(&c.as_str()))
        .collect();
    let list = columns.join(", ");
    let filter = if only_live {
        "WHERE removed_at IS NULL"
    } else {
        ""
    };
    let mut stmt = conn
        .prepare(&format!(
            "SELECT {list} FROM {table} {filter} ORDER BY {list}"
        ))
        .expect("select");
    let n = columns.len();
    stmt.query_map([], |r| (0..n).map(|i| r.get::<_, Value>(i)).collect())
        .expect("rows")
        .map(|r| r.expect("row"))
        .collect()
}

fn conn(c: &Catalog) -> Connection {
    Connection::open(c.path()).expect("catalog")
}

fn same_catalogs(a: &Catalog, b: &Catalog) -> Result<(), TestCaseError> {
    let (a, b) = (conn(a), conn(b));
    let tables: Vec<String> = a
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .expect("tables")
        .query_map([], |r| r.get(0))
        .expect("tables")
        .map(|t| t.expect("table"))
        .filter(|t: &String| !BOOKKEEPING.contains(&t.as_str()))
        .collect();
    for table in tables {
        let (ra, rb) = (rows(&a, &table, false), rows(&b, &table, false));
        if ra != rb {
            return Err(fail(format!(
                "table {table} differs after an incremental sync:\n incremental: {ra:?}\n full: \
                 {rb:?}"
            )));
        }
    }
    Ok(())
}

fn play(
    open: &dyn Fn(&Path) -> Subject,
    ops: &[Op],
    incremental: &mut u64,
) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().map_err(fail)?;
    let mut sys = System {
        subject: open(dir.path()),
        a: Catalog::open(&dir.path().join("a.db")).map_err(fail)?,
        b: Catalog::open(&dir.path().join("b.db")).map_err(fail)?,
        claims: vec![],
        last_sync: None,
        incremental: 0,
    };
    for op in ops {
        apply(&mut sys, op)?;
    }
    *incremental += sys.incremental;
    // A fresh catalog's one full scan: the live tasks A holds are the store's.
    let mut fresh = Catalog::open(&dir.path().join("fresh.db")).map_err(fail)?;
    let bar = indicatif::ProgressBar::hidden();
    anamo::sync::sync_tasks(
        sys.subject.store.as_ref(),
        &mut fresh,
        &opts(true, None),
        &bar,
    )
    .map_err(fail)?;
    let (a, fresh) = (
        rows(&conn(&sys.a), "tasks", true),
        rows(&conn(&fresh), "tasks", true),
    );
    if a != fresh {
        return Err(fail(format!(
            "live tasks differ from a fresh full sync:\n incremental: {a:?}\n fresh: {fresh:?}"
        )));
    }
    Ok(())
}

fn judge(store: &str, cases: u32, open: &dyn Fn(&Path) -> Subject) {
    let cases = std::env::var("ANAMO_INCREMENTAL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    let seed: u64 = std::env::var("ANAMO_MODEL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| anamo::clock::now_ms() as u64);
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 500,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes));
    let incremental = std::cell::Cell::new(0);
    let result = runner.run(&history(), |ops| {
        let mut n = 0;
        let played = play(open, &ops, &mut n);
        incremental.set(incremental.get() + n);
        played
    });
    let incremental = incremental.get();
    eprintln!(
        "incremental against full on {store}: {cases} histories from seed {seed}, {incremental} \
         incremental syncs compared, {} disagreement(s)",
        result.is_err() as u32
    );
    if let Err(e) = result {
        panic!("incremental sync differs from full on {store} (ANAMO_MODEL_SEED={seed}): {e}");
    }
    assert!(
        incremental > cases as u64,
        "too few incremental syncs to judge: {incremental}"
    );
}

#[test]
fn incremental_sync_equals_full_on_sqlite() {
    judge("SQLite", 60, &|dir| {
        let path = dir.join("tasks.db");
        let store = SqliteStore::open(&path, OpenMode::Create).expect("store");
        Subject {
            store: Box::new(store),
            expire: Box::new(move |before| {
                Connection::open(&path)
                    .expect("store file")
                    .execute("DELETE FROM tombstones WHERE removed_at < ?1", [before])
                    .expect("expire");
            }),
        }
    });
}

#[test]
fn incremental_sync_equals_full_on_dynamodb() {
    let _alone = crate::harness::heavy();
    let Some(moto) = crate::harness::moto::Moto::start() else {
        return;
    };
    on_dynamodb("DynamoDB (moto)", &moto.aws());
}

/// The same on a second, independent DynamoDB emulator.
#[test]
fn incremental_sync_equals_full_on_dynalite() {
    use crate::harness::Emulator;
    let _alone = crate::harness::heavy();
    let Some(dynalite) = crate::harness::dynalite::Dynalite::start() else {
        return;
    };
    on_dynamodb("DynamoDB (dynalite)", &dynalite.aws());
}

fn on_dynamodb(label: &str, aws: &anamo::aws::AwsOptions) {
    let n = std::sync::atomic::AtomicU64::new(0);
    judge(label, 20, &|_dir| {
        let table = format!(
            "inc-{}",
            n.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let store = DynamoStore::connect(&table, aws).expect("connect");
        store.init().expect("table");
        let aws = aws.clone();
        Subject {
            store: Box::new(DynamoStore::open(&table, &aws).expect("store")),
            expire: Box::new(move |before| expire_tombstones(&aws, &table, before)),
        }
    });
}

/// Deletes the tombstones of `table` left before `before`, as DynamoDB's TTL would.
fn expire_tombstones(aws: &anamo::aws::AwsOptions, table: &str, before: i64) {
    use aws_sdk_dynamodb::types::AttributeValue;
    let rt = anamo::aws::runtime().expect("runtime");
    let client = aws_sdk_dynamodb::Client::new(&rt.block_on(anamo::aws::config(aws)));
    rt.block_on(async {
        let out = client
            .scan()
            .table_name(table)
            .filter_expression("begins_with(#c, :r) AND #at < :before")
            .expression_attribute_names("#c", "collection")
            .expression_attribute_names("#at", "removed_at")
            .expression_attribute_values(":r", AttributeValue::S("/removed/".into()))
            .expression_attribute_values(":before", AttributeValue::N(before.to_string()))
            .send()
            .await
            .expect("scan");
        for item in out.items.unwrap_or_default() {
            client
                .delete_item()
                .table_name(table)
                .key("collection", item["collection"].clone())
                .key("task_id", item["task_id"].clone())
                .send()
                .await
                .expect("delete");
        }
    });
}

/// A write stamped before the last sync began (its host's clock is behind, or the index
/// showed it late), within the overlap, is still read by the next incremental sync; with no
/// overlap the same history misses it, which is what the overlap is for.
fn out_of_order(store: &dyn TaskStore, skewed_done: &dyn Fn(i64)) {
    let dir = tempfile::tempdir().expect("dir");
    store.add(&[task(0, 1)], false).expect("add");
    let bar = indicatif::ProgressBar::hidden();
    let mut with_overlap = Catalog::open(&dir.path().join("a.db")).expect("catalog");
    let mut without = Catalog::open(&dir.path().join("b.db")).expect("catalog");
    for c in [&mut with_overlap, &mut without] {
        anamo::sync::sync_tasks(store, c, &opts(false, None), &bar).expect("first sync");
    }
    let mark = with_overlap.sync_mark(None).expect("mark").expect("a mark");
    std::thread::sleep(Duration::from_millis(5));
    // Written now, stamped two seconds before the mark.
    skewed_done(mark.read_from - 2_000);
    let overlap = TaskSyncOptions {
        overlap: Duration::from_secs(5),
        ..TaskSyncOptions::default()
    };
    let synced = anamo::sync::sync_tasks(store, &mut with_overlap, &overlap, &bar).expect("sync");
    assert!(
        matches!(synced.kind, SyncKind::Incremental { .. }),
        "{:?}",
        synced.kind
    );
    anamo::sync::sync_tasks(store, &mut without, &opts(false, None), &bar).expect("sync");
    let state = |c: &Catalog| -> String {
        conn(c)
            .query_row("SELECT state FROM tasks WHERE task_id = 't1'", [], |r| {
                r.get(0)
            })
            .expect("t1")
    };
    assert_eq!(
        state(&with_overlap),
        "done",
        "the overlap catches the late stamp"
    );
    assert_eq!(
        state(&without),
        "todo",
        "without an overlap the late stamp is missed"
    );
}

#[test]
fn a_late_stamp_within_the_overlap_is_caught_on_sqlite() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("tasks.db");
    let store = SqliteStore::open(&path, OpenMode::Create).expect("store");
    out_of_order(&store, &|at| {
        Connection::open(&path)
            .expect("store file")
            .execute(
                "UPDATE tasks SET state = 'done', updated_at = ?1, version = version + 1",
                [at],
            )
            .expect("skewed write");
    });
}

#[test]
fn a_late_stamp_within_the_overlap_is_caught_on_dynamodb() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let Some(moto) = crate::harness::moto::Moto::start() else {
        return;
    };
    let aws = moto.aws();
    let store = DynamoStore::connect("late", &aws).expect("connect");
    store.init().expect("table");
    let store = DynamoStore::open("late", &aws).expect("store");
    out_of_order(&store, &|at| {
        let rt = anamo::aws::runtime().expect("runtime");
        let client = aws_sdk_dynamodb::Client::new(&rt.block_on(anamo::aws::config(&aws)));
        rt.block_on(
            client
                .update_item()
                .table_name("late")
                .key("collection", AttributeValue::S("A".into()))
                .key("task_id", AttributeValue::S("t1".into()))
                .update_expression("SET #s = :done, #u = :at, #v = #v + :one REMOVE #c")
                .expression_attribute_names("#s", "state")
                .expression_attribute_names("#u", "updated_at")
                .expression_attribute_names("#v", "version")
                .expression_attribute_names("#c", "claimable_at")
                .expression_attribute_values(":done", AttributeValue::S("done".into()))
                .expression_attribute_values(":at", AttributeValue::N(at.to_string()))
                .expression_attribute_values(":one", AttributeValue::N("1".into()))
                .send(),
        )
        .expect("skewed write");
    });
}

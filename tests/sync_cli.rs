//! `anamo sync` of the task store into the catalog, as a process: idempotent, with events and
//! removals; an interrupted sync leaves whole batches; a second sync at once is told; the
//! catalog knows its store and refuses another.

use std::time::Duration;

use crate::harness::{Env, FRESH, wait_for};

#[test]
fn sync_is_idempotent_records_changes_and_marks_removed_tasks() {
    let env = Env::new();
    env.write(
        "a.csv",
        "task_id,sample,script\na1,S1,true\na2,S2,exit 1\na3,S3,true\n",
    );
    env.ok(&["tasks", "add", "a.csv", "-c", "A", "--max-attempts", "1"]);
    let out = env.ok(&["sync"]);
    assert!(
        out.contains("3 seen, 3 new, 0 changed state, 0 removed"),
        "{out}"
    );
    let out = env.ok(&["sync"]);
    assert!(
        out.contains("3 seen, 0 new, 0 changed state, 0 removed"),
        "{out}"
    );
    assert_eq!(
        env.count(
            "SELECT count(*) FROM task_events WHERE from_state = 'unseen' AND to_state = 'todo'"
        ),
        3,
        "a first sighting is an event"
    );
    assert_eq!(
        env.count("SELECT count(*) FROM task_events"),
        3,
        "an unchanged sync adds none"
    );
    env.ok(&["worker", "-c", "A"]);
    let out = env.ok(&["sync"]);
    assert!(out.contains("3 seen, 0 new, 3 changed state"), "{out}");
    assert_eq!(
        env.count(
            "SELECT count(*) FROM task_events WHERE from_state = 'todo' AND to_state = 'done'"
        ),
        2
    );
    // Deleted from another machine (its own catalog): this catalog learns it from a sync.
    env.ok(&[
        "--catalog",
        "elsewhere.db",
        "tasks",
        "delete",
        "-c",
        "A",
        "--state",
        "done",
    ]);
    let out = env.ok(&["sync"]);
    assert!(
        out.contains("1 seen, 0 new, 0 changed state, 2 removed"),
        "{out}"
    );
    assert_eq!(
        env.count("SELECT count(*) FROM tasks WHERE removed_at IS NOT NULL"),
        2
    );
    assert_eq!(
        env.count("SELECT count(*) FROM tasks"),
        3,
        "history is kept"
    );
    let progress = env.ok(&["query", "step-progress"]);
    assert!(
        progress.contains("A\t0\t0\t0\t0\t2\t1\t3\t66.7"),
        "removed done tasks still count: {progress}"
    );
    // Done and deleted: adding it again is skipped, unless asked to run it again.
    let out = env
        .anamo(&["tasks", "add", "-c", "A", "--id", "a1", "--script", "true"])
        .stderr(format!(
            "skipped A/a1: removed while done on {}\n\
             tasks seen before are left as they are: --replace runs them again (and changes \
             what they wait for)\n",
            &anamo::clock::rfc3339(anamo::clock::now_ms())[..10]
        ))
        .run();
    assert!(out.contains("skipped 1 seen before"), "{out}");
    env.ok(&[
        "tasks",
        "add",
        "-c",
        "A",
        "--id",
        "a1",
        "--script",
        "true",
        "--replace",
    ]);
    let out = env.ok(&["sync"]);
    assert!(
        out.contains("2 seen, 0 new, 1 changed state, 0 removed"),
        "{out}"
    );
    assert_eq!(
        env.count("SELECT count(*) FROM tasks WHERE removed_at IS NOT NULL"),
        1
    );
    assert_eq!(
        env.count("SELECT count(*) FROM sync_runs WHERE status = 'ok'"),
        5
    );
}

#[test]
fn an_interrupted_sync_leaves_a_consistent_catalog() {
    let env = Env::new();
    let mut csv = String::from("task_id,sample,script\n");
    for i in 0..150_000 {
        csv.push_str(&format!("t{i:06},S{},true\n", i % 5000));
    }
    env.write("big.csv", &csv);
    env.ok(&["tasks", "add", "big.csv", "-c", "Big"]);
    let sync = env.anamo(&["sync", "--batch", "1000"]).spawn();
    let started = wait_for(Duration::from_secs(60), || {
        env.path("anamo.db").exists()
            && env
                .catalog()
                .query_row("SELECT count(*) FROM tasks", [], |r| r.get::<_, i64>(0))
                .is_ok_and(|n| n >= 2000)
    });
    assert!(started, "sync never got going");
    sync.kill(Duration::from_secs(10));
    let n = env.count("SELECT count(*) FROM tasks");
    assert!(n < 150_000, "killed before the end ({n})");
    assert_eq!(n % 1000, 0, "only whole batches landed: {n}");
    assert_eq!(
        env.count("SELECT count(*) FROM sync_runs WHERE status = 'ok'"),
        0
    );
    let check: String = env
        .catalog()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    assert_eq!(
        env.count("SELECT count(*) FROM sync_runs WHERE status = 'running'"),
        1
    );
    let out = env.ok(&["sync"]);
    assert!(
        out.contains(&format!("150000 seen, {} new", 150_000 - n)),
        "{out}"
    );
    assert_eq!(env.count("SELECT count(*) FROM tasks"), 150_000);
    assert_eq!(
        env.count("SELECT count(DISTINCT task_id) FROM tasks WHERE removed_at IS NULL"),
        150_000
    );
    let err: String = env
        .catalog()
        .query_row(
            "SELECT error FROM sync_runs WHERE status = 'failed'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(err.contains("interrupted"), "{err}");
}

#[test]
fn a_second_sync_is_told_and_status_says_when_a_sync_runs_or_died() {
    use std::os::fd::AsRawFd;
    let env = Env::new();
    env.ok(&["tasks", "add", "-c", "A", "--id", "a1", "--script", "true"]);
    env.ok(&["sync"]);
    // Another process is syncing: it holds the lock and its run row says running.
    let lock = std::fs::File::create(env.path("anamo.db.sync-lock")).unwrap();
    // SAFETY: flock on a file this test owns.
    assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0);
    env.catalog_rw()
        .execute(
            "INSERT INTO sync_runs (source, started_at, status, host, pid) \
             VALUES ('tasks:sqlite://x', 1795636862000, 'running', 'elsewhere', 4242)",
            [],
        )
        .unwrap();
    env.anamo(&["sync"])
        .fails(1)
        .stderr(
            "error: catalog 'anamo.db' is being synced by another process (pid 4242 on elsewhere, since 2026-11-25T20:01:02Z); wait for it to finish\n",
        )
        .run();
    env.anamo(&["status"])
        .stderr_matches(&format!("a sync is running now; {FRESH}"))
        .run();
    // It died: the lock is gone, its row still says running.
    drop(lock);
    env.anamo(&["status"])
        .stderr_matches(&format!(
            r"the last sync \(started 2026-11-25T20:01:02Z\) did not finish; {FRESH}"
        ))
        .run();
}

#[test]
fn the_catalog_knows_its_store_and_refuses_another() {
    let env = Env::new();
    env.ok(&["tasks", "add", "-c", "A", "--id", "a1", "--script", "true"]);
    env.ok(&["sync"]);
    // The same file by another path is the same store.
    std::fs::create_dir_all(env.path("sub")).unwrap();
    let same = env.ok(&["--store", "sub/../tasks.db", "sync"]);
    assert!(same.contains("1 seen, 0 new"), "{same}");
    // Another cohort's store: the add says this catalog is not its; the sync is refused,
    // nothing marked removed.
    let here = std::fs::canonicalize(env.store()).unwrap();
    env.anamo(&[
        "--store", "other.db", "tasks", "add", "-c", "B", "--id", "b1", "--script", "true",
    ])
    .stderr_one_line_with(format!(
        "catalog 'anamo.db' holds the tasks of sqlite://{}, not of sqlite://",
        here.display()
    ))
    .stderr_contains("its history is not used here; sync this store into another --catalog")
    .run();
    env.anamo(&["--store", "other.db", "sync"])
        .fails(1)
        .stderr_starts_with(format!(
            "error: catalog 'anamo.db' holds the tasks of sqlite://{}, not of sqlite://",
            here.display()
        ))
        .stderr_one_line_with("--store-changed")
        .run();
    assert_eq!(
        env.count("SELECT count(*) FROM tasks WHERE removed_at IS NOT NULL"),
        0
    );
    // Said on purpose: the new store is the catalog's from now on.
    let out = env.ok(&["--store", "other.db", "sync", "--store-changed"]);
    assert!(out.contains("1 seen, 1 new"), "{out}");
    env.anamo(&["sync"])
        .fails(1)
        .stderr_starts_with("error: catalog 'anamo.db' holds the tasks of sqlite://")
        .stderr_one_line_with(format!(
            "{}, not of sqlite://{}",
            std::fs::canonicalize(env.path("other.db"))
                .unwrap()
                .display(),
            here.display()
        ))
        .run();
}

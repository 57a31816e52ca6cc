//! `anamo status` as a process: steps in their order with throughput and ETA, the freshness
//! note, `--sync` keeping its lines off stdout, and `--sample`, which is the sample-timeline
//! report; the progress matrix on the SQLite store.

use regex::escape;

use std::time::Duration;

use crate::harness::{Env, FRESH};

/// A store with two steps of S1 done and S2's first step failed, synced, with the order set
/// and a third step that has no task of S1.
pub(crate) fn journey_env() -> Env {
    let env = Env::new();
    for (step, id, sample, script) in [
        ("Align", "a1", "S1", "true"),
        ("Align", "a2", "S2", "exit 3"),
        ("Call", "c1", "S1", "true"),
    ] {
        env.anamo(&[
            "tasks",
            "add",
            "-c",
            step,
            "--id",
            id,
            "--sample",
            sample,
            "--script",
            script,
            "--max-attempts",
            "1",
        ])
        .run();
    }
    for step in ["Align", "Call"] {
        env.anamo(&["worker", "-c", step, "-q"]).run();
    }
    env.anamo(&["sync", "-q"]).run();
    env.anamo(&["steps", "set", "Align", "Call", "Joint"])
        .stderr(
            "warning: no task of step(s) Joint in the catalog yet (it knows Align, Call); set \
             anyway: check the spelling\n",
        )
        .run();
    env
}

#[test]
fn status_shows_steps_in_order_with_throughput() {
    let env = Env::new();
    env.write("a.csv", "collection,task_id,sample,script\nB,b1,S1,true\nA,a1,S1,true\nA,a2,S2,exit 1\nC,c1,S1,true\n");
    env.ok(&["tasks", "add", "a.csv", "--max-attempts", "1"]);
    env.ok(&["worker", "-c", "A"]);
    env.ok(&["steps", "set", "B", "A", "Z"]);
    // The sync's line goes to stderr, before the freshness note.
    let stdout = env
        .anamo(&["status", "--sync"])
        .stderr_matches(&format!(
            r"synced tasks from sqlite://[^\n]+ into anamo\.db: 4 seen, 4 new, 0 changed state, 0 removed in \d+\.\ds \(full scan: first sync of this catalog, 4 item\(s\) read\)\n{FRESH}"
        ))
        .run();
    let lines: Vec<&str> = stdout
        .lines()
        .inspect(|l| assert!(!l.starts_with("synced"), "sync lines go to stderr: {l}"))
        .collect();
    assert_eq!(
        lines[0],
        "step\twaiting\theld\ttodo\trunning\tdone\tfailed\ttotal\tpct_done\tdone_24h\teta_hours\tinstances\tcost_usd\tunpriced_instances\tabandoned\tsuperseded\tdropped\tblocked"
    );
    assert_eq!(
        lines[1],
        "B\t0\t0\t1\t0\t0\t0\t1\t0.0\t0\t\t0\t\t0\t0\t0\t0\t0"
    );
    assert_eq!(
        lines[2],
        "A\t0\t0\t0\t0\t1\t1\t2\t50.0\t1\t\t0\t\t0\t0\t0\t0\t0"
    );
    assert_eq!(
        lines[3],
        "Z\t0\t0\t0\t0\t0\t0\t0\t0.0\t0\t\t0\t\t0\t0\t0\t0\t0"
    );
    assert_eq!(
        lines[4],
        "C\t0\t0\t1\t0\t0\t0\t1\t0.0\t0\t\t0\t\t0\t0\t0\t0\t0"
    );
    let journey = env
        .anamo(&["status", "--sample", "S2"])
        .stderr_matches(FRESH)
        .run();
    assert!(journey.contains("A\ta2\tfailed\t1"), "{journey}");
    assert!(journey.contains("Z\t\tnot added"), "{journey}");
    // The freshness note comes before the answer, and so before the error.
    env.anamo(&["status", "--sample", "nobody"])
        .fails(1)
        .stderr_matches(&format!(
            "{FRESH}{}",
            escape(
                "error: no sample 'nobody' in the catalog (neither imported nor in any synced task)\n"
            )
        ))
        .run();
}

#[test]
fn eta_comes_from_a_recent_pace_with_enough_data() {
    let env = Env::new();
    env.write("samples.csv", "sample_id\nS1\n");
    env.ok(&["samples", "import", "samples.csv"]);
    let now = anamo::clock::now_ms();
    let add = |step: &str, id: &str, state: &str, finished: Option<i64>| {
        env.catalog_rw()
            .execute(
                "INSERT INTO tasks (collection, task_id, state, finished_at, first_seen_at, last_seen_at) \
                 VALUES (?1, ?2, ?3, ?4, 1, 1)",
                rusqlite::params![step, id, state, finished],
            )
            .unwrap();
    };
    // Fast: eight done within the last minute, one left: minutes, not hours.
    for i in 0..8 {
        add(
            "Fast",
            &format!("f{i}"),
            "done",
            Some(now - 60_000 + i * 1_000),
        );
    }
    add("Fast", "f8", "todo", None);
    // Slow: ten done over the last 20 hours, ten left: 20 hours more.
    for i in 0..10 {
        add(
            "Slow",
            &format!("s{i}"),
            "done",
            Some(now - 20 * 3_600_000 + i * 7_200_000),
        );
    }
    for i in 10..20 {
        add("Slow", &format!("s{i}"), "todo", None);
    }
    // Thin: three done lately: not enough to say.
    for i in 0..3 {
        add("Thin", &format!("t{i}"), "done", Some(now - 1_000 * i));
    }
    add("Thin", "t3", "todo", None);
    // Rows written straight into the catalog: no sync ever ran.
    let never = "tasks never fully synced: run `anamo sync`\n";
    let rows: Vec<serde_json::Value> = serde_json::from_str(
        &env.anamo(&["status", "--format", "json"])
            .stderr(never)
            .run(),
    )
    .unwrap();
    let eta = |step: &str| rows.iter().find(|r| r["step"] == step).unwrap()["eta_hours"].clone();
    let fast = eta("Fast").as_f64().unwrap();
    assert!(fast <= 0.01, "one task at 8 a minute: {fast}");
    let slow = eta("Slow").as_f64().unwrap();
    assert!((19.5..=20.5).contains(&slow), "{slow}");
    assert!(eta("Thin").is_null(), "three finishes are not a pace");
    let table = env
        .anamo(&["status", "--format", "table"])
        .stderr(never)
        .run();
    assert!(table.contains("1m"), "{table}");
}

#[test]
fn status_sample_is_the_sample_timeline_report() {
    let env = journey_env();
    let status = env
        .anamo(&["status", "--sample", "S1", "--format", "tsv"])
        .stderr_matches(FRESH)
        .run();
    let report = env
        .anamo(&[
            "query",
            "sample-timeline",
            "-p",
            "sample=S1",
            "--format",
            "tsv",
        ])
        .run();
    assert_eq!(
        status, report,
        "status --sample and the saved report tell one story"
    );
    let rows: Vec<Vec<&str>> = status.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(
        rows[0],
        [
            "step",
            "task_id",
            "state",
            "attempts",
            "owner",
            "started",
            "finished",
            "seconds",
            "exit_code",
            "removed_from_store",
            "gate",
            "step_state"
        ]
    );
    let steps: Vec<(&str, &str, &str, &str)> = rows[1..]
        .iter()
        .map(|r| (r[0], r[1], r[2], r[11]))
        .collect();
    assert_eq!(
        steps,
        [
            ("Align", "a1", "done", "done"),
            ("Call", "c1", "done", "done"),
            ("Joint", "", "not added", "not added")
        ]
    );
    // The failed sample's journey shows its failure where it happened.
    let s2 = env
        .anamo(&[
            "query",
            "sample-timeline",
            "-p",
            "sample=S2",
            "--format",
            "jsonl",
        ])
        .run();
    let first: serde_json::Value = serde_json::from_str(s2.lines().next().unwrap()).unwrap();
    assert_eq!(first["state"], "failed");
    assert_eq!(first["exit_code"], 3);
    assert_eq!(first["removed_from_store"], 0);
}

#[test]
fn status_sync_keeps_its_sync_lines_off_stdout() {
    let env = journey_env();
    let out = env
        .anamo(&["status", "--sync", "--format", "tsv"])
        .stderr_matches(&format!(
            r"synced tasks from sqlite://[^\n]+ into anamo\.db: 3 seen, 0 new, 0 changed state, 0 removed in [0-9.]+s \(incremental: changes since [0-9T:-]+Z, 3 item\(s\) read\)\n{FRESH}"
        ))
        .run();
    let first = out.lines().next().unwrap();
    assert!(
        first.starts_with("step\twaiting\theld\ttodo\trunning\tdone\tfailed\ttotal"),
        "{out}"
    );
    assert_eq!(out.lines().count(), 4, "a header and three steps: {out}");
}

#[test]
fn every_surface_tells_one_progress_on_the_sqlite_store() {
    crate::progress::progress_matrix(&Env::new());
}

#[test]
fn status_watch_prints_a_line_per_refresh_in_a_pipe_and_follows_the_catalog() {
    let env = Env::new();
    env.ok(&[
        "tasks", "add", "-c", "Align", "--id", "a1", "--sample", "S1", "--script", "true",
    ]);
    env.anamo(&["sync"]).stderr_matches(".*").run();
    let watch = env
        .anamo(&["status", "--watch", "--every", "1s"])
        .stderr_matches(".*")
        .spawn();
    let lines = |n: usize| {
        crate::harness::wait_for(Duration::from_secs(20), || {
            watch.stdout_now().lines().count() >= n
        })
    };
    assert!(lines(1), "a first line at once");
    let first = watch.stdout_now();
    assert!(
        first
            .lines()
            .next()
            .unwrap()
            .ends_with("Z Align: 0 waiting, 0 held, 1 todo, 0 running, 0 failed, 0 done"),
        "{first}"
    );
    env.ok(&["worker", "-c", "Align", "-q"]);
    env.anamo(&["sync"]).stderr_matches(".*").run();
    let seen = crate::harness::wait_for(Duration::from_secs(20), || {
        watch
            .stdout_now()
            .lines()
            .any(|l| l.ends_with("Align: 0 waiting, 0 held, 0 todo, 0 running, 0 failed, 1 done"))
    });
    assert!(
        seen,
        "a later refresh reads the new sync: {}",
        watch.stdout_now()
    );
    watch.stop(libc::SIGTERM, Duration::from_secs(10));
    // --every needs --watch; --watch is not for one sample.
    env.anamo(&["status", "--every", "5s"])
        .fails(2)
        .stderr_matches("(?s).*--watch.*")
        .run();
    env.anamo(&["status", "--watch", "--sample", "S1"])
        .fails(2)
        .stderr_matches("(?s).*cannot be used with.*")
        .run();
}

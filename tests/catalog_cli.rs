//! The catalog as a process: demo, sync, query guard, saved reports, samples/QC/steps, status.

use std::time::Duration;

use regex::escape;
use rusqlite::Connection;

use crate::harness::{Env, FRESH, wait_for};

fn catalog(env: &Env) -> Connection {
    Connection::open(env.path("anamo.db")).unwrap()
}

fn count(env: &Env, sql: &str) -> i64 {
    catalog(env).query_row(sql, [], |r| r.get(0)).unwrap()
}

/// What `demo --dir d --samples N` says on stderr as it goes, a regex (its tables, on stdout,
/// hold the counts).
fn demo_notes(samples: usize) -> String {
    let step = |name: &str| {
        format!(
            r"demo: {name}: \d+ done, \d+ failed, \d+ retried, 0 released, 0 lost in \d+\.\ds\n"
        )
    };
    let tasks = samples * 3;
    [
        format!(
            r"demo: imported {samples} samples with QC metrics into d/anamo\.db; dropped S{samples:03} \(withdrew consent\): its tasks count apart\n"
        ),
        format!(
            r"demo: added {tasks} tasks over 3 chained steps \(--after\) to d/anamo-tasks\.db\n"
        ),
        step("Alignment"),
        step("ReadProcessing"),
        step("VariantCalling"),
        format!(r"demo: synced {tasks} tasks into the catalog\n"),
        r"demo: wrote the HTML report d/anamo-report\.html\n".to_string(),
    ]
    .concat()
}

/// The demo's catalog, with the env's store and catalog pointing into it.
fn demo(env: &Env) -> (String, String) {
    env.anamo(&["demo", "--dir", "d", "--samples", "12"])
        .stderr_matches(&demo_notes(12))
        .run();
    (
        env.path("d/anamo-tasks.db").display().to_string(),
        env.path("d/anamo.db").display().to_string(),
    )
}

#[test]
fn demo_runs_and_every_shipped_report_runs_on_its_catalog() {
    let env = Env::new();
    let out = env
        .anamo(&["demo", "--dir", "d", "--samples", "12"])
        .stderr_matches(&demo_notes(12))
        .run();
    assert!(out.contains("== anamo status"), "{out}");
    // 12 samples, the three steps run at once, chained: every sample ends done in every step
    // (the dropped one's tasks are shown apart, not outstanding).
    for step in ["Alignment", "ReadProcessing", "VariantCalling"] {
        assert!(
            out.contains(&format!("{step}\t0\t0\t0\t11\t0\t11\t100.0\t")),
            "{out}"
        );
    }
    assert!(
        out.contains("\t0\t0\t1\t0\n"),
        "the dropped sample's task is shown apart: {out}"
    );
    assert!(
        out.contains(
            "== anamo query samples-left -p step=VariantCalling\nsample_id\tcohort\tstate\n\n"
        ),
        "no sample is left: {out}"
    );
    let order = |sql: &str| -> i64 {
        rusqlite::Connection::open(env.path("d/anamo.db"))
            .unwrap()
            .query_row(sql, [], |r| r.get(0))
            .unwrap()
    };
    // No task started before its sample's task upstream had finished, and both flaky tasks
    // (S005's variant calling, S009's alignment) ran twice.
    let early = "SELECT count(*) FROM tasks d JOIN tasks u ON u.sample = d.sample \
                 AND u.collection = json_extract(d.after_steps, '$[0]') \
                 WHERE d.started_at < u.finished_at";
    assert_eq!(order(early), 0);
    let chained = "SELECT count(*) FROM tasks WHERE after_steps IS NOT NULL";
    assert_eq!(order(chained), 24);
    let twice = "SELECT group_concat(task_id) FROM tasks WHERE attempts = 2";
    let twice: String = rusqlite::Connection::open(env.path("d/anamo.db"))
        .unwrap()
        .query_row(twice, [], |r| r.get(0))
        .unwrap();
    assert_eq!(twice, "S009-alignment,S005-variantcalling");
    let cat = env.path("d/anamo.db");
    let cat = cat.to_str().unwrap();
    let reports = env.ok(&["reports", "--format", "csv"]);
    let names: Vec<&str> = reports
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert!(names.len() >= 19, "{reports}");
    for name in names {
        let mut args = vec!["--catalog", cat, "query", name, "--format", "jsonl"];
        match name {
            "samples-left" | "samples-done" => args.extend(["-p", "step=VariantCalling"]),
            "sample-timeline" => args.extend(["-p", "sample=S009"]),
            "qc-outliers" => args.extend(["-p", "metric=mean_coverage", "-p", "min=20"]),
            "samples-missing-files" => args.extend(["-p", "kind=cram"]),
            _ => {}
        }
        let out = env.ok(&args);
        let rows = out.lines().count();
        // One timestamp form in every report: RFC 3339 to the second.
        for line in out.lines() {
            let row: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(line).unwrap();
            for (k, v) in &row {
                // Date-shaped (YYYY-MM-DDT...): a temp dir such as /tmp/.tmpLT... is not one.
                if let Some(t) = v.as_str().filter(|t| {
                    let b = t.as_bytes();
                    b.len() > 10
                        && b[10] == b'T'
                        && b[4] == b'-'
                        && b[..4].iter().all(u8::is_ascii_digit)
                }) {
                    assert!(
                        t.len() == 20 && t.ends_with('Z') && t.starts_with("20"),
                        "{name}.{k}: {t}"
                    );
                }
            }
        }
        match name {
            "samples-left" => assert_eq!(rows, 0, "{name}: {out}"),
            "samples-done" => assert_eq!(rows, 11, "12 samples, 1 dropped: {out}"),
            "sample-timeline" => assert_eq!(rows, 3, "{name}: {out}"),
            "failed-tasks" | "blocked-samples" => assert_eq!(rows, 0, "{name}: {out}"),
            "step-progress" => assert_eq!(rows, 3, "{name}: {out}"),
            "dropped-samples" => assert!(out.contains("withdrew consent"), "{out}"),
            "qc-outliers" => assert!(rows >= 1 && out.contains("mean_coverage"), "{out}"),
            "throughput-by-day" => assert!(rows >= 3, "{name}: {out}"),
            "slowest-tasks" => assert_eq!(rows, 20, "{name}: {out}"),
            "stuck" => assert_eq!(rows, 0, "{name}: {out}"),
            // The demo lists no S3 objects: every active sample lacks its CRAM.
            "samples-missing-files" => assert_eq!(rows, 11, "{name}: {out}"),
            _ => {}
        }
    }
    // The demo's flaky task is first seen done after two attempts: its history says so.
    let first = env.ok(&[
        "--catalog",
        cat,
        "query",
        "SELECT from_state, to_state, attempts FROM task_events WHERE task_id = 'S009-alignment'",
        "--format",
        "csv",
    ]);
    assert_eq!(first, "from_state,to_state,attempts\nunseen,done,2\n");
    let status = env
        .anamo(&["--catalog", cat, "status", "--sample", "S009"])
        .stderr_matches(&format!("{FRESH}sample S009: cohort [^,\n]*, active\n"))
        .run();
    assert!(
        status.contains("Alignment\tS009-alignment\tdone\t2"),
        "flaky: 2 attempts: {status}"
    );
}

#[test]
fn the_query_guard_refuses_writes_and_leaves_the_catalog_byte_identical() {
    let env = Env::new();
    let (_, cat) = demo(&env);
    let files = |p: &str| {
        ["", "-wal", "-shm"]
            .map(|s| std::fs::read(format!("{p}{s}")).ok())
            .to_vec()
    };
    let before = files(&cat);
    for (sql, expected) in [
        (
            "INSERT INTO samples (sample_id, imported_at) VALUES ('x', 0)",
            "INSERT is not allowed",
        ),
        ("UPDATE tasks SET state = 'done'", "UPDATE is not allowed"),
        ("DELETE FROM tasks", "DELETE is not allowed"),
        ("DROP TABLE tasks", "DROP is not allowed"),
        ("ATTACH DATABASE 'other.db' AS o", "ATTACH is not allowed"),
        ("PRAGMA user_version = 99", "PRAGMA is not allowed"),
        ("PRAGMA journal_mode = 'DELETE'", "PRAGMA is not allowed"),
        ("SELECT 1; DROP TABLE tasks", "2 statements given"),
        (
            "WITH gone AS (DELETE FROM tasks RETURNING *) SELECT * FROM gone",
            "not allowed",
        ),
        ("CREATE TABLE t (a)", "CREATE is not allowed"),
        ("VACUUM", "not allowed"),
    ] {
        env.anamo(&["--catalog", &cat, "query", sql])
            .fails(1)
            .stderr_one_line_with(expected)
            .run();
    }
    assert!(files(&cat) == before, "the catalog changed");
    let n: i64 = Connection::open(&cat)
        .unwrap()
        .query_row("SELECT count(*) FROM tasks", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 36);
}

#[test]
fn parameters_are_bound_never_pasted() {
    let env = Env::new();
    let (_, cat) = demo(&env);
    let evil = "S001'; DROP TABLE tasks; --";
    let out = env.ok(&[
        "--catalog",
        &cat,
        "query",
        "SELECT count(*) AS n FROM tasks WHERE sample = :sample",
        "-p",
        &format!("sample={evil}"),
    ]);
    assert_eq!(out, "n\n0\n");
    let out = env.ok(&[
        "--catalog",
        &cat,
        "query",
        "sample-timeline",
        "-p",
        "sample=S001",
        "--format",
        "csv",
    ]);
    assert_eq!(out.lines().count(), 4, "{out}");
    env.anamo(&["--catalog", &cat, "query", "samples-left"])
        .fails(1)
        .stderr_one_line_with("the query needs --param step=VALUE")
        .run();
    env.anamo(&["--catalog", &cat, "query", "stuck", "-p", "step=x"])
        .fails(1)
        .stderr_one_line_with("unknown parameter 'step'; this query takes no parameters")
        .run();
    env.anamo(&[
        "--catalog",
        &cat,
        "query",
        "SELECT * FROM tasks WHERE sample = ?",
    ])
    .fails(1)
    .stderr_one_line_with("use named parameters")
    .run();
    env.anamo(&["--catalog", &cat, "query", "no-such-report"])
        .fails(1)
        .stderr("error: no saved report named 'no-such-report'; see `anamo reports`\n")
        .run();
    env.anamo(&[
        "--catalog",
        &cat,
        "query",
        "SELECT sample,\n  nosuch FROM tasks",
    ])
    .fails(1)
    .stderr("error: SQL error at line 2, column 3: no such column: nosuch\n")
    .run();
}

#[test]
fn query_formats() {
    let env = Env::new();
    let (_, cat) = demo(&env);
    let sql = "SELECT collection, count(*) AS n FROM tasks GROUP BY collection ORDER BY collection";
    let csv = env.ok(&["--catalog", &cat, "query", sql, "--format", "csv"]);
    assert_eq!(
        csv,
        "collection,n\nAlignment,12\nReadProcessing,12\nVariantCalling,12\n"
    );
    let json: serde_json::Value =
        serde_json::from_str(&env.ok(&["--catalog", &cat, "query", sql, "-f", "json"])).unwrap();
    assert_eq!(json[2]["n"], 12);
    let md = env.ok(&["--catalog", &cat, "query", sql, "-f", "markdown"]);
    assert!(md.contains("| Alignment | 12 |"), "{md}");
    let table = env.ok(&["--catalog", &cat, "query", sql, "-f", "table"]);
    assert!(table.contains("ReadProcessing"), "{table}");
}

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
        count(
            &env,
            "SELECT count(*) FROM task_events WHERE from_state = 'unseen' AND to_state = 'todo'"
        ),
        3,
        "a first sighting is an event"
    );
    assert_eq!(
        count(&env, "SELECT count(*) FROM task_events"),
        3,
        "an unchanged sync adds none"
    );
    env.ok(&["worker", "-c", "A"]);
    let out = env.ok(&["sync"]);
    assert!(out.contains("3 seen, 0 new, 3 changed state"), "{out}");
    assert_eq!(
        count(
            &env,
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
        count(
            &env,
            "SELECT count(*) FROM tasks WHERE removed_at IS NOT NULL"
        ),
        2
    );
    assert_eq!(
        count(&env, "SELECT count(*) FROM tasks"),
        3,
        "history is kept"
    );
    let progress = env.ok(&["query", "step-progress"]);
    assert!(
        progress.contains("A\t0\t0\t0\t2\t1\t3\t66.7"),
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
        count(
            &env,
            "SELECT count(*) FROM tasks WHERE removed_at IS NOT NULL"
        ),
        1
    );
    assert_eq!(
        count(&env, "SELECT count(*) FROM sync_runs WHERE status = 'ok'"),
        5
    );
}

#[test]
fn a_bad_catalog_file_is_refused_and_left_alone() {
    let env = Env::new();
    env.ok(&["tasks", "add", "-c", "A", "--id", "a", "--script", "true"]);
    let junk = "PAR1 not a database at all\n".repeat(300);
    env.write("anamo.db", &junk);
    for args in [
        vec!["sync"],
        vec!["query", "SELECT 1"],
        vec!["status"],
        vec!["samples", "drop", "x", "--reason", "r"],
    ] {
        env.anamo(&args)
            .fails(1)
            .stderr_one_line_with("is not an anamo catalog (not a SQLite database)")
            .run();
    }
    assert_eq!(env.read("anamo.db"), junk);
    // Another SQLite database is not ours either.
    std::fs::remove_file(env.path("anamo.db")).unwrap();
    Connection::open(env.path("anamo.db"))
        .unwrap()
        .execute_batch("CREATE TABLE x (a);")
        .unwrap();
    env.anamo(&["sync"])
        .fails(1)
        .stderr_one_line_with("a SQLite database of something else")
        .run();
    // A catalog from a newer anamo.
    std::fs::remove_file(env.path("anamo.db")).unwrap();
    env.ok(&["sync"]);
    catalog(&env)
        .execute_batch("PRAGMA user_version = 99;")
        .unwrap();
    // This anamo's schema: one version per migration.
    let ours = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/catalog"))
        .unwrap()
        .count();
    for args in [vec!["sync"], vec!["query", "SELECT 1"]] {
        env.anamo(&args)
            .fails(1)
            .stderr_one_line_with(format!(
                "was written by a newer anamo (schema 99 > {ours}); upgrade anamo"
            ))
            .run();
    }
    Env::new()
        .anamo(&["query", "SELECT 1"])
        .fails(1)
        .stderr_one_line_with("catalog 'anamo.db' does not exist")
        .run();
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
            && Connection::open(env.path("anamo.db"))
                .and_then(|c| c.query_row("SELECT count(*) FROM tasks", [], |r| r.get::<_, i64>(0)))
                .is_ok_and(|n| n >= 2000)
    });
    assert!(started, "sync never got going");
    sync.kill(Duration::from_secs(10));
    let n = count(&env, "SELECT count(*) FROM tasks");
    assert!(n < 150_000, "killed before the end ({n})");
    assert_eq!(n % 1000, 0, "only whole batches landed: {n}");
    assert_eq!(
        count(&env, "SELECT count(*) FROM sync_runs WHERE status = 'ok'"),
        0
    );
    let check: String = catalog(&env)
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    assert_eq!(
        count(
            &env,
            "SELECT count(*) FROM sync_runs WHERE status = 'running'"
        ),
        1
    );
    let out = env.ok(&["sync"]);
    assert!(
        out.contains(&format!("150000 seen, {} new", 150_000 - n)),
        "{out}"
    );
    assert_eq!(count(&env, "SELECT count(*) FROM tasks"), 150_000);
    assert_eq!(
        count(
            &env,
            "SELECT count(DISTINCT task_id) FROM tasks WHERE removed_at IS NULL"
        ),
        150_000
    );
    let err: String = catalog(&env)
        .query_row(
            "SELECT error FROM sync_runs WHERE status = 'failed'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(err.contains("interrupted"), "{err}");
}

#[test]
fn samples_qc_and_steps() {
    let env = Env::new();
    env.write(
        "s.csv",
        "sample_id,cohort,sex,bam\nS1,A,F,s3://b/S1.bam\nS2,B,M,\nS3,A,,\n",
    );
    assert!(
        env.ok(&["samples", "import", "s.csv"])
            .contains("imported 3 sample(s)")
    );
    env.write(
        "s2.jsonl",
        "{\"sample_id\":\"S2\",\"status\":\"active\",\"depth\":31.5}\n",
    );
    env.ok(&["samples", "import", "s2.jsonl"]);
    let meta: String = catalog(&env)
        .query_row(
            "SELECT metadata FROM samples WHERE sample_id = 'S2'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let meta: serde_json::Value = serde_json::from_str(&meta).unwrap();
    assert_eq!(
        (meta["sex"].as_str(), meta["depth"].as_f64()),
        (Some("M"), Some(31.5))
    );
    env.write(
        "long.tsv",
        "sample\tmetric\tvalue\nS1\tcoverage\t31.2\nS2\tcoverage\t8.5\n",
    );
    assert!(
        env.ok(&["qc", "import", "long.tsv"])
            .contains("imported 2 QC value(s) from long.tsv")
    );
    env.write(
        "wide.csv",
        "sample_id,dup_rate,contamination\nS1,0.1,0.001\nS9,0.4,\n",
    );
    env.anamo(&["qc", "import", "wide.csv", "--source", "picard"])
        .stderr(
            "note: 1 row(s) name samples not in the catalog; import them with `anamo samples import`\n",
        )
        .run();
    assert_eq!(count(&env, "SELECT count(*) FROM qc_metrics"), 5);
    let out = env.ok(&[
        "query",
        "qc-outliers",
        "-p",
        "metric=coverage",
        "-p",
        "min=20",
    ]);
    assert_eq!(
        out,
        "sample_id\tcohort\tmetric\tvalue\tsource\nS2\tB\tcoverage\t8.5\tlong.tsv\n"
    );
    assert!(
        env.ok(&["samples", "drop", "S3", "--reason", "failed QC"])
            .contains("dropped sample S3")
    );
    assert!(
        env.ok(&["samples", "drop", "S3", "--reason", "again"])
            .contains("already dropped")
    );
    env.anamo(&["samples", "drop", "S7", "--reason", "x"])
        .fails(1)
        .stderr_one_line_with("no sample 'S7' in the catalog")
        .run();
    assert!(env.ok(&["query", "dropped-samples"]).contains("S3\tA"));
    env.ok(&["steps", "set", "Alignment", "VariantCalling"]);
    assert_eq!(env.ok(&["steps", "list"]), "Alignment\nVariantCalling\n");
    // The spelling check speaks before the refusal.
    env.anamo(&["steps", "set", "A", "A"])
        .fails(1)
        .stderr(
            "warning: no task of step(s) A, A in the catalog yet (it knows Alignment, VariantCalling); set anyway: check the spelling\n\
             error: step 'A' is named twice\n",
        )
        .run();

    // Bad input: one line naming file and line; nothing of the batch lands.
    for (name, text, expected) in [
        (
            "bad1.csv",
            "sample_id,cohort\nS4,A\nS5,A,extra\n",
            "bad1.csv:3: this row has 3 fields",
        ),
        (
            "bad2.csv",
            "cohort\nA\n",
            "bad2.csv:1: no 'sample_id' column",
        ),
        (
            "bad3.csv",
            "sample_id\nS4\nS4\n",
            "bad3.csv:3: sample 'S4' is listed twice",
        ),
    ] {
        env.write(name, text);
        env.anamo(&["samples", "import", name])
            .fails(1)
            .stderr_one_line_with(expected)
            .run();
    }
    env.write("badqc.csv", "sample_id,coverage\nS1,30\nS2,high\n");
    env.anamo(&["qc", "import", "badqc.csv"])
        .fails(1)
        .stderr_one_line_with("badqc.csv:3: value 'high' of metric 'coverage' is not a number")
        .run();
    assert_eq!(count(&env, "SELECT count(*) FROM samples"), 3);
    assert_eq!(count(&env, "SELECT count(*) FROM qc_metrics"), 5);
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
            r"synced tasks from sqlite://[^\n]+ into anamo\.db: 4 seen, 4 new, 0 changed state, 0 removed in \d+\.\ds\n{FRESH}"
        ))
        .run();
    let lines: Vec<&str> = stdout
        .lines()
        .inspect(|l| assert!(!l.starts_with("synced"), "sync lines go to stderr: {l}"))
        .collect();
    assert_eq!(
        lines[0],
        "step\twaiting\ttodo\trunning\tdone\tfailed\ttotal\tpct_done\tdone_24h\teta_hours\tinstances\tcost_usd\tunpriced_instances\tabandoned\tsuperseded\tdropped\tblocked"
    );
    assert_eq!(
        lines[1],
        "B\t0\t1\t0\t0\t0\t1\t0.0\t0\t\t0\t\t0\t0\t0\t0\t0"
    );
    assert_eq!(
        lines[2],
        "A\t0\t0\t0\t1\t1\t2\t50.0\t1\t\t0\t\t0\t0\t0\t0\t0"
    );
    assert_eq!(
        lines[3],
        "Z\t0\t0\t0\t0\t0\t0\t0.0\t0\t\t0\t\t0\t0\t0\t0\t0"
    );
    assert_eq!(
        lines[4],
        "C\t0\t1\t0\t0\t0\t1\t0.0\t0\t\t0\t\t0\t0\t0\t0\t0"
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
fn user_reports_add_to_and_override_the_built_in_ones() {
    let env = Env::new();
    env.ok(&["tasks", "add", "-c", "A", "--id", "a", "--script", "true"]);
    env.ok(&["sync"]);
    std::fs::create_dir(env.path("my")).unwrap();
    env.write("my/answer.sql", "-- name: answer\n-- description: the answer\n-- params: plus=0\nSELECT 42 + CAST(:plus AS INTEGER) AS answer;\n");
    env.write(
        "my/stuck.sql",
        "-- description: my own stuck\nSELECT 'mine' AS who;\n",
    );
    let list = env.ok(&["--queries", "my", "reports"]);
    assert!(
        list.contains("answer\tplus=0\tthe answer\tmy/answer.sql"),
        "{list}"
    );
    assert!(
        list.contains("stuck\t\tmy own stuck\tmy/stuck.sql"),
        "{list}"
    );
    assert_eq!(
        env.ok(&["--queries", "my", "query", "answer", "-p", "plus=1"]),
        "answer\n43\n"
    );
    assert_eq!(
        env.ok(&["--queries", "my", "query", "stuck"]),
        "who\nmine\n"
    );
    // ./queries is picked up when present.
    std::fs::rename(env.path("my"), env.path("queries")).unwrap();
    assert_eq!(env.ok(&["query", "answer"]), "answer\n42\n");
    env.write("queries/broken.sql", "-- name: bad name!\nSELECT 1");
    // A broken file is skipped, the others still listed.
    env.anamo(&["reports"])
        .stderr_one_line_with("skipped report queries/broken.sql:1: report name 'bad name!'")
        .run();
}

#[test]
fn messages_name_the_right_thing() {
    let env = Env::new();
    let (_, cat) = demo(&env);
    let q = |args: &[&str]| {
        let mut all = vec!["--catalog", cat.as_str(), "query"];
        all.extend_from_slice(args);
        env.anamo(&all)
    };
    // A report parameter with a known set of values.
    q(&["samples-missing-files", "-p", "kind=CRAM"])
        .fails(1)
        .stderr(
            "error: report samples-missing-files: kind='CRAM' is not one of fastq, bam, cram, bai, crai, vcf, gvcf, tbi, other\n",
        )
        .run();
    // A parameter without '=' is called a parameter (a usage error: clap reads it).
    q(&["samples-left", "-p", "NA12878"])
        .fails(2)
        .stderr_first_line(
            "error: invalid value 'NA12878' for '--param <PARAMS>': 'NA12878' is not a parameter: write NAME=VALUE (e.g. sample=NA12878)",
        )
        .run();
    // PRAGMA is refused as a write would be, with the read-only form.
    q(&["PRAGMA table_info(launches)"])
        .fails(1)
        .stderr_one_line_with("pragma_table_info")
        .stderr_starts_with(
            "error: PRAGMA is not allowed: anamo query is read-only (SELECT, WITH, EXPLAIN only)",
        )
        .run();
    // A bad pattern in anamo.toml names the file and the entry's line.
    env.write(
        "anamo.toml",
        "[sync]\ninstances = false\n\n[[sync.objects]]\nuri = \"s3://b/study/\"\nsample_pattern = \"(\"\n",
    );
    env.anamo(&["sync", "--no-tasks"])
        .fails(1)
        .stderr_starts_with("error: anamo.toml:4: sample_pattern '(' is not a valid regex")
        .run();
    // A PiCaS token names PiCaS's field.
    env.write("tokens.json", "[{\"_id\": \"a\", \"type\": \"X\"}]");
    env.anamo(&["tasks", "add", "tokens.json"])
        .fails(1)
        .stderr(
            "error: tokens.json:1: task 'a' has no script: fill its 'Task_Script' field (or add one)\n",
        )
        .run();
    // A running task has no log yet: said so, not blamed on --log-dir.
    env.ok(&[
        "tasks", "add", "-c", "L", "--id", "slow", "--script", "sleep 3",
    ]);
    let worker = env.anamo(&["worker", "-c", "L"]).spawn();
    assert!(wait_for(
        Duration::from_secs(10),
        || env.task("slow")["state"] == "running"
    ));
    env.anamo(&["logs", "slow"])
        .fails(1)
        .stderr(
            "error: task L/slow is running its run 1; a log is recorded on the task when a run ends\n",
        )
        .run();
    worker.wait(Duration::from_secs(20));
}

#[test]
fn step_outputs_refuse_unknown_placeholders_and_say_when_a_bucket_was_never_synced() {
    let env = Env::new();
    let (_, cat) = demo(&env);
    let run = |args: &[&str]| {
        let mut all = vec!["--catalog", cat.as_str()];
        all.extend_from_slice(args);
        env.anamo(&all)
    };
    run(&["steps", "output", "Alignment", "s3://b/{smaple}.cram"])
        .fails(1)
        .stderr(
            "error: the output pattern: unknown placeholder {smaple}; known: {sample}, {task_id}, {collection}\n",
        )
        .run();
    run(&["steps", "output", "Alignmnt", "s3://b/{sample}.cram"])
        .stderr(
            "warning: the catalog knows no step 'Alignmnt' (it knows Alignment, ReadProcessing, VariantCalling); recorded anyway\n",
        )
        .run();
    run(&[
        "steps",
        "output",
        "Alignment",
        "s3://never-listed/{sample}.cram",
    ])
    .run();
    // A done task without a sample has no {sample} path to miss.
    let store = env.path("d/anamo-tasks.db").display().to_string();
    for args in [
        vec![
            "tasks",
            "add",
            "-c",
            "Alignment",
            "--id",
            "nosample",
            "--script",
            "true",
        ],
        vec!["worker", "-c", "Alignment"],
        vec!["sync"],
    ] {
        let mut all = vec!["--store", store.as_str()];
        all.extend(args);
        run(&all).run();
    }
    let out = run(&[
        "query",
        "step-outputs",
        "-p",
        "step=Alignment",
        "--format",
        "csv",
    ])
    .run();
    assert!(!out.contains("nosample"), "{out}");
    let rows: Vec<&str> = out.lines().skip(1).collect();
    assert!(!rows.is_empty());
    assert!(
        rows.iter().all(|r| r.contains(
            "bucket never-listed never synced: anamo sync --objects s3://never-listed/..."
        )),
        "{out}"
    );
}

#[test]
fn eta_comes_from_a_recent_pace_with_enough_data() {
    let env = Env::new();
    env.write("samples.csv", "sample_id\nS1\n");
    env.ok(&["samples", "import", "samples.csv"]);
    let now = anamo::clock::now_ms();
    let add = |step: &str, id: &str, state: &str, finished: Option<i64>| {
        catalog(&env)
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
fn json_keys_keep_column_order_and_markdown_rows_stay_whole() {
    let env = Env::new();
    let (_, cat) = demo(&env);
    let q = |format: &str| {
        env.ok(&[
            "--catalog",
            cat.as_str(),
            "query",
            "SELECT 2 AS zeta, 'a\nb|c' AS alpha",
            "--format",
            format,
        ])
    };
    assert_eq!(q("jsonl"), "{\"zeta\":2,\"alpha\":\"a\\nb|c\"}\n");
    assert_eq!(
        q("markdown"),
        "| zeta | alpha |\n|---|---|\n| 2 | a<br>b\\|c |\n"
    );
}

#[test]
fn failing_queries_print_no_header_and_a_bad_user_report_is_skipped_alone() {
    let env = Env::new();
    let (_, cat) = demo(&env);
    let q = |args: &[&str]| {
        let mut all = vec!["--catalog", cat.as_str()];
        all.extend_from_slice(args);
        env.anamo(&all)
    };
    let out = q(&[
        "query",
        "SELECT json_extract('x', '$') AS j",
        "--format",
        "csv",
    ])
    .fails(1)
    .stderr("error: SQL error: malformed JSON\n")
    .run();
    assert_eq!(out, "", "no header before the error");
    q(&["query", "SELECT 1,\n 2 FROM nosuch"])
        .fails(1)
        .stderr("error: SQL error at line 2, column 9: no such table: nosuch\n")
        .run();
    std::fs::create_dir_all(env.path("queries")).unwrap();
    env.write(
        "queries/bad.sql",
        "-- name: bad\n-- description: broken header\n-- params: a b\nSELECT 1",
    );
    env.write(
        "queries/good.sql",
        "-- name: good\n-- description: works\nSELECT 42 AS answer",
    );
    let skipped =
        "skipped report queries/bad.sql:3: parameter name 'a b' must be letters, digits and '_'";
    let out = q(&["reports", "--format", "csv"])
        .stderr_one_line_with(skipped)
        .run();
    assert!(out.contains("\ngood,") && !out.contains("\nbad,"), "{out}");
    let out = q(&["query", "good", "--format", "csv"])
        .stderr_one_line_with(skipped)
        .run();
    assert_eq!(out, "answer\n42\n");
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
        count(
            &env,
            "SELECT count(*) FROM tasks WHERE removed_at IS NOT NULL"
        ),
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

#[test]
fn sample_status_is_active_or_dropped_and_reactivating_clears_the_drop() {
    let env = Env::new();
    env.write("s.csv", "sample_id,status\nS1,active\nS2,activ\n");
    env.anamo(&["samples", "import", "s.csv"])
        .fails(1)
        .stderr(
            "error: s.csv:3: status 'activ' for sample 'S2' is neither active nor dropped (drop a sample with `anamo samples drop`)\n",
        )
        .run();
    env.write("s.csv", "sample_id,status\nS1,active\n");
    env.ok(&["samples", "import", "s.csv"]);
    env.ok(&["samples", "drop", "S1", "--reason", "test"]);
    // A re-activation is said.
    env.anamo(&["samples", "import", "s.csv"])
        .stderr(
            "warning: sample S1 was dropped (test) and is active again: the sheet says status active (`anamo samples drop` drops it again); tasks withdrawn when it was dropped must be added again (`anamo tasks add`)\n",
        )
        .run();
    let row = env.ok(&[
        "query",
        "SELECT status, dropped_at IS NULL AS clear, drop_reason IS NULL AS no_reason FROM samples",
        "--format",
        "csv",
    ]);
    assert_eq!(row, "status,clear,no_reason\nactive,1,1\n");
}

#[test]
fn typos_are_not_silent() {
    let env = Env::new();
    let (store, cat) = demo(&env);
    let run = |args: &[&str]| {
        let mut all = vec!["--store", store.as_str(), "--catalog", cat.as_str()];
        all.extend_from_slice(args);
        env.anamo(&all)
    };
    run(&["worker", "-c", "Alignmnet"])
        .fails(1)
        .stderr_starts_with("error: no task in collection 'Alignmnet' in sqlite://")
        .stderr_one_line_with("or pass --watch")
        .run();
    run(&["tasks", "retry", "-c", "Alignment", "--id", "NOPE"])
        .fails(1)
        .stderr(
            "error: no failed task in Alignment matched --id NOPE; nothing was retried (see `anamo tasks list -c Alignment --state failed`)\n",
        )
        .run();
    run(&[
        "steps",
        "set",
        "Alignment",
        "ReadProcessing",
        "VariantCallng",
    ])
    .stderr(
        "warning: no task of step(s) VariantCallng in the catalog yet (it knows Alignment, ReadProcessing, VariantCalling); set anyway: check the spelling\n",
    )
    .run();
    run(&[
        "steps",
        "set",
        "Alignment",
        "ReadProcessing",
        "VariantCalling",
    ])
    .run();
    run(&["query", "samples-left", "-p", "step=Alignmnet"])
        .fails(1)
        .stderr(
            "error: report samples-left: no step 'Alignmnet' in the catalog; it knows Alignment, ReadProcessing, VariantCalling\n",
        )
        .run();
    run(&["query", "qc-outliers", "-p", "metric=mean_coverag"])
        .fails(1)
        .stderr_starts_with(
            "error: report qc-outliers: no metric 'mean_coverag' in the catalog; it knows ",
        )
        .stderr_one_line_with("mean_coverage")
        .run();
    run(&[
        "query",
        "qc-outliers",
        "-p",
        "metric=mean_coverage",
        "-p",
        "min=2O",
    ])
    .fails(1)
    .stderr("error: report qc-outliers: min='2O' is not a number\n")
    .run();
    run(&["query", "slowest-tasks", "-p", "limit=abc"])
        .fails(1)
        .stderr("error: report slowest-tasks: limit='abc' is not a whole number\n")
        .run();
    // The "all" default still works.
    let out = run(&["query", "slowest-tasks", "-p", "limit=3", "--format", "csv"]).run();
    assert_eq!(out.lines().count(), 4, "{out}");
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
    catalog(&env)
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
fn every_surface_tells_one_progress_on_the_sqlite_store() {
    crate::progress::progress_matrix(&Env::new());
}

#[test]
fn the_demo_never_replaces_a_real_project() {
    let env = Env::new();
    std::fs::create_dir_all(env.path("project")).unwrap();
    env.ok(&[
        "--store",
        "project/anamo-tasks.db",
        "tasks",
        "add",
        "-c",
        "Mine",
        "--id",
        "m1",
        "--script",
        "true",
    ]);
    env.anamo(&["demo", "--dir", "project"])
        .fails(1)
        .stderr(
            "error: 'project' already holds anamo-tasks.db that the demo did not make; it would replace them: pick another --dir\n",
        )
        .run();
    let mine = env.ok(&[
        "--store",
        "project/anamo-tasks.db",
        "tasks",
        "list",
        "--format",
        "csv",
    ]);
    assert!(mine.contains("Mine,m1"), "{mine}");
    // Its own folder it may start again.
    for _ in 0..2 {
        env.anamo(&["demo", "--dir", "d", "--samples", "3"])
            .stderr_matches(&demo_notes(3))
            .run();
    }
}

#[test]
fn commands_that_change_a_collection_refuse_one_that_does_not_exist() {
    let env = Env::new();
    env.ok(&[
        "tasks", "add", "-c", "Align", "--id", "a", "--script", "true",
    ]);
    for args in [
        vec!["tasks", "delete", "-c", "Algn", "--all"],
        vec!["tasks", "retry", "-c", "Algn", "--all"],
        vec!["tasks", "release-stale", "-c", "Algn"],
        vec!["sync", "-c", "Algn"],
    ] {
        env.anamo(&args)
            .fails(1)
            .stderr_starts_with("error: no task in collection 'Algn' in sqlite://")
            .stderr_one_line_with("; check the name (`anamo tasks counts` lists the collections)")
            .run();
    }
    assert_eq!(env.tasks().len(), 1, "nothing was touched");
}

#[test]
fn a_report_over_samples_says_when_none_were_imported() {
    let env = Env::new();
    env.ok(&[
        "tasks", "add", "-c", "A", "--id", "a1", "--sample", "S1", "--script", "true",
    ]);
    env.ok(&["sync"]);
    let out = env
        .anamo(&["query", "samples-left", "-p", "step=A", "--format", "csv"])
        .stderr(
            "the catalog has no samples yet: import the sample sheet with `anamo samples import FILE`; until then samples-left lists none\n",
        )
        .run();
    assert_eq!(out, "sample_id,cohort,state\n");
}

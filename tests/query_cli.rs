//! `anamo query` and `anamo reports` as a process: the read-only guard, bound parameters,
//! formats, errors before any row, and the user's own reports beside the built-in ones.

use crate::demo_cli::demo;
use crate::harness::Env;
use crate::status_cli::journey_env;

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
    let n: i64 = env
        .catalog_in("d/anamo.db")
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

#[test]
fn a_misspelt_report_parameter_is_named() {
    let env = journey_env();
    env.anamo(&["query", "samples-left", "-p", "stp=Align"])
        .fails(1)
        .stderr("error: the query needs --param step=VALUE ('stp' is not one it takes)\n")
        .run();
}

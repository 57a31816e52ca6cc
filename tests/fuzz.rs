//! Property-based fuzzing of everything that reads user text: the task-file readers, the SQL
//! guard, saved-report headers, durations and `NAME=VALUE` parameters. Inputs mix the tokens
//! each grammar cares about with arbitrary text. CI runs a few hundred cases per target; a
//! local run for as long as you like: `ANAMO_FUZZ_SECS=600 scripts/test.sh --test integration
//! fuzz -- --nocapture` (each target prints how many inputs it ran).

use std::time::{Duration, Instant};

use anamo::query::guard;
use anamo::query::saved::{self, Origin};
use anamo::taskfile::{self, Defaults, FileFormat};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// Runs `check` on inputs from `strategy`: ANAMO_FUZZ_SECS seconds when set, else `ci_cases`.
/// A failing input is shrunk and reported by proptest.
fn fuzz<S: Strategy>(
    target: &str,
    ci_cases: u32,
    strategy: S,
    check: impl Fn(S::Value) -> Result<(), TestCaseError>,
) where
    S::Value: std::fmt::Debug,
{
    let budget = std::env::var("ANAMO_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map(Duration::from_secs);
    let chunk = if budget.is_some() { 10_000 } else { ci_cases };
    let started = Instant::now();
    let mut execs: u64 = 0;
    loop {
        let mut runner = TestRunner::new(Config {
            cases: chunk,
            failure_persistence: None,
            ..Config::default()
        });
        if let Err(e) = runner.run(&strategy, &check) {
            panic!("{target}: {e}");
        }
        execs += u64::from(chunk);
        if budget.is_none_or(|b| started.elapsed() >= b) {
            break;
        }
    }
    println!(
        "fuzz {target}: {execs} inputs in {:.0}s, no finding",
        started.elapsed().as_secs_f64()
    );
}

/// Text made of the given tokens and arbitrary snippets.
fn soup(tokens: &'static [&'static str], max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            4 => prop::sample::select(tokens).prop_map(str::to_string),
            1 => any::<String>(),
            1 => "[ -~]{0,12}",
        ],
        0..max,
    )
    .prop_map(|parts| parts.concat())
}

const TASK_TOKENS: &[&str] = &[
    "task_id",
    "script",
    "sample",
    "collection",
    "max_attempts",
    "timeout",
    "id",
    "key",
    "value",
    "status",
    "done",
    "todo",
    "a",
    "S1",
    "echo hi",
    "0",
    "1",
    "-1",
    "3",
    "1e400",
    "99999999999999999999",
    "\n",
    "\r\n",
    ",",
    "\t",
    "|",
    ":",
    ";",
    "\"",
    "'",
    "{",
    "}",
    "[",
    "]",
    "{\"task_id\":",
    "\"script\":",
    "null",
    "true",
    "[]",
    "{}",
    "é",
    "\u{0}",
    "/",
    " ",
    "=",
    "10m",
    "x/y",
];

#[test]
fn task_file_readers_never_panic_and_yield_only_valid_tasks() {
    let formats = [
        FileFormat::Csv,
        FileFormat::Tsv,
        FileFormat::Jsonl,
        FileFormat::Picas,
        FileFormat::Pyanamo,
    ];
    let defaults = Defaults {
        collection: Some("C".into()),
        max_attempts: 3,
        timeout_secs: None,
        after: vec![],
        require: vec![],
    };
    fuzz(
        "task files",
        512,
        (
            prop::sample::select(formats.to_vec()),
            soup(TASK_TOKENS, 60),
        ),
        |(format, text)| {
            if let Ok(parsed) = taskfile::read_text("f", &text, format, &defaults) {
                let mut ids = std::collections::HashSet::new();
                for t in &parsed.tasks {
                    prop_assert!(!t.task_id.is_empty() && !t.task_id.contains('/'), "{t:?}");
                    prop_assert!(!t.collection.is_empty(), "{t:?}");
                    prop_assert!(!t.script.trim().is_empty(), "{t:?}");
                    prop_assert!(t.max_attempts >= 1, "{t:?}");
                    prop_assert!(
                        ids.insert((t.collection.clone(), t.task_id.clone())),
                        "{t:?}"
                    );
                }
            }
            Ok(())
        },
    );
}

const SQL_TOKENS: &[&str] = &[
    "SELECT ",
    "* ",
    "1 ",
    "FROM ",
    "tasks ",
    "t ",
    "WHERE ",
    "state = 'done' ",
    "WITH ",
    "x AS ",
    "(",
    ")",
    "; ",
    ";",
    "INSERT INTO tasks ",
    "VALUES (1) ",
    "DEFAULT VALUES ",
    "UPDATE tasks SET state = 'x' ",
    "DELETE FROM tasks ",
    "DROP TABLE tasks ",
    "CREATE TABLE z (a) ",
    "ATTACH 'x.db' AS y ",
    "DETACH y ",
    "PRAGMA user_version = 3 ",
    "PRAGMA query_only ",
    "VACUUM ",
    "REINDEX ",
    "ANALYZE ",
    "REPLACE INTO tasks ",
    "RETURNING * ",
    "EXPLAIN ",
    "QUERY PLAN ",
    "UNION ALL ",
    "-- c\n",
    "/* ; DROP TABLE tasks */ ",
    "'; DROP TABLE tasks; --' ",
    "\"tasks\" ",
    "BEGIN ",
    "COMMIT ",
    "SAVEPOINT s ",
    "ON CONFLICT DO NOTHING ",
    "x ",
    ", ",
    "load_extension('x') ",
    "writefile('x', 'y') ",
];

/// Statements the guard must judge, alone or inside the shapes that could hide a write.
fn sql() -> impl Strategy<Value = String> {
    let leaf = soup(SQL_TOKENS, 14);
    leaf.prop_recursive(3, 40, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a}; {b}")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("WITH x AS ({a}) {b}")),
            inner.clone().prop_map(|a| format!("SELECT * FROM ({a})")),
            inner.clone().prop_map(|a| format!("EXPLAIN {a}")),
            inner.prop_map(|a| format!("SELECT 1 WHERE EXISTS ({a})")),
        ]
    })
}

#[test]
fn the_sql_guard_never_lets_a_write_or_a_second_statement_through() {
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    conn.execute_batch("CREATE TABLE tasks (state TEXT, a); CREATE TABLE z2 (b);")
        .unwrap();
    fuzz("sql guard", 512, sql(), |text| {
        if guard::check(&text).is_err() {
            return Ok(());
        }
        // The guard said read-only: SQLite must agree about whatever it would run.
        match conn.prepare(&text) {
            Ok(stmt) => prop_assert!(stmt.readonly(), "a write passed the guard: {text:?}"),
            Err(rusqlite::Error::MultipleStatement) => {
                prop_assert!(false, "a second statement passed the guard: {text:?}")
            }
            // Unknown tables, functions and the like: SQLite refuses it anyway.
            Err(_) => {}
        }
        Ok(())
    });
}

const HEADER_TOKENS: &[&str] = &[
    "-- name:",
    "-- description:",
    "-- params:",
    "--",
    "name",
    "params",
    ":",
    " ",
    "\n",
    "a",
    "b_2",
    "step",
    "limit=20",
    "=",
    ",",
    ", ",
    "x-y",
    "é",
    "SELECT 1",
    "\t",
    "--params: a, a",
];

#[test]
fn report_headers_never_panic_and_yield_valid_names() {
    fuzz("report headers", 512, soup(HEADER_TOKENS, 30), |text| {
        if let Ok(r) = saved::parse("r.sql", &text, Origin::BuiltIn) {
            let word = |s: &str, extra: &str| {
                !s.is_empty()
                    && s.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || extra.contains(c))
            };
            prop_assert!(word(&r.name, "-"), "{:?}", r.name);
            let mut seen = std::collections::HashSet::new();
            for p in &r.params {
                prop_assert!(word(&p.name, ""), "{:?}", p.name);
                prop_assert!(
                    seen.insert(p.name.clone()),
                    "param {} twice: {text:?}",
                    p.name
                );
            }
        }
        Ok(())
    });
}

#[test]
fn durations_parse_as_written() {
    let units = [("ms", 1u64), ("s", 1_000), ("m", 60_000), ("h", 3_600_000)];
    fuzz(
        "durations",
        512,
        (
            any::<String>(),
            1u64..1_000_000,
            prop::sample::select(units.to_vec()),
        ),
        |(junk, n, (unit, ms))| {
            let _ = anamo::clock::parse_duration(&junk);
            let d = anamo::clock::parse_duration(&format!("{n}{unit}"));
            prop_assert_eq!(d.map(|d| d.as_millis() as u64), Ok(n * ms));
            Ok(())
        },
    );
}

#[test]
fn parameters_split_at_the_first_equals_sign() {
    fuzz("parameters", 512, any::<String>(), |text| {
        match anamo::cli::parse_attr(&text) {
            Ok((k, v)) => {
                let (raw_k, raw_v) = text.split_once('=').expect("an = was found");
                prop_assert_eq!(k, raw_k.trim());
                prop_assert_eq!(v, raw_v);
            }
            Err(_) => prop_assert!(!text.contains('=')),
        }
        Ok(())
    });
}

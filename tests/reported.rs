//! What scripts report: `$ANAMO_METRICS` and `$ANAMO_OUTPUTS` read by the worker after the run,
//! kept on the task with its finish (on a failed run too), refused with one line when malformed
//! or too large. (The stores' side, both of them, is in the store suite.)

use serde_json::json;

use crate::harness::Env;

fn add(env: &Env, id: &str, script: &str) {
    env.ok(&[
        "tasks",
        "add",
        "-c",
        "Alignment",
        "--id",
        id,
        "--sample",
        id,
        "--max-attempts",
        "1",
        "--script",
        script,
    ]);
}

/// The last line of a task's error tail.
fn last_error_line(env: &Env, id: &str) -> String {
    let t = env.show(id);
    let tail = t["error_tail"].as_str().unwrap_or_default().to_string();
    tail.lines().last().unwrap_or_default().to_string()
}

#[test]
fn metrics_and_outputs_travel_with_the_finish_and_show_on_the_task() {
    let env = Env::new();
    // As a samtools-like summary is turned into name=value lines in a real script.
    add(
        &env,
        "S1",
        "printf 'mean\\t31.2\\n' > stats.txt
         awk '{print \"mean_coverage=\" $2}' stats.txt >> \"$ANAMO_METRICS\"
         echo 'sex=F' >> \"$ANAMO_METRICS\"
         echo \"s3://cohort/$ANAMO_SAMPLE/$ANAMO_SAMPLE.cram\" >> \"$ANAMO_OUTPUTS\"
         printf 'qc\\t/data/%s.stats\\n' \"$ANAMO_SAMPLE\" >> \"$ANAMO_OUTPUTS\"",
    );
    // One JSON object reads as the lines do; a run that reports nothing keeps nothing.
    add(
        &env,
        "S2",
        "echo '{\"mean_coverage\": 28, \"freemix\": 0.004}' > \"$ANAMO_METRICS\"",
    );
    add(
        &env,
        "S3",
        // Named for every run; made by the script if it writes them.
        "test -n \"$ANAMO_METRICS\" && test -n \"$ANAMO_OUTPUTS\" && test ! -e \"$ANAMO_METRICS\"",
    );
    let tmp = env.path("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let out = env
        .anamo(&["worker", "-c", "Alignment"])
        .env("TMPDIR", &tmp)
        .run();
    assert!(out.contains("3 done, 0 failed"), "{out}");
    let s1 = env.show("S1");
    assert_eq!(s1["metrics"], json!({"mean_coverage": 31.2, "sex": "F"}));
    assert_eq!(
        s1["outputs"],
        json!([
            {"kind": "cram", "uri": "s3://cohort/S1/S1.cram"},
            {"kind": "qc", "uri": "/data/S1.stats"}
        ])
    );
    assert_eq!(
        env.show("S2")["metrics"],
        json!({"mean_coverage": 28.0, "freemix": 0.004})
    );
    assert_eq!(env.show("S3")["metrics"], json!({}));
    assert_eq!(env.show("S3")["outputs"], json!([]));
    // The table form names them too.
    let table = env.ok(&["tasks", "show", "S1", "--format", "tsv"]);
    assert!(table.contains("mean_coverage"), "{table}");
    // The files are the run's own, and gone once it is recorded.
    let leftovers = |dir: &std::path::Path| -> Vec<std::path::PathBuf> {
        fn walk(d: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
                if e.path().is_dir() {
                    walk(&e.path(), out);
                } else {
                    out.push(e.path());
                }
            }
        }
        let mut out = vec![];
        walk(dir, &mut out);
        out
    };
    assert!(leftovers(&tmp).is_empty(), "{:?}", leftovers(&tmp));
    let folders = std::fs::read_dir(&tmp).unwrap().count();
    assert_eq!(
        folders, 0,
        "the worker's report folder is removed when it ends"
    );
}

#[test]
fn a_malformed_or_oversized_report_fails_the_run_with_one_line() {
    let env = Env::new();
    add(
        &env,
        "bad-line",
        "printf 'mean_coverage=31\\ngarbage\\n' > \"$ANAMO_METRICS\"",
    );
    add(&env, "bad-name", "echo '1st=2' > \"$ANAMO_METRICS\"");
    add(
        &env,
        "bad-uri",
        "printf 'cram\\ts3://cohort/\\n' > \"$ANAMO_OUTPUTS\"",
    );
    add(
        &env,
        "too-big",
        "head -c 70000 /dev/zero | tr '\\0' 'a' | sed 's/^/x=/' > \"$ANAMO_METRICS\"",
    );
    let out = env
        .anamo(&["worker", "-c", "Alignment"])
        .stderr_matches(
            r"(?s).*WARN .*Alignment/bad-line: anamo: ANAMO_METRICS line 2: .*Alignment/too-big: anamo: .*",
        )
        .run();
    assert!(out.contains("0 done, 4 failed"), "{out}");
    assert_eq!(
        last_error_line(&env, "bad-line"),
        "anamo: ANAMO_METRICS line 2: 'garbage' is not name=value"
    );
    assert_eq!(
        last_error_line(&env, "bad-name"),
        "anamo: ANAMO_METRICS line 1: metric name '1st' must start with a letter and hold only \
         letters, digits, _ . -"
    );
    assert_eq!(
        last_error_line(&env, "bad-uri"),
        "anamo: ANAMO_OUTPUTS line 1: 's3://cohort/' is not s3://BUCKET/KEY"
    );
    assert_eq!(
        last_error_line(&env, "too-big"),
        "anamo: ANAMO_METRICS and ANAMO_OUTPUTS together hold more than 65536 bytes \
         (ANAMO_METRICS went over); report a summary, not the data"
    );
    // Never half a report: nothing of a refused one is kept.
    assert_eq!(env.show("bad-line")["metrics"], json!({}));
}

#[test]
fn a_failed_runs_report_is_kept_for_the_record() {
    let env = Env::new();
    add(
        &env,
        "S9",
        "echo 'mean_coverage=4.1' >> \"$ANAMO_METRICS\"; echo 'too thin' >&2; exit 2",
    );
    env.anamo(&["worker", "-c", "Alignment"])
        .stderr("too thin\n")
        .run();
    let t = env.show("S9");
    assert_eq!(
        (t["state"].as_str(), t["exit_code"].as_i64()),
        (Some("failed"), Some(2))
    );
    assert_eq!(t["metrics"], json!({"mean_coverage": 4.1}));
}

/// sample, metric, value, text, source, run
type QcRow = (String, String, Option<f64>, Option<String>, String, i64);

#[test]
fn sync_files_done_runs_metrics_as_qc_and_their_files_as_outputs() {
    let env = Env::new();
    let report = |cov: &str| {
        format!(
            "echo 'mean_coverage={cov}' >> \"$ANAMO_METRICS\"; echo 'sex=F' >> \"$ANAMO_METRICS\"
             echo \"s3://cohort/$ANAMO_SAMPLE.cram\" >> \"$ANAMO_OUTPUTS\""
        )
    };
    add(&env, "S1", &report("31.5"));
    add(&env, "S2", &report("12.0"));
    // A failed run's report is the task's record, not the sample's QC.
    add(&env, "S3", &format!("{}; exit 1", report("2.0")));
    env.anamo(&["worker", "-c", "Alignment"]).run();
    env.ok(&["sync"]);
    let db = env.catalog();
    let rows: Vec<QcRow> = db
        .prepare(
            "SELECT sample_id, metric, value, text, source, run FROM qc_metrics \
             ORDER BY sample_id, metric",
        )
        .unwrap()
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let s1 = |m: &str, v: Option<f64>, t: Option<&str>| {
        (
            "S1".to_string(),
            m.to_string(),
            v,
            t.map(str::to_string),
            "Alignment/S1 run 1".to_string(),
            1,
        )
    };
    assert_eq!(rows.len(), 4, "{rows:?}");
    assert_eq!(rows[0], s1("mean_coverage", Some(31.5), None));
    assert_eq!(rows[1], s1("sex", None, Some("F")));
    assert_eq!(
        env.count("SELECT count(*) FROM outputs WHERE kind = 'cram' AND bucket = 'cohort'"),
        2
    );
    assert_eq!(
        env.count("SELECT count(*) FROM tasks WHERE task_id = 'S3' AND reported LIKE '%2.0%'"),
        1
    );
    // The report is one more source for the QC reports, beside imports.
    let out = env.ok(&["query", "qc-by-step", "--format", "jsonl"]);
    let cov: serde_json::Value = out
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|r| r["metric"] == "mean_coverage")
        .unwrap();
    assert_eq!(
        (
            &cov["step"],
            &cov["samples"],
            &cov["lowest"],
            &cov["highest"],
            &cov["words"]
        ),
        (
            &json!("Alignment"),
            &json!(2),
            &json!(12.0),
            &json!(31.5),
            &json!(0)
        )
    );
    let low = env.ok(&[
        "query",
        "qc-outliers",
        "-p",
        "metric=mean_coverage",
        "-p",
        "min=15",
        "--format",
        "csv",
    ]);
    assert_eq!(
        low.lines().skip(1).collect::<Vec<_>>(),
        ["S2,,mean_coverage,12.0,Alignment/S2 run 1"]
    );
    // An import newer than the run wins, and both stay in the table.
    env.write("samples.csv", "sample_id\nS1\nS2\nS3\n");
    env.ok(&["samples", "import", "samples.csv"]);
    env.write("qc.csv", "sample_id,mean_coverage\nS2,30.1\n");
    env.ok(&["qc", "import", "qc.csv", "--source", "resequenced"]);
    let low = env.ok(&[
        "query",
        "qc-outliers",
        "-p",
        "metric=mean_coverage",
        "-p",
        "min=15",
        "--format",
        "csv",
    ]);
    assert_eq!(low.lines().count(), 1, "{low}");
    assert_eq!(
        env.count(
            "SELECT count(*) FROM qc_metrics WHERE sample_id = 'S2' AND metric = 'mean_coverage'"
        ),
        2
    );
}

#[test]
fn a_deleted_done_tasks_report_reaches_a_catalog_that_never_saw_it() {
    let env = Env::new();
    add(&env, "S1", "echo 'mean_coverage=33' > \"$ANAMO_METRICS\"");
    env.ok(&["worker", "-c", "Alignment"]);
    env.ok(&["tasks", "delete", "-c", "Alignment", "--state", "done"]);
    // Another machine's catalog, first synced after the delete: the tombstone carries it.
    env.ok(&["--catalog", "other.db", "sync"]);
    let db = env.catalog_in("other.db");
    let value: f64 = db
        .query_row(
            "SELECT value FROM qc_metrics WHERE sample_id = 'S1' AND metric = 'mean_coverage'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(value, 33.0);
}

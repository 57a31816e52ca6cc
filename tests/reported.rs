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
        "ls \"$ANAMO_METRICS\" \"$ANAMO_OUTPUTS\" > /dev/null",
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

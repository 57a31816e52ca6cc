//! QC gates from the command line, as a person meets them: `--require` refused with its column
//! when malformed, a `require` column and anamo.toml's `[gates]`, a held sample on every surface
//! (tasks list, status, blocked-samples, gate-holds, status --sample), a release recorded with
//! who and why, and a re-run upstream that passes the gate. (Both stores' side is in the store
//! suite; the rule against random histories in the model test.)

use serde_json::{Value, json};

use crate::harness::{Env, FRESH};

/// A ReadProcessing task of `sample` reporting this coverage, and the freemix given.
fn upstream(env: &Env, sample: &str, coverage: f64, extra: &[&str]) {
    let script = format!(
        "printf 'total\\t{coverage}\\n' > cov.txt
         awk '/^total/ {{print \"mean_coverage=\" $2}}' cov.txt >> \"$ANAMO_METRICS\"
         echo 'freemix=0.004' >> \"$ANAMO_METRICS\""
    );
    let mut args = vec![
        "tasks",
        "add",
        "-c",
        "ReadProcessing",
        "--id",
        sample,
        "--sample",
        sample,
        "--script",
        &script,
    ];
    args.extend(extra);
    env.ok(&args);
}

/// Rows of a report as JSON objects.
fn report(env: &Env, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["query"];
    all.extend(args);
    all.extend(["--format", "json"]);
    let out = env.ok(&all);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[test]
fn a_malformed_gate_is_refused_with_its_column_and_nothing_is_added() {
    let env = Env::new();
    upstream(&env, "S1", 30.0, &[]);
    let add = |gate: &str| {
        env.anamo(&[
            "tasks",
            "add",
            "-c",
            "VariantCalling",
            "--after",
            "ReadProcessing",
            "--id",
            "S1",
            "--sample",
            "S1",
            "--script",
            "true",
            "--require",
            gate,
        ])
    };
    // A malformed flag is a usage error, named as the flag (not as a line of --samples).
    add("mean_coverage >> 15")
        .fails(2)
        .stderr_starts_with(
            "error: --require: gate 'mean_coverage >> 15': at column 16, '> 15' is not a number",
        )
        .run();
    add("mean_coverage = 15")
        .fails(2)
        .stderr_one_line_with("at column 15, expected one of < <= > >= == !=")
        .run();
    env.anamo(&[
        "tasks",
        "add",
        "-c",
        "VC",
        "--id",
        "x",
        "--sample",
        "S1",
        "--script",
        "true",
        "--require",
        "q > 1",
    ])
    .fails(1)
    .stderr_one_line_with(
        "has QC gates (--require, a require column or anamo.toml's [gates]) but waits for no step",
    )
    .run();
    // A task file's `require` column, line by line.
    env.write(
        "vc.csv",
        "task_id,sample,require,script\nS1,S1,mean_coverage >= 15; freemix < 0.03,true\nS2,S2,freemix <,true\n",
    );
    env.anamo(&[
        "tasks",
        "add",
        "vc.csv",
        "-c",
        "VariantCalling",
        "--after",
        "ReadProcessing",
        "--allow-missing-upstream",
    ])
    .fails(1)
    .stderr_one_line_with("vc.csv:3")
    .run();
    assert_eq!(env.tasks().len(), 1, "nothing of the batch was added");
    // anamo.toml's [gates] is checked when read.
    env.write(
        "anamo.toml",
        "[gates]\nVariantCalling = [\"mean_coverage >= fifteen\"]\n",
    );
    env.anamo(&["tasks", "add", "vc.csv", "-c", "VariantCalling"])
        .fails(1)
        .stderr_starts_with(
            "error: anamo.toml:2: [gates] VariantCalling: gate 'mean_coverage >= fifteen': at \
             column 18",
        )
        .run();
}

#[test]
fn a_held_sample_shows_everywhere_and_a_release_or_a_better_rerun_lets_it_run() {
    let env = Env::new();
    env.write(
        "anamo.toml",
        "[gates]\nVariantCalling = [\"freemix < 0.03\"]\n",
    );
    upstream(&env, "S1", 31.2, &[]);
    upstream(&env, "S2", 12.4, &[]);
    upstream(&env, "S3", 9.0, &[]);
    env.ok(&["worker", "-c", "ReadProcessing"]);
    env.ok(&["sync"]);
    // A typo in a gate's metric, against the metrics the catalog knows: warned, not refused.
    env.write("s.txt", "S1\nS2\nS3\n");
    let out = env
        .anamo(&[
            "tasks",
            "add",
            "-c",
            "VariantCalling",
            "--after",
            "ReadProcessing",
            "--samples",
            "s.txt",
            "--script",
            "echo called {sample} >> called.txt",
            "--require",
            "mean_covrage >= 15",
        ])
        .stderr_contains("warning: no sample in the catalog has a metric 'mean_covrage'")
        .run();
    assert!(out.contains("3 held by their QC gates"), "{out}");
    env.ok(&["tasks", "delete", "-c", "VariantCalling", "--all"]);
    // As meant: the [gates] of anamo.toml join --require.
    let out = env
        .anamo(&[
            "tasks",
            "add",
            "-c",
            "VariantCalling",
            "--after",
            "ReadProcessing",
            "--samples",
            "s.txt",
            "--id",
            "{sample}-vc",
            "--script",
            "echo called {sample} >> called.txt",
            "--require",
            "mean_coverage >= 15",
        ])
        .stderr_contains("2 of the added task(s) are held by their QC gates")
        .run();
    assert!(out.contains("2 held by their QC gates"), "{out}");
    let held = env.show("S2-vc");
    assert_eq!(held["state"], "held");
    assert_eq!(held["require"], "mean_coverage >= 15; freemix < 0.03");
    assert_eq!(
        held["gate_note"],
        "held: mean_coverage 12.4 < 15 (ReadProcessing/S2 run 1)"
    );
    // What waits on a held task is blocked, and a worker does not wait for it.
    env.anamo(&[
        "tasks",
        "add",
        "-c",
        "Joint",
        "--after",
        "VariantCalling",
        "--id",
        "S2-j",
        "--sample",
        "S2",
        "--script",
        "true",
    ])
    .stderr_contains("is held by a QC gate")
    .run();
    let out = env.ok(&["worker", "-c", "VariantCalling", "--wait"]);
    assert!(out.contains("1 done"), "{out}");
    assert_eq!(env.read("called.txt"), "called S1\n");
    env.ok(&["sync"]);
    let status = env
        .anamo(&["status", "--format", "json"])
        .stderr_matches(FRESH)
        .run();
    let rows: Vec<Value> = serde_json::from_str(&status).unwrap();
    let vc = rows.iter().find(|r| r["step"] == "VariantCalling").unwrap();
    assert_eq!(
        (&vc["held"], &vc["done"], &vc["total"], &vc["blocked"]),
        (&json!(2), &json!(1), &json!(3), &json!(0))
    );
    assert_eq!(vc["eta_hours"], Value::Null, "held work is not done");
    let joint = rows.iter().find(|r| r["step"] == "Joint").unwrap();
    assert_eq!(joint["blocked"], 1);
    let blocked = report(&env, &["blocked-samples"]);
    let why: Vec<(String, String, String)> = blocked
        .iter()
        .map(|r| {
            (
                r["task_id"].as_str().unwrap().to_string(),
                r["upstream_state"].as_str().unwrap().to_string(),
                r["error_tail"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert!(
        why.contains(&(
            "S2-j".into(),
            "held".into(),
            "held: mean_coverage 12.4 < 15 (ReadProcessing/S2 run 1)".into()
        )),
        "{why:?}"
    );
    assert!(
        why.iter().any(|(id, s, _)| id == "S3-vc" && s == "held"),
        "{why:?}"
    );
    let holds = report(&env, &["gate-holds", "-p", "step=VariantCalling"]);
    assert_eq!(holds.len(), 2, "{holds:?}");
    assert_eq!(holds[0]["status"], "held");
    assert_eq!(holds[0]["gates"], "mean_coverage >= 15; freemix < 0.03");
    let journey = env
        .anamo(&["status", "--sample", "S3", "--format", "json"])
        .stderr_matches(FRESH)
        .run();
    assert!(
        journey.contains("held: mean_coverage 9 < 15 (ReadProcessing/S3 run 1)"),
        "{journey}"
    );
    // A person overrules the gate for S2, saying why: recorded on the task.
    env.anamo(&["tasks", "release", "-c", "VariantCalling", "--sample", "S2"])
        .fails(2)
        .stderr_contains("--reason")
        .run();
    let out = env.ok(&[
        "tasks",
        "release",
        "-c",
        "VariantCalling",
        "--sample",
        "S2",
        "--reason",
        "pilot sample, low coverage accepted",
    ]);
    assert!(
        out.starts_with("1 held task(s) of VariantCalling released to todo (by "),
        "{out}"
    );
    let note = env.show("S2-vc")["gate_note"].as_str().unwrap().to_string();
    assert!(
        note.starts_with("released by ")
            && note.contains(": pilot sample, low coverage accepted (was held: mean_coverage 12.4"),
        "{note}"
    );
    env.anamo(&[
        "tasks",
        "release",
        "-c",
        "VariantCalling",
        "--sample",
        "S2",
        "--reason",
        "again",
    ])
    .fails(1)
    .stderr(
        "error: no held task in VariantCalling matched --sample S2; nothing was released (see \
         `anamo tasks list -c VariantCalling --state held`)\n",
    )
    .run();
    env.ok(&["worker", "-c", "VariantCalling"]);
    // S3 re-sequenced: while the upstream re-run is queued, a --wait worker of the gated step
    // stays for it (the held task waits again), and the re-run's better coverage passes.
    upstream(&env, "S3", 33.0, &["--replace"]);
    let downstream = env
        .anamo(&["worker", "-c", "VariantCalling", "--wait"])
        .spawn();
    std::thread::sleep(std::time::Duration::from_millis(700));
    assert_eq!(env.task("S3-vc")["state"], "waiting");
    env.ok(&["worker", "-c", "ReadProcessing"]);
    let out = downstream.wait(std::time::Duration::from_secs(60));
    assert!(out.stdout.contains(": 1 done"), "{}", out.stdout);
    assert_eq!(env.read("called.txt"), "called S1\ncalled S2\ncalled S3\n");
    env.ok(&["sync"]);
    let holds = report(&env, &["gate-holds"]);
    let status: Vec<(&str, &str)> = holds
        .iter()
        .map(|r| {
            (
                r["task_id"].as_str().unwrap(),
                r["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(status, [("S2-vc", "released"), ("S3-vc", "passed")]);
}

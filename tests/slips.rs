//! Slips a person makes (a misspelt step, collection, metric or report parameter, a value of the
//! wrong kind, a collection that does not exist) are never silent, and each message names the
//! right thing: the report and parameter, the config file and line, PiCaS's own field.

use std::time::Duration;

use crate::demo_cli::demo;
use crate::harness::{Env, wait_for};

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

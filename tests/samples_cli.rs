//! `anamo samples`, `anamo qc` and `anamo steps` as a process: sample sheets and QC values
//! into the catalog (bad input refused whole), drops and re-activations, the order of steps and
//! their output patterns.

use crate::demo_cli::demo;
use crate::harness::Env;

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
    let meta: String = env
        .catalog()
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
    assert_eq!(env.count("SELECT count(*) FROM qc_metrics"), 5);
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
    assert_eq!(env.count("SELECT count(*) FROM samples"), 3);
    assert_eq!(env.count("SELECT count(*) FROM qc_metrics"), 5);
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

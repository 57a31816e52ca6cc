//! The house rules of issue 12: status's sample journey is the saved report; errors name the
//! file they are about (catalog or store); flag combinations that cannot work are usage errors
//! (exit 2); completions and the man page come from the clap definitions.

use crate::harness::{Env, FRESH};

/// A store with two steps of S1 done and S2's first step failed, synced, with the order set
/// and a third step that has no task of S1.
fn journey_env() -> Env {
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
            "step_state"
        ]
    );
    let steps: Vec<(&str, &str, &str, &str)> = rows[1..]
        .iter()
        .map(|r| (r[0], r[1], r[2], r[10]))
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
            r"synced tasks from sqlite://[^\n]+ into anamo\.db: 3 seen, 0 new, 0 changed state, 0 removed in [0-9.]+s\n{FRESH}"
        ))
        .run();
    let first = out.lines().next().unwrap();
    assert!(
        first.starts_with("step\twaiting\ttodo\trunning\tdone\tfailed\ttotal"),
        "{out}"
    );
    assert_eq!(out.lines().count(), 4, "a header and three steps: {out}");
}

#[test]
fn a_broken_catalog_error_names_the_catalog_not_the_store() {
    let env = journey_env();
    let catalog = env.path("anamo.db");
    let conn = rusqlite::Connection::open(&catalog).unwrap();
    conn.execute_batch("DROP VIEW sample_progress; DROP VIEW progress;")
        .unwrap();
    drop(conn);
    // Named as the user gave it (the default, relative to where anamo runs), as every other
    // message about the catalog names it.
    env.anamo(&["status"])
        .fails(1)
        .stderr_matches(&format!(
            "{FRESH}error: catalog 'anamo.db': no such table: progress[^\n]*\n"
        ))
        .run();
}

#[test]
fn a_broken_store_error_names_the_store() {
    let env = Env::new();
    env.ok(&["tasks", "add", "-c", "A", "--id", "t", "--script", "true"]);
    let conn = rusqlite::Connection::open(env.store()).unwrap();
    conn.execute_batch("ALTER TABLE tasks RENAME COLUMN exit_code TO exit_status;")
        .unwrap();
    drop(conn);
    env.anamo(&["tasks", "list"])
        .fails(1)
        .stderr_starts_with(format!(
            "error: task store '{}': no such column: exit_code",
            env.store().display()
        ))
        .run();
}

#[test]
fn flags_that_cannot_go_together_are_usage_errors() {
    let env = Env::new();
    env.write("samples.txt", "S1\n");
    for (args, first) in [
        (
            vec!["tasks", "delete", "-c", "A", "--id", "x", "--all"],
            "error: the argument '--id <IDS>' cannot be used with '--all'",
        ),
        (
            vec!["tasks", "retry", "-c", "A"],
            "error: the following required arguments were not provided:",
        ),
        (
            vec!["tasks", "add", "-c", "A", "--samples", "samples.txt"],
            "error: the following required arguments were not provided:",
        ),
        (
            vec!["tasks", "add", "samples.txt", "-c", "A", "--script", "true"],
            "error: the argument '[FILE]' cannot be used with '--script <SCRIPT>'",
        ),
        (
            vec!["worker", "-c", "A", "--lease", "500ms"],
            "error: invalid value '500ms' for '--lease <LEASE>': a lease of 500ms is too short; give at least 1s (heartbeats come every lease/3)",
        ),
        (
            vec!["sync", "--no-tasks"],
            "error: --no-tasks leaves nothing to sync; add --instances or --objects (or name them in anamo.toml)",
        ),
    ] {
        env.anamo(&args).fails(2).stderr_first_line(first).run();
    }
    assert!(!env.store().exists(), "no store made");
    assert!(!env.path("anamo.db").exists(), "no catalog made");
}

#[test]
fn completions_and_man_page_come_from_the_cli() {
    let env = Env::new();
    for (shell, marker) in [
        ("bash", "_anamo() {"),
        ("zsh", "#compdef anamo"),
        ("fish", "complete -c anamo"),
        ("powershell", "Register-ArgumentCompleter"),
        ("elvish", "edit:completion:arg-completer[anamo]"),
    ] {
        let script = env.ok(&["completions", shell]);
        assert!(script.contains(marker), "{shell}: {script}");
        // Subcommands and their flags are there, from the same definitions as --help.
        assert!(script.contains("release-stale"), "{shell}");
        assert!(script.contains("max-attempts"), "{shell}");
    }
    env.anamo(&["completions", "tcsh"])
        .fails(2)
        .stderr_first_line("error: invalid value 'tcsh' for '<SHELL>'")
        .run();

    let page = env.ok(&["man"]);
    assert!(page.contains(".TH anamo 1"), "{page}");
    assert!(page.contains("completions"), "the page lists the commands");
    env.ok(&["man", "--dir", "man1"]);
    for name in [
        "anamo.1",
        "anamo-tasks.1",
        "anamo-tasks-add.1",
        "anamo-worker.1",
    ] {
        let text = env.read(&format!("man1/{name}"));
        assert!(text.starts_with(".ie"), "{name}: {text}");
    }
    assert!(
        env.read("man1/anamo-tasks-add.1")
            .contains("max\\-attempts")
    );
}

#[test]
fn picas_tokens_saved_one_per_line_as_jsonl_are_read_as_tokens() {
    let env = Env::new();
    env.write(
        "tokens.jsonl",
        concat!(
            r#"{"_id": "align_S1", "lock": 0, "done": 0, "type": "Alignment", "Task_ID": "S1", "Task_Script": "align.sh S1"}"#,
            "\n",
            r#"{"_id": "align_S2", "lock": 0, "done": 0, "type": "Alignment", "Task_ID": "S2", "Task_Script": "align.sh S2"}"#,
            "\n",
        ),
    );
    env.ok(&["tasks", "add", "tokens.jsonl"]);
    for (id, sample) in [("align_S1", "S1"), ("align_S2", "S2")] {
        let task = env.task(id);
        assert_eq!(task["collection"], "Alignment");
        assert_eq!(task["sample"], sample);
    }
    // A file that mixes the two kinds is refused whole, naming the line.
    env.write(
        "mixed.jsonl",
        "{\"task_id\": \"t1\", \"script\": \"true\", \"collection\": \"A\"}\n{\"_id\": \"x\", \"type\": \"A\", \"Task_Script\": \"true\"}\n",
    );
    env.anamo(&["tasks", "add", "mixed.jsonl"])
        .fails(1)
        .stderr("error: mixed.jsonl:2: this record is a PiCaS token ('_id') but line 1 holds a plain task ('task_id'); keep one kind per file, or pass --format picas or --format jsonl\n")
        .run();
    assert_eq!(env.tasks().len(), 2, "nothing of the mixed file was added");
}

#[test]
fn a_log_dir_the_worker_cannot_write_is_refused_before_any_claim() {
    let env = Env::new();
    env.ok(&["tasks", "add", "-c", "A", "--id", "t", "--script", "true"]);
    env.write("not-a-folder", "a file where the folder should be\n");
    env.anamo(&["worker", "-c", "A", "--log-dir", "not-a-folder/logs"])
        .fails(1)
        .stderr_starts_with("error: worker cannot write its logs in 'not-a-folder/logs': ")
        .stderr_ends_with("; fix --log-dir (or ANAMO_LOG_DIR). Nothing was claimed\n")
        .run();
    let task = env.task("t");
    assert_eq!(task["state"], "todo", "nothing claimed: {task}");
    assert_eq!(task["attempts"], 0);
}

#[test]
fn a_catalog_in_a_missing_folder_says_so_and_the_fix() {
    let env = Env::new();
    env.ok(&["tasks", "add", "-c", "A", "--id", "t", "--script", "true"]);
    env.anamo(&["--catalog", "nodir/x.db", "sync"])
        .fails(1)
        .stderr(
            "error: the folder 'nodir' of catalog 'nodir/x.db' does not exist; create it (mkdir \
             -p), or point --catalog/ANAMO_CATALOG at another file\n",
        )
        .run();
}

#[test]
fn a_misspelt_report_parameter_is_named() {
    let env = journey_env();
    env.anamo(&["query", "samples-left", "-p", "stp=Align"])
        .fails(1)
        .stderr("error: the query needs --param step=VALUE ('stp' is not one it takes)\n")
        .run();
}

//! The rest of the walk behind issue 23, each a small CLI test: messages that must name the
//! problem and the fix, and slips that must not pass in silence.

use crate::harness::Env;

#[test]
fn a_quoted_placeholder_is_refused() {
    let env = Env::new();
    env.write("s.txt", "S1\n");
    for script in ["echo \"{sample}\"", "echo '{sample}'"] {
        env.anamo(&[
            "tasks",
            "add",
            "-c",
            "A",
            "--samples",
            "s.txt",
            "--script",
            script,
        ])
        .fails(1)
        .stderr_one_line_with("{sample} is inside")
        .run();
    }
}

#[test]
fn a_sample_sheet_given_to_samples_is_refused() {
    let env = Env::new();
    env.write("sheet.csv", "sample_id,cohort\nS1,A\n");
    env.anamo(&[
        "tasks",
        "add",
        "-c",
        "A",
        "--samples",
        "sheet.csv",
        "--script",
        "true",
    ])
    .fails(1)
    .stderr(
        "error: sheet.csv:1: 'sample_id,cohort' looks like a row of a sheet; --samples takes \
         one sample id per line (e.g. `cut -d, -f1 sheet.csv | tail -n +2 > samples.txt`, the \
         tail skipping its header)\n",
    )
    .run();
}

#[test]
fn naming_what_is_not_there_is_an_error() {
    let env = Env::new();
    env.ok(&["tasks", "add", "-c", "A", "--id", "t1", "--script", "true"]);
    env.anamo(&["tasks", "delete", "-c", "A", "--id", "NOPE"])
        .fails(1)
        .stderr(
            "error: no task in A matched --id NOPE; nothing was deleted (see `anamo tasks list \
             -c A`)\n",
        )
        .run();
    env.anamo(&["tasks", "list", "-c", "Nope"])
        .fails(1)
        .stderr_starts_with("error: no task in collection 'Nope'")
        .run();
    env.ok(&["sync"]);
    env.anamo(&["query", "SELEC 1"])
        .fails(1)
        .stderr_starts_with("error: cannot parse the SQL: ")
        .run();
    env.anamo(&["demo", "--samples", "1", "--dir", "d"])
        .fails(2)
        .stderr_contains("1 is not in 2..=10000")
        .run();
}

#[test]
fn json_keeps_both_columns_of_one_name() {
    let env = Env::new();
    env.ok(&["tasks", "add", "-c", "A", "--id", "t1", "--script", "true"]);
    env.ok(&["sync"]);
    let out = env.ok(&["query", "SELECT 1 AS a, 2 AS a", "--format", "json"]);
    assert_eq!(out, "[\n{\"a\":1,\"a_2\":2}\n]\n");
}

#[test]
fn a_removed_task_is_pointed_to_its_history() {
    let env = Env::new();
    env.ok(&[
        "tasks", "add", "-c", "A", "--id", "t1", "--sample", "S1", "--script", "true",
    ]);
    env.ok(&["worker", "-c", "A"]);
    env.ok(&["tasks", "add", "-c", "A", "--id", "t2", "--script", "true"]);
    env.ok(&["tasks", "delete", "-c", "A", "--id", "t1"]);
    env.anamo(&["tasks", "show", "t1", "-c", "A"])
        .fails(1)
        .stderr_matches(
            "^error: task 't1' of A was removed from the store on [0-9-]{10} while done; its \
             history is in the catalog: `anamo status --sample S1`, `anamo logs t1 -c A`\n$",
        )
        .run();
    env.anamo(&["tasks", "show", "t1"])
        .fails(1)
        .stderr_contains("the catalog knows it in A")
        .run();
}

#[test]
fn logs_of_a_waiting_task_say_it_has_not_run() {
    let env = Env::new();
    env.ok(&[
        "tasks", "add", "-c", "A", "--id", "a1", "--sample", "S1", "--script", "true",
    ]);
    env.ok(&[
        "tasks", "add", "-c", "B", "--id", "b1", "--sample", "S1", "--after", "A", "--script",
        "true",
    ]);
    env.anamo(&["logs", "b1"])
        .fails(1)
        .stderr_one_line_with("has not run: it waits for its sample's tasks upstream")
        .run();
}

#[test]
fn a_timed_out_run_log_ends_with_the_timeout_line() {
    let env = Env::new();
    env.ok(&[
        "tasks",
        "add",
        "-c",
        "A",
        "--id",
        "t1",
        "--max-attempts",
        "1",
        "--timeout",
        "1",
        "--script",
        "echo started; sleep 30",
    ]);
    let logs = env.path("logs");
    env.ok(&["worker", "-c", "A", "--log-dir", logs.to_str().unwrap()]);
    assert_eq!(
        env.read("logs/A/t1/1.log"),
        "started\nanamo: timed out after 1s and was killed\n"
    );
}

#[test]
fn a_misspelt_report_header_key_is_named() {
    let env = Env::new();
    env.ok(&["tasks", "add", "-c", "A", "--id", "t1", "--script", "true"]);
    env.ok(&["sync"]);
    std::fs::create_dir_all(env.path("queries")).unwrap();
    env.write(
        "queries/mine.sql",
        "-- name: mine\n-- descrption: typo\nSELECT 1;\n",
    );
    env.anamo(&["reports"])
        .stderr_contains(
            "queries/mine.sql:2: header key 'descrption' looks like 'description', misspelt",
        )
        .run();
}

#[test]
fn task_files_fill_sample_and_collection_as_samples_does() {
    let env = Env::new();
    env.write(
        "t.csv",
        "task_id,sample,script\nt1,S 1,echo {sample} {collection} > out.txt\n",
    );
    env.ok(&["tasks", "add", "t.csv", "-c", "A"]);
    env.ok(&["worker", "-c", "A"]);
    assert_eq!(env.read("out.txt"), "S 1 A\n");
    env.write("u.csv", "task_id,script\nu1,echo {smaple}\n");
    env.anamo(&["tasks", "add", "u.csv", "-c", "A"])
        .fails(1)
        .stderr("error: u.csv:2: script: unknown placeholder {smaple}; known: {collection}\n")
        .run();
}

#[test]
fn status_sync_waits_for_a_running_sync_and_reads_what_it_wrote() {
    let env = Env::new();
    env.ok(&["tasks", "add", "-c", "A", "--id", "t1", "--script", "true"]);
    env.ok(&["sync"]);
    // Another process holds the catalog's sync lock for two seconds.
    let holder = std::process::Command::new("flock")
        .args(["anamo.db.sync-lock", "sleep", "2"])
        .current_dir(env.path("."))
        .spawn()
        .expect("flock from util-linux");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let started = std::time::Instant::now();
    let out = env
        .anamo(&["status", "--sync", "--format", "csv"])
        .stderr_matches(&format!(
            "catalog 'anamo.db' is being synced by another process[^\n]*: waiting for it \\(up \
             to 10m\\), then reading what it wrote\n{}",
            crate::harness::FRESH
        ))
        .run();
    assert!(started.elapsed() >= std::time::Duration::from_millis(1000));
    assert!(out.starts_with("step,"), "{out}");
    let mut holder = holder;
    holder.wait().unwrap();
}

#[test]
fn samples_not_in_the_sheet_are_counted_and_named() {
    let env = Env::new();
    env.write("samples.csv", "sample_id\nS1\n");
    env.ok(&["samples", "import", "samples.csv"]);
    env.write("s.txt", "S1\nS2\nS3\n");
    env.ok(&[
        "tasks",
        "add",
        "-c",
        "A",
        "--samples",
        "s.txt",
        "--script",
        "true",
    ]);
    env.ok(&["sync"]);
    let note = "2 sample(s) have tasks but are not among the imported samples, so samples-left, \
                samples-done and the report's grid leave them out: `anamo query \
                samples-not-imported` lists them\n";
    env.anamo(&["status", "--format", "csv"])
        .stderr_matches(&format!("{}{}", crate::harness::FRESH, regex_escape(note)))
        .run();
    let left = env
        .anamo(&["query", "samples-left", "-p", "step=A", "--format", "csv"])
        .stderr(note)
        .run();
    assert_eq!(left, "sample_id,cohort,state\nS1,,todo\n");
    let listed = env.ok(&["query", "samples-not-imported", "--format", "csv"]);
    assert_eq!(listed, "sample,steps,tasks\nS2,A,1\nS3,A,1\n");
}

fn regex_escape(text: &str) -> String {
    text.chars()
        .map(|c| {
            if "\\.+*?()|[]{}^$`".contains(c) {
                format!("\\{c}")
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[test]
fn status_and_failed_tasks_stay_readable_at_80_and_120_columns() {
    let env = Env::new();
    for step in ["Alignment", "ReadProcessing", "VariantCalling"] {
        env.ok(&[
            "tasks",
            "add",
            "-c",
            step,
            "--id",
            &format!("{step}-long-task-id-S001"),
            "--sample",
            "S001",
            "--max-attempts",
            "1",
            "--script",
            "echo 'reference genome not found in /mnt/data/references/GRCh38_full.fa' >&2; exit 2",
        ]);
        env.anamo(&["worker", "-c", step])
            .stderr_matches("(?s).*")
            .run();
    }
    env.ok(&["sync"]);
    for width in [80usize, 120] {
        for args in [
            &["status", "--format", "table"][..],
            &["query", "failed-tasks", "--format", "table"][..],
        ] {
            let out = env
                .anamo(args)
                .env("COLUMNS", width.to_string())
                .stderr_matches("(?s).*")
                .run();
            for line in out.lines() {
                assert!(line.chars().count() <= width, "{args:?} at {width}:\n{out}");
            }
            // Step names are never broken over two lines.
            for step in ["Alignment", "ReadProcessing", "VariantCalling"] {
                assert!(out.contains(step), "{args:?} at {width}: {step}\n{out}");
            }
            if args[0] == "query" {
                // The why stays (wrapped), whatever else is left out.
                assert!(out.contains("reference"), "{out}");
            } else {
                assert!(out.contains("progress") && out.contains("failed"), "{out}");
            }
        }
    }
}

#[test]
fn the_man_page_keeps_help_example_lines_apart() {
    let env = Env::new();
    env.ok(&["man", "--dir", "man"]);
    let page = env.read("man/anamo-tasks-add.1");
    let at = page
        .find("From flags:")
        .expect("the examples are in the page");
    assert!(page[..at].ends_with(".nf\n"), "set no-fill: {page}");
    let rest = &page[at..];
    let from_file = rest.find("From a file:").unwrap();
    let end = rest.find(".fi\n").unwrap();
    assert!(from_file < end, "each example line stays a line of its own");
}

#[test]
fn adding_after_a_failed_upstream_says_the_task_cannot_run_yet() {
    let env = Env::new();
    env.ok(&[
        "tasks",
        "add",
        "-c",
        "A",
        "--id",
        "a1",
        "--sample",
        "S1",
        "--max-attempts",
        "1",
        "--script",
        "exit 1",
    ]);
    env.anamo(&["worker", "-c", "A"])
        .stderr_matches("(?s).*")
        .run();
    let out = env
        .anamo(&[
            "tasks", "add", "-c", "B", "--id", "b1", "--sample", "S1", "--after", "A", "--script",
            "true",
        ])
        .stderr(
            "1 of the added task(s) cannot run until a person acts: upstream, their sample's \
             task failed, was removed or is held by a QC gate (`anamo query blocked-samples` \
             after a sync says which; retry it, add a fixed one, or release the held one)\n",
        )
        .run();
    assert!(
        out.contains("1 wait for their sample's upstream tasks"),
        "{out}"
    );
}

#[test]
fn deleting_running_tasks_needs_force() {
    let env = Env::new();
    env.ok(&[
        "tasks", "add", "-c", "A", "--id", "slow", "--script", "sleep 5",
    ]);
    let worker = env.anamo(&["worker", "-c", "A"]).spawn();
    assert!(crate::harness::wait_for(
        std::time::Duration::from_secs(20),
        || env.task("slow")["state"] == "running"
    ));
    env.anamo(&["tasks", "delete", "-c", "A", "--all"])
        .fails(1)
        .stderr(
            "error: 1 of the tasks named in A are running: deleted, their scripts would run to \
             the end and the results be dropped; nothing was deleted (wait for them, or pass \
             --force)\n",
        )
        .run();
    assert_eq!(env.task("slow")["state"], "running");
    let out = env.ok(&["tasks", "delete", "-c", "A", "--all", "--force"]);
    assert!(out.starts_with("deleted 1 task(s) of A"), "{out}");
    worker.kill(std::time::Duration::from_secs(10));
}

#[test]
fn launch_binary_naming_a_folder_gets_ships_line() {
    let env = Env::new();
    env.anamo(&[
        "launch",
        "--step",
        "A",
        "--count",
        "1",
        "--binary",
        "s3://tools/",
    ])
    .fails(1)
    .stderr(
        "error: s3://tools/ names a folder; give the object's full key, e.g. \
             s3://tools/anamo\n",
    )
    .run();
}

/// A profile that is not there, credentials without a region, neither: each named for what
/// it is (no request is sent, so no emulator is needed).
#[test]
fn a_missing_profile_region_or_credentials_is_named() {
    let env = Env::new();
    let home = env.path("home");
    std::fs::create_dir_all(&home).unwrap();
    let run = |vars: &[(&str, &str)], line: &str| {
        let mut r = env
            .anamo(&["--store", "dynamodb://cohort-a", "tasks", "list"])
            .env("HOME", &home)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .fails(1)
            .stderr_one_line_with(line);
        for (k, v) in vars {
            r = r.env(k, v);
        }
        r.run();
    };
    run(
        &[("AWS_PROFILE", "genomics"), ("AWS_REGION", "eu-west-1")],
        &format!(
            "AWS profile 'genomics' was not found in {}/.aws/config or {}/.aws/credentials",
            home.display(),
            home.display()
        ),
    );
    run(
        &[
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "x"),
        ],
        "no AWS region configured: set AWS_REGION, pass --region",
    );
    run(
        &[("AWS_REGION", "eu-west-1")],
        "no usable AWS credentials: set AWS_PROFILE, or AWS_ACCESS_KEY_ID",
    );
    // --profile wins over keys in the environment, as with the aws CLI: a profile that is
    // not there is said, not passed over for the environment's keys.
    env.anamo(&[
        "--store",
        "dynamodb://cohort-a",
        "--profile",
        "nosuch",
        "tasks",
        "list",
    ])
    .env("HOME", &home)
    .env("AWS_EC2_METADATA_DISABLED", "true")
    .env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    .env("AWS_SECRET_ACCESS_KEY", "x")
    .env("AWS_REGION", "eu-west-1")
    .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    .fails(1)
    .stderr_one_line_with("AWS profile 'nosuch' was not found in")
    .run();
}

//! The command line's contract for bad input: a usage error (clap's: an unknown flag, a missing
//! argument, a bad value) exits 2 and says so on stderr's first line; a bad input the command
//! itself finds (a task file's line, a collection with no task) exits 1 with one line naming
//! the thing. Neither writes anything.

use crate::harness::Env;

#[test]
fn usage_errors_exit_2_with_clap_s_first_line_and_write_nothing() {
    let env = Env::new();
    for (args, first) in [
        (
            vec!["tasks", "list", "--nope"],
            "error: unexpected argument '--nope' found",
        ),
        (
            vec!["frobnicate"],
            "error: unrecognized subcommand 'frobnicate'",
        ),
        (
            vec!["worker", "--slots", "2"],
            "error: no --collection given and no EC2 instance metadata answered (or AWS_EC2_METADATA_DISABLED is set), so there is no anamo:step tag to read the step from; pass -c STEP",
        ),
        (
            vec!["tasks", "retry", "--all"],
            "error: the following required arguments were not provided:",
        ),
        (
            vec!["tasks", "list", "--format", "xml"],
            "error: invalid value 'xml' for '--format <FORMAT>'",
        ),
        (
            vec!["launch", "--step", "A", "--count", "0"],
            "error: invalid value '0' for '--count <COUNT>': 0 is not in 1..=10000",
        ),
        (
            vec!["demo", "--samples", "many"],
            "error: invalid value 'many' for '--samples <SAMPLES>': invalid digit found in string",
        ),
        (
            vec![
                "tasks", "add", "-c", "X", "--id", "a", "--script", "true", "--attr", "ref",
            ],
            "error: invalid value 'ref' for '--attr <ATTRS>': 'ref' is not an attribute: write NAME=VALUE (e.g. sample=ref)",
        ),
    ] {
        env.anamo(&args).fails(2).stderr_first_line(first).run();
    }
    assert!(!env.store().exists(), "no store made");
    assert!(!env.path("anamo.db").exists(), "no catalog made");
    assert!(!env.path("anamo-demo").exists(), "no demo folder made");
}

#[test]
fn bad_inputs_name_the_file_and_line_or_the_unknown_thing_on_one_line() {
    let env = Env::new();
    env.write("t.csv", "task_id,script\nok,true\nbad,true,extra\n");
    env.anamo(&["tasks", "add", "t.csv", "-c", "X"])
        .fails(1)
        .stderr(
            "error: t.csv:3: this row has 3 fields but the header has 2; quote values that contain the delimiter\n",
        )
        .run();
    assert!(!env.store().exists(), "nothing of the file was added");
    env.ok(&["tasks", "add", "-c", "X", "--id", "a", "--script", "true"]);
    let store = format!(
        "sqlite://{}",
        std::fs::canonicalize(env.store()).unwrap().display()
    );
    env.anamo(&["worker", "-c", "Y"])
        .fails(1)
        .stderr(format!(
            "error: no task in collection 'Y' in {store}; check the name (`anamo tasks counts` lists the collections), or pass --watch to wait for tasks to be added\n"
        ))
        .run();
    env.anamo(&["tasks", "retry", "-c", "Y", "--all"])
        .fails(1)
        .stderr(format!(
            "error: no task in collection 'Y' in {store}; check the name (`anamo tasks counts` lists the collections)\n"
        ))
        .run();
    env.ok(&["sync"]);
    env.anamo(&["query", "samples-done", "-p", "step=Y"])
        .fails(1)
        .stderr("error: report samples-done: no step 'Y' in the catalog; it knows X\n")
        .run();
    env.anamo(&["query", "nope"])
        .fails(1)
        .stderr("error: no saved report named 'nope'; see `anamo reports`\n")
        .run();
    env.write("s.csv", "sample_id,cohort\nS1,A\nS1,B\n");
    env.anamo(&["samples", "import", "s.csv"])
        .fails(1)
        .stderr("error: s.csv:3: sample 'S1' is listed twice (first on line 2)\n")
        .run();
    assert_eq!(env.tasks().len(), 1, "nothing changed");
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

//! `anamo tasks ...` as a process: every input format, bad input, and the management commands.

use crate::harness::Env;

#[test]
fn add_one_task_from_flags() {
    let env = Env::new();
    let out = env.ok(&[
        "tasks",
        "add",
        "-c",
        "Alignment",
        "--id",
        "S1",
        "--sample",
        "S1",
        "--script",
        "align.sh S1",
        "--attr",
        "ref=hg38",
        "--max-attempts",
        "5",
        "--timeout",
        "6h",
    ]);
    assert!(out.contains("added 1 task(s)"), "{out}");
    let t = env.task("S1");
    assert_eq!(t["state"], "todo");
    assert_eq!(t["max_attempts"], 5);
    let v = env.show("S1");
    assert_eq!(v["attrs"]["ref"], "hg38");
    assert_eq!(v["timeout_secs"], 21600);
    assert_eq!(v["script"], "align.sh S1");
}

#[test]
fn add_csv_tsv_jsonl_with_attrs_and_collection_column() {
    let env = Env::new();
    env.write(
        "a.csv",
        "task_id,sample,script,bam\nt1,S1,echo 1,s1.bam\nt2,S2,\"echo 2, with comma\",s2.bam\n",
    );
    env.ok(&["tasks", "add", "a.csv", "-c", "Alignment"]);
    env.write(
        "b.tsv",
        "collection\ttask_id\tscript\nVariantCalling\tv1\techo v\n",
    );
    env.ok(&["tasks", "add", "b.tsv"]);
    env.write(
        "c.jsonl",
        "{\"collection\":\"QC\",\"task_id\":\"q1\",\"script\":\"true\",\"attrs\":{\"depth\":30},\"lane\":2}\n",
    );
    env.ok(&["tasks", "add", "c.jsonl"]);
    let tasks = env.tasks();
    assert_eq!(tasks.len(), 4);
    let v = env.show("t2");
    assert_eq!(v["script"], "echo 2, with comma");
    assert_eq!(v["attrs"]["bam"], "s2.bam");
    let q = env.show("q1");
    assert_eq!(q["attrs"]["depth"], "30");
    assert_eq!(q["attrs"]["lane"], "2");
    assert_eq!(env.task("v1")["collection"], "VariantCalling");
}

#[test]
fn add_picas_tokens_array_and_lines() {
    let env = Env::new();
    env.write(
        "tokens.json",
        r#"[
  {"_id": "align_S1", "lock": 0, "done": 0, "type": "Alignment", "files": ["S1_R1.fq", "S1_R2.fq"], "Task_ID": "S1", "Task_Script": "align.sh S1"},
  {"_id": "align_S2", "lock": 1700000000, "done": 1700000500, "type": "Alignment", "files": "S2.fq", "Task_ID": "S2", "Task_Script": "align.sh S2"}
]"#,
    );
    let out = env.ok(&["tasks", "add", "tokens.json"]);
    assert!(out.contains("added 1 task(s)"), "{out}");
    assert!(
        out.contains("left out 1 PiCaS token(s) already done"),
        "{out}"
    );
    let t = env.task("align_S1");
    assert_eq!(t["collection"], "Alignment");
    assert_eq!(t["sample"], "S1");

    env.write(
        "tokens.txt",
        "{\"_id\": \"vc_S1\", \"lock\": 0, \"done\": 0, \"type\": \"VariantCalling\", \"Task_ID\": 7, \"Task_Script\": \"call.sh\"}\n",
    );
    env.ok(&["tasks", "add", "tokens.txt"]);
    assert_eq!(env.task("vc_S1")["sample"], "7");
}

#[test]
fn add_pyanamo_lines() {
    let env = Env::new();
    env.write(
        "items.txt",
        "S1|align_S1|/opt/align.sh|S1,hg38\nS2|align_S2|/opt/align.sh|\n",
    );
    env.ok(&["tasks", "add", "items.txt", "-c", "Alignment"]);
    let v = env.show("align_S1");
    assert_eq!(v["script"], "/opt/align.sh S1,hg38");
    assert_eq!(v["sample"], "S1");
    assert_eq!(v["attrs"]["task_args"], "S1,hg38");
    env.anamo(&["tasks", "add", "items.txt", "--format", "pyanamo"])
        .fails(1)
        .stderr_one_line_with("pass --collection")
        .run();
}

#[test]
fn add_one_task_per_sample_from_a_template() {
    let env = Env::new();
    env.write("samples.txt", "# cohort A\nS1\nS2\n\nS3\n");
    env.ok(&[
        "tasks",
        "add",
        "-c",
        "Alignment",
        "--samples",
        "samples.txt",
        "--script",
        "align.sh {sample} > {collection}.{sample}.log",
        "--id",
        "aln-{sample}",
    ]);
    let tasks = env.tasks();
    assert_eq!(tasks.len(), 3);
    let v = env.show("aln-S2");
    assert_eq!(v["script"], "align.sh S2 > Alignment.S2.log");
    assert_eq!(v["sample"], "S2");
}

#[test]
fn adding_is_idempotent_and_replace_overwrites() {
    let env = Env::new();
    env.write("a.csv", "task_id,script\nt1,echo one\nt2,echo two\n");
    env.ok(&["tasks", "add", "a.csv", "-c", "X"]);
    let stdout = env
        .anamo(&["tasks", "add", "a.csv", "-c", "X"])
        .stderr(
            "skipped X/t1: already in the store, todo\n\
             skipped X/t2: already in the store, todo\n\
             tasks seen before are left as they are: --replace runs them again (and changes \
             what they wait for)\n",
        )
        .run();
    assert!(
        stdout.contains("added 0 task(s)") && stdout.contains("skipped 2"),
        "{stdout}"
    );
    env.write("b.csv", "task_id,script\nt1,echo ONE\n");
    let out = env.ok(&["tasks", "add", "b.csv", "-c", "X", "--replace"]);
    assert!(out.contains("replaced 1"), "{out}");
    assert_eq!(env.show("t1")["script"], "echo ONE");
}

/// Each bad input: one clear line naming file and line, non-zero exit, nothing written.
#[test]
fn bad_input_is_one_clear_line_and_writes_nothing() {
    let env = Env::new();
    env.ok(&[
        "tasks", "add", "-c", "X", "--id", "keep", "--script", "true",
    ]);
    let cases: &[(&str, &str, &str)] = &[
        (
            "malformed.csv",
            "task_id,script\nok1,true\nbad,true,extra\n",
            "malformed.csv:3: this row has 3 fields but the header has 2",
        ),
        (
            "picas.json",
            "[{\"_id\":\"a\",\"type\":\"X\",\"Task_Script\":\"true\",\"lock\":0},\n {\"_id\":\"b\",\"type\":\"X\",\"Task_Script\":\"true\",\"lock\":{\"by\":\"me\"}}]",
            "picas.json:2: PiCaS field 'lock' is an object; expected a number",
        ),
        (
            "empty.csv",
            "task_id,script\nok2,true\nnoscript,   \n",
            "empty.csv:3: task 'noscript' has an empty script",
        ),
        (
            "dup.jsonl",
            "{\"task_id\":\"d\",\"script\":\"true\"}\n{\"task_id\":\"e\",\"script\":\"true\"}\n{\"task_id\":\"d\",\"script\":\"false\"}\n",
            "dup.jsonl:3: duplicate task id 'd' in collection 'X' (first on line 1)",
        ),
        (
            "broken.jsonl",
            "{\"task_id\":\"f\",\"script\":\"true\"}\n{\"task_id\": \n",
            "broken.jsonl:2: invalid JSON",
        ),
    ];
    for (name, text, expected) in cases {
        env.write(name, text);
        env.anamo(&["tasks", "add", name, "-c", "X"])
            .fails(1)
            .stderr_one_line_with(*expected)
            .run();
    }
    let tasks = env.tasks();
    assert_eq!(tasks.len(), 1, "only the first task may exist: {tasks:?}");
}

#[test]
fn bad_input_never_creates_a_store() {
    let env = Env::new();
    env.write("bad.csv", "task_id,script\nbad,true,extra\n");
    env.anamo(&["tasks", "add", "bad.csv", "-c", "X"])
        .fails(1)
        .stderr_one_line_with("bad.csv:2: this row has 3 fields but the header has 2")
        .run();
    assert!(!env.store().exists());
    env.anamo(&["tasks", "add", "-c", "X", "--id", "a/b", "--script", "true"])
        .fails(1)
        .stderr_one_line_with("may not contain '/'")
        .run();
    assert!(!env.store().exists());
}

#[test]
fn read_commands_on_a_missing_store_say_how_to_fix_it() {
    let env = Env::new();
    for args in [
        vec!["tasks", "list"],
        vec!["tasks", "show", "x"],
        vec!["tasks", "counts"],
        vec!["tasks", "retry", "-c", "X", "--all"],
        vec!["tasks", "release-stale"],
        vec!["tasks", "delete", "-c", "X", "--all"],
        vec!["worker", "-c", "X"],
    ] {
        env.anamo(&args)
            .fails(1)
            .stderr_one_line_with("does not exist")
            .stderr_contains("anamo tasks add")
            .run();
    }
    assert!(
        !env.store().exists(),
        "a read command must not create the store"
    );
}

#[test]
fn a_file_that_is_not_a_store_is_refused_and_kept() {
    let env = Env::new();
    env.write(
        "tasks.db",
        "this is not sqlite, it is someone's notes\n"
            .repeat(200)
            .as_str(),
    );
    let before = std::fs::read(env.store()).unwrap();
    env.anamo(&["tasks", "add", "-c", "X", "--id", "a", "--script", "true"])
        .fails(1)
        .stderr_one_line_with("is not an anamo task store")
        .run();
    assert_eq!(std::fs::read(env.store()).unwrap(), before);
}

#[test]
fn list_filters_and_formats() {
    let env = Env::new();
    env.write(
        "a.csv",
        "collection,task_id,sample,script\nA,a1,S1,true\nA,a2,S2,true\nB,b1,S1,true\n",
    );
    env.ok(&["tasks", "add", "a.csv"]);
    let tsv = env.ok(&["tasks", "list", "-c", "A"]);
    assert_eq!(
        tsv.lines().count(),
        3,
        "header + 2 rows in a pipe (TSV): {tsv}"
    );
    assert!(tsv.starts_with("collection\ttask_id\tsample\tstate"));
    let csv = env.ok(&["tasks", "list", "--sample", "S1", "--format", "csv"]);
    assert_eq!(csv.lines().count(), 3, "{csv}");
    let json = env.ok(&["tasks", "list", "--state", "todo", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 3);
    assert_eq!(
        env.ok(&["tasks", "list", "--state", "done", "--format", "jsonl"]),
        ""
    );
    let limited = env.ok(&["tasks", "list", "--limit", "1", "--format", "jsonl"]);
    assert_eq!(limited.lines().count(), 1);
    let md = env.ok(&["tasks", "list", "--format", "markdown", "-c", "B"]);
    assert!(md.starts_with("| collection | task_id |"), "{md}");
    env.anamo(&["tasks", "list", "--state", "lost"])
        .fails(2)
        .stderr_first_line(
            "error: invalid value 'lost' for '--state <STATE>': unknown task state 'lost'; use waiting, held, todo, running, done or failed",
        )
        .run();
    let counts = env.ok(&["tasks", "counts", "--format", "csv"]);
    assert_eq!(
        counts,
        "collection,waiting,held,todo,running,done,failed,total\nA,0,0,2,0,0,0,2\nB,0,0,1,0,0,0,1\n"
    );
}

#[test]
fn show_needs_a_collection_when_the_id_is_ambiguous() {
    let env = Env::new();
    env.write(
        "a.csv",
        "collection,task_id,script\nA,S1,true\nB,S1,false\n",
    );
    env.ok(&["tasks", "add", "a.csv"]);
    env.anamo(&["tasks", "show", "S1"])
        .fails(1)
        .stderr("error: task id 'S1' is in several collections (A, B); pass --collection\n")
        .run();
    let out = env.ok(&["tasks", "show", "S1", "-c", "B"]);
    assert!(out.contains("script\tfalse"), "{out}");
    env.anamo(&["tasks", "show", "nope"])
        .fails(1)
        .stderr_one_line_with("no task 'nope'")
        .run();
}

#[test]
fn retry_and_delete_by_id_sample_and_state() {
    let env = Env::new();
    env.write(
        "a.csv",
        "task_id,sample,script,max_attempts\nf1,S1,exit 1,1\nf2,S2,exit 1,1\nok,S1,true,1\n",
    );
    env.ok(&["tasks", "add", "a.csv", "-c", "X"]);
    env.ok(&["worker", "-c", "X"]);
    assert_eq!(env.task("f1")["state"], "failed");
    // Which tasks is a usage error: clap's argument group names the choices.
    env.anamo(&["tasks", "retry", "-c", "X"])
        .fails(2)
        .stderr_starts_with(
            "error: the following required arguments were not provided:\n  <--id <IDS>|--sample <SAMPLE>|--all>\n",
        )
        .run();
    assert!(
        env.ok(&["tasks", "retry", "-c", "X", "--id", "f1"])
            .starts_with("1 failed")
    );
    let t = env.task("f1");
    assert_eq!(
        (t["state"].as_str(), t["attempts"].as_u64()),
        (Some("todo"), Some(0))
    );
    assert!(
        env.ok(&["tasks", "retry", "-c", "X", "--sample", "S2"])
            .starts_with("1 failed")
    );
    assert!(
        env.ok(&["tasks", "retry", "-c", "X", "--all"])
            .starts_with("0 failed")
    );
    assert!(
        env.ok(&["tasks", "delete", "-c", "X", "--state", "done"])
            .contains("deleted 1")
    );
    assert!(
        env.ok(&["tasks", "delete", "-c", "X", "--id", "f1", "--id", "f2"])
            .contains("deleted 2")
    );
    assert!(env.tasks().is_empty());
    env.anamo(&["tasks", "delete", "-c", "X", "--all", "--state", "todo"])
        .fails(2)
        .stderr_first_line("error: the argument '--all' cannot be used with '--state <STATE>'")
        .run();
}

#[test]
fn help_lists_every_command() {
    let env = Env::new();
    let help = env.ok(&["--help"]);
    for c in ["tasks", "worker"] {
        assert!(help.contains(c), "{help}");
    }
    let help = env.ok(&["tasks", "--help"]);
    for c in [
        "add",
        "list",
        "show",
        "counts",
        "retry",
        "release-stale",
        "delete",
    ] {
        assert!(help.contains(c), "{help}");
    }
}

#[test]
fn a_delete_never_loses_history_even_before_any_sync() {
    let env = Env::new();
    env.ok(&[
        "tasks",
        "add",
        "-c",
        "X",
        "--id",
        "t1",
        "--script",
        "echo from-t1",
    ]);
    env.ok(&["worker", "-c", "X", "--log-dir", "logs"]);
    env.ok(&["tasks", "add", "-c", "X", "--id", "t2", "--script", "true"]);
    assert!(!env.path("anamo.db").exists(), "never synced");
    let out = env.ok(&["tasks", "delete", "-c", "X", "--all"]);
    assert!(
        out.contains("deleted 2 task(s) of X (their history is in catalog 'anamo.db')"),
        "{out}"
    );
    assert!(env.tasks().is_empty());
    assert!(env.ok(&["logs", "t1"]).contains("from-t1"));
    let rows = env.ok(&[
        "query",
        "SELECT task_id, state, removed_at IS NOT NULL AS gone FROM tasks ORDER BY task_id",
        "--format",
        "csv",
    ]);
    assert_eq!(rows, "task_id,state,gone\nt1,done,1\nt2,todo,1\n");
    // A later sync keeps them.
    env.ok(&["sync"]);
    let n = env.ok(&[
        "query",
        "SELECT count(*) AS n FROM tasks",
        "--format",
        "csv",
    ]);
    assert_eq!(n, "n\n2\n");
}

#[test]
fn errors_say_their_cause_once_and_logs_to_a_file_carry_no_colour() {
    let env = Env::new();
    env.anamo(&["tasks", "add", "nope.sh"])
        .fails(1)
        .stderr("error: cannot read 'nope.sh': No such file or directory (os error 2)\n")
        .run();
    env.anamo(&["sync"])
        .env("ANAMO_CONFIG", "missing.toml")
        .fails(1)
        .stderr("error: cannot read 'missing.toml': No such file or directory (os error 2)\n")
        .run();
    env.ok(&["tasks", "add", "-c", "X", "--id", "a", "--script", "true"]);
    // The info lines of -v, plain: no escape codes in a file.
    env.anamo(&["-v", "worker", "-c", "X"])
        .stderr_contains("running X/a")
        .stderr_matches(r"(?:\S+ +INFO [\w:]+: [^\n\x1b]*\n)+")
        .run();
}

#[test]
fn a_sample_id_reaches_the_script_as_one_literal_word() {
    let env = Env::new();
    env.write("samples.txt", "a b'c;d\n");
    env.ok(&[
        "tasks",
        "add",
        "-c",
        "X",
        "--samples",
        "samples.txt",
        "--id",
        "odd",
        "--script",
        "printf '%s|' {sample} >> got.txt; echo ${ANAMO_COLLECTION}{1..2} >> brace.txt",
    ]);
    env.ok(&["worker", "-c", "X"]);
    assert_eq!(env.read("got.txt"), "a b'c;d|");
    assert_eq!(
        env.read("brace.txt"),
        "X1 X2\n",
        "the shell's own braces stay"
    );
    env.anamo(&[
        "tasks",
        "add",
        "-c",
        "X",
        "--samples",
        "samples.txt",
        "--id",
        "t2",
        "--script",
        "run {smaple}",
    ])
    .fails(1)
    .stderr("error: --script: unknown placeholder {smaple}; known: {sample}, {collection}\n")
    .run();
}

#[test]
fn inputs_are_checked_at_the_door() {
    let env = Env::new();
    // Field names ignore case; a misspelt one is refused, not made an attribute.
    env.write("a.csv", "task_id,Sample,script\nt1,S1,true\n");
    env.ok(&["tasks", "add", "a.csv", "-c", "X"]);
    assert_eq!(env.task("t1")["sample"], "S1");
    env.write("b.csv", "task_id,smaple,script\nt2,S2,true\n");
    env.anamo(&["tasks", "add", "b.csv", "-c", "X"])
        .fails(1)
        .stderr_one_line_with("error: b.csv:1: column 'smaple' looks like 'sample', misspelt")
        .stderr_starts_with("error: b.csv:1: column 'smaple' looks like 'sample', misspelt")
        .run();
    // A script too big for a task is refused before anything is written.
    let big = "x".repeat(70 * 1024);
    env.write(
        "c.csv",
        &format!("task_id,script\nok1,true\nbig,echo {big}\nok2,true\n"),
    );
    env.anamo(&["tasks", "add", "c.csv", "-c", "Y"])
        .fails(1)
        .stderr_one_line_with("task 'big' has a script of 70 KiB; the most is 64 KiB")
        .run();
    assert!(
        env.tasks().iter().all(|t| t["collection"] != "Y"),
        "nothing written"
    );
    // PiCaS: -c names the collection over the token's `type`, which stays an attribute, as do
    // PiCaS's own fields.
    env.write(
        "tokens.json",
        r#"[{"_id": "p1", "type": "token", "Task_Script": "true", "hostname": "node7", "scrub_count": 2, "_rev": "3-abc", "lock": 0, "done": 0}]"#,
    );
    env.ok(&["tasks", "add", "tokens.json", "-c", "Alignment"]);
    let t = env.task("p1");
    assert_eq!(t["collection"], "Alignment");
    let shown = env.show("p1");
    for (attr, value) in [
        ("type", "token"),
        ("hostname", "node7"),
        ("scrub_count", "2"),
        ("_rev", "3-abc"),
        ("lock", "0"),
    ] {
        assert_eq!(shown["attrs"][attr], value, "{attr}: {shown}");
    }
    // One duration rule: whole seconds or with units, for every flag.
    env.ok(&[
        "tasks",
        "add",
        "-c",
        "Z",
        "--id",
        "z",
        "--script",
        "true",
        "--timeout",
        "6",
    ]);
    let out = env.ok(&["worker", "-c", "Z", "--lease", "600", "--grace", "90"]);
    assert!(out.contains("1 done"), "{out}");
}

#[test]
fn a_table_stops_at_a_thousand_rows_and_says_so_while_other_formats_stream_all() {
    let env = Env::new();
    let rows: String = (0..1005).map(|i| format!("t{i:04},true\n")).collect();
    env.write("t.csv", &format!("task_id,script\n{rows}"));
    env.ok(&["tasks", "add", "t.csv", "-c", "X"]);
    let out = env
        .anamo(&["tasks", "list", "--format", "table"])
        .stderr(
            "showed the first 1000 of 1005 rows as a table; use --format tsv, csv, json or jsonl for all of them (they stream)\n",
        )
        .run();
    assert!(
        out.contains("t0999") && !out.contains("t1000"),
        "first 1000 shown"
    );
    let tsv = env.ok(&["tasks", "list", "--format", "tsv"]);
    assert_eq!(tsv.lines().count(), 1006);
}

#[test]
fn adding_again_a_task_done_and_deleted_does_not_run_it_again() {
    let env = Env::new();
    env.write("s.txt", "S1\nS2\n");
    let add = [
        "tasks",
        "add",
        "-c",
        "A",
        "--samples",
        "s.txt",
        "--script",
        "echo {sample} >> ran.txt",
    ];
    env.ok(&add);
    env.ok(&["worker", "-c", "A"]);
    env.ok(&["sync"]);
    env.ok(&["tasks", "delete", "-c", "A", "--state", "done"]);
    let out = env
        .anamo(&add)
        .stderr(format!(
            "skipped A/S1: removed while done on {0}\n\
             skipped A/S2: removed while done on {0}\n\
             tasks seen before are left as they are: --replace runs them again (and changes \
             what they wait for)\n",
            &anamo::clock::rfc3339(anamo::clock::now_ms())[..10]
        ))
        .run();
    assert!(
        out.contains("added 0 task(s)") && out.contains("skipped 2 seen before"),
        "{out}"
    );
    // --replace runs it again, on purpose.
    let out = env.ok(&[
        "tasks",
        "add",
        "-c",
        "A",
        "--samples",
        "s.txt",
        "--script",
        "echo {sample} >> ran.txt",
        "--replace",
    ]);
    assert!(out.contains("added 2 task(s)"), "{out}");
}

#[test]
fn task_file_headers_ignore_case_and_a_column_named_twice_is_refused() {
    let env = Env::new();
    env.write("a.csv", "TASK_ID,Script,SAMPLE\nt1,true,S1\n");
    env.ok(&["tasks", "add", "a.csv", "-c", "X"]);
    assert_eq!(env.task("t1")["sample"], "S1");
    env.write("b.csv", "task_id,script,Task_ID\nt2,true,t3\n");
    env.anamo(&["tasks", "add", "b.csv", "-c", "X"])
        .fails(1)
        .stderr("error: b.csv:1: the header names 'Task_ID' twice; each column once\n")
        .run();
}

#[test]
fn one_task_from_flags_fills_its_placeholders_the_same_way() {
    let env = Env::new();
    env.ok(&[
        "tasks",
        "add",
        "-c",
        "P",
        "--id",
        "one",
        "--sample",
        "S 1",
        "--script",
        "printf '%s|' {sample} {collection} > got.txt",
    ]);
    env.ok(&["worker", "-c", "P"]);
    assert_eq!(env.read("got.txt"), "S 1|P|");
    env.anamo(&[
        "tasks",
        "add",
        "-c",
        "P",
        "--id",
        "two",
        "--script",
        "echo {sample}",
    ])
    .fails(1)
    .stderr("error: --script: unknown placeholder {sample}; known: {collection}\n")
    .run();
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

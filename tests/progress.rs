//! The one definition of progress, held on every surface that tells it, on whatever store an
//! `Env` uses (the SQLite and DynamoDB modules each run it).

use crate::harness::{Env, FRESH};

/// The one definition of progress, case by case, on whatever store `env` uses: every surface
/// (status, the views, the reports, status --sample) must give the same answer.
/// S1, S2 done; S3's task abandoned (deleted while todo); S4 dropped; S5 failed then replaced by
/// a done task; S6 never added; S7 failed; S8 waiting (--after a step with no task for it).
pub fn progress_matrix(env: &Env) {
    one_sample_of_each_case(env);
    every_surface_gives_the_same_answer(env);
}

/// The cases above, in step VC, synced.
fn one_sample_of_each_case(env: &Env) {
    let rows: String = (1..=8).map(|i| format!("S{i}\n")).collect();
    env.write("samples.csv", &format!("sample_id\n{rows}"));
    env.ok(&["samples", "import", "samples.csv"]);
    env.write(
        "vc.csv",
        "task_id,sample,script\nt1,S1,true\nt2,S2,true\nt4,S4,true\nt5,S5,exit 1\nt7,S7,exit 1\n",
    );
    env.ok(&["tasks", "add", "vc.csv", "-c", "VC", "--max-attempts", "1"]);
    env.ok(&["worker", "-c", "VC"]);
    env.ok(&[
        "tasks", "add", "-c", "VC", "--id", "t3", "--sample", "S3", "--script", "true",
    ]);
    env.ok(&["sync"]);
    env.ok(&["tasks", "delete", "-c", "VC", "--id", "t3"]);
    env.ok(&["samples", "drop", "S4", "--reason", "withdrawn"]);
    // The usual fix: delete the failed task, add a new one under another id.
    env.ok(&["tasks", "delete", "-c", "VC", "--id", "t5"]);
    env.ok(&[
        "tasks", "add", "-c", "VC", "--id", "t5b", "--sample", "S5", "--script", "true",
    ]);
    env.ok(&["worker", "-c", "VC"]);
    env.anamo(&[
        "tasks", "add", "-c", "VC", "--id", "t8", "--sample", "S8", "--script", "true", "--after",
        "Up",
    ])
    .fails(1)
    .stderr(
        "error: task 't8' of VC waits for step 'Up', which has no task at all in the store; \
         check the name (`anamo tasks counts` lists the collections; names are case-sensitive), \
         or pass --allow-missing-upstream if its tasks come later; nothing was added\n",
    )
    .run();
    env.ok(&[
        "tasks",
        "add",
        "-c",
        "VC",
        "--id",
        "t8",
        "--sample",
        "S8",
        "--script",
        "true",
        "--after",
        "Up",
        "--allow-missing-upstream",
    ]);
    env.ok(&["sync"]);
    env.ok(&["steps", "set", "VC"]);
}

fn every_surface_gives_the_same_answer(env: &Env) {
    let csv = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--format", "csv"]);
        env.ok(&all)
    };
    let status = env
        .anamo(&["status", "--format", "csv"])
        .stderr_matches(FRESH)
        .run();
    assert!(
        status.contains("\nVC,1,0,0,0,3,1,5,60.0,"),
        "waiting 1, held 0, todo 0, running 0, done 3, failed 1 of 5: {status}"
    );
    assert!(
        status.trim_end().ends_with(",1,1,1"),
        "1 abandoned, 1 superseded, 1 dropped: {status}"
    );
    let progress = csv(&[
        "query",
        "SELECT waiting, todo, running, done, failed, total, pct_done, abandoned, superseded, dropped FROM progress WHERE collection = 'VC'",
    ]);
    assert_eq!(
        progress.lines().nth(1),
        Some("1,0,0,3,1,5,60.0,1,1,1"),
        "{progress}"
    );
    let steps = csv(&["query", "step-progress"]);
    assert_eq!(
        steps.lines().nth(1),
        Some("VC,1,0,0,0,3,1,5,60.0,1,1,1"),
        "{steps}"
    );
    assert_eq!(
        csv(&["query", "samples-left", "-p", "step=VC"]),
        "sample_id,cohort,state\nS3,,abandoned\nS6,,not added\nS7,,failed\nS8,,waiting\n"
    );
    assert_eq!(
        csv(&["query", "blocked-samples"]),
        "sample,step,task_id,waits_for,upstream_task,upstream_state,exit_code,error_tail\n\
         S8,VC,t8,Up,(none),not added,,\n"
    );
    assert_eq!(
        csv(&["query", "samples-done", "-p", "step=VC"]),
        "sample_id,cohort\nS1,\nS2,\nS5,\n"
    );
    assert_eq!(
        csv(&[
            "query",
            "SELECT sample_id, state FROM sample_progress ORDER BY sample_id"
        ]),
        "sample_id,state\nS1,done\nS2,done\nS3,abandoned\nS4,dropped\nS5,done\nS6,not added\nS7,failed\nS8,waiting\n"
    );
    assert_eq!(
        csv(&[
            "query",
            "SELECT (SELECT group_concat(task_id) FROM (SELECT task_id FROM done_tasks ORDER BY 1)) \
             || ' = ' || (SELECT group_concat(task_id) FROM (SELECT task_id FROM task_progress \
                          WHERE progress = 'done' ORDER BY 1)) AS done"
        ]),
        "done\n\"t1,t2,t5b = t1,t2,t5b\"\n",
        "done_tasks is task_progress's done (t4 is done, but its sample S4 is dropped)"
    );
    let failed = csv(&["query", "failed-tasks"]);
    assert_eq!(
        failed.lines().count(),
        2,
        "only t7 counts as failed: {failed}"
    );
    assert!(failed.contains("\nVC,t7,S7,"), "{failed}");
    let timeline = csv(&["query", "sample-timeline", "-p", "sample=S5"]);
    assert!(
        timeline.contains("VC,t5,superseded,") && timeline.contains("VC,t5b,done,"),
        "{timeline}"
    );
    for (sample, state) in [
        ("S3", "abandoned"),
        ("S4", "dropped"),
        ("S5", "done"),
        ("S6", "not added"),
        ("S8", "waiting"),
    ] {
        let standing = if state == "dropped" {
            "dropped"
        } else {
            "active"
        };
        let journey = env
            .anamo(&["status", "--sample", sample, "--format", "csv"])
            .stderr_matches(&format!("{FRESH}sample {sample}: cohort , {standing}\n"))
            .run();
        assert!(
            journey.contains(&format!(",{state},")),
            "{sample}: {journey}"
        );
    }
}

//! Chained steps through the CLI, on both stores: `tasks add --after` (flags and a file's
//! `after` column), `worker --wait` staying while upstream work remains and leaving when only
//! blocked tasks are left, and `release-stale` promoting what a crashed worker left waiting.

use std::time::Duration;

use crate::dynamo_cli::dynamo_env;
use crate::harness::Env;

#[test]
fn wait_stays_for_upstream_work_and_leaves_only_blocked_tasks_behind_on_sqlite() {
    wait_stays_for_upstream_work_and_leaves_only_blocked_tasks_behind(&Env::new());
}

#[test]
fn wait_stays_for_upstream_work_and_leaves_only_blocked_tasks_behind_on_dynamodb() {
    if let Some((_moto, env)) = dynamo_env() {
        wait_stays_for_upstream_work_and_leaves_only_blocked_tasks_behind(&env);
    }
}

#[test]
fn wait_stays_for_upstream_work_and_leaves_only_blocked_tasks_behind_on_dynalite() {
    if let Some((_dynalite, env)) = crate::dynamo_cli::dynalite_env() {
        wait_stays_for_upstream_work_and_leaves_only_blocked_tasks_behind(&env);
    }
}

/// S1 fails in A (a missing file), S2 takes a moment there; B's tasks wait for A. A `--wait` worker
/// of B, started first, stays while S2's A runs, runs S2's B once it is released, and leaves
/// when only S1's B is left (blocked), saying so.
fn wait_stays_for_upstream_work_and_leaves_only_blocked_tasks_behind(env: &Env) {
    env.write(
        "a.csv",
        "task_id,sample,script\na1,S1,test -e fixed\na2,S2,sleep 2\n",
    );
    env.ok(&["tasks", "add", "a.csv", "-c", "A", "--max-attempts", "1"]);
    // A file's `after` column, and the flag for the rest.
    env.write(
        "b.csv",
        "task_id,sample,after,script\nb1,S1,A,echo b1 >> b.txt\nb2,S2,,echo b2 >> b.txt\n",
    );
    let out = env.ok(&["tasks", "add", "b.csv", "-c", "B", "--after", "A"]);
    assert!(
        out.ends_with("; 2 wait for their sample's upstream tasks\n"),
        "{out}"
    );
    assert_eq!(env.task("b2")["state"], "waiting");
    let downstream = env
        .anamo(&["worker", "-c", "B", "--wait"])
        .stderr(
            "1 task(s) of B wait for upstream tasks that failed or do not exist (in the step \
             before or further up); nothing will run them until a person acts (see `anamo \
             query blocked-samples` after a sync)\n",
        )
        .spawn();
    std::thread::sleep(Duration::from_millis(500));
    let upstream = env.ok(&["worker", "-c", "A", "--slots", "2"]);
    assert!(upstream.contains("1 done, 1 failed"), "{upstream}");
    let out = downstream.wait(Duration::from_secs(60));
    let summary = out.stdout;
    assert!(summary.contains(": 1 done, 0 failed"), "{summary}");
    assert_eq!(env.read("b.txt"), "b2\n");
    assert_eq!(env.task("b1")["state"], "waiting");
    // Fixed, and a retry of the upstream task lets the flow resume by itself.
    env.write("fixed", "");
    assert_eq!(
        env.ok(&["tasks", "retry", "-c", "A", "--id", "a1"]),
        "1 failed task(s) of A back to todo\n"
    );
    env.ok(&["worker", "-c", "A"]);
    env.ok(&["worker", "-c", "B"]);
    assert_eq!(env.read("b.txt"), "b2\nb1\n");
    let counts = env.ok(&["tasks", "counts", "--format", "csv"]);
    assert_eq!(
        counts,
        "collection,waiting,held,todo,running,done,failed,total\nA,0,0,0,0,2,0,2\nB,0,0,0,0,2,0,2\n"
    );
}

#[test]
fn a_task_without_its_upstream_is_refused_whole_and_a_done_upstream_starts_it_todo() {
    let env = Env::new();
    env.ok(&[
        "tasks", "add", "-c", "A", "--id", "a1", "--sample", "S1", "--script", "true",
    ]);
    env.write("s.txt", "S1\nS2\nS3\n");
    env.anamo(&[
        "tasks",
        "add",
        "-c",
        "B",
        "--samples",
        "s.txt",
        "--script",
        "true",
        "--after",
        "A",
    ])
    .fails(1)
    .stderr(
        "error: task 'S2' of B waits for sample 'S2' in A, which has no task for it (and 1 \
         more task(s) like it); nothing was added: add A's tasks first, or pass \
         --allow-missing-upstream\n",
    )
    .run();
    assert_eq!(env.tasks().len(), 1, "nothing of the batch was added");
    env.anamo(&[
        "tasks", "add", "-c", "B", "--id", "x", "--script", "true", "--after", "A",
    ])
    .fails(1)
    .stderr(
        "error: task 'x' waits for A but has no sample; a task waits for its own sample's \
             tasks upstream, so give it one (--sample, or a sample column)\n",
    )
    .run();
    env.ok(&["worker", "-c", "A"]);
    // Upstream done, then deleted from the store: it still counts.
    env.ok(&["tasks", "delete", "-c", "A", "--all"]);
    env.write("s1.txt", "S1\n");
    let out = env.ok(&[
        "tasks",
        "add",
        "-c",
        "B",
        "--samples",
        "s1.txt",
        "--script",
        "true",
        "--after",
        "A",
    ]);
    assert!(out.starts_with("added 1 task(s) to sqlite://"), "{out}");
    assert!(!out.contains("wait"), "its upstream is done: {out}");
    assert_eq!(env.task("S1")["state"], "todo");
}

#[test]
fn release_stale_promotes_what_a_worker_killed_after_its_finish_left_waiting() {
    let env = Env::new();
    a1_then_b1(&env);
    // A worker that recorded its finish and died before promoting: the store says done, and
    // the task downstream still waits.
    let db = rusqlite::Connection::open(env.store()).unwrap();
    db.execute(
        "UPDATE tasks SET state = 'done', finished_at = 1, version = version + 1 \
         WHERE task_id = 'a1'",
        [],
    )
    .unwrap();
    drop(db);
    assert_eq!(env.task("b1")["state"], "waiting");
    let out = env.ok(&["tasks", "release-stale"]);
    assert_eq!(
        out,
        "0 stale task(s) back to todo, 0 failed on their last attempt, 1 waiting task(s) \
         promoted (their upstream was done)\n"
    );
    assert_eq!(env.task("b1")["state"], "todo");
}

#[test]
fn mistakes_with_after_get_one_line_each() {
    let env = Env::new();
    env.ok(&[
        "tasks",
        "add",
        "-c",
        "Alignment",
        "--id",
        "a1",
        "--sample",
        "S1",
        "--script",
        "true",
    ]);
    // An empty shell variable must not drop the dependency in silence.
    env.anamo(&[
        "tasks", "add", "-c", "B", "--id", "b1", "--sample", "S1", "--script", "true", "--after",
        "",
    ])
    .fails(2)
    .stderr("error: --after names no step; give STEP or STEP,STEP (an empty shell variable?)\n")
    .run();
    // A misspelt step is not answered with "add its tasks first".
    env.anamo(&[
        "tasks",
        "add",
        "-c",
        "B",
        "--id",
        "b1",
        "--sample",
        "S1",
        "--script",
        "true",
        "--after",
        "Alignmnet",
    ])
    .fails(1)
    .stderr(
        "error: task 'b1' of B waits for step 'Alignmnet', which has no task at all in the \
         store; check the name (`anamo tasks counts` lists the collections; names are \
         case-sensitive), or pass --allow-missing-upstream if its tasks come later; nothing was \
         added\n",
    )
    .run();
    // A loop would never run: refused, even with --allow-missing-upstream.
    env.ok(&[
        "tasks",
        "add",
        "-c",
        "X",
        "--id",
        "x1",
        "--sample",
        "S1",
        "--script",
        "true",
        "--after",
        "Y",
        "--allow-missing-upstream",
    ]);
    env.anamo(&[
        "tasks",
        "add",
        "-c",
        "Y",
        "--id",
        "y1",
        "--sample",
        "S1",
        "--script",
        "true",
        "--after",
        "X",
        "--allow-missing-upstream",
    ])
    .fails(1)
    .stderr(
        "error: task 'y1' of Y waits for X, whose tasks of sample 'S1' wait (through --after) \
         for Y again: a loop that would never run; nothing was added\n",
    )
    .run();
    // A JSON Lines file may list the steps.
    env.write(
        "c.jsonl",
        "{\"task_id\":\"c1\",\"sample\":\"S1\",\"script\":\"true\",\"after\":[\"Alignment\",\"X\"]}\n",
    );
    env.ok(&["tasks", "add", "c.jsonl", "-c", "C"]);
    let shown = env.ok(&["tasks", "show", "c1", "--format", "csv"]);
    assert!(shown.contains("\nafter,\"Alignment,X\"\n"), "{shown}");
}

#[test]
fn a_failed_lane_holds_its_sample_and_deleting_it_says_what_that_releases() {
    let env = Env::new();
    env.write(
        "a.csv",
        "task_id,sample,script\nS1-L1,S1,true\nS1-L2,S1,echo lane gone >&2; exit 3\n",
    );
    env.ok(&["tasks", "add", "a.csv", "-c", "A", "--max-attempts", "1"]);
    env.ok(&[
        "tasks", "add", "-c", "B", "--id", "b1", "--sample", "S1", "--script", "true", "--after",
        "A",
    ]);
    env.ok(&[
        "tasks", "add", "-c", "C", "--id", "c1", "--sample", "S1", "--script", "true", "--after",
        "B",
    ]);
    // (No --log-dir: the script's stderr is the worker's.)
    env.anamo(&["worker", "-c", "A"])
        .stderr("lane gone\n")
        .run();
    // Without --wait, a worker of C leaves; what blocks it is told.
    env.anamo(&["worker", "-c", "C"])
        .stderr(
            "1 task(s) of C wait for upstream tasks that failed or do not exist (in the step \
             before or further up); nothing will run them until a person acts (see `anamo \
             query blocked-samples` after a sync)\n",
        )
        .run();
    env.ok(&["sync"]);
    // The failed lane holds S1 although the other lane is done; C is held through B.
    assert_eq!(
        env.ok(&["query", "blocked-samples", "--format", "csv"]),
        "sample,step,task_id,waits_for,upstream_task,upstream_state,exit_code,error_tail\n\
         S1,B,b1,A,S1-L2,failed,3,\"lane gone\nanamo: the script exited with code 3\"\n\
         S1,C,c1,B,b1,blocked,,\n"
    );
    // Failed, not superseded by the done lane beside it: status and failed-tasks count it.
    assert_eq!(
        env.ok(&[
            "query",
            "SELECT task_id, progress FROM task_progress WHERE collection = 'A' ORDER BY 1",
            "--format",
            "csv"
        ]),
        "task_id,progress\nS1-L1,done\nS1-L2,failed\n"
    );
    // Deleting the failed lane (not required any more) releases B at once, since the rest of
    // A is done for S1: said.
    let out = env
        .anamo(&["tasks", "delete", "-c", "A", "--id", "S1-L2"])
        .stderr(
            "1 task(s) downstream of A may run now: the deleted tasks were not required (a lane \
             deleted on purpose); to fix a failed task instead, add the fixed one under a new id \
             (it supersedes the failure once done) and delete nothing\n",
        )
        .run();
    assert!(out.starts_with("deleted 1 task(s) of A"), "{out}");
    assert_eq!(env.task("b1")["state"], "todo");
}

#[test]
fn a_worker_without_wait_says_what_it_leaves_waiting() {
    let env = Env::new();
    a1_then_b1(&env);
    let out = env
        .anamo(&["worker", "-c", "B"])
        .stderr(
            "1 task(s) of B wait for upstream work still under way; this worker leaves them \
             (pass --wait to stay for them)\n",
        )
        .run();
    assert!(out.contains(": 0 done, 0 failed"), "{out}");
}

/// S1's task a1 in step A, and b1 in step B waiting for it (`--after A`).
fn a1_then_b1(env: &Env) {
    env.ok(&[
        "tasks", "add", "-c", "A", "--id", "a1", "--sample", "S1", "--script", "true",
    ]);
    env.ok(&[
        "tasks", "add", "-c", "B", "--id", "b1", "--sample", "S1", "--script", "true", "--after",
        "A",
    ]);
}

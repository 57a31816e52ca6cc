//! The walk's numbered findings (issue 23), each through the CLI, on both stores: work is not
//! run again after a delete and a re-add (with and without the catalog), a replaced failure no
//! longer blocks the next step, a failed lane keeps its sample out of "done" everywhere, and
//! throughput-by-day sets dropped samples apart as status does. tests/model.rs judges the same
//! rule over random histories.

use crate::dynamo_cli::dynamo_env;
use crate::harness::Env;

/// Runs a case on the SQLite store and, where the emulators are there, on DynamoDB (moto)
/// and on the second DynamoDB (dynalite).
macro_rules! on_both_stores {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(#[test] fn $case() { super::$case(&crate::harness::Env::new()); })*
        }
        mod dynamodb {
            $(#[test] fn $case() {
                if let Some((_moto, env)) = super::dynamo_env() {
                    super::$case(&env);
                }
            })*
        }
        mod dynalite {
            $(#[test] fn $case() {
                if let Some((_dynalite, env)) = crate::dynamo_cli::dynalite_env() {
                    super::$case(&env);
                }
            })*
        }
    };
}

on_both_stores!(
    a_deleted_task_is_not_brought_back_by_adding_the_same_samples_again,
    a_machine_without_the_catalog_does_not_run_removed_work_again,
    a_replaced_failure_releases_the_next_step,
    retries_and_replaces_number_their_runs_on_and_keep_every_log,
    dropping_a_sample_withdraws_its_tasks_that_have_not_started,
    the_eta_leaves_blocked_work_out_and_says_so,
    a_task_removed_from_another_machine_reaches_the_catalog_at_the_next_sync,
    a_waiting_worker_stays_while_a_fix_is_under_way,
    a_failed_lane_keeps_its_sample_out_of_done_everywhere,
    throughput_by_day_sets_dropped_samples_apart,
);

/// The lines of a file, sorted (workers on DynamoDB take tasks in no set order).
fn sorted_lines(env: &Env, name: &str) -> Vec<String> {
    let mut lines: Vec<String> = env.read(name).lines().map(str::to_string).collect();
    lines.sort();
    lines
}

fn today() -> String {
    anamo::clock::rfc3339(anamo::clock::now_ms())[..10].to_string()
}

/// Finding 1: the README's fix (delete the broken task, add a fixed one under another id), then
/// the same `tasks add --samples` again: the deleted id is skipped, saying what became of it.
fn a_deleted_task_is_not_brought_back_by_adding_the_same_samples_again(env: &Env) {
    env.write("s.txt", "S1\nS2\n");
    let add = [
        "tasks",
        "add",
        "-c",
        "A",
        "--samples",
        "s.txt",
        "--max-attempts",
        "1",
        "--script",
        "test {sample} != S2 && echo {sample} >> ran.txt",
    ];
    env.ok(&add);
    env.ok(&["worker", "-c", "A"]);
    env.ok(&["tasks", "delete", "-c", "A", "--id", "S2"]);
    env.ok(&[
        "tasks",
        "add",
        "-c",
        "A",
        "--id",
        "S2-v2",
        "--sample",
        "S2",
        "--script",
        "echo S2 >> ran.txt",
    ]);
    env.ok(&["worker", "-c", "A"]);
    let out = env
        .anamo(&add)
        .stderr(format!(
            "skipped A/S1: done (still in the store)\n\
             skipped A/S2: removed while failed on {}, superseded by S2-v2 (done)\n\
             tasks seen before are left as they are: --replace runs them again (and changes \
             what they wait for)\n",
            today()
        ))
        .run();
    assert!(
        out.contains("added 0 task(s)") && out.contains("skipped 2 seen before"),
        "{out}"
    );
    env.ok(&["worker", "-c", "A"]);
    assert_eq!(sorted_lines(env, "ran.txt"), ["S1", "S2"]);
}

/// Finding 2: done tasks deleted, then the same add from a folder with no catalog: the store's
/// tombstones say they were done, and nothing runs again.
fn a_machine_without_the_catalog_does_not_run_removed_work_again(env: &Env) {
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
    env.ok(&["tasks", "delete", "-c", "A", "--state", "done"]);
    std::fs::remove_file(env.path("anamo.db")).expect("the catalog delete wrote");
    let out = env
        .anamo(&add)
        .stderr(format!(
            "skipped A/S1: removed while done on {0}\n\
             skipped A/S2: removed while done on {0}\n\
             tasks seen before are left as they are: --replace runs them again (and changes \
             what they wait for)\n",
            today()
        ))
        .run();
    assert!(out.contains("added 0 task(s)"), "{out}");
    assert_eq!(sorted_lines(env, "ran.txt"), ["S1", "S2"]);
    // Asked for, it runs again.
    let mut again = add.to_vec();
    again.push("--replace");
    let out = env.ok(&again);
    assert!(out.contains("added 2 task(s)"), "{out}");
    env.ok(&["worker", "-c", "A"]);
    assert_eq!(sorted_lines(env, "ran.txt"), ["S1", "S1", "S2", "S2"]);
}

/// Finding 4: a failed task whose sample got a fixed task (new id, done) no longer holds the
/// downstream task: it runs, and blocked-samples names nothing.
fn a_replaced_failure_releases_the_next_step(env: &Env) {
    env.ok(&[
        "tasks",
        "add",
        "-c",
        "A",
        "--id",
        "S1",
        "--sample",
        "S1",
        "--max-attempts",
        "1",
        "--script",
        "exit 3",
    ]);
    env.ok(&[
        "tasks",
        "add",
        "-c",
        "B",
        "--id",
        "b-S1",
        "--sample",
        "S1",
        "--after",
        "A",
        "--script",
        "echo b >> b.txt",
    ]);
    env.ok(&["worker", "-c", "A"]);
    assert_eq!(env.task("b-S1")["state"], "waiting");
    env.ok(&[
        "tasks", "add", "-c", "A", "--id", "S1-v2", "--sample", "S1", "--script", "true",
    ]);
    env.ok(&["worker", "-c", "A"]);
    assert_eq!(env.task("b-S1")["state"], "todo");
    env.ok(&["worker", "-c", "B"]);
    assert_eq!(env.read("b.txt"), "b\n");
    // Retrying every failure leaves the replaced one alone: nothing finished runs again.
    let out = env
        .anamo(&["tasks", "retry", "-c", "A", "--all"])
        .stderr(
            "left A/S1 failed: S1-v2 (done) replaced it, and retrying it would run finished \
             work again (`tasks add --replace` runs it on purpose)\n",
        )
        .run();
    assert_eq!(out, "0 failed task(s) of A back to todo\n");
    env.ok(&["sync"]);
    let blocked = env.ok(&["query", "blocked-samples", "--format", "csv"]);
    assert_eq!(blocked.lines().count(), 1, "{blocked}");
    let failed = env.ok(&["query", "failed-tasks", "--format", "csv"]);
    assert_eq!(failed.lines().count(), 1, "{failed}");
}

/// Finding 5: two lanes, one failed: every surface says the sample is not done in the step,
/// and the next step holds it.
fn a_failed_lane_keeps_its_sample_out_of_done_everywhere(env: &Env) {
    env.write("samples.csv", "sample_id\nS1\nS2\n");
    env.ok(&["samples", "import", "samples.csv"]);
    env.write("s.txt", "S1\nS2\n");
    for lane in ["L1", "L2"] {
        env.ok(&[
            "tasks",
            "add",
            "-c",
            "A",
            "--samples",
            "s.txt",
            "--id",
            &format!("{{sample}}-{lane}"),
            "--max-attempts",
            "1",
            "--script",
            &format!("test {{sample}}-{lane} != S2-L2"),
        ]);
    }
    env.ok(&[
        "tasks",
        "add",
        "-c",
        "B",
        "--samples",
        "s.txt",
        "--after",
        "A",
        "--script",
        "true",
    ]);
    env.ok(&["worker", "-c", "A"]);
    assert_eq!(env.task("S2")["state"], "waiting");
    env.ok(&["sync"]);
    let done = env.ok(&["query", "samples-done", "-p", "step=A", "--format", "csv"]);
    assert_eq!(done, "sample_id,cohort\nS1,\n");
    let left = env.ok(&["query", "samples-left", "-p", "step=A", "--format", "csv"]);
    assert_eq!(left, "sample_id,cohort,state\nS2,,failed\n");
    let state = env.ok(&[
        "query",
        "SELECT state FROM sample_step_state WHERE sample_id = 'S2' AND collection = 'A'",
        "--format",
        "csv",
    ]);
    assert_eq!(state, "state\nfailed\n");
    let blocked = env.ok(&["query", "blocked-samples", "--format", "csv"]);
    assert!(blocked.contains("S2,B,S2,A,S2-L2,failed"), "{blocked}");
}

/// Finding 6: throughput-by-day counts what status counts (a dropped sample set apart).
fn throughput_by_day_sets_dropped_samples_apart(env: &Env) {
    env.write("samples.csv", "sample_id\nS1\nS2\nS3\n");
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
    env.ok(&["worker", "-c", "A"]);
    env.ok(&["samples", "drop", "S3", "--reason", "withdrew consent"]);
    env.ok(&["sync"]);
    let days = env.ok(&["query", "throughput-by-day", "--format", "csv"]);
    let done: u64 = days
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(2).unwrap().parse::<u64>().unwrap())
        .sum();
    let status = env
        .anamo(&["status", "--format", "csv"])
        .stderr_matches(crate::harness::FRESH)
        .run();
    let header: Vec<&str> = status.lines().next().unwrap().split(',').collect();
    let at = header
        .iter()
        .position(|c| *c == "done")
        .expect("a done column");
    let row = status
        .lines()
        .find(|l| l.starts_with("A,"))
        .expect("step A");
    let counted: u64 = row.split(',').nth(at).unwrap().parse().unwrap();
    assert_eq!((done, counted), (2, 2), "{days}\n{status}");
}

/// Finding 3: a retry and a replace go on numbering runs, so no run's log is written over and
/// `logs --run N` (or `--attempt N`) reaches every run ever made.
fn retries_and_replaces_number_their_runs_on_and_keep_every_log(env: &Env) {
    env.ok(&[
        "tasks",
        "add",
        "-c",
        "A",
        "--id",
        "t1",
        "--max-attempts",
        "1",
        "--script",
        "echo run $ANAMO_RUN; test -e fixed",
    ]);
    let logs = env.path("logs");
    let logs = logs.to_str().unwrap();
    env.ok(&["worker", "-c", "A", "--log-dir", logs]);
    env.ok(&["tasks", "retry", "-c", "A", "--id", "t1"]);
    env.ok(&["worker", "-c", "A", "--log-dir", logs]);
    env.ok(&[
        "tasks",
        "add",
        "-c",
        "A",
        "--id",
        "t1",
        "--max-attempts",
        "1",
        "--replace",
        "--script",
        "echo run $ANAMO_RUN; echo replaced",
    ]);
    env.ok(&["worker", "-c", "A", "--log-dir", logs]);
    for n in 1..=3 {
        assert!(
            env.path(&format!("logs/A/t1/{n}.log")).exists(),
            "run {n}'s log"
        );
    }
    assert_eq!(env.ok(&["logs", "t1", "--run", "1"]), "run 1\n");
    assert_eq!(env.ok(&["logs", "t1", "--attempt", "2"]), "run 2\n");
    assert_eq!(env.ok(&["logs", "t1"]), "run 3\nreplaced\n");
    let task = env.show("t1");
    assert_eq!(
        (task["runs"].as_u64(), task["attempts"].as_u64()),
        (Some(3), Some(1))
    );
    assert_eq!(task["run_logs"].as_str().unwrap().split(' ').count(), 3);
    env.anamo(&["logs", "t1", "--run", "4"])
        .fails(1)
        .stderr("error: task A/t1 has had 3 run(s); --run 4 does not exist\n")
        .run();
}

/// Finding 7: dropping a sample withdraws its waiting and todo tasks (they do not run), says
/// how many per step; re-activating says they must be added again, and adding them is allowed.
fn dropping_a_sample_withdraws_its_tasks_that_have_not_started(env: &Env) {
    env.write("samples.csv", "sample_id\nS1\nS2\n");
    env.ok(&["samples", "import", "samples.csv"]);
    env.write("s.txt", "S1\nS2\n");
    let add_a = [
        "tasks",
        "add",
        "-c",
        "A",
        "--samples",
        "s.txt",
        "--script",
        "echo A {sample} >> ran.txt",
    ];
    let add_b = [
        "tasks",
        "add",
        "-c",
        "B",
        "--samples",
        "s.txt",
        "--after",
        "A",
        "--script",
        "echo B {sample} >> ran.txt",
    ];
    env.ok(&add_a);
    env.ok(&add_b);
    let out = env.ok(&["samples", "drop", "S2", "--reason", "withdrew consent"]);
    assert!(out.starts_with("dropped sample S2\n"), "{out}");
    assert!(out.contains("(A 1, B 1)"), "{out}");
    env.ok(&["worker", "-c", "A"]);
    env.ok(&["worker", "-c", "B"]);
    assert_eq!(sorted_lines(env, "ran.txt"), ["A S1", "B S1"]);
    // While it is dropped, the same add (from any machine: the store knows) adds none of it.
    let out = env
        .anamo(&add_a)
        .stderr_contains("skipped A/S2: its sample S2 was dropped from the study on ")
        .run();
    assert!(out.contains("added 0 task(s)"), "{out}");
    // Back in the study: the withdrawn tasks are added again (not skipped), and run.
    env.write("active.csv", "sample_id,status\nS2,active\n");
    env.anamo(&["samples", "import", "active.csv"])
        .stderr_contains(
            "tasks withdrawn when it was dropped must be added again (`anamo tasks add`): A/S2, \
             B/S2",
        )
        .run();
    let out = env
        .anamo(&add_a)
        .stderr_contains("skipped A/S1: done (still in the store)")
        .run();
    assert!(out.contains("added 1 task(s)"), "{out}");
    env.anamo(&add_b)
        .stderr_contains("skipped B/S1: done (still in the store)")
        .run();
    env.ok(&["worker", "-c", "A"]);
    env.ok(&["worker", "-c", "B"]);
    assert_eq!(
        sorted_lines(env, "ran.txt"),
        ["A S1", "A S2", "B S1", "B S2"]
    );
    // --keep-tasks leaves them.
    env.ok(&[
        "tasks", "add", "-c", "C", "--id", "c2", "--sample", "S2", "--script", "true",
    ]);
    let out = env.ok(&["samples", "drop", "S2", "--reason", "again", "--keep-tasks"]);
    assert_eq!(out, "dropped sample S2\n");
    assert_eq!(env.task("c2")["state"], "todo");
}

/// Finding 8: work that nothing will run until a person acts is left out of the ETA and said;
/// `done` only when nothing is left and nothing is blocked.
fn the_eta_leaves_blocked_work_out_and_says_so(env: &Env) {
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
    env.ok(&[
        "tasks", "add", "-c", "B", "--id", "b1", "--sample", "S1", "--after", "A", "--script",
        "true",
    ]);
    env.ok(&["worker", "-c", "A"]);
    env.ok(&["sync"]);
    let status = env
        .anamo(&["status", "--format", "csv"])
        .stderr_matches(crate::harness::FRESH)
        .run();
    let header: Vec<&str> = status.lines().next().unwrap().split(',').collect();
    let b: Vec<&str> = status
        .lines()
        .find(|l| l.starts_with("B,"))
        .unwrap()
        .split(',')
        .collect();
    let col = |name: &str| b[header.iter().position(|c| *c == name).unwrap()];
    assert_eq!(
        (col("waiting"), col("blocked"), col("eta_hours")),
        ("1", "1", "")
    );
    let table = env
        .anamo(&["status", "--format", "table"])
        .stderr_matches(crate::harness::FRESH)
        .run();
    assert!(table.contains(" 1 blocked "), "{table}");
}

/// A task added, run and deleted from a machine with another catalog (or none), that this
/// catalog never saw: the store's tombstone tells the next sync, so its history is here too.
fn a_task_removed_from_another_machine_reaches_the_catalog_at_the_next_sync(env: &Env) {
    env.ok(&[
        "tasks", "add", "-c", "A", "--id", "keep", "--script", "true",
    ]);
    env.ok(&["sync"]);
    env.ok(&[
        "tasks", "add", "-c", "A", "--id", "t1", "--sample", "S1", "--script", "true",
    ]);
    let logs = env.path("logs");
    env.ok(&["worker", "-c", "A", "--log-dir", logs.to_str().unwrap()]);
    env.ok(&[
        "--catalog",
        "elsewhere.db",
        "tasks",
        "delete",
        "-c",
        "A",
        "--id",
        "t1",
    ]);
    let out = env.ok(&["sync"]);
    assert!(out.contains(", 1 removed"), "{out}");
    let row = env.ok(&[
        "query",
        "SELECT task_id, state, removed_at IS NOT NULL, runs FROM tasks WHERE task_id = 't1'",
        "--format",
        "csv",
    ]);
    assert_eq!(
        row,
        "task_id,state,removed_at IS NOT NULL,runs\nt1,done,1,1\n"
    );
    // Its last run came along: the log is found.
    assert_eq!(env.ok(&["logs", "t1", "-c", "A"]), "");
    let run = env.ok(&[
        "query",
        "SELECT attempts, exit_code, log_uri LIKE '%/A/t1/1.log' FROM tasks WHERE task_id = 't1'",
        "--format",
        "csv",
    ]);
    assert_eq!(run.lines().nth(1), Some("1,0,1"), "{run}");
    let again = env.ok(&["sync"]);
    assert!(again.contains(", 0 removed"), "counted once: {again}");
}

/// A failure whose fix (a task added after it) is queued is work that will run: a `--wait`
/// worker of the next step stays for it, and nothing calls it blocked.
fn a_waiting_worker_stays_while_a_fix_is_under_way(env: &Env) {
    env.ok(&[
        "tasks",
        "add",
        "-c",
        "A",
        "--id",
        "S1",
        "--sample",
        "S1",
        "--max-attempts",
        "1",
        "--script",
        "exit 3",
    ]);
    env.ok(&[
        "tasks",
        "add",
        "-c",
        "B",
        "--id",
        "b-S1",
        "--sample",
        "S1",
        "--after",
        "A",
        "--script",
        "echo b >> b.txt",
    ]);
    env.ok(&["worker", "-c", "A"]);
    env.ok(&[
        "tasks", "add", "-c", "A", "--id", "S1-v2", "--sample", "S1", "--script", "sleep 1",
    ]);
    env.ok(&["sync"]);
    let blocked = env.ok(&["query", "blocked-samples", "--format", "csv"]);
    assert_eq!(blocked.lines().count(), 1, "nothing is blocked: {blocked}");
    let downstream = env.anamo(&["worker", "-c", "B", "--wait"]).spawn();
    std::thread::sleep(std::time::Duration::from_millis(500));
    env.ok(&["worker", "-c", "A"]);
    let out = downstream.wait(std::time::Duration::from_secs(90));
    assert!(out.stdout.contains(": 1 done, 0 failed"), "{}", out.stdout);
    assert_eq!(env.read("b.txt"), "b\n");
}

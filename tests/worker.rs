//! `anamo worker` as a process: scripts, retries, timeouts, parallel workers, signals, leases.

use std::time::Duration;

use crate::harness::{Env, assert_each_ran_once, file_lines, wait_for};

fn add(env: &Env, collection: &str, id: &str, script: &str, extra: &[&str]) {
    let mut args = vec![
        "tasks", "add", "-c", collection, "--id", id, "--script", script,
    ];
    args.extend_from_slice(extra);
    env.ok(&args);
}

#[test]
fn runs_scripts_with_their_environment_and_logs() {
    let env = Env::new();
    add(
        &env,
        "Alignment",
        "S1-aln",
        "echo \"$ANAMO_TASK_ID $ANAMO_COLLECTION $ANAMO_SAMPLE $ANAMO_ATTEMPT $ANAMO_ATTR_REF\" > env.txt; echo to-stdout; echo to-stderr >&2",
        &["--sample", "S1", "--attr", "ref=hg38"],
    );
    let out = env.ok(&["worker", "-c", "Alignment", "--log-dir", "logs"]);
    assert!(
        out.contains("on Alignment: 1 done, 0 failed, 0 retried, 0 released, 0 lost"),
        "{out}"
    );
    assert_eq!(env.read("env.txt"), "S1-aln Alignment S1 1 hg38\n");
    let log = env.read("logs/Alignment/S1-aln/1.log");
    assert!(
        log.contains("to-stdout") && log.contains("to-stderr"),
        "{log}"
    );
    let t = env.task("S1-aln");
    assert_eq!(t["state"], "done");
    assert_eq!(t["exit_code"], 0);
    assert!(
        t["log_uri"]
            .as_str()
            .unwrap()
            .ends_with("logs/Alignment/S1-aln/1.log")
    );
    assert!(
        t["owner"].as_str().unwrap().contains(':'),
        "hostname:pid owner"
    );
}

#[test]
fn failures_retry_then_fail_keeping_the_stderr_tail() {
    let env = Env::new();
    // 10 KB of stderr, then the interesting last line.
    add(
        &env,
        "X",
        "boom",
        "for i in $(seq 1 1000); do echo noise-line >&2; done; echo 'real error here' >&2; exit 3",
        &[],
    );
    add(&env, "X", "pipe", "false | true", &["--max-attempts", "1"]);
    // Without --log-dir the scripts' output passes to the worker's stderr: three attempts.
    let attempt = format!("{}real error here\n", "noise-line\n".repeat(1000));
    let out = env
        .anamo(&["worker", "-c", "X"])
        .stderr(attempt.repeat(3))
        .run();
    assert!(out.contains("0 done, 2 failed, 2 retried"), "{out}");
    let t = env.task("boom");
    assert_eq!(t["state"], "failed");
    assert_eq!(t["attempts"], 3);
    assert_eq!(t["exit_code"], 3);
    let show = env.show("boom");
    let tail = show["error_tail"].as_str().unwrap();
    assert!(tail.contains("real error here\n"), "{tail}");
    assert!(
        tail.ends_with("anamo: the script exited with code 3"),
        "{tail}"
    );
    assert!(tail.len() <= 2048 + 64, "tail is {} bytes", tail.len());
    assert_eq!(env.task("pipe")["state"], "failed", "pipefail is on");
}

#[test]
fn a_timeout_kills_the_script() {
    let env = Env::new();
    add(
        &env,
        "X",
        "slow",
        "sleep 30; touch finished",
        &["--timeout", "1", "--max-attempts", "1"],
    );
    let out = env.ok(&["worker", "-c", "X"]);
    assert!(out.contains("1 failed"), "{out}");
    let t = env.task("slow");
    assert_eq!(t["exit_code"], 124);
    assert!(!env.path("finished").exists());
}

#[test]
fn eight_workers_run_each_of_500_tasks_exactly_once() {
    let env = Env::new();
    let mut csv = String::from("task_id,script\n");
    for i in 0..500 {
        csv.push_str(&format!("t{i:03},echo $ANAMO_TASK_ID >> ran.txt\n"));
    }
    env.write("tasks.csv", &csv);
    env.ok(&["tasks", "add", "tasks.csv", "-c", "Bulk"]);
    let workers: Vec<_> = (0..8)
        .map(|_| env.anamo(&["worker", "-c", "Bulk"]).spawn())
        .collect();
    for w in workers {
        w.wait(Duration::from_secs(120));
    }
    assert_each_ran_once(&env.path("ran.txt"), 500);
    assert_eq!(env.states().get("done"), Some(&500));
}

#[test]
fn slots_run_tasks_in_parallel_and_max_tasks_caps_claims() {
    let env = Env::new();
    // Each script waits until all four have started: it only finishes if they run together.
    for i in 0..4 {
        add(
            &env,
            "P",
            &format!("p{i}"),
            "touch started.$ANAMO_TASK_ID; for i in $(seq 200); do [ $(ls started.* | wc -l) -ge 4 ] && exit 0; sleep 0.05; done; exit 1",
            &["--max-attempts", "1"],
        );
    }
    let out = env.ok(&["worker", "-c", "P", "--slots", "4"]);
    assert!(out.contains("4 done"), "{out}");

    for i in 0..10 {
        add(&env, "M", &format!("m{i}"), "true", &[]);
    }
    let out = env.ok(&["worker", "-c", "M", "--slots", "3", "--max-tasks", "4"]);
    assert!(out.contains(" 4 done"), "{out}");
    assert_eq!(
        env.tasks()
            .iter()
            .filter(|t| t["collection"] == "M" && t["state"] == "done")
            .count(),
        4
    );
}

#[test]
fn stop_claiming_after_finishes_what_runs_and_takes_nothing_new() {
    let env = Env::new();
    for i in 0..6 {
        add(&env, "B", &format!("b{i}"), "sleep 0.6", &[]);
    }
    let out = env.ok(&["worker", "-c", "B", "--stop-claiming-after", "1s"]);
    let s = env.states();
    assert!(s.get("done").copied().unwrap_or(0) >= 1, "{out} {s:?}");
    assert!(s.get("todo").copied().unwrap_or(0) >= 1, "{out} {s:?}");
    assert_eq!(s.get("running"), None, "{s:?}");
}

#[test]
fn a_worker_killed_mid_task_leaves_a_lease_that_another_worker_takes_over() {
    let env = Env::new();
    add(
        &env,
        "K",
        "k1",
        "echo \"$ANAMO_TASK_ID $ANAMO_ATTEMPT\" >> starts.txt; sleep 3; echo $ANAMO_TASK_ID >> done.txt",
        &[],
    );
    let a = env.anamo(&["worker", "-c", "K", "--lease", "1s"]).spawn();
    assert!(wait_for(Duration::from_secs(10), || file_lines(
        &env.path("starts.txt")
    )
    .len()
        == 1));
    a.kill(Duration::from_secs(5));
    assert_eq!(
        env.task("k1")["state"],
        "running",
        "the dead worker still holds it"
    );
    let out = env.ok(&[
        "worker",
        "-c",
        "K",
        "--wait",
        "--max-tasks",
        "1",
        "--lease",
        "5s",
    ]);
    assert!(out.contains("1 done"), "{out}");
    assert_eq!(file_lines(&env.path("starts.txt")), vec!["k1 1", "k1 2"]);
    // The first run died with its worker: only the second one finished.
    assert_eq!(file_lines(&env.path("done.txt")), vec!["k1"]);
    let t = env.task("k1");
    assert_eq!(
        (t["state"].as_str(), t["attempts"].as_u64()),
        (Some("done"), Some(2))
    );
}

#[test]
fn release_stale_hands_back_expired_leases() {
    let env = Env::new();
    add(&env, "R", "again", "echo x >> s.txt; sleep 30", &[]);
    add(
        &env,
        "R",
        "last",
        "echo y >> s.txt; sleep 30",
        &["--max-attempts", "1"],
    );
    let a = env
        .anamo(&["worker", "-c", "R", "--lease", "1s", "--slots", "2"])
        .spawn();
    assert!(wait_for(Duration::from_secs(10), || file_lines(
        &env.path("s.txt")
    )
    .len()
        == 2));
    a.kill(Duration::from_secs(5));
    let out = env.ok(&["tasks", "release-stale"]);
    assert_eq!(
        out.trim(),
        "0 stale task(s) back to todo, 0 failed on their last attempt"
    );
    std::thread::sleep(Duration::from_millis(1300));
    let out = env.ok(&["tasks", "release-stale", "-c", "R"]);
    assert_eq!(
        out.trim(),
        "1 stale task(s) back to todo, 1 failed on their last attempt"
    );
    assert_eq!(env.task("again")["state"], "todo");
    let last = env.task("last");
    assert_eq!(last["state"], "failed");
    let show = env.show("last");
    assert!(
        show["error_tail"]
            .as_str()
            .is_some_and(|t| t.contains("expired on the last attempt")),
        "{show}"
    );
}

#[test]
fn sigterm_releases_running_tasks_after_the_grace_period() {
    let env = Env::new();
    add(
        &env,
        "T",
        "long",
        "touch started; sleep 30; touch finished",
        &[],
    );
    let w = env
        .anamo(&["worker", "-c", "T", "--grace", "1s"])
        .stderr(
            "stopping (SIGTERM): claiming nothing more; 1 running task(s) get 1s, then they are killed and handed back (again to stop now)\n",
        )
        .spawn();
    assert!(wait_for(Duration::from_secs(10), || env
        .path("started")
        .exists()));
    w.signal(libc::SIGTERM);
    let out = w.wait(Duration::from_secs(10)).stdout;
    assert!(out.contains("1 released"), "{out}");
    let t = env.task("long");
    assert_eq!(
        (t["state"].as_str(), t["attempts"].as_u64()),
        (Some("todo"), Some(0))
    );
    assert!(!env.path("finished").exists());
}

#[test]
fn sigterm_lets_a_script_finish_within_the_grace_period() {
    let env = Env::new();
    add(
        &env,
        "T",
        "short",
        "touch started; sleep 1; touch finished",
        &[],
    );
    add(&env, "T", "next", "touch next-ran", &[]);
    let w = env
        .anamo(&["worker", "-c", "T", "--grace", "30s"])
        .stderr(
            "stopping (SIGINT): claiming nothing more; 1 running task(s) get 30s, then they are killed and handed back (again to stop now)\n",
        )
        .spawn();
    assert!(wait_for(Duration::from_secs(10), || env
        .path("started")
        .exists()));
    w.signal(libc::SIGINT);
    w.wait(Duration::from_secs(10));
    assert_eq!(env.task("short")["state"], "done");
    assert!(env.path("finished").exists());
    assert_eq!(
        env.task("next")["state"],
        "todo",
        "nothing new is claimed after a stop"
    );
    assert!(!env.path("next-ran").exists());
}

#[test]
fn a_lost_lease_kills_the_script_and_writes_nothing() {
    let env = Env::new();
    add(
        &env,
        "L",
        "l1",
        "touch started; sleep 5; touch finished",
        &[],
    );
    let w = env
        .anamo(&["worker", "-c", "L", "--lease", "1s", "--max-tasks", "1"])
        .stderr_matches(r"\S+ +WARN [\w:]+: lost the lease on L/l1; killing its script\n")
        .spawn();
    assert!(wait_for(Duration::from_secs(10), || env
        .path("started")
        .exists()));
    // Replacing the task moves its version on: the worker's next heartbeat fails.
    add(&env, "L", "l1", "touch replaced-ran", &["--replace"]);
    let out = w.wait(Duration::from_secs(10)).stdout;
    assert!(out.contains("1 lost"), "{out}");
    assert!(!env.path("finished").exists(), "the script was killed");
    let t = env.task("l1");
    assert_eq!(
        (t["state"].as_str(), t["attempts"].as_u64()),
        (Some("todo"), Some(0))
    );
}

#[test]
fn watch_mode_picks_up_tasks_added_later() {
    let env = Env::new();
    add(&env, "W", "first", "true", &[]);
    let w = env
        .anamo(&["worker", "-c", "W", "--watch", "--max-tasks", "2"])
        .spawn();
    assert!(wait_for(
        Duration::from_secs(10),
        || env.task("first")["state"] == "done"
    ));
    add(&env, "W", "second", "touch second-ran", &[]);
    w.wait(Duration::from_secs(20));
    assert!(env.path("second-ran").exists());
}

#[test]
fn bad_worker_flags_are_refused() {
    let env = Env::new();
    add(&env, "X", "a", "true", &[]);
    env.anamo(&["worker", "-c", "X", "--lease", "soon"])
        .fails(2)
        .stderr_starts_with(
            "error: invalid value 'soon' for '--lease <LEASE>': invalid duration 'soon' (",
        )
        .run();
    env.anamo(&["worker", "-c", "X", "--lease", "500ms"])
        .fails(2)
        .stderr_first_line(
            "error: invalid value '500ms' for '--lease <LEASE>': a lease of 500ms is too short; give at least 1s (heartbeats come every lease/3)",
        )
        .run();
    env.anamo(&["worker", "-c", "X", "--slots", "0"])
        .fails(2)
        .stderr_first_line("error: invalid value '0' for '--slots <SLOTS>': 0 is not in 1..=1024")
        .run();
}

#[test]
fn a_panicking_slot_fails_the_worker_naming_its_task_and_hands_it_back() {
    let env = Env::new();
    add(&env, "Demo", "p1", "sleep 2; touch survived", &[]);
    env.anamo(&["worker", "-c", "Demo"])
        .env("ANAMO_DEBUG_PANIC_ON", "p1")
        .fails(1)
        .stderr_contains("panicked")
        .stderr_ends_with(
            "\nerror: internal error: a worker slot panicked while running Demo/p1 \
             (ANAMO_DEBUG_PANIC_ON=p1); the task was handed back (a bug in anamo; please report \
             it)\n",
        )
        .run();
    let t = env.task("p1");
    assert_eq!(
        (t["state"].as_str(), t["attempts"].as_i64()),
        (Some("todo"), Some(0))
    );
    // Its script went with the slot, rather than running on unowned.
    std::thread::sleep(Duration::from_millis(2500));
    assert!(!env.path("survived").exists(), "the script was killed");
}

#[test]
fn signals_are_acknowledged_and_a_second_one_stops_at_once() {
    let env = Env::new();
    add(
        &env,
        "T",
        "long",
        "touch started; sleep 30; touch finished",
        &[],
    );
    let mut w = env
        .anamo(&["worker", "-c", "T"])
        .stderr(
            "stopping (SIGINT): claiming nothing more; 1 running task(s) get 90s, then they are killed and handed back (again to stop now)\n\
             stopping now (SIGINT): killing running tasks and handing them back\n",
        )
        .spawn();
    assert!(wait_for(Duration::from_secs(10), || env
        .path("started")
        .exists()));
    w.signal(libc::SIGINT);
    std::thread::sleep(Duration::from_millis(500));
    assert!(!w.exited(), "the first Ctrl-C waits for the grace");
    let started = std::time::Instant::now();
    w.signal(libc::SIGINT);
    w.wait(Duration::from_secs(10));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the second one stops at once"
    );
    let t = env.task("long");
    assert_eq!(
        (t["state"].as_str(), t["attempts"].as_u64()),
        (Some("todo"), Some(0))
    );
    assert!(!env.path("finished").exists());
}

#[test]
fn verbosity_shows_claims_and_heartbeats_and_quiet_shows_only_errors() {
    let env = Env::new();
    add(&env, "T", "a", "sleep 1.2", &[]);
    env.anamo(&["-vv", "worker", "-c", "T", "--lease", "1s"])
        .stderr_contains("running T/a (run 1, attempt 1 of 3)")
        .stderr_contains("heartbeat T/a: held for another")
        .stderr_matches(r"(?:\S+ +(?:INFO|DEBUG) [\w:]+: [^\n]*\n)+")
        .run();
    // -q: the notes of add, status and sync are gone; an error still shows.
    for args in [
        vec![
            "-q", "tasks", "add", "-c", "T", "--id", "a", "--script", "true",
        ],
        vec!["-q", "sync"],
        vec!["-q", "status"],
    ] {
        env.ok(&args);
    }
    env.anamo(&["-q", "tasks", "add", "nope.csv"])
        .fails(1)
        .stderr("error: cannot read 'nope.csv': No such file or directory (os error 2)\n")
        .run();
}

#[test]
fn a_killed_worker_takes_everything_its_script_started_with_it() {
    let env = Env::new();
    // A tool the script runs in the background: it would outlive a script killed alone.
    add(
        &env,
        "G",
        "g1",
        "touch started; (sleep 2; touch orphan-ran) & wait",
        &[],
    );
    let w = env.anamo(&["worker", "-c", "G", "--lease", "5s"]).spawn();
    assert!(wait_for(Duration::from_secs(10), || env
        .path("started")
        .exists()));
    w.kill(Duration::from_secs(5));
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        !env.path("orphan-ran").exists(),
        "the script's background job ran on after its worker was killed"
    );
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

/// Kernels before Linux 5.3 have no pidfd_open: there the worker follows a script with
/// threads. The same runs, forced onto that path: output to the log and the stderr tail, a
/// timeout's kill, a background job that keeps the pipes open.
#[test]
fn without_pidfd_the_thread_watch_does_the_same() {
    let env = Env::new().with_vars(vec![("ANAMO_DEBUG_NO_PIDFD", "1".into())]);
    add(
        &env,
        "X",
        "logs",
        "echo out; echo err >&2; (sleep 30 &); exit 3",
        &["--max-attempts", "1"],
    );
    add(
        &env,
        "X",
        "slow",
        "sleep 30",
        &["--timeout", "1", "--max-attempts", "1"],
    );
    let out = env.ok(&["worker", "-c", "X", "--log-dir", "logs"]);
    assert!(out.contains("0 done, 2 failed"), "{out}");
    let mut log: Vec<String> = env
        .read("logs/X/logs/1.log")
        .lines()
        .map(str::to_string)
        .collect();
    log.sort();
    assert_eq!(log, ["err", "out"]);
    let t = env.show("logs");
    assert_eq!(t["exit_code"], 3);
    assert!(
        t["error_tail"].as_str().unwrap().starts_with("err\n"),
        "{t}"
    );
    assert_eq!(env.task("slow")["exit_code"], 124);
}

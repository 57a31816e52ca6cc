//! `anamo worker` as a process: scripts, retries, timeouts, parallel workers, signals, leases.

mod common;

use std::time::Duration;

use common::{Env, assert_each_ran_once, file_lines, send_signal, wait_child, wait_for};

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
    let out = env.ok(&["worker", "-c", "X"]);
    assert!(out.contains("0 done, 2 failed, 2 retried"), "{out}");
    let t = env.task("boom");
    assert_eq!(t["state"], "failed");
    assert_eq!(t["attempts"], 3);
    assert_eq!(t["exit_code"], 3);
    let show: serde_json::Value =
        serde_json::from_str(&env.ok(&["tasks", "show", "boom", "--format", "json"])).unwrap();
    let tail = show[0]["error_tail"].as_str().unwrap();
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
    let mut workers: Vec<_> = (0..8)
        .map(|_| env.spawn(&["worker", "-c", "Bulk"]))
        .collect();
    for w in &mut workers {
        assert!(wait_child(w, Duration::from_secs(120)).success());
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
    let mut a = env.spawn(&["worker", "-c", "K", "--lease", "1s"]);
    assert!(wait_for(Duration::from_secs(10), || file_lines(
        &env.path("starts.txt")
    )
    .len()
        == 1));
    send_signal(&a, libc::SIGKILL);
    wait_child(&mut a, Duration::from_secs(5));
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
    let mut a = env.spawn(&["worker", "-c", "R", "--lease", "1s", "--slots", "2"]);
    assert!(wait_for(Duration::from_secs(10), || file_lines(
        &env.path("s.txt")
    )
    .len()
        == 2));
    send_signal(&a, libc::SIGKILL);
    wait_child(&mut a, Duration::from_secs(5));
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
    let show = env.ok(&["tasks", "show", "last", "--format", "json"]);
    assert!(show.contains("expired on the last attempt"), "{show}");
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
    let mut w = env.spawn(&["worker", "-c", "T", "--grace", "1s"]);
    assert!(wait_for(Duration::from_secs(10), || env
        .path("started")
        .exists()));
    send_signal(&w, libc::SIGTERM);
    let status = wait_child(&mut w, Duration::from_secs(10));
    let mut out = String::new();
    std::io::Read::read_to_string(w.stdout.as_mut().unwrap(), &mut out).unwrap();
    assert!(status.success(), "{out}");
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
    let mut w = env.spawn(&["worker", "-c", "T", "--grace", "30s"]);
    assert!(wait_for(Duration::from_secs(10), || env
        .path("started")
        .exists()));
    send_signal(&w, libc::SIGINT);
    assert!(wait_child(&mut w, Duration::from_secs(10)).success());
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
    let mut w = env.spawn(&["worker", "-c", "L", "--lease", "1s", "--max-tasks", "1"]);
    assert!(wait_for(Duration::from_secs(10), || env
        .path("started")
        .exists()));
    // Replacing the task moves its version on: the worker's next heartbeat fails.
    add(&env, "L", "l1", "touch replaced-ran", &["--replace"]);
    assert!(wait_child(&mut w, Duration::from_secs(10)).success());
    let mut out = String::new();
    std::io::Read::read_to_string(w.stdout.as_mut().unwrap(), &mut out).unwrap();
    assert!(out.contains("1 lost"), "{out}");
    assert!(!env.path("finished").exists(), "the script was killed");
    let t = env.task("l1");
    assert_eq!(
        (t["state"].as_str(), t["attempts"].as_u64()),
        (Some("todo"), Some(0))
    );
}

#[test]
fn wait_mode_picks_up_tasks_added_later() {
    let env = Env::new();
    add(&env, "W", "first", "true", &[]);
    let mut w = env.spawn(&["worker", "-c", "W", "--wait", "--max-tasks", "2"]);
    assert!(wait_for(
        Duration::from_secs(10),
        || env.task("first")["state"] == "done"
    ));
    add(&env, "W", "second", "touch second-ran", &[]);
    assert!(wait_child(&mut w, Duration::from_secs(20)).success());
    assert!(env.path("second-ran").exists());
}

#[test]
fn bad_worker_flags_are_refused() {
    let env = Env::new();
    add(&env, "X", "a", "true", &[]);
    let err = env.fails(&["worker", "-c", "X", "--lease", "soon"]);
    assert!(err.contains("invalid duration 'soon'"), "{err}");
    let err = env.fails(&["worker", "-c", "X", "--lease", "500ms"]);
    assert!(err.contains("--lease must be at least 1s"), "{err}");
    let err = env.fails(&["worker", "-c", "X", "--slots", "0"]);
    assert!(err.contains("--slots"), "{err}");
}

#[test]
fn a_panicking_slot_fails_the_worker_naming_its_task_and_hands_it_back() {
    let env = Env::new();
    add(&env, "Demo", "p1", "sleep 2; touch survived", &[]);
    let out = env
        .cmd()
        .args(["worker", "-c", "Demo"])
        .env("ANAMO_DEBUG_PANIC_ON", "p1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let last = err.lines().last().unwrap_or_default();
    assert_eq!(
        last,
        "error: a worker slot panicked while running Demo/p1 (ANAMO_DEBUG_PANIC_ON=p1); the task was handed back",
        "{err}"
    );
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
    let mut w = env.spawn(&["worker", "-c", "T"]);
    assert!(wait_for(Duration::from_secs(10), || env
        .path("started")
        .exists()));
    send_signal(&w, libc::SIGINT);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        w.try_wait().unwrap().is_none(),
        "the first Ctrl-C waits for the grace"
    );
    let started = std::time::Instant::now();
    send_signal(&w, libc::SIGINT);
    let status = wait_child(&mut w, Duration::from_secs(10));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the second one stops at once"
    );
    let mut err = String::new();
    std::io::Read::read_to_string(w.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(status.success(), "{err}");
    assert!(
        err.contains("stopping (SIGINT): claiming nothing more; 1 running task(s) get 90s, then they are killed and handed back (again to stop now)"),
        "{err}"
    );
    assert!(
        err.contains("stopping now (SIGINT): killing running tasks and handing them back"),
        "{err}"
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
    let out = env
        .cmd()
        .args(["-vv", "worker", "-c", "T", "--lease", "1s"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("running T/a (attempt 1 of 3)"), "{err}");
    assert!(err.contains("heartbeat T/a: held for another"), "{err}");
    // -q: the notes of add, status and sync are gone; an error still shows.
    for args in [
        vec![
            "-q", "tasks", "add", "-c", "T", "--id", "a", "--script", "true",
        ],
        vec!["-q", "sync"],
        vec!["-q", "status"],
    ] {
        let out = env.cmd().args(&args).output().unwrap();
        assert!(out.status.success());
        assert_eq!(String::from_utf8_lossy(&out.stderr), "", "{args:?}");
    }
    let out = env
        .cmd()
        .args(["-q", "tasks", "add", "nope.csv"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("error: cannot read 'nope.csv'"));
}

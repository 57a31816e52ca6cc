//! The worker on EC2, against a small instance-metadata stand-in served by the test on
//! 127.0.0.1: instance id as owner, a Spot notice hands tasks back, and a silent metadata
//! service costs under a second.

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::harness::{Env, WARN, file_lines, wait_for};

const INSTANCE: &str = "i-0123456789abcdef0";

/// Serves IMDSv2: the instance id, and the Spot notice once `notice` is set.
fn metadata_stand_in(notice: Arc<AtomicBool>) -> String {
    crate::harness::imds::stand_in(move |path| match path {
        "/latest/meta-data/instance-id" => Some(INSTANCE.to_string()),
        "/latest/meta-data/spot/instance-action" if notice.load(Ordering::SeqCst) => {
            Some(r#"{"action":"terminate","time":"2026-11-25T20:00:00Z"}"#.to_string())
        }
        _ => None,
    })
}

#[test]
fn on_ec2_the_owner_is_the_instance_id() {
    let url = metadata_stand_in(Arc::new(AtomicBool::new(false)));
    let env = Env::new().with_vars(vec![("ANAMO_IMDS_ENDPOINT", url)]);
    env.ok(&["tasks", "add", "-c", "X", "--id", "a", "--script", "true"]);
    let out = env.ok(&["worker", "-c", "X"]);
    assert!(
        out.starts_with(&format!("worker {INSTANCE} on X: 1 done")),
        "{out}"
    );
    assert_eq!(env.task("a")["owner"], INSTANCE);
}

#[test]
fn inside_aws_batch_the_owner_is_the_job_id() {
    let env = Env::new().with_vars(vec![("AWS_BATCH_JOB_ID", "job-42".to_string())]);
    env.ok(&["tasks", "add", "-c", "X", "--id", "a", "--script", "true"]);
    env.ok(&["worker", "-c", "X"]);
    assert_eq!(env.task("a")["owner"], "job-42");
}

#[test]
fn a_spot_notice_hands_running_tasks_back() {
    let notice = Arc::new(AtomicBool::new(false));
    let url = metadata_stand_in(Arc::clone(&notice));
    let env = Env::new().with_vars(vec![
        ("ANAMO_IMDS_ENDPOINT", url),
        ("ANAMO_SPOT_POLL", "100ms".to_string()),
    ]);
    env.ok(&[
        "tasks",
        "add",
        "-c",
        "S",
        "--id",
        "long",
        "--script",
        "touch started; sleep 60",
    ]);
    env.ok(&[
        "tasks",
        "add",
        "-c",
        "S",
        "--id",
        "next",
        "--script",
        "touch next-ran",
    ]);
    let w = env
        .anamo(&["worker", "-c", "S", "--grace", "1s"])
        .stderr_matches(WARN)
        .stderr_contains(r#"Spot interruption notice ({"action":"terminate","time":"2026-11-25T20:00:00Z"}): stopping"#)
        .spawn();
    assert!(wait_for(Duration::from_secs(10), || env
        .path("started")
        .exists()));
    notice.store(true, Ordering::SeqCst);
    let noticed = Instant::now();
    let out = w.wait(Duration::from_secs(30)).stdout;
    assert!(
        noticed.elapsed() < Duration::from_secs(10),
        "took {:?}",
        noticed.elapsed()
    );
    assert!(out.contains("1 released"), "{out}");
    let t = env.task("long");
    assert_eq!(
        (t["state"].as_str(), t["attempts"].as_u64()),
        (Some("todo"), Some(0))
    );
    assert!(
        !env.path("next-ran").exists(),
        "nothing new is claimed after the notice"
    );
}

#[test]
fn a_silent_metadata_service_costs_under_a_second() {
    // Accepts connections (the kernel does) but never answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let env = Env::new().with_vars(vec![("ANAMO_IMDS_ENDPOINT", url)]);
    env.ok(&["tasks", "add", "-c", "X", "--id", "a", "--script", "true"]);
    // Timed on one task that does nothing: finding out who it is, a claim, a run, a finish.
    let started = Instant::now();
    env.ok(&["worker", "-c", "X"]);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "took {:?}",
        started.elapsed()
    );
    let owner = env.task("a")["owner"].as_str().unwrap().to_string();
    assert!(
        owner.ends_with(char::is_numeric) && owner.contains(':'),
        "hostname:pid, not {owner}"
    );
    drop(silent);
}

#[test]
fn shutdown_on_exit_powers_off_after_work_and_after_a_failed_start() {
    let env = Env::new().with_vars(vec![(
        "ANAMO_SHUTDOWN_COMMAND",
        "echo off >> powered-off.txt".to_string(),
    )]);
    env.ok(&["tasks", "add", "-c", "X", "--id", "a", "--script", "true"]);
    let off = "shutting down: echo off >> powered-off.txt\n";
    let out = env
        .anamo(&["worker", "-c", "X", "--shutdown-on-exit"])
        .stderr(off)
        .run();
    assert!(out.contains("1 done"), "{out}");
    assert_eq!(file_lines(&env.path("powered-off.txt")), ["off"]);
    // A store it cannot open: the error is shown first, and the machine still goes off.
    env.anamo(&[
        "--store",
        "missing.db",
        "worker",
        "-c",
        "X",
        "--shutdown-on-exit",
    ])
    .fails(1)
    .stderr_starts_with("error: ")
    .stderr_contains("does not exist")
    .stderr_matches(&format!("[^\n]*\n{}", regex::escape(off)))
    .run();
    assert_eq!(file_lines(&env.path("powered-off.txt")), ["off", "off"]);
    // Without the flag nothing is powered off.
    env.ok(&["worker", "-c", "X"]);
    assert_eq!(file_lines(&env.path("powered-off.txt")).len(), 2);
}

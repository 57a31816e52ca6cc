//! How many instances `anamo launch` starts, on the moto emulator: no more than the claimable
//! work needs, less the step's instances already up; tasks left by dead workers count as work,
//! waiting samples only for workers that wait; `--min-count` checked against the cap.

use std::time::Duration;

use anamo::store::TaskStore;
use anamo::store::dynamo::DynamoStore;

use crate::harness::cloud::{Cloud, STEP, TABLE};

#[test]
fn launch_counts_the_step_s_running_instances_and_checks_its_inputs() {
    let Some(cloud) = Cloud::start(8) else {
        return;
    };
    let launch = |extra: &[&str]| {
        let mut args = vec!["launch", "--step", STEP];
        args.extend_from_slice(extra);
        cloud.env.anamo(&args)
    };
    let out = launch(&["--count", "40", "--slots", "2"])
        .stderr(
            "capped at 4 instance(s): 8 claimable task(s) in Alignment at 2 slot(s) per instance\n",
        )
        .run();
    assert!(out.contains("started 4 of 4 instance(s)"), "{out}");
    // Run twice: the four already up cover the eight tasks.
    let out = launch(&["--count", "40", "--slots", "2"])
        .stderr(
            "capped at 0 instance(s): 8 claimable task(s) in Alignment at 2 slot(s) per instance, less 4 instance(s) of the step already pending or running\n",
        )
        .run();
    assert!(
        out.contains("nothing to launch: the 4 instance(s) of step Alignment already pending or running cover its 8 claimable task(s)"),
        "{out}"
    );
    assert_eq!(cloud.instances().len(), 4);

    // A minimum above the count is refused; one above the cap is lowered, and said so.
    launch(&["--count", "1", "--min-count", "3"])
        .fails(2)
        .stderr("error: --min-count 3 is above --count 1; the minimum cannot exceed the count\n")
        .run();
    for i in cloud.instances() {
        cloud.terminate(i.instance_id().unwrap());
    }
    let out = launch(&["--count", "10", "--min-count", "10", "--slots", "2"])
        .stderr(
            "capped at 4 instance(s): 8 claimable task(s) in Alignment at 2 slot(s) per instance; --min-count 10 lowered to 4\n",
        )
        .run();
    assert!(out.contains("of 4 instance(s)"), "{out}");

    // A dry run from a template that does not exist fails as the launch would.
    for i in cloud.instances() {
        cloud.terminate(i.instance_id().unwrap());
    }
    let out = launch(&["--count", "1", "--dry-run", "--template", "Nope"])
        .fails(1)
        .stderr_one_line_with("error: no launch template named 'Nope' in us-east-1 for step Alignment; create one named after the step")
        .run();
    assert!(
        !out.contains("dry run of launch"),
        "nothing shown for a launch that cannot be: {out}"
    );

    // Without USER or LOGNAME the audit trail names the uid's user, not "unknown".
    cloud
        .env
        .anamo(&["launch", "--step", STEP, "--count", "1", "--dry-run"])
        .env_remove("USER")
        .env_remove("LOGNAME")
        .run();
    let me = std::process::Command::new("id")
        .arg("-un")
        .output()
        .unwrap();
    let me = String::from_utf8_lossy(&me.stdout).trim().to_string();
    let rows =
        cloud.query(&["SELECT requested_by FROM launches ORDER BY requested_at DESC LIMIT 1"]);
    let by = rows[0]["requested_by"].as_str().unwrap();
    assert!(by.starts_with(&format!("{me}@")), "{by}");
}

#[test]
fn tasks_left_by_dead_workers_count_as_work_for_a_launch() {
    let Some(cloud) = Cloud::start(2) else {
        return;
    };
    // Both tasks were claimed by workers that died (a reclaimed fleet): their leases ran out.
    let store = DynamoStore::open(TABLE, &cloud.moto.aws()).unwrap();
    for w in ["i-dead1", "i-dead2"] {
        store
            .claim(STEP, w, Duration::from_millis(1))
            .unwrap()
            .expect("claims");
    }
    std::thread::sleep(Duration::from_millis(20));
    let out = cloud
        .env
        .anamo(&["launch", "--step", STEP, "--count", "5"])
        .stderr(
            "capped at 2 instance(s): 2 claimable task(s) in Alignment at 1 slot(s) per instance\n",
        )
        .run();
    assert!(out.contains("started 2 of 2 instance(s)"), "{out}");
}

#[test]
fn waiting_samples_are_work_only_for_a_launch_whose_workers_wait() {
    let Some(cloud) = Cloud::start(0) else {
        return;
    };
    let env = &cloud.env;
    env.write("s.txt", "S1\nS2\nS3\n");
    env.ok(&[
        "tasks",
        "add",
        "-c",
        "Up",
        "--samples",
        "s.txt",
        "--script",
        "true",
    ]);
    env.ok(&[
        "tasks",
        "add",
        "-c",
        STEP,
        "--samples",
        "s.txt",
        "--script",
        "true",
        "--after",
        "Up",
    ]);
    let out = env
        .anamo(&["launch", "--step", STEP, "--count", "5"])
        .stderr(
            "capped at 0 instance(s): 0 claimable task(s) in Alignment at 1 slot(s) per instance\n",
        )
        .run();
    assert!(
        out.starts_with(
            "nothing to launch: step Alignment has no claimable tasks; 3 sample(s) have tasks \
             waiting for an upstream step: launch again as they are released, or with --wait"
        ),
        "{out}"
    );
    assert!(cloud.instances().is_empty());
    // S3's upstream task removed undone: its sample is blocked, not work for a waiting worker.
    env.anamo(&["tasks", "delete", "-c", "Up", "--id", "S3"])
        .stderr_contains("1 task(s) downstream still wait for Up")
        .run();
    let out = env
        .anamo(&["launch", "--step", STEP, "--count", "5", "--wait"])
        .stderr(
            "left out 1 waiting sample(s) of Alignment whose upstream failed or was removed: \
             nothing runs them until a person acts (`anamo query blocked-samples` after a sync)\n\
             capped at 2 instance(s): 0 claimable task(s) and 2 sample(s) waiting for an \
             upstream step in Alignment at 1 slot(s) per instance\n",
        )
        .run();
    assert!(out.contains("started 2 of 2 instance(s)"), "{out}");
    let instances = cloud.instances();
    assert_eq!(instances.len(), 2);
    let script = cloud.user_data(instances[0].instance_id().unwrap());
    assert!(
        script.contains("--shutdown-on-exit --wait >>"),
        "the workers wait for the samples: {script}"
    );
}

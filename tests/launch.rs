//! `anamo launch` on the moto emulator: what it starts (tags, metadata options, the worker's
//! user data, Spot and instance type, a user-data template, results and idle timeout) and what
//! it records, its dry run, and the launches it refuses (a missing template, a store the
//! cluster cannot reach).

use std::collections::BTreeSet;

use crate::harness::Env;
use crate::harness::cloud::{Cloud, STEP, launch_id, tag};

#[test]
fn launch_is_capped_by_work_left_tagged_and_boots_the_worker() {
    let Some(cloud) = Cloud::start(5) else {
        return;
    };
    let stdout = cloud
        .env
        .anamo(&["launch", "--step", STEP, "--count", "10", "--slots", "2"])
        .stderr(
            "capped at 3 instance(s): 5 claimable task(s) in Alignment at 2 slot(s) per instance\n",
        )
        .run();
    assert!(
        stdout.contains("started 3 of 3 instance(s) for step Alignment"),
        "{stdout}"
    );
    let id = launch_id(&stdout);

    let instances = cloud.instances();
    assert_eq!(instances.len(), 3);
    for i in &instances {
        assert_eq!(tag(i, "anamo:step"), Some(STEP));
        assert_eq!(tag(i, "anamo:launch-id"), Some(id.as_str()));
        assert_eq!(tag(i, "Name"), Some("anamo-Alignment"));
        assert_eq!(i.instance_type().map(|t| t.as_str()), Some("t3.micro"));
        assert_eq!(i.instance_lifecycle(), None, "on-demand by default");
        // The worker reads its step from its own tags through metadata, IMDSv2 only.
        let meta = i.metadata_options().expect("metadata options");
        assert_eq!(
            meta.instance_metadata_tags().map(|t| t.as_str()),
            Some("enabled")
        );
        assert_eq!(meta.http_tokens().map(|t| t.as_str()), Some("required"));
    }
    let script = cloud.user_data(instances[0].instance_id().unwrap());
    assert!(script.starts_with("#!/bin/bash\n"), "{script}");
    assert!(
        script.contains(
            "anamo worker --collection Alignment --store dynamodb://anamo-tasks --slots 2 --shutdown-on-exit"
        ),
        "{script}"
    );
    assert!(script.contains(&format!("launch {id}")), "{script}");
    assert!(script.contains("export AWS_REGION=us-east-1"), "{script}");

    let launches = cloud.query(&["SELECT * FROM launches"]);
    assert_eq!(launches.len(), 1);
    let l = &launches[0];
    assert_eq!(l["launch_id"], id.as_str());
    assert_eq!(
        (
            l["asked"].as_i64(),
            l["requested"].as_i64(),
            l["started"].as_i64()
        ),
        (Some(10), Some(3), Some(3))
    );
    assert_eq!(l["template"], STEP);
    assert_eq!(l["dry_run"], 0);
    assert!(l["error"].is_null());
    assert_eq!(l["region"], "us-east-1");
    let recorded: Vec<String> = serde_json::from_str(l["instance_ids"].as_str().unwrap()).unwrap();
    let launched: BTreeSet<String> = instances
        .iter()
        .map(|i| i.instance_id().unwrap().to_string())
        .collect();
    assert_eq!(recorded.into_iter().collect::<BTreeSet<_>>(), launched);
    let rows = cloud.query(&["SELECT instance_id, step, launch_id, lifecycle FROM instances"]);
    assert_eq!(rows.len(), 3);
    assert!(
        rows.iter()
            .all(|r| r["step"] == STEP && r["launch_id"] == id.as_str())
    );

    // --min-count lets EC2 start fewer (the emulator starts the minimum).
    let out = cloud
        .env
        .ok(&["launch", "--step", STEP, "--count", "2", "--min-count", "1"]);
    assert!(out.contains("started 1 of 2 instance(s)"), "{out}");
}

#[test]
fn results_and_idle_timeout_reach_the_workers_and_a_bad_prefix_stops_the_launch() {
    let Some(cloud) = Cloud::start(2) else {
        return;
    };
    let out = cloud.env.ok(&[
        "launch",
        "--step",
        STEP,
        "--count",
        "1",
        "--wait",
        "--idle-timeout",
        "2h",
        "--results",
        "s3://cohort-results/{collection}",
    ]);
    assert!(out.contains("started 1 of 1"), "{out}");
    let script = cloud.user_data(cloud.instances()[0].instance_id().unwrap());
    assert!(
        script.contains(
            "--shutdown-on-exit --wait --idle-timeout=2h --results=s3://cohort-results/Alignment/ \
             >>\"${root:-}/var/log/anamo-worker.log\""
        ),
        "{script}"
    );
    // A prefix that names what a step cannot know fails the launch, not every instance.
    cloud
        .env
        .anamo(&[
            "launch",
            "--step",
            STEP,
            "--count",
            "1",
            "--results",
            "s3://b/{sample}/",
        ])
        .fails(1)
        .stderr_one_line_with("--results: unknown placeholder {sample}; known: {collection}")
        .run();
    cloud
        .env
        .anamo(&[
            "launch",
            "--step",
            STEP,
            "--count",
            "1",
            "--idle-timeout",
            "1h",
        ])
        .fails(2)
        .stderr_starts_with(
            "error: the following required arguments were not provided:\n  --wait\n",
        )
        .run();
    assert_eq!(cloud.instances().len(), 1, "nothing more started");
}

#[test]
fn spot_instance_type_and_a_user_data_template() {
    let Some(cloud) = Cloud::start(4) else {
        return;
    };
    cloud.env.write(
        "boot.sh",
        "#!/bin/sh\necho {{launch_id}} > /tmp/launch\nanamo worker -c {{step}} --store {{store}} {{worker_args}}\n",
    );
    let out = cloud.env.ok(&[
        "launch",
        "--step",
        STEP,
        "--count",
        "1",
        "--spot",
        "--instance-type",
        "m5.large",
        "--user-data",
        "boot.sh",
        "--worker-arg=--log-dir",
        "--worker-arg",
        "/var/log/anamo tasks",
    ]);
    assert!(out.contains("started 1 of 1"), "{out}");
    let instances = cloud.instances();
    assert_eq!(instances.len(), 1);
    let i = &instances[0];
    assert_eq!(i.instance_lifecycle().map(|l| l.as_str()), Some("spot"));
    assert_eq!(i.instance_type().map(|t| t.as_str()), Some("m5.large"));
    let script = cloud.user_data(i.instance_id().unwrap());
    assert_eq!(
        script,
        format!(
            "#!/bin/sh\necho {} > /tmp/launch\nanamo worker -c Alignment --store dynamodb://anamo-tasks --log-dir '/var/log/anamo tasks'\n",
            launch_id(&out)
        )
    );
    let l = &cloud.query(&["SELECT spot, instance_type FROM launches"])[0];
    assert_eq!(
        (l["spot"].as_i64(), l["instance_type"].as_str()),
        (Some(1), Some("m5.large"))
    );

    // A template with an unknown placeholder: one line naming it, and nothing recorded.
    cloud.env.write("bad.sh", "anamo worker -c {{stpe}}\n");
    cloud
        .env
        .anamo(&[
            "launch",
            "--step",
            STEP,
            "--count",
            "1",
            "--user-data",
            "bad.sh",
        ])
        .fails(1)
        .stderr_one_line_with("bad.sh: unknown placeholder {{stpe}}; known: {{step}}, {{store}},")
        .run();
    assert_eq!(
        cloud.query(&["SELECT count(*) AS n FROM launches"])[0]["n"],
        1
    );
    assert_eq!(cloud.instances().len(), 1);
}

#[test]
fn dry_run_sends_nothing_and_a_refused_launch_is_recorded() {
    let Some(cloud) = Cloud::start(2) else {
        return;
    };
    let out = cloud.env.ok(&[
        "launch",
        "--step",
        STEP,
        "--count",
        "2",
        "--dry-run",
        "--spot",
    ]);
    assert!(out.contains("dry run of launch"), "{out}");
    assert!(
        out.contains("2 instance(s) of step Alignment from template 'Alignment', Spot"),
        "{out}"
    );
    assert!(
        out.contains("tags: anamo:step=Alignment, anamo:launch-id="),
        "{out}"
    );
    assert!(out.contains("anamo worker --collection Alignment"), "{out}");
    assert!(
        out.contains("EC2 accepted the dry run; nothing was started"),
        "{out}"
    );
    assert!(cloud.instances().is_empty());

    cloud
        .env
        .anamo(&[
            "launch",
            "--step",
            STEP,
            "--count",
            "1",
            "--template",
            "NoSuchTemplate",
        ])
        .fails(1)
        .stderr_one_line_with(
            "no launch template named 'NoSuchTemplate' in us-east-1 for step Alignment",
        )
        .stderr_contains("recorded as launch")
        .run();
    assert!(cloud.instances().is_empty());

    let rows = cloud.query(&["SELECT dry_run, started, error FROM launches ORDER BY requested_at"]);
    assert_eq!(rows.len(), 2);
    assert_eq!(
        (rows[0]["dry_run"].as_i64(), rows[0]["started"].as_i64()),
        (Some(1), Some(0))
    );
    assert!(rows[0]["error"].is_null());
    assert_eq!(rows[1]["started"], 0);
    assert!(
        rows[1]["error"]
            .as_str()
            .unwrap()
            .contains("NoSuchTemplate"),
        "{}",
        rows[1]
    );
    let history = cloud.query(&["launch-history"]);
    assert_eq!(history.len(), 2);
    assert_eq!(
        history[0]["error"].as_str().map(|e| e.is_empty()),
        Some(false)
    );
    assert_eq!(history[1]["dry_run"], "yes");

    // No work left: nothing is sent, and the launch is still on record.
    cloud.env.ok(&["tasks", "delete", "-c", STEP, "--all"]);
    let out = cloud
        .env
        .anamo(&["launch", "--step", STEP, "--count", "4"])
        .stderr(
            "capped at 0 instance(s): 0 claimable task(s) in Alignment at 1 slot(s) per instance\n",
        )
        .run();
    assert!(
        out.contains("nothing to launch: step Alignment has no claimable tasks"),
        "{out}"
    );
    assert!(cloud.instances().is_empty());
    assert_eq!(cloud.query(&["launch-history"]).len(), 3);
}

#[test]
fn launch_refuses_a_store_the_cluster_cannot_reach() {
    let env = Env::new();
    env.ok(&["tasks", "add", "-c", STEP, "--id", "a", "--script", "true"]);
    env.anamo(&["launch", "--step", STEP, "--count", "1"])
        .fails(1)
        .stderr_one_line_with("pass --store dynamodb://TABLE")
        .run();
    assert!(!env.path("anamo.db").exists(), "nothing written");
}

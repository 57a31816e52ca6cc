//! `anamo launch` and `anamo sync --instances` on the moto emulator: caps, tags, user data,
//! dry runs, failed launches, state transitions and the audit reports.

use std::collections::BTreeSet;
use std::time::Duration;

use anamo::model::Outcome;
use anamo::store::TaskStore;
use anamo::store::dynamo::DynamoStore;
use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{InstanceType, RequestLaunchTemplateData};
use serde_json::Value;

use crate::harness::moto::Moto;
use crate::harness::{Env, FRESH};

const TABLE: &str = "anamo-tasks";
const STEP: &str = "Alignment";

struct Cloud {
    moto: Moto,
    env: Env,
    rt: tokio::runtime::Runtime,
    ec2: Client,
}

impl Cloud {
    /// An emulator with the task table, `tasks` todo tasks in STEP and a launch template named
    /// after it; `None` outside CI without moto.
    fn start(tasks: usize) -> Option<Cloud> {
        let moto = Moto::start()?;
        let mut vars = moto.env();
        vars.push(("ANAMO_STORE", format!("dynamodb://{TABLE}")));
        let env = Env::new().with_vars(vars);
        env.ok(&["store", "init"]);
        if tasks > 0 {
            let rows: String = (0..tasks).map(|i| format!("t{i},S{i},true\n")).collect();
            env.write("t.csv", &format!("task_id,sample,script\n{rows}"));
            env.ok(&["tasks", "add", "t.csv", "-c", STEP]);
        }
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let config = rt.block_on(anamo::aws::config(&moto.aws()));
        let ec2 = Client::new(&config);
        rt.block_on(
            ec2.create_launch_template()
                .launch_template_name(STEP)
                .launch_template_data(
                    RequestLaunchTemplateData::builder()
                        .image_id("ami-12c6146b")
                        .instance_type(InstanceType::T3Micro)
                        .build(),
                )
                .send(),
        )
        .expect("create launch template");
        Some(Cloud { moto, env, rt, ec2 })
    }

    /// Every instance EC2 knows: (id, state, tags, type, lifecycle).
    fn instances(&self) -> Vec<aws_sdk_ec2::types::Instance> {
        let out = self
            .rt
            .block_on(self.ec2.describe_instances().send())
            .expect("describe instances");
        out.reservations()
            .iter()
            .flat_map(|r| r.instances().to_vec())
            .collect()
    }

    fn user_data(&self, id: &str) -> String {
        crate::harness::moto::user_data(&self.rt, &self.ec2, id)
    }

    fn terminate(&self, id: &str) {
        self.rt
            .block_on(self.ec2.terminate_instances().instance_ids(id).send())
            .expect("terminate");
    }

    fn query(&self, args: &[&str]) -> Vec<Value> {
        let mut all = vec!["query"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--format", "json"]);
        serde_json::from_str(&self.env.ok(&all)).expect("json rows")
    }
}

fn tag<'a>(i: &'a aws_sdk_ec2::types::Instance, key: &str) -> Option<&'a str> {
    i.tags()
        .iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

/// The launch id in "launch ID: started ..." output.
fn launch_id(out: &str) -> String {
    out.split_whitespace()
        .nth(1)
        .map(|s| s.trim_end_matches(':').to_string())
        .expect("launch id")
}

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

#[test]
fn sync_records_instance_transitions_and_the_audits_answer() {
    let Some(cloud) = Cloud::start(6) else {
        return;
    };
    let out = cloud.env.ok(&["launch", "--step", STEP, "--count", "3"]);
    assert!(out.contains("started 3 of 3"), "{out}");
    let ids: Vec<String> = cloud
        .instances()
        .iter()
        .map(|i| i.instance_id().unwrap().to_string())
        .collect();
    let (a, b, c) = (&ids[0], &ids[1], &ids[2]);
    // An instance anamo did not launch: left out unless --all-instances.
    cloud
        .rt
        .block_on(
            cloud
                .ec2
                .run_instances()
                .image_id("ami-12c6146b")
                .min_count(1)
                .max_count(1)
                .send(),
        )
        .unwrap();

    // Instance a finished a task; b holds one when it dies; c never works.
    let store = DynamoStore::open(TABLE, &cloud.moto.aws()).unwrap();
    let lease = Duration::from_secs(600);
    let done = store.claim(STEP, a, lease).unwrap().expect("a claims");
    let outcome = Outcome::success(anamo::clock::now_ms());
    store.finish(&done, &outcome).unwrap();
    let held = store.claim(STEP, b, lease).unwrap().expect("b claims");

    let out = cloud.env.ok(&["sync", "--instances"]);
    assert!(
        out.contains("synced instances from EC2 us-east-1: 3 seen, 0 new, 3 changed state, 0 gone"),
        "{out}"
    );
    let out = cloud.env.ok(&["sync", "--instances", "--no-tasks"]);
    assert!(
        out.contains("3 seen, 0 new, 0 changed state, 0 gone"),
        "{out}"
    );

    cloud.terminate(b);
    let out = cloud.env.ok(&["sync", "--instances"]);
    assert!(
        out.contains("3 seen, 0 new, 1 changed state, 0 gone"),
        "{out}"
    );
    let events = cloud.query(&[
        "SELECT from_state, to_state, reason FROM instance_events WHERE instance_id = :id ORDER BY id",
        "--param",
        &format!("id={b}"),
    ]);
    let path: Vec<(Value, Value)> = events
        .iter()
        .map(|e| (e["from_state"].clone(), e["to_state"].clone()))
        .collect();
    assert_eq!(
        path,
        vec![
            (Value::Null, "pending".into()),
            ("pending".into(), "running".into()),
            ("running".into(), "terminated".into()),
        ]
    );
    let row = &cloud.query(&[
        "SELECT state, terminated_at FROM instances WHERE instance_id = :id",
        "--param",
        &format!("id={b}"),
    ])[0];
    assert_eq!(row["state"], "terminated");
    assert!(row["terminated_at"].as_i64().is_some(), "{row}");

    let died = cloud.query(&["died-holding-tasks"]);
    assert_eq!(died.len(), 1, "{died:?}");
    assert_eq!(died[0]["instance_id"], b.as_str());
    assert_eq!(died[0]["task_id"], held.task.task_id.as_str());

    // Without work: ended, or up longer than the threshold, and holding no task. c is idle
    // but young; b died holding a task (that is died-holding-tasks); a worked.
    let idle = |extra: &[&str]| -> BTreeSet<String> {
        let mut args = vec!["instances-without-work"];
        args.extend_from_slice(extra);
        cloud
            .query(&args)
            .iter()
            .map(|r| r["instance_id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(idle(&[]), BTreeSet::new());
    assert_eq!(idle(&["--param", "hours=0"]), BTreeSet::from([c.clone()]));
    // A busy instance is never listed, however long it has run.
    let busy = store.claim(STEP, c, lease).unwrap().expect("c claims");
    cloud.env.ok(&["sync"]);
    assert_eq!(idle(&["--param", "hours=0"]), BTreeSet::new());
    store.release(&busy).unwrap();
    cloud.env.ok(&["sync"]);

    let per = cloud.query(&["tasks-per-instance", "--param", "step=Alignment"]);
    assert_eq!(per.len(), 3);
    let of = |id: &str| per.iter().find(|r| r["instance_id"] == id).unwrap().clone();
    assert_eq!(
        (of(a)["done"].as_i64(), of(a)["running"].as_i64()),
        (Some(1), Some(0))
    );
    assert_eq!(
        (of(b)["done"].as_i64(), of(b)["running"].as_i64()),
        (Some(0), Some(1))
    );
    assert_eq!(of(c)["done"], 0);

    let hours = cloud.query(&["instance-hours-by-step"]);
    assert_eq!(hours.len(), 1, "{hours:?}");
    assert_eq!(
        (
            hours[0]["step"].as_str(),
            hours[0]["instances"].as_i64(),
            hours[0]["tasks_done"].as_i64()
        ),
        (Some(STEP), Some(3), Some(1))
    );

    let status = cloud
        .env
        .anamo(&["status", "--format", "json"])
        .stderr_matches(FRESH)
        .run();
    let rows: Vec<Value> = serde_json::from_str(&status).unwrap();
    let step = rows.iter().find(|r| r["step"] == STEP).unwrap();
    assert_eq!(step["instances"], 2, "a and c still run: {step}");

    // An instance the catalog knew running that EC2 no longer lists: terminated, and said why.
    let conn = rusqlite::Connection::open(cloud.env.path("anamo.db")).unwrap();
    conn.execute(
        "INSERT INTO instances (instance_id, step, state, lifecycle, region, first_seen_at, last_seen_at) \
         VALUES ('i-0gone', 'Alignment', 'running', 'spot', 'us-east-1', 1, 1)",
        [],
    )
    .unwrap();
    drop(conn);
    let out = cloud.env.ok(&["sync", "--instances", "--no-tasks"]);
    assert!(
        out.contains("3 seen, 0 new, 0 changed state, 1 gone"),
        "{out}"
    );
    let row = &cloud
        .query(&["SELECT state, state_reason FROM instances WHERE instance_id = 'i-0gone'"])[0];
    assert_eq!(
        (row["state"].as_str(), row["state_reason"].as_str()),
        (Some("terminated"), Some("no longer listed by EC2"))
    );

    // Every instance in the region, on request.
    let out = cloud
        .env
        .ok(&["sync", "--instances", "--all-instances", "--no-tasks"]);
    assert!(out.contains("4 seen, 1 new"), "{out}");

    // c ends without having worked: now it is listed, whatever the threshold.
    cloud.terminate(c);
    cloud.env.ok(&["sync", "--instances"]);
    assert_eq!(idle(&[]), BTreeSet::from([c.clone()]));
}

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

#[test]
fn cost_by_step_and_by_sample_price_spot_from_ec2_and_on_demand_from_the_table() {
    let Some(cloud) = Cloud::start(6) else {
        return;
    };
    // One instance per type and market; each claims and finishes two tasks.
    let mut ids = vec![];
    for args in [
        &["--spot", "--instance-type", "m5.large"][..],
        &["--instance-type", "c5.xlarge"],
        &["--instance-type", "r5.large"],
    ] {
        let mut all = vec!["launch", "--step", STEP, "--count", "1"];
        all.extend(args);
        let out = cloud.env.anamo(&all).stderr_matches("(?s).*").run();
        ids.push(out.trim().rsplit(' ').next().unwrap().to_string());
    }
    let store = DynamoStore::open(TABLE, &cloud.moto.aws()).unwrap();
    for id in &ids {
        for _ in 0..2 {
            let claim = store
                .claim(STEP, id, Duration::from_secs(600))
                .unwrap()
                .expect("a task");
            store
                .finish(&claim, &Outcome::success(anamo::clock::now_ms()))
                .unwrap();
        }
    }
    cloud
        .env
        .write("anamo.toml", "[prices]\n\"c5.xlarge\" = 0.17\n");
    let out = cloud.env.ok(&["sync", "--instances"]);
    assert!(
        out.contains("; 1 new Spot price(s) for 1 type and zone pair(s)"),
        "the Spot instance's type in its zone: {out}"
    );
    // Twenty hours each, and known run times: the cost split is then exact.
    let conn = rusqlite::Connection::open(cloud.env.path("anamo.db")).unwrap();
    conn.execute(
        "UPDATE instances SET launch_time = last_seen_at - 72000000",
        [],
    )
    .unwrap();
    conn.execute(
        "UPDATE tasks SET started_at = 0, finished_at = CASE WHEN task_id IN \
         (SELECT min(task_id) FROM tasks GROUP BY owner) THEN 3600000 ELSE 10800000 END",
        [],
    )
    .unwrap();
    drop(conn);
    let rows = |args: &[&str]| -> Vec<Vec<String>> {
        let mut all = vec!["query"];
        all.extend_from_slice(args);
        all.extend(["--format", "csv"]);
        cloud
            .env
            .ok(&all)
            .lines()
            .map(|l| l.split(',').map(str::to_string).collect())
            .collect()
    };
    // Spot: moto's price ($0.00001 an hour) for 20 hours; on demand: c5.xlarge at $0.17 from
    // anamo.toml for 20 hours, r5.large unpriced (its hours shown apart, never as free).
    assert_eq!(
        rows(&["cost-by-step"]),
        [
            vec![
                "step",
                "market",
                "instances",
                "instance_hours",
                "usd",
                "unpriced_instances",
                "unpriced_hours",
                "unpriced_types",
                "tasks_done",
                "usd_per_done_task"
            ],
            vec![
                STEP,
                "on-demand",
                "2",
                "40.0",
                "3.4",
                "1",
                "20.0",
                "r5.large",
                "4",
                "1.7"
            ],
            vec![
                STEP, "spot", "1", "20.0", "0.0002", "0", "0.0", "", "2", "0.0001"
            ],
        ]
    );
    // Each sample's share: c5's $3.40 split 1 h : 3 h over its two tasks; r5's two tasks
    // unpriced; the Spot instance's $0.0002 split 1 h : 3 h.
    let by_sample = rows(&["cost-by-sample"]);
    let usd: Vec<(String, String, String)> = by_sample[1..]
        .iter()
        .map(|r| (r[2].clone(), r[3].clone(), r[4].clone()))
        .collect();
    assert_eq!(
        usd,
        [
            ("2.55".into(), "0".into(), STEP.into()),
            ("0.85".into(), "0".into(), STEP.into()),
            ("0.0002".into(), "0".into(), STEP.into()),
            ("0.0001".into(), "0".into(), STEP.into()),
            ("".into(), "1".into(), STEP.into()),
            ("".into(), "1".into(), STEP.into()),
        ],
        "{by_sample:?}"
    );
    // status: the cost so far, and the unpriced instance apart.
    let status = cloud
        .env
        .anamo(&["status", "--format", "csv"])
        .stderr_matches(FRESH)
        .run();
    let header: Vec<&str> = status.lines().next().unwrap().split(',').collect();
    let row: Vec<&str> = status
        .lines()
        .find(|l| l.starts_with(STEP))
        .unwrap()
        .split(',')
        .collect();
    let col = |name: &str| row[header.iter().position(|h| *h == name).unwrap()];
    assert_eq!((col("cost_usd"), col("unpriced_instances")), ("3.4", "1"));
    let table = cloud
        .env
        .anamo(&["status", "--format", "table"])
        .stderr_matches(FRESH)
        .run();
    assert!(table.contains("$3.40 + 1 unpriced"), "{table}");

    // The price table: set one, list it; nonsense is refused and nothing written.
    cloud.env.ok(&["prices", "set", "r5.large", "0.126"]);
    let list = cloud.env.ok(&["prices", "list"]);
    assert!(
        list.contains("c5.xlarge\t0.17\tanamo.toml\t")
            && list.contains("r5.large\t0.126\tprices set\t"),
        "{list}"
    );
    let priced = rows(&["cost-by-step"]);
    assert_eq!(
        (priced[1][4].as_str(), priced[1][5].as_str()),
        ("5.92", "0")
    );
    // What would make a price just set not the one used is said.
    cloud
        .env
        .anamo(&["prices", "set", "c5.xlarge", "0.2"])
        .stderr(
            "warning: [prices] in anamo.toml sets c5.xlarge to 0.17, and the next sync sets it \
             back; change it there\n",
        )
        .run();
    cloud
        .env
        .anamo(&["prices", "set", "m5.2xlrge", "0.5"])
        .stderr(
            "note: no instance of type m5.2xlrge in the catalog (it has c5.xlarge, m5.large, \
             r5.large); check the spelling\n",
        )
        .run();
    assert_eq!(
        cloud.env.ok(&["prices", "unset", "r5.large"]),
        "r5.large: no price (its instances are unpriced)\n"
    );
    assert_eq!(rows(&["cost-by-step"])[1][5], "1", "unpriced again");
    // Not a price: a usage error (2), as a word is.
    for price in ["0", "-1"] {
        cloud
            .env
            .anamo(&["prices", "set", "r5.large", price])
            .fails(2)
            .stderr_first_line(format!(
                "error: invalid value '{price}' for '<USD_PER_HOUR>': '{price}' is not a price; \
                 write US dollars an hour as a plain number above 0, e.g. 0.384"
            ))
            .run();
    }
    cloud
        .env
        .anamo(&["prices", "set", "r5.large", "$0.126"])
        .fails(2)
        .stderr_first_line(
            "error: invalid value '$0.126' for '<USD_PER_HOUR>': '$0.126' is not a price; write \
             US dollars an hour as a plain number above 0, e.g. 0.384",
        )
        .run();
    cloud
        .env
        .write("anamo.toml", "[prices]\n\"c5 xlarge\" = 0.17\n");
    cloud
        .env
        .anamo(&["sync"])
        .fails(1)
        .stderr(
            "error: anamo.toml:2: [prices] 'c5 xlarge' is not an instance type; write it as EC2 \
             does, e.g. m5.xlarge\n",
        )
        .run();
}

/// Two studies in one account and region: each its own task table and catalog, one launch
/// template. Each launch counts, and each catalog syncs, only its own store's instances
/// (tagged `anamo:store`; one launched before that tag is taken by the catalog that recorded
/// its launch); a launch from a catalog of another region's store is refused.
#[test]
fn two_studies_in_one_account_count_and_sync_only_their_own_instances() {
    let Some(cloud) = Cloud::start(3) else {
        return;
    };
    let mut vars = cloud.moto.env();
    vars.push(("ANAMO_STORE", "dynamodb://study-b".into()));
    let b = Env::new().with_vars(vars);
    b.ok(&["store", "init"]);
    b.write(
        "t.csv",
        "task_id,sample,script\nb0,B0,true\nb1,B1,true\nb2,B2,true\n",
    );
    b.ok(&["tasks", "add", "t.csv", "-c", STEP]);

    let capped = "capped at 3 instance(s): 3 claimable task(s) in Alignment at 1 slot(s) per \
                  instance\n";
    let a_out = cloud
        .env
        .anamo(&["launch", "--step", STEP, "--count", "5"])
        .stderr(capped)
        .run();
    assert!(a_out.contains("started 3 of 3"), "{a_out}");
    // Study A's three instances do not cover study B's three tasks.
    let b_out = b
        .anamo(&["launch", "--step", STEP, "--count", "5"])
        .stderr(capped)
        .run();
    assert!(b_out.contains("started 3 of 3"), "{b_out}");
    let stores: Vec<String> = cloud
        .instances()
        .iter()
        .map(|i| tag(i, "anamo:store").unwrap_or("").to_string())
        .collect();
    let of = |s: &str| stores.iter().filter(|t| *t == s).count();
    assert_eq!(
        (
            of("dynamodb://anamo-tasks in us-east-1"),
            of("dynamodb://study-b in us-east-1")
        ),
        (3, 3),
        "{stores:?}"
    );
    // Launched by study A before instances carried the store tag: its launch id is A's.
    let a_launch = launch_id(&a_out);
    cloud
        .rt
        .block_on(
            cloud
                .ec2
                .run_instances()
                .image_id("ami-12c6146b")
                .min_count(1)
                .max_count(1)
                .tag_specifications(
                    aws_sdk_ec2::types::TagSpecification::builder()
                        .resource_type(aws_sdk_ec2::types::ResourceType::Instance)
                        .tags(
                            aws_sdk_ec2::types::Tag::builder()
                                .key("anamo:step")
                                .value(STEP)
                                .build(),
                        )
                        .tags(
                            aws_sdk_ec2::types::Tag::builder()
                                .key("anamo:launch-id")
                                .value(&a_launch)
                                .build(),
                        )
                        .build(),
                )
                .send(),
        )
        .unwrap();

    let out = cloud
        .env
        .anamo(&["sync", "--instances"])
        .stderr(
            "left 3 instance(s) anamo launched for other task stores (or from another \
             catalog); this catalog holds only the instances of dynamodb://anamo-tasks in \
             us-east-1\n",
        )
        .run();
    // The launch wrote its own three; the sync adds the one launched before the tag.
    assert!(out.contains("4 seen, 1 new"), "{out}");
    let out = b
        .anamo(&["sync", "--instances"])
        .stderr(
            "left 4 instance(s) anamo launched for other task stores (or from another \
             catalog); this catalog holds only the instances of dynamodb://study-b in \
             us-east-1\n",
        )
        .run();
    assert!(out.contains("3 seen, 0 new"), "{out}");
    let count = |env: &Env| -> Vec<Value> {
        serde_json::from_str(&env.ok(&[
            "query",
            "SELECT count(*) AS n, count(DISTINCT launch_id) AS launches FROM instances",
            "--format",
            "json",
        ]))
        .unwrap()
    };
    assert_eq!(count(&cloud.env)[0]["n"], 4);
    assert_eq!(count(&b)[0]["n"], 3);
    // The audits of each study name only its own instances.
    let ids_of = |store: &str| -> BTreeSet<String> {
        cloud
            .instances()
            .iter()
            .filter(|i| tag(i, "anamo:store").unwrap_or("") == store)
            .map(|i| i.instance_id().unwrap().to_string())
            .collect()
    };
    let mut a_ids = ids_of("dynamodb://anamo-tasks in us-east-1");
    a_ids.extend(ids_of(""));
    let b_ids = ids_of("dynamodb://study-b in us-east-1");
    for (env, own) in [(&cloud.env, &a_ids), (&b, &b_ids)] {
        let rows: Vec<Value> = serde_json::from_str(&env.ok(&[
            "query",
            "instances-without-work",
            "--param",
            "hours=0",
            "--format",
            "json",
        ]))
        .unwrap();
        assert_eq!(rows.len(), own.len(), "{rows:?}");
        for r in &rows {
            let id = r["instance_id"].as_str().unwrap_or_default();
            assert!(own.contains(id), "{id} is another study's: {rows:?}");
        }
    }
    // The same table name in another region is another store: this catalog is not its. From
    // here, a slip of --region makes no second table and fills none.
    let eu = ["--region", "eu-west-1"];
    let slip = "catalog 'anamo.db' holds the tasks of dynamodb://anamo-tasks in us-east-1, not \
                dynamodb://anamo-tasks in eu-west-1: the same table in another region is another \
                store; check --region and AWS_REGION";
    let slipped = |args: &[&str]| {
        cloud
            .env
            .anamo(&[&eu[..], args].concat())
            .fails(1)
            .stderr_one_line_with(slip)
            .run();
    };
    let add_y = ["tasks", "add", "-c", STEP, "--id", "y", "--script", "true"];
    slipped(&["store", "init"]);
    // No table there yet: the slip, not "create it with store init".
    slipped(&add_y);
    cloud
        .env
        .anamo(&[eu[0], eu[1], "sync", "--instances", "--no-tasks"])
        .fails(1)
        .stderr_one_line_with(
            "holds the tasks of dynamodb://anamo-tasks in us-east-1, whose instances run in \
             us-east-1, not eu-west-1; check --region and AWS_REGION",
        )
        .run();
    // A second study there, meant, keeps its own catalog.
    let other = ["--catalog", "eu.db"];
    cloud
        .env
        .ok(&[other[0], other[1], eu[0], eu[1], "store", "init"]);
    let out = cloud.env.ok(&[
        other[0], other[1], eu[0], eu[1], "tasks", "add", "-c", STEP, "--id", "x", "--script",
        "true",
    ]);
    assert!(
        out.contains("added 1 task(s) to dynamodb://anamo-tasks (eu-west-1)"),
        "{out}"
    );
    slipped(&add_y);
    cloud
        .env
        .anamo(&[eu[0], eu[1], "launch", "--step", STEP, "--count", "1"])
        .fails(1)
        .stderr_one_line_with(
            "holds the tasks of dynamodb://anamo-tasks in us-east-1, not of \
             dynamodb://anamo-tasks in eu-west-1; launch with that store (check --region, \
             --store)",
        )
        .run();
}

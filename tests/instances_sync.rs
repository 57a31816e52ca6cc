//! `anamo sync --instances` on the moto emulator: instance state transitions and their
//! events, an instance EC2 no longer lists, `--all-instances`, and the audit reports over them
//! (died-holding-tasks, instances-without-work, tasks-per-instance, instance-hours-by-step).

use std::collections::BTreeSet;
use std::time::Duration;

use anamo::model::Outcome;
use anamo::store::TaskStore;
use anamo::store::dynamo::DynamoStore;
use serde_json::Value;

use crate::harness::FRESH;
use crate::harness::cloud::{Cloud, STEP, TABLE};

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
    b_s_death_is_recorded(&cloud, b);
    the_audits_answer(&cloud, &store, [a, b, c], &held.task.task_id);
    status_counts_the_running_and_a_vanished_one_is_terminated(&cloud);

    // c ends without having worked: now it is listed, whatever the threshold.
    cloud.terminate(c);
    cloud.env.ok(&["sync", "--instances"]);
    assert_eq!(idle(&cloud, &[]), BTreeSet::from([c.clone()]));
}

/// Two syncs (the second changes nothing), then b is terminated: its transitions are events.
fn b_s_death_is_recorded(cloud: &Cloud, b: &str) {
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
}

/// a finished a task, b died holding one, c never worked.
fn the_audits_answer(cloud: &Cloud, store: &DynamoStore, [a, b, c]: [&str; 3], held: &str) {
    let lease = Duration::from_secs(600);
    let died = cloud.query(&["died-holding-tasks"]);
    assert_eq!(died.len(), 1, "{died:?}");
    assert_eq!(died[0]["instance_id"], b);
    assert_eq!(died[0]["task_id"], held);

    // Without work: ended, or up longer than the threshold, and holding no task. c is idle
    // but young; b died holding a task (that is died-holding-tasks); a worked.
    assert_eq!(idle(cloud, &[]), BTreeSet::new());
    assert_eq!(
        idle(cloud, &["--param", "hours=0"]),
        BTreeSet::from([c.to_string()])
    );
    // A busy instance is never listed, however long it has run.
    let busy = store.claim(STEP, c, lease).unwrap().expect("c claims");
    cloud.env.ok(&["sync"]);
    assert_eq!(idle(cloud, &["--param", "hours=0"]), BTreeSet::new());
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
}

/// The instances without work (`instances-without-work`), by id.
fn idle(cloud: &Cloud, extra: &[&str]) -> BTreeSet<String> {
    let mut args = vec!["instances-without-work"];
    args.extend_from_slice(extra);
    cloud
        .query(&args)
        .iter()
        .map(|r| r["instance_id"].as_str().unwrap().to_string())
        .collect()
}

/// status counts a and c as running; an instance the catalog knew that EC2 no longer lists is
/// ended by the next sync; --all-instances takes the one anamo did not launch.
fn status_counts_the_running_and_a_vanished_one_is_terminated(cloud: &Cloud) {
    let status = cloud
        .env
        .anamo(&["status", "--format", "json"])
        .stderr_matches(FRESH)
        .run();
    let rows: Vec<Value> = serde_json::from_str(&status).unwrap();
    let step = rows.iter().find(|r| r["step"] == STEP).unwrap();
    assert_eq!(step["instances"], 2, "a and c still run: {step}");

    // An instance the catalog knew running that EC2 no longer lists: terminated, and said why.
    let conn = cloud.env.catalog_rw();
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
}

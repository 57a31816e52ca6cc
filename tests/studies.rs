//! Two studies in one account, on the moto emulator: each its own task table and catalog,
//! one launch template. Each launch counts, each catalog syncs and each audit names only its own
//! store's instances; the same table in another region is another store.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::harness::Env;
use crate::harness::cloud::{Cloud, STEP, launch_id, tag};

/// Two studies in one account and region: each its own task table and catalog, one launch
/// template. Each launch counts, and each catalog syncs, only its own store's instances
/// (tagged `anamo:store`; one launched before that tag is taken by the catalog that recorded
/// its launch); a launch from a catalog of another region's store is refused.
#[test]
fn two_studies_in_one_account_count_and_sync_only_their_own_instances() {
    let Some(cloud) = Cloud::start(3) else {
        return;
    };
    let b = study_b(&cloud);
    let a_launch = each_launch_counts_only_its_own_store(&cloud, &b);
    // Launched by study A before instances carried the store tag: its launch id is A's.
    launch_untagged(&cloud, &a_launch);
    each_catalog_syncs_and_audits_only_its_own(&cloud, &b);
    the_same_table_in_another_region_is_another_store(&cloud);
}

/// Study B beside the fixture's study A: its own table (study-b), three tasks in STEP.
fn study_b(cloud: &Cloud) -> Env {
    let mut vars = cloud.moto.env();
    vars.push(("ANAMO_STORE", "dynamodb://study-b".into()));
    let b = Env::new().with_vars(vars);
    b.ok(&["store", "init"]);
    b.write(
        "t.csv",
        "task_id,sample,script\nb0,B0,true\nb1,B1,true\nb2,B2,true\n",
    );
    b.ok(&["tasks", "add", "t.csv", "-c", STEP]);
    b
}

/// Each study launches three instances for its three tasks, tagged with its store; returns
/// study A's launch id.
fn each_launch_counts_only_its_own_store(cloud: &Cloud, b: &Env) -> String {
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
    launch_id(&a_out)
}

/// An instance of `launch` as anamo launched them before the `anamo:store` tag.
fn launch_untagged(cloud: &Cloud, launch: &str) {
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
                                .value(launch)
                                .build(),
                        )
                        .build(),
                )
                .send(),
        )
        .unwrap();
}

fn each_catalog_syncs_and_audits_only_its_own(cloud: &Cloud, b: &Env) {
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
    assert_eq!(count(b)[0]["n"], 3);
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
    for (env, own) in [(&cloud.env, &a_ids), (b, &b_ids)] {
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
}

/// The same table name in another region is another store: this catalog is not its. From
/// here, a slip of --region makes no second table and fills none.
fn the_same_table_in_another_region_is_another_store(cloud: &Cloud) {
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

//! The README's IAM policies, checked by moto's IAM evaluator: one IAM user per role holding
//! exactly the README's statements (read from its JSON blocks by Sid), moto's permission
//! checks turned on after the setup (`/moto-api/reset-auth`), and each role's commands run
//! with that user's keys. What a role may run works; a command outside it fails with one line
//! naming the missing action. moto checks resources only for S3 (it hands DynamoDB, EC2 and
//! IAM requests to the evaluator as `*`), so those statements are tested with `"Resource": "*"`.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::harness::Env;
use crate::harness::moto::Moto;

const TABLE: &str = "anamo-tasks";

/// Each statement of the README's policies, by Sid, placeholders filled for this test.
fn readme_statements() -> BTreeMap<String, Value> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let fill = [
        ("REGION", "us-east-1"),
        ("ACCOUNT", "123456789012"),
        ("TABLE", TABLE),
        ("RESULTS_BUCKET", "results"),
        ("RESULTS_PREFIX", "align"),
        ("LOG_BUCKET", "logs"),
        ("LOG_PREFIX", "anamo"),
        ("BIN_BUCKET", "tools"),
        ("BIN_KEY", "bin/anamo"),
        ("WORKER_ROLE", "anamo-worker"),
        ("BUCKET", "data"),
    ];
    let mut statements = BTreeMap::new();
    for block in readme.split("```json\n").skip(1) {
        let Some((text, _)) = block.split_once("```") else {
            continue;
        };
        if !text.contains("\"Statement\"") {
            continue;
        }
        let mut text = text.to_string();
        for (placeholder, value) in fill {
            text = text.replace(placeholder, value);
        }
        let policy: Value = serde_json::from_str(&text).expect("README policy is JSON");
        for mut st in policy["Statement"].as_array().expect("statements").clone() {
            let sid = st["Sid"]
                .as_str()
                .expect("every README statement has a Sid");
            let sid = sid.to_string();
            let s3 = st["Action"].to_string().contains("s3:");
            if !s3 {
                st["Resource"] = json!("*");
            }
            statements.insert(sid, st);
        }
    }
    statements
}

/// The emulator with buckets, objects and a launch template made, one IAM user per role
/// holding the README's statements, and permission checks on. Returns each role's keys.
fn setup(moto: &Moto, roles: &[(&str, &[&str])]) -> BTreeMap<String, (String, String)> {
    let statements = readme_statements();
    let policies: BTreeMap<&str, Value> = roles
        .iter()
        .map(|(role, sids)| {
            let chosen: Vec<Value> = sids
                .iter()
                .map(|sid| {
                    statements
                        .get(*sid)
                        .unwrap_or_else(|| panic!("README has no statement {sid}"))
                        .clone()
                })
                .collect();
            (*role, json!({"Version": "2012-10-17", "Statement": chosen}))
        })
        .collect();
    let script = r#"
import json, os, sys, boto3, requests
kw = dict(endpoint_url=os.environ["ENDPOINT"], region_name="us-east-1")
s3 = boto3.client("s3", **kw)
for b in ["data", "logs", "tools", "results"]:
    s3.create_bucket(Bucket=b)
s3.put_object(Bucket="data", Key="cohort/S1/S1_R1.fastq.gz", Body=b"@r\nACGT\n+\nIIII\n")
boto3.client("ec2", **kw).create_launch_template(
    LaunchTemplateName="Align", LaunchTemplateData={"ImageId": "ami-12c6146b"})
iam = boto3.client("iam", **kw)
keys = {}
for role, policy in json.load(sys.stdin).items():
    iam.create_user(UserName=role)
    iam.put_user_policy(UserName=role, PolicyName="anamo", PolicyDocument=json.dumps(policy))
    k = iam.create_access_key(UserName=role)["AccessKey"]
    keys[role] = [k["AccessKeyId"], k["SecretAccessKey"]]
# From here on every request is checked against its caller's policies.
requests.post(os.environ["ENDPOINT"] + "/moto-api/reset-auth", data=b"0").raise_for_status()
print(json.dumps(keys))
"#;
    let out = moto.python(script, &serde_json::to_string(&policies).expect("json"));
    let keys: BTreeMap<String, (String, String)> = serde_json::from_str(out.trim()).expect("keys");
    keys
}

/// `anamo ARGS` as `role`.
fn as_role(
    env: &Env,
    keys: &BTreeMap<String, (String, String)>,
    role: &str,
    args: &[&str],
) -> crate::harness::Run {
    let (id, secret) = &keys[role];
    env.anamo(args)
        .env("AWS_ACCESS_KEY_ID", id)
        .env("AWS_SECRET_ACCESS_KEY", secret)
}

/// A command the role may run: exit 0, and no denial in what it said.
#[track_caller]
fn allowed(
    env: &Env,
    keys: &BTreeMap<String, (String, String)>,
    role: &str,
    args: &[&str],
) -> String {
    let out = as_role(env, keys, role, args)
        .stderr_matches("(?s).*")
        .output();
    assert!(
        !out.stderr.contains("denied"),
        "{role}: anamo {args:?} was denied: {}",
        out.stderr
    );
    out.stdout
}

/// A command outside the role: exit 1 with one line naming `action` and the README's policy.
#[track_caller]
fn refused(
    env: &Env,
    keys: &BTreeMap<String, (String, String)>,
    role: &str,
    args: &[&str],
    action: &str,
) {
    as_role(env, keys, role, args)
        .fails(1)
        .stderr_one_line_with(format!("access denied {action}:"))
        .stderr_contains("the policy in the README's")
        .run();
}

#[test]
fn each_role_runs_its_commands_with_exactly_the_readme_policy_and_is_told_what_it_lacks() {
    let Some(moto) = Moto::start() else { return };
    let roles: &[(&str, &[&str])] = &[
        ("operator", &["AnamoTaskStore", "AnamoStoreInit"]),
        (
            "worker",
            &[
                "AnamoWorkerTasks",
                "AnamoResults",
                "AnamoStepFromTag",
                "AnamoWorkerLogs",
            ],
        ),
        (
            "launcher",
            &["AnamoTaskStore", "AnamoLaunch", "AnamoPassWorkerRole"],
        ),
        (
            "shipper",
            &[
                "AnamoTaskStore",
                "AnamoLaunch",
                "AnamoPassWorkerRole",
                "AnamoShipBinary",
            ],
        ),
        ("objects", &["AnamoObjects"]),
        ("logreader", &["AnamoTaskStore", "AnamoReadLogs"]),
    ];
    let keys = setup(&moto, roles);
    let mut vars = moto.env();
    vars.push(("ANAMO_STORE", format!("dynamodb://{TABLE}")));
    let env = Env::new().with_vars(vars);

    // The operator makes the table, adds two chained steps and looks after them.
    allowed(&env, &keys, "operator", &["store", "init"]);
    env.write("S.txt", "S1\nS2\n");
    allowed(
        &env,
        &keys,
        "operator",
        &[
            "tasks",
            "add",
            "-c",
            "Align",
            "--samples",
            "S.txt",
            "--script",
            "echo aligned {sample}",
        ],
    );
    allowed(
        &env,
        &keys,
        "operator",
        &[
            "tasks",
            "add",
            "-c",
            "Call",
            "--after",
            "Align",
            "--samples",
            "S.txt",
            "--script",
            "echo called {sample}",
        ],
    );
    allowed(
        &env,
        &keys,
        "operator",
        &[
            "tasks",
            "add",
            "-c",
            "Align",
            "--id",
            "broken",
            "--sample",
            "S3",
            "--script",
            "exit 3",
            "--max-attempts",
            "1",
        ],
    );
    let counts = allowed(&env, &keys, "operator", &["tasks", "counts"]);
    assert!(counts.contains("Align"), "{counts}");
    allowed(&env, &keys, "operator", &["tasks", "list", "-c", "Call"]);
    allowed(
        &env,
        &keys,
        "operator",
        &["tasks", "show", "S1", "-c", "Align"],
    );
    allowed(&env, &keys, "operator", &["store", "check"]);
    allowed(
        &env,
        &keys,
        "operator",
        &["tasks", "release-stale", "-c", "Align"],
    );

    // The worker runs both steps end to end: claims, heartbeats, results, logs in S3 and the
    // promotion of Call's tasks.
    for step in ["Align", "Call"] {
        allowed(
            &env,
            &keys,
            "worker",
            &[
                "worker",
                "-c",
                step,
                "--results",
                "s3://results/align/",
                "--log-uri",
                "s3://logs/anamo/",
            ],
        );
    }
    let listed = allowed(
        &env,
        &keys,
        "operator",
        &["tasks", "list", "--format", "jsonl"],
    );
    let done = listed
        .lines()
        .filter(|l| l.contains("\"state\":\"done\""))
        .count();
    assert_eq!(done, 4, "both steps ran on the worker's policy:\n{listed}");
    allowed(
        &env,
        &keys,
        "operator",
        &["tasks", "retry", "-c", "Align", "--id", "broken"],
    );
    allowed(
        &env,
        &keys,
        "operator",
        &["tasks", "delete", "-c", "Align", "--id", "broken"],
    );
    allowed(&env, &keys, "operator", &["sync"]);
    let log = allowed(&env, &keys, "logreader", &["logs", "S1", "-c", "Align"]);
    assert!(log.contains("aligned S1"), "{log}");

    // The launcher starts the step's cluster and syncs its instances and their prices.
    env.write("more.txt", "S4\n");
    allowed(
        &env,
        &keys,
        "operator",
        &[
            "tasks",
            "add",
            "-c",
            "Align",
            "--samples",
            "more.txt",
            "--script",
            "echo {sample}",
        ],
    );
    allowed(
        &env,
        &keys,
        "launcher",
        &["launch", "--step", "Align", "--count", "1"],
    );
    allowed(&env, &keys, "launcher", &["sync", "--instances"]);

    // Shipping a binary and launching from it (its checksum read back at launch).
    allowed(&env, &keys, "shipper", &["ship", "s3://tools/bin/anamo"]);
    allowed(
        &env,
        &keys,
        "shipper",
        &[
            "launch",
            "--step",
            "Align",
            "--count",
            "1",
            "--binary",
            "s3://tools/bin/anamo",
            "--dry-run",
        ],
    );

    // Objects of a cohort.
    allowed(
        &env,
        &keys,
        "objects",
        &["sync", "--objects", "s3://data/cohort/", "--no-tasks"],
    );

    // Outside each role: one line naming the action, and where the policy is.
    refused(
        &env,
        &keys,
        "worker",
        &[
            "tasks", "add", "-c", "Align", "--id", "x", "--script", "true",
        ],
        "dynamodb:BatchWriteItem",
    );
    refused(
        &env,
        &keys,
        "worker",
        &[
            "store",
            "init",
            "--store",
            "dynamodb://another",
            "--catalog",
            "another.db",
        ],
        "dynamodb:CreateTable",
    );
    refused(
        &env,
        &keys,
        "operator",
        &["launch", "--step", "Align", "--count", "1"],
        "ec2:DescribeInstances",
    );
    refused(
        &env,
        &keys,
        "launcher",
        &["ship", "s3://tools/bin/anamo"],
        "s3:PutObject",
    );
    refused(
        &env,
        &keys,
        "objects",
        &["sync", "--instances", "--no-tasks"],
        "ec2:DescribeInstances",
    );
    refused(
        &env,
        &keys,
        "logreader",
        &["sync", "--objects", "s3://data/cohort/", "--no-tasks"],
        "s3:ListBucket",
    );

    // --profile wins over keys in the environment, as with the aws CLI: the worker's keys
    // there would be refused this add; the operator's profile makes it.
    let home = env.path("home");
    std::fs::create_dir_all(home.join(".aws")).unwrap();
    let (id, secret) = &keys["operator"];
    std::fs::write(
        home.join(".aws/credentials"),
        format!("[ops]\naws_access_key_id = {id}\naws_secret_access_key = {secret}\n"),
    )
    .unwrap();
    let out = as_role(
        &env,
        &keys,
        "worker",
        &[
            "--profile",
            "ops",
            "tasks",
            "add",
            "-c",
            "Align",
            "--id",
            "p1",
            "--script",
            "true",
        ],
    )
    .env("HOME", &home)
    .stderr_matches("(?s).*")
    .run();
    assert!(out.contains("added 1 task(s)"), "{out}");
}

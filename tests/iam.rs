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
        ("TEAM_BUCKET", "team"),
        ("TEAM_PREFIX", "cohort"),
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
for b in ["data", "logs", "tools", "results", "team"]:
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

/// The emulator's IAM users, by role, and where their commands run.
struct Roles {
    env: Env,
    keys: BTreeMap<String, (String, String)>,
}

impl Roles {
    /// `anamo ARGS` with `role`'s keys.
    fn run(&self, role: &str, args: &[&str]) -> crate::harness::Run {
        let (id, secret) = &self.keys[role];
        self.env
            .anamo(args)
            .env("AWS_ACCESS_KEY_ID", id)
            .env("AWS_SECRET_ACCESS_KEY", secret)
    }

    /// A command the role may run: exit 0, and no denial in what it said.
    #[track_caller]
    fn ok(&self, role: &str, args: &[&str]) -> String {
        let out = self.run(role, args).stderr_matches("(?s).*").output();
        assert!(
            !out.stderr.contains("denied"),
            "{role}: anamo {args:?} was denied: {}",
            out.stderr
        );
        out.stdout
    }

    /// The operator adds a task per sample of `file` to `step`, with `more` flags.
    #[track_caller]
    fn add(&self, step: &str, file: &str, script: &str, more: &[&str]) {
        let args = [
            "tasks",
            "add",
            "-c",
            step,
            "--samples",
            file,
            "--script",
            script,
        ];
        self.ok("operator", &[&args[..], more].concat());
    }

    /// A command outside the role: exit 1, one line naming `action` and the README section
    /// (`section`) whose policy grants it.
    #[track_caller]
    fn refused(&self, role: &str, args: &[&str], action: &str, section: &str) {
        self.run(role, args)
            .fails(1)
            .stderr_one_line_with(format!("access denied {action}:"))
            .stderr_contains(format!("the policy in the README's '{section}"))
            .run();
    }
}

#[test]
fn each_role_runs_its_commands_with_exactly_the_readme_policy_and_is_told_what_it_lacks() {
    let Some(moto) = Moto::start() else { return };
    let keys = setup(&moto, ROLES);
    let mut vars = moto.env();
    vars.push(("ANAMO_STORE", format!("dynamodb://{TABLE}")));
    let r = Roles {
        env: Env::new().with_vars(vars),
        keys,
    };
    the_operator_looks_after_two_chained_steps(&r);
    the_worker_runs_both_steps(&r);
    the_launcher_shipper_and_objects_roles_run_theirs(&r);
    outside_its_policy_each_role_is_told_the_action(&r);
    the_team_publishes_and_reads(&r);
    a_profile_wins_over_keys_in_the_environment(&r);
}

fn the_team_publishes_and_reads(r: &Roles) {
    // The syncer syncs and publishes; a reader reads what it published, and may not publish.
    let out = r.ok("publisher", &["sync", "--publish", "s3://team/cohort/"]);
    assert!(out.contains("published"), "{out}");
    let status = r.ok("reader", &["--catalog", "s3://team/cohort/", "status"]);
    assert!(status.contains("Align"), "{status}");
    r.refused(
        "reader",
        &["sync", "--publish", "s3://team/cohort/"],
        "s3:PutObject",
        "A team on one cohort (IAM)",
    );
}

/// Each role and the README statements (by Sid) its IAM user holds.
const ROLES: &[(&str, &[&str])] = &[
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
    (
        "publisher",
        &["AnamoTaskStore", "AnamoPublishCatalog", "AnamoListCatalogs"],
    ),
    ("reader", &["AnamoReadCatalog"]),
];

/// A task `add` the worker's policy refuses and the operator's allows.
const ADD: [&str; 8] = [
    "tasks", "add", "-c", "Align", "--id", "x", "--script", "true",
];
/// The shipped binary's place.
const BINARY: &str = "s3://tools/bin/anamo";
/// A dry-run launch (the first five words: a launch).
const DRY_LAUNCH: [&str; 6] = ["launch", "--step", "Align", "--count", "1", "--dry-run"];
/// A sync of a cohort's objects only.
const OBJECTS: [&str; 4] = ["sync", "--objects", "s3://data/cohort/", "--no-tasks"];

fn the_operator_looks_after_two_chained_steps(r: &Roles) {
    // The operator makes the table, adds two chained steps and looks after them.
    r.ok("operator", &["store", "init"]);
    r.env.write("S.txt", "S1\nS2\n");
    r.env.write("S3.txt", "S3\n");
    r.add("Align", "S.txt", "echo aligned {sample}", &[]);
    r.add(
        "Call",
        "S.txt",
        "echo called {sample}",
        &["--after", "Align"],
    );
    r.add(
        "Align",
        "S3.txt",
        "exit 3",
        &["--id", "broken", "--max-attempts", "1"],
    );
    assert!(r.ok("operator", &["tasks", "counts"]).contains("Align"));
    r.ok("operator", &["tasks", "list", "-c", "Call"]);
    r.ok("operator", &["tasks", "show", "S1", "-c", "Align"]);
    r.ok("operator", &["store", "check"]);
    r.ok("operator", &["tasks", "release-stale", "-c", "Align"]);
}

fn the_worker_runs_both_steps(r: &Roles) {
    // The worker runs both steps end to end: claims, heartbeats, results, logs in S3 and the
    // promotion of Call's tasks.
    for step in ["Align", "Call"] {
        let s3 = [
            "--results",
            "s3://results/align/",
            "--log-uri",
            "s3://logs/anamo/",
        ];
        r.ok("worker", &[&["worker", "-c", step][..], &s3].concat());
    }
    let listed = r.ok("operator", &["tasks", "list", "--format", "jsonl"]);
    let done = listed.matches("\"state\":\"done\"").count();
    assert_eq!(done, 4, "both steps ran on the worker's policy:\n{listed}");
    r.ok(
        "operator",
        &["tasks", "retry", "-c", "Align", "--id", "broken"],
    );
    r.ok(
        "operator",
        &["tasks", "delete", "-c", "Align", "--id", "broken"],
    );
    r.ok("operator", &["sync"]);
    let log = r.ok("logreader", &["logs", "S1", "-c", "Align"]);
    assert!(log.contains("aligned S1"), "{log}");
}

fn the_launcher_shipper_and_objects_roles_run_theirs(r: &Roles) {
    // The launcher starts the step's cluster and syncs its instances and their prices.
    r.env.write("more.txt", "S4\n");
    r.add("Align", "more.txt", "echo {sample}", &[]);
    r.ok("launcher", &["launch", "--step", "Align", "--count", "1"]);
    r.ok("launcher", &["sync", "--instances"]);

    // Shipping a binary and launching from it (its checksum read back at launch).
    r.ok("shipper", &["ship", BINARY]);
    r.ok(
        "shipper",
        &[&DRY_LAUNCH[..], &["--binary", BINARY]].concat(),
    );

    // Objects of a cohort.
    r.ok("objects", &OBJECTS);
}

fn outside_its_policy_each_role_is_told_the_action(r: &Roles) {
    // Outside each role: one line naming the action, and where the policy is.
    let (tasks, ec2, s3) = (
        "AWS: the DynamoDB task store",
        "AWS: launching a step's cluster on EC2 (IAM for launching",
        "AWS: sample files in S3, and worker logs",
    );
    r.refused("worker", &ADD, "dynamodb:BatchWriteItem", tasks);
    let init = [
        "store",
        "init",
        "--store",
        "dynamodb://another",
        "--catalog",
        "another.db",
    ];
    r.refused("worker", &init, "dynamodb:CreateTable", tasks);
    r.refused("operator", &DRY_LAUNCH[..5], "ec2:DescribeInstances", ec2);
    let instances = ["sync", "--instances", "--no-tasks"];
    r.refused("objects", &instances, "ec2:DescribeInstances", ec2);
    r.refused("logreader", &OBJECTS, "s3:ListBucket", s3);
    // S3 says only "Access Denied": the action and the section come from what anamo was
    // doing (shipping the binary; a worker's results prefix).
    let stock = "AWS: from a stock AMI to a costed cohort";
    r.refused("launcher", &["ship", BINARY], "s3:PutObject", stock);
    let results = [
        "worker",
        "-c",
        "Align",
        "--results",
        "s3://results/elsewhere/",
    ];
    r.refused(
        "worker",
        &results,
        "s3:PutObject",
        "AWS: launching a step's cluster on EC2 (IAM for the workers)",
    );
}

fn a_profile_wins_over_keys_in_the_environment(r: &Roles) {
    // --profile wins over keys in the environment, as with the aws CLI: the worker's keys
    // there would be refused this add; the operator's profile makes it.
    let home = r.env.path("home");
    std::fs::create_dir_all(home.join(".aws")).unwrap();
    let (id, secret) = &r.keys["operator"];
    std::fs::write(
        home.join(".aws/credentials"),
        format!("[ops]\naws_access_key_id = {id}\naws_secret_access_key = {secret}\n"),
    )
    .unwrap();
    let out = r
        .run("worker", &[&["--profile", "ops"][..], &ADD].concat())
        .env("HOME", &home)
        .stderr_matches("(?s).*")
        .run();
    assert!(out.contains("added 1 task(s)"), "{out}");
}

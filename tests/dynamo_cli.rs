//! The DynamoDB store as a process, on the moto emulator: many workers, claim cost, faults.

use std::time::{Duration, Instant};

use crate::harness::moto::Moto;
use crate::harness::{Env, WARN, assert_each_ran_once, file_lines};
use anamo::store::TaskStore;
use anamo::store::dynamo::DynamoStore;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType,
};

const TABLE: &str = "anamo-tasks";

/// An env on a fresh table of an emulator that answers some requests with faults
/// (`OP[,OP...]:FAIL/EVERY[:landed]`, see tests/support/moto_serial.py).
fn faulty_env(faults: &str) -> Option<(Moto, Env)> {
    let moto = Moto::start_with_faults(Some(faults))?;
    let mut vars = moto.env();
    vars.push(("ANAMO_STORE", format!("dynamodb://{TABLE}")));
    let env = Env::new().with_vars(vars);
    env.ok(&["store", "init"]);
    Some((moto, env))
}

/// A task file of `n` tasks with ids PREFIX0000.. all running `script`.
fn numbered_tasks(prefix: &str, n: usize, script: &str) -> String {
    let mut csv = String::from("task_id,script\n");
    for i in 0..n {
        csv.push_str(&format!("{prefix}{i:04},{script}\n"));
    }
    csv
}

/// An env whose store is a fresh table on a fresh emulator; `None` outside CI without moto.
pub(crate) fn dynamo_env() -> Option<(Moto, Env)> {
    let moto = Moto::start()?;
    let mut vars = moto.env();
    vars.push(("ANAMO_STORE", format!("dynamodb://{TABLE}")));
    let env = Env::new().with_vars(vars);
    let out = env.ok(&["store", "init"]);
    assert!(out.contains("created DynamoDB table anamo-tasks"), "{out}");
    Some((moto, env))
}

#[test]
fn store_init_is_idempotent_and_the_lifecycle_works() {
    let Some((_moto, env)) = dynamo_env() else {
        return;
    };
    assert!(env.ok(&["store", "init"]).contains("already set up"));
    env.write(
        "t.csv",
        "task_id,sample,script\na,S1,echo $ANAMO_SAMPLE > a.txt\nb,S2,exit 3\n",
    );
    env.ok(&["tasks", "add", "t.csv", "-c", "Demo", "--max-attempts", "2"]);
    let out = env
        .anamo(&["tasks", "add", "t.csv", "-c", "Demo"])
        .stderr(
            "skipped Demo/a: already in the store, todo\n\
             skipped Demo/b: already in the store, todo\n\
             tasks seen before are left as they are: --replace runs them again (and changes \
             what they wait for)\n",
        )
        .run();
    assert!(out.contains("skipped 2 seen before"), "{out}");
    let out = env.ok(&["worker", "-c", "Demo"]);
    assert!(out.contains("1 done, 1 failed, 1 retried"), "{out}");
    assert_eq!(env.read("a.txt"), "S1\n");
    let b = env.task("b");
    assert_eq!(
        (b["state"].as_str(), b["exit_code"].as_i64()),
        (Some("failed"), Some(3))
    );
    assert!(
        env.ok(&["tasks", "retry", "-c", "Demo", "--id", "b"])
            .starts_with("1 failed")
    );
    let out = env.ok(&["sync"]);
    assert!(out.contains("2 seen, 2 new"), "{out}");
    assert!(
        env.ok(&[
            "--catalog",
            "elsewhere.db",
            "tasks",
            "delete",
            "-c",
            "Demo",
            "--all"
        ])
        .contains("deleted 2")
    );
    let out = env.ok(&["sync"]);
    assert!(
        out.contains("0 seen, 0 new, 0 changed state, 2 removed"),
        "{out}"
    );
}

#[test]
fn eight_workers_run_each_of_300_tasks_exactly_once() {
    let Some((_moto, env)) = dynamo_env() else {
        return;
    };
    let mut csv = String::from("task_id,script\n");
    for i in 0..300 {
        csv.push_str(&format!("t{i:03},echo $ANAMO_TASK_ID >> ran.txt\n"));
    }
    env.write("tasks.csv", &csv);
    env.ok(&["tasks", "add", "tasks.csv", "-c", "Bulk"]);
    let workers: Vec<_> = (0..8)
        .map(|_| env.anamo(&["worker", "-c", "Bulk"]).spawn())
        .collect();
    for w in workers {
        w.wait(Duration::from_secs(240));
    }
    assert_each_ran_once(&env.path("ran.txt"), 300);
    assert_eq!(
        env.states().get("done"),
        Some(&300),
        "none left todo or running"
    );
}

#[test]
fn a_claim_reads_one_index_page_and_writes_once_at_any_size() {
    let Some(moto) = Moto::start() else { return };
    let store = DynamoStore::connect(TABLE, &moto.aws()).unwrap();
    store.init().unwrap();
    let store = DynamoStore::open(TABLE, &moto.aws()).unwrap();
    let mut per_claim = vec![];
    let mut added = 0;
    for size in [100usize, 10_000] {
        let batch: Vec<_> = (added..size)
            .map(|i| anamo::model::NewTask {
                collection: "Alignment".into(),
                task_id: format!("S{i:05}"),
                sample: None,
                script: "true".into(),
                attrs: Default::default(),
                max_attempts: 3,
                timeout_secs: None,
                after: vec![],
                require: vec![],
            })
            .collect();
        store.add(&batch, false).unwrap();
        added = size;
        // A fresh handle: no candidates in hand from an earlier read.
        let worker = DynamoStore::open(TABLE, &moto.aws()).unwrap();
        let before = moto.requests().len();
        let claim = worker
            .claim("Alignment", "w1", Duration::from_secs(600))
            .unwrap()
            .unwrap();
        let sent: Vec<String> = moto.requests()[before..].to_vec();
        assert_eq!(sent, ["Query", "UpdateItem"], "at {size} tasks");
        per_claim.push(sent.len());
        store.release(&claim).unwrap();
    }
    assert_eq!(per_claim, [2, 2]);
}

#[test]
fn faults_get_one_clear_line() {
    let Some((moto, env)) = dynamo_env() else {
        return;
    };
    // A table that does not exist.
    env.anamo(&["--store", "dynamodb://nope", "tasks", "list"])
        .fails(1)
        .stderr_one_line_with(format!("DynamoDB table 'nope' does not exist in region us-east-1 at {}; check --region (or AWS_REGION, the profile's region), or create it with `anamo store init --store dynamodb://nope`", moto.url))
        .run();
    // A table of another shape.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = rt
        .block_on(async { aws_sdk_dynamodb::Client::new(&anamo::aws::config(&moto.aws()).await) });
    rt.block_on(
        client
            .create_table()
            .table_name("other")
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("id")
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .unwrap(),
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name("id")
                    .key_type(KeyType::Hash)
                    .build()
                    .unwrap(),
            )
            .send(),
    )
    .unwrap();
    for args in [vec!["tasks", "list"], vec!["store", "init"]] {
        let mut full = vec!["--store", "dynamodb://other"];
        full.extend(args);
        // No Rust debug text.
        env.anamo(&full)
            .fails(1)
            .stderr_one_line_with(
                "table other has key schema id (HASH), not collection (HASH) + task_id (RANGE)",
            )
            .run();
    }
    // An item written by hand without required attributes: skipped and reported.
    env.ok(&[
        "tasks", "add", "-c", "Demo", "--id", "good", "--script", "true",
    ]);
    rt.block_on(
        client
            .put_item()
            .table_name(TABLE)
            .item("collection", AttributeValue::S("Demo".into()))
            .item("task_id", AttributeValue::S("handmade".into()))
            .item("state", AttributeValue::S("todo".into()))
            .send(),
    )
    .unwrap();
    let out = env
        .anamo(&["sync"])
        .stderr_contains("skipped 1 damaged task(s) in the store, first Demo/handmade: missing required attribute 'script'")
        .run();
    assert!(out.contains("1 seen, 1 new"), "{out}");
    // No credentials anywhere: a clear line, no SDK internals.
    let home = env.path("empty-home");
    std::fs::create_dir_all(&home).unwrap();
    env.anamo(&["tasks", "list"])
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("HOME", &home)
        .env("AWS_CONFIG_FILE", home.join("config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.join("credentials"))
        .fails(1)
        .stderr_one_line_with("credentials")
        .run();
    // An endpoint nobody listens on: bounded retries, then a clear error.
    let started = Instant::now();
    env.anamo(&["tasks", "list"])
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .fails(1)
        .stderr_one_line_with("cannot reach DynamoDB")
        .run();
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
}

/// An env whose store is a fresh table on a fresh dynalite, the second emulator; `None`
/// outside CI without it.
pub(crate) fn dynalite_env() -> Option<(crate::harness::dynalite::Dynalite, Env)> {
    use crate::harness::Emulator;
    let d = crate::harness::dynalite::Dynalite::start()?;
    let mut vars = d.env();
    vars.push(("ANAMO_STORE", format!("dynamodb://{TABLE}")));
    let env = Env::new().with_vars(vars);
    let out = env.ok(&["store", "init"]);
    assert!(out.contains("created DynamoDB table anamo-tasks"), "{out}");
    Some((d, env))
}

/// An answer the SDK cannot read (a proxy's 403 page, an emulator's denial) is shown as
/// what came: the HTTP status and the body's first line, never only "refused the request".
#[test]
fn an_unreadable_answer_shows_its_status_and_body() {
    let Some((_moto, env)) = faulty_env("Scan:1/1:html403") else {
        return;
    };
    env.anamo(&["tasks", "counts"])
        .fails(1)
        .stderr(
            "error: reading tasks: DynamoDB answered HTTP 403 that the SDK could not read: \
             <html><body><h1>403 Forbidden</h1>Request blocked by proxy</body></html> (a \
             permission refused? check the policy in the README for this command)\n",
        )
        .run();
}

/// Starts `workers` worker processes at once on `tasks` one-second tasks and checks that each
/// task ran exactly once and that no worker gave up while work was left: every worker exits
/// within a few seconds of the last task's end.
fn herd(workers: usize, slots: &str, tasks: usize) {
    let _alone = crate::harness::heavy();
    let Some((_moto, env)) = dynamo_env() else {
        return;
    };
    herd_on(&env, workers, slots, tasks);
}

fn herd_on(env: &Env, workers: usize, slots: &str, tasks: usize) {
    env.write(
        "tasks.csv",
        &numbered_tasks(
            "t",
            tasks,
            "sleep 1; echo $ANAMO_TASK_ID >> ran.txt; date +%s%3N >> ends.txt",
        ),
    );
    env.ok(&["tasks", "add", "tasks.csv", "-c", "Herd"]);
    let mut running: Vec<_> = (0..workers)
        .map(|_| {
            // Only warnings: a busy emulator makes workers retry.
            env.anamo(&["worker", "-c", "Herd", "--slots", slots])
                .stderr_matches(&format!("(?:{WARN})*"))
                .spawn()
        })
        .collect();
    let mut exits = vec![];
    let mut logs: Vec<String> = vec![];
    // A hang detector, not a speed test (benches/ measure speed): the serial emulator does
    // most of the work here, at about 15 ms a request.
    let until = Instant::now() + Duration::from_secs(480);
    while !running.is_empty() {
        assert!(Instant::now() < until, "workers still running after 480s");
        let mut i = 0;
        while i < running.len() {
            if running[i].exited() {
                let out = running.swap_remove(i).wait(Duration::from_secs(1));
                let said = out.stderr.trim().to_string();
                if !said.is_empty() {
                    logs.push(said);
                }
                exits.push(anamo::clock::now_ms());
            } else {
                i += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // A task that did not run is shown whole, with what the workers said about it.
    let ran: std::collections::HashSet<String> =
        file_lines(&env.path("ran.txt")).into_iter().collect();
    for i in 0..tasks {
        let id = format!("t{i:04}");
        if !ran.contains(&id) {
            let shown = env
                .anamo(&["tasks", "show", &id])
                .stderr_matches("(?s).*")
                .output();
            panic!(
                "{id} never ran: {}\nworker logs: {}",
                shown.stdout,
                logs.join("\n")
            );
        }
    }
    assert_each_ran_once(&env.path("ran.txt"), tasks);
    assert_eq!(env.states().get("done"), Some(&tasks), "all done");
    let last_end: i64 = file_lines(&env.path("ends.txt"))
        .iter()
        .map(|l| l.trim().parse::<i64>().unwrap())
        .max()
        .unwrap();
    let first_exit = *exits.iter().min().unwrap();
    assert!(
        first_exit >= last_end - 3_000,
        "a worker exited {} ms before the last task ended",
        last_end - first_exit
    );
}

#[test]
fn a_herd_of_48_workers_on_moto_shares_600_tasks_and_none_quits_early() {
    herd(48, "1", 600);
}

/// The herds on the second emulator: its conditional writes, index reads and pagination are
/// its own code, not moto's. The 96 with two slots each run here: dynalite answers several
/// times faster than moto, which sorts the whole table on every index Query.
#[test]
fn herds_of_48_workers_and_96_with_two_slots_on_dynalite_share_600_tasks_and_none_quits_early() {
    let _alone = crate::harness::heavy();
    for (workers, slots) in [(48, "1"), (96, "2")] {
        let Some((_dynalite, env)) = dynalite_env() else {
            return;
        };
        herd_on(&env, workers, slots, 600);
    }
}

#[test]
fn one_uncontended_worker_sends_at_most_2_2_requests_per_task() {
    let Some((moto, env)) = dynamo_env() else {
        return;
    };
    env.write("tasks.csv", &numbered_tasks("t", 500, "true"));
    env.ok(&["tasks", "add", "tasks.csv", "-c", "Solo"]);
    let before = moto.requests().len();
    let out = env.ok(&["worker", "-c", "Solo"]);
    assert!(out.contains("500 done"), "{out}");
    let sent = moto.requests()[before..].to_vec();
    let claim_and_finish = sent
        .iter()
        .filter(|op| *op == "Query" || *op == "UpdateItem")
        .count();
    let per_task = claim_and_finish as f64 / 500.0;
    eprintln!("requests per task (claim + finish), one worker: {per_task:.3}");
    assert!(per_task <= 2.2, "{per_task:.3} requests per task: {sent:?}");
}

#[test]
fn throttling_in_claim_heartbeat_and_finish_is_ridden_out() {
    let Some((moto, env)) = faulty_env("UpdateItem,Query:5/30") else {
        return;
    };
    env.write(
        "tasks.csv",
        &numbered_tasks("t", 16, "sleep 1.5; echo $ANAMO_TASK_ID >> ran.txt"),
    );
    env.ok(&["tasks", "add", "tasks.csv", "-c", "Busy"]);
    // A worker's log holds only warnings: the retries.
    let workers: Vec<_> = (0..2)
        .map(|_| {
            env.anamo(&["worker", "-c", "Busy", "--lease", "3s"])
                .stderr_matches(&format!("(?:{WARN})*"))
                .spawn()
        })
        .collect();
    let mut logs = String::new();
    for w in workers {
        logs.push_str(&w.wait(Duration::from_secs(150)).stderr);
    }
    assert_each_ran_once(&env.path("ran.txt"), 16);
    assert_eq!(env.states().get("done"), Some(&16), "{logs}");
    assert!(
        logs.contains("ProvisionedThroughputExceededException") && logs.contains("retrying in"),
        "the worker log shows the retries: {logs}"
    );
    let sent = moto.requests();
    let heartbeats_through = sent.iter().filter(|op| *op == "UpdateItem").count();
    assert!(
        heartbeats_through > 16 * 2,
        "claims, heartbeats and finishes got through"
    );
}

#[test]
fn lookups_by_id_find_a_task_among_450_in_three_collections() {
    let Some((_moto, env)) = dynamo_env() else {
        return;
    };
    for (c, prefix) in [
        ("Alignment", "a"),
        ("ReadProcessing", "r"),
        ("VariantCalling", "v"),
    ] {
        let mut csv = String::from("task_id,script\n");
        for i in 0..150 {
            csv.push_str(&format!("{prefix}{i:03},echo {c}\n"));
        }
        csv.push_str("shared,true\n");
        env.write("t.csv", &csv);
        env.ok(&["tasks", "add", "t.csv", "-c", c]);
    }
    // Far from the first page of a Scan, whatever its order.
    for id in ["a000", "r075", "v149"] {
        assert_eq!(env.show(id)["task_id"], id);
    }
    env.anamo(&["logs", "v149"])
        .fails(1)
        .stderr_one_line_with("task VariantCalling/v149 is waiting to run (todo, 0 run(s) so far)")
        .run();
    env.anamo(&["tasks", "show", "shared"])
        .fails(1)
        .stderr("error: task id 'shared' is in several collections (Alignment, ReadProcessing, VariantCalling); pass --collection\n")
        .run();
}

#[test]
fn a_table_with_the_old_unsharded_index_is_upgraded_in_place_by_store_init() {
    let Some(moto) = Moto::start() else { return };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = rt
        .block_on(async { aws_sdk_dynamodb::Client::new(&anamo::aws::config(&moto.aws()).await) });
    let attr = |name: &str, t: ScalarAttributeType| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(t)
            .build()
            .unwrap()
    };
    let key = |name: &str, k: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(k)
            .build()
            .unwrap()
    };
    // The table exactly as `anamo store init` made it before the index was sharded.
    let legacy = aws_sdk_dynamodb::types::GlobalSecondaryIndex::builder()
        .index_name("claimable")
        .key_schema(key("collection", KeyType::Hash))
        .key_schema(key("claimable_at", KeyType::Range))
        .projection(
            aws_sdk_dynamodb::types::Projection::builder()
                .projection_type(aws_sdk_dynamodb::types::ProjectionType::Include)
                .non_key_attributes("state")
                .non_key_attributes("attempts")
                .non_key_attributes("max_attempts")
                .non_key_attributes("version")
                .build(),
        )
        .build()
        .unwrap();
    rt.block_on(
        client
            .create_table()
            .table_name(TABLE)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr("collection", ScalarAttributeType::S))
            .attribute_definitions(attr("task_id", ScalarAttributeType::S))
            .attribute_definitions(attr("claimable_at", ScalarAttributeType::N))
            .key_schema(key("collection", KeyType::Hash))
            .key_schema(key("task_id", KeyType::Range))
            .global_secondary_indexes(legacy)
            .send(),
    )
    .unwrap();
    for id in ["old1", "old2", "old3"] {
        let n = |v: &str| AttributeValue::N(v.into());
        let s = |v: &str| AttributeValue::S(v.into());
        rt.block_on(
            client
                .put_item()
                .table_name(TABLE)
                .item("collection", s("Legacy"))
                .item("task_id", s(id))
                .item("script", s("echo $ANAMO_TASK_ID >> ran.txt"))
                .item("state", s("todo"))
                .item("attempts", n("0"))
                .item("max_attempts", n("3"))
                .item("created_at", n("1000"))
                .item("updated_at", n("1000"))
                .item("version", n("0"))
                .item("claimable_at", n("1000"))
                .send(),
        )
        .unwrap();
    }
    let mut vars = moto.env();
    vars.push(("ANAMO_STORE", format!("dynamodb://{TABLE}")));
    let env = Env::new().with_vars(vars);
    env.anamo(&["worker", "-c", "Legacy"])
        .fails(1)
        .stderr_one_line_with("table anamo-tasks has the unsharded claim index 'claimable' of an older anamo, not 'claim_by_shard'; bring it to anamo's shape in place with `anamo store init --store dynamodb://anamo-tasks` (stop its workers first)")
        .run();
    let out = env.ok(&["store", "init"]);
    assert!(
        out.contains("upgraded DynamoDB table anamo-tasks: index claim_by_shard added (3 tasks given their shard), old index claimable removed"),
        "{out}"
    );
    assert!(env.ok(&["store", "init"]).contains("already set up"));
    let out = env.ok(&["worker", "-c", "Legacy"]);
    assert!(out.contains("3 done"), "{out}");
    assert_each_ran_once(&env.path("ran.txt"), 3);
}

#[test]
fn a_write_that_landed_while_its_answer_was_lost_is_recognised_as_ours() {
    // Every fourth UpdateItem (claims and finishes) takes effect but answers HTTP 500.
    let Some((_moto, env)) = faulty_env("UpdateItem:1/4:landed") else {
        return;
    };
    env.write(
        "tasks.csv",
        &numbered_tasks("t", 20, "echo $ANAMO_TASK_ID >> ran.txt"),
    );
    env.ok(&["tasks", "add", "tasks.csv", "-c", "Lossy"]);
    // Each lost answer is retried, and said.
    let out = env
        .anamo(&["worker", "-c", "Lossy"])
        .stderr_matches(
            r"(?:\S+ +WARN anamo::store::dynamo::retry: updating a task: InternalServerError: injected by the test: the answer was lost; retrying in \d+\.\d+s \(try \d of 6\)\n)+",
        )
        .run();
    assert!(
        out.contains("20 done, 0 failed, 0 retried, 0 released, 0 lost"),
        "{out}"
    );
    assert_each_ran_once(&env.path("ran.txt"), 20);
    assert_eq!(env.states().get("done"), Some(&20));
}

#[test]
fn a_claim_that_landed_while_every_answer_was_lost_is_run_not_stranded() {
    // The first six UpdateItems (every try of the first claim) take effect but answer HTTP
    // 500: the claim fails for the worker although the task is running under its name.
    let Some((_moto, env)) = faulty_env("UpdateItem:6/100000:landed") else {
        return;
    };
    env.write(
        "tasks.csv",
        &numbered_tasks("t", 5, "echo $ANAMO_TASK_ID >> ran.txt"),
    );
    env.ok(&["tasks", "add", "tasks.csv", "-c", "Lost"]);
    let out = env
        .anamo(&["worker", "-c", "Lost", "-v"])
        .stderr_contains("injected by the test: the answer was lost")
        .stderr_contains("had landed although its answer was lost; running it")
        .run();
    assert!(
        out.contains("5 done, 0 failed, 0 retried, 0 released, 0 lost"),
        "{out}"
    );
    assert_each_ran_once(&env.path("ran.txt"), 5);
    assert_eq!(env.states().get("done"), Some(&5));
}

#[test]
fn a_worker_with_four_slots_reads_the_index_about_as_often_as_one_with_one() {
    let Some((moto, env)) = dynamo_env() else {
        return;
    };
    env.write("tasks.csv", &numbered_tasks("t", 20, "true"));
    env.ok(&["tasks", "add", "tasks.csv", "-c", "Slots"]);
    let before = moto.requests().len();
    let out = env.ok(&["worker", "-c", "Slots", "--slots", "4"]);
    assert!(out.contains("20 done"), "{out}");
    let queries = moto.requests()[before..]
        .iter()
        .filter(|op| *op == "Query")
        .count();
    // Every shard read once or twice while working, one shared sweep at the end, and one
    // shared look for waiting tasks to promote before exiting.
    eprintln!("{queries} index reads for 20 tasks on 4 slots");
    assert!(
        queries <= 4 * 16,
        "{queries} index reads for 20 tasks on 4 slots"
    );
}

#[test]
fn every_surface_tells_one_progress_on_the_dynamodb_store() {
    let Some((_moto, env)) = dynamo_env() else {
        return;
    };
    crate::progress::progress_matrix(&env);
}

//! Tables and tasks made by hand (or by an infrastructure tool) on the emulator: a shape
//! anamo can repair is named and repaired by `store init`, one it cannot is refused with one
//! line; tasks no claim can take are named by every surface, and a worker never waits for
//! them, never burns requests on them and never calls their step drained.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, ScalarAttributeType,
};

use crate::dynamo_cli::{dynalite_env, dynamo_env};
use crate::harness::dynalite::Dynalite;
use crate::harness::moto::Moto;
use crate::harness::{Emulator, Env};

/// A table with anamo's keys and index names, `task_id` of type `id_type`, and the claim
/// index projecting `claim_projection` (None: KEYS_ONLY).
fn hand_made_table(
    moto: &dyn Emulator,
    table: &str,
    id_type: ScalarAttributeType,
    claim_projection: Option<&[&str]>,
) {
    let def = |name: &str, t: ScalarAttributeType| {
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
    let projection = |attrs: Option<&[&str]>| match attrs {
        None => Projection::builder()
            .projection_type(ProjectionType::KeysOnly)
            .build(),
        Some(a) => Projection::builder()
            .projection_type(ProjectionType::Include)
            .set_non_key_attributes(Some(a.iter().map(|s| s.to_string()).collect()))
            .build(),
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = client(&rt, moto);
    rt.block_on(
        client
            .create_table()
            .table_name(table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(def("collection", ScalarAttributeType::S))
            .attribute_definitions(def("task_id", id_type))
            .attribute_definitions(def("claim_shard", ScalarAttributeType::S))
            .attribute_definitions(def("claimable_at", ScalarAttributeType::N))
            .attribute_definitions(def("sample", ScalarAttributeType::S))
            .key_schema(key("collection", KeyType::Hash))
            .key_schema(key("task_id", KeyType::Range))
            .global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name("claim_by_shard")
                    .key_schema(key("claim_shard", KeyType::Hash))
                    .key_schema(key("claimable_at", KeyType::Range))
                    .projection(projection(claim_projection))
                    .build()
                    .unwrap(),
            )
            .global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name("by_sample")
                    .key_schema(key("sample", KeyType::Hash))
                    .projection(projection(Some(&["state", "version", "after"])))
                    .build()
                    .unwrap(),
            )
            .send(),
    )
    .unwrap();
}

fn client(rt: &tokio::runtime::Runtime, moto: &dyn Emulator) -> Client {
    rt.block_on(async { Client::new(&anamo::aws::config(&moto.aws()).await) })
}

/// Writes an item by hand: string attributes, and numbers for the names given in `numbers`.
fn put(moto: &dyn Emulator, table: &str, strings: &[(&str, &str)], numbers: &[(&str, i64)]) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut put = client(&rt, moto).put_item().table_name(table);
    for (k, v) in strings {
        put = put.item(*k, AttributeValue::S(v.to_string()));
    }
    for (k, v) in numbers {
        put = put.item(*k, AttributeValue::N(v.to_string()));
    }
    rt.block_on(put.send()).unwrap();
}

fn env_on(moto: &dyn Emulator, table: &str) -> Env {
    let mut vars = moto.env();
    vars.push(("ANAMO_STORE", format!("dynamodb://{table}")));
    Env::new().with_vars(vars)
}

#[test]
fn a_keys_only_claim_index_is_refused_by_every_command_and_rebuilt_by_store_init() {
    if let Some(moto) = Moto::start() {
        keys_only_claim_index_is_refused(&moto);
        keys_only_claim_index_is_rebuilt(&moto);
    }
}

/// dynalite's UpdateTable changes throughput and billing only: it accepts an index's removal
/// or creation and does neither (DynamoDB does both, in minutes). The repair is tested on moto;
/// the refusal, which reads DescribeTable's projections, on both.
#[test]
fn a_keys_only_claim_index_is_refused_on_dynalite_too() {
    if let Some(d) = Dynalite::start() {
        keys_only_claim_index_is_refused(&d);
    }
}

fn keys_only_claim_index_is_refused(moto: &dyn Emulator) {
    hand_made_table(moto, "keysonly", ScalarAttributeType::S, None);
    let env = env_on(moto, "keysonly");
    let line = "table keysonly has index 'claim_by_shard' projecting KEYS_ONLY, without state, \
                attempts, max_attempts, version that anamo reads from it; bring it to anamo's \
                shape in place with `anamo store init --store dynamodb://keysonly` (stop its \
                workers first)";
    for args in [
        vec!["tasks", "list"],
        vec!["worker", "-c", "Demo"],
        vec![
            "tasks", "add", "-c", "Demo", "--id", "a", "--script", "true",
        ],
    ] {
        env.anamo(&args)
            .fails(1)
            .stderr(format!("error: {line}\n"))
            .run();
    }
    // A projection lacking only some attributes is named by what it lacks.
    hand_made_table(
        moto,
        "partial",
        ScalarAttributeType::S,
        Some(&["state", "version"]),
    );
    env_on(moto, "partial")
        .anamo(&["tasks", "counts"])
        .fails(1)
        .stderr_one_line_with("projecting INCLUDE, without attempts, max_attempts that anamo")
        .run();
}

fn keys_only_claim_index_is_rebuilt(moto: &dyn Emulator) {
    let env = env_on(moto, "keysonly");
    // Provisioned, as infrastructure tools often make tables: DynamoDB refuses a new index
    // without units there, so the rebuilt one gets the table's, and the ceiling is said.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let units = aws_sdk_dynamodb::types::ProvisionedThroughput::builder()
        .read_capacity_units(5)
        .write_capacity_units(7)
        .build()
        .unwrap();
    rt.block_on(
        client(&rt, moto)
            .update_table()
            .table_name("keysonly")
            .billing_mode(BillingMode::Provisioned)
            .provisioned_throughput(units)
            .send(),
    )
    .unwrap();
    let ceiling = "table keysonly is provisioned at 5 read and 7 write units, not on-demand";
    let out = env
        .anamo(&["store", "init"])
        .stderr_one_line_with(ceiling)
        .run();
    assert_eq!(
        out,
        "upgraded DynamoDB table keysonly: index claim_by_shard made again with the \
         attributes anamo reads (it projected KEYS_ONLY, without state, attempts, \
         max_attempts, version), with the table's 5 read and 7 write units; index by_change \
         added (0 items given their change shard; `anamo sync` reads only what changed from \
         its next full scan on), with the table's 5 read and 7 write units\n"
    );
    let described = rt
        .block_on(
            client(&rt, moto)
                .describe_table()
                .table_name("keysonly")
                .send(),
        )
        .unwrap();
    let index = described
        .table()
        .and_then(|t| {
            t.global_secondary_indexes()
                .iter()
                .find(|i| i.index_name() == Some("claim_by_shard"))
        })
        .and_then(|i| i.provisioned_throughput())
        .map(|p| (p.read_capacity_units(), p.write_capacity_units()));
    assert_eq!(
        index,
        Some((Some(5), Some(7))),
        "the index has the table's units"
    );
    let out = env
        .anamo(&["store", "init"])
        .stderr_one_line_with(ceiling)
        .run();
    assert!(out.contains("already set up"), "{out}");
    env.write(
        "t.csv",
        "task_id,script\na,echo a >> ran.txt\nb,echo b >> ran.txt\n",
    );
    env.ok(&["tasks", "add", "t.csv", "-c", "Demo"]);
    assert!(env.ok(&["worker", "-c", "Demo"]).contains("2 done"));
    assert_eq!(env.read("ran.txt").lines().count(), 2);
}

#[test]
fn a_numeric_task_id_is_refused_not_called_set_up() {
    let Some(moto) = Moto::start() else {
        return;
    };
    hand_made_table(&moto, "numeric", ScalarAttributeType::N, Some(&["state"]));
    let env = env_on(&moto, "numeric");
    let line = "error: table numeric has attribute task_id of type N, not S (a string); anamo \
                cannot use it: create a new table with `anamo store init --store \
                dynamodb://NEW` (and point --store at it)\n";
    for args in [vec!["store", "init"], vec!["tasks", "list"]] {
        env.anamo(&args).fails(1).stderr(line).run();
    }
}

/// The emulator with one well-formed task in step Demo, beside which a test writes by hand.
fn demo_with_a_good_task() -> Option<(Moto, Env)> {
    let (moto, env) = dynamo_env()?;
    env.ok(&[
        "tasks", "add", "-c", "Demo", "--id", "good", "--script", "true",
    ]);
    Some((moto, env))
}

#[test]
fn hand_written_tasks_are_named_not_claimable_everywhere_and_store_check_repairs_them() {
    let Some((moto, env)) = demo_with_a_good_task() else {
        return;
    };
    put(
        &moto,
        "anamo-tasks",
        &[
            ("collection", "Demo"),
            ("task_id", "handmade"),
            ("state", "todo"),
            ("script", "echo hand >> hand.txt"),
        ],
        &[],
    );
    let note = "1 task(s) not claimable: missing or malformed claim_shard, claimable_at, version, attempts, \
                max_attempts (first Demo/handmade; written without what anamo writes?); `anamo \
                store check` names each and its fix\n";
    env.anamo(&["tasks", "counts", "-c", "Demo"])
        .stderr(note)
        .run();
    env.anamo(&["tasks", "list", "-c", "Demo"])
        .stderr(note)
        .run();
    // The worker runs what it can, then says what it could not and fails: a step with work
    // left is not drained.
    let out = env
        .anamo(&["worker", "-c", "Demo"])
        .fails(1)
        .stderr(format!("error: {note}"))
        .run();
    assert!(out.contains("1 done"), "{out}");
    env.anamo(&["sync"]).stderr(note).run();
    let out = env
        .anamo(&["store", "check"])
        .fails(1)
        .stderr(
            "error: 1 task(s) no worker can claim are left; `anamo store check --repair` \
             gives them what a claim needs\n",
        )
        .run();
    assert_eq!(
        out,
        "Demo/handmade: todo without claim_shard, claimable_at, version, attempts, \
         max_attempts\nchecked dynamodb://anamo-tasks: its shape is anamo's; 1 task(s) no \
         claim could take\n"
    );
    let out = env.ok(&["store", "check", "--repair"]);
    assert!(out.contains("Demo/handmade: todo without claim_shard, claimable_at, version, attempts, max_attempts (repaired)"), "{out}");
    assert!(env.ok(&["worker", "-c", "Demo"]).contains("1 done"));
    assert_eq!(env.read("hand.txt"), "hand\n");
    // Nothing is left to name.
    env.ok(&["tasks", "counts"]);
    assert!(
        env.ok(&["store", "check"])
            .contains("0 task(s) no claim could take")
    );
    // A version written as a string: not "missing", and no repair can fill it in; the line
    // gives the add that writes the task again over it, and that add runs it.
    put(
        &moto,
        "anamo-tasks",
        &[
            ("collection", "Demo"),
            ("task_id", "badv"),
            ("state", "todo"),
            ("script", "true"),
            ("claim_shard", "Demo#00"),
            ("version", "zero"),
        ],
        &[("claimable_at", 1), ("attempts", 0), ("max_attempts", 3)],
    );
    let out = env
        .anamo(&["store", "check", "--repair"])
        .fails(1)
        .stderr("error: 1 task(s) no worker can claim are left; write them again (above)\n")
        .run();
    assert!(
        out.contains(
            "Demo/badv: todo with version of the wrong type; add it again with `anamo tasks \
             add -c Demo --id badv --script ...` (written over this item) (left)"
        ),
        "{out}"
    );
    env.ok(&[
        "tasks",
        "add",
        "-c",
        "Demo",
        "--id",
        "badv",
        "--script",
        "echo badv >> hand.txt",
    ]);
    assert!(env.ok(&["worker", "-c", "Demo"]).contains("1 done"));
    assert_eq!(env.read("hand.txt"), "hand\nbadv\n");
}

/// An item written without a state (or with one anamo never writes) is no task at all to
/// claims, counts and the flow: `tasks counts` and `store check` name it, and `tasks delete
/// --id` removes it (there is no history to keep).
#[test]
fn an_item_without_a_state_is_named_by_counts_and_store_check_and_deleted_by_id() {
    let Some((moto, env)) = demo_with_a_good_task() else {
        return;
    };
    put(
        &moto,
        "anamo-tasks",
        &[
            ("collection", "Demo"),
            ("task_id", "nostate"),
            ("script", "true"),
        ],
        &[],
    );
    env.anamo(&["tasks", "counts", "-c", "Demo"])
        .stderr_one_line_with(
            "1 task(s) not claimable: missing or malformed state, claim_shard, claimable_at, \
             version, attempts, max_attempts (first Demo/nostate;",
        )
        .run();
    let out = env
        .anamo(&["store", "check", "-c", "Demo"])
        .fails(1)
        .stderr_matches("(?s).*")
        .run();
    assert!(
        out.contains(
            "Demo/nostate: without a state anamo knows; add it again with `anamo tasks add -c \
             Demo --id nostate --script ...` (written over this item)"
        ),
        "{out}"
    );
    let out = env
        .anamo(&["tasks", "delete", "-c", "Demo", "--id", "nostate"])
        .stderr_matches("(?s).*")
        .run();
    assert!(out.contains("deleted 1 task(s) of Demo"), "{out}");
    env.ok(&["tasks", "counts", "-c", "Demo"]);
    assert!(
        env.ok(&["store", "check"])
            .contains("0 task(s) no claim could take")
    );
}

/// A task whose index entry sits where no claim reads (a shard that is not its own) is, to a
/// worker, a task the index lost: the emulator derives its indexes from the items, so this
/// is how a test makes that state. The worker looks again a bounded number of times, then
/// names it and fails; `tasks release-stale` (and `store check --repair`) write it again.
#[test]
fn a_todo_task_the_claim_index_does_not_show_is_named_and_written_again() {
    if let Some((moto, env)) = dynamo_env() {
        lost_index_entry(&moto, &env);
    }
}

#[test]
fn a_todo_task_the_claim_index_does_not_show_is_found_on_dynalite_too() {
    if let Some((d, env)) = dynalite_env() {
        lost_index_entry(&d, &env);
    }
}

fn lost_index_entry(moto: &dyn Emulator, env: &Env) {
    let long_ago = anamo::clock::now_ms() - 60_000;
    put(
        moto,
        "anamo-tasks",
        &[
            ("collection", "Demo"),
            ("task_id", "lost"),
            ("state", "todo"),
            ("script", "echo lost >> ran.txt"),
            ("claim_shard", "Demo#99"),
        ],
        &[
            ("claimable_at", long_ago),
            ("version", 0),
            ("attempts", 0),
            ("max_attempts", 3),
            ("created_at", long_ago),
            ("updated_at", long_ago),
        ],
    );
    let started = Instant::now();
    let out = env
        .anamo(&["worker", "-c", "Demo"])
        .fails(1)
        .stderr(
            "error: 1 todo task(s) of Demo are in the table but not in the claim index, so no \
             worker can see them (first Demo/lost); `anamo store check --repair` writes them \
             again so the index shows them\n",
        )
        .run();
    assert!(out.contains("0 done"), "{out}");
    assert!(started.elapsed() < Duration::from_secs(30));
    env.anamo(&["tasks", "release-stale"])
        .stderr("Demo/lost: todo but not in the claim index; written again so workers see it\n")
        .run();
    assert!(env.ok(&["worker", "-c", "Demo"]).contains("1 done"));
    assert_eq!(env.read("ran.txt"), "lost\n");
}

/// The claim index shows a task (it has the index keys) that a claim cannot take (no
/// version): a `--wait` worker, held by a task running elsewhere, once asked the index
/// hundreds of times a second for it. Now it counts what it can claim as a claim does, polls
/// with its idle backoff, leaves at --idle-timeout and names the task.
#[test]
fn a_waiting_worker_keeps_to_a_request_budget_when_the_index_shows_what_it_cannot_claim() {
    // Its budget is counted in time windows: a herd beside it would shift its looks.
    let _alone = crate::harness::heavy();
    let Some((moto, env)) = dynamo_env() else {
        return;
    };
    let now = anamo::clock::now_ms();
    let shard = |id: &str| {
        anamo::store::dynamo::claim::shard_key("Demo", anamo::store::dynamo::claim::shard_of(id))
    };
    put(
        &moto,
        "anamo-tasks",
        &[
            ("collection", "Demo"),
            ("task_id", "noversion"),
            ("state", "todo"),
            ("script", "true"),
            ("claim_shard", &shard("noversion")),
        ],
        &[
            ("claimable_at", now - 1_000),
            ("attempts", 0),
            ("max_attempts", 3),
        ],
    );
    // Running elsewhere under a live lease: a --wait worker stays for it.
    put(
        &moto,
        "anamo-tasks",
        &[
            ("collection", "Demo"),
            ("task_id", "elsewhere"),
            ("state", "running"),
            ("script", "true"),
            ("owner", "another-host"),
            ("claim_shard", &shard("elsewhere")),
        ],
        &[
            ("claimable_at", now + 3_600_000),
            ("lease_until", now + 3_600_000),
            ("version", 1),
            ("attempts", 1),
            ("max_attempts", 3),
        ],
    );
    let before = moto.requests().len();
    let started = Instant::now();
    let worker = env
        .anamo(&["worker", "-c", "Demo", "--wait", "--idle-timeout", "25s"])
        .fails(1)
        .stderr_contains("nothing to claim in Demo for 25s; leaving (--idle-timeout)\n")
        .stderr_contains(
            "1 task(s) not claimable: missing or malformed version (first Demo/noversion;",
        )
        .spawn();
    worker.wait(Duration::from_secs(60));
    let took = started.elapsed();
    let sent = &moto.timed_requests()[before..];
    // A look reads the 16 index shards for work, the 16 for waiting tasks and the shard
    // that held a running task (33 requests), with a pause that doubles from 250 ms up to
    // 30 s: 7 looks in the first 16 s, then one every 30 s (about 70 requests a minute).
    // Before, the worker sent some 450 requests a second for ever.
    let mut ops = std::collections::BTreeMap::new();
    for (op, _) in sent {
        *ops.entry(op.clone()).or_insert(0) += 1;
    }
    assert!(
        sent.len() <= 300,
        "{} requests in {took:?}: {ops:?}",
        sent.len()
    );
    // Backed off: the requests come in looks (bursts), each pause twice the one before.
    // 7 looks in the first 16 s, one more by the 25 s idle timeout and the last look there:
    // never more than 9, and the pause before the last regular look was 7 s or more.
    let mut looks: Vec<f64> = vec![];
    let mut prev = f64::MIN;
    for (_, at) in sent {
        if *at - prev > 0.2 {
            looks.push(*at);
        }
        prev = *at;
    }
    let gaps: Vec<String> = looks
        .windows(2)
        .map(|w| format!("{:.1}", w[1] - w[0]))
        .collect();
    assert!(looks.len() <= 9, "{} looks, pauses {gaps:?}", looks.len());
    let n = looks.len();
    assert!(
        n >= 3 && looks[n - 2] - looks[n - 3] >= 7.0,
        "not backed off: pauses between looks {gaps:?}"
    );
}

/// A table made before the change index works as it is (a sync reads it whole and says why);
/// `store init` adds the index, giving older items their shard; the next sync still reads it
/// whole (the index answers only from then on), and the one after reads only what changed.
#[test]
fn a_table_made_before_the_change_index_is_read_whole_until_store_init_adds_it() {
    let Some(moto) = Moto::start() else {
        return;
    };
    hand_made_table(
        &moto,
        "older",
        ScalarAttributeType::S,
        Some(&["state", "attempts", "max_attempts", "version"]),
    );
    // A task an older anamo wrote: no change shard (the ones added below have theirs).
    put(
        &moto,
        "older",
        &[
            ("collection", "Old"),
            ("task_id", "o1"),
            ("state", "done"),
            ("script", "true"),
        ],
        &[
            ("version", 1),
            ("attempts", 1),
            ("max_attempts", 3),
            ("created_at", 1),
            ("updated_at", 1),
        ],
    );
    let env = env_on(&moto, "older");
    // An overlap of a second, so the test need not wait out the default five minutes.
    env.write("anamo.toml", "[sync]\noverlap = \"1s\"\n");
    env.write("t.csv", "task_id,script\nt1,true\nt2,true\n");
    env.ok(&["tasks", "add", "t.csv", "-c", "New"]);
    let out = env.ok(&["sync"]);
    assert!(
        out.contains("(full scan: first sync of this catalog, 3 item(s) read)"),
        "{out}"
    );
    let out = env.ok(&["sync"]);
    assert!(
        out.contains("(full scan: the table has no change index; `anamo store init` adds it"),
        "{out}"
    );
    let out = env.ok(&["store", "init"]);
    assert!(
        out.contains("index by_change added (1 items given their change shard;"),
        "{out}"
    );
    std::thread::sleep(Duration::from_millis(1_100));
    let out = env.ok(&["sync"]);
    assert!(
        out.contains("(full scan: the change index answers only since"),
        "{out}"
    );
    env.ok(&["worker", "-c", "New", "--max-tasks", "1"]);
    let out = env.ok(&["sync"]);
    assert!(
        out.contains("1 changed state, 0 removed") && out.contains("(incremental: changes since"),
        "{out}"
    );
    let out = env.ok(&["sync", "--full"]);
    assert!(out.contains("(full scan: --full, 3 item(s) read)"), "{out}");
}

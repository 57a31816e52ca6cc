//! Every saved report in `queries/` runs on a catalog with known rows and gives the rows it
//! should, value by value. The reports over tasks are checked here on rows written straight
//! into the catalog with fixed times; the others where their data is made (EC2, S3, the
//! progress matrix), as `COVERED` says.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::params;
use serde_json::{Value, json};

use crate::harness::Env;

/// Each shipped report and the test that checks its rows.
const COVERED: &[(&str, &str)] = &[
    (
        "cost-by-sample",
        "cost::cost_by_step_and_by_sample_price_spot_from_ec2_and_on_demand_from_the_table",
    ),
    (
        "cost-by-step",
        "cost::cost_by_step_and_by_sample_price_spot_from_ec2_and_on_demand_from_the_table",
    ),
    (
        "died-holding-tasks",
        "instances_sync::sync_records_instance_transitions_and_the_audits_answer",
    ),
    (
        "dropped-samples",
        "reports::task_reports_give_their_rows_on_known_tasks",
    ),
    ("failed-tasks", "progress::progress_matrix"),
    (
        "files-without-sample",
        "s3_objects::two_thousand_objects_over_two_hundred_samples",
    ),
    (
        "gate-holds",
        "gates::a_held_sample_shows_everywhere_and_a_release_or_a_better_rerun_lets_it_run",
    ),
    (
        "instance-hours-by-step",
        "instances_sync::sync_records_instance_transitions_and_the_audits_answer",
    ),
    (
        "instances-without-work",
        "instances_sync::sync_records_instance_transitions_and_the_audits_answer",
    ),
    (
        "launch-history",
        "launch::dry_run_sends_nothing_and_a_refused_launch_is_recorded",
    ),
    (
        "outputs-missing",
        "s3_objects::outputs_missing_names_reported_files_a_later_listing_did_not_find",
    ),
    (
        "qc-by-step",
        "reported::sync_files_done_runs_metrics_as_qc_and_their_files_as_outputs",
    ),
    ("qc-outliers", "samples_cli::samples_qc_and_steps"),
    (
        "sample-timeline",
        "reports::task_reports_give_their_rows_on_known_tasks",
    ),
    ("samples-done", "progress::progress_matrix"),
    ("samples-left", "progress::progress_matrix"),
    (
        "samples-not-imported",
        "walk::samples_not_in_the_sheet_are_counted_and_named",
    ),
    (
        "samples-missing-files",
        "s3_objects::two_thousand_objects_over_two_hundred_samples",
    ),
    (
        "slowest-tasks",
        "reports::task_reports_give_their_rows_on_known_tasks",
    ),
    (
        "step-outputs",
        "s3_objects::step_outputs_finds_done_tasks_whose_output_is_missing",
    ),
    ("step-progress", "progress::progress_matrix"),
    ("blocked-samples", "progress::progress_matrix"),
    (
        "storage-by-sample",
        "s3_objects::two_thousand_objects_over_two_hundred_samples",
    ),
    (
        "stuck",
        "reports::task_reports_give_their_rows_on_known_tasks",
    ),
    (
        "tasks-per-instance",
        "instances_sync::sync_records_instance_transitions_and_the_audits_answer",
    ),
    (
        "throughput-by-day",
        "reports::task_reports_give_their_rows_on_known_tasks",
    ),
];

#[test]
fn every_shipped_report_has_a_test_of_its_rows() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/queries");
    let shipped: BTreeSet<String> = std::fs::read_dir(dir)
        .expect("queries/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    let covered: BTreeSet<String> = COVERED.iter().map(|(r, _)| r.to_string()).collect();
    assert_eq!(
        shipped, covered,
        "a report in queries/ without a test of its rows, or a test of a report gone"
    );
    // And `anamo reports` lists exactly those.
    let listed: BTreeSet<String> = Env::new()
        .ok(&["reports", "--format", "csv"])
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().to_string())
        .collect();
    assert_eq!(listed, shipped);
}

/// Epoch milliseconds of an RFC 3339 time.
fn ms(at: &str) -> i64 {
    let t = humantime::parse_rfc3339(at).expect("RFC 3339");
    t.duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

/// A task row as sync would have written it.
struct Row<'a> {
    step: &'a str,
    id: &'a str,
    sample: &'a str,
    state: &'a str,
    attempts: i64,
    owner: &'a str,
    lease_until: Option<i64>,
    started: Option<&'a str>,
    finished: Option<&'a str>,
    exit_code: Option<i64>,
    removed: bool,
}

/// Three samples (S1, S2 of cohort ceu; S3 of yri), two steps (Align, then Call) and tasks in
/// every state, at fixed times; `live_lease` is a lease still running (the stuck report reads
/// the clock).
fn known_catalog(env: &Env, live_lease: i64) {
    env.write("samples.csv", "sample_id,cohort\nS1,ceu\nS2,ceu\nS3,yri\n");
    env.ok(&["samples", "import", "samples.csv"]);
    let rows = [
        Row {
            step: "Align",
            id: "a1",
            sample: "S1",
            state: "done",
            attempts: 1,
            owner: "w1",
            lease_until: None,
            started: Some("2026-01-01T10:00:00Z"),
            finished: Some("2026-01-01T10:30:00Z"),
            exit_code: Some(0),
            removed: false,
        },
        Row {
            step: "Align",
            id: "a2",
            sample: "S2",
            state: "done",
            attempts: 2,
            owner: "w2",
            lease_until: None,
            started: Some("2026-01-01T11:00:00Z"),
            finished: Some("2026-01-01T12:30:00Z"),
            exit_code: Some(0),
            removed: false,
        },
        Row {
            step: "Align",
            id: "a3",
            sample: "S3",
            state: "failed",
            attempts: 3,
            owner: "w1",
            lease_until: None,
            started: Some("2026-01-01T12:00:00Z"),
            finished: Some("2026-01-01T13:00:00Z"),
            exit_code: Some(1),
            removed: false,
        },
        Row {
            step: "Call",
            id: "c1",
            sample: "S1",
            state: "done",
            attempts: 1,
            owner: "w1",
            lease_until: None,
            started: Some("2026-01-02T08:00:00Z"),
            finished: Some("2026-01-02T08:06:00Z"),
            exit_code: Some(0),
            removed: false,
        },
        // Its worker died: the lease ran out long ago.
        Row {
            step: "Call",
            id: "c2",
            sample: "S2",
            state: "running",
            attempts: 2,
            owner: "w3",
            lease_until: Some(ms("2026-01-02T09:00:00Z")),
            started: Some("2026-01-02T08:00:00Z"),
            finished: None,
            exit_code: None,
            removed: false,
        },
        // Running, its lease held.
        Row {
            step: "Call",
            id: "c3",
            sample: "S3",
            state: "running",
            attempts: 1,
            owner: "w4",
            lease_until: Some(live_lease),
            started: Some("2026-01-02T10:00:00Z"),
            finished: None,
            exit_code: None,
            removed: false,
        },
        // Deleted from the store while running: abandoned, not stuck.
        Row {
            step: "Call",
            id: "c4",
            sample: "S3",
            state: "running",
            attempts: 1,
            owner: "w5",
            lease_until: Some(ms("2026-01-02T09:30:00Z")),
            started: Some("2026-01-02T09:00:00Z"),
            finished: None,
            exit_code: None,
            removed: true,
        },
    ];
    let conn = env.catalog_rw();
    for r in rows {
        conn.execute(
            "INSERT INTO tasks (collection, task_id, sample, script, state, attempts, max_attempts, \
             owner, lease_until, started_at, finished_at, exit_code, first_seen_at, last_seen_at, \
             removed_at) VALUES (?1, ?2, ?3, 'true', ?4, ?5, 3, ?6, ?7, ?8, ?9, ?10, 1, 1, ?11)",
            params![
                r.step,
                r.id,
                r.sample,
                r.state,
                r.attempts,
                r.owner,
                r.lease_until,
                r.started.map(ms),
                r.finished.map(ms),
                r.exit_code,
                r.removed.then_some(2),
            ],
        )
        .unwrap();
    }
    env.ok(&["steps", "set", "Align", "Call"]);
}

#[test]
fn task_reports_give_their_rows_on_known_tasks() {
    let env = Env::new();
    let live_lease = anamo::clock::now_ms() + 3_600_000;
    known_catalog(&env, live_lease);
    let csv = |args: &[&str]| {
        let mut all = vec!["query"];
        all.extend_from_slice(args);
        all.extend(["--format", "csv"]);
        env.ok(&all)
    };

    // Finished tasks only, longest first; a step and a limit narrow it.
    assert_eq!(
        csv(&["slowest-tasks"]),
        "step,task_id,sample,minutes,owner,started\n\
         Align,a2,S2,90.0,w2,2026-01-01T11:00:00Z\n\
         Align,a1,S1,30.0,w1,2026-01-01T10:00:00Z\n\
         Call,c1,S1,6.0,w1,2026-01-02T08:00:00Z\n"
    );
    assert_eq!(
        csv(&["slowest-tasks", "-p", "step=Align", "-p", "limit=1"]),
        "step,task_id,sample,minutes,owner,started\n\
         Align,a2,S2,90.0,w2,2026-01-01T11:00:00Z\n"
    );

    // Done tasks per day and step, with their mean run time.
    assert_eq!(
        csv(&["throughput-by-day"]),
        "day,step,done,mean_minutes\n\
         2026-01-01,Align,2,60.0\n\
         2026-01-02,Call,1,6.0\n"
    );
    assert_eq!(
        csv(&["throughput-by-day", "-p", "step=Call"]),
        "day,step,done,mean_minutes\n2026-01-02,Call,1,6.0\n"
    );

    // Running past its lease and still in the store: c2 alone (c3 holds its lease, c4 is gone).
    let before = anamo::clock::now_ms();
    let stuck: Vec<Value> =
        serde_json::from_str(&env.ok(&["query", "stuck", "--format", "json"])).unwrap();
    let after = anamo::clock::now_ms();
    assert_eq!(stuck.len(), 1, "{stuck:?}");
    let mut row = stuck[0].clone();
    let overdue = row["minutes_overdue"].take().as_f64().unwrap();
    assert_eq!(
        row,
        json!({
            "step": "Call",
            "task_id": "c2",
            "sample": "S2",
            "owner": "w3",
            "attempts": 2,
            "lease_until": "2026-01-02T09:00:00Z",
            "minutes_overdue": null,
        })
    );
    let lease = ms("2026-01-02T09:00:00Z");
    let (low, high) = (
        (before - lease) as f64 / 60_000.0 - 0.1,
        (after - lease) as f64 / 60_000.0 + 0.1,
    );
    assert!((low..=high).contains(&overdue), "{overdue} minutes overdue");

    // A sample's journey in workflow order, each task as status tells it.
    assert_eq!(
        csv(&["sample-timeline", "-p", "sample=S1"]),
        "step,task_id,state,attempts,owner,started,finished,seconds,exit_code,removed_from_store,\
         gate,step_state\n\
         Align,a1,done,1,w1,2026-01-01T10:00:00Z,2026-01-01T10:30:00Z,1800.0,0,0,,done\n\
         Call,c1,done,1,w1,2026-01-02T08:00:00Z,2026-01-02T08:06:00Z,360.0,0,0,,done\n"
    );
    assert_eq!(
        csv(&["sample-timeline", "-p", "sample=S3"]),
        "step,task_id,state,attempts,owner,started,finished,seconds,exit_code,removed_from_store,\
         gate,step_state\n\
         Align,a3,failed,3,w1,2026-01-01T12:00:00Z,2026-01-01T13:00:00Z,3600.0,1,0,,failed\n\
         Call,c4,abandoned,1,w5,2026-01-02T09:00:00Z,,,,1,,running\n\
         Call,c3,running,1,w4,2026-01-02T10:00:00Z,,,,0,,running\n"
    );

    // Dropped samples, why, when, and how much work they had done (S2: a2).
    assert_eq!(
        csv(&["dropped-samples"]),
        "sample_id,cohort,dropped,drop_reason,tasks_done\n"
    );
    let before = SystemTime::now() - Duration::from_secs(1);
    assert_eq!(
        env.ok(&["samples", "drop", "S2", "--reason", "failed QC"]),
        "dropped sample S2\n"
    );
    let dropped: Vec<Value> =
        serde_json::from_str(&env.ok(&["query", "dropped-samples", "--format", "json"])).unwrap();
    assert_eq!(dropped.len(), 1, "{dropped:?}");
    let mut row = dropped[0].clone();
    let at = row["dropped"].take();
    assert_eq!(
        row,
        json!({
            "sample_id": "S2",
            "cohort": "ceu",
            "dropped": null,
            "drop_reason": "failed QC",
            "tasks_done": 1,
        })
    );
    let at = humantime::parse_rfc3339(at.as_str().unwrap()).unwrap();
    assert!(
        at >= before && at <= SystemTime::now(),
        "dropped at {at:?}, not just now"
    );
}

/// The `instance_costs` view on known rows: a Spot life across two price changes, a Spot
/// instance launched before any known price, and on-demand with and without a table price.
#[test]
fn instance_costs_follow_spot_prices_over_a_life_and_never_price_the_unknown() {
    let env = Env::new();
    env.ok(&["store", "init"]);
    env.ok(&["sync"]);
    let h = 3_600_000i64;
    let conn = env.catalog_rw();
    for (id, market, itype, launched, ended) in [
        ("i-spot", "spot", "m5.large", 0, 10 * h),
        ("i-early", "spot", "m5.large", -3 * h, 2 * h),
        ("i-od", "on-demand", "c5.xlarge", 0, 5 * h),
        ("i-none", "on-demand", "r5.large", 0, 5 * h),
    ] {
        conn.execute(
            "INSERT INTO instances (instance_id, step, state, instance_type, lifecycle, zone, \
             launch_time, terminated_at, first_seen_at, last_seen_at) \
             VALUES (?1, 'A', 'terminated', ?2, ?3, 'eu-west-1a', ?4, ?5, ?4, ?5)",
            params![id, itype, market, launched, ended],
        )
        .unwrap();
    }
    // m5.large in the zone: $0.10 from 1 h before, $0.20 from hour 4, $0.50 after all ended.
    for (at, usd) in [(-h, 0.10), (4 * h, 0.20), (20 * h, 0.50)] {
        conn.execute(
            "INSERT INTO spot_prices VALUES ('m5.large', 'eu-west-1a', ?1, ?2)",
            params![at, usd],
        )
        .unwrap();
    }
    conn.execute(
        "INSERT INTO prices VALUES ('c5.xlarge', 0.17, 'prices set', 0)",
        [],
    )
    .unwrap();
    drop(conn);
    let rows = env.ok(&[
        "query",
        "SELECT instance_id, hours, round(usd, 6) AS usd, priced_by FROM instance_costs \
         ORDER BY instance_id",
        "--format",
        "csv",
    ]);
    assert_eq!(
        rows,
        "instance_id,hours,usd,priced_by\n\
         i-early,5.0,,\n\
         i-none,5.0,,\n\
         i-od,5.0,0.85,price table (prices set)\n\
         i-spot,10.0,1.6,spot price history\n",
        "i-spot: 4 h at $0.10 and 6 h at $0.20; i-early started before any known price, \
         r5.large has none: unpriced, not free"
    );
}

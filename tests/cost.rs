//! What instances cost, on the moto emulator: cost-by-step and cost-by-sample with Spot
//! priced from EC2's history and on-demand from the price table (an unpriced type shown apart,
//! never as free), the cost in `status`, and `anamo prices`.

use std::time::Duration;

use anamo::model::Outcome;
use anamo::store::TaskStore;
use anamo::store::dynamo::DynamoStore;

use crate::harness::FRESH;
use crate::harness::cloud::{Cloud, STEP, TABLE};

#[test]
fn cost_by_step_and_by_sample_price_spot_from_ec2_and_on_demand_from_the_table() {
    let Some(cloud) = Cloud::start(6) else {
        return;
    };
    three_instances_of_twenty_hours_two_tasks_each(&cloud);
    the_cost_reports_price_spot_and_on_demand(&cloud);
    status_says_the_cost_so_far(&cloud);
    the_price_table_is_set_listed_and_checked(&cloud);
}

/// A Spot m5.large, an on-demand c5.xlarge (priced in anamo.toml) and an on-demand r5.large
/// (unpriced), twenty hours each; each ran two tasks, of one hour and three.
fn three_instances_of_twenty_hours_two_tasks_each(cloud: &Cloud) {
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
    let conn = cloud.env.catalog_rw();
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
}

/// A report's rows as CSV cells, its header first.
fn rows(cloud: &Cloud, args: &[&str]) -> Vec<Vec<String>> {
    let mut all = vec!["query"];
    all.extend_from_slice(args);
    all.extend(["--format", "csv"]);
    cloud
        .env
        .ok(&all)
        .lines()
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

fn the_cost_reports_price_spot_and_on_demand(cloud: &Cloud) {
    // Spot: moto's price ($0.00001 an hour) for 20 hours; on demand: c5.xlarge at $0.17 from
    // anamo.toml for 20 hours, r5.large unpriced (its hours shown apart, never as free).
    assert_eq!(
        rows(cloud, &["cost-by-step"]),
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
    let by_sample = rows(cloud, &["cost-by-sample"]);
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
}

fn status_says_the_cost_so_far(cloud: &Cloud) {
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
}

fn the_price_table_is_set_listed_and_checked(cloud: &Cloud) {
    // The price table: set one, list it; nonsense is refused and nothing written.
    cloud.env.ok(&["prices", "set", "r5.large", "0.126"]);
    let list = cloud.env.ok(&["prices", "list"]);
    assert!(
        list.contains("c5.xlarge\t0.17\tanamo.toml\t")
            && list.contains("r5.large\t0.126\tprices set\t"),
        "{list}"
    );
    let priced = rows(cloud, &["cost-by-step"]);
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
    assert_eq!(rows(cloud, &["cost-by-step"])[1][5], "1", "unpriced again");
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

//! anamo's claim against PyAnamo-style scanning, on the moto emulator, in the same run:
//! - anamo: Query the sparse `claimable` index for a few candidates, one conditional update,
//!   then the finishing update (what a worker does per task).
//! - PyAnamo-style: Scan the whole table for a todo item before each claim, then the same
//!   conditional update and finish.
//!
//! At 1k and 10k tasks; prints tasks/s, the ratio, and requests per task for each (counted
//! from the emulator's request log; anamo's claim + finish, uncontended, one worker). Needs moto (scripts/test.sh installs it
//! into .venv). Run: `cargo bench --bench dynamo`.

use std::collections::HashMap;

use std::time::{Duration, Instant};

use anamo::model::{Attrs, NewTask, Outcome};
use anamo::store::TaskStore;
use anamo::store::dynamo::DynamoStore;
use aws_sdk_dynamodb::types::AttributeValue;

#[path = "support/mod.rs"]
mod support;

use support::start_moto;

fn main() {
    let Some((moto, url)) = start_moto() else {
        println!("moto is not installed: run scripts/test.sh once (it installs it into .venv/)");
        return;
    };
    let aws = support::emulator(&url);
    println!("claim+finish on DynamoDB (moto emulator), one worker");
    println!(
        "{:>8} {:>22} {:>22} {:>8} {:>16} {:>16}",
        "tasks",
        "anamo (index) tasks/s",
        "scan-first tasks/s",
        "ratio",
        "anamo req/task",
        "scan req/task"
    );
    for size in [1_000usize, 10_000] {
        let table = format!("bench-{size}");
        DynamoStore::connect(&table, &aws).unwrap().init().unwrap();
        let store = DynamoStore::open(&table, &aws).unwrap();
        let batch: Vec<NewTask> = (0..size)
            .map(|i| NewTask {
                collection: "Alignment".into(),
                task_id: format!("S{i:06}"),
                sample: Some(format!("S{i:06}")),
                script: "align.sh".into(),
                attrs: Attrs::from([("reference".to_string(), "GRCh38".to_string())]),
                max_attempts: 3,
                timeout_secs: None,
                after: vec![],
                require: vec![],
            })
            .collect();
        store.add(&batch, false).unwrap();

        let claims = 100;
        // A fresh handle, as a worker starting up has: no candidates in hand.
        let store = DynamoStore::open(&table, &aws).unwrap();
        let sent_before = moto.requests();
        let started = Instant::now();
        for _ in 0..claims {
            let c = store
                .claim("Alignment", "bench", Duration::from_secs(600))
                .unwrap()
                .unwrap();
            store
                .finish(&c, &Outcome::success(anamo::clock::now_ms()))
                .unwrap()
                .unwrap();
        }
        let anamo_rate = claims as f64 / started.elapsed().as_secs_f64();
        let anamo_requests = (moto.requests() - sent_before) as f64 / claims as f64;

        let scans = if size >= 10_000 { 10 } else { 30 };
        let rt = tokio::runtime::Runtime::new().unwrap();
        let client =
            rt.block_on(async { aws_sdk_dynamodb::Client::new(&anamo::aws::config(&aws).await) });
        let sent_before = moto.requests();
        let started = Instant::now();
        for _ in 0..scans {
            rt.block_on(async {
                // PyAnamo: read the whole table, keep the first todo item.
                let mut first: Option<HashMap<String, AttributeValue>> = None;
                let mut pages = client
                    .scan()
                    .table_name(&table)
                    .filter_expression("#s = :todo")
                    .expression_attribute_names("#s", "state")
                    .expression_attribute_values(":todo", AttributeValue::S("todo".into()))
                    .into_paginator()
                    .send();
                while let Some(page) = pages.next().await {
                    let page = page.unwrap();
                    if first.is_none() {
                        first = page.items.unwrap_or_default().into_iter().next();
                    }
                }
                let item = first.expect("a todo item");
                let key: HashMap<String, AttributeValue> = ["collection", "task_id"]
                    .iter()
                    .map(|k| (k.to_string(), item[*k].clone()))
                    .collect();
                for (set, cond, from) in [
                    ("SET #s = :to", "#s = :from", ("todo", "running")),
                    ("SET #s = :to", "#s = :from", ("running", "done")),
                ] {
                    client
                        .update_item()
                        .table_name(&table)
                        .set_key(Some(key.clone()))
                        .update_expression(set)
                        .condition_expression(cond)
                        .expression_attribute_names("#s", "state")
                        .expression_attribute_values(":from", AttributeValue::S(from.0.into()))
                        .expression_attribute_values(":to", AttributeValue::S(from.1.into()))
                        .send()
                        .await
                        .unwrap();
                }
            });
        }
        let scan_rate = scans as f64 / started.elapsed().as_secs_f64();
        let scan_requests = (moto.requests() - sent_before) as f64 / scans as f64;
        println!(
            "{size:>8} {anamo_rate:>22.1} {scan_rate:>22.2} {:>7.0}x {anamo_requests:>16.2} {scan_requests:>16.2}",
            anamo_rate / scan_rate
        );
    }
}

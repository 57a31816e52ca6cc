//! The item format's own checks: round trips, damage, and that every expression names
//! known attributes and gives each placeholder its value.

use super::*;
use crate::model::{Attrs, Claim, NewTask, Outcome, TaskFilter, TaskKey, TaskState};

#[test]
fn round_trip_and_damage() {
    let t = NewTask {
        collection: "A".into(),
        task_id: "t1".into(),
        sample: Some("S1".into()),
        script: "true".into(),
        attrs: Attrs::from([("ref".to_string(), "hg38".to_string())]),
        max_attempts: 3,
        timeout_secs: Some(60),
        after: vec!["Up".into()],
        require: vec![],
    };
    let item = from_new(&t, 5, 0, TaskState::Todo);
    let back = to_task(&item).unwrap();
    assert_eq!(
        (back.task_id.as_str(), back.attrs["ref"].as_str()),
        ("t1", "hg38")
    );
    let mut broken = item.clone();
    broken.remove("script");
    assert_eq!(
        to_task(&broken).unwrap_err(),
        "missing required attribute 'script'"
    );
    assert_eq!(key_text(&broken), "A/t1");
}

#[test]
fn names_are_found() {
    let n = names_in(&["SET #state = :s, #version = #version + :one", "#owner = :o"]);
    assert_eq!(n.len(), 3);
    assert_eq!(n["#state"], "state");
}

/// Every `#name` of every expression is an attribute this file writes or reads, and every
/// placeholder of a write has its value and the reverse (DynamoDB refuses unused ones).
#[test]
fn expressions_name_known_attributes_and_their_values() {
    let known = [
        COLLECTION,
        TASK_ID,
        SAMPLE,
        SCRIPT,
        ATTRS,
        STATE,
        ATTEMPTS,
        MAX_ATTEMPTS,
        TIMEOUT_SECS,
        OWNER,
        LEASE_UNTIL,
        CREATED_AT,
        UPDATED_AT,
        STARTED_AT,
        FINISHED_AT,
        EXIT_CODE,
        LOG_URI,
        ERROR_TAIL,
        REPORTED,
        REQUIRE,
        GATE_NOTE,
        VERSION,
        CLAIMABLE_AT,
        CLAIM_SHARD,
        AFTER,
        MARKED_AT,
        REMOVED_AT,
        WITHDRAWN,
        RUNS,
        DROPPED_AT,
        REASON,
    ];
    let k = TaskKey {
        collection: "A".into(),
        task_id: "t1".into(),
    };
    let mut task = to_task(&from_new(
        &NewTask {
            collection: "A".into(),
            task_id: "t1".into(),
            sample: None,
            script: "true".into(),
            attrs: Attrs::new(),
            max_attempts: 3,
            timeout_secs: None,
            after: vec![],
            require: vec![],
        },
        5,
        0,
        TaskState::Todo,
    ))
    .unwrap();
    task.owner = Some("w".into());
    let held = Claim { task: task.clone() };
    let mut failed_run = Outcome::success(9);
    failed_run.exit_code = None;
    failed_run.log_uri = Some("s3://b/l".into());
    let updates = [
        claim(&k, 1, "w", 2, 3),
        heartbeat(&held, 1, 2),
        finish(&held, TaskState::Done, &Outcome::success(9), 9),
        finish(&held, TaskState::Todo, &failed_run, 9),
        release(&held, 1),
        requeue_stale(&k, 1, 2),
        fail_lost(&k, 1, 2),
        retry_failed(&task, 1),
        settle(&k, 1, 2, &crate::model::Settle::Run(None)),
        settle(&k, 1, 2, &crate::model::Settle::Hold("held: x".into())),
        settle(&k, 1, 2, &crate::model::Settle::Release("ok".into())),
        set_shard(&k),
    ];
    let filter = TaskFilter {
        collection: None,
        state: Some(TaskState::Todo),
        sample: Some("S".into()),
        task_id: Some("t".into()),
    };
    let reads = [
        in_collection("A"),
        claimable_now("A#00", 1),
        stale_at(1),
        failed(),
        matching(&filter).unwrap(),
        waiting_in("A#00"),
        held_at("A#00", 1),
        of_the_sample("S"),
        marks_of("A"),
        waiting(),
    ];
    let mut texts: Vec<(String, Vec<&str>)> = updates
        .iter()
        .map(|u| {
            let text = format!("{} {}", u.expression, u.condition);
            (text, u.values.iter().map(|(p, _)| *p).collect())
        })
        .collect();
    texts.extend(
        reads
            .iter()
            .map(|e| (e.text.clone(), e.values.iter().map(|(p, _)| *p).collect())),
    );
    for projection in [KEY_VERSION_STATE, KEY_ONLY, KEY_AND_SAMPLE, NO_SHARD] {
        texts.push((projection.to_string(), vec![]));
    }
    for (text, placeholders) in &texts {
        for name in names_in(&[text]).values() {
            assert!(known.contains(&name.as_str()), "{name} in {text}");
        }
        let mut used: Vec<&str> = text
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .filter(|w| w.starts_with(':'))
            .collect();
        used.sort();
        used.dedup();
        let mut given = placeholders.clone();
        given.sort();
        assert_eq!(used, given, "{text}");
    }
}

#[test]
fn old_done_marks_and_tombstones_read_as_removed_tasks() {
    let from_mark = of_sample(&mark("A", "S1", 7)).unwrap();
    assert_eq!(
        (
            from_mark.collection.as_str(),
            from_mark.state,
            from_mark.removed_at
        ),
        ("A", TaskState::Done, Some(7))
    );
    let task = to_task(&from_new(
        &NewTask {
            collection: "A".into(),
            task_id: "S1-L2".into(),
            sample: Some("S1".into()),
            script: "true".into(),
            attrs: Attrs::new(),
            max_attempts: 3,
            timeout_secs: None,
            after: vec![],
            require: vec![],
        },
        5,
        0,
        TaskState::Todo,
    ))
    .unwrap();
    let stone = tombstone(&task, 9, false);
    assert!(is_mark(&stone));
    let back = to_tombstone(&stone).unwrap();
    assert_eq!(
        (
            back.collection.as_str(),
            back.task_id.as_str(),
            back.removed_at
        ),
        ("A", "S1-L2", 9)
    );
    let seen = of_sample(&stone).unwrap();
    assert_eq!(
        (seen.state, seen.removed_at, seen.created_at),
        (TaskState::Todo, Some(9), Some(5))
    );
    assert_eq!(key_of_sample_task(&seen), tombstone_key("A", "S1-L2"));
}

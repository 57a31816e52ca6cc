//! The flow's rules on hand-made sample views.

use super::*;

fn t(collection: &str, id: &str, state: TaskState, after: &[&str]) -> SampleTask {
    SampleTask {
        collection: collection.into(),
        task_id: id.into(),
        state,
        version: 0,
        after: after.iter().map(|s| s.to_string()).collect(),
        created_at: Some(1),
        finished_at: matches!(state, Done | Failed).then_some(2),
        removed_at: None,
        require: vec![],
        gate_note: None,
    }
}

/// A view of live tasks and of done tasks removed from `marks`' steps.
fn view(mut tasks: Vec<SampleTask>, marks: &[&str]) -> SampleView {
    for m in marks {
        let mut gone = t(m, "", Done, &[]);
        gone.removed_at = Some(3);
        tasks.push(gone);
    }
    SampleView { tasks }
}

fn after(steps: &[&str]) -> Vec<String> {
    steps.iter().map(|s| s.to_string()).collect()
}

use TaskState::*;

#[test]
fn a_step_is_done_when_every_task_of_the_sample_there_is() {
    let v = view(
        vec![t("A", "L1", Done, &[]), t("A", "L2", Running, &[])],
        &[],
    );
    assert_eq!(outlook(&v, &after(&["A"])), Outlook::WillRun);
    let v = view(vec![t("A", "L1", Done, &[]), t("A", "L2", Done, &[])], &[]);
    assert_eq!(outlook(&v, &after(&["A"])), Outlook::Ready);
}

#[test]
fn a_failed_or_missing_upstream_blocks() {
    let v = view(
        vec![t("A", "L1", Failed, &[]), t("A", "L2", Running, &[])],
        &[],
    );
    assert_eq!(outlook(&v, &after(&["A"])), Outlook::Blocked);
    assert_eq!(
        outlook(&view(vec![], &[]), &after(&["A"])),
        Outlook::Blocked
    );
}

#[test]
fn deleted_done_tasks_count_through_their_mark_until_a_new_task_is_added() {
    assert_eq!(
        outlook(&view(vec![], &["A"]), &after(&["A"])),
        Outlook::Ready
    );
    let v = view(vec![t("A", "again", Todo, &[])], &["A"]);
    assert_eq!(outlook(&v, &after(&["A"])), Outlook::WillRun);
}

#[test]
fn every_named_step_must_be_done() {
    let v = view(vec![t("A", "a", Done, &[]), t("B", "b", Todo, &[])], &[]);
    assert_eq!(outlook(&v, &after(&["A", "B"])), Outlook::WillRun);
    let v = view(vec![t("A", "a", Done, &[]), t("B", "b", Failed, &[])], &[]);
    assert_eq!(outlook(&v, &after(&["A", "B"])), Outlook::Blocked);
}

#[test]
fn a_chain_is_followed_to_its_root() {
    // C waits for B, which waits for A: C's fate is A's.
    let chain = |a: TaskState| {
        view(
            vec![
                t("A", "a", a, &[]),
                t("B", "b", Waiting, &["A"]),
                t("C", "c", Waiting, &["B"]),
            ],
            &[],
        )
    };
    assert_eq!(outlook(&chain(Running), &after(&["B"])), Outlook::WillRun);
    assert_eq!(outlook(&chain(Failed), &after(&["B"])), Outlook::Blocked);
    // B may run now (A done) but has not yet: C will run.
    assert_eq!(outlook(&chain(Done), &after(&["B"])), Outlook::WillRun);
    let ready_now: Vec<_> = ready(&chain(Done), None)
        .iter()
        .map(|t| t.task_id.clone())
        .collect();
    assert_eq!(ready_now, vec!["b"]);
}

#[test]
fn a_replaced_failure_no_longer_blocks_a_failed_lane_does() {
    let mut fixed = t("A", "S-v2", Done, &[]);
    fixed.created_at = Some(5);
    let v = view(vec![t("A", "S", Failed, &[]), fixed], &[]);
    assert_eq!(outlook(&v, &after(&["A"])), Outlook::Ready);
    let v = view(
        vec![t("A", "L1", Failed, &[]), t("A", "L2", Done, &[])],
        &[],
    );
    assert_eq!(outlook(&v, &after(&["A"])), Outlook::Blocked);
    // The failed lane deleted on purpose: the sample is done without it.
    let mut deleted = t("A", "L1", Failed, &[]);
    deleted.removed_at = Some(4);
    let v = view(vec![deleted, t("A", "L2", Done, &[])], &[]);
    assert_eq!(outlook(&v, &after(&["A"])), Outlook::Ready);
}

#[test]
fn a_loop_is_blocked_not_followed_forever() {
    let v = view(
        vec![t("A", "a", Waiting, &["B"]), t("B", "b", Waiting, &["A"])],
        &[],
    );
    assert_eq!(outlook(&v, &after(&["A"])), Outlook::Blocked);
}

#[test]
fn a_new_task_starts_by_its_upstream() {
    let new = |after: &[&str]| NewTask {
        collection: "C".into(),
        task_id: "c".into(),
        sample: Some("S".into()),
        script: "true".into(),
        attrs: Default::default(),
        max_attempts: 3,
        timeout_secs: None,
        after: after.iter().map(|s| s.to_string()).collect(),
        require: vec![],
    };
    let v = view(vec![t("A", "a", Done, &[]), t("B", "b", Todo, &[])], &[]);
    assert_eq!(initial_state(&v, &new(&[])), Ok(Todo));
    assert_eq!(initial_state(&v, &new(&["A"])), Ok(Todo));
    assert_eq!(initial_state(&v, &new(&["A", "B"])), Ok(Waiting));
    assert_eq!(
        initial_state(&v, &new(&["A", "X"])),
        Err(Refusal::Missing("X".into()))
    );
    // B waits for C: C after B is a loop, also when both tasks have one id (one batch).
    for id in ["b", "c"] {
        let v = view(vec![t("B", id, Waiting, &["C"])], &[]);
        assert_eq!(
            initial_state(&v, &new(&["B"])),
            Err(Refusal::Loop("B".into()))
        );
    }
}

//! The flow between steps. A task added `--after STEP` waits until every task of its sample in
//! STEP is done; the worker that finishes the last of them promotes it to `todo`. The rules
//! here are plain functions of one sample's tasks (a [`SampleView`]), so both stores decide
//! alike; the store only reads a sample's tasks and makes the conditional write
//! `waiting -> todo` (at the version read, so applying a promotion twice changes nothing).
//!
//! An upstream step counts as done for a sample when all its tasks of that sample are done,
//! or when it has none left but done ones were deleted from the store (a done-mark, kept per
//! step and sample by `delete`). A failed upstream task holds its downstream tasks: a person
//! retries or deletes it.

use crate::error::Result;
use crate::model::{NewTask, SampleTask, SampleView, Survey, TaskState};
use crate::store::TaskStore;

/// Chains longer than this are taken for a loop (A after B after A): blocked, not followed.
const MAX_DEPTH: usize = 32;

/// Where a sample stands in one upstream step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Upstream {
    Done,
    /// Some of its tasks are still under way (or waiting themselves).
    Pending,
    /// A task failed for good: only a person can release what waits on it.
    Failed,
    /// The step has no task for the sample, and never had a done one.
    Missing,
}

fn upstream(view: &SampleView, step: &str) -> Upstream {
    let mut tasks = view
        .tasks
        .iter()
        .filter(|t| t.collection == step)
        .peekable();
    if tasks.peek().is_none() {
        return if view.done_marks.iter().any(|m| m == step) {
            Upstream::Done
        } else {
            Upstream::Missing
        };
    }
    let mut all_done = true;
    for t in tasks {
        match t.state {
            TaskState::Failed => return Upstream::Failed,
            TaskState::Done => {}
            _ => all_done = false,
        }
    }
    if all_done {
        Upstream::Done
    } else {
        Upstream::Pending
    }
}

/// What lies ahead of a waiting task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outlook {
    /// Every upstream step is done: it may run now.
    Ready,
    /// Upstream work is under way: it will become claimable without anyone acting.
    WillRun,
    /// An upstream task failed, or an upstream step has no task for the sample.
    Blocked,
}

/// The outlook of a task waiting for `after` in `view`.
pub fn outlook(view: &SampleView, after: &[String]) -> Outlook {
    outlook_at(view, after, 0)
}

fn outlook_at(view: &SampleView, after: &[String], depth: usize) -> Outlook {
    if depth > MAX_DEPTH {
        return Outlook::Blocked;
    }
    let mut ready = true;
    for step in after {
        match upstream(view, step) {
            Upstream::Done => {}
            Upstream::Failed | Upstream::Missing => return Outlook::Blocked,
            Upstream::Pending => {
                ready = false;
                if !pending_will_finish(view, step, depth) {
                    return Outlook::Blocked;
                }
            }
        }
    }
    if ready {
        Outlook::Ready
    } else {
        Outlook::WillRun
    }
}

/// Whether a pending step's unfinished tasks of the sample will finish by themselves: one is
/// claimable or running, or every waiting one will run.
fn pending_will_finish(view: &SampleView, step: &str, depth: usize) -> bool {
    let unfinished = view
        .tasks
        .iter()
        .filter(|t| t.collection == step && t.state != TaskState::Done);
    for t in unfinished {
        let moving = match t.state {
            TaskState::Todo | TaskState::Running => true,
            TaskState::Waiting => outlook_at(view, &t.after, depth + 1) != Outlook::Blocked,
            TaskState::Done | TaskState::Failed => false,
        };
        if !moving {
            return false;
        }
    }
    true
}

/// Why a new task cannot be added as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// This upstream step has no task for the sample (allowed on request).
    Missing(String),
    /// Through this upstream step, the sample's tasks wait for the task's own step: a loop that
    /// would never run (never allowed).
    Loop(String),
}

/// The state a new task starts in, seen against its sample's tasks (those of its own batch
/// included): `todo` when it waits for nothing or its upstream is done, else `waiting`.
pub fn initial_state(view: &SampleView, task: &NewTask) -> std::result::Result<TaskState, Refusal> {
    if task.after.is_empty() {
        return Ok(TaskState::Todo);
    }
    if let Some(step) = loop_through(view, task) {
        return Err(Refusal::Loop(step));
    }
    if let Some(missing) = task
        .after
        .iter()
        .find(|s| upstream(view, s) == Upstream::Missing)
    {
        return Err(Refusal::Missing(missing.clone()));
    }
    Ok(match outlook(view, &task.after) {
        Outlook::Ready => TaskState::Todo,
        _ => TaskState::Waiting,
    })
}

/// The upstream step through which the sample's tasks wait, step after step, for the task's
/// own step; `None` when there is no loop.
fn loop_through(view: &SampleView, task: &NewTask) -> Option<String> {
    for first in &task.after {
        let mut seen: Vec<&str> = vec![];
        let mut next: Vec<&str> = vec![first];
        while let Some(step) = next.pop() {
            if step == task.collection {
                return Some(first.clone());
            }
            if seen.contains(&step) {
                continue;
            }
            seen.push(step);
            // (`step` is never the task's own: that returned above.)
            let upstream = view.tasks.iter().filter(|t| t.collection == step);
            next.extend(upstream.flat_map(|t| t.after.iter().map(String::as_str)));
        }
    }
    None
}

/// The error that refuses a batch for `refusal` (`count` tasks of it refused the same way);
/// `step_exists`: whether the store holds any task (or done-mark) of the step named, so that a
/// misspelt step is not answered with "add its tasks first".
pub fn refused(
    task: &NewTask,
    refusal: &Refusal,
    count: usize,
    step_exists: bool,
) -> crate::error::Error {
    match refusal {
        Refusal::Missing(step) if !step_exists => crate::error::Error::Invalid(format!(
            "task '{}' of {} waits for step '{step}', which has no task at all in the store; \
             check the name (`anamo tasks counts` lists the collections; names are \
             case-sensitive), or pass --allow-missing-upstream if its tasks come later; \
             nothing was added",
            task.task_id, task.collection
        )),
        Refusal::Missing(step) => missing_upstream(task, step, count),
        Refusal::Loop(step) => crate::error::Error::Invalid(format!(
            "task '{}' of {} waits for {step}, whose tasks of sample '{}' wait (through \
             --after) for {} again: a loop that would never run; nothing was added",
            task.task_id,
            task.collection,
            task.sample.as_deref().unwrap_or(""),
            task.collection
        )),
    }
}

/// The error that refuses a batch with a task whose sample has no task upstream.
fn missing_upstream(task: &NewTask, step: &str, count: usize) -> crate::error::Error {
    let more = if count > 1 {
        format!(" (and {} more task(s) like it)", count - 1)
    } else {
        String::new()
    };
    crate::error::Error::Invalid(format!(
        "task '{}' of {} waits for sample '{}' in {step}, which has no task for it{more}; \
         nothing was added: add {step}'s tasks first, or pass --allow-missing-upstream",
        task.task_id,
        task.collection,
        task.sample.as_deref().unwrap_or("")
    ))
}

/// The waiting tasks of `view` that may run now, in `collection` when given.
pub fn ready<'a>(view: &'a SampleView, collection: Option<&'a str>) -> Vec<&'a SampleTask> {
    view.tasks
        .iter()
        .filter(|t| t.state == TaskState::Waiting)
        .filter(|t| collection.is_none_or(|c| t.collection == c))
        .filter(|t| outlook(view, &t.after) == Outlook::Ready)
        .collect()
}

/// Promotes the waiting tasks of `sample` whose upstream is done; how many it moved. What a
/// worker calls after a task of the sample ends done. Safe to repeat: each write is
/// conditional on the task still waiting at the version read.
pub fn promote<S: TaskStore + ?Sized>(store: &S, sample: &str) -> Result<u64> {
    let view = store.sample_view(sample)?;
    let mut moved = 0;
    for t in ready(&view, None) {
        moved += store.promote_task(&t.collection, &t.task_id, t.version)? as u64;
    }
    Ok(moved)
}

/// Looks at the waiting tasks of `collection` (all when `None`): promotes those whose upstream
/// is done (a promotion a crash skipped), and counts those that will run and those blocked.
/// With `first_alive`, stops at the first task that will run (enough to know a `--wait`
/// worker should stay); samples are visited from a random place, so that repeated looks do not
/// always stop at the same one.
pub fn survey<S: TaskStore + ?Sized>(
    store: &S,
    collection: Option<&str>,
    first_alive: bool,
) -> Result<Survey> {
    let mut samples = store.waiting_samples(collection)?;
    if !samples.is_empty() {
        let start = (crate::clock::now_ms() as usize) % samples.len();
        samples.rotate_left(start);
    }
    let mut survey = Survey::default();
    // A few views at a time: enough for a store that reads them in parallel, few enough that
    // a look which stops at the first task that will run reads little more than it needs.
    let views = samples
        .chunks(if first_alive { 4 } else { 64 })
        .map(|chunk| store.sample_views(chunk));
    for views in views {
        for view in views? {
            look_at(store, &view, collection, &mut survey)?;
        }
        if first_alive && survey.promoted + survey.will_run > 0 {
            break;
        }
    }
    Ok(survey)
}

/// Counts (and promotes) the waiting tasks of one sample's view, in `collection` when given.
fn look_at<S: TaskStore + ?Sized>(
    store: &S,
    view: &SampleView,
    collection: Option<&str>,
    survey: &mut Survey,
) -> Result<()> {
    let waiting = view
        .tasks
        .iter()
        .filter(|t| t.state == TaskState::Waiting)
        .filter(|t| collection.is_none_or(|c| t.collection == c));
    for t in waiting {
        match outlook(view, &t.after) {
            Outlook::Ready => {
                if store.promote_task(&t.collection, &t.task_id, t.version)? {
                    survey.promoted += 1;
                } else {
                    // Moved by someone else meanwhile: it is not waiting any more.
                    survey.will_run += 1;
                }
            }
            Outlook::WillRun => survey.will_run += 1,
            Outlook::Blocked => survey.blocked += 1,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(collection: &str, id: &str, state: TaskState, after: &[&str]) -> SampleTask {
        SampleTask {
            collection: collection.into(),
            task_id: id.into(),
            state,
            version: 0,
            after: after.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn view(tasks: Vec<SampleTask>, marks: &[&str]) -> SampleView {
        SampleView {
            tasks,
            done_marks: marks.iter().map(|s| s.to_string()).collect(),
        }
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
}

//! The flow between steps. A task added `--after STEP` waits until its sample's state in STEP
//! is done, by the one rule in `standing.rs` (lanes, replacements, removed tasks); the worker
//! that finishes the last upstream task promotes it to `todo`. The rules here are plain
//! functions of one sample's tasks (a [`SampleView`]: live tasks and the store's tombstones),
//! so both stores decide alike; the store only reads a sample's tasks and makes the
//! conditional write `waiting -> todo` (at the version read, so applying a promotion twice
//! changes nothing). A failed (not superseded) or abandoned upstream holds its downstream
//! tasks: a person retries, replaces or deletes.

use crate::error::Result;
use crate::model::{NewTask, SampleTask, SampleView, Survey, TaskState};
use crate::standing::{self, Facts, Standing, StepState};
use crate::store::TaskStore;

/// Chains longer than this are taken for a loop (A after B after A): blocked, not followed.
const MAX_DEPTH: usize = 32;

/// The rule's facts of a task of the view.
fn facts(t: &SampleTask) -> Facts {
    Facts {
        state: t.state,
        created_at: t.created_at,
        finished_at: t.finished_at,
        removed: !t.is_live(),
    }
}

/// The sample's tasks in `step` (live and removed) and the standing of each.
fn in_step<'a>(view: &'a SampleView, step: &str) -> Vec<(&'a SampleTask, Standing)> {
    let tasks: Vec<&SampleTask> = view.tasks.iter().filter(|t| t.collection == step).collect();
    let all: Vec<Facts> = tasks.iter().map(|t| facts(t)).collect();
    let standings = standing::standings(&all, false);
    tasks.into_iter().zip(standings).collect()
}

/// The sample's state in `step`, by the one rule (the store knows nothing of dropped samples:
/// dropping withdraws their tasks, which then stand abandoned).
pub fn step_state(view: &SampleView, step: &str) -> StepState {
    let standings: Vec<Standing> = in_step(view, step).into_iter().map(|(_, s)| s).collect();
    standing::step_state(&standings, false)
}

/// The done task that replaced the failed task `task_id` of `step` (live or removed), when one
/// did.
pub fn superseded_by(view: &SampleView, step: &str, task_id: &str) -> Option<String> {
    let tasks = in_step(view, step);
    let (failed, standing) = tasks.iter().find(|(t, _)| t.task_id == task_id)?;
    if *standing != Standing::Superseded {
        return None;
    }
    tasks
        .iter()
        .filter(|(t, s)| {
            *s == Standing::Done && standing::added_after_failure(&facts(failed), &facts(t))
        })
        .map(|(t, _)| t.task_id.clone())
        .find(|id| !id.is_empty())
}

/// Retries the failed tasks `selector` names, except those a fix has replaced (superseded by a
/// done task added after they failed): retrying one would run finished work again. Returns how
/// many were retried, and each (task, the done task that replaced it) left alone.
pub fn retry_unreplaced(
    store: &dyn TaskStore,
    collection: &str,
    selector: &crate::model::Selector,
) -> Result<(u64, Vec<(String, String)>)> {
    if let crate::model::Selector::State(s) = selector
        && *s != TaskState::Failed
    {
        return Err(crate::error::Error::Invalid(format!(
            "only failed tasks can be retried, not {s} ones"
        )));
    }
    let filter = crate::model::TaskFilter {
        collection: Some(collection.to_string()),
        state: Some(TaskState::Failed),
        ..Default::default()
    };
    let mut chosen = vec![];
    let mut replaced = vec![];
    crate::store::for_each_task(store, &filter, 1_000, |t| {
        let Ok(t) = t else {
            return Ok(std::ops::ControlFlow::Continue(()));
        };
        if selector.matches(&t) {
            let by = match &t.sample {
                Some(sample) => superseded_by(&store.sample_view(sample)?, collection, &t.task_id),
                None => None,
            };
            match by {
                Some(by) => replaced.push((t.task_id, by)),
                None => chosen.push(t.task_id),
            }
        }
        Ok(std::ops::ControlFlow::Continue(()))
    })?;
    let mut retried = 0;
    for ids in chosen.chunks(500) {
        retried += store.retry(collection, &crate::model::Selector::Ids(ids.to_vec()))?;
    }
    Ok((retried, replaced))
}

/// Where a sample stands in one upstream step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Upstream {
    Done,
    /// Some of its tasks are still under way (or waiting themselves).
    Pending,
    /// A task failed for good, or every task was removed: only a person can release what
    /// waits on it.
    Failed,
    /// The step has no task for the sample, and never had one.
    Missing,
}

fn upstream(view: &SampleView, step: &str) -> Upstream {
    match step_state(view, step) {
        StepState::Done => Upstream::Done,
        StepState::Running | StepState::Todo | StepState::Waiting => Upstream::Pending,
        StepState::Failed | StepState::Abandoned | StepState::Dropped => Upstream::Failed,
        StepState::NotAdded => Upstream::Missing,
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
            // A failure whose fix (a task added after it) is under way is work that will run.
            Upstream::Failed if replaced_soon(view, step, depth) => ready = false,
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

/// Whether every failed task of the sample in `step` has its fix under way: a task of the step
/// added after it failed that is todo, running, or waiting on work that will run. Such a
/// failure will stand superseded without anyone acting (once the fix is done).
fn replaced_soon(view: &SampleView, step: &str, depth: usize) -> bool {
    let tasks = in_step(view, step);
    let mut failed = tasks
        .iter()
        .filter(|(_, s)| *s == Standing::Failed)
        .peekable();
    if failed.peek().is_none() {
        return false;
    }
    failed.all(|(f, _)| {
        tasks.iter().any(|(r, standing)| {
            r.is_live()
                && standing::added_after_failure(&facts(f), &facts(r))
                && match standing {
                    Standing::Todo | Standing::Running => true,
                    Standing::Waiting => outlook_at(view, &r.after, depth + 1) != Outlook::Blocked,
                    _ => false,
                }
        })
    })
}

/// Whether a pending step's unfinished tasks of the sample will finish by themselves: one is
/// claimable or running, or every waiting one will run.
fn pending_will_finish(view: &SampleView, step: &str, depth: usize) -> bool {
    for (t, standing) in in_step(view, step) {
        let moving = match standing {
            Standing::Todo | Standing::Running => true,
            Standing::Waiting => outlook_at(view, &t.after, depth + 1) != Outlook::Blocked,
            Standing::Done | Standing::Superseded | Standing::Abandoned => continue,
            Standing::Failed | Standing::Dropped => false,
        };
        if !moving {
            return false;
        }
    }
    true
}

/// Whether a new waiting task is blocked already: an upstream step of its sample failed or was
/// abandoned, so nothing runs it until a person acts (a step not added yet is not counted:
/// its tasks may be on their way).
pub fn blocked_now(view: &SampleView, task: &NewTask) -> bool {
    held_by_a_person(view, &task.after, 0)
}

/// Whether, in a step of `after` or further up, the sample's tasks failed or were removed
/// undone: only a person can release what waits on that.
fn held_by_a_person(view: &SampleView, after: &[String], depth: usize) -> bool {
    if depth > MAX_DEPTH {
        return false;
    }
    after.iter().any(|step| match upstream(view, step) {
        Upstream::Failed => !replaced_soon(view, step, depth),
        Upstream::Pending => in_step(view, step).iter().any(|(t, standing)| {
            *standing == Standing::Waiting && held_by_a_person(view, &t.after, depth + 1)
        }),
        Upstream::Done | Upstream::Missing => false,
    })
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
            let upstream = view
                .tasks
                .iter()
                .filter(|t| t.is_live() && t.collection == step);
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
    waiting_outlooks(view, collection)
        .filter(|(_, o)| *o == Outlook::Ready)
        .map(|(t, _)| t)
        .collect()
}

/// The live waiting tasks of `view` (in `collection` when given), each with its outlook.
fn waiting_outlooks<'a>(
    view: &'a SampleView,
    collection: Option<&'a str>,
) -> impl Iterator<Item = (&'a SampleTask, Outlook)> + 'a {
    view.tasks
        .iter()
        .filter(|t| t.is_live() && t.state == TaskState::Waiting)
        .filter(move |t| collection.is_none_or(|c| t.collection == c))
        .map(move |t| (t, outlook(view, &t.after)))
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

/// The samples with a waiting task in `collection` that will run without anyone acting (its
/// upstream done or under way, a failure's fix included), and those blocked: what a `--wait`
/// launch counts as work, by the same rule its workers stay by. Reads only.
pub fn waiting_samples_by_outlook<S: TaskStore + ?Sized>(
    store: &S,
    collection: &str,
) -> Result<(u64, u64)> {
    let samples = store.waiting_samples(Some(collection))?;
    let (mut will_run, mut blocked) = (0, 0);
    for chunk in samples.chunks(64) {
        for view in store.sample_views(chunk)? {
            let outlooks: Vec<Outlook> = waiting_outlooks(&view, Some(collection))
                .map(|(_, o)| o)
                .collect();
            if outlooks.iter().any(|o| *o != Outlook::Blocked) {
                will_run += 1;
            } else if !outlooks.is_empty() {
                blocked += 1;
            }
        }
    }
    Ok((will_run, blocked))
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
        let start = crate::backoff::below(samples.len() as u64) as usize;
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
    for (t, outlook) in waiting_outlooks(view, collection) {
        match outlook {
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
            created_at: Some(1),
            finished_at: matches!(state, Done | Failed).then_some(2),
            removed_at: None,
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

//! The flow between steps. A task added `--after STEP` waits until its sample's state in STEP
//! is done, by the one rule in `standing.rs` (lanes, replacements, removed tasks); the worker
//! that finishes the last upstream task promotes it to `todo`. The rules here are plain
//! functions of one sample's tasks (a [`SampleView`]: live tasks and the store's tombstones),
//! so both stores decide alike; the store only reads a sample's tasks and makes the
//! conditional write `waiting -> todo` (at the version read, so applying a promotion twice
//! changes nothing). A failed (not superseded) or abandoned upstream holds its downstream
//! tasks: a person retries, replaces or deletes. A task with QC gates (`--require`) whose
//! upstream is done is judged on what its upstream reported: `todo`, or `held` with the reason,
//! which holds what waits on it as a failure does. Here the rules; `admit.rs` the state a new
//! task starts in; `gates.rs` the verdict of a task's gates; `drive.rs` the promotions and
//! looks made against a store.

mod admit;
mod drive;
mod gates;

pub use admit::{Refusal, initial_state, refused};
pub use drive::{promote, retry_unreplaced, settle_gated, survey, waiting_samples_by_outlook};

use crate::model::{NewTask, SampleTask, SampleView, TaskState};
use crate::standing::{self, Facts, Standing, StepState};

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
        // Held by a gate: a person decides, as for a failure.
        StepState::Failed | StepState::Held | StepState::Abandoned | StepState::Dropped => {
            Upstream::Failed
        }
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
            Standing::Failed | Standing::Held | Standing::Dropped => false,
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

/// The live waiting and held tasks of `view` whose upstream is done: the flow settles each
/// (`todo`, or `held` by its gates), in `collection` when given. A held task is judged again
/// here, so a re-run upstream that passes its gates lets it run.
pub fn ready<'a>(view: &'a SampleView, collection: Option<&'a str>) -> Vec<&'a SampleTask> {
    view.tasks
        .iter()
        .filter(|t| t.is_live() && matches!(t.state, TaskState::Waiting | TaskState::Held))
        .filter(|t| collection.is_none_or(|c| t.collection == c))
        .filter(|t| outlook(view, &t.after) == Outlook::Ready)
        .collect()
}

/// The live held tasks of `view` (in `collection` when given) whose upstream is no longer
/// done: a re-run or a new lane is under way there (or failed), so they wait again, to be
/// judged on what it reports rather than on the run that held them.
pub fn rewaiting<'a>(view: &'a SampleView, collection: Option<&'a str>) -> Vec<&'a SampleTask> {
    view.tasks
        .iter()
        .filter(|t| t.is_live() && t.state == TaskState::Held)
        .filter(|t| collection.is_none_or(|c| t.collection == c))
        .filter(|t| {
            t.after
                .iter()
                .any(|step| upstream(view, step) != Upstream::Done)
        })
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

#[cfg(test)]
mod tests;

//! Whether and how a new task enters the flow: the state it starts in against its sample's
//! tasks, and the refusals (an upstream step without a task for the sample, a loop) worded.

use super::{Outlook, Upstream, outlook, upstream};
use crate::model::{NewTask, SampleView, TaskState};

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
        // A gated task is judged on its upstream's reports by the settling that follows the
        // add (flow::settle_gated), the same judgement a promotion makes.
        Outlook::Ready if task.require.is_empty() => TaskState::Todo,
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

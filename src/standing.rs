//! The product's one rule: a task's standing in its step, and a sample's state in a step. The
//! flow's promotion (both stores), `tasks add`'s skip note and the catalog's views agree with
//! these two functions; the model-based test (tests/model.rs) holds every surface to them. The
//! README's "Progress, defined once" says the same in words. Pure: no I/O, no store, no SQL.

use std::fmt;

use crate::model::TaskState;

/// What the rule needs to know of one task of a sample in a step, live or removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts {
    pub state: TaskState,
    /// When it was added (epoch ms); `None` when not known (an old done-mark).
    pub created_at: Option<i64>,
    /// When its last run ended (epoch ms): for a failed task, when it failed.
    pub finished_at: Option<i64>,
    /// Removed from the store (deleted, or withdrawn with its sample).
    pub removed: bool,
}

/// A task's standing in its step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Standing {
    Waiting,
    /// Held by a QC gate: a person releases it, or a re-run upstream passes the gate.
    Held,
    Todo,
    Running,
    Failed,
    /// Done in the store, or done and removed since.
    Done,
    /// Failed, and a task of the same sample and step added after that failure is done.
    Superseded,
    /// Removed while not done and not superseded.
    Abandoned,
    /// Its sample is dropped from the study: set apart from every count.
    Dropped,
}

impl Standing {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Waiting => "waiting",
            Self::Held => "held",
            Self::Todo => "todo",
            Self::Running => "running",
            Self::Failed => "failed",
            Self::Done => "done",
            Self::Superseded => "superseded",
            Self::Abandoned => "abandoned",
            Self::Dropped => "dropped",
        }
    }
}

impl fmt::Display for Standing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The standing of each of one sample's tasks in one step (same order as `tasks`).
pub fn standings(tasks: &[Facts], sample_dropped: bool) -> Vec<Standing> {
    tasks
        .iter()
        .map(|t| standing(t, tasks, sample_dropped))
        .collect()
}

/// The standing of `task` among `step_tasks` (its sample's tasks in its step, itself included).
pub fn standing(task: &Facts, step_tasks: &[Facts], sample_dropped: bool) -> Standing {
    if sample_dropped {
        return Standing::Dropped;
    }
    match task.state {
        TaskState::Done => Standing::Done,
        TaskState::Failed if superseded(task, step_tasks) => Standing::Superseded,
        _ if task.removed => Standing::Abandoned,
        TaskState::Failed => Standing::Failed,
        TaskState::Running => Standing::Running,
        TaskState::Todo => Standing::Todo,
        TaskState::Waiting => Standing::Waiting,
        TaskState::Held => Standing::Held,
    }
}

/// Whether a failed task has a done task beside it that was added after it failed: a
/// replacement.
fn superseded(failed: &Facts, step_tasks: &[Facts]) -> bool {
    step_tasks
        .iter()
        .any(|r| r.state == TaskState::Done && added_after_failure(failed, r))
}

/// Whether `other` was added after `failed` failed: what makes a task of the same sample and
/// step a replacement (or a fix under way), not a lane. A lane added before the failure never
/// is; when either time is unknown, it is not.
pub fn added_after_failure(failed: &Facts, other: &Facts) -> bool {
    failed
        .finished_at
        .is_some_and(|at| other.created_at.is_some_and(|added| added >= at))
}

/// A sample's state in one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StepState {
    /// It has no task there.
    NotAdded,
    Dropped,
    /// A task failed and nothing replaced it.
    Failed,
    /// A task is held by a QC gate (and none failed).
    Held,
    Running,
    Todo,
    Waiting,
    /// At least one task done, every other one done, superseded or abandoned.
    Done,
    /// Every task there was removed before it was done.
    Abandoned,
}

impl StepState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotAdded => "not added",
            Self::Dropped => "dropped",
            Self::Failed => "failed",
            Self::Held => "held",
            Self::Running => "running",
            Self::Todo => "todo",
            Self::Waiting => "waiting",
            Self::Done => "done",
            Self::Abandoned => "abandoned",
        }
    }
}

impl fmt::Display for StepState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A sample's state in a step from the standings of its tasks there. The first that holds:
/// dropped, not added, failed, held, running, todo, waiting, done, abandoned.
pub fn step_state(standings: &[Standing], sample_dropped: bool) -> StepState {
    if sample_dropped {
        return StepState::Dropped;
    }
    if standings.is_empty() {
        return StepState::NotAdded;
    }
    let any = |s: Standing| standings.contains(&s);
    if any(Standing::Failed) {
        StepState::Failed
    } else if any(Standing::Held) {
        StepState::Held
    } else if any(Standing::Running) {
        StepState::Running
    } else if any(Standing::Todo) {
        StepState::Todo
    } else if any(Standing::Waiting) {
        StepState::Waiting
    } else if any(Standing::Done) {
        StepState::Done
    } else if any(Standing::Dropped) {
        StepState::Dropped
    } else {
        StepState::Abandoned
    }
}

/// `step_state` straight from the facts of a sample's tasks in a step.
pub fn state_of(tasks: &[Facts], sample_dropped: bool) -> StepState {
    step_state(&standings(tasks, sample_dropped), sample_dropped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use TaskState::*;

    fn f(state: TaskState, created: i64, finished: Option<i64>, removed: bool) -> Facts {
        Facts {
            state,
            created_at: Some(created),
            finished_at: finished,
            removed,
        }
    }

    #[test]
    fn a_failed_lane_holds_the_sample_a_replacement_does_not() {
        // Two lanes added together, one failed: the sample misses that lane.
        let lanes = [f(Done, 1, Some(5), false), f(Failed, 1, Some(4), false)];
        assert_eq!(state_of(&lanes, false), StepState::Failed);
        // A task added after the failure and done replaces it.
        let replaced = [f(Failed, 1, Some(4), false), f(Done, 6, Some(9), false)];
        assert_eq!(
            standings(&replaced, false),
            [Standing::Superseded, Standing::Done]
        );
        assert_eq!(state_of(&replaced, false), StepState::Done);
        // Removed and failed, then replaced: still superseded, not abandoned.
        let removed = [f(Failed, 1, Some(4), true), f(Done, 6, Some(9), false)];
        assert_eq!(standings(&removed, false)[0], Standing::Superseded);
    }

    #[test]
    fn a_lane_deleted_on_purpose_is_not_required() {
        let tasks = [f(Done, 1, Some(5), false), f(Todo, 1, None, true)];
        assert_eq!(state_of(&tasks, false), StepState::Done);
        let all_removed = [f(Todo, 1, None, true), f(Failed, 1, Some(3), true)];
        assert_eq!(state_of(&all_removed, false), StepState::Abandoned);
        // Done and removed still counts as done; a new task added beside it must finish too.
        let again = [f(Done, 1, Some(5), true), f(Todo, 9, None, false)];
        assert_eq!(state_of(&again, false), StepState::Todo);
    }

    #[test]
    fn dropped_and_not_added() {
        assert_eq!(state_of(&[], false), StepState::NotAdded);
        assert_eq!(state_of(&[], true), StepState::Dropped);
        assert_eq!(
            state_of(&[f(Done, 1, Some(2), false)], true),
            StepState::Dropped
        );
    }

    #[test]
    fn precedence() {
        let t = |s| f(s, 1, None, false);
        assert_eq!(
            state_of(&[t(Done), t(Waiting), t(Running)], false),
            StepState::Running
        );
        assert_eq!(state_of(&[t(Done), t(Waiting)], false), StepState::Waiting);
        assert_eq!(state_of(&[t(Todo), t(Waiting)], false), StepState::Todo);
        let failed = f(Failed, 1, Some(2), false);
        assert_eq!(state_of(&[t(Running), failed], false), StepState::Failed);
    }
}

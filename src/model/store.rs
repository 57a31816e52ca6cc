//! What the store calls take and give: what `add` did, selectors and filters, pages of a scan
//! with the damaged and unclaimable tasks found on them, a sample's tasks and tombstones for the
//! flow between steps, and counts. Plain data: no I/O.

use super::Reported;
use super::task::{Task, TaskState};

/// What `add` did with a batch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AddReport {
    pub added: u64,
    pub replaced: u64,
    /// Of those added or replaced, how many wait for an upstream step.
    pub waiting: u64,
    /// Of those waiting, how many nothing will run until a person acts (an upstream task
    /// failed, or the sample's tasks there were all removed).
    pub blocked: u64,
    /// Of those added, how many a QC gate holds (their upstream was done already and what it
    /// reported fails a `--require`).
    pub held: u64,
    /// Tasks the store has seen before (live or removed), left untouched.
    pub skipped: Vec<Skipped>,
}

/// A task `add` left out because the store has seen its id before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub collection: String,
    pub task_id: String,
    /// Its state in the store, or when it was removed and in which state.
    pub seen: Seen,
}

/// What became of a task id the store has seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Still in the store, in this state.
    Present(TaskState),
    /// Removed at this time (epoch ms), in this state (a task withdrawn with its dropped
    /// sample is never skipped: adding it again is allowed).
    Removed { state: TaskState, at: i64 },
    /// Its sample was dropped from the study at this time (epoch ms): nothing of it is added
    /// until the sample is re-activated.
    SampleDropped { at: i64 },
}

/// Which tasks a retry or delete applies to, within one collection.
#[derive(Debug, Clone, PartialEq)]
pub enum Selector {
    All,
    Ids(Vec<String>),
    Sample(String),
    State(TaskState),
    /// The tasks of a dropped sample that have not started (waiting or todo): withdrawn with
    /// it. Their tombstones say so, and adding them again is allowed.
    Withdrawn(String),
}

impl Selector {
    /// Whether `task` is one of those selected.
    pub fn matches(&self, task: &Task) -> bool {
        match self {
            Self::All => true,
            Self::Ids(ids) => ids.contains(&task.task_id),
            Self::Sample(s) => task.sample.as_deref() == Some(s),
            Self::State(st) => task.state == *st,
            Self::Withdrawn(s) => {
                task.sample.as_deref() == Some(s)
                    && matches!(
                        task.state,
                        TaskState::Waiting | TaskState::Held | TaskState::Todo
                    )
            }
        }
    }
}

/// Filters for listing and scanning tasks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskFilter {
    pub collection: Option<String>,
    pub state: Option<TaskState>,
    pub sample: Option<String>,
    pub task_id: Option<String>,
}

/// Key of the last task of a page, to continue a scan after it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TaskKey {
    pub collection: String,
    pub task_id: String,
}

impl TaskKey {
    pub fn new(collection: &str, task_id: &str) -> Self {
        Self {
            collection: collection.to_string(),
            task_id: task_id.to_string(),
        }
    }
}

/// A stored task that cannot be read (hand-edited, truncated): skipped and reported, never a
/// crash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damaged {
    /// `collection/task_id` when they could be read, else what identifies the record.
    pub key: String,
    pub reason: String,
}

/// A task no claim can take as it is (see `TaskStore::unclaimable`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unclaimable {
    pub key: TaskKey,
    /// The attributes a claim needs that it lacks; empty for a whole task that the claim
    /// index does not show.
    pub missing: Vec<String>,
}

impl Unclaimable {
    /// One line for a list of them: how many, what the first lacks, and the fix.
    pub fn summary(found: &[Unclaimable]) -> Option<String> {
        let lacking: Vec<&Unclaimable> = found.iter().filter(|u| !u.missing.is_empty()).collect();
        let first = lacking.first()?;
        Some(format!(
            "{} task(s) not claimable: missing or malformed {} (first {}/{}; written without \
             what anamo writes?); `anamo store check` names each and its fix",
            lacking.len(),
            first.missing.join(", "),
            first.key.collection,
            first.key.task_id
        ))
    }
}

/// What a store check found about one task no claim can take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimFinding {
    pub key: TaskKey,
    /// What is wrong ("todo without claim_shard, version").
    pub problem: String,
    /// Given what a claim needs (with `--repair`).
    pub repaired: bool,
    /// Whether `--repair` can: not for an item only writing it again makes a task.
    pub repairable: bool,
}

/// One page of a scan.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Page {
    pub tasks: Vec<Task>,
    pub damaged: Vec<Damaged>,
    /// Tombstones of removed tasks read along (a full stream gives every one, so that a sync
    /// learns of tasks removed from any machine, its catalog or not).
    pub removed: Vec<Tombstone>,
    /// Tasks of the page (in `tasks`) that no claim can take as they are.
    pub unclaimable: Vec<Unclaimable>,
    /// Where the next page starts; `None` when this was the last page.
    pub next: Option<TaskKey>,
}

/// What `release_stale` did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StaleReport {
    /// Expired leases handed back to `todo`.
    pub released: u64,
    /// Expired leases on their last attempt, now `failed`.
    pub failed: u64,
}

/// How `add` treats a batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AddOptions {
    /// Overwrite existing ids (back to `todo`, or `waiting`) instead of skipping them.
    pub replace: bool,
    /// Add a task `--after` a step where its sample has no task yet (it waits for one to be
    /// added and done) instead of refusing the batch.
    pub allow_missing_upstream: bool,
}

/// One task of a sample, as the flow between steps needs it: a live task, or the tombstone
/// the store keeps of one it removed (`removed_at` set, `state` its state when removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleTask {
    pub collection: String,
    pub task_id: String,
    pub state: TaskState,
    pub version: i64,
    pub after: Vec<String>,
    /// When it was added; `None` when the store's index does not carry it (DynamoDB's sample
    /// index) and nothing needed it read, or for an old done-mark.
    pub created_at: Option<i64>,
    /// When its last run ended; `None` likewise.
    pub finished_at: Option<i64>,
    /// When the store removed it; `None` for a live task.
    pub removed_at: Option<i64>,
    /// Its QC gates (`--require`): read for the live waiting and held tasks, which the flow
    /// judges; empty otherwise.
    pub require: Vec<String>,
    /// Why it is held, as the store holds it (for a held task).
    pub gate_note: Option<String>,
}

/// What one run of an upstream task reported, as a gate reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamReport {
    pub collection: String,
    pub task_id: String,
    /// Its run's number (`ReadProcessing/S17 run 2`).
    pub run: u32,
    pub finished_at: Option<i64>,
    pub metrics: super::Metrics,
}

/// How the flow settles a waiting or held task whose upstream is done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settle {
    /// Its gates pass (or it has none): `todo`, claimable. The note says so when it was held
    /// before (a re-run upstream passed its gates), so the hold stays on record.
    Run(Option<String>),
    /// A gate fails: `held`, with the reason.
    Hold(String),
    /// A person lets a held task run anyway: `todo`, the note (who, why, what held it) kept.
    Release(String),
    /// A held task whose upstream is no longer done (a re-run or a new lane under way) waits
    /// again, to be judged on what the re-run reports; the note keeps what held it.
    Wait(String),
}

impl SampleTask {
    /// Whether the store still holds it (not a tombstone).
    pub fn is_live(&self) -> bool {
        self.removed_at.is_none()
    }
}

/// Every task of one sample, in every step, live and removed (tombstones, and the done-marks
/// of an older anamo as removed done tasks): all the flow needs to decide whether the
/// sample's waiting tasks may run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SampleView {
    pub tasks: Vec<SampleTask>,
}

/// What the store remembers of a task it removed.
#[derive(Debug, Clone, PartialEq)]
pub struct Tombstone {
    pub collection: String,
    pub task_id: String,
    pub sample: Option<String>,
    /// Its state when removed.
    pub state: TaskState,
    pub created_at: i64,
    pub finished_at: Option<i64>,
    pub removed_at: i64,
    /// Runs it had made: a re-add numbers its runs on from here.
    pub runs: u32,
    /// Withdrawn with its dropped sample (not deleted): adding it again is allowed.
    pub withdrawn: bool,
    /// Its last run, as the task held it: a catalog that never saw the task learns it here.
    pub last_run: LastRun,
}

/// What a removed task's tombstone keeps of its last run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LastRun {
    pub attempts: u32,
    pub owner: Option<String>,
    pub started_at: Option<i64>,
    pub exit_code: Option<i32>,
    pub log_uri: Option<String>,
    pub error_tail: Option<String>,
    /// What it reported: a gate downstream reads it after the task is deleted.
    pub reported: Reported,
}

/// What a look at a collection's waiting tasks found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Survey {
    /// Waiting tasks whose upstream was done, now `todo` (a promotion a crash had skipped).
    pub promoted: u64,
    /// Waiting tasks whose upstream is still under way: they will become claimable.
    pub will_run: u64,
    /// Waiting tasks that cannot run until a person acts: an upstream task failed, or the
    /// upstream step has no task for the sample.
    pub blocked: u64,
}

/// Number of tasks per collection and state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateCount {
    pub collection: String,
    pub state: TaskState,
    pub count: u64,
}

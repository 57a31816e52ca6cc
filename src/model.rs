//! Plain data shared by every part of anamo: tasks and their states, new tasks with the checks
//! every store applies before writing one, claims and run outcomes, what the store calls take
//! and give (selectors, filters, pages, reports, counts), and the EC2 instances and S3 objects
//! that launch and sync record. No I/O here and no imports of our own modules: the stores, the
//! catalog and the AWS adapters convert to and from these types at their edges.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// Default number of runs a task gets before it ends `failed`.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
/// The largest script a task may carry (and the most its attributes may hold together).
pub const MAX_SCRIPT_BYTES: usize = 64 * 1024;
/// How much of a failed run's stderr is kept on the task.
pub const ERROR_TAIL_BYTES: usize = 2048;

/// Where a task is in its life: (`waiting` ->) `todo` -> `running` -> `done` / `failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TaskState {
    /// Added `--after` a step: waits for its sample's tasks there to be done; not claimable.
    Waiting,
    Todo,
    Running,
    Done,
    Failed,
}

impl TaskState {
    pub const ALL: [TaskState; 5] = [
        Self::Waiting,
        Self::Todo,
        Self::Running,
        Self::Done,
        Self::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Waiting => "waiting",
            Self::Todo => "todo",
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TaskState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "waiting" => Ok(Self::Waiting),
            "todo" => Ok(Self::Todo),
            "running" => Ok(Self::Running),
            "done" => Ok(Self::Done),
            "failed" => Ok(Self::Failed),
            other => Err(format!(
                "unknown task state '{other}'; use waiting, todo, running, done or failed"
            )),
        }
    }
}

/// Free-form string attributes; exposed to scripts as `ANAMO_ATTR_<NAME>`.
pub type Attrs = BTreeMap<String, String>;

/// A task as the store holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    pub collection: String,
    pub task_id: String,
    pub sample: Option<String>,
    pub script: String,
    pub attrs: Attrs,
    /// Steps whose tasks of the same sample must be done before this one may run.
    pub after: Vec<String>,
    pub state: TaskState,
    /// Runs that count against `max_attempts`: reset by a retry or a replace.
    pub attempts: u32,
    /// Runs ever made, retries and replaces included: each run's number (its log is
    /// `RUN.log`), never repeated.
    pub runs: u32,
    pub max_attempts: u32,
    pub timeout_secs: Option<u64>,
    /// The worker that claimed it last. It holds the task only while the state is `running`
    /// and the lease has not expired; the name stays afterwards so tasks join to instances.
    pub owner: Option<String>,
    /// Epoch ms until which `owner` holds the task.
    pub lease_until: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub exit_code: Option<i32>,
    pub log_uri: Option<String>,
    pub error_tail: Option<String>,
    /// Incremented on every write; every write is conditional on it.
    pub version: i64,
}

/// A task to be added.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTask {
    pub collection: String,
    pub task_id: String,
    pub sample: Option<String>,
    pub script: String,
    pub attrs: Attrs,
    pub max_attempts: u32,
    pub timeout_secs: Option<u64>,
    /// Steps whose tasks of the same sample must be done first (`--after`): the task starts
    /// `waiting` until they are.
    pub after: Vec<String>,
}

impl NewTask {
    /// Checks what a store cannot repair later. Returns a message naming the problem and the fix.
    pub fn validate(&self) -> Result<(), String> {
        check_name("collection", &self.collection)?;
        check_name("task id", &self.task_id)?;
        if let Some(sample) = &self.sample
            && sample.trim().is_empty()
        {
            return Err("sample is blank; leave it out or give a sample id".into());
        }
        if self.script.trim().is_empty() {
            return Err(format!(
                "task '{}' has an empty script; give the shell command it should run",
                self.task_id
            ));
        }
        if self.max_attempts == 0 {
            return Err("max attempts must be at least 1".into());
        }
        if !self.after.is_empty() && self.sample.is_none() {
            return Err(format!(
                "task '{}' waits for {} but has no sample; a task waits for its own sample's \
                 tasks upstream, so give it one (--sample, or a sample column)",
                self.task_id,
                self.after.join(",")
            ));
        }
        for step in &self.after {
            check_name("--after step", step)?;
            if step.contains(',') {
                return Err(format!("--after step '{step}' may not contain ','"));
            }
            if *step == self.collection {
                return Err(format!(
                    "task '{}' of {} cannot wait for its own step; --after names an upstream step",
                    self.task_id, self.collection
                ));
            }
        }
        // DynamoDB items stop at 400 KB, and every write of an item costs a unit per KB of
        // it: a script this size belongs in a file the task calls. Refused here, for every
        // store, before anything is written.
        if self.script.len() > MAX_SCRIPT_BYTES {
            return Err(format!(
                "task '{}' has a script of {} KiB; the most is {} KiB: put the bulk in a script \
                 file (in the AMI or S3) and call it",
                self.task_id,
                self.script.len() / 1024,
                MAX_SCRIPT_BYTES / 1024
            ));
        }
        let attrs: usize = self.attrs.iter().map(|(k, v)| k.len() + v.len()).sum();
        if attrs > MAX_SCRIPT_BYTES {
            return Err(format!(
                "task '{}' has {} KiB of attributes; the most is {} KiB",
                self.task_id,
                attrs / 1024,
                MAX_SCRIPT_BYTES / 1024
            ));
        }
        for key in self.attrs.keys() {
            if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!(
                    "attribute name '{key}' must be letters, digits and '_' (it becomes ANAMO_ATTR_{})",
                    key.to_ascii_uppercase()
                ));
            }
        }
        Ok(())
    }
}

/// Collections and task ids become path parts of log files and S3 keys, so keep them plain.
fn check_name(what: &str, value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err(format!("{what} is empty; every task needs one"));
    }
    if value.len() > 512 {
        // Found by tests/fuzz.rs: a byte slice here split a multi-byte character and panicked.
        let start: String = value.chars().take(32).collect();
        return Err(format!("{what} '{start}…' is longer than 512 bytes"));
    }
    if value == "." || value == ".." || value.contains('/') || value.chars().any(char::is_control) {
        return Err(format!(
            "{what} '{value}' may not contain '/' or control characters, nor be '.' or '..'"
        ));
    }
    Ok(())
}

/// What a worker holds after winning a claim: the task as it is now (state running, its
/// owner, lease and version). Heartbeats update `task.version` and `task.lease_until`.
#[derive(Debug, Clone, PartialEq)]
pub struct Claim {
    pub task: Task,
}

impl Claim {
    pub fn owner(&self) -> &str {
        self.task.owner.as_deref().unwrap_or("")
    }
}

/// What one try at claiming a task gave.
#[derive(Debug)]
// One per claim, moved out at once: boxing the task would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum ClaimAttempt {
    Claimed(Claim),
    /// Nothing is claimable in the collection.
    Empty,
    /// Claimable work exists but other workers won the races for it: try again after the
    /// pause. Never a reason to stop.
    Contended(std::time::Duration),
}

/// How one run of a script ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Exit code of the script; `None` when it was killed by a signal.
    pub exit_code: Option<i32>,
    pub succeeded: bool,
    pub error_tail: Option<String>,
    pub log_uri: Option<String>,
    pub finished_at: i64,
}

impl Outcome {
    /// A run that exited 0 at `finished_at` (epoch ms) with no log: what benchmarks and tests
    /// record for a task they finish by hand.
    pub fn success(finished_at: i64) -> Self {
        Self {
            exit_code: Some(0),
            succeeded: true,
            error_tail: None,
            log_uri: None,
            finished_at,
        }
    }
}

/// The log of run `n` of a task, beside its last run's log (`.../TASK_ID/LAST.log`, LAST a
/// number); `None` when the last log is not named so.
pub fn run_log_uri(last_uri: &str, n: u32) -> Option<String> {
    let (stem, file) = last_uri.rsplit_once('/')?;
    file.strip_suffix(".log")?.parse::<u32>().ok()?;
    Some(format!("{stem}/{n}.log"))
}

/// The state a finished run leaves its task in: a failure goes back to `todo` while attempts
/// remain, and ends `failed` on the last one.
pub fn state_after_run(succeeded: bool, attempts: u32, max_attempts: u32) -> TaskState {
    if succeeded {
        TaskState::Done
    } else if attempts < max_attempts {
        TaskState::Todo
    } else {
        TaskState::Failed
    }
}

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
                    && matches!(task.state, TaskState::Waiting | TaskState::Todo)
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
#[derive(Debug, Clone, PartialEq, Eq)]
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
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LastRun {
    pub attempts: u32,
    pub owner: Option<String>,
    pub started_at: Option<i64>,
    pub exit_code: Option<i32>,
    pub log_uri: Option<String>,
    pub error_tail: Option<String>,
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

/// An EC2 instance as anamo records it (from a launch or from DescribeInstances).
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    pub instance_id: String,
    /// The `anamo:step` tag.
    pub step: Option<String>,
    /// The `anamo:launch-id` tag.
    pub launch_id: Option<String>,
    /// pending / running / stopping / stopped / shutting-down / terminated.
    pub state: String,
    pub state_reason: Option<String>,
    pub instance_type: Option<String>,
    /// `spot` or `on-demand`.
    pub lifecycle: String,
    /// Epoch ms.
    pub launch_time: Option<i64>,
    /// Epoch ms, when EC2 says (from the state transition reason).
    pub terminated_at: Option<i64>,
    /// Every tag, as a JSON object.
    pub tags: BTreeMap<String, String>,
    pub region: Option<String>,
    /// The availability zone, for its Spot price.
    pub zone: Option<String>,
}

/// A Spot price of one instance type in one zone, from the time it took effect.
#[derive(Debug, Clone, PartialEq)]
pub struct SpotPrice {
    pub instance_type: String,
    pub zone: String,
    /// Epoch ms.
    pub at: i64,
    pub usd_per_hour: f64,
}

/// One S3 object from a listing.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    pub bucket: String,
    pub key: String,
    pub size: i64,
    pub etag: Option<String>,
    /// Epoch ms.
    pub last_modified: Option<i64>,
    pub storage_class: Option<String>,
    pub sample_id: Option<String>,
    /// One of [`FILE_KINDS`], from the key's name.
    pub kind: &'static str,
}

/// The kinds of file `sync --objects` tells apart by name.
pub const FILE_KINDS: [&str; 9] = [
    "fastq", "bam", "cram", "bai", "crai", "vcf", "gvcf", "tbi", "other",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_retry_until_the_last_attempt() {
        assert_eq!(state_after_run(false, 1, 3), TaskState::Todo);
        assert_eq!(state_after_run(false, 3, 3), TaskState::Failed);
        assert_eq!(state_after_run(true, 3, 3), TaskState::Done);
    }

    #[test]
    fn a_long_name_of_wide_characters_is_refused_not_panicked_on() {
        // The fuzzer's finding: byte 32 falls inside a four-byte character.
        let long = format!("{}{}", "a".repeat(30), "𖭐".repeat(200));
        let e = check_name("task id", &long).unwrap_err();
        assert!(
            e.starts_with("task id 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa𖭐𖭐…' is longer than 512 bytes"),
            "{e}"
        );
    }

    #[test]
    fn names_with_slashes_are_refused() {
        let mut t = NewTask {
            collection: "Alignment".into(),
            task_id: "a/b".into(),
            sample: None,
            script: "true".into(),
            attrs: Attrs::new(),
            max_attempts: 3,
            timeout_secs: None,
            after: vec![],
        };
        assert!(t.validate().is_err());
        t.task_id = "S1".into();
        assert!(t.validate().is_ok());
        t.script = "  ".into();
        assert!(t.validate().unwrap_err().contains("empty script"));
    }
}

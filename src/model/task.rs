//! A task and its life: its states, the task as the store holds it and as it is added (with
//! the checks every store applies before writing one), a claim, and how a run ended. Plain
//! data: no I/O, no imports of our own modules.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use super::{Reported, TaskKey};

/// Default number of runs a task gets before it ends `failed`.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
/// The largest script a task may carry (and the most its attributes may hold together).
pub const MAX_SCRIPT_BYTES: usize = 64 * 1024;
/// How much of a failed run's stderr is kept on the task.
pub const ERROR_TAIL_BYTES: usize = 2048;

/// Where a task is in its life: (`waiting` -> [`held` ->]) `todo` -> `running` -> `done` /
/// `failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TaskState {
    /// Added `--after` a step: waits for its sample's tasks there to be done; not claimable.
    Waiting,
    /// Its upstream is done but a QC gate (`--require`) failed on what it reported: not
    /// claimable until a person releases it or a re-run upstream passes the gate.
    Held,
    Todo,
    Running,
    Done,
    Failed,
}

impl TaskState {
    pub const ALL: [TaskState; 6] = [
        Self::Waiting,
        Self::Held,
        Self::Todo,
        Self::Running,
        Self::Done,
        Self::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Waiting => "waiting",
            Self::Held => "held",
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
            "held" => Ok(Self::Held),
            "todo" => Ok(Self::Todo),
            "running" => Ok(Self::Running),
            "done" => Ok(Self::Done),
            "failed" => Ok(Self::Failed),
            other => Err(format!(
                "unknown task state '{other}'; use waiting, held, todo, running, done or failed"
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
    /// What its last finished run's script reported (metrics, outputs); empty before one.
    pub reported: Reported,
    /// QC gates on its upstream's metrics (`mean_coverage >= 15`), as added.
    pub require: Vec<String>,
    /// Why it is held (`held: mean_coverage 12.4 < 15 (...)`), or who released it and why.
    pub gate_note: Option<String>,
    /// Incremented on every write; every write is conditional on it.
    pub version: i64,
}

impl Task {
    /// The task's key in the store and the catalog.
    pub fn key(&self) -> TaskKey {
        TaskKey::new(&self.collection, &self.task_id)
    }
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
    /// QC gates (`--require`) its upstream's reported metrics must pass before it may run.
    pub require: Vec<String>,
}

impl NewTask {
    /// The task's key in the store and the catalog.
    pub fn key(&self) -> TaskKey {
        TaskKey::new(&self.collection, &self.task_id)
    }

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
        if !self.require.is_empty() && self.after.is_empty() {
            return Err(format!(
                "task '{}' has QC gates (--require, a require column or anamo.toml's [gates]) \
                 but waits for no step; a gate reads the metrics its sample's upstream tasks \
                 reported, so name them with --after",
                self.task_id
            ));
        }
        super::parse_gates(&self.require)?;
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
    /// What the script reported (kept on a failed run too, for the record).
    pub reported: Reported,
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
            reported: Reported::default(),
        }
    }

    /// A run that never started (bash could not be spawned, ...): failed at `finished_at`,
    /// with `why` as its error tail.
    pub fn not_started(why: String, finished_at: i64) -> Self {
        Self {
            exit_code: None,
            succeeded: false,
            error_tail: Some(why),
            log_uri: None,
            finished_at,
            reported: Reported::default(),
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
            require: vec![],
        };
        assert!(t.validate().is_err());
        t.task_id = "S1".into();
        assert!(t.validate().is_ok());
        t.script = "  ".into();
        assert!(t.validate().unwrap_err().contains("empty script"));
    }
}

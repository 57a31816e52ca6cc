//! `anamo tasks ...`: manage the tasks of the store.

mod add;
mod counts;
mod delete;
mod gates;
mod list;
mod release_stale;
mod retry;
pub(crate) mod show;

use anyhow::Result;
use clap::Subcommand;
use serde_json::{Value, json};

use crate::clock::rfc3339;
use crate::config::Context;
use crate::model::{Selector, Task};

#[derive(Debug, Subcommand)]
pub enum Cmd {
    Add(add::Cmd),
    List(list::Cmd),
    Show(show::Cmd),
    Counts(counts::Cmd),
    Retry(retry::Cmd),
    ReleaseStale(release_stale::Cmd),
    Delete(delete::Cmd),
    Release(gates::ReleaseCmd),
}

impl Cmd {
    pub fn run(self, ctx: &Context) -> Result<()> {
        match self {
            Cmd::Add(c) => c.run(ctx),
            Cmd::List(c) => c.run(ctx),
            Cmd::Show(c) => c.run(ctx),
            Cmd::Counts(c) => c.run(ctx),
            Cmd::Retry(c) => c.run(ctx),
            Cmd::ReleaseStale(c) => c.run(ctx),
            Cmd::Delete(c) => c.run(ctx),
            Cmd::Release(c) => c.run(ctx),
        }
    }
}

/// Columns of `tasks list`.
pub const LIST_COLUMNS: &[&str] = &[
    "collection",
    "task_id",
    "sample",
    "state",
    "attempts",
    "max_attempts",
    "owner",
    "exit_code",
    "started_at",
    "finished_at",
    "log_uri",
    // Why a QC gate holds it, or who released it.
    "gate",
];

fn time(ms: Option<i64>) -> Value {
    ms.map_or(Value::Null, |m| json!(rfc3339(m)))
}

pub fn list_row(t: &Task) -> Vec<Value> {
    vec![
        json!(t.collection),
        json!(t.task_id),
        json!(t.sample),
        json!(t.state.as_str()),
        json!(t.attempts),
        json!(t.max_attempts),
        json!(t.owner),
        json!(t.exit_code),
        time(t.started_at),
        time(t.finished_at),
        json!(t.log_uri),
        json!(t.gate_note),
    ]
}

/// Every field of a task, in the order `tasks show` prints them.
pub fn all_fields(t: &Task) -> Vec<(&'static str, Value)> {
    vec![
        ("collection", json!(t.collection)),
        ("task_id", json!(t.task_id)),
        ("sample", json!(t.sample)),
        ("state", json!(t.state.as_str())),
        ("after", json!(t.after.join(","))),
        ("require", json!(t.require.join("; "))),
        ("gate_note", json!(t.gate_note)),
        ("attempts", json!(t.attempts)),
        ("max_attempts", json!(t.max_attempts)),
        ("runs", json!(t.runs)),
        ("timeout_secs", json!(t.timeout_secs)),
        ("owner", json!(t.owner)),
        ("lease_until", time(t.lease_until)),
        ("created_at", time(Some(t.created_at))),
        ("updated_at", time(Some(t.updated_at))),
        ("started_at", time(t.started_at)),
        ("finished_at", time(t.finished_at)),
        ("exit_code", json!(t.exit_code)),
        ("log_uri", json!(t.log_uri)),
        ("run_logs", run_logs(t)),
        ("version", json!(t.version)),
        ("attrs", json!(t.attrs)),
        ("script", json!(t.script)),
        ("error_tail", json!(t.error_tail)),
        // What its last finished run's script reported ($ANAMO_METRICS, $ANAMO_OUTPUTS).
        ("metrics", json!(t.reported.metrics)),
        ("outputs", json!(t.reported.outputs)),
    ]
}

/// Every run's log, first to last (`anamo logs ID --run N` prints one): they sit beside the
/// last run's log.
fn run_logs(t: &Task) -> Value {
    let Some(last) = &t.log_uri else {
        return Value::Null;
    };
    let all: Vec<String> = (1..=t.runs)
        .filter_map(|n| crate::model::run_log_uri(last, n))
        .collect();
    if all.is_empty() {
        json!(last)
    } else {
        json!(all.join(" "))
    }
}

/// The selector as the flags that gave it.
pub(crate) fn named(selector: &Selector) -> String {
    match selector {
        Selector::Ids(ids) => format!("--id {}", ids.join(" --id ")),
        Selector::Sample(s) => format!("--sample {s}"),
        Selector::State(st) => format!("--state {st}"),
        Selector::All => "--all".into(),
        Selector::Withdrawn(s) => format!("--sample {s} (not started)"),
    }
}

/// A command that changes the tasks of a collection refuses one with no task at all: a typo
/// must not read as "0 deleted" or "0 retried".
pub(crate) fn require_collection(
    store: &dyn crate::store::TaskStore,
    collection: &str,
) -> Result<()> {
    match crate::study::unknown_collection(store, collection, None)? {
        Some(typo) => anyhow::bail!("{typo}"),
        None => Ok(()),
    }
}

/// Which tasks a retry or delete names: exactly one way must be given (clap refuses none or
/// several with a usage error; `delete --state` joins the group).
#[derive(Debug, clap::Args)]
#[group(id = "which", required = true, multiple = false)]
pub struct Which {
    /// These task ids (repeatable).
    #[arg(long = "id")]
    pub ids: Vec<String>,
    /// Every task of this sample.
    #[arg(long)]
    pub sample: Option<String>,
    /// Every task of the collection.
    #[arg(long)]
    pub all: bool,
}

impl Which {
    pub fn selector(self, extra: Option<Selector>) -> Result<Selector> {
        let mut given = vec![];
        if !self.ids.is_empty() {
            given.push(Selector::Ids(self.ids));
        }
        if let Some(s) = self.sample {
            given.push(Selector::Sample(s));
        }
        if self.all {
            given.push(Selector::All);
        }
        given.extend(extra);
        match given.len() {
            1 => Ok(given.remove(0)),
            // The `which` group lets exactly one through.
            n => Err(crate::error::Error::Internal(format!(
                "{n} task selectors passed the argument group"
            ))
            .into()),
        }
    }
}

//! `anamo tasks add`: one task from flags, many from a file, or one per sample.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;

use crate::cli::{attrs_from, parse_attr};
use crate::config::Context;
use crate::model::{
    AddOptions, AddReport, DEFAULT_MAX_ATTEMPTS, NewTask, Seen, Skipped, TaskKey, TaskState,
};
use crate::placeholders::Quoting;
use crate::store::{OpenMode, TaskStore, flow};
use crate::taskfile::{self, Defaults, FileFormat};

use super::gates;

/// Add tasks (idempotent: ids already in the store are skipped unless --replace).
///
/// From flags:  anamo tasks add -c Alignment --id S1 --sample S1 --script 'align.sh S1'
/// From a file: anamo tasks add tasks.csv   (CSV/TSV with a header, JSON Lines, PiCaS token
///              JSON, or PyAnamo itemID|taskID|TaskScript|TaskArgs lines)
/// Per sample:  anamo tasks add -c Alignment --samples samples.txt --script 'align.sh {sample}'
/// Chained:     anamo tasks add -c ReadProcessing --after Alignment --samples samples.txt \
///                --script 'process.sh {sample}'   (each waits for its sample's Alignment)
///
/// A batch is all or nothing: any bad line rejects the whole file.
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct Cmd {
    /// Task file to read.
    pub file: Option<PathBuf>,

    /// Format of FILE (default: from the extension and content).
    #[arg(long, value_enum, requires = "file")]
    pub format: Option<FileFormat>,

    /// Collection (workflow step); files may name it per task instead.
    #[arg(long, short)]
    pub collection: Option<String>,

    /// Task id (flags form), or an id template with {sample} (--samples form).
    #[arg(long, conflicts_with = "file")]
    pub id: Option<String>,

    /// Sample this task works on (flags form).
    #[arg(long, conflicts_with_all = ["file", "samples"])]
    pub sample: Option<String>,

    /// Shell script; with --samples, {sample} and {collection} are filled in.
    #[arg(long, conflicts_with = "file")]
    pub script: Option<String>,

    /// Attribute NAME=VALUE, exposed as ANAMO_ATTR_<NAME> (repeatable).
    #[arg(long = "attr", value_parser = parse_attr)]
    pub attrs: Vec<(String, String)>,

    /// Runs a task gets before it ends failed.
    #[arg(long, default_value_t = DEFAULT_MAX_ATTEMPTS)]
    pub max_attempts: u32,

    /// Per-task timeout (e.g. 6h); the script is killed after it.
    #[arg(long, value_parser = crate::taskfile::parse_timeout_flag)]
    pub timeout: Option<u64>,

    /// One task per sample id listed in this file (one per line).
    #[arg(long, conflicts_with = "file", requires = "script")]
    pub samples: Option<PathBuf>,

    /// Overwrite tasks that already exist (they go back to todo).
    #[arg(long)]
    pub replace: bool,

    /// Each task waits (state waiting) until its sample's tasks in these steps are done
    /// (comma-separated, or repeated); a task file's `after` column, where filled, replaces it
    /// for that row.
    #[arg(long, value_name = "STEP[,STEP]", value_delimiter = ',')]
    pub after: Vec<String>,

    /// Add tasks --after a step that has no task yet for their sample (they wait until one is
    /// added and done) instead of refusing the batch.
    #[arg(long)]
    pub allow_missing_upstream: bool,

    /// A QC gate on what the --after steps' tasks of the sample reported, e.g.
    /// 'mean_coverage >= 15' (repeatable): when they are done and a gate fails, the task is
    /// held, not run. A task file's `require` column (gates separated by ';'), where filled,
    /// replaces it for that row; anamo.toml's [gates] adds a step's own.
    #[arg(long = "require", value_name = "GATE")]
    pub require: Vec<String>,
}

impl Cmd {
    pub fn run(self, ctx: &Context) -> Result<()> {
        // `--after "$STEP"` with STEP unset must not drop the dependency in silence.
        if !self.after.is_empty() && taskfile::parse_after(&self.after.join(",")).is_empty() {
            return Err(crate::error::Error::Usage(
                "--after names no step; give STEP or STEP,STEP (an empty shell variable?)".into(),
            )
            .into());
        }
        let defaults = Defaults {
            collection: self.collection.clone(),
            max_attempts: self.max_attempts,
            timeout_secs: self.timeout,
            after: taskfile::parse_after(&self.after.join(",")),
            // `--require 'a >= 1; b < 2'` is two gates, as in a task file's column.
            require: self
                .require
                .iter()
                .flat_map(|g| taskfile::parse_require(g))
                .collect(),
        };
        // Checked here, so a bad flag is not blamed on a line of the --samples file.
        crate::model::parse_gates(&defaults.require)
            .map_err(|e| crate::error::Error::Usage(format!("--require: {e}")))?;
        // anamo.toml first: a malformed [gates] is named before any task is read.
        let config = crate::config::FileConfig::load()?;
        let (mut tasks, skipped_done) = self.tasks(defaults)?;
        gates::with_step_gates(&mut tasks, &config);
        for t in &tasks {
            t.validate().map_err(crate::error::Error::Invalid)?;
        }
        gates::warn_unknown_metrics(ctx, &tasks)?;
        let store = crate::study::open_store_for_catalog(ctx, OpenMode::Create)?;
        // Tasks removed from the store live on in the catalog (and in the store's tombstones,
        // which add_tasks reads): adding one again would run it again and overwrite its
        // history at the next sync. Left out, unless --replace.
        let (tasks, from_catalog) = if self.replace {
            (tasks, vec![])
        } else {
            without_removed_history(ctx, store.as_ref(), tasks)?
        };
        let opts = AddOptions {
            replace: self.replace,
            allow_missing_upstream: self.allow_missing_upstream,
        };
        let report = store.add_tasks(&tasks, opts)?;
        let mut notes: Vec<String> = from_catalog;
        notes.extend(skip_notes(store.as_ref(), &tasks, &report)?);
        say_notes(&notes, &report);
        println!(
            "{}",
            added_line(&report, &store.describe(), notes.len(), skipped_done)
        );
        Ok(())
    }

    /// The tasks asked for (a task file, a sample sheet with a script, or one task), and the
    /// PiCaS tokens a file held that were done already.
    fn tasks(&self, defaults: Defaults) -> Result<(Vec<NewTask>, u64)> {
        let attrs = attrs_from(&self.attrs);
        if let Some(path) = &self.file {
            let parsed = taskfile::read(path, self.format, &defaults)?;
            let tasks = parsed
                .tasks
                .into_iter()
                .map(|mut t| {
                    for (k, v) in &attrs {
                        t.attrs.entry(k.clone()).or_insert_with(|| v.clone());
                    }
                    t
                })
                .collect();
            return Ok((tasks, parsed.skipped_done));
        }
        if let Some(samples) = &self.samples {
            let Some(script) = &self.script else {
                // clap: --samples requires --script.
                return Err(
                    crate::error::Error::Internal("--samples without --script".into()).into(),
                );
            };
            let id = self.id.as_deref().unwrap_or("{sample}");
            return Ok((
                taskfile::from_samples(samples, id, script, &attrs, &defaults)?,
                0,
            ));
        }
        Ok((vec![self.single(defaults, attrs)?], 0))
    }

    fn single(&self, defaults: Defaults, attrs: crate::model::Attrs) -> Result<NewTask> {
        let (Some(collection), Some(id), Some(script)) = (&self.collection, &self.id, &self.script)
        else {
            bail!(
                "give a task file, or --samples FILE with --script, or one task with --collection, --id and --script"
            );
        };
        // The same placeholders as --samples: {collection}, and {sample} when given.
        let mut vars = vec![("collection", collection.as_str())];
        if let Some(sample) = &self.sample {
            vars.push(("sample", sample.as_str()));
        }
        let script = crate::placeholders::fill("--script", script, &vars, Quoting::Shell)?;
        let task = NewTask {
            collection: collection.clone(),
            task_id: id.clone(),
            sample: self.sample.clone(),
            script,
            attrs,
            max_attempts: defaults.max_attempts,
            timeout_secs: defaults.timeout_secs,
            after: defaults.after,
            require: defaults.require,
        };
        task.validate().map_err(anyhow::Error::msg)?;
        Ok(task)
    }
}

/// Tasks to add, and a note for each one left out.
type Kept = (Vec<NewTask>, Vec<String>);

/// Splits off the tasks the catalog (when it is this store's) saw removed from the store in
/// any state, whose tombstone the store may no longer hold (removed by an older anamo).
fn without_removed_history(
    ctx: &Context,
    store: &dyn crate::store::TaskStore,
    tasks: Vec<NewTask>,
) -> Result<Kept> {
    if !ctx.catalog_path.exists() {
        return Ok((tasks, vec![]));
    }
    let conn = crate::catalog::CatalogRead::open(&ctx.catalog_path)?;
    if conn
        .store_identity()?
        .is_some_and(|s| s != store.identity())
    {
        return Ok((tasks, vec![]));
    }
    let keys: Vec<TaskKey> = tasks.iter().map(NewTask::key).collect();
    let removed = conn.removed_in_history(&keys)?;
    if removed.is_empty() {
        return Ok((tasks, vec![]));
    }
    let mut notes = vec![];
    let mut kept = vec![];
    for t in tasks {
        let Some(r) = removed.get(&t.key()) else {
            kept.push(t);
            continue;
        };
        // The store knows it too (back in the store, or its tombstone, which is newer than the
        // catalog's sync): add_tasks skips it and words it.
        if store.get(&t.collection, &t.task_id)?.is_some()
            || store.tombstone(&t.collection, &t.task_id)?.is_some()
        {
            kept.push(t);
            continue;
        }
        let note = removed_note(
            &t.collection,
            &t.task_id,
            &r.state,
            r.at,
            r.superseded_by.as_deref(),
        );
        notes.push(format!("{note} (the catalog's history)"));
    }
    Ok((kept, notes))
}

/// The line that says what became of a task the store has seen.
fn skip_note(
    store: &dyn crate::store::TaskStore,
    skipped: &Skipped,
    sample: Option<&str>,
) -> Result<String> {
    let Skipped {
        collection,
        task_id,
        seen,
    } = skipped;
    Ok(match *seen {
        Seen::SampleDropped { at } => format!(
            "skipped {collection}/{task_id}: its sample {} was dropped from the study on {}; \
             re-activate it first (a sheet with status active: `anamo samples import`)",
            sample.unwrap_or("?"),
            crate::clock::day(at)
        ),
        Seen::Present(TaskState::Done) => {
            format!("skipped {collection}/{task_id}: done (still in the store)")
        }
        Seen::Present(state) => {
            format!("skipped {collection}/{task_id}: already in the store, {state}")
        }
        Seen::Removed { state, at } => {
            let by = match sample {
                Some(sample) if state == TaskState::Failed => {
                    flow::superseded_by(&store.sample_view(sample)?, collection, task_id)
                }
                _ => None,
            };
            removed_note(collection, task_id, state.as_str(), at, by.as_deref())
        }
    })
}

/// The line for a task removed from the store (the store's tombstone or the catalog's
/// history say so), with the done task that replaced it when one did.
fn removed_note(
    collection: &str,
    task_id: &str,
    state: &str,
    at: i64,
    superseded_by: Option<&str>,
) -> String {
    let by = superseded_by
        .map(|by| format!(", superseded by {by} (done)"))
        .unwrap_or_default();
    format!(
        "skipped {collection}/{task_id}: removed while {state} on {}{by}",
        crate::clock::day(at)
    )
}

/// Why each task the store skipped was skipped, with its sample: one lookup each, not a search
/// of the batch.
fn skip_notes(store: &dyn TaskStore, tasks: &[NewTask], report: &AddReport) -> Result<Vec<String>> {
    let samples: std::collections::HashMap<(&str, &str), &str> = tasks
        .iter()
        .filter_map(|t| {
            Some((
                (t.collection.as_str(), t.task_id.as_str()),
                t.sample.as_deref()?,
            ))
        })
        .collect();
    report
        .skipped
        .iter()
        .map(|skipped| {
            let key = (skipped.collection.as_str(), skipped.task_id.as_str());
            skip_note(store, skipped, samples.get(&key).copied())
        })
        .collect()
}

/// What was skipped and why (the first ten), what --replace would do, and what cannot run.
fn say_notes(notes: &[String], report: &AddReport) {
    for note in notes.iter().take(10) {
        crate::note!("{note}");
    }
    if notes.len() > 10 {
        crate::note!("... and {} more seen before", notes.len() - 10);
    }
    let replaceable = report
        .skipped
        .iter()
        .any(|s| !matches!(s.seen, Seen::SampleDropped { .. }));
    if replaceable || notes.len() > report.skipped.len() {
        crate::note!(
            "tasks seen before are left as they are: --replace runs them again (and changes \
             what they wait for)"
        );
    }
    if report.held > 0 {
        crate::note!(
            "{} of the added task(s) are held by their QC gates: their upstream is done and \
             what it reported fails a gate, or lacks its metric (`anamo tasks list --state \
             held` shows why; `anamo tasks release` lets one run)",
            report.held
        );
    }
    if report.blocked > 0 {
        crate::note!(
            "{} of the added task(s) cannot run until a person acts: upstream, their \
             sample's task failed, was removed or is held by a QC gate (`anamo query \
             blocked-samples` after a sync says which; retry it, add a fixed one, or release \
             the held one)",
            report.blocked
        );
    }
}

/// The add's one line: added, replaced, waiting, and what was left out.
fn added_line(report: &AddReport, store: &str, seen_before: usize, skipped_done: u64) -> String {
    let mut line = format!("added {} task(s) to {store}", report.added);
    if report.replaced > 0 {
        line.push_str(&format!(", replaced {}", report.replaced));
    }
    if report.waiting > 0 {
        line.push_str(&format!(
            "; {} wait for their sample's upstream tasks",
            report.waiting
        ));
    }
    if report.held > 0 {
        line.push_str(&format!("; {} held by their QC gates", report.held));
    }
    let of_dropped = report
        .skipped
        .iter()
        .filter(|s| matches!(s.seen, Seen::SampleDropped { .. }))
        .count();
    if seen_before > of_dropped {
        line.push_str(&format!(
            ", skipped {} seen before",
            seen_before - of_dropped
        ));
    }
    if of_dropped > 0 {
        line.push_str(&format!(", skipped {of_dropped} of dropped samples"));
    }
    if skipped_done > 0 {
        line.push_str(&format!(
            ", left out {skipped_done} PiCaS token(s) already done"
        ));
    }
    line
}

//! Task store -> catalog. Pages stream into one transaction each, so an interrupted sync
//! leaves every batch either whole or absent; removal is marked only after a complete scan.

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use tracing::debug;

use crate::catalog::{Catalog, RunCounts, TaskWriter};
use crate::error::Result;
use crate::model::{
    Damaged, Page, Selector, Task, TaskFilter, TaskKey, TaskState, Tombstone, Unclaimable,
};
use crate::store::{TaskSource, TaskStore, for_each_task};

#[derive(Debug, Clone)]
pub struct TaskSyncOptions {
    /// Only this collection (removal is then judged within it only).
    pub collection: Option<String>,
    /// Tasks per page and per transaction.
    pub batch: usize,
    /// The store is not the one the catalog was filled from, and the user says that is right.
    pub store_changed: bool,
    /// Read the whole store even when an incremental read would do (`sync --full`).
    pub full: bool,
    /// How far before the last complete read an incremental one starts: the change index
    /// lags, and hosts' clocks disagree.
    pub overlap: Duration,
    /// A full scan runs by itself when the last one is older than this.
    pub full_every: Duration,
}

impl Default for TaskSyncOptions {
    fn default() -> Self {
        Self {
            collection: None,
            batch: 5000,
            store_changed: false,
            full: false,
            overlap: DEFAULT_OVERLAP,
            full_every: DEFAULT_FULL_EVERY,
        }
    }
}

/// How far back an incremental read starts before the last complete one.
pub const DEFAULT_OVERLAP: Duration = Duration::from_secs(5 * 60);
/// How old the last full scan may be before a sync makes another.
pub const DEFAULT_FULL_EVERY: Duration = Duration::from_secs(24 * 3600);

/// How a sync read the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncKind {
    /// Every task and tombstone, and what the catalog holds that the store no longer does.
    Full(FullBecause),
    /// What was written at or after `since` (epoch ms), and the running tasks again.
    Incremental { since: i64 },
}

/// Why a sync read the whole store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FullBecause {
    /// `--full`.
    Asked,
    /// The catalog has no complete read of this store (or scope) yet.
    First,
    /// The last full scan began at this time, longer ago than `full_every`.
    Due { last_full: i64 },
    /// The store has no change index (`anamo store init` adds it).
    NoChangeIndex,
    /// The change index answers only since this time, after the catalog's mark.
    IndexNewer { since: i64 },
}

#[derive(Debug, Clone, PartialEq)]
pub struct TaskSyncReport {
    pub counts: RunCounts,
    /// Store records that could not be read, skipped.
    pub damaged: Vec<Damaged>,
    /// Tasks copied that no claim can take as they are (written by hand without what a claim
    /// needs).
    pub unclaimable: Vec<Unclaimable>,
    pub elapsed: Duration,
    pub kind: SyncKind,
    /// Items read from the store (tasks, tombstones, damaged ones).
    pub read: u64,
}

/// Decides how to read the store: incrementally from the catalog's mark when it can answer
/// for everything since, else whole (and why).
pub fn plan<S: TaskSource + ?Sized>(
    store: &S,
    catalog: &Catalog,
    opts: &TaskSyncOptions,
    now: i64,
) -> Result<SyncKind> {
    if opts.full {
        return Ok(SyncKind::Full(FullBecause::Asked));
    }
    let Some(mark) = catalog.sync_mark(opts.collection.as_deref())? else {
        return Ok(SyncKind::Full(FullBecause::First));
    };
    if now - mark.full_at > opts.full_every.as_millis() as i64 {
        return Ok(SyncKind::Full(FullBecause::Due {
            last_full: mark.full_at,
        }));
    }
    let Some(answers_since) = store.changes_since()? else {
        return Ok(SyncKind::Full(FullBecause::NoChangeIndex));
    };
    let since = mark.read_from - opts.overlap.as_millis() as i64;
    if since < answers_since {
        return Ok(SyncKind::Full(FullBecause::IndexNewer {
            since: answers_since,
        }));
    }
    Ok(SyncKind::Incremental { since })
}

/// Copies the store's tasks into the catalog: every one (a full scan), or what changed since
/// the last complete read (see [`plan`]).
pub fn sync_tasks<S: TaskSource + ?Sized>(
    store: &S,
    catalog: &mut Catalog,
    opts: &TaskSyncOptions,
    progress: &ProgressBar,
) -> Result<TaskSyncReport> {
    catalog.claim_store(&store.identity(), opts.store_changed)?;
    let kind = plan(store, catalog, opts, crate::clock::now_ms())?;
    sync_tasks_as(store, catalog, opts, kind, progress)
}

/// Copies the store's tasks into the catalog as `kind` says (planned by [`plan`] after
/// `claim_store`).
pub fn sync_tasks_as<S: TaskSource + ?Sized>(
    store: &S,
    catalog: &mut Catalog,
    opts: &TaskSyncOptions,
    kind: SyncKind,
    progress: &ProgressBar,
) -> Result<TaskSyncReport> {
    let started = Instant::now();
    let read_from = crate::clock::now_ms();
    // Running tasks are read again by key: their leases move without a change.
    let running = match kind {
        SyncKind::Incremental { .. } => catalog.running_keys(opts.collection.as_deref())?,
        SyncKind::Full(_) => vec![],
    };
    let run = catalog.start_run(&format!("tasks:{}", store.describe()))?;
    let mut counts = RunCounts::default();
    let mut damaged = vec![];
    let mut unclaimable = vec![];
    let mut read = 0;
    // The store is read on its own thread while this one writes the catalog: the two halves
    // overlap, and at most two pages wait in between, so memory stays bounded.
    let (pages, batches) = std::sync::mpsc::sync_channel::<Batch>(2);
    let filter = TaskFilter {
        collection: opts.collection.clone(),
        ..TaskFilter::default()
    };
    let batch_size = opts.batch.max(1);
    let result = std::thread::scope(|scope| -> Result<()> {
        let filter = &filter;
        let running = &running;
        // `move`: the reader owns the sender, so the writer's loop ends when the reader does.
        let reader = scope.spawn(move || -> Result<Read> {
            let mut got = Read::default();
            let mut hand_over = |page: Page| -> Result<ControlFlow<()>> {
                got.items += (page.tasks.len() + page.removed.len() + page.damaged.len()) as u64;
                for d in page.damaged {
                    // Summed up once at the end (sync/run.rs); each one at -v.
                    debug!("skipped damaged task {}: {}", d.key, d.reason);
                    got.damaged.push(d);
                }
                got.unclaimable.extend(page.unclaimable);
                // The writer hung up: it failed, and says why.
                if !page.tasks.is_empty() && pages.send(Batch::Tasks(page.tasks)).is_err() {
                    return Ok(ControlFlow::Break(()));
                }
                if !page.removed.is_empty() && pages.send(Batch::Removed(page.removed)).is_err() {
                    return Ok(ControlFlow::Break(()));
                }
                Ok(ControlFlow::Continue(()))
            };
            match kind {
                SyncKind::Full(_) => store.stream(filter, batch_size, &mut hand_over)?,
                SyncKind::Incremental { since } => {
                    let scope = filter.collection.as_deref();
                    // The running tasks the changes did not bring are read again.
                    let mut brought = std::collections::HashSet::new();
                    store.stream_changes(since, scope, batch_size, &mut |page| {
                        brought.extend(page.tasks.iter().map(Task::key));
                        hand_over(page)
                    })?;
                    let running: Vec<TaskKey> = running
                        .iter()
                        .filter(|k| !brought.contains(*k))
                        .cloned()
                        .collect();
                    for keys in running.chunks(batch_size) {
                        let tasks = store.read_tasks(keys)?;
                        let page = Page {
                            tasks,
                            ..Page::default()
                        };
                        if hand_over(page)?.is_break() {
                            break;
                        }
                    }
                }
            }
            Ok(got)
        });
        let written = write_pages(
            catalog.task_writer(&run, opts.collection.as_deref()),
            &batches,
            &mut counts,
            progress,
        );
        drop(batches);
        let got = reader.join().unwrap_or_else(|_| {
            Err(crate::error::Error::Internal(
                "the store reader panicked".into(),
            ))
        });
        written?;
        let got = got?;
        (damaged, unclaimable, read) = (got.damaged, got.unclaimable, got.items);
        // Only a complete scan can tell what is gone; an incremental read learns it from
        // tombstones.
        if let SyncKind::Full(_) = kind {
            counts.removed += catalog.mark_removed(&run, opts.collection.as_deref())?;
        }
        Ok(())
    });
    progress.finish_and_clear();
    catalog.settle_run(&run, counts, result)?;
    let full = matches!(kind, SyncKind::Full(_));
    catalog.set_sync_mark(opts.collection.as_deref(), read_from, full)?;
    Ok(TaskSyncReport {
        counts,
        damaged,
        unclaimable,
        elapsed: started.elapsed(),
        kind,
        read,
    })
}

/// What the store reader read, besides the pages it handed over.
#[derive(Default)]
struct Read {
    items: u64,
    damaged: Vec<Damaged>,
    unclaimable: Vec<Unclaimable>,
}

/// Writes what the store reader hands over, a page a transaction, until it hangs up.
fn write_pages(
    writer: Result<TaskWriter<'_>>,
    batches: &std::sync::mpsc::Receiver<Batch>,
    counts: &mut RunCounts,
    progress: &ProgressBar,
) -> Result<()> {
    let mut writer = writer?;
    for batch in batches {
        match batch {
            Batch::Tasks(batch) => {
                let c = writer.write_batch(&batch)?;
                counts.new += c.new;
                counts.changed += c.changed;
                counts.seen += batch.len() as u64;
                progress.inc(batch.len() as u64);
            }
            // Tasks removed from any machine, that this catalog had not seen removed.
            Batch::Removed(removed) => counts.removed += writer.write_tombstones(&removed)?,
        }
    }
    Ok(())
}

/// What the store reader hands the catalog writer.
enum Batch {
    Tasks(Vec<Task>),
    Removed(Vec<Tombstone>),
}

/// What `record_before_delete` copied.
#[derive(Debug, Default)]
pub struct Recorded {
    /// The tasks' keys, for marking them removed once the delete is done.
    pub keys: Vec<TaskKey>,
    /// Samples of tasks that were not done: what waits on them downstream may be released.
    pub unfinished_samples: std::collections::BTreeSet<String>,
}

/// Before a delete: copies the tasks of `collection` that `selector` names into the catalog,
/// so their history outlives them in the store.
pub fn record_before_delete(
    store: &dyn TaskStore,
    catalog: &mut Catalog,
    collection: &str,
    selector: &Selector,
) -> Result<Recorded> {
    catalog.claim_store(&store.identity(), false)?;
    let run = catalog.start_run(&format!("tasks:{} (before delete)", store.describe()))?;
    let mut recorded = Recorded {
        keys: vec![],
        unfinished_samples: std::collections::BTreeSet::new(),
    };
    let mut counts = RunCounts::default();
    let result = catalog
        .task_writer(&run, Some(collection))
        .and_then(|writer| {
            record_selected(
                store,
                writer,
                collection,
                selector,
                &mut recorded,
                &mut counts,
            )
        });
    catalog.settle_run(&run, counts, result)?;
    Ok(recorded)
}

/// Streams the tasks of `collection` that `selector` picks into the catalog, a thousand a
/// transaction, noting their keys and the samples of those not done.
fn record_selected(
    store: &dyn TaskStore,
    mut writer: TaskWriter<'_>,
    collection: &str,
    selector: &Selector,
    recorded: &mut Recorded,
    counts: &mut RunCounts,
) -> Result<()> {
    let mut batch = vec![];
    let filter = TaskFilter {
        collection: Some(collection.to_string()),
        ..TaskFilter::default()
    };
    let mut write = |batch: &mut Vec<Task>| -> Result<()> {
        let c = writer.write_batch(batch)?;
        counts.new += c.new;
        counts.changed += c.changed;
        counts.seen += batch.len() as u64;
        batch.clear();
        Ok(())
    };
    for_each_task(store, &filter, 1_000, |t| {
        if let Ok(t) = t
            && selector.matches(&t)
        {
            recorded.keys.push(t.key());
            if let (false, Some(sample)) = (t.state == TaskState::Done, &t.sample) {
                recorded.unfinished_samples.insert(sample.clone());
            }
            batch.push(t);
            if batch.len() >= 1_000 {
                write(&mut batch)?;
            }
        }
        Ok(ControlFlow::Continue(()))
    })?;
    write(&mut batch)
}

/// What a delete with its history did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Deleted {
    pub count: u64,
    /// Of those, how many were read as tasks and recorded in the catalog first.
    pub recorded: u64,
    /// Tasks downstream that may run now: the deleted tasks were not required (a lane deleted
    /// on purpose made its sample's state in the step done).
    pub released: u64,
    /// Tasks downstream of the step, on the same samples, that still wait.
    pub still_waiting: u64,
}

/// Deletes tasks with their history: copied into the catalog first (a delete that cannot
/// reach the catalog deletes nothing), removed from the store (which keeps their tombstones),
/// marked removed in the catalog, and what waited on them promoted when their samples' state
/// in the step is now done.
pub fn delete_with_history(
    store: &dyn TaskStore,
    catalog: &mut Catalog,
    collection: &str,
    selector: &Selector,
) -> Result<Deleted> {
    let (count, recorded) = remove_with_history(store, catalog, collection, selector)?;
    let mut deleted = Deleted {
        count,
        recorded: recorded.keys.len() as u64,
        ..Deleted::default()
    };
    for sample in &recorded.unfinished_samples {
        deleted.released += store.promote(sample)?;
        let view = store.sample_view(sample)?;
        deleted.still_waiting += view
            .tasks
            .iter()
            .filter(|t| t.is_live() && t.state == TaskState::Waiting)
            .filter(|t| t.after.iter().any(|a| a == collection))
            .count() as u64;
    }
    Ok(deleted)
}

/// Removes the tasks `selector` names, history first: copied into the catalog (a removal that
/// cannot reach the catalog removes nothing), removed from the store (which keeps their
/// tombstones), then marked removed in the catalog. How many, and what was recorded.
fn remove_with_history(
    store: &dyn TaskStore,
    catalog: &mut Catalog,
    collection: &str,
    selector: &Selector,
) -> Result<(u64, Recorded)> {
    let recorded = record_before_delete(store, catalog, collection, selector)?;
    let count = store.delete(collection, selector)?;
    catalog.mark_tasks_removed(&recorded.keys)?;
    Ok((count, recorded))
}

/// What dropping a sample does to the queue: the store marks it (so no machine adds its tasks
/// again until it is re-activated) and, unless `keep_tasks`, its tasks that have not started
/// are withdrawn (see [`withdraw_sample`]); how many per step.
pub fn drop_from_queue(
    store: &dyn TaskStore,
    catalog: &mut Catalog,
    sample: &str,
    reason: &str,
    keep_tasks: bool,
) -> Result<Vec<(String, u64)>> {
    store.drop_sample(sample, reason)?;
    if keep_tasks {
        return Ok(vec![]);
    }
    withdraw_sample(store, catalog, sample)
}

/// Withdraws a dropped sample's tasks that have not started (waiting, held or todo) from the
/// store, with their history (as a delete), step by step: how many per step. Their tombstones say
/// withdrawn, so adding them again is allowed. Running tasks finish; the catalog sets them
/// apart with the sample. Nothing is promoted: what waits on them is the sample's too.
pub fn withdraw_sample(
    store: &dyn TaskStore,
    catalog: &mut Catalog,
    sample: &str,
) -> Result<Vec<(String, u64)>> {
    let view = store.sample_view(sample)?;
    let steps: std::collections::BTreeSet<&str> = view
        .tasks
        .iter()
        .filter(|t| {
            t.is_live()
                && matches!(
                    t.state,
                    TaskState::Waiting | TaskState::Held | TaskState::Todo
                )
        })
        .map(|t| t.collection.as_str())
        .collect();
    let selector = Selector::Withdrawn(sample.to_string());
    let mut withdrawn = vec![];
    for step in steps {
        let (n, _) = remove_with_history(store, catalog, step, &selector)?;
        if n > 0 {
            withdrawn.push((step.to_string(), n));
        }
    }
    Ok(withdrawn)
}

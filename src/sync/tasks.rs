//! Task store -> catalog. Pages stream into one transaction each, so an interrupted sync
//! leaves every batch either whole or absent; removal is marked only after a complete scan.

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use tracing::warn;

use crate::catalog::{Catalog, RunCounts};
use crate::error::Result;
use crate::model::{Damaged, TaskFilter};
use crate::store::{TaskStore, for_each_task};

#[derive(Debug, Clone)]
pub struct TaskSyncOptions {
    /// Only this collection (removal is then judged within it only).
    pub collection: Option<String>,
    /// Tasks per page and per transaction.
    pub batch: usize,
}

impl Default for TaskSyncOptions {
    fn default() -> Self {
        Self {
            collection: None,
            batch: 5000,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct TaskSyncReport {
    pub counts: RunCounts,
    /// Store records that could not be read, skipped.
    pub damaged: Vec<Damaged>,
    pub elapsed: Duration,
}

/// Copies every task of the store into the catalog.
pub fn sync_tasks(
    store: &dyn TaskStore,
    catalog: &mut Catalog,
    opts: &TaskSyncOptions,
    progress: &ProgressBar,
) -> Result<TaskSyncReport> {
    let started = Instant::now();
    let run = catalog.start_run(&format!("tasks:{}", store.describe()))?;
    let mut counts = RunCounts::default();
    let mut damaged = vec![];
    let result = (|| -> Result<()> {
        let mut writer = catalog.task_writer(&run)?;
        let filter = TaskFilter {
            collection: opts.collection.clone(),
            ..TaskFilter::default()
        };
        let mut batch = Vec::with_capacity(opts.batch);
        for_each_task(store, &filter, opts.batch.max(1), |item| {
            match item {
                Ok(task) => batch.push(task),
                Err(d) => {
                    warn!("skipped damaged task {}: {}", d.key, d.reason);
                    damaged.push(d);
                }
            }
            if batch.len() >= opts.batch {
                writer.write_batch(&batch)?;
                counts.seen += batch.len() as u64;
                progress.inc(batch.len() as u64);
                batch.clear();
            }
            Ok(ControlFlow::Continue(()))
        })?;
        writer.write_batch(&batch)?;
        counts.seen += batch.len() as u64;
        progress.inc(batch.len() as u64);
        counts.removed = writer.mark_removed(opts.collection.as_deref())?;
        (counts.new, counts.changed) = writer.event_counts()?;
        Ok(())
    })();
    progress.finish_and_clear();
    match result {
        Ok(()) => {
            catalog.finish_run(&run, counts)?;
            Ok(TaskSyncReport {
                counts,
                damaged,
                elapsed: started.elapsed(),
            })
        }
        Err(e) => {
            // Best effort: the failure itself is what the user must see.
            let _ = catalog.fail_run(&run, counts, &e.to_string());
            Err(e)
        }
    }
}

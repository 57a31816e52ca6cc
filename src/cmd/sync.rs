//! `anamo sync`: copy the task store into the catalog.

use anyhow::Result;
use clap::Args;

use crate::config::Context;
use crate::store::OpenMode;
use crate::sync::{self, TaskSyncOptions};

/// Copy every task of the store into the catalog: new tasks, state changes (as task_events),
/// and tasks gone from the store (marked removed_at; their history is kept).
#[derive(Debug, Args)]
pub struct Cmd {
    /// Only this collection.
    #[arg(long, short)]
    pub collection: Option<String>,
    /// Tasks per page and per catalog transaction.
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub batch: u64,
}

impl Cmd {
    pub fn run(self, ctx: &Context) -> Result<()> {
        let store = ctx.store(OpenMode::MustExist)?;
        let mut catalog = ctx.catalog()?;
        let total = store
            .counts(self.collection.as_deref())?
            .iter()
            .map(|c| c.count)
            .sum();
        let bar = sync::progress_bar(Some(total), "syncing tasks");
        let opts = TaskSyncOptions {
            collection: self.collection,
            batch: self.batch as usize,
        };
        let report = sync::sync_tasks(store.as_ref(), &mut catalog, &opts, &bar)?;
        let c = report.counts;
        println!(
            "synced tasks from {} into {}: {} seen, {} new, {} changed state, {} removed in {:.1}s",
            store.describe(),
            catalog.path().display(),
            c.seen,
            c.new,
            c.changed,
            c.removed,
            report.elapsed.as_secs_f64()
        );
        if !report.damaged.is_empty() {
            eprintln!(
                "skipped {} damaged task(s) in the store, first {}: {}",
                report.damaged.len(),
                report.damaged[0].key,
                report.damaged[0].reason
            );
        }
        Ok(())
    }
}

//! `anamo sync`: copy the task store, and on request EC2 instances, into the catalog.

use anyhow::Result;
use clap::Args;

use crate::config::Context;
use crate::ec2::Ec2;
use crate::store::OpenMode;
use crate::sync::{self, TaskSyncOptions};

/// Copy every task of the store into the catalog: new tasks, state changes (as task_events),
/// and tasks gone from the store (marked removed_at; their history is kept). With
/// --instances, EC2 instances too (only then is AWS configuration loaded).
#[derive(Debug, Args)]
pub struct Cmd {
    /// Only this collection.
    #[arg(long, short)]
    pub collection: Option<String>,
    /// Tasks per page and per catalog transaction.
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub batch: u64,
    /// Also copy the EC2 instances anamo launched (tagged anamo:step / anamo:launch-id),
    /// with their state changes.
    #[arg(long)]
    pub instances: bool,
    /// With --instances: every instance in the region, not only anamo's.
    #[arg(long, requires = "instances")]
    pub all_instances: bool,
    /// Leave the task store out (sync only the other sources named).
    #[arg(long)]
    pub no_tasks: bool,
}

impl Cmd {
    pub fn run(self, ctx: &Context) -> Result<()> {
        if self.no_tasks && !self.instances {
            anyhow::bail!("--no-tasks leaves nothing to sync; add --instances");
        }
        let mut catalog = ctx.catalog()?;
        if !self.no_tasks {
            self.sync_tasks(ctx, &mut catalog)?;
        }
        if self.instances {
            let ec2 = Ec2::connect(&ctx.aws)?;
            let bar = sync::progress_bar(None, "syncing instances");
            let c = sync::sync_instances(&ec2, &mut catalog, self.all_instances, &bar)?;
            println!(
                "synced instances from EC2 {}: {} seen, {} new, {} changed state, {} gone",
                ec2.region().unwrap_or("(no region)"),
                c.seen,
                c.new,
                c.changed,
                c.removed
            );
        }
        Ok(())
    }

    fn sync_tasks(&self, ctx: &Context, catalog: &mut crate::catalog::Catalog) -> Result<()> {
        let store = ctx.store(OpenMode::MustExist)?;
        let total = store
            .counts(self.collection.as_deref())?
            .iter()
            .map(|c| c.count)
            .sum();
        let bar = sync::progress_bar(Some(total), "syncing tasks");
        let opts = TaskSyncOptions {
            collection: self.collection.clone(),
            batch: self.batch as usize,
        };
        let report = sync::sync_tasks(store.as_ref(), catalog, &opts, &bar)?;
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

//! `anamo sync`: copy the task store, and on request EC2 instances and S3 listings, into the
//! catalog.

use anyhow::Result;
use clap::Args;

use crate::config::Context;
use crate::sync::Request;

/// Copy the store's tasks into the catalog: new tasks, state changes (as task_events), and
/// tasks gone from the store (marked removed_at; their history is kept). After the first
/// (full) sync, only what changed since the last one is read (a few minutes' overlap,
/// [sync] overlap), with a full scan once a day ([sync] full_every) or with --full. With
/// --instances, EC2 instances too; with --objects, S3 listings. Sources can also be set in
/// anamo.toml ([sync] instances = true, [[sync.objects]] uri = ..., sample_pattern = ...).
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
    /// Also list S3 objects under s3://BUCKET/PREFIX into `objects` (repeatable).
    #[arg(long, value_name = "S3_URI")]
    pub objects: Vec<String>,
    /// With --objects: regex whose group `sample` finds the sample id in each key after the
    /// prefix [default: the first path segment after the prefix].
    #[arg(long, requires = "objects", value_name = "REGEX")]
    pub sample_pattern: Option<String>,
    /// Leave the task store out (sync only the other sources named).
    #[arg(long)]
    pub no_tasks: bool,

    /// The task store is not the one this catalog was filled from, and that is right (the
    /// same store moved: a renamed file, a table copied to another region). Without it such a
    /// sync is refused rather than merging two cohorts.
    #[arg(long)]
    pub store_changed: bool,

    /// Read the whole store, and mark what it no longer holds removed, even when an
    /// incremental read (only what changed since the last sync) would do. A full scan also
    /// runs by itself on the first sync, once a day ([sync] full_every), and when the store's
    /// change index cannot answer for the time since the last sync.
    #[arg(long)]
    pub full: bool,

    /// Keep syncing until stopped (SIGTERM or Ctrl-C ends it between syncs, a second at
    /// once): tasks every --every, EC2 instances and S3 listings every --others-every.
    #[arg(long)]
    pub watch: bool,
    /// With --watch: how often to sync the tasks.
    #[arg(long, requires = "watch", default_value = "60s", value_parser = crate::clock::parse_duration)]
    pub every: std::time::Duration,
    /// With --watch: how often to sync EC2 instances and S3 listings (when asked for).
    #[arg(long, requires = "watch", default_value = "15m", value_parser = crate::clock::parse_duration)]
    pub others_every: std::time::Duration,
    /// After each sync that changed something, publish the catalog to s3://BUCKET/PREFIX/
    /// for readers (`--catalog s3://BUCKET/PREFIX/`): a consistent snapshot, status.json and
    /// report.html, then the manifest latest.json last.
    #[arg(long, value_name = "S3_URI")]
    pub publish: Option<String>,
    /// With --publish: how many snapshots to keep under the prefix.
    #[arg(long, requires = "publish", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub keep: u64,
}

impl Cmd {
    pub fn run(self, ctx: &Context) -> Result<()> {
        let publisher = self.publisher(ctx)?;
        let request = self.request();
        if !self.watch {
            let mut changed = false;
            request.run(ctx, &mut |synced| {
                changed |= synced.changed();
                println!("{synced}");
            })?;
            if let Some(p) = &publisher {
                publish_once(ctx, p, changed)?;
            }
            return Ok(());
        }
        crate::sync::watch::Watch {
            request,
            every: self.every,
            others_every: self.others_every,
            publisher,
        }
        .run(ctx)
    }

    /// The publisher `--publish` asks for, checked before the first sync: the prefix must
    /// be writable and the catalog a local file.
    fn publisher(&self, ctx: &Context) -> Result<Option<crate::publish::Publisher>> {
        let Some(uri) = &self.publish else {
            return Ok(None);
        };
        let at = crate::aws::s3::S3Uri::parse(uri)?;
        ctx.catalog_for_sync()?;
        let s3 = crate::aws::s3::S3::connect(&ctx.aws)?.for_policy(crate::aws::s3::PUBLISH_POLICY);
        Ok(Some(crate::publish::Publisher::start(
            s3,
            at,
            self.keep as usize,
        )?))
    }

    fn request(&self) -> Request {
        Request {
            collection: self.collection.clone(),
            batch: self.batch,
            instances: self.instances,
            all_instances: self.all_instances,
            objects: self.objects.clone(),
            sample_pattern: self.sample_pattern.clone(),
            no_tasks: self.no_tasks,
            store_changed: self.store_changed,
            full: self.full,
            tasks_only: false,
            wait_for_running: None,
        }
    }
}

/// `sync --publish` without --watch (a cron job's): one sync, then one publish by the
/// syncer's rule, tried once.
fn publish_once(ctx: &Context, p: &crate::publish::Publisher, changed: bool) -> Result<()> {
    use crate::sync::watch::{Published, publish_after_sync};
    let never = std::sync::atomic::AtomicBool::new(false);
    match publish_after_sync(ctx, p, changed, 1, &never)? {
        Published::Noted(m) => println!(
            "nothing new to publish to {}: version {} stays current (its manifest notes this \
             sync)",
            p.at(),
            m.version
        ),
        Published::New(m) => println!(
            "published version {} ({} KiB) to {}",
            m.version,
            m.size.div_ceil(1024),
            p.at()
        ),
    }
    Ok(())
}

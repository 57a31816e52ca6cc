//! One `anamo sync` as a command asks for it: which sources (the task store, S3 prefixes
//! from flags or anamo.toml, EC2 instances), under the catalog's sync lock. Each source synced
//! is handed to the caller as a [`Synced`], whose `Display` is its one summary line: `sync`
//! prints it, `status --sync` and `report --sync` say it on stderr. `sync` and `status --sync`
//! both run this, so no command calls another. Command-level orchestration, hence anyhow like
//! the commands.

use anyhow::Result;

use crate::aws::ec2::Ec2;
use crate::aws::s3::{S3, S3Uri};
use crate::catalog::{Catalog, ObjectCounts};
use crate::config::{Context, FileConfig};
use crate::store::OpenMode;
use crate::sync::{
    self, FullBecause, InstanceCounts, SamplePattern, SpotPriceCounts, SyncKind, TaskSyncOptions,
    TaskSyncReport,
};

/// What to sync, from the command line.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// Only this collection.
    pub collection: Option<String>,
    /// Tasks per page and per catalog transaction.
    pub batch: u64,
    pub instances: bool,
    pub all_instances: bool,
    pub objects: Vec<String>,
    pub sample_pattern: Option<String>,
    pub no_tasks: bool,
    pub store_changed: bool,
    /// Read the whole store even when an incremental read would do.
    pub full: bool,
    /// Only the task store, whatever else the flags or anamo.toml name (`sync --watch` syncs
    /// the others at their own, longer interval).
    pub tasks_only: bool,
    /// When another process is syncing the catalog: wait up to this long for it and read what
    /// it wrote (`status --sync`), rather than refuse.
    pub wait_for_running: Option<std::time::Duration>,
}

/// One S3 prefix to list, and how to read sample ids under it.
struct ObjectsSource {
    at: S3Uri,
    pattern: SamplePattern,
    /// No pattern was given: the one stored for the prefix is used, else the default.
    given: bool,
}

impl Request {
    /// The sync a reading command runs first when asked (`status --sync`, `report --sync`):
    /// tasks (and what anamo.toml names); the command says its lines on stderr, since its own
    /// data owns stdout.
    pub fn before_reading() -> Self {
        Self {
            batch: 5000,
            wait_for_running: Some(std::time::Duration::from_secs(600)),
            ..Self::default()
        }
    }

    /// Runs the sync: every source named is checked before anything is written. Each source
    /// synced is handed to `said` as it ends, so a later failure keeps the earlier lines.
    pub fn run(&self, ctx: &Context, said: &mut dyn FnMut(&Synced)) -> Result<()> {
        let config = FileConfig::load()?;
        let prices: Vec<(String, f64)> = config.prices.into_iter().collect();
        let file = config.sync;
        let instances = (self.instances || file.instances) && !self.tasks_only;
        let mut objects = if self.tasks_only {
            vec![]
        } else {
            self.objects_named(&file)?
        };
        if self.no_tasks && !instances && objects.is_empty() {
            return Err(crate::error::Error::Usage(
                "--no-tasks leaves nothing to sync; add --instances or --objects (or name them \
                 in anamo.toml)"
                    .into(),
            )
            .into());
        }
        let mut catalog = ctx.catalog_for_sync()?;
        let Some(_lock) = self.lock(&mut catalog)? else {
            return Ok(());
        };
        // The on-demand prices anamo.toml gives, for the catalog's cost reports.
        if !prices.is_empty() {
            catalog.set_prices(&prices, "anamo.toml")?;
        }
        if !self.no_tasks {
            let others = instances || !objects.is_empty();
            if let Some(synced) = self.sync_tasks(ctx, &mut catalog, &file, others)? {
                said(&synced);
            }
        }
        if !objects.is_empty() {
            let s3 = S3::connect(&ctx.aws)?;
            for source in &mut objects {
                let synced = source.sync(&s3, &mut catalog)?;
                said(&synced);
                synced.warn();
            }
        }
        if instances {
            said(&self.sync_instances(ctx, &mut catalog)?);
        }
        Ok(())
    }

    /// The S3 prefixes to list, each pattern and URI checked before anything is written.
    /// Flags replace the file's sources rather than adding to them.
    fn objects_named(&self, file: &crate::config::SyncConfig) -> Result<Vec<ObjectsSource>> {
        let named: Vec<(&str, Option<&str>, String)> = if self.objects.is_empty() {
            file.objects
                .iter()
                .map(|o| {
                    let origin = format!("{}: sample_pattern", o.at);
                    (o.uri.as_str(), o.sample_pattern.as_deref(), origin)
                })
                .collect()
        } else {
            self.objects
                .iter()
                .map(|uri| {
                    let origin = "--sample-pattern".to_string();
                    (uri.as_str(), self.sample_pattern.as_deref(), origin)
                })
                .collect()
        };
        Ok(named
            .into_iter()
            .map(|(uri, pattern, origin)| ObjectsSource::parse(uri, pattern, &origin))
            .collect::<crate::error::Result<Vec<_>>>()?)
    }

    /// The catalog's sync lock; `None` when another sync held it and this one (a reader that
    /// asked for fresh data) waited for it and will read what it wrote.
    fn lock(&self, catalog: &mut Catalog) -> Result<Option<crate::catalog::SyncLock>> {
        match (catalog.try_lock_for_sync()?, self.wait_for_running) {
            (Ok(lock), _) => Ok(Some(lock)),
            (Err(busy), Some(limit)) => {
                crate::note!(
                    "{busy}: waiting for it (up to {}), then reading what it wrote",
                    humantime::format_duration(limit)
                );
                catalog.wait_for_other_sync(limit)?;
                Ok(None)
            }
            (Err(busy), None) => {
                Err(crate::error::Error::Invalid(format!("{busy}; wait for it to finish")).into())
            }
        }
    }

    /// EC2 instances of this store's launches, and the Spot prices of their types.
    fn sync_instances(&self, ctx: &Context, catalog: &mut Catalog) -> Result<Synced> {
        let ec2 = Ec2::connect(&ctx.aws)?;
        let bar = sync::progress_bar(None, "syncing instances");
        let c = sync::sync_instances(&ec2, catalog, self.all_instances, &bar)?;
        let prices = sync::sync_spot_prices(&ec2, catalog)?;
        if c.others > 0 {
            let forgot = if c.forgotten > 0 {
                format!(
                    " ({} of them taken by an earlier sync, now forgotten)",
                    c.forgotten
                )
            } else {
                String::new()
            };
            crate::note!(
                "left {} instance(s) anamo launched for other task stores (or from another \
                 catalog){forgot}; this catalog holds only the instances of {}",
                c.others,
                catalog
                    .store_identity()?
                    .unwrap_or_else(|| "its own launches".into())
            );
        }
        Ok(Synced::Instances {
            region: ec2.region().unwrap_or("(no region)").to_string(),
            counts: c,
            prices,
        })
    }

    /// With `others` (S3 or EC2 sources too), a task store that does not exist yet is skipped
    /// with a note: a cohort's files can be registered before its first task.
    fn sync_tasks(
        &self,
        ctx: &Context,
        catalog: &mut Catalog,
        file: &crate::config::SyncConfig,
        others: bool,
    ) -> Result<Option<Synced>> {
        let store = match ctx.store(OpenMode::MustExist) {
            Ok(store) => store,
            Err(crate::error::Error::Missing { path, .. }) if others => {
                crate::note!(
                    "tasks skipped: no task store at '{}' yet (it appears with the first \
                     `anamo tasks add`)",
                    path.display()
                );
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
        // A collection neither the store nor the catalog has heard of is a typo, not a sync of
        // nothing.
        if let Some(c) = &self.collection
            && let Some(typo) = crate::study::unknown_collection(store.as_ref(), c, Some(catalog))?
        {
            anyhow::bail!("{typo}");
        }
        let opts = TaskSyncOptions {
            collection: self.collection.clone(),
            batch: self.batch as usize,
            store_changed: self.store_changed,
            full: self.full,
            overlap: file.overlap.unwrap_or(sync::DEFAULT_OVERLAP),
            full_every: file.full_every.unwrap_or(sync::DEFAULT_FULL_EVERY),
        };
        catalog.claim_store(&store.identity(), opts.store_changed)?;
        let kind = sync::plan(store.as_ref(), catalog, &opts, crate::clock::now_ms())?;
        // Counting a DynamoDB table costs a scan of its own: only a full scan of a store that
        // counts cheaply shows how far along it is.
        let bar = match kind {
            SyncKind::Full(_) if store.counts_cheaply() => {
                let total = store
                    .counts(self.collection.as_deref())?
                    .iter()
                    .map(|c| c.count)
                    .sum();
                sync::progress_bar(Some(total), "syncing tasks (full scan)")
            }
            SyncKind::Full(_) => sync::progress_bar(None, "syncing tasks (full scan)"),
            SyncKind::Incremental { .. } => sync::progress_bar(None, "syncing changed tasks"),
        };
        let report = sync::sync_tasks_as(store.as_ref(), catalog, &opts, kind, &bar)?;
        if !report.damaged.is_empty() {
            crate::note!(
                "skipped {} damaged task(s) in the store, first {}: {}",
                report.damaged.len(),
                report.damaged[0].key,
                report.damaged[0].reason
            );
        }
        if let Some(line) = crate::model::Unclaimable::summary(&report.unclaimable) {
            crate::note!("{line}");
        }
        Ok(Some(Synced::Tasks {
            store: store.describe(),
            catalog: catalog.path().display().to_string(),
            report,
        }))
    }
}

/// What one source of a sync brought; `Display` gives its one summary line.
pub enum Synced {
    Tasks {
        store: String,
        catalog: String,
        report: TaskSyncReport,
    },
    Objects {
        at: S3Uri,
        pattern: String,
        counts: ObjectCounts,
    },
    Instances {
        region: String,
        counts: InstanceCounts,
        prices: SpotPriceCounts,
    },
}

impl std::fmt::Display for Synced {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Synced::Tasks {
                store,
                catalog,
                report,
            } => {
                let c = report.counts;
                write!(
                    f,
                    "synced tasks from {store} into {catalog}: {} seen, {} new, {} changed \
                     state, {} removed in {:.1}s ({}, {} item(s) read)",
                    c.seen,
                    c.new,
                    c.changed,
                    c.removed,
                    report.elapsed.as_secs_f64(),
                    kind_words(report.kind),
                    report.read
                )
            }
            Synced::Objects {
                at,
                pattern,
                counts: c,
            } => write!(
                f,
                "synced objects from {at}: {} seen, {} new, {} changed, {} removed; {} with a \
                 sample id (pattern '{pattern}')",
                c.run.seen, c.run.new, c.run.changed, c.run.removed, c.matched
            ),
            Synced::Instances {
                region,
                counts: c,
                prices,
            } => write!(
                f,
                "synced instances from EC2 {region}: {} seen, {} new, {} changed state, {} gone; \
                 {} new Spot price(s) for {} type and zone pair(s)",
                c.run.seen, c.run.new, c.run.changed, c.run.removed, prices.new, prices.pairs
            ),
        }
    }
}

/// How a sync read the store, as its summary line says it.
fn kind_words(kind: SyncKind) -> String {
    let at = crate::clock::rfc3339;
    match kind {
        SyncKind::Incremental { since } => format!("incremental: changes since {}", at(since)),
        SyncKind::Full(why) => format!(
            "full scan: {}",
            match why {
                FullBecause::Asked => "--full".to_string(),
                FullBecause::First => "first sync of this catalog".to_string(),
                FullBecause::Due { last_full } => {
                    format!(
                        "the last full scan, {}, is older than full_every",
                        at(last_full)
                    )
                }
                FullBecause::NoChangeIndex => {
                    "the table has no change index; `anamo store init` adds it".to_string()
                }
                FullBecause::IndexNewer { since } => {
                    format!("the change index answers only since {}", at(since))
                }
            }
        ),
    }
}

impl Synced {
    /// Whether this source brought anything new, changed or removed.
    pub fn changed(&self) -> bool {
        let moved = |n: u64, c: u64, r: u64| n + c + r > 0;
        match self {
            Synced::Tasks { report, .. } => {
                let c = report.counts;
                moved(c.new, c.changed, c.removed)
            }
            Synced::Objects { counts, .. } => {
                moved(counts.run.new, counts.run.changed, counts.run.removed)
            }
            Synced::Instances { counts, .. } => {
                moved(counts.run.new, counts.run.changed, counts.run.removed)
            }
        }
    }

    /// What a listing of objects got wrong or kept, said on stderr.
    fn warn(&self) {
        let Synced::Objects {
            at,
            pattern,
            counts: c,
        } = self
        else {
            return;
        };
        if c.run.seen > 0 && c.matched == 0 {
            crate::note!(
                "warning: no key under {at} matched the sample pattern '{pattern}', so no \
                 object has a sample id; give --sample-pattern a regex with a (?P<sample>...) \
                 group that fits the keys after the prefix"
            );
        }
        if c.cleared > 0 {
            let before = c.cleared_pattern.as_deref().unwrap_or("unknown");
            crate::note!(
                "warning: cleared the sample id of {} object(s) under {at} that pattern \
                 '{before}' had set; if the old pattern was right, sync {at} again with \
                 --sample-pattern '{before}'",
                c.cleared
            );
        }
        if c.kept > 0 {
            let narrower = c.kept_prefix.as_deref().unwrap_or("a narrower prefix");
            crate::note!(
                "kept the sample id of {} object(s) that the listing of {narrower} had set (its \
                 keys read differently from {at}); sync {narrower} to change them",
                c.kept
            );
        }
        if c.run.seen == 0 {
            crate::note!("warning: nothing under {at}; check the prefix (aws s3 ls {at})");
        }
    }
}

impl ObjectsSource {
    /// Lists the prefix into the catalog. Listing a prefix again without a pattern keeps the
    /// one it was read with.
    fn sync(&mut self, s3: &S3, catalog: &mut Catalog) -> Result<Synced> {
        if !self.given {
            let folder = self.at.as_folder();
            if let Some(stored) =
                catalog.stored_sample_pattern(&folder.bucket, &folder.to_string())?
                && stored != self.pattern.as_str()
            {
                self.pattern = SamplePattern::parse_from(&stored, "the stored pattern")?;
                crate::note!(
                    "reading sample ids under {folder} with the pattern '{stored}' it was \
                     synced with before (--sample-pattern gives another)"
                );
            }
        }
        let bar = sync::progress_bar(None, "syncing objects");
        let counts = sync::sync_objects(s3, catalog, &self.at, &self.pattern, &bar)?;
        Ok(Synced::Objects {
            at: self.at.as_folder(),
            pattern: self.pattern.as_str().to_string(),
            counts,
        })
    }

    fn parse(uri: &str, pattern: Option<&str>, origin: &str) -> crate::error::Result<Self> {
        Ok(Self {
            at: S3Uri::parse(uri)?,
            pattern: match pattern {
                Some(p) => SamplePattern::parse_from(p, origin)?,
                None => SamplePattern::first_segment(),
            },
            given: pattern.is_some(),
        })
    }
}

//! `anamo sync --watch`: the one syncer. It syncs the task store every interval (EC2 instances
//! and S3 listings at their own, longer one), and after each sync that changed something it
//! publishes the catalog when asked (publish/). SIGTERM or Ctrl-C ends it between syncs; a
//! second signal ends it at once. A publish that fails is retried, said on stderr, and tried
//! again after the next sync: the manifest readers follow still names the previous version.
//! Command-level orchestration, hence anyhow like the commands.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;

use super::Request;
use crate::config::{Context, FileConfig};
use crate::publish::{Manifest, Publisher};

/// Tries of one publish before the syncer says it failed and moves on.
const PUBLISH_TRIES: u32 = 3;
const PUBLISH_PAUSE: Duration = Duration::from_secs(2);

pub struct Watch {
    pub request: Request,
    pub every: Duration,
    pub others_every: Duration,
    pub publisher: Option<Publisher>,
}

impl Watch {
    pub fn run(self, ctx: &Context) -> Result<()> {
        let stop = Arc::new(AtomicBool::new(false));
        watch_signals(Arc::clone(&stop))?;
        crate::note!(
            "syncing every {} (EC2 instances and S3 listings, when asked for, every {}){}; \
             SIGTERM or Ctrl-C stops it after the sync under way",
            humantime::format_duration(self.every),
            humantime::format_duration(self.others_every),
            self.publisher
                .as_ref()
                .map(|p| format!(", publishing to {}", p.at()))
                .unwrap_or_default()
        );
        let mut others_due = Instant::now();
        while !stop.load(Ordering::SeqCst) {
            let started = Instant::now();
            let mut request = self.request.clone();
            request.tasks_only = started < others_due;
            if !request.tasks_only {
                others_due = started + self.others_every;
            }
            let mut changed = false;
            let synced = request.run(ctx, &mut |s| {
                changed |= s.changed();
                println!("{s}");
            });
            match synced {
                // A sync that failed is said and tried again at the next interval: a syncer
                // outlives a passing fault of the store.
                Err(e) => crate::note!(
                    "sync failed: {e:#}; trying again in {}",
                    humantime::format_duration(self.every)
                ),
                Ok(()) => {
                    if let Some(p) = &self.publisher {
                        match publish_after_sync(ctx, p, changed, PUBLISH_TRIES, &stop) {
                            Ok(Published::New(m)) => println!(
                                "published version {} ({} KiB) to {}",
                                m.version,
                                m.size.div_ceil(1024),
                                p.at()
                            ),
                            Ok(Published::Noted(_)) => {}
                            // The manifest still names the version before: the next sync
                            // publishes anew, whether or not it changes anything.
                            Err(e) => crate::note!(
                                "publish to {} failed: {e:#}; readers keep the version before, \
                                 and the next sync publishes again",
                                p.at()
                            ),
                        }
                    }
                }
            }
            sleep_unless_stopped(self.every.saturating_sub(started.elapsed()), &stop);
        }
        crate::note!("stopped by a signal, after the sync under way");
        Ok(())
    }
}

/// What a publish after a sync did.
pub enum Published {
    /// A new version.
    New(Manifest),
    /// Nothing new: the manifest readers follow now notes this sync.
    Noted(Manifest),
}

/// After a sync: a new version when the catalog differs from the one readers follow (the
/// sync changed something, another command changed the catalog since that version, nothing
/// is published, or the snapshot the manifest names is gone); else the manifest notes that
/// this sync found nothing new. A new version is tried `tries` times (each failure said).
pub fn publish_after_sync(
    ctx: &Context,
    p: &Publisher,
    changed: bool,
    tries: u32,
    stop: &AtomicBool,
) -> Result<Published> {
    let current = if changed { None } else { p.current()? };
    if let Some(m) = current {
        let catalog = crate::catalog::CatalogRead::open(&ctx.catalog_path)?;
        if catalog.content_changed_at()? < m.version {
            return Ok(Published::Noted(p.checked(&m, crate::clock::now_ms())?));
        }
    }
    Ok(Published::New(publish_retrying(ctx, p, tries, stop)?))
}

/// One publish, tried up to `tries` times (each failure before the last said on stderr).
fn publish_retrying(
    ctx: &Context,
    p: &Publisher,
    tries: u32,
    stop: &AtomicBool,
) -> Result<Manifest> {
    let mut n = 1;
    loop {
        match publish(ctx, p) {
            Ok(m) => return Ok(m),
            Err(e) if n < tries && !stop.load(Ordering::SeqCst) => {
                crate::note!("publish failed (try {n} of {tries}): {e:#}; retrying");
                std::thread::sleep(PUBLISH_PAUSE * n);
                n += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Publishes the catalog now: its snapshot, status and report, then the manifest.
fn publish(ctx: &Context, p: &Publisher) -> Result<Manifest> {
    let study = FileConfig::load()?.study;
    let conn = crate::catalog::CatalogRead::open(&ctx.catalog_path)?;
    let options = crate::report::Options::of_study(None, study, p.at().to_string());
    let page = crate::report::render(&conn, &options)?;
    drop(conn);
    Ok(p.publish(&ctx.catalog_path, crate::clock::now_ms(), &page)?)
}

/// SIGTERM and SIGINT, read on their own thread (where printing is safe): the first asks the
/// syncer to stop after the sync under way, a second stops it at once (exit 1).
fn watch_signals(stop: Arc<AtomicBool>) -> std::io::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    std::thread::spawn(move || {
        for (n, _) in signals.forever().enumerate() {
            if n == 0 {
                crate::note!("stopping after the sync under way (a second signal stops at once)");
                stop.store(true, Ordering::SeqCst);
            } else {
                crate::note!("stopped at once; the next sync mends what this one left");
                std::process::exit(1);
            }
        }
    });
    Ok(())
}

/// Sleeps `d`, waking early when asked to stop.
fn sleep_unless_stopped(d: Duration, stop: &AtomicBool) {
    let until = Instant::now() + d;
    while !stop.load(Ordering::SeqCst) {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(Duration::from_millis(200)));
    }
}

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
        // What readers follow now: a first publish comes after the first sync only when the
        // prefix has none (or that sync changed something).
        let mut current = match &self.publisher {
            Some(p) => p.current()?,
            None => None,
        };
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
                        current = publish_or_note(ctx, p, current.take(), changed, &stop);
                    }
                }
            }
            sleep_unless_stopped(self.every.saturating_sub(started.elapsed()), &stop);
        }
        crate::note!("stopped by a signal, after the sync under way");
        Ok(())
    }
}

/// After a sync: a new version when it changed something or none is published yet, else a
/// note in the manifest that this sync found nothing new. Returns what readers follow now
/// (the manifest before, when the publish failed: said, and tried again after the next sync).
fn publish_or_note(
    ctx: &Context,
    p: &Publisher,
    current: Option<Manifest>,
    changed: bool,
    stop: &AtomicBool,
) -> Option<Manifest> {
    // Read again when nothing changed: a snapshot deleted or a manifest rewritten by hand is
    // published anew rather than noted as current.
    let current = if changed {
        current
    } else {
        p.current().ok().flatten()
    };
    let stale = match needs_publish(ctx, current.as_ref(), changed) {
        Ok(stale) => stale,
        Err(e) => {
            crate::note!("cannot read the catalog to decide on a publish: {e:#}");
            true
        }
    };
    let result = match (&current, stale) {
        (Some(m), false) => p.checked(m, crate::clock::now_ms()).map_err(Into::into),
        _ => publish_retrying(ctx, p, stop).inspect(|m| {
            println!(
                "published version {} ({} KiB) to {}",
                m.version,
                m.size.div_ceil(1024),
                p.at()
            )
        }),
    };
    match result {
        Ok(m) => Some(m),
        Err(e) => {
            crate::note!(
                "publish to {} failed: {e:#}; readers keep the version before, and the next \
                 sync publishes again",
                p.at()
            );
            // Not current: the next sync publishes anew, whether or not it changes anything.
            None
        }
    }
}

/// Whether the catalog differs from the version readers follow: nothing is published yet, the
/// sync changed something, or another command changed the catalog since that version (an
/// import, `steps set`, a delete's history).
pub fn needs_publish(ctx: &Context, current: Option<&Manifest>, changed: bool) -> Result<bool> {
    let Some(m) = current else {
        return Ok(true);
    };
    if changed {
        return Ok(true);
    }
    let catalog = crate::catalog::CatalogRead::open(&ctx.catalog_path)?;
    Ok(catalog.content_changed_at()? >= m.version)
}

/// One publish, tried up to [`PUBLISH_TRIES`] times (each failure said on stderr).
fn publish_retrying(ctx: &Context, p: &Publisher, stop: &AtomicBool) -> Result<Manifest> {
    let mut tries = 1;
    loop {
        match publish(ctx, p) {
            Ok(m) => return Ok(m),
            Err(e) if tries < PUBLISH_TRIES && !stop.load(Ordering::SeqCst) => {
                crate::note!("publish failed (try {tries} of {PUBLISH_TRIES}): {e:#}; retrying");
                std::thread::sleep(PUBLISH_PAUSE * tries);
                tries += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Publishes the catalog now: its snapshot, status and report, then the manifest.
pub fn publish(ctx: &Context, p: &Publisher) -> Result<Manifest> {
    let study = FileConfig::load()?.study;
    let conn = crate::catalog::CatalogRead::open(&ctx.catalog_path)?;
    let title = study
        .name
        .filter(|t| !t.trim().is_empty())
        .unwrap_or_else(|| format!("anamo report: {}", p.at()));
    let mut options = crate::report::Options::new(title, p.at().to_string());
    options.required_kinds = study.required_kinds;
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

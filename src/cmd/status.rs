//! `anamo status`: progress per step, or one sample's journey.

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use clap::Args;

use crate::catalog::{self};
use crate::config::Context;
use crate::output::Format;
use crate::query::saved;
use crate::status;

/// The saved report `status --sample` shows.
const JOURNEY_REPORT: &str = "sample-timeline";

/// Where the study stands: per step (workflow order) counts by state, percent done, tasks
/// done in the last 24 hours and a naive ETA at that pace. Reads the catalog; --sync first
/// copies the store into it.
#[derive(Debug, Args)]
pub struct Cmd {
    /// Show one sample's journey through the steps instead.
    #[arg(long)]
    pub sample: Option<String>,
    /// Sync tasks from the store into the catalog first.
    #[arg(long)]
    pub sync: bool,
    /// Output format (default: table on a terminal, TSV in a pipe).
    #[arg(long, short, value_enum)]
    pub format: Option<Format>,
    /// Keep watching: redraw the step table in place on a terminal, or print one line per
    /// refresh in a pipe, until stopped (Ctrl-C). With --sync, syncs before each refresh.
    #[arg(long, conflicts_with_all = ["sample", "format"])]
    pub watch: bool,
    /// How often --watch refreshes (e.g. 30s, 5m).
    #[arg(long, default_value = "30s", value_parser = crate::clock::parse_duration, requires = "watch")]
    pub every: std::time::Duration,
}

impl Cmd {
    pub fn run(self, ctx: &Context) -> Result<()> {
        if self.watch {
            return self.watch(ctx);
        }
        if self.sync {
            crate::sync::Request::before_reading()
                .run(ctx, &mut |synced| crate::note!("{synced}"))?;
        }
        let conn = ctx.read_catalog()?;
        let format = Format::resolve(self.format);
        let out = std::io::stdout().lock();
        // A published catalog's line about its version (read_catalog's) says how fresh it is.
        if ctx.published_catalog().is_none() {
            let running = catalog::sync_in_progress(&ctx.catalog_path);
            crate::note!("{}", status::freshness_line(&conn.freshness()?, running));
        }
        match self.sample {
            None => {
                status::render(&conn.overview()?, format, out)?;
                if let Some(note) = status::not_imported_note(conn.samples_not_imported()?) {
                    crate::note!("{note}");
                }
            }
            Some(sample) => {
                let presence = conn.sample_presence(&sample)?;
                if presence.imported.is_none() && presence.tasks == 0 {
                    bail!(
                        "no sample '{sample}' in the catalog (neither imported nor in any synced task)"
                    );
                }
                if let Some((cohort, st)) = presence.imported {
                    crate::note!(
                        "sample {sample}: cohort {}, {st}",
                        cohort.unwrap_or_default()
                    );
                }
                // The journey is the built-in `sample-timeline` report: one definition, so
                // status and `anamo query sample-timeline` cannot tell different stories.
                let report = saved::built_in(JOURNEY_REPORT)?;
                let params =
                    report.bind(BTreeMap::from([("sample".to_string(), sample)]), &conn)?;
                crate::query::run(&conn, &report.sql, &params, format, out)?;
            }
        }
        Ok(())
    }

    /// `--watch`: the table redrawn in place on a terminal, a line per refresh elsewhere.
    fn watch(&self, ctx: &Context) -> Result<()> {
        use std::io::{IsTerminal, Write};
        let terminal = std::io::stdout().is_terminal();
        loop {
            if self.sync {
                crate::sync::Request::before_reading()
                    .run(ctx, &mut |synced| crate::note!("{synced}"))?;
            }
            let conn = ctx.read_catalog()?;
            let rows = conn.overview()?;
            let mut out = std::io::stdout().lock();
            if terminal {
                let running = catalog::sync_in_progress(&ctx.catalog_path);
                let fresh = status::freshness_line(&conn.freshness()?, running);
                // Home and clear, then the page: a redraw, not a scroll.
                writeln!(out, "\x1b[H\x1b[2J{fresh}")?;
                status::render(&rows, Format::Table, &mut out)?;
                writeln!(
                    out,
                    "every {}; Ctrl-C to stop",
                    humantime::format_duration(self.every)
                )?;
            } else {
                writeln!(out, "{}", status::one_line(&rows, crate::clock::now_ms()))?;
            }
            out.flush()?;
            drop(out);
            drop(conn);
            std::thread::sleep(self.every);
        }
    }
}

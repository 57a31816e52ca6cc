//! `anamo status`: progress per step, or one sample's journey.

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use clap::Args;
use rusqlite::OptionalExtension;

use crate::catalog::Catalog;
use crate::config::Context;
use crate::output::Format;
use crate::status;

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
}

impl Cmd {
    pub fn run(self, ctx: &Context) -> Result<()> {
        if self.sync {
            crate::cmd::sync::Cmd {
                collection: None,
                batch: 5000,
                instances: false,
                all_instances: false,
                no_tasks: false,
                objects: vec![],
                sample_pattern: None,
                store_changed: false,
                summary_to_stderr: true,
            }
            .run(ctx)?;
        }
        let conn = Catalog::read_only(&ctx.catalog_path)?;
        let format = Format::resolve(self.format);
        let out = std::io::stdout().lock();
        crate::note!("{}", status::freshness(&conn, &ctx.catalog_path)?);
        match self.sample {
            None => status::render(&status::overview(&conn)?, format, out)?,
            Some(sample) => {
                let info: Option<(Option<String>, String)> = conn
                    .query_row(
                        "SELECT cohort, status FROM samples WHERE sample_id = ?1",
                        [&sample],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()?;
                let tasks: i64 = conn.query_row(
                    "SELECT count(*) FROM tasks WHERE sample = ?1",
                    [&sample],
                    |r| r.get(0),
                )?;
                if info.is_none() && tasks == 0 {
                    bail!(
                        "no sample '{sample}' in the catalog (neither imported nor in any synced task)"
                    );
                }
                if let Some((cohort, st)) = info {
                    crate::note!(
                        "sample {sample}: cohort {}, {st}",
                        cohort.unwrap_or_default()
                    );
                }
                let params = BTreeMap::from([("sample".to_string(), sample)]);
                crate::query::run(&conn, status::SAMPLE_JOURNEY, &params, format, out)?;
            }
        }
        Ok(())
    }
}

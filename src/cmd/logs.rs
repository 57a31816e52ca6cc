//! `anamo logs`: print a task's log from wherever it lives (S3 or this machine).

use std::io::Write;

use anyhow::{Context as _, Result, bail};
use clap::Args;

use crate::aws::s3::{S3, S3Uri};
use crate::catalog::progress::LogRef;
use crate::config::Context;
use crate::store::OpenMode;

/// Print a task's log: its last run's, or --run N (runs are numbered from 1 and never
/// renumbered: retries and replaces go on counting). Logs in S3 (workers run with
/// --log-uri) are streamed from there; local ones (--log-dir) are read from this machine.
/// The task is looked up in the store, then in the catalog (tasks deleted after completion).
#[derive(Debug, Args)]
pub struct Cmd {
    /// Task id.
    pub id: String,
    /// Collection, needed when the id exists in several.
    #[arg(long, short)]
    pub collection: Option<String>,
    /// Which run (1 = the first ever) [default: the last].
    #[arg(long, alias = "attempt", value_parser = clap::value_parser!(u32).range(1..))]
    pub run: Option<u32>,
}

impl Cmd {
    pub fn run(self, ctx: &Context) -> Result<()> {
        let Some(found) = self.find(ctx)? else {
            bail!(
                "no task '{}' in the store or the catalog; see `anamo tasks list`",
                self.id
            );
        };
        let Some(last) = found.log_uri.clone() else {
            return Err(self.why_no_log(&found));
        };
        let uri = match self.run {
            None => last,
            Some(n) if n > found.runs => bail!(
                "task {}/{} has had {} run(s); --run {n} does not exist",
                found.collection,
                self.id,
                found.runs
            ),
            Some(n) => crate::model::run_log_uri(&last, n).with_context(|| {
                format!("the log '{last}' is not named RUN.log; cannot find run {n}")
            })?,
        };
        let mut out = std::io::stdout().lock();
        if uri.starts_with("s3://") {
            S3::connect(&ctx.aws)?.copy_to(&S3Uri::parse(&uri)?, &mut out)?;
        } else {
            let mut file = std::fs::File::open(&uri).map_err(|e| {
                anyhow::anyhow!(
                    "cannot read the log '{uri}' ({e}): it was written on the machine the worker \
                     ran on; run workers with --log-uri s3://... to keep logs in S3"
                )
            })?;
            std::io::copy(&mut file, &mut out)?;
            out.flush()?;
        }
        Ok(())
    }

    /// Why a task has no log to show: removed, never run, still running, or run without
    /// --log-dir or --log-uri.
    fn why_no_log(&self, found: &LogRef) -> anyhow::Error {
        if found.removed && found.runs == 0 {
            return anyhow::anyhow!(
                "task {}/{} was removed from the store while {} and never ran: it has no log \
                 (`anamo status --sample` shows its sample's history)",
                found.collection,
                self.id,
                found.state
            );
        }
        if found.removed {
            return anyhow::anyhow!(
                "task {}/{} was removed from the store while {}; its {} run(s) recorded no \
                 log (its worker ran without --log-dir or --log-uri)",
                found.collection,
                self.id,
                found.state,
                found.runs
            );
        }
        if found.state == "waiting" {
            return anyhow::anyhow!(
                "task {}/{} has not run: it waits for its sample's tasks upstream (`anamo \
                 tasks show {} -c {}` names the steps; `anamo query blocked-samples` after a \
                 sync says what holds it)",
                found.collection,
                self.id,
                self.id,
                found.collection
            );
        }
        if found.state == "held" {
            return anyhow::anyhow!(
                "task {}/{} has not run: a QC gate holds it (`anamo tasks show {} -c {}` says \
                 why; `anamo tasks release` lets it run)",
                found.collection,
                self.id,
                self.id,
                found.collection
            );
        }
        if found.state == "running" || found.state == "todo" {
            let now = if found.state == "running" {
                format!("is running its run {}", found.runs)
            } else {
                format!("is waiting to run (todo, {} run(s) so far)", found.runs)
            };
            return anyhow::anyhow!(
                "task {}/{} {now}; a log is recorded on the task when a run ends",
                found.collection,
                self.id
            );
        }
        anyhow::anyhow!(
            "task {}/{} has no log: its worker ran without --log-dir or --log-uri \
             (the tail of its error is in `anamo tasks show {} -c {}`)",
            found.collection,
            self.id,
            self.id,
            found.collection
        )
    }

    fn find(&self, ctx: &Context) -> Result<Option<LogRef>> {
        // A missing store is not an error here: the catalog may still know the task.
        if let Ok(store) = ctx.store(OpenMode::MustExist)
            && let Some(t) =
                crate::store::find_task(store.as_ref(), &self.id, self.collection.as_deref())?
        {
            return Ok(Some(LogRef {
                collection: t.collection,
                state: t.state.to_string(),
                runs: t.runs,
                log_uri: t.log_uri,
                removed: false,
            }));
        }
        if ctx.published_catalog().is_none() && !ctx.catalog_path.exists() {
            return Ok(None);
        }
        let conn = ctx.read_catalog()?;
        let mut rows = conn.log_refs(&self.id, self.collection.as_deref())?;
        if rows.len() > 1 {
            bail!(
                "task id '{}' is in several collections; pass --collection",
                self.id
            );
        }
        Ok(rows.pop())
    }
}

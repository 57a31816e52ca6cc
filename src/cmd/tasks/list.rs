//! `anamo tasks list`: tasks of the store, filtered, page by page.

use std::ops::ControlFlow;

use anyhow::Result;
use clap::Args;

use super::{LIST_COLUMNS, list_row};
use crate::cli::parse_state;
use crate::config::Context;
use crate::model::{TaskFilter, TaskState};
use crate::output::{Format, RowWriter};
use crate::store::{OpenMode, for_each_task};

/// List tasks (table on a terminal, TSV in a pipe).
#[derive(Debug, Args)]
pub struct Cmd {
    /// Only this collection.
    #[arg(long, short)]
    pub collection: Option<String>,
    /// Only tasks in this state: waiting, held, todo, running, done, failed.
    #[arg(long, value_parser = parse_state)]
    pub state: Option<TaskState>,
    /// Only tasks of this sample.
    #[arg(long)]
    pub sample: Option<String>,
    /// At most this many rows.
    #[arg(long)]
    pub limit: Option<u64>,
    /// Output format.
    #[arg(long, short, value_enum)]
    pub format: Option<Format>,
}

/// Tasks read from the store per page.
const PAGE: usize = 1000;

impl Cmd {
    pub fn run(self, ctx: &Context) -> Result<()> {
        let store = ctx.store(OpenMode::MustExist)?;
        // A misspelt step must not read as an empty list.
        if let Some(c) = &self.collection {
            super::require_collection(store.as_ref(), c)?;
        }
        let filter = TaskFilter {
            collection: self.collection,
            state: self.state,
            sample: self.sample,
            task_id: None,
        };
        let columns = LIST_COLUMNS.iter().map(|c| c.to_string()).collect();
        let mut out = RowWriter::new(
            Format::resolve(self.format),
            columns,
            std::io::stdout().lock(),
        )?;
        let limit = self.limit.unwrap_or(u64::MAX);
        let mut written = 0u64;
        let mut cut_short = false;
        for_each_task(store.as_ref(), &filter, PAGE, |task| {
            let task = match task {
                Ok(t) => t,
                Err(d) => {
                    crate::note!("skipped damaged task {}: {}", d.key, d.reason);
                    return Ok(ControlFlow::Continue(()));
                }
            };
            if written >= limit {
                cut_short = true;
                return Ok(ControlFlow::Break(()));
            }
            written += 1;
            out.write_row(&list_row(&task))?;
            Ok(ControlFlow::Continue(()))
        })?;
        out.finish()?;
        // A whole listing also names what no claim can take (a listing cut short by --limit
        // does not read the rest of the store for it).
        if !cut_short
            && matches!(
                filter.state,
                None | Some(TaskState::Todo | TaskState::Waiting)
            )
        {
            let unclaimable = store.unclaimable(filter.collection.as_deref(), false)?;
            if let Some(line) = crate::model::Unclaimable::summary(&unclaimable) {
                crate::note!("{line}");
            }
        }
        Ok(())
    }
}

//! `anamo tasks show`: every field of one task.

use std::ops::ControlFlow;

use anyhow::{Result, bail};
use clap::Args;

use super::all_fields;
use crate::config::Context;
use crate::model::{Task, TaskFilter};
use crate::output::{Format, RowWriter};
use crate::store::{OpenMode, TaskStore};

/// Show one task: state, attempts, owner, timings, script and the tail of its last error.
#[derive(Debug, Args)]
pub struct Cmd {
    /// Task id.
    pub id: String,
    /// Collection, needed when the id exists in several.
    #[arg(long, short)]
    pub collection: Option<String>,
    /// Output format (default: field/value table on a terminal, TSV in a pipe).
    #[arg(long, short, value_enum)]
    pub format: Option<Format>,
}

impl Cmd {
    pub fn run(self, ctx: &Context) -> Result<()> {
        let store = ctx.store(OpenMode::MustExist)?;
        let task = find(store.as_ref(), &self.id, self.collection.as_deref())?;
        let fields = all_fields(&task);
        let stdout = std::io::stdout().lock();
        match Format::resolve(self.format) {
            f @ (Format::Json | Format::Jsonl) => {
                let (names, values): (Vec<_>, Vec<_>) = fields.into_iter().unzip();
                let mut out =
                    RowWriter::new(f, names.iter().map(|n| n.to_string()).collect(), stdout)?;
                out.write_row(&values)?;
                out.finish()?;
            }
            f => {
                let mut out = RowWriter::new(f, vec!["field".into(), "value".into()], stdout)?;
                for (name, value) in fields {
                    out.write_row(&[name.into(), value])?;
                }
                out.finish()?;
            }
        }
        Ok(())
    }
}

/// Finds a task by id, in one collection or across all of them.
fn find(store: &dyn TaskStore, id: &str, collection: Option<&str>) -> Result<Task> {
    match (lookup(store, id, collection)?, collection) {
        (Some(t), _) => Ok(t),
        (None, Some(c)) => {
            bail!("no task '{id}' in collection '{c}'; see `anamo tasks list -c {c}`")
        }
        (None, None) => bail!(
            "no task '{id}' in {}; see `anamo tasks list`",
            store.describe()
        ),
    }
}

/// A task by id, in one collection or across all of them; an id in several collections
/// without `collection` is an error that says to pass it.
pub(crate) fn lookup(
    store: &dyn TaskStore,
    id: &str,
    collection: Option<&str>,
) -> Result<Option<Task>> {
    if let Some(c) = collection {
        return Ok(store.get(c, id)?);
    }
    let filter = TaskFilter {
        task_id: Some(id.to_string()),
        ..TaskFilter::default()
    };
    // Every page, to the end: on DynamoDB a filtered page may be empty while later ones hold
    // the task, and an id in two collections must be said, not one picked.
    let mut found = vec![];
    store.stream(&filter, 1_000, &mut |page| {
        found.extend(page.tasks);
        Ok(ControlFlow::Continue(()))
    })?;
    found.sort_by(|a, b| a.collection.cmp(&b.collection));
    if found.len() > 1 {
        let names: Vec<_> = found.iter().map(|t| t.collection.as_str()).collect();
        bail!(
            "task id '{id}' is in several collections ({}); pass --collection",
            names.join(", ")
        )
    }
    Ok(found.pop())
}

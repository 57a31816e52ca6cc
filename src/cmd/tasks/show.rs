//! `anamo tasks show`: every field of one task.

use anyhow::{Result, bail};
use clap::Args;

use super::all_fields;
use crate::config::Context;
use crate::model::Task;
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
        let task = find(ctx, store.as_ref(), &self.id, self.collection.as_deref())?;
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

/// Finds a task by id, in one collection or across all of them; one the store removed is
/// pointed to its history.
fn find(ctx: &Context, store: &dyn TaskStore, id: &str, collection: Option<&str>) -> Result<Task> {
    match (crate::store::find_task(store, id, collection)?, collection) {
        (Some(t), _) => Ok(t),
        (None, Some(c)) => {
            if let Some(gone) = store.tombstone(c, id)? {
                let day = crate::clock::day(gone.removed_at);
                let how = if gone.withdrawn {
                    "withdrawn with its sample"
                } else {
                    "removed"
                };
                let sample = gone
                    .sample
                    .map(|s| format!("`anamo status --sample {s}`, "))
                    .unwrap_or_default();
                bail!(
                    "task '{id}' of {c} was {how} from the store on {day} while {}; its history \
                     is in the catalog: {sample}`anamo logs {id} -c {c}`",
                    gone.state
                );
            }
            bail!("no task '{id}' in collection '{c}'; see `anamo tasks list -c {c}`")
        }
        (None, None) => {
            // The catalog may know it: removed from the store, or not synced since.
            let known = if ctx.catalog_path.exists() {
                let conn = crate::catalog::CatalogRead::open(&ctx.catalog_path)?;
                conn.log_refs(id, None)?
            } else {
                vec![]
            };
            match known.first() {
                Some(r) => bail!(
                    "no task '{id}' in {}; the catalog knows it in {c} (removed from the store, \
                     or not synced since): `anamo tasks show {id} -c {c}`, `anamo logs {id} -c \
                     {c}`",
                    store.describe(),
                    c = r.collection
                ),
                None => bail!(
                    "no task '{id}' in {}; see `anamo tasks list`",
                    store.describe()
                ),
            }
        }
    }
}

//! `anamo tasks counts`: how many tasks each collection has in each state.

use std::collections::BTreeMap;

use anyhow::Result;
use clap::Args;
use serde_json::json;

use crate::config::Context;
use crate::model::TaskState;
use crate::output::{Format, RowWriter};
use crate::store::OpenMode;

/// Count tasks per collection and state.
#[derive(Debug, Args)]
pub struct Cmd {
    /// Only this collection.
    #[arg(long, short)]
    pub collection: Option<String>,
    /// Output format.
    #[arg(long, short, value_enum)]
    pub format: Option<Format>,
}

impl Cmd {
    pub fn run(self, ctx: &Context) -> Result<()> {
        let store = ctx.store(OpenMode::MustExist)?;
        let mut by_collection: BTreeMap<String, [u64; TaskState::ALL.len()]> = BTreeMap::new();
        for c in store.counts(self.collection.as_deref())? {
            let i = TaskState::ALL
                .iter()
                .position(|s| *s == c.state)
                .unwrap_or(0);
            by_collection.entry(c.collection).or_default()[i] += c.count;
        }
        let mut columns = vec!["collection".to_string()];
        columns.extend(TaskState::ALL.iter().map(|s| s.to_string()));
        columns.push("total".into());
        let mut out = RowWriter::new(
            Format::resolve(self.format),
            columns,
            std::io::stdout().lock(),
        )?;
        for (collection, n) in by_collection {
            let mut row = vec![json!(collection)];
            row.extend(n.iter().map(|v| json!(v)));
            row.push(json!(n.iter().sum::<u64>()));
            out.write_row(&row)?;
        }
        out.finish()?;
        let unclaimable = store.unclaimable(self.collection.as_deref(), false)?;
        if let Some(line) = crate::model::Unclaimable::summary(&unclaimable) {
            crate::note!("{line}");
        }
        Ok(())
    }
}

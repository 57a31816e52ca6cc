//! `anamo tasks retry`: give failed tasks a fresh set of attempts.

use anyhow::{Result, bail};
use clap::Args;

use super::Which;
use crate::config::Context;
use crate::model::Selector;
use crate::store::OpenMode;

/// Put failed tasks back to todo with their attempts reset.
#[derive(Debug, Args)]
pub struct Cmd {
    /// Collection of the tasks.
    #[arg(long, short)]
    pub collection: String,
    #[command(flatten)]
    pub which: Which,
}

impl Cmd {
    pub fn run(self, ctx: &Context) -> Result<()> {
        let selector = self.which.selector(None)?;
        let store = ctx.store(OpenMode::MustExist)?;
        super::require_collection(store.as_ref(), &self.collection)?;
        let (n, replaced) =
            crate::store::flow::retry_unreplaced(store.as_ref(), &self.collection, &selector)?;
        for (id, by) in replaced.iter().take(10) {
            crate::note!(
                "left {}/{id} failed: {by} (done) replaced it, and retrying it would run finished \
                 work again (`tasks add --replace` runs it on purpose)",
                self.collection
            );
        }
        if replaced.len() > 10 {
            crate::note!("... and {} more replaced", replaced.len() - 10);
        }
        // Naming tasks that turn out not to be failed ones is a mistake worth an exit code;
        // --all finding none is just a clean step.
        if n == 0 && replaced.is_empty() && !matches!(selector, Selector::All) {
            bail!(
                "no failed task in {} matched {}; nothing was retried (see `anamo tasks list \
                 -c {} --state failed`)",
                self.collection,
                super::named(&selector),
                self.collection
            );
        }
        println!("{n} failed task(s) of {} back to todo", self.collection);
        Ok(())
    }
}

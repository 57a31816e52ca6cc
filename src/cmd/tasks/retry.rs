//! `anamo tasks retry`: give failed tasks a fresh set of attempts.

use anyhow::Result;
use clap::Args;

use super::Which;
use crate::config::Context;
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
        let n = store.retry(&self.collection, &selector)?;
        println!("{n} failed task(s) of {} back to todo", self.collection);
        Ok(())
    }
}

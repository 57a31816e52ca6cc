//! `anamo tasks delete`: remove tasks from the store.

use anyhow::Result;
use clap::Args;

use super::Which;
use crate::cmd::parse_state;
use crate::config::Context;
use crate::model::{Selector, TaskState};
use crate::store::OpenMode;

/// Delete tasks from the store (the catalog keeps their history once synced).
#[derive(Debug, Args)]
pub struct Cmd {
    /// Collection of the tasks.
    #[arg(long, short)]
    pub collection: String,
    #[command(flatten)]
    pub which: Which,
    /// Every task in this state.
    #[arg(long, value_parser = parse_state)]
    pub state: Option<TaskState>,
}

impl Cmd {
    pub fn run(self, ctx: &Context) -> Result<()> {
        let selector = self.which.selector(self.state.map(Selector::State))?;
        let store = ctx.store(OpenMode::MustExist)?;
        let n = store.delete(&self.collection, &selector)?;
        println!("deleted {n} task(s) of {}", self.collection);
        Ok(())
    }
}

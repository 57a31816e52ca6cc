//! `anamo tasks release-stale`: hand back tasks whose worker stopped heartbeating.

use anyhow::Result;
use clap::Args;

use crate::config::Context;
use crate::store::OpenMode;

/// Hand back running tasks whose lease has expired (their worker died): to todo, or to failed
/// when that was their last attempt. Workers also take such tasks over by themselves.
#[derive(Debug, Args)]
pub struct Cmd {
    /// Only this collection.
    #[arg(long, short)]
    pub collection: Option<String>,
}

impl Cmd {
    pub fn run(self, ctx: &Context) -> Result<()> {
        let store = ctx.store(OpenMode::MustExist)?;
        if let Some(c) = &self.collection {
            super::require_collection(store.as_ref(), c)?;
        }
        let r = store.release_stale(self.collection.as_deref())?;
        println!(
            "{} stale task(s) back to todo, {} failed on their last attempt",
            r.released, r.failed
        );
        Ok(())
    }
}

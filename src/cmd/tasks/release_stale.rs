//! `anamo tasks release-stale`: hand back tasks whose worker stopped heartbeating.

use anyhow::Result;
use clap::Args;

use crate::config::Context;
use crate::store::{OpenMode, flow};

/// Hand back running tasks whose lease has expired (their worker died): to todo, or to failed
/// when that was their last attempt; and promote waiting tasks whose upstream is done (a
/// worker killed between finishing a task and promoting what waited on it). Workers also do
/// both by themselves.
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
        // Todo tasks the claim index lost would wait for ever: written again so it shows them.
        let reindexed: Vec<_> = store
            .check_claims(self.collection.as_deref(), true)?
            .into_iter()
            .filter(|f| f.repaired)
            .collect();
        for f in &reindexed {
            crate::note!(
                "{}/{}: {}; written again so workers see it",
                f.key.collection,
                f.key.task_id,
                f.problem
            );
        }
        let flow = flow::survey(store.as_ref(), self.collection.as_deref(), false)?;
        let mut line = format!(
            "{} stale task(s) back to todo, {} failed on their last attempt",
            r.released, r.failed
        );
        if flow.promoted > 0 {
            line.push_str(&format!(
                ", {} waiting task(s) promoted (their upstream was done)",
                flow.promoted
            ));
        }
        if flow.blocked > 0 {
            line.push_str(&format!(
                "; {} task(s) wait for failed or missing upstream tasks (`anamo query \
                 blocked-samples` after a sync)",
                flow.blocked
            ));
        }
        println!("{line}");
        Ok(())
    }
}

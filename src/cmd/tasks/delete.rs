//! `anamo tasks delete`: remove tasks from the store.

use anyhow::{Context as _, Result};
use clap::Args;

use super::Which;
use crate::cmd::parse_state;
use crate::config::Context;
use crate::model::{Selector, TaskState};
use crate::store::OpenMode;
use crate::sync;

/// Delete tasks from the store. Their last state is first copied into the catalog
/// (--catalog, created if needed) and marked removed there, so `logs`, `status` and the reports
/// keep their history.
#[derive(Debug, Args)]
pub struct Cmd {
    /// Collection of the tasks.
    #[arg(long, short)]
    pub collection: String,
    #[command(flatten)]
    pub which: Which,
    /// Every task in this state.
    #[arg(long, value_parser = parse_state, group = "which")]
    pub state: Option<TaskState>,
}

impl Cmd {
    pub fn run(self, ctx: &Context) -> Result<()> {
        let selector = self.which.selector(self.state.map(Selector::State))?;
        let store = ctx.store(OpenMode::MustExist)?;
        super::require_collection(store.as_ref(), &self.collection)?;
        // History first: a delete that cannot reach the catalog deletes nothing.
        let mut catalog = ctx.catalog()?;
        let recorded =
            sync::record_before_delete(store.as_ref(), &mut catalog, &self.collection, &selector)
                .with_context(|| {
                format!(
                    "nothing deleted: could not record the tasks in catalog '{}' first",
                    catalog.path().display()
                )
            })?;
        let n = store.delete(&self.collection, &selector)?;
        catalog.mark_tasks_removed(&recorded.keys)?;
        warn_of_released(
            store.as_ref(),
            &self.collection,
            &recorded.unfinished_samples,
        )?;
        println!(
            "deleted {n} task(s) of {} (their history is in catalog '{}')",
            self.collection,
            catalog.path().display()
        );
        Ok(())
    }
}

/// A step counts as done for a sample when all its tasks there are: deleting an unfinished
/// one (a failed lane) can release what waits downstream. Said, with the safe way to
/// replace a task.
fn warn_of_released(
    store: &dyn crate::store::TaskStore,
    collection: &str,
    samples: &std::collections::BTreeSet<String>,
) -> Result<()> {
    let mut waiting = 0;
    let mut held = 0;
    for sample in samples.iter().take(1_000) {
        let view = store.sample_view(sample)?;
        let n = view
            .tasks
            .iter()
            .filter(|t| t.state == TaskState::Waiting)
            .filter(|t| t.after.iter().any(|a| a == collection))
            .count();
        waiting += n;
        held += (n > 0) as usize;
    }
    if waiting > 0 {
        crate::note!(
            "{waiting} task(s) downstream wait for {collection} on {held} of these samples. \
             Each is released (at the next look of a worker of its step) once its sample's \
             remaining tasks in {collection} are done, and waits for a new one to be added and \
             done if none is left. To replace a task, use `tasks add --replace` with the same \
             id, or `tasks retry` a failed one"
        );
    }
    Ok(())
}

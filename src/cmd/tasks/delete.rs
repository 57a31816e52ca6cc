//! `anamo tasks delete`: remove tasks from the store.

use anyhow::Result;
use clap::Args;

use super::Which;
use crate::cli::parse_state;
use crate::config::Context;
use crate::error::Error;
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
    /// Delete running tasks too (their scripts run to the end, and their results are dropped).
    #[arg(long)]
    pub force: bool,
}

impl Cmd {
    pub fn run(self, ctx: &Context) -> Result<()> {
        let selector = self.which.selector(self.state.map(Selector::State))?;
        let store = ctx.store(OpenMode::MustExist)?;
        super::require_collection(store.as_ref(), &self.collection)?;
        if !self.force {
            refuse_running(store.as_ref(), &self.collection, &selector)?;
        }
        // History first: a delete that cannot reach the catalog deletes nothing.
        let mut catalog = ctx.catalog()?;
        let deleted = match sync::delete_with_history(
            store.as_ref(),
            &mut catalog,
            &self.collection,
            &selector,
        ) {
            Ok(d) => d,
            // The store's own refusal (a permission, a throttle) speaks for itself; only a
            // catalog that could not take the history stops the delete before it starts.
            Err(e @ (Error::Aws(_) | Error::AwsTransient(_))) => return Err(e.into()),
            Err(e) => {
                return Err(anyhow::Error::from(e).context(format!(
                    "nothing deleted: could not record the tasks in catalog '{}' first",
                    catalog.path().display()
                )));
            }
        };
        let n = deleted.count;
        // As retry: naming tasks that are not there is a mistake worth an exit code.
        if n == 0 && !matches!(selector, Selector::All) {
            anyhow::bail!(
                "no task in {} matched {}; nothing was deleted (see `anamo tasks list -c {}`)",
                self.collection,
                super::named(&selector),
                self.collection
            );
        }
        say_released(&self.collection, &deleted);
        // An item anamo could not read as a task (named by `store check`) had no history.
        let unread = n.saturating_sub(deleted.recorded);
        let unread = if unread > 0 {
            format!("; {unread} of them unreadable as tasks, with none")
        } else {
            String::new()
        };
        println!(
            "deleted {n} task(s) of {} (their history is in catalog '{}'{unread})",
            self.collection,
            catalog.path().display()
        );
        Ok(())
    }
}

/// Deleting an unfinished task (a failed lane) can make its sample's state in the step done
/// (README: "Progress, defined once"); what that released downstream, and what still waits,
/// with the safe way to replace a task.
fn say_released(collection: &str, deleted: &sync::Deleted) {
    if deleted.released > 0 {
        crate::note!(
            "{} task(s) downstream of {collection} may run now: the deleted tasks were not \
             required (a lane deleted on purpose); to fix a failed task instead, add the fixed \
             one under a new id (it supersedes the failure once done) and delete nothing",
            deleted.released
        );
    }
    if deleted.still_waiting > 0 {
        crate::note!(
            "{} task(s) downstream still wait for {collection} on these samples: until their \
             remaining tasks there are done, or a new one is added and done. To replace a \
             task, use `tasks add --replace` with the same id, or `tasks retry` a failed one",
            deleted.still_waiting
        );
    }
}

/// A running task deleted keeps its script running to the end, and its result is dropped:
/// refused unless --force, naming how many.
fn refuse_running(
    store: &dyn crate::store::TaskStore,
    collection: &str,
    selector: &Selector,
) -> Result<()> {
    let filter = crate::model::TaskFilter {
        collection: Some(collection.to_string()),
        state: Some(TaskState::Running),
        ..Default::default()
    };
    let mut running = 0u64;
    crate::store::for_each_task(store, &filter, 1_000, |t| {
        if let Ok(t) = t
            && selector.matches(&t)
        {
            running += 1;
        }
        Ok(std::ops::ControlFlow::Continue(()))
    })?;
    if running > 0 {
        anyhow::bail!(
            "{running} of the tasks named in {collection} are running: deleted, their scripts \
             would run to the end and the results be dropped; nothing was deleted (wait for \
             them, or pass --force)"
        );
    }
    Ok(())
}

//! Copies sources into the catalog: the task store, EC2 instances and S3 listings. Each source
//! streams pages into batched transactions and records a `sync_runs` row, `failed` when it
//! could not finish.

mod instances;
mod objects;
mod run;
mod tasks;
pub mod watch;

pub use crate::model::kind_of;
pub use instances::{InstanceCounts, SpotPriceCounts, sync_instances, sync_spot_prices};
pub use objects::{SamplePattern, sync_objects};
pub use run::{Request, Synced};
pub use tasks::{
    DEFAULT_FULL_EVERY, DEFAULT_OVERLAP, Deleted, FullBecause, SyncKind, TaskSyncOptions,
    TaskSyncReport, delete_with_history, drop_from_queue, plan, record_before_delete, sync_tasks,
    sync_tasks_as, withdraw_sample,
};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress bar on stderr; hidden when stderr is not a terminal.
pub fn progress_bar(total: Option<u64>, what: &str) -> ProgressBar {
    let bar = match total {
        Some(n) => ProgressBar::with_draw_target(Some(n), ProgressDrawTarget::stderr()),
        None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
    };
    let template = if total.is_some() {
        "{msg} [{bar:30}] {pos}/{len} ({per_sec}, eta {eta})"
    } else {
        "{msg} {pos} ({per_sec})"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_string());
    bar
}

//! Worker logs to S3 (`--log-uri`): each finished attempt's log goes to
//! `PREFIX/COLLECTION/TASK_ID/ATTEMPT.log`. An upload that fails never fails the task: it is
//! logged, and the task keeps the local path.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use tracing::warn;

use crate::aws::s3::{S3, S3Uri};
use crate::error::Result;
use crate::model::Task;

pub struct LogShipper {
    s3: S3,
    base: S3Uri,
    /// Keep the local file after a good upload (the user chose --log-dir).
    keep_local: bool,
    /// Uploads that failed (their logs stayed local), for the worker's summary.
    failed: AtomicU64,
}

impl std::fmt::Debug for LogShipper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LogShipper({})", self.base)
    }
}

impl LogShipper {
    pub fn new(s3: S3, base: S3Uri, keep_local: bool) -> Self {
        Self {
            s3,
            base,
            keep_local,
            failed: AtomicU64::new(0),
        }
    }

    /// Before the first claim: a log destination that cannot be written would leave every
    /// log on an instance that is about to be terminated.
    pub fn preflight(&self, owner: &str) -> Result<()> {
        self.s3
            .probe_write(&self.base, owner, crate::aws::s3::OBJECTS_AND_LOGS_POLICY)
    }

    /// Uploads that failed so far.
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::SeqCst)
    }

    /// Where one run's log goes (by its number, which never repeats).
    pub fn uri_for(&self, task: &Task) -> S3Uri {
        self.base.join(&format!(
            "{}/{}/{}.log",
            task.collection, task.task_id, task.runs
        ))
    }

    /// Uploads the attempt's log; returns where the log now lives (the S3 URI, or the local
    /// path when the upload failed).
    pub fn ship(&self, local: &Path, task: &Task) -> String {
        let to = self.uri_for(task);
        match self.s3.put_file(local, &to, "text/plain") {
            Ok(()) => {
                if !self.keep_local {
                    let _ = std::fs::remove_file(local);
                }
                to.to_string()
            }
            Err(e) => {
                self.failed.fetch_add(1, Ordering::SeqCst);
                warn!(
                    "{}/{}: log upload failed, kept at {}: {e}",
                    task.collection,
                    task.task_id,
                    local.display()
                );
                local.display().to_string()
            }
        }
    }
}

//! Worker logs to S3 (`--log-uri`): each finished attempt's log goes to
//! `PREFIX/COLLECTION/TASK_ID/ATTEMPT.log`. An upload that fails never fails the task: it is
//! logged, and the task keeps the local path.

use std::path::Path;

use tracing::warn;

use crate::model::Task;
use crate::s3::{S3, S3Uri};

pub struct LogShipper {
    s3: S3,
    base: S3Uri,
    /// Keep the local file after a good upload (the user chose --log-dir).
    keep_local: bool,
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
        }
    }

    /// Where one attempt's log goes.
    pub fn uri_for(&self, task: &Task) -> S3Uri {
        self.base.join(&format!(
            "{}/{}/{}.log",
            task.collection, task.task_id, task.attempts
        ))
    }

    /// Uploads the attempt's log; returns where the log now lives (the S3 URI, or the local
    /// path when the upload failed).
    pub fn ship(&self, local: &Path, task: &Task) -> String {
        let to = self.uri_for(task);
        match self.s3.put_file(local, &to) {
            Ok(()) => {
                if !self.keep_local {
                    let _ = std::fs::remove_file(local);
                }
                to.to_string()
            }
            Err(e) => {
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

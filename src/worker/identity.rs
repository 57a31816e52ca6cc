//! Who a worker is, recorded as the owner of every task it runs so tasks join to machines:
//! the EC2 instance id (IMDSv2), else the AWS Batch job id, else hostname:pid.

use super::imds::{self, Imds};

/// The worker's owner id, and the metadata session when it runs on EC2.
pub fn detect() -> (String, Option<Imds>) {
    if let Ok(job) = std::env::var("AWS_BATCH_JOB_ID")
        && !job.is_empty()
    {
        return (job, None);
    }
    if let Some(session) = imds::endpoint().and_then(|e| Imds::connect(&e))
        && let Some(id) = session.get("/latest/meta-data/instance-id")
        && !id.trim().is_empty()
    {
        return (id.trim().to_string(), Some(session));
    }
    (default_owner(), None)
}

/// `hostname:pid`.
pub fn default_owner() -> String {
    format!("{}:{}", crate::host::hostname(), std::process::id())
}

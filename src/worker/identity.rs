//! Who a worker is, recorded as the owner of every task it runs so tasks join to machines:
//! the EC2 instance id (IMDSv2), else the AWS Batch job id, else hostname:pid.

use super::imds::{self, Imds};
use crate::error::{Error, Result};

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

/// The step an EC2 instance works on, from its `anamo:step` tag (which `anamo launch` sets):
/// through instance metadata when tags are enabled there (`launch` enables them), else with
/// DescribeTags on its own id. Off EC2 or without the tag, the error says to pass `-c`.
pub fn step_from_tag(
    session: Option<&Imds>,
    instance_id: &str,
    aws: &crate::aws::AwsOptions,
) -> Result<String> {
    let tag = crate::aws::ec2::STEP_TAG;
    // Off EC2 the flag is simply missing: a usage error, as clap would call it.
    let Some(session) = session else {
        return Err(Error::Usage(format!(
            "no --collection given and no EC2 instance metadata answered (or \
             AWS_EC2_METADATA_DISABLED is set), so there is no {tag} tag to read the step \
             from; pass -c STEP"
        )));
    };
    if let Some(step) = session
        .get(&format!("/latest/meta-data/tags/instance/{tag}"))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
    {
        return Ok(step);
    }
    // Tags in metadata are on (the list answers) but this one is not there: no need to ask.
    let step = if session.get("/latest/meta-data/tags/instance").is_some() {
        None
    } else {
        let ec2 = crate::aws::ec2::Ec2::connect(aws)?;
        ec2.tag_of(instance_id, tag).map_err(|e| {
            Error::Invalid(format!(
                "no --collection given and the step cannot be read from {instance_id}'s tags: \
                 {e}; allow ec2:DescribeTags to the instance role, launch with instance tags \
                 in metadata (`anamo launch` does), or pass -c STEP"
            ))
        })?
    };
    step.filter(|s| !s.is_empty()).ok_or_else(|| {
        Error::Invalid(format!(
            "no --collection given and instance {instance_id} has no {tag} tag; pass -c STEP, \
             or tag the instance {tag}=STEP (`anamo launch --step STEP` does)"
        ))
    })
}

/// `hostname:pid`.
pub fn default_owner() -> String {
    format!("{}:{}", crate::host::hostname(), std::process::id())
}

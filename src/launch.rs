//! `anamo launch`: start a step's cluster from the launch template named after the step,
//! capped by the work left, with user data that starts the worker, and record every launch
//! (dry runs and refusals too) in the catalog before and after the EC2 call.

use crate::aws::ec2::{self, Ec2, RunOutcome, RunRequest};
use crate::catalog::{Catalog, LaunchRecord};
use crate::clock::now_ms;
use crate::error::{Error, Result};
use crate::model::Instance;
use crate::placeholders::{self, shell_quote};

/// The user data instances boot with unless --user-data names another template.
pub const DEFAULT_USER_DATA: &str = r#"#!/bin/bash
# Written by `anamo launch` (launch {{launch_id}}): one anamo worker for step {{step}}.
# The instance role reaches the store. The worker powers the instance off (terminating it)
# when the step is drained.
set -euo pipefail
export AWS_REGION={{region}}
{{install}}
exec anamo worker --collection {{step}} --store {{store}} --slots {{slots}} --shutdown-on-exit {{worker_args}} >>"${root:-}/var/log/anamo-worker.log" 2>&1
"#;

/// EC2 refuses user data above 16 KiB (before base64).
const MAX_USER_DATA: usize = 16 * 1024;

/// What the user asked for.
#[derive(Debug, Clone)]
pub struct LaunchOptions {
    pub step: String,
    pub count: u64,
    /// Accept as few as this many when capacity is short [default: all or nothing].
    pub min_count: Option<u64>,
    /// Launch template name; the step's name when `None`.
    pub template: Option<String>,
    /// A user-data template (name for messages, text); the built-in one when `None`.
    pub user_data: Option<(String, String)>,
    /// Worker slots per instance: the cap is claimable tasks / slots.
    pub slots: u16,
    pub spot: bool,
    pub dry_run: bool,
    pub instance_type: Option<String>,
    /// The shared store the workers use.
    pub store_url: String,
    /// Its `anamo:store` tag value (`ec2::store_tag`).
    pub store_tag: String,
    /// Further `anamo worker` arguments, e.g. `--log-uri s3://...`.
    pub worker_args: Vec<String>,
    /// The binary the instances fetch at boot (`--binary`); `None`: the AMI has anamo.
    pub binary: Option<crate::ship::Shipped>,
}

/// A launch ready to send.
#[derive(Debug, Clone)]
pub struct Plan {
    pub record: LaunchRecord,
    /// Why the count is lower than asked, when it is.
    pub capped: Option<String>,
    pub tags: Vec<(String, String)>,
    /// The fewest instances worth starting (at most `record.requested`).
    pub min_count: u64,
    /// The user data sent to EC2: `record.user_data` with the binary's presigned URL in place
    /// of the note that withholds it (the URL is a bearer token: never shown or recorded).
    pub send_user_data: String,
}

/// Sizes the launch and renders its user data. `claimable`: tasks the step's workers can
/// take; `waiting`: samples whose tasks there wait for an upstream step (work for workers
/// that wait, 0 otherwise); `active`: instances of the step already pending or running,
/// which will take them too.
pub fn plan(
    opts: &LaunchOptions,
    claimable: u64,
    waiting: u64,
    active: u64,
    region: Option<&str>,
) -> Result<Plan> {
    if let Some(min) = opts.min_count
        && min > opts.count
    {
        return Err(Error::Usage(format!(
            "--min-count {min} is above --count {}; the minimum cannot exceed the count",
            opts.count
        )));
    }
    let slots = u64::from(opts.slots.max(1));
    let cap = (claimable + waiting).div_ceil(slots).saturating_sub(active);
    let requested = opts.count.min(cap);
    let capped = (requested < opts.count).then(|| {
        let running = if active > 0 {
            format!(", less {active} instance(s) of the step already pending or running")
        } else {
            String::new()
        };
        let waiting = if waiting > 0 {
            format!(" and {waiting} sample(s) waiting for an upstream step")
        } else {
            String::new()
        };
        let mut note = format!(
            "capped at {requested} instance(s): {claimable} claimable task(s){waiting} in {} at {slots} slot(s) per instance{running}",
            opts.step
        );
        if let Some(min) = opts.min_count.filter(|m| *m > requested && requested > 0) {
            note.push_str(&format!("; --min-count {min} lowered to {requested}"));
        }
        note
    });
    let launch_id = new_launch_id();
    let template = opts.template.clone().unwrap_or_else(|| opts.step.clone());
    let (source, text) = match &opts.user_data {
        Some((name, text)) => (name.as_str(), text.as_str()),
        None => ("the built-in user data", DEFAULT_USER_DATA),
    };
    // Values are shell words, quoted here: worker_args is several of them.
    let worker_args: Vec<String> = opts.worker_args.iter().map(|a| shell_quote(a)).collect();
    let (step, store, slots) = (
        shell_quote(&opts.step),
        shell_quote(&opts.store_url),
        opts.slots.to_string(),
    );
    let (region_word, worker_args) = (shell_quote(region.unwrap_or("")), worker_args.join(" "));
    if opts.binary.is_some() && !text.contains("{{install}}") {
        return Err(Error::Invalid(format!(
            "{source} has no {{{{install}}}} placeholder, so --binary has nowhere to fetch \
             anamo; put {{{{install}}}} on a line before the worker starts"
        )));
    }
    let render = |reveal: bool| {
        let install = crate::ship::install_block(opts.binary.as_ref(), reveal);
        placeholders::fill_double(
            source,
            text,
            &[
                ("step", &step),
                ("store", &store),
                ("slots", &slots),
                ("launch_id", &launch_id),
                ("region", &region_word),
                ("worker_args", &worker_args),
                ("install", &install),
            ],
        )
    };
    let user_data = render(false)?;
    let send_user_data = render(true)?;
    if send_user_data.len() > MAX_USER_DATA {
        return Err(Error::Invalid(format!(
            "user data from {source} is {} bytes; EC2 takes at most {MAX_USER_DATA}: move the bulk into the AMI or an S3 script",
            send_user_data.len()
        )));
    }
    let tags = vec![
        (ec2::STEP_TAG.to_string(), opts.step.clone()),
        (ec2::LAUNCH_TAG.to_string(), launch_id.clone()),
        (ec2::STORE_TAG.to_string(), opts.store_tag.clone()),
        ("Name".to_string(), format!("anamo-{}", opts.step)),
    ];
    Ok(Plan {
        record: LaunchRecord {
            launch_id,
            requested_at: now_ms(),
            requested_by: requested_by(),
            step: opts.step.clone(),
            template,
            asked: opts.count,
            requested,
            spot: opts.spot,
            dry_run: opts.dry_run,
            instance_type: opts.instance_type.clone(),
            region: region.map(str::to_string),
            user_data,
        },
        capped,
        tags,
        min_count: opts.min_count.unwrap_or(requested).min(requested),
        send_user_data,
    })
}

/// What came of a launch.
#[derive(Debug)]
pub enum Launched {
    Started(Vec<Instance>),
    DryRunPassed,
    /// Capped to zero: nothing was sent.
    Nothing,
}

/// Records the plan, sends it, records the outcome; a refused launch is recorded with its
/// error before the error is returned. `before_send` runs once the launch is known to be
/// sendable (work to cover, the template there), just before the request: a dry run prints
/// itself there, so nothing is shown for a launch that will not happen.
pub fn execute(
    plan: &Plan,
    ec2: &Ec2,
    catalog: &mut Catalog,
    before_send: impl FnOnce(),
) -> Result<Launched> {
    let r = &plan.record;
    catalog.record_launch(r)?;
    if r.requested == 0 {
        return Ok(Launched::Nothing);
    }
    // EC2's dry run does not check that the template exists; the real launch would fail.
    if !ec2.template_exists(&r.template)? {
        let message = format!(
            "no launch template named '{}' in {} for step {}; create one named after the step \
             (aws ec2 create-launch-template --launch-template-name {} ...) or pass --template NAME",
            r.template,
            r.region.as_deref().unwrap_or("this region"),
            r.step,
            r.template
        );
        catalog.record_launch_outcome(&r.launch_id, &[], Some(&message))?;
        return Err(Error::Invalid(format!(
            "{message} (recorded as launch {})",
            r.launch_id
        )));
    }
    before_send();
    let request = RunRequest {
        template: &r.template,
        count: u32::try_from(r.requested).unwrap_or(u32::MAX),
        min_count: u32::try_from(plan.min_count).unwrap_or(u32::MAX),
        user_data: &plan.send_user_data,
        tags: &plan.tags,
        spot: r.spot,
        instance_type: r.instance_type.as_deref(),
        dry_run: r.dry_run,
    };
    match ec2.run_instances(&request) {
        Ok(RunOutcome::Started(instances)) => {
            catalog.record_launch_outcome(&r.launch_id, &instances, None)?;
            Ok(Launched::Started(instances))
        }
        Ok(RunOutcome::DryRunPassed) => Ok(Launched::DryRunPassed),
        Err(e) => {
            let message = e.to_string();
            catalog.record_launch_outcome(&r.launch_id, &[], Some(&message))?;
            Err(Error::Aws(format!(
                "{message} (recorded as launch {})",
                r.launch_id
            )))
        }
    }
}

/// `YYYYMMDD-HHMMSS-xxxx`: sorts by time, and two launches in one second still differ.
fn new_launch_id() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let stamp = crate::clock::rfc3339(now.as_millis() as i64);
    let digits: String = stamp
        .chars()
        .take(19)
        .filter(char::is_ascii_digit)
        .collect();
    let noise = (now.subsec_nanos() ^ std::process::id().rotate_left(16)) & 0xffff;
    format!("{}-{}-{noise:04x}", &digits[..8], &digits[8..])
}

/// `user@host`: who asked, for the audit trail. Without USER/LOGNAME (cron, containers,
/// user data) the name of the uid, from the password database.
pub(crate) fn requested_by() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(uid_name)
        .unwrap_or_else(|| "unknown".into());
    format!("{user}@{}", crate::host::hostname())
}

/// The login name of this process's uid (getpwuid_r), if it has one.
fn uid_name() -> Option<String> {
    let mut buf = vec![0 as libc::c_char; 4096];
    // SAFETY: getpwuid_r writes into our passwd and buffer, both alive for the call; the
    // name it points at lives in `buf`, read before `buf` is dropped.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwuid_r(
            libc::getuid(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut found,
        );
        if rc != 0 || found.is_null() || pwd.pw_name.is_null() {
            return None;
        }
        std::ffi::CStr::from_ptr(pwd.pw_name)
            .to_str()
            .ok()
            .map(str::to_string)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn launch_ids_look_like_times() {
        let id = new_launch_id();
        assert_eq!(id.len(), 20, "{id}");
        assert_eq!(&id[8..9], "-");
    }
}

//! `anamo launch`: start a step's cluster on EC2.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;

use crate::aws::ec2::Ec2;
use crate::config::Context;
use crate::error::Error;
use crate::launch::{self, LaunchOptions, Launched};
use crate::store::{OpenMode, StoreUrl};

/// Start instances for one step from the launch template named after it; each boots into
/// `anamo worker --collection STEP --shutdown-on-exit` and terminates when the step is drained.
///
/// The count is capped by the step's claimable tasks divided by --slots (with --wait, its
/// samples whose tasks wait for an upstream step count too). Every launch (dry runs and
/// refusals too) is recorded in the catalog's `launches` and `instances` tables.
#[derive(Debug, Args)]
pub struct Cmd {
    /// The step (collection) the instances work on.
    #[arg(long)]
    pub step: String,

    /// Instances to start (fewer when the step has less work).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub count: u64,

    /// Accept as few as this many instances when EC2 is short of capacity (common with
    /// Spot) [default: --count, all or nothing, as `aws ec2 run-instances --count`].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub min_count: Option<u64>,

    /// Launch template name [default: the step's name].
    #[arg(long)]
    pub template: Option<String>,

    /// User-data template with {{step}}, {{store}}, {{slots}}, {{launch_id}}, {{region}},
    /// {{worker_args}} and {{install}} (where --binary fetches anamo) placeholders [default: a
    /// script that runs the worker].
    #[arg(long)]
    pub user_data: Option<PathBuf>,

    /// Worker slots per instance (passed to the worker, and the divisor of the cap).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub slots: u16,

    /// Ask for Spot capacity (one-time; interrupted instances terminate).
    #[arg(long)]
    pub spot: bool,

    /// Instance type, overriding the template's.
    #[arg(long)]
    pub instance_type: Option<String>,

    /// Print what would be sent and have EC2 check it (DryRun); nothing starts.
    #[arg(long)]
    pub dry_run: bool,

    /// Start the workers with --wait, and count the step's samples whose tasks wait for an
    /// upstream step as work: a later step's cluster can start with the first, and its
    /// workers take each sample as soon as it is released.
    #[arg(long)]
    pub wait: bool,

    /// Where the step's scripts write results, s3://BUCKET/PREFIX/ ({collection} is filled):
    /// each worker writes and deletes a probe object there before it claims anything, and an
    /// instance that cannot powers off at once (worker --results).
    #[arg(long, value_name = "S3_URI")]
    pub results: Option<String>,

    /// With --wait: a worker that found nothing to claim for this long leaves, and its
    /// instance powers off (worker --idle-timeout).
    #[arg(long, value_parser = crate::clock::parse_duration, value_name = "DURATION")]
    pub idle_timeout: Option<std::time::Duration>,

    /// Fetch anamo at boot from this S3 object (put there by `anamo ship`), so the AMI needs
    /// no anamo and no AWS CLI: the user data downloads it with a presigned HTTPS URL (valid
    /// 6 hours), checks the SHA-256 and CPU architecture read here, and powers off on a
    /// mismatch.
    #[arg(long, value_name = "S3_URI")]
    pub binary: Option<String>,

    /// Extra arguments for the worker, e.g. --worker-arg=--log-uri=s3://bucket/logs.
    #[arg(long = "worker-arg", allow_hyphen_values = true)]
    pub worker_args: Vec<String>,
}

impl Cmd {
    pub fn run(self, ctx: &Context) -> Result<()> {
        // A folder for --binary is a typo to name at once, not an AWS error later.
        if let Some(uri) = &self.binary {
            crate::ship::require_object_key(&crate::aws::s3::S3Uri::parse(uri)?)?;
        }
        if self.idle_timeout.is_some() && !self.wait {
            return Err(Error::Usage(
                "--idle-timeout needs --wait: without it workers leave as soon as nothing is \
                 claimable"
                    .into(),
            )
            .into());
        }
        if !matches!(StoreUrl::parse(&ctx.store_url)?, StoreUrl::Dynamo(_)) {
            bail!(
                "a cluster needs a store every instance can reach; pass --store dynamodb://TABLE \
                 (the store '{}' lives on this machine only)",
                ctx.store_url
            );
        }
        let user_data = match &self.user_data {
            Some(path) => Some((
                path.display().to_string(),
                std::fs::read_to_string(path).map_err(|source| Error::Read {
                    path: path.clone(),
                    source,
                })?,
            )),
            None => None,
        };
        // The catalog first: a launch that cannot be recorded is not made.
        let mut catalog = ctx.catalog()?;
        let store = ctx
            .store(OpenMode::MustExist)
            .map_err(|e| crate::cmd::slip_or(ctx, e))?;
        // A launch is recorded in the catalog of the store its workers serve: a store in
        // another region (--region) or another table is another study.
        if let Some(theirs) = catalog.store_identity()?
            && theirs != store.identity()
        {
            bail!(
                "catalog '{}' holds the tasks of {theirs}, not of {}; launch with that store \
                 (check --region, --store), or use another --catalog for this one",
                catalog.path().display(),
                store.identity()
            );
        }
        // Neither the store nor the catalog has heard of the step: a typo, not a finished step.
        if let Some(typo) =
            crate::cmd::unknown_collection(store.as_ref(), &self.step, Some(&catalog))?
        {
            bail!("{typo}");
        }
        // Todo, and running with an expired lease: what a reclaimed fleet leaves behind. Waiting
        // tasks are work only for workers that wait for them.
        let claimable = store.count_claimable(&self.step)?;
        let mut worker_args = self.worker_args;
        if let Some(results) = &self.results {
            // Filled and checked here: a typo must fail the launch, not every instance.
            let prefix = crate::cmd::worker::results_prefix(results, &self.step)?;
            worker_args.insert(0, format!("--results={prefix}"));
        }
        if let Some(idle) = self.idle_timeout {
            worker_args.insert(
                0,
                format!("--idle-timeout={}", humantime::format_duration(idle)),
            );
        }
        let waits = self.wait;
        let mut waiting = 0;
        if waits {
            // Only samples whose upstream will finish without anyone acting are work: one held
            // by a failure would boot an instance that finds nothing and powers off.
            let (will_run, blocked) =
                crate::store::flow::waiting_samples_by_outlook(store.as_ref(), &self.step)?;
            waiting = will_run;
            if blocked > 0 {
                crate::note!(
                    "left out {blocked} waiting sample(s) of {} whose upstream failed or was \
                     removed: nothing runs them until a person acts (`anamo query \
                     blocked-samples` after a sync)",
                    self.step
                );
            }
            worker_args.insert(0, "--wait".into());
        }
        // Read (and hashed) at launch: what the instances check is what is there now.
        let binary = match &self.binary {
            Some(uri) => Some(crate::ship::prepare(
                &crate::aws::s3::S3::connect(&ctx.aws)?.for_policy(crate::aws::s3::BINARY_POLICY),
                &crate::aws::s3::S3Uri::parse(uri)?,
            )?),
            None => None,
        };
        let ec2 = Ec2::connect(&ctx.aws)?;
        // Only this store's instances cover its work: another study's table in the same
        // account and region has its own.
        let store_tag = crate::aws::ec2::store_tag(&store.identity());
        let active = ec2.active_for_step(&self.step, &store_tag)?;
        let opts = LaunchOptions {
            step: self.step,
            count: self.count,
            min_count: self.min_count,
            template: self.template,
            user_data,
            slots: self.slots,
            spot: self.spot,
            dry_run: self.dry_run,
            instance_type: self.instance_type,
            store_url: store.url(),
            store_tag,
            worker_args,
            binary,
        };
        let plan = launch::plan(&opts, claimable, waiting, active, ec2.region())?;
        let r = &plan.record;
        if let Some(note) = &plan.capped {
            crate::note!("{note}");
        }
        let show_dry_run = || {
            if !r.dry_run {
                return;
            }
            println!(
                "dry run of launch {}: {} instance(s) of step {} from template '{}'{}{}",
                r.launch_id,
                r.requested,
                r.step,
                r.template,
                if r.spot { ", Spot" } else { "" },
                r.instance_type
                    .as_deref()
                    .map(|t| format!(", type {t}"))
                    .unwrap_or_default()
            );
            let tags: Vec<String> = plan.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
            println!("tags: {}", tags.join(", "));
            if let Some(b) = &opts.binary {
                println!(
                    "binary: {} ({}, {} bytes, sha256 {}), fetched with a presigned URL valid \
                     until {} (withheld below)",
                    b.uri,
                    b.arch,
                    b.size,
                    b.sha256,
                    crate::clock::rfc3339(b.valid_until)
                );
            }
            println!("user data:\n{}", r.user_data);
        };
        match launch::execute(&plan, &ec2, &mut catalog, show_dry_run)? {
            Launched::Nothing if claimable + waiting == 0 => {
                // Waiting tasks are not work yet; say they exist, so the step does not read
                // as finished (with --wait they were counted already: none).
                let waiting = if waits {
                    0
                } else {
                    store.waiting_samples(Some(&r.step))?.len()
                };
                let later = if waiting > 0 {
                    format!(
                        "; {waiting} sample(s) have tasks waiting for an upstream step: launch \
                         again as they are released, or with --wait"
                    )
                } else {
                    String::new()
                };
                println!(
                    "nothing to launch: step {} has no claimable tasks{later} (recorded as \
                     launch {})",
                    r.step, r.launch_id
                )
            }
            Launched::Nothing => println!(
                "nothing to launch: the {active} instance(s) of step {} already pending or \
                 running cover its {claimable} claimable task(s) (recorded as launch {})",
                r.step, r.launch_id
            ),
            Launched::DryRunPassed => {
                println!("EC2 accepted the dry run; nothing was started")
            }
            Launched::Started(instances) => {
                let ids: Vec<&str> = instances.iter().map(|i| i.instance_id.as_str()).collect();
                println!(
                    "launch {}: started {} of {} instance(s) for step {}: {}",
                    r.launch_id,
                    instances.len(),
                    r.requested,
                    r.step,
                    ids.join(" ")
                );
            }
        }
        Ok(())
    }
}

//! `anamo launch`: start a step's cluster on EC2.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;

use crate::aws::ec2::Ec2;
use crate::aws::s3::{S3, S3Uri};
use crate::catalog::Catalog;
use crate::config::Context;
use crate::error::Error;
use crate::launch::{self, LaunchOptions, Launched};
use crate::store::{OpenMode, StoreUrl, TaskStore};

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
    /// instance powers off (worker --idle-timeout). Without --wait workers leave as soon as
    /// nothing is claimable.
    #[arg(long, value_parser = crate::clock::parse_duration, value_name = "DURATION", requires = "wait")]
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
            crate::ship::require_object_key(&S3Uri::parse(uri)?)?;
        }
        if !matches!(StoreUrl::parse(&ctx.store_url)?, StoreUrl::Dynamo(_)) {
            bail!(
                "a cluster needs a store every instance can reach; pass --store dynamodb://TABLE \
                 (the store '{}' lives on this machine only)",
                ctx.store_url
            );
        }
        let user_data = self.read_user_data()?;
        // The catalog first: a launch that cannot be recorded is not made.
        let mut catalog = ctx.catalog()?;
        let store = self.store_of_this_study(ctx, &catalog)?;
        let work = self.work_left(store.as_ref())?;
        let worker_args = self.worker_args()?;
        let binary = self.binary(ctx)?;
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
        let plan = launch::plan(&opts, work.claimable, work.waiting, active, ec2.region())?;
        if let Some(note) = &plan.capped {
            crate::note!("{note}");
        }
        let launched = launch::execute(&plan, &ec2, &mut catalog, || print_dry_run(&plan, &opts))?;
        let r = &plan.record;
        // Waiting tasks are not work yet; say they exist, so the step does not read as
        // finished (with --wait they were counted already: none).
        let waiting_samples = match &launched {
            Launched::Nothing if work.claimable + work.waiting == 0 && !self.wait => {
                store.waiting_samples(Some(&r.step))?.len()
            }
            _ => 0,
        };
        println!("{}", say(&launched, r, &work, active, waiting_samples));
        Ok(())
    }

    /// The binary the instances fetch, read (and hashed) at launch: what they check is what
    /// is there now.
    fn binary(&self, ctx: &Context) -> Result<Option<crate::ship::Shipped>> {
        let Some(uri) = &self.binary else {
            return Ok(None);
        };
        Ok(Some(crate::ship::prepare(
            &S3::connect(&ctx.aws)?.for_policy(crate::aws::s3::BINARY_POLICY),
            &S3Uri::parse(uri)?,
        )?))
    }

    fn read_user_data(&self) -> Result<Option<(String, String)>> {
        let Some(path) = &self.user_data else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.clone(),
            source,
        })?;
        Ok(Some((path.display().to_string(), text)))
    }

    /// The store the workers will serve, held to the catalog here: a launch is recorded in
    /// the catalog of the store its workers serve (a store in another region, or another
    /// table, is another study), and a step neither has heard of is a typo, not a finished
    /// step.
    fn store_of_this_study(&self, ctx: &Context, catalog: &Catalog) -> Result<Box<dyn TaskStore>> {
        let store = ctx
            .store(OpenMode::MustExist)
            .map_err(|e| crate::study::slip_or(ctx, e))?;
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
        if let Some(typo) =
            crate::study::unknown_collection(store.as_ref(), &self.step, Some(catalog))?
        {
            bail!("{typo}");
        }
        Ok(store)
    }

    /// Todo, and running with an expired lease: what a reclaimed fleet leaves behind. Waiting
    /// tasks are work only for workers that wait for them, and only those whose upstream will
    /// finish without anyone acting: one held by a failure would boot an instance that finds
    /// nothing and powers off.
    fn work_left(&self, store: &dyn TaskStore) -> Result<Work> {
        let claimable = store.count_claimable(&self.step)?;
        if !self.wait {
            return Ok(Work {
                claimable,
                waiting: 0,
            });
        }
        let (waiting, blocked) = crate::store::flow::waiting_samples_by_outlook(store, &self.step)?;
        if blocked > 0 {
            crate::note!(
                "left out {blocked} waiting sample(s) of {} whose upstream failed or was \
                 removed: nothing runs them until a person acts (`anamo query \
                 blocked-samples` after a sync)",
                self.step
            );
        }
        Ok(Work { claimable, waiting })
    }

    /// The workers' arguments: --wait, --idle-timeout and --results (filled and checked here:
    /// a typo must fail the launch, not every instance), then the user's own.
    fn worker_args(&self) -> Result<Vec<String>> {
        let mut args = vec![];
        if self.wait {
            args.push("--wait".to_string());
        }
        if let Some(idle) = self.idle_timeout {
            args.push(format!(
                "--idle-timeout={}",
                humantime::format_duration(idle)
            ));
        }
        if let Some(results) = &self.results {
            let prefix = crate::worker::results_prefix(results, &self.step)?;
            args.push(format!("--results={prefix}"));
        }
        args.extend(self.worker_args.iter().cloned());
        Ok(args)
    }
}

/// The work a launch is capped by.
struct Work {
    claimable: u64,
    /// Samples waiting for an upstream step that will release them (with --wait).
    waiting: u64,
}

/// What a dry run would send (the presigned URL withheld).
fn print_dry_run(plan: &launch::Plan, opts: &LaunchOptions) {
    let r = &plan.record;
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
            "binary: {} ({}, {} bytes, sha256 {}), fetched with a presigned URL valid until {} \
             (withheld below)",
            b.uri,
            b.arch,
            b.size,
            b.sha256,
            crate::clock::rfc3339(b.valid_until)
        );
    }
    println!("user data:\n{}", r.user_data);
}

/// The launch's one line.
fn say(
    launched: &Launched,
    r: &crate::catalog::LaunchRecord,
    work: &Work,
    active: u64,
    waiting_samples: usize,
) -> String {
    match launched {
        Launched::Nothing if work.claimable + work.waiting == 0 => {
            let later = if waiting_samples > 0 {
                format!(
                    "; {waiting_samples} sample(s) have tasks waiting for an upstream step: \
                     launch again as they are released, or with --wait"
                )
            } else {
                String::new()
            };
            format!(
                "nothing to launch: step {} has no claimable tasks{later} (recorded as launch {})",
                r.step, r.launch_id
            )
        }
        Launched::Nothing => format!(
            "nothing to launch: the {active} instance(s) of step {} already pending or running \
             cover its {} claimable task(s) (recorded as launch {})",
            r.step, work.claimable, r.launch_id
        ),
        Launched::DryRunPassed => "EC2 accepted the dry run; nothing was started".to_string(),
        Launched::Started(instances) => {
            let ids: Vec<&str> = instances.iter().map(|i| i.instance_id.as_str()).collect();
            format!(
                "launch {}: started {} of {} instance(s) for step {}: {}",
                r.launch_id,
                instances.len(),
                r.requested,
                r.step,
                ids.join(" ")
            )
        }
    }
}

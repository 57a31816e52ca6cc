//! `anamo worker`: run tasks of one collection on this machine.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use clap::Args;

use crate::aws::s3::{S3, S3Uri};
use crate::clock::parse_duration;
use crate::config::Context;
use crate::store::OpenMode;
use crate::worker::{self, LogShipper, Options, Shutdown, Wait};

/// Claim tasks of a collection and run them until none is left.
///
/// Each script runs as `bash -eo pipefail -c SCRIPT` with ANAMO_TASK_ID, ANAMO_COLLECTION,
/// ANAMO_SAMPLE, ANAMO_ATTEMPT and ANAMO_ATTR_<NAME> set. A failed run goes back to todo
/// while attempts remain. SIGINT/SIGTERM: claim nothing more, give running scripts --grace,
/// then kill them and hand their tasks back. On EC2 a Spot interruption notice does the same
/// within the two-minute warning. Exits 0 when the collection is drained.
///
/// Before exiting, a worker promotes its step's waiting tasks whose upstream is done (a
/// promotion a crashed worker skipped). With --wait it stays while anything can still become
/// claimable without a person acting; --watch stays until stopped.
#[derive(Debug, Args)]
pub struct Cmd {
    /// The collection (workflow step) to work on, e.g. Alignment [default on EC2: the
    /// instance's `anamo:step` tag, which `anamo launch` sets].
    #[arg(long, short)]
    pub collection: Option<String>,

    /// Tasks to run in parallel.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub slots: u16,

    /// Stop after claiming this many tasks.
    #[arg(long)]
    pub max_tasks: Option<u64>,

    /// How long a claim holds without a heartbeat (heartbeats come every lease/3).
    #[arg(long, default_value = "10m", value_parser = parse_lease)]
    pub lease: Duration,

    /// When nothing is claimable, stay (polling, with backoff up to 30s) while something can
    /// still become claimable without a person acting: a waiting task whose upstream is under
    /// way, or a task of this step running elsewhere (a lost worker's lease runs out). Exits
    /// when only tasks waiting on failed or missing upstream tasks are left.
    #[arg(long, conflicts_with = "watch")]
    pub wait: bool,

    /// Stay until stopped, polling for tasks added later (with backoff up to 30s).
    #[arg(long)]
    pub watch: bool,

    /// With --wait or --watch: leave once nothing was claimable for this long (each slot
    /// in turn; with --shutdown-on-exit the machine then powers off), so a waiting cluster
    /// does not idle for ever.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub idle_timeout: Option<Duration>,

    /// Where the step's scripts write their results, s3://BUCKET/PREFIX/ ({collection} is
    /// filled). Checked before the first claim (a probe object is written there and deleted):
    /// a machine that cannot write it claims nothing. Scripts get it as ANAMO_RESULTS.
    #[arg(long, value_name = "S3_URI")]
    pub results: Option<String>,

    /// Wall-clock budget: after it, finish what runs and take nothing new.
    #[arg(long, value_parser = parse_duration)]
    pub stop_claiming_after: Option<Duration>,

    /// On SIGINT/SIGTERM, how long running scripts get before they are killed and released.
    #[arg(long, default_value = "90s", value_parser = parse_duration)]
    pub grace: Duration,

    /// Write each attempt's stdout+stderr to DIR/COLLECTION/TASK_ID/ATTEMPT.log.
    #[arg(long, env = "ANAMO_LOG_DIR")]
    pub log_dir: Option<PathBuf>,

    /// Copy each finished attempt's log to s3://BUCKET/PREFIX/COLLECTION/TASK_ID/ATTEMPT.log
    /// and record that URI on the task (logs are written locally first: to --log-dir if
    /// given, else a temporary folder emptied as uploads succeed). Checked before the first
    /// claim (a probe object is written and deleted); a later failed upload never fails the
    /// task: it keeps the local path and is counted in the summary.
    #[arg(long, env = "ANAMO_LOG_URI", value_name = "S3_URI")]
    pub log_uri: Option<String>,

    /// Power the machine off when the worker ends or cannot start (on EC2, launch with
    /// shutdown behaviour `terminate` and this terminates the instance). Runs
    /// ANAMO_SHUTDOWN_COMMAND if set, else `shutdown -h now`.
    #[arg(long)]
    pub shutdown_on_exit: bool,

    /// Owner id recorded on the tasks it runs (default: the EC2 instance id from instance
    /// metadata, else AWS_BATCH_JOB_ID, else hostname:pid).
    #[arg(long)]
    pub owner: Option<String>,
}

impl Cmd {
    pub fn run(self, ctx: &Context) -> Result<()> {
        let shutdown_on_exit = self.shutdown_on_exit;
        let result = self.work(ctx);
        // Whether the work went well or could not even start (bad permissions, store
        // unreachable), an instance with nothing to do must not keep burning money.
        if shutdown_on_exit {
            // Say what went wrong before the machine goes: there may be no later.
            if let Err(e) = &result {
                eprintln!("error: {}", crate::error::one_line(e));
            }
            power_off();
            if result.is_err() {
                std::process::exit(1);
            }
        }
        result
    }

    fn work(self, ctx: &Context) -> Result<()> {
        if self.idle_timeout.is_some() && !self.wait && !self.watch {
            return Err(crate::error::Error::Usage(
                "--idle-timeout needs --wait or --watch: without them a worker leaves as soon \
                 as nothing is claimable"
                    .into(),
            )
            .into());
        }
        let (owner, metadata) = match &self.owner {
            Some(o) => (o.clone(), None),
            None => worker::detect_owner(),
        };
        let collection = match self.collection {
            Some(c) => c,
            None => worker::step_from_tag(metadata.as_ref(), &owner, &ctx.aws)?,
        };
        // One S3 client for the results probe and the log uploads (AWS configuration is
        // loaded once, and only when S3 is used).
        let mut s3 = if self.results.is_some() || self.log_uri.is_some() {
            Some(S3::connect(&ctx.aws)?)
        } else {
            None
        };
        // The results prefix first: nothing else is worth doing on a machine that cannot
        // deliver the step's results.
        let mut script_env = vec![];
        if let (Some(results), Some(s3)) = (&self.results, &s3) {
            let prefix = results_prefix(results, &collection)?;
            s3.probe_write(&prefix, &owner, crate::aws::s3::RESULTS_POLICY)
                .map_err(|e| {
                    anyhow::anyhow!(
                        "worker cannot write the step's results under {prefix}: {e}; the \
                         bucket must exist and the instance role needs s3:PutObject and \
                         s3:DeleteObject there. Nothing was claimed"
                    )
                })?;
            script_env.push(("ANAMO_RESULTS".to_string(), prefix.to_string()));
        }
        let store = ctx.store(OpenMode::MustExist)?;
        // A collection with no task at all is most often a typo: say so rather than report
        // "0 done" as if the step were finished (one key read, on any store).
        if let Some(hint) = crate::cmd::unknown_collection(store.as_ref(), &collection, None)? {
            if !self.watch {
                anyhow::bail!("{hint}, or pass --watch to wait for tasks to be added");
            }
            crate::note!("warning: {hint}; waiting for tasks to be added (--watch)");
        }
        let (log_dir, log_shipper) = match (&self.log_uri, s3.take()) {
            (Some(uri), Some(s3)) => {
                let base = S3Uri::parse(uri)?;
                let keep_local = self.log_dir.is_some();
                let dir = self.log_dir.unwrap_or_else(|| {
                    std::env::temp_dir().join(format!("anamo-logs-{}", std::process::id()))
                });
                let shipper = LogShipper::new(s3, base, keep_local);
                (Some(dir), Some(Arc::new(shipper)))
            }
            _ => (self.log_dir, None),
        };
        let shutdown = Arc::new(Shutdown::new(self.grace));
        shutdown
            .watch_signals()
            .context("cannot install signal handlers")?;
        if let Some(session) = metadata {
            worker::watch_spot_notice(session, Arc::clone(&shutdown));
        }
        if let Some(dir) = &log_dir {
            // A folder the worker cannot write would fail every task it claims, attempt after
            // attempt, as if the scripts were broken: refuse before claiming any.
            check_log_dir(dir).map_err(|e| {
                anyhow::anyhow!(
                    "worker cannot write its logs in '{}': {e}; fix --log-dir (or \
                     ANAMO_LOG_DIR). Nothing was claimed",
                    dir.display()
                )
            })?;
        }
        if let Some(shipper) = &log_shipper {
            // What S3 said first (NoSuchBucket, AccessDenied), then what to do about it.
            shipper.preflight(&owner).map_err(|e| {
                anyhow::anyhow!(
                    "worker cannot write its logs under {}: {e}; fix --log-uri (the bucket must \
                     exist) or give the instance role s3:PutObject and s3:DeleteObject there. \
                     Nothing was claimed",
                    self.log_uri.as_deref().unwrap_or_default()
                )
            })?;
        }
        let opts = Options {
            owner,
            collection,
            slots: self.slots as usize,
            max_tasks: self.max_tasks,
            lease: self.lease,
            wait: if self.watch {
                Wait::Forever
            } else if self.wait {
                Wait::Flow
            } else {
                Wait::Exit
            },
            max_idle: worker::MAX_IDLE,
            idle_timeout: self.idle_timeout,
            script_env,
            stop_claiming_after: self.stop_claiming_after,
            log_dir,
            log_shipper,
        };
        let (summary, result) = worker::run(store.as_ref(), &opts, &shutdown);
        println!("worker {} on {}: {summary}", opts.owner, opts.collection);
        result?;
        Ok(())
    }
}

/// `--results` for this step: `{collection}` filled, and a folder (a trailing `/`).
pub(crate) fn results_prefix(pattern: &str, collection: &str) -> crate::error::Result<S3Uri> {
    let filled = crate::placeholders::fill(
        "--results",
        pattern,
        &[("collection", collection)],
        crate::placeholders::Quoting::Plain,
    )?;
    Ok(S3Uri::parse(&filled)?.as_folder())
}

/// Makes the log folder and writes and removes a probe file in it.
fn check_log_dir(dir: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let probe = dir.join(format!(".anamo-probe-{}", std::process::id()));
    std::fs::write(&probe, b"")?;
    std::fs::remove_file(&probe)
}

/// Runs the power-off command; a failure is reported, not hidden.
fn power_off() {
    let command =
        std::env::var("ANAMO_SHUTDOWN_COMMAND").unwrap_or_else(|_| "shutdown -h now".to_string());
    crate::note!("shutting down: {command}");
    match std::process::Command::new("sh")
        .args(["-c", &command])
        .status()
    {
        Ok(s) if s.success() => {}
        Ok(s) => eprintln!("error: `{command}` failed ({s}); the machine is still running"),
        Err(e) => eprintln!("error: cannot run `{command}`: {e}; the machine is still running"),
    }
}

/// A lease of at least a second: heartbeats come every lease/3.
fn parse_lease(s: &str) -> std::result::Result<Duration, String> {
    let lease = parse_duration(s)?;
    if lease < Duration::from_secs(1) {
        return Err(format!(
            "a lease of {s} is too short; give at least 1s (heartbeats come every lease/3)"
        ));
    }
    Ok(lease)
}

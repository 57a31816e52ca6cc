//! `anamo worker`: run tasks of one collection on this machine.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::Args;

use crate::clock::parse_duration;
use crate::config::Context;
use crate::store::OpenMode;
use crate::worker::{self, Setup, Wait};

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
#[command(group = clap::ArgGroup::new("stays").args(["wait", "watch"]))]
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
    /// does not idle for ever. Without them a worker leaves as soon as nothing is claimable.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION", requires = "stays")]
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
        let setup = Setup {
            wait: if self.watch {
                Wait::Forever
            } else if self.wait {
                Wait::Flow
            } else {
                Wait::Exit
            },
            collection: self.collection,
            owner: self.owner,
            slots: self.slots,
            max_tasks: self.max_tasks,
            lease: self.lease,
            idle_timeout: self.idle_timeout,
            results: self.results,
            stop_claiming_after: self.stop_claiming_after,
            grace: self.grace,
            log_dir: self.log_dir,
            log_uri: self.log_uri,
        };
        let ready = setup.prepare(|| ctx.store(OpenMode::MustExist), &ctx.aws)?;
        if let Some(warning) = &ready.warning {
            crate::note!("{warning}");
        }
        let opts = &ready.options;
        let (summary, result) = worker::run(ready.store.as_ref(), opts, &ready.shutdown);
        println!("worker {} on {}: {summary}", opts.owner, opts.collection);
        result?;
        Ok(())
    }
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

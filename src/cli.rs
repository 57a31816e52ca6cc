//! The command line: global flags and the list of subcommands.

use clap::{Args, Parser, Subcommand};

use crate::cmd;
use std::path::PathBuf;

use crate::catalog::DEFAULT_CATALOG;
use crate::model::{Attrs, TaskState};
use crate::store::DEFAULT_STORE;

/// anamo: a work queue and catalog for population-scale genome workflows on AWS.
///
/// Tasks live in a store (SQLite file by default); workers claim and run them one at a time,
/// so each task runs once and none is lost.
#[derive(Debug, Parser)]
#[command(name = "anamo", version, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// Task store: sqlite://PATH (or a plain path), or dynamodb://TABLE.
    #[arg(long, global = true, env = "ANAMO_STORE", default_value = DEFAULT_STORE)]
    pub store: String,

    /// Catalog file (SQLite), or a published catalog s3://BUCKET/PREFIX/ to read (`anamo
    /// sync --publish` writes it; fetched into ANAMO_CACHE, else ~/.cache/anamo).
    #[arg(long, global = true, env = "ANAMO_CATALOG", default_value = DEFAULT_CATALOG)]
    pub catalog: PathBuf,

    /// Folder of saved reports (*.sql) that add to or override the built-in ones
    /// [default: ./queries when it exists].
    #[arg(long, global = true, env = "ANAMO_QUERIES")]
    pub queries: Option<PathBuf>,

    /// AWS region (default: aws-config's chain: AWS_REGION, profile, instance metadata).
    #[arg(long, global = true, env = "ANAMO_AWS_REGION")]
    pub region: Option<String>,

    /// AWS profile from ~/.aws/config (default: AWS_PROFILE or the default profile).
    #[arg(long, global = true, env = "ANAMO_AWS_PROFILE")]
    pub profile: Option<String>,

    /// AWS endpoint, e.g. a local emulator (AWS_ENDPOINT_URL is honoured too).
    #[arg(long, global = true, env = "ANAMO_AWS_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,

    /// More log output on stderr (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Only errors on stderr.
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a small study end to end on the embedded store (start here).
    Demo(cmd::demo::Cmd),
    /// Add, list, inspect, retry and delete tasks.
    #[command(subcommand)]
    Tasks(cmd::tasks::Cmd),
    /// Claim and run tasks of one collection until it is drained.
    Worker(cmd::worker::Cmd),
    /// Print a task's log, from S3 or this machine.
    Logs(cmd::logs::Cmd),
    /// Start a step's cluster on EC2 from its launch template.
    Launch(cmd::launch::Cmd),
    /// Upload this anamo to S3, for `launch --binary` on a stock AMI.
    Ship(cmd::ship::Cmd),
    /// Copy the task store (and EC2 instances, S3 listings) into the catalog.
    Sync(cmd::sync::Cmd),
    /// Ask the catalog a question in read-only SQL, or run a saved report.
    Query(cmd::query::Cmd),
    /// List the saved reports.
    Reports(cmd::reports::Cmd),
    /// Progress per step, or one sample's journey.
    Status(cmd::status::Cmd),
    /// Write the catalog's progress as one self-contained HTML page, with charts.
    Report(cmd::report::Cmd),
    /// Import and drop samples.
    #[command(subcommand)]
    Samples(cmd::samples::Cmd),
    /// Import QC metrics.
    #[command(subcommand)]
    Qc(cmd::qc::Cmd),
    /// Set or list on-demand prices by instance type, for the cost reports.
    #[command(subcommand)]
    Prices(cmd::prices::Cmd),
    /// Set or show the workflow order of the steps.
    #[command(subcommand)]
    Steps(cmd::steps::Cmd),
    /// Create or check the task store (the DynamoDB table and its index).
    #[command(subcommand)]
    Store(cmd::store::Cmd),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish).
    Completions(cmd::completions::Cmd),
    /// Print the man page, generated from the same definitions as --help.
    Man(cmd::completions::Man),
}

/// Parses `NAME=VALUE` attribute flags.
pub fn parse_attr(s: &str) -> Result<(String, String), String> {
    name_value(s, "an attribute")
}

/// A report or query parameter, `NAME=VALUE`.
pub fn parse_param(s: &str) -> Result<(String, String), String> {
    name_value(s, "a parameter")
}

fn name_value(s: &str, what: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("'{s}' is not {what}: write NAME=VALUE (e.g. sample={s})"))?;
    Ok((k.trim().to_string(), v.to_string()))
}

pub fn attrs_from(pairs: &[(String, String)]) -> Attrs {
    pairs.iter().cloned().collect()
}

pub fn parse_state(s: &str) -> Result<TaskState, String> {
    s.parse()
}

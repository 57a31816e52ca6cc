//! `anamo store init`: create the task store (or bring a table to anamo's shape);
//! `anamo store check`: find (and with `--repair` fix) tasks no claim can take.

use anyhow::Result;
use clap::Subcommand;

use crate::config::Context;
use crate::store::dynamo::{CHANGE_INDEX, DynamoStore, INDEX, Init, SAMPLE_INDEX};
use crate::store::{OpenMode, SqliteStore, StoreUrl, TaskStore as _};

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Create the store named by --store: for dynamodb://TABLE the table (on-demand billing,
    /// key collection + task_id), its sparse, sharded claim index `claim_by_shard`, the
    /// sample index `by_sample` (chained steps) and the change index `by_change` (what an
    /// incremental sync reads), waiting until all are ACTIVE. Idempotent;
    /// repairs in place a table made by an older anamo, or by hand with an index missing or
    /// projecting too little (stop its workers first); refuses a table of another shape
    /// (other keys, or key types), naming what differs.
    Init,
    /// Check the store: its shape, and tasks no worker can claim (written by hand without the
    /// claim attributes, or `todo` but missing from the claim index). One line each; exits 1
    /// when one is left. `--repair` gives them what a claim needs (a script cannot be made
    /// up: those are named for a person).
    Check {
        /// Only this collection.
        #[arg(long, short)]
        collection: Option<String>,
        /// Write what each task lacks (shard, claim time, version, attempt counts), or write
        /// a task again so the claim index shows it.
        #[arg(long)]
        repair: bool,
    },
}

impl Cmd {
    pub fn run(self, ctx: &Context) -> Result<()> {
        match self {
            Cmd::Init => init(ctx),
            Cmd::Check { collection, repair } => check(ctx, collection.as_deref(), repair),
        }
    }
}

fn check(ctx: &Context, collection: Option<&str>, repair: bool) -> Result<()> {
    // Opening checks the shape (a table of another shape is refused with its line).
    let store = ctx.store(OpenMode::MustExist)?;
    if let Some(c) = collection {
        super::tasks::require_collection(store.as_ref(), c)?;
    }
    let findings = store.check_claims(collection, repair)?;
    for f in &findings {
        let fate = if f.repaired {
            " (repaired)"
        } else if repair {
            " (left)"
        } else {
            ""
        };
        println!(
            "{}/{}: {}{fate}",
            f.key.collection, f.key.task_id, f.problem
        );
    }
    let left = findings.iter().filter(|f| !f.repaired).count();
    let repaired = findings.len() - left;
    println!(
        "checked {}: its shape is anamo's; {} task(s) no claim could take{}",
        store.describe(),
        findings.len(),
        if repaired > 0 {
            format!(", {repaired} repaired")
        } else {
            String::new()
        }
    );
    if left > 0 {
        let fixable = findings
            .iter()
            .filter(|f| !f.repaired && f.repairable)
            .count();
        let fix = match (repair, fixable, left - fixable) {
            (false, f, 0) if f > 0 => {
                "; `anamo store check --repair` gives them what a claim needs".to_string()
            }
            (false, f, w) if f > 0 => format!(
                "; `anamo store check --repair` gives {f} of them what a claim needs, {w} must \
                 be written again (above)"
            ),
            (true, f, _) if f > 0 => {
                "; they changed while it ran: run `anamo store check --repair` again".to_string()
            }
            _ => "; write them again (above)".to_string(),
        };
        anyhow::bail!("{left} task(s) no worker can claim are left{fix}");
    }
    Ok(())
}

fn init(ctx: &Context) -> Result<()> {
    match StoreUrl::parse(&ctx.store_url)? {
        StoreUrl::Sqlite(path) => {
            SqliteStore::open(&path, OpenMode::Create)?;
            println!("task store sqlite://{} is ready", path.display());
        }
        StoreUrl::Dynamo(table) => {
            let store = DynamoStore::connect(&table, &ctx.aws)?;
            if let Some(note) = crate::study::catalog_of_another_store(ctx, &store.identity())? {
                crate::note!("{note}");
            }
            match store.init()? {
                Init::Created => {
                    println!(
                        "created DynamoDB table {table} with indexes {INDEX}, {SAMPLE_INDEX} \
                         and {CHANGE_INDEX}"
                    )
                }
                Init::Repaired { done, provisioned } => {
                    println!("upgraded DynamoDB table {table}: {}", done.join("; "));
                    note_provisioned(&table, provisioned);
                }
                Init::AlreadyThere { provisioned } => {
                    println!("DynamoDB table {table} is already set up");
                    note_provisioned(&table, provisioned);
                }
            }
        }
    }
    Ok(())
}

/// A provisioned table caps a fleet's claims: said on every `store init` that finds one.
fn note_provisioned(table: &str, provisioned: Option<(i64, i64)>) {
    if let Some((read, write)) = provisioned {
        crate::note!(
            "table {table} is provisioned at {read} read and {write} write units, not \
             on-demand: a fleet's claims past that are throttled and retried, so workers \
             wait; on-demand billing (what `anamo store init` makes) has no such ceiling"
        );
    }
}

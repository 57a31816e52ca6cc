//! `anamo store init`: create the task store.

use anyhow::Result;
use clap::Subcommand;

use crate::config::Context;
use crate::store::dynamo::{DynamoStore, INDEX, Init, LEGACY_INDEX, SAMPLE_INDEX};
use crate::store::{OpenMode, SqliteStore, StoreUrl};

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Create the store named by --store: for dynamodb://TABLE the table (on-demand billing,
    /// key collection + task_id), its sparse, sharded claim index `claim_by_shard` and the
    /// sample index `by_sample` (chained steps), waiting until all are ACTIVE. Idempotent;
    /// upgrades a table made by an older anamo in place (stop its workers first); refuses a
    /// table of another shape.
    Init,
}

impl Cmd {
    pub fn run(self, ctx: &Context) -> Result<()> {
        let Cmd::Init = self;
        match StoreUrl::parse(&ctx.store_url)? {
            StoreUrl::Sqlite(path) => {
                SqliteStore::open(&path, OpenMode::Create)?;
                println!("task store sqlite://{} is ready", path.display());
            }
            StoreUrl::Dynamo(table) => {
                let store = DynamoStore::connect(&table, &ctx.aws)?;
                match store.init()? {
                    Init::Created => {
                        println!(
                            "created DynamoDB table {table} with indexes {INDEX} and {SAMPLE_INDEX}"
                        )
                    }
                    Init::Upgraded { tasks } => println!(
                        "upgraded DynamoDB table {table}: index {INDEX} added ({tasks} tasks \
                         given their shard), old index {LEGACY_INDEX} removed"
                    ),
                    Init::AlreadyThere => println!("DynamoDB table {table} is already set up"),
                    Init::AddedSampleIndex => println!(
                        "upgraded DynamoDB table {table}: index {SAMPLE_INDEX} added (chained \
                         steps, --after)"
                    ),
                }
            }
        }
        Ok(())
    }
}

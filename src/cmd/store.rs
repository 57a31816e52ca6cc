//! `anamo store init`: create the task store.

use anyhow::Result;
use clap::Subcommand;

use crate::config::Context;
use crate::store::dynamo::{DynamoStore, Init};
use crate::store::{OpenMode, SqliteStore, StoreUrl};

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Create the store named by --store: for dynamodb://TABLE the table (on-demand billing,
    /// key collection + task_id) and its sparse `claimable` index, waiting until both are
    /// ACTIVE. Idempotent; refuses a table of another shape.
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
                        println!("created DynamoDB table {table} with index claimable")
                    }
                    Init::AlreadyThere => println!("DynamoDB table {table} is already set up"),
                }
            }
        }
        Ok(())
    }
}

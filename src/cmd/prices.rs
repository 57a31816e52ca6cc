//! `anamo prices ...`: the on-demand price table behind the cost reports.

use anyhow::Result;
use clap::{Args, Subcommand};

use crate::catalog::{Catalog, prices};
use crate::config::Context;

/// On-demand prices by instance type (US dollars an hour), for `cost-by-step`,
/// `cost-by-sample` and the cost in `status`. Spot prices come from EC2 with `sync
/// --instances`; on-demand ones from here or `[prices]` in anamo.toml (copied by each sync),
/// since the AWS Pricing API is not used. An instance without a price is reported unpriced.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Set one type's price: `anamo prices set m5.xlarge 0.192`.
    Set(Set),
    /// Print the table.
    List,
}

#[derive(Debug, Args)]
pub struct Set {
    /// The instance type, as EC2 writes it (m5.xlarge).
    pub instance_type: String,
    /// US dollars an hour, on demand.
    pub usd_per_hour: f64,
}

impl Cmd {
    pub fn run(self, ctx: &Context) -> Result<()> {
        match self {
            Cmd::Set(c) => {
                let mut cat = ctx.catalog()?;
                cat.set_prices(&[(c.instance_type.clone(), c.usd_per_hour)], "prices set")?;
                println!(
                    "{}: {} USD an hour on demand",
                    c.instance_type, c.usd_per_hour
                );
            }
            Cmd::List => {
                let conn = Catalog::read_only(&ctx.catalog_path)?;
                let table = prices::prices(&conn)?;
                if table.is_empty() {
                    crate::note!(
                        "no on-demand prices: `anamo prices set TYPE USD_PER_HOUR`, or [prices] \
                         in anamo.toml and a sync"
                    );
                }
                for p in table {
                    println!(
                        "{}\t{}\t{}\t{}",
                        p.instance_type,
                        p.usd_per_hour,
                        p.source,
                        crate::clock::rfc3339(p.set_at)
                    );
                }
            }
        }
        Ok(())
    }
}

//! `anamo prices ...`: the on-demand price table behind the cost reports.

use anyhow::Result;
use clap::{Args, Subcommand};

use crate::catalog::Catalog;
use crate::config::{Context, FileConfig};

/// On-demand prices by instance type (US dollars an hour), for `cost-by-step`,
/// `cost-by-sample` and the cost in `status`. Spot prices come from EC2 with `sync
/// --instances`; on-demand ones from here or `[prices]` in anamo.toml (copied by each sync,
/// over what is set here), since the AWS Pricing API is not used. An instance without a
/// price is reported unpriced.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Set one type's price: `anamo prices set m5.xlarge 0.192`.
    Set(Set),
    /// Remove one type's price: its instances are unpriced again.
    Unset(Unset),
    /// Print the table.
    List,
}

#[derive(Debug, Args)]
pub struct Set {
    /// The instance type, as EC2 writes it (m5.xlarge).
    pub instance_type: String,
    /// US dollars an hour, on demand.
    #[arg(allow_negative_numbers = true, value_parser = parse_usd)]
    pub usd_per_hour: f64,
}

#[derive(Debug, Args)]
pub struct Unset {
    pub instance_type: String,
}

fn parse_usd(s: &str) -> std::result::Result<f64, String> {
    s.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v > 0.0)
        .ok_or_else(|| {
            format!(
                "'{s}' is not a price; write US dollars an hour as a plain number above 0, \
                 e.g. 0.384"
            )
        })
}

impl Cmd {
    pub fn run(self, ctx: &Context) -> Result<()> {
        match self {
            Cmd::Set(c) => {
                let config = FileConfig::load()?;
                let mut cat = ctx.catalog()?;
                cat.set_prices(&[(c.instance_type.clone(), c.usd_per_hour)], "prices set")?;
                println!(
                    "{}: {} USD an hour on demand",
                    c.instance_type, c.usd_per_hour
                );
                warn_about(&cat, &config, &c.instance_type)?;
            }
            Cmd::Unset(c) => {
                let config = FileConfig::load()?;
                let mut cat = ctx.catalog()?;
                if cat.unset_price(&c.instance_type)? {
                    println!("{}: no price (its instances are unpriced)", c.instance_type);
                } else {
                    println!("{}: had no price", c.instance_type);
                }
                if let Some(usd) = config.prices.get(&c.instance_type) {
                    crate::note!(
                        "warning: [prices] in anamo.toml sets {} to {usd}, and the next sync \
                         sets it again; remove it there",
                        c.instance_type
                    );
                }
            }
            Cmd::List => {
                let conn = ctx.read_catalog()?;
                let table = conn.prices()?;
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

/// What would make a price just set not the one used: anamo.toml naming the type (the next
/// sync puts its price back), or no instance of the type (most often a typo).
fn warn_about(cat: &Catalog, config: &FileConfig, instance_type: &str) -> Result<()> {
    if let Some(usd) = config.prices.get(instance_type) {
        crate::note!(
            "warning: [prices] in anamo.toml sets {instance_type} to {usd}, and the next sync \
             sets it back; change it there"
        );
    }
    let known = cat.instance_types()?;
    if !known.is_empty() && !known.iter().any(|t| t == instance_type) {
        crate::note!(
            "note: no instance of type {instance_type} in the catalog (it has {}); check the \
             spelling",
            known.join(", ")
        );
    }
    Ok(())
}

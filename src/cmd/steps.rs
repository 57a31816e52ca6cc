//! `anamo steps ...`: the workflow order of the steps.

use anyhow::Result;
use clap::{Args, Subcommand};

use crate::catalog;
use crate::config::Context;

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Set the workflow order: `anamo steps set Alignment ReadProcessing VariantCalling`.
    Set(Set),
    /// Print the steps in order.
    List,
}

#[derive(Debug, Args)]
pub struct Set {
    /// Step (collection) names, first to last.
    #[arg(required = true)]
    pub steps: Vec<String>,
}

impl Cmd {
    pub fn run(self, ctx: &Context) -> Result<()> {
        match self {
            Cmd::Set(c) => {
                let mut cat = ctx.catalog()?;
                catalog::set_steps(&mut cat, &c.steps)?;
                println!("steps: {}", c.steps.join(" -> "));
            }
            Cmd::List => {
                let cat = ctx.existing_catalog()?;
                let mut stmt = cat
                    .conn()
                    .prepare("SELECT collection FROM steps ORDER BY ordinal")?;
                let steps: Vec<String> = stmt
                    .query_map([], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?;
                for s in steps {
                    println!("{s}");
                }
            }
        }
        Ok(())
    }
}

//! `anamo samples ...`: the study's samples in the catalog.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};

use crate::catalog::{self, DropOutcome};
use crate::config::Context;

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Import samples from CSV/TSV/JSONL: sample_id, cohort, status; every other column is
    /// kept in the metadata JSON. Re-importing updates (metadata is merged).
    Import(Import),
    /// Mark a sample as having left the study; its history is kept.
    Drop(Drop),
}

#[derive(Debug, Args)]
pub struct Import {
    pub file: PathBuf,
}

#[derive(Debug, Args)]
pub struct Drop {
    /// Sample id.
    pub sample: String,
    /// Why it left the study.
    #[arg(long)]
    pub reason: String,
}

impl Cmd {
    pub fn run(self, ctx: &Context) -> Result<()> {
        match self {
            Cmd::Import(c) => {
                let mut cat = ctx.catalog()?;
                let r = catalog::import_samples(&mut cat, &c.file)?;
                for (sample, reason) in &r.reactivated {
                    crate::note!(
                        "warning: sample {sample} was dropped ({reason}) and is active again: \
                         the sheet says status active (`anamo samples drop` drops it again)"
                    );
                }
                println!(
                    "imported {} sample(s) into {}",
                    r.rows,
                    cat.path().display()
                );
            }
            Cmd::Drop(c) => {
                let cat = ctx.existing_catalog()?;
                match catalog::drop_sample(&cat, &c.sample, &c.reason)? {
                    DropOutcome::Dropped => println!("dropped sample {}", c.sample),
                    DropOutcome::AlreadyDropped => {
                        println!("sample {} was already dropped", c.sample)
                    }
                }
            }
        }
        Ok(())
    }
}

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
    /// Mark a sample as having left the study; its history is kept, and its tasks that have
    /// not started are withdrawn from the store (unless --keep-tasks).
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
    /// Leave its waiting and todo tasks in the store (they run; the catalog sets them apart).
    #[arg(long)]
    pub keep_tasks: bool,
}

impl Cmd {
    pub fn run(self, ctx: &Context) -> Result<()> {
        match self {
            Cmd::Import(c) => {
                let mut cat = ctx.catalog()?;
                let r = cat.import_samples(&c.file)?;
                let withdrawn = reinstate(ctx, &r.reactivated)?;
                for (sample, reason) in &r.reactivated {
                    let which = withdrawn
                        .get(sample)
                        .filter(|w| !w.is_empty())
                        .map(|w| format!(": {}", w.join(", ")))
                        .unwrap_or_default();
                    crate::note!(
                        "warning: sample {sample} was dropped ({reason}) and is active again: \
                         the sheet says status active (`anamo samples drop` drops it again); \
                         tasks withdrawn when it was dropped must be added again (`anamo tasks \
                         add`){which}"
                    );
                }
                println!(
                    "imported {} sample(s) into {}",
                    r.rows,
                    cat.path().display()
                );
            }
            Cmd::Drop(c) => {
                let mut cat = ctx.existing_catalog()?;
                match cat.drop_sample(&c.sample, &c.reason)? {
                    DropOutcome::Dropped => println!("dropped sample {}", c.sample),
                    DropOutcome::AlreadyDropped => {
                        println!("sample {} was already dropped", c.sample)
                    }
                }
                withdraw(ctx, &mut cat, &c.sample, &c.reason, c.keep_tasks)?;
            }
        }
        Ok(())
    }
}

/// Tells the store the sample is dropped and withdraws its tasks that have not started (unless
/// `keep_tasks`), saying how many per step; a store that is not there has nothing to do.
fn withdraw(
    ctx: &Context,
    cat: &mut catalog::Catalog,
    sample: &str,
    reason: &str,
    keep_tasks: bool,
) -> Result<()> {
    let store = match ctx.store(crate::store::OpenMode::MustExist) {
        Ok(store) => store,
        Err(crate::error::Error::Missing { .. }) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let withdrawn = crate::sync::drop_from_queue(store.as_ref(), cat, sample, reason, keep_tasks)?;
    if withdrawn.is_empty() {
        return Ok(());
    }
    let per_step: Vec<String> = withdrawn.iter().map(|(s, n)| format!("{s} {n}")).collect();
    println!(
        "withdrew its tasks that had not started from {} ({}); running ones finish and are set \
         apart; --keep-tasks leaves them",
        store.describe(),
        per_step.join(", ")
    );
    Ok(())
}

/// Samples back in the study: the store takes their drop marks away, so their tasks can be
/// added again; a store that is not there has none. Returns, per sample, the tasks withdrawn
/// when it was dropped (`STEP/ID`), for the note that says to add them again.
fn reinstate(
    ctx: &Context,
    samples: &[(String, String)],
) -> Result<std::collections::HashMap<String, Vec<String>>> {
    let mut withdrawn = std::collections::HashMap::new();
    if samples.is_empty() {
        return Ok(withdrawn);
    }
    let store = match ctx.store(crate::store::OpenMode::MustExist) {
        Ok(store) => store,
        Err(crate::error::Error::Missing { .. }) => return Ok(withdrawn),
        Err(e) => return Err(e.into()),
    };
    for (sample, _) in samples {
        store.reinstate_sample(sample)?;
        let mut named = vec![];
        for t in store
            .sample_view(sample)?
            .tasks
            .iter()
            .filter(|t| !t.is_live())
        {
            if store
                .tombstone(&t.collection, &t.task_id)?
                .is_some_and(|g| g.withdrawn)
            {
                named.push(format!("{}/{}", t.collection, t.task_id));
            }
        }
        named.sort();
        withdrawn.insert(sample.clone(), named);
    }
    Ok(withdrawn)
}

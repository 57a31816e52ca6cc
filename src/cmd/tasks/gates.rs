//! QC gates from the command line: the `[gates]` of anamo.toml added to a step's new tasks, the
//! warning for a gate on a metric nobody reports, and `anamo tasks release`, a person's
//! decision to let a held task run (recorded with who and why).

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use anyhow::{Result, bail};
use clap::Args;

use super::Which;
use crate::config::{Context, FileConfig};
use crate::model::{NewTask, Selector, Settle, TaskFilter, TaskState};
use crate::store::OpenMode;

/// Adds to each task the gates anamo.toml's `[gates]` sets for its step (those it does not
/// carry already).
pub fn with_step_gates(tasks: &mut [NewTask], config: &FileConfig) {
    if config.gates.is_empty() {
        return;
    }
    for t in tasks {
        if let Some(gates) = config.gates.get(&t.collection) {
            for g in gates {
                if !t.require.contains(g) {
                    t.require.push(g.clone());
                }
            }
        }
    }
}

/// Warns of gates on a metric the catalog has never seen (reported or imported): most likely
/// a typo, and every such task would be held with "no METRIC reported". Silent without a
/// catalog, or with one that holds no metric yet.
pub fn warn_unknown_metrics(ctx: &Context, tasks: &[NewTask]) -> Result<()> {
    let gated: BTreeSet<String> = tasks
        .iter()
        .flat_map(|t| crate::model::parse_gates(&t.require).unwrap_or_default())
        .map(|g| g.metric)
        .collect();
    if gated.is_empty() || !ctx.catalog_path.exists() {
        return Ok(());
    }
    let known = crate::catalog::CatalogRead::open(&ctx.catalog_path)?.metrics()?;
    if known.is_empty() {
        return Ok(());
    }
    for metric in gated.iter().filter(|m| !known.contains(m)) {
        crate::note!(
            "warning: no sample in the catalog has a metric '{metric}' (it knows {}); a task \
             gated on it is held with 'no {metric} reported' until its upstream reports it",
            known.join(", ")
        );
    }
    Ok(())
}

/// Let held tasks run: a person's decision over a QC gate, kept on the task with who and why.
///
///   anamo tasks release -c VariantCalling --sample S17 --reason "re-sequenced lane checked by hand"
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct ReleaseCmd {
    /// Collection (step) of the held tasks.
    #[arg(long, short)]
    pub collection: String,
    #[command(flatten)]
    pub which: Which,
    /// Why they may run despite the gate (kept on the task, with who and when).
    #[arg(long, required = true)]
    pub reason: String,
}

impl ReleaseCmd {
    pub fn run(self, ctx: &Context) -> Result<()> {
        if self.reason.trim().is_empty() {
            bail!("--reason is blank; say why the gate is overruled (it is kept on the task)");
        }
        let selector = self.which.selector(None)?;
        let store = ctx.store(OpenMode::MustExist)?;
        super::require_collection(store.as_ref(), &self.collection)?;
        let filter = TaskFilter {
            collection: Some(self.collection.clone()),
            state: Some(TaskState::Held),
            ..Default::default()
        };
        let mut held = vec![];
        crate::store::for_each_task(store.as_ref(), &filter, 1_000, |t| {
            if let Ok(t) = t
                && selector.matches(&t)
            {
                held.push(t);
            }
            Ok(ControlFlow::Continue(()))
        })?;
        let who = crate::launch::requested_by();
        let when = crate::clock::rfc3339(crate::clock::now_ms());
        let mut released = 0;
        for t in &held {
            let note = format!(
                "released by {who} at {when}: {} (was {})",
                self.reason.trim(),
                t.gate_note.as_deref().unwrap_or("held")
            );
            released +=
                store.settle_task(&t.collection, &t.task_id, t.version, &Settle::Release(note))?
                    as u64;
        }
        if released == 0 && !matches!(selector, Selector::All) {
            bail!(
                "no held task in {} matched {}; nothing was released (see `anamo tasks list \
                 -c {} --state held`)",
                self.collection,
                super::named(&selector),
                self.collection
            );
        }
        println!(
            "{released} held task(s) of {} released to todo (by {who})",
            self.collection
        );
        Ok(())
    }
}

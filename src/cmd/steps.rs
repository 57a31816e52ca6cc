//! `anamo steps ...`: the workflow order of the steps.

use anyhow::Result;
use clap::{Args, Subcommand};

use crate::config::Context;

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Set the workflow order: `anamo steps set Alignment ReadProcessing VariantCalling`.
    Set(Set),
    /// Print the steps in order.
    List,
    /// Where a step's finished task leaves its output, for the `step-outputs` report:
    /// `anamo steps output Alignment 's3://bucket/crams/{sample}.cram'` ({sample}, {task_id},
    /// {collection} are filled per task; a task attr `output` overrides it).
    Output(Output),
}

#[derive(Debug, Args)]
pub struct Output {
    pub step: String,
    /// s3://BUCKET/KEY pattern.
    pub pattern: String,
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
                let known = cat.steps()?;
                let unknown: Vec<&str> = c
                    .steps
                    .iter()
                    .filter(|s| !known.contains(s))
                    .map(String::as_str)
                    .collect();
                // Setting the order before any task exists is fine; a name beside known
                // ones that matches none of them is most likely a typo.
                if !known.is_empty() && !unknown.is_empty() {
                    crate::note!(
                        "warning: no task of step(s) {} in the catalog yet (it knows {}); set \
                         anyway: check the spelling",
                        unknown.join(", "),
                        known.join(", ")
                    );
                }
                cat.set_steps(&c.steps)?;
                println!("steps: {}", c.steps.join(" -> "));
            }
            Cmd::Output(c) => {
                crate::aws::s3::S3Uri::parse(&c.pattern)?;
                crate::placeholders::check(
                    "the output pattern",
                    &c.pattern,
                    &["sample", "task_id", "collection"],
                )?;
                let mut cat = ctx.catalog()?;
                let known = cat.steps()?;
                if !known.is_empty() && !known.contains(&c.step) {
                    crate::note!(
                        "warning: the catalog knows no step '{}' (it knows {}); recorded anyway",
                        c.step,
                        known.join(", ")
                    );
                }
                cat.set_step_output(&c.step, &c.pattern)?;
                println!("{}: output expected at {}", c.step, c.pattern);
            }
            Cmd::List => {
                let conn = ctx.read_catalog()?;
                let steps = conn.step_order()?;
                for s in steps {
                    println!("{s}");
                }
            }
        }
        Ok(())
    }
}

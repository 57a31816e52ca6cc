//! `anamo reports`: the saved reports and their parameters.

use anyhow::Result;
use clap::Args;
use serde_json::json;

use crate::config::Context;
use crate::output::{Format, RowWriter};
use crate::query::saved::{self, Origin};

/// List saved reports: built-in ones and those in the user folder (--queries, ANAMO_QUERIES,
/// or ./queries), which override built-in ones of the same name.
#[derive(Debug, Args)]
pub struct Cmd {
    /// Output format.
    #[arg(long, short, value_enum)]
    pub format: Option<Format>,
}

impl Cmd {
    pub fn run(self, ctx: &Context) -> Result<()> {
        let reports = saved::all(ctx.user_queries().as_deref())?;
        let columns = ["name", "params", "description", "source"]
            .map(String::from)
            .to_vec();
        let mut out = RowWriter::new(
            Format::resolve(self.format),
            columns,
            std::io::stdout().lock(),
        )?;
        for r in reports {
            let params: Vec<String> = r
                .params
                .iter()
                .map(|p| {
                    let mut text = match &p.default {
                        Some(d) => format!("{}={d}", p.name),
                        None => p.name.clone(),
                    };
                    if let Some(choices) = &p.choices {
                        text.push_str(&format!(" ({})", choices.join("|")));
                    }
                    text
                })
                .collect();
            let source = match &r.origin {
                Origin::BuiltIn => "built-in".to_string(),
                Origin::File(p) => p.display().to_string(),
            };
            out.write_row(&[
                json!(r.name),
                json!(params.join(", ")),
                json!(r.description),
                json!(source),
            ])?;
        }
        out.finish()?;
        Ok(())
    }
}

//! `anamo qc import`: QC metrics into the catalog.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};

use crate::config::Context;

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Import QC metrics: long form (sample_id,metric,value) or wide form (sample_id and one
    /// column per metric). Values must be numbers; re-importing a source replaces its values.
    Import(Import),
}

#[derive(Debug, Args)]
pub struct Import {
    pub file: PathBuf,
    /// Where the values come from (default: the file name).
    #[arg(long)]
    pub source: Option<String>,
}

impl Cmd {
    pub fn run(self, ctx: &Context) -> Result<()> {
        let Cmd::Import(c) = self;
        let source = c.source.unwrap_or_else(|| {
            c.file
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default()
        });
        let mut cat = ctx.catalog()?;
        let r = cat.import_qc(&c.file, &source)?;
        println!("imported {} QC value(s) from {source}", r.rows);
        if r.unknown_samples > 0 {
            crate::note!(
                "note: {} row(s) name samples not in the catalog; import them with `anamo samples import`",
                r.unknown_samples
            );
        }
        Ok(())
    }
}

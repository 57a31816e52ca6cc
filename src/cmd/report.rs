//! `anamo report`: write the catalog's progress as one self-contained HTML page.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::config::{Context, FileConfig};
use crate::error::Error;
use crate::report::{self, Options};

/// Write where the cohort stands as one HTML file for people away from the terminal: steps
/// (stacked bars, % done, ETA), tasks done over time, run times, each sample's state per step
/// (the least advanced first), failures with their error tails, EC2 instances (hours, a 48-hour
/// timeline, idle ones) and the S3 files per kind with the samples missing one. Everything is inline (no network needed
/// to view it); it reads the catalog only: run `anamo sync` first, or pass --sync.
#[derive(Debug, Args)]
pub struct Cmd {
    /// Where to write the page.
    #[arg(long, short, default_value = "anamo-report.html")]
    pub output: PathBuf,
    /// The study's name in the header [default: `name` under `[study]` in anamo.toml, else
    /// the catalog's file name].
    #[arg(long)]
    pub title: Option<String>,
    /// Sync tasks from the store into the catalog first.
    #[arg(long)]
    pub sync: bool,
}

impl Cmd {
    pub fn run(self, ctx: &Context) -> Result<()> {
        if self.sync {
            crate::sync::Request::before_reading()
                .run(ctx, &mut |synced| crate::note!("{synced}"))?;
        }
        let study = FileConfig::load()?.study;
        let conn = ctx.read_catalog()?;
        let catalog = ctx.catalog_path.display().to_string();
        let options = Options::of_study(self.title, study, catalog);
        let page = report::render(&conn, &options)?;
        write_whole(&self.output, page.as_bytes())?;
        println!(
            "wrote {} ({} KiB)",
            self.output.display(),
            page.len().div_ceil(1024)
        );
        Ok(())
    }
}

/// Writes beside the target and renames over it: a reader never sees half a page.
fn write_whole(path: &std::path::Path, bytes: &[u8]) -> crate::error::Result<()> {
    let tmp = path.with_extension("html.partial");
    let failed = |source| Error::Write {
        path: path.to_path_buf(),
        source,
    };
    std::fs::write(&tmp, bytes).map_err(failed)?;
    std::fs::rename(&tmp, path).map_err(failed)
}

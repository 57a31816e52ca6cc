//! `anamo demo`: the first command to run.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::config::Context;
use crate::demo::Demo;
use crate::output::Format;
use crate::query::{self, saved};
use crate::status;

/// Run a small study end to end on the embedded store: a cohort with QC metrics, three steps,
/// workers for each step in order (one flaky task, one broken), a sync into the catalog, then
/// the status overview and two saved reports. Leaves its files in DIR to explore.
#[derive(Debug, Args)]
pub struct Cmd {
    /// Where to put the demo's store, catalog, inputs and logs.
    #[arg(long, default_value = "anamo-demo")]
    pub dir: PathBuf,
    /// Number of samples in the cohort (at least 2: the demo drops its last sample from the
    /// study).
    #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u64).range(2..=10_000))]
    pub samples: u64,
    /// Output format of the tables (default: table on a terminal, TSV in a pipe).
    #[arg(long, short, value_enum)]
    pub format: Option<Format>,
}

impl Cmd {
    pub fn run(self, _ctx: &Context) -> Result<()> {
        let demo = Demo::new(&self.dir, self.samples as usize);
        demo.run(|line| crate::note!("demo: {line}"))?;
        let conn = crate::catalog::CatalogRead::open(&demo.catalog)?;
        let format = Format::resolve(self.format);
        let mut out = std::io::stdout().lock();
        use std::io::Write;
        writeln!(out, "\n== anamo status")?;
        status::render(&conn.overview()?, format, &mut out)?;
        for (name, params) in [
            ("samples-left", vec![("step", "VariantCalling")]),
            ("failed-tasks", vec![]),
        ] {
            let report = saved::built_in(name)?;
            let given = params
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            let p = report.bind(given, &conn)?;
            let shown: Vec<String> = p
                .iter()
                .map(|(k, v)| format!(" -p {k}={v}"))
                .filter(|s| !s.ends_with('='))
                .collect();
            writeln!(out, "\n== anamo query {name}{}", shown.join(""))?;
            query::run(&conn, &report.sql, &p, format, &mut out)?;
        }
        let dir = demo.dir.display();
        // S009 is the one whose alignment needed a retry; a smaller cohort has no S009.
        let sample = format!("S{:03}", demo.samples.clamp(1, 9));
        writeln!(
            out,
            "\nThe demo's files are in {dir}/. Try:\n  cd {dir}\n  anamo status --sample {sample}\n  anamo query qc-outliers -p metric=mean_coverage -p min=20\n  anamo query qc-by-step\n  anamo query gate-holds\n  anamo query \"SELECT cohort, count(*) FROM samples GROUP BY cohort\"\n  anamo reports\nand open {dir}/anamo-report.html in a browser."
        )?;
        Ok(())
    }
}

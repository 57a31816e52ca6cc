//! `anamo query`: read-only SQL or a saved report against the catalog.

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use clap::Args;

use crate::cli::parse_param;
use crate::config::Context;
use crate::output::Format;
use crate::query::{self, saved};

/// Ask the catalog a question: `anamo query "SELECT ..."` or `anamo query REPORT --param k=v`.
///
/// One read-only statement (SELECT, WITH, EXPLAIN); the catalog is opened read-only.
/// Parameters are bound, never pasted into the SQL: write :name in the SQL and pass
/// --param name=value. Saved reports: `anamo reports`.
#[derive(Debug, Args)]
pub struct Cmd {
    /// SQL, or the name of a saved report.
    pub query: String,
    /// Parameter NAME=VALUE (repeatable).
    #[arg(long = "param", short = 'p', value_parser = parse_param)]
    pub params: Vec<(String, String)>,
    /// Output format (default: table on a terminal, TSV in a pipe).
    #[arg(long, short, value_enum)]
    pub format: Option<Format>,
}

impl Cmd {
    pub fn run(self, ctx: &Context) -> Result<()> {
        let given: BTreeMap<String, String> = self.params.into_iter().collect();
        let user = ctx.user_queries();
        let saved = if looks_like_sql(&self.query) {
            None
        } else {
            saved::find(&self.query, user.as_deref())?
        };
        let conn = ctx.read_catalog()?;
        let (sql, params) = match &saved {
            Some(saved) => (saved.sql.clone(), saved.bind(given, &conn)?),
            // A lone word that is SQL (VACUUM, ANALYZE) goes to the guard, which says why not.
            None if looks_like_sql(&self.query) || query::guard::parses(&self.query) => {
                (self.query, given)
            }
            None => bail!(
                "no saved report named '{}'; see `anamo reports`",
                self.query
            ),
        };
        let checked = saved.as_ref();
        let out = std::io::stdout().lock();
        let rows = query::run(&conn, &sql, &params, Format::resolve(self.format), out)?;
        // A report over the sample sheet answers nothing until there is one: say so, or its
        // empty table reads as "no sample left".
        if let Some(report) = &checked
            && rows == 0
            && report.sql.contains("FROM samples")
            && !conn.has_samples()?
        {
            crate::note!(
                "the catalog has no samples yet: import the sample sheet with `anamo samples \
                 import FILE`; until then {} lists none",
                report.name
            );
        }
        // A report over the sheet leaves out samples with tasks that are not in it: say so.
        if let Some(report) = &checked
            && report.sql.contains("FROM samples")
            && report.name != "samples-not-imported"
            && let Some(note) = crate::status::not_imported_note(conn.samples_not_imported()?)
        {
            crate::note!("{note}");
        }
        Ok(())
    }
}

/// Report names are single words; anything with a space or a statement keyword is SQL.
fn looks_like_sql(q: &str) -> bool {
    q.trim().contains(char::is_whitespace) || q.contains(';')
}

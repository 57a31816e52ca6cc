//! `anamo query`: read-only SQL or a saved report against the catalog.

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use clap::Args;

use crate::catalog::Catalog;
use crate::cmd::parse_param;
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
        let mut params: BTreeMap<String, String> = self.params.into_iter().collect();
        let user = ctx.user_queries();
        let report = if looks_like_sql(&self.query) {
            None
        } else {
            saved::find(&self.query, user.as_deref())?
        };
        let sql = match report {
            Some(report) => {
                for p in &report.params {
                    if let Some(d) = &p.default {
                        params.entry(p.name.clone()).or_insert_with(|| d.clone());
                    }
                    if let Some(v) = params.get(&p.name) {
                        p.check(&report.name, v).map_err(anyhow::Error::msg)?;
                    }
                }
                report.sql
            }
            // A lone word that is SQL (VACUUM, ANALYZE) goes to the guard, which says why not.
            None if looks_like_sql(&self.query) || query::guard::parses(&self.query) => self.query,
            None => bail!(
                "no saved report named '{}'; see `anamo reports`",
                self.query
            ),
        };
        let conn = Catalog::read_only(&ctx.catalog_path)?;
        let out = std::io::stdout().lock();
        query::run(&conn, &sql, &params, Format::resolve(self.format), out)?;
        Ok(())
    }
}

/// Report names are single words; anything with a space or a statement keyword is SQL.
fn looks_like_sql(q: &str) -> bool {
    q.trim().contains(char::is_whitespace) || q.contains(';')
}

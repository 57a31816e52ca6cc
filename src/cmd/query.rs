//! `anamo query`: read-only SQL or a saved report against the catalog.

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use clap::Args;

use crate::catalog::Catalog;
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
        let mut params: BTreeMap<String, String> = self.params.into_iter().collect();
        let user = ctx.user_queries();
        let report = if looks_like_sql(&self.query) {
            None
        } else {
            saved::find(&self.query, user.as_deref())?
        };
        let mut checked = None;
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
                let sql = report.sql.clone();
                checked = Some(report);
                sql
            }
            // A lone word that is SQL (VACUUM, ANALYZE) goes to the guard, which says why not.
            None if looks_like_sql(&self.query) || query::guard::parses(&self.query) => self.query,
            None => bail!(
                "no saved report named '{}'; see `anamo reports`",
                self.query
            ),
        };
        let conn = Catalog::read_only(&ctx.catalog_path)?;
        if let Some(report) = &checked {
            check_kinds(&conn, report, &params)?;
        }
        let out = std::io::stdout().lock();
        let rows = query::run(&conn, &sql, &params, Format::resolve(self.format), out)?;
        // A report over the sample sheet answers nothing until there is one: say so, or its
        // empty table reads as "no sample left".
        if let Some(report) = &checked
            && rows == 0
            && report.sql.contains("FROM samples")
            && !crate::catalog::has_samples(&conn)?
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
            && let Some(note) = crate::status::not_imported_note(
                crate::catalog::progress::samples_not_imported(&conn)?,
            )
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

/// Refuses a parameter value the catalog does not know for its kind, naming what it knows.
fn check_kinds(
    conn: &rusqlite::Connection,
    report: &saved::Report,
    params: &BTreeMap<String, String>,
) -> Result<()> {
    for p in &report.params {
        let (Some(kind), Some(value)) = (p.kind, params.get(&p.name)) else {
            continue;
        };
        // An empty value is the "all" default (step=, sample=).
        if value.is_empty() {
            continue;
        }
        let known = |list: Vec<String>, what: &str| -> Result<()> {
            if list.iter().any(|v| v == value) {
                return Ok(());
            }
            let shown: Vec<&str> = list.iter().take(20).map(String::as_str).collect();
            let more = if list.len() > 20 { ", ..." } else { "" };
            bail!(
                "report {}: no {what} '{value}' in the catalog; it knows {}{more}",
                report.name,
                if shown.is_empty() {
                    "none yet".to_string()
                } else {
                    shown.join(", ")
                }
            )
        };
        match kind {
            saved::Kind::Integer => {
                if value.trim().parse::<i64>().is_err() {
                    bail!(
                        "report {}: {}='{value}' is not a whole number",
                        report.name,
                        p.name
                    );
                }
            }
            saved::Kind::Number => {
                if value.trim().parse::<f64>().is_err() {
                    bail!(
                        "report {}: {}='{value}' is not a number",
                        report.name,
                        p.name
                    );
                }
            }
            saved::Kind::Step => known(crate::catalog::steps_in(conn)?, "step")?,
            saved::Kind::Metric => known(crate::catalog::metrics_in(conn)?, "metric")?,
            saved::Kind::Sample => {
                if !crate::catalog::sample_known(conn, value)? {
                    bail!("report {}: no sample '{value}' in the catalog", report.name);
                }
            }
        }
    }
    Ok(())
}

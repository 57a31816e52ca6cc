//! Questions in SQL: read-only queries against the catalog, named parameters bound (never
//! pasted into the SQL), rows streamed to any output format.

pub mod guard;
pub mod saved;

use std::collections::BTreeMap;
use std::io::Write;

use rusqlite::Connection;
use rusqlite::types::ValueRef;
use serde_json::{Value, json};

use crate::catalog::CatalogRead;
use crate::error::{Error, Result};
use crate::output::{Format, RowWriter};

/// Runs one read-only query and writes its rows. Returns the number of rows.
pub fn run(
    catalog: &CatalogRead,
    sql: &str,
    params: &BTreeMap<String, String>,
    format: Format,
    out: impl Write,
) -> Result<u64> {
    catalog.read(|conn| write_rows(conn, sql, params, format, out))
}

fn write_rows(
    conn: &Connection,
    sql: &str,
    params: &BTreeMap<String, String>,
    format: Format,
    out: impl Write,
) -> Result<u64> {
    let mut stmt = bound(conn, sql, params)?;
    let columns: Vec<String> = stmt.column_names().map(str::to_string).collect();
    let width = columns.len();
    let mut rows = stmt.raw_query();
    // The first row is computed before the header is written: a query that fails at once
    // (bad JSON, a division by zero in a strict function) prints its error alone.
    let mut next = rows.next().map_err(|e| sql_error(e, sql))?;
    let mut writer = RowWriter::new(format, columns, out)?;
    let mut row_values = Vec::with_capacity(width);
    while let Some(row) = next {
        row_values.clear();
        for i in 0..width {
            row_values.push(cell(row.get_ref(i)?));
        }
        writer.write_row(&row_values)?;
        next = rows.next().map_err(|e| sql_error(e, sql))?;
    }
    Ok(writer.finish()?)
}

/// A query's first rows, for a page that shows them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Table {
    pub columns: Vec<String>,
    /// At most the limit asked for.
    pub rows: Vec<Vec<Value>>,
    /// Every row the query gives.
    pub total: u64,
}

/// Runs one read-only query as [`run`] does and keeps its first `limit` rows (the rest are
/// counted, not kept).
pub fn table(
    catalog: &CatalogRead,
    sql: &str,
    params: &BTreeMap<String, String>,
    limit: usize,
) -> Result<Table> {
    catalog.read(|conn| {
        let mut stmt = bound(conn, sql, params)?;
        let columns: Vec<String> = stmt.column_names().map(str::to_string).collect();
        let mut table = Table {
            columns,
            ..Table::default()
        };
        let mut rows = stmt.raw_query();
        while let Some(row) = rows.next().map_err(|e| sql_error(e, sql))? {
            if table.rows.len() < limit {
                table.rows.push(
                    (0..table.columns.len())
                        .map(|i| row.get_ref(i).map(cell))
                        .collect::<rusqlite::Result<_>>()?,
                );
            }
            table.total += 1;
        }
        Ok(table)
    })
}

/// The statement, checked by the guard, with every named parameter bound from `params`; one
/// missing or left over is refused, naming it.
fn bound<'c>(
    conn: &'c Connection,
    sql: &str,
    params: &BTreeMap<String, String>,
) -> Result<rusqlite::Statement<'c>> {
    guard::check(sql).map_err(Error::Invalid)?;
    let mut stmt = conn.prepare(sql).map_err(|e| sql_error(e, sql))?;
    let mut wanted = vec![];
    for i in 1..=stmt.parameter_count() {
        let Some(name) = stmt.parameter_name(i).map(|n| n[1..].to_string()) else {
            return Err(Error::Invalid(
                "use named parameters (:name) with --param name=value, not '?'".into(),
            ));
        };
        let value = params.get(&name).ok_or_else(|| {
            // A misspelt name (`-p stp=X`) is the likely cause: say which given one is wrong.
            let taken: Vec<String> = (1..=stmt.parameter_count())
                .filter_map(|j| stmt.parameter_name(j).map(|n| n[1..].to_string()))
                .collect();
            let strays: Vec<&str> = params
                .keys()
                .filter(|k| !taken.contains(k))
                .map(String::as_str)
                .collect();
            let hint = if strays.is_empty() {
                String::new()
            } else {
                format!(" ('{}' is not one it takes)", strays.join("', '"))
            };
            Error::Invalid(format!("the query needs --param {name}=VALUE{hint}"))
        })?;
        stmt.raw_bind_parameter(i, value)?;
        wanted.push(name);
    }
    if let Some(extra) = params.keys().find(|k| !wanted.contains(k)) {
        let takes = if wanted.is_empty() {
            "no parameters".to_string()
        } else {
            wanted.join(", ")
        };
        return Err(Error::Invalid(format!(
            "unknown parameter '{extra}'; this query takes {takes}"
        )));
    }
    Ok(stmt)
}

fn cell(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => json!(i),
        ValueRef::Real(f) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
        ValueRef::Text(t) => Value::String(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::String(format!("<{} bytes>", b.len())),
    }
}

/// SQLite's message, with the line and column of the offending token when SQLite gives one.
fn sql_error(e: rusqlite::Error, sql: &str) -> Error {
    match &e {
        rusqlite::Error::SqlInputError { msg, offset, .. } if *offset >= 0 => {
            let before = sql.get(..*offset as usize).unwrap_or(sql);
            let line = crate::error::line_at(sql, before.len());
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            Error::Invalid(format!("SQL error at line {line}, column {column}: {msg}"))
        }
        rusqlite::Error::SqliteFailure(_, Some(msg)) => match name_position(msg, sql) {
            // SQLite gives no offset for an unknown table or function: find the name.
            Some((line, column)) => {
                Error::Invalid(format!("SQL error at line {line}, column {column}: {msg}"))
            }
            None => Error::Invalid(format!("SQL error: {msg}")),
        },
        _ => Error::Sqlite(e),
    }
}

/// Where the name in "no such table: X" (or function) first stands in `sql`, as a whole word.
fn name_position(msg: &str, sql: &str) -> Option<(u64, usize)> {
    let name = ["no such table: ", "no such function: "]
        .iter()
        .find_map(|p| msg.strip_prefix(p))?;
    let name = name.rsplit('.').next()?.to_ascii_lowercase();
    let lower = sql.to_ascii_lowercase();
    let word = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    let offset = lower.match_indices(&name).map(|(i, _)| i).find(|&i| {
        !word(lower[..i].chars().next_back()) && !word(lower[i + name.len()..].chars().next())
    })?;
    let before = &sql[..offset];
    let line = crate::error::line_at(sql, offset);
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    Some((line, column))
}

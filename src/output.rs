//! Rows out: a table for people, CSV/TSV/JSON/JSONL/Markdown for programs. Every format but
//! the table streams row by row, so large results never sit in memory.

use std::io::{IsTerminal, Write};

use comfy_table::{ColumnConstraint, ContentArrangement, Table, presets};
use serde_json::Value;

/// Set by `-q`: notes on stderr are silenced, errors still print.
static QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, std::sync::atomic::Ordering::Relaxed);
}

pub fn quiet() -> bool {
    QUIET.load(std::sync::atomic::Ordering::Relaxed)
}

/// A note for the person at the terminal (a cap, a skip, a warning), on stderr; `-q` silences
/// it. Errors do not go through here.
#[macro_export]
macro_rules! note {
    ($($arg:tt)*) => {
        if !$crate::output::quiet() {
            eprintln!($($arg)*);
        }
    };
}

/// Columns a person can do without on a narrow screen, the first left out first; then any
/// other from the right. The first column (what a row is: a step, a task) always stays.
const SPARE_COLUMNS: &[&str] = &[
    "log_uri",
    "exit_code",
    "waits_for",
    "unpriced_instances",
    "instances",
    "owner",
    "started",
    "started_at",
    "done_24h",
    "total",
    "attempts",
    "cost",
    "finished_at",
    "finished",
    "set apart",
    "seconds",
    "running",
    "done",
    "waiting",
    "held",
];

/// Free text wider than this wraps in a narrow table; narrower cells (names, numbers, times)
/// never do: a step name broken over two lines reads as two steps.
const WRAP_OVER: usize = 28;
/// The narrowest a wrapped free-text column is made.
const WRAP_MIN: usize = 15;

/// Lays `table` out for the terminal's width (or `COLUMNS`): names and numbers are never
/// wrapped, long free text wraps, and when even that cannot fit, spare columns are hidden.
/// Returns the names of the columns hidden.
fn fit(table: &mut Table, names: &[String]) -> Vec<String> {
    if let Some(w) = std::env::var("COLUMNS")
        .ok()
        .and_then(|v| v.parse::<u16>().ok())
    {
        table.set_width(w);
    }
    // A terminal that reports no width (a pseudo-terminal nobody sized) is not zero columns
    // wide: it is taken for the usual 80.
    if table.width() == Some(0) {
        table.set_width(80);
    }
    let Some(width) = table.width() else {
        return vec![];
    };
    let content = table.column_max_content_widths();
    let wraps = |i: usize| content.get(i).copied().unwrap_or(0) as usize > WRAP_OVER;
    // A column costs its content and one space each side, plus its border; free text wraps
    // down to WRAP_MIN.
    let cost = |i: usize| {
        if wraps(i) {
            WRAP_MIN + 3
        } else {
            content.get(i).copied().unwrap_or(0) as usize + 3
        }
    };
    let mut shown: Vec<usize> = (0..content.len()).collect();
    let mut spare: Vec<usize> = SPARE_COLUMNS
        .iter()
        .filter_map(|s| names.iter().position(|n| n == s))
        .filter(|&i| i > 0)
        .collect();
    // Then names and numbers from the right; free text (an error tail: the why) goes last.
    spare.extend((1..content.len()).rev().filter(|&i| !wraps(i)));
    spare.extend((1..content.len()).rev().filter(|&i| wraps(i)));
    let mut hidden = vec![];
    for candidate in spare {
        let need: usize = 1 + shown.iter().map(|&i| cost(i)).sum::<usize>();
        if need <= width as usize {
            break;
        }
        if let Some(at) = shown.iter().position(|&i| i == candidate) {
            shown.remove(at);
            hidden.push(candidate);
        }
    }
    for (i, w) in content.iter().enumerate() {
        let Some(column) = table.column_mut(i) else {
            continue;
        };
        if hidden.contains(&i) {
            column.set_constraint(ColumnConstraint::Hidden);
        } else if (*w as usize) <= WRAP_OVER {
            column.set_constraint(ColumnConstraint::ContentWidth);
        }
    }
    hidden.sort();
    hidden
        .into_iter()
        .filter_map(|i| names.get(i).cloned())
        .collect()
}

/// `names` with every repeat renamed `NAME_2`, `NAME_3`, ... (skipping names already taken).
fn distinct_names(names: Vec<String>) -> Vec<String> {
    let mut taken: std::collections::HashSet<String> = names.iter().cloned().collect();
    let mut seen = std::collections::HashSet::new();
    names
        .into_iter()
        .map(|name| {
            if seen.insert(name.clone()) {
                return name;
            }
            let renamed = (2..)
                .map(|n| format!("{name}_{n}"))
                .find(|c| !taken.contains(c))
                .unwrap_or_default();
            taken.insert(renamed.clone());
            seen.insert(renamed.clone());
            renamed
        })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Tsv,
    Json,
    Jsonl,
    Markdown,
}

impl Format {
    /// The format asked for, or a table on a terminal and TSV in a pipe.
    pub fn resolve(asked: Option<Format>) -> Format {
        asked.unwrap_or_else(|| {
            if std::io::stdout().is_terminal() {
                Format::Table
            } else {
                Format::Tsv
            }
        })
    }
}

/// Rows a table shows at most.
pub const TABLE_ROWS: u64 = 1_000;

/// Where rows go: the CSV writer owns the output for CSV/TSV, everything else writes to it.
enum Sink<W: Write> {
    Delimited(csv::Writer<W>),
    Table(Table, W),
    Text(W),
}

/// Writes rows of JSON values under named columns.
pub struct RowWriter<W: Write> {
    format: Format,
    columns: Vec<String>,
    sink: Sink<W>,
    rows: u64,
}

impl<W: Write> RowWriter<W> {
    pub fn new(format: Format, columns: Vec<String>, mut out: W) -> std::io::Result<Self> {
        // A JSON object keeps one value per key: a column named twice (`SELECT 1 AS a, 2 AS
        // a`) would lose one, so the later ones are renamed `a_2`, `a_3`.
        let columns = if matches!(format, Format::Json | Format::Jsonl) {
            distinct_names(columns)
        } else {
            columns
        };
        let sink = match format {
            Format::Csv => {
                let mut w = csv::Writer::from_writer(out);
                w.write_record(&columns)?;
                Sink::Delimited(w)
            }
            Format::Tsv => {
                let header: Vec<String> = columns.iter().map(|c| tsv_cell(c)).collect();
                writeln!(out, "{}", header.join("\t"))?;
                Sink::Text(out)
            }
            Format::Table => {
                let mut t = Table::new();
                t.load_style(presets::UTF8_FULL_CONDENSED)
                    .set_content_arrangement(ContentArrangement::Dynamic)
                    .set_header(&columns);
                Sink::Table(t, out)
            }
            Format::Markdown => {
                writeln!(out, "| {} |", columns.join(" | "))?;
                writeln!(out, "|{}", "---|".repeat(columns.len()))?;
                Sink::Text(out)
            }
            Format::Json => {
                write!(out, "[")?;
                Sink::Text(out)
            }
            Format::Jsonl => Sink::Text(out),
        };
        Ok(Self {
            format,
            columns,
            sink,
            rows: 0,
        })
    }

    pub fn write_row(&mut self, row: &[Value]) -> std::io::Result<()> {
        match &mut self.sink {
            Sink::Delimited(w) => w.write_record(row.iter().map(plain))?,
            // A table is laid out whole before it is printed: past a screenful of screens it
            // only costs memory and time, so it stops growing and says so at the end.
            Sink::Table(t, _) if self.rows < TABLE_ROWS => {
                t.add_row(row.iter().map(plain));
            }
            Sink::Table(..) => {}
            Sink::Text(out) => match self.format {
                Format::Tsv => {
                    let cells: Vec<String> = row.iter().map(|v| tsv_cell(&plain(v))).collect();
                    writeln!(out, "{}", cells.join("\t"))?;
                }
                Format::Markdown => {
                    // A newline would end the table row: HTML's line break keeps it one row.
                    let cells: Vec<String> = row
                        .iter()
                        .map(|v| {
                            plain(v)
                                .replace('|', "\\|")
                                .replace("\r\n", "<br>")
                                .replace('\n', "<br>")
                        })
                        .collect();
                    writeln!(out, "| {} |", cells.join(" | "))?;
                }
                _ => {
                    // Keys in column order (a map would sort them), written as they come.
                    let mut text = String::from("{");
                    for (i, (name, value)) in self.columns.iter().zip(row).enumerate() {
                        if i > 0 {
                            text.push(',');
                        }
                        text.push_str(&serde_json::to_string(name)?);
                        text.push(':');
                        text.push_str(&serde_json::to_string(value)?);
                    }
                    text.push('}');
                    if self.format == Format::Json {
                        let sep = if self.rows == 0 { "\n" } else { ",\n" };
                        write!(out, "{sep}{text}")?;
                    } else {
                        writeln!(out, "{text}")?;
                    }
                }
            },
        }
        self.rows += 1;
        Ok(())
    }

    /// Flushes what is buffered; returns how many rows were written.
    pub fn finish(self) -> std::io::Result<u64> {
        match self.sink {
            Sink::Delimited(mut w) => w.flush()?,
            Sink::Table(mut t, mut out) => {
                let left_out = fit(&mut t, &self.columns);
                writeln!(out, "{t}")?;
                out.flush()?;
                if !left_out.is_empty() {
                    crate::note!(
                        "left out {} to fit {} columns; a wider terminal or --format tsv shows \
                         every column",
                        left_out.join(", "),
                        t.width().unwrap_or(0)
                    );
                }
                if self.rows > TABLE_ROWS {
                    crate::note!(
                        "showed the first {TABLE_ROWS} of {} rows as a table; use --format tsv, \
                         csv, json or jsonl for all of them (they stream)",
                        self.rows
                    );
                }
            }
            Sink::Text(mut out) => {
                if self.format == Format::Json {
                    writeln!(out, "{}]", if self.rows == 0 { "" } else { "\n" })?;
                }
                out.flush()?;
            }
        }
        Ok(self.rows)
    }
}

/// TSV has no quoting: tabs, newlines and backslashes are escaped so every row stays one line.
fn tsv_cell(s: &str) -> String {
    if !s.contains(['\\', '\t', '\n', '\r']) {
        return s.to_string();
    }
    s.replace('\\', "\\\\")
        .replace('\t', "\\t")
        .replace('\n', "\\n")
        .replace('\r', "\\r")
}

/// A value as a cell: strings bare, null empty, the rest as JSON.
pub fn plain(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_keys_named_twice_are_renamed_not_lost() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            distinct_names(names(&["a", "a", "a_2", "a"])),
            names(&["a", "a_3", "a_2", "a_4"])
        );
        let mut buf = vec![];
        let mut w = RowWriter::new(Format::Json, names(&["a", "a"]), &mut buf).unwrap();
        w.write_row(&[json!(1), json!(2)]).unwrap();
        w.finish().unwrap();
        assert!(
            String::from_utf8(buf)
                .unwrap()
                .contains(r#"{"a":1,"a_2":2}"#)
        );
    }

    fn render(format: Format) -> String {
        let mut buf = vec![];
        let mut w = RowWriter::new(format, vec!["a".into(), "b".into()], &mut buf).unwrap();
        w.write_row(&[json!("x,y"), json!(null)]).unwrap();
        w.write_row(&[json!(2), json!("z")]).unwrap();
        assert_eq!(w.finish().unwrap(), 2);
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn formats() {
        assert_eq!(render(Format::Csv), "a,b\n\"x,y\",\n2,z\n");
        assert_eq!(render(Format::Tsv), "a\tb\nx,y\t\n2\tz\n");
        assert_eq!(tsv_cell("a\tb\nc\\d"), "a\\tb\\nc\\\\d");
        assert_eq!(
            render(Format::Jsonl),
            "{\"a\":\"x,y\",\"b\":null}\n{\"a\":2,\"b\":\"z\"}\n"
        );
        let json: Value = serde_json::from_str(&render(Format::Json)).unwrap();
        assert_eq!(json[1]["b"], "z");
        assert!(render(Format::Markdown).starts_with("| a | b |\n|---|---|\n"));
    }
}

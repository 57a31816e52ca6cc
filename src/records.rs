//! Named-field records from CSV/TSV (with a header) or JSON Lines, for the catalog's imports
//! (samples, QC metrics). Every record carries its line number for error messages.

use std::path::Path;

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// One record: its line and its fields in column order.
pub struct Record {
    pub line: u64,
    pub fields: Vec<(String, Value)>,
}

/// Reads every record of a CSV, TSV or JSONL file (by extension, else by the first line).
pub fn read(path: &Path) -> Result<(Vec<String>, Vec<Record>)> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let name = path.display().to_string();
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    match ext.as_deref() {
        Some("jsonl" | "ndjson" | "json") => read_jsonl(&name, &text),
        Some("csv") => read_table(&name, &text, b','),
        Some("tsv" | "tab") => read_table(&name, &text, b'\t'),
        _ if first.trim_start().starts_with('{') => read_jsonl(&name, &text),
        _ if first.contains('\t') => read_table(&name, &text, b'\t'),
        _ => read_table(&name, &text, b','),
    }
}

fn read_table(file: &str, text: &str, delimiter: u8) -> Result<(Vec<String>, Vec<Record>)> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .comment(Some(b'#'))
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| csv_error(file, &e))?
        .iter()
        .map(str::to_string)
        .collect();
    let mut records = vec![];
    for row in reader.records() {
        let row = row.map_err(|e| csv_error(file, &e))?;
        let line = row.position().map_or(0, |p| p.line());
        let fields = headers
            .iter()
            .zip(row.iter())
            .map(|(h, v)| (h.clone(), Value::String(v.to_string())))
            .collect();
        records.push(Record { line, fields });
    }
    Ok((headers, records))
}

fn read_jsonl(file: &str, text: &str) -> Result<(Vec<String>, Vec<Record>)> {
    let mut headers: Vec<String> = vec![];
    let mut records = vec![];
    for (i, raw) in text.lines().enumerate() {
        let line = i as u64 + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let object: Map<String, Value> = match serde_json::from_str(raw) {
            Ok(Value::Object(m)) => m,
            Ok(_) => {
                return Err(Error::input(
                    file,
                    line,
                    "expected a JSON object on this line",
                ));
            }
            Err(e) => return Err(Error::input(file, line, format!("invalid JSON: {e}"))),
        };
        for k in object.keys() {
            if !headers.contains(k) {
                headers.push(k.clone());
            }
        }
        records.push(Record {
            line,
            fields: object.into_iter().collect(),
        });
    }
    Ok((headers, records))
}

pub fn csv_error(file: &str, e: &csv::Error) -> Error {
    let line = e.position().map_or(0, |p| p.line());
    let message = match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!(
            "this row has {len} fields but the header has {expected_len}; quote values that contain the delimiter"
        ),
        csv::ErrorKind::Utf8 { .. } => "not valid UTF-8 text".to_string(),
        _ => e.to_string(),
    };
    Error::input(file, line, message)
}

/// A field as text: strings as they are, numbers and booleans printed, null and "" absent.
pub fn text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) if s.is_empty() => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

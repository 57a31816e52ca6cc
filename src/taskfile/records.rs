//! The one reader of record files, for task files and the catalog's imports (samples, QC
//! metrics) alike: CSV/TSV with a header, JSON Lines, or one JSON array of objects. It picks the
//! layout (extension, else the first meaningful line) and yields named fields with the line
//! they came from; what the fields mean is the caller's business, never this module's.

use std::path::Path;

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::error::{Error, Result, line_at};

/// One record: its line and its fields (in column order; JSON keys sorted).
#[derive(Debug)]
pub struct Record {
    pub line: u64,
    pub fields: Vec<(String, Value)>,
}

/// How a file lays its records out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Csv,
    Tsv,
    /// JSON Lines, or one array of objects when the text starts with `[`.
    Json,
}

/// Whether CSV/TSV values lose their surrounding spaces (imports) or keep them (task files,
/// where a blank script must be told from a missing one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spaces {
    Trim,
    Keep,
}

/// Reads every record of a CSV, TSV or JSON file, values trimmed; the headers are the columns,
/// or every JSON key in the order first seen.
pub fn read(path: &Path) -> Result<(Vec<String>, Vec<Record>)> {
    let text = load(path)?;
    let name = path.display().to_string();
    match layout(path, &text) {
        Layout::Csv => table(&name, &text, b',', Spaces::Trim)?.collect_all(),
        Layout::Tsv => table(&name, &text, b'\t', Spaces::Trim)?.collect_all(),
        Layout::Json => {
            let records = json(&name, &text)?;
            let mut headers: Vec<String> = vec![];
            for (k, _) in records.iter().flat_map(|r| &r.fields) {
                if !headers.contains(k) {
                    headers.push(k.clone());
                }
            }
            Ok((headers, records))
        }
    }
}

/// The whole text of a file, or an error naming it.
pub fn load(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// The layout: `.csv`, `.tsv`/`.tab` and `.json`/`.jsonl`/`.ndjson` say it; otherwise the first
/// meaningful line does (`[` or `{` is JSON, a tab is TSV, anything else CSV).
pub fn layout(path: &Path, text: &str) -> Layout {
    by_extension(path).unwrap_or_else(|| by_content(first_line(text)))
}

/// The layout a file's extension names, if it names one.
pub fn by_extension(path: &Path) -> Option<Layout> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    match ext.as_str() {
        "csv" => Some(Layout::Csv),
        "tsv" | "tab" => Some(Layout::Tsv),
        "json" | "jsonl" | "ndjson" => Some(Layout::Json),
        _ => None,
    }
}

/// The layout a file's first meaningful line suggests.
pub fn by_content(first: &str) -> Layout {
    if first.starts_with(['[', '{']) {
        Layout::Json
    } else if first.contains('\t') {
        Layout::Tsv
    } else {
        Layout::Csv
    }
}

/// The first line that is neither blank nor a `#` comment, trimmed.
pub fn first_line(text: &str) -> &str {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .unwrap_or("")
}

/// A CSV/TSV file read row by row: the header first, then one record per row. `#` lines are
/// comments.
pub struct Table<'a> {
    file: &'a str,
    headers: Vec<String>,
    rows: csv::StringRecordsIntoIter<&'a [u8]>,
}

/// Opens `text` as a table with this delimiter, reading its header row.
pub fn table<'a>(file: &'a str, text: &'a str, delimiter: u8, spaces: Spaces) -> Result<Table<'a>> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .comment(Some(b'#'))
        .trim(match spaces {
            Spaces::Trim => csv::Trim::All,
            Spaces::Keep => csv::Trim::Headers,
        })
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| csv_error(file, &e))?
        .iter()
        .map(str::to_string)
        .collect();
    Ok(Table {
        file,
        headers,
        rows: reader.into_records(),
    })
}

impl Table<'_> {
    pub fn headers(&self) -> &[String] {
        &self.headers
    }

    fn collect_all(self) -> Result<(Vec<String>, Vec<Record>)> {
        let headers = self.headers.clone();
        Ok((headers, self.collect::<Result<_>>()?))
    }
}

impl Iterator for Table<'_> {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Result<Record>> {
        let row = match self.rows.next()? {
            Ok(row) => row,
            Err(e) => return Some(Err(csv_error(self.file, &e))),
        };
        let line = row.position().map_or(0, |p| p.line());
        let fields = self
            .headers
            .iter()
            .zip(row.iter())
            .map(|(h, v)| (h.clone(), Value::String(v.to_string())))
            .collect();
        Some(Ok(Record { line, fields }))
    }
}

/// JSON records: one array of objects when the text starts with `[`, else one object per line
/// (blank and `#` lines skipped, a trailing comma allowed, as in a hand-cut array).
pub fn json(file: &str, text: &str) -> Result<Vec<Record>> {
    let mut records = vec![];
    if text.trim_start().starts_with('[') {
        let items: Vec<&RawValue> = serde_json::from_str(text)
            .map_err(|e| Error::input(file, e.line() as u64, format!("invalid JSON: {e}")))?;
        for item in items {
            // The item is a slice of `text`: its offset gives its line.
            let offset = (item.get().as_ptr() as usize).saturating_sub(text.as_ptr() as usize);
            let line = line_at(text, offset);
            let object = parse_object(item.get()).map_err(|m| Error::input(file, line, m))?;
            records.push(Record {
                line,
                fields: object.into_iter().collect(),
            });
        }
    } else {
        for (i, raw) in text.lines().enumerate() {
            let line = i as u64 + 1;
            let raw = raw.trim().trim_end_matches(',');
            if raw.is_empty() || raw.starts_with('#') {
                continue;
            }
            let object = parse_object(raw).map_err(|m| Error::input(file, line, m))?;
            records.push(Record {
                line,
                fields: object.into_iter().collect(),
            });
        }
    }
    Ok(records)
}

fn parse_object(raw: &str) -> Result<Map<String, Value>, String> {
    match serde_json::from_str::<Value>(raw) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err("expected a JSON object on this line".into()),
        Err(e) => Err(format!("invalid JSON: {e}")),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_by_extension_then_first_line() {
        let p = Path::new;
        assert_eq!(layout(p("a.csv"), "x\ty"), Layout::Csv);
        assert_eq!(layout(p("a.TSV"), "x,y"), Layout::Tsv);
        assert_eq!(layout(p("a.tab"), ""), Layout::Tsv);
        for ext in ["json", "jsonl", "ndjson"] {
            assert_eq!(layout(p(&format!("a.{ext}")), "x,y"), Layout::Json, "{ext}");
        }
        assert_eq!(layout(p("a.txt"), "# note\n\nid\tx"), Layout::Tsv);
        assert_eq!(layout(p("a.txt"), "id,x"), Layout::Csv);
        assert_eq!(layout(p("a"), "\n {\"id\":1}"), Layout::Json);
        assert_eq!(layout(p("a"), "[{\"id\":1}]"), Layout::Json);
    }

    #[test]
    fn json_lines_and_arrays_give_the_same_records() {
        let lines =
            "# two samples\n{\"sample_id\":\"S1\",\"depth\":30}\n\n{\"sample_id\":\"S2\"},\n";
        let array = "[\n{\"sample_id\":\"S1\",\"depth\":30},\n{\"sample_id\":\"S2\"}\n]";
        for (text, lines_of) in [(lines, [2, 4]), (array, [2, 3])] {
            let got: Vec<_> = json("s.json", text)
                .unwrap()
                .iter()
                .map(|r| (r.line, text_of(r, "sample_id"), r.fields.len()))
                .collect();
            let want = [
                (lines_of[0], "S1".to_string(), 2),
                (lines_of[1], "S2".to_string(), 1),
            ];
            assert_eq!(got, want, "{text}");
        }
    }

    fn text_of(r: &Record, name: &str) -> String {
        r.fields
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| text(v))
            .unwrap_or_default()
    }

    #[test]
    fn a_bad_line_names_file_and_line() {
        let err = json("s.jsonl", "{\"a\":1}\n{\"a\": \n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("s.jsonl:2: invalid JSON"), "{err}");
        let err = json("s.json", "[{\"a\":1},\n 7]").unwrap_err().to_string();
        assert!(err.starts_with("s.json:2: expected a JSON object"), "{err}");
        let err = table("s.csv", "a,b\n1,2\n3\n", b',', Spaces::Trim)
            .unwrap()
            .collect::<Result<Vec<_>>>()
            .err()
            .unwrap()
            .to_string();
        assert!(err.starts_with("s.csv:3: this row has 1 fields"), "{err}");
    }

    #[test]
    fn tables_trim_values_only_when_asked() {
        let text = "id , v\n a , b \n";
        let value = |spaces| {
            let mut t = table("t.csv", text, b',', spaces).unwrap();
            assert_eq!(t.headers(), ["id", "v"]);
            let r = t.next().unwrap().unwrap();
            (r.line, text_of(&r, "v"))
        };
        assert_eq!(value(Spaces::Trim), (2, "b".into()));
        assert_eq!(value(Spaces::Keep), (2, " b ".into()));
    }
}

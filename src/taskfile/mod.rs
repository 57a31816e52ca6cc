//! Readers for task files: CSV/TSV with a header, JSON Lines, PiCaS token JSON and PyAnamo's
//! `itemID|taskID|TaskScript|TaskArgs` lines. Every problem is reported as `file:line: what`,
//! and a file with any problem yields no tasks at all.

mod fields;
mod json;
mod picas;
mod pyanamo;
mod table;

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::model::NewTask;
use crate::placeholders::{self, Quoting};

/// The formats `anamo tasks add FILE` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FileFormat {
    Csv,
    Tsv,
    Jsonl,
    Picas,
    Pyanamo,
}

/// Values a file may leave out.
#[derive(Debug, Clone)]
pub struct Defaults {
    pub collection: Option<String>,
    pub max_attempts: u32,
    pub timeout_secs: Option<u64>,
}

/// What a file held.
#[derive(Debug, Default)]
pub struct Parsed {
    pub tasks: Vec<NewTask>,
    /// PiCaS tokens already marked done, not imported.
    pub skipped_done: u64,
}

/// One task and the line it came from.
pub(crate) type Located = (u64, NewTask);

/// Reads a whole task file. The format is `format`, or detected from the extension and content.
pub fn read(path: &Path, format: Option<FileFormat>, defaults: &Defaults) -> Result<Parsed> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let format = format.unwrap_or_else(|| detect(path, &text));
    read_text(&path.display().to_string(), &text, format, defaults)
}

/// Reads the text of a task file named `name` (for messages) in `format`.
pub fn read_text(
    name: &str,
    text: &str,
    format: FileFormat,
    defaults: &Defaults,
) -> Result<Parsed> {
    let (located, skipped_done) = match format {
        FileFormat::Csv => (table::read(name, text, b',', defaults)?, 0),
        FileFormat::Tsv => (table::read(name, text, b'\t', defaults)?, 0),
        FileFormat::Jsonl => (json::read_lines(name, text, defaults)?, 0),
        FileFormat::Picas => picas::read(name, text, defaults)?,
        FileFormat::Pyanamo => (pyanamo::read(name, text, defaults)?, 0),
    };
    let tasks = check_batch(name, located)?;
    Ok(Parsed {
        tasks,
        skipped_done,
    })
}

/// Validates every task and refuses ids given twice in one batch.
pub fn check_batch(file: &str, located: Vec<Located>) -> Result<Vec<NewTask>> {
    let mut seen: HashMap<(&str, &str), u64> = HashMap::new();
    for (line, task) in &located {
        task.validate().map_err(|m| Error::input(file, *line, m))?;
        if let Some(first) = seen.insert((&task.collection, &task.task_id), *line) {
            return Err(Error::input(
                file,
                *line,
                format!(
                    "duplicate task id '{}' in collection '{}' (first on line {first}); make ids unique",
                    task.task_id, task.collection
                ),
            ));
        }
    }
    Ok(located.into_iter().map(|(_, t)| t).collect())
}

/// Picks a format from the extension, then from the first meaningful line.
pub fn detect(path: &Path, text: &str) -> FileFormat {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("csv") => return FileFormat::Csv,
        Some("tsv" | "tab") => return FileFormat::Tsv,
        Some("jsonl" | "ndjson") => return FileFormat::Jsonl,
        _ => {}
    }
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .unwrap_or("");
    if first.starts_with('[') || (first.starts_with('{') && picas::looks_like_token(first)) {
        FileFormat::Picas
    } else if first.starts_with('{') {
        FileFormat::Jsonl
    } else if first.matches('|').count() >= 2 {
        FileFormat::Pyanamo
    } else if first.contains('\t') {
        FileFormat::Tsv
    } else {
        FileFormat::Csv
    }
}

impl FromStr for FileFormat {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        <Self as clap::ValueEnum>::from_str(s, true)
    }
}

/// One task per sample from a template: `{sample}` and `{collection}` are filled in the id
/// and the script (shell-quoted there); any other `{name}` is refused. Sample files hold one id per line; blank lines and `#` comments are skipped.
pub fn from_samples(
    path: &Path,
    id_template: &str,
    script_template: &str,
    attrs: &crate::model::Attrs,
    defaults: &Defaults,
) -> Result<Vec<NewTask>> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let name = path.display().to_string();
    let collection = defaults
        .collection
        .clone()
        .ok_or_else(|| Error::Invalid("--samples needs --collection".into()))?;
    let mut located = vec![];
    for (i, raw) in text.lines().enumerate() {
        let sample = raw.trim();
        if sample.is_empty() || sample.starts_with('#') {
            continue;
        }
        let vars = [("sample", sample), ("collection", collection.as_str())];
        let task_id = placeholders::fill("--id", id_template, &vars, Quoting::Plain)?;
        // The sample id reaches the script as one literal word, whatever it holds.
        let script = placeholders::fill("--script", script_template, &vars, Quoting::Shell)?;
        located.push((
            i as u64 + 1,
            NewTask {
                collection: collection.clone(),
                task_id,
                sample: Some(sample.to_string()),
                script,
                attrs: attrs.clone(),
                max_attempts: defaults.max_attempts,
                timeout_secs: defaults.timeout_secs,
            },
        ));
    }
    if located.is_empty() {
        return Err(Error::Invalid(format!(
            "'{name}' lists no samples; put one sample id per line"
        )));
    }
    check_batch(&name, located)
}

/// `--timeout` on the command line: whole seconds or a duration such as `6h`.
pub fn parse_timeout_flag(s: &str) -> std::result::Result<u64, String> {
    fields::parse_timeout(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_by_extension_then_content() {
        let p = Path::new;
        assert_eq!(detect(p("a.csv"), ""), FileFormat::Csv);
        assert_eq!(detect(p("a.txt"), "S1|t1|run.sh|x"), FileFormat::Pyanamo);
        assert_eq!(detect(p("a.json"), "[{\"_id\":1}]"), FileFormat::Picas);
        assert_eq!(
            detect(p("a.json"), "{\"_id\":\"t\",\"Task_Script\":\"x\"}"),
            FileFormat::Picas
        );
        assert_eq!(detect(p("a.txt"), "{\"task_id\":\"t\"}"), FileFormat::Jsonl);
        assert_eq!(detect(p("a.txt"), "task_id\tscript"), FileFormat::Tsv);
    }
}

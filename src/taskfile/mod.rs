//! Readers for task files: CSV/TSV with a header, JSON Lines, PiCaS token JSON and PyAnamo's
//! `itemID|taskID|TaskScript|TaskArgs` lines, all over one record reader (`records`, which the
//! catalog's imports use too). Every problem is reported as `file:line: what`, and a file with
//! any problem yields no tasks at all.

pub(crate) mod fields;
mod json;
mod picas;
mod pyanamo;
pub mod records;
mod table;

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::model::NewTask;
use crate::placeholders::{self, Quoting};
use records::Layout;

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
    /// Upstream steps (`--after`), for tasks whose file does not name theirs.
    pub after: Vec<String>,
    /// QC gates (`--require`), for tasks whose file does not name theirs.
    pub require: Vec<String>,
}

/// Upstream steps as `--after` and an `after` column give them: comma-separated names.
pub fn parse_after(value: &str) -> Vec<String> {
    split_list(value, ',')
}

/// QC gates as a `require` column gives them: `;`-separated (`mean_coverage >= 15; freemix
/// < 0.03`).
pub fn parse_require(value: &str) -> Vec<String> {
    split_list(value, ';')
}

/// The non-blank parts of `value` between `separator`s, trimmed.
fn split_list(value: &str, separator: char) -> Vec<String> {
    value
        .split(separator)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
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

/// Reads a whole task file. The format is `format`, or detected (see `detect`).
pub fn read(path: &Path, format: Option<FileFormat>, defaults: &Defaults) -> Result<Parsed> {
    let text = records::load(path)?;
    let name = path.display().to_string();
    match format {
        Some(format) => read_text(&name, &text, format, defaults),
        None => read_as(&name, &text, detect(path, &text), defaults),
    }
}

/// Reads the text of a task file named `name` (for messages) in `format`.
pub fn read_text(
    name: &str,
    text: &str,
    format: FileFormat,
    defaults: &Defaults,
) -> Result<Parsed> {
    let shape = match format {
        FileFormat::Csv => Shape::Csv,
        FileFormat::Tsv => Shape::Tsv,
        FileFormat::Jsonl => Shape::Json(Some(json::Kind::Plain)),
        FileFormat::Picas => Shape::Json(Some(json::Kind::Picas)),
        FileFormat::Pyanamo => Shape::Pyanamo,
    };
    read_as(name, text, shape, defaults)
}

/// How a task file is read: as `--format` says, or as its extension and content tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Csv,
    Tsv,
    /// JSON records; plain tasks or PiCaS tokens as `--format` said, else as the records say.
    Json(Option<json::Kind>),
    Pyanamo,
}

fn read_as(name: &str, text: &str, shape: Shape, defaults: &Defaults) -> Result<Parsed> {
    let (located, skipped_done) = match shape {
        Shape::Csv => (table::read(name, text, b',', defaults)?, 0),
        Shape::Tsv => (table::read(name, text, b'\t', defaults)?, 0),
        Shape::Json(kind) => json::read(name, text, kind, defaults)?,
        Shape::Pyanamo => (pyanamo::read(name, text, defaults)?, 0),
    };
    let located = located
        .into_iter()
        .map(|(line, task)| fill_script(name, line, task).map(|t| (line, t)))
        .collect::<Result<Vec<_>>>()?;
    let tasks = check_batch(name, located)?;
    Ok(Parsed {
        tasks,
        skipped_done,
    })
}

/// Fills `{sample}` and `{collection}` in a file's script as `--samples` does (each value one
/// shell word); any other `{name}`, or `{sample}` on a row without a sample, is refused with
/// the file and line.
fn fill_script(file: &str, line: u64, mut task: NewTask) -> Result<NewTask> {
    let mut vars = vec![("collection", task.collection.as_str())];
    if let Some(sample) = &task.sample {
        vars.push(("sample", sample.as_str()));
    }
    let source = format!("{file}:{line}: script");
    task.script = placeholders::fill(&source, &task.script, &vars, Quoting::Shell)?;
    Ok(task)
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

/// The one layout rule of `records` (`.csv`, `.tsv`/`.tab`, `.json`/`.jsonl`/`.ndjson`, else the
/// first meaningful line), plus PyAnamo lines (`a|b|c`, in a file no extension names). Whether
/// JSON holds plain tasks or PiCaS tokens is left to its records.
fn detect(path: &Path, text: &str) -> Shape {
    let layout = match records::by_extension(path) {
        Some(layout) => layout,
        None => {
            let first = records::first_line(text);
            let layout = records::by_content(first);
            if layout != Layout::Json && first.matches('|').count() >= 2 {
                return Shape::Pyanamo;
            }
            layout
        }
    };
    match layout {
        Layout::Csv => Shape::Csv,
        Layout::Tsv => Shape::Tsv,
        Layout::Json => Shape::Json(None),
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
    let text = records::load(path)?;
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
        // A sample sheet given by mistake would make one task per row, named by whole rows.
        if sample.contains([',', '\t']) {
            let shown: String = sample.chars().take(40).collect();
            let cut = if sample.contains('\t') {
                "cut -f1"
            } else {
                "cut -d, -f1"
            };
            return Err(Error::Invalid(format!(
                "{name}:{}: '{shown}' looks like a row of a sheet; --samples takes one sample id \
                 per line (e.g. `{cut} {name} | tail -n +2 > samples.txt`, the tail skipping \
                 its header)",
                i + 1
            )));
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
                after: defaults.after.clone(),
                require: defaults.require.clone(),
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

    fn defaults(collection: Option<&str>) -> Defaults {
        Defaults {
            collection: collection.map(str::to_string),
            max_attempts: 3,
            timeout_secs: None,
            after: vec![],
            require: vec![],
        }
    }

    #[test]
    fn detects_by_extension_then_content() {
        let p = Path::new;
        assert_eq!(detect(p("a.csv"), ""), Shape::Csv);
        assert_eq!(detect(p("a.csv"), "task_id\tscript"), Shape::Csv);
        assert_eq!(detect(p("a.tsv"), "task_id,script"), Shape::Tsv);
        assert_eq!(detect(p("a.txt"), "S1|t1|run.sh|x"), Shape::Pyanamo);
        assert_eq!(detect(p("a.json"), "[{\"_id\":1}]"), Shape::Json(None));
        assert_eq!(detect(p("a.jsonl"), "{\"_id\":\"t\"}"), Shape::Json(None));
        assert_eq!(detect(p("a.txt"), "{\"task_id\":\"t\"}"), Shape::Json(None));
        assert_eq!(detect(p("a.txt"), "{\"a\":\"x|y|z\"}"), Shape::Json(None));
        assert_eq!(detect(p("a.txt"), "# tasks\ntask_id\tscript"), Shape::Tsv);
        assert_eq!(detect(p("a"), "task_id,script"), Shape::Csv);
    }

    /// Writes `files` into a fresh directory and reads each as a task file and as import records.
    fn both_readers(files: &[(&str, &str)]) -> Vec<(Vec<String>, usize)> {
        let dir = tempfile::tempdir().unwrap();
        files
            .iter()
            .map(|(name, text)| {
                let path = dir.path().join(name);
                std::fs::write(&path, text).unwrap();
                let parsed = read(&path, None, &defaults(Some("C"))).unwrap();
                let ids = parsed.tasks.into_iter().map(|t| t.task_id).collect();
                let (_, rows) = records::read(&path).unwrap();
                (ids, rows.len())
            })
            .collect()
    }

    #[test]
    fn json_is_one_thing_to_both_readers_whatever_its_extension() {
        let lines =
            "{\"task_id\":\"a\",\"script\":\"true\"}\n{\"task_id\":\"b\",\"script\":\"true\"}\n";
        let array =
            "[{\"task_id\":\"a\",\"script\":\"true\"},\n {\"task_id\":\"b\",\"script\":\"true\"}]";
        let got = both_readers(&[
            ("l.json", lines),
            ("l.jsonl", lines),
            ("l.txt", lines),
            ("a.json", array),
            ("a.jsonl", array),
            ("a", array),
        ]);
        for g in got {
            assert_eq!(g, (vec!["a".to_string(), "b".to_string()], 2));
        }
    }

    #[test]
    fn csv_and_tsv_read_the_same_by_both_readers() {
        let got = both_readers(&[
            ("t.csv", "task_id,script\na,true\nb,true\n"),
            ("t.tsv", "task_id\tscript\na\ttrue\nb\ttrue\n"),
            ("t.txt", "# a comment\ntask_id\tscript\na\ttrue\nb\ttrue\n"),
            ("t", "task_id,script\na,true\nb,true\n"),
        ]);
        for g in got {
            assert_eq!(g, (vec!["a".to_string(), "b".to_string()], 2));
        }
    }

    #[test]
    fn picas_tokens_saved_as_jsonl_are_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.jsonl");
        std::fs::write(
            &path,
            "{\"_id\":\"align_S1\",\"lock\":0,\"done\":0,\"type\":\"Alignment\",\"Task_ID\":\"S1\",\"Task_Script\":\"align.sh S1\"}\n\
             {\"_id\":\"align_S2\",\"lock\":0,\"done\":1700000000,\"type\":\"Alignment\",\"Task_ID\":\"S2\",\"Task_Script\":\"align.sh S2\"}\n",
        )
        .unwrap();
        let parsed = read(&path, None, &defaults(None)).unwrap();
        assert_eq!(parsed.skipped_done, 1);
        let t = &parsed.tasks[0];
        assert_eq!(
            (t.collection.as_str(), t.task_id.as_str(), t.script.as_str()),
            ("Alignment", "align_S1", "align.sh S1")
        );
        // --format jsonl still means plain tasks: a token then lacks its collection.
        let err = read(&path, Some(FileFormat::Jsonl), &defaults(None))
            .unwrap_err()
            .to_string();
        assert!(err.contains("tokens.jsonl:1: no collection"), "{err}");
    }

    #[test]
    fn a_bad_line_names_file_and_line() {
        let d = defaults(Some("C"));
        for (format, text, want) in [
            (
                FileFormat::Jsonl,
                "{\"task_id\":\"a\",\"script\":\"true\"}\n\n{\"task_id\":",
                "f:3: invalid JSON",
            ),
            (
                FileFormat::Picas,
                "[{\"_id\":\"a\",\"Task_Script\":\"true\"},\n 3]",
                "f:2: expected a JSON object",
            ),
            (
                FileFormat::Csv,
                "task_id,script\na,true,x\n",
                "f:2: this row has 3 fields",
            ),
            (
                FileFormat::Tsv,
                "task_id\tscript\na\t \n",
                "f:2: task 'a' has an empty script",
            ),
        ] {
            let err = read_text("f", text, format, &d).unwrap_err().to_string();
            assert!(err.starts_with(want), "{format:?}: {err}");
        }
    }
}

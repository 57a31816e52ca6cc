//! JSON task files (lines or one array), of two kinds: plain tasks (task_id, script, and
//! optionally collection, sample, max_attempts, timeout, an `attrs` object; other fields become
//! attributes) and PiCaS tokens (see `picas`). Unless `--format` says which, the records do: a
//! token has `_id` or `Task_Script`, a plain task `task_id`, `id` or `script`, and one file holds
//! one kind.

use serde_json::Value;

use crate::error::{Error, Result};

use super::fields::{TaskFields, scalar, type_name};
use super::records::{self, Record};
use super::{Defaults, Located, picas};

/// What a JSON task file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Plain,
    Picas,
}

/// Fields only a PiCaS token has (CouchDB's document id, PiCaS's script).
const PICAS_MARKS: &[&str] = &["_id", "Task_Script"];
/// Fields naming a plain task's id or script (any case, as `TaskFields` reads them); PiCaS's
/// own `Task_ID` (the sample) is not one.
const PLAIN_MARKS: &[&str] = &["task_id", "id", "script"];

/// Reads the tasks of a JSON file, and how many PiCaS tokens were already done. `kind` is what
/// `--format` said; `None` lets the records decide.
pub(crate) fn read(
    file: &str,
    text: &str,
    kind: Option<Kind>,
    defaults: &Defaults,
) -> Result<(Vec<Located>, u64)> {
    let records = records::json(file, text)?;
    let kind = match kind {
        Some(kind) => kind,
        None => kind_of_file(file, &records)?,
    };
    let mut tasks = vec![];
    let mut skipped_done = 0;
    for Record { line, fields } in records {
        let task = match kind {
            Kind::Plain => Some(from_fields(fields, defaults)),
            Kind::Picas => picas::token(fields, defaults).transpose(),
        };
        match task {
            Some(task) => tasks.push((line, task.map_err(|m| Error::input(file, line, m))?)),
            None => skipped_done += 1,
        }
    }
    Ok((tasks, skipped_done))
}

/// The kind the first record with a telling field names; every other telling record must
/// agree. A file with no telling field is plain (and its errors say which field is missing).
fn kind_of_file(file: &str, records: &[Record]) -> Result<Kind> {
    let mut first: Option<(u64, Kind, &str)> = None;
    for record in records {
        let Some((kind, mark)) = kind_of(record).map_err(|m| Error::input(file, record.line, m))?
        else {
            continue;
        };
        match first {
            None => first = Some((record.line, kind, mark)),
            Some((line, was, was_mark)) if was != kind => {
                return Err(Error::input(
                    file,
                    record.line,
                    format!(
                        "this record is {} ('{mark}') but line {line} holds {} ('{was_mark}'); \
                         keep one kind per file, or pass --format picas or --format jsonl",
                        describe(kind),
                        describe(was)
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    Ok(first.map_or(Kind::Plain, |(_, kind, _)| kind))
}

/// A record's kind and the field that tells it, `None` when no field does.
fn kind_of(record: &Record) -> Result<Option<(Kind, &str)>, String> {
    let has = |mark: &str, exact: bool| {
        record.fields.iter().map(|(k, _)| k.as_str()).find(|k| {
            if exact {
                *k == mark
            } else {
                *k != "Task_ID" && k.eq_ignore_ascii_case(mark)
            }
        })
    };
    let picas = PICAS_MARKS.iter().find_map(|m| has(m, true));
    let plain = PLAIN_MARKS.iter().find_map(|m| has(m, false));
    match (picas, plain) {
        (Some(p), Some(t)) => Err(format!(
            "this record has a PiCaS token's '{p}' and a task's '{t}'; pass --format picas \
             (PiCaS fields name the task) or --format jsonl (they become attributes)"
        )),
        (Some(p), None) => Ok(Some((Kind::Picas, p))),
        (None, Some(t)) => Ok(Some((Kind::Plain, t))),
        (None, None) => Ok(None),
    }
}

fn describe(kind: Kind) -> &'static str {
    match kind {
        Kind::Plain => "a plain task",
        Kind::Picas => "a PiCaS token",
    }
}

fn from_fields(
    fields: Vec<(String, Value)>,
    defaults: &Defaults,
) -> Result<crate::model::NewTask, String> {
    let mut task = TaskFields::new(defaults);
    for (name, value) in fields {
        if name == "attrs" {
            let Value::Object(attrs) = value else {
                return Err("'attrs' must be an object of strings".into());
            };
            for (k, v) in attrs {
                let v = scalar(&k, v)?;
                task.set_attr(&k, v);
            }
            continue;
        }
        // Upstream steps may come as a list: ["Alignment", "QC"] is "Alignment,QC"; gates
        // likewise: ["mean_coverage >= 15", "freemix < 0.03"].
        let v = match value {
            Value::Array(steps) if name.eq_ignore_ascii_case("after") => {
                joined(steps, "after", "step names", ",")?
            }
            Value::Array(gates) if name.eq_ignore_ascii_case("require") => joined(
                gates,
                "require",
                "gates such as \"mean_coverage >= 15\"",
                ";",
            )?,
            value => scalar(&name, value)?,
        };
        task.set(&name, v)?;
    }
    task.finish()
}

/// A list of strings as the one text its column would hold, joined by `separator`.
fn joined(
    list: Vec<Value>,
    field: &str,
    expected: &str,
    separator: &str,
) -> Result<String, String> {
    let parts = list
        .into_iter()
        .map(|v| match v {
            Value::String(s) => Ok(s),
            other => Err(format!(
                "field '{field}' holds {}; expected {expected}",
                type_name(&other)
            )),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(parts.join(separator))
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

    const TOKENS: &str = "{\"_id\":\"a\",\"lock\":0,\"done\":0,\"type\":\"Alignment\",\"Task_ID\":\"S1\",\"Task_Script\":\"align.sh S1\"}\n\
                          {\"_id\":\"b\",\"lock\":0,\"done\":0,\"type\":\"Alignment\",\"Task_ID\":\"S2\",\"Task_Script\":\"align.sh S2\"}\n";

    #[test]
    fn picas_tokens_one_per_line_are_tokens() {
        let (tasks, done) = read("tokens.jsonl", TOKENS, None, &defaults(None)).unwrap();
        assert_eq!(done, 0);
        let got: Vec<_> = tasks
            .iter()
            .map(|(line, t)| {
                (
                    *line,
                    t.collection.as_str(),
                    t.task_id.as_str(),
                    t.sample.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (1, "Alignment", "a", Some("S1")),
                (2, "Alignment", "b", Some("S2"))
            ]
        );
        // Told they are plain tasks, they are read as such (and lack a collection).
        let err = read("tokens.jsonl", TOKENS, Some(Kind::Plain), &defaults(None))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("tokens.jsonl:1: no collection"), "{err}");
    }

    #[test]
    fn plain_tasks_keep_type_as_an_attribute() {
        let text = "{\"task_id\":\"t\",\"script\":\"true\",\"type\":\"wgs\"}";
        let (tasks, _) = read("t.jsonl", text, None, &defaults(Some("C"))).unwrap();
        assert_eq!(tasks[0].1.collection, "C");
        assert_eq!(tasks[0].1.attrs["type"], "wgs");
    }

    #[test]
    fn untelling_records_follow_the_file_and_mixed_files_are_refused() {
        // A token without `_id` is read as a token, so the message names PiCaS's field.
        let text = format!("{TOKENS}{{\"type\":\"Alignment\",\"lock\":0}}\n");
        let err = read("t.json", &text, None, &defaults(None))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("t.json:3: no task id: add a '_id' field"),
            "{err}"
        );
        let text = format!("{TOKENS}{{\"task_id\":\"c\",\"script\":\"true\"}}\n");
        let err = read("t.json", &text, None, &defaults(None))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "t.json:3: this record is a plain task ('task_id') but line 1 holds a PiCaS token \
             ('_id'); keep one kind per file, or pass --format picas or --format jsonl"
        );
    }

    #[test]
    fn a_record_of_both_kinds_is_refused_unless_told() {
        let text = "{\"_id\":\"x\",\"_rev\":\"1-a\",\"task_id\":\"t\",\"script\":\"true\"}";
        let err = read("t.json", text, None, &defaults(Some("C")))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("t.json:1: this record has a PiCaS token's '_id' and a task's"),
            "{err}"
        );
        let (tasks, _) = read("t.json", text, Some(Kind::Plain), &defaults(Some("C"))).unwrap();
        assert_eq!(tasks[0].1.task_id, "t");
        assert_eq!(tasks[0].1.attrs["_id"], "x");
    }

    // PiCaS tokens read through the JSON reader, where their lines are known.

    #[test]
    fn array_items_report_their_line() {
        let text = "[\n {\"_id\":\"a\",\"type\":\"X\",\"Task_Script\":\"true\",\"lock\":0,\"done\":0},\n {\"_id\":\"b\",\"type\":\"X\",\"Task_Script\":\"true\",\"lock\":\"no\"}\n]";
        let err = read("t.json", text, Some(Kind::Picas), &defaults(None))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("t.json:3: PiCaS field 'lock' is a string"),
            "{err}"
        );
    }

    #[test]
    fn done_tokens_are_skipped() {
        let text = "{\"_id\":\"a\",\"type\":\"X\",\"Task_Script\":\"true\",\"done\":1700000000}\n{\"_id\":\"b\",\"type\":\"X\",\"Task_Script\":\"true\",\"done\":0,\"files\":[\"a.fq\",\"b.fq\"],\"Task_ID\":7}";
        let (tasks, done) = read("t.json", text, Some(Kind::Picas), &defaults(None)).unwrap();
        assert_eq!(done, 1);
        assert_eq!(tasks.len(), 1);
        assert_eq!(tasks[0].1.attrs["files"], "a.fq b.fq");
        assert_eq!(tasks[0].1.sample.as_deref(), Some("7"));
    }
}

//! PiCaS token JSON, as the original PiCaS + CouchDB setup stored it:
//! `{"_id","lock","done","type","files","Task_ID","Task_Script"}`, one object per line or one
//! array (`json` reads those and tells tokens from plain tasks). `_id` becomes the task id,
//! `type` the collection, `Task_ID` the sample and `Task_Script` the script; other fields
//! become attributes. Tokens already done are skipped.

use serde_json::Value;

use super::Defaults;
use super::fields::{Names, TaskFields, scalar, type_name};

/// PiCaS bookkeeping that describes a past run, not the task: left out.
const IGNORED: &[&str] = &["exit_code"];

/// A token as a task; `None` for a token PiCaS already marked done.
pub(crate) fn token(
    object: Vec<(String, Value)>,
    defaults: &Defaults,
) -> Result<Option<crate::model::NewTask>, String> {
    let mut fields = TaskFields::named(defaults, &Names::PICAS);
    let mut done = false;
    for (name, value) in object {
        match name.as_str() {
            "_id" => fields.set("task_id", expect_string(&name, value)?)?,
            // PiCaS's `type` names the collection unless -c does (PiCaS pools often say
            // "token" for everything); then it is kept as an attribute.
            "type" if defaults.collection.is_none() => {
                fields.set("collection", expect_string(&name, value)?)?
            }
            "Task_Script" => fields.set("script", expect_string(&name, value)?)?,
            "Task_ID" => fields.set("sample", expect_string_or_number(&name, value)?)?,
            "lock" => {
                expect_number(&name, &value)?;
                fields.set_attr("lock", scalar(&name, value)?);
            }
            "done" => done = expect_number(&name, &value)? > 0.0,
            "files" => fields.set_attr("files", files(value)?),
            n if IGNORED.contains(&n) => {}
            _ => {
                let v = scalar(&name, value)?;
                fields.set(&name, v)?;
            }
        }
    }
    if done {
        return Ok(None);
    }
    fields.finish().map(Some)
}

fn expect_string(name: &str, value: Value) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s),
        other => Err(wrong_type(name, &other, "a string")),
    }
}

fn expect_string_or_number(name: &str, value: Value) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(wrong_type(name, &other, "a string or a number")),
    }
}

/// `lock` and `done` are 0 or an epoch timestamp.
fn expect_number(name: &str, value: &Value) -> Result<f64, String> {
    value
        .as_f64()
        .ok_or_else(|| wrong_type(name, value, "a number (0 or a timestamp)"))
}

/// `files` is one path or a list of paths; a list is joined with spaces.
fn files(value: Value) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s),
        Value::Array(items) => items
            .into_iter()
            .map(|v| expect_string("files", v))
            .collect::<Result<Vec<_>, _>>()
            .map(|v| v.join(" ")),
        other => Err(wrong_type("files", &other, "a string or a list of strings")),
    }
}

fn wrong_type(name: &str, value: &Value, expected: &str) -> String {
    format!(
        "PiCaS field '{name}' is {}; expected {expected}",
        type_name(value)
    )
}

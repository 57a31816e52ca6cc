//! JSON Lines task files: one object per line with task_id, script, and optionally
//! collection, sample, max_attempts, timeout, an `attrs` object; other fields become attributes.

use serde_json::{Map, Value};

use crate::error::{Error, Result};

use super::fields::TaskFields;
use super::{Defaults, Located};

pub(crate) fn read_lines(file: &str, text: &str, defaults: &Defaults) -> Result<Vec<Located>> {
    let mut tasks = vec![];
    for (i, raw) in text.lines().enumerate() {
        let line = i as u64 + 1;
        let raw = raw.trim();
        if raw.is_empty() || raw.starts_with('#') {
            continue;
        }
        let object = parse_object(raw).map_err(|m| Error::input(file, line, m))?;
        let task = from_object(object, defaults).map_err(|m| Error::input(file, line, m))?;
        tasks.push((line, task));
    }
    Ok(tasks)
}

pub(crate) fn parse_object(raw: &str) -> Result<Map<String, Value>, String> {
    match serde_json::from_str::<Value>(raw) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err("expected a JSON object on this line".into()),
        Err(e) => Err(format!("invalid JSON: {e}")),
    }
}

fn from_object(
    object: Map<String, Value>,
    defaults: &Defaults,
) -> Result<crate::model::NewTask, String> {
    let mut fields = TaskFields::new(defaults);
    for (name, value) in object {
        if name == "attrs" {
            let Value::Object(attrs) = value else {
                return Err("'attrs' must be an object of strings".into());
            };
            for (k, v) in attrs {
                let v = scalar(&k, v)?;
                fields.set_attr(&k, v);
            }
            continue;
        }
        let v = scalar(&name, value)?;
        fields.set(&name, v)?;
    }
    fields.finish()
}

/// Strings, numbers and booleans become text; null is absent; nested values are refused.
pub(crate) fn scalar(name: &str, value: Value) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Null => Ok(String::new()),
        Value::Array(_) | Value::Object(_) => Err(format!(
            "field '{name}' is {}; expected a string or a number",
            type_name(&value)
        )),
    }
}

pub(crate) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

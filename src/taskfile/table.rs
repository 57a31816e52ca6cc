//! CSV and TSV task files: a header row names the fields (task_id, script, collection, sample,
//! max_attempts, timeout; any other column becomes an attribute).

use crate::error::{Error, Result};

use super::fields::{TaskFields, scalar};
use super::records::{self, Record, Spaces};
use super::{Defaults, Located};

pub(crate) fn read(
    file: &str,
    text: &str,
    delimiter: u8,
    defaults: &Defaults,
) -> Result<Vec<Located>> {
    // Values keep their spaces: a blank script is refused as blank, not as missing.
    let table = records::table(file, text, delimiter, Spaces::Keep)?;
    // Field names ignore case (TaskFields does too); a column named twice would lose one value.
    let mut seen = std::collections::HashSet::new();
    for h in table.headers() {
        // A misspelt column is the header's fault, not the first row's.
        if let Some(problem) = super::fields::misspelt(h) {
            return Err(Error::input(file, 1, problem));
        }
        if !seen.insert(h.to_ascii_lowercase()) {
            return Err(Error::input(
                file,
                1,
                format!("the header names '{h}' twice; each column once"),
            ));
        }
    }
    if !table.headers().iter().any(|h| {
        let h = h.to_ascii_lowercase();
        h == "task_id" || h == "id"
    }) {
        return Err(Error::input(
            file,
            1,
            "the header has no 'task_id' column; the first line must name the columns (task_id,script,...)",
        ));
    }
    let mut tasks = vec![];
    for record in table {
        let Record { line, fields } = record?;
        let mut task = TaskFields::new(defaults);
        for (name, value) in fields {
            let value = scalar(&name, value).map_err(|m| Error::input(file, line, m))?;
            task.set(&name, value)
                .map_err(|m| Error::input(file, line, m))?;
        }
        let task = task.finish().map_err(|m| Error::input(file, line, m))?;
        tasks.push((line, task));
    }
    Ok(tasks)
}

//! CSV and TSV task files: a header row names the fields (task_id, script, collection, sample,
//! max_attempts, timeout; any other column becomes an attribute).

use crate::error::{Error, Result};
use crate::records::csv_error;

use super::fields::TaskFields;
use super::{Defaults, Located};

pub(crate) fn read(
    file: &str,
    text: &str,
    delimiter: u8,
    defaults: &Defaults,
) -> Result<Vec<Located>> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .comment(Some(b'#'))
        .trim(csv::Trim::Headers)
        .from_reader(text.as_bytes());
    let headers = reader.headers().map_err(|e| csv_error(file, &e))?.clone();
    // Field names ignore case (TaskFields does too); a column named twice would lose one value.
    let mut seen = std::collections::HashSet::new();
    for h in headers.iter() {
        if !seen.insert(h.to_ascii_lowercase()) {
            return Err(Error::input(
                file,
                1,
                format!("the header names '{h}' twice; each column once"),
            ));
        }
    }
    if !headers.iter().any(|h| {
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
    for record in reader.records() {
        let record = record.map_err(|e| csv_error(file, &e))?;
        let line = record.position().map_or(0, |p| p.line());
        let mut fields = TaskFields::new(defaults);
        for (name, value) in headers.iter().zip(record.iter()) {
            fields
                .set(name, value.to_string())
                .map_err(|m| Error::input(file, line, m))?;
        }
        let task = fields.finish().map_err(|m| Error::input(file, line, m))?;
        tasks.push((line, task));
    }
    Ok(tasks)
}

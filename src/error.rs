//! Failures a user can cause, each a one-line message that names the thing and the fix.

use std::path::{Path, PathBuf};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what} '{}' does not exist; {hint}", path.display())]
    Missing {
        what: &'static str,
        path: PathBuf,
        hint: String,
    },

    #[error("'{}' is not an anamo {what} ({reason}); point {flag} at the right file", path.display())]
    NotOurs {
        what: &'static str,
        path: PathBuf,
        reason: String,
        flag: &'static str,
    },

    #[error(
        "{what} '{}' was written by a newer anamo (schema {found} > {supported}); upgrade anamo",
        path.display()
    )]
    TooNew {
        what: &'static str,
        path: PathBuf,
        found: i64,
        supported: i64,
    },

    #[error(
        "unsupported store '{0}'; use sqlite://PATH (or a plain file path) or dynamodb://TABLE"
    )]
    BadStoreUrl(String),

    /// A problem at a place in an input file.
    #[error("{file}:{line}: {message}")]
    Input {
        file: String,
        line: u64,
        message: String,
    },

    #[error("cannot read '{}': {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },

    /// A usage mistake clap cannot see (it depends on anamo.toml too): exits 2, like clap's.
    #[error("{0}")]
    Usage(String),

    /// Bad input that is not tied to a file line.
    #[error("{0}")]
    Invalid(String),

    /// A DynamoDB table that is not in anamo's shape (or not ready): the line names the
    /// difference and the fix.
    #[error("{0}")]
    TableShape(String),

    #[error("{0}")]
    Io(#[from] std::io::Error),

    /// An AWS call failed; the text says what anamo was doing and what AWS said.
    #[error("{0}")]
    Aws(String),

    /// An AWS call failed in a way that may pass (throttling, a 5xx, a dropped connection):
    /// worth trying again after a pause.
    #[error("{0}")]
    AwsTransient(String),

    /// A SQLite failure not yet tied to a file; the catalog and the store name theirs with
    /// [`in_db`] before it reaches a person.
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),

    /// A SQLite failure in a named database: "catalog 'anamo.db': database is locked".
    #[error("{what} '{}': {source}", path.display())]
    Db {
        what: &'static str,
        path: PathBuf,
        source: rusqlite::Error,
    },

    #[error("cannot write '{}': {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },

    /// A broken promise inside anamo, not something the user did.
    #[error("internal error: {0} (a bug in anamo; please report it)")]
    Internal(String),

    #[error("task store: stored task {collection}/{task_id} is damaged: {reason}")]
    Damaged {
        collection: String,
        task_id: String,
        reason: String,
    },
}

/// Names the database (`what` at `path`) in a bare SQLite error; other errors pass unchanged.
pub fn in_db<T>(result: Result<T>, what: &'static str, path: &Path) -> Result<T> {
    result.map_err(|e| match e {
        Error::Sqlite(source) => Error::Db {
            what,
            path: path.to_path_buf(),
            source,
        },
        e => e,
    })
}

/// An error and its causes on one line, each cause once: a message that already quotes its
/// cause (`cannot read 'x': No such file...`) is not followed by the same text again.
pub fn one_line(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

/// The 1-based line of `text` that byte `offset` falls on (past the end: the last line).
pub fn line_at(text: &str, offset: usize) -> u64 {
    let before = text.get(..offset).unwrap_or(text);
    before.matches('\n').count() as u64 + 1
}

impl Error {
    /// True for failures that may pass if the same request is sent again later.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::AwsTransient(_) => true,
            // Another process held the SQLite file's lock past the busy timeout: it passes.
            Self::Sqlite(e) | Self::Db { source: e, .. } => matches!(
                e.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
            ),
            _ => false,
        }
    }

    pub fn input(file: impl Into<String>, line: u64, message: impl Into<String>) -> Self {
        Self::Input {
            file: file.into(),
            line,
            message: message.into(),
        }
    }
}

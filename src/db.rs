//! Opening anamo's SQLite files (the embedded task store and the catalog): WAL, busy timeout,
//! an application id that tells our files from strangers', and numbered migrations recorded in
//! `PRAGMA user_version`, each applied in one transaction.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags, TransactionBehavior};

use crate::error::{Error, Result};

/// What kind of anamo file a database is.
pub struct Schema {
    /// Name in messages: "task store", "catalog".
    pub what: &'static str,
    /// Marks the file as ours, so another kind of database is refused, never migrated.
    pub application_id: i64,
    pub migrations: &'static [&'static str],
    /// Where the user sets the path, for messages: "--store/ANAMO_STORE".
    pub flag: &'static str,
    /// What creates the file, for messages: "`anamo tasks add`".
    pub creator: &'static str,
    /// Page cache per connection, in KiB (SQLite's default is 2000).
    pub cache_kib: u32,
}

/// Whether opening may create the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Create it if missing (writing commands).
    Create,
    /// Fail with a clear message if missing (reading commands, workers).
    MustExist,
}

/// Writers wait this long for the lock; many workers finishing at once queue briefly.
const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

/// Opens read-write, creating and migrating as needed.
pub fn open(path: &Path, schema: &Schema, mode: OpenMode) -> Result<Connection> {
    named(open_unnamed(path, schema, mode), schema, path)
}

/// A SQLite failure while opening, with the file named.
fn named<T>(result: Result<T>, schema: &Schema, path: &Path) -> Result<T> {
    crate::error::in_db(result, schema.what, path)
}

fn open_unnamed(path: &Path, schema: &Schema, mode: OpenMode) -> Result<Connection> {
    if mode == OpenMode::MustExist && !path.exists() {
        return Err(missing(path, schema));
    }
    if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty())
        && !folder.is_dir()
    {
        return Err(Error::Invalid(format!(
            "the folder '{}' of {} '{}' does not exist; create it (mkdir -p), or point {} at \
             another file",
            folder.display(),
            schema.what,
            path.display(),
            schema.flag
        )));
    }
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if mode == OpenMode::Create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let mut conn =
        Connection::open_with_flags(path, flags).map_err(|e| not_ours(e, path, schema))?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))
        .map_err(|e| not_ours(e, path, schema))?;
    // temp_store=MEMORY: statement journals and sorts stay off the disk.
    conn.execute_batch(&format!(
        "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY; \
         PRAGMA cache_size=-{};",
        schema.cache_kib
    ))?;
    migrate(&mut conn, path, schema)?;
    Ok(conn)
}

/// How much of a file a read-only connection maps (SQLite caps it at its own limit, 2 GB).
const READ_MMAP_BYTES: u64 = 1 << 30;

/// Opens read-only (the file cannot change through this connection), without migrating.
pub fn open_read_only(path: &Path, schema: &Schema) -> Result<Connection> {
    named(open_read_only_unnamed(path, schema), schema, path)
}

fn open_read_only_unnamed(path: &Path, schema: &Schema) -> Result<Connection> {
    if !path.exists() {
        return Err(missing(path, schema));
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| not_ours(e, path, schema))?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.execute_batch("PRAGMA query_only=ON;")?;
    let (app, version, tables) = read_state(&conn).map_err(|e| match e {
        Error::Sqlite(e) => not_ours(e, path, schema),
        other => other,
    })?;
    let current = check(path, schema, app, version, tables)?;
    if current < schema.migrations.len() as i64 {
        return Err(Error::Invalid(format!(
            "{} '{}' has an older schema ({current} < {}); run `anamo sync` once to upgrade it",
            schema.what,
            path.display(),
            schema.migrations.len()
        )));
    }
    // Reads at cohort scale walk hundreds of MB: map the file rather than copy it page by page
    // through read(2), and keep the same page cache as a writer. (After the checks: on a file
    // that is not a database these would fail with SQLite's words rather than ours.)
    conn.execute_batch(&format!(
        "PRAGMA mmap_size={READ_MMAP_BYTES}; PRAGMA cache_size=-{};",
        schema.cache_kib
    ))?;
    Ok(conn)
}

fn missing(path: &Path, schema: &Schema) -> Error {
    Error::Missing {
        what: schema.what,
        path: path.to_path_buf(),
        hint: format!(
            "create it with {}, or point {} at the right file",
            schema.creator, schema.flag
        ),
    }
}

fn not_ours(e: rusqlite::Error, path: &Path, schema: &Schema) -> Error {
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => Error::NotOurs {
            what: schema.what,
            path: path.to_path_buf(),
            reason: "not a SQLite database".into(),
            flag: schema.flag,
        },
        _ => Error::Sqlite(e),
    }
}

fn read_state(conn: &Connection) -> Result<(i64, i64, i64)> {
    let app: i64 = conn.query_row("PRAGMA application_id", [], |r| r.get(0))?;
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let tables: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
        [],
        |r| r.get(0),
    )?;
    Ok((app, version, tables))
}

/// Refuses files that are not ours or too new; returns the schema version found.
fn check(path: &Path, schema: &Schema, app: i64, version: i64, tables: i64) -> Result<i64> {
    let fresh = app == 0 && version == 0 && tables == 0;
    if !fresh && app != schema.application_id {
        return Err(Error::NotOurs {
            what: schema.what,
            path: path.to_path_buf(),
            reason: "a SQLite database of something else".into(),
            flag: schema.flag,
        });
    }
    let supported = schema.migrations.len() as i64;
    if version > supported {
        return Err(Error::TooNew {
            what: schema.what,
            path: path.to_path_buf(),
            found: version,
            supported,
        });
    }
    Ok(version)
}

fn migrate(conn: &mut Connection, path: &Path, schema: &Schema) -> Result<()> {
    let latest = schema.migrations.len() as i64;
    // Most opens find the schema current and take no write lock at all.
    let (app, version, tables) = read_state(conn)?;
    if check(path, schema, app, version, tables)? == latest {
        return Ok(());
    }
    // Re-read under the write lock: another process may have migrated meanwhile.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let (app, version, tables) = read_state(&tx)?;
    let version = check(path, schema, app, version, tables)?;
    for sql in &schema.migrations[version as usize..] {
        tx.execute_batch(sql)?;
    }
    tx.pragma_update(None, "application_id", schema.application_id)?;
    tx.pragma_update(None, "user_version", latest)?;
    tx.commit()?;
    Ok(())
}

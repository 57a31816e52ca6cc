//! The local SQLite catalog: every task ever seen, sample metadata, QC metrics, S3 objects,
//! EC2 instances, launches and sync runs. Opened in WAL mode and migrated on open. Never
//! imports the task store: `sync` is the only bridge.

pub mod gates;
pub mod history;
mod instances;
mod marks;
mod objects;
pub mod prices;
pub mod progress;
pub mod reported;
pub use objects::ObjectCounts;
mod runs;
mod samples;
mod steps;
mod tasks;

use std::path::{Path, PathBuf};

use rusqlite::{Connection, Transaction};

use crate::db::{self, OpenMode, Schema};
use crate::error::{Result, in_db};

pub use instances::LaunchRecord;
pub use marks::SyncMark;
pub use runs::{RunCounts, SyncLock, SyncRun, sync_in_progress};
pub use samples::{DropOutcome, ImportReport};
pub use tasks::{BatchCounts, Removed, TaskWriter};

/// The catalog used when neither --catalog nor ANAMO_CATALOG names one.
pub const DEFAULT_CATALOG: &str = "anamo.db";

/// The catalog's schema ("anmC" marks the file).
pub const SCHEMA: Schema = Schema {
    what: "catalog",
    application_id: 0x616E_6D43,
    migrations: &[
        include_str!("../../migrations/catalog/0001_init.sql"),
        include_str!("../../migrations/catalog/0002_aws.sql"),
        include_str!("../../migrations/catalog/0003_object_patterns.sql"),
        include_str!("../../migrations/catalog/0004_catalog_meta.sql"),
        include_str!("../../migrations/catalog/0005_one_progress.sql"),
        include_str!("../../migrations/catalog/0006_flow.sql"),
        include_str!("../../migrations/catalog/0007_lanes_are_not_replacements.sql"),
        include_str!("../../migrations/catalog/0008_progress_by_sample.sql"),
        include_str!("../../migrations/catalog/0009_cost.sql"),
        include_str!("../../migrations/catalog/0010_one_rule.sql"),
        include_str!("../../migrations/catalog/0011_runs.sql"),
        include_str!("../../migrations/catalog/0012_covering_reads.sql"),
        include_str!("../../migrations/catalog/0013_reported.sql"),
        include_str!("../../migrations/catalog/0014_gates.sql"),
        include_str!("../../migrations/catalog/0015_incremental.sql"),
    ],
    flag: "--catalog/ANAMO_CATALOG",
    creator: "`anamo sync` or `anamo samples import`",
    // Sync writes land in a few B-trees at once; a larger cache keeps their pages hot.
    cache_kib: 32 * 1024,
};

/// A catalog opened for reading: a connection that cannot write (read-only open flags and
/// `PRAGMA query_only`) and the file it reads. Callers never hold the connection: every read
/// goes through [`CatalogRead::read`], the one place a SQLite failure is given the file's name.
pub struct CatalogRead {
    conn: Connection,
    path: PathBuf,
}

impl CatalogRead {
    /// Opens a catalog that must exist, for reading only.
    pub fn open(path: &Path) -> Result<Self> {
        Ok(Self {
            conn: db::open_read_only(path, &SCHEMA)?,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on the connection; a SQLite failure names this file.
    pub(crate) fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        self.named(f(&self.conn))
    }

    /// The store identity a catalog was filled from (`catalog_meta`), if any.
    pub fn store_identity(&self) -> Result<Option<String>> {
        self.read(|conn| meta(conn, "store"))
    }

    /// A SQLite failure, with this file named.
    fn named<T>(&self, result: Result<T>) -> Result<T> {
        in_db(result, "catalog", &self.path)
    }
}

/// A catalog opened for writing. It reads as a [`CatalogRead`] does, and writes only through
/// [`Catalog::write`]: one transaction, committed when the closure succeeds, rolled back when
/// it fails, the file named in any SQLite failure.
pub struct Catalog {
    inner: CatalogRead,
}

impl std::ops::Deref for Catalog {
    type Target = CatalogRead;

    fn deref(&self) -> &CatalogRead {
        &self.inner
    }
}

impl Catalog {
    /// Opens for writing, creating and migrating as needed.
    pub fn open(path: &Path) -> Result<Self> {
        Self::opened(path, OpenMode::Create)
    }

    /// Opens for writing a catalog that must already exist.
    pub fn open_existing(path: &Path) -> Result<Self> {
        Self::opened(path, OpenMode::MustExist)
    }

    fn opened(path: &Path, mode: OpenMode) -> Result<Self> {
        Ok(Self {
            inner: CatalogRead {
                conn: db::open(path, &SCHEMA, mode)?,
                path: path.to_path_buf(),
            },
        })
    }

    /// Runs `f` in one transaction: committed when it succeeds, rolled back when it fails.
    pub(crate) fn write<T>(&mut self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        let result = in_transaction(&mut self.inner.conn, f);
        self.named(result)
    }

    /// Checks that tasks from the store `identity` belong here: the first store a catalog is
    /// filled from is remembered; another one is refused unless `changed` (the user says the
    /// store moved), which makes it the one remembered.
    pub fn claim_store(&mut self, identity: &str, changed: bool) -> Result<()> {
        match self.store_identity()? {
            Some(k) if k == identity => return Ok(()),
            Some(k) if !changed => {
                return Err(crate::error::Error::Invalid(format!(
                    "catalog '{}' holds the tasks of {k}, not of {identity}; use another \
                     --catalog for that store, or run `anamo sync --store-changed` if this \
                     is the same store moved",
                    self.path().display()
                )));
            }
            _ => {}
        }
        self.write(|tx| {
            set_meta(tx, "store", identity)?;
            marks::forget(tx)
        })
    }
}

/// A value of `catalog_meta`, the catalog's own notes (its store, sync marks, when it was
/// last changed outside a sync).
fn meta(conn: &Connection, key: &str) -> Result<Option<String>> {
    use rusqlite::OptionalExtension;
    Ok(conn
        .query_row(
            "SELECT value FROM catalog_meta WHERE key = ?1",
            [key],
            |r| r.get(0),
        )
        .optional()?)
}

/// Sets a value of `catalog_meta`.
fn set_meta(tx: &Transaction<'_>, key: &str, value: &str) -> Result<()> {
    tx.execute(
        "INSERT INTO catalog_meta (key, value) VALUES (?1, ?2) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [key, value],
    )?;
    Ok(())
}

fn in_transaction<T>(
    conn: &mut Connection,
    f: impl FnOnce(&Transaction<'_>) -> Result<T>,
) -> Result<T> {
    let tx = conn.transaction()?;
    let value = f(&tx)?;
    tx.commit()?;
    Ok(value)
}

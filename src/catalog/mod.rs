//! The local SQLite catalog: every task ever seen, sample metadata, QC metrics, S3 objects,
//! EC2 instances, launches and sync runs. Opened in WAL mode and migrated on open. Never
//! imports the task store: `sync` is the only bridge.

pub mod history;
mod instances;
mod objects;
pub mod prices;
pub mod progress;
pub use objects::ObjectCounts;
mod runs;
mod samples;
mod tasks;

use std::path::{Path, PathBuf};

use rusqlite::Connection;

use crate::db::{self, OpenMode, Schema};
use crate::error::Result;

pub use instances::LaunchRecord;
pub use runs::{RunCounts, SyncLock, SyncRun, sync_in_progress};
pub use samples::{
    DropOutcome, ImportReport, Removed, drop_sample, has_samples, import_qc, import_samples,
    known_steps, metrics_in, removed_in_history, sample_known, set_step_output, set_steps,
    steps_in, store_of,
};
pub use tasks::{BatchCounts, TaskWriter};

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
    ],
    flag: "--catalog/ANAMO_CATALOG",
    creator: "`anamo sync` or `anamo samples import`",
    // Sync writes land in a few B-trees at once; a larger cache keeps their pages hot.
    cache_kib: 32 * 1024,
};

/// The file behind a catalog connection, for naming it in errors.
pub(crate) fn path_of(conn: &Connection) -> &Path {
    Path::new(conn.path().unwrap_or(DEFAULT_CATALOG))
}

pub struct Catalog {
    conn: Connection,
    path: PathBuf,
}

impl Catalog {
    /// Opens for writing, creating and migrating as needed.
    pub fn open(path: &Path) -> Result<Self> {
        Ok(Self {
            conn: db::open(path, &SCHEMA, OpenMode::Create)?,
            path: path.to_path_buf(),
        })
    }

    /// Opens for writing a catalog that must already exist.
    pub fn open_existing(path: &Path) -> Result<Self> {
        Ok(Self {
            conn: db::open(path, &SCHEMA, OpenMode::MustExist)?,
            path: path.to_path_buf(),
        })
    }

    /// A connection that cannot write: read-only open flags and `PRAGMA query_only`.
    pub fn read_only(path: &Path) -> Result<Connection> {
        db::open_read_only(path, &SCHEMA)
    }

    fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Checks that tasks from the store `identity` belong here: the first store a catalog is
    /// filled from is remembered; another one is refused unless `changed` (the user says the
    /// store moved), which makes it the one remembered.
    pub fn claim_store(&self, identity: &str, changed: bool) -> Result<()> {
        let result = (|| -> Result<()> {
            match samples::store_of(&self.conn)? {
                Some(k) if k == identity => return Ok(()),
                Some(k) if !changed => {
                    return Err(crate::error::Error::Invalid(format!(
                        "catalog '{}' holds the tasks of {k}, not of {identity}; use another \
                         --catalog for that store, or run `anamo sync --store-changed` if this \
                         is the same store moved",
                        self.path.display()
                    )));
                }
                _ => {}
            }
            self.conn.execute(
                "INSERT INTO catalog_meta (key, value) VALUES ('store', ?1) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [identity],
            )?;
            Ok(())
        })();
        crate::error::in_db(result, "catalog", self.path())
    }

    fn conn_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

//! Where the last complete read of the store began, per scope (the whole store, or one step):
//! the mark an incremental sync reads on from, and when the last full scan was. Kept in
//! `catalog_meta`; forgotten when the catalog takes another store.

use rusqlite::{Transaction, params};

use super::{Catalog, CatalogRead, meta, set_meta};
use crate::error::Result;
use crate::model::TaskKey;

/// The scope key of a sync of every step.
const ALL: &str = "*";

/// What the catalog knows of its last complete reads of a scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncMark {
    /// When the last complete read began (the syncer's clock, epoch ms): everything written
    /// before it is in the catalog.
    pub read_from: i64,
    /// When the last full scan began.
    pub full_at: i64,
}

impl CatalogRead {
    /// The mark for `collection` (or the whole store): the later of its own and the whole
    /// store's, as a sync of every step covers each.
    pub fn sync_mark(&self, collection: Option<&str>) -> Result<Option<SyncMark>> {
        self.read(|conn| {
            let get = |scope: &str| -> Result<Option<SyncMark>> {
                let value = meta(conn, &format!("tasks_mark:{scope}"))?;
                Ok(value.and_then(|v| {
                    let (read_from, full_at) = v.split_once(' ')?;
                    Some(SyncMark {
                        read_from: read_from.parse().ok()?,
                        full_at: full_at.parse().ok()?,
                    })
                }))
            };
            let all = get(ALL)?;
            let own = match collection {
                Some(c) => get(c)?,
                None => None,
            };
            Ok(match (all, own) {
                (Some(a), Some(o)) => Some(SyncMark {
                    read_from: a.read_from.max(o.read_from),
                    full_at: a.full_at.max(o.full_at),
                }),
                (a, o) => a.or(o),
            })
        })
    }

    /// The tasks the catalog holds as running (in `collection` or all): an incremental sync
    /// reads them again, since their leases move without a change.
    pub fn running_keys(&self, collection: Option<&str>) -> Result<Vec<TaskKey>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT collection, task_id FROM tasks WHERE state = 'running' \
                 AND removed_at IS NULL AND (?1 IS NULL OR collection = ?1)",
            )?;
            let keys = stmt
                .query_map(params![collection], |r| {
                    Ok(TaskKey {
                        collection: r.get(0)?,
                        task_id: r.get(1)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(keys)
        })
    }
}

impl Catalog {
    /// Records a complete read of `collection` (or the whole store) that began at `read_from`;
    /// `full` when it was a full scan.
    pub fn set_sync_mark(
        &mut self,
        collection: Option<&str>,
        read_from: i64,
        full: bool,
    ) -> Result<()> {
        let scope = collection.unwrap_or(ALL).to_string();
        let full_at = if full {
            read_from
        } else {
            self.sync_mark(collection)?.map_or(0, |m| m.full_at)
        };
        self.write(|tx| {
            set_meta(
                tx,
                &format!("tasks_mark:{scope}"),
                &format!("{read_from} {full_at}"),
            )
        })
    }
}

impl CatalogRead {
    /// When a command other than a sync last opened the catalog to change it (epoch ms).
    pub fn content_changed_at(&self) -> Result<i64> {
        self.read(|conn| {
            let v = meta(conn, "content_changed_at")?;
            Ok(v.and_then(|v| v.parse().ok()).unwrap_or(0))
        })
    }
}

impl Catalog {
    /// Notes that a command other than a sync opened the catalog to change it (an import, a
    /// launch, a delete's history): a syncer publishing it publishes again.
    pub fn note_content_change(&mut self) -> Result<()> {
        self.write(|tx| {
            set_meta(
                tx,
                "content_changed_at",
                &crate::clock::now_ms().to_string(),
            )
        })
    }
}

/// Forgets every mark: the catalog takes another store, whose changes it has never read.
pub(super) fn forget(tx: &Transaction<'_>) -> Result<()> {
    tx.execute(
        "DELETE FROM catalog_meta WHERE key LIKE 'tasks\\_mark:%' ESCAPE '\\'",
        [],
    )?;
    Ok(())
}

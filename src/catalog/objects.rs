//! S3 listings in the catalog: `objects`, one row per (bucket, key) ever seen; an object gone
//! from a complete listing gets `removed_at`, and its row stays.

use rusqlite::{OptionalExtension, params};

use super::{Catalog, RunCounts};
use crate::clock::now_ms;
use crate::error::Result;
use crate::model::Object;

impl Catalog {
    /// Writes one listing page in one transaction. `changed` counts objects whose content
    /// (etag or size) changed, or that came back after being removed.
    pub fn write_objects(&mut self, page: &[Object]) -> Result<RunCounts> {
        let now = now_ms();
        let tx = self.conn_mut().transaction()?;
        let mut counts = RunCounts::default();
        {
            let mut before = tx.prepare_cached(
                "SELECT etag, size, removed_at IS NOT NULL FROM objects WHERE bucket = ?1 AND key = ?2",
            )?;
            let mut upsert = tx.prepare_cached(
                "INSERT INTO objects (bucket, key, size, etag, last_modified, storage_class, \
                     sample_id, kind, first_seen_at, last_seen_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9) \
                 ON CONFLICT (bucket, key) DO UPDATE SET size = excluded.size, \
                     etag = excluded.etag, last_modified = excluded.last_modified, \
                     storage_class = excluded.storage_class, sample_id = excluded.sample_id, \
                     kind = excluded.kind, last_seen_at = excluded.last_seen_at, removed_at = NULL",
            )?;
            for o in page {
                let known: Option<(Option<String>, Option<i64>, bool)> = before
                    .query_row(params![o.bucket, o.key], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                    })
                    .optional()?;
                match known {
                    None => counts.new += 1,
                    Some((etag, size, removed)) => {
                        if removed || etag != o.etag || size != Some(o.size) {
                            counts.changed += 1;
                        }
                    }
                }
                upsert.execute(params![
                    o.bucket,
                    o.key,
                    o.size,
                    o.etag,
                    o.last_modified,
                    o.storage_class,
                    o.sample_id,
                    o.kind,
                    now
                ])?;
                counts.seen += 1;
            }
        }
        tx.commit()?;
        Ok(counts)
    }

    /// After a complete listing of `bucket`/`prefix` that began at `listed_since`: objects
    /// under it that the listing did not show get `removed_at`.
    pub fn mark_objects_removed(
        &self,
        bucket: &str,
        prefix: &str,
        listed_since: i64,
    ) -> Result<u64> {
        let n = self.conn().execute(
            "UPDATE objects SET removed_at = ?4 \
             WHERE bucket = ?1 AND substr(key, 1, length(?2)) = ?2 \
               AND last_seen_at < ?3 AND removed_at IS NULL",
            params![bucket, prefix, listed_since, now_ms()],
        )?;
        Ok(n as u64)
    }
}

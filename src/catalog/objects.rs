//! S3 listings in the catalog: `objects`, one row per (bucket, key) ever seen; an object gone
//! from a complete listing gets `removed_at`, and its row stays.

use rusqlite::{OptionalExtension, params};

use super::{Catalog, RunCounts};
use crate::clock::now_ms;
use crate::error::Result;
use crate::model::Object;

/// What a listing did to sample ids, beside the run's counts.
#[derive(Debug, Default, Clone)]
pub struct ObjectCounts {
    pub run: RunCounts,
    /// Objects the sample pattern gave a sample id.
    pub matched: u64,
    /// Objects whose sample id this listing cleared (another pattern had set it).
    pub cleared: u64,
    /// The pattern that had set the first cleared id.
    pub cleared_pattern: Option<String>,
    /// Objects whose sample id a narrower prefix had set, left as they were.
    pub kept: u64,
    /// That narrower prefix (the first one met).
    pub kept_prefix: Option<String>,
}

impl std::ops::AddAssign for ObjectCounts {
    fn add_assign(&mut self, other: Self) {
        self.run += other.run;
        self.matched += other.matched;
        self.cleared += other.cleared;
        if self.cleared_pattern.is_none() {
            self.cleared_pattern = other.cleared_pattern;
        }
        self.kept += other.kept;
        if self.kept_prefix.is_none() {
            self.kept_prefix = other.kept_prefix;
        }
    }
}

/// An object as the catalog last knew it.
struct Known {
    etag: Option<String>,
    size: Option<i64>,
    removed: bool,
    sample_id: Option<String>,
    sample_pattern: Option<String>,
    sample_prefix: Option<String>,
}

impl Catalog {
    /// The sample pattern the last listing of exactly `bucket`/`prefix` read its objects with
    /// (none when they disagree, as after a listing cut short).
    pub fn stored_sample_pattern(&self, bucket: &str, prefix: &str) -> Result<Option<String>> {
        self.read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT DISTINCT sample_pattern FROM objects \
                 WHERE bucket = ?1 AND sample_prefix = ?2 AND sample_pattern IS NOT NULL \
                   AND removed_at IS NULL LIMIT 2",
            )?;
            let found: Vec<String> = stmt
                .query_map(params![bucket, prefix], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            Ok((found.len() == 1).then(|| found[0].clone()))
        })
    }

    /// Writes one listing page in one transaction; `pattern` read the page's sample ids from
    /// keys under `prefix` (`s3://bucket/prefix/`). `changed` counts objects whose content
    /// (etag or size) or sample id changed, or that came back after being removed. An id set
    /// by the listing of a narrower prefix stays: relative to a wider prefix the same pattern
    /// reads another path segment.
    pub fn write_objects(
        &mut self,
        page: &[Object],
        pattern: &str,
        prefix: &str,
    ) -> Result<ObjectCounts> {
        self.write(|tx| {
            let now = now_ms();
            let mut counts = ObjectCounts::default();
            {
                let mut before = tx.prepare_cached(
                    "SELECT etag, size, removed_at IS NOT NULL, sample_id, sample_pattern, \
                     sample_prefix FROM objects WHERE bucket = ?1 AND key = ?2",
                )?;
                let mut upsert = tx.prepare_cached(
                    "INSERT INTO objects (bucket, key, size, etag, last_modified, storage_class, \
                         sample_id, kind, first_seen_at, last_seen_at, sample_pattern, \
                         sample_prefix) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10, ?11) \
                     ON CONFLICT (bucket, key) DO UPDATE SET size = excluded.size, \
                         etag = excluded.etag, last_modified = excluded.last_modified, \
                         storage_class = excluded.storage_class, sample_id = excluded.sample_id, \
                         kind = excluded.kind, last_seen_at = excluded.last_seen_at, removed_at = NULL, \
                         sample_pattern = excluded.sample_pattern, \
                         sample_prefix = excluded.sample_prefix",
                )?;
                for o in page {
                    let known: Option<Known> = before
                        .query_row(params![o.bucket, o.key], |r| {
                            Ok(Known {
                                etag: r.get(0)?,
                                size: r.get(1)?,
                                removed: r.get(2)?,
                                sample_id: r.get(3)?,
                                sample_pattern: r.get(4)?,
                                sample_prefix: r.get(5)?,
                            })
                        })
                        .optional()?;
                    // An id a narrower prefix's listing set stays, with where it came from.
                    let narrower = known.as_ref().is_some_and(|k| {
                        k.sample_id.is_some()
                            && k.sample_prefix
                                .as_deref()
                                .is_some_and(|p| p.len() > prefix.len() && p.starts_with(prefix))
                    });
                    let sample: (Option<String>, Option<String>, Option<String>) = match &known {
                        Some(k) if narrower => (
                            k.sample_id.clone(),
                            k.sample_pattern.clone(),
                            k.sample_prefix.clone(),
                        ),
                        _ => (
                            o.sample_id.clone(),
                            Some(pattern.to_string()),
                            Some(prefix.to_string()),
                        ),
                    };
                    match known {
                        None => counts.run.new += 1,
                        Some(k) => {
                            if narrower {
                                counts.kept += 1;
                                if counts.kept_prefix.is_none() {
                                    counts.kept_prefix = k.sample_prefix.clone();
                                }
                            } else if k.sample_id.is_some() && sample.0.is_none() {
                                counts.cleared += 1;
                                if counts.cleared_pattern.is_none() {
                                    counts.cleared_pattern = k.sample_pattern.clone();
                                }
                            }
                            if k.removed
                                || k.etag != o.etag
                                || k.size != Some(o.size)
                                || k.sample_id != sample.0
                            {
                                counts.run.changed += 1;
                            }
                        }
                    }
                    counts.matched += sample.0.is_some() as u64;
                    upsert.execute(params![
                        o.bucket,
                        o.key,
                        o.size,
                        o.etag,
                        o.last_modified,
                        o.storage_class,
                        sample.0,
                        o.kind,
                        now,
                        sample.1,
                        sample.2
                    ])?;
                    counts.run.seen += 1;
                }
            }
            Ok(counts)
        })
    }

    /// After a complete listing of `bucket`/`prefix` that began at `listed_since`: objects
    /// under it that the listing did not show get `removed_at`.
    pub fn mark_objects_removed(
        &mut self,
        bucket: &str,
        prefix: &str,
        listed_since: i64,
    ) -> Result<u64> {
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE objects SET removed_at = ?4 \
                 WHERE bucket = ?1 AND substr(key, 1, length(?2)) = ?2 \
                   AND last_seen_at < ?3 AND removed_at IS NULL",
                params![bucket, prefix, listed_since, now_ms()],
            )?;
            Ok(n as u64)
        })
    }
}

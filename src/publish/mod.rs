//! One syncer, many readers: the catalog published to S3 as consistent snapshots. Under a
//! prefix the syncer writes `catalogs/VERSION-SHA.db` (a snapshot made with `VACUUM INTO`, never
//! a copy of the live file), `status.json` and `report.html`, then `latest.json`, the manifest,
//! last: a reader that follows the manifest never finds half a publish, and an old version is
//! deleted only once a newer manifest no longer names it. reader.rs fetches what the manifest
//! names into a local cache, checked against its sha256.

pub mod reader;

use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::aws::s3::{S3, S3Uri};
use crate::catalog::CatalogRead;
use crate::error::{Error, Result};

/// The manifest's name under the prefix.
pub const MANIFEST: &str = "latest.json";
/// Where the snapshots go under the prefix.
const SNAPSHOTS: &str = "catalogs/";

/// `latest.json`: which snapshot is current, and what it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Grows with each publish (the time of its sync, epoch ms).
    pub version: i64,
    /// The snapshot's key in the bucket.
    pub key: String,
    pub size: u64,
    /// Hex SHA-256 of the snapshot's bytes.
    pub sha256: String,
    /// When the sync it holds ended (RFC 3339).
    pub as_of: String,
    /// The task store it was synced from.
    pub store: String,
    /// The host that published it.
    pub by: String,
    /// When the syncer last synced, changed or not (RFC 3339): a reader tells a quiet
    /// cohort from a syncer that stopped. Rewritten with the rest of the manifest, alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked_at: Option<String>,
}

/// A published catalog: where it lives and how many old snapshots to keep.
pub struct Publisher {
    s3: S3,
    at: S3Uri,
    keep: usize,
}

impl Publisher {
    /// Connects and proves that the prefix can be written (a probe object, put and deleted):
    /// a syncer that cannot publish says so at once, not after its first sync.
    pub fn start(s3: S3, at: S3Uri, keep: usize) -> Result<Self> {
        let at = at.as_folder();
        s3.probe_write(
            &at,
            &crate::host::hostname(),
            crate::aws::s3::PUBLISH_POLICY,
        )?;
        Ok(Self {
            s3,
            at,
            keep: keep.max(1),
        })
    }

    pub fn at(&self) -> &S3Uri {
        &self.at
    }

    /// Publishes the catalog at `path` as version `version`: the snapshot, `status.json` and
    /// the report, then the manifest, then old snapshots beyond `keep` are deleted.
    pub fn publish(&self, path: &Path, version: i64, report_html: &str) -> Result<Manifest> {
        let dir = tempfile::tempdir().map_err(|source| Error::Write {
            path: std::env::temp_dir(),
            source,
        })?;
        let snapshot = dir.path().join("catalog.db");
        snapshot_into(path, &snapshot)?;
        let (size, sha256) = digest(&snapshot)?;
        let key = self
            .at
            .join(&format!("{SNAPSHOTS}{version}-{}.db", &sha256[..12]));
        self.s3
            .put_file(&snapshot, &key, "application/vnd.sqlite3")?;
        let catalog = CatalogRead::open(&snapshot)?;
        let status = status_json(&catalog, version)?;
        self.s3.put_bytes(
            status.into_bytes(),
            &self.at.join("status.json"),
            "application/json",
        )?;
        self.s3.put_bytes(
            report_html.as_bytes().to_vec(),
            &self.at.join("report.html"),
            "text/html; charset=utf-8",
        )?;
        let manifest = Manifest {
            version,
            key: key.key.clone(),
            size,
            sha256,
            as_of: crate::clock::rfc3339(version),
            store: catalog.store_identity()?.unwrap_or_default(),
            by: crate::host::hostname(),
            checked_at: Some(crate::clock::rfc3339(version)),
        };
        // Last: until it lands, readers follow the previous manifest to a snapshot still there.
        self.write_manifest(&manifest)?;
        self.prune(&manifest)?;
        Ok(manifest)
    }

    /// The manifest now under the prefix, if any, and only while the snapshot it names is
    /// there (one gone is published anew, not noted as current).
    pub fn current(&self) -> Result<Option<Manifest>> {
        let at = self.at.join(MANIFEST);
        let Some(text) = self.s3.get_bytes(&at)? else {
            return Ok(None);
        };
        let m: Manifest = serde_json::from_slice(&text).map_err(|e| {
            Error::Invalid(format!(
                "{at} is not a manifest anamo wrote ({e}); if this prefix is the catalog's, \
                 delete {at} and the next publish writes a new one"
            ))
        })?;
        let snapshot = S3Uri {
            bucket: self.at.bucket.clone(),
            key: m.key.clone(),
        };
        let mut there = false;
        self.s3.for_each_page(&snapshot, |page| {
            there |= page.iter().any(|o| o.key == m.key);
            Ok(())
        })?;
        Ok(there.then_some(m))
    }

    /// Notes in the manifest that the syncer synced at `at` and found nothing to publish:
    /// the same snapshot, a newer `checked_at`.
    pub fn checked(&self, manifest: &Manifest, at: i64) -> Result<Manifest> {
        let mut m = manifest.clone();
        m.checked_at = Some(crate::clock::rfc3339(at));
        self.write_manifest(&m)?;
        Ok(m)
    }

    fn write_manifest(&self, m: &Manifest) -> Result<()> {
        let text = serde_json::to_string_pretty(m)
            .map_err(|e| Error::Internal(format!("writing the manifest: {e}")))?;
        self.s3.put_bytes(
            text.into_bytes(),
            &self.at.join(MANIFEST),
            "application/json",
        )
    }

    /// Deletes the snapshots beyond the newest `keep`, never the one `current` names.
    fn prune(&self, current: &Manifest) -> Result<()> {
        let mut keys = vec![];
        self.s3.for_each_page(&self.at.join(SNAPSHOTS), |page| {
            keys.extend(page.into_iter().map(|o| o.key));
            Ok(())
        })?;
        // `VERSION-SHA.db`: newest first by version.
        let version = |k: &str| -> i64 {
            k.rsplit('/')
                .next()
                .and_then(|name| name.split('-').next())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        keys.sort_by_key(|k| std::cmp::Reverse(version(k)));
        for key in keys.iter().skip(self.keep) {
            if *key != current.key {
                self.s3.delete(&S3Uri {
                    bucket: self.at.bucket.clone(),
                    key: key.clone(),
                })?;
            }
        }
        Ok(())
    }
}

/// A consistent copy of the catalog at `path`, made by SQLite itself (`VACUUM INTO`): what a
/// transaction committed, never half a write, whatever the syncer does meanwhile.
pub fn snapshot_into(path: &Path, to: &Path) -> Result<()> {
    let copied = (|| -> Result<()> {
        let conn = rusqlite::Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.execute("VACUUM INTO ?1", [to.to_string_lossy().to_string()])?;
        Ok(())
    })();
    crate::error::in_db(copied, "catalog", path)
}

/// The size and hex SHA-256 of a file, read in chunks.
pub fn digest(path: &Path) -> Result<(u64, String)> {
    use sha2::Digest;
    let failed = |source| Error::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(failed)?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(failed)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        hasher.update(&buf[..n]);
    }
    let hex: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok((size, hex))
}

/// `status.json`: the step counts `status` prints and when, about 130 bytes a step.
fn status_json(catalog: &CatalogRead, version: i64) -> Result<String> {
    let steps: Vec<serde_json::Value> = catalog
        .overview()?
        .iter()
        .map(|r| {
            serde_json::json!({
                "step": r.step, "waiting": r.waiting, "held": r.held, "todo": r.todo,
                "running": r.running, "failed": r.failed, "done": r.done, "total": r.total,
            })
        })
        .collect();
    Ok(serde_json::json!({ "as_of": crate::clock::rfc3339(version), "steps": steps }).to_string())
}

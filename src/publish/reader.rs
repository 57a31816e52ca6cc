//! Reading a published catalog (`--catalog s3://BUCKET/PREFIX/`): the manifest first, then the
//! snapshot it names, downloaded once into a local cache and checked against its sha256, then
//! opened read-only. A command run again with no new version transfers only the manifest.

use std::path::{Path, PathBuf};

use super::{MANIFEST, Manifest, digest};
use crate::aws::s3::{S3, S3Uri};
use crate::error::{Error, Result};

/// A published catalog fetched into the cache.
#[derive(Debug)]
pub struct Fetched {
    pub manifest: Manifest,
    /// The snapshot in the local cache.
    pub path: PathBuf,
    /// Whether this call downloaded it (false: it was in the cache already).
    pub downloaded: bool,
}

/// The folder published catalogs are cached in: ANAMO_CACHE, else $XDG_CACHE_HOME/anamo, else
/// ~/.cache/anamo.
pub fn cache_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("ANAMO_CACHE").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("anamo");
    }
    match std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        Some(home) => PathBuf::from(home).join(".cache").join("anamo"),
        None => std::env::temp_dir().join("anamo-cache"),
    }
}

/// Fetches the current version of the catalog published at `at` into the cache under
/// `root`: the manifest, then (unless the cache holds it) the snapshot, checked against the
/// manifest's sha256 before it is used.
pub fn fetch(s3: &S3, at: &S3Uri, root: &Path) -> Result<Fetched> {
    let at = at.as_folder();
    let manifest_at = at.join(MANIFEST);
    let text = s3.get_bytes(&manifest_at)?.ok_or_else(|| {
        Error::Invalid(format!(
            "no published catalog at {at} ({manifest_at} does not exist); publish one with \
             `anamo sync --watch --publish {at}`, or check the prefix"
        ))
    })?;
    let manifest: Manifest = serde_json::from_slice(&text).map_err(|e| {
        Error::Invalid(format!(
            "{manifest_at} is not a manifest anamo wrote ({e}); check the prefix"
        ))
    })?;
    let folder = root.join("catalogs").join(folder_name(&at));
    let path = folder.join(format!("{}.db", manifest.sha256));
    // Checked whole when it came; a cached copy of another size was damaged since: fetched
    // again.
    let cached = std::fs::metadata(&path).is_ok_and(|m| m.len() == manifest.size);
    if cached {
        return Ok(Fetched {
            manifest,
            path,
            downloaded: false,
        });
    }
    std::fs::create_dir_all(&folder).map_err(|source| Error::Write {
        path: folder.clone(),
        source,
    })?;
    // Beside its final name, renamed once checked: two readers sharing the cache each write
    // their own partial file, and neither ever opens a half download.
    let mut partial = tempfile::NamedTempFile::new_in(&folder).map_err(|source| Error::Write {
        path: folder.clone(),
        source,
    })?;
    let snapshot = S3Uri {
        bucket: at.bucket.clone(),
        key: manifest.key.clone(),
    };
    s3.copy_to(&snapshot, partial.as_file_mut())
        .map_err(|e| match e {
            Error::Invalid(m) if m.ends_with("no such object") => Error::Invalid(format!(
                "{m}: the manifest at {manifest_at} names a snapshot that is not there; the \
             syncer publishes it again at its next sync (`anamo sync --publish {at}` does at once)"
            )),
            e => e,
        })?;
    let (size, sha256) = digest(partial.path())?;
    if sha256 != manifest.sha256 || size != manifest.size {
        return Err(Error::Invalid(format!(
            "{snapshot} is {size} bytes with sha256 {sha256}, not the {} bytes with sha256 {} \
             its manifest names; nothing was opened: run the command again, and if it says \
             this again, have the syncer publish anew (`anamo sync --publish {at}`)",
            manifest.size, manifest.sha256
        )));
    }
    partial.persist(&path).map_err(|e| Error::Write {
        path: path.clone(),
        source: e.error,
    })?;
    forget_others(&folder, &path);
    Ok(Fetched {
        manifest,
        path,
        downloaded: true,
    })
}

/// The cache folder of one published prefix: its bucket and prefix, made safe as a name.
fn folder_name(at: &S3Uri) -> String {
    format!("{}/{}", at.bucket, at.key)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Deletes the cached versions other than `keep` (a reader that has one open keeps reading
/// it: the file goes when it closes).
fn forget_others(folder: &Path, keep: &Path) {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return;
    };
    for entry in entries.flatten() {
        let p = entry.path();
        if p != keep && p.extension().is_some_and(|e| e == "db") {
            let _ = std::fs::remove_file(p);
        }
    }
}

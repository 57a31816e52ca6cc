//! `sync_runs`: one row per sync of one source, so a failed or interrupted sync is visible.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use rusqlite::params;

use super::Catalog;
use crate::clock::now_ms;
use crate::error::{Error, Result};

/// Held while a sync writes the catalog: an advisory lock on a file beside it, released when
/// the process ends however it ends.
pub struct SyncLock(#[allow(dead_code)] std::fs::File);

fn lock_path(catalog: &Path) -> PathBuf {
    let mut name = catalog.as_os_str().to_owned();
    name.push(".sync-lock");
    PathBuf::from(name)
}

/// Whether another process holds the catalog's sync lock now.
pub fn sync_in_progress(catalog: &Path) -> bool {
    let Ok(file) = std::fs::File::open(lock_path(catalog)) else {
        return false;
    };
    // SAFETY: flock on a descriptor we own; a shared lock we get is dropped with the file.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) != 0 }
}

/// Counts a sync reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunCounts {
    pub seen: u64,
    pub new: u64,
    pub changed: u64,
    pub removed: u64,
}

impl std::ops::AddAssign for RunCounts {
    fn add_assign(&mut self, other: Self) {
        self.seen += other.seen;
        self.new += other.new;
        self.changed += other.changed;
        self.removed += other.removed;
    }
}

/// A sync run in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncRun {
    pub id: i64,
    pub started_at: i64,
}

impl Catalog {
    /// Takes the sync lock, or says who holds it: two syncs at once would fight over the
    /// catalog's writer and one would fail half-way.
    pub fn lock_for_sync(&self) -> Result<SyncLock> {
        self.try_lock_for_sync()?
            .map_err(|busy| Error::Invalid(format!("{busy}; wait for it to finish")))
    }

    /// Waits, up to `limit`, for the sync another process runs to end (its lock to be
    /// released). Errors when it is still running then.
    pub fn wait_for_other_sync(&self, limit: std::time::Duration) -> Result<()> {
        let until = std::time::Instant::now() + limit;
        while sync_in_progress(self.path()) {
            if std::time::Instant::now() >= until {
                return Err(Error::Invalid(format!(
                    "catalog '{}' is still being synced by another process after {}; try again \
                     when it ends (or read without --sync)",
                    self.path().display(),
                    humantime::format_duration(limit)
                )));
            }
            std::thread::sleep(std::time::Duration::from_millis(250));
        }
        Ok(())
    }

    /// The sync lock, or (inner `Err`) a line saying who holds it.
    pub fn try_lock_for_sync(&self) -> Result<std::result::Result<SyncLock, String>> {
        let path = lock_path(self.path());
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| Error::Write {
                path: path.clone(),
                source,
            })?;
        // SAFETY: flock on a descriptor we own.
        let taken = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
        if !taken {
            // Best effort: the line is the same without who holds it.
            let who: Option<(String, i64, i64)> = self
                .read(|conn| {
                    Ok(conn.query_row(
                        "SELECT coalesce(host, '?'), coalesce(pid, 0), started_at FROM sync_runs \
                         WHERE status = 'running' ORDER BY id DESC LIMIT 1",
                        [],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    )?)
                })
                .ok();
            let by = who.map_or(String::new(), |(host, pid, at)| {
                format!(
                    " (pid {pid} on {host}, since {})",
                    crate::clock::rfc3339(at)
                )
            });
            return Ok(Err(format!(
                "catalog '{}' is being synced by another process{by}",
                self.path().display()
            )));
        }
        Ok(Ok(SyncLock(file)))
    }

    /// Records the start of a sync of `source`. Runs left `running` by a process that no longer
    /// exists (killed mid-sync) are marked failed first.
    pub fn start_run(&mut self, source: &str) -> Result<SyncRun> {
        self.fail_abandoned_runs()?;
        self.write(|tx| {
            let started_at = now_ms();
            tx.execute(
                "INSERT INTO sync_runs (source, started_at, status, host, pid) VALUES (?1, ?2, 'running', ?3, ?4)",
                params![source, started_at, crate::host::hostname(), std::process::id()],
            )?;
            Ok(SyncRun {
                id: tx.last_insert_rowid(),
                started_at,
            })
        })
    }

    pub fn finish_run(&mut self, run: &SyncRun, counts: RunCounts) -> Result<()> {
        self.end_run(run, "ok", counts, None)
    }

    pub fn fail_run(&mut self, run: &SyncRun, counts: RunCounts, error: &str) -> Result<()> {
        self.end_run(run, "failed", counts, Some(error))
    }

    /// Ends `run` as ok, or as failed with the error of `result`, which is then returned: the
    /// failure itself is what the user must see, so recording it is best effort.
    pub fn settle_run(
        &mut self,
        run: &SyncRun,
        counts: RunCounts,
        result: Result<()>,
    ) -> Result<()> {
        match result {
            Ok(()) => self.finish_run(run, counts),
            Err(e) => {
                let _ = self.fail_run(run, counts, &e.to_string());
                Err(e)
            }
        }
    }

    fn end_run(
        &mut self,
        run: &SyncRun,
        status: &str,
        c: RunCounts,
        error: Option<&str>,
    ) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "UPDATE sync_runs SET status = ?2, finished_at = ?3, seen = ?4, new = ?5, \
                 changed = ?6, removed = ?7, error = ?8 WHERE id = ?1",
                params![
                    run.id,
                    status,
                    now_ms(),
                    c.seen as i64,
                    c.new as i64,
                    c.changed as i64,
                    c.removed as i64,
                    error
                ],
            )?;
            Ok(())
        })
    }

    fn fail_abandoned_runs(&mut self) -> Result<()> {
        self.write(|tx| {
            let host = crate::host::hostname();
            let mut stmt =
                tx.prepare("SELECT id, host, pid FROM sync_runs WHERE status = 'running'")?;
            let running: Vec<(i64, Option<String>, Option<i64>)> = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<rusqlite::Result<_>>()?;
            for (id, run_host, pid) in running {
                let alive = run_host.as_deref() == Some(host.as_str())
                    && pid.is_some_and(|p| process_alive(p as i32));
                if !alive && run_host.as_deref() == Some(host.as_str()) {
                    tx.execute(
                        "UPDATE sync_runs SET status = 'failed', finished_at = ?2, \
                         error = 'interrupted: the sync process ended before finishing' WHERE id = ?1",
                        params![id, now_ms()],
                    )?;
                }
            }
            Ok(())
        })
    }
}

fn process_alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid, 0) == 0 }
}

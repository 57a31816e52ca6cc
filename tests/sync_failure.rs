//! A sync whose source fails part-way: the batches before the failure stay whole, nothing is
//! marked removed, and `sync_runs` says `failed` with the reason.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anamo::catalog::Catalog;
use anamo::error::{Error, Result};
use anamo::model::*;
use anamo::store::{OpenMode, SqliteStore, TaskStore};
use anamo::sync::{TaskSyncOptions, progress_bar, sync_tasks};

/// A real SQLite store whose scans start failing after `ok_pages` pages, as a store does when
/// its connection drops mid-way.
struct FailingScans {
    inner: SqliteStore,
    ok_pages: usize,
    pages: AtomicUsize,
}

impl TaskStore for FailingScans {
    fn add_tasks(&self, t: &[NewTask], o: AddOptions) -> Result<AddReport> {
        self.inner.add_tasks(t, o)
    }
    fn sample_view(&self, s: &str) -> Result<SampleView> {
        self.inner.sample_view(s)
    }
    fn waiting_samples(&self, c: Option<&str>) -> Result<Vec<String>> {
        self.inner.waiting_samples(c)
    }
    fn promote_task(&self, c: &str, t: &str, v: i64) -> Result<bool> {
        self.inner.promote_task(c, t, v)
    }
    fn has_running(&self, c: &str) -> Result<bool> {
        self.inner.has_running(c)
    }
    fn try_claim(&self, c: &str, o: &str, l: Duration) -> Result<ClaimAttempt> {
        self.inner.try_claim(c, o, l)
    }
    fn count_claimable(&self, c: &str) -> Result<u64> {
        self.inner.count_claimable(c)
    }
    fn heartbeat(&self, c: &mut Claim, l: Duration) -> Result<bool> {
        self.inner.heartbeat(c, l)
    }
    fn finish(&self, c: &Claim, o: &Outcome) -> Result<Option<TaskState>> {
        self.inner.finish(c, o)
    }
    fn release(&self, c: &Claim) -> Result<bool> {
        self.inner.release(c)
    }
    fn release_stale(&self, c: Option<&str>) -> Result<StaleReport> {
        self.inner.release_stale(c)
    }
    fn retry(&self, c: &str, s: &Selector) -> Result<u64> {
        self.inner.retry(c, s)
    }
    fn delete(&self, c: &str, s: &Selector) -> Result<u64> {
        self.inner.delete(c, s)
    }
    fn get(&self, c: &str, id: &str) -> Result<Option<Task>> {
        self.inner.get(c, id)
    }
    fn tombstone(&self, c: &str, id: &str) -> Result<Option<Tombstone>> {
        self.inner.tombstone(c, id)
    }
    fn drop_sample(&self, s: &str, why: &str) -> Result<()> {
        self.inner.drop_sample(s, why)
    }
    fn reinstate_sample(&self, s: &str) -> Result<bool> {
        self.inner.reinstate_sample(s)
    }
    fn scan(&self, f: &TaskFilter, a: Option<&TaskKey>, l: usize) -> Result<Page> {
        if self.pages.fetch_add(1, Ordering::SeqCst) >= self.ok_pages {
            return Err(Error::Invalid("connection reset by peer".into()));
        }
        self.inner.scan(f, a, l)
    }
    fn counts(&self, c: Option<&str>) -> Result<Vec<StateCount>> {
        self.inner.counts(c)
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
}

#[test]
fn a_failed_sync_keeps_whole_batches_and_records_the_failure() {
    let dir = tempfile::tempdir().unwrap();
    let inner = SqliteStore::open(&dir.path().join("t.db"), OpenMode::Create).unwrap();
    let tasks: Vec<NewTask> = (0..50)
        .map(|i| NewTask {
            collection: "A".into(),
            task_id: format!("t{i:02}"),
            sample: None,
            script: "true".into(),
            attrs: Attrs::new(),
            max_attempts: 3,
            timeout_secs: None,
            after: vec![],
        })
        .collect();
    inner.add(&tasks, false).unwrap();
    let mut catalog = Catalog::open(&dir.path().join("c.db")).unwrap();
    let opts = TaskSyncOptions {
        collection: None,
        batch: 10,
        store_changed: false,
    };
    let bar = progress_bar(None, "test");

    // A complete sync first, so a failed one could wrongly mark tasks removed.
    let ok = FailingScans {
        inner,
        ok_pages: usize::MAX,
        pages: AtomicUsize::new(0),
    };
    sync_tasks(&ok, &mut catalog, &opts, &bar).unwrap();
    ok.inner
        .delete("A", &Selector::Ids(vec!["t49".into()]))
        .unwrap();

    let failing = FailingScans {
        inner: ok.inner,
        ok_pages: 2,
        pages: AtomicUsize::new(0),
    };
    let err = sync_tasks(&failing, &mut catalog, &opts, &bar).unwrap_err();
    assert!(err.to_string().contains("connection reset"), "{err}");
    // The catalog's own connection is private: read its file as a user's SQL would.
    let conn = rusqlite::Connection::open(dir.path().join("c.db")).unwrap();
    let (status, error, seen): (String, String, i64) = conn
        .query_row(
            "SELECT status, error, seen FROM sync_runs ORDER BY id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!((status.as_str(), seen), ("failed", 20));
    assert!(error.contains("connection reset"));
    let removed: i64 = conn
        .query_row(
            "SELECT count(*) FROM tasks WHERE removed_at IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(removed, 0, "an incomplete scan marks nothing removed");
    let seen_now: i64 = conn
        .query_row(
            "SELECT count(*) FROM tasks WHERE last_seen_at = (SELECT started_at FROM sync_runs ORDER BY id DESC LIMIT 1)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        seen_now, 20,
        "exactly the two whole batches before the failure landed"
    );
}

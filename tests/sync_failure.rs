//! A sync whose source fails part-way: the batches before the failure stay whole, nothing is
//! marked removed, and `sync_runs` says `failed` with the reason.

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicUsize, Ordering};

use anamo::catalog::Catalog;
use anamo::error::{Error, Result};
use anamo::model::*;
use anamo::store::{OpenMode, SqliteStore, TaskSource, TaskStore};
use anamo::sync::{TaskSyncOptions, progress_bar, sync_tasks};

/// A real SQLite store whose reads start failing after `ok_pages` pages, as a store does when
/// its connection drops mid-way.
struct FailingScans {
    inner: SqliteStore,
    ok_pages: usize,
    pages: AtomicUsize,
}

impl TaskSource for FailingScans {
    fn stream(
        &self,
        filter: &TaskFilter,
        page_size: usize,
        f: &mut dyn FnMut(Page) -> Result<ControlFlow<()>>,
    ) -> Result<()> {
        TaskStore::stream(&self.inner, filter, page_size, &mut |page| {
            if self.pages.fetch_add(1, Ordering::SeqCst) >= self.ok_pages {
                return Err(Error::Invalid("connection reset by peer".into()));
            }
            f(page)
        })
    }
    fn describe(&self) -> String {
        TaskStore::describe(&self.inner)
    }
    fn identity(&self) -> String {
        TaskStore::identity(&self.inner)
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
            require: vec![],
        })
        .collect();
    inner.add(&tasks, false).unwrap();
    let mut catalog = Catalog::open(&dir.path().join("c.db")).unwrap();
    let opts = TaskSyncOptions {
        collection: None,
        batch: 10,
        ..TaskSyncOptions::default()
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

//! `anamo report` at the scale of a national cohort: 100,000 samples x 5 steps (500,000 tasks,
//! in every state), 1,000,000 task events, 500 instances and 190,000 S3 objects in the catalog; the page must stay under 5 MB and
//! be written in under 3 s. Prints the page's size and time beside two floors: the same catalog
//! reads with no page made, and what bare SQLite takes to work out every task's progress once
//! (one GROUP BY over the `task_progress` view; the page needs at least that). Asserts nothing about time.
//! Run: `cargo bench --bench report`. ANAMO_BENCH_SAMPLES sets the cohort (default 100000);
//! ANAMO_BENCH_CATALOG=PATH keeps the filled catalog there (and reuses it on the next run).

use std::time::Instant;

use anamo::catalog::Catalog;

const STEPS: [&str; 5] = [
    "Alignment",
    "ReadProcessing",
    "BQSR",
    "VariantCalling",
    "QC",
];

fn main() {
    let samples: i64 = std::env::var("ANAMO_BENCH_SAMPLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().expect("temp dir");
    // ANAMO_BENCH_CATALOG keeps the filled catalog at that path (and reuses it when it exists),
    // to look at the reads with sqlite3 afterwards.
    let kept = std::env::var_os("ANAMO_BENCH_CATALOG").map(std::path::PathBuf::from);
    let reuse = kept.as_ref().is_some_and(|p| p.exists());
    let path = kept.unwrap_or_else(|| dir.path().join("anamo.db"));
    drop(Catalog::open(&path).expect("catalog"));
    let started = Instant::now();
    if !reuse {
        fill(&path, samples);
    }
    println!(
        "catalog: {samples} samples x {} steps = {} tasks, {} task events (filled in {:.1} s)",
        STEPS.len(),
        samples * STEPS.len() as i64,
        samples * STEPS.len() as i64 * 2,
        started.elapsed().as_secs_f64()
    );
    let conn = anamo::catalog::CatalogRead::open(&path).expect("read-only catalog");
    // The floor's one pass is plain SQLite, beside anamo's handle.
    let raw =
        rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("raw catalog");
    let mut options = anamo::report::Options::new("bench", "anamo.db");
    options.required_kinds = vec!["cram".into(), "crai".into()];
    // The floor: every read the page makes, with no page made.
    let mut floor = f64::MAX;
    let mut page_time = f64::MAX;
    let mut size = 0;
    let mut one_pass = f64::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        let groups: i64 = raw
            .query_row(
                "SELECT count(*) FROM (SELECT progress, count(*) FROM task_progress GROUP BY 1)",
                [],
                |r| r.get(0),
            )
            .expect("one pass");
        assert!(groups > 0);
        one_pass = one_pass.min(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let mut each = vec![];
        let mut time = |what: &'static str, f: &dyn Fn()| {
            let t = Instant::now();
            f();
            each.push((what, t.elapsed().as_secs_f64()));
        };
        time("overview", &|| drop(conn.overview().expect("overview")));
        time("per day", &|| {
            drop(conn.finished_per_day().expect("per day"))
        });
        time("over time", &|| {
            drop(conn.finished_over_time(120).expect("over time"))
        });
        time("run times", &|| drop(conn.run_times().expect("run times")));
        time("slowest", &|| drop(conn.slowest(10).expect("slowest")));
        time("samples", &|| {
            drop(conn.sample_standing(200).expect("samples"))
        });
        time("failures", &|| drop(conn.failures(50).expect("failures")));
        time("instances", &|| {
            let now = anamo::clock::now_ms();
            drop(
                conn.instance_timeline(now - 48 * 3_600_000, now, 40)
                    .expect("timeline"),
            )
        });
        time("files", &|| {
            drop(conn.objects_by_kind().expect("kinds"));
            drop(conn.samples_missing("crai", 20).expect("missing"));
        });
        floor = floor.min(t.elapsed().as_secs_f64());
        eprintln!("reads: {each:.2?}");
        let t = Instant::now();
        let page = anamo::report::render(&conn, &options).expect("report");
        std::fs::write(dir.path().join("r.html"), &page).expect("write");
        page_time = page_time.min(t.elapsed().as_secs_f64());
        size = page.len();
    }
    println!("{:<40} {:>10} {:>12}", "best of 3", "seconds", "size (KiB)");
    println!(
        "{:<40} {:>10.2} {:>12}",
        "anamo report (reads + page + write)",
        page_time,
        size / 1024
    );
    println!("{:<40} {:>10.2}", "the same reads in turn, no page", floor);
    println!(
        "{:<40} {:>10.2}",
        "floor: every task's progress, once", one_pass
    );
    println!(
        "  ratio page / one pass: {:.1}; targets: under 3 s, under 5 MB",
        page_time / one_pass
    );
}

/// Tasks in every state over 30 days, two events each, in a few INSERT ... SELECT.
fn fill(path: &std::path::Path, samples: i64) {
    let conn = rusqlite::Connection::open(path).expect("open");
    let day = 86_400_000i64;
    let start = 1_790_000_000_000i64;
    conn.execute_batch(&format!(
        "BEGIN;
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {samples})
         INSERT INTO samples (sample_id, cohort, status, metadata, imported_at)
         SELECT printf('S%06d', i), 'cohort-' || (i % 7), 'active', '{{}}', {start} FROM n;
         {steps}
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {samples})
         INSERT INTO tasks (collection, task_id, sample, script, state, attempts, max_attempts,
                            owner, created_at, updated_at, started_at, finished_at, exit_code,
                            error_tail, version, first_seen_at, last_seen_at)
         SELECT s.collection, printf('S%06d', n.i), printf('S%06d', n.i), 'run.sh',
                CASE WHEN (n.i * 7 + s.ordinal) % 100 < 90 - s.ordinal * 15 THEN 'done'
                     WHEN (n.i + s.ordinal) % 50 = 0 THEN 'failed'
                     WHEN (n.i + s.ordinal) % 9 = 0 THEN 'running'
                     WHEN s.ordinal > 0 THEN 'waiting' ELSE 'todo' END,
                1, 3, 'i-' || (n.i % 500),
                {start}, {start} + (n.i % 30) * {day},
                {start} + (n.i % 30) * {day} + s.ordinal * 3600000,
                {start} + (n.i % 30) * {day} + s.ordinal * 3600000 + (n.i % 97 + 1) * 60000,
                0, CASE WHEN (n.i + s.ordinal) % 50 = 0 THEN 'exit 1: truncated BAM' END,
                1, {start}, {start}
         FROM n CROSS JOIN steps s;
         UPDATE tasks SET started_at = NULL, finished_at = NULL
             WHERE state IN ('todo', 'waiting');
         UPDATE tasks SET finished_at = NULL WHERE state = 'running';
         WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 499)
         INSERT INTO instances (instance_id, step, state, instance_type, lifecycle, launch_time,
                                terminated_at, first_seen_at, last_seen_at)
         SELECT 'i-' || i, (SELECT collection FROM steps WHERE ordinal = i % 5), 'terminated',
                'm5.xlarge', CASE WHEN i % 4 = 0 THEN 'on-demand' ELSE 'spot' END,
                {start}, {start} + 30 * {day}, {start}, {start} + 30 * {day}
         FROM n;
         INSERT INTO objects (bucket, key, size, sample_id, kind, first_seen_at, last_seen_at)
         SELECT 'cohort', sample_id || '/' || sample_id || '.cram', 30000000000, sample_id,
                'cram', {start}, {start} FROM samples;
         INSERT INTO objects (bucket, key, size, sample_id, kind, first_seen_at, last_seen_at)
         SELECT 'cohort', sample_id || '/' || sample_id || '.cram.crai', 1500000, sample_id,
                'crai', {start}, {start} FROM samples WHERE sample_id NOT LIKE '%7';
         INSERT INTO task_events (collection, task_id, at, from_state, to_state, attempts,
                                  source)
         SELECT collection, task_id, created_at, 'unseen', 'todo', 0, 'sync' FROM tasks;
         INSERT INTO task_events (collection, task_id, at, from_state, to_state, attempts,
                                  source)
         SELECT collection, task_id, coalesce(finished_at, updated_at), 'todo', state, 1, 'sync'
         FROM tasks;
         COMMIT;",
        steps = STEPS
            .iter()
            .enumerate()
            .map(|(i, s)| format!("INSERT INTO steps (collection, ordinal) VALUES ('{s}', {i});"))
            .collect::<String>()
    ))
    .expect("fill the catalog");
}

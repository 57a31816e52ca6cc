//! One syncer, many readers, on the emulator's S3: `sync --watch --publish` publishing while
//! readers in other folders read `--catalog s3://...` (each version whole, its sha256 checked;
//! a reader with the current version transfers only the manifest), and the faults: no bucket,
//! a kill -9 between the snapshot upload and the manifest, S3 errors mid-publish.

use std::time::{Duration, Instant};

use crate::harness::moto::Moto;
use crate::harness::{Env, Running, wait_for};

const AT: &str = "s3://cohort-team/published/";

/// An emulator (with `faults`) with the bucket, and the syncer's env: a SQLite store with
/// tasks in one step, its catalog.
fn start(faults: Option<&str>) -> Option<(Moto, Env)> {
    let moto = Moto::start_with_faults(faults)?;
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let config = rt.block_on(anamo::aws::config(&moto.aws()));
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    );
    rt.block_on(s3.create_bucket().bucket("cohort-team").send())
        .expect("bucket");
    let env = Env::new().with_vars(moto.env());
    env.write(
        "t.csv",
        "task_id,sample,script\nt1,S1,true\nt2,S2,true\nt3,S3,exit 3\n",
    );
    env.ok(&[
        "tasks",
        "add",
        "t.csv",
        "-c",
        "Align",
        "--max-attempts",
        "1",
    ]);
    Some((moto, env))
}

/// A reader in its own folder with its own cache.
fn reader(moto: &Moto) -> Env {
    let env = Env::new();
    let cache = env.path("cache");
    env.with_vars(
        moto.env()
            .into_iter()
            .chain([("ANAMO_CACHE", cache.display().to_string())])
            .collect(),
    )
}

fn syncer(env: &Env, every: &str) -> Running {
    env.anamo(&["sync", "--watch", "--every", every, "--publish", AT])
        .stderr_matches("(?s).*")
        .spawn()
}

/// How many tasks of step Align the published catalog holds as done, read as a reader does.
fn done_read(r: &Env) -> (i64, String) {
    let out = r
        .anamo(&[
            "--catalog",
            AT,
            "query",
            "SELECT count(*) FROM tasks WHERE state = 'done'",
            "--format",
            "tsv",
        ])
        .stderr_matches(
            r"catalog s3://cohort-team/published/ as of \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ(, synced again at \S+Z with nothing new)?, published by \S+ \((downloaded, \d+ KiB|cached)\)\n",
        )
        .output();
    let n = out
        .stdout
        .lines()
        .nth(1)
        .expect("a row")
        .parse()
        .expect("a count");
    (n, out.stderr)
}

#[test]
fn readers_see_whole_versions_while_the_syncer_publishes() {
    let Some((moto, env)) = start(None) else {
        return;
    };
    let running = syncer(&env, "1s");
    let (a, b) = (reader(&moto), reader(&moto));
    // The first publish comes after the first sync, whatever it found.
    assert!(
        wait_for(Duration::from_secs(30), || running
            .stdout_now()
            .contains("published version")),
        "no publish: {}",
        running.stdout_now()
    );
    assert_eq!(done_read(&a).0, 0);
    // Work happens; readers read all along, each read a whole version (its sha256 checked).
    env.ok(&["worker", "-c", "Align"]);
    let until = Instant::now() + Duration::from_secs(30);
    let mut seen = vec![];
    loop {
        let (n, _) = done_read(&a);
        let (m, _) = done_read(&b);
        seen.push((n, m));
        if n == 2 && m == 2 {
            break;
        }
        assert!(
            Instant::now() < until,
            "readers never saw the work: {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    // Versions only move forward for each reader.
    assert!(
        seen.windows(2)
            .all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1),
        "{seen:?}"
    );
    // A sync that finds nothing new says so in the manifest: readers see the syncer is alive.
    assert!(
        wait_for(Duration::from_secs(10), || done_read(&a)
            .1
            .contains("with nothing new")),
        "no quiet sync noted"
    );
    // `logs` finds a task in the published catalog, though this folder has no store.
    let logs = a
        .anamo(&["--catalog", AT, "logs", "t3"])
        .stderr_matches("(?s).*")
        .fails(1)
        .output();
    assert!(
        logs.stderr
            .contains("catalog s3://cohort-team/published/ as of"),
        "{}",
        logs.stderr
    );
    assert!(!logs.stderr.contains("no task 't3'"), "{}", logs.stderr);
    running.stop(libc::SIGTERM, Duration::from_secs(30));

    // With the version it has, a reader transfers only the manifest.
    let before = moto.s3_requests().len();
    let (n, said) = done_read(&a);
    assert_eq!(n, 2);
    assert!(said.contains("(cached)"), "{said}");
    let sent: Vec<_> = moto.s3_requests()[before..].to_vec();
    assert_eq!(
        sent,
        [(
            "GET".to_string(),
            "/cohort-team/published/latest.json".to_string()
        )],
        "only the manifest"
    );

    // status.json is small and says the counts; the report is there.
    let r = reader(&moto);
    let out = r
        .anamo(&["--catalog", AT, "status", "--format", "tsv"])
        .stderr_matches("(?s)catalog s3://cohort-team/published/ as of .*")
        .run();
    assert!(out.contains("Align\t0\t0\t0\t0\t2\t1\t3"), "{out}");

    // A command that writes the catalog refuses a published one, naming the syncer.
    r.anamo(&["--catalog", AT, "steps", "set", "Align"])
        .fails(1)
        .stderr_starts_with(
            "error: --catalog s3://cohort-team/published/ is a published catalog, read-only \
             here; run this command where its syncer runs",
        )
        .run();
    r.anamo(&["--catalog", AT, "sync"])
        .fails(1)
        .stderr_one_line_with("is a published catalog, read-only here")
        .run();
}

#[test]
fn publishing_to_a_missing_bucket_is_one_line_at_start() {
    let Some((_moto, env)) = start(None) else {
        return;
    };
    env.anamo(&["sync", "--watch", "--publish", "s3://no-such-bucket/p/"])
        .fails(1)
        .stderr_one_line_with("no-such-bucket")
        .run();
}

#[test]
fn a_syncer_killed_between_snapshot_and_manifest_leaves_the_previous_version_readable() {
    // The second manifest PUT stalls (then fails): the syncer is killed while it waits. Its
    // second sync, 3 s after the first, finds the worker's results and publishes them.
    let Some((moto, env)) = start(Some("PUT@latest.json:1/2:stall")) else {
        return;
    };
    let running = syncer(&env, "3s");
    assert!(
        wait_for(Duration::from_secs(30), || running
            .stdout_now()
            .contains("published version")),
        "no first publish"
    );
    let r = reader(&moto);
    assert_eq!(done_read(&r).0, 0);
    env.ok(&["worker", "-c", "Align"]);
    let manifest_puts = || {
        moto.s3_requests()
            .iter()
            .filter(|(m, p)| m == "PUT" && p.ends_with("/latest.json"))
            .count()
    };
    assert!(
        wait_for(Duration::from_secs(30), || manifest_puts() == 2),
        "the second publish never reached its manifest"
    );
    running.kill(Duration::from_secs(10));
    // Its snapshot was uploaded; the manifest still names the first version, whole.
    let snapshots = moto
        .s3_requests()
        .iter()
        .filter(|(m, p)| m == "PUT" && p.contains("/published/catalogs/"))
        .count();
    assert_eq!(
        snapshots, 2,
        "the second snapshot was uploaded before the kill"
    );
    assert_eq!(done_read(&r).0, 0, "the previous version, still whole");
}

#[test]
fn s3_errors_mid_publish_are_retried_and_never_leave_a_torn_version() {
    // The last PUT of every five is denied: the first publish loses its manifest, later ones
    // their snapshot, status or report; each is tried again.
    let Some((moto, env)) = start(Some("PUT:1/5:denied")) else {
        return;
    };
    let running = env
        .anamo(&["sync", "--watch", "--every", "1s", "--publish", AT])
        .stderr_contains("publish failed (try 1 of 3)")
        .stderr_contains("injected by the test: access denied")
        .spawn();
    let r = reader(&moto);
    assert!(
        wait_for(Duration::from_secs(60), || running
            .stdout_now()
            .contains("published version")),
        "no publish got through"
    );
    env.ok(&["worker", "-c", "Align"]);
    let until = Instant::now() + Duration::from_secs(60);
    while done_read(&r).0 != 2 {
        assert!(Instant::now() < until, "the work never got published");
        std::thread::sleep(Duration::from_millis(500));
    }
    running.stop(libc::SIGTERM, Duration::from_secs(30));
}

#[test]
fn the_syncer_stops_after_its_sync_on_sigterm_and_at_once_on_a_second() {
    // A store big enough that its first sync takes a while: the signals land during it.
    let env = Env::new();
    let mut csv = String::from("task_id,script\n");
    for i in 0..60_000 {
        csv.push_str(&format!("t{i},true\n"));
    }
    env.write("t.csv", &csv);
    env.ok(&["tasks", "add", "t.csv", "-c", "Align"]);
    for (signals, code) in [(1, 0), (2, 1)] {
        let catalog = format!("catalog-{signals}.db");
        let mut run = env.anamo(&["--catalog", &catalog, "sync", "--watch", "--every", "60s"]);
        run = if code == 0 {
            run.stderr_contains("stopping after the sync under way")
                .stderr_contains("stopped by a signal, after the sync under way")
        } else {
            run.fails(code)
                .stderr_contains("stopped at once; the next sync mends what this one left")
        };
        let mut running = run.spawn();
        // Its first line comes before the first sync.
        let started = Instant::now();
        while !running.exited() && std::fs::metadata(env.path(&catalog)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(20), "never started");
            std::thread::sleep(Duration::from_millis(5));
        }
        // Apart, so the kernel does not merge them.
        for _ in 0..signals {
            running.signal(libc::SIGTERM);
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = running.wait(Duration::from_secs(60));
        // One signal: the sync under way ends, and is said; two: it is cut short.
        assert_eq!(
            out.stdout.contains("60000 seen"),
            code == 0,
            "{}",
            out.stdout
        );
    }
}

#[test]
fn a_cron_publish_follows_the_catalog_not_only_the_sync() {
    let Some((moto, env)) = start(None) else {
        return;
    };
    let publish = || env.ok(&["sync", "--publish", AT]);
    assert!(publish().contains("published version"));
    assert!(publish().contains("nothing new to publish"), "a quiet sync");
    // A change made beside the syncer (its catalog, not a sync) reaches the readers.
    env.ok(&["steps", "set", "Align"]);
    assert!(
        publish().contains("published version"),
        "steps set is published"
    );
    assert!(publish().contains("nothing new to publish"));
    // The snapshot the manifest names is deleted: published anew, not noted as current.
    let key = moto
        .s3_requests()
        .iter()
        .rev()
        .find(|(m, p)| m == "PUT" && p.contains("/published/catalogs/"))
        .map(|(_, p)| p.trim_start_matches("/cohort-team/").to_string())
        .expect("a snapshot");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let config = rt.block_on(anamo::aws::config(&moto.aws()));
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    );
    rt.block_on(s3.delete_object().bucket("cohort-team").key(&key).send())
        .expect("delete");
    let r = reader(&moto);
    r.anamo(&["--catalog", AT, "status"])
        .fails(1)
        .stderr_one_line_with("names a snapshot that is not there; the syncer publishes it again")
        .run();
    assert!(
        publish().contains("published version"),
        "a gone snapshot is published anew"
    );
    assert_eq!(done_read(&r).0, 0);
}

//! S3 on the moto emulator: object listings into the catalog (sample ids, kinds, removals,
//! pattern errors), the S3 reports, and worker logs uploaded to S3 and read back by `anamo logs`.

use std::collections::BTreeMap;

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use serde_json::Value;

use crate::harness::moto::Moto;
use crate::harness::{Env, WARN};

struct Bucket {
    _moto: Moto,
    env: Env,
    rt: tokio::runtime::Runtime,
    s3: Client,
}

impl Bucket {
    /// An emulator with the given buckets; the env talks to it (SQLite store, local catalog).
    fn start(buckets: &[&str]) -> Option<Bucket> {
        let moto = Moto::start()?;
        let env = Env::new().with_vars(moto.env());
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let config = rt.block_on(anamo::aws::config(&moto.aws()));
        let s3 = Client::from_conf(
            aws_sdk_s3::config::Builder::from(&config)
                .force_path_style(true)
                .build(),
        );
        for b in buckets {
            rt.block_on(s3.create_bucket().bucket(*b).send())
                .expect("create bucket");
        }
        Some(Bucket {
            _moto: moto,
            env,
            rt,
            s3,
        })
    }

    fn put(&self, bucket: &str, keys: &[(String, usize)]) {
        self.rt.block_on(async {
            for chunk in keys.chunks(50) {
                let puts = chunk.iter().map(|(key, size)| {
                    self.s3
                        .put_object()
                        .bucket(bucket)
                        .key(key)
                        .body(ByteStream::from(vec![b'x'; *size]))
                        .send()
                });
                for r in futures_join(puts).await {
                    r.expect("put object");
                }
            }
        });
    }

    fn delete(&self, bucket: &str, keys: &[String]) {
        for k in keys {
            self.rt
                .block_on(self.s3.delete_object().bucket(bucket).key(k).send())
                .expect("delete");
        }
    }

    fn etag(&self, bucket: &str, key: &str) -> String {
        let out = self
            .rt
            .block_on(self.s3.head_object().bucket(bucket).key(key).send())
            .expect("head object");
        out.e_tag()
            .unwrap_or_default()
            .trim_matches('"')
            .to_string()
    }

    fn query(&self, args: &[&str]) -> Vec<Value> {
        let mut all = vec!["query"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--format", "json"]);
        serde_json::from_str(&self.env.ok(&all)).expect("json rows")
    }
}

/// Awaits futures one after another (the emulator serves one request at a time anyway).
async fn futures_join<F: std::future::Future>(futs: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut out = vec![];
    for f in futs {
        out.push(f.await);
    }
    out
}

/// The ten files of one sample under `study/`, with each one's kind.
fn sample_files(sample: &str) -> Vec<(String, &'static str)> {
    [
        ("R1.fastq.gz", "fastq"),
        ("R2.fastq.gz", "fastq"),
        ("bam", "bam"),
        ("bam.bai", "bai"),
        ("cram", "cram"),
        ("cram.crai", "crai"),
        ("g.vcf.gz", "gvcf"),
        ("g.vcf.gz.tbi", "tbi"),
        ("vcf.gz", "vcf"),
        ("qc.json", "other"),
    ]
    .into_iter()
    .map(|(ext, kind)| (format!("study/{sample}/{sample}.{ext}"), kind))
    .collect()
}

#[test]
fn two_thousand_objects_over_two_hundred_samples() {
    let Some(b) = Bucket::start(&["cohort"]) else {
        return;
    };
    let samples: Vec<String> = (1..=200).map(|i| format!("S{i:03}")).collect();
    let mut keys = vec![];
    let mut want: BTreeMap<String, (String, &str)> = BTreeMap::new();
    for s in &samples {
        for (i, (key, kind)) in sample_files(s).into_iter().enumerate() {
            keys.push((key.clone(), 10 + i));
            want.insert(key, (s.clone(), kind));
        }
    }
    // Outside any sample folder, and a sample the study does not have.
    keys.push(("study/README.txt".into(), 5));
    keys.push(("study/S999/S999.cram".into(), 7));
    b.put("cohort", &keys);
    let sheet: String = samples
        .iter()
        .chain(std::iter::once(&"S201".to_string()))
        .map(|s| format!("{s},C1\n"))
        .collect();
    b.env
        .write("samples.csv", &format!("sample_id,cohort\n{sheet}"));
    b.env.ok(&["samples", "import", "samples.csv"]);

    let out = b
        .env
        .ok(&["sync", "--no-tasks", "--objects", "s3://cohort/study/"]);
    assert!(
        out.contains(
            "synced objects from s3://cohort/study/: 2002 seen, 2002 new, 0 changed, 0 removed"
        ),
        "{out}"
    );
    let rows = b.query(&["SELECT key, sample_id, kind, size FROM objects WHERE key LIKE 'study/S%' AND sample_id <> 'S999'"]);
    assert_eq!(rows.len(), 2000);
    for r in &rows {
        let (sample, kind) = &want[r["key"].as_str().unwrap()];
        assert_eq!(r["sample_id"].as_str(), Some(sample.as_str()), "{r}");
        assert_eq!(r["kind"].as_str(), Some(*kind), "{r}");
    }
    let readme =
        &b.query(&["SELECT sample_id, kind FROM objects WHERE key = 'study/README.txt'"])[0];
    assert!(readme["sample_id"].is_null(), "{readme}");

    // A second sync changes nothing; a deleted sample's files get removed_at and stay.
    let out = b
        .env
        .ok(&["sync", "--no-tasks", "--objects", "s3://cohort/study/"]);
    assert!(
        out.contains("2002 seen, 0 new, 0 changed, 0 removed"),
        "{out}"
    );
    let gone: Vec<String> = sample_files("S007").into_iter().map(|(k, _)| k).collect();
    b.delete("cohort", &gone);
    let out = b
        .env
        .ok(&["sync", "--no-tasks", "--objects", "s3://cohort/study/"]);
    assert!(
        out.contains("1992 seen, 0 new, 0 changed, 10 removed"),
        "{out}"
    );
    let removed = b.query(&[
        "SELECT count(*) AS n FROM objects WHERE sample_id = 'S007' AND removed_at IS NOT NULL",
    ]);
    assert_eq!(removed[0]["n"], 10);

    // Reports over the listing.
    let missing: Vec<Value> = b.query(&["samples-missing-files", "--param", "kind=cram"]);
    let ids: Vec<&str> = missing
        .iter()
        .map(|r| r["sample_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["S007", "S201"]);
    let loose: Vec<String> = b
        .query(&["files-without-sample"])
        .iter()
        .map(|r| r["key"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(loose, ["study/README.txt", "study/S999/S999.cram"]);
    let storage = b.query(&["storage-by-sample", "--param", "sample=S001"]);
    assert_eq!(storage.len(), 9, "nine kinds: {storage:?}");
    let fastq = storage.iter().find(|r| r["kind"] == "fastq").unwrap();
    assert_eq!(
        (fastq["files"].as_i64(), fastq["bytes"].as_i64()),
        (Some(2), Some(10 + 11))
    );
}

#[test]
fn sample_patterns_read_ids_anywhere_and_bad_ones_are_refused() {
    let Some(b) = Bucket::start(&["crams"]) else {
        return;
    };
    b.put(
        "crams",
        &[
            ("batch1/NA12878.final.cram".to_string(), 3),
            ("batch2/x/NA19240.final.cram.crai".to_string(), 3),
            ("batch2/notes.txt".to_string(), 3),
        ],
    );
    let out = b.env.ok(&[
        "sync",
        "--no-tasks",
        "--objects",
        "s3://crams/",
        "--sample-pattern",
        r"(?P<sample>NA\d+)\.",
    ]);
    assert!(out.contains("3 seen, 3 new"), "{out}");
    let rows = b.query(&["SELECT key, sample_id, kind FROM objects ORDER BY key"]);
    let got: Vec<(Value, Value)> = rows
        .iter()
        .map(|r| (r["sample_id"].clone(), r["kind"].clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("NA12878".into(), "cram".into()),
            (Value::Null, "other".into()),
            ("NA19240".into(), "crai".into()),
        ]
    );

    let before = std::fs::read(b.env.path("anamo.db")).unwrap();
    for (pattern, says) in [
        ("(?P<sample>[", "is not a valid regex"),
        (r"^([^/]+)/", "has no group named sample"),
    ] {
        // Names the fix.
        b.env
            .anamo(&[
                "sync",
                "--objects",
                "s3://crams/",
                "--sample-pattern",
                pattern,
            ])
            .fails(1)
            .stderr_one_line_with(says)
            .stderr_contains("(?P<sample>")
            .run();
    }
    b.env
        .anamo(&["sync", "--objects", "crams/x"])
        .fails(1)
        .stderr_one_line_with("is not an S3 URI; write s3://BUCKET/PREFIX")
        .run();
    assert_eq!(
        std::fs::read(b.env.path("anamo.db")).unwrap(),
        before,
        "nothing written"
    );

    // The same source from anamo.toml.
    b.env.write(
        "anamo.toml",
        "[[sync.objects]]\nuri = \"s3://crams/batch1/\"\nsample_pattern = '(?P<sample>NA\\d+)'\n",
    );
    let out = b.env.ok(&["sync", "--no-tasks"]);
    assert!(
        out.contains("synced objects from s3://crams/batch1/: 1 seen, 0 new"),
        "{out}"
    );
    b.env.write("anamo.toml", "[sync]\nobject = []\n");
    b.env
        .anamo(&["sync"])
        .fails(1)
        .stderr_starts_with("error: anamo.toml:2: unknown field `object`")
        .run();
}

#[test]
fn step_outputs_finds_done_tasks_whose_output_is_missing() {
    let Some(b) = Bucket::start(&["out"]) else {
        return;
    };
    b.put(
        "out",
        &[
            ("crams/S1.cram".to_string(), 4),
            ("special/s2-final.cram".to_string(), 4),
        ],
    );
    b.env.write(
        "t.csv",
        "task_id,sample,script,output\n\
         a1,S1,true,\n\
         a2,S2,true,s3://out/special/s2-final.cram\n\
         a3,S3,true,\n",
    );
    b.env.ok(&["tasks", "add", "t.csv", "-c", "Alignment"]);
    b.env.ok(&["worker", "-c", "Alignment"]);
    b.env.ok(&[
        "steps",
        "output",
        "Alignment",
        "s3://out/crams/{sample}.cram",
    ]);
    b.env.ok(&["sync", "--objects", "s3://out/"]);
    let rows = b.query(&["step-outputs", "--param", "step=Alignment"]);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["task_id"], "a3");
    assert_eq!(rows[0]["expected"], "s3://out/crams/S3.cram");
    b.env
        .anamo(&["steps", "output", "Alignment", "crams/{sample}.cram"])
        .fails(1)
        .stderr_one_line_with("is not an S3 URI")
        .run();
}

#[test]
fn worker_logs_go_to_s3_and_come_back() {
    let Some(b) = Bucket::start(&["logs"]) else {
        return;
    };
    b.env.write(
        "t.csv",
        "task_id,script\n\
         hello,echo hello from $ANAMO_TASK_ID; echo to stderr >&2\n\
         big,head -c 9437184 /dev/zero | tr '\\0' a\n\
         flaky,if [ -f marker ]; then echo second try; else touch marker; echo first try; exit 1; fi\n",
    );
    b.env
        .ok(&["tasks", "add", "t.csv", "-c", "Logs", "--max-attempts", "2"]);
    let out = b
        .env
        .ok(&["worker", "-c", "Logs", "--log-uri", "s3://logs/anamo/"]);
    assert!(out.contains("3 done, 0 failed, 1 retried"), "{out}");
    assert_eq!(
        b.env.task("hello")["log_uri"],
        "s3://logs/anamo/Logs/hello/1.log"
    );
    assert_eq!(
        b.env.task("flaky")["log_uri"],
        "s3://logs/anamo/Logs/flaky/2.log"
    );

    let log = b.env.ok(&["logs", "hello"]);
    assert!(log.contains("hello from hello\n"), "{log}");
    assert!(log.contains("to stderr\n"), "{log}");
    assert_eq!(
        b.env.ok(&["logs", "flaky", "--attempt", "1"]),
        "first try\n"
    );
    assert_eq!(b.env.ok(&["logs", "flaky"]), "second try\n");
    let big = b.env.ok(&["logs", "big"]);
    assert_eq!(big.len(), 9 * 1024 * 1024);
    assert!(big.bytes().all(|c| c == b'a'));
    // Over 8 MiB: uploaded in two parts (a multipart ETag ends in -PARTS).
    assert!(b.etag("logs", "anamo/Logs/big/1.log").ends_with("-2"));
    b.env
        .anamo(&["logs", "flaky", "--attempt", "3"])
        .fails(1)
        .stderr_one_line_with("has had 2 run(s); --run 3 does not exist")
        .run();

    // Tasks deleted from the store after a sync: the catalog still knows where the log is.
    b.env.ok(&["sync"]);
    b.env.ok(&["tasks", "delete", "-c", "Logs", "--all"]);
    assert!(b.env.ok(&["logs", "hello"]).contains("hello from hello"));
    b.env
        .anamo(&["logs", "nobody"])
        .fails(1)
        .stderr_one_line_with("no task 'nobody' in the store or the catalog")
        .run();
}

#[test]
fn a_log_destination_is_checked_before_claiming_and_failed_uploads_are_counted() {
    let Some(b) = Bucket::start(&["logs"]) else {
        return;
    };
    // The bucket is gone by the time the log is uploaded (the script removes it).
    let py = std::env::var("ANAMO_PYTHON")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python").to_string());
    let script = format!(
        "echo kept here; {py} -c 'import boto3; b = boto3.resource(\"s3\").Bucket(\"logs\"); \
         b.objects.all().delete(); b.delete()'"
    );
    b.env.ok(&[
        "tasks", "add", "-c", "Logs", "--id", "t1", "--script", &script,
    ]);
    // A bucket that does not exist: refused before anything is claimed.
    b.env
        .anamo(&["worker", "-c", "Logs", "--log-uri", "s3://no-such-bucket/x"])
        .fails(1)
        .stderr_one_line_with("error: worker cannot write its logs under s3://no-such-bucket/x: cannot write s3://no-such-bucket/x/.anamo-write-check-")
        .stderr_contains("NoSuchBucket")
        .stderr_contains("fix --log-uri (the bucket must exist) or give the instance role s3:PutObject and s3:DeleteObject there. Nothing was claimed")
        .stderr_contains("(s3:PutObject)")
        .run();
    assert_eq!(b.env.task("t1")["state"], "todo", "nothing was claimed");

    let stdout = b
        .env
        .anamo(&[
            "worker",
            "-c",
            "Logs",
            "--log-uri",
            "s3://logs/x",
            "--log-dir",
            "local-logs",
        ])
        .stderr_matches(WARN)
        .stderr_contains("Logs/t1: log upload failed, kept at")
        .run();
    assert!(
        stdout.contains("1 done, 0 failed")
            && stdout.contains("; 1 log upload(s) failed (kept on this machine)"),
        "{stdout}"
    );
    let t = b.env.task("t1");
    assert_eq!(t["state"], "done");
    let local = t["log_uri"].as_str().unwrap();
    assert!(local.ends_with("local-logs/Logs/t1/1.log"), "{local}");
    assert_eq!(b.env.ok(&["logs", "t1"]), "kept here\n");
}

#[test]
fn the_results_prefix_is_checked_before_claiming_and_no_probe_is_left() {
    let Some(mut b) = Bucket::start(&["results"]) else {
        return;
    };
    b.env.vars.push((
        "ANAMO_SHUTDOWN_COMMAND".into(),
        "echo off >> powered-off.txt".into(),
    ));
    let env = &b.env;
    env.ok(&[
        "tasks",
        "add",
        "-c",
        "Align",
        "--id",
        "t1",
        "--script",
        "echo \"$ANAMO_RESULTS\" > where.txt",
    ]);
    // A bucket that does not exist: nothing claimed, the machine powers off.
    env.anamo(&[
        "worker",
        "-c",
        "Align",
        "--results",
        "s3://no-such-bucket/{collection}/",
        "--shutdown-on-exit",
    ])
    .fails(1)
    .stderr_starts_with(
        "error: worker cannot write the step's results under s3://no-such-bucket/Align/: cannot \
         write s3://no-such-bucket/Align/.anamo-write-check-",
    )
    .stderr_contains("NoSuchBucket")
    .stderr_contains(
        "the bucket must exist and the instance role needs s3:PutObject and s3:DeleteObject \
         there. Nothing was claimed\nshutting down: echo off >> powered-off.txt\n",
    )
    .run();
    assert_eq!(env.task("t1")["state"], "todo", "nothing was claimed");
    assert_eq!(
        crate::harness::file_lines(&env.path("powered-off.txt")),
        ["off"]
    );
    // A pattern that names what a step-wide prefix cannot know is refused.
    env.anamo(&[
        "worker",
        "-c",
        "Align",
        "--results",
        "s3://results/{sample}/",
    ])
    .fails(1)
    .stderr_one_line_with("--results: unknown placeholder {sample}; known: {collection}")
    .run();
    // A writable prefix (without its slash: the same folder): the task runs and gets it,
    // and no probe object is left behind.
    let out = env.ok(&[
        "worker",
        "-c",
        "Align",
        "--results",
        "s3://results/out/{collection}",
    ]);
    assert!(out.contains("1 done"), "{out}");
    assert_eq!(env.read("where.txt"), "s3://results/out/Align/\n");
    let left =
        b.rt.block_on(b.s3.list_objects_v2().bucket("results").send())
            .expect("list");
    assert_eq!(left.key_count(), Some(0), "{:?}", left.contents());
}

#[test]
fn a_prefix_without_its_slash_is_the_same_folder_and_sample_id_changes_are_told() {
    let Some(b) = Bucket::start(&["cohort"]) else {
        return;
    };
    let keys: Vec<(String, usize)> = [
        "study/S1/S1.cram",
        "study/S1/S1.cram.crai",
        "study/S2/S2.cram",
        "study2/X/X.cram",
    ]
    .iter()
    .map(|k| (k.to_string(), 3))
    .collect();
    b.put("cohort", &keys);
    let ids = |b: &Bucket| -> Vec<String> {
        b.query(&["SELECT key || '=' || coalesce(sample_id, '-') AS k FROM objects ORDER BY key"])
            .iter()
            .map(|r| r["k"].as_str().unwrap().to_string())
            .collect()
    };
    let want = [
        "study/S1/S1.cram=S1",
        "study/S1/S1.cram.crai=S1",
        "study/S2/S2.cram=S2",
    ];
    // With the slash, then without it: the same folder, the same ids, nothing changed.
    let out = b
        .env
        .ok(&["sync", "--no-tasks", "--objects", "s3://cohort/study/"]);
    assert!(
        out.contains("3 seen, 3 new, 0 changed, 0 removed; 3 with a sample id"),
        "{out}"
    );
    // No warning when ids are kept.
    let out = b
        .env
        .ok(&["sync", "--no-tasks", "--objects", "s3://cohort/study"]);
    assert!(
        out.contains("synced objects from s3://cohort/study/: 3 seen, 0 new, 0 changed, 0 removed; 3 with a sample id (pattern '^(?P<sample>[^/]+)/')"),
        "{out}"
    );
    assert_eq!(
        ids(&b),
        want,
        "study2/ is another folder, and no id was wiped"
    );

    // Another pattern that fits no key: the cleared ids are changes, and both are said.
    let out = b
        .env
        .anamo(&[
            "sync",
            "--no-tasks",
            "--objects",
            "s3://cohort/study",
            "--sample-pattern",
            r"(?P<sample>NA\d+)",
        ])
        .stderr(
            "warning: no key under s3://cohort/study/ matched the sample pattern '(?P<sample>NA\\d+)', so no object has a sample id; give --sample-pattern a regex with a (?P<sample>...) group that fits the keys after the prefix\n\
             warning: cleared the sample id of 3 object(s) under s3://cohort/study/ that pattern '^(?P<sample>[^/]+)/' had set; if the old pattern was right, sync s3://cohort/study/ again with --sample-pattern '^(?P<sample>[^/]+)/'\n",
        )
        .run();
    assert!(
        out.contains("3 seen, 0 new, 3 changed, 0 removed; 0 with a sample id"),
        "{out}"
    );
    // The old pattern puts them back.
    let out = b.env.ok(&[
        "sync",
        "--no-tasks",
        "--objects",
        "s3://cohort/study/",
        "--sample-pattern",
        "^(?P<sample>[^/]+)/",
    ]);
    assert!(out.contains("3 changed"), "{out}");
    assert_eq!(ids(&b), want);
    // A pattern of one's own, then a sync without one: the prefix keeps the pattern it was
    // read with, and says so, instead of clearing every id.
    let own = r"^(?P<sample>S\d+)/";
    b.env.ok(&[
        "sync",
        "--no-tasks",
        "--objects",
        "s3://cohort/study/",
        "--sample-pattern",
        own,
    ]);
    let out = b
        .env
        .anamo(&["sync", "--no-tasks", "--objects", "s3://cohort/study/"])
        .stderr(format!(
            "reading sample ids under s3://cohort/study/ with the pattern '{own}' it was synced \
             with before (--sample-pattern gives another)\n"
        ))
        .run();
    assert!(
        out.contains("3 seen, 0 new, 0 changed, 0 removed; 3 with a sample id"),
        "{out}"
    );
    assert_eq!(ids(&b), want);
}

#[test]
fn files_can_be_synced_before_any_task_exists() {
    let Some(b) = Bucket::start(&["cohort"]) else {
        return;
    };
    b.put("cohort", &[("study/S1/S1.cram".to_string(), 3)]);
    assert!(!b.env.store().exists());
    let out = b
        .env
        .anamo(&["sync", "--objects", "s3://cohort/study/"])
        .stderr(format!(
            "tasks skipped: no task store at '{}' yet (it appears with the first `anamo tasks add`)\n",
            b.env.store().display()
        ))
        .run();
    assert!(out.contains("1 seen, 1 new"), "{out}");
    assert!(!b.env.store().exists(), "no store was made");
    // Nothing but the store: still an error naming it.
    b.env
        .anamo(&["sync"])
        .fails(1)
        .stderr_one_line_with("does not exist")
        .run();
}

#[test]
fn a_wider_prefix_leaves_alone_the_sample_ids_a_narrower_one_set() {
    let Some(b) = Bucket::start(&["cohort-data"]) else {
        return;
    };
    let keys: Vec<(String, usize)> = [
        "study/NA12878/NA12878.cram",
        "study/NA12891/NA12891.cram",
        "loose/x.txt",
    ]
    .iter()
    .map(|k| (k.to_string(), 3))
    .collect();
    b.put("cohort-data", &keys);
    b.env.write("samples.csv", "sample_id\nNA12878\nNA12891\n");
    b.env.ok(&["samples", "import", "samples.csv"]);
    b.env
        .ok(&["sync", "--no-tasks", "--objects", "s3://cohort-data/study/"]);
    let out = b
        .env
        .anamo(&["sync", "--no-tasks", "--objects", "s3://cohort-data/"])
        .stderr(
            "kept the sample id of 2 object(s) that the listing of s3://cohort-data/study/ had set (its keys read differently from s3://cohort-data/); sync s3://cohort-data/study/ to change them\n",
        )
        .run();
    assert!(out.contains("3 seen, 1 new, 0 changed"), "{out}");
    let missing = b.query(&["samples-missing-files", "--param", "kind=cram"]);
    assert!(
        missing.is_empty(),
        "both CRAMs are still theirs: {missing:?}"
    );
    // A prefix that lists nothing says so.
    b.env
        .anamo(&["sync", "--no-tasks", "--objects", "s3://cohort-data/stud"])
        .stderr(
            "warning: nothing under s3://cohort-data/stud/; check the prefix (aws s3 ls s3://cohort-data/stud/)\n",
        )
        .run();
}

#[test]
fn outputs_missing_names_reported_files_a_later_listing_did_not_find() {
    let Some(b) = Bucket::start(&["out"]) else {
        return;
    };
    b.put("out", &[("study/S1/S1.cram".to_string(), 4)]);
    b.env.write(
        "t.csv",
        "task_id,sample,script\n\
         S1,S1,echo s3://out/study/S1/S1.cram >> \"$ANAMO_OUTPUTS\"\n\
         S2,S2,echo s3://out/study/S2/S2.cram >> \"$ANAMO_OUTPUTS\"\n\
         S3,S3,echo s3://elsewhere/S3.cram >> \"$ANAMO_OUTPUTS\"\n",
    );
    b.env.ok(&["tasks", "add", "t.csv", "-c", "Alignment"]);
    b.env.ok(&["worker", "-c", "Alignment"]);
    b.env.ok(&["sync"]);
    // No listing since the runs: nothing is called missing yet.
    assert!(b.query(&["outputs-missing"]).is_empty());
    b.env
        .ok(&["sync", "--no-tasks", "--objects", "s3://out/study/"]);
    let rows = b.query(&["outputs-missing"]);
    // S1's file is there; S3's is under a prefix no listing covered.
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        (&rows[0]["sample_id"], &rows[0]["uri"], &rows[0]["kind"]),
        (
            &Value::from("S2"),
            &Value::from("s3://out/study/S2/S2.cram"),
            &Value::from("cram")
        )
    );
    // A reported file counts as present for samples-missing-files (outputs-missing checks it).
    b.env.write("samples.csv", "sample_id\nS1\nS2\nS3\nS4\n");
    b.env.ok(&["samples", "import", "samples.csv"]);
    let rows = b.query(&["samples-missing-files", "-p", "kind=cram"]);
    let ids: Vec<&str> = rows
        .iter()
        .filter_map(|r| r["sample_id"].as_str())
        .collect();
    assert_eq!(ids, ["S4"]);
}

//! `anamo demo`: a small study run end to end on the embedded store, in a folder the user can
//! explore afterwards: a cohort with QC metrics, three chained steps (each task `--after` its
//! sample's task in the step before) run by workers of all three steps at once (with two
//! flaky tasks), a sync, and the overview.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::model::{Attrs, NewTask};
use crate::store::{OpenMode, SqliteStore, TaskStore};
use crate::sync::{TaskSyncOptions, progress_bar, sync_tasks};
use crate::worker::{self, Options, Shutdown, Summary, Wait};

pub const STEPS: [&str; 3] = ["Alignment", "ReadProcessing", "VariantCalling"];
/// Variant calling's QC gate: an under-covered sample is held, not called.
const GATE: &str = "mean_coverage >= 15";

/// Marks a folder as the demo's own: only there does it replace files.
const MARKER: &str = ".anamo-demo";

/// Files the demo writes; only these are removed when it starts again.
const FILES: &[&str] = &[
    "anamo-tasks.db",
    "anamo-tasks.db-wal",
    "anamo-tasks.db-shm",
    "anamo.db",
    "anamo.db-wal",
    "anamo.db-shm",
    "samples.csv",
    "qc.csv",
    REPORT,
];

/// The HTML report the demo writes (`anamo report`'s page).
pub const REPORT: &str = "anamo-report.html";

pub struct Demo {
    pub dir: PathBuf,
    pub store: PathBuf,
    pub catalog: PathBuf,
    pub samples: usize,
}

impl Demo {
    pub fn new(dir: &Path, samples: usize) -> Self {
        Self {
            dir: dir.to_path_buf(),
            store: dir.join("anamo-tasks.db"),
            catalog: dir.join("anamo.db"),
            samples,
        }
    }

    /// Runs the whole study; `progress` hears one line per stage.
    pub fn run(&self, mut progress: impl FnMut(&str)) -> Result<()> {
        std::fs::create_dir_all(&self.dir).map_err(|source| Error::Write {
            path: self.dir.clone(),
            source,
        })?;
        // The demo's file names are a real project's too: it replaces them only in a folder
        // it made itself (its marker is there), never a user's store or catalog.
        let marker = self.dir.join(MARKER);
        let foreign: Vec<&str> = FILES
            .iter()
            .copied()
            .filter(|f| self.dir.join(f).exists())
            .collect();
        if !foreign.is_empty() && !marker.exists() {
            return Err(Error::Invalid(format!(
                "'{}' already holds {} that the demo did not make; it would replace them: \
                 pick another --dir",
                self.dir.display(),
                foreign.join(", ")
            )));
        }
        for f in FILES {
            let _ = std::fs::remove_file(self.dir.join(f));
        }
        let _ = std::fs::remove_dir_all(self.dir.join("logs"));
        std::fs::write(
            &marker,
            "made by `anamo demo`; it may replace this folder's files\n",
        )
        .map_err(|source| Error::Write {
            path: marker.clone(),
            source,
        })?;
        let ids: Vec<String> = (1..=self.samples).map(|i| format!("S{i:03}")).collect();

        let mut cat = Catalog::open(&self.catalog)?;
        let samples_csv = self.dir.join("samples.csv");
        write(&samples_csv, &samples_table(&ids))?;
        cat.import_samples(&samples_csv)?;
        let qc_csv = self.dir.join("qc.csv");
        write(&qc_csv, &qc_table(&ids))?;
        cat.import_qc(&qc_csv, "qc.csv")?;
        cat.set_steps(&STEPS.map(String::from))?;
        progress(&format!(
            "imported {} samples with QC metrics into {}",
            ids.len(),
            self.catalog.display(),
        ));

        let store = SqliteStore::open(&self.store, OpenMode::Create)?;
        store.add(&tasks(&ids), false)?;
        progress(&format!(
            "added {} tasks over {} chained steps (--after) to {}; VariantCalling requires \
             {GATE} (--require): an under-covered sample is held",
            ids.len() * STEPS.len(),
            STEPS.len(),
            self.store.display()
        ));

        // One worker per step, all at once: each downstream task waits for its sample's
        // upstream task, and runs as soon as that one is done.
        let shutdown = Shutdown::new(Duration::from_secs(5));
        let ran: Vec<(Summary, Result<()>)> = std::thread::scope(|s| {
            let workers: Vec<_> = STEPS
                .iter()
                .map(|step| {
                    let (store, shutdown, opts) = (&store, &shutdown, self.worker(step));
                    s.spawn(move || worker::run(store, &opts, shutdown))
                })
                .collect();
            workers
                .into_iter()
                .map(|w| {
                    w.join().unwrap_or_else(|_| {
                        (
                            Summary::default(),
                            Err(Error::Internal("a demo worker panicked".into())),
                        )
                    })
                })
                .collect()
        });
        for (step, (summary, result)) in STEPS.iter().zip(ran) {
            result?;
            progress(&format!("{step}: {}", line(&summary)));
        }
        // Consent withdrawn after the run, as `anamo samples drop` does it: the store will not
        // take the sample's tasks again, and the catalog sets what it did apart.
        if let Some(last) = ids.last() {
            cat.drop_sample(last, "withdrew consent")?;
            crate::sync::drop_from_queue(&store, &mut cat, last, "withdrew consent", false)?;
            progress(&format!(
                "dropped {last} (withdrew consent after its run): its tasks count apart"
            ));
        }
        let bar = progress_bar(None, "syncing");
        let report = sync_tasks(&store, &mut cat, &TaskSyncOptions::default(), &bar)?;
        progress(&format!(
            "synced {} tasks into the catalog",
            report.counts.seen
        ));
        let page = self.dir.join(REPORT);
        let conn = crate::catalog::CatalogRead::open(&self.catalog)?;
        let html = crate::report::render(
            &conn,
            &crate::report::Options::new("anamo demo study", self.catalog.display().to_string()),
        )?;
        write(&page, &html)?;
        progress(&format!("wrote the HTML report {}", page.display()));
        Ok(())
    }

    fn worker(&self, step: &str) -> Options {
        Options {
            collection: step.to_string(),
            owner: format!("demo-{}", worker::default_owner()),
            slots: 4,
            max_tasks: None,
            lease: Duration::from_secs(60),
            wait: Wait::Flow,
            max_idle: Duration::from_millis(300),
            idle_timeout: None,
            script_env: vec![],
            stop_claiming_after: None,
            log_dir: Some(self.dir.join("logs")),
            log_shipper: None,
        }
    }
}

fn line(s: &Summary) -> String {
    s.to_string()
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|source| Error::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// A small deterministic generator, so every demo looks the same.
fn noise(i: usize, salt: u64) -> f64 {
    let mut x = (i as u64 + 1)
        .wrapping_mul(6364136223846793005)
        .wrapping_add(salt);
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51afd7ed558ccd);
    x ^= x >> 33;
    (x % 10_000) as f64 / 10_000.0
}

fn samples_table(ids: &[String]) -> String {
    let mut s = String::from("sample_id,cohort,sex,fastq_prefix\n");
    for (i, id) in ids.iter().enumerate() {
        let cohort = ["ukb-pilot", "gnomad-x", "local-1"][i % 3];
        let sex = if noise(i, 7) < 0.5 { "F" } else { "M" };
        let _ = writeln!(s, "{id},{cohort},{sex},s3://demo-bucket/fastq/{id}/");
    }
    s
}

/// The lab's QC sheet, imported; the coverage comes from the alignment step's own report.
fn qc_table(ids: &[String]) -> String {
    let mut s = String::from("sample_id,duplication_rate,contamination\n");
    for (i, id) in ids.iter().enumerate() {
        let _ = writeln!(
            s,
            "{id},{:.3},{:.4}",
            0.05 + 0.15 * noise(i, 2),
            0.02 * noise(i, 3)
        );
    }
    s
}

/// The mean coverage sample `i`'s read processing reports: every seventh sample is
/// under-sequenced, so qc-outliers has something to say and the gate holds it.
fn coverage(i: usize) -> f64 {
    if i % 7 == 3 {
        9.0 + 6.0 * noise(i, 1)
    } else {
        28.0 + 8.0 * noise(i, 1)
    }
}

/// What a step's script reports (README: *What a script reports*): alignment its CRAM, read
/// processing the coverage after duplicates are marked (what variant calling's gate reads),
/// variant calling its Ti/Tv and gVCF.
fn report(step: &str, i: usize) -> String {
    match step {
        "Alignment" => {
            "echo \"s3://demo-bucket/crams/$ANAMO_SAMPLE.cram\" >> \"$ANAMO_OUTPUTS\"".into()
        }
        "ReadProcessing" => format!(
            "echo 'mean_coverage={:.1}' >> \"$ANAMO_METRICS\"",
            coverage(i)
        ),
        "VariantCalling" => format!(
            "echo 'titv={:.2}' >> \"$ANAMO_METRICS\"; \
             echo \"s3://demo-bucket/gvcf/$ANAMO_SAMPLE.g.vcf.gz\" >> \"$ANAMO_OUTPUTS\"",
            2.0 + 0.15 * noise(i, 4)
        ),
        _ => String::new(),
    }
}

/// One task per sample and step, each step `--after` the one before; variant calling requires
/// [`GATE`] of read processing's report. Sample 5's variant calling and sample 9's alignment
/// fail once (transient errors) and succeed on the retry.
fn tasks(ids: &[String]) -> Vec<NewTask> {
    let mut out = vec![];
    for (n, step) in STEPS.iter().enumerate() {
        let upstream = &STEPS[n.saturating_sub(1)..n];
        for (i, id) in ids.iter().enumerate() {
            let pause = format!(
                "sleep 0.{:02}",
                5 + (noise(i, step.len() as u64) * 20.0) as u32
            );
            let reported = report(step, i);
            let script = match (*step, i + 1) {
                ("VariantCalling", 5) => format!(
                    "[ \"$ANAMO_ATTEMPT\" -gt 1 ] || {{ echo 'calling variants'; echo 'bcftools: [E::bgzf_read] truncated BAM file' >&2; exit 1; }}; {pause}; echo called $ANAMO_SAMPLE; {reported}"
                ),
                ("Alignment", 9) => format!(
                    "[ \"$ANAMO_ATTEMPT\" -gt 1 ] || {{ echo 'S3: SlowDown, please reduce your request rate' >&2; exit 2; }}; {pause}; echo aligned $ANAMO_SAMPLE; {reported}"
                ),
                _ if reported.is_empty() => format!("{pause}; echo {step} $ANAMO_SAMPLE ok"),
                _ => format!("{pause}; echo {step} $ANAMO_SAMPLE ok; {reported}"),
            };
            out.push(NewTask {
                collection: step.to_string(),
                task_id: format!("{id}-{}", step.to_ascii_lowercase()),
                sample: Some(id.clone()),
                script,
                attrs: Attrs::from([("reference".to_string(), "GRCh38".to_string())]),
                max_attempts: 2,
                timeout_secs: Some(60),
                after: upstream.iter().map(|s| s.to_string()).collect(),
                require: if *step == "VariantCalling" {
                    vec![GATE.to_string()]
                } else {
                    vec![]
                },
            });
        }
    }
    out
}

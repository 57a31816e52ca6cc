//! The README's first command must work as written: run its walk-through (with the freshly
//! built binary instead of the release build) and check what it promises.

use std::path::PathBuf;
use std::process::Command;

use aws_sdk_ec2::types::{InstanceType, RequestLaunchTemplateData};
use aws_sdk_s3::primitives::ByteStream;

use crate::harness::moto::Moto;
use crate::harness::{BIN, FRESH, Run};

/// The folder of the binary under test, for PATH.
fn bin_dir() -> String {
    std::path::Path::new(BIN)
        .parent()
        .unwrap()
        .display()
        .to_string()
}

#[test]
fn the_readme_walkthrough_runs_as_written() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme
        .find("## Walk-through")
        .expect("walk-through section");
    let block = &readme[start..];
    let open = block.find("```sh\n").expect("code block") + 6;
    let close = block[open..].find("```").expect("end of block") + open;
    let script = &block[open..close];
    let first = script.lines().next().unwrap();
    assert!(
        first.starts_with("cargo build --release && export PATH="),
        "{first}"
    );
    let dir = tempfile::tempdir().unwrap();
    let demo = dir.path().join("anamo-demo");
    let script = script
        .replacen(first, &format!("export PATH=\"{}:$PATH\" \\", bin_dir()), 1)
        .replace("/tmp/anamo-demo", demo.to_str().unwrap());
    let mut bash = Command::new("bash");
    bash.args(["-c", &script]);
    let stdout = Run::new(bash, "the README's walk-through".into())
        .env_remove("ANAMO_STORE")
        .run();
    assert!(stdout.contains("Demo\t0\t0\t0\t0\t20\t1\t21"), "{stdout}");
    assert!(stdout.contains("samples run: 20, run twice: 0"), "{stdout}");
    assert!(
        stdout.contains("state\tfailed") && stdout.contains("attempts\t3"),
        "{stdout}"
    );
    assert!(stdout.contains("reference genome not found"), "{stdout}");
}

/// The `sh` blocks of the README sections whose heading starts with `prefix`, in order.
fn blocks(readme: &str, prefix: &str) -> Vec<String> {
    let mut out = vec![];
    for section in readme.split("\n## ").filter(|s| s.starts_with(prefix)) {
        let mut rest = section;
        while let Some(open) = rest.find("```sh\n") {
            let body = &rest[open + 6..];
            let close = body.find("```").expect("end of block");
            out.push(body[..close].to_string());
            rest = &body[close + 3..];
        }
    }
    out
}

/// The README's four AWS sections, their commands run as written, in one shell session's
/// order, against the emulator: only what the README assumes exists outside anamo (an AWS
/// profile, a launch template, buckets with files, a sample sheet) is made beforehand.
#[test]
fn the_readme_aws_sections_run_as_written_on_the_emulator() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let blocks = blocks(&readme, "AWS: ");
    assert_eq!(blocks.len(), 4, "store, launch, stock AMI, S3");
    let Some(moto) = Moto::start() else { return };
    let exports = blocks[0].lines().next().unwrap().to_string();
    assert!(exports.starts_with("export ANAMO_STORE="), "{exports}");
    let reader = Reader::new(&moto, exports);
    the_dynamodb_store(&reader, &blocks[0]);
    let account = Account::new(&moto);
    a_step_s_cluster(&reader, &account, &blocks[1]);
    from_a_stock_ami(&reader, &account, &blocks[2]);
    sample_files_in_s3(&reader, &account, &blocks[3]);
}

/// A person following the README's AWS sections: a shell in a work folder holding the
/// README's tokens.json, with the profile its first line names in ~/.aws, against the emulator.
struct Reader {
    _dir: tempfile::TempDir,
    home: PathBuf,
    work: PathBuf,
    /// The first line of the first block (`export ANAMO_STORE=...`).
    exports: String,
    url: String,
}

impl Reader {
    fn new(moto: &Moto, exports: String) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        std::fs::create_dir_all(home.join(".aws")).unwrap();
        // The profile the README's first line names.
        std::fs::write(
            home.join(".aws/config"),
            "[profile genomics]\nregion = eu-west-1\n",
        )
        .unwrap();
        std::fs::write(
            home.join(".aws/credentials"),
            "[genomics]\naws_access_key_id = testing\naws_secret_access_key = testing\n",
        )
        .unwrap();
        let work = dir.path().join("work");
        std::fs::create_dir_all(&work).unwrap();
        let tokens: Vec<String> = ["NA12878", "NA12891", "NA12892", "NA19240"]
            .iter()
            .map(|s| {
                format!(r#"{{"_id": "{s}-aln", "type": "Alignment", "Task_ID": "{s}", "Task_Script": "echo aligned {s}", "lock": 0, "done": 0}}"#)
            })
            .collect();
        std::fs::write(
            work.join("tokens.json"),
            format!("[{}]", tokens.join(",\n")),
        )
        .unwrap();
        Self {
            _dir: dir,
            home,
            work,
            exports,
            url: moto.url.clone(),
        }
    }

    /// One block in a shell (-e: a failing command fails the block), as a person would.
    fn run(&self, block: &str) -> Run {
        let script = if block.starts_with("export ") {
            block.to_string()
        } else {
            format!("{}\n{block}", self.exports)
        };
        let mut bash = Command::new("bash");
        bash.args(["-e", "-c", &script]).current_dir(&self.work);
        Run::new(bash, format!("README block:\n{block}"))
            .env(
                "PATH",
                format!("{}:{}", bin_dir(), std::env::var("PATH").unwrap()),
            )
            .env("HOME", &self.home)
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_REGION")
            .env_remove("ANAMO_STORE")
            .env_remove("ANAMO_CATALOG")
            .env("AWS_ENDPOINT_URL", &self.url)
            .env("AWS_EC2_METADATA_DISABLED", "true")
    }

    /// `anamo tasks add FILE` with the README's store, after writing FILE: `count` PiCaS tokens
    /// of Alignment named `{prefix}-N`.
    fn add_tokens(&self, file: &str, prefix: &str, count: usize) {
        let tokens: Vec<String> = (0..count)
            .map(|i| {
                format!(
                    "{{\"_id\": \"{prefix}-{i}\", \"type\": \"Alignment\", \"Task_Script\": \"true\"}}"
                )
            })
            .collect();
        std::fs::write(self.work.join(file), format!("[{}]", tokens.join(","))).unwrap();
        self.run(&format!("{}\nanamo tasks add {file}", self.exports))
            .run();
    }
}

/// The emulator's EC2 and S3 in eu-west-1 (the profile's region), to make what the README
/// assumes is there.
struct Account {
    rt: tokio::runtime::Runtime,
    ec2: aws_sdk_ec2::Client,
    s3: aws_sdk_s3::Client,
}

impl Account {
    fn new(moto: &Moto) -> Self {
        let mut aws = moto.aws();
        aws.region = Some("eu-west-1".into());
        let rt = tokio::runtime::Runtime::new().unwrap();
        let config = rt.block_on(anamo::aws::config(&aws));
        let ec2 = aws_sdk_ec2::Client::new(&config);
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&config)
                .force_path_style(true)
                .build(),
        );
        Self { rt, ec2, s3 }
    }

    fn bucket(&self, name: &str) {
        self.rt
            .block_on(
                self.s3
                    .create_bucket()
                    .bucket(name)
                    .create_bucket_configuration(
                        aws_sdk_s3::types::CreateBucketConfiguration::builder()
                            .location_constraint(
                                aws_sdk_s3::types::BucketLocationConstraint::EuWest1,
                            )
                            .build(),
                    )
                    .send(),
            )
            .unwrap();
    }
}

/// The DynamoDB task store. The worker passes its scripts' output (no --log-dir) to stderr;
/// `status` says how fresh the catalog is.
fn the_dynamodb_store(reader: &Reader, block: &str) {
    let out = reader
        .run(block)
        .stderr_matches(&format!("(?:aligned NA\\d+\n){{4}}{FRESH}"))
        .run();
    assert!(out.contains("created DynamoDB table anamo-tasks"), "{out}");
    assert!(out.contains("4 done, 0 failed"), "{out}");
    assert!(out.contains("4 seen, 4 new"), "{out}");
    assert!(out.contains("Alignment"), "{out}");
}

/// A step's cluster: a launch template named after the step, and work left for it.
fn a_step_s_cluster(reader: &Reader, account: &Account, block: &str) {
    account
        .rt
        .block_on(
            account
                .ec2
                .create_launch_template()
                .launch_template_name("Alignment")
                .launch_template_data(
                    RequestLaunchTemplateData::builder()
                        .image_id("ami-12c6146b")
                        .instance_type(InstanceType::T3Micro)
                        .build(),
                )
                .send(),
        )
        .unwrap();
    reader.add_tokens("more.json", "more", 6);
    // Both launches are capped by the work left, the second lowering its minimum too.
    let capped =
        "capped at 3 instance(s): 6 claimable task(s) in Alignment at 2 slot(s) per instance";
    let out = reader
        .run(block)
        .stderr_matches(&format!(
            "{}{FRESH}",
            regex::escape(&format!(
                "{capped}\n{capped}; --min-count 10 lowered to 3\n"
            ))
        ))
        .run();
    assert!(
        out.contains("EC2 accepted the dry run; nothing was started"),
        "{out}"
    );
    assert!(
        out.contains("started 3 of 3 instance(s) for step Alignment"),
        "{out}"
    );
    assert!(out.contains("3 seen"), "{out}");
}

/// From a stock AMI: the tools bucket, and more work for the step.
fn from_a_stock_ami(reader: &Reader, account: &Account, block: &str) {
    account.bucket("cohort-tools");
    reader.add_tokens("later.json", "later", 8);
    let capped = "capped at 11 instance(s): 14 claimable task(s) in Alignment at 1 slot(s) per \
                  instance, less 3 instance(s) of the step already pending or running";
    // (The emulator's template is a t3.micro, not the README's m5.2xlarge: `prices set` says
    // no instance has that type.)
    let out = reader
        .run(block)
        .stderr_matches(&format!(
            "{}{FRESH}{}",
            regex::escape(&format!("{capped}\n{capped}\n")),
            regex::escape(
                "note: no instance of type m5.2xlarge in the catalog (it has t3.micro); check \
                 the spelling\n"
            )
        ))
        .run();
    for says in [
        "shipped anamo ",
        "binary: s3://cohort-tools/anamo/anamo (",
        "EC2 accepted the dry run; nothing was started",
        "started 11 of 11 instance(s) for step Alignment",
        "wrote cohort.html",
        "m5.2xlarge: 0.384 USD an hour on demand",
        "step\tmarket\tinstances\tinstance_hours\tusd",
    ] {
        assert!(out.contains(says), "{says}: {out}");
    }
    assert!(reader.work.join("cost-per-sample.csv").exists());
}

/// Sample files in S3: the buckets and files, and the sample sheet.
fn sample_files_in_s3(reader: &Reader, account: &Account, block: &str) {
    account.bucket("cohort-data");
    account.bucket("cohort-crams");
    account.rt.block_on(async {
        for (bucket, key) in [
            ("cohort-data", "study/NA12878/NA12878_R1.fastq.gz"),
            ("cohort-data", "study/NA12878/NA12878_R2.fastq.gz"),
            ("cohort-data", "study/NA12891/NA12891_R1.fastq.gz"),
            ("cohort-crams", "NA12878.final.cram"),
            ("cohort-crams", "NA12878.final.cram.crai"),
        ] {
            account
                .s3
                .put_object()
                .bucket(bucket)
                .key(key)
                .body(ByteStream::from_static(b"xyz"))
                .send()
                .await
                .unwrap();
        }
    });
    std::fs::write(
        reader.work.join("samples.csv"),
        "sample_id,cohort\nNA12878,ceu\nNA12891,ceu\nNA12892,ceu\nNA19240,yri\n",
    )
    .unwrap();
    reader
        .run(&format!(
            "{}\nanamo samples import samples.csv",
            reader.exports
        ))
        .run();
    let out = reader.run(block).run();
    assert!(
        out.contains("synced objects from s3://cohort-data/study/: 3 seen, 3 new"),
        "{out}"
    );
    assert!(
        out.contains("synced objects from s3://cohort-crams/: 2 seen, 2 new"),
        "{out}"
    );
    // Three of the four samples have no CRAM; NA12878's is there.
    for s in ["NA12891", "NA12892", "NA19240"] {
        assert!(out.contains(s), "{out}");
    }
    assert!(
        out.contains("Alignment: output expected at s3://cohort-crams/{sample}.final.cram"),
        "{out}"
    );
    let missing = out
        .lines()
        .filter(|l| l.starts_with("Alignment\t") && l.contains("\tmissing\t"))
        .count();
    assert_eq!(missing, 3, "done tasks whose CRAM is not there: {out}");
}

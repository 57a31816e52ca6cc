//! From a stock AMI: a worker finds its step in its instance's `anamo:step` tag (instance
//! metadata, else DescribeTags on the moto emulator), checks the results prefix before it
//! claims anything, and leaves after --idle-timeout with nothing to do.

use std::time::{Duration, Instant};

use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};

use crate::harness::moto::Moto;
use crate::harness::{Env, file_lines, imds};

const INSTANCE: &str = "i-0123456789abcdef0";

/// A metadata stand-in for INSTANCE whose tags in metadata are `tags` (`None`: tags are not
/// enabled in metadata, so every tag path is 404).
fn on_ec2(tags: Option<&'static [(&'static str, &'static str)]>) -> Env {
    let url = imds::stand_in(move |path| {
        if path == "/latest/meta-data/instance-id" {
            return Some(INSTANCE.to_string());
        }
        let tags = tags?;
        match path.strip_prefix("/latest/meta-data/tags/instance") {
            Some("") => Some(tags.iter().map(|(k, _)| format!("{k}\n")).collect()),
            Some(key) => tags
                .iter()
                .find(|(k, _)| key.strip_prefix('/') == Some(*k))
                .map(|(_, v)| v.to_string()),
            None => None,
        }
    });
    Env::new().with_vars(vec![("ANAMO_IMDS_ENDPOINT", url)])
}

#[test]
fn a_worker_without_a_collection_takes_its_step_from_the_instance_tag() {
    let env = on_ec2(Some(&[("Name", "anamo-Align"), ("anamo:step", "Align")]));
    env.ok(&[
        "tasks", "add", "-c", "Align", "--id", "a", "--script", "true",
    ]);
    env.ok(&[
        "tasks", "add", "-c", "Other", "--id", "o", "--script", "true",
    ]);
    let out = env.ok(&["worker"]);
    assert!(
        out.starts_with(&format!("worker {INSTANCE} on Align: 1 done")),
        "{out}"
    );
    assert_eq!(env.task("o")["state"], "todo", "only its own step");

    // Tags in metadata, but not this one: said, and nothing claimed.
    let untagged = on_ec2(Some(&[("Name", "builder")]));
    untagged.ok(&[
        "tasks", "add", "-c", "Align", "--id", "a", "--script", "true",
    ]);
    untagged
        .anamo(&["worker"])
        .fails(1)
        .stderr(format!(
            "error: no --collection given and instance {INSTANCE} has no anamo:step tag; pass \
             -c STEP, or tag the instance anamo:step=STEP (`anamo launch --step STEP` does)\n"
        ))
        .run();
    assert_eq!(untagged.task("a")["state"], "todo");

    // Off EC2, -c stays required, in one line.
    let laptop = Env::new().with_vars(vec![("AWS_EC2_METADATA_DISABLED", "true".into())]);
    laptop
        .anamo(&["worker"])
        .fails(2)
        .stderr(
            "error: no --collection given and no EC2 instance metadata answered (or \
             AWS_EC2_METADATA_DISABLED is set), so there is no anamo:step tag to read the step \
             from; pass -c STEP\n",
        )
        .run();
}

#[test]
fn without_tags_in_metadata_the_step_comes_from_describe_tags() {
    let Some(moto) = Moto::start() else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let config = rt.block_on(anamo::aws::config(&moto.aws()));
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let run = |tags: &[(&str, &str)]| -> String {
        let spec = TagSpecification::builder()
            .resource_type(ResourceType::Instance)
            .set_tags(Some(
                tags.iter()
                    .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
                    .collect(),
            ))
            .build();
        let out = rt
            .block_on(
                ec2.run_instances()
                    .image_id("ami-12c6146b")
                    .min_count(1)
                    .max_count(1)
                    .tag_specifications(spec)
                    .send(),
            )
            .expect("run an instance");
        out.instances()[0].instance_id().unwrap().to_string()
    };
    let tagged = run(&[("anamo:step", "Align")]);
    let bare = run(&[("Name", "builder")]);
    for (id, step) in [(tagged, Some("Align")), (bare, None)] {
        let answer = id.clone();
        let url = imds::stand_in(move |path| {
            (path == "/latest/meta-data/instance-id").then(|| answer.clone())
        });
        let mut vars = moto.env();
        vars.push(("ANAMO_IMDS_ENDPOINT", url));
        vars.push(("AWS_EC2_METADATA_DISABLED", "false".into()));
        let env = Env::new().with_vars(vars);
        env.ok(&[
            "tasks", "add", "-c", "Align", "--id", "a", "--script", "true",
        ]);
        match step {
            Some(step) => {
                let out = env.ok(&["worker"]);
                assert!(
                    out.starts_with(&format!("worker {id} on {step}: 1 done")),
                    "{out}"
                );
            }
            None => {
                env.anamo(&["worker"])
                    .fails(1)
                    .stderr(format!(
                        "error: no --collection given and instance {id} has no anamo:step tag; \
                         pass -c STEP, or tag the instance anamo:step=STEP (`anamo launch \
                         --step STEP` does)\n"
                    ))
                    .run();
                assert_eq!(env.task("a")["state"], "todo");
            }
        }
    }
    // (The stand-in has no tag paths: the step could only come from EC2's DescribeTags.)
}

#[test]
fn idle_timeout_ends_a_waiting_worker_that_found_nothing() {
    let env = Env::new().with_vars(vec![(
        "ANAMO_SHUTDOWN_COMMAND",
        "echo off >> powered-off.txt".to_string(),
    )]);
    // X's task waits for its sample's Up task, which nobody runs here: a --wait worker of X
    // would stay for it for ever.
    env.ok(&[
        "tasks", "add", "-c", "Up", "--id", "u", "--sample", "S1", "--script", "true",
    ]);
    env.ok(&[
        "tasks", "add", "-c", "X", "--id", "x", "--sample", "S1", "--script", "true", "--after",
        "Up",
    ]);
    let started = Instant::now();
    let out = env
        .anamo(&[
            "worker",
            "-c",
            "X",
            "--wait",
            "--slots",
            "2",
            "--idle-timeout",
            "1s",
            "--shutdown-on-exit",
        ])
        .stderr(
            "nothing to claim in X for 1s; leaving (--idle-timeout)\n\
             shutting down: echo off >> powered-off.txt\n",
        )
        .run();
    let took = started.elapsed();
    assert!(out.contains("0 done, 0 failed"), "{out}");
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(10),
        "{took:?}"
    );
    assert_eq!(file_lines(&env.path("powered-off.txt")), ["off"]);
    assert_eq!(env.task("x")["state"], "waiting", "nothing was claimed");
    env.anamo(&["worker", "-c", "X", "--idle-timeout", "1s"])
        .fails(2)
        .stderr_starts_with(
            "error: the following required arguments were not provided:\n  <--wait|--watch>\n",
        )
        .run();
}

/// The emulator with a task table (two Alignment tasks), a launch template named after the
/// step, and a bucket `tools`.
struct Stock {
    moto: Moto,
    env: Env,
    rt: tokio::runtime::Runtime,
    s3: aws_sdk_s3::Client,
    ec2: aws_sdk_ec2::Client,
}

impl Stock {
    fn start() -> Option<Stock> {
        let moto = Moto::start()?;
        let mut vars = moto.env();
        vars.push(("ANAMO_STORE", "dynamodb://anamo-tasks".into()));
        let env = Env::new().with_vars(vars);
        env.ok(&["store", "init"]);
        env.write("t.csv", "task_id,sample,script\na1,S1,true\na2,S2,true\n");
        env.ok(&["tasks", "add", "t.csv", "-c", "Alignment"]);
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let config = rt.block_on(anamo::aws::config(&moto.aws()));
        let ec2 = aws_sdk_ec2::Client::new(&config);
        rt.block_on(
            ec2.create_launch_template()
                .launch_template_name("Alignment")
                .launch_template_data(
                    aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
                        .image_id("ami-12c6146b")
                        .build(),
                )
                .send(),
        )
        .expect("launch template");
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&config)
                .force_path_style(true)
                .build(),
        );
        rt.block_on(s3.create_bucket().bucket("tools").send())
            .expect("bucket");
        Some(Stock {
            moto,
            env,
            rt,
            s3,
            ec2,
        })
    }

    fn put(&self, key: &str, bytes: Vec<u8>) {
        self.rt
            .block_on(
                self.s3
                    .put_object()
                    .bucket("tools")
                    .key(key)
                    .body(bytes.into())
                    .send(),
            )
            .expect("put");
    }

    fn get(&self, key: &str) -> Vec<u8> {
        let out = self
            .rt
            .block_on(self.s3.get_object().bucket("tools").key(key).send())
            .expect("get");
        self.rt
            .block_on(out.body.collect())
            .expect("body")
            .into_bytes()
            .to_vec()
    }

    fn user_data(&self) -> String {
        let out = self
            .rt
            .block_on(self.ec2.describe_instances().send())
            .expect("describe");
        let id = out.reservations()[0].instances()[0]
            .instance_id()
            .unwrap()
            .to_string();
        crate::harness::moto::user_data(&self.rt, &self.ec2, &id)
    }

    /// Runs the user data as an instance would boot it, in a fresh temporary root, with
    /// `shutdown` (and `uname`, when `arch` is given) stood in for: exit status, the root.
    fn boot(&self, script: &str, arch: Option<&str>) -> (bool, tempfile::TempDir) {
        let root = tempfile::tempdir().expect("root");
        let shims = root.path().join("shims");
        std::fs::create_dir_all(&shims).unwrap();
        let shim = |name: &str, body: &str| {
            let p = shims.join(name);
            std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
            let mut perms = std::fs::metadata(&p).unwrap().permissions();
            std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
            std::fs::set_permissions(&p, perms).unwrap();
        };
        shim(
            "shutdown",
            &format!("echo \"$*\" >> {}/powered-off", root.path().display()),
        );
        if let Some(arch) = arch {
            shim("uname", &format!("echo {arch}"));
        }
        std::fs::write(root.path().join("boot.sh"), script).unwrap();
        let path = format!(
            "{}:{}",
            shims.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut cmd = std::process::Command::new("bash");
        cmd.arg(root.path().join("boot.sh"))
            .current_dir(root.path())
            .env("ANAMO_ROOT", root.path())
            .env("PATH", path)
            .env_remove("ANAMO_STORE")
            .env_remove("ANAMO_SHUTDOWN_COMMAND");
        for (k, v) in self.moto.env() {
            cmd.env(k, v);
        }
        // Its refusals are also in the log the test reads; keep the test's output clean.
        cmd.stderr(std::process::Stdio::null());
        let status = cmd.status().expect("run the user data");
        (status.success(), root)
    }
}

fn read(p: &std::path::Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

#[test]
fn a_stock_ami_fetches_the_shipped_binary_and_refuses_a_tampered_one_or_another_cpu() {
    let Some(stock) = Stock::start() else {
        return;
    };
    let ours = std::fs::read(crate::harness::BIN).expect("the binary under test");
    let sha = ship_round_trips_the_binary(&stock, &ours);
    let script = the_launch_sends_the_url_and_never_shows_or_records_it(&stock, &ours, &sha);
    a_stock_machine_installs_it_and_drains_the_step(&stock, &script, &ours);
    another_cpu_or_a_tampered_binary_powers_the_machine_off(&stock, &script, &sha);
    what_cannot_boot_is_refused_at_launch(&stock, &ours);
}

/// A launch of one instance of Alignment from the shipped binary.
const LAUNCH: [&str; 7] = [
    "launch",
    "--step",
    "Alignment",
    "--count",
    "1",
    "--binary",
    "s3://tools/bin/anamo",
];

/// Ships the binary under test; returns its checksum.
fn ship_round_trips_the_binary(stock: &Stock, ours: &[u8]) -> String {
    let env = &stock.env;
    // ship: the running binary, round-tripped.
    let out = env.ok(&["ship", "s3://tools/bin/anamo"]);
    let sha = out
        .split("sha256 ")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .expect("the checksum")
        .to_string();
    assert!(
        out.starts_with(&format!(
            "shipped anamo {} (linux {}, {} bytes, sha256 ",
            env!("CARGO_PKG_VERSION"),
            std::env::consts::ARCH,
            ours.len()
        )),
        "{out}"
    );
    assert!(stock.get("bin/anamo") == ours, "the object is the binary");
    env.anamo(&["ship", "s3://tools/bin/"])
        .fails(1)
        .stderr_one_line_with("names a folder; give the object's full key")
        .run();
    sha
}

/// Launches from the binary; returns the user data EC2 was sent.
fn the_launch_sends_the_url_and_never_shows_or_records_it(
    stock: &Stock,
    ours: &[u8],
    sha: &str,
) -> String {
    let env = &stock.env;
    // The dry run shows the binary, its checksum and the user data, and withholds the URL.
    let dry = env.ok(&[&LAUNCH[..], &["--dry-run"]].concat());
    assert!(
        dry.contains(&format!(
            "binary: s3://tools/bin/anamo ({}, {} bytes, sha256 {sha})",
            std::env::consts::ARCH,
            ours.len()
        )),
        "{dry}"
    );
    assert!(dry.contains("; withheld)'"), "{dry}");
    assert!(!dry.contains("X-Amz-Signature"), "{dry}");

    env.ok(&LAUNCH);
    let script = stock.user_data();
    assert!(script.contains("X-Amz-Signature"), "the URL is sent");
    let recorded = env.ok(&[
        "query",
        "SELECT user_data FROM launches WHERE dry_run = 0",
        "--format",
        "csv",
    ]);
    assert!(
        !recorded.contains("X-Amz-Signature") && recorded.contains("withheld"),
        "the URL is never recorded: {recorded}"
    );
    script
}

fn a_stock_machine_installs_it_and_drains_the_step(stock: &Stock, script: &str, ours: &[u8]) {
    let env = &stock.env;
    // A stock machine: anamo installed from the URL, then the worker drains the step and
    // powers the machine off.
    let (ok, root) = stock.boot(script, None);
    let log = read(&root.path().join("var/log/anamo-worker.log"));
    assert!(ok, "{log}");
    assert!(
        std::fs::read(root.path().join("usr/local/bin/anamo")).unwrap() == ours,
        "installed"
    );
    assert!(log.contains("on Alignment: 2 done"), "{log}");
    assert_eq!(read(&root.path().join("powered-off")), "-h now\n");
    for t in env.tasks() {
        assert_eq!(t["state"], "done", "{t}");
    }
}

fn another_cpu_or_a_tampered_binary_powers_the_machine_off(stock: &Stock, script: &str, sha: &str) {
    // Another CPU: refused before anything is fetched.
    let (ok, root) = stock.boot(script, Some("aarch64"));
    assert!(!ok);
    assert_eq!(
        read(&root.path().join("var/log/anamo-worker.log")),
        format!(
            "anamo: the shipped binary is for {}, this machine is aarch64 ; powering off\n",
            std::env::consts::ARCH
        )
    );
    assert_eq!(read(&root.path().join("powered-off")), "-h now\n");
    assert!(!root.path().join("usr/local/bin/anamo.part").exists());

    // Replaced after the launch: the checksum read at launch refuses it.
    stock.put("bin/anamo", b"\x7fELF tampered".to_vec());
    let (ok, root) = stock.boot(script, None);
    assert!(!ok);
    let log = read(&root.path().join("var/log/anamo-worker.log"));
    assert!(
        log.starts_with("anamo: checksum mismatch for s3://tools/bin/anamo: got ")
            && log.ends_with(&format!(", launched with {sha} ; powering off\n")),
        "{log}"
    );
    assert!(!root.path().join("usr/local/bin/anamo").exists());
    assert_eq!(read(&root.path().join("powered-off")), "-h now\n");
}

fn what_cannot_boot_is_refused_at_launch(stock: &Stock, ours: &[u8]) {
    let env = &stock.env;
    // What is not a Linux executable is refused at launch.
    stock.put("bin/setup.sh", b"#!/bin/sh\necho hi\n".to_vec());
    env.anamo(&[
        "launch",
        "--step",
        "Alignment",
        "--count",
        "1",
        "--binary",
        "s3://tools/bin/setup.sh",
    ])
    .fails(1)
    .stderr(
        "error: s3://tools/bin/setup.sh is not a Linux x86_64 or aarch64 executable; put one \
         there with `anamo ship s3://tools/bin/setup.sh` from a Linux build\n",
    )
    .run();
    // A user-data template with nowhere to install it is refused.
    env.write("ud.sh", "#!/bin/bash\nexec anamo worker -c {{step}}\n");
    stock.put("bin/anamo", ours.to_vec());
    env.anamo(&[&LAUNCH[..], &["--user-data", "ud.sh"]].concat())
        .fails(1)
        .stderr_one_line_with("ud.sh has no {{install}} placeholder")
        .run();
}

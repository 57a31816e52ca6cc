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
        .stderr(&format!(
            "error: no --collection given and instance {INSTANCE} has no anamo:step tag; pass \
             -c STEP, or tag the instance anamo:step=STEP (`anamo launch --step STEP` does)\n"
        ))
        .run();
    assert_eq!(untagged.task("a")["state"], "todo");

    // Off EC2, -c stays required, in one line.
    let laptop = Env::new().with_vars(vec![("AWS_EC2_METADATA_DISABLED", "true".into())]);
    laptop
        .anamo(&["worker"])
        .fails(1)
        .stderr(
            "error: no --collection given and no EC2 instance metadata answered, so there is no \
             anamo:step tag to read the step from; pass -c STEP\n",
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
                    .stderr(&format!(
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
        .stderr(
            "error: --idle-timeout needs --wait or --watch: without them a worker leaves as \
             soon as nothing is claimable\n",
        )
        .run();
}

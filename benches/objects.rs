//! `anamo sync --objects` from the moto emulator: objects/s and the process's peak RSS at N
//! objects (default 100k, ANAMO_BENCH_OBJECTS), beside its reference in the same run: the bare
//! listing (ListObjectsV2 pages through the SDK, nothing written), which is what the emulator
//! allows at best. Prints figures; asserts nothing about time. Run: `cargo bench --bench objects`.

use std::process::Command;
use std::time::Instant;

use aws_sdk_s3::primitives::ByteStream;
use support::{env_or, measure, start_moto};

#[path = "support/mod.rs"]
mod support;

const BIN: &str = env!("CARGO_BIN_EXE_anamo");

fn main() {
    let n = env_or("ANAMO_BENCH_OBJECTS", 100_000);
    let Some((_moto, url)) = start_moto() else {
        println!("moto is not installed: run scripts/test.sh once (it installs it into .venv/)");
        return;
    };
    let aws = support::emulator(&url);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let config = rt.block_on(anamo::aws::config(&aws));
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    );
    let started = Instant::now();
    rt.block_on(async {
        s3.create_bucket()
            .bucket("bench")
            .send()
            .await
            .expect("bucket");
        for i in 0..n {
            let sample = i / 10;
            let ext = [
                "R1.fastq.gz",
                "R2.fastq.gz",
                "cram",
                "cram.crai",
                "g.vcf.gz",
            ][i % 5];
            s3.put_object()
                .bucket("bench")
                .key(format!(
                    "study/S{sample:06}/S{sample:06}.{}.{ext}",
                    i % 10 / 5
                ))
                .body(ByteStream::from_static(b"x"))
                .send()
                .await
                .expect("put");
        }
    });
    println!(
        "put {n} objects into the emulator in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let started = Instant::now();
    let listed = rt.block_on(async {
        let mut pages = s3
            .list_objects_v2()
            .bucket("bench")
            .prefix("study/")
            .into_paginator()
            .send();
        let mut listed = 0;
        while let Some(page) = pages.next().await {
            listed += page.expect("page").contents().len();
        }
        listed
    });
    let bare = started.elapsed();
    assert_eq!(listed, n);

    let dir = tempfile::tempdir().expect("temp dir");
    let catalog = dir.path().join("objects.db");
    let run = |label: &str| {
        let (t, rss) = measure(
            Command::new(BIN)
                .args(["--catalog"])
                .arg(&catalog)
                .args(["sync", "--no-tasks", "--objects", "s3://bench/study/"])
                .env("AWS_ENDPOINT_URL", &url)
                .env("AWS_ACCESS_KEY_ID", "bench")
                .env("AWS_SECRET_ACCESS_KEY", "bench")
                .env("AWS_REGION", "us-east-1")
                .env("AWS_EC2_METADATA_DISABLED", "true"),
        );
        let rate = n as f64 / t.as_secs_f64();
        let bare_rate = n as f64 / bare.as_secs_f64();
        println!(
            "sync --objects {label:<10} {n:>8} objects {:>7.2} s {:>8.0} objects/s   peak RSS {rss:>6.1} MiB   bare listing {bare_rate:>8.0} objects/s   ratio {:.2}",
            t.as_secs_f64(),
            rate,
            rate / bare_rate
        );
    };
    run("first");
    run("re-sync");
}

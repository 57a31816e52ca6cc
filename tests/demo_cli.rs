//! `anamo demo` as a process: the study it makes (chained steps, a flaky task, a dropped
//! sample) and every shipped report run on its catalog; it never replaces a real project. The
//! demo's catalog is also the fixture of other modules (`demo`).

use crate::harness::{Env, FRESH};

/// What `demo --dir d --samples N` says on stderr as it goes, a regex (its tables, on stdout,
/// hold the counts).
fn demo_notes(samples: usize) -> String {
    let step = |name: &str| {
        format!(
            r"demo: {name}: \d+ done, \d+ failed, \d+ retried, 0 released, 0 lost in \d+\.\ds\n"
        )
    };
    let tasks = samples * 3;
    [
        format!(
            r"demo: imported {samples} samples with QC metrics into d/anamo\.db\n"
        ),
        format!(
            r"demo: added {tasks} tasks over 3 chained steps \(--after\) to d/anamo-tasks\.db; VariantCalling requires mean_coverage >= 15 \(--require\): an under-covered sample is held\n"
        ),
        step("Alignment"),
        step("ReadProcessing"),
        step("VariantCalling"),
        format!(
            r"demo: dropped S{samples:03} \(withdrew consent after its run\): its tasks count apart\n"
        ),
        format!(r"demo: synced {tasks} tasks into the catalog\n"),
        r"demo: wrote the HTML report d/anamo-report\.html\n".to_string(),
    ]
    .concat()
}

/// The demo's catalog, with the env's store and catalog pointing into it.
pub(crate) fn demo(env: &Env) -> (String, String) {
    env.anamo(&["demo", "--dir", "d", "--samples", "12"])
        .stderr_matches(&demo_notes(12))
        .run();
    (
        env.path("d/anamo-tasks.db").display().to_string(),
        env.path("d/anamo.db").display().to_string(),
    )
}

#[test]
fn demo_runs_and_every_shipped_report_runs_on_its_catalog() {
    let env = Env::new();
    let out = env
        .anamo(&["demo", "--dir", "d", "--samples", "12"])
        .stderr_matches(&demo_notes(12))
        .run();
    assert!(out.contains("== anamo status"), "{out}");
    // 12 samples, the three steps run at once, chained: every sample ends done in the first two
    // (the dropped one's tasks are shown apart, not outstanding), and variant calling's QC gate
    // holds the two under-covered samples (S004, S011) for a person.
    for step in ["Alignment", "ReadProcessing"] {
        assert!(
            out.contains(&format!("{step}\t0\t0\t0\t0\t11\t0\t11\t100.0\t")),
            "{out}"
        );
    }
    assert!(
        out.contains("VariantCalling\t0\t2\t0\t0\t9\t0\t11\t81.8\t"),
        "{out}"
    );
    assert!(
        out.contains("\t0\t0\t1\t0\n"),
        "the dropped sample's task is shown apart: {out}"
    );
    assert!(
        out.contains(
            "== anamo query samples-left -p step=VariantCalling\nsample_id\tcohort\tstate\n\
             S004\tukb-pilot\theld\nS011\tgnomad-x\theld\n\n"
        ),
        "only the held samples are left: {out}"
    );
    let order = |sql: &str| -> i64 {
        env.catalog_in("d/anamo.db")
            .query_row(sql, [], |r| r.get(0))
            .unwrap()
    };
    // No task started before its sample's task upstream had finished, and both flaky tasks
    // (S005's variant calling, S009's alignment) ran twice.
    let early = "SELECT count(*) FROM tasks d JOIN tasks u ON u.sample = d.sample \
                 AND u.collection = json_extract(d.after_steps, '$[0]') \
                 WHERE d.started_at < u.finished_at";
    assert_eq!(order(early), 0);
    let chained = "SELECT count(*) FROM tasks WHERE after_steps IS NOT NULL";
    assert_eq!(order(chained), 24);
    let twice = "SELECT group_concat(task_id) FROM tasks WHERE attempts = 2";
    let twice: String = env
        .catalog_in("d/anamo.db")
        .query_row(twice, [], |r| r.get(0))
        .unwrap();
    assert_eq!(twice, "S009-alignment,S005-variantcalling");
    let cat = env.path("d/anamo.db");
    let cat = cat.to_str().unwrap();
    let reports = env.ok(&["reports", "--format", "csv"]);
    let names: Vec<&str> = reports
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert!(names.len() >= 19, "{reports}");
    for name in names {
        let mut args = vec!["--catalog", cat, "query", name, "--format", "jsonl"];
        match name {
            "samples-left" | "samples-done" => args.extend(["-p", "step=VariantCalling"]),
            "sample-timeline" => args.extend(["-p", "sample=S009"]),
            "qc-outliers" => args.extend(["-p", "metric=mean_coverage", "-p", "min=20"]),
            "samples-missing-files" => args.extend(["-p", "kind=cram"]),
            _ => {}
        }
        let out = env.ok(&args);
        let rows = out.lines().count();
        times_are_rfc3339_to_the_second(name, &out);
        match name {
            // Held by variant calling's gate: S004 and S011.
            "samples-left" => assert_eq!(rows, 2, "{name}: {out}"),
            "samples-done" => assert_eq!(rows, 9, "12 samples, 1 dropped, 2 held: {out}"),
            "gate-holds" | "blocked-samples" => {
                assert_eq!(rows, 2, "{name}: {out}");
                assert!(
                    out.contains("held: mean_coverage 9.8 < 15"),
                    "{name}: {out}"
                );
            }
            "sample-timeline" => assert_eq!(rows, 3, "{name}: {out}"),
            "failed-tasks" => assert_eq!(rows, 0, "{name}: {out}"),
            "step-progress" => assert_eq!(rows, 3, "{name}: {out}"),
            "dropped-samples" => assert!(out.contains("withdrew consent"), "{out}"),
            "qc-outliers" => assert!(rows >= 1 && out.contains("mean_coverage"), "{out}"),
            "throughput-by-day" => assert!(rows >= 3, "{name}: {out}"),
            "slowest-tasks" => assert_eq!(rows, 20, "{name}: {out}"),
            "stuck" => assert_eq!(rows, 0, "{name}: {out}"),
            // The demo lists no S3 objects, but its alignment reports each sample's CRAM.
            "samples-missing-files" => assert_eq!(rows, 0, "{name}: {out}"),
            // What the steps reported: coverage from read processing, Ti/Tv from variant
            // calling.
            "qc-by-step" => {
                assert_eq!(rows, 2, "{name}: {out}");
                assert!(
                    out.contains("mean_coverage") && out.contains("titv"),
                    "{out}"
                );
            }
            // No listing of S3 has looked for the reported files yet.
            "outputs-missing" => assert_eq!(rows, 0, "{name}: {out}"),
            _ => {}
        }
    }
    // The demo's flaky task is first seen done after two attempts: its history says so.
    let first = env.ok(&[
        "--catalog",
        cat,
        "query",
        "SELECT from_state, to_state, attempts FROM task_events WHERE task_id = 'S009-alignment'",
        "--format",
        "csv",
    ]);
    assert_eq!(first, "from_state,to_state,attempts\nunseen,done,2\n");
    let status = env
        .anamo(&["--catalog", cat, "status", "--sample", "S009"])
        .stderr_matches(&format!("{FRESH}sample S009: cohort [^,\n]*, active\n"))
        .run();
    assert!(
        status.contains("Alignment\tS009-alignment\tdone\t2"),
        "flaky: 2 attempts: {status}"
    );
}

/// One timestamp form in every report: RFC 3339 to the second (`out` is a report's JSON lines).
fn times_are_rfc3339_to_the_second(name: &str, out: &str) {
    for line in out.lines() {
        let row: serde_json::Map<String, serde_json::Value> = serde_json::from_str(line).unwrap();
        for (k, v) in &row {
            // Date-shaped (YYYY-MM-DDT...): a temp dir such as /tmp/.tmpLT... is not one.
            if let Some(t) = v.as_str().filter(|t| {
                let b = t.as_bytes();
                b.len() > 10
                    && b[10] == b'T'
                    && b[4] == b'-'
                    && b[..4].iter().all(u8::is_ascii_digit)
            }) {
                assert!(
                    t.len() == 20 && t.ends_with('Z') && t.starts_with("20"),
                    "{name}.{k}: {t}"
                );
            }
        }
    }
}

#[test]
fn the_demo_never_replaces_a_real_project() {
    let env = Env::new();
    std::fs::create_dir_all(env.path("project")).unwrap();
    env.ok(&[
        "--store",
        "project/anamo-tasks.db",
        "tasks",
        "add",
        "-c",
        "Mine",
        "--id",
        "m1",
        "--script",
        "true",
    ]);
    env.anamo(&["demo", "--dir", "project"])
        .fails(1)
        .stderr(
            "error: 'project' already holds anamo-tasks.db that the demo did not make; it would replace them: pick another --dir\n",
        )
        .run();
    let mine = env.ok(&[
        "--store",
        "project/anamo-tasks.db",
        "tasks",
        "list",
        "--format",
        "csv",
    ]);
    assert!(mine.contains("Mine,m1"), "{mine}");
    // Its own folder it may start again.
    for _ in 0..2 {
        env.anamo(&["demo", "--dir", "d", "--samples", "3"])
            .stderr_matches(&demo_notes(3))
            .run();
    }
}

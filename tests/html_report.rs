//! `anamo report`: the page's numbers against the catalog's own answers (status, SQL), its
//! empty sections saying what to run, escaping, and that it needs nothing from the network.

use crate::harness::{Env, FRESH};

/// Every URL-like reference in the page: only the SVG namespace may appear.
fn external_references(page: &str) -> Vec<String> {
    let mut found = vec![];
    for needle in [
        "http://", "https://", "src=", "href=", "<script", "@import", "url(",
    ] {
        let mut rest = page;
        while let Some(i) = rest.find(needle) {
            let tail: String = rest[i..].chars().take(40).collect();
            if !tail.starts_with("http://www.w3.org/2000/svg") {
                found.push(tail);
            }
            rest = &rest[i + needle.len()..];
        }
    }
    found
}

/// The `data-state` cells of a step's row in the steps table.
fn step_counts(page: &str, step: &str) -> Vec<(String, u64)> {
    let start = page
        .find(&format!("<tr data-step=\"{step}\">"))
        .unwrap_or_else(|| panic!("no row for {step}"));
    let row = &page[start..start + page[start..].find("</tr>").unwrap()];
    row.split("<td data-state=\"")
        .skip(1)
        .map(|cell| {
            let (state, rest) = cell.split_once("\">").unwrap();
            let n = rest.split('<').next().unwrap().parse().unwrap();
            (state.to_string(), n)
        })
        .collect()
}

#[test]
fn the_demo_s_report_tells_what_status_and_the_catalog_tell() {
    let env = Env::new();
    env.anamo(&["demo", "--dir", "d", "--samples", "12"])
        .stderr_matches(r"(?s).*")
        .run();
    let cat = env.path("d/anamo.db");
    let cat = cat.to_str().unwrap();
    let out = env.ok(&[
        "--catalog",
        cat,
        "report",
        "-o",
        "r.html",
        "--title",
        "Pilot <cohort>",
    ]);
    assert!(out.starts_with("wrote r.html ("), "{out}");
    let page = env.read("r.html");
    assert!(
        page.contains("<h1>Pilot &lt;cohort&gt;</h1>"),
        "the title is escaped"
    );
    assert_eq!(external_references(&page), Vec::<String>::new());
    assert_eq!(
        page.matches("<svg").count(),
        4,
        "the steps' bars, done over time, done per day, run times"
    );
    // Run times: one row per step, the quartiles in order.
    assert_eq!(page.matches("<tr><td>Alignment</td><td>11</td>").count(), 1);
    assert!(page.contains("<table id=\"slowest\">"));
    // Each step's counts are the status command's, on the same catalog.
    let status = env
        .anamo(&["--catalog", cat, "status", "--format", "csv"])
        .stderr_matches(FRESH)
        .run();
    let mut lines = status.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    for line in lines {
        let row: Vec<&str> = line.split(',').collect();
        let counts = step_counts(&page, row[0]);
        for (state, n) in &counts {
            let col = header.iter().position(|h| h == state).unwrap();
            assert_eq!(row[col], n.to_string(), "{} {state}", row[0]);
        }
        assert_eq!(counts.len(), 6);
        assert!(page.contains(&format!(
            "<td class=\"pct\">{}%</td>",
            row[header.iter().position(|h| *h == "pct_done").unwrap()]
        )));
    }
    // One grid row per sample, each with a state per step, as sample_progress has them.
    let rows = page.matches("<tr data-sample=").count();
    assert_eq!(rows, 12);
    let done_cells = page.matches("data-state=\"done\">done<").count();
    let sql = env.ok(&[
        "--catalog",
        cat,
        "query",
        "SELECT count(*) FROM sample_progress WHERE state = 'done'",
        "--format",
        "csv",
    ]);
    assert_eq!(sql, format!("count(*)\n{done_cells}\n"));
    assert!(page.contains("No task failed for good."));
}

#[test]
fn an_empty_catalog_gives_a_report_that_says_what_to_run_first() {
    let env = Env::new();
    env.ok(&["store", "init"]);
    env.ok(&["sync"]);
    env.ok(&["report"]);
    let page = env.read("anamo-report.html");
    for says in [
        "No task in the catalog yet: add tasks",
        "No task has finished yet",
        "no run time is known",
        "No sample sheet imported",
        "No task failed for good.",
    ] {
        assert!(page.contains(says), "{says}");
    }
    assert_eq!(external_references(&page), Vec::<String>::new());
    assert!(page.ends_with("</body></html>\n"));
}

#[test]
fn failures_are_listed_with_their_error_escaped() {
    let env = Env::new();
    env.ok(&[
        "tasks",
        "add",
        "-c",
        "A",
        "--id",
        "a1",
        "--sample",
        "S1",
        "--script",
        "echo '<b>bad</b> & worse' >&2; exit 3",
        "--max-attempts",
        "1",
    ]);
    env.anamo(&["worker", "-c", "A"])
        .stderr("<b>bad</b> & worse\n")
        .run();
    env.anamo(&["report", "--sync"])
        .stderr_matches(r"synced tasks from [^\n]+\n")
        .run();
    let page = env.read("anamo-report.html");
    assert!(
        page.contains("1 task(s) failed on their last attempt."),
        "{page}"
    );
    assert!(page.contains("&lt;b&gt;bad&lt;/b&gt; &amp; worse"));
    assert!(!page.contains("<b>bad</b>"));
    assert_eq!(step_counts(&page, "A")[4], ("failed".to_string(), 1));
}

/// Debian's headless Chromium: the test command installs it; in CI its absence is a failure.
fn chromium() -> Option<&'static str> {
    let found = std::process::Command::new("chromium")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return Some("chromium");
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "chromium is not installed; scripts/test.sh installs it (Debian package chromium)"
    );
    eprintln!("skipped: chromium is not installed (scripts/test.sh installs it)");
    None
}

/// Runs headless Chromium on `page` at `size` with the network cut off; returns its stderr
/// (console messages included) and stdout.
fn browse(page: &std::path::Path, size: &str, action: &str) -> (String, String) {
    let out = std::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
            // No network: every request goes to a closed port and no name resolves.
            "--proxy-server=127.0.0.1:9",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            &format!("--window-size={size}"),
            action,
            &format!("file://{}", page.display()),
        ])
        .output()
        .expect("chromium runs");
    assert!(out.status.success(), "chromium failed: {out:?}");
    (
        String::from_utf8_lossy(&out.stderr).into_owned(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn the_report_renders_offline_in_a_real_browser_on_a_desk_and_a_phone() {
    let Some(_) = chromium() else { return };
    let env = Env::new();
    env.anamo(&["demo", "--dir", "d", "--samples", "12"])
        .stderr_matches(r"(?s).*")
        .run();
    let page = env.path("d/anamo-report.html");
    assert!(page.exists(), "the demo writes its report");
    let (console, dom) = browse(&page, "1200,1800", "--dump-dom");
    let errors: Vec<&str> = console.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(errors.is_empty(), "console messages: {errors:?}");
    // Every step's % done is on the page as the browser built it.
    for step in ["Alignment", "ReadProcessing", "VariantCalling"] {
        let row = dom
            .find(&format!("<tr data-step=\"{step}\">"))
            .unwrap_or_else(|| panic!("{step} in the rendered page"));
        assert!(
            dom[row..]
                .split("</tr>")
                .next()
                .unwrap()
                .contains("<td class=\"pct\">100.0%</td>"),
            "{step}"
        );
    }
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    for (name, size) in [
        ("report-desktop.png", "1200,1800"),
        ("report-phone.png", "390,844"),
    ] {
        let shot = shots.join(name);
        let _ = std::fs::remove_file(&shot);
        browse(&page, size, &format!("--screenshot={}", shot.display()));
        let png = std::fs::read(&shot).expect("a screenshot");
        assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "{name}");
    }
}

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
        5,
        "the steps' bars, done over time, done per day, run times, the QC gate's histogram"
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
        assert_eq!(counts.len(), 7);
        // What status sets apart (the demo's dropped sample) is on the page too.
        let dropped = row[header.iter().position(|h| *h == "dropped").unwrap()];
        assert_eq!(dropped, "1", "the demo drops one sample");
        assert!(
            page.contains(&format!("<td>{dropped} dropped</td></tr>")),
            "{}",
            row[0]
        );
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

/// The state bars of the page's first chart: per bar row (top first), (state, width in px).
fn bar_widths(page: &str) -> Vec<Vec<(String, f64)>> {
    let fills = [
        ("#2E8B57", "done"),
        ("#3465A4", "running"),
        ("#8C8C8C", "todo"),
        ("#C88200", "waiting"),
        ("#CC3333", "failed"),
    ];
    let svg = &page[page.find("<svg").unwrap()..page.find("</svg>").unwrap()];
    let attr = |rect: &str, name: &str| -> f64 {
        let at = rect.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
        rect[at..rect[at..].find('"').unwrap() + at]
            .parse()
            .unwrap()
    };
    let mut rows: Vec<(f64, Vec<(String, f64)>)> = vec![];
    for rect in svg.split("<rect").skip(1) {
        let Some((_, state)) = fills
            .iter()
            .find(|(f, _)| rect.contains(&format!("fill=\"{f}\"")))
        else {
            continue;
        };
        let (y, width) = (attr(rect, "y"), attr(rect, "width"));
        match rows.iter_mut().find(|(at, _)| (*at - y).abs() < 1.0) {
            Some((_, bars)) => bars.push((state.to_string(), width)),
            None => rows.push((y, vec![(state.to_string(), width)])),
        }
    }
    rows.sort_by(|a, b| a.0.total_cmp(&b.0));
    rows.into_iter().map(|(_, bars)| bars).collect()
}

#[test]
fn the_steps_chart_draws_each_state_in_proportion_to_its_count() {
    let env = Env::new();
    for (id, sample, script) in [
        ("a1", "S1", "true"),
        ("a2", "S2", "true"),
        ("a3", "S3", "exit 1"),
        ("a4", "S4", "true"),
    ] {
        env.ok(&[
            "tasks",
            "add",
            "-c",
            "A",
            "--id",
            id,
            "--sample",
            sample,
            "--script",
            script,
            "--max-attempts",
            "1",
        ]);
    }
    env.ok(&[
        "tasks", "add", "-c", "B", "--id", "b4", "--sample", "S4", "--script", "true", "--after",
        "A",
    ]);
    env.ok(&["worker", "-c", "A", "--max-tasks", "3"]);
    env.anamo(&["report", "--sync"])
        .stderr_matches(r"synced tasks from [^\n]+\n")
        .run();
    let page = env.read("anamo-report.html");
    let status = env
        .anamo(&["status", "--format", "csv"])
        .stderr_matches(FRESH)
        .run();
    let header: Vec<&str> = status.lines().next().unwrap().split(',').collect();
    let counts: Vec<Vec<(String, f64)>> = status
        .lines()
        .skip(1)
        .map(|line| {
            let row: Vec<&str> = line.split(',').collect();
            ["done", "running", "todo", "waiting", "failed"]
                .iter()
                .map(|s| {
                    let n: f64 = row[header.iter().position(|h| h == s).unwrap()]
                        .parse()
                        .unwrap();
                    (s.to_string(), n)
                })
                .filter(|(_, n)| *n > 0.0)
                .collect()
        })
        .collect();
    assert_eq!(
        counts,
        [
            vec![
                ("done".into(), 2.0),
                ("todo".into(), 1.0),
                ("failed".into(), 1.0)
            ],
            vec![("waiting".to_string(), 1.0)],
        ],
        "A: 2 done, 1 todo, 1 failed; B: 1 waiting"
    );
    // The chart: the same states in the same order, each as wide as its count (the longest
    // step's total is the full width), to the pixel.
    let bars = bar_widths(&page);
    let full: f64 = bars[0].iter().map(|(_, w)| w).sum();
    let most = 4.0;
    assert_eq!(bars.len(), counts.len(), "{bars:?}");
    for (drawn, want) in bars.iter().zip(&counts) {
        let states: Vec<&str> = drawn.iter().map(|(s, _)| s.as_str()).collect();
        let wanted: Vec<&str> = want.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(states, wanted);
        for ((_, width), (state, n)) in drawn.iter().zip(want) {
            let expected = full * n / most;
            assert!(
                (width - expected).abs() <= 2.0,
                "{state}: {width} px, want {expected}"
            );
        }
    }
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
        "No EC2 instance in the catalog: run <code>anamo sync --instances</code>",
        "No S3 listing in the catalog: run <code>anamo sync --objects",
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
    assert!(step_counts(&page, "A").contains(&("failed".to_string(), 1)));
}

/// Debian's headless Chromium: the test command installs it; in CI its absence is a failure.
/// The cells of the page's table `id`, row by row (header included), as text.
fn table_cells(page: &str, id: &str) -> Vec<Vec<String>> {
    let start = page
        .find(&format!("<table id=\"{id}\">"))
        .unwrap_or_else(|| panic!("no table {id}"));
    let table = &page[start..start + page[start..].find("</table>").unwrap()];
    table
        .split("<tr")
        .skip(1)
        .map(|row| {
            row.split("<t")
                .skip(1)
                .filter(|c| c.starts_with('d') || c.starts_with('h'))
                .map(|c| {
                    let text = &c[c.find('>').unwrap() + 1..];
                    // Break hints in headers are not part of the text.
                    text[..text.find("</t").unwrap()].replace("<wbr>", "")
                })
                .collect()
        })
        .collect()
}

/// Rows straight into the catalog, at times relative to now: three instances (two steps, spot
/// and on-demand; one ended without work), tasks on them in the last 48 hours, S3 files.
fn fleet_catalog(env: &Env) {
    env.write("samples.csv", "sample_id,cohort\nS1,c1\nS2,c1\nS3,c2\n");
    env.ok(&["samples", "import", "samples.csv"]);
    for (id, sample) in [("a1", "S1"), ("a2", "S2"), ("a3", "S3")] {
        env.ok(&[
            "tasks", "add", "-c", "Align", "--id", id, "--sample", sample, "--script", "true",
        ]);
    }
    env.ok(&["worker", "-c", "Align"]);
    env.ok(&["sync"]);
    let conn = env.catalog_rw();
    let now = anamo::clock::now_ms();
    let h = 3_600_000i64;
    for (id, step, market, launched, ended) in [
        ("i-a", "Align", "spot", now - 10 * h, None),
        (
            "i-b",
            "Align",
            "on-demand",
            now - 30 * h,
            Some(now - 20 * h),
        ),
        ("i-c", "Call", "spot", now - 12 * h, Some(now - h)),
    ] {
        conn.execute(
            "INSERT INTO instances (instance_id, step, state, instance_type, lifecycle, \
             launch_time, terminated_at, first_seen_at, last_seen_at) \
             VALUES (?1, ?2, ?3, 'm5.large', ?4, ?5, ?6, ?5, ?7)",
            rusqlite::params![
                id,
                step,
                if ended.is_some() {
                    "terminated"
                } else {
                    "running"
                },
                market,
                launched,
                ended,
                now
            ],
        )
        .unwrap();
    }
    for (task, owner, state, start, end) in [
        ("a1", "i-a", "done", now - 5 * h, Some(now - 4 * h)),
        ("a2", "i-b", "done", now - 29 * h, Some(now - 21 * h)),
        ("a3", "i-a", "running", now - h, None),
    ] {
        conn.execute(
            "UPDATE tasks SET owner = ?2, state = ?3, started_at = ?4, finished_at = ?5 \
             WHERE task_id = ?1",
            rusqlite::params![task, owner, state, start, end],
        )
        .unwrap();
    }
    for (key, size, sample, kind) in [
        ("S1/S1.cram", 3_000_000_000i64, "S1", "cram"),
        ("S1/S1.cram.crai", 1_000_000, "S1", "crai"),
        ("S2/S2.cram", 2_500_000_000, "S2", "cram"),
        ("S2/notes.txt", 10, "S2", "other"),
    ] {
        conn.execute(
            "INSERT INTO objects (bucket, key, size, sample_id, kind, first_seen_at, last_seen_at) \
             VALUES ('cohort', ?1, ?2, ?3, ?4, ?5, ?5)",
            rusqlite::params![key, size, sample, kind, now],
        )
        .unwrap();
    }
}

#[test]
fn instances_and_s3_files_show_what_the_catalog_and_its_reports_say() {
    let env = Env::new();
    fleet_catalog(&env);
    env.write(
        "anamo.toml",
        "[study]\nname = \"SG <10K>\"\nrequired_kinds = [\"cram\", \"crai\"]\n",
    );
    env.ok(&["report"]);
    let page = env.read("anamo-report.html");
    assert!(
        page.contains("<h1>SG &lt;10K&gt;</h1>"),
        "title from [study]"
    );
    assert_eq!(external_references(&page), Vec::<String>::new());
    let csv = |args: &[&str]| -> Vec<Vec<String>> {
        let mut all = vec!["query"];
        all.extend_from_slice(args);
        all.extend(["--format", "csv"]);
        env.ok(&all)
            .lines()
            .map(|l| l.split(',').map(str::to_string).collect())
            .collect()
    };
    // The saved reports' own rows, header and all.
    assert_eq!(
        table_cells(&page, "instance-hours"),
        csv(&["instance-hours-by-step"])
    );
    assert_eq!(
        table_cells(&page, "instance-hours").len(),
        4,
        "Align x 2 markets, Call"
    );
    assert_eq!(
        table_cells(&page, "idle-instances"),
        csv(&["instances-without-work", "-p", "hours=6"])
    );
    assert_eq!(table_cells(&page, "idle-instances")[1][0], "i-c");
    assert_eq!(table_cells(&page, "cost"), csv(&["cost-by-step"]));
    assert_eq!(
        table_cells(&page, "cost")[1][7],
        "m5.large",
        "no price known: unpriced, named"
    );
    // The timeline: the instances that ran tasks in the last 48 hours, with their runs.
    let timeline = table_cells(&page, "timeline");
    assert_eq!(
        timeline[1..],
        [
            ["i-b", "Align", "on-demand", "1", "1", "0", "0"].map(String::from),
            ["i-a", "Align", "spot", "2", "1", "0", "1"].map(String::from),
        ]
    );
    let runs = csv(&[
        "SELECT owner, count(*) FROM tasks WHERE owner LIKE 'i-%' GROUP BY owner ORDER BY owner",
    ]);
    assert_eq!(runs[1..], [vec!["i-a", "2"], vec!["i-b", "1"]]);
    assert_eq!(
        page.matches("<svg").count(),
        5,
        "four charts and the timeline"
    );
    // On a 1280 px desk, the cost table fits the page without scrolling sideways: measured
    // by the browser's layout.
    if chromium().is_some() {
        let probe = r#"<script>
const t = document.querySelector('#cost');
document.body.setAttribute('data-probe',
  [document.documentElement.clientWidth, Math.round(t.getBoundingClientRect().right),
   t.parentElement.scrollWidth, t.parentElement.clientWidth].join(','));
</script></body>"#;
        let f = measure(&env, &page, probe, "1280,900");
        assert!(
            f[1] <= f[0] && f[2] <= f[3],
            "the cost table (right edge, scroll width) overflows: {f:?}"
        );
    }
    // Files per kind, and the samples missing a required kind.
    let kinds = table_cells(&page, "kinds");
    let sql = csv(&[
        "SELECT kind, count(*), sum(size), count(DISTINCT sample_id) FROM objects \
         WHERE removed_at IS NULL GROUP BY kind ORDER BY kind",
    ]);
    assert_eq!(kinds.len(), sql.len());
    for (row, want) in kinds[1..].iter().zip(&sql[1..]) {
        assert_eq!((&row[0], &row[1], &row[3]), (&want[0], &want[1], &want[3]));
    }
    assert!(page.contains(&format!("data-bytes=\"{}\">5.1 GiB<", 5_500_000_000u64)));
    let missing = table_cells(&page, "missing");
    assert_eq!(
        missing[1..],
        [
            ["cram", "1", "S3"].map(String::from),
            ["crai", "2", "S2, S3"].map(String::from),
        ]
    );
    assert_eq!(
        csv(&["samples-missing-files", "-p", "kind=crai"]).len() - 1,
        2
    );
    // A kind that is not one is refused, naming the line and the kinds.
    env.write("anamo.toml", "[study]\nrequired_kinds = [\"CRAM\"]\n");
    env.anamo(&["report"])
        .fails(1)
        .stderr(
            "error: anamo.toml:2: [study] required_kinds: 'CRAM' is not a file kind; use fastq, \
             bam, cram, bai, crai, vcf, gvcf, tbi, other\n",
        )
        .run();
}

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
/// Lays out a copy of `page` with `probe` (a script that leaves comma-separated numbers in
/// the body's `data-probe`) in a window of `size`, and returns the numbers.
fn measure(env: &Env, page: &str, probe: &str, size: &str) -> Vec<i64> {
    let measured = env.write("measured.html", &page.replace("</body>", probe));
    let (_, dom) = browse(&measured, size, "--dump-dom");
    let at = dom.find("data-probe=\"").expect("the probe ran") + "data-probe=\"".len();
    dom[at..]
        .split('"')
        .next()
        .unwrap()
        .split(',')
        .map(|v| v.parse().unwrap())
        .collect()
}

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
    // Every step's % done is on the page as the browser built it; variant calling's gate holds
    // two of eleven.
    for (step, pct) in [
        ("Alignment", "100.0%"),
        ("ReadProcessing", "100.0%"),
        ("VariantCalling", "81.8%"),
    ] {
        let row = dom
            .find(&format!("<tr data-step=\"{step}\">"))
            .unwrap_or_else(|| panic!("{step} in the rendered page"));
        assert!(
            dom[row..]
                .split("</tr>")
                .next()
                .unwrap()
                .contains(&format!("<td class=\"pct\">{pct}</td>")),
            "{step}"
        );
    }
    // The gate's section: the coverage histogram with the threshold drawn in the held colour,
    // labelled, and the held samples with why.
    let gate = dom
        .find("<figure class=\"gate\" data-step=\"VariantCalling\" data-gate=\"mean_coverage &gt;= 15\" data-threshold=\"15\">")
        .expect("the gate's figure in the rendered page");
    let figure = dom[gate..].split("</figure>").next().unwrap();
    assert!(figure.contains("<svg"), "{figure}");
    let (held, line) = (charts_colour(148, 80, 170), "stroke-width=\"3\"");
    assert!(
        figure.contains(&format!("stroke=\"{held}\"")) && figure.contains(line),
        "the threshold line: {figure}"
    );
    assert!(
        figure.contains("&gt;= 15"),
        "the threshold's label: {figure}"
    );
    let table = dom[dom
        .find("<table id=\"held-VariantCalling\">")
        .expect("held table")..]
        .split("</table>")
        .next()
        .unwrap()
        .to_string();
    for sample in ["S004", "S011"] {
        assert!(table.contains(&format!("<td>{sample}</td>")), "{table}");
    }
    assert!(table.contains("held: mean_coverage 9"), "{table}");
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

/// On a phone (390 px), the steps chart is scaled to the width (every state's bar in view,
/// none cut) and the steps table's "% done" and "failed" columns are in view: measured by the
/// browser's own layout, in a copy of the page with a measuring script added.
#[test]
fn on_a_phone_the_steps_chart_fits_and_the_key_columns_show() {
    let Some(_) = chromium() else { return };
    let env = Env::new();
    env.anamo(&["demo", "--dir", "d", "--samples", "12"])
        .stderr_matches(r"(?s).*")
        .run();
    let page = std::fs::read_to_string(env.path("d/anamo-report.html")).unwrap();
    // Headless Chromium keeps a window at least 500 px wide: the page is laid out at the
    // phone's 390 px instead.
    let probe = r#"<style>html{width:390px}</style><script>
const w = 390;
const chart = document.querySelector('.chart.fit svg').getBoundingClientRect();
const heads = [...document.querySelectorAll('#steps th')];
const right = name => heads.find(h => h.textContent === name).getBoundingClientRect().right;
document.body.setAttribute('data-probe',
  [w, Math.round(chart.right), Math.round(right('% done')), Math.round(right('failed'))].join(','));
</script></body>"#;
    let figures = measure(&env, &page, probe, "390,844");
    let (width, chart, pct, failed) = (figures[0], figures[1], figures[2], figures[3]);
    assert!(width <= 390, "{figures:?}");
    assert!(chart <= width, "the steps chart is cut: {figures:?}");
    assert!(
        pct <= width && failed <= width,
        "% done and failed in view: {figures:?}"
    );
}

/// How plotters writes a colour in an SVG attribute.
fn charts_colour(r: u8, g: u8, b: u8) -> String {
    format!("#{r:02X}{g:02X}{b:02X}")
}

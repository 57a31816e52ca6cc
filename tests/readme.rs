//! The README's first command must work as written: run its walk-through (with the freshly
//! built binary instead of the release build) and check what it promises.

use std::process::Command;

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
    let bin = assert_cmd::cargo::cargo_bin("anamo");
    let dir = tempfile::tempdir().unwrap();
    let demo = dir.path().join("anamo-demo");
    let script = script
        .replacen(
            first,
            &format!(
                "export PATH=\"{}:$PATH\" \\",
                bin.parent().unwrap().display()
            ),
            1,
        )
        .replace("/tmp/anamo-demo", demo.to_str().unwrap());
    let out = Command::new("bash")
        .args(["-c", &script])
        .env_remove("ANAMO_STORE")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("Demo\t0\t0\t20\t1\t21"), "{stdout}");
    assert!(stdout.contains("samples run: 20, run twice: 0"), "{stdout}");
    assert!(
        stdout.contains("state\tfailed") && stdout.contains("attempts\t3"),
        "{stdout}"
    );
    assert!(stdout.contains("reference genome not found"), "{stdout}");
}

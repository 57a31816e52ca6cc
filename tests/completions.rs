//! `anamo completions` and `anamo man`: both come from the clap definitions, so they list
//! the same subcommands and flags as `--help`.

use crate::harness::Env;

#[test]
fn completions_and_man_page_come_from_the_cli() {
    let env = Env::new();
    for (shell, marker) in [
        ("bash", "_anamo() {"),
        ("zsh", "#compdef anamo"),
        ("fish", "complete -c anamo"),
        ("powershell", "Register-ArgumentCompleter"),
        ("elvish", "edit:completion:arg-completer[anamo]"),
    ] {
        let script = env.ok(&["completions", shell]);
        assert!(script.contains(marker), "{shell}: {script}");
        // Subcommands and their flags are there, from the same definitions as --help.
        assert!(script.contains("release-stale"), "{shell}");
        assert!(script.contains("max-attempts"), "{shell}");
    }
    env.anamo(&["completions", "tcsh"])
        .fails(2)
        .stderr_first_line("error: invalid value 'tcsh' for '<SHELL>'")
        .run();

    let page = env.ok(&["man"]);
    assert!(page.contains(".TH anamo 1"), "{page}");
    assert!(page.contains("completions"), "the page lists the commands");
    env.ok(&["man", "--dir", "man1"]);
    for name in [
        "anamo.1",
        "anamo-tasks.1",
        "anamo-tasks-add.1",
        "anamo-worker.1",
    ] {
        let text = env.read(&format!("man1/{name}"));
        assert!(text.starts_with(".ie"), "{name}: {text}");
    }
    assert!(
        env.read("man1/anamo-tasks-add.1")
            .contains("max\\-attempts")
    );
}

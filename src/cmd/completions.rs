//! `anamo completions SHELL` and `anamo man`: shell completion scripts and a man page, both
//! generated from the same clap definitions as `--help`, so they cannot drift from it.

use std::io::Write;

use anyhow::Result;
use clap::{Args, CommandFactory};
use clap_complete::Shell;

use crate::cli::Cli;

/// Print a completion script for a shell, e.g.
/// `anamo completions bash > ~/.local/share/bash-completion/completions/anamo`.
#[derive(Debug, Args)]
pub struct Cmd {
    /// The shell: bash, zsh, fish, powershell or elvish.
    #[arg(value_enum)]
    pub shell: Shell,
}

impl Cmd {
    pub fn run(self) -> Result<()> {
        // Into memory first: clap_complete panics when its writer fails (`| head`).
        let mut script = Vec::new();
        clap_complete::generate(self.shell, &mut Cli::command(), "anamo", &mut script);
        let mut out = std::io::stdout().lock();
        out.write_all(&script)?;
        out.flush()?;
        Ok(())
    }
}

/// Print the man page (roff), e.g. `anamo man > ~/.local/share/man/man1/anamo.1`; with
/// --dir, write one page per command (anamo.1, anamo-tasks.1, anamo-tasks-add.1, ...).
#[derive(Debug, Args)]
pub struct Man {
    /// Write every command's page into this folder instead.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<std::path::PathBuf>,
}

impl Man {
    pub fn run(self) -> Result<()> {
        let command = Cli::command();
        match self.dir {
            None => {
                let mut page = vec![];
                clap_mangen::Man::new(command).render(&mut page)?;
                let mut out = std::io::stdout().lock();
                out.write_all(keep_lines_apart(&String::from_utf8_lossy(&page)).as_bytes())?;
                out.flush()?;
            }
            Some(dir) => {
                let cannot_write = |source| crate::error::Error::Write {
                    path: dir.clone(),
                    source,
                };
                std::fs::create_dir_all(&dir).map_err(cannot_write)?;
                clap_mangen::generate_to(command, &dir).map_err(cannot_write)?;
                for entry in std::fs::read_dir(&dir).map_err(cannot_write)? {
                    let path = entry.map_err(cannot_write)?.path();
                    if path.extension().is_some_and(|e| e == "1") {
                        let page = std::fs::read_to_string(&path).map_err(cannot_write)?;
                        std::fs::write(&path, keep_lines_apart(&page)).map_err(cannot_write)?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// roff fills a paragraph's lines into one: `--help`'s example lines (laid out one per line,
/// with aligned continuations) would run together. Each description paragraph of several lines
/// is set no-fill (`.nf` ... `.fi`), so the page shows them as `--help` does.
fn keep_lines_apart(page: &str) -> String {
    let mut out = String::with_capacity(page.len() + 256);
    let mut in_description = false;
    let mut paragraph: Vec<&str> = vec![];
    let flush = |out: &mut String, paragraph: &mut Vec<&str>| {
        if paragraph.len() > 1 {
            out.push_str(".nf\n");
        }
        for line in paragraph.iter() {
            out.push_str(line);
            out.push('\n');
        }
        if paragraph.len() > 1 {
            out.push_str(".fi\n");
        }
        paragraph.clear();
    };
    for line in page.lines() {
        if line.starts_with(".SH") {
            flush(&mut out, &mut paragraph);
            in_description = line == ".SH DESCRIPTION";
        } else if in_description && !line.starts_with('.') {
            paragraph.push(line);
            continue;
        } else {
            flush(&mut out, &mut paragraph);
        }
        out.push_str(line);
        out.push('\n');
    }
    flush(&mut out, &mut paragraph);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_lines_stay_apart_and_other_text_is_untouched() {
        let page = ".TH x 1\n.SH DESCRIPTION\nOne line.\n.PP\nFrom flags: a\nFrom a file: b\n\
                    .SH OPTIONS\n.TP\nwrapped\ntext\n";
        assert_eq!(
            keep_lines_apart(page),
            ".TH x 1\n.SH DESCRIPTION\nOne line.\n.PP\n.nf\nFrom flags: a\nFrom a file: b\n.fi\n\
             .SH OPTIONS\n.TP\nwrapped\ntext\n"
        );
    }
}

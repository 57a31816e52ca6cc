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
                let mut out = std::io::stdout().lock();
                clap_mangen::Man::new(command).render(&mut out)?;
                out.flush()?;
            }
            Some(dir) => {
                let cannot_write = |source| crate::error::Error::Write {
                    path: dir.clone(),
                    source,
                };
                std::fs::create_dir_all(&dir).map_err(cannot_write)?;
                clap_mangen::generate_to(command, &dir).map_err(cannot_write)?;
            }
        }
        Ok(())
    }
}

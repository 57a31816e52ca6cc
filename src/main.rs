use std::io::ErrorKind;
use std::process::ExitCode;

use clap::Parser;
use tracing::Level;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use anamo::cli::{Cli, Command};
use anamo::config::Context;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = match (cli.global.quiet, cli.global.verbose) {
        (true, _) => Level::ERROR,
        (false, 0) => Level::WARN,
        (false, 1) => Level::INFO,
        _ => Level::DEBUG,
    };
    // Colour only for a person: the worker's log is often a file (user data appends to
    // /var/log/anamo-worker.log), where escape codes are noise.
    let log = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match std::env::var_os("RUST_LOG") {
        Some(_) => log
            .with_env_filter(EnvFilter::from_default_env())
            .finish()
            .init(),
        // Our own log at the chosen level; libraries (the AWS SDK) only when they fail. A plain
        // target filter: EnvFilter's directive parsing is a measurable part of a query's cold
        // start.
        None => log
            .with_max_level(level)
            .finish()
            .with(
                Targets::new()
                    .with_default(Level::ERROR)
                    .with_target("anamo", level),
            )
            .init(),
    }
    anamo::output::set_quiet(cli.global.quiet);
    let ctx = Context {
        store_url: cli.global.store,
        catalog_path: cli.global.catalog,
        queries_dir: cli.global.queries,
        aws: anamo::aws::AwsOptions {
            region: cli.global.region,
            profile: cli.global.profile,
            endpoint_url: cli.global.endpoint_url,
            static_keys: None,
        },
    };
    let result = match cli.command {
        Command::Demo(c) => c.run(&ctx),
        Command::Tasks(c) => c.run(&ctx),
        Command::Worker(c) => c.run(&ctx),
        Command::Launch(c) => c.run(&ctx),
        Command::Logs(c) => c.run(&ctx),
        Command::Sync(c) => c.run(&ctx),
        Command::Query(c) => c.run(&ctx),
        Command::Reports(c) => c.run(&ctx),
        Command::Status(c) => c.run(&ctx),
        Command::Report(c) => c.run(&ctx),
        Command::Ship(c) => c.run(&ctx),
        Command::Prices(c) => c.run(&ctx),
        Command::Samples(c) => c.run(&ctx),
        Command::Qc(c) => c.run(&ctx),
        Command::Steps(c) => c.run(&ctx),
        Command::Store(c) => c.run(&ctx),
        Command::Completions(c) => c.run(),
        Command::Man(c) => c.run(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // A reader that went away (`| head`) is not a failure.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", anamo::error::one_line(&e));
            if is_usage(&e) {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// A usage mistake found after parsing exits 2, as clap's own do.
fn is_usage(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<anamo::error::Error>(),
            Some(anamo::error::Error::Usage(_))
        )
    })
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == ErrorKind::BrokenPipe)
            || c.downcast_ref::<anamo::error::Error>().is_some_and(
                |a| matches!(a, anamo::error::Error::Io(io) if io.kind() == ErrorKind::BrokenPipe),
            )
    })
}

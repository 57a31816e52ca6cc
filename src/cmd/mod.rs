//! One module per subcommand: its clap arguments (the doc comments are the --help text) and
//! its `run`.

pub mod completions;
pub mod demo;
pub mod launch;
pub mod logs;
pub mod prices;
pub mod qc;
pub mod query;
pub mod report;
pub mod reports;
pub mod samples;
pub mod ship;
pub mod status;
pub mod steps;
pub mod store;
pub mod sync;
pub mod tasks;
pub mod worker;

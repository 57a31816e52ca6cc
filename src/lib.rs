//! anamo: a work queue (task store + workers) and a SQL catalog for population-scale genome
//! workflows. The binary in `main.rs` only parses the command line and dispatches here.

pub mod aws;
pub mod backoff;
pub mod catalog;
pub mod cli;
pub mod clock;
pub mod cmd;
pub mod config;
pub mod db;
pub mod demo;
pub mod error;
pub mod host;
pub mod launch;
pub mod model;
pub mod output;
pub mod placeholders;
pub mod publish;
pub mod query;
pub mod report;
pub mod ship;
pub mod standing;
pub mod status;
pub mod store;
pub mod study;
pub mod sync;
pub mod taskfile;
pub mod wording;
pub mod worker;

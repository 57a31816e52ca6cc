//! anamo: a work queue (task store + workers) and a SQL catalog for population-scale genome
//! workflows. The binary in `main.rs` only parses the command line and dispatches here.

pub mod cli;
pub mod clock;
pub mod cmd;
pub mod config;
pub mod db;
pub mod error;
pub mod model;
pub mod output;
pub mod store;
pub mod taskfile;
pub mod worker;

//! The one integration test crate (as ripgrep's `tests/tests.rs`): a module per area, one
//! harness. Each file under `tests/` that is not a module would be its own binary linking the
//! whole AWS SDK again.

mod harness;

mod chaos;
mod completions;
mod cost;
mod demo_cli;
mod dynamo_cli;
mod ec2_worker;
mod file_errors;
mod flow;
mod fuzz;
mod gates;
mod html_report;
mod iam;
mod incremental;
mod instances_sync;
mod launch;
mod launch_cap;
mod model;
mod one_rule;
mod progress;
mod publish;
mod query_cli;
mod readme;
mod reported;
mod reports;
mod s3_objects;
mod samples_cli;
mod slips;
mod status_cli;
mod stock_ami;
mod store_suite;
mod studies;
mod sync_cli;
mod sync_failure;
mod table_shape;
mod tasks_cli;
mod usage;
mod walk;
mod worker;

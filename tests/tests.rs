//! The one integration test crate (as ripgrep's `tests/tests.rs`): a module per area, one
//! harness. Each file under `tests/` that is not a module would be its own binary linking the
//! whole AWS SDK again.

mod harness;

mod catalog_cli;
mod chaos;
mod dynamo_cli;
mod ec2_launch;
mod ec2_worker;
mod flow;
mod fuzz;
mod house;
mod html_report;
mod iam;
mod model;
mod one_rule;
mod progress;
mod readme;
mod reports;
mod s3_objects;
mod stock_ami;
mod store_suite;
mod sync_failure;
mod table_shape;
mod tasks_cli;
mod usage;
mod walk;
mod worker;

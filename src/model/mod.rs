//! Plain data shared by every part of anamo: tasks and their states, new tasks with the checks
//! every store applies before writing one, claims and run outcomes (`task`); what a run's
//! script reports, QC metrics and outputs (`reported`), and the gates on them (`gate`); what
//! the store calls take and give: selectors, filters, pages, reports, tombstones, counts
//! (`store`); and the EC2 instances and S3 objects that launch and sync record (`aws`). No I/O
//! here and no imports of our own modules: the stores, the catalog and the AWS adapters
//! convert to and from these types at their edges. Everything is re-exported here: callers
//! name `crate::model::X`.

mod aws;
mod gate;
mod reported;
mod store;
mod task;

pub use aws::*;
pub use gate::*;
pub use reported::*;
pub use store::*;
pub use task::*;

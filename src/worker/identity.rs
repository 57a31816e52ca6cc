//! Who a worker is: recorded as the owner of every task it runs.

/// `hostname:pid`.
pub fn default_owner() -> String {
    format!("{}:{}", crate::host::hostname(), std::process::id())
}

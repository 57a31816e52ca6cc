//! Settings every command shares: flags > environment (ANAMO_*) > defaults. Building the
//! context is cheap: nothing is opened until a command asks for it.

use crate::error::Result;
use crate::store::{self, OpenMode, TaskStore};

/// What a command needs to know about where things live.
#[derive(Debug, Clone)]
pub struct Context {
    /// Store URL: `sqlite://PATH` (or a plain path).
    pub store_url: String,
}

impl Context {
    /// Opens the task store; `mode` says whether a missing store is created or an error.
    pub fn store(&self, mode: OpenMode) -> Result<Box<dyn TaskStore>> {
        store::open(&self.store_url, mode)
    }
}

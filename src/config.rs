//! Settings every command shares: flags > environment (ANAMO_*) > defaults. Building the
//! context is cheap: nothing is opened until a command asks for it.

use std::path::PathBuf;

use crate::aws::AwsOptions;
use crate::catalog::Catalog;
use crate::error::Result;
use crate::store::{self, OpenMode, TaskStore};

/// What a command needs to know about where things live.
#[derive(Debug, Clone)]
pub struct Context {
    /// Store URL: `sqlite://PATH` (or a plain path).
    pub store_url: String,
    /// The catalog file.
    pub catalog_path: PathBuf,
    /// The user's saved reports, which add to or override the built-in ones.
    pub queries_dir: Option<PathBuf>,
    /// Region, profile and endpoint for AWS; read only by commands that talk to AWS.
    pub aws: AwsOptions,
}

impl Context {
    /// Opens the task store; `mode` says whether a missing store is created or an error.
    pub fn store(&self, mode: OpenMode) -> Result<Box<dyn TaskStore>> {
        store::open(&self.store_url, mode, &self.aws)
    }

    /// The user's report folder: --queries/ANAMO_QUERIES, else `./queries` when it exists.
    pub fn user_queries(&self) -> Option<PathBuf> {
        self.queries_dir.clone().or_else(|| {
            let local = PathBuf::from("queries");
            local.is_dir().then_some(local)
        })
    }

    /// Opens the catalog for writing, creating it if needed.
    pub fn catalog(&self) -> Result<Catalog> {
        Catalog::open(&self.catalog_path)
    }

    /// Opens the catalog for writing; it must exist.
    pub fn existing_catalog(&self) -> Result<Catalog> {
        Catalog::open_existing(&self.catalog_path)
    }
}

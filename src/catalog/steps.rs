//! The workflow order of the steps and where each step leaves its output: what `anamo steps`
//! sets, and the order every report and `status` use.

use rusqlite::params;

use super::{Catalog, CatalogRead};
use crate::error::{Error, Result};

impl Catalog {
    /// Sets the workflow order of the steps, replacing the old one.
    pub fn set_steps(&mut self, steps: &[String]) -> Result<()> {
        self.write(|tx| {
            let mut seen = std::collections::HashSet::new();
            for s in steps {
                if !seen.insert(s) {
                    return Err(Error::Invalid(format!("step '{s}' is named twice")));
                }
            }
            tx.execute("DELETE FROM steps", [])?;
            for (i, s) in steps.iter().enumerate() {
                tx.execute(
                    "INSERT INTO steps (collection, ordinal) VALUES (?1, ?2)",
                    params![s, i as i64 + 1],
                )?;
            }
            Ok(())
        })
    }

    /// Where `step`'s finished tasks leave their output (a `{sample}` pattern), replacing any.
    pub fn set_step_output(&mut self, step: &str, pattern: &str) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO step_outputs (collection, pattern) VALUES (?1, ?2) \
             ON CONFLICT (collection) DO UPDATE SET pattern = excluded.pattern",
                params![step, pattern],
            )?;
            Ok(())
        })
    }
}

impl CatalogRead {
    /// Whether the catalog knows `step`: in the workflow order or seen in a task (two key
    /// lookups, where [`CatalogRead::steps`] reads every task).
    pub fn step_known(&self, step: &str) -> Result<bool> {
        self.read(|conn| {
            Ok(conn.query_row(
                "SELECT EXISTS (SELECT 1 FROM steps WHERE collection = ?1) \
                 OR EXISTS (SELECT 1 FROM tasks WHERE collection = ?1)",
                [step],
                |r| r.get(0),
            )?)
        })
    }

    /// Every step the catalog knows: the workflow order first, then collections tasks were seen
    /// in.
    pub fn steps(&self) -> Result<Vec<String>> {
        self.read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT collection FROM (SELECT collection, ordinal FROM steps \
             UNION SELECT DISTINCT collection, NULL FROM tasks WHERE collection NOT IN \
             (SELECT collection FROM steps)) ORDER BY ordinal IS NULL, ordinal, collection",
            )?;
            let steps = stmt
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?;
            Ok(steps)
        })
    }
}

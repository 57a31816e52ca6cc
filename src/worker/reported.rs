//! The two files a run may write besides its log: `ANAMO_METRICS` (QC metrics) and
//! `ANAMO_OUTPUTS` (the files it wrote). Named in one folder per worker, made once; a script
//! creates them by writing (`>>`), the worker reads them once the run ends, then removes them.
//! Anything wrong with them fails the run with one line that names the file and the line: a
//! metric silently lost would be a gate silently passed.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::model::{MAX_REPORTED_BYTES, Reported, Task, kind_of, parse_metrics, parse_outputs};

/// The environment variables that name the two files.
pub const METRICS_VAR: &str = "ANAMO_METRICS";
pub const OUTPUTS_VAR: &str = "ANAMO_OUTPUTS";

/// The worker's folder for its runs' report files, under the system's temporary folder;
/// removed when the worker ends.
pub struct ReportDir {
    dir: PathBuf,
}

impl ReportDir {
    /// A new folder of this worker's own (one process may run several workers: the demo).
    pub fn create() -> std::io::Result<Self> {
        static MADE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "anamo-{}-{n}-{:08x}-reports",
            std::process::id(),
            crate::backoff::seed() as u32
        ));
        std::fs::create_dir(&dir)?;
        Ok(Self { dir })
    }

    /// The two files of `task`'s current run (task ids and steps hold no `/`).
    pub fn files_for(&self, task: &Task) -> ReportFiles {
        let stem = format!("{}.{}.{}", task.collection, task.task_id, task.runs);
        ReportFiles {
            metrics: self.dir.join(format!("{stem}.metrics")),
            outputs: self.dir.join(format!("{stem}.outputs")),
        }
    }
}

impl Drop for ReportDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// One run's two report files.
pub struct ReportFiles {
    metrics: PathBuf,
    outputs: PathBuf,
}

impl ReportFiles {
    /// The variables a script finds them by.
    pub fn env(&self) -> [(String, String); 2] {
        [
            (METRICS_VAR.into(), self.metrics.display().to_string()),
            (OUTPUTS_VAR.into(), self.outputs.display().to_string()),
        ]
    }

    /// Reads what the script wrote; the error is the one line for the run's error tail.
    pub fn read(&self) -> Result<Reported, String> {
        let mut budget = MAX_REPORTED_BYTES;
        let metrics = read_capped(METRICS_VAR, &self.metrics, &mut budget)?;
        let outputs = read_capped(OUTPUTS_VAR, &self.outputs, &mut budget)?;
        let reported = Reported {
            metrics: parse_metrics(&metrics).map_err(|e| format!("anamo: {METRICS_VAR} {e}"))?,
            outputs: parse_outputs(&outputs, kind_of)
                .map_err(|e| format!("anamo: {OUTPUTS_VAR} {e}"))?,
        };
        reported
            .check_stored_size()
            .map_err(|e| format!("anamo: {e}"))?;
        Ok(reported)
    }
}

impl Drop for ReportFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.metrics);
        let _ = std::fs::remove_file(&self.outputs);
    }
}

/// Reads a report file of at most `budget` bytes (what the other file left), as UTF-8.
fn read_capped(var: &str, path: &Path, budget: &mut usize) -> Result<String, String> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        // Never written: nothing reported.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(String::new()),
        Err(e) => {
            return Err(format!(
                "anamo: cannot read {var} ({}): {e}",
                path.display()
            ));
        }
    };
    let mut bytes = vec![];
    file.take(*budget as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("anamo: cannot read {var} ({}): {e}", path.display()))?;
    if bytes.len() > *budget {
        return Err(format!(
            "anamo: {METRICS_VAR} and {OUTPUTS_VAR} together hold more than {MAX_REPORTED_BYTES} \
             bytes ({var} went over); report a summary, not the data"
        ));
    }
    *budget -= bytes.len();
    String::from_utf8(bytes).map_err(|_| format!("anamo: {var} is not UTF-8 text"))
}

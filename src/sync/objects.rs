//! S3 -> catalog: ListObjectsV2 pages under a prefix, each page one transaction, each key read
//! for its sample id (a regex's `sample` group) and its kind (from the extension). Objects gone
//! from a complete listing get `removed_at`.

use indicatif::ProgressBar;
use regex::Regex;

use crate::aws::s3::{S3, S3Uri};
use crate::catalog::{Catalog, ObjectCounts};
use crate::error::{Error, Result};
use crate::model::{Object, kind_of};

/// How a sample id is read from a key (relative to the synced prefix).
#[derive(Debug, Clone)]
pub struct SamplePattern(Regex);

impl SamplePattern {
    /// A regex with a named group `sample`, searched in the key after the prefix.
    pub fn parse(pattern: &str) -> Result<Self> {
        Self::parse_from(pattern, "--sample-pattern")
    }

    /// The same, for a pattern from `origin` (a flag, or `anamo.toml:7: sample_pattern`).
    pub fn parse_from(pattern: &str, origin: &str) -> Result<Self> {
        let re = Regex::new(pattern).map_err(|e| {
            let why = e.to_string();
            let why = why.lines().last().unwrap_or("").trim();
            Error::Invalid(format!(
                "{origin} '{pattern}' is not a valid regex ({why}); e.g. '^(?P<sample>[^/]+)/'"
            ))
        })?;
        if !re.capture_names().flatten().any(|n| n == "sample") {
            return Err(Error::Invalid(format!(
                "{origin} '{pattern}' has no group named sample; mark the id with (?P<sample>...), e.g. '^(?P<sample>[^/]+)/'"
            )));
        }
        Ok(Self(re))
    }

    /// The default: the first path segment after the prefix.
    pub fn first_segment() -> Self {
        Self(Regex::new("^(?P<sample>[^/]+)/").expect("a valid literal regex"))
    }

    /// The regex as written.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    pub fn sample<'k>(&self, relative_key: &'k str) -> Option<&'k str> {
        self.0
            .captures(relative_key)?
            .name("sample")
            .map(|m| m.as_str())
            .filter(|s| !s.is_empty())
    }
}

/// Copies the listing of `at` (a folder: `s3://b/study` and `s3://b/study/` are the same)
/// into the catalog.
pub fn sync_objects(
    s3: &S3,
    catalog: &mut Catalog,
    at: &S3Uri,
    pattern: &SamplePattern,
    progress: &ProgressBar,
) -> Result<ObjectCounts> {
    let at = &at.as_folder();
    let run = catalog.start_run(&format!("objects:{at}"))?;
    let mut counts = ObjectCounts::default();
    let listed = s3.for_each_page(at, |page| {
        let objects: Vec<Object> = page
            .into_iter()
            .map(|l| {
                let relative = l.key.strip_prefix(&at.key).unwrap_or(&l.key);
                Object {
                    sample_id: pattern.sample(relative).map(str::to_string),
                    kind: kind_of(&l.key),
                    bucket: at.bucket.clone(),
                    key: l.key,
                    size: l.size,
                    etag: l.etag,
                    last_modified: l.last_modified,
                    storage_class: l.storage_class,
                }
            })
            .collect();
        let c = catalog.write_objects(&objects, pattern.as_str(), &at.to_string())?;
        progress.inc(c.run.seen);
        counts += c;
        Ok(())
    });
    let result =
        listed.and_then(|()| catalog.mark_objects_removed(&at.bucket, &at.key, run.started_at));
    progress.finish_and_clear();
    let result = result.map(|removed| counts.run.removed = removed);
    catalog.settle_run(&run, counts.run, result)?;
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_come_from_the_extension() {
        for (key, kind) in [
            ("S1/reads_R1.fastq.gz", "fastq"),
            ("S1/reads.FQ", "fastq"),
            ("S1/S1.bam", "bam"),
            ("S1/S1.bam.bai", "bai"),
            ("S1/S1.cram", "cram"),
            ("S1/S1.cram.crai", "crai"),
            ("S1/S1.g.vcf.gz", "gvcf"),
            ("S1/S1.g.vcf.gz.tbi", "tbi"),
            ("S1/S1.vcf.gz", "vcf"),
            ("S1/S1.vcf.gz.csi", "tbi"),
            ("S1/qc.json", "other"),
        ] {
            assert_eq!(kind_of(key), kind, "{key}");
        }
    }

    #[test]
    fn samples_come_from_the_pattern() {
        let first = SamplePattern::first_segment();
        assert_eq!(first.sample("S1/a.bam"), Some("S1"));
        assert_eq!(first.sample("loose.bam"), None);
        let p = SamplePattern::parse(r"(?P<sample>NA\d+)\.").unwrap();
        assert_eq!(p.sample("crams/NA12878.final.cram"), Some("NA12878"));
        let e = SamplePattern::parse("(?P<sample>[")
            .unwrap_err()
            .to_string();
        assert!(e.contains("is not a valid regex"), "{e}");
        let e = SamplePattern::parse("^([^/]+)/").unwrap_err().to_string();
        assert!(e.contains("has no group named sample"), "{e}");
    }
}

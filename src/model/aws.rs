//! What launch and sync record of AWS: EC2 instances, Spot prices and S3 objects (and the kind
//! of a genomics file, from its name). Plain data:
//! no I/O (the AWS adapters convert SDK types to these at their edge).

use std::collections::BTreeMap;

/// An EC2 instance as anamo records it (from a launch or from DescribeInstances).
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    pub instance_id: String,
    /// The `anamo:step` tag.
    pub step: Option<String>,
    /// The `anamo:launch-id` tag.
    pub launch_id: Option<String>,
    /// pending / running / stopping / stopped / shutting-down / terminated.
    pub state: String,
    pub state_reason: Option<String>,
    pub instance_type: Option<String>,
    /// `spot` or `on-demand`.
    pub lifecycle: String,
    /// Epoch ms.
    pub launch_time: Option<i64>,
    /// Epoch ms, when EC2 says (from the state transition reason).
    pub terminated_at: Option<i64>,
    /// Every tag, as a JSON object.
    pub tags: BTreeMap<String, String>,
    pub region: Option<String>,
    /// The availability zone, for its Spot price.
    pub zone: Option<String>,
}

/// A Spot price of one instance type in one zone, from the time it took effect.
#[derive(Debug, Clone, PartialEq)]
pub struct SpotPrice {
    pub instance_type: String,
    pub zone: String,
    /// Epoch ms.
    pub at: i64,
    pub usd_per_hour: f64,
}

/// One S3 object from a listing.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    pub bucket: String,
    pub key: String,
    pub size: i64,
    pub etag: Option<String>,
    /// Epoch ms.
    pub last_modified: Option<i64>,
    pub storage_class: Option<String>,
    pub sample_id: Option<String>,
    /// One of [`FILE_KINDS`], from the key's name.
    pub kind: &'static str,
}

/// The kinds of file `sync --objects` tells apart by name.
pub const FILE_KINDS: [&str; 9] = [
    "fastq", "bam", "cram", "bai", "crai", "vcf", "gvcf", "tbi", "other",
];

/// The kind of a genomics file, from its name.
pub fn kind_of(key: &str) -> &'static str {
    let k = key.to_ascii_lowercase();
    let ends = |suffixes: &[&str]| suffixes.iter().any(|s| k.ends_with(s));
    if ends(&[".tbi", ".csi"]) {
        "tbi"
    } else if ends(&[".bai"]) {
        "bai"
    } else if ends(&[".crai"]) {
        "crai"
    } else if ends(&[".g.vcf.gz", ".g.vcf", ".gvcf", ".gvcf.gz"]) {
        "gvcf"
    } else if ends(&[".vcf.gz", ".vcf", ".bcf", ".vcf.bgz"]) {
        "vcf"
    } else if ends(&[".bam"]) {
        "bam"
    } else if ends(&[".cram"]) {
        "cram"
    } else if ends(&[
        ".fastq",
        ".fq",
        ".fastq.gz",
        ".fq.gz",
        ".fastq.bz2",
        ".fq.bz2",
        ".fastq.ora",
    ]) {
        "fastq"
    } else {
        "other"
    }
}

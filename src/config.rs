//! What commands share: the `Context` (store URL, catalog path, report folder and AWS
//! options, from the global flags or their ANAMO_* environment variables, else defaults; see
//! cli.rs) with the calls that open the store and the catalog, and anamo.toml (ANAMO_CONFIG
//! or ./anamo.toml), which holds the `[sync]` sources (read by `anamo sync`) and the `[study]`
//! name and required file kinds (read by `anamo report`).
//! Building the context is cheap: nothing is opened or read until a command asks for it.

use std::path::PathBuf;

use crate::aws::AwsOptions;
use crate::catalog::{Catalog, CatalogRead};
use crate::error::Result;
use crate::store::{self, OpenMode, TaskStore};

/// What a command needs to know about where things live.
#[derive(Debug, Clone)]
pub struct Context {
    /// Store URL: `sqlite://PATH` (or a plain path) or `dynamodb://TABLE`.
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

    /// Opens the catalog for writing, creating it if needed. Noted as changed outside a
    /// sync, so a syncer publishing it publishes again (`catalog_for_sync` does not note).
    pub fn catalog(&self) -> Result<Catalog> {
        let mut catalog = self.catalog_for_sync()?;
        catalog.note_content_change()?;
        Ok(catalog)
    }

    /// Opens the catalog for writing; it must exist. Noted as changed, as `catalog` is.
    pub fn existing_catalog(&self) -> Result<Catalog> {
        self.refuse_published()?;
        let mut catalog = Catalog::open_existing(&self.catalog_path)?;
        catalog.note_content_change()?;
        Ok(catalog)
    }

    /// Opens the catalog for a sync, creating it if needed: what a sync changes, it says itself.
    pub fn catalog_for_sync(&self) -> Result<Catalog> {
        self.refuse_published()?;
        Catalog::open(&self.catalog_path)
    }

    /// The published catalog `--catalog s3://BUCKET/PREFIX/` names, if it names one.
    pub fn published_catalog(&self) -> Option<&str> {
        self.catalog_path
            .to_str()
            .filter(|p| p.starts_with("s3://"))
    }

    /// Opens the catalog for reading: the file, or the current version of a published one
    /// (fetched into the local cache once, checked against its sha256), saying on stderr
    /// which version it reads.
    pub fn read_catalog(&self) -> Result<CatalogRead> {
        let Some(uri) = self.published_catalog() else {
            return CatalogRead::open(&self.catalog_path);
        };
        let at = crate::aws::s3::S3Uri::parse(uri)?.as_folder();
        let s3 = crate::aws::s3::S3::connect(&self.aws)?.for_policy(crate::aws::s3::PUBLISH_POLICY);
        let root = crate::publish::reader::cache_root();
        let fetched = crate::publish::reader::fetch(&s3, &at, &root)?;
        let m = &fetched.manifest;
        let how = if fetched.downloaded {
            format!("downloaded, {} KiB", m.size.div_ceil(1024))
        } else {
            "cached".to_string()
        };
        let checked = match &m.checked_at {
            Some(c) if *c != m.as_of => format!(", synced again at {c} with nothing new"),
            _ => String::new(),
        };
        crate::note!(
            "catalog {at} as of {}{checked}, published by {} ({how})",
            m.as_of,
            m.by
        );
        match CatalogRead::open(&fetched.path) {
            Ok(catalog) => Ok(catalog),
            // A cached copy damaged since it came: dropped, and fetched again once.
            Err(e) if !fetched.downloaded => {
                crate::note!("the cached copy of this version is damaged ({e}); fetching it again");
                let _ = std::fs::remove_file(&fetched.path);
                let again = crate::publish::reader::fetch(&s3, &at, &root)?;
                CatalogRead::open(&again.path)
            }
            Err(e) => Err(e),
        }
    }

    /// A published catalog is read-only: a command that writes the catalog is refused with
    /// where to run it instead.
    fn refuse_published(&self) -> Result<()> {
        match self.published_catalog() {
            None => Ok(()),
            Some(uri) => Err(crate::error::Error::Invalid(format!(
                "--catalog {uri} is a published catalog, read-only here; run this command where \
                 its syncer runs (`anamo sync --watch --publish {uri}`), against that catalog \
                 file: its next publish brings the change to every reader"
            ))),
        }
    }
}

/// The settings file: ANAMO_CONFIG, else `./anamo.toml` when it exists.
pub const CONFIG_FILE: &str = "anamo.toml";

/// anamo.toml. Unknown keys are refused, so a typo does not pass silently.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub sync: SyncConfig,
    #[serde(default)]
    pub study: StudyConfig,
    /// `[prices]`: on-demand US dollars an hour by instance type (`"m5.xlarge" = 0.192`),
    /// copied into the catalog by each sync.
    #[serde(default)]
    pub prices: std::collections::BTreeMap<String, f64>,
    /// `[gates]`: the QC gates every task of a step requires, by step
    /// (`VariantCalling = ["mean_coverage >= 15", "freemix < 0.03"]`), added to each task
    /// `tasks add` adds to that step.
    #[serde(default)]
    pub gates: std::collections::BTreeMap<String, Vec<String>>,
}

/// `[study]`: what `anamo report` says of the study.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StudyConfig {
    /// The page's title.
    pub name: Option<String>,
    /// File kinds every active sample must have in S3 (`cram`, `gvcf`...): the page counts
    /// the samples missing each [default: every kind the listings hold].
    #[serde(default)]
    pub required_kinds: Vec<String>,
}

/// `[sync]`: the sources `anamo sync` copies besides the task store.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncConfig {
    /// Also sync EC2 instances (as --instances).
    #[serde(default)]
    pub instances: bool,
    /// `[[sync.objects]]` tables: S3 prefixes to list (as --objects).
    #[serde(default)]
    pub objects: Vec<ObjectSource>,
    /// How far before its last complete read an incremental sync starts (`"5m"`).
    #[serde(default, deserialize_with = "duration")]
    pub overlap: Option<std::time::Duration>,
    /// How old the last full scan may be before `sync` makes another (`"24h"`).
    #[serde(default, deserialize_with = "duration")]
    pub full_every: Option<std::time::Duration>,
}

/// A duration written as `anamo` reads every one (`90s`, `10m`, `24h`).
fn duration<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<std::time::Duration>, D::Error> {
    let text = <String as serde::Deserialize>::deserialize(d)?;
    crate::clock::parse_duration(&text)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectSource {
    /// `s3://BUCKET/PREFIX`.
    pub uri: String,
    /// Regex with a `sample` group [default: the first path segment after the prefix].
    pub sample_pattern: Option<String>,
    /// `FILE:LINE` of this entry, for messages about it.
    #[serde(skip)]
    pub at: String,
}

impl FileConfig {
    /// Reads ANAMO_CONFIG (which must exist) or ./anamo.toml (if it exists).
    pub fn load() -> Result<Self> {
        let (path, required) = match std::env::var_os("ANAMO_CONFIG") {
            Some(p) => (PathBuf::from(p), true),
            None => (PathBuf::from(CONFIG_FILE), false),
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
                return Ok(Self::default());
            }
            Err(source) => return Err(crate::error::Error::Read { path, source }),
        };
        Self::parse(&path.display().to_string(), &text)
    }

    pub fn parse(name: &str, text: &str) -> Result<Self> {
        let mut config: Self = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(0, |s| crate::error::line_at(text, s.start));
            crate::error::Error::input(name, line, e.message().to_string())
        })?;
        // Where each [[sync.objects]] entry starts, so a bad pattern names its line.
        let starts: Vec<usize> = text
            .match_indices("[[sync.objects]]")
            .map(|(i, _)| i)
            .collect();
        for (i, source) in config.sync.objects.iter_mut().enumerate() {
            let line = starts.get(i).map_or(0, |o| crate::error::line_at(text, *o));
            source.at = format!("{name}:{line}");
        }
        // A bad entry is named with the line of its key (its first mention in the file).
        let at = |key: &str, message: String| {
            let line = text.find(key).map_or(0, |o| crate::error::line_at(text, o));
            crate::error::Error::input(name, line, message)
        };
        for (t, usd) in &config.prices {
            if let Err(e) = crate::catalog::prices::check_price(t, *usd) {
                return Err(at(t, format!("[prices] {e}")));
            }
        }
        for (step, gates) in &config.gates {
            if let Err(e) = crate::model::parse_gates(gates) {
                return Err(at(step, format!("[gates] {step}: {e}")));
            }
        }
        if let Some(bad) = config
            .study
            .required_kinds
            .iter()
            .find(|k| !crate::model::FILE_KINDS.contains(&k.as_str()))
        {
            let line = text
                .find("required_kinds")
                .map_or(0, |o| crate::error::line_at(text, o));
            return Err(crate::error::Error::input(
                name,
                line,
                format!(
                    "[study] required_kinds: '{bad}' is not a file kind; use {}",
                    crate::model::FILE_KINDS.join(", ")
                ),
            ));
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_sources_are_read_and_typos_refused() {
        let c = FileConfig::parse(
            "anamo.toml",
            "[sync]\ninstances = true\n[[sync.objects]]\nuri = \"s3://b/crams/\"\nsample_pattern = \"(?P<sample>NA\\\\d+)\"\n",
        )
        .unwrap();
        assert!(c.sync.instances);
        assert_eq!(c.sync.objects[0].uri, "s3://b/crams/");
        assert_eq!(
            c.sync.objects[0].sample_pattern.as_deref(),
            Some("(?P<sample>NA\\d+)")
        );
        let e = FileConfig::parse("anamo.toml", "[sync]\ninstance = true\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("anamo.toml:2: unknown field `instance`"),
            "{e}"
        );
    }

    #[test]
    fn gates_are_read_per_step_and_malformed_ones_refused_with_their_line() {
        let c = FileConfig::parse(
            "anamo.toml",
            "[gates]\nVariantCalling = [\"mean_coverage >= 15\", \"freemix < 0.03\"]\n",
        )
        .unwrap();
        assert_eq!(c.gates["VariantCalling"].len(), 2);
        let e = FileConfig::parse(
            "anamo.toml",
            "[gates]\n\nVariantCalling = [\"cov >> 15\"]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("anamo.toml:3: [gates] VariantCalling: gate 'cov >> 15': at column 6"),
            "{e}"
        );
    }

    #[test]
    fn the_study_names_the_report_and_its_kinds_are_checked() {
        let c = FileConfig::parse(
            "anamo.toml",
            "[study]\nname = \"SG10K\"\nrequired_kinds = [\"cram\", \"gvcf\"]\n",
        )
        .unwrap();
        assert_eq!(c.study.name.as_deref(), Some("SG10K"));
        assert_eq!(c.study.required_kinds, ["cram", "gvcf"]);
        let e = FileConfig::parse("anamo.toml", "[study]\n\nrequired_kinds = [\"CRAM\"]\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "anamo.toml:3: [study] required_kinds: 'CRAM' is not a file kind; use fastq, bam, \
             cram, bai, crai, vcf, gvcf, tbi, other"
        );
    }
}

//! `s3://BUCKET/PREFIX`, as anamo reads and joins it: the one parser of every S3 location a
//! flag or a manifest names.

use crate::error::{Error, Result};

/// `s3://BUCKET/PREFIX`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Uri {
    pub bucket: String,
    /// The key, or key prefix; may be empty.
    pub key: String,
}

impl S3Uri {
    pub fn parse(uri: &str) -> Result<Self> {
        let rest = uri.strip_prefix("s3://").ok_or_else(|| {
            Error::Invalid(format!(
                "'{uri}' is not an S3 URI; write s3://BUCKET/PREFIX"
            ))
        })?;
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(Error::Invalid(format!(
                "'{uri}' names no bucket; write s3://BUCKET/PREFIX"
            )));
        }
        Ok(Self {
            bucket: bucket.to_string(),
            key: key.to_string(),
        })
    }

    /// This URI as a folder: the key ends with '/' unless it is empty (the whole bucket), so
    /// `s3://b/study` lists `study/...` and not `study2/...`.
    pub fn as_folder(&self) -> S3Uri {
        let key = match self.key.as_str() {
            "" => String::new(),
            k if k.ends_with('/') => k.to_string(),
            k => format!("{k}/"),
        };
        S3Uri {
            bucket: self.bucket.clone(),
            key,
        }
    }

    /// This URI as a prefix joined with `rest` (one '/' between).
    pub fn join(&self, rest: &str) -> S3Uri {
        let key = match self.key.trim_end_matches('/') {
            "" => rest.to_string(),
            prefix => format!("{prefix}/{rest}"),
        };
        S3Uri {
            bucket: self.bucket.clone(),
            key,
        }
    }
}

impl std::fmt::Display for S3Uri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_parse_and_join() {
        let u = S3Uri::parse("s3://logs/anamo/").unwrap();
        assert_eq!((u.bucket.as_str(), u.key.as_str()), ("logs", "anamo/"));
        assert_eq!(
            u.join("A/t1/1.log").to_string(),
            "s3://logs/anamo/A/t1/1.log"
        );
        assert_eq!(
            S3Uri::parse("s3://logs").unwrap().join("x").to_string(),
            "s3://logs/x"
        );
        assert!(S3Uri::parse("logs/x").is_err());
        assert!(S3Uri::parse("s3:///x").is_err());
    }
}

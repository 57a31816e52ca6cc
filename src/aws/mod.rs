//! The AWS adapters. This module is the one place that builds AWS SDK configuration:
//! aws-config's default chain (environment, profile, SSO, instance role), with --region,
//! --profile and --endpoint-url (AWS_ENDPOINT_URL works as aws-config reads it), standard
//! retries and short connect timeouts, plus the runtime and the one-line error every adapter
//! reports. `ec2.rs` and `s3.rs` hold the EC2 and S3 calls; the DynamoDB store
//! (`store/dynamo/`) builds its client here too. Only commands that talk to AWS call in here;
//! nothing else builds a runtime or loads AWS configuration.

pub mod ec2;
pub mod s3;
mod s3uri;

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

use crate::error::{Error, Result};

/// Where and as whom to reach AWS; each `None` falls back to aws-config's default chain.
#[derive(Debug, Clone, Default)]
pub struct AwsOptions {
    pub region: Option<String>,
    pub profile: Option<String>,
    pub endpoint_url: Option<String>,
    /// Fixed access key and secret, for a local emulator; normally `None` (the default chain).
    pub static_keys: Option<(String, String)>,
}

/// A runtime for the SDK's futures; stores call it with `block_on` from plain threads.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("cannot start the AWS runtime: {e}")))
}

/// Loads the SDK configuration: bounded retries and timeouts, so an unreachable endpoint
/// fails in seconds with a clear error instead of hanging.
pub async fn config(opts: &AwsOptions) -> SdkConfig {
    // HTTPS through rustls with ring: the SDK's default (aws-lc) is a C library that took
    // 40 s of every cold build, for the same TLS.
    let https = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(https.clone())
        // The SDK's own quick retries; stores add a slower layer for throttling on top
        // (store/dynamo/retry.rs), so a short first backoff is enough here.
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(4)
                .with_initial_backoff(Duration::from_millis(200)),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_attempt_timeout(Duration::from_secs(20))
                .operation_timeout(Duration::from_secs(60))
                .build(),
        );
    if let Some(r) = &opts.region {
        loader = loader.region(aws_config::Region::new(r.clone()));
    }
    if let Some(p) = &opts.profile {
        // --profile wins over AWS_ACCESS_KEY_ID, as with the aws CLI: aws-config's default
        // chain reads the environment's keys first and would leave the profile unused.
        use aws_config::meta::region::ProvideRegion as _;
        // The profile's own region serves its role assumptions (STS) unless --region is given.
        let region = match &opts.region {
            Some(r) => Some(aws_config::Region::new(r.clone())),
            None => {
                aws_config::profile::region::ProfileFileRegionProvider::builder()
                    .profile_name(p)
                    .build()
                    .region()
                    .await
            }
        };
        let provider_config = aws_config::provider_config::ProviderConfig::without_region()
            .with_region(region)
            .with_http_client(https.clone());
        loader = loader.profile_name(p).credentials_provider(
            aws_config::profile::ProfileFileCredentialsProvider::builder()
                .configure(&provider_config)
                .profile_name(p)
                .build(),
        );
    }
    let _ = PROFILE.set(
        opts.profile
            .clone()
            .or_else(|| std::env::var("AWS_PROFILE").ok())
            .filter(|p| !p.is_empty()),
    );
    if let Some(e) = &opts.endpoint_url {
        loader = loader.endpoint_url(e);
    }
    if let Some((key, secret)) = &opts.static_keys {
        loader = loader.credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            key,
            secret,
            None,
            None,
            "anamo-static",
        ));
    }
    loader.load().await
}

/// One line for a failed AWS call: what anamo was doing, and what `service` (or the network)
/// said, with the fix when it is a credentials or reachability problem.
pub fn sdk_error<E: ProvideErrorMetadata + std::error::Error + 'static>(
    service: &str,
    doing: &str,
    e: SdkError<E, HttpResponse>,
) -> Error {
    sdk_error_as(service, None, doing, e)
}

/// [`sdk_error`] for a call whose IAM action is known (`s3:GetObject`), and the README
/// section whose policy grants it: named in a denial whose message does not say them (S3's
/// plain "Access Denied").
pub fn sdk_error_as<E: ProvideErrorMetadata + std::error::Error + 'static>(
    service: &str,
    action: Option<(&str, &str)>,
    doing: &str,
    e: SdkError<E, HttpResponse>,
) -> Error {
    let detail = match &e {
        SdkError::ServiceError(s) => {
            let err = s.err();
            match (err.code(), err.message()) {
                (Some(code), msg)
                    if code.contains("AccessDenied") || code.contains("UnauthorizedOperation") =>
                {
                    denied(service, code, msg.unwrap_or(""), action)
                }
                (Some(code), Some(msg))
                    if code.contains("Token")
                        || code.contains("Signature")
                        || code.contains("Credential")
                        || code.contains("Unrecognized") =>
                {
                    format!("{code}: {msg} (check your AWS credentials and permissions)")
                }
                (Some(code), Some(msg)) => format!("{code}: {msg}"),
                (Some(code), None) => code.to_string(),
                // An answer the SDK could not read (an emulator's, a proxy's page): what came.
                _ => unreadable(service, s.raw(), action),
            }
        }
        SdkError::DispatchFailure(d) if d.is_timeout() || d.is_io() => {
            format!("cannot reach {service} (network unreachable or wrong --endpoint-url)")
        }
        SdkError::DispatchFailure(_) | SdkError::ConstructionFailure(_) => not_sent(&e),
        SdkError::TimeoutError(_) => format!("{service} did not answer in time"),
        _ => e.to_string(),
    };
    let message = format!("{doing}: {detail}");
    if is_transient(&e) {
        Error::AwsTransient(message)
    } else {
        Error::Aws(message)
    }
}

/// An answer without an error code the SDK could read: its HTTP status and first line, or
/// the code and message of an XML error (what moto answers for a JSON service's denial).
fn unreadable(service: &str, raw: &HttpResponse, action: Option<(&str, &str)>) -> String {
    let status = raw.status().as_u16();
    let body = raw
        .body()
        .bytes()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default();
    if let Some(code) = xml_tag(&body, "Code") {
        let msg = xml_tag(&body, "Message").unwrap_or_default();
        if code.contains("AccessDenied") || code.contains("UnauthorizedOperation") {
            return denied(service, code, msg, action);
        }
        return format!("{service} answered HTTP {status}: {code}: {msg}");
    }
    let first = body
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("(empty body)");
    let first: String = first.chars().take(200).collect();
    let hint = if status == 403 {
        " (a permission refused? check the policy in the README for this command)"
    } else {
        ""
    };
    format!("{service} answered HTTP {status} that the SDK could not read: {first}{hint}")
}

/// An access denial: the action AWS names (`... not authorized to perform: ACTION ...`), and
/// the README section whose policy grants the service's actions.
fn denied(service: &str, code: &str, msg: &str, known: Option<(&str, &str)>) -> String {
    let action = msg
        .split("perform: ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .or(known.map(|(action, _)| action))
        .map(|a| format!(" {a}"))
        .unwrap_or_default();
    let section = match (service, known) {
        (_, Some((_, section))) => section,
        ("DynamoDB", _) => "AWS: the DynamoDB task store (Minimal IAM policy)",
        ("EC2", _) => {
            "AWS: launching a step's cluster on EC2 (IAM for launching and syncing instances)"
        }
        _ => "AWS: sample files in S3, and worker logs (IAM)",
    };
    let msg = if msg.is_empty() { code } else { msg };
    format!(
        "access denied{action}: {msg}; the policy in the README's '{section}' grants what \
         anamo needs"
    )
}

/// The text of the first `<NAME>...</NAME>` in an XML body.
fn xml_tag<'a>(body: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = body.find(&open)? + open.len();
    let len = body[start..].find(&format!("</{name}>"))?;
    Some(body[start..start + len].trim())
}

/// The profile this process asked for (--profile, AWS_PROFILE), for error messages.
static PROFILE: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();

/// The shared config and credentials files, as aws-config finds them.
fn profile_files() -> [String; 2] {
    let home = std::env::var("HOME").unwrap_or_else(|_| "~".into());
    [
        std::env::var("AWS_CONFIG_FILE").unwrap_or_else(|_| format!("{home}/.aws/config")),
        std::env::var("AWS_SHARED_CREDENTIALS_FILE")
            .unwrap_or_else(|_| format!("{home}/.aws/credentials")),
    ]
}

/// Whether either file names the profile: `[profile NAME]` (or `[NAME]`) in the config
/// file, `[NAME]` in the credentials file. Only to word an error.
fn profile_defined(name: &str) -> bool {
    profile_files().iter().any(|f| {
        std::fs::read_to_string(f).is_ok_and(|text| {
            text.lines().any(|l| {
                let l = l.trim();
                l.strip_prefix('[')
                    .and_then(|l| l.strip_suffix(']'))
                    .map(|h| h.trim().trim_start_matches("profile ").trim())
                    == Some(name)
            })
        })
    })
}

/// Why a request was never sent, from its causes: a profile that is not there, no
/// credentials, no region, or (for anything else) the SDK's own words.
fn not_sent(e: &dyn std::error::Error) -> String {
    let mut causes = vec![];
    let mut next = e.source();
    while let Some(c) = next {
        causes.push(c.to_string());
        next = c.source();
    }
    let all = causes.join(": ");
    let lower = all.to_lowercase();
    let profile = PROFILE.get().cloned().flatten();
    if let Some(p) = &profile
        && !profile_defined(p)
    {
        let [config, credentials] = profile_files();
        return format!(
            "AWS profile '{p}' was not found in {config} or {credentials}; check AWS_PROFILE \
             (or --profile) against `aws configure list-profiles`"
        );
    }
    if lower.contains("region") {
        return "no AWS region configured: set AWS_REGION, pass --region, or give the profile \
                a region"
            .to_string();
    }
    if lower.contains("credential") {
        return match profile {
            // The profile wins over keys in the environment: its own credentials are the fix.
            Some(p) => format!(
                "no usable AWS credentials in profile '{p}': give it some (`aws configure \
                 --profile {p}`, or `aws sso login --profile {p}`), or name another profile"
            ),
            None => "no usable AWS credentials: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and \
                     AWS_SECRET_ACCESS_KEY, or run on an instance with a role"
                .to_string(),
        };
    }
    if all.is_empty() {
        "the request could not be sent (no AWS credentials or region?)".to_string()
    } else {
        format!("the request could not be sent: {all}")
    }
}

/// Error codes AWS services use for "slow down" and "try again": throttling and their own
/// faults. A request that failed with one of them may succeed when sent again.
const TRANSIENT_CODES: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "Throttling",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "SlowDown",
    "InternalServerError",
    "InternalFailure",
    "ServiceUnavailable",
    "RequestTimeout",
    "TransactionInProgressException",
];

/// True when the failure may pass: throttling, a 5xx, a timeout or a dropped connection.
/// Not for bad requests, missing tables or refused credentials, which fail the same way again.
pub fn is_transient<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    match e {
        SdkError::ServiceError(s) => s.err().code().is_some_and(|c| TRANSIENT_CODES.contains(&c)),
        SdkError::TimeoutError(_) | SdkError::ResponseError(_) => true,
        SdkError::DispatchFailure(d) => d.is_timeout() || d.is_io(),
        _ => false,
    }
}

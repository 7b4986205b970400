//! One S3 client for every cybs3 tool: the official AWS SDK with its default behaviour
//! (request checksums, aws-chunked streaming uploads, response validation, retries).

use aws_sdk_s3::config::{retry::RetryConfig, BehaviorVersion, Credentials, Region};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode, TlsContext, TrustStore};
use std::path::{Path, PathBuf};

/// The region used when a target names none (CONTRACT.md: "region `us-east-1` unless configured").
pub const DEFAULT_REGION: &str = "us-east-1";

/// Where and as whom to talk S3.
#[derive(Clone, Debug)]
pub struct S3Target {
    /// Base URL, e.g. `http://127.0.0.1:9000`.
    pub endpoint: String,
    pub region: String,
    pub access_key: String,
    pub secret_key: String,
    /// Present for temporary (STS) credentials.
    pub session_token: Option<String>,
    /// Logs in again when temporary credentials run out (instead of the keys above).
    pub relogin: Option<crate::sts::Relogin>,
    /// Bucket in the path (`/bucket/key`) rather than the host name; a local server has no
    /// DNS for `bucket.127.0.0.1`, so this is the default.
    pub path_style: bool,
    /// A CA certificate file (PEM) trusted for https endpoints besides the system's.
    pub ca_file: Option<PathBuf>,
    /// Server-side encryption asked for on every upload (`crate::sse`).
    pub sse: Option<crate::sse::Sse>,
    /// Several endpoints (a site group's), each request going to the best one
    /// (`crate::failover`); `endpoint` is then the first.
    pub endpoints: Option<crate::failover::Endpoints>,
}

impl S3Target {
    /// A path-style target in the default region with long-term credentials.
    pub fn new(endpoint: &str, access_key: &str, secret_key: &str) -> S3Target {
        S3Target {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            region: DEFAULT_REGION.to_string(),
            access_key: access_key.to_string(),
            secret_key: secret_key.to_string(),
            session_token: None,
            relogin: None,
            path_style: true,
            ca_file: None,
            sse: None,
            endpoints: None,
        }
    }

    /// The SDK client for this target.
    ///
    /// The SDK's own HTTP client is kept on purpose: its connection pool keeps any number
    /// of idle connections per host (`usize::MAX`) and opens a new one whenever none is
    /// idle, with `TCP_NODELAY` on, so neither pool size nor Nagle limits concurrent small
    /// requests (measured with `cybs3 bench s3` at concurrency 128).
    ///
    /// Five attempts instead of the SDK's three: a long transfer makes thousands of
    /// requests, so a server restart or a brief network outage must not fail it (5xx,
    /// throttling and timeouts are retried with exponential backoff and jitter).
    pub fn client(&self) -> aws_sdk_s3::Client {
        let credentials = Credentials::new(
            &self.access_key,
            &self.secret_key,
            self.session_token.clone(),
            None,
            "cybs3",
        );
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(self.region.clone()))
            .endpoint_url(&self.endpoint);
        let config = match &self.relogin {
            Some(relogin) => config.credentials_provider(relogin.clone()),
            None => config.credentials_provider(credentials),
        };
        let config = match &self.ca_file {
            Some(file) => config.http_client(https_trusting(file)),
            None => config,
        };
        let config = match &self.sse {
            Some(sse) => config.interceptor(crate::sse::SseHeaders(sse.clone())),
            None => config,
        };
        let config = match &self.endpoints {
            Some(e) => config.interceptor(crate::failover::Failover(e.clone())),
            None => config,
        };
        let config = config
            .force_path_style(self.path_style)
            .retry_config(RetryConfig::standard().with_max_attempts(5))
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }
}

/// The SDK's default HTTPS client (same pool and TLS provider) trusting the system's
/// CAs and the ones in `file`. An unreadable file leaves the system's only, so https
/// endpoints signed by it fail their handshake; the log says why.
fn https_trusting(file: &Path) -> aws_sdk_s3::config::SharedHttpClient {
    let mut roots = TrustStore::default();
    match crate::tls::read_ca_file(file) {
        Ok(pem) => {
            roots.add_pem_certificate(pem);
        }
        Err(e) => tracing::error!("{e}; trusting the system's CAs only"),
    }
    let context = TlsContext::builder().with_trust_store(roots).build();
    let builder = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc));
    match context {
        Ok(context) => builder.tls_context(context).build_https(),
        Err(_) => builder.build_https(),
    }
}

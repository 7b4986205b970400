//! cybs3 S3 server: the S3 protocol (through s3s) over the engine.
//!
//! s3s parses requests, verifies signatures and serializes responses; this crate
//! maps each operation onto the synchronous engine, run on blocking threads so
//! the async executor never waits on disk or LMDB.
//!
//! - [`server`]: accept loop, health probes, graceful shutdown, request logs.
//! - [`auth`]: the credentials s3s checks signatures against, and what each may reach.
//! - [`keys`]: access keys (bucket keys, users' keys, sessions), sealed in the engine's metadata.
//! - [`iam`], [`policy`], [`bucket_policy`]: users, groups, IAM policies and their evaluation.
//! - [`sts`], [`ldap`]: temporary credentials for directory logins and local users.
//! - [`service`]: the `S3` trait implementation, one thin method per operation.
//! - [`buckets`], [`objects`], [`list`]: the operations themselves.
//! - [`post`]: browser form uploads (POST Object) and their policy documents.
//! - [`body`]: streaming request bodies into the engine, with digests.
//! - [`errors`]: engine errors to S3 error codes and statuses, in one place.
//! - [`versioning`]: bucket versioning, version ids and delete markers, ListObjectVersions.
//! - [`bucket_config`], [`cors`]: bucket tagging and CORS (incl. preflight answers).
//! - [`vhost`]: which Host headers name a bucket (virtual-hosted style).

mod auth;
mod body;
mod bucket_policy;
mod buckets;
mod errors;
mod iam;
mod keys;
pub mod ldap;
mod list;
mod objects;
mod policy;
mod post;
mod server;
mod service;
mod sts;
mod tagging;
// Multipart uploads and copies.
mod copy;
mod multipart;
// Versioning, bucket configuration, CORS, virtual hosts.
mod bucket_config;
mod cors;
mod versioning;
mod vhost;
mod xml;

use std::future::Future;
use std::net::SocketAddr;

pub use iam::{GroupInfo, Iam, IamCall, IamError, NewUser, PolicyInfo, Target, UserInfo};
pub use keys::{KeyInfo, Keyring, NewKey};
pub use server::PeerAddr;

#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub access_key: String,
    pub secret_key: String,
    /// Seals the secrets of access keys stored in the engine (see [`Keyring`]).
    pub server_key: [u8; 32],
    pub region: String,
    /// Base domains for virtual-hosted-style requests (`<bucket>.<domain>`, any
    /// port); empty means path-style only. Path-style always works as well.
    pub domains: Vec<String>,
    /// Reverse proxies whose `X-Forwarded-For` names the client for `aws:SourceIp`.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Directory logins through STS `AssumeRoleWithLDAPIdentity`; `None` turns them off.
    pub ldap: Option<ldap::LdapConfig>,
    /// The shortest session STS grants (`DurationSeconds`), 900 as on AWS.
    pub sts_min_duration: u64,
}

/// Serve S3 + health on `listener` until `shutdown` resolves; then stop accepting,
/// let in-flight requests finish (graceful drain, up to ~30 s), and return.
pub async fn serve(
    cfg: ServerConfig,
    store: engine::Store,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let domains = vhost::Domains::new(&cfg.domains)?;
    let s3 = service::build(&cfg, store.clone(), &domains);
    tracing::info!(listen = %cfg.listen, region = %cfg.region, "S3 server ready");
    server::run(s3, store, std::sync::Arc::new(domains), listener, shutdown).await
}

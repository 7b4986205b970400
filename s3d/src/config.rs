//! The server's configuration, as the CLI fills it in.

use std::net::SocketAddr;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub access_key: String,
    pub secret_key: String,
    /// Seals the secrets of access keys stored in the engine (see [`crate::Keyring`]).
    pub server_key: [u8; 32],
    pub region: String,
    /// Base domains for virtual-hosted-style requests (`<bucket>.<domain>`, any
    /// port); empty means path-style only. Path-style always works as well.
    pub domains: Vec<String>,
    /// What can change while the server runs: reverse proxies whose `X-Forwarded-For`
    /// names the client for `aws:SourceIp`, directory logins through STS
    /// `AssumeRoleWithLDAPIdentity`, the lifecycle interval and the metrics.
    pub live: crate::Live,
    /// The shortest session STS grants (`DurationSeconds`), 900 as on AWS.
    pub sts_min_duration: u64,
    /// A connection that sends nothing for this long, before its first request or
    /// between keep-alive requests, is closed.
    pub idle_timeout: Duration,
    /// The most open client connections; `None` derives it from the descriptor limit
    /// (which also caps an explicit value).
    pub max_connections: Option<usize>,
    /// How the lifecycle scanner runs.
    pub lifecycle: crate::lifecycle::Settings,
    /// Serve HTTPS with this certificate pair (reloaded on SIGHUP); `None` serves HTTP.
    pub tls: Option<crate::tls::TlsFiles>,
    /// Take directory logins (passwords) over plain HTTP from other machines too.
    pub allow_insecure_login: bool,
    /// How many events a notification target's backlog holds before its oldest become
    /// dead letters.
    pub notify_backlog: u64,
    /// Ship the audit log (this directory's files) to this notification target.
    pub audit_target: Option<(std::path::PathBuf, String)>,
    /// Where every request is recorded (`None`: not audited).
    pub audit: Option<crate::audit::Log>,
    /// The anomaly detector every request is counted by (`None`: none).
    pub anomalies: Option<crate::Anomalies>,
}

//! The server's settings that can also come from its config file: HTTPS, LDAP logins,
//! trusted proxies, STS limits, the lifecycle scanner, the audit log, metrics and the log
//! level, from `server start` flags or the
//! server config file (`<data>/server.toml`, or `--config`), whose keys are the flags'
//! names (`ldap-url = "ldap://…"`). Flags win.

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ServerSettings {
    /// Serve HTTPS with this certificate chain (PEM), reloaded on SIGHUP; with --tls-key.
    /// [default: DATA/tls/server.crt and server.key when `cybs3 server cert` made them]
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM)
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Take directory logins (passwords) over plain HTTP from other machines too
    /// [default: refused unless over HTTPS or from this machine]
    #[arg(long)]
    #[serde(default)]
    pub allow_insecure_login: bool,
    /// Directory server for logins (`cybs3 login`), e.g. ldap://dc.example.org or ldaps://…
    #[arg(long, value_name = "URL")]
    pub ldap_url: Option<String>,
    /// Bind straight as this DN; {user} is the login name, e.g. 'uid={user},ou=people,dc=example,dc=org'
    #[arg(long, value_name = "DN")]
    pub ldap_user_dn: Option<String>,
    /// Instead of --ldap-user-dn: search for the user as this service account…
    #[arg(long, value_name = "DN")]
    pub ldap_bind_dn: Option<String>,
    /// …with this password
    #[arg(
        long,
        value_name = "PASSWORD",
        env = "CYBS3_LDAP_BIND_PASSWORD",
        hide_env_values = true
    )]
    pub ldap_bind_password: Option<String>,
    /// …under this base DN…
    #[arg(long, value_name = "DN")]
    pub ldap_user_base: Option<String>,
    /// …with this filter (default "(uid={user})")
    #[arg(long, value_name = "FILTER")]
    pub ldap_user_filter: Option<String>,
    /// Where to look up the user's groups
    #[arg(long, value_name = "DN")]
    pub ldap_group_base: Option<String>,
    /// Group filter; {dn} is the user's DN, {user} the login name
    /// (default "(|(member={dn})(uniqueMember={dn})(memberUid={user}))")
    #[arg(long, value_name = "FILTER")]
    pub ldap_group_filter: Option<String>,
    /// Members of GROUP (its cn or full DN) get POLICY; repeatable
    #[arg(long = "ldap-group-policy", value_name = "GROUP=POLICY")]
    #[serde(default)]
    pub ldap_group_policy: Vec<String>,
    /// Upgrade ldap:// connections with StartTLS
    #[arg(long)]
    #[serde(default)]
    pub ldap_starttls: bool,
    /// CA certificate (PEM) that signed the directory server's certificate
    #[arg(long, value_name = "FILE")]
    pub ldap_ca_file: Option<PathBuf>,
    /// A reverse proxy whose X-Forwarded-For is believed for aws:SourceIp; repeatable
    #[arg(long = "trusted-proxy", value_name = "IP")]
    #[serde(default)]
    pub trusted_proxy: Vec<IpAddr>,
    /// Shortest session (DurationSeconds) STS grants [default: 900, as on AWS]
    #[arg(long, value_name = "SECS")]
    pub sts_min_duration: Option<u64>,
    /// Seconds in a lifecycle "day" [default: 86400]; a short day lets tests watch rules act
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub lifecycle_day_secs: Option<u64>,
    /// Seconds between lifecycle passes [default: an hour, or a day if that is shorter]
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub lifecycle_interval_secs: Option<u64>,
    /// Megabytes per second that moving data between pools (a drain) may read, so that
    /// clients keep most of the disks [default: unlimited]
    #[arg(long, value_name = "MB/S", value_parser = clap::value_parser!(u64).range(1..))]
    pub move_bandwidth: Option<u64>,
    /// The KMS's master key: a file holding 32 bytes, or 64 hex digits [default: the
    /// server's key file]; keeps the KMS keys sealed apart from the store
    #[arg(long, value_name = "FILE", env = "CYBS3_KMS_MASTER_KEY_FILE")]
    pub kms_master_key_file: Option<PathBuf>,
    /// Record every request (S3, STS, the management socket) in the tamper-evident
    /// audit log, DATA/audit/ [default: on]
    #[arg(long, value_name = "on|off")]
    pub audit: Option<Switch>,
    /// Learn each user's, key's and bucket's usual activity and raise alerts on mass
    /// overwrites and deletes, read spikes, new networks and guessing (`cybs3 admin
    /// alerts`) [default: on]
    #[arg(long, value_name = "on|off")]
    pub anomalies: Option<Switch>,
    /// Audit lines held between requests and the log's writer [default: 16384]
    #[arg(long, value_name = "LINES", value_parser = clap::value_parser!(u64).range(1..))]
    pub audit_buffer: Option<u64>,
    /// When that buffer is full: requests wait for room (block: every request is in
    /// the log), or the lines are dropped and counted in a gap line that `admin audit
    /// verify` reports (gap) [default: block]
    #[arg(long, value_name = "block|gap")]
    pub audit_when_full: Option<WhenFull>,
    /// Events a notification target's backlog holds while it is down; past it, the
    /// oldest become dead letters, listed by `cybs3 admin notify status` [default: 100000]
    #[arg(long, value_name = "EVENTS", value_parser = clap::value_parser!(u64).range(1..))]
    pub notify_backlog: Option<u64>,
    /// Also send every audit line, in order, to this notification target (see `cybs3
    /// admin notify add`); shipping resumes where it stopped after a restart
    #[arg(long, value_name = "NAME")]
    pub audit_target: Option<String>,
    /// Serve GET /metrics without a token (otherwise it needs `Authorization: Bearer`
    /// with a token from `cybs3 admin metrics token`)
    #[arg(long)]
    #[serde(default)]
    pub metrics_public: bool,
    /// What to log, as RUST_LOG says it (e.g. info, or warn,cybs3=debug); RUST_LOG wins
    /// [default: info]
    #[arg(long, value_name = "FILTER")]
    pub log_level: Option<String>,
}

/// A setting that is on or off.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Switch {
    On,
    Off,
}

/// What requests do when the audit buffer is full (see [`s3d::audit::WhenFull`]).
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WhenFull {
    Block,
    Gap,
}

impl ServerSettings {
    /// These flags over the config file's values (`file`, else `<data>/server.toml` if present).
    pub fn merged(&self, file: Option<&Path>, data: &Path) -> Result<ServerSettings> {
        let default = data.join("server.toml");
        let path = match file {
            Some(p) => p.to_path_buf(),
            None if default.exists() => default,
            None => return Ok(self.clone()),
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read the server config {}", path.display()))?;
        let f: ServerSettings = toml::from_str(&text)
            .with_context(|| format!("bad server config {}", path.display()))?;
        let pick = |a: &Option<String>, b: Option<String>| a.clone().or(b);
        if f.tls_cert.is_some() != f.tls_key.is_some() {
            bail!("{}: tls-cert and tls-key go together", path.display());
        }
        // The pair comes whole from one place.
        let (tls_cert, tls_key) = match &self.tls_cert {
            Some(_) => (self.tls_cert.clone(), self.tls_key.clone()),
            None => (f.tls_cert, f.tls_key),
        };
        Ok(ServerSettings {
            tls_cert,
            tls_key,
            allow_insecure_login: self.allow_insecure_login || f.allow_insecure_login,
            ldap_url: pick(&self.ldap_url, f.ldap_url),
            ldap_user_dn: pick(&self.ldap_user_dn, f.ldap_user_dn),
            ldap_bind_dn: pick(&self.ldap_bind_dn, f.ldap_bind_dn),
            ldap_bind_password: pick(&self.ldap_bind_password, f.ldap_bind_password),
            ldap_user_base: pick(&self.ldap_user_base, f.ldap_user_base),
            ldap_user_filter: pick(&self.ldap_user_filter, f.ldap_user_filter),
            ldap_group_base: pick(&self.ldap_group_base, f.ldap_group_base),
            ldap_group_filter: pick(&self.ldap_group_filter, f.ldap_group_filter),
            ldap_group_policy: or_else(&self.ldap_group_policy, f.ldap_group_policy),
            ldap_starttls: self.ldap_starttls || f.ldap_starttls,
            ldap_ca_file: self.ldap_ca_file.clone().or(f.ldap_ca_file),
            trusted_proxy: or_else(&self.trusted_proxy, f.trusted_proxy),
            sts_min_duration: self.sts_min_duration.or(f.sts_min_duration),
            lifecycle_day_secs: self.lifecycle_day_secs.or(f.lifecycle_day_secs),
            lifecycle_interval_secs: self.lifecycle_interval_secs.or(f.lifecycle_interval_secs),
            move_bandwidth: self.move_bandwidth.or(f.move_bandwidth),
            kms_master_key_file: self.kms_master_key_file.clone().or(f.kms_master_key_file),
            audit: self.audit.or(f.audit),
            anomalies: self.anomalies.or(f.anomalies),
            audit_buffer: self.audit_buffer.or(f.audit_buffer),
            audit_when_full: self.audit_when_full.or(f.audit_when_full),
            notify_backlog: self.notify_backlog.or(f.notify_backlog),
            audit_target: pick(&self.audit_target, f.audit_target),
            metrics_public: self.metrics_public || f.metrics_public,
            log_level: pick(&self.log_level, f.log_level),
        })
    }

    /// The KMS's master key: from `--kms-master-key-file`, else the server's key.
    pub fn kms_master(&self, server_key: &[u8; 32]) -> Result<[u8; 32]> {
        let Some(path) = &self.kms_master_key_file else {
            return Ok(*server_key);
        };
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read the KMS master key {}", path.display()))?;
        let text = String::from_utf8_lossy(&bytes);
        let decoded = match hex::decode(text.trim()) {
            Ok(d) => d,
            Err(_) => bytes.clone(),
        };
        decoded.try_into().map_err(|_| {
            anyhow::anyhow!(
                "{}: a KMS master key is 32 bytes or 64 hex digits (make one with `openssl rand -hex 32`)",
                path.display()
            )
        })
    }

    /// The LDAP settings, checked; `None` when no directory is configured.
    pub fn ldap(&self) -> Result<Option<s3d::ldap::LdapConfig>> {
        let Some(url) = &self.ldap_url else {
            if self.ldap_user_dn.is_some() || !self.ldap_group_policy.is_empty() {
                bail!("LDAP settings are given without --ldap-url");
            }
            return Ok(None);
        };
        let group_policies = self
            .ldap_group_policy
            .iter()
            .map(|m| {
                m.rsplit_once('=')
                    .filter(|(g, p)| !g.is_empty() && !p.is_empty())
                    .map(|(g, p)| (g.to_string(), p.to_string()))
                    .ok_or_else(|| anyhow!("--ldap-group-policy {m:?}: expected GROUP=POLICY"))
            })
            .collect::<Result<Vec<_>>>()?;
        let cfg = s3d::ldap::LdapConfig {
            url: url.clone(),
            user_dn: self.ldap_user_dn.clone(),
            bind_dn: self.ldap_bind_dn.clone(),
            bind_password: self.ldap_bind_password.clone(),
            user_base: self.ldap_user_base.clone(),
            user_filter: self.ldap_user_filter.clone(),
            group_base: self.ldap_group_base.clone(),
            group_filter: self.ldap_group_filter.clone(),
            group_policies,
            start_tls: self.ldap_starttls,
            ca_file: self.ldap_ca_file.clone(),
            ..s3d::ldap::LdapConfig::default()
        };
        cfg.validate().map_err(|e| anyhow!("{e}"))?;
        Ok(Some(cfg))
    }

    /// The certificate pair to serve: the flags' (or config file's), else the one
    /// `cybs3 server cert` made in `data`, else none (plain HTTP).
    pub fn tls(&self, data: &crate::storedir::StoreDir) -> Option<s3d::TlsFiles> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(s3d::TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            }),
            _ => {
                let made = data.tls();
                made.present().then(|| made.files())
            }
        }
    }

    /// How the audit log is written; `None` when it is off.
    pub fn audit(&self) -> Option<s3d::audit::Settings> {
        if self.audit == Some(Switch::Off) {
            return None;
        }
        Some(s3d::audit::Settings {
            buffer: usize::try_from(self.audit_buffer.unwrap_or(16_384)).unwrap_or(usize::MAX),
            when_full: match self.audit_when_full.unwrap_or(WhenFull::Block) {
                WhenFull::Block => s3d::audit::WhenFull::Block,
                WhenFull::Gap => s3d::audit::WhenFull::Gap,
            },
        })
    }

    /// How long a lifecycle day is; the interval between passes, which can change while
    /// the server runs, goes through [`s3d::Live`].
    pub fn lifecycle(&self) -> s3d::LifecycleSettings {
        s3d::LifecycleSettings::new(self.lifecycle_day_secs.unwrap_or(86_400), None)
    }

    /// The interval between lifecycle passes, when set.
    pub fn lifecycle_interval(&self) -> Option<std::time::Duration> {
        self.lifecycle_interval_secs
            .map(std::time::Duration::from_secs)
    }

    /// The same settings as `server start` flags (for the detached child).
    pub fn to_args(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut opt = |flag: &str, v: &Option<String>| {
            if let Some(v) = v {
                out.push(format!("--{flag}={v}"));
            }
        };
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
        opt("tls-cert", &path(&self.tls_cert));
        opt("tls-key", &path(&self.tls_key));
        opt("ldap-url", &self.ldap_url);
        opt("ldap-user-dn", &self.ldap_user_dn);
        opt("ldap-bind-dn", &self.ldap_bind_dn);
        opt("ldap-user-base", &self.ldap_user_base);
        opt("ldap-user-filter", &self.ldap_user_filter);
        opt("ldap-group-base", &self.ldap_group_base);
        opt("ldap-group-filter", &self.ldap_group_filter);
        opt("ldap-ca-file", &path(&self.ldap_ca_file));
        opt(
            "sts-min-duration",
            &self.sts_min_duration.map(|d| d.to_string()),
        );
        opt(
            "lifecycle-day-secs",
            &self.lifecycle_day_secs.map(|d| d.to_string()),
        );
        opt(
            "lifecycle-interval-secs",
            &self.lifecycle_interval_secs.map(|d| d.to_string()),
        );
        opt(
            "move-bandwidth",
            &self.move_bandwidth.map(|d| d.to_string()),
        );
        opt(
            "kms-master-key-file",
            &self
                .kms_master_key_file
                .as_ref()
                .map(|p| p.display().to_string()),
        );
        opt(
            "audit",
            &self
                .audit
                .map(|a| if a == Switch::On { "on" } else { "off" }.to_string()),
        );
        opt(
            "anomalies",
            &self
                .anomalies
                .map(|a| if a == Switch::On { "on" } else { "off" }.to_string()),
        );
        opt("audit-buffer", &self.audit_buffer.map(|n| n.to_string()));
        opt("audit-target", &self.audit_target);
        opt("log-level", &self.log_level);
        opt(
            "notify-backlog",
            &self.notify_backlog.map(|d| d.to_string()),
        );
        opt(
            "audit-when-full",
            &self
                .audit_when_full
                .map(|w| if w == WhenFull::Block { "block" } else { "gap" }.to_string()),
        );
        out.extend(
            self.ldap_group_policy
                .iter()
                .map(|m| format!("--ldap-group-policy={m}")),
        );
        out.extend(
            self.trusted_proxy
                .iter()
                .map(|p| format!("--trusted-proxy={p}")),
        );
        if self.ldap_starttls {
            out.push("--ldap-starttls".into());
        }
        if self.allow_insecure_login {
            out.push("--allow-insecure-login".into());
        }
        if self.metrics_public {
            out.push("--metrics-public".into());
        }
        // The bind password goes through the environment, not the process list.
        out
    }
}

fn or_else<T: Clone>(flags: &[T], file: Vec<T>) -> Vec<T> {
    if flags.is_empty() {
        file
    } else {
        flags.to_vec()
    }
}

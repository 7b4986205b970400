//! rclone, the tool `cybs3 sync` and `cybs3 mount` are compared with in the same run:
//! remotes on the plain vault's server and bucket, and an rclone crypt remote over it for
//! the encrypted vault. `bench sync` copies trees with them (`rclone copy`), `bench mount`
//! mounts them (`rclone mount`).
//!
//! Both remotes are given to rclone in environment variables only (`RCLONE_CONFIG_<NAME>_*`)
//! and its config file is a path in the bench's temporary directory, so the user's rclone
//! config is neither read nor written. Their objects go below a key prefix the caller
//! chooses inside its own bench directory, which it removes at the end.

use anyhow::{bail, Context, Result};
use rand::distr::{Alphanumeric, SampleString};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use vault::config::VaultConfig;

/// The names of the remotes in the environment (upper case, as rclone reads them).
const S3: &str = "CYBS3BENCHS3";
const CRYPT: &str = "CYBS3BENCHCRYPT";

/// One rclone remote the bench copies trees to and from.
pub(crate) struct Rclone {
    /// "rclone" or "rclone crypt".
    pub(crate) kind: &'static str,
    /// Where the bench's copies go, `REMOTE:path` without the trailing '/'.
    root: String,
    env: Vec<(String, String)>,
    /// The config file rclone is pointed at (never written: all it needs is in `env`).
    config: PathBuf,
}

impl Rclone {
    /// The remote path of the copy named `what`.
    pub(crate) fn remote(&self, what: &str) -> String {
        format!("{}/{what}", self.root)
    }

    /// `rclone ARGS…` with this remote's environment and the bench's config path, and
    /// without `AWS_CA_BUNDLE` (see [`remotes`]).
    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("rclone");
        cmd.args(args)
            .arg("--config")
            .arg(&self.config)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env_remove("AWS_CA_BUNDLE")
            .stdin(Stdio::null());
        cmd
    }
}

/// The installed rclone's version line, `None` when there is no rclone to run.
pub(crate) fn version() -> Option<String> {
    let out = std::process::Command::new("rclone")
        .arg("version")
        .stdin(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let text = String::from_utf8_lossy(&out.stdout);
    Some(text.lines().next().unwrap_or("rclone").trim().to_string())
}

/// The plain remote on `cfg`'s endpoint, bucket and credentials, below the key prefix
/// `keys` (ending in '/'), and a crypt remote over it with a random password; the rclone
/// config path goes in `tmp`.
pub(crate) fn remotes(cfg: &VaultConfig, keys: &str, tmp: &Path) -> Result<[Rclone; 2]> {
    let var = |remote: &str, key: &str, value: &str| {
        (format!("RCLONE_CONFIG_{remote}_{key}"), value.to_string())
    };
    let mut s3 = vec![
        var(S3, "TYPE", "s3"),
        var(S3, "PROVIDER", "Other"),
        var(S3, "ENDPOINT", &cfg.endpoint),
        var(S3, "REGION", &cfg.region),
        var(S3, "ACCESS_KEY_ID", &cfg.access_key),
        var(S3, "SECRET_ACCESS_KEY", &cfg.secret_key),
    ];
    if let Some(token) = &cfg.session_token {
        s3.push(var(S3, "SESSION_TOKEN", token));
    }
    // A CA bundle the vault's own client trusts is rclone's too, given as its own flag:
    // rclone's S3 SDK refuses `AWS_CA_BUNDLE` (its HTTP transport is rclone's), so the
    // child goes without that variable.
    if let Ok(ca) = std::env::var("AWS_CA_BUNDLE") {
        s3.push(("RCLONE_CA_CERT".into(), ca));
    }
    let root = format!("{S3}:{}/{}", cfg.bucket, keys.trim_end_matches('/'));
    let password = obscure(&Alphanumeric.sample_string(&mut rand::rng(), 24))?;
    let mut crypt = s3.clone();
    crypt.extend([
        var(CRYPT, "TYPE", "crypt"),
        var(CRYPT, "REMOTE", &root),
        var(CRYPT, "PASSWORD", &password),
    ]);
    let config = tmp.join("rclone.conf");
    Ok([
        Rclone {
            kind: "rclone",
            root: format!("{root}/rclone"),
            env: s3,
            config: config.clone(),
        },
        Rclone {
            kind: "rclone crypt",
            root: format!("{CRYPT}:rclone-crypt"),
            env: crypt,
            config,
        },
    ])
}

/// `password` as rclone keeps it in a config (`rclone obscure`).
fn obscure(password: &str) -> Result<String> {
    let out = std::process::Command::new("rclone")
        .args(["obscure", password])
        .stdin(Stdio::null())
        .output()
        .context("cannot run rclone obscure")?;
    if !out.status.success() {
        bail!(
            "rclone obscure failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

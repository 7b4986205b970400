//! The client configuration: named vaults and the active one (CONTRACT.md, "Vaults").
//!
//! ```text
//! <config dir>/config.toml     vaults and their credentials (0600)
//! <config dir>/keys/NAME.age   a vault's identities, optionally passphrase-sealed (0600)
//! <config dir>/transfers/      journals of interrupted uploads, for resuming (0600)
//! ```
//! The config dir is `$CYBS3_HOME`, else `$XDG_CONFIG_HOME/cybs3`, else `~/.config/cybs3`.

use crate::error::{Error, Result, ResultExt};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// One vault: where its objects live and whether the client encrypts them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VaultConfig {
    pub endpoint: String,
    /// Every endpoint, when the vault has several (the sites of a group): requests go to
    /// the healthy one with the lowest latency. `endpoint` is the first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<String>,
    pub bucket: String,
    /// Key prefix inside the bucket: empty, or ending in `/`.
    #[serde(default)]
    pub prefix: String,
    #[serde(default = "default_region")]
    pub region: String,
    pub access_key: String,
    pub secret_key: String,
    /// Present for temporary (STS) credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_token: Option<String>,
    /// When temporary credentials run out (Unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_expires_unix: Option<u64>,
    /// Who logged in (`cybs3 login`), to log in again when the session runs out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_user: Option<String>,
    /// The session length that login asked for (seconds), asked for again at renewal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_duration: Option<u64>,
    /// The login's password, when the process was given it: its clients then log in
    /// again by themselves when the session runs out. Never stored.
    #[serde(skip)]
    pub login_password: Option<String>,
    pub encrypted: bool,
    /// Every file of this encrypted vault is bound to its path (vaults made since files
    /// are bound, or after `cybs3 vaults rebind`): a file without a binding is refused,
    /// since it could have been put in place of another. Older vaults read such files
    /// with a warning.
    #[serde(default)]
    pub bound: bool,
    /// A CA certificate (PEM) trusted for this https endpoint besides the system's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<std::path::PathBuf>,
    /// Server-side encryption asked for on every upload (`vaults add --sse`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sse: Option<crate::sse::Sse>,
}

fn default_region() -> String {
    crate::client::DEFAULT_REGION.to_string()
}

impl VaultConfig {
    pub fn target(&self) -> crate::S3Target {
        let mut t = crate::S3Target::new(&self.endpoint, &self.access_key, &self.secret_key);
        t.region = self.region.clone();
        t.session_token = self.session_token.clone();
        t.ca_file = self.ca_file.clone();
        t.sse = self.sse.clone();
        if self.endpoints.len() > 1 {
            t.endpoints = Some(crate::failover::Endpoints::new(&self.endpoints));
        }
        if let (Some(user), Some(password)) = (&self.login_user, &self.login_password) {
            let held = match (&self.session_token, self.session_expires_unix) {
                (Some(token), Some(expires_unix)) => Some(crate::sts::TempCredentials {
                    access_key: self.access_key.clone(),
                    secret_key: self.secret_key.clone(),
                    session_token: token.clone(),
                    expires_unix,
                }),
                _ => None,
            };
            t.relogin = Some(crate::sts::Relogin::new(
                &self.endpoint,
                user,
                password,
                self.login_duration,
                self.ca_file.clone(),
                held,
            ));
        }
        t
    }
}

/// Turn a user's `--prefix` into the stored form: no leading slash, one trailing slash.
pub fn normalize_prefix(p: &str) -> String {
    let p = p.trim_matches('/');
    if p.is_empty() {
        String::new()
    } else {
        format!("{p}/")
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Config {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<String>,
    #[serde(default)]
    pub vaults: BTreeMap<String, VaultConfig>,
}

impl Config {
    pub fn path() -> PathBuf {
        config_dir().join("config.toml")
    }

    pub fn load() -> Result<Config> {
        let path = Config::path();
        match fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).map_err(|e| {
                Error::invalid(format!(
                    "{} is not a valid cybs3 config; fix or remove it: {e}",
                    path.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    pub fn save(&self) -> Result<()> {
        let text = toml::to_string_pretty(self)
            .map_err(|e| Error::invalid(format!("cannot encode the config: {e}")))?;
        write_private(&Config::path(), text.as_bytes())
    }

    /// The vault called `name`, or the active one when `name` is `None` or empty.
    pub fn vault(&self, name: Option<&str>) -> Result<(String, VaultConfig)> {
        let name = match name.filter(|n| !n.is_empty()) {
            Some(n) => n.to_string(),
            None => self.active.clone().ok_or_else(|| {
                Error::NotFound("no active vault; create one with `cybs3 vaults local` or pick one with `cybs3 vaults use NAME`".into())
            })?,
        };
        match self.vaults.get(&name) {
            Some(v) => Ok((name, v.clone())),
            None => Err(Error::NotFound(format!(
                "there is no vault {name:?}; `cybs3 vaults list` shows the vaults"
            ))),
        }
    }
}

/// Vault names are file names (keys/NAME.age) and the part before `:` in paths.
pub fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "invalid vault name {name:?}: use letters, digits, '-', '_' and '.' (up to 64)"
        )))
    }
}

/// Config, keys and transfer journals: `$CYBS3_HOME`, else `$XDG_CONFIG_HOME/cybs3`.
pub fn config_dir() -> PathBuf {
    if let Some(h) = std::env::var_os("CYBS3_HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(h);
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").unwrap_or_else(|| "/".into());
            PathBuf::from(home).join(".config")
        });
    base.join("cybs3")
}

/// A directory only its owner may enter.
pub fn private_dir(path: &Path) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .with_context(|| format!("cannot create {}", path.display()))
}

/// Write a secret atomically (temp file, fsync, rename), mode 0600 from the start.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent() {
        private_dir(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_and_names() {
        assert_eq!(normalize_prefix(""), "");
        assert_eq!(normalize_prefix("/a/b"), "a/b/");
        assert_eq!(normalize_prefix("a/"), "a/");
        assert!(validate_name("local").is_ok());
        assert!(validate_name("my-vault_2").is_ok());
        for bad in ["", ".x", "a/b", "a:b", "a b"] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn config_roundtrips_through_toml() {
        let mut c = Config {
            active: Some("v".into()),
            ..Config::default()
        };
        c.vaults.insert(
            "v".into(),
            VaultConfig {
                endpoint: "http://127.0.0.1:9000".into(),
                bucket: "b".into(),
                prefix: "p/".into(),
                region: "us-east-1".into(),
                access_key: "AK".into(),
                secret_key: "SK".into(),
                encrypted: true,
                ..VaultConfig::default()
            },
        );
        let text = toml::to_string_pretty(&c).unwrap();
        let back: Config = toml::from_str(&text).unwrap();
        assert_eq!(back.vault(None).unwrap().1, c.vaults["v"]);
        assert!(back.vault(Some("nope")).is_err());
    }
}

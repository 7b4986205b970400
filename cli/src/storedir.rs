//! The server's data directory: its layout record, root credentials and runtime files.
//!
//! ```text
//! <data>/store.json        drives and erasure layout, fixed at first start
//! <data>/credentials.json  root access and secret key (0600)
//! <data>/server.key        seals access-key secrets stored in the index (0600)
//! <data>/server.json       pid and address of the running server
//! <data>/admin.sock        management socket of the running server (0600)
//! <data>/server.log        output of a detached server
//! <data>/audit/            the audit log: daily YYYY-MM-DD.jsonl files and HEAD
//! <data>/drive0/           the drive when no --drives are given
//! ```

use anyhow::{bail, Context, Result};
use rand::distr::{Alphanumeric, SampleString};
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Layout {
    pub drives: Vec<PathBuf>,
    pub ec: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Credentials {
    pub access_key: String,
    pub secret_key: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Runtime {
    pub pid: u32,
    pub address: String,
    /// Serving HTTPS (absent in files written before TLS: plain HTTP).
    #[serde(default)]
    pub tls: bool,
}

impl Runtime {
    /// The URL clients use: `http://ADDR` or `https://ADDR`.
    pub fn endpoint(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.address)
    }
}

pub struct StoreDir {
    pub root: PathBuf,
}

impl StoreDir {
    pub fn new(root: PathBuf) -> StoreDir {
        StoreDir { root }
    }

    pub fn create(&self) -> Result<()> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.root)
            .with_context(|| format!("cannot create the data directory {}", self.root.display()))
    }

    /// The certificates `cybs3 server cert` makes and `server start` serves by default.
    pub fn tls(&self) -> crate::server_cert::TlsDir {
        crate::server_cert::TlsDir::new(self.root.join("tls"))
    }

    pub fn socket(&self) -> PathBuf {
        self.root.join("admin.sock")
    }

    /// The audit log's directory.
    pub fn audit(&self) -> PathBuf {
        self.root.join("audit")
    }

    /// The server's JSON logs (`logging.rs`).
    pub fn logs(&self) -> PathBuf {
        self.root.join("logs")
    }

    pub fn log(&self) -> PathBuf {
        self.root.join("server.log")
    }

    fn layout_path(&self) -> PathBuf {
        self.root.join("store.json")
    }

    fn credentials_path(&self) -> PathBuf {
        self.root.join("credentials.json")
    }

    fn server_key_path(&self) -> PathBuf {
        self.root.join("server.key")
    }

    /// The key sealing access-key secrets in the index: as stored, else generated (0600).
    pub fn ensure_server_key(&self) -> Result<[u8; 32]> {
        if let Some(key) = self.server_key()? {
            return Ok(key);
        }
        let key: [u8; 32] = rand::random();
        write_file(&self.server_key_path(), hex::encode(key).as_bytes(), 0o600)?;
        Ok(key)
    }

    /// The server's key as stored, without making one (`None`: no server ever started here).
    pub fn server_key(&self) -> Result<Option<[u8; 32]>> {
        let path = self.server_key_path();
        match fs::read_to_string(&path) {
            Ok(text) => {
                let mut key = [0u8; 32];
                hex::decode_to_slice(text.trim(), &mut key)
                    .with_context(|| format!("{} is damaged", path.display()))?;
                Ok(Some(key))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    fn runtime_path(&self) -> PathBuf {
        self.root.join("server.json")
    }

    pub fn layout(&self) -> Result<Option<Layout>> {
        read_json(&self.layout_path())
    }

    /// The drives to open: as recorded, or as given on first start.
    pub fn resolve_layout(&self, drives: Option<Vec<PathBuf>>, ec: Option<&str>) -> Result<Layout> {
        if let Some(rec) = self.layout()? {
            if let Some(given) = drives {
                let given: Vec<PathBuf> = given.iter().map(|d| absolute(d)).collect();
                if given != rec.drives {
                    bail!(
                        "this store was created on drives {}; pass the same --drives or none",
                        join_paths(&rec.drives)
                    );
                }
            }
            if let Some(ec) = ec {
                if ec != rec.ec {
                    bail!(
                        "this store's erasure layout is fixed at {} since its first start",
                        rec.ec
                    );
                }
            }
            return Ok(rec);
        }
        let drives = match drives {
            Some(d) if !d.is_empty() => d.iter().map(|d| absolute(d)).collect(),
            _ => vec![self.root.join("drive0")],
        };
        let ec = match ec {
            Some(ec) => ec.to_string(),
            None => engine::Ec::default_for(drives.len()).to_string(),
        };
        Ok(Layout { drives, ec })
    }

    pub fn save_layout(&self, layout: &Layout) -> Result<()> {
        write_file(
            &self.layout_path(),
            &serde_json::to_vec_pretty(layout)?,
            0o644,
        )
    }

    pub fn credentials(&self) -> Result<Option<Credentials>> {
        read_json(&self.credentials_path())
    }

    /// Root credentials: as stored, else from CYBS3_ROOT_USER/PASSWORD, else generated; stored 0600.
    pub fn ensure_credentials(&self) -> Result<Credentials> {
        if let Some(c) = self.credentials()? {
            return Ok(c);
        }
        let user = std::env::var("CYBS3_ROOT_USER")
            .ok()
            .filter(|s| !s.is_empty());
        let pass = std::env::var("CYBS3_ROOT_PASSWORD")
            .ok()
            .filter(|s| !s.is_empty());
        let creds = match (user, pass) {
            (Some(access_key), Some(secret_key)) => {
                if access_key.len() < 3 || secret_key.len() < 8 {
                    bail!("CYBS3_ROOT_USER needs at least 3 characters and CYBS3_ROOT_PASSWORD at least 8");
                }
                Credentials {
                    access_key,
                    secret_key,
                }
            }
            (None, None) => Credentials {
                access_key: Alphanumeric
                    .sample_string(&mut rand::rng(), 20)
                    .to_uppercase(),
                secret_key: Alphanumeric.sample_string(&mut rand::rng(), 40),
            },
            _ => bail!("set both CYBS3_ROOT_USER and CYBS3_ROOT_PASSWORD, or neither"),
        };
        write_file(
            &self.credentials_path(),
            &serde_json::to_vec_pretty(&creds)?,
            0o600,
        )?;
        Ok(creds)
    }

    /// The running server, if its recorded process is alive.
    pub fn running(&self) -> Result<Option<Runtime>> {
        let Some(rt) = read_json::<Runtime>(&self.runtime_path())? else {
            return Ok(None);
        };
        Ok(pid_alive(rt.pid).then_some(rt))
    }

    pub fn save_runtime(&self, rt: &Runtime) -> Result<()> {
        write_file(&self.runtime_path(), &serde_json::to_vec_pretty(rt)?, 0o644)
    }

    pub fn clear_runtime(&self) {
        let _ = fs::remove_file(self.runtime_path());
        let _ = fs::remove_file(self.socket());
    }
}

/// Is the process running? A zombie (exited, not yet reaped by its parent) is not.
pub fn pid_alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => false,
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    match fs::read(path) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .with_context(|| format!("{} is damaged", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Write atomically (temp file, fsync, rename) with the given mode from the start.
pub(crate) fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

fn join_paths(p: &[PathBuf]) -> String {
    p.iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(",")
}

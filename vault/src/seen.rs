//! What this machine has seen of each encrypted vault file: the newest sealing time (see
//! [`crate::crypto::binding`]) read or written per path. A version older than one seen
//! before is a rollback: someone put an older ciphertext of the file back.
//!
//! Kept in LMDB under the config directory (`seen/`, 0700/0600), shared by every process
//! of the user (the CLI, `sync`, mounts). Keys are SHA-256 hashes of the vault's location
//! and the path, so no plaintext name lands on disk. Records are never removed: a file
//! deleted here and later put back in an older version is a rollback too.
//!
//! Commits are not fsynced (LMDB `NO_SYNC`): losing the newest records in a power cut only
//! narrows what is detected, while an fsync per first read would slow the mount down.

use crate::error::{Error, Result};
use heed::types::{Bytes, U64};
use heed::{byteorder::BE, Database, Env, EnvFlags, EnvOpenOptions, WithoutTls};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

/// Virtual size of the map: 1 GiB holds about 10 million paths.
const MAP_SIZE: usize = 1 << 30;

type Db = Database<'static, Bytes, U64<BE>>;

/// One LMDB environment, opened once per process and directory (LMDB forbids opening the
/// same one twice in a process).
struct Shared {
    env: Env<WithoutTls>,
    db: Db,
}

/// The seen-map of one vault location (endpoint, bucket and prefix).
#[derive(Clone)]
pub(crate) struct Seen {
    shared: Arc<Shared>,
    scope: [u8; 32],
}

fn lmdb(e: heed::Error) -> Error {
    Error::Local(std::io::Error::other(format!(
        "the record of seen vault files is unusable: {e}"
    )))
}

impl Seen {
    /// The seen-map under `dir` for the vault at `location` (its endpoint, bucket and
    /// prefix, in any stable form).
    pub(crate) fn open(dir: &Path, location: &[&str]) -> Result<Seen> {
        static OPEN: OnceLock<Mutex<HashMap<PathBuf, Arc<Shared>>>> = OnceLock::new();
        let mut open = OPEN.get_or_init(Default::default).lock().unwrap();
        let shared = match open.get(dir) {
            Some(s) => s.clone(),
            None => {
                let s = Arc::new(Shared::open(dir)?);
                open.insert(dir.to_path_buf(), s.clone());
                s
            }
        };
        let mut h = Sha256::new();
        for part in location {
            h.update(part.as_bytes());
            h.update([0]);
        }
        Ok(Seen {
            shared,
            scope: h.finalize().into(),
        })
    }

    fn key(&self, path: &str) -> [u8; 32] {
        Sha256::new()
            .chain_update(self.scope)
            .chain_update(path.as_bytes())
            .finalize()
            .into()
    }

    /// The newest sealing time seen for `path`.
    pub(crate) fn newest(&self, path: &str) -> Result<Option<u64>> {
        let rtxn = self.shared.env.read_txn().map_err(lmdb)?;
        self.shared.db.get(&rtxn, &self.key(path)).map_err(lmdb)
    }

    /// Records that `path` was read or written as sealed at `sealed_at`; a
    /// [`Error::Crypto`] if a newer version of it was seen before (a rollback).
    pub(crate) fn observe(&self, path: &str, sealed_at: u64) -> Result<()> {
        let rollback = |seen: u64| {
            Error::Crypto(format!(
                "rollback: this is a version sealed at {}, and a newer one (sealed at {}) was \
                 seen here before; someone put an older copy back (check the bucket's versions)",
                format_time(sealed_at),
                format_time(seen)
            ))
        };
        // The common case, a version already seen, costs a read transaction only.
        match self.newest(path)? {
            Some(seen) if seen > sealed_at => return Err(rollback(seen)),
            Some(seen) if seen == sealed_at => return Ok(()),
            _ => {}
        }
        let key = self.key(path);
        let mut wtxn = self.shared.env.write_txn().map_err(lmdb)?;
        match self.shared.db.get(&wtxn, &key).map_err(lmdb)? {
            Some(seen) if seen > sealed_at => return Err(rollback(seen)),
            Some(seen) if seen == sealed_at => return Ok(()),
            _ => {}
        }
        self.shared
            .db
            .put(&mut wtxn, &key, &sealed_at)
            .map_err(lmdb)?;
        wtxn.commit().map_err(lmdb)
    }
}

impl Shared {
    fn open(dir: &Path) -> Result<Shared> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        // SAFETY: each directory is opened once per process (the map in `Seen::open`),
        // and its files are only touched through LMDB, whose lock file coordinates the
        // user's other processes.
        let env = unsafe {
            EnvOpenOptions::new()
                .read_txn_without_tls()
                .map_size(MAP_SIZE)
                .flags(EnvFlags::NO_SYNC)
                .open(dir)
        }
        .map_err(lmdb)?;
        let wtxn = env.write_txn().map_err(lmdb)?;
        let db: Database<'_, Bytes, U64<BE>> = env
            .create_databases_and_commit(wtxn, |opener, wtxn| {
                opener
                    .create_database::<Bytes, U64<BE>>(wtxn, None)
                    .map(heed::CommitOrAbort::<_, ()>::Commit)
            })
            .map_err(lmdb)?
            .unwrap_commit();
        // SAFETY: a Database is a dbi handle with a phantom borrow of its Env; the Env is
        // stored right beside it in this struct and outlives every use of the handle.
        let db: Db = unsafe { std::mem::transmute::<Database<'_, Bytes, U64<BE>>, Db>(db) };
        Ok(Shared { env, db })
    }
}

/// A sealing time for messages: RFC 3339 in UTC, to the nanosecond.
fn format_time(ns: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ns))
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("{ns} ns after the epoch"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn older_versions_are_rollbacks_per_vault_and_path() {
        let dir = tempfile::tempdir().unwrap();
        let a = Seen::open(dir.path(), &["e", "b", ""]).unwrap();
        let other = Seen::open(dir.path(), &["e", "b", "p/"]).unwrap();
        a.observe("x", 10).unwrap();
        a.observe("x", 10).unwrap();
        a.observe("x", 20).unwrap();
        let err = a.observe("x", 10).unwrap_err().to_string();
        assert!(err.starts_with("rollback: "), "{err}");
        a.observe("y", 5).unwrap();
        other.observe("x", 1).unwrap();
        // Another process (here: another handle) sees the same records.
        let again = Seen::open(dir.path(), &["e", "b", ""]).unwrap();
        assert_eq!(again.newest("x").unwrap(), Some(20));
        assert_eq!(again.newest("z").unwrap(), None);
    }
}

//! One drive directory: its format file, its own LMDB metadata copy, its shard files.
//!
//! ```text
//! <drive>/format.json     store id, drive index, layout
//! <drive>/lock            flock'ed while a process has the store open
//! <drive>/meta/           LMDB: this drive's full copy of the metadata (the first
//!                         pool's drives only: a later pool's hold shard files alone)
//! <drive>/tmp/            shard files being written
//! <drive>/data/xx/<id>    committed shard files, xx = first byte of the id
//! ```
//!
//! Everything under a drive is private to the server's user: directories 0700, files
//! 0600. A shard of a plain object is its plaintext, so any other local user able to read
//! it would bypass every access check. Stores made before this rule are tightened on open.

use crate::error::{Error, Result};
use crate::layout::Format;
use crate::record::{keys, DataId};
use heed::types::Bytes;
use heed::{Database, Env, EnvOpenOptions, WithoutTls};
use serde::Serialize;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// Virtual size reserved for each drive's metadata map (the file grows as needed).
const MAP_SIZE: usize = 1 << 38;

/// Mode of every directory under a drive.
pub const DIR_MODE: u32 = 0o700;
/// Mode of every file under a drive.
pub const FILE_MODE: u32 = 0o600;

/// `mkdir -p` with [`DIR_MODE`] for what it creates.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
}

/// Options that create a file with [`FILE_MODE`].
pub fn private_file() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.mode(FILE_MODE);
    options
}

pub type Db = Database<'static, Bytes, Bytes>;

/// An open LMDB environment and its single (unnamed) database.
pub struct Meta {
    pub env: Env<WithoutTls>,
    pub db: Db,
    /// Inode of `data.mdb` when opened: a different one (or none) means the files were
    /// removed under the open environment, which then writes into deleted files.
    ino: u64,
}

impl Meta {
    fn open(dir: &Path) -> Result<Meta> {
        create_private_dir(dir)?;
        // SAFETY: the environment is opened once per process (drives are locked with
        // flock against other processes), and its files are only touched through LMDB.
        let env = unsafe {
            EnvOpenOptions::new()
                .read_txn_without_tls()
                .map_size(MAP_SIZE)
                .max_readers(1022)
                .open(dir)?
        };
        let wtxn = env.write_txn()?;
        let db: Database<'_, Bytes, Bytes> = env
            .create_databases_and_commit(wtxn, |opener, wtxn| {
                opener
                    .create_database::<Bytes, Bytes>(wtxn, None)
                    .map(heed::CommitOrAbort::<_, ()>::Commit)
            })?
            .unwrap_commit();
        // SAFETY: a Database is a dbi handle with a phantom borrow of its Env; the Env
        // is stored right beside it in this struct and outlives every use of the handle.
        let db: Db = unsafe { std::mem::transmute::<Database<'_, Bytes, Bytes>, Db>(db) };
        let ino = fs::metadata(dir.join("data.mdb"))?.ino();
        Ok(Meta { env, db, ino })
    }

    pub fn seq(&self) -> Result<u64> {
        let rtxn = self.env.read_txn()?;
        Ok(self
            .db
            .get(&rtxn, keys::SEQ)?
            .and_then(|v| v.try_into().ok())
            .map(u64::from_be_bytes)
            .unwrap_or(0))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DriveState {
    /// Formatted, metadata current: serves reads and takes every write.
    Online,
    /// Formatted but its metadata missed commits: takes shard writes, waits for a resync.
    Stale,
    /// Out of space: out of the write set (no shards, no commits) so that writes go on
    /// degraded; still read. Comes back, resynced, once it has room again.
    Full,
    /// Missing, unformatted, damaged or failing: waits for heal.
    Faulty,
}

pub struct Drive {
    pub index: usize,
    pub root: PathBuf,
    pub state: RwLock<DriveState>,
    pub meta: RwLock<Option<Arc<Meta>>>,
    pub problem: Mutex<Option<String>>,
    /// Free bytes when the drive last left the write set full, to tell when room is made.
    pub free_when_full: std::sync::atomic::AtomicU64,
    /// Shard reads and writes, their failures and time (`iostats.rs`).
    pub io: crate::iostats::IoStats,
    lock: Mutex<Option<File>>,
}

impl Drive {
    pub fn new(index: usize, root: PathBuf) -> Drive {
        Drive {
            index,
            root,
            state: RwLock::new(DriveState::Faulty),
            meta: RwLock::new(None),
            problem: Mutex::new(None),
            free_when_full: Default::default(),
            io: Default::default(),
            lock: Mutex::new(None),
        }
    }

    pub fn state(&self) -> DriveState {
        *self.state.read().unwrap()
    }

    /// Whether new shards go to this drive: formatted and neither full nor failing.
    pub fn takes_shards(&self) -> bool {
        matches!(self.state(), DriveState::Online | DriveState::Stale)
    }

    pub fn set_state(&self, state: DriveState, problem: Option<String>) {
        if let Some(p) = &problem {
            tracing::warn!(drive = %self.root.display(), "drive {}: {p}", self.index);
        }
        *self.state.write().unwrap() = state;
        *self.problem.lock().unwrap() = problem;
    }

    pub fn meta(&self) -> Option<Arc<Meta>> {
        self.meta.read().unwrap().clone()
    }

    pub fn format_path(&self) -> PathBuf {
        self.root.join("format.json")
    }

    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    pub fn shard_path(&self, id: &DataId) -> PathBuf {
        let hex = hex::encode(id);
        self.data_dir().join(&hex[..2]).join(hex)
    }

    pub fn tmp_shard_path(&self, id: &DataId) -> PathBuf {
        self.tmp_dir().join(hex::encode(id))
    }

    /// The format written on this drive, if it has a readable one.
    pub fn read_format(&self) -> Result<Option<Format>> {
        match fs::read(self.format_path()) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| Error::Layout(format!("{}: {e}", self.format_path().display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Is there anything at all in this drive directory?
    pub fn is_empty(&self) -> bool {
        match fs::read_dir(&self.root) {
            Ok(mut entries) => entries.next().is_none(),
            Err(_) => true,
        }
    }

    /// Write a fresh format and empty metadata: for a new store or a replacement drive.
    /// Whatever damaged metadata was there is discarded; shard files are kept for heal to judge.
    pub fn format(&self, format: &Format) -> Result<()> {
        create_private_dir(&self.root)?;
        self.close_meta()?;
        // The lock file may have gone with the rest (a drive emptied under the store):
        // `open` takes a lock on the new one.
        *self.lock.lock().unwrap() = None;
        let _ = fs::remove_dir_all(self.root.join("meta"));
        for sub in ["tmp", "data"] {
            create_private_dir(&self.root.join(sub))?;
        }
        for b in 0..=255u8 {
            create_private_dir(&self.data_dir().join(hex::encode([b])))?;
        }
        self.tighten()?;
        let tmp = self.root.join("format.json.tmp");
        let mut f = private_file()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        f.write_all(&serde_json::to_vec_pretty(format).expect("format serializes"))?;
        f.sync_all()?;
        fs::rename(&tmp, self.format_path())?;
        sync_dir(&self.root)?;
        Ok(())
    }

    /// Take the drive's lock and open its metadata.
    pub fn open(&self) -> Result<()> {
        self.open_data()?;
        let meta = Meta::open(&self.root.join("meta"))?;
        *self.meta.write().unwrap() = Some(Arc::new(meta));
        Ok(())
    }

    /// Take the drive's lock, for a drive that holds shard files only (a pool added
    /// after the first, `pool.rs`).
    pub fn open_data(&self) -> Result<()> {
        self.lock()?;
        self.tighten()
    }

    /// Drops the open metadata and waits for LMDB to close it: an environment cannot be
    /// opened again at the same path while a transaction still holds the old one.
    fn close_meta(&self) -> Result<()> {
        let Some(old) = self.meta.write().unwrap().take() else {
            return Ok(());
        };
        let closed = old.env.clone().prepare_for_closing();
        drop(old);
        if closed.wait_timeout(Duration::from_secs(30)) {
            Ok(())
        } else {
            Err(Error::Meta(format!(
                "drive {}: old metadata still in use after 30 s",
                self.index
            )))
        }
    }

    /// Was this drive emptied (or its metadata replaced) under the running store? Its
    /// open metadata then lives on in deleted files, where commits still succeed.
    /// A drive that holds shard files only (a later pool's) has its format file alone to tell.
    pub fn emptied(&self) -> bool {
        let Some(meta) = self.meta() else {
            return !self.format_path().is_file();
        };
        let same = fs::metadata(self.root.join("meta/data.mdb")).is_ok_and(|m| m.ino() == meta.ino);
        !same || !self.format_path().is_file()
    }

    /// Writes, syncs and removes a small file: can this drive take writes at all?
    pub fn probe(&self) -> std::io::Result<()> {
        let path = self.root.join("probe.tmp");
        let result = private_file()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .and_then(|mut f| {
                f.write_all(&[0; 4096])?;
                f.sync_all()
            });
        let _ = fs::remove_file(&path);
        result
    }

    /// Free bytes on the filesystem holding this drive (0 when unknown).
    pub fn free(&self) -> u64 {
        self.capacity().map_or(0, |c| c.1)
    }

    fn lock(&self) -> Result<()> {
        let mut held = self.lock.lock().unwrap();
        if held.is_some() {
            return Ok(());
        }
        let path = self.root.join("lock");
        let mut f = private_file()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)?;
        // SAFETY: flock on the descriptor of `f`, open for the whole call; no memory passed.
        let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let holder = fs::read_to_string(&path).unwrap_or_default();
            return Err(Error::Locked(format!(
                "{} is locked by pid {}",
                self.root.display(),
                holder.trim()
            )));
        }
        f.set_len(0)?;
        let _ = write!(f, "{}", std::process::id());
        *held = Some(f);
        Ok(())
    }

    /// Makes the drive private to this user if it is not yet: a drive whose root is not
    /// [`DIR_MODE`] was made before the rule (or by hand), so everything under it is
    /// walked once and set to [`DIR_MODE`] and [`FILE_MODE`]. A private root alone already
    /// shuts other users out; the walk is for the day someone loosens the root again.
    fn tighten(&self) -> Result<()> {
        let mode = fs::metadata(&self.root)?.permissions().mode() & 0o7777;
        if mode == DIR_MODE {
            return Ok(());
        }
        tighten_tree(&self.root)?;
        tracing::info!(drive = %self.root.display(), "drive {}: modes tightened to 0700/0600", self.index);
        Ok(())
    }

    /// Total and free bytes of the filesystem holding this drive.
    pub fn capacity(&self) -> Option<(u64, u64)> {
        let c = std::ffi::CString::new(self.root.as_os_str().as_encoded_bytes()).ok()?;
        // SAFETY: `statvfs` is a C struct of integers, for which all-zero bytes are a value.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: `c` is a NUL-terminated path and `st` a writable statvfs, both outliving
        // the call, which keeps no pointer to either.
        if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
            return None;
        }
        let frsize = st.f_frsize as u64;
        Some((st.f_blocks as u64 * frsize, st.f_bavail as u64 * frsize))
    }
}

/// Sets [`FILE_MODE`] on every file under `dir` and [`DIR_MODE`] on every directory,
/// `dir` last, so the tree is never wider open than it was.
fn tighten_tree(dir: &Path) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            tighten_tree(&entry.path())?;
        } else if kind.is_file() {
            fs::set_permissions(entry.path(), fs::Permissions::from_mode(FILE_MODE))?;
        }
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(DIR_MODE))
}

pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)?.sync_all()?;
    Ok(())
}

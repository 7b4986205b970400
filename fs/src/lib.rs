//! The FUSE filesystem of `cybs3 mount`: a vault's plaintext tree as a POSIX directory.
//!
//! - Names and attributes come from listings (one LIST per directory, cached for the
//!   mount's TTL); a file's `mode`/`mtime` metadata costs one HEAD when it is looked up,
//!   also cached for the TTL. `readdir` never HEADs.
//! - Reads are ranged GETs ([`Vault::read_at`]); encrypted vaults fetch whole age chunks.
//!   A sequential reader is served from one GET stream instead ([`prefetch`]), and
//!   replies are slices of what arrived, not copies.
//! - Writes go to a local cache file and are uploaded whole ([`Vault::upload`], so a fresh
//!   file key for encrypted vaults) on `fsync` and on every `close` (FUSE `flush`) after a
//!   write: a `close` that succeeded means the content is in S3.
//! - Directories are common prefixes; `mkdir` stores a marker object `dir/` as S3 consoles
//!   do. Renames are server-side copies then deletes, under a mount-wide lock.
//! - Every handler runs under `catch_unwind`: a panic answers EIO and the mount lives on.

mod cache;
mod prefetch;

use anyhow::{anyhow, Context};
use bytes::{Bytes, BytesMut};
use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, InitFlags,
    KernelConfig, LockOwner, MountOption, OpenAccMode, OpenFlags, RenameFlags, ReplyAttr,
    ReplyCreate, ReplyData, ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyOpen,
    ReplyWrite, Request, SessionACL, TimeOrNow, WriteFlags,
};
use prefetch::Prefetch;
use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use vault::attrs::Xattrs;
use vault::vault::{Entry, Meta, RangeReader, UploadAttrs, Vault};

/// How a vault is mounted.
#[derive(Clone, Debug)]
pub struct MountOptions {
    pub read_only: bool,
    pub allow_other: bool,
    /// How long listings and attributes are trusted (ours and the kernel's).
    pub cache_ttl: Duration,
    /// Where files open for writing are kept until uploaded (created, mode 0700).
    pub cache_dir: PathBuf,
    /// Shown as the mount's source, e.g. `cybs3:local`.
    pub fs_name: String,
    /// The most the files open for writing may take in `cache_dir` (`--cache-size`).
    pub cache_size: Option<u64>,
}

type R<T> = Result<T, Errno>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One buffer of `parts`, copied only when there is more than one.
fn concat(mut parts: Vec<Bytes>) -> Bytes {
    match parts.len() {
        0 => Bytes::new(),
        1 => parts.swap_remove(0),
        _ => parts.concat().into(),
    }
}

/// EIO, with the cause in the log.
fn eio(what: &str, e: impl Into<anyhow::Error>) -> Errno {
    let e = e.into();
    tracing::error!("{what}: {e:#}");
    Errno::EIO
}

/// A local I/O error: a full cache disk is ENOSPC, anything else EIO with a log line.
fn io_err(what: &str, e: std::io::Error) -> Errno {
    match e.raw_os_error() {
        Some(n) if n == libc::ENOSPC || n == libc::EDQUOT => {
            tracing::warn!("{what}: {e}");
            Errno::from_i32(n)
        }
        _ => {
            tracing::error!("{what}: {e}");
            Errno::EIO
        }
    }
}

/// Runs one handler body; a panic in it answers EIO instead of ending the mount.
fn guard<T>(what: &str, f: impl FnOnce() -> R<T>) -> R<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => {
            let msg = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!("{what} panicked: {msg}");
            Err(Errno::EIO)
        }
    }
}

fn join(parent: &str, name: &OsStr) -> R<String> {
    let name = name.to_str().ok_or(Errno::EINVAL)?;
    if name.is_empty() || name == "." || name == ".." || name.contains('/') {
        return Err(Errno::EINVAL);
    }
    Ok(if parent.is_empty() {
        name.to_string()
    } else {
        format!("{parent}/{name}")
    })
}

fn split(path: &str) -> (&str, &str) {
    match path.rsplit_once('/') {
        Some((p, n)) => (p, n),
        None => ("", path),
    }
}

/// One name of a listed directory.
#[derive(Clone, Debug)]
struct Ent {
    is_dir: bool,
    stored: Option<SystemTime>,
    /// The file's attributes when they came with the listing (else one HEAD gets them).
    meta: Option<Meta>,
}

impl Ent {
    fn dir() -> Ent {
        Ent {
            is_dir: true,
            stored: None,
            meta: None,
        }
    }

    fn file(stored: SystemTime, meta: Option<Meta>) -> Ent {
        Ent {
            is_dir: false,
            stored: Some(stored),
            meta,
        }
    }

    fn kind(&self) -> FileType {
        match &self.meta {
            _ if self.is_dir => FileType::Directory,
            Some(Meta {
                mode: Some(mode), ..
            }) if vault::attrs::is_symlink(*mode) => FileType::Symlink,
            _ => FileType::RegularFile,
        }
    }
}

struct Listing {
    at: Instant,
    entries: BTreeMap<String, Ent>,
}

fn time_of(t: TimeOrNow) -> SystemTime {
    match t {
        TimeOrNow::SpecificTime(t) => t,
        TimeOrNow::Now => SystemTime::now(),
    }
}

/// Path-based inodes: a path keeps its number for the mount's life (forgets are ignored).
struct Inodes {
    by_ino: HashMap<u64, String>,
    by_path: HashMap<String, u64>,
    next: u64,
}

/// A file open for writing: its local copy, shared by every handle on the path.
struct Local {
    /// The vault path it is uploaded to (renames move it).
    path: Mutex<String>,
    cache_path: PathBuf,
    file: File,
    state: Mutex<LocalState>,
    /// Extended attributes as stored, uploaded with the content.
    xattrs: Mutex<Option<String>>,
}

struct LocalState {
    dirty: bool,
    refs: usize,
    /// Unlinked while open: still readable and writable through its handles (POSIX),
    /// never uploaded again.
    unlinked: bool,
}

enum Handle {
    Read {
        /// The file's path (renames move it).
        path: Mutex<String>,
        remote: Mutex<Remote>,
        /// A local copy taken when the file was unlinked while open here, read from
        /// then on (POSIX: the data lives until the last close).
        pinned: Mutex<Option<Arc<Local>>>,
    },
    Write {
        local: Arc<Local>,
    },
}

/// A read handle's object: its reader, and what was read ahead.
#[derive(Default)]
struct Remote {
    reader: Option<Arc<RangeReader>>,
    /// Where the last read ended: a read starting near there is sequential.
    next: u64,
    /// The stream of a sequential reader.
    stream: Option<Prefetch>,
}

impl Remote {
    /// Forgets the object as it was: it was just replaced through this mount.
    fn reset(&mut self) {
        self.stream = None;
        self.reader = None;
    }
}

/// A directory's entries as of `opendir`: inode, type, name.
type DirSnapshot = Vec<(u64, FileType, String)>;

struct Inner {
    vault: Arc<Vault>,
    rt: tokio::runtime::Runtime,
    opts: MountOptions,
    uid: u32,
    gid: u32,
    started: SystemTime,
    /// Held shared by every operation and exclusively by renames, so a directory is never
    /// seen half-moved through the mount.
    tree: RwLock<()>,
    inodes: Mutex<Inodes>,
    dirs: Mutex<HashMap<String, Listing>>,
    metas: Mutex<HashMap<String, (Instant, Option<Meta>)>>,
    locals: Mutex<HashMap<String, Arc<Local>>>,
    /// Local copies unlinked while open, by inode: fstat (which the kernel sends by
    /// inode alone) still answers for them until the last handle closes.
    orphans: Mutex<HashMap<u64, Arc<Local>>>,
    handles: Mutex<HashMap<u64, Arc<Handle>>>,
    dir_handles: Mutex<HashMap<u64, Arc<DirSnapshot>>>,
    next_fh: AtomicU64,
    next_cache: AtomicU64,
    cache: cache::Budget,
}

/// The filesystem handed to fuser; [`VaultFs::flusher`] gives a handle for flushing
/// from outside (signal handler) while it is mounted.
pub struct VaultFs {
    inner: Arc<Inner>,
}

/// Uploads every file with pending writes (`cybs3 umount` does this before unmounting).
#[derive(Clone)]
pub struct Flusher {
    inner: Arc<Inner>,
}

impl Flusher {
    pub fn flush_all(&self) -> anyhow::Result<()> {
        let _tree = self.inner.tree.read().unwrap_or_else(|e| e.into_inner());
        let locals: Vec<Arc<Local>> = lock(&self.inner.locals).values().cloned().collect();
        let mut failed = 0;
        for local in locals {
            if self.inner.upload_local(&local).is_err() {
                failed += 1;
            }
        }
        if failed > 0 {
            anyhow::bail!("{failed} files could not be uploaded");
        }
        Ok(())
    }
}

impl VaultFs {
    /// Call it before starting other threads: it blocks the exit signals, which
    /// [`serve`] handles, in this thread and the runtime's.
    pub fn new(vault: Vault, opts: MountOptions) -> anyhow::Result<VaultFs> {
        exit_signals();
        vault::config::private_dir(&opts.cache_dir)?;
        // Leftovers of an earlier mount (uploads that failed) stay for the user to
        // recover; new cache files get fresh names.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .enable_all()
            .build()?;
        let mut inodes = Inodes {
            by_ino: HashMap::new(),
            by_path: HashMap::new(),
            next: 2,
        };
        inodes.by_ino.insert(1, String::new());
        inodes.by_path.insert(String::new(), 1);
        let cache = cache::Budget::new(opts.cache_dir.clone(), opts.cache_size);
        Ok(VaultFs {
            inner: Arc::new(Inner {
                cache,
                vault: Arc::new(vault),
                rt,
                opts,
                uid: unsafe { libc::geteuid() },
                gid: unsafe { libc::getegid() },
                started: SystemTime::now(),
                tree: RwLock::new(()),
                inodes: Mutex::new(inodes),
                dirs: Mutex::new(HashMap::new()),
                metas: Mutex::new(HashMap::new()),
                locals: Mutex::new(HashMap::new()),
                orphans: Mutex::new(HashMap::new()),
                handles: Mutex::new(HashMap::new()),
                dir_handles: Mutex::new(HashMap::new()),
                next_fh: AtomicU64::new(1),
                next_cache: AtomicU64::new(1),
            }),
        })
    }

    pub fn flusher(&self) -> Flusher {
        Flusher {
            inner: self.inner.clone(),
        }
    }

    /// The fuser configuration for these options.
    pub fn config(&self) -> fuser::Config {
        let o = &self.inner.opts;
        let mut c = fuser::Config::default();
        c.mount_options = vec![
            MountOption::FSName(o.fs_name.clone()),
            MountOption::Subtype("cybs3".into()),
            MountOption::NoDev,
            MountOption::NoSuid,
            if o.read_only {
                MountOption::RO
            } else {
                MountOption::RW
            },
        ];
        if o.allow_other {
            c.mount_options.push(MountOption::DefaultPermissions);
            c.acl = SessionACL::All;
        }
        // Uploads on close block their thread: enough of them for many writers at once.
        c.n_threads = Some(16);
        c.clone_fd = true;
        c
    }
}

/// SIGTERM, SIGINT and SIGHUP, blocked in the calling thread (and so in every thread it
/// starts afterwards), to be taken by `sigwait` in one.
fn exit_signals() -> libc::sigset_t {
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    unsafe {
        libc::sigemptyset(&mut set);
        for s in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            libc::sigaddset(&mut set, s);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
    set
}

/// Mounts `fs` at `mountpoint` and serves it until it is unmounted. SIGTERM, SIGINT and
/// SIGHUP flush pending writes, then unmount.
pub fn serve(fs: VaultFs, mountpoint: &Path) -> anyhow::Result<()> {
    let set = exit_signals();
    let flusher = fs.flusher();
    let config = fs.config();
    let mut session = fuser::Session::new(fs, mountpoint, &config)
        .with_context(|| format!("cannot mount {}", mountpoint.display()))?;
    let mut unmounter = session.unmount_callable();
    let where_ = mountpoint.display().to_string();
    std::thread::Builder::new()
        .name("cybs3-signals".into())
        .spawn(move || loop {
            let mut sig = 0;
            if unsafe { libc::sigwait(&set, &mut sig) } != 0 {
                continue;
            }
            tracing::info!("signal {sig}: flushing, then unmounting {where_}");
            if let Err(e) = flusher.flush_all() {
                tracing::error!("flush before unmount: {e:#}");
            }
            // A close's RELEASE may still be in flight: retry briefly, then detach
            // lazily; files still open keep working and are uploaded when closed, and
            // the session ends after the last one.
            let Ok(c) = std::ffi::CString::new(where_.as_bytes()) else {
                return;
            };
            // fuser's own unmount first (it then knows), retries with umount(2).
            if unmounter.unmount().is_ok() {
                return;
            }
            let mut tries = 0;
            loop {
                if unsafe { libc::umount2(c.as_ptr(), 0) } == 0 {
                    return;
                }
                let e = std::io::Error::last_os_error();
                if tries < 40 && e.raw_os_error() == Some(libc::EBUSY) {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
                tracing::warn!("cannot unmount {where_} ({e}): detaching it lazily");
                if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } == 0 {
                    return;
                }
                tracing::error!(
                    "cannot unmount {where_}: {}",
                    std::io::Error::last_os_error()
                );
                break;
            }
        })?;
    session.run()?;
    Ok(())
}

impl Inner {
    fn local(&self, path: &str) -> Option<Arc<Local>> {
        lock(&self.locals).get(path).cloned()
    }

    fn ttl(&self) -> Duration {
        self.opts.cache_ttl
    }

    fn path_of(&self, ino: INodeNo) -> R<String> {
        lock(&self.inodes)
            .by_ino
            .get(&ino.0)
            .cloned()
            .ok_or(Errno::ENOENT)
    }

    fn ino_of(&self, path: &str) -> u64 {
        let mut i = lock(&self.inodes);
        if let Some(n) = i.by_path.get(path) {
            return *n;
        }
        let n = i.next;
        i.next += 1;
        i.by_path.insert(path.to_string(), n);
        i.by_ino.insert(n, path.to_string());
        n
    }

    /// Moves `from` (and for directories everything below it) to `to` in the inode table.
    fn move_inodes(&self, from: &str, to: &str) {
        let mut i = lock(&self.inodes);
        if let Some(n) = i.by_path.remove(to) {
            i.by_ino.remove(&n);
        }
        let below = format!("{from}/");
        let moved: Vec<(String, u64)> = i
            .by_path
            .iter()
            .filter(|(p, _)| p.as_str() == from || p.starts_with(&below))
            .map(|(p, n)| (p.clone(), *n))
            .collect();
        for (p, n) in moved {
            let np = format!("{to}{}", &p[from.len()..]);
            i.by_path.remove(&p);
            if let Some(old) = i.by_path.insert(np.clone(), n) {
                i.by_ino.remove(&old);
            }
            i.by_ino.insert(n, np);
        }
    }

    fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// Lists `dir` from the server into the cache.
    fn refresh(&self, dir: &str) -> R<()> {
        let listed: Vec<Entry> = self
            .block_on(self.vault.list(dir, false))
            .map_err(|e| eio(&format!("listing {dir:?}"), e))?;
        let mut entries = BTreeMap::new();
        for e in listed {
            if e.path == dir {
                continue; // `dir` is a file now
            }
            let name = split(&e.path).1.to_string();
            entries.insert(
                name,
                Ent {
                    is_dir: e.is_dir,
                    stored: e.stored,
                    meta: e.meta,
                },
            );
        }
        lock(&self.dirs).insert(
            dir.to_string(),
            Listing {
                at: Instant::now(),
                entries,
            },
        );
        Ok(())
    }

    fn fresh(&self, dir: &str) -> bool {
        lock(&self.dirs)
            .get(dir)
            .is_some_and(|l| l.at.elapsed() < self.ttl())
    }

    /// The entry `name` of directory `dir`: files open for writing first, then the
    /// (fresh) listing.
    fn entry(&self, dir: &str, name: &str) -> R<Option<Ent>> {
        let path = if dir.is_empty() {
            name.to_string()
        } else {
            format!("{dir}/{name}")
        };
        if let Some(l) = self.local(&path) {
            let md = l.file.metadata().map_err(|e| io_err("stat cache", e))?;
            return Ok(Some(Ent::file(md.modified().unwrap_or(UNIX_EPOCH), None)));
        }
        if !self.fresh(dir) {
            self.refresh(dir)?;
        }
        Ok(lock(&self.dirs)
            .get(dir)
            .and_then(|l| l.entries.get(name).cloned()))
    }

    fn set_entry(&self, path: &str, ent: Option<Ent>) {
        let (dir, name) = split(path);
        if let Some(l) = lock(&self.dirs).get_mut(dir) {
            match ent {
                Some(e) => {
                    l.entries.insert(name.to_string(), e);
                }
                None => {
                    l.entries.remove(name);
                }
            }
        }
        lock(&self.metas).remove(path);
    }

    /// Forgets what is known of a file's stored attributes (they changed): the next look
    /// at them asks the server.
    fn forget_meta(&self, path: &str) {
        let (dir, name) = split(path);
        if let Some(e) = lock(&self.dirs)
            .get_mut(dir)
            .and_then(|l| l.entries.get_mut(name))
        {
            e.meta = None;
        }
        lock(&self.metas).remove(path);
    }

    /// Forgets cached listings of `path` and everything below it.
    fn drop_listings(&self, path: &str) {
        let below = format!("{path}/");
        lock(&self.dirs).retain(|d, _| d != path && !d.starts_with(&below));
        lock(&self.metas).retain(|d, _| d != path && !d.starts_with(&below));
    }

    fn dir_attr(&self, ino: u64, stored: Option<SystemTime>) -> FileAttr {
        let t = stored.unwrap_or(self.started);
        FileAttr {
            ino: INodeNo(ino),
            size: 0,
            blocks: 0,
            atime: t,
            mtime: t,
            ctime: t,
            crtime: t,
            kind: FileType::Directory,
            perm: 0o755,
            nlink: 2,
            uid: self.uid,
            gid: self.gid,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        }
    }

    fn file_attr(
        &self,
        ino: u64,
        kind: FileType,
        size: u64,
        mtime: SystemTime,
        perm: u16,
    ) -> FileAttr {
        FileAttr {
            ino: INodeNo(ino),
            size,
            blocks: size.div_ceil(512),
            atime: mtime,
            mtime,
            ctime: mtime,
            crtime: mtime,
            kind,
            perm,
            nlink: 1,
            uid: self.uid,
            gid: self.gid,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        }
    }

    /// The file's metadata (one HEAD per TTL).
    fn meta(&self, path: &str) -> R<Option<Meta>> {
        if let Some((at, m)) = lock(&self.metas).get(path) {
            if at.elapsed() < self.ttl() {
                return Ok(m.clone());
            }
        }
        let m = self
            .block_on(self.vault.stat(path))
            .map_err(|e| eio(&format!("stat {path:?}"), e))?;
        lock(&self.metas).insert(path.to_string(), (Instant::now(), m.clone()));
        Ok(m)
    }

    fn attr(&self, path: &str, ent: &Ent) -> R<FileAttr> {
        let ino = self.ino_of(path);
        if ent.is_dir {
            return Ok(self.dir_attr(ino, None));
        }
        if let Some(l) = self.local(path) {
            return self.local_attr(ino, &l);
        }
        let listed = ent.meta.clone();
        let Some(m) = listed.map_or_else(|| self.meta(path), |m| Ok(Some(m)))? else {
            // Listed but gone since.
            self.set_entry(path, None);
            return Err(Errno::ENOENT);
        };
        let mtime = m.mtime.or(ent.stored).unwrap_or(UNIX_EPOCH);
        let perm = m.mode.map(|m| (m & 0o7777) as u16).unwrap_or(0o644);
        let kind = match m.mode {
            Some(mode) if vault::attrs::is_symlink(mode) => FileType::Symlink,
            _ => FileType::RegularFile,
        };
        Ok(self.file_attr(ino, kind, m.size, mtime, perm))
    }

    fn local_attr(&self, ino: u64, l: &Local) -> R<FileAttr> {
        let md = l.file.metadata().map_err(|e| io_err("stat cache", e))?;
        Ok(self.file_attr(
            ino,
            FileType::RegularFile,
            md.len(),
            md.modified().unwrap_or(UNIX_EPOCH),
            (md.mode() & 0o7777) as u16,
        ))
    }

    /// getattr, also of a file unlinked while open (its local copy answers).
    fn handle_attr(&self, ino: INodeNo, fh: Option<FileHandle>) -> R<FileAttr> {
        if let Some(fh) = fh {
            if let Handle::Write { local } = &*self.handle(fh)? {
                return self.local_attr(ino.0, local);
            }
        }
        match self.path_attr(&self.path_of(ino)?) {
            Err(Errno::ENOENT) => match lock(&self.orphans).get(&ino.0).cloned() {
                Some(l) => self.local_attr(ino.0, &l),
                None => Err(Errno::ENOENT),
            },
            r => r,
        }
    }

    fn path_attr(&self, path: &str) -> R<FileAttr> {
        if path.is_empty() {
            return Ok(self.dir_attr(1, None));
        }
        let (dir, name) = split(path);
        let ent = self.entry(dir, name)?.ok_or(Errno::ENOENT)?;
        self.attr(path, &ent)
    }

    fn writable(&self) -> R<()> {
        if self.opts.read_only {
            Err(Errno::EROFS)
        } else {
            Ok(())
        }
    }

    fn new_cache_path(&self) -> PathBuf {
        let n = self.next_cache.fetch_add(1, Ordering::Relaxed);
        self.opts
            .cache_dir
            .join(format!("{}-{n}", std::process::id()))
    }

    /// The local copy of `path` for writing, downloaded unless `truncate`; one more
    /// reference to it. `create`: a new file of mode `mode`.
    fn acquire_local(&self, path: &str, truncate: bool, create: Option<u32>) -> R<Arc<Local>> {
        let existing = {
            let locals = lock(&self.locals);
            let l = locals.get(path).cloned();
            if let Some(l) = &l {
                lock(&l.state).refs += 1;
            }
            l
        };
        if let Some(l) = existing {
            if truncate || create.is_some() {
                let mut st = lock(&l.state);
                self.cache.set_len(&l.file, 0)?;
                st.dirty = true;
            }
            return Ok(l);
        }
        let cache_path = self.new_cache_path();
        let (mode, fetch, xattrs) = match create {
            Some(mode) => (mode, false, None),
            None => {
                let m = self.meta(path)?.ok_or(Errno::ENOENT)?;
                (
                    m.mode.map(|m| m & 0o7777).unwrap_or(0o644),
                    !truncate,
                    m.xattrs,
                )
            }
        };
        if fetch {
            self.block_on(self.vault.download(path, &cache_path, Arc::new(|_| {})))
                .map_err(|e| eio(&format!("download of {path:?}"), e))?;
        } else {
            File::create(&cache_path).map_err(|e| io_err("create cache file", e))?;
        }
        // Our copy must stay writable to us whatever the file's mode.
        let _ =
            std::fs::set_permissions(&cache_path, std::fs::Permissions::from_mode(mode | 0o600));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&cache_path)
            .map_err(|e| io_err("open cache file", e))?;
        let len = cache::file_len(&file)?;
        if let Err(e) = self.cache.reserve(len) {
            let _ = std::fs::remove_file(&cache_path);
            return Err(e);
        }
        let _ = file.set_permissions(std::fs::Permissions::from_mode(mode));
        let local = Arc::new(Local {
            path: Mutex::new(path.to_string()),
            cache_path,
            file,
            state: Mutex::new(LocalState {
                dirty: !fetch,
                refs: 1,
                unlinked: false,
            }),
            xattrs: Mutex::new(xattrs),
        });
        let mut locals = lock(&self.locals);
        if let Some(other) = locals.get(path).cloned() {
            // Opened concurrently: use the first copy.
            drop(locals);
            self.cache.release(len);
            let _ = std::fs::remove_file(&local.cache_path);
            lock(&other.state).refs += 1;
            return Ok(other);
        }
        locals.insert(path.to_string(), local.clone());
        Ok(local)
    }

    /// Uploads the local copy if it changed since the last upload.
    fn upload_local(&self, local: &Local) -> R<()> {
        let mut st = lock(&local.state);
        if !st.dirty || st.unlinked {
            return Ok(());
        }
        let path = lock(&local.path).clone();
        let path = path.as_str();
        let xattrs = lock(&local.xattrs).clone();
        // An open file's mode and mtime live on its local copy (setattr changes them
        // there); its owner is the mount's.
        let md = local
            .file
            .metadata()
            .map_err(|e| io_err(&format!("upload of {path:?}"), e))?;
        let attrs = UploadAttrs {
            uid: Some(self.uid),
            gid: Some(self.gid),
            xattrs: xattrs.clone(),
            ..UploadAttrs::of_file(&md)
        };
        self.block_on(
            self.vault
                .upload(&local.cache_path, path, &attrs, Arc::new(|_| {})),
        )
        .map_err(|e| eio(&format!("upload of {path:?}"), e))?;
        st.dirty = false;
        drop(st);
        self.reset_readers(path);
        // What was uploaded is what the listing would now say.
        let meta = local.file.metadata().ok().map(|md| Meta {
            size: md.len(),
            mtime: md.modified().ok(),
            mode: Some(md.mode()),
            hash: None,
            xattrs,
        });
        self.set_entry(path, Some(Ent::file(SystemTime::now(), meta)));
        Ok(())
    }

    /// Drops one reference to the local copy; the last one uploads it and removes it.
    fn release_local(&self, local: &Arc<Local>) -> R<()> {
        let uploaded = self.upload_local(local);
        let mut locals = lock(&self.locals);
        let path = lock(&local.path).clone();
        let path = path.as_str();
        let mut st = lock(&local.state);
        st.refs = st.refs.saturating_sub(1);
        if st.refs == 0 {
            if locals.get(path).is_some_and(|l| Arc::ptr_eq(l, local)) {
                locals.remove(path);
            }
            if st.unlinked {
                lock(&self.orphans).retain(|_, l| !Arc::ptr_eq(l, local));
            }
            drop(st);
            drop(locals);
            self.cache
                .release(cache::file_len(&local.file).unwrap_or(0));
            if uploaded.is_ok() {
                let _ = std::fs::remove_file(&local.cache_path);
            } else {
                tracing::error!(
                    "{path:?} was not uploaded; its content is kept in {}",
                    local.cache_path.display()
                );
            }
        }
        uploaded
    }

    /// Read handles of `path` read it anew: it was just replaced through this mount.
    fn reset_readers(&self, path: &str) {
        let handles: Vec<Arc<Handle>> = lock(&self.handles).values().cloned().collect();
        for h in handles {
            if let Handle::Read {
                path: p, remote, ..
            } = &*h
            {
                if *lock(p) == path {
                    lock(remote).reset();
                }
            }
        }
    }

    fn add_handle(&self, h: Handle) -> u64 {
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        lock(&self.handles).insert(fh, Arc::new(h));
        fh
    }

    fn handle(&self, fh: FileHandle) -> R<Arc<Handle>> {
        lock(&self.handles).get(&fh.0).cloned().ok_or(Errno::EBADF)
    }

    fn read_local(file: &File, offset: u64, size: u32) -> R<Bytes> {
        let mut buf = vec![0u8; size as usize];
        let mut got = 0;
        while got < buf.len() {
            match file.read_at(&mut buf[got..], offset + got as u64) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_err("read cache file", e)),
            }
        }
        buf.truncate(got);
        Ok(buf.into())
    }

    /// A read through a handle: a sequential reader (each read starting near where the
    /// last ended) is served from a stream ([`Prefetch`]); other reads fetch just what
    /// they ask for.
    fn read_sequential(&self, path: &str, remote: &mut Remote, offset: u64, size: u32) -> R<Bytes> {
        if !remote.stream.as_ref().is_some_and(|s| s.serves(offset)) {
            remote.stream = None;
            let sequential = offset > 0 && offset.abs_diff(remote.next) <= prefetch::REORDER;
            if !sequential {
                let v = self.read_remote(path, remote, offset, size)?;
                remote.next = offset + v.len() as u64;
                return Ok(v);
            }
            match self.reader_of(path, remote) {
                Ok(r) => {
                    let vault = self.vault.clone();
                    remote.stream = Some(Prefetch::start(&self.rt, vault, r, offset));
                }
                Err(e) => tracing::debug!("cannot stream {path:?}, reading directly: {e:#}"),
            }
        }
        let streamed = match remote
            .stream
            .as_mut()
            .map(|s| s.read(&self.rt, offset, size))
        {
            Some(Ok(b)) => b,
            Some(Err(e)) => {
                // Replaced since, say: the plain path reopens.
                tracing::debug!("read-ahead of {path:?} failed, reading directly: {e:#}");
                remote.stream = None;
                Bytes::new()
            }
            None => Bytes::new(),
        };
        let got = streamed.len() as u64;
        let mut parts = vec![streamed];
        if got < size as u64 {
            // It may have grown since: the plain path checks.
            let rest = self.read_remote(path, remote, offset + got, size - got as u32)?;
            if !rest.is_empty() {
                remote.stream = None;
                parts.push(rest);
            }
        }
        let out = concat(parts);
        remote.next = offset + out.len() as u64;
        Ok(out)
    }

    /// The handle's reader, opened on first use.
    fn reader_of(&self, path: &str, remote: &mut Remote) -> anyhow::Result<Arc<RangeReader>> {
        if let Some(r) = &remote.reader {
            return Ok(r.clone());
        }
        let r = self
            .block_on(self.vault.reader(path))?
            .ok_or_else(|| anyhow!("{path:?} is gone"))?;
        let r = Arc::new(r);
        remote.reader = Some(r.clone());
        Ok(r)
    }

    fn read_remote(&self, path: &str, remote: &mut Remote, offset: u64, size: u32) -> R<Bytes> {
        for attempt in 0..2 {
            let mut made = false;
            let r = {
                let slot = &mut remote.reader;
                match slot.clone() {
                    Some(r) if attempt == 0 => r,
                    _ => {
                        made = true;
                        let r = self
                            .block_on(self.vault.reader(path))
                            .map_err(|e| eio(&format!("open {path:?}"), e))?
                            .ok_or(Errno::ENOENT)?;
                        let r = Arc::new(r);
                        *slot = Some(r.clone());
                        r
                    }
                }
            };
            let mut buf = BytesMut::new();
            match self.block_on(self.vault.read_at(&r, offset, size as u64, &mut buf)) {
                // Short of what was asked, by a reader made earlier: the file may have
                // grown since (written or truncated through another handle), and the
                // kernel asks within the size it knows. Reopen once.
                Ok(()) if attempt == 0 && !made && buf.len() < size as usize => {
                    tracing::debug!("short read of {path:?} at {offset}, reopening")
                }
                Ok(()) => return Ok(buf.freeze()),
                // The object may have been replaced: reopen once.
                Err(e) if attempt == 0 => {
                    tracing::debug!("read of {path:?} failed, reopening: {e:#}")
                }
                Err(e) => return Err(eio(&format!("read of {path:?}"), e)),
            }
        }
        Err(Errno::EIO)
    }

    fn put_marker(&self, path: &str, xattrs: &Xattrs) -> anyhow::Result<()> {
        Ok(self.block_on(self.vault.put_marker(path, xattrs))?)
    }

    fn delete_marker(&self, path: &str) -> anyhow::Result<()> {
        Ok(self.block_on(self.vault.delete_marker(path))?)
    }

    /// Server-side copy of one file (metadata kept), then the source deleted.
    fn move_file(&self, from: &str, to: &str) -> anyhow::Result<()> {
        let (src, dst) = (self.vault.key_of(from)?, self.vault.key_of(to)?);
        let bucket = &self.vault.cfg.bucket;
        self.block_on(
            self.vault
                .client()
                .copy_object()
                .bucket(bucket)
                .key(&dst)
                .copy_source(vault::attrs::copy_source(bucket, &src))
                .send(),
        )
        .with_context(|| format!("cannot copy {from:?} to {to:?}"))?;
        self.block_on(self.vault.delete(from))?;
        Ok(())
    }

    /// Moves a directory tree, one listing per directory.
    fn move_dir(&self, from: &str, to: &str) -> anyhow::Result<()> {
        let mut stack = vec![(from.to_string(), to.to_string())];
        while let Some((s, d)) = stack.pop() {
            let xattrs = self.block_on(self.vault.dir_xattrs(&s))?;
            self.put_marker(&d, &xattrs)?;
            for e in self.block_on(self.vault.list(&s, false))? {
                if e.path == s {
                    continue;
                }
                let name = split(&e.path).1;
                let target = format!("{d}/{name}");
                if e.is_dir {
                    stack.push((e.path.clone(), target));
                } else {
                    self.move_file(&e.path, &target)?;
                }
            }
            self.delete_marker(&s)?;
        }
        Ok(())
    }

    fn is_empty_dir(&self, path: &str) -> R<bool> {
        let below = format!("{path}/");
        if lock(&self.locals).keys().any(|p| p.starts_with(&below)) {
            return Ok(false);
        }
        let listed = self
            .block_on(self.vault.list(path, false))
            .map_err(|e| eio(&format!("listing {path:?}"), e))?;
        Ok(listed.iter().all(|e| e.path == path))
    }

    // ---- operations ----

    fn do_lookup(&self, parent: INodeNo, name: &OsStr) -> R<FileAttr> {
        let dir = self.path_of(parent)?;
        let path = join(&dir, name)?;
        let ent = self.entry(&dir, split(&path).1)?.ok_or(Errno::ENOENT)?;
        self.attr(&path, &ent)
    }

    fn do_opendir(&self, ino: INodeNo) -> R<u64> {
        let dir = self.path_of(ino)?;
        self.refresh(&dir)?;
        let mut out = vec![
            (ino.0, FileType::Directory, ".".to_string()),
            (1, FileType::Directory, "..".to_string()),
        ];
        let mut names: BTreeMap<String, FileType> = lock(&self.dirs)
            .get(&dir)
            .map(|l| {
                l.entries
                    .iter()
                    .map(|(n, e)| (n.clone(), e.kind()))
                    .collect()
            })
            .unwrap_or_default();
        for p in lock(&self.locals).keys() {
            let (d, n) = split(p);
            if d == dir {
                names.insert(n.to_string(), FileType::RegularFile);
            }
        }
        for (name, kind) in names {
            let path = if dir.is_empty() {
                name.clone()
            } else {
                format!("{dir}/{name}")
            };
            out.push((self.ino_of(&path), kind, name));
        }
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        lock(&self.dir_handles).insert(fh, Arc::new(out));
        Ok(fh)
    }

    fn do_open(&self, ino: INodeNo, flags: OpenFlags) -> R<u64> {
        let path = self.path_of(ino)?;
        if path.is_empty() {
            return Err(Errno::EISDIR);
        }
        if flags.acc_mode() == OpenAccMode::O_RDONLY {
            return Ok(self.add_handle(Handle::Read {
                path: Mutex::new(path),
                remote: Mutex::default(),
                pinned: Mutex::new(None),
            }));
        }
        self.writable()?;
        let truncate = flags.0 & libc::O_TRUNC != 0;
        let local = self.acquire_local(&path, truncate, None)?;
        Ok(self.add_handle(Handle::Write { local }))
    }

    fn do_create(
        &self,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
    ) -> R<(FileAttr, u64)> {
        self.writable()?;
        let dir = self.path_of(parent)?;
        let path = join(&dir, name)?;
        if let Some(e) = self.entry(&dir, split(&path).1)? {
            if e.is_dir {
                return Err(Errno::EISDIR);
            }
        }
        let local = self.acquire_local(&path, true, Some(mode & !umask & 0o7777))?;
        let fh = self.add_handle(Handle::Write { local });
        let attr = self.path_attr(&path)?;
        Ok((attr, fh))
    }

    fn do_read(&self, fh: FileHandle, offset: u64, size: u32) -> R<Bytes> {
        match &*self.handle(fh)? {
            Handle::Write { local } => Self::read_local(&local.file, offset, size),
            Handle::Read {
                path,
                remote,
                pinned,
            } => {
                let path = lock(path).clone();
                if let Some(l) = lock(pinned).clone().or_else(|| self.local(&path)) {
                    return Self::read_local(&l.file, offset, size);
                }
                self.read_sequential(&path, &mut lock(remote), offset, size)
            }
        }
    }

    fn do_write(&self, fh: FileHandle, offset: u64, data: &[u8]) -> R<u32> {
        match &*self.handle(fh)? {
            Handle::Write { local } => {
                let mut st = lock(&local.state);
                self.cache.write_at(&local.file, data, offset)?;
                st.dirty = true;
                Ok(data.len() as u32)
            }
            Handle::Read { .. } => Err(Errno::EBADF),
        }
    }

    fn do_flush(&self, fh: FileHandle) -> R<()> {
        match &*self.handle(fh)? {
            Handle::Write { local } => self.upload_local(local),
            Handle::Read { .. } => Ok(()),
        }
    }

    fn do_release(&self, fh: FileHandle) -> R<()> {
        let Some(h) = lock(&self.handles).remove(&fh.0) else {
            return Ok(());
        };
        match &*h {
            Handle::Write { local } => self.release_local(local),
            Handle::Read { pinned, .. } => match lock(pinned).take() {
                Some(l) => self.release_local(&l),
                None => Ok(()),
            },
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn do_setattr(
        &self,
        ino: INodeNo,
        mode: Option<u32>,
        size: Option<u64>,
        mtime: Option<TimeOrNow>,
        fh: Option<FileHandle>,
    ) -> R<FileAttr> {
        let path = self.path_of(ino)?;
        if let Some(Handle::Write { local }) = fh.map(|fh| self.handle(fh)).transpose()?.as_deref()
        {
            return self.change_attrs(&path, Some(local), mode, size, mtime);
        }
        let held = self.hold_local(&path);
        let r = self.change_attrs(&path, held.as_ref(), mode, size, mtime);
        self.release_held(held, r)
    }

    fn change_attrs(
        &self,
        path: &str,
        local: Option<&Arc<Local>>,
        mode: Option<u32>,
        size: Option<u64>,
        mtime: Option<TimeOrNow>,
    ) -> R<FileAttr> {
        if let Some(size) = size {
            self.writable()?;
            match local {
                Some(l) => {
                    let mut st = lock(&l.state);
                    self.cache.set_len(&l.file, size)?;
                    st.dirty = true;
                }
                None => {
                    let l = self.acquire_local(path, size == 0, None)?;
                    let r = self
                        .cache
                        .set_len(&l.file, size)
                        .map(|()| lock(&l.state).dirty = true);
                    let released = self.release_local(&l);
                    r.and(released)?;
                }
            }
        }
        let Some(l) = local else {
            self.set_stored_attrs(path, mode, mtime)?;
            return self.path_attr(path);
        };
        if let Some(mode) = mode {
            l.file
                .set_permissions(std::fs::Permissions::from_mode(mode & 0o7777))
                .map_err(|e| io_err("chmod cache file", e))?;
            lock(&l.state).dirty = true;
        }
        if let Some(t) = mtime {
            l.file
                .set_times(std::fs::FileTimes::new().set_modified(time_of(t)))
                .map_err(|e| io_err("utimens cache file", e))?;
            lock(&l.state).dirty = true;
        }
        self.path_attr(path)
    }

    /// chmod/touch of a file that is not open for writing: its stored metadata changes
    /// (directories have none to change and keep what they show).
    fn set_stored_attrs(&self, path: &str, mode: Option<u32>, mtime: Option<TimeOrNow>) -> R<()> {
        if mode.is_none() && mtime.is_none() {
            return Ok(());
        }
        let (dir, name) = split(path);
        if path.is_empty() || self.entry(dir, name)?.is_some_and(|e| e.is_dir) {
            return Ok(());
        }
        self.writable()?;
        self.block_on(self.vault.set_attrs(path, mtime.map(time_of), mode))
            .map_err(|e| eio(&format!("setattr {path:?}"), e))?;
        self.forget_meta(path);
        Ok(())
    }

    /// The extended attributes of the file or directory at `path` (`local`: its copy, if
    /// open for writing). The root and symbolic links have none.
    fn xattrs_of(&self, path: &str, local: Option<&Arc<Local>>) -> R<Xattrs> {
        let stored = match local {
            Some(l) => lock(&l.xattrs).clone(),
            None if path.is_empty() => None,
            None => {
                let (dir, name) = split(path);
                let ent = self.entry(dir, name)?.ok_or(Errno::ENOENT)?;
                if ent.is_dir {
                    return self
                        .block_on(self.vault.dir_xattrs(path))
                        .map_err(|e| eio(&format!("extended attributes of {path:?}"), e));
                } else {
                    let listed = ent.meta.clone();
                    let m = listed.map_or_else(|| self.meta(path), |m| Ok(Some(m)))?;
                    m.ok_or(Errno::ENOENT)?.xattrs
                }
            }
        };
        let meta = Meta {
            size: 0,
            mtime: None,
            mode: None,
            hash: None,
            xattrs: stored,
        };
        self.vault
            .xattrs(&meta)
            .map_err(|e| eio(&format!("extended attributes of {path:?}"), e))
    }

    /// The extended attributes of inode `ino` (also of a file unlinked while open).
    fn xattrs_of_ino(&self, ino: INodeNo) -> R<Xattrs> {
        let path = self.path_of(ino)?;
        let local = self
            .local(&path)
            .or_else(|| lock(&self.orphans).get(&ino.0).cloned());
        self.xattrs_of(&path, local.as_ref())
    }

    /// The local copy of `path` if it is open for writing, with one more reference, so
    /// that a change made through the path is not lost to a concurrent last close; give
    /// it back with [`Inner::release_held`].
    fn hold_local(&self, path: &str) -> Option<Arc<Local>> {
        let locals = lock(&self.locals);
        let l = locals.get(path).cloned()?;
        lock(&l.state).refs += 1;
        Some(l)
    }

    /// Gives back what [`Inner::hold_local`] took (uploading what changed) after `r`.
    fn release_held<T>(&self, held: Option<Arc<Local>>, r: R<T>) -> R<T> {
        match held {
            Some(l) => {
                let released = self.release_local(&l);
                let v = r?;
                released.map(|()| v)
            }
            None => r,
        }
    }

    /// Sets (`Some`) or removes (`None`) one extended attribute. Only the `user.`
    /// namespace is kept, on regular files and directories (not the root: it has no
    /// marker object), as Linux filesystems do.
    fn do_setxattr(&self, ino: INodeNo, name: &OsStr, value: Option<&[u8]>, flags: i32) -> R<()> {
        self.writable()?;
        let name = name.to_str().ok_or(Errno::EINVAL)?;
        if !name.starts_with("user.") {
            return Err(Errno::EOPNOTSUPP);
        }
        let attr = self.handle_attr(ino, None)?;
        let path = self.path_of(ino)?;
        match attr.kind {
            FileType::RegularFile => {}
            FileType::Directory if !path.is_empty() => {}
            FileType::Symlink => return Err(Errno::EPERM),
            _ => return Err(Errno::EOPNOTSUPP),
        }
        let held = self.hold_local(&path);
        let is_dir = attr.kind == FileType::Directory;
        let r = self.change_xattr(&path, is_dir, held.as_ref(), name, value, flags);
        self.release_held(held, r)
    }

    fn change_xattr(
        &self,
        path: &str,
        is_dir: bool,
        local: Option<&Arc<Local>>,
        name: &str,
        value: Option<&[u8]>,
        flags: i32,
    ) -> R<()> {
        let mut xattrs = self.xattrs_of(path, local)?;
        match value {
            Some(v) => {
                let exists = xattrs.contains_key(name);
                if flags & libc::XATTR_CREATE != 0 && exists {
                    return Err(Errno::EEXIST);
                }
                if flags & libc::XATTR_REPLACE != 0 && !exists {
                    return Err(Errno::ENODATA);
                }
                xattrs.insert(name.to_string(), v.to_vec());
            }
            None => {
                xattrs.remove(name).ok_or(Errno::ENODATA)?;
            }
        }
        let stored = self.vault.encode_xattrs(&xattrs).map_err(|e| {
            tracing::info!("setxattr {path:?}: {e:#}");
            Errno::ENOSPC
        })?;
        match local {
            // Goes up with the content.
            Some(l) => {
                let mut st = lock(&l.state);
                *lock(&l.xattrs) = stored;
                st.dirty = true;
            }
            None if is_dir => self
                .put_marker(path, &xattrs)
                .map_err(|e| eio(&format!("setxattr {path:?}"), e))?,
            None => {
                self.block_on(self.vault.set_xattrs(path, &xattrs))
                    .map_err(|e| eio(&format!("setxattr {path:?}"), e))?;
                self.forget_meta(path);
            }
        }
        Ok(())
    }

    fn do_mkdir(&self, parent: INodeNo, name: &OsStr) -> R<FileAttr> {
        self.writable()?;
        let dir = self.path_of(parent)?;
        let path = join(&dir, name)?;
        if self.entry(&dir, split(&path).1)?.is_some() {
            return Err(Errno::EEXIST);
        }
        self.put_marker(&path, &Xattrs::new())
            .map_err(|e| eio("mkdir", e))?;
        self.set_entry(&path, Some(Ent::dir()));
        Ok(self.dir_attr(self.ino_of(&path), None))
    }

    fn do_symlink(&self, parent: INodeNo, name: &OsStr, target: &Path) -> R<FileAttr> {
        self.writable()?;
        let dir = self.path_of(parent)?;
        let path = join(&dir, name)?;
        if self.entry(&dir, split(&path).1)?.is_some() {
            return Err(Errno::EEXIST);
        }
        let target = target.as_os_str().as_encoded_bytes();
        self.block_on(self.vault.put_symlink(&path, target))
            .map_err(|e| eio(&format!("symlink {path:?}"), e))?;
        self.set_entry(&path, Some(Ent::file(SystemTime::now(), None)));
        self.path_attr(&path)
    }

    fn do_readlink(&self, ino: INodeNo) -> R<Vec<u8>> {
        let path = self.path_of(ino)?;
        let attr = self.path_attr(&path)?;
        if attr.kind != FileType::Symlink {
            return Err(Errno::EINVAL);
        }
        self.block_on(self.vault.read_range(&path, 0, attr.size))
            .map_err(|e| eio(&format!("readlink {path:?}"), e))
    }

    fn do_rmdir(&self, parent: INodeNo, name: &OsStr) -> R<()> {
        self.writable()?;
        let dir = self.path_of(parent)?;
        let path = join(&dir, name)?;
        match self.entry(&dir, split(&path).1)? {
            None => return Err(Errno::ENOENT),
            Some(e) if !e.is_dir => return Err(Errno::ENOTDIR),
            Some(_) => {}
        }
        if !self.is_empty_dir(&path)? {
            return Err(Errno::ENOTEMPTY);
        }
        self.delete_marker(&path).map_err(|e| eio("rmdir", e))?;
        self.set_entry(&path, None);
        self.drop_listings(&path);
        Ok(())
    }

    fn do_unlink(&self, parent: INodeNo, name: &OsStr) -> R<()> {
        self.writable()?;
        let dir = self.path_of(parent)?;
        let path = join(&dir, name)?;
        match self.entry(&dir, split(&path).1)? {
            None => return Err(Errno::ENOENT),
            Some(e) if e.is_dir => return Err(Errno::EISDIR),
            Some(_) => {}
        }
        let ino = self.ino_of(&path);
        self.pin_readers(&path)?;
        let open = lock(&self.locals).remove(&path);
        if let Some(l) = open {
            lock(&l.state).unlinked = true;
            lock(&self.orphans).insert(ino, l);
        }
        self.block_on(self.vault.delete(&path))
            .map_err(|e| eio("unlink", e))?;
        self.set_entry(&path, None);
        Ok(())
    }

    /// Before `path` is unlinked or renamed over: every handle reading it gets a local
    /// copy to go on reading from (one copy, a reference per handle).
    fn pin_readers(&self, path: &str) -> R<()> {
        let readers: Vec<Arc<Handle>> = lock(&self.handles)
            .values()
            .filter(|h| matches!(&***h, Handle::Read { path: p, pinned, .. } if *lock(p) == path && lock(pinned).is_none()))
            .cloned()
            .collect();
        if readers.is_empty() {
            return Ok(());
        }
        let local = self.acquire_local(path, false, None)?;
        lock(&local.state).refs += readers.len() - 1;
        for h in readers {
            if let Handle::Read { pinned, .. } = &*h {
                *lock(pinned) = Some(local.clone());
            }
        }
        Ok(())
    }

    /// Read handles of `from` (a file, or a directory's files) follow it to `to`.
    fn move_readers(&self, from: &str, to: &str) {
        let below = format!("{from}/");
        let handles: Vec<Arc<Handle>> = lock(&self.handles).values().cloned().collect();
        for h in handles {
            if let Handle::Read { path, remote, .. } = &*h {
                let mut p = lock(path);
                if *p == from || p.starts_with(&below) {
                    *p = format!("{to}{}", &p[from.len()..]);
                    lock(remote).reset();
                }
            }
        }
    }

    fn do_rename(
        &self,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
    ) -> R<()> {
        self.writable()?;
        if flags.contains(RenameFlags::RENAME_EXCHANGE)
            || flags.contains(RenameFlags::RENAME_WHITEOUT)
        {
            return Err(Errno::EINVAL);
        }
        let (dir, newdir) = (self.path_of(parent)?, self.path_of(newparent)?);
        let (from, to) = (join(&dir, name)?, join(&newdir, newname)?);
        if from == to {
            return Ok(());
        }
        let src = self.entry(&dir, split(&from).1)?.ok_or(Errno::ENOENT)?;
        let dst = self.entry(&newdir, split(&to).1)?;
        if dst.is_some() && flags.contains(RenameFlags::RENAME_NOREPLACE) {
            return Err(Errno::EEXIST);
        }
        if !src.is_dir {
            if dst.as_ref().is_some_and(|d| d.is_dir) {
                return Err(Errno::EISDIR);
            }
            // Pending writes go up first, so the copy has them.
            let open = self.local(&from);
            if let Some(l) = &open {
                self.upload_local(l)?;
            }
            // Whoever reads the replaced file goes on reading it, as at unlink.
            if dst.is_some() {
                self.pin_readers(&to)?;
            }
            self.move_file(&from, &to).map_err(|e| eio("rename", e))?;
            self.move_readers(&from, &to);
            // A file open for writing under the replaced name loses it, as at unlink:
            // its handles go on, and its close must not upload it over the new file.
            if let Some(old) = self.local(&to) {
                if !open.as_ref().is_some_and(|l| Arc::ptr_eq(l, &old)) {
                    lock(&self.locals).remove(&to);
                    lock(&old.state).unlinked = true;
                    lock(&self.orphans).insert(self.ino_of(&to), old);
                }
            }
            // A file still open goes on under its new name.
            if let Some(l) = open {
                let mut locals = lock(&self.locals);
                locals.remove(&from);
                *lock(&l.path) = to.clone();
                locals.insert(to.clone(), l);
            }
            self.set_entry(&from, None);
            self.set_entry(&to, Some(src));
            self.move_inodes(&from, &to);
            return Ok(());
        }
        if to.starts_with(&format!("{from}/")) {
            return Err(Errno::EINVAL);
        }
        if let Some(d) = &dst {
            if !d.is_dir {
                return Err(Errno::ENOTDIR);
            }
            if !self.is_empty_dir(&to)? {
                return Err(Errno::ENOTEMPTY);
            }
        }
        let below = format!("{from}/");
        if lock(&self.locals).keys().any(|p| p.starts_with(&below)) {
            return Err(Errno::EBUSY);
        }
        self.move_dir(&from, &to).map_err(|e| eio("rename", e))?;
        self.move_readers(&from, &to);
        self.set_entry(&from, None);
        self.set_entry(&to, Some(src));
        self.drop_listings(&from);
        self.drop_listings(&to);
        self.move_inodes(&from, &to);
        Ok(())
    }
}

/// Percent-encodes an object key for `x-amz-copy-source` (slashes kept).
impl VaultFs {
    fn shared(&self) -> std::sync::RwLockReadGuard<'_, ()> {
        self.inner.tree.read().unwrap_or_else(|e| e.into_inner())
    }
}

impl Filesystem for VaultFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        // O_TRUNC reaches open(), so a truncating open does not download the file first.
        // READDIRPLUS gives `ls -l` the attributes with the names (from the listing), not a
        // LOOKUP per entry; the kernel asks for it when lookups follow readdir.
        let _ = config.add_capabilities(
            InitFlags::FUSE_ATOMIC_O_TRUNC
                | InitFlags::FUSE_DO_READDIRPLUS
                | InitFlags::FUSE_READDIRPLUS_AUTO,
        );
        Ok(())
    }

    fn destroy(&mut self) {
        if let Err(e) = self.flusher().flush_all() {
            tracing::error!("flush at unmount: {e:#}");
        }
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let r = guard("lookup", || {
            let _t = self.shared();
            self.inner.do_lookup(parent, name)
        });
        match r {
            Ok(a) => reply.entry(&self.inner.ttl(), &a, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        let r = guard("getattr", || {
            let _t = self.shared();
            self.inner.handle_attr(ino, fh)
        });
        match r {
            Ok(a) => reply.attr(&self.inner.ttl(), &a),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let r = guard("setattr", || {
            let _t = self.shared();
            self.inner.do_setattr(ino, mode, size, mtime, fh)
        });
        match r {
            Ok(a) => reply.attr(&self.inner.ttl(), &a),
            Err(e) => reply.error(e),
        }
    }

    fn mkdir(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        _mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        let r = guard("mkdir", || {
            let _t = self.shared();
            self.inner.do_mkdir(parent, name)
        });
        match r {
            Ok(a) => reply.entry(&self.inner.ttl(), &a, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn symlink(
        &self,
        _req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let r = guard("symlink", || {
            let _t = self.shared();
            self.inner.do_symlink(parent, link_name, target)
        });
        match r {
            Ok(a) => reply.entry(&self.inner.ttl(), &a, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: fuser::ReplyData) {
        let r = guard("readlink", || {
            let _t = self.shared();
            self.inner.do_readlink(ino)
        });
        match r {
            Ok(target) => reply.data(&target),
            Err(e) => reply.error(e),
        }
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let r = guard("unlink", || {
            let _t = self.shared();
            self.inner.do_unlink(parent, name)
        });
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let r = guard("rmdir", || {
            let _t = self.shared();
            self.inner.do_rmdir(parent, name)
        });
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let r = guard("rename", || {
            let _t = self.inner.tree.write().unwrap_or_else(|e| e.into_inner());
            self.inner
                .do_rename(parent, name, newparent, newname, flags)
        });
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let r = guard("open", || {
            let _t = self.shared();
            self.inner.do_open(ino, flags)
        });
        match r {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let r = guard("read", || {
            let _t = self.shared();
            self.inner.do_read(fh, offset, size)
        });
        match r {
            Ok(d) => reply.data(&d),
            Err(e) => reply.error(e),
        }
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let r = guard("write", || {
            let _t = self.shared();
            self.inner.do_write(fh, offset, data)
        });
        match r {
            Ok(n) => reply.written(n),
            Err(e) => reply.error(e),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        let r = guard("flush", || {
            let _t = self.shared();
            self.inner.do_flush(fh)
        });
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        let r = guard("release", || {
            let _t = self.shared();
            self.inner.do_release(fh)
        });
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let r = guard("fsync", || {
            let _t = self.shared();
            self.inner.do_flush(fh)
        });
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    /// S3 has no capacity to ask for: like rclone, report a petabyte, all of it free,
    /// so `df` and space checks of copying tools see room rather than a full disk.
    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: fuser::ReplyStatfs) {
        const BLOCK: u32 = 4096;
        const BLOCKS: u64 = (1 << 50) / BLOCK as u64;
        const FILES: u64 = 1 << 32;
        reply.statfs(BLOCKS, BLOCKS, BLOCKS, FILES, FILES, BLOCK, 255, BLOCK);
    }

    fn getxattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        name: &OsStr,
        size: u32,
        reply: fuser::ReplyXattr,
    ) {
        let r = guard("getxattr", || {
            let _t = self.shared();
            let mut xattrs = self.inner.xattrs_of_ino(ino)?;
            let name = name.to_str().ok_or(Errno::ENODATA)?;
            xattrs.remove(name).ok_or(Errno::ENODATA)
        });
        reply_xattr(r, size, reply);
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: fuser::ReplyXattr) {
        let r = guard("listxattr", || {
            let _t = self.shared();
            let xattrs = self.inner.xattrs_of_ino(ino)?;
            let mut names = Vec::new();
            for n in xattrs.keys() {
                names.extend_from_slice(n.as_bytes());
                names.push(0);
            }
            Ok(names)
        });
        reply_xattr(r, size, reply);
    }

    fn setxattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        let r = guard("setxattr", || {
            let _t = self.shared();
            self.inner.do_setxattr(ino, name, Some(value), flags)
        });
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn removexattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let r = guard("removexattr", || {
            let _t = self.shared();
            self.inner.do_setxattr(ino, name, None, 0)
        });
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn access(&self, _req: &Request, ino: INodeNo, mask: fuser::AccessFlags, reply: ReplyEmpty) {
        let r = guard("access", || {
            self.inner.path_of(ino)?;
            if mask.contains(fuser::AccessFlags::W_OK) {
                self.inner.writable()?;
            }
            Ok(())
        });
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let r = guard("opendir", || {
            let _t = self.shared();
            self.inner.do_opendir(ino)
        });
        match r {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let entries = lock(&self.inner.dir_handles).get(&fh.0).cloned();
        let Some(entries) = entries else {
            return reply.error(Errno::EBADF);
        };
        for (i, (ino, kind, name)) in entries.iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(*ino), (i + 1) as u64, *kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn readdirplus(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        let entries = lock(&self.inner.dir_handles).get(&fh.0).cloned();
        let Some(entries) = entries else {
            return reply.error(Errno::EBADF);
        };
        let ttl = self.inner.ttl();
        for (i, (child, _, name)) in entries.iter().enumerate().skip(offset as usize) {
            let attr = guard("readdirplus", || {
                let _t = self.shared();
                match name.as_str() {
                    "." | ".." => self.inner.handle_attr(INodeNo(*child), None),
                    _ => self.inner.do_lookup(ino, OsStr::new(name)),
                }
            });
            // Gone since opendir: left out, as a listing made now would.
            let Ok(attr) = attr else { continue };
            if reply.add(
                INodeNo(*child),
                (i + 1) as u64,
                name,
                &ttl,
                &attr,
                Generation(0),
            ) {
                break;
            }
        }
        reply.ok();
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        lock(&self.inner.dir_handles).remove(&fh.0);
        reply.ok();
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        let r = guard("create", || {
            let _t = self.shared();
            self.inner.do_create(parent, name, mode, umask)
        });
        match r {
            Ok((a, fh)) => reply.created(
                &self.inner.ttl(),
                &a,
                Generation(0),
                FileHandle(fh),
                FopenFlags::empty(),
            ),
            Err(e) => reply.error(e),
        }
    }
}

/// getxattr/listxattr's answer: the size asked with 0, else the bytes if they fit.
fn reply_xattr(r: R<Vec<u8>>, size: u32, reply: fuser::ReplyXattr) {
    match r {
        Ok(v) if size == 0 => reply.size(v.len() as u32),
        Ok(v) if v.len() > size as usize => reply.error(Errno::ERANGE),
        Ok(v) => reply.data(&v),
        Err(e) => reply.error(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_join_and_split() {
        assert_eq!(join("", OsStr::new("a")).unwrap(), "a");
        assert_eq!(join("a/b", OsStr::new("c")).unwrap(), "a/b/c");
        assert_eq!(join("a", OsStr::new("x/y")), Err(Errno::EINVAL));
        assert_eq!(split("a/b/c"), ("a/b", "c"));
        assert_eq!(split("c"), ("", "c"));
    }

    #[test]
    fn panics_become_eio() {
        let r: R<()> = guard("test", || panic!("boom"));
        assert_eq!(r, Err(Errno::EIO));
    }
}

//! The filesystem core: every operation of the mount as a plain method over a [`Store`]
//! that answers a value or an errno. It knows no kernel: the FUSE adapter calls it, and
//! so do the unit tests, over an in-memory store. Its state: the inode table, the
//! directory cache, the local copies of files open for writing, and the open handles.

use crate::budget::Budget;
use crate::caller::{check, Asked, Caller, Owned};
use crate::dircache::{DirCache, Ent};
use crate::dirs::DirTimes;
use crate::errno::{errno, io_errno};
use crate::inodes::{Inodes, ROOT};
use crate::names::{child, join, split, within};
use crate::read::Remote;
use crate::sealed::CacheKey;
use crate::store::{Store, UploadAttrs};
use crate::warm::Warm;
use crate::writeback::{Local, New};
use crate::{lock, MountOptions, R};
use fuser::{Errno, FileAttr, FileHandle, FileType, INodeNo, OpenAccMode, OpenFlags, TimeOrNow};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use vault::attrs::AttrChange;

/// An open file.
pub(crate) enum Handle<S: Store> {
    Read {
        /// The file's path (renames move it).
        path: Mutex<String>,
        remote: Mutex<Remote<S>>,
        /// A local copy taken when the file was unlinked while open here, read from
        /// then on (POSIX: the data lives until the last close).
        pinned: Mutex<Option<Arc<Local>>>,
    },
    Write {
        local: Arc<Local>,
    },
}

/// A directory's entries as of `opendir`: inode, type, name.
pub(crate) type DirSnapshot = Vec<(u64, FileType, String)>;

pub(crate) struct Core<S: Store> {
    pub store: Arc<S>,
    pub rt: tokio::runtime::Runtime,
    pub opts: MountOptions,
    pub uid: u32,
    pub gid: u32,
    pub started: SystemTime,
    /// When each directory's entries last changed through the mount ([`crate::dirs`]).
    pub dir_times: DirTimes,
    /// The root's attributes as set through the mount (`None`: the defaults).
    pub root_meta: Mutex<Option<vault::vault::Meta>>,
    /// Held shared by every operation and exclusively by renames (by the adapter), so a
    /// directory is never seen half-moved through the mount.
    pub tree: RwLock<()>,
    pub inodes: Mutex<Inodes>,
    pub cache: DirCache,
    /// Local copies of the files open for writing, by path.
    pub locals: Mutex<HashMap<String, Arc<Local>>>,
    /// Local copies unlinked while open, by inode: fstat (which the kernel sends by
    /// inode alone) still answers for them until the last handle closes.
    pub orphans: Mutex<HashMap<u64, Arc<Local>>>,
    handles: Mutex<HashMap<u64, Arc<Handle<S>>>>,
    dir_handles: Mutex<HashMap<u64, Arc<DirSnapshot>>>,
    next_fh: AtomicU64,
    pub next_cache: AtomicU64,
    pub budget: Budget,
    /// The learned prefetch and the read cache; `None` with `--prefetch off`.
    pub warm: Option<Arc<Warm>>,
    /// The key that seals the local copies of an encrypted store's files: random, this
    /// mount's only ([`crate::sealed`]). `None`: the copies are plain.
    pub seal: Option<Arc<CacheKey>>,
}

/// What setattr asks to change; `None`: left as it is.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SetAttrs {
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    pub atime: Option<TimeOrNow>,
    pub mtime: Option<TimeOrNow>,
}

impl SetAttrs {
    /// The change as the permission rules see it.
    fn asked(&self) -> Asked {
        let times = [self.atime, self.mtime];
        Asked {
            uid: self.uid,
            gid: self.gid,
            mode: self.mode,
            times_given: times
                .iter()
                .any(|t| matches!(t, Some(TimeOrNow::SpecificTime(_)))),
            times_now: times.iter().any(|t| matches!(t, Some(TimeOrNow::Now))),
        }
    }
}

/// A file's owner and times as the mount shows them.
pub(crate) struct Stamp {
    pub uid: u32,
    pub gid: u32,
    pub mtime: SystemTime,
    pub atime: SystemTime,
    pub ctime: SystemTime,
}

fn time_of(t: TimeOrNow) -> SystemTime {
    match t {
        TimeOrNow::SpecificTime(t) => t,
        TimeOrNow::Now => SystemTime::now(),
    }
}

impl<S: Store> Core<S> {
    /// The core over `store`; its cache directory must exist.
    pub(crate) fn new(store: S, opts: MountOptions) -> std::io::Result<Core<S>> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .enable_all()
            .build()?;
        let seal = match store.encrypted() {
            true => Some(Arc::new(CacheKey::random()?)),
            false => None,
        };
        let warm = opts
            .learn
            .then(|| Arc::new(Warm::new(crate::warm::bound(opts.cache_size))));
        Ok(Core {
            seal,
            warm,
            budget: Budget::new(opts.cache_dir.clone(), opts.cache_size),
            cache: DirCache::new(opts.cache_ttl),
            store: Arc::new(store),
            rt,
            opts,
            // SAFETY: geteuid and getegid cannot fail and touch no memory.
            uid: unsafe { libc::geteuid() },
            // SAFETY: as above.
            gid: unsafe { libc::getegid() },
            started: SystemTime::now(),
            dir_times: DirTimes::default(),
            root_meta: Mutex::default(),
            tree: RwLock::new(()),
            inodes: Mutex::new(Inodes::new()),
            locals: Mutex::default(),
            orphans: Mutex::default(),
            handles: Mutex::default(),
            dir_handles: Mutex::default(),
            next_fh: AtomicU64::new(1),
            next_cache: AtomicU64::new(1),
        })
    }

    pub(crate) fn ttl(&self) -> Duration {
        self.opts.cache_ttl
    }

    pub(crate) fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    pub(crate) fn writable(&self) -> R<()> {
        if self.opts.read_only {
            Err(Errno::EROFS)
        } else {
            Ok(())
        }
    }

    /// The directory and path of a new entry `name` of `parent`, on a writable mount;
    /// EEXIST when the name is taken.
    pub(crate) fn new_entry(&self, parent: INodeNo, name: &OsStr) -> R<(String, String)> {
        self.writable()?;
        let dir = self.path_of(parent)?;
        let path = join(&dir, name)?;
        if self.entry(&dir, split(&path).1)?.is_some() {
            return Err(Errno::EEXIST);
        }
        Ok((dir, path))
    }

    pub(crate) fn path_of(&self, ino: INodeNo) -> R<String> {
        lock(&self.inodes)
            .path(ino.0)
            .map(str::to_string)
            .ok_or(Errno::ENOENT)
    }

    pub(crate) fn ino_of(&self, path: &str) -> u64 {
        lock(&self.inodes).ino(path)
    }

    fn new_fh(&self) -> u64 {
        self.next_fh.fetch_add(1, Ordering::Relaxed)
    }

    fn add_handle(&self, h: Handle<S>) -> u64 {
        let fh = self.new_fh();
        lock(&self.handles).insert(fh, Arc::new(h));
        fh
    }

    pub(crate) fn handle(&self, fh: FileHandle) -> R<Arc<Handle<S>>> {
        lock(&self.handles).get(&fh.0).cloned().ok_or(Errno::EBADF)
    }

    pub(crate) fn all_handles(&self) -> Vec<Arc<Handle<S>>> {
        lock(&self.handles).values().cloned().collect()
    }

    // ---- attributes ----

    /// The owner a file shows: as stored on a mount shared with other users (the
    /// mount's user for files stored without one), else the mount's user.
    pub(crate) fn shown_owner(&self, uid: Option<u32>, gid: Option<u32>) -> (u32, u32) {
        match self.opts.allow_other {
            true => (uid.unwrap_or(self.uid), gid.unwrap_or(self.gid)),
            false => (self.uid, self.gid),
        }
    }

    fn file_attr(&self, ino: u64, kind: FileType, size: u64, perm: u16, st: Stamp) -> FileAttr {
        FileAttr {
            ino: INodeNo(ino),
            size,
            blocks: size.div_ceil(512),
            atime: st.atime,
            mtime: st.mtime,
            ctime: st.ctime,
            crtime: st.mtime,
            kind,
            perm,
            nlink: 1,
            uid: st.uid,
            gid: st.gid,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        }
    }

    fn attr(&self, path: &str, ent: &Ent) -> R<FileAttr> {
        let ino = self.ino_of(path);
        if ent.is_dir {
            return self.dir_attr(ino, path);
        }
        if let Some(l) = self.local(path) {
            return self.local_attr(ino, &l);
        }
        let Some(m) = self.listed_meta(path, ent)? else {
            // Listed but gone since.
            self.cache.set(path, None);
            return Err(Errno::ENOENT);
        };
        let mtime = m.mtime.or(ent.stored).unwrap_or(UNIX_EPOCH);
        let perm = m.mode.map(|m| (m & 0o7777) as u16).unwrap_or(0o644);
        let kind = crate::special::file_type(m.mode);
        let (uid, gid) = self.shown_owner(m.uid, m.gid);
        let st = Stamp {
            uid,
            gid,
            mtime,
            atime: m.atime.unwrap_or(mtime),
            ctime: m.ctime.unwrap_or(mtime),
        };
        // All names of a hard-linked file are one inode.
        let ino = match &m.link {
            Some(id) => lock(&self.inodes).linked(path, id),
            None => ino,
        };
        Ok(FileAttr {
            nlink: m.nlink(),
            rdev: crate::special::shown_rdev(&m),
            ..self.file_attr(ino, kind, m.size, perm, st)
        })
    }

    fn local_attr(&self, ino: u64, l: &Local) -> R<FileAttr> {
        let md = l.metadata()?;
        let (uid, gid) = *lock(&l.owner);
        let (uid, gid) = self.shown_owner(Some(uid), Some(gid));
        let mtime = md.modified().unwrap_or(UNIX_EPOCH);
        let at = |secs: i64, nanos: i64| {
            UNIX_EPOCH + Duration::new(secs.max(0) as u64, nanos.clamp(0, 999_999_999) as u32)
        };
        let st = Stamp {
            uid,
            gid,
            mtime,
            atime: md.accessed().unwrap_or(mtime),
            ctime: at(md.ctime(), md.ctime_nsec()),
        };
        let mut attr = self.file_attr(
            ino,
            FileType::RegularFile,
            l.len()?,
            (md.mode() & 0o7777) as u16,
            st,
        );
        if lock(&l.state).unlinked {
            attr.nlink = 0; // fstat of a file unlinked while open, as POSIX has it
        } else {
            attr.nlink = self.open_nlink(l);
        }
        Ok(attr)
    }

    /// getattr, also of a file unlinked while open (its local copy answers).
    pub(crate) fn handle_attr(&self, ino: INodeNo, fh: Option<FileHandle>) -> R<FileAttr> {
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

    pub(crate) fn path_attr(&self, path: &str) -> R<FileAttr> {
        if path.is_empty() {
            return self.dir_attr(ROOT, path);
        }
        let (dir, name) = split(path);
        let ent = self.entry(dir, name)?.ok_or(Errno::ENOENT)?;
        self.attr(path, &ent)
    }

    pub(crate) fn is_empty_dir(&self, path: &str) -> R<bool> {
        if lock(&self.locals)
            .keys()
            .any(|p| p != path && within(p, path))
        {
            return Ok(false);
        }
        let listed = self
            .block_on(self.store.list(path))
            .map_err(|e| errno(&format!("listing {path:?}"), e))?;
        Ok(listed.iter().all(|e| e.path == path))
    }

    // ---- operations ----

    pub(crate) fn do_lookup(&self, parent: INodeNo, name: &OsStr) -> R<FileAttr> {
        let dir = self.path_of(parent)?;
        let path = join(&dir, name)?;
        let ent = self.entry(&dir, split(&path).1)?.ok_or(Errno::ENOENT)?;
        self.attr(&path, &ent)
    }

    /// access(2): the inode exists, and writing is asked only of a writable mount.
    pub(crate) fn do_access(&self, ino: INodeNo, write: bool) -> R<()> {
        self.path_of(ino)?;
        if write {
            self.writable()?;
        }
        Ok(())
    }

    pub(crate) fn do_opendir(&self, ino: INodeNo) -> R<u64> {
        let dir = self.path_of(ino)?;
        self.refresh(&dir)?;
        let mut out = vec![
            (ino.0, FileType::Directory, ".".to_string()),
            (ROOT, FileType::Directory, "..".to_string()),
        ];
        let mut names = self.cache.kinds(&dir);
        for p in lock(&self.locals).keys() {
            let (d, n) = split(p);
            if d == dir {
                names.insert(n.to_string(), FileType::RegularFile);
            }
        }
        let links = self.cache.links(&dir);
        for (name, kind) in names {
            let path = child(&dir, &name);
            out.push((self.listed_ino(&path, links.get(&name)), kind, name));
        }
        let fh = self.new_fh();
        lock(&self.dir_handles).insert(fh, Arc::new(out));
        Ok(fh)
    }

    /// The entries of an open directory.
    pub(crate) fn dir_entries(&self, fh: FileHandle) -> R<Arc<DirSnapshot>> {
        lock(&self.dir_handles)
            .get(&fh.0)
            .cloned()
            .ok_or(Errno::EBADF)
    }

    pub(crate) fn do_releasedir(&self, fh: FileHandle) {
        lock(&self.dir_handles).remove(&fh.0);
    }

    pub(crate) fn do_open(&self, ino: INodeNo, flags: OpenFlags) -> R<u64> {
        let path = self.path_of(ino)?;
        if path.is_empty() {
            return Err(Errno::EISDIR);
        }
        if flags.acc_mode() == OpenAccMode::O_RDONLY {
            let seen = self.warm_open(&path);
            return Ok(self.add_handle(Handle::Read {
                path: Mutex::new(path),
                remote: Mutex::new(Remote::new(seen)),
                pinned: Mutex::new(None),
            }));
        }
        self.writable()?;
        let truncate = flags.0 & libc::O_TRUNC != 0;
        let local = self.acquire_local(&path, truncate, None)?;
        Ok(self.add_handle(Handle::Write { local }))
    }

    pub(crate) fn do_create(
        &self,
        caller: &Caller,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
    ) -> R<(FileAttr, u64)> {
        self.writable()?;
        let dir = self.path_of(parent)?;
        let path = join(&dir, name)?;
        if self.entry(&dir, split(&path).1)?.is_some_and(|e| e.is_dir) {
            return Err(Errno::EISDIR);
        }
        let (uid, gid, _) = self.new_owner(caller, &dir)?;
        let new = New {
            mode: mode & !umask & 0o7777,
            uid,
            gid,
        };
        let local = self.acquire_local(&path, true, Some(new))?;
        self.touch_dir(&dir);
        let fh = self.add_handle(Handle::Write { local });
        let attr = self.path_attr(&path)?;
        Ok((attr, fh))
    }

    pub(crate) fn do_write(&self, fh: FileHandle, offset: u64, data: &[u8]) -> R<u32> {
        match &*self.handle(fh)? {
            Handle::Write { local } => {
                local.change(|f| self.budget.write_at(f, data, offset))?;
                Ok(data.len() as u32)
            }
            Handle::Read { .. } => Err(Errno::EBADF),
        }
    }

    /// flush (every close) and fsync: a file written through `fh` goes up now.
    pub(crate) fn do_flush(&self, fh: FileHandle) -> R<()> {
        match &*self.handle(fh)? {
            Handle::Write { local } => self.upload_local(local),
            Handle::Read { .. } => Ok(()),
        }
    }

    pub(crate) fn do_release(&self, fh: FileHandle) -> R<()> {
        let Some(h) = lock(&self.handles).remove(&fh.0) else {
            return Ok(());
        };
        match &*h {
            Handle::Write { local } => self.release_local(local),
            Handle::Read {
                pinned,
                path,
                remote,
            } => {
                self.warm_release(&lock(path), &lock(remote).seen);
                match lock(pinned).take() {
                    Some(l) => self.release_local(&l),
                    None => Ok(()),
                }
            }
        }
    }

    /// setattr by `caller`: on a mount shared with other users, under Linux's rules for
    /// who may change what ([`crate::caller`]).
    pub(crate) fn do_setattr(
        &self,
        caller: &Caller,
        ino: INodeNo,
        mut set: SetAttrs,
        fh: Option<FileHandle>,
    ) -> R<FileAttr> {
        let path = self.path_of(ino)?;
        if self.opts.allow_other {
            let now = self.handle_attr(ino, fh)?;
            let owned = Owned {
                uid: now.uid,
                gid: now.gid,
                mode: u32::from(now.perm),
                is_dir: now.kind == FileType::Directory,
            };
            if let Some(mode) = check(caller, owned, &set.asked())? {
                set.mode = Some(mode);
            }
        }
        if let Some(Handle::Write { local }) = fh.map(|fh| self.handle(fh)).transpose()?.as_deref()
        {
            return self.change_attrs(&path, Some(local), set);
        }
        let held = self.hold_local(&path);
        let r = self.change_attrs(&path, held.as_ref(), set);
        self.release_held(held, r)
    }

    fn change_attrs(&self, path: &str, local: Option<&Arc<Local>>, set: SetAttrs) -> R<FileAttr> {
        if let Some(size) = set.size {
            self.writable()?;
            match local {
                Some(l) => l.change(|f| self.budget.set_len(f, size))?,
                None => {
                    let l = self.acquire_local(path, size == 0, None)?;
                    let r = l.change(|f| self.budget.set_len(f, size));
                    let released = self.release_local(&l);
                    r.and(released)?;
                }
            }
        }
        let Some(l) = local else {
            let change = AttrChange {
                mtime: set.mtime.map(time_of),
                atime: set.atime.map(time_of),
                mode: set.mode,
                uid: set.uid,
                gid: set.gid,
            };
            self.set_stored_attrs(path, &change)?;
            return self.path_attr(path);
        };
        if set.uid.is_some() || set.gid.is_some() {
            l.change(|_| {
                let mut owner = lock(&l.owner);
                *owner = (set.uid.unwrap_or(owner.0), set.gid.unwrap_or(owner.1));
                Ok(())
            })?;
        }
        if let Some(mode) = set.mode {
            l.change(|f| {
                f.file()
                    .set_permissions(std::fs::Permissions::from_mode(mode & 0o7777))
                    .map_err(|e| io_errno("chmod cache file", &e))
            })?;
        }
        if set.mtime.is_some() || set.atime.is_some() {
            let mut times = std::fs::FileTimes::new();
            if let Some(t) = set.mtime {
                times = times.set_modified(time_of(t));
            }
            if let Some(t) = set.atime {
                times = times.set_accessed(time_of(t));
            }
            l.change(|f| {
                f.file()
                    .set_times(times)
                    .map_err(|e| io_errno("utimens cache file", &e))
            })?;
        }
        self.path_attr(path)
    }

    /// chmod/chown/touch of a file that is not open for writing, or of a directory: its
    /// stored metadata changes.
    fn set_stored_attrs(&self, path: &str, change: &AttrChange) -> R<()> {
        if *change == AttrChange::default() {
            return Ok(());
        }
        let (dir, name) = split(path);
        if path.is_empty() || self.entry(dir, name)?.is_some_and(|e| e.is_dir) {
            self.writable()?;
            return self.set_dir_attrs(path, change);
        }
        self.writable()?;
        self.block_on(self.store.set_attrs(path, change))
            .map_err(|e| errno(&format!("setattr {path:?}"), e))?;
        self.file_changed(path);
        Ok(())
    }

    /// symlink(2) by `caller`, who owns the link (with a set-group-ID directory's group).
    pub(crate) fn do_symlink(
        &self,
        caller: &Caller,
        parent: INodeNo,
        name: &OsStr,
        target: &Path,
    ) -> R<FileAttr> {
        let (dir, path) = self.new_entry(parent, name)?;
        let (uid, gid, _) = self.new_owner(caller, &dir)?;
        let attrs = UploadAttrs {
            mode: 0o120777,
            mtime: SystemTime::now(),
            uid: Some(uid),
            gid: Some(gid),
            xattrs: None,
            atime: None,
        };
        let target = target.as_os_str().as_encoded_bytes();
        self.block_on(self.store.put_symlink(&path, target, &attrs))
            .map_err(|e| errno(&format!("symlink {path:?}"), e))?;
        self.cache
            .set(&path, Some(Ent::file(SystemTime::now(), None)));
        self.touch_dir(&dir);
        self.path_attr(&path)
    }

    pub(crate) fn do_readlink(&self, ino: INodeNo) -> R<Vec<u8>> {
        let path = self.path_of(ino)?;
        let attr = self.path_attr(&path)?;
        if attr.kind != FileType::Symlink {
            return Err(Errno::EINVAL);
        }
        self.block_on(self.store.read_range(&path, 0, attr.size))
            .map_err(|e| errno(&format!("readlink {path:?}"), e))
    }

    pub(crate) fn do_rmdir(&self, parent: INodeNo, name: &OsStr) -> R<()> {
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
        self.block_on(self.store.delete_marker(&path))
            .map_err(|e| errno("rmdir", e))?;
        self.cache.set(&path, None);
        self.cache.forget_tree(&path);
        self.touch_dir(&dir);
        Ok(())
    }

    pub(crate) fn do_unlink(&self, parent: INodeNo, name: &OsStr) -> R<()> {
        self.writable()?;
        let dir = self.path_of(parent)?;
        let path = join(&dir, name)?;
        let ent = match self.entry(&dir, split(&path).1)? {
            None => return Err(Errno::ENOENT),
            Some(e) if e.is_dir => return Err(Errno::EISDIR),
            Some(e) => e,
        };
        let ino = self.ino_of(&path);
        self.pin_readers(&path)?;
        let open = lock(&self.locals).remove(&path);
        if let Some(l) = open {
            self.orphan(ino, l);
        }
        self.remove_name(&path, &ent)?;
        self.cache.set(&path, None);
        self.touch_dir(&dir);
        Ok(())
    }
}

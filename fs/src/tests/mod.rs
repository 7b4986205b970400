//! Unit tests of the filesystem core over the in-memory store, without a kernel mount:
//! each test drives the core's operations as the adapter would for one syscall.

mod attrs;
mod dirs;
mod files;
mod links;
mod model;
mod open;
mod owners;
mod prefetch;
mod races;
mod special;
mod tree;

use crate::caller::Caller;
use crate::filesystem::{Core, SetAttrs};
use crate::inodes::ROOT;
use crate::store::memory::Memory;
use crate::{MountOptions, R};
use fuser::{Errno, FileAttr, FileHandle, INodeNo, OpenFlags, RenameFlags};
use std::ffi::OsStr;
use std::time::Duration;

/// A core over a memory store, with its cache directory.
pub(crate) struct Fx {
    pub core: Core<Memory>,
    pub dir: tempfile::TempDir,
}

/// How a fixture's mount is set up.
pub(crate) struct Setup {
    pub store: Memory,
    pub ttl: Duration,
    pub read_only: bool,
    pub allow_other: bool,
    pub cache_size: Option<u64>,
    pub learn: bool,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            store: Memory::new(),
            ttl: Duration::from_secs(60),
            read_only: false,
            allow_other: false,
            cache_size: None,
            learn: true,
        }
    }
}

impl Setup {
    pub(crate) fn build(self) -> Fx {
        let dir = tempfile::tempdir().unwrap();
        let opts = MountOptions {
            read_only: self.read_only,
            allow_other: self.allow_other,
            cache_ttl: self.ttl,
            cache_dir: dir.path().to_path_buf(),
            fs_name: "cybs3:test".into(),
            cache_size: self.cache_size,
            learn: self.learn,
        };
        Fx {
            core: Core::new(self.store, opts).unwrap(),
            dir,
        }
    }
}

pub(crate) fn fx() -> Fx {
    Setup::default().build()
}

fn name(path: &str) -> &OsStr {
    OsStr::new(crate::names::split(path).1)
}

impl Fx {
    pub(crate) fn store(&self) -> &Memory {
        &self.core.store
    }

    /// The inode of `path`, looked up name by name as the kernel does.
    pub(crate) fn ino(&self, path: &str) -> R<INodeNo> {
        let mut ino = INodeNo(ROOT);
        for n in path.split('/').filter(|n| !n.is_empty()) {
            ino = self.core.do_lookup(ino, OsStr::new(n))?.ino;
        }
        Ok(ino)
    }

    pub(crate) fn parent(&self, path: &str) -> R<INodeNo> {
        self.ino(crate::names::split(path).0)
    }

    pub(crate) fn lookup(&self, path: &str) -> R<FileAttr> {
        self.core.do_lookup(self.parent(path)?, name(path))
    }

    /// creat(2) with mode 0666 under umask 022.
    pub(crate) fn create(&self, path: &str) -> R<FileHandle> {
        self.create_as(&self.me(), path)
    }

    /// creat(2) by `caller`.
    pub(crate) fn create_as(&self, caller: &Caller, path: &str) -> R<FileHandle> {
        let (_, fh) = self
            .core
            .do_create(caller, self.parent(path)?, name(path), 0o666, 0o022)?;
        Ok(FileHandle(fh))
    }

    pub(crate) fn open(&self, path: &str, flags: i32) -> R<FileHandle> {
        Ok(FileHandle(
            self.core.do_open(self.ino(path)?, OpenFlags(flags))?,
        ))
    }

    pub(crate) fn write(&self, fh: FileHandle, offset: u64, data: &[u8]) -> R<u32> {
        self.core.do_write(fh, offset, data)
    }

    pub(crate) fn read(&self, fh: FileHandle, offset: u64, size: u32) -> R<Vec<u8>> {
        self.core.do_read(fh, offset, size).map(|b| b.to_vec())
    }

    /// close(2): FLUSH then RELEASE; the caller sees the flush's answer, as from the
    /// kernel, and the release's when the flush worked.
    pub(crate) fn close(&self, fh: FileHandle) -> R<()> {
        let flushed = self.core.do_flush(fh);
        let released = self.core.do_release(fh);
        flushed.and(released)
    }

    /// Writes a whole file through the mount.
    pub(crate) fn put(&self, path: &str, data: &[u8]) -> R<()> {
        let fh = self.create(path)?;
        self.write(fh, 0, data)?;
        self.close(fh)
    }

    /// Reads a whole file (up to 1 MiB) through the mount.
    pub(crate) fn get(&self, path: &str) -> R<Vec<u8>> {
        let fh = self.open(path, libc::O_RDONLY)?;
        let data = self.read(fh, 0, 1 << 20);
        self.close(fh)?;
        data
    }

    /// mkdir(2) with mode 0777 under umask 022.
    pub(crate) fn mkdir(&self, path: &str) -> R<FileAttr> {
        self.mkdir_as(&self.me(), path, 0o777)
    }

    /// mkdir(2) by `caller` with `mode` under umask 022.
    pub(crate) fn mkdir_as(&self, caller: &Caller, path: &str, mode: u32) -> R<FileAttr> {
        self.core
            .do_mkdir(caller, self.parent(path)?, name(path), mode, 0o022)
    }

    pub(crate) fn rmdir(&self, path: &str) -> R<()> {
        self.core.do_rmdir(self.parent(path)?, name(path))
    }

    pub(crate) fn unlink(&self, path: &str) -> R<()> {
        self.core.do_unlink(self.parent(path)?, name(path))
    }

    pub(crate) fn rename_with(&self, from: &str, to: &str, flags: RenameFlags) -> R<()> {
        let (p, np) = (self.parent(from)?, self.parent(to)?);
        self.core.do_rename(p, name(from), np, name(to), flags)
    }

    pub(crate) fn rename(&self, from: &str, to: &str) -> R<()> {
        self.rename_with(from, to, RenameFlags::empty())
    }

    /// truncate(2) by path.
    pub(crate) fn truncate(&self, path: &str, size: u64) -> R<FileAttr> {
        self.setattr(self.ino(path)?, self::size(size), None)
    }

    /// The mount's own user, as the kernel names it in a request.
    pub(crate) fn me(&self) -> Caller {
        Caller::with_groups(self.core.uid, self.core.gid, &[])
    }

    /// setattr by the mount's own user.
    pub(crate) fn setattr(
        &self,
        ino: INodeNo,
        set: SetAttrs,
        fh: Option<FileHandle>,
    ) -> R<FileAttr> {
        self.core.do_setattr(&self.me(), ino, set, fh)
    }

    /// The names `readdir` shows in `dir` (without `.` and `..`).
    pub(crate) fn names(&self, dir: &str) -> R<Vec<String>> {
        let fh = FileHandle(self.core.do_opendir(self.ino(dir)?)?);
        let names = self
            .core
            .dir_entries(fh)?
            .iter()
            .skip(2)
            .map(|e| e.2.clone())
            .collect();
        self.core.do_releasedir(fh);
        Ok(names)
    }

    /// Local copies held (open for writing). None of them has a name in the cache
    /// directory, which holds only what failed to upload.
    pub(crate) fn cached_files(&self) -> usize {
        assert_eq!(
            crate::tests::files_in(self.dir.path()),
            crate::tests::files_in(&self.dir.path().join(crate::writeback::UNSAVED)),
            "only unsaved copies have names"
        );
        crate::lock(&self.core.locals).len()
    }
}

/// The regular files under `dir`, recursively (none if it does not exist).
pub(crate) fn files_in(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_type().unwrap().is_dir() {
            out.extend(files_in(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

/// The errno of a result, for asserting on failures of any value type.
pub(crate) fn err<T: std::fmt::Debug>(r: R<T>) -> Errno {
    r.expect_err("an error was expected")
}

/// A setattr of the size alone.
pub(crate) fn size(n: u64) -> SetAttrs {
    SetAttrs {
        size: Some(n),
        ..SetAttrs::default()
    }
}

/// A setattr of the mode alone.
pub(crate) fn mode(m: u32) -> SetAttrs {
    SetAttrs {
        mode: Some(m),
        ..SetAttrs::default()
    }
}

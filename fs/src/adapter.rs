//! The FUSE adapter: each fuser call runs the core's operation under the tree lock and
//! `catch_unwind`, and answers with its value or errno. Nothing else happens here.

use crate::caller::Caller;
use crate::filesystem::{Core, SetAttrs};
use crate::R;
use fuser::{
    Errno, FileHandle, Filesystem, FopenFlags, Generation, INodeNo, InitFlags, KernelConfig,
    LockOwner, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory,
    ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyWrite, Request, TimeOrNow,
    WriteFlags,
};
use std::ffi::OsStr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::{Arc, RwLockReadGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use vault::vault::Vault;

/// The filesystem handed to fuser; [`VaultFs::flusher`] gives a handle for flushing
/// from outside (signal handler) while it is mounted.
pub struct VaultFs {
    pub(crate) core: Arc<Core<Vault>>,
}

/// Who sent `req`.
fn caller(req: &Request) -> Caller {
    Caller::new(req.uid(), req.gid(), req.pid())
}

/// A time from setattr as the kernel sent it. fuser 0.18 turns the kernel's
/// `(seconds, nanoseconds)` before the epoch, e.g. `(-2, 0.25 s)` for 1.75 s before,
/// into 2.25 s before (`time::system_time_from_time` adds the nanoseconds to the
/// distance from the epoch); this undoes that.
fn as_sent(t: TimeOrNow) -> TimeOrNow {
    let TimeOrNow::SpecificTime(at) = t else {
        return t;
    };
    match UNIX_EPOCH.duration_since(at) {
        Ok(d) if d.subsec_nanos() != 0 => {
            let secs = Duration::from_secs(d.as_secs());
            let nanos = Duration::from_nanos(u64::from(d.subsec_nanos()));
            TimeOrNow::SpecificTime(UNIX_EPOCH - secs + nanos)
        }
        _ => t,
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

impl VaultFs {
    /// The tree lock, shared: every operation but rename holds it.
    fn shared(&self) -> RwLockReadGuard<'_, ()> {
        self.core.tree.read().unwrap_or_else(|e| e.into_inner())
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
            self.core.do_lookup(parent, name)
        });
        match r {
            Ok(a) => reply.entry(&self.core.ttl(), &a, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        let r = guard("getattr", || {
            let _t = self.shared();
            self.core.handle_attr(ino, fh)
        });
        match r {
            Ok(a) => reply.attr(&self.core.ttl(), &a),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
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
            let set = SetAttrs {
                mode,
                uid,
                gid,
                size,
                atime: atime.map(as_sent),
                mtime: mtime.map(as_sent),
            };
            self.core.do_setattr(&caller(req), ino, set, fh)
        });
        match r {
            Ok(a) => reply.attr(&self.core.ttl(), &a),
            Err(e) => reply.error(e),
        }
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let r = guard("mkdir", || {
            let _t = self.shared();
            self.core.do_mkdir(&caller(req), parent, name, mode, umask)
        });
        match r {
            Ok(a) => reply.entry(&self.core.ttl(), &a, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        let r = guard("mknod", || {
            let _t = self.shared();
            self.core
                .do_mknod(&caller(req), parent, name, mode, umask, rdev)
        });
        match r {
            Ok(a) => reply.entry(&self.core.ttl(), &a, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let r = guard("symlink", || {
            let _t = self.shared();
            self.core
                .do_symlink(&caller(req), parent, link_name, target)
        });
        match r {
            Ok(a) => reply.entry(&self.core.ttl(), &a, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: fuser::ReplyData) {
        let r = guard("readlink", || {
            let _t = self.shared();
            self.core.do_readlink(ino)
        });
        match r {
            Ok(target) => reply.data(&target),
            Err(e) => reply.error(e),
        }
    }

    fn link(
        &self,
        _req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        // Exclusive, as a rename: a file's objects change together.
        let r = guard("link", || {
            let _t = self.core.tree.write().unwrap_or_else(|e| e.into_inner());
            self.core.do_link(ino, newparent, newname)
        });
        match r {
            Ok(a) => reply.entry(&self.core.ttl(), &a, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let r = guard("unlink", || {
            let _t = self.shared();
            self.core.do_unlink(parent, name)
        });
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let r = guard("rmdir", || {
            let _t = self.shared();
            self.core.do_rmdir(parent, name)
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
            let _t = self.core.tree.write().unwrap_or_else(|e| e.into_inner());
            self.core.do_rename(parent, name, newparent, newname, flags)
        });
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let r = guard("open", || {
            let _t = self.shared();
            self.core.do_open(ino, flags)
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
            self.core.do_read(fh, offset, size)
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
            self.core.do_write(fh, offset, data)
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
            self.core.do_flush(fh)
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
            self.core.do_release(fh)
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
            self.core.do_flush(fh)
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
            self.core.do_getxattr(ino, name)
        });
        reply_xattr(r, size, reply);
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: fuser::ReplyXattr) {
        let r = guard("listxattr", || {
            let _t = self.shared();
            self.core.do_listxattr(ino)
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
            self.core.do_setxattr(ino, name, Some(value), flags)
        });
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn removexattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let r = guard("removexattr", || {
            let _t = self.shared();
            self.core.do_setxattr(ino, name, None, 0)
        });
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn access(&self, _req: &Request, ino: INodeNo, mask: fuser::AccessFlags, reply: ReplyEmpty) {
        let r = guard("access", || {
            self.core
                .do_access(ino, mask.contains(fuser::AccessFlags::W_OK))
        });
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let r = guard("opendir", || {
            let _t = self.shared();
            self.core.do_opendir(ino)
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
        let entries = match self.core.dir_entries(fh) {
            Ok(entries) => entries,
            Err(e) => return reply.error(e),
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
        let entries = match self.core.dir_entries(fh) {
            Ok(entries) => entries,
            Err(e) => return reply.error(e),
        };
        let ttl = self.core.ttl();
        for (i, (child, _, name)) in entries.iter().enumerate().skip(offset as usize) {
            let attr = guard("readdirplus", || {
                let _t = self.shared();
                match name.as_str() {
                    "." | ".." => self.core.handle_attr(INodeNo(*child), None),
                    _ => self.core.do_lookup(ino, OsStr::new(name)),
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
        self.core.do_releasedir(fh);
        reply.ok();
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        let r = guard("create", || {
            let _t = self.shared();
            self.core.do_create(&caller(req), parent, name, mode, umask)
        });
        match r {
            Ok((a, fh)) => reply.created(
                &self.core.ttl(),
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
    fn panics_become_eio() {
        let r: R<()> = guard("test", || panic!("boom"));
        assert_eq!(r, Err(Errno::EIO));
    }

    #[test]
    fn times_before_the_epoch_are_taken_as_the_kernel_sent_them() {
        // The kernel's (-2 s, +0.25 s), as fuser hands it over: 2.25 s before.
        let handed = UNIX_EPOCH - Duration::new(2, 250_000_000);
        let meant = UNIX_EPOCH - Duration::from_millis(1750);
        assert_eq!(
            as_sent(TimeOrNow::SpecificTime(handed)),
            TimeOrNow::SpecificTime(meant)
        );
        let whole = UNIX_EPOCH - Duration::from_secs(2);
        assert_eq!(
            as_sent(TimeOrNow::SpecificTime(whole)),
            TimeOrNow::SpecificTime(whole)
        );
        let after = UNIX_EPOCH + Duration::new(2, 5);
        assert_eq!(
            as_sent(TimeOrNow::SpecificTime(after)),
            TimeOrNow::SpecificTime(after)
        );
    }
}

//! Special files through the mount: FIFOs, character and block devices and Unix
//! sockets, made by `mknod(2)` (`mkfifo`, `mknod`, a socket's `bind`). Each is stored
//! as an empty object whose metadata holds its mode (kind and permissions), owner,
//! mtime and, for a device, its number (`rdev`). Nothing else of them reaches the
//! mount: the kernel opens them itself (a FIFO's pipe, a device's driver), so FUSE never
//! sees their reads and writes. chmod, chown, touch, rename and unlink treat them as
//! any stored file, keeping the kind and the number.

use crate::caller::Caller;
use crate::errno::errno;
use crate::filesystem::Core;
use crate::store::{Store, UploadAttrs};
use crate::R;
use fuser::{Errno, FileAttr, FileType, INodeNo};
use std::ffi::OsStr;
use std::time::SystemTime;
use vault::attrs::Kind;
use vault::vault::Meta;

/// The type the kernel is told a stored file is, by its stored mode. An object whose
/// mode says directory (as other tools have stored some) is served as the file it is:
/// directories are prefixes and markers, never one object.
pub(crate) fn file_type(mode: Option<u32>) -> FileType {
    match Kind::of(mode) {
        Kind::File | Kind::Dir => FileType::RegularFile,
        Kind::Symlink => FileType::Symlink,
        Kind::Fifo => FileType::NamedPipe,
        Kind::CharDevice => FileType::CharDevice,
        Kind::BlockDevice => FileType::BlockDevice,
        Kind::Socket => FileType::Socket,
    }
}

/// The device number the kernel is shown: the stored `st_rdev`, whose low 32 bits are
/// the kernel's own encoding of it (majors below 4096, all Linux has); a number that
/// does not fit (stored elsewhere) shows as none rather than as another device.
pub(crate) fn shown_rdev(m: &Meta) -> u32 {
    m.rdev.and_then(|r| u32::try_from(r).ok()).unwrap_or(0)
}

impl<S: Store> Core<S> {
    /// mknod(2) by `caller`: a FIFO, device, socket or empty regular file named `name`
    /// in `parent`, owned by the caller, with `mode`'s permissions less `umask`. Who may
    /// make a device is the kernel's to decide (it needs CAP_MKNOD) before asking here.
    pub(crate) fn do_mknod(
        &self,
        caller: &Caller,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        rdev: u32,
    ) -> R<FileAttr> {
        // mknod(2) makes no directories or links (mkdir and symlink do).
        let kind = Kind::of(Some(mode));
        if !kind.is_special() && kind != Kind::File {
            return Err(Errno::EINVAL);
        }
        let (dir, path) = self.new_entry(parent, name)?;
        // A mode of no kind is a regular file's, as mknod(2) has it.
        let kind_bits = match kind {
            Kind::File => libc::S_IFREG,
            _ => mode & libc::S_IFMT,
        };
        let (uid, gid, _) = self.new_owner(caller, &dir)?;
        let now = SystemTime::now();
        let attrs = UploadAttrs {
            mode: kind_bits | (mode & !umask & 0o7777),
            mtime: now,
            uid: Some(uid),
            gid: Some(gid),
            xattrs: None,
            atime: None,
        };
        self.block_on(self.store.put_node(&path, &attrs, u64::from(rdev)))
            .map_err(|e| errno(&format!("mknod {path:?}"), e))?;
        self.cache
            .set(&path, Some(crate::dircache::Ent::file(now, None)));
        self.touch_dir(&dir);
        self.path_attr(&path)
    }
}

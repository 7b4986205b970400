//! Extended attributes: only the `user.` namespace, on regular files and directories
//! (not the root: it has no marker object), as Linux filesystems do; and one read-only
//! attribute of the server's, a file's storage class ([`CLASS_XATTR`]). A file's own travel in
//! its object's metadata (with the content when it is open for writing), a directory's
//! on its marker object; symbolic links have none.

use crate::errno::errno;
use crate::filesystem::Core;
use crate::names::split;
use crate::store::Store;
use crate::writeback::Local;
use crate::{lock, R};
use fuser::{Errno, FileType, INodeNo};
use std::ffi::OsStr;
use std::sync::Arc;
use vault::attrs::Xattrs;

/// A file's S3 storage class (STANDARD, or a class `cybs3 admin tier add` bound), read
/// with `getfattr -n user.cybs3.storage_class FILE`. Read-only, and left out of
/// listxattr so that copies of the file (`cp -a`, `rsync -X`) do not try to set it.
pub(crate) const CLASS_XATTR: &str = "user.cybs3.storage_class";

impl<S: Store> Core<S> {
    /// The extended attributes of the file or directory at `path` (`local`: its copy, if
    /// open for writing). The root and symbolic links have none.
    fn xattrs_of(&self, path: &str, local: Option<&Arc<Local>>) -> R<Xattrs> {
        let what = || format!("extended attributes of {path:?}");
        let stored = match local {
            Some(l) => lock(&l.xattrs).clone(),
            None if path.is_empty() => None,
            None => {
                let (dir, name) = split(path);
                let ent = self.entry(dir, name)?.ok_or(Errno::ENOENT)?;
                match ent.is_dir {
                    true => self.dir_meta(path)?.and_then(|m| m.xattrs),
                    false => self.listed_meta(path, &ent)?.ok_or(Errno::ENOENT)?.xattrs,
                }
            }
        };
        self.store
            .decode_xattrs(stored.as_deref())
            .map_err(|e| errno(&what(), e))
    }

    /// The extended attributes of inode `ino` (also of a file unlinked while open).
    fn xattrs_of_ino(&self, ino: INodeNo) -> R<Xattrs> {
        let path = self.path_of(ino)?;
        let local = self
            .local(&path)
            .or_else(|| lock(&self.orphans).get(&ino.0).cloned());
        self.xattrs_of(&path, local.as_ref())
    }

    /// The value of attribute `name`, or ENODATA.
    pub(crate) fn do_getxattr(&self, ino: INodeNo, name: &OsStr) -> R<Vec<u8>> {
        let name = name.to_str().ok_or(Errno::ENODATA)?;
        if name == CLASS_XATTR {
            return self.storage_class(ino);
        }
        let mut xattrs = self.xattrs_of_ino(ino)?;
        xattrs.remove(name).ok_or(Errno::ENODATA)
    }

    /// The [`CLASS_XATTR`] of inode `ino`: ENODATA for directories, and for a file not
    /// stored yet.
    fn storage_class(&self, ino: INodeNo) -> R<Vec<u8>> {
        let path = self.path_of(ino)?;
        let (dir, name) = split(&path);
        let ent = self.entry(dir, name)?.ok_or(Errno::ENODATA)?;
        if ent.is_dir {
            return Err(Errno::ENODATA);
        }
        let meta = self.listed_meta(&path, &ent)?.ok_or(Errno::ENODATA)?;
        let class = meta.class.as_deref().unwrap_or("STANDARD");
        Ok(class.as_bytes().to_vec())
    }

    /// The attributes' names, each ended by a NUL, as listxattr(2) returns them.
    pub(crate) fn do_listxattr(&self, ino: INodeNo) -> R<Vec<u8>> {
        let xattrs = self.xattrs_of_ino(ino)?;
        let mut names = Vec::new();
        for n in xattrs.keys() {
            names.extend_from_slice(n.as_bytes());
            names.push(0);
        }
        Ok(names)
    }

    /// Sets (`Some`) or removes (`None`) one extended attribute.
    pub(crate) fn do_setxattr(
        &self,
        ino: INodeNo,
        name: &OsStr,
        value: Option<&[u8]>,
        flags: i32,
    ) -> R<()> {
        self.writable()?;
        let name = name.to_str().ok_or(Errno::EINVAL)?;
        if !name.starts_with("user.") {
            return Err(Errno::EOPNOTSUPP);
        }
        if name == CLASS_XATTR {
            return Err(Errno::EPERM);
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
        // Too big for the object's metadata: what a full xattr block says on Linux.
        let stored = self.store.encode_xattrs(&xattrs).map_err(|e| {
            tracing::info!("setxattr {path:?}: {e}");
            Errno::ENOSPC
        })?;
        let what = || format!("setxattr {path:?}");
        match local {
            // Goes up with the content.
            Some(l) => l.change(|_| {
                *lock(&l.xattrs) = stored;
                Ok(())
            })?,
            None if is_dir => self.change_marker(path, |a| a.xattrs = stored)?,
            None => {
                self.block_on(self.store.set_xattrs(path, &xattrs))
                    .map_err(|e| errno(&what(), e))?;
                self.file_changed(path);
            }
        }
        Ok(())
    }
}

//! Directories' own attributes. A directory's mode, owner, times and extended
//! attributes live on its marker object (`dir/`), stored anew with each change (it is
//! empty, so that is one small PUT); its ctime is the marker's Last-Modified. A
//! directory without a marker (made by another S3 client) shows 0755, the mount's user,
//! and the mount's start as its times. So does the vault's root, which has no key of its
//! own to keep a marker under: a chmod or chown of the mount point holds until unmount.
//!
//! POSIX also has a directory's mtime and ctime move when an entry is added or removed.
//! Storing that would cost a PUT of the parent's marker with every file created, so the
//! mount keeps it in memory ([`DirTimes`]): what it shows is right for everything done
//! through it, and a fresh mount shows the stored times again.
//!
//! New entries get the caller's uid and, in a set-group-ID directory, the directory's
//! group (new directories inherit the bit too), as Linux does.

use crate::caller::Caller;
use crate::errno::errno;
use crate::filesystem::Core;
use crate::store::{Store, UploadAttrs};
use crate::{lock, R};
use fuser::{FileAttr, FileType, INodeNo};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::sync::Mutex;
use std::time::SystemTime;
use vault::attrs::AttrChange;
use vault::vault::Meta;

/// `S_IFDIR`, the kind bits of a directory's stored mode.
const DIRECTORY: u32 = 0o040000;
/// The set-group-ID bit: on a directory, new entries take its group.
const SET_GID: u32 = 0o2000;
/// What a directory without a stored mode shows.
const DEFAULT_PERM: u32 = 0o755;
/// How many directories' entry-change times are kept; beyond, the oldest goes (its
/// directory shows its stored times again).
const DIR_TIMES_MAX: usize = 4096;

/// When each directory's entries last changed through this mount.
#[derive(Default)]
pub(crate) struct DirTimes(Mutex<HashMap<String, SystemTime>>);

impl DirTimes {
    fn touch(&self, dir: &str) {
        let mut times = lock(&self.0);
        if times.len() >= DIR_TIMES_MAX && !times.contains_key(dir) {
            if let Some(oldest) = times
                .iter()
                .min_by_key(|(_, t)| **t)
                .map(|(d, _)| d.clone())
            {
                times.remove(&oldest);
            }
        }
        times.insert(dir.to_string(), SystemTime::now());
    }

    fn get(&self, dir: &str) -> Option<SystemTime> {
        lock(&self.0).get(dir).copied()
    }

    /// Forgets `dir`: its times were set explicitly, or it is gone.
    fn forget(&self, dir: &str) {
        lock(&self.0).remove(dir);
    }
}

/// The marker a directory with stored attributes `meta` (`None`: no marker) gets when
/// it is stored anew: what it had, with defaults for what it lacked.
fn marker_attrs(meta: Option<&Meta>) -> UploadAttrs {
    let perm = meta.and_then(|m| m.mode).unwrap_or(DEFAULT_PERM) & 0o7777;
    UploadAttrs {
        mode: DIRECTORY | perm,
        mtime: meta.and_then(|m| m.mtime).unwrap_or_else(SystemTime::now),
        uid: meta.and_then(|m| m.uid),
        gid: meta.and_then(|m| m.gid),
        xattrs: meta.and_then(|m| m.xattrs.clone()),
        atime: meta.and_then(|m| m.atime),
    }
}

impl<S: Store> Core<S> {
    /// A directory's attributes (`path` "" is the root, which has no marker).
    pub(crate) fn dir_attr(&self, ino: u64, path: &str) -> R<FileAttr> {
        let meta = match path.is_empty() {
            true => lock(&self.root_meta).clone(),
            false => self.dir_meta(path)?,
        };
        let m = meta.as_ref();
        let stored_mtime = m.and_then(|m| m.mtime).unwrap_or(self.started);
        let stored_ctime = m.and_then(|m| m.ctime).unwrap_or(stored_mtime);
        let (mtime, ctime) = match self.dir_times.get(path) {
            Some(t) => (t.max(stored_mtime), t.max(stored_ctime)),
            None => (stored_mtime, stored_ctime),
        };
        let perm = m.and_then(|m| m.mode).unwrap_or(DEFAULT_PERM) & 0o7777;
        let (uid, gid) = self.shown_owner(m.and_then(|m| m.uid), m.and_then(|m| m.gid));
        Ok(FileAttr {
            ino: INodeNo(ino),
            size: 0,
            blocks: 0,
            atime: m.and_then(|m| m.atime).unwrap_or(mtime),
            mtime,
            ctime,
            crtime: stored_mtime,
            kind: FileType::Directory,
            perm: perm as u16,
            nlink: 2,
            uid,
            gid,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        })
    }

    /// Records that an entry of `dir` was added or removed: its mtime and ctime move.
    pub(crate) fn touch_dir(&self, dir: &str) {
        self.dir_times.touch(dir);
    }

    /// The owner of a new entry of `dir` made by `caller`, and whether `dir` is
    /// set-group-ID (a new directory inherits the bit). Only a mount shared with other
    /// users shows owners, so only there is the parent looked at.
    pub(crate) fn new_owner(&self, caller: &Caller, dir: &str) -> R<(u32, u32, bool)> {
        if !self.opts.allow_other || dir.is_empty() {
            return Ok((caller.uid, caller.gid, false));
        }
        let parent = self.dir_attr(self.ino_of(dir), dir)?;
        match u32::from(parent.perm) & SET_GID != 0 {
            true => Ok((caller.uid, parent.gid, true)),
            false => Ok((caller.uid, caller.gid, false)),
        }
    }

    /// mkdir(2): a marker with the caller's owner and `mode` after the umask (the set-ID
    /// bits dropped, as Linux does, but set-group-ID inherited).
    pub(crate) fn do_mkdir(
        &self,
        caller: &Caller,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
    ) -> R<FileAttr> {
        let (dir, path) = self.new_entry(parent, name)?;
        let (uid, gid, setgid) = self.new_owner(caller, &dir)?;
        let mut perm = mode & !umask & 0o1777;
        if setgid {
            perm |= SET_GID;
        }
        let attrs = UploadAttrs {
            mode: DIRECTORY | perm,
            uid: Some(uid),
            gid: Some(gid),
            ..marker_attrs(None)
        };
        self.block_on(self.store.put_marker(&path, &attrs))
            .map_err(|e| errno("mkdir", e))?;
        let stored = Meta {
            mode: Some(attrs.mode),
            mtime: Some(attrs.mtime),
            uid: attrs.uid,
            gid: attrs.gid,
            ctime: Some(SystemTime::now()),
            ..Meta::sized(0)
        };
        self.cache.set_dir(&path, stored);
        self.dir_times.forget(&path);
        self.touch_dir(&dir);
        self.dir_attr(self.ino_of(&path), &path)
    }

    /// Stores directory `path`'s marker anew with `change` made to its attributes, read
    /// fresh from the store so that no other change is undone.
    pub(crate) fn change_marker(&self, path: &str, change: impl FnOnce(&mut UploadAttrs)) -> R<()> {
        self.writable()?;
        let what = || format!("attributes of directory {path:?}");
        let meta = self
            .block_on(self.store.dir_meta(path))
            .map_err(|e| errno(&what(), e))?;
        let mut attrs = marker_attrs(meta.as_ref());
        change(&mut attrs);
        self.block_on(self.store.put_marker(path, &attrs))
            .map_err(|e| errno(&what(), e))?;
        self.cache.forget_meta(path);
        Ok(())
    }

    /// chmod/chown/touch of a directory; of the root, for as long as the mount lasts.
    pub(crate) fn set_dir_attrs(&self, path: &str, change: &AttrChange) -> R<()> {
        let apply = |a: &mut UploadAttrs| {
            if let Some(m) = change.mode {
                a.mode = DIRECTORY | (m & 0o7777);
            }
            a.uid = change.uid.or(a.uid);
            a.gid = change.gid.or(a.gid);
            a.mtime = change.mtime.unwrap_or(a.mtime);
            a.atime = change.atime.or(a.atime);
        };
        if path.is_empty() {
            let mut root = lock(&self.root_meta);
            let mut attrs = marker_attrs(root.as_ref());
            attrs.mtime = root.as_ref().and_then(|m| m.mtime).unwrap_or(self.started);
            apply(&mut attrs);
            *root = Some(Meta {
                mode: Some(attrs.mode),
                mtime: Some(attrs.mtime),
                uid: attrs.uid,
                gid: attrs.gid,
                atime: attrs.atime,
                ctime: Some(SystemTime::now()),
                ..Meta::sized(0)
            });
            return Ok(());
        }
        self.change_marker(path, apply)?;
        if change.mtime.is_some() {
            self.dir_times.forget(path);
        }
        Ok(())
    }

    /// Moves directory `from`'s marker (its attributes) to `to`.
    pub(crate) fn move_marker(&self, from: &str, to: &str) -> crate::store::Result<()> {
        let meta = self.block_on(self.store.dir_meta(from))?;
        self.block_on(self.store.put_marker(to, &marker_attrs(meta.as_ref())))
    }
}

//! Rename: server-side copies then deletes (S3 has no rename), under the mount-wide tree
//! lock taken exclusively by the adapter, so a directory is never seen half-moved through
//! the mount. Open files follow their names: write handles upload under the new name,
//! read handles read it there; a file renamed over is kept for its handles, as at unlink.
//! A hard-linked name moves as its link record, its file's list of names updated
//! ([`crate::links`]).

use crate::errno::errno;
use crate::filesystem::Core;
use crate::names::{child, join, split, within};
use crate::store::{Result, Store};
use crate::{lock, R};
use fuser::{Errno, INodeNo, RenameFlags};
use std::ffi::OsStr;
use std::sync::Arc;
use std::time::SystemTime;

impl<S: Store> Core<S> {
    /// Server-side copy of one file (attributes kept), then the source deleted.
    fn move_file(&self, from: &str, to: &str) -> Result<()> {
        self.block_on(self.store.copy(from, to))?;
        self.block_on(self.store.delete(from))
    }

    /// Moves a directory tree, one listing per directory.
    fn move_dir(&self, from: &str, to: &str) -> Result<()> {
        let mut stack = vec![(from.to_string(), to.to_string())];
        while let Some((s, d)) = stack.pop() {
            self.move_marker(&s, &d)?;
            for e in self.block_on(self.store.list(&s))? {
                if e.path == s {
                    continue;
                }
                let target = child(&d, split(&e.path).1);
                if e.is_dir {
                    stack.push((e.path.clone(), target));
                } else {
                    self.move_file(&e.path, &target)?;
                    if let Some(m) = &e.meta {
                        self.name_moved(&e.path, &target, m)?;
                    }
                }
            }
            self.block_on(self.store.delete_marker(&s))?;
        }
        Ok(())
    }

    pub(crate) fn do_rename(
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
            let links = self.rename_links(&from, &src, &to, dst.as_ref())?;
            if links.same_file() {
                return Ok(());
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
            self.move_file(&from, &to).map_err(|e| errno("rename", e))?;
            self.renamed_links(&from, &to, links)?;
            self.move_readers(&from, &to);
            // A file open for writing under the replaced name loses it, as at unlink:
            // its handles go on, and its close must not upload it over the new file.
            if let Some(old) = self.local(&to) {
                if !open.as_ref().is_some_and(|l| Arc::ptr_eq(l, &old)) {
                    lock(&self.locals).remove(&to);
                    self.orphan(self.ino_of(&to), old);
                }
            }
            // A file still open goes on under its new name.
            if let Some(l) = open {
                let mut locals = lock(&self.locals);
                locals.remove(&from);
                *lock(&l.path) = to.clone();
                locals.insert(to.clone(), l);
            }
            // The copy under the new name is stored now: that is its ctime, as a
            // rename's is in POSIX.
            let mut moved = src;
            if let Some(m) = &mut moved.meta {
                m.ctime = Some(SystemTime::now());
            }
            self.cache.set(&from, None);
            self.cache.set(&to, Some(moved));
            lock(&self.inodes).rename(&from, &to);
            self.touch_dir(&dir);
            self.touch_dir(&newdir);
            return Ok(());
        }
        if within(&to, &from) {
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
        if lock(&self.locals).keys().any(|p| within(p, &from)) {
            return Err(Errno::EBUSY);
        }
        self.move_dir(&from, &to).map_err(|e| errno("rename", e))?;
        self.move_readers(&from, &to);
        self.cache.set(&from, None);
        self.cache.set(&to, Some(src));
        self.cache.forget_tree(&from);
        self.cache.forget_tree(&to);
        lock(&self.inodes).rename(&from, &to);
        self.touch_dir(&dir);
        self.touch_dir(&newdir);
        Ok(())
    }
}

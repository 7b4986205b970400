//! Hard links through the mount (`vault::vault` module `links` has the representation):
//! a file with one name is a plain object; `link(2)` moves its content to an inode
//! object and makes every name a link record naming it. The store follows records on
//! reads, stats and attribute changes, so the core only has to: upload a linked file's
//! content to its inode object ([`crate::writeback::Local::link`]), keep the inode's
//! list of names right on link, unlink and rename, make the last name left a plain
//! object again, and give all names one inode number ([`crate::inodes`]).
//!
//! Link, unlink and rename run under the mount-wide tree lock (link exclusively, as
//! rename), so no other operation of the mount sees a file half-linked.

use crate::dircache::Ent;
use crate::errno::errno;
use crate::filesystem::Core;
use crate::names::{join, split};
use crate::sealed::CacheFile;
use crate::store::{Error, Result, Store, UploadAttrs};
use crate::writeback::Local;
use crate::{lock, R};
use fuser::{Errno, FileAttr, INodeNo};
use std::ffi::OsStr;
use std::sync::Arc;
use std::time::SystemTime;
use vault::vault::{inode_path, is_internal, Meta};

/// What a rename of a file does to hard links: the moved name's file and the replaced
/// name's, when they have several names.
pub(crate) struct RenamedLinks {
    moved: Option<Meta>,
    replaced: Option<Meta>,
}

impl RenamedLinks {
    /// Whether both names are of one file: then rename(2) does nothing.
    pub(crate) fn same_file(&self) -> bool {
        match (&self.moved, &self.replaced) {
            (Some(a), Some(b)) => a.link == b.link,
            _ => false,
        }
    }
}

/// A fresh inode object id: 128 random bits in hex.
fn new_id() -> R<String> {
    use ring::rand::SecureRandom;
    let mut id = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut id)
        .map_err(|_| Errno::EIO)?;
    Ok(id.iter().map(|b| format!("{b:02x}")).collect())
}

impl<S: Store> Core<S> {
    /// Uploads a linked file's content to its inode object `id`, keeping its names (an
    /// upload stores the object's metadata anew).
    pub(crate) fn upload_linked(
        &self,
        from: &Arc<CacheFile>,
        id: &str,
        attrs: &UploadAttrs,
    ) -> Result<()> {
        let names = self.inode_meta(id)?.names;
        self.block_on(self.store.upload(from, &inode_path(id), attrs))?;
        self.block_on(self.store.set_link_names(id, &names))
    }

    /// The attributes of the file at `path` (listed as `ent`) when it has several names.
    pub(crate) fn linked_meta(&self, path: &str, ent: &Ent) -> R<Option<Meta>> {
        if ent.is_dir {
            return Ok(None);
        }
        Ok(self.listed_meta(path, ent)?.filter(|m| m.link.is_some()))
    }

    /// The inode object's current attributes (its names among them), fetched anew.
    fn inode_meta(&self, id: &str) -> Result<Meta> {
        let inode = inode_path(id);
        self.block_on(self.store.stat(&inode))?
            .ok_or_else(|| Error::NotFound(format!("inode object {inode:?} is gone")))
    }

    /// Forgets the cached attributes of every name in `names`, and has their readers
    /// read anew: their link count, ctime and content are the file's, which changed (and
    /// may have moved to or from its inode object).
    fn forget_names(&self, names: &[String]) {
        for n in names {
            self.cache.forget_meta(n);
            self.reset_readers(n);
        }
    }

    /// The inode number of the listed name `path`: its file's, shared with its other
    /// names, when the listing says it is a hard link (`link`, its inode object's id).
    pub(crate) fn listed_ino(&self, path: &str, link: Option<&String>) -> u64 {
        match link {
            Some(id) => lock(&self.inodes).linked(path, id),
            None => self.ino_of(path),
        }
    }

    /// The link count of a file open for writing: its names' when it has several.
    pub(crate) fn open_nlink(&self, l: &Local) -> u32 {
        if lock(&l.link).is_none() {
            return 1;
        }
        let path = lock(&l.path).clone();
        match self.meta(&path) {
            Ok(Some(m)) => m.nlink(),
            _ => 1,
        }
    }

    /// Forgets the cached attributes of the file at `path`, which changed (content,
    /// times, mode, owner, extended attributes), under all its names when it has several.
    /// Costs no request for a file whose attributes are known (listed or looked up).
    pub(crate) fn file_changed(&self, path: &str) {
        let (dir, name) = split(path);
        let names = match self.entry(dir, name) {
            Ok(Some(ent)) => self.linked_meta(path, &ent).ok().flatten(),
            _ => None,
        };
        self.cache.forget_meta(path);
        if let Some(m) = names {
            self.forget_names(&m.names);
        }
    }

    /// link(2): `newname` in `newparent` becomes another name of the file `ino`.
    pub(crate) fn do_link(&self, ino: INodeNo, newparent: INodeNo, newname: &OsStr) -> R<FileAttr> {
        self.writable()?;
        let from = self.path_of(ino)?;
        if from.is_empty() {
            return Err(Errno::EPERM);
        }
        let (dir, name) = split(&from);
        let src = self.entry(dir, name)?.ok_or(Errno::ENOENT)?;
        if src.is_dir {
            return Err(Errno::EPERM);
        }
        let newdir = self.path_of(newparent)?;
        let to = join(&newdir, newname)?;
        if self.entry(&newdir, split(&to).1)?.is_some() {
            return Err(Errno::EEXIST);
        }
        // The vault's own area takes no names of the user's.
        if is_internal(&to) {
            return Err(Errno::EPERM);
        }
        // Pending writes go up first, so the inode object has them.
        let open = self.local(&from);
        if let Some(l) = &open {
            self.upload_local(l)?;
        }
        let what = format!("link {from:?} to {to:?}");
        let failed = |e| errno(&what, e);
        let m = self
            .block_on(self.store.stat(&from))
            .map_err(failed)?
            .ok_or(Errno::ENOENT)?;
        let too_many = |e: Error| match e {
            Error::Local(io) if io.kind() == std::io::ErrorKind::InvalidInput => Errno::EMLINK,
            e => errno(&what, e),
        };
        let (id, names) = match m.link {
            Some(id) => {
                let mut names = m.names;
                if !names.contains(&from) {
                    names.push(from.clone());
                }
                names.push(to.clone());
                self.block_on(self.store.set_link_names(&id, &names))
                    .map_err(too_many)?;
                (id, names)
            }
            None => {
                // The content moves to the inode object, which gets the names, before
                // the first name becomes a record: a failure on the way leaves the file
                // readable under its name.
                let id = new_id()?;
                let names = vec![from.clone(), to.clone()];
                self.block_on(self.store.copy(&from, &inode_path(&id)))
                    .map_err(failed)?;
                self.block_on(self.store.set_link_names(&id, &names))
                    .map_err(too_many)?;
                self.block_on(self.store.put_link(&from, &id))
                    .map_err(failed)?;
                if let Some(l) = &open {
                    *lock(&l.link) = Some(id.clone());
                }
                (id, names)
            }
        };
        self.block_on(self.store.put_link(&to, &id))
            .map_err(failed)?;
        self.forget_names(&names);
        self.cache
            .set(&to, Some(Ent::file(SystemTime::now(), None)));
        lock(&self.inodes).linked(&from, &id);
        self.touch_dir(&newdir);
        self.path_attr(&to)
    }

    /// Deletes the name `path` (listed as `ent`): a plain file's object, or a link
    /// record, its file then losing the name.
    pub(crate) fn remove_name(&self, path: &str, ent: &Ent) -> R<()> {
        let linked = self.linked_meta(path, ent)?;
        self.block_on(self.store.delete(path))
            .map_err(|e| errno("unlink", e))?;
        if let Some(m) = linked {
            self.name_gone(path, &m)
                .map_err(|e| errno(&format!("unlink of {path:?}"), e))?;
        }
        Ok(())
    }

    /// The linked file `m` lost its name `path` (unlinked, or renamed over): its names
    /// are stored without it; the last one left becomes a plain object again, and with
    /// none left the inode object goes.
    fn name_gone(&self, path: &str, m: &Meta) -> Result<()> {
        let Some(id) = &m.link else {
            return Ok(());
        };
        let inode = self.inode_meta(id)?;
        let names: Vec<String> = inode.names.into_iter().filter(|n| n != path).collect();
        lock(&self.inodes).forget(path);
        self.forget_names(&names);
        match names.as_slice() {
            [] => self.block_on(self.store.delete(&inode_path(id))),
            [last] => {
                // Unless the last name was replaced behind the mount's back: then it is
                // left as it is, and so is the inode object, with its names.
                let still = self.block_on(self.store.stat(last))?;
                if still.is_none_or(|s| s.link.as_ref() != Some(id)) {
                    return self.block_on(self.store.set_link_names(id, &names));
                }
                self.block_on(self.store.unlink_last(id, last))?;
                if let Some(l) = self.local(last) {
                    *lock(&l.link) = None;
                }
                self.block_on(self.store.delete(&inode_path(id)))
            }
            _ => self.block_on(self.store.set_link_names(id, &names)),
        }
    }

    /// The linked file `m`'s name `from` is now `to` (its record was moved).
    pub(crate) fn name_moved(&self, from: &str, to: &str, m: &Meta) -> Result<()> {
        let Some(id) = &m.link else {
            return Ok(());
        };
        let inode = self.inode_meta(id)?;
        let mut names: Vec<String> = inode.names.into_iter().filter(|n| n != from).collect();
        names.push(to.to_string());
        self.forget_names(&names);
        self.block_on(self.store.set_link_names(id, &names))
    }

    /// What a rename of the file `from` (listed as `src`) over `to` (`dst`) does to
    /// hard links, found before the move.
    pub(crate) fn rename_links(
        &self,
        from: &str,
        src: &Ent,
        to: &str,
        dst: Option<&Ent>,
    ) -> R<RenamedLinks> {
        let replaced = match dst {
            Some(d) => self.linked_meta(to, d)?,
            None => None,
        };
        Ok(RenamedLinks {
            moved: self.linked_meta(from, src)?,
            replaced,
        })
    }

    /// The hard links' side of a rename of `from` over `to`, after the move.
    pub(crate) fn renamed_links(&self, from: &str, to: &str, links: RenamedLinks) -> R<()> {
        let failed = |e| errno(&format!("rename of {from:?}"), e);
        if let Some(m) = &links.replaced {
            self.name_gone(to, m).map_err(failed)?;
        }
        if let Some(m) = &links.moved {
            self.name_moved(from, to, m).map_err(failed)?;
        }
        Ok(())
    }
}

//! The directory and attribute cache: each directory's listing (one LIST) and each
//! file's stored attributes (one HEAD), trusted for the mount's TTL. Changes made
//! through the mount update it in place, so the mount sees its own writes at once.

use crate::errno::errno;
use crate::filesystem::Core;
use crate::names::{child, split, within};
use crate::store::Store;
use crate::{lock, R};
use fuser::FileType;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use vault::vault::Meta;

/// One name of a listed directory.
#[derive(Clone, Debug)]
pub(crate) struct Ent {
    pub is_dir: bool,
    pub stored: Option<SystemTime>,
    /// The file's attributes when they came with the listing (else one HEAD gets them).
    pub meta: Option<Meta>,
}

impl Ent {
    pub(crate) fn dir() -> Ent {
        Ent {
            is_dir: true,
            stored: None,
            meta: None,
        }
    }

    pub(crate) fn file(stored: SystemTime, meta: Option<Meta>) -> Ent {
        Ent {
            is_dir: false,
            stored: Some(stored),
            meta,
        }
    }

    pub(crate) fn kind(&self) -> FileType {
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

/// Listings by directory and stored attributes by file, each with when it was fetched.
pub(crate) struct DirCache {
    ttl: Duration,
    dirs: Mutex<HashMap<String, Listing>>,
    metas: Mutex<HashMap<String, (Instant, Option<Meta>)>>,
}

impl DirCache {
    pub(crate) fn new(ttl: Duration) -> DirCache {
        DirCache {
            ttl,
            dirs: Mutex::default(),
            metas: Mutex::default(),
        }
    }

    /// Whether `dir`'s listing is younger than the TTL.
    fn fresh(&self, dir: &str) -> bool {
        lock(&self.dirs)
            .get(dir)
            .is_some_and(|l| l.at.elapsed() < self.ttl)
    }

    fn put_listing(&self, dir: &str, entries: BTreeMap<String, Ent>) {
        let at = Instant::now();
        lock(&self.dirs).insert(dir.to_string(), Listing { at, entries });
    }

    fn get(&self, dir: &str, name: &str) -> Option<Ent> {
        lock(&self.dirs)
            .get(dir)
            .and_then(|l| l.entries.get(name).cloned())
    }

    /// The names of `dir`'s listing with their kinds.
    pub(crate) fn kinds(&self, dir: &str) -> BTreeMap<String, FileType> {
        lock(&self.dirs)
            .get(dir)
            .map(|l| {
                l.entries
                    .iter()
                    .map(|(n, e)| (n.clone(), e.kind()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Records that `path` now is `ent` (`None`: gone), in its parent's listing if cached.
    pub(crate) fn set(&self, path: &str, ent: Option<Ent>) {
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
    /// at them asks the store.
    pub(crate) fn forget_meta(&self, path: &str) {
        let (dir, name) = split(path);
        if let Some(e) = lock(&self.dirs)
            .get_mut(dir)
            .and_then(|l| l.entries.get_mut(name))
        {
            e.meta = None;
        }
        lock(&self.metas).remove(path);
    }

    /// Forgets cached listings and attributes of `path` and everything below it.
    pub(crate) fn forget_tree(&self, path: &str) {
        lock(&self.dirs).retain(|d, _| !within(d, path));
        lock(&self.metas).retain(|d, _| !within(d, path));
    }

    fn cached_meta(&self, path: &str) -> Option<Option<Meta>> {
        let metas = lock(&self.metas);
        let (at, m) = metas.get(path)?;
        (at.elapsed() < self.ttl).then(|| m.clone())
    }

    fn put_meta(&self, path: &str, m: Option<Meta>) {
        lock(&self.metas).insert(path.to_string(), (Instant::now(), m));
    }
}

impl<S: Store> Core<S> {
    /// Lists `dir` from the store into the cache.
    pub(crate) fn refresh(&self, dir: &str) -> R<()> {
        let listed = self
            .block_on(self.store.list(dir))
            .map_err(|e| errno(&format!("listing {dir:?}"), e))?;
        let mut entries = BTreeMap::new();
        for e in listed {
            if e.path == dir {
                continue; // `dir` is a file now, or this is its marker
            }
            let name = split(&e.path).1.to_string();
            let ent = Ent {
                is_dir: e.is_dir,
                stored: e.stored,
                meta: e.meta,
            };
            entries.insert(name, ent);
        }
        self.cache.put_listing(dir, entries);
        Ok(())
    }

    /// The entry `name` of directory `dir`: files open for writing first, then the
    /// (fresh) listing.
    pub(crate) fn entry(&self, dir: &str, name: &str) -> R<Option<Ent>> {
        if let Some(l) = self.local(&child(dir, name)) {
            let mtime = l.metadata()?.modified().unwrap_or(UNIX_EPOCH);
            return Ok(Some(Ent::file(mtime, None)));
        }
        if !self.cache.fresh(dir) {
            self.refresh(dir)?;
        }
        Ok(self.cache.get(dir, name))
    }

    /// The file's stored attributes (one HEAD per TTL).
    pub(crate) fn meta(&self, path: &str) -> R<Option<Meta>> {
        if let Some(m) = self.cache.cached_meta(path) {
            return Ok(m);
        }
        let m = self
            .block_on(self.store.stat(path))
            .map_err(|e| errno(&format!("stat {path:?}"), e))?;
        self.cache.put_meta(path, m.clone());
        Ok(m)
    }

    /// The stored attributes that came with `ent`'s listing, else from [`Core::meta`].
    pub(crate) fn listed_meta(&self, path: &str, ent: &Ent) -> R<Option<Meta>> {
        match &ent.meta {
            Some(m) => Ok(Some(m.clone())),
            None => self.meta(path),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(names: &[&str]) -> BTreeMap<String, Ent> {
        names
            .iter()
            .map(|n| (n.to_string(), Ent::file(UNIX_EPOCH, None)))
            .collect()
    }

    #[test]
    fn listings_expire_after_the_ttl() {
        let c = DirCache::new(Duration::from_millis(30));
        assert!(!c.fresh("d"));
        c.put_listing("d", listing(&["a"]));
        assert!(c.fresh("d"));
        std::thread::sleep(Duration::from_millis(40));
        assert!(!c.fresh("d"));
        assert!(
            c.get("d", "a").is_some(),
            "stale entries stay until refreshed"
        );
    }

    #[test]
    fn attributes_expire_after_the_ttl() {
        let c = DirCache::new(Duration::from_millis(30));
        c.put_meta("f", None);
        assert_eq!(c.cached_meta("f"), Some(None));
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(c.cached_meta("f"), None);
    }

    #[test]
    fn changes_land_in_the_parent_listing_and_forget_the_tree() {
        let c = DirCache::new(Duration::from_secs(60));
        c.put_listing("", listing(&["d"]));
        c.put_listing("d", listing(&["x"]));
        c.put_listing("dd", listing(&["y"]));
        c.set("n", Some(Ent::dir()));
        assert!(c.get("", "n").is_some_and(|e| e.is_dir));
        c.set("d/x", None);
        assert!(c.get("d", "x").is_none());
        c.forget_tree("d");
        assert!(!c.fresh("d"));
        assert!(c.fresh("dd"), "a sibling sharing the prefix stays");
    }
}

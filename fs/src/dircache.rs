//! The directory and attribute cache: each directory's listing (one LIST) and each
//! file's stored attributes (one HEAD), trusted for the mount's TTL. Changes made
//! through the mount update it in place, so the mount sees its own writes at once.
//!
//! A fetch can be overtaken by such a change: a LIST or HEAD answered just before a
//! close's upload arrives just after it. Put in the cache as it is, it would bring the
//! old size back, the kernel would take it, and the next `O_APPEND` write would land at
//! the old end, over what that close stored. So every fetch carries the stamp it started
//! at, the changes made while fetches are on the wire are logged with theirs, and what
//! a fetch brings is put in the cache only with every later change applied over it, or
//! not at all.

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
    /// The listed size (a file's).
    pub size: Option<u64>,
    /// The listed object's ETag: what the read cache's content must match to be served
    /// ([`crate::warm`]). `None` when unknown (changed through the mount since).
    pub etag: Option<String>,
}

impl Ent {
    pub(crate) fn dir() -> Ent {
        Ent {
            is_dir: true,
            stored: None,
            meta: None,
            size: None,
            etag: None,
        }
    }

    pub(crate) fn file(stored: SystemTime, meta: Option<Meta>) -> Ent {
        Ent {
            is_dir: false,
            stored: Some(stored),
            size: meta.as_ref().map(|m| m.size),
            meta,
            etag: None,
        }
    }

    pub(crate) fn kind(&self) -> FileType {
        if self.is_dir {
            return FileType::Directory;
        }
        crate::special::file_type(self.meta.as_ref().and_then(|m| m.mode))
    }
}

struct Listing {
    at: Instant,
    entries: BTreeMap<String, Ent>,
}

/// A change made through the mount, as a fetch on the wire may have missed it.
enum Change {
    /// The path is now this (`None`: gone).
    Set(Option<Box<Ent>>),
    /// The path's stored attributes changed.
    Meta,
    /// Anything at or below the path may have changed.
    Tree,
}

/// The changes that fetches on the wire may have missed.
#[derive(Default)]
struct Changes {
    /// The next change's stamp: a fetch started at `s` missed every change stamped `s`
    /// or later.
    next: u64,
    /// Fetches on the wire: how many started at each stamp.
    fetching: BTreeMap<u64, usize>,
    /// Changes made since the oldest fetch on the wire started, oldest first.
    log: Vec<(u64, String, Change)>,
}

impl Changes {
    /// The changes a fetch started at `at` missed.
    fn since(&self, at: u64) -> impl Iterator<Item = &(u64, String, Change)> {
        self.log.iter().filter(move |(stamp, ..)| *stamp >= at)
    }
}

/// A fetch on the wire, from [`DirCache::fetch`]; ends when dropped.
pub(crate) struct Fetch<'a> {
    cache: &'a DirCache,
    at: u64,
}

impl Drop for Fetch<'_> {
    fn drop(&mut self) {
        let mut ch = lock(&self.cache.changes);
        if let Some(n) = ch.fetching.get_mut(&self.at) {
            *n -= 1;
            if *n == 0 {
                ch.fetching.remove(&self.at);
            }
        }
        // What no fetch on the wire can have missed is forgotten.
        let oldest = ch.fetching.keys().next().copied().unwrap_or(u64::MAX);
        ch.log.retain(|(stamp, ..)| *stamp >= oldest);
    }
}

/// Listings by directory and stored attributes by file, each with when it was fetched.
pub(crate) struct DirCache {
    ttl: Duration,
    /// Locked before `dirs` and `metas` where both are held.
    changes: Mutex<Changes>,
    dirs: Mutex<HashMap<String, Listing>>,
    metas: Mutex<HashMap<String, (Instant, Option<Meta>)>>,
}

impl DirCache {
    pub(crate) fn new(ttl: Duration) -> DirCache {
        DirCache {
            ttl,
            changes: Mutex::default(),
            dirs: Mutex::default(),
            metas: Mutex::default(),
        }
    }

    /// Starts a fetch: what it brings goes in with [`DirCache::put_listing`] or
    /// [`DirCache::put_meta`].
    pub(crate) fn fetch(&self) -> Fetch<'_> {
        let mut ch = lock(&self.changes);
        let at = ch.next;
        *ch.fetching.entry(at).or_default() += 1;
        Fetch { cache: self, at }
    }

    /// Logs a change for the fetches on the wire; returns the lock, held by the caller
    /// while it changes the cache, so no fetch lands between the log and the change.
    fn log(&self, path: &str, change: Change) -> std::sync::MutexGuard<'_, Changes> {
        let mut ch = lock(&self.changes);
        if !ch.fetching.is_empty() {
            let stamp = ch.next;
            ch.next += 1;
            ch.log.push((stamp, path.to_string(), change));
        }
        ch
    }

    /// Whether `dir`'s listing is younger than the TTL.
    fn fresh(&self, dir: &str) -> bool {
        lock(&self.dirs)
            .get(dir)
            .is_some_and(|l| l.at.elapsed() < self.ttl)
    }

    /// Puts `dir`'s listing as `fetch` brought it, with the changes made since it started
    /// applied over it. A change to the whole directory (a rename, a removal) cannot be
    /// applied, so then the listing is refused (false) unless `force`d.
    fn put_listing(
        &self,
        fetch: &Fetch<'_>,
        dir: &str,
        mut entries: BTreeMap<String, Ent>,
        force: bool,
    ) -> bool {
        let ch = lock(&self.changes);
        for (_, path, change) in ch.since(fetch.at) {
            let (parent, name) = split(path);
            match change {
                Change::Tree if within(dir, path) && !force => return false,
                _ if parent != dir => {}
                Change::Set(Some(e)) => {
                    entries.insert(name.to_string(), (**e).clone());
                }
                Change::Set(None) => {
                    entries.remove(name);
                }
                Change::Meta => {
                    if let Some(e) = entries.get_mut(name) {
                        e.meta = None;
                        e.etag = None;
                    }
                }
                Change::Tree => {}
            }
        }
        let at = Instant::now();
        lock(&self.dirs).insert(dir.to_string(), Listing { at, entries });
        true
    }

    /// The entry `name` of `dir`'s cached listing, fresh or not.
    pub(crate) fn get(&self, dir: &str, name: &str) -> Option<Ent> {
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

    /// Up to `n` names of `dir`'s listing after `name`, in name order, of files alone.
    pub(crate) fn files_after(&self, dir: &str, name: &str, n: usize) -> Vec<String> {
        use std::ops::Bound::{Excluded, Unbounded};
        let dirs = lock(&self.dirs);
        let Some(l) = dirs.get(dir) else {
            return Vec::new();
        };
        l.entries
            .range::<str, _>((Excluded(name), Unbounded))
            .filter(|(_, e)| e.kind() == FileType::RegularFile)
            .take(n)
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// The names of `dir`'s listing that are hard links, with their inode objects' ids.
    pub(crate) fn links(&self, dir: &str) -> HashMap<String, String> {
        let dirs = lock(&self.dirs);
        let Some(l) = dirs.get(dir) else {
            return HashMap::new();
        };
        l.entries
            .iter()
            .filter_map(|(n, e)| Some((n.clone(), e.meta.as_ref()?.link.clone()?)))
            .collect()
    }

    /// Records that `path` now is `ent` (`None`: gone), in its parent's listing if cached.
    pub(crate) fn set(&self, path: &str, ent: Option<Ent>) {
        let _ch = self.log(path, Change::Set(ent.clone().map(Box::new)));
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

    /// Records a directory the mount just stored, with its marker's attributes: no HEAD
    /// needed to show it (a fetch on the wire meanwhile is refused, as after any change).
    pub(crate) fn set_dir(&self, path: &str, meta: Meta) {
        self.set(path, Some(Ent::dir()));
        let _ch = lock(&self.changes);
        lock(&self.metas).insert(path.to_string(), (Instant::now(), Some(meta)));
    }

    /// Forgets what is known of a file's stored attributes (they changed): the next look
    /// at them asks the store.
    pub(crate) fn forget_meta(&self, path: &str) {
        let _ch = self.log(path, Change::Meta);
        let (dir, name) = split(path);
        if let Some(e) = lock(&self.dirs)
            .get_mut(dir)
            .and_then(|l| l.entries.get_mut(name))
        {
            // Stored anew: a new ETag, which the next listing brings.
            e.meta = None;
            e.etag = None;
        }
        lock(&self.metas).remove(path);
    }

    /// Forgets cached listings and attributes of `path` and everything below it.
    pub(crate) fn forget_tree(&self, path: &str) {
        let _ch = self.log(path, Change::Tree);
        lock(&self.dirs).retain(|d, _| !within(d, path));
        lock(&self.metas).retain(|d, _| !within(d, path));
    }

    fn cached_meta(&self, path: &str) -> Option<Option<Meta>> {
        let metas = lock(&self.metas);
        let (at, m) = metas.get(path)?;
        (at.elapsed() < self.ttl).then(|| m.clone())
    }

    /// Puts `path`'s stored attributes as `fetch` brought them, unless the mount changed
    /// them since it started (false: nothing is put).
    fn put_meta(&self, fetch: &Fetch<'_>, path: &str, m: Option<Meta>) -> bool {
        let ch = lock(&self.changes);
        let missed = ch.since(fetch.at).any(|(_, p, change)| match change {
            Change::Tree => within(path, p),
            Change::Set(_) | Change::Meta => p == path,
        });
        if !missed {
            lock(&self.metas).insert(path.to_string(), (Instant::now(), m));
        }
        !missed
    }
}

/// How often a fetch overtaken by the mount's own changes is made again before its
/// answer is taken as it is (a listing) or not kept (attributes).
const FETCHES: usize = 3;

impl<S: Store> Core<S> {
    /// Lists `dir` from the store into the cache.
    pub(crate) fn refresh(&self, dir: &str) -> R<()> {
        for n in 1..=FETCHES {
            let fetch = self.cache.fetch();
            let entries = self.list_entries(dir)?;
            if self.cache.put_listing(&fetch, dir, entries, n == FETCHES) {
                break;
            }
        }
        Ok(())
    }

    /// `dir`'s entries as the store lists them.
    fn list_entries(&self, dir: &str) -> R<BTreeMap<String, Ent>> {
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
                size: (!e.is_dir).then_some(e.size),
                etag: e.etag,
            };
            entries.insert(name, ent);
        }
        Ok(entries)
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
        self.fetch_meta(path, false)
    }

    /// The attributes on a directory's marker (one HEAD per TTL; `None`: no marker).
    pub(crate) fn dir_meta(&self, path: &str) -> R<Option<Meta>> {
        self.fetch_meta(path, true)
    }

    fn fetch_meta(&self, path: &str, dir: bool) -> R<Option<Meta>> {
        if let Some(m) = self.cache.cached_meta(path) {
            return Ok(m);
        }
        let mut n = 0;
        loop {
            n += 1;
            let fetch = self.cache.fetch();
            let m = match dir {
                true => self.block_on(self.store.dir_meta(path)),
                false => self.block_on(self.store.stat(path)),
            };
            let m = m.map_err(|e| errno(&format!("stat {path:?}"), e))?;
            if self.cache.put_meta(&fetch, path, m.clone()) || n == FETCHES {
                return Ok(m);
            }
        }
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
        assert!(c.put_listing(&c.fetch(), "d", listing(&["a"]), false));
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
        assert!(c.put_meta(&c.fetch(), "f", None));
        assert_eq!(c.cached_meta("f"), Some(None));
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(c.cached_meta("f"), None);
    }

    #[test]
    fn changes_land_in_the_parent_listing_and_forget_the_tree() {
        let c = DirCache::new(Duration::from_secs(60));
        assert!(c.put_listing(&c.fetch(), "", listing(&["d"]), false));
        assert!(c.put_listing(&c.fetch(), "d", listing(&["x"]), false));
        assert!(c.put_listing(&c.fetch(), "dd", listing(&["y"]), false));
        c.set("n", Some(Ent::dir()));
        assert!(c.get("", "n").is_some_and(|e| e.is_dir));
        c.set("d/x", None);
        assert!(c.get("d", "x").is_none());
        c.forget_tree("d");
        assert!(!c.fresh("d"));
        assert!(c.fresh("dd"), "a sibling sharing the prefix stays");
    }

    #[test]
    fn a_fetch_overtaken_by_a_change_keeps_the_change() {
        let c = DirCache::new(Duration::from_secs(60));
        let old = Ent::file(UNIX_EPOCH, None);
        let new = Ent::file(UNIX_EPOCH + Duration::from_secs(1), None);
        let fetch = c.fetch();
        c.set("d/a", Some(new.clone()));
        c.set("d/gone", None);
        c.forget_meta("f");
        let fetched = BTreeMap::from([("a".to_string(), old.clone()), ("gone".into(), old)]);
        assert!(c.put_listing(&fetch, "d", fetched, false));
        assert_eq!(c.get("d", "a").unwrap().stored, new.stored);
        assert!(c.get("d", "gone").is_none());
        assert!(!c.put_meta(&fetch, "f", None), "f changed since");
        assert!(c.put_meta(&fetch, "g", None), "g did not");
        c.forget_tree("d");
        assert!(!c.put_listing(&fetch, "d", BTreeMap::new(), false));
        assert!(c.put_listing(&fetch, "d", BTreeMap::new(), true));
        drop(fetch);
        assert!(
            lock(&c.changes).log.is_empty(),
            "no fetch on the wire: nothing kept"
        );
        c.set("d/b", None);
        assert!(lock(&c.changes).log.is_empty(), "nor logged");
    }
}

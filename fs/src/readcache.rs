//! The read cache: whole files' plaintext in memory, by path, each with the ETag of the
//! object it came from, so that it is served only while the listing names that same
//! object (a changed object is a miss, never stale content). Memory alone: plaintext of
//! an encrypted vault never reaches the disk this way, and nothing is left behind.
//!
//! It holds at most its bound in bytes. What goes first when room is needed: a prefetch
//! never read (the oldest first; its guess was wrong, and [`Evicted::unread`] says so
//! to the statistics), then the file worth least by the statistics (opens decayed by
//! age, whole reads counting double: [`crate::learn::Stats::worth`]), the least recently
//! used on a tie.

use bytes::Bytes;
use std::collections::HashMap;

struct Cached {
    etag: String,
    data: Bytes,
    /// Prefetched and not read yet.
    unread: bool,
    /// When it was put or last read, in the cache's own count of uses.
    used: u64,
}

/// A file the cache let go of.
#[derive(Debug, PartialEq)]
pub(crate) struct Evicted {
    pub path: String,
    /// It was prefetched and never read.
    pub unread: bool,
}

pub(crate) struct ReadCache {
    bound: u64,
    held: u64,
    clock: u64,
    files: HashMap<String, Cached>,
}

impl ReadCache {
    pub(crate) fn new(bound: u64) -> ReadCache {
        ReadCache {
            bound,
            held: 0,
            clock: 0,
            files: HashMap::new(),
        }
    }

    pub(crate) fn bound(&self) -> u64 {
        self.bound
    }

    /// Bytes held.
    #[cfg(test)]
    pub(crate) fn held(&self) -> u64 {
        self.held
    }

    /// Bytes held by prefetches not read yet.
    pub(crate) fn unread(&self) -> u64 {
        self.files
            .values()
            .filter(|c| c.unread)
            .map(|c| c.data.len() as u64)
            .sum()
    }

    /// Whether `path` is held as the object `etag`.
    pub(crate) fn holds(&self, path: &str, etag: &str) -> bool {
        self.files.get(path).is_some_and(|c| c.etag == etag)
    }

    /// Whether `path` is held, as any object.
    #[cfg(test)]
    pub(crate) fn holds_any(&self, path: &str) -> bool {
        self.files.contains_key(path)
    }

    /// `path`'s content when held as the object `etag`. A copy of another object is
    /// dropped.
    pub(crate) fn get(&mut self, path: &str, etag: &str) -> Option<Bytes> {
        let c = self.files.get_mut(path)?;
        if c.etag != etag {
            self.remove(path);
            return None;
        }
        self.clock += 1;
        c.used = self.clock;
        c.unread = false;
        Some(c.data.clone())
    }

    /// Lets go of prefetches left unread while `age` other uses of the cache went by:
    /// their guess was wrong, and they would hold back the next prefetches.
    pub(crate) fn drop_stale(&mut self, age: u64) -> Vec<Evicted> {
        let stale: Vec<String> = self
            .files
            .iter()
            .filter(|(_, c)| c.unread && c.used + age < self.clock)
            .map(|(p, _)| p.clone())
            .collect();
        stale
            .into_iter()
            .map(|path| {
                self.remove(&path);
                Evicted { path, unread: true }
            })
            .collect()
    }

    /// Puts `path`'s content as of object `etag` (`prefetched`: not read yet), making
    /// room by the order above; `worth` tells what a held path is worth. A prefetch
    /// makes room among files read only (it would throw out its own batch otherwise),
    /// and is not kept when there is none. A file larger than the whole bound is not
    /// kept. Answers what was let go of.
    pub(crate) fn put(
        &mut self,
        path: &str,
        etag: &str,
        data: Bytes,
        prefetched: bool,
        worth: impl Fn(&str) -> f32,
    ) -> Vec<Evicted> {
        self.remove(path);
        let len = data.len() as u64;
        if len > self.bound {
            return Vec::new();
        }
        let mut out = Vec::new();
        while self.held + len > self.bound {
            let Some(victim) = self.victim(&worth, prefetched) else {
                return out;
            };
            let unread = self.files.get(&victim).is_some_and(|c| c.unread);
            self.remove(&victim);
            out.push(Evicted {
                path: victim,
                unread,
            });
        }
        self.clock += 1;
        self.held += len;
        self.files.insert(
            path.to_string(),
            Cached {
                etag: etag.to_string(),
                data,
                unread: prefetched,
                used: self.clock,
            },
        );
        out
    }

    /// Forgets `path`.
    pub(crate) fn remove(&mut self, path: &str) {
        if let Some(c) = self.files.remove(path) {
            self.held -= c.data.len() as u64;
        }
    }

    /// What goes next: an unread prefetch, oldest first (unless `read_only`), else the
    /// read file of least worth.
    fn victim(&self, worth: &impl Fn(&str) -> f32, read_only: bool) -> Option<String> {
        let unread = self
            .files
            .iter()
            .filter(|(_, c)| c.unread && !read_only)
            .min_by_key(|(_, c)| c.used);
        if let Some((p, _)) = unread {
            return Some(p.clone());
        }
        self.files
            .iter()
            .filter(|(_, c)| !c.unread)
            .map(|(p, c)| (worth(p), c.used, p))
            .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)))
            .map(|(_, _, p)| p.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(n: usize) -> Bytes {
        Bytes::from(vec![7u8; n])
    }

    #[test]
    fn a_changed_object_is_a_miss() {
        let mut c = ReadCache::new(100);
        c.put("f", "\"1\"", bytes(10), false, |_| 0.0);
        assert!(c.get("f", "\"2\"").is_none());
        assert!(c.get("f", "\"1\"").is_none(), "the old copy is gone");
        assert_eq!(c.held(), 0);
    }

    #[test]
    fn never_read_prefetches_go_first_then_the_least_worth() {
        let mut c = ReadCache::new(30);
        let worth = |p: &str| if p == "often" { 9.0 } else { 1.0 };
        c.put("often", "e", bytes(10), false, worth);
        c.put("once", "e", bytes(10), false, worth);
        c.put("guess", "e", bytes(10), true, worth);
        let out = c.put("new", "e", bytes(10), false, worth);
        assert_eq!(
            out,
            [Evicted {
                path: "guess".into(),
                unread: true
            }]
        );
        let out = c.put("new2", "e", bytes(10), false, worth);
        assert_eq!(out[0].path, "once");
        assert!(c.holds("often", "e"));
        assert_eq!(c.held(), 30);
    }

    #[test]
    fn a_prefetch_never_throws_out_another_nor_stays_unread_for_long() {
        let mut c = ReadCache::new(20);
        c.put("a", "e", bytes(10), true, |_| 0.0);
        c.put("b", "e", bytes(10), true, |_| 0.0);
        assert!(c.put("c", "e", bytes(10), true, |_| 0.0).is_empty());
        assert!(!c.holds("c", "e") && c.holds("a", "e"));
        c.get("b", "e");
        for _ in 0..5 {
            c.get("b", "e");
        }
        let stale = c.drop_stale(4);
        assert_eq!(stale.len(), 1);
        assert_eq!(stale[0].path, "a");
        assert_eq!(c.held(), 10);
    }

    #[test]
    fn a_read_prefetch_is_no_longer_unread() {
        let mut c = ReadCache::new(30);
        c.put("g", "e", bytes(10), true, |_| 0.0);
        assert_eq!(c.unread(), 10);
        assert!(c.get("g", "e").is_some());
        assert_eq!(c.unread(), 0);
        assert!(c.put("big", "e", bytes(31), false, |_| 0.0).is_empty());
        assert!(!c.holds("big", "e"), "larger than the bound: not kept");
    }
}

//! The learned prefetch (`cybs3 mount --prefetch learn`, the default): each open for
//! reading is told to the statistics ([`crate::learn`]), which answer the files of the
//! same directory likely to be opened next; those are fetched whole in the background
//! into the read cache ([`crate::readcache`]), and an open of a file held there with the
//! ETag its listing names is served from memory.
//!
//! - Prefetches are tasks on the mount's runtime, through the same [`Store`] reads as
//!   any read; at most [`FETCHING`] at once, none for a file larger than an eighth of the
//!   cache, and never more than half the cache in prefetches not read yet. A read never
//!   waits for them, except a read of the very file being prefetched, which waits for
//!   it (up to [`WAIT`]) instead of fetching it a second time.
//! - A file read whole by its first read (a small file) is kept too, so a second pass
//!   over a tree reads it from memory.
//! - Freshness is the listing's: content is served while the cached listing (trusted for
//!   `--cache-ttl`, as the attributes are) names the object it came from. A change
//!   through the mount leaves its entry without an ETag, so it is a miss at once.
//! - The statistics live as long as the mount: names of an encrypted vault are secret,
//!   and keeping them would need them sealed on disk, for a gain only on the first
//!   files of a remount.

use crate::filesystem::Core;
use crate::learn::Stats;
use crate::lock;
use crate::names::{child, split};
use crate::readcache::{Evicted, ReadCache};
use crate::store::{Error, Store};
use bytes::{Bytes, BytesMut};
use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// Prefetches under way at once, mount-wide.
const FETCHING: usize = 3;
/// The read cache's bound without `--cache-size`.
const DEFAULT_BOUND: u64 = 256 << 20;
/// Uses of the read cache (about one per open) after which a prefetch left unread is
/// taken as a wrong guess and let go of.
const STALE: u64 = 8 * crate::learn::AHEAD as u64;
/// How long a read of a file being prefetched waits for it before reading it itself.
const WAIT: Duration = Duration::from_secs(30);

/// The read cache's bound: `--cache-size` (the write copies' bound on disk; this one is
/// in memory), 256 MiB without it, and never more than a quarter of the machine's
/// memory.
pub(crate) fn bound(cache_size: Option<u64>) -> u64 {
    // SAFETY: sysconf reads a system constant and touches no memory of ours.
    let (pages, page) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    let memory = (pages.max(0) as u64).saturating_mul(page.max(0) as u64);
    let quarter = if memory == 0 { u64::MAX } else { memory / 4 };
    cache_size.unwrap_or(DEFAULT_BOUND).min(quarter)
}

struct State {
    stats: Stats,
    cache: ReadCache,
    /// Prefetches under way: path → size.
    fetching: HashMap<String, u64>,
    /// Prefetches started, for the tests to count.
    #[cfg(test)]
    started: usize,
}

impl State {
    /// Puts a file in the cache; prefetches thrown away unread count against the
    /// guesses that made them.
    fn put(&mut self, path: &str, etag: &str, data: Bytes, prefetched: bool) {
        let State { stats, cache, .. } = self;
        let worth = |p: &str| {
            let (dir, name) = split(p);
            stats.worth(dir, name)
        };
        let evicted = cache.put(path, etag, data, prefetched, worth);
        self.wasted(evicted);
    }

    fn wasted(&mut self, evicted: Vec<Evicted>) {
        for e in evicted.into_iter().filter(|e| e.unread) {
            let (dir, name) = split(&e.path);
            self.stats.wasted(dir, name);
        }
    }
}

/// The statistics and the read cache, one lock for both.
pub(crate) struct Warm {
    state: Mutex<State>,
    /// Told when a prefetch has landed or failed.
    landed: Condvar,
}

impl Warm {
    pub(crate) fn new(bound: u64) -> Warm {
        Warm {
            state: Mutex::new(State {
                stats: Stats::default(),
                cache: ReadCache::new(bound),
                fetching: HashMap::new(),
                #[cfg(test)]
                started: 0,
            }),
            landed: Condvar::new(),
        }
    }

    /// Bytes the read cache holds.
    #[cfg(test)]
    pub(crate) fn held(&self) -> u64 {
        lock(&self.state).cache.held()
    }

    /// Prefetches under way.
    #[cfg(test)]
    pub(crate) fn fetching(&self) -> usize {
        lock(&self.state).fetching.len()
    }

    /// Prefetches started since the mount began.
    #[cfg(test)]
    pub(crate) fn prefetches(&self) -> usize {
        lock(&self.state).started
    }

    /// Whether the read cache holds `path`, of any object.
    #[cfg(test)]
    pub(crate) fn holds(&self, path: &str) -> bool {
        lock(&self.state).cache.holds_any(path)
    }

    /// Empties the read cache, keeping the statistics.
    #[cfg(test)]
    pub(crate) fn clear_cache(&self) {
        let mut st = lock(&self.state);
        let bound = st.cache.bound();
        st.cache = ReadCache::new(bound);
    }

    fn landed(&self, path: &str, etag: &str, got: Result<Option<Bytes>, Error>) {
        let mut st = lock(&self.state);
        st.fetching.remove(path);
        match got {
            Ok(Some(data)) => st.put(path, etag, data, true),
            Ok(None) => tracing::debug!("prefetch of {path:?}: changed since listed"),
            Err(e) => tracing::debug!("prefetch of {path:?} failed: {e}"),
        }
        drop(st);
        self.landed.notify_all();
    }
}

/// What a read handle knows of its file for the read cache.
#[derive(Default)]
pub(crate) struct Seen {
    /// The object the listing named at open (`None`: nothing is cached for it).
    etag: Option<String>,
    size: u64,
    /// The file's content, from the read cache.
    whole: Option<Bytes>,
    /// Whether the cache was asked (once, at the first read).
    asked: bool,
    /// The furthest byte read: whether the handle read the file whole.
    read_to: u64,
}

impl Seen {
    /// The handle's file was replaced through the mount: nothing cached is its own.
    pub(crate) fn reset(&mut self) {
        *self = Seen {
            asked: true,
            ..Seen::default()
        };
    }
}

/// The whole object `path` as listed with `etag` (`None`: it changed since).
async fn fetch<S: Store>(
    store: &S,
    path: &str,
    etag: &str,
    size: u64,
) -> Result<Option<Bytes>, Error> {
    let Some(r) = store.reader(path).await? else {
        return Ok(None);
    };
    if store.etag(&r) != Some(etag) {
        return Ok(None);
    }
    let mut buf = BytesMut::new();
    store.read_at(&r, 0, size, &mut buf).await?;
    Ok((buf.len() as u64 == size).then(|| buf.freeze()))
}

impl<S: Store> Core<S> {
    /// `path` opened for reading: told to the statistics, whose guesses are prefetched.
    /// Answers what the handle knows for the read cache.
    pub(crate) fn warm_open(&self, path: &str) -> Seen {
        let Some(warm) = &self.warm else {
            return Seen::default();
        };
        let (dir, name) = split(path);
        let Ok(Some(ent)) = self.entry(dir, name) else {
            return Seen::default();
        };
        let after = |n: &str, k: usize| self.cache.files_after(dir, n, k);
        let guesses = lock(&warm.state).stats.opened(dir, name, &after);
        self.prefetch(warm, dir, guesses);
        Seen {
            etag: ent.etag,
            size: ent.size.unwrap_or(0),
            ..Seen::default()
        }
    }

    /// Starts prefetches of `names` of `dir`, within the bounds.
    fn prefetch(&self, warm: &Arc<Warm>, dir: &str, names: Vec<String>) {
        for name in names {
            let path = child(dir, &name);
            let Some(ent) = self.cache.get(dir, &name) else {
                continue;
            };
            let (Some(etag), Some(size)) = (ent.etag, ent.size) else {
                continue;
            };
            if self.local(&path).is_some() {
                continue; // open for writing: its content is the local copy's
            }
            {
                let mut st = lock(&warm.state);
                if st.fetching.len() >= FETCHING {
                    return;
                }
                let stale = st.cache.drop_stale(STALE);
                st.wasted(stale);
                let bound = st.cache.bound();
                let ahead = st.cache.unread() + st.fetching.values().sum::<u64>();
                if st.fetching.contains_key(&path)
                    || st.cache.holds(&path, &etag)
                    || size > bound / 8
                    || ahead + size > bound / 2
                {
                    continue;
                }
                st.fetching.insert(path.clone(), size);
                #[cfg(test)]
                {
                    st.started += 1;
                }
            }
            let (store, warm) = (self.store.clone(), warm.clone());
            self.rt.spawn(async move {
                let got = fetch(&*store, &path, &etag, size).await;
                warm.landed(&path, &etag, got);
            });
        }
    }

    /// Up to `size` bytes at `offset` of the handle's file from the read cache, when it
    /// holds the file (asked at the first read, after its prefetch if under way).
    pub(crate) fn warm_read(
        &self,
        path: &str,
        seen: &mut Seen,
        offset: u64,
        size: u32,
    ) -> Option<Bytes> {
        let warm = self.warm.as_ref()?;
        if !seen.asked {
            seen.asked = true;
            let etag = seen.etag.as_deref()?;
            let st = lock(&warm.state);
            let (mut st, _) = warm
                .landed
                .wait_timeout_while(st, WAIT, |s| s.fetching.contains_key(path))
                .unwrap_or_else(|e| e.into_inner());
            seen.whole = st.cache.get(path, etag);
        }
        let data = seen.whole.as_ref()?;
        let start = offset.min(data.len() as u64);
        let end = (offset + size as u64).min(data.len() as u64);
        seen.read_to = seen.read_to.max(end);
        Some(data.slice(start as usize..end as usize))
    }

    /// After `got` was read from the store at `offset` for a read of `size` bytes: a
    /// first read that took the whole file (of the object `etag` the handle's reader
    /// opened) is kept.
    pub(crate) fn warm_keep(
        &self,
        path: &str,
        seen: &mut Seen,
        etag: Option<&str>,
        offset: u64,
        size: u32,
        got: &Bytes,
    ) {
        seen.read_to = seen.read_to.max(offset + got.len() as u64);
        let Some(warm) = &self.warm else {
            return;
        };
        let whole = offset == 0 && got.len() < size as usize && got.len() as u64 == seen.size;
        match (&seen.etag, etag) {
            (Some(listed), Some(read)) if whole && listed == read => {
                let mut st = lock(&warm.state);
                if !st.cache.holds(path, listed) {
                    st.put(path, listed, got.clone(), false);
                }
                // The rest of this handle's reads (the one at the end) are served too.
                seen.whole = Some(got.clone());
            }
            _ => {}
        }
    }

    /// A read handle of `path` closed: whether it read the file whole is told to the
    /// statistics (a handle that read nothing tells nothing).
    pub(crate) fn warm_release(&self, path: &str, seen: &Seen) {
        if let (Some(warm), true) = (&self.warm, seen.read_to > 0) {
            let (dir, name) = split(path);
            let whole = seen.read_to >= seen.size;
            lock(&warm.state).stats.read(dir, name, whole);
        }
    }
}

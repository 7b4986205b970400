//! The usage scanner's pass: what counters cannot keep, by prefix and by access.
//!
//! Counters (`usage.rs`) are exact and live but know no keys. A pass reads every
//! version, a page at a time in key order, each page in a read transaction of its own
//! (so no long reader holds LMDB's old pages), and sums, per bucket, prefix (the first
//! one to [`MAX_DEPTH`] segments of the key, and `""` for the whole bucket) and storage
//! class: objects, noncurrent versions, markers and bytes, the current objects' bytes by
//! age band, and by days since their last read (`access.rs`; an object never read counts
//! from when it was written). Memory is bounded by [`MAX_ENTRIES`] sums and one page:
//! past the cap, new prefixes are left out (the snapshot says it is `truncated`; the
//! whole-bucket sums always stay). The result is stored with its time (a server record),
//! so `admin usage` shows it and its age without scanning; the server runs a pass every
//! interval and on demand.
//!
//! Access classes, from days since the last read: hot under [`HOT_DAYS`], warm under
//! [`WARM_DAYS`], cold otherwise.

use crate::error::Result;
use crate::record::{self, keys, ObjectVersion};
use crate::store::Store;
use crate::usage::{band, BAND_FROM};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::ops::Bound;

/// Deepest prefix kept: `a/b/c/`.
pub const MAX_DEPTH: usize = 3;
/// Most (bucket, prefix, class) sums a pass keeps.
pub const MAX_ENTRIES: usize = 20_000;
/// Read in the last this many days: hot.
pub const HOT_DAYS: u64 = 7;
/// Read in the last this many days (and not hot): warm.
pub const WARM_DAYS: u64 = 30;
/// Versions read per page (and per read transaction).
const PAGE: usize = 1000;
const RECORD_NS: &str = "usage";
const RECORD_NAME: &str = "snapshot";

/// One bucket's prefix in one storage class, as the last pass found it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrefixUsage {
    pub bucket: String,
    /// `""` for the whole bucket, else 1 to [`MAX_DEPTH`] key segments, each ending in `/`.
    pub prefix: String,
    pub class: String,
    pub objects: u64,
    pub bytes: u64,
    pub noncurrent: u64,
    pub noncurrent_bytes: u64,
    pub delete_markers: u64,
    /// The current objects' bytes by age band (`usage::BANDS`).
    pub age_bytes: [u64; 6],
    /// The current objects by days since their last read, in the same bands.
    pub idle_objects: [u64; 6],
    pub idle_bytes: [u64; 6],
}

impl PrefixUsage {
    /// How many segments deep the prefix is (0 for the whole bucket).
    pub fn depth(&self) -> usize {
        self.prefix.matches('/').count()
    }

    /// Objects and bytes of an access class: read within `[from, to)` days ago.
    fn idle_between(&self, from: u64, to: u64) -> (u64, u64) {
        let mut out = (0, 0);
        for (i, lower) in BAND_FROM.iter().enumerate() {
            if *lower >= from && *lower < to {
                out.0 += self.idle_objects[i];
                out.1 += self.idle_bytes[i];
            }
        }
        out
    }

    /// Objects and bytes read in the last [`HOT_DAYS`] days.
    pub fn hot(&self) -> (u64, u64) {
        self.idle_between(0, HOT_DAYS)
    }

    /// Read in the last [`WARM_DAYS`] days, not hot.
    pub fn warm(&self) -> (u64, u64) {
        self.idle_between(HOT_DAYS, WARM_DAYS)
    }

    /// Not read in [`WARM_DAYS`] days.
    pub fn cold(&self) -> (u64, u64) {
        self.idle_between(WARM_DAYS, u64::MAX)
    }

    /// Bytes of current objects at least `days` old (`days` a band's lower bound).
    pub fn bytes_older_than(&self, days: u64) -> u64 {
        BAND_FROM
            .iter()
            .zip(self.age_bytes)
            .filter(|(lower, _)| **lower >= days)
            .map(|(_, b)| b)
            .sum()
    }
}

/// What a pass found, and when.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageSnapshot {
    /// When the pass began (Unix ns).
    pub at_ns: u64,
    /// Seconds in the usage day its ages are in.
    pub day_secs: u64,
    /// Version records read.
    pub scanned: u64,
    /// Some prefixes were left out: more than [`MAX_ENTRIES`].
    pub truncated: bool,
    pub prefixes: Vec<PrefixUsage>,
}

impl record::Record for UsageSnapshot {}

impl Store {
    /// The last pass's snapshot, if one ran.
    pub fn usage_snapshot(&self) -> Result<Option<UsageSnapshot>> {
        Ok(self
            .server_record(RECORD_NS, RECORD_NAME)?
            .and_then(|b| record::decode(&b).ok()))
    }

    /// One pass over every version, stored as the snapshot and returned.
    pub fn scan_usage(&self) -> Result<UsageSnapshot> {
        let day_secs = self.usage_day();
        let at_ns = crate::commit::Clock::new().now();
        let today = at_ns / (day_secs * 1_000_000_000);
        let mut pass = Pass {
            sums: BTreeMap::new(),
            snapshot: UsageSnapshot {
                at_ns,
                day_secs,
                ..Default::default()
            },
        };
        for b in self.list_buckets()? {
            let base = keys::version_base(&b.name);
            let mut after: Option<Vec<u8>> = None;
            let mut last_key: Option<String> = None;
            loop {
                let (rtxn, db) = self.read()?;
                let from = match &after {
                    Some(a) => Bound::Excluded(a.as_slice()),
                    None => Bound::Included(base.as_slice()),
                };
                let mut n = 0;
                for kv in db.range(&rtxn, &(from, Bound::Unbounded))? {
                    let (k, v) = kv?;
                    if !k.starts_with(&base) || n == PAGE {
                        break;
                    }
                    n += 1;
                    after = Some(k.to_vec());
                    let v: ObjectVersion = record::decode(v)?;
                    let current = last_key.as_deref() != Some(v.key.as_str());
                    if current {
                        last_key = Some(v.key.clone());
                    }
                    let idle_from = match current && !v.delete_marker {
                        true => db
                            .get(&rtxn, &keys::access(&b.name, &v.key))?
                            .map(record::decode::<crate::access::Access>)
                            .transpose()?
                            .map_or(v.mtime_ns, |a| a.last_ns.max(v.mtime_ns)),
                        false => v.mtime_ns,
                    };
                    let day_ns = day_secs * 1_000_000_000;
                    let age = band(today.saturating_sub(v.mtime_ns / day_ns));
                    let idle = band(today.saturating_sub(idle_from / day_ns));
                    pass.add(&b.name, &v, current, age, idle);
                }
                if n < PAGE {
                    break;
                }
            }
        }
        let snapshot = pass.finish();
        self.set_server_record(RECORD_NS, RECORD_NAME, Some(record::encode(&snapshot)?))?;
        Ok(snapshot)
    }
}

struct Pass {
    sums: BTreeMap<(String, String, String), PrefixUsage>,
    snapshot: UsageSnapshot,
}

impl Pass {
    fn add(&mut self, bucket: &str, v: &ObjectVersion, current: bool, age: usize, idle: usize) {
        self.snapshot.scanned += 1;
        let class = v
            .meta
            .storage_class
            .clone()
            .unwrap_or_else(|| crate::classes::STANDARD.to_string());
        for prefix in prefixes(&v.key) {
            let id = (bucket.to_string(), prefix.to_string(), class.clone());
            if !self.sums.contains_key(&id) && !prefix.is_empty() && self.sums.len() >= MAX_ENTRIES
            {
                self.snapshot.truncated = true;
                continue;
            }
            let s = self.sums.entry(id).or_insert_with(|| PrefixUsage {
                bucket: bucket.to_string(),
                prefix: prefix.to_string(),
                class: class.clone(),
                ..Default::default()
            });
            match (v.delete_marker, current) {
                (true, _) => s.delete_markers += 1,
                (false, false) => {
                    s.noncurrent += 1;
                    s.noncurrent_bytes += v.size;
                }
                (false, true) => {
                    s.objects += 1;
                    s.bytes += v.size;
                    s.age_bytes[age] += v.size;
                    s.idle_objects[idle] += 1;
                    s.idle_bytes[idle] += v.size;
                }
            }
        }
    }

    fn finish(mut self) -> UsageSnapshot {
        self.snapshot.prefixes = self.sums.into_values().collect();
        self.snapshot
    }
}

/// The whole bucket (`""`) and each prefix of `key` up to [`MAX_DEPTH`] segments.
fn prefixes(key: &str) -> impl Iterator<Item = &str> {
    let ends = key.match_indices('/').map(|(i, _)| i + 1).take(MAX_DEPTH);
    std::iter::once(0).chain(ends).map(move |end| &key[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_stop_at_the_deepest_kept() {
        let all: Vec<&str> = prefixes("a/b/c/d/e.jpg").collect();
        assert_eq!(all, ["", "a/", "a/b/", "a/b/c/"]);
        assert_eq!(prefixes("top.txt").collect::<Vec<_>>(), [""]);
    }
}

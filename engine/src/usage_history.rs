//! A history of usage totals: one small record per usage day, for the capacity forecast.
//!
//! The counters (`usage.rs`) are kept by creation day, so a delete lowers an old day's
//! counter: they say what is stored now, never what was stored on a past day. Growth needs
//! the totals as they were, so once a usage day the server takes a [`UsageDay`]: each
//! bucket's objects and bytes (from the counters, cheap) and, per pool, each filesystem
//! its drives are on, used and total bytes as the filesystem reports them (a `statvfs`
//! each, no walk). Filesystems, not drives, because that is what fills: two drives of a
//! test on one disk share its space, and a disk filled by anything else fills the pool too.
//!
//! The record is a server record in the index (`usage.history`, named by the day), written
//! by its own operation ([`Op::UsageHistory`](crate::ops::Op)) so that the check "is there
//! one for today already" and the trimming to [`KEEP_DAYS`] happen in the same commit; it
//! survives restarts like every record, and a restart on a day that has one keeps it. When
//! the length of the usage day changes, the history goes with the counters built in the
//! old days (`usage::set_day`): days of two lengths make no series.

use crate::commit::Tx;
use crate::error::Result;
use crate::record::{self, keys};
use crate::store::Store;
use serde::{Deserialize, Serialize};
use std::os::unix::fs::MetadataExt;

/// Records kept: a year and a month, so that a yearly cycle shows.
pub const KEEP_DAYS: usize = 400;
const RECORDS: &str = "usage.history";

/// What one usage day's record holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageDay {
    /// The usage day (days of `day_secs` since the epoch) the record was taken on.
    pub day: u64,
    pub day_secs: u64,
    /// When it was taken (Unix ns): a server started mid-day takes its day's then.
    pub at_ns: u64,
    pub buckets: Vec<BucketDay>,
    pub pools: Vec<PoolDay>,
}

impl record::Record for UsageDay {}

/// A bucket's totals on a day (the counters' sums).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketDay {
    pub name: String,
    pub objects: i64,
    /// Logical bytes: every version, and the parts of unfinished uploads.
    pub bytes: i64,
    /// Bytes the versions take on the drives (shards with parity).
    pub raw_bytes: i64,
}

/// A pool's filesystems on a day.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolDay {
    pub name: String,
    pub filesystems: Vec<FsDay>,
}

impl PoolDay {
    pub fn used_bytes(&self) -> u64 {
        self.filesystems.iter().map(|f| f.used_bytes).sum()
    }

    pub fn total_bytes(&self) -> u64 {
        self.filesystems.iter().map(|f| f.total_bytes).sum()
    }
}

/// One filesystem holding drives of a pool.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FsDay {
    /// The first of the pool's drives on it, in drive order: the name its series goes by
    /// (a device number may change across reboots, a drive's path does not).
    pub drive: String,
    /// The pool's drives on it.
    pub drives: usize,
    /// Bytes not available to the store any more (total less what `statvfs` says is
    /// available): what the store, and anything else on the disk, takes.
    pub used_bytes: u64,
    pub total_bytes: u64,
}

impl Store {
    /// Today's totals, as a record would hold them, taken now.
    pub fn usage_today(&self) -> Result<UsageDay> {
        let usage = self.usage(None)?;
        let buckets = usage
            .by(|r| r.bucket.clone())
            .into_iter()
            .map(|(name, t)| BucketDay {
                name,
                objects: t.objects,
                bytes: t.version_bytes + t.upload_bytes,
                raw_bytes: t.version_raw,
            })
            .collect();
        // Drives come in pool order; within a pool, one entry per filesystem (by device),
        // named by the first drive on it. A drive that cannot be measured (faulty, gone)
        // is left out.
        let mut pools: Vec<PoolDay> = Vec::new();
        let mut devs: Vec<u64> = Vec::new();
        for (pool, d) in self.drives() {
            if pools.last().is_none_or(|p| p.name != pool) {
                pools.push(PoolDay {
                    name: pool,
                    filesystems: Vec::new(),
                });
                devs.clear();
            }
            let (Some(total), Some(free), Ok(meta)) =
                (d.total_bytes, d.free_bytes, std::fs::metadata(&d.path))
            else {
                continue;
            };
            let p = pools.last_mut().expect("pushed above");
            match devs.iter().position(|&dev| dev == meta.dev()) {
                Some(i) => p.filesystems[i].drives += 1,
                None => {
                    devs.push(meta.dev());
                    p.filesystems.push(FsDay {
                        drive: d.path,
                        drives: 1,
                        used_bytes: total.saturating_sub(free),
                        total_bytes: total,
                    });
                }
            }
        }
        Ok(UsageDay {
            day: usage.today,
            day_secs: usage.day_secs,
            at_ns: crate::commit::Clock::new().now(),
            buckets,
            pools,
        })
    }

    /// Takes today's record if there is none yet: the server calls it at start and as
    /// each usage day begins. Returns whether one was written.
    pub fn record_usage_day(&self) -> Result<bool> {
        let today = self.usage_today()?;
        let out = self.submit(crate::ops::Op::UsageHistory(Box::new(today)))?;
        Ok(matches!(out, crate::ops::Out::Applied(true)))
    }

    /// Every day's record, oldest first.
    pub fn usage_history(&self) -> Result<Vec<UsageDay>> {
        let mut days = Vec::new();
        for (_, bytes) in self.server_records(RECORDS)? {
            days.push(record::decode::<UsageDay>(&bytes)?);
        }
        Ok(days)
    }
}

/// Records sort by name in day order (fixed width).
fn name(day: u64) -> String {
    format!("{day:020}")
}

/// The op: `day` is written unless its day has a record, and the oldest records past
/// [`KEEP_DAYS`] go. `false` when the day had one.
pub(crate) fn apply(tx: &mut Tx, day: &UsageDay) -> Result<bool> {
    let key = keys::server(RECORDS, &name(day.day));
    if tx.get(&key).is_some() {
        return Ok(false);
    }
    tx.put(key, record::encode(day)?);
    let all = tx.scan(&keys::server(RECORDS, ""));
    for (k, _) in all.iter().take(all.len().saturating_sub(KEEP_DAYS)) {
        tx.del(k.clone());
    }
    Ok(true)
}

/// The usage day changed length: the records in the old days go.
pub(crate) fn forget(tx: &mut Tx) {
    for (k, _) in tx.scan(&keys::server(RECORDS, "")) {
        tx.del(k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ObjectMeta, StoreConfig};

    fn store(dir: &std::path::Path) -> Store {
        Store::open(StoreConfig::new(vec![dir.join("d0"), dir.join("d1")])).unwrap()
    }

    #[test]
    fn a_day_is_recorded_once_with_buckets_and_pools() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        s.create_bucket("bkt").unwrap();
        let mut w = s.put("bkt", "k").unwrap();
        w.write(&[1u8; 100_000]).unwrap();
        w.finish(ObjectMeta::default()).unwrap();
        assert!(s.record_usage_day().unwrap());
        assert!(!s.record_usage_day().unwrap(), "one record a day");
        let h = s.usage_history().unwrap();
        assert_eq!(h.len(), 1);
        let b = &h[0].buckets[0];
        assert_eq!((b.name.as_str(), b.objects, b.bytes), ("bkt", 1, 100_000));
        assert!(b.raw_bytes >= 100_000);
        // Both drives are on one filesystem: one entry, two drives, named by the first.
        let p = &h[0].pools[0];
        assert_eq!(p.name, crate::FIRST_POOL);
        assert_eq!(p.filesystems.len(), 1);
        assert_eq!(p.filesystems[0].drives, 2);
        assert!(p.filesystems[0].drive.ends_with("d0"));
        assert!(p.used_bytes() > 0 && p.used_bytes() <= p.total_bytes());
        // It outlives the process.
        drop(s);
        assert_eq!(store(dir.path()).usage_history().unwrap(), h);
    }

    #[test]
    fn the_oldest_days_go_past_the_bound_and_all_go_with_the_day_length() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        for day in 0..KEEP_DAYS as u64 + 3 {
            let rec = UsageDay {
                day,
                day_secs: crate::DAY_SECS,
                ..UsageDay::default()
            };
            s.submit(crate::ops::Op::UsageHistory(Box::new(rec)))
                .unwrap();
        }
        let h = s.usage_history().unwrap();
        assert_eq!(h.len(), KEEP_DAYS);
        assert_eq!(h[0].day, 3);
        assert_eq!(h.last().unwrap().day, KEEP_DAYS as u64 + 2);
        s.set_usage_day(2).unwrap();
        assert!(s.usage_history().unwrap().is_empty());
    }
}

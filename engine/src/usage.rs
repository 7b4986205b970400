//! Storage usage, kept as counters in the same commits as the changes they count.
//!
//! One record per (bucket, storage class, creation day) — `T bucket \0 class \0 day` →
//! [`Tally`] — holds what the versions created that day in that class add up to: current
//! objects, all versions, delete markers, their logical and raw bytes, and the
//! multipart uploads started that day with their parts' bytes. A query
//! ([`crate::Store::usage`]) reads these records only, so it costs the number of
//! (bucket, class, day) triples, never the number of objects; age bands are summed
//! from the days at query time, so they stay exact as data grows old.
//!
//! How every change is counted, whichever path makes it: the transaction itself
//! ([`crate::commit::Tx`]) hands each put or delete of a version record (`V`) or of a
//! key's current version (`L`) to [`count`], with the record it replaces. A version
//! record is a version or a marker; an `L` record is a current object. So an overwrite,
//! a marker, a noncurrent delete, a transition (the record rewritten in its new
//! class), a pool move, a replica or a site's change are all counted by the same two
//! lines, and no operation can forget to. Uploads are counted by the operations that
//! start, fill, complete and abort them (`ops.rs`), since a part's record does not name
//! its bucket. Deltas gather in the transaction and are written once per batch ([`flush`]).
//!
//! A day is the store's usage day (`#usage-day`, set by [`crate::Store::set_usage_day`]:
//! the server's lifecycle day, so that usage's ages and the lifecycle rules it suggests
//! count the same days). Counters are built from the records themselves ([`rebuild`])
//! when a store has none yet (a store from before them) and when the day changes.

use crate::commit::Tx;
use crate::error::Result;
use crate::layout::{shard_len, Ec};
use crate::record::{self, keys, ObjectVersion, PartData, UploadRecord};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// A real day.
pub const DAY_SECS: u64 = 86_400;

/// Where each age band starts, in days: a band holds ages from its start to the next's.
pub const BAND_FROM: [u64; 6] = [0, 1, 7, 30, 90, 365];
/// The age bands' names, youngest first.
pub const BANDS: [&str; 6] = ["<1d", "1-7d", "7-30d", "30-90d", "90-365d", ">1y"];

/// The band of something `days` days old.
pub fn band(days: u64) -> usize {
    BAND_FROM
        .iter()
        .rposition(|&from| days >= from)
        .unwrap_or(0)
}

/// What a set of versions and uploads adds up to. Signed, so that deltas and totals are
/// the same type; a total is never negative.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// Current versions that are objects (not delete markers).
    pub objects: i64,
    pub object_bytes: i64,
    /// Bytes the current versions take on this store's drives (shards with parity).
    pub object_raw: i64,
    /// Every version that is not a marker, current or not.
    pub versions: i64,
    pub version_bytes: i64,
    pub version_raw: i64,
    pub delete_markers: i64,
    /// Multipart uploads started and not completed nor aborted, and their parts' bytes.
    pub uploads: i64,
    pub upload_bytes: i64,
}

impl Tally {
    pub fn add(&mut self, o: &Tally) {
        self.objects += o.objects;
        self.object_bytes += o.object_bytes;
        self.object_raw += o.object_raw;
        self.versions += o.versions;
        self.version_bytes += o.version_bytes;
        self.version_raw += o.version_raw;
        self.delete_markers += o.delete_markers;
        self.uploads += o.uploads;
        self.upload_bytes += o.upload_bytes;
    }

    fn scaled(mut self, by: i64) -> Tally {
        for f in [
            &mut self.objects,
            &mut self.object_bytes,
            &mut self.object_raw,
            &mut self.versions,
            &mut self.version_bytes,
            &mut self.version_raw,
            &mut self.delete_markers,
            &mut self.uploads,
            &mut self.upload_bytes,
        ] {
            *f *= by;
        }
        self
    }

    /// Versions that are neither markers nor current.
    pub fn noncurrent(&self) -> i64 {
        self.versions - self.objects
    }

    pub fn noncurrent_bytes(&self) -> i64 {
        self.version_bytes - self.object_bytes
    }

    pub fn is_zero(&self) -> bool {
        *self == Tally::default()
    }
}

impl record::Record for Tally {}

/// One counter record: a bucket's versions of one class created on one day.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageRow {
    pub bucket: String,
    pub class: String,
    /// Days since the Unix epoch, in usage days.
    pub day: u64,
    pub tally: Tally,
}

/// Every counter (of one bucket, or all), with the day they are counted in.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Seconds in a usage day.
    pub day_secs: u64,
    /// Today, in usage days since the epoch.
    pub today: u64,
    pub rows: Vec<UsageRow>,
}

impl Usage {
    /// The sum over every row.
    pub fn total(&self) -> Tally {
        let mut t = Tally::default();
        for r in &self.rows {
            t.add(&r.tally);
        }
        t
    }

    /// Sums by a row's name for it (bucket, class, band), in name order.
    pub fn by(&self, name: impl Fn(&UsageRow) -> String) -> Vec<(String, Tally)> {
        let mut out: std::collections::BTreeMap<String, Tally> = Default::default();
        for r in &self.rows {
            out.entry(name(r)).or_default().add(&r.tally);
        }
        out.into_iter().collect()
    }

    /// The age band of a row's day.
    pub fn band_of(&self, row: &UsageRow) -> usize {
        band(self.today.saturating_sub(row.day))
    }
}

/// Deltas of a batch not written yet, and the day they are counted in.
#[derive(Default)]
pub(crate) struct Pending {
    day_secs: Option<u64>,
    deltas: HashMap<(String, String, u64), Tally>,
}

/// The day length the counters are built with, if they are.
pub(crate) fn built_day(tx: &mut Tx) -> Option<u64> {
    tx.get(keys::USAGE_DAY)
        .and_then(|v| v.try_into().ok())
        .map(u64::from_be_bytes)
}

fn day_secs(tx: &mut Tx) -> u64 {
    if let Some(d) = tx.usage.day_secs {
        return d;
    }
    let d = built_day(tx).unwrap_or(DAY_SECS).max(1);
    tx.usage.day_secs = Some(d);
    d
}

/// Whether a record's changes are counted.
pub(crate) fn tracks(key: &[u8]) -> bool {
    matches!(key.first(), Some(&keys::VERSION) | Some(&keys::LATEST))
}

/// Counts a change of a `V` or `L` record from `old` to `new`.
pub(crate) fn count(tx: &mut Tx, key: &[u8], old: Option<&[u8]>, new: Option<&[u8]>) {
    let Some(bucket) = bucket_of(key) else {
        return;
    };
    let latest = key[0] == keys::LATEST;
    let day = day_secs(tx);
    for (bytes, sign) in [(old, -1), (new, 1)] {
        let Some(bytes) = bytes else { continue };
        match record::decode::<ObjectVersion>(bytes) {
            Ok(v) => {
                let (class, d, t) = contribution(&v, latest, day, tx.ec);
                add(tx, &bucket, class, d, t.scaled(sign));
            }
            Err(e) => tracing::warn!("usage: a version record of {bucket} is unreadable: {e}"),
        }
    }
}

/// Counts an upload (`uploads` ±1) or its parts' bytes, in its class and day.
pub(crate) fn count_upload(tx: &mut Tx, bucket: &str, up: &UploadRecord, uploads: i64, bytes: i64) {
    let day = day_secs(tx);
    let t = Tally {
        uploads,
        upload_bytes: bytes,
        ..Tally::default()
    };
    add(
        tx,
        bucket,
        class_of(up.meta.storage_class.as_deref()),
        up.initiated_ns / (day * 1_000_000_000),
        t,
    );
}

fn add(tx: &mut Tx, bucket: &str, class: &str, day: u64, t: Tally) {
    tx.usage
        .deltas
        .entry((bucket.to_string(), class.to_string(), day))
        .or_default()
        .add(&t);
}

/// A version's class, day and what it adds: as a version record, or as a current one.
fn contribution(v: &ObjectVersion, latest: bool, day_secs: u64, ec: Ec) -> (&str, u64, Tally) {
    let day = v.mtime_ns / (day_secs * 1_000_000_000);
    let class = class_of(v.meta.storage_class.as_deref());
    let size = v.size as i64;
    let raw = v.parts.iter().map(|p| raw_bytes(&p.data, p.size, ec)).sum();
    let t = if latest {
        Tally {
            objects: 1,
            object_bytes: size,
            object_raw: raw,
            ..Tally::default()
        }
    } else if v.delete_marker {
        Tally {
            delete_markers: 1,
            ..Tally::default()
        }
    } else {
        Tally {
            versions: 1,
            version_bytes: size,
            version_raw: raw,
            ..Tally::default()
        }
    };
    (class, day, t)
}

fn class_of(class: Option<&str>) -> &str {
    class.unwrap_or(crate::classes::STANDARD)
}

/// Bytes `size` stored bytes of `data` take on this store's drives: each block's shards,
/// parity included (one stripe for inline data, in the first pool's layout); none for
/// data on a remote tier.
pub(crate) fn raw_bytes(data: &PartData, size: u64, ec: Ec) -> i64 {
    let (k, n, block) = match data {
        PartData::Remote { .. } => return 0,
        PartData::Inline { .. } => (ec.k(), ec.total(), size.max(1)),
        PartData::Sharded {
            k, m, block_size, ..
        }
        | PartData::Pooled {
            k, m, block_size, ..
        } => (
            *k as usize,
            (*k + *m) as usize,
            u64::from(*block_size).max(1),
        ),
    };
    let (full, rest) = (size / block, size % block);
    let mut per_drive = full * shard_len(block as usize, k) as u64;
    if rest > 0 || size == 0 {
        per_drive += shard_len(rest as usize, k) as u64;
    }
    (per_drive * n as u64) as i64
}

/// The bucket a `V`, `L` or `T` key names.
fn bucket_of(key: &[u8]) -> Option<String> {
    let rest = key.get(1..)?;
    let end = rest.iter().position(|&b| b == 0)?;
    String::from_utf8(rest[..end].to_vec()).ok()
}

/// Writes the batch's deltas into the counter records.
pub(crate) fn flush(tx: &mut Tx) -> Result<()> {
    let deltas = std::mem::take(&mut tx.usage.deltas);
    for ((bucket, class, day), delta) in deltas {
        if delta.is_zero() {
            continue;
        }
        let k = keys::usage(&bucket, &class, day);
        let mut t: Tally = match tx.get(&k) {
            Some(v) => record::decode(&v)?,
            None => Tally::default(),
        };
        t.add(&delta);
        match t.is_zero() {
            true => tx.del(k),
            false => tx.put(k, record::encode(&t)?),
        }
    }
    Ok(())
}

/// A bucket is gone: so are its counters, written or pending.
pub(crate) fn forget(tx: &mut Tx, bucket: &str) {
    tx.usage.deltas.retain(|(b, _, _), _| b != bucket);
    for (k, _) in tx.scan(&keys::usage_base(bucket)) {
        tx.del(k);
    }
}

/// Counts everything again from the records, in days of `day_secs`: the counters of a
/// store from before them, or after the day changed. One pass over the index, holding
/// one delta per (bucket, class, day).
pub(crate) fn rebuild(tx: &mut Tx, day_secs: u64) -> Result<()> {
    let day_secs = day_secs.max(1);
    tx.usage.deltas.clear();
    for (k, _) in tx.scan(&[keys::USAGE]) {
        tx.del(k);
    }
    tx.put(keys::USAGE_DAY.to_vec(), day_secs.to_be_bytes().to_vec());
    tx.usage.day_secs = Some(day_secs);
    let ec = tx.ec;
    let mut found: HashMap<(String, String, u64), Tally> = HashMap::new();
    let mut bad = 0u64;
    for tag in [keys::VERSION, keys::LATEST] {
        tx.each(&[tag], |k, v| {
            let (Some(bucket), Ok(v)) = (bucket_of(k), record::decode::<ObjectVersion>(v)) else {
                bad += 1;
                return;
            };
            let (class, day, t) = contribution(&v, tag == keys::LATEST, day_secs, ec);
            found
                .entry((bucket, class.to_string(), day))
                .or_default()
                .add(&t);
        });
    }
    if bad > 0 {
        tracing::warn!("usage: {bad} unreadable version record(s) not counted");
    }
    tx.usage.deltas = found;
    for (k, v) in tx.scan(&[keys::UPLOAD]) {
        let (Some(bucket), Ok(up)) = (bucket_of(&k), record::decode::<UploadRecord>(&v)) else {
            continue;
        };
        let mut bytes = 0i64;
        for (_, p) in tx.scan(&keys::parts_of(&up.upload_id)) {
            if let Ok(p) = record::decode::<record::PartRecord>(&p) {
                bytes += p.entry.size as i64;
            }
        }
        count_upload(tx, &bucket, &up, 1, bytes);
    }
    Ok(())
}

impl crate::Store {
    /// Every usage counter, of `bucket` or of all buckets. Reads the counter records only
    /// (one per bucket, class and day), never an object's: cheap enough for every
    /// metrics scrape.
    pub fn usage(&self, bucket: Option<&str>) -> Result<Usage> {
        let (rtxn, db) = self.read()?;
        let day_secs = db
            .get(&rtxn, keys::USAGE_DAY)?
            .and_then(|v| v.try_into().ok())
            .map_or(DAY_SECS, u64::from_be_bytes)
            .max(1);
        let prefix = match bucket {
            Some(b) => keys::usage_base(b),
            None => vec![keys::USAGE],
        };
        let mut rows = Vec::new();
        for kv in db.prefix_iter(&rtxn, &prefix)? {
            let (k, v) = kv?;
            let Some((bucket, class, day)) = parse_usage_key(k) else {
                continue;
            };
            rows.push(UsageRow {
                bucket,
                class,
                day,
                tally: record::decode(v)?,
            });
        }
        let now = crate::commit::Clock::new().now();
        Ok(Usage {
            day_secs,
            today: now / (day_secs * 1_000_000_000),
            rows,
        })
    }

    /// At open: the day the counters are kept in, or, for a store from before them, the
    /// counters built from its records (once, before anything is served).
    pub(crate) fn open_usage(&self) -> Result<()> {
        let built = {
            let (rtxn, db) = self.read()?;
            db.get(&rtxn, keys::USAGE_DAY)?
                .and_then(|v| v.try_into().ok())
                .map(u64::from_be_bytes)
        };
        match built {
            Some(secs) => self
                .inner
                .usage_day
                .store(secs, std::sync::atomic::Ordering::Relaxed),
            None => self.set_usage_day(DAY_SECS)?,
        }
        Ok(())
    }

    /// Each bucket's totals, in name order (buckets with nothing stored have none).
    pub fn bucket_usage(&self) -> Result<Vec<(String, Tally)>> {
        Ok(self.usage(None)?.by(|r| r.bucket.clone()))
    }

    /// Count usage (and reads) in days of `secs` seconds: the server's lifecycle day. The
    /// counters are built again when they were kept in other days.
    pub fn set_usage_day(&self, secs: u64) -> Result<()> {
        let secs = secs.max(1);
        self.submit(crate::ops::Op::UsageDay(secs))?;
        self.inner
            .usage_day
            .store(secs, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Seconds in a usage day.
    pub fn usage_day(&self) -> u64 {
        self.inner
            .usage_day
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A GET read this object: sampled for its access class (`access.rs`), never waited on.
    pub fn note_read(&self, bucket: &str, key: &str) {
        let now = crate::commit::Clock::new().now();
        self.inner.reads.note(bucket, key, now, self.usage_day());
    }
}

/// `T bucket \0 class \0 day` → its parts.
fn parse_usage_key(k: &[u8]) -> Option<(String, String, u64)> {
    let (names, day) = k.get(1..)?.split_at_checked(k.len().checked_sub(9)?)?;
    let day = u64::from_be_bytes(day.try_into().ok()?);
    let names = names.strip_suffix(&[0])?;
    let split = names.iter().position(|&b| b == 0)?;
    Some((
        String::from_utf8(names[..split].to_vec()).ok()?,
        String::from_utf8(names[split + 1..].to_vec()).ok()?,
        day,
    ))
}

/// The op that sets the usage day: the counters are built again in the new days, or for
/// the first time; a history of totals in days of another length goes.
pub(crate) fn set_day(tx: &mut Tx, secs: u64) -> Result<()> {
    match built_day(tx) {
        Some(built) if built == secs => {}
        Some(_) => {
            crate::usage_history::forget(tx);
            rebuild(tx, secs)?;
        }
        None => rebuild(tx, secs)?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ObjectMeta, Store, StoreConfig};

    fn put(s: &Store, key: &str, len: usize) {
        let mut w = s.put("bkt", key).unwrap();
        w.write(&vec![7u8; len]).unwrap();
        w.finish(ObjectMeta::default()).unwrap();
    }

    #[test]
    fn usage_of_a_store_from_before_counters_is_built_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = || StoreConfig::new(vec![dir.path().join("d0"), dir.path().join("d1")]);
        let s = Store::open(cfg()).unwrap();
        s.create_bucket("bkt").unwrap();
        put(&s, "a", 10);
        put(&s, "b", 100_000);
        let counted = s.usage(None).unwrap();
        assert_eq!(counted.total().objects, 2);
        // As a store written before counters: none, and no usage day.
        let (rtxn, db) = s.read().unwrap();
        let mut gone: Vec<(Vec<u8>, Option<Vec<u8>>)> = db
            .prefix_iter(&rtxn, &[keys::USAGE])
            .unwrap()
            .map(|kv| (kv.unwrap().0.to_vec(), None))
            .collect();
        drop(rtxn);
        gone.push((keys::USAGE_DAY.to_vec(), None));
        s.submit(crate::ops::Op::Raw(gone)).unwrap();
        assert!(s.usage(None).unwrap().rows.is_empty());
        drop(s);
        let s = Store::open(cfg()).unwrap();
        assert_eq!(s.usage(None).unwrap().rows, counted.rows);
    }
}

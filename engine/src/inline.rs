//! Small objects' bytes inside the metadata records, erasure-coded like shard files.
//!
//! An object up to [`crate::INLINE_MAX`] gets no shard files: its bytes are one stripe,
//! coded into K data and M parity shards, and drive `i`'s LMDB keeps shard `i` behind a
//! CRC under `keys::inline_shard(id)`. Every drive still keeps every record (names,
//! versions, sizes), which is what keeps listing fast and the index safe, while the
//! bytes cost (K+M)/K as they do in shard files. A read takes the data shards from K
//! drives, or any K shards when some are missing or damaged, and then queues the data
//! for heal.
//!
//! Stores written before this kept the whole bytes on every drive (`keys::inline`);
//! reads still take those, and heal (run at open when any are left) shards them.

use crate::codec::{reconstruct, Encoder};
use crate::drive::{Db, Drive, DriveState};
use crate::error::{Error, Result};
use crate::layout::Ec;
use crate::record::{keys, DataId};
use crate::Store;
use heed::{RoTxn, WithoutTls};
use std::sync::Arc;

/// Format tag of a shard value, so that a later layout can be told apart.
const FORMAT: u8 = 1;
/// Format tag, shard index, CRC32 of the shard (little-endian).
const HEADER: usize = 6;

/// One value per drive, by drive index (drive `i` holds shard `i`), as a commit writes them.
pub(crate) type Shards = Arc<Vec<Vec<u8>>>;

/// Code `bytes` into the value every drive stores for them.
pub(crate) fn encode(ec: Ec, bytes: &[u8]) -> Result<Shards> {
    let mut enc = Encoder::new(ec.k(), ec.m());
    enc.encode(bytes)?;
    Ok(Arc::new(
        (0..ec.total()).map(|i| frame(i, enc.shard(i))).collect(),
    ))
}

fn frame(index: usize, shard: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(HEADER + shard.len());
    v.push(FORMAT);
    v.push(index as u8);
    v.extend_from_slice(&crc32fast::hash(shard).to_le_bytes());
    v.extend_from_slice(shard);
    v
}

/// The shard in drive `index`'s stored value, if it is that drive's and intact.
fn shard_in(value: &[u8], index: usize) -> Option<&[u8]> {
    if value.len() < HEADER || value[0] != FORMAT || value[1] as usize != index {
        return None;
    }
    let (head, shard) = value.split_at(HEADER);
    let crc = u32::from_le_bytes(head[2..].try_into().expect("4 bytes"));
    (crc32fast::hash(shard) == crc).then_some(shard)
}

/// `bytes` cut to the record's `size` (the last data shard is padded).
fn exact(id: &DataId, mut bytes: Vec<u8>, size: u64) -> Result<Vec<u8>> {
    if (bytes.len() as u64) < size {
        return Err(Error::Corrupt(format!(
            "inline data {} is shorter than its record",
            hex::encode(id)
        )));
    }
    bytes.truncate(size as usize);
    Ok(bytes)
}

/// [`shard_in`] for a value of one's own.
pub(crate) fn unframe(mut value: Vec<u8>, index: usize) -> Option<Vec<u8>> {
    shard_in(&value, index)?;
    value.drain(..HEADER);
    Some(value)
}

/// Every shard, data and parity, from those `get(i)` finds (at least K of them).
fn all_shards(ec: Ec, get: impl FnMut(usize) -> Option<Vec<u8>>) -> Result<Vec<Vec<u8>>> {
    let mut shards: Vec<Option<Vec<u8>>> = (0..ec.total()).map(get).collect();
    reconstruct(ec.k(), ec.m(), &mut shards)?;
    Ok(shards.into_iter().flatten().collect())
}

/// Drive `index`'s value, rebuilt from the shards `get` finds on the other drives.
pub(crate) fn rebuild(
    ec: Ec,
    index: usize,
    get: impl FnMut(usize) -> Option<Vec<u8>>,
) -> Result<Vec<u8>> {
    Ok(frame(index, &all_shards(ec, get)?[index]))
}

/// What a look at an inline part's shards on every drive found.
pub(crate) struct Found {
    /// Drives whose shard is missing or damaged.
    pub bad: Vec<usize>,
    /// The values every drive should hold, when at least K shards were good.
    pub values: Option<Shards>,
}

impl Store {
    /// Run `f` on drive `index`'s intact shard under `key`, unless the drive is out of
    /// the store or has none; whether it ran.
    fn with_shard(&self, index: usize, key: &[u8], f: impl FnOnce(&[u8])) -> bool {
        let d: &Drive = &self.inner.drives[index];
        if d.state() == DriveState::Faulty {
            return false;
        }
        let Some(meta) = d.meta() else { return false };
        let Ok(rtxn) = meta.env.read_txn() else {
            return false;
        };
        match meta
            .db
            .get(&rtxn, key)
            .ok()
            .flatten()
            .and_then(|v| shard_in(v, index))
        {
            Some(shard) => {
                f(shard);
                true
            }
            None => false,
        }
    }

    fn drive_shard(&self, index: usize, key: &[u8]) -> Option<Vec<u8>> {
        let mut out = None;
        self.with_shard(index, key, |s| out = Some(s.to_vec()));
        out
    }

    /// An inline part's bytes. The version was read in `rtxn` on drive `at`, whose own
    /// shard comes from that same transaction; the other shards from their drives.
    pub(crate) fn inline_bytes(
        &self,
        id: &DataId,
        size: u64,
        (at, rtxn, db): (usize, &RoTxn<WithoutTls>, Db),
    ) -> Result<Vec<u8>> {
        if let Some(kept) = self.inner.inline_cache.get(id) {
            return Ok(kept.to_vec());
        }
        let key = keys::inline_shard(id);
        let k = self.inner.ec.k();
        // Healthy: the data shards laid end to end, straight out of each drive's map.
        let mut bytes = Vec::with_capacity(size as usize);
        let healthy = (0..k).all(|i| match i == at {
            true => match db
                .get(rtxn, &key)
                .ok()
                .flatten()
                .and_then(|v| shard_in(v, i))
            {
                Some(shard) => {
                    bytes.extend_from_slice(shard);
                    true
                }
                None => false,
            },
            false => self.with_shard(i, &key, |shard| bytes.extend_from_slice(shard)),
        });
        if !healthy {
            if let Some(whole) = db.get(rtxn, &keys::inline(id))? {
                return Ok(whole.to_vec());
            }
            bytes = self.inline_degraded(id, &key, (at, rtxn, db))?;
        }
        let bytes = exact(id, bytes, size)?;
        self.inner.inline_cache.put(*id, &bytes);
        Ok(bytes)
    }

    /// The data shards of inline data rebuilt from any K shards; the data is queued for heal.
    fn inline_degraded(
        &self,
        id: &DataId,
        key: &[u8],
        (at, rtxn, db): (usize, &RoTxn<WithoutTls>, Db),
    ) -> Result<Vec<u8>> {
        let mut shards: Vec<Option<Vec<u8>>> = (0..self.inner.ec.total())
            .map(|i| match i == at {
                true => db
                    .get(rtxn, key)
                    .ok()
                    .flatten()
                    .and_then(|v| shard_in(v, i))
                    .map(<[u8]>::to_vec),
                false => self.drive_shard(i, key),
            })
            .collect();
        reconstruct(self.inner.ec.k(), self.inner.ec.m(), &mut shards)?;
        self.queue_heal(*id);
        Ok(shards
            .into_iter()
            .take(self.inner.ec.k())
            .flatten()
            .flatten()
            .collect())
    }

    /// Check an inline part's shard on every drive and, with K good ones, what every
    /// drive should hold.
    pub(crate) fn inline_found(&self, id: &DataId) -> Found {
        let key = keys::inline_shard(id);
        let ec = self.inner.ec;
        let shards: Vec<Option<Vec<u8>>> =
            (0..ec.total()).map(|i| self.drive_shard(i, &key)).collect();
        let bad = (0..ec.total()).filter(|&i| shards[i].is_none()).collect();
        let values = all_shards(ec, |i| shards[i].clone()).ok().map(|all| {
            Arc::new(
                all.iter()
                    .enumerate()
                    .map(|(i, s)| frame(i, s))
                    .collect::<Vec<_>>(),
            )
        });
        Found { bad, values }
    }

    /// Inline bytes still stored whole (from before inline erasure coding), if any.
    pub(crate) fn whole_inline(&self, id: &DataId) -> Result<Option<Vec<u8>>> {
        let (rtxn, db) = self.read()?;
        Ok(db.get(&rtxn, &keys::inline(id))?.map(<[u8]>::to_vec))
    }

    /// Whether any inline bytes are still stored whole.
    pub(crate) fn has_whole_inline(&self) -> Result<bool> {
        let (rtxn, db) = self.read()?;
        let any = db.prefix_iter(&rtxn, &[keys::INLINE])?.next().is_some();
        Ok(any)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ec(k: u8, m: u8) -> Ec {
        Ec { data: k, parity: m }
    }

    #[test]
    fn any_k_shards_give_back_every_value() {
        let e = ec(4, 2);
        for len in [0usize, 1, 7, 4096, 65_536] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let values = encode(e, &bytes).unwrap();
            let total: usize = values.iter().map(|v| v.len() - HEADER).sum();
            // (K+M)/K of the bytes, plus at most one byte of padding per data shard.
            assert!(total <= (len.div_ceil(4) + 2) * 6, "{len}: {total}");
            for lost in [[0, 1], [2, 5], [4, 5]] {
                let got = |i: usize| {
                    (!lost.contains(&i))
                        .then(|| unframe(values[i].clone(), i))
                        .flatten()
                };
                for i in 0..6 {
                    assert_eq!(rebuild(e, i, got).unwrap(), values[i], "{len}: {lost:?}");
                }
            }
        }
    }

    #[test]
    fn damaged_or_misplaced_values_are_refused() {
        let values = encode(ec(2, 1), b"hello world").unwrap();
        assert!(unframe(values[0].clone(), 0).is_some());
        assert!(
            unframe(values[0].clone(), 1).is_none(),
            "another drive's shard"
        );
        let mut flipped = values[1].clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(unframe(flipped, 1).is_none(), "bit flip");
        assert!(unframe(values[2][..3].to_vec(), 2).is_none(), "truncated");
        let too_few = |i: usize| (i == 0).then(|| unframe(values[0].clone(), 0)).flatten();
        assert!(rebuild(ec(2, 1), 1, too_few).is_err());
    }
}

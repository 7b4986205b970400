//! Reads: a version's bytes, or any range of them, one block at a time.
//!
//! A healthy read touches only the data shards that hold the requested bytes.
//! A missing or corrupt shard (checksum mismatch) switches that block to a
//! degraded read: enough shards are gathered to reconstruct it, the caller
//! gets correct bytes, and the data is queued for healing.

use crate::codec::reconstruct;
use crate::error::{Error, Result};
use crate::record::{DataId, ObjectVersion, PartData};
use crate::shard::{self, append_block, read_block, Geometry};
use crate::Store;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read};
use std::sync::{Arc, Mutex};

/// An open version: its record, and its bytes on demand.
pub struct ObjectReader {
    store: Store,
    version: ObjectVersion,
    /// Per part: inline bytes, or the shard files by shard index (opened on first use,
    /// kept open so a concurrent overwrite cannot pull them away mid-read).
    parts: Vec<Source>,
}

enum Source {
    Inline(Vec<u8>),
    Sharded(Option<Vec<Option<File>>>),
}

impl ObjectReader {
    pub(crate) fn new(store: Store, version: ObjectVersion, inline: Vec<Option<Vec<u8>>>) -> Self {
        let parts = inline
            .into_iter()
            .map(|b| match b {
                Some(b) => Source::Inline(b),
                None => Source::Sharded(None),
            })
            .collect();
        let mut r = ObjectReader {
            store,
            version,
            parts,
        };
        if matches!(r.parts.first(), Some(Source::Sharded(_))) {
            r.files(0);
        }
        r
    }

    pub fn version(&self) -> &ObjectVersion {
        &self.version
    }

    pub fn size(&self) -> u64 {
        self.version.size
    }

    /// A reader over bytes `start..end` (end exclusive).
    pub fn range(self, start: u64, end: u64) -> Result<RangeRead> {
        if start > end || end > self.version.size {
            return Err(Error::InvalidRange);
        }
        Ok(RangeRead {
            obj: self,
            pos: start,
            end,
            chunk: Vec::new(),
            chunk_pos: 0,
        })
    }

    /// A reader over the whole object.
    pub fn all(self) -> RangeRead {
        let size = self.version.size;
        self.range(0, size).expect("whole range is valid")
    }

    fn files(&mut self, part: usize) -> &mut Vec<Option<File>> {
        let PartData::Sharded { id, rot, .. } = self.version.parts[part].data else {
            unreachable!("files() is only asked for sharded parts")
        };
        let drives = &self.store.inner.drives;
        let Source::Sharded(files) = &mut self.parts[part] else {
            unreachable!("sharded part has a sharded source")
        };
        files.get_or_insert_with(|| {
            let n = drives.len();
            (0..n)
                .map(|i| shard::open(&drives[(i + rot as usize) % n].shard_path(&id)).ok())
                .collect()
        })
    }

    /// Bytes `lo..hi` of one part, which lie within block `b`.
    fn read_block_range(&mut self, part: usize, b: u64, lo: usize, hi: usize) -> Result<Vec<u8>> {
        let entry = self.version.parts[part].clone();
        let (id, k, m, block_size) = match entry.data {
            PartData::Inline { .. } => {
                let Source::Inline(bytes) = &self.parts[part] else {
                    unreachable!("inline part has inline source")
                };
                let base = b as usize * self.store.inner.block_size;
                return Ok(bytes[base + lo..base + hi].to_vec());
            }
            PartData::Sharded {
                id,
                k,
                m,
                block_size,
                ..
            } => (id, k as usize, m as usize, block_size as usize),
        };
        let geo = Geometry {
            k,
            block_size,
            size: entry.size,
        };
        let s = geo.shard_len(b);
        let edge = lo > 0 || hi < geo.block_len(b);
        let inner = self.store.inner.clone();
        let files = self.files(part);
        // Healthy: only the data shards holding bytes lo..hi, read back to back.
        let (first, last) = (lo / s, (hi - 1) / s);
        let mut out = Vec::with_capacity((last + 1 - first) * s + 4);
        let healthy = (first..=last).all(|i| {
            let start = out.len();
            let key = (id, b, i);
            if let Some(shard) = edge.then(|| inner.edges.get(key)).flatten() {
                out.extend_from_slice(&shard);
                return true;
            }
            let read = files[i]
                .as_ref()
                .is_some_and(|f| append_block(f, &geo, b, &mut out));
            if read && edge {
                inner.edges.put(key, out[start..].to_vec());
            }
            read
        });
        if healthy {
            out.truncate(hi - first * s);
            out.drain(..lo - first * s);
            return Ok(out);
        }
        // Degraded: gather any k verified shards, rebuild, and have the data healed.
        let mut shards: Vec<Option<Vec<u8>>> = vec![None; k + m];
        let mut have = 0;
        for (i, slot) in shards.iter_mut().enumerate() {
            if have == k {
                break;
            }
            let mut sb = Vec::new();
            if files[i]
                .as_ref()
                .is_some_and(|f| read_block(f, &geo, b, &mut sb))
            {
                *slot = Some(sb);
                have += 1;
            }
        }
        self.store.queue_heal(id);
        reconstruct(k, m, &mut shards)
            .map_err(|e| Error::Corrupt(format!("{} block {b}: {e}", self.version.key)))?;
        let data: Vec<u8> = shards[..k].iter().flatten().flatten().copied().collect();
        Ok(data[lo..hi].to_vec())
    }
}

/// Shards of blocks that were read for part of their bytes, kept for a moment.
///
/// Adjacent ranges share the block at their edge: the parallel ranged GETs of one
/// download, whose ranges need not start at a block (an encrypted vault's start at age
/// chunks). Each would otherwise read that block whole from the drive to check its
/// checksum: for 16 MiB ranges, one block in 16 read twice. Data ids are never reused,
/// so a kept shard is never stale.
#[derive(Default)]
pub(crate) struct EdgeCache(Mutex<VecDeque<(EdgeKey, Arc<Vec<u8>>)>>);

/// Data id, block, shard index.
type EdgeKey = (DataId, u64, usize);

/// Edge shards kept: a few for each of the ranges in flight at once.
const EDGE_SHARDS: usize = 32;

impl EdgeCache {
    fn get(&self, key: EdgeKey) -> Option<Arc<Vec<u8>>> {
        let kept = self.0.lock().unwrap();
        kept.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone())
    }

    fn put(&self, key: EdgeKey, shard: Vec<u8>) {
        let mut kept = self.0.lock().unwrap();
        if kept.len() == EDGE_SHARDS {
            kept.pop_front();
        }
        kept.push_back((key, Arc::new(shard)));
    }
}

/// Sequential reader over a byte range of a version; also usable as `std::io::Read`.
pub struct RangeRead {
    obj: ObjectReader,
    pos: u64,
    end: u64,
    chunk: Vec<u8>,
    chunk_pos: usize,
}

impl RangeRead {
    pub fn version(&self) -> &ObjectVersion {
        &self.obj.version
    }

    /// Bytes left to read.
    pub fn remaining(&self) -> u64 {
        self.end - self.pos + (self.chunk.len() - self.chunk_pos) as u64
    }

    /// The next piece of the range (at most one block), or `None` at the end.
    pub fn next_chunk(&mut self) -> Result<Option<Vec<u8>>> {
        if self.chunk_pos < self.chunk.len() {
            let rest = self.chunk.split_off(self.chunk_pos);
            self.chunk.clear();
            self.chunk_pos = 0;
            return Ok(Some(rest));
        }
        if self.pos >= self.end {
            return Ok(None);
        }
        // Find the part holding `pos`, then the block within it.
        let mut part_start = 0u64;
        let mut part = 0;
        for (i, p) in self.obj.version.parts.iter().enumerate() {
            if self.pos < part_start + p.size {
                part = i;
                break;
            }
            part_start += p.size;
        }
        let p = &self.obj.version.parts[part];
        let bs = match p.data {
            PartData::Sharded { block_size, .. } => block_size as u64,
            PartData::Inline { .. } => self.obj.store.inner.block_size as u64,
        };
        let off = self.pos - part_start;
        let b = off / bs;
        let block_start = b * bs;
        let block_end = (block_start + bs).min(p.size);
        let lo = (off - block_start) as usize;
        let hi = (block_end.min(self.end - part_start) - block_start) as usize;
        let bytes = self.obj.read_block_range(part, b, lo, hi)?;
        self.pos += bytes.len() as u64;
        Ok(Some(bytes))
    }
}

impl Read for RangeRead {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.chunk_pos == self.chunk.len() {
            match self.next_chunk().map_err(io::Error::other)? {
                Some(c) => {
                    self.chunk = c;
                    self.chunk_pos = 0;
                }
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.chunk.len() - self.chunk_pos);
        out[..n].copy_from_slice(&self.chunk[self.chunk_pos..self.chunk_pos + n]);
        self.chunk_pos += n;
        Ok(n)
    }
}

//! Recently read inline objects, decoded, by data id.
//!
//! An inline object's bytes are spread over K drives' LMDB maps (`inline.rs`), so a
//! read costs K B-tree lookups and K CRC checks where a whole copy on one drive cost
//! one. Small objects are read again and again (the same icons, manifests, a mount's
//! small files), so the decoded bytes of the last few MiB read stay in memory: a
//! repeated read costs the version lookup alone.
//!
//! Data ids are never reused, so a kept entry is never stale: an overwrite or a delete
//! makes a new id or none, and the old entry ages out. Only intact bytes get here
//! (every shard's CRC checked, or rebuilt from K intact shards).

use crate::record::DataId;
use quick_cache::sync::Cache;
use quick_cache::Weighter;
use std::sync::Arc;

/// Memory for decoded inline bytes. Inline objects are at most `INLINE_MAX` each.
const CAPACITY_BYTES: u64 = 32 << 20;
/// Expected entries (sizes the hash table): 4 KiB objects filling the capacity.
const EXPECTED_ENTRIES: usize = (CAPACITY_BYTES / 4096) as usize;

#[derive(Clone)]
struct Bytes;

impl Weighter<DataId, Arc<[u8]>> for Bytes {
    fn weight(&self, _: &DataId, bytes: &Arc<[u8]>) -> u64 {
        // Counted at least one cache line, so that empty objects cannot fill it without bound.
        bytes.len().max(64) as u64
    }
}

pub(crate) struct InlineCache(Cache<DataId, Arc<[u8]>, Bytes>);

impl Default for InlineCache {
    fn default() -> Self {
        InlineCache(Cache::with_weighter(
            EXPECTED_ENTRIES,
            CAPACITY_BYTES,
            Bytes,
        ))
    }
}

impl InlineCache {
    pub fn get(&self, id: &DataId) -> Option<Arc<[u8]>> {
        self.0.get(id)
    }

    pub fn put(&self, id: DataId, bytes: &[u8]) {
        self.0.insert(id, Arc::from(bytes));
    }
}

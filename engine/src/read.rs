//! Reads: a version's bytes, or any range of them, one block at a time.
//!
//! A healthy read touches only the data shards that hold the requested bytes.
//! A missing or corrupt shard (checksum mismatch) switches that block to a
//! degraded read: enough shards are gathered to reconstruct it, the caller
//! gets correct bytes, and the data is queued for healing.
//!
//! A range longer than a few blocks is read ahead: up to [`READ_AHEAD`] blocks are in
//! flight at once on the reader's own threads, so the drives always have the next reads
//! queued while the caller takes the current block (shards are read around the page
//! cache, so nothing else would read ahead for us). Memory stays bounded by those blocks.
//!
//! An encrypted version's reader holds its parts' data keys: each piece of plaintext
//! comes from its whole sealed block, read and opened (`sse.rs`); a block that fails
//! its check is an error, never wrong bytes. A reader without keys reads the stored
//! bytes as they are (moves and remote tiers copy ciphertext).

use crate::codec::reconstruct;
use crate::error::{Error, Result};
use crate::kms::unwrap_customer;
use crate::record::SseMode;
use crate::record::{DataId, ObjectVersion, PartData};
use crate::shard::{append_block, read_block, Geometry};
use crate::sse::{customer_matches, part_plain_size, plain_block, DataKey};
use crate::Store;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

/// Blocks read ahead of the caller on a long range (each up to the block size).
const READ_AHEAD: usize = 4;
/// Ranges spanning more blocks than this are read ahead.
const READ_AHEAD_FROM_BLOCKS: u64 = 2;

/// An open version: its record, and its bytes on demand.
pub struct ObjectReader {
    blocks: Arc<Blocks>,
    /// An SSE-C version whose customer key was not given yet ([`ObjectReader::unlock`]):
    /// nothing of it can be read.
    locked: bool,
}

/// What every read of one open version shares, across the reader's threads.
struct Blocks {
    store: Store,
    version: ObjectVersion,
    /// Per part: inline bytes, or the shard files by shard index (opened on first use,
    /// kept open so a concurrent overwrite cannot pull them away mid-read).
    parts: Vec<Source>,
    /// Per part, its data key when the version is encrypted; empty otherwise (or to
    /// read the sealed bytes as they are stored).
    keys: Vec<DataKey>,
}

enum Source {
    Inline(Vec<u8>),
    Sharded(OnceLock<Vec<Option<File>>>),
    /// On a remote tier: the response being read, and where in the remote object it is,
    /// so that pieces read in order share one request.
    Remote(Mutex<Option<(u64, Box<dyn Read + Send>)>>),
}

impl ObjectReader {
    /// A reader of the stored bytes (the plaintext, unless the version is encrypted).
    pub(crate) fn new(store: Store, version: ObjectVersion, inline: Vec<Option<Vec<u8>>>) -> Self {
        Self::sealed(store, version, inline, Vec::new())
    }

    /// A reader of an SSE-C version, locked until [`ObjectReader::unlock`].
    pub(crate) fn locked(
        store: Store,
        version: ObjectVersion,
        inline: Vec<Option<Vec<u8>>>,
    ) -> Self {
        let mut r = Self::sealed(store, version, inline, Vec::new());
        r.locked = true;
        r
    }

    /// Gives an SSE-C version's reader its customer key; a wrong one is refused. A
    /// version of any other kind needs none, and refuses one, as S3 does.
    pub fn unlock(&mut self, customer: Option<&[u8; 32]>) -> Result<()> {
        check_customer(&self.blocks.version, customer)?;
        let (Some(enc), Some(customer)) = (&self.blocks.version.encryption, customer) else {
            return Ok(());
        };
        let keys = enc
            .keys
            .iter()
            .map(|w| Ok(DataKey::new(&unwrap_customer(customer, w)?)))
            .collect::<Result<Vec<_>>>()?;
        let blocks = Arc::get_mut(&mut self.blocks).expect("a reader not read yet");
        blocks.keys = keys;
        self.locked = false;
        Ok(())
    }

    /// A reader of an encrypted version's plaintext, with its parts' data keys.
    pub(crate) fn sealed(
        store: Store,
        version: ObjectVersion,
        inline: Vec<Option<Vec<u8>>>,
        keys: Vec<DataKey>,
    ) -> Self {
        let parts = inline
            .into_iter()
            .zip(&version.parts)
            .map(|(b, p)| match b {
                Some(b) => Source::Inline(b),
                None if p.data.is_remote() => Source::Remote(Mutex::new(None)),
                None => Source::Sharded(OnceLock::new()),
            })
            .collect();
        let blocks = Blocks {
            store,
            version,
            parts,
            keys,
        };
        if matches!(blocks.parts.first(), Some(Source::Sharded(_))) {
            blocks.files(0);
        }
        ObjectReader {
            blocks: Arc::new(blocks),
            locked: false,
        }
    }

    pub fn version(&self) -> &ObjectVersion {
        &self.blocks.version
    }

    pub fn size(&self) -> u64 {
        self.blocks.version.size
    }

    /// A reader over bytes `start..end` (end exclusive). Readers of one version share its
    /// open files, so a reader that seeks (a Parquet file's footer, then its row groups)
    /// takes one range after another.
    pub fn range(&self, start: u64, end: u64) -> Result<RangeRead> {
        if self.locked {
            return Err(Error::CustomerKeyMissing);
        }
        if start > end || end > self.blocks.version.size {
            return Err(Error::InvalidRange);
        }
        Ok(RangeRead {
            blocks: Arc::clone(&self.blocks),
            pos: start,
            end,
            chunk: Vec::new(),
            chunk_pos: 0,
            ahead: None,
            locked: false,
        })
    }

    /// A reader over the whole object (of a locked one: whose reads fail).
    pub fn all(self) -> RangeRead {
        let end = self.blocks.version.size;
        RangeRead {
            blocks: self.blocks,
            pos: 0,
            end,
            chunk: Vec::new(),
            chunk_pos: 0,
            ahead: None,
            locked: self.locked,
        }
    }
}

/// Whether `customer` is what reading `v` needs: its SSE-C key, or none for a version
/// that is not SSE-C (given one, it is refused, as S3 does).
pub fn check_customer(v: &ObjectVersion, customer: Option<&[u8; 32]>) -> Result<()> {
    match (v.encryption.as_ref().map(|e| &e.mode), customer) {
        (Some(mode @ SseMode::Customer { .. }), Some(key)) => match customer_matches(mode, key) {
            true => Ok(()),
            false => Err(Error::CustomerKeyMismatch),
        },
        (Some(SseMode::Customer { .. }), None) => Err(Error::CustomerKeyMissing),
        (_, Some(_)) => Err(Error::CustomerKeyMismatch),
        (_, None) => Ok(()),
    }
}

/// One piece of a range: bytes `lo..hi` of block `b` of part `part`.
#[derive(Clone, Copy, Debug)]
struct Piece {
    part: usize,
    b: u64,
    lo: usize,
    hi: usize,
}

impl Blocks {
    fn files(&self, part: usize) -> &Vec<Option<File>> {
        let Some(layout) = self.version.parts[part].data.shards() else {
            unreachable!("files() is only asked for sharded parts")
        };
        let Source::Sharded(files) = &self.parts[part] else {
            unreachable!("sharded part has a sharded source")
        };
        files.get_or_init(|| match self.store.inner.pools.get(layout.pool) {
            Some(pool) => pool.open_shards(&layout.id, layout.rot as usize),
            // Unreadable as if every shard were lost: the read reports the data damaged.
            None => (0..layout.k as usize + layout.m as usize)
                .map(|_| None)
                .collect(),
        })
    }

    /// Part `i`'s size as this reader reads it: of the plaintext, with keys.
    fn part_size(&self, i: usize) -> u64 {
        match self.keys.is_empty() {
            true => self.version.parts[i].size,
            false => part_plain_size(&self.version, i),
        }
    }

    /// Part `i`'s stored block size.
    fn stored_block(&self, i: usize) -> u64 {
        match self.version.parts[i].data.shards() {
            Some(layout) => layout.block_size as u64,
            None => self.store.inner.block_size as u64,
        }
    }

    /// The piece of the range that starts at `pos` (at most to the end of its block).
    fn piece_at(&self, pos: u64, end: u64) -> Piece {
        let mut part_start = 0u64;
        let mut part = 0;
        for i in 0..self.version.parts.len() {
            let size = self.part_size(i);
            if pos < part_start + size {
                part = i;
                break;
            }
            part_start += size;
        }
        let size = self.part_size(part);
        let bs = match self.keys.is_empty() {
            true => self.stored_block(part),
            false => plain_block(self.stored_block(part) as usize) as u64,
        };
        let off = pos - part_start;
        let b = off / bs;
        let block_start = b * bs;
        let block_end = (block_start + bs).min(size);
        Piece {
            part,
            b,
            lo: (off - block_start) as usize,
            hi: (block_end.min(end - part_start) - block_start) as usize,
        }
    }

    /// The bytes of a piece of a part on a remote tier: read on from the request in
    /// flight when the piece follows it, else from a new one that runs to the part's end.
    fn read_remote(&self, piece: Piece, id: DataId, offset: u64) -> Result<Vec<u8>> {
        let Source::Remote(stream) = &self.parts[piece.part] else {
            unreachable!("remote part has a remote source")
        };
        let bs = self.store.inner.block_size as u64;
        let start = offset + piece.b * bs + piece.lo as u64;
        let len = piece.hi - piece.lo;
        let mut stream = stream.lock().unwrap();
        if stream.as_ref().is_none_or(|(at, _)| *at != start) {
            let at = self.store.remote_ref(&id)?;
            let end = offset + self.version.parts[piece.part].size;
            let body = self
                .store
                .remote_store()?
                .get(&at.tier, &at.name, start, end)
                .map_err(|e| Error::from_io(e, "remote tier"))?;
            *stream = Some((start, body));
        }
        let (at, body) = stream.as_mut().expect("opened above");
        let mut out = vec![0; len];
        if let Err(e) = body.read_exact(&mut out) {
            *stream = None;
            return Err(Error::from_io(e, "remote tier"));
        }
        *at += len as u64;
        Ok(out)
    }

    /// The bytes of one piece: of the plaintext, opened from its sealed block, when the
    /// reader has keys.
    fn read(&self, piece: Piece) -> Result<Vec<u8>> {
        let Some(key) = self.keys.get(piece.part) else {
            return self.read_stored(piece);
        };
        let bs = self.stored_block(piece.part);
        let start = piece.b * bs;
        let len = bs.min(self.version.parts[piece.part].size - start) as usize;
        let whole = Piece {
            lo: 0,
            hi: len,
            ..piece
        };
        let mut block = self.read_stored(whole)?;
        key.open(piece.b, &mut block)
            .map_err(|e| Error::Corrupt(format!("{}: {e}", self.version.key)))?;
        block.truncate(piece.hi);
        block.drain(..piece.lo);
        Ok(block)
    }

    /// The stored bytes of one piece.
    fn read_stored(&self, piece: Piece) -> Result<Vec<u8>> {
        let Piece { part, b, lo, hi } = piece;
        let entry = &self.version.parts[part];
        if let PartData::Remote { id, offset } = entry.data {
            return self.read_remote(piece, id, offset);
        }
        let layout = entry.data.shards();
        let (id, k, m, block_size) = match layout {
            None => {
                let Source::Inline(bytes) = &self.parts[part] else {
                    unreachable!("inline part has inline source")
                };
                let base = b as usize * self.store.inner.block_size;
                return Ok(bytes[base + lo..base + hi].to_vec());
            }
            Some(l) => (l.id, l.k as usize, l.m as usize, l.block_size as usize),
        };
        let geo = Geometry {
            k,
            block_size,
            size: entry.size,
        };
        let s = geo.shard_len(b);
        let edge = lo > 0 || hi < geo.block_len(b);
        let inner = &self.store.inner;
        let files = self.files(part);
        let pool = layout.and_then(|l| inner.pools.get(l.pool).map(|p| (p, l.rot as usize)));
        let counted = |i: usize, read: &mut dyn FnMut(&File) -> bool| {
            counted_read(
                &files[i],
                pool.as_ref().map(|(p, rot)| p.drive_of(i, *rot)),
                read,
            )
        };
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
            let read = counted(i, &mut |f| append_block(f, &geo, b, &mut out));
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
            if counted(i, &mut |f| read_block(f, &geo, b, &mut sb)) {
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

    /// Whether a range from `pos` to `end` is long enough to read ahead.
    fn worth_reading_ahead(&self, pos: u64, end: u64) -> bool {
        let sharded = self.version.parts.iter().any(|p| p.data.shards().is_some());
        sharded && end - pos > READ_AHEAD_FROM_BLOCKS * self.store.inner.block_size as u64
    }
}

/// Read a shard block from `file` (`None`: missing) with `read`, counted on its drive
/// (`iostats.rs`).
fn counted_read(
    file: &Option<File>,
    drive: Option<&crate::drive::Drive>,
    read: &mut dyn FnMut(&File) -> bool,
) -> bool {
    let started = Instant::now();
    let ok = file.as_ref().is_some_and(read);
    if let Some(d) = drive {
        d.io.read(started, ok);
    }
    ok
}

/// A piece to read, and where to send its bytes.
type Job = (Piece, SyncSender<Result<Vec<u8>>>);

/// The reads in flight ahead of a [`RangeRead`], in order, each answered on its own
/// channel by one of the reader's threads.
struct ReadAhead {
    /// `None` only while dropping.
    jobs: Option<SyncSender<Job>>,
    threads: Vec<std::thread::JoinHandle<()>>,
    pending: VecDeque<Receiver<Result<Vec<u8>>>>,
    /// Where the next piece to ask for starts.
    next: u64,
}

impl ReadAhead {
    fn start(blocks: &Arc<Blocks>, pos: u64) -> ReadAhead {
        let (jobs, queue) = mpsc::sync_channel::<Job>(READ_AHEAD);
        let queue = Arc::new(Mutex::new(queue));
        let threads = (0..READ_AHEAD)
            .map(|_| {
                let (blocks, queue) = (blocks.clone(), queue.clone());
                std::thread::Builder::new()
                    .name("cybs3-read-ahead".into())
                    .spawn(move || loop {
                        let job = queue.lock().unwrap().recv();
                        let Ok((piece, answer)) = job else {
                            return;
                        };
                        let _ = answer.send(blocks.read(piece));
                    })
                    .expect("spawn a read-ahead thread")
            })
            .collect();
        ReadAhead {
            jobs: Some(jobs),
            threads,
            pending: VecDeque::with_capacity(READ_AHEAD),
            next: pos,
        }
    }

    /// Keep [`READ_AHEAD`] pieces of `..end` asked for, then wait for the oldest.
    fn next(&mut self, blocks: &Blocks, end: u64) -> Result<Vec<u8>> {
        while self.pending.len() < READ_AHEAD && self.next < end {
            let piece = blocks.piece_at(self.next, end);
            self.next += (piece.hi - piece.lo) as u64;
            let (answer, answered) = mpsc::sync_channel(1);
            self.jobs
                .as_ref()
                .expect("open until dropped")
                .send((piece, answer))
                .map_err(|_| Error::Meta("read-ahead threads stopped".into()))?;
            self.pending.push_back(answered);
        }
        let oldest = self.pending.pop_front().expect("a piece is pending");
        oldest
            .recv()
            .map_err(|_| Error::Meta("a read-ahead thread stopped".into()))?
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

impl Drop for ReadAhead {
    /// Close the queue and wait out the reads in flight: the threads hold the store, and
    /// a reader that is gone must not keep it open.
    fn drop(&mut self) {
        self.jobs = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Sequential reader over a byte range of a version; also usable as `std::io::Read`.
pub struct RangeRead {
    blocks: Arc<Blocks>,
    pos: u64,
    end: u64,
    chunk: Vec<u8>,
    chunk_pos: usize,
    /// Reads in flight, once the range turned out long enough.
    ahead: Option<ReadAhead>,
    /// Of an SSE-C version without its key: every read fails.
    locked: bool,
}

impl RangeRead {
    pub fn version(&self) -> &ObjectVersion {
        &self.blocks.version
    }

    /// Bytes left to read.
    pub fn remaining(&self) -> u64 {
        self.end - self.pos + (self.chunk.len() - self.chunk_pos) as u64
    }

    /// The next piece of the range (at most one block), or `None` at the end.
    pub fn next_chunk(&mut self) -> Result<Option<Vec<u8>>> {
        if self.locked {
            return Err(Error::CustomerKeyMissing);
        }
        if self.chunk_pos < self.chunk.len() {
            let rest = self.chunk.split_off(self.chunk_pos);
            self.chunk.clear();
            self.chunk_pos = 0;
            return Ok(Some(rest));
        }
        if self.pos >= self.end {
            return Ok(None);
        }
        if self.ahead.is_none() && self.blocks.worth_reading_ahead(self.pos, self.end) {
            self.ahead = Some(ReadAhead::start(&self.blocks, self.pos));
        }
        let bytes = match &mut self.ahead {
            Some(ahead) => ahead.next(&self.blocks, self.end)?,
            None => self.blocks.read(self.blocks.piece_at(self.pos, self.end))?,
        };
        self.pos += bytes.len() as u64;
        if self.pos >= self.end {
            // Done: the threads go now, not when the reader is dropped.
            self.ahead = None;
        }
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

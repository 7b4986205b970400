//! Streaming writes: bytes in, erasure-coded shard files out, one metadata commit.
//!
//! Memory stays at one block plus its shards whatever the object size. Small
//! objects never touch a shard file: they go inline into the commit. Large ones
//! are written under `tmp/`, synced, renamed into `data/`, and only then
//! committed, so a crash at any point leaves the old version or the new one.
//!
//! With server-side encryption (`set_encryption`), the bytes are sealed block by block
//! (`sse.rs`) on their way in: everything below sees only ciphertext.

use crate::codec::Encoder;
use crate::condition::WriteCondition;
use crate::drive::{sync_dir, DriveState};
use crate::error::{is_no_space, Error, Result};
use crate::kms::{wrap_customer, KeyService, SSE_S3_KEY};
use crate::layout::{shard_len, INLINE_MAX};
use crate::ops::{Op, Out};
use crate::pool::{Pool, Writing};
use crate::record::{
    DataId, Encryption, LockRequest, ObjectMeta, ObjectVersion, PartData, PartEntry, ShardLayout,
    SseMode, WrappedKey, Written,
};
use crate::shard::{ShardHeader, ShardWriter};
use crate::sse::{customer_matches, DataKey, Sealer};
use crate::Store;
use std::fs;
use std::sync::Arc;

pub(crate) enum Target {
    Object,
    Part {
        upload_id: String,
        number: u32,
        /// `PartRecord::started_ns`, taken when the writer was opened.
        started_ns: u64,
    },
    /// A copy of data that moves to another pool (`moves.rs`): sealed by
    /// [`ObjectWriter::seal_copy`], then swapped into its record by the caller. `upload`
    /// names a multipart part's upload in the shard headers, as the original's did.
    Copy {
        upload: Option<(String, u32)>,
    },
}

/// Receives an object's (or part's) bytes; `finish` makes them a durable version.
/// Dropping it unfinished discards what was written.
pub struct ObjectWriter {
    store: Store,
    bucket: String,
    key: String,
    target: Target,
    buf: Vec<u8>,
    size: u64,
    sharded: Option<Sharded>,
    /// Object lock asked for the version (objects only; an upload's is given at creation).
    lock: LockRequest,
    /// What the key's current version must be for the write to happen (objects only).
    condition: WriteCondition,
    /// The pool the data must go to, instead of the one its class places it in.
    pool: Option<Arc<Pool>>,
    /// The storage class (`None`: STANDARD), resolved to a pool only if the data goes
    /// to shard files: small objects stay inline and never ask.
    class: Option<String>,
    /// Server-side encryption of what is written, if asked for.
    sealing: Option<Sealing>,
}

/// A write's encryption: the sealer of its bytes, and its data key as records keep it.
struct Sealing {
    sealer: Sealer,
    mode: SseMode,
    wrapped: WrappedKey,
}

struct Sharded {
    id: DataId,
    rot: usize,
    enc: Encoder,
    /// Open tmp shard file per shard index; `None` where its drive is unusable.
    files: Vec<Option<ShardWriter>>,
    /// The pool the shards go to, held so that a drain waits for this write.
    writing: Writing,
}

impl Sharded {
    fn pool(&self) -> &Arc<Pool> {
        self.writing.pool()
    }
}

impl ObjectWriter {
    pub(crate) fn new(store: Store, bucket: &str, key: &str, target: Target) -> ObjectWriter {
        ObjectWriter {
            store,
            bucket: bucket.to_string(),
            key: key.to_string(),
            target,
            buf: Vec::new(),
            size: 0,
            sharded: None,
            lock: LockRequest::default(),
            condition: WriteCondition::default(),
            pool: None,
            class: None,
            sealing: None,
        }
    }

    /// Encrypt what is written (before the first byte) with a fresh data key wrapped by
    /// the KMS key `mode` names, or for SSE-C by `customer`, the customer's key.
    pub fn set_encryption(
        &mut self,
        mode: Option<SseMode>,
        customer: Option<&[u8; 32]>,
    ) -> Result<()> {
        let Some(mode) = mode else {
            self.sealing = None;
            return Ok(());
        };
        let data_key: [u8; 32] = rand::random();
        let context = Encryption::context(&mode);
        let wrapped = match &mode {
            SseMode::S3 => self.store.wrap(SSE_S3_KEY, context, &data_key)?,
            SseMode::Kms { key, .. } => self.store.wrap(key, context, &data_key)?,
            SseMode::Customer { .. } => {
                let customer = customer.ok_or(Error::CustomerKeyMissing)?;
                if !customer_matches(&mode, customer) {
                    return Err(Error::CustomerKeyMismatch);
                }
                wrap_customer(customer, &data_key)
            }
        };
        self.sealing = Some(Sealing {
            sealer: Sealer::new(DataKey::new(&data_key), self.store.inner.block_size),
            mode,
            wrapped,
        });
        Ok(())
    }

    /// Put the data in this pool, whatever its free space.
    pub(crate) fn set_pool(&mut self, pool: Arc<Pool>) {
        self.pool = Some(pool);
    }

    /// Put the data in the pool of storage class `class` (`None`: STANDARD), if it is
    /// bound to one (`classes.rs`).
    pub fn set_class(&mut self, class: Option<&str>) {
        self.class = class.map(str::to_string);
    }

    /// Make the write conditional on the key's current version (`If-Match`,
    /// `If-None-Match`), checked when it commits; `finish` is refused otherwise.
    pub fn set_condition(&mut self, condition: WriteCondition) {
        self.condition = condition;
    }

    /// Ask object lock to protect the version this writes (a retention, a legal hold).
    /// The bucket must have object lock; `finish` is refused otherwise.
    pub fn set_lock(&mut self, lock: LockRequest) {
        self.lock = lock;
    }

    /// The encryption asked for what is written, if any.
    pub fn encryption(&self) -> Option<&SseMode> {
        self.sealing.as_ref().map(|s| &s.mode)
    }

    /// Bytes received so far.
    /// The key this writer writes.
    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn size(&self) -> u64 {
        match &self.sealing {
            Some(s) => s.sealer.size,
            None => self.size,
        }
    }

    pub fn write(&mut self, data: &[u8]) -> Result<()> {
        match self.sealing.take() {
            None => self.write_stored(data),
            Some(mut sealing) => {
                let r = sealing.sealer.push(data, &mut |b| self.write_stored(b));
                self.sealing = Some(sealing);
                r
            }
        }
    }

    /// Seals the last block of an encrypted write.
    fn finish_sealing(&mut self) -> Result<()> {
        if let Some(mut sealing) = self.sealing.take() {
            let r = sealing.sealer.finish(&mut |b| self.write_stored(b));
            self.sealing = Some(sealing);
            r?;
        }
        Ok(())
    }

    /// Bytes as the drives keep them (sealed, when encrypted).
    fn write_stored(&mut self, mut data: &[u8]) -> Result<()> {
        let block = self.store.inner.block_size;
        while !data.is_empty() {
            if self.sharded.is_none() && self.buf.len() + data.len() > INLINE_MAX {
                self.start_sharding()?;
                // What was buffered for an inline object may span blocks smaller than INLINE_MAX.
                let pending = std::mem::take(&mut self.buf);
                let mut blocks = pending.chunks_exact(block);
                for full in &mut blocks {
                    self.write_block(full)?;
                }
                self.buf = blocks.remainder().to_vec();
            }
            let room = if self.sharded.is_some() {
                block - self.buf.len()
            } else {
                data.len()
            };
            let n = room.min(data.len());
            self.buf.extend_from_slice(&data[..n]);
            self.size += n as u64;
            data = &data[n..];
            if self.sharded.is_some() && self.buf.len() == block {
                let full = std::mem::take(&mut self.buf);
                self.write_block(&full)?;
                self.buf = full;
                self.buf.clear();
            }
        }
        Ok(())
    }

    fn start_sharding(&mut self) -> Result<()> {
        let inner = &self.store.inner;
        let pool = match &self.pool {
            Some(pool) => pool.clone(),
            None => self.store.pool_for_class(self.class.as_deref()),
        };
        let writing = pool.writing();
        let pool = writing.pool().clone();
        let n = pool.drives.len();
        let id: DataId = rand::random();
        let rot = id[0] as usize % n;
        let mut files = Vec::with_capacity(n);
        let shard_len = shard_len(inner.block_size, pool.ec.k());
        let mut lost = Ok(());
        for i in 0..n {
            let drive = pool.drive_of(i, rot);
            if !drive.takes_shards() || lost.is_err() {
                files.push(None);
                continue;
            }
            let path = drive.tmp_shard_path(&id);
            match ShardWriter::create(&path, shard_len) {
                Ok(f) => files.push(Some(f)),
                Err(e) => {
                    files.push(None);
                    lost = self
                        .store
                        .lose_drive(&pool, drive.index, &id, e, "shard create");
                }
            }
        }
        self.sharded = Some(Sharded {
            id,
            rot,
            enc: Encoder::new(pool.ec.k(), pool.ec.m()),
            files,
            writing,
        });
        lost?;
        self.check_quorum()
    }

    fn check_quorum(&self) -> Result<()> {
        let Some(sh) = &self.sharded else {
            return Ok(());
        };
        let online = sh.files.iter().flatten().count();
        let needed = sh.pool().ec.k();
        if online < needed {
            return Err(Error::InsufficientDrives { online, needed });
        }
        Ok(())
    }

    fn write_block(&mut self, block: &[u8]) -> Result<()> {
        let sh = self.sharded.as_mut().expect("sharding started");
        sh.enc.encode(block)?;
        // Direct writes wait for their drive: the drives are written at once, not in turn.
        let enc = &sh.enc;
        let (pool, rot) = (&sh.pool().clone(), sh.rot);
        // Each shard write counts on its drive (`iostats.rs`).
        let write = move |i: usize, f: &mut ShardWriter| {
            let started = std::time::Instant::now();
            let r = f.append_block(enc.shard(i));
            pool.drive_of(i, rot).io.write(started, r.is_ok());
            r
        };
        let results: Vec<(usize, std::io::Result<()>)> = std::thread::scope(|s| {
            let mut writes: Vec<_> = sh
                .files
                .iter_mut()
                .enumerate()
                .filter_map(|(i, f)| f.as_mut().map(|f| (i, f)))
                .collect();
            let last = writes.pop();
            let others: Vec<_> = writes
                .into_iter()
                .map(|(i, f)| (i, s.spawn(move || write(i, f))))
                .collect();
            let mine = last.map(|(i, f)| (i, write(i, f)));
            others
                .into_iter()
                .map(|(i, h)| (i, h.join().expect("shard write thread")))
                .chain(mine)
                .collect()
        });
        for (i, r) in results {
            if let Err(e) = r {
                sh.files[i] = None;
                let drive = sh.pool().drive_of(i, sh.rot).index;
                self.store
                    .lose_drive(sh.pool(), drive, &sh.id, e, "shard write")?;
            }
        }
        self.check_quorum()
    }

    /// Make the written bytes a new version of the object, durable on return.
    pub fn finish(mut self, meta: ObjectMeta) -> Result<Written> {
        let number = match &self.target {
            Target::Object => 1,
            Target::Part { number, .. } => *number,
            Target::Copy { .. } => {
                return Err(Error::Meta("a copy is sealed, not finished".into()));
            }
        };
        self.finish_sealing()?;
        let sealing = self.sealing.take();
        let (data, inline) = match self.sharded.is_some() {
            false => (
                PartData::Inline { id: rand::random() },
                Some(crate::inline::encode(self.store.inner.ec, &self.buf)?),
            ),
            true => (self.seal()?, None),
        };
        let part = PartEntry {
            number,
            size: self.size,
            etag: meta.etag.clone(),
            checksums: match self.target {
                Target::Part { .. } => meta.checksums.clone(),
                Target::Object | Target::Copy { .. } => Vec::new(),
            },
            data,
        };
        let op = match &self.target {
            Target::Object => Op::Put {
                bucket: self.bucket.clone(),
                key: self.key.clone(),
                meta,
                part: part.clone(),
                inline,
                lock: self.lock,
                condition: std::mem::take(&mut self.condition),
                encryption: sealing.map(|s| Encryption {
                    mode: s.mode,
                    block: self.store.inner.block_size as u32,
                    keys: vec![s.wrapped],
                }),
            },
            Target::Part {
                upload_id,
                started_ns,
                ..
            } => Op::PutPart {
                bucket: self.bucket.clone(),
                key: self.key.clone(),
                upload_id: upload_id.clone(),
                part: part.clone(),
                inline,
                started_ns: *started_ns,
                sealed: sealing.map(|s| s.wrapped),
            },
            Target::Copy { .. } => unreachable!("refused above"),
        };
        let result = self.store.submit(op);
        let sealed = self.sharded.take();
        match result {
            Ok(Out::Version(version, replaced)) => Ok(Written { version, replaced }),
            Ok(_) => Ok(Written {
                version: part_version(&self.key, part),
                replaced: false,
            }),
            Err(e) => {
                // Refused before any drive changed: the renamed shards are ours to remove.
                // Other failures may have reached some drives; start-up sweeps what is unreferenced.
                if is_refusal(&e) {
                    if let Some(sh) = sealed {
                        for d in sh.pool().drives.iter() {
                            let _ = fs::remove_file(d.shard_path(&sh.id));
                        }
                    }
                }
                Err(e)
            }
        }
    }

    /// Make the written bytes durable shard files, referenced by nothing yet: a copy
    /// for its caller to swap into a record. The hold keeps a drain of the copy's pool
    /// from ending before the swap.
    pub(crate) fn seal_copy(mut self) -> Result<(PartData, Writing)> {
        if self.sharded.is_none() {
            return Err(Error::Meta(
                "only data in shard files moves between pools".into(),
            ));
        }
        let data = self.seal()?;
        let sh = self.sharded.take().expect("sealed");
        Ok((data, sh.writing))
    }

    /// Flush the last block, write headers, sync, and move the shards into `data/`.
    fn seal(&mut self) -> Result<PartData> {
        if !self.buf.is_empty() {
            let last = std::mem::take(&mut self.buf);
            self.write_block(&last)?;
        }
        let inner = &self.store.inner;
        let sh = self.sharded.as_mut().expect("sharding started");
        let pool = sh.pool().clone();
        let (k, m) = (pool.ec.k(), pool.ec.m());
        let upload = match &self.target {
            Target::Object => None,
            Target::Part {
                upload_id, number, ..
            } => Some((upload_id.clone(), *number)),
            Target::Copy { upload } => upload.clone(),
        };
        let size = self.size;
        let (id, rot) = (sh.id, sh.rot);
        let results: Vec<(usize, std::io::Result<()>)> = std::thread::scope(|s| {
            let handles: Vec<_> = sh
                .files
                .iter_mut()
                .enumerate()
                .filter_map(|(i, f)| f.as_mut().map(|f| (i, f)))
                .map(|(i, f)| {
                    let header = ShardHeader {
                        store_id: inner.store_id.clone(),
                        data_id: id,
                        index: i as u8,
                        k: k as u8,
                        m: m as u8,
                        block_size: inner.block_size as u32,
                        size,
                        bucket: self.bucket.clone(),
                        key: self.key.clone(),
                        upload: upload.clone(),
                    };
                    let drive = pool.drive_of(i, rot);
                    let handle = s.spawn(move || -> std::io::Result<()> {
                        let started = std::time::Instant::now();
                        let r = f.finish(&header).and_then(|()| {
                            let dest = drive.shard_path(&id);
                            fs::rename(drive.tmp_shard_path(&id), &dest)?;
                            sync_dir(dest.parent().expect("shard dir"))
                                .map_err(std::io::Error::other)
                        });
                        drive.io.write(started, r.is_ok());
                        r
                    });
                    (i, handle)
                })
                .collect();
            handles
                .into_iter()
                .map(|(i, h)| (i, h.join().expect("shard sync thread")))
                .collect()
        });
        for (i, r) in results {
            if let Err(e) = r {
                sh.files[i] = None;
                let drive = pool.drive_of(i, rot).index;
                self.store.lose_drive(&pool, drive, &id, e, "shard sync")?;
            }
        }
        self.check_quorum()?;
        Ok(ShardLayout {
            pool: pool.id,
            id,
            k: k as u8,
            m: m as u8,
            rot: rot as u8,
            block_size: inner.block_size as u32,
        }
        .data())
    }
}

impl Store {
    /// A shard of data `id` could not be written on drive `index` of `pool`: its files
    /// go, and the drive leaves the write set, so this write and the next go on without
    /// it, degraded, as long as K shards remain (`check_quorum`). A full drive that the
    /// pool cannot let go (its last K online) fails the write instead: the pool is full.
    pub(crate) fn lose_drive(
        &self,
        pool: &Pool,
        index: usize,
        id: &DataId,
        e: std::io::Error,
        what: &str,
    ) -> Result<()> {
        let drive = &pool.drives[index];
        // Whatever the shard held is space the drive needs back.
        let _ = fs::remove_file(drive.tmp_shard_path(id));
        let _ = fs::remove_file(drive.shard_path(id));
        if !is_no_space(&e) {
            drive.set_state(DriveState::Faulty, Some(format!("{what} failed: {e}")));
            return Ok(());
        }
        let problem = format!("out of space ({what}: {e})");
        if self.inner.leave_full(pool, index, problem) {
            return Ok(());
        }
        Err(Error::from_io(e, &drive.root.display().to_string()))
    }
}

/// A part is not an object version; report it in the same shape for callers.
pub(crate) fn part_version(key: &str, part: PartEntry) -> ObjectVersion {
    ObjectVersion {
        key: key.to_string(),
        version_id: String::new(),
        sort: [0; 16],
        delete_marker: false,
        mtime_ns: 0,
        size: part.size,
        meta: ObjectMeta {
            etag: part.etag.clone(),
            ..ObjectMeta::default()
        },
        parts: vec![part],
        retention: None,
        legal_hold: false,
        encryption: None,
        replication: None,
        restored_until_ns: None,
    }
}

fn is_refusal(e: &Error) -> bool {
    matches!(
        e,
        Error::NoSuchBucket(_)
            | Error::NoSuchUpload(_)
            | Error::InvalidKey(_)
            | Error::NoObjectLock(_)
            | Error::ObjectLocked(_)
            | Error::PreconditionFailed
            | Error::NoSuchKey(_)
    )
}

impl Drop for ObjectWriter {
    fn drop(&mut self) {
        if let Some(sh) = self.sharded.take() {
            for (i, f) in sh.files.iter().enumerate() {
                if f.is_some() {
                    let drive = sh.pool().drive_of(i, sh.rot);
                    let _ = fs::remove_file(drive.tmp_shard_path(&sh.id));
                }
            }
        }
    }
}

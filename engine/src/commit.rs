//! Group commit: one thread owns every metadata write.
//!
//! Requests queue on a channel. The committer takes all that are waiting, applies
//! them in one write transaction on the primary drive while recording each
//! mutation, replays that log on every other in-sync drive in parallel, and
//! commits them all (one fsync per drive per batch). Each request is answered
//! only after its batch is durable on at least a quorum of drives. Because every
//! in-sync drive receives the same batches in the same order, their LMDBs hold
//! identical records (apart from each drive's own shard of inline data) and a
//! per-drive batch counter (`#seq`) shows which drives fell behind.

use crate::drive::{Db, Drive, DriveState, Meta};
use crate::error::{Error, Result};
use crate::events::{self, Origin};
use crate::inline::{self, Shards};
use crate::layout::Ec;
use crate::ops::{self, Op, Out};
use crate::record::{keys, DataId};
use crate::replication;
use crate::usage;
use heed::RwTxn;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Most requests folded into one transaction.
const MAX_BATCH: usize = 512;

pub(crate) enum Request {
    Op(Box<Submitted>, SyncSender<Result<Out>>),
    /// Copy the primary's metadata onto a drive that fell behind, then put it back in sync.
    SyncDrive(usize, SyncSender<Result<()>>),
}

/// An operation and who asked for it (`events.rs`).
pub(crate) struct Submitted {
    pub op: Op,
    pub origin: Option<Arc<Origin>>,
    /// The write makes a replica (`replication::as_replica`).
    pub replica: Option<crate::replication::Replica>,
}

/// One change of a batch, replayed on the other drives.
enum Change {
    Put(Vec<u8>, Vec<u8>),
    /// A value of its own for each drive (inline shards): drive `i` gets `values[i]`.
    PutEach(Vec<u8>, Shards),
    Del(Vec<u8>),
}

/// A write transaction that remembers what it changed, so it can be replayed.
pub(crate) struct Tx<'a, 'e> {
    txn: &'a mut RwTxn<'e>,
    db: Db,
    /// The drive this transaction writes.
    index: usize,
    log: Vec<Change>,
    failed: Option<heed::Error>,
    /// Work was queued (`queue::push`): the queue's thread is woken after the commit.
    pub queued: bool,
    /// How many tasks an ordered lane may hold (`Store::set_lane_bound`).
    pub lane_bound: u64,
    /// The operation being applied writes a replica (`replication.rs`).
    pub replica: Option<crate::replication::Replica>,
    /// The store's first pool layout, which inline data is coded in (`usage.rs` raw bytes).
    pub ec: Ec,
    /// Usage counted in this batch, written before it commits (`usage.rs`).
    pub(crate) usage: crate::usage::Pending,
}

impl<'a, 'e> Tx<'a, 'e> {
    fn check<T: Default>(&mut self, r: heed::Result<T>) -> T {
        r.unwrap_or_else(|e| {
            self.failed.get_or_insert(e);
            T::default()
        })
    }

    pub fn get(&mut self, key: &[u8]) -> Option<Vec<u8>> {
        let r = self.db.get(self.txn, key).map(|v| v.map(<[u8]>::to_vec));
        self.check(r)
    }

    /// Whether `key` holds a value, without copying it.
    pub fn has(&mut self, key: &[u8]) -> bool {
        let r = self.db.get(self.txn, key).map(|v| v.is_some());
        self.check(r)
    }

    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        if usage::tracks(&key) {
            let old = self.get(&key);
            usage::count(self, &key, old.as_deref(), Some(&value));
        }
        let r = self.db.put(self.txn, &key, &value);
        self.check(r);
        self.log.push(Change::Put(key, value));
    }

    /// Drive `i` stores `values[i]` under `key`.
    pub fn put_each(&mut self, key: Vec<u8>, values: Shards) {
        let r = self.db.put(self.txn, &key, &values[self.index]);
        self.check(r);
        self.log.push(Change::PutEach(key, values));
    }

    pub fn del(&mut self, key: Vec<u8>) {
        if usage::tracks(&key) {
            let old = self.get(&key);
            usage::count(self, &key, old.as_deref(), None);
            // A key's read record goes with its current version (`access.rs`).
            if key[0] == keys::LATEST && old.is_some() {
                let mut access = key.clone();
                access[0] = keys::ACCESS;
                self.del(access);
            }
        }
        let r = self.db.delete(self.txn, &key).map(|_| ());
        self.check(r);
        self.log.push(Change::Del(key));
    }

    /// Every entry under `prefix`, in key order.
    pub fn scan(&mut self, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.scan_first(prefix, usize::MAX)
    }

    /// Calls `f` on every entry under `prefix`, in key order, holding none of them.
    pub fn each(&mut self, prefix: &[u8], mut f: impl FnMut(&[u8], &[u8])) {
        let r = self.db.prefix_iter(self.txn, prefix).and_then(|it| {
            for kv in it {
                let (k, v) = kv?;
                f(k, v);
            }
            Ok(())
        });
        self.check(r)
    }

    /// The first `n` entries under `prefix`, in key order.
    pub fn scan_first(&mut self, prefix: &[u8], n: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
        let r = self.db.prefix_iter(self.txn, prefix).and_then(|it| {
            it.take(n)
                .map(|kv| kv.map(|(k, v)| (k.to_vec(), v.to_vec())))
                .collect()
        });
        self.check(r)
    }

    pub fn has_prefix(&mut self, prefix: &[u8]) -> bool {
        let r = self
            .db
            .prefix_iter(self.txn, prefix)
            .and_then(|mut it| it.next().transpose().map(|kv| kv.is_some()));
        self.check(r)
    }
}

/// Commit times: wall-clock nanoseconds, strictly increasing within the process.
pub(crate) struct Clock {
    last: u64,
}

impl Clock {
    pub fn new() -> Clock {
        Clock { last: 0 }
    }

    pub fn now(&mut self) -> u64 {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        self.last = wall.max(self.last + 1);
        self.last
    }
}

/// Like `Clock`, for callers on many threads: wall-clock nanoseconds, strictly increasing
/// within the process, so two stamps taken one after the other never tie.
#[derive(Default)]
pub(crate) struct Stamps {
    last: AtomicU64,
}

impl Stamps {
    pub fn next(&self) -> u64 {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let prev = self
            .last
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| {
                Some(wall.max(last + 1))
            })
            .unwrap_or_else(|last| last);
        wall.max(prev + 1)
    }
}

pub(crate) struct Committer {
    pub drives: Arc<Vec<Drive>>,
    pub ec: Ec,
    /// Fewest drives that must hold a commit before it is acknowledged.
    pub quorum: usize,
    /// Shard files of deleted data, removed after the commit that dropped them.
    pub reclaim: crate::reclaim::Reclaimer,
    pub clock: Clock,
    /// Woken after a commit that queued work.
    pub kick: Arc<crate::queue::Kick>,
    pub lane_bound: Arc<AtomicU64>,
}

impl Committer {
    pub fn run(mut self, rx: Receiver<Request>) {
        while let Ok(first) = rx.recv() {
            let mut batch = Vec::new();
            let mut next = Some(first);
            while let Some(req) = next.take() {
                match req {
                    Request::Op(op, reply) => batch.push((*op, reply)),
                    Request::SyncDrive(d, reply) => {
                        self.commit(std::mem::take(&mut batch));
                        let _ = reply.send(self.sync_drive(d));
                    }
                }
                if batch.len() < MAX_BATCH {
                    next = rx.try_recv().ok();
                }
            }
            self.commit(batch);
        }
    }

    fn commit(&mut self, batch: Vec<(Submitted, SyncSender<Result<Out>>)>) {
        if batch.is_empty() {
            return;
        }
        match self.apply(&batch) {
            Ok(results) => {
                for ((_, reply), (result, freed)) in batch.into_iter().zip(results) {
                    let _ = reply.send(result);
                    self.reclaim.drop_data(freed);
                }
            }
            Err(e) => {
                let msg = e.to_string();
                let storage_full = matches!(e, Error::StorageFull(_));
                for (_, reply) in batch {
                    let err = if storage_full {
                        Error::StorageFull(msg.clone())
                    } else {
                        Error::Meta(msg.clone())
                    };
                    let _ = reply.send(Err(err));
                }
            }
        }
    }

    /// Apply a batch everywhere; per-request results, or one error for the whole batch.
    #[allow(clippy::type_complexity)]
    fn apply(
        &mut self,
        batch: &[(Submitted, SyncSender<Result<Out>>)],
    ) -> Result<Vec<(Result<Out>, Vec<DataId>)>> {
        let all = self.drives.clone();
        let drives = in_sync(&all);
        if drives.len() < self.quorum {
            return Err(Error::InsufficientDrives {
                online: drives.len(),
                needed: self.quorum,
            });
        }
        let (primary, meta) = &drives[0];
        let mut txn = meta.env.write_txn()?;
        let mut tx = Tx {
            txn: &mut txn,
            db: meta.db,
            index: primary.index,
            log: Vec::new(),
            failed: None,
            queued: false,
            lane_bound: self.lane_bound.load(Ordering::Relaxed),
            replica: None,
            ec: self.ec,
            usage: Default::default(),
        };
        let mut results = Vec::with_capacity(batch.len());
        for (
            Submitted {
                op,
                origin,
                replica,
            },
            _,
        ) in batch
        {
            let mut freed = Vec::new();
            tx.replica = replica.clone();
            let r = ops::apply(&mut tx, op, &mut self.clock, &mut freed);
            if let Ok(out) = &r {
                // A refused operation changed nothing, so it raises no event; an event
                // or a replication that cannot be queued fails the batch, since it is
                // durable with its change.
                events::record(&mut tx, op, out, origin.as_ref(), &mut self.clock)?;
                if tx.replica.is_none() {
                    replication::record(&mut tx, op, out)?;
                    crate::site::record(&mut tx, op, &mut self.clock)?;
                }
            }
            if let Some(e) = tx.failed.take() {
                return Err(e.into());
            }
            results.push((r, freed));
        }
        crate::usage::flush(&mut tx)?;
        let seq = tx
            .get(keys::SEQ)
            .and_then(|v| v.try_into().ok())
            .map(u64::from_be_bytes)
            .unwrap_or(0);
        tx.put(keys::SEQ.to_vec(), (seq + 1).to_be_bytes().to_vec());
        if let Some(e) = tx.failed.take() {
            return Err(e.into());
        }
        let log = std::mem::take(&mut tx.log);
        let queued = tx.queued;
        let outcomes: Vec<(usize, Result<()>)> = std::thread::scope(|s| {
            let others: Vec<_> = drives[1..]
                .iter()
                .map(|(d, meta)| s.spawn(|| (d.index, replay(meta, d.index, &log))))
                .collect();
            let mut outcomes = vec![(primary.index, txn.commit().map_err(Error::from))];
            outcomes.extend(others.into_iter().map(|h| h.join().expect("replay thread")));
            outcomes
        });
        let mut ok = 0;
        let mut first_err = None;
        for (index, r) in outcomes {
            match r {
                Ok(()) => ok += 1,
                Err(e) => {
                    self.drives[index].set_state(
                        DriveState::Stale,
                        Some(format!("metadata commit failed: {e}")),
                    );
                    first_err.get_or_insert(e);
                }
            }
        }
        if ok < self.quorum {
            return Err(first_err.unwrap_or(Error::InsufficientDrives {
                online: ok,
                needed: self.quorum,
            }));
        }
        if queued {
            self.kick.wake();
        }
        Ok(results)
    }

    fn sync_drive(&mut self, index: usize) -> Result<()> {
        let target = &self.drives[index];
        let (_, src) = in_sync(&self.drives)
            .into_iter()
            .find(|(d, _)| d.index != index)
            .ok_or(Error::InsufficientDrives {
                online: 0,
                needed: self.quorum,
            })?;
        let dst = target
            .meta()
            .ok_or_else(|| Error::Meta(format!("drive {index} has no metadata open")))?;
        // Inline shards are the one thing a drive does not copy: it keeps its own where
        // it still has them intact, and gets the others rebuilt from every drive that can
        // be read, in sync or not (a shard never changes, and its crc tells a good one).
        let peers: Vec<Option<(heed::RoTxn<'static, heed::WithoutTls>, Db)>> = self
            .drives
            .iter()
            .map(|d| {
                let meta = d.meta().filter(|_| d.state() != DriveState::Faulty)?;
                let rtxn = meta.env.clone().static_read_txn().ok()?;
                Some((rtxn, meta.db))
            })
            .collect();
        let rtxn = src.env.read_txn()?;
        let mut wtxn = dst.env.write_txn()?;
        dst.db.clear(&mut wtxn)?;
        let mut lost = 0u64;
        for kv in src.db.iter(&rtxn)? {
            let (k, v) = kv?;
            let own;
            let v = match k.first() == Some(&keys::INLINE_SHARD) {
                false => v,
                true => {
                    let shard = |i: usize| {
                        let (rtxn, db) = peers[i].as_ref()?;
                        inline::unframe(db.get(rtxn, k).ok()??.to_vec(), i)
                    };
                    let kept = peers[index].as_ref().and_then(|(rtxn, db)| {
                        let v = db.get(rtxn, k).ok()??;
                        inline::unframe(v.to_vec(), index).map(|_| v.to_vec())
                    });
                    match kept.map(Ok).unwrap_or_else(|| {
                        inline::rebuild(self.ec, index, |i| {
                            (i != index).then(|| shard(i)).flatten()
                        })
                    }) {
                        Ok(value) => {
                            own = value;
                            &own[..]
                        }
                        // Fewer than K shards anywhere: nothing to give this drive.
                        Err(_) => {
                            lost += 1;
                            continue;
                        }
                    }
                }
            };
            // SAFETY: keys come sorted from the source, as MDB_APPEND requires.
            dst.db
                .put_with_flags(&mut wtxn, heed::PutFlags::APPEND, k, v)?;
        }
        if lost > 0 {
            tracing::warn!(
                drive = index,
                "{lost} inline object(s) with fewer than K shards left"
            );
        }
        wtxn.commit()?;
        target.set_state(DriveState::Online, None);
        tracing::info!(drive = index, "drive metadata back in sync");
        Ok(())
    }
}

/// Online drives with their metadata, held for the batch: a drive taken out meanwhile
/// (emptied, reformatted) keeps its old environment until the batch is done with it.
fn in_sync(drives: &[Drive]) -> Vec<(&Drive, Arc<Meta>)> {
    drives
        .iter()
        .filter(|d| d.state() == DriveState::Online)
        .filter_map(|d| d.meta().map(|m| (d, m)))
        .collect()
}

fn replay(meta: &Meta, index: usize, log: &[Change]) -> Result<()> {
    let mut txn = meta.env.write_txn()?;
    for change in log {
        match change {
            Change::Put(k, v) => meta.db.put(&mut txn, k, v)?,
            Change::PutEach(k, values) => meta.db.put(&mut txn, k, &values[index])?,
            Change::Del(k) => {
                meta.db.delete(&mut txn, k)?;
            }
        }
    }
    txn.commit()?;
    Ok(())
}

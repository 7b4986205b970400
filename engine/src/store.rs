//! The store: drives, background threads, and the public operations.
//!
//! (Over 800 lines: it is the engine's whole public API, one thin method per operation;
//! the work lives in the modules it calls.)

use crate::commit::{Clock, Committer, Request, Submitted};
use crate::condition::WriteCondition;
use crate::drive::{Db, Drive, DriveState};
use crate::error::{Error, Result};
use crate::expire::Expiry;
use crate::kms::KeyService;
use crate::layout::{Ec, Format, BLOCK_SIZE, FORMAT_VERSION};
use crate::list::{self, ListPage, ListQuery, VersionPage, VersionQuery};
use crate::ops::{Deleted, Op, Out};
use crate::read::ObjectReader;
use crate::reclaim::Reclaimer;
use crate::record::{
    self, keys, Acl, BucketRecord, BucketStats, DataId, DefaultRetention, LockRequest, ObjectMeta,
    ObjectVersion, PartData, PartRecord, Retention, SseMode, UploadRecord, Versioning, Written,
};
use crate::write::{ObjectWriter, Target};
use heed::{RoTxn, WithoutTls};
use serde::Serialize;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::{Arc, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// One directory per disk. Their order is part of the layout.
    pub drives: Vec<PathBuf>,
    /// Data+parity split; defaults from the drive count. Fixed at creation.
    pub ec: Option<Ec>,
    /// Block (stripe) size for a new store; defaults to [`BLOCK_SIZE`].
    pub block_size: Option<u32>,
    /// How often the background scanner verifies everything.
    pub scan_interval: Duration,
    /// Sweep orphans at start and heal in the background. Off for a look that must change nothing.
    pub background: bool,
    /// The most bytes per second that moving data between pools may read (a drain), so
    /// that foreground requests keep the disks; unlimited when `None`.
    pub move_bandwidth: Option<u64>,
}

impl StoreConfig {
    pub fn new(drives: Vec<PathBuf>) -> StoreConfig {
        StoreConfig {
            drives,
            ec: None,
            block_size: None,
            scan_interval: Duration::from_secs(24 * 3600),
            background: true,
            move_bandwidth: None,
        }
    }
}

/// A handle to an open store; clones share it. Dropping the last one stops its threads
/// and releases the drives before it returns, so the store can be opened again at once.
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
    /// Shared by the caller's handles only; the healer's own handle has none, so that the
    /// last caller's drop can wait for the healer even while it holds the store mid-heal.
    _user: Option<Arc<UserHandles>>,
}

struct UserHandles {
    inner: Weak<Inner>,
    healer: Mutex<Option<JoinHandle<()>>>,
    /// The work queue's thread (`queue::work_loop`).
    worker: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for UserHandles {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.upgrade() {
            inner.heal_queue.lock().unwrap().take();
            inner.kick.close();
            inner.reads.close();
        }
        // The healer and the worker drop the last reference (and so close the drives)
        // before they exit.
        for t in [&self.healer, &self.worker] {
            if let Some(t) = t.lock().unwrap().take() {
                let _ = t.join();
            }
        }
    }
}

pub(crate) struct Inner {
    /// The first pool's drives: each holds a full copy of the index.
    pub drives: Arc<Vec<Drive>>,
    /// Every pool, the first (these drives) included (`pool.rs`).
    pub pools: Arc<crate::pool::Pools>,
    /// Pools are added and their states changed one at a time (and classes bound).
    pub pool_admin: Mutex<()>,
    /// Storage classes bound to pools (`classes.rs`).
    pub classes: std::sync::RwLock<Vec<crate::classes::StorageClass>>,
    /// Bytes per second a drain may move (`StoreConfig::move_bandwidth`).
    pub move_bandwidth: Option<u64>,
    /// The client of remote tiers, once the server gives one (`remote.rs`).
    pub remote: std::sync::OnceLock<Arc<dyn crate::remote::RemoteStore>>,
    /// When this process opened the store (Unix ns): work queued before is a past run's.
    pub opened_ns: u64,
    pub ec: Ec,
    pub block_size: usize,
    pub store_id: String,
    commits: Mutex<Option<SyncSender<Request>>>,
    heal_queue: Mutex<Option<Sender<DataId>>>,
    heal_pending: Mutex<HashSet<DataId>>,
    /// One heal at a time, whoever asks (scanner, reads, admin).
    pub heal_lock: Mutex<()>,
    /// The passes' counters (`heal.rs`).
    pub passes: crate::heal::Passes,
    /// Drives leave the write set one at a time, so that two filling at once cannot
    /// both leave when only one may (`Inner::leave_full`).
    pub membership: Mutex<()>,
    /// Serving writes (background work on): young orphans may be writes in flight.
    pub live: bool,
    pub edges: crate::read::EdgeCache,
    pub inline_cache: crate::inline_cache::InlineCache,
    /// Stamps the start of each part upload (`PartRecord::started_ns`).
    pub part_starts: crate::commit::Stamps,
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// The built-in KMS (`kms.rs`).
    pub kms: crate::kms::Kms,
    /// The client notifications are delivered with, once the server gives one.
    pub notifier: std::sync::OnceLock<Arc<dyn crate::events::Notifier>>,
    /// The server's replication client (`Store::set_replicator`).
    pub replicator: std::sync::OnceLock<Arc<dyn crate::replication::Replicator>>,
    /// Wakes the work queue's thread (`queue.rs`).
    pub kick: Arc<crate::queue::Kick>,
    /// How many tasks an ordered lane may hold (`Store::set_lane_bound`).
    pub lane_bound: Arc<std::sync::atomic::AtomicU64>,
    /// Seconds in a usage day (`usage.rs`, `Store::set_usage_day`).
    pub usage_day: std::sync::atomic::AtomicU64,
    /// Reads sampled for access classes (`access.rs`).
    pub reads: crate::access::Sampler,
}

impl Inner {
    /// Data queued for healing and not yet healed.
    pub fn heal_backlog(&self) -> usize {
        self.heal_pending.lock().unwrap().len()
    }

    /// The last user handle is gone: background work should stop at its next step.
    pub fn closing(&self) -> bool {
        self.heal_queue.lock().unwrap().is_none()
    }

    pub fn format_for(&self, index: usize) -> Format {
        Format {
            format: FORMAT_VERSION,
            store_id: self.store_id.clone(),
            drive_index: index,
            drive_count: self.drives.len(),
            ec: self.ec,
            block_size: self.block_size as u32,
            pool: 0,
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.reads.close();
        self.commits.lock().unwrap().take();
        self.heal_queue.lock().unwrap().take();
        let me = std::thread::current().id();
        for t in self.threads.lock().unwrap().drain(..) {
            if t.thread().id() != me {
                let _ = t.join();
            }
        }
    }
}

#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct DriveStatus {
    pub index: usize,
    pub path: String,
    pub state: DriveState,
    pub problem: Option<String>,
    pub total_bytes: Option<u64>,
    pub free_bytes: Option<u64>,
    /// Shard I/O since the store was opened.
    #[serde(default)]
    pub io: crate::IoCounts,
}

#[derive(Clone, Debug, Serialize)]
pub struct Status {
    pub store_id: String,
    pub ec: String,
    pub block_size: usize,
    pub drives: Vec<DriveStatus>,
    /// Enough drives online for writes to commit.
    pub writable: bool,
    /// Some drive is out of the write set: new objects are stored with less redundancy
    /// (missing shards), to be rebuilt when the drive comes back.
    pub degraded: bool,
    pub buckets: u64,
    pub objects: u64,
    pub bytes: u64,
    /// Work queued (remote deletes and cleanups) and dead letters (`queue.rs`).
    pub queue: crate::queue::QueueStatus,
}

impl DriveStatus {
    pub(crate) fn of(d: &Drive) -> DriveStatus {
        let cap = d.capacity();
        DriveStatus {
            index: d.index,
            path: d.root.display().to_string(),
            state: d.state(),
            problem: d.problem.lock().unwrap().clone(),
            total_bytes: cap.map(|c| c.0),
            free_bytes: cap.map(|c| c.1),
            io: d.io.counts(),
        }
    }
}

impl Store {
    /// Open the store on these drives, creating it if none of them is formatted yet.
    pub fn open(cfg: StoreConfig) -> Result<Store> {
        let n = cfg.drives.len();
        if n == 0 {
            return Err(Error::Layout("at least one drive is needed".into()));
        }
        if n > 128 {
            return Err(Error::Layout("at most 128 drives per store".into()));
        }
        let drives: Vec<Drive> = cfg
            .drives
            .iter()
            .enumerate()
            .map(|(i, p)| Drive::new(i, p.clone()))
            .collect();
        let mut formats: Vec<Result<Option<Format>>> =
            drives.iter().map(Drive::read_format).collect();
        let reference = formats
            .iter()
            .filter_map(|f| f.as_ref().ok().and_then(Clone::clone))
            .next();
        let reference = match reference {
            Some(f) => {
                if f.drive_count != n {
                    return Err(Error::Layout(format!(
                        "the store was created with {} drives, {n} given",
                        f.drive_count
                    )));
                }
                if cfg.ec.is_some_and(|ec| ec != f.ec) {
                    return Err(Error::Layout(format!(
                        "the store's erasure layout is fixed at {} since its first start",
                        f.ec
                    )));
                }
                f
            }
            None => {
                let created = create(&drives, &formats, &cfg)?;
                // The drives were just formatted: open them as formatted ones.
                formats = drives.iter().map(Drive::read_format).collect();
                created
            }
        };
        for (d, f) in drives.iter().zip(&formats) {
            match f {
                Ok(Some(f)) if f.store_id == reference.store_id => {
                    if f.drive_index != d.index {
                        return Err(Error::Layout(format!(
                            "{} is drive {} of this store but was given as drive {}; keep the original order",
                            d.root.display(),
                            f.drive_index,
                            d.index
                        )));
                    }
                    match d.open() {
                        Ok(()) => d.set_state(DriveState::Online, None),
                        Err(e @ Error::Locked(_)) => return Err(e),
                        Err(e) => {
                            d.set_state(DriveState::Faulty, Some(format!("cannot open: {e}")))
                        }
                    }
                }
                Ok(Some(_)) => d.set_state(
                    DriveState::Faulty,
                    Some("formatted for another store".into()),
                ),
                Ok(None) => d.set_state(DriveState::Faulty, Some("not formatted".into())),
                Err(e) => d.set_state(DriveState::Faulty, Some(e.to_string())),
            }
        }
        let seqs: Vec<Option<u64>> = drives
            .iter()
            .map(|d| d.meta().and_then(|m| m.seq().ok()))
            .collect();
        let mut held: Vec<u64> = seqs.iter().flatten().copied().collect();
        if held.is_empty() {
            return Err(Error::InsufficientDrives {
                online: 0,
                needed: reference.ec.k(),
            });
        }
        // The newest batch at least K drives hold. A commit is acknowledged once K drives
        // have it, so a batch on fewer was cut off by a crash (unless more than M drives
        // failed since): its inline data, which only travels with the commit, has fewer
        // than K shards. Drives that hold such a batch are resynced back to this one.
        held.sort_unstable_by(|a, b| b.cmp(a));
        let newest = held[reference.ec.k().clamp(1, held.len()) - 1];
        for (d, s) in drives.iter().zip(&seqs) {
            if d.state() == DriveState::Online && *s != Some(newest) {
                let why = match s.is_some_and(|s| s > newest) {
                    true => "metadata holds a commit cut off by a crash; resyncing",
                    false => "metadata is behind the other drives",
                };
                d.set_state(DriveState::Stale, Some(why.into()));
            }
        }
        let drives = Arc::new(drives);
        let pools = Arc::new(crate::pool::Pools::new(drives.clone(), reference.ec));
        let (reclaimer, reclaim_thread) = Reclaimer::spawn(pools.clone());
        let (commit_tx, commit_rx) = mpsc::sync_channel(4096);
        let kick = Arc::new(crate::queue::Kick::default());
        let lane_bound = Arc::new(std::sync::atomic::AtomicU64::new(
            crate::queue::DEFAULT_LANE_BOUND,
        ));
        let committer = Committer {
            drives: drives.clone(),
            ec: reference.ec,
            quorum: reference.ec.k().max(1),
            reclaim: reclaimer,
            clock: Clock::new(),
            kick: kick.clone(),
            lane_bound: lane_bound.clone(),
        };
        let commit_thread = std::thread::Builder::new()
            .name("cybs3-commit".into())
            .spawn(move || committer.run(commit_rx))?;
        let (heal_tx, heal_rx) = mpsc::channel();
        let (reads, read_samples) = crate::access::Sampler::new();
        let inner = Arc::new(Inner {
            drives,
            pools,
            pool_admin: Mutex::new(()),
            classes: Default::default(),
            remote: Default::default(),
            kms: Default::default(),
            notifier: Default::default(),
            replicator: Default::default(),
            kick,
            lane_bound,
            usage_day: std::sync::atomic::AtomicU64::new(crate::usage::DAY_SECS),
            reads,
            opened_ns: crate::commit::Clock::new().now(),
            move_bandwidth: cfg.move_bandwidth,
            ec: reference.ec,
            block_size: reference.block_size as usize,
            store_id: reference.store_id.clone(),
            commits: Mutex::new(Some(commit_tx)),
            heal_queue: Mutex::new(Some(heal_tx)),
            heal_pending: Mutex::new(HashSet::new()),
            passes: Default::default(),
            heal_lock: Mutex::new(()),
            membership: Mutex::new(()),
            live: cfg.background,
            edges: Default::default(),
            inline_cache: Default::default(),
            part_starts: Default::default(),
            threads: Mutex::new(vec![commit_thread, reclaim_thread]),
        });
        let weak = Arc::downgrade(&inner);
        let user = Arc::new(UserHandles {
            inner: weak.clone(),
            healer: Mutex::new(None),
            worker: Mutex::new(None),
        });
        let store = Store {
            inner,
            _user: Some(user.clone()),
        };
        store.open_pools()?;
        store.load_storage_classes()?;
        store.file_lanes()?;
        if !cfg.background {
            return Ok(store);
        }
        store.open_usage()?;
        let to_reads = weak.clone();
        let reads = std::thread::Builder::new()
            .name("cybs3-reads".into())
            .spawn(move || crate::access::write_loop(to_reads, read_samples))?;
        store.inner.threads.lock().unwrap().push(reads);
        let (orphans, _) = store.sweep_orphans(true, Duration::ZERO)?;
        if orphans > 0 {
            tracing::info!("removed {orphans} orphaned shard file(s) left by an interrupted write");
        }
        // A scan at once rebuilds what a missing drive lacks, and shards the inline data
        // of a store from before inline erasure coding.
        let degraded = store
            .inner
            .pools
            .all()
            .iter()
            .filter(|p| p.state() != crate::pool::PoolState::Drained)
            .any(|p| p.drives.iter().any(|d| d.state() != DriveState::Online))
            || store.has_whole_inline().unwrap_or(false);
        let kick = store.inner.kick.clone();
        let to_work = weak.clone();
        let worker = std::thread::Builder::new()
            .name("cybs3-work".into())
            .spawn(move || crate::queue::work_loop(to_work, kick))?;
        *user.worker.lock().unwrap() = Some(worker);
        let healer = std::thread::Builder::new()
            .name("cybs3-heal".into())
            .spawn(move || heal_loop(weak, heal_rx, cfg.scan_interval, degraded))?;
        *user.healer.lock().unwrap() = Some(healer);
        Ok(store)
    }

    /// A background thread's handle: it does not keep the store open for its users.
    pub(crate) fn background(inner: Arc<Inner>) -> Store {
        Store { inner, _user: None }
    }

    pub fn ec(&self) -> Ec {
        self.inner.ec
    }

    pub fn block_size(&self) -> usize {
        self.inner.block_size
    }

    pub(crate) fn submit(&self, op: Op) -> Result<Out> {
        let (tx, rx) = mpsc::sync_channel(1);
        let sender = self
            .inner
            .commits
            .lock()
            .unwrap()
            .clone()
            .ok_or_else(|| Error::Meta("store is closing".into()))?;
        let origin = crate::events::current();
        let replica = crate::replication::current();
        sender
            .send(Request::Op(
                Box::new(Submitted {
                    op,
                    origin,
                    replica,
                }),
                tx,
            ))
            .map_err(|_| Error::Meta("commit thread stopped".into()))?;
        rx.recv()
            .map_err(|_| Error::Meta("commit thread stopped".into()))?
    }

    pub(crate) fn sync_drive(&self, index: usize) -> Result<()> {
        let (tx, rx) = mpsc::sync_channel(1);
        let sender = self.inner.commits.lock().unwrap().clone();
        sender
            .ok_or_else(|| Error::Meta("store is closing".into()))?
            .send(Request::SyncDrive(index, tx))
            .map_err(|_| Error::Meta("commit thread stopped".into()))?;
        rx.recv()
            .map_err(|_| Error::Meta("commit thread stopped".into()))?
    }

    pub(crate) fn queue_heal(&self, id: DataId) {
        if self.inner.heal_pending.lock().unwrap().insert(id) {
            if let Some(q) = self.inner.heal_queue.lock().unwrap().as_ref() {
                let _ = q.send(id);
            }
        }
    }

    /// A read transaction on an in-sync drive's metadata.
    pub(crate) fn read(&self) -> Result<(RoTxn<'static, WithoutTls>, Db)> {
        self.read_at().map(|(_, rtxn, db)| (rtxn, db))
    }

    /// A read transaction on an in-sync drive's metadata, and that drive's index.
    pub(crate) fn read_at(&self) -> Result<(usize, RoTxn<'static, WithoutTls>, Db)> {
        let mut last = None;
        for d in self.inner.drives.iter() {
            if d.state() != DriveState::Online {
                continue;
            }
            if let Some(meta) = d.meta() {
                match meta.env.clone().static_read_txn() {
                    Ok(rtxn) => return Ok((d.index, rtxn, meta.db)),
                    Err(e) => last = Some(e),
                }
            }
        }
        match last {
            Some(e) => Err(e.into()),
            None => Err(Error::InsufficientDrives {
                online: 0,
                needed: self.inner.ec.k(),
            }),
        }
    }

    fn get<T: record::Record>(&self, key: &[u8]) -> Result<Option<T>> {
        let (rtxn, db) = self.read()?;
        db.get(&rtxn, key)?.map(record::decode).transpose()
    }

    pub fn status(&self) -> Status {
        let drives: Vec<DriveStatus> = self.inner.drives.iter().map(DriveStatus::of).collect();
        let online = drives
            .iter()
            .filter(|d| d.state == DriveState::Online)
            .count();
        let (mut buckets, mut objects, mut bytes) = (0, 0, 0);
        if let Ok(list) = self.list_buckets() {
            buckets = list.len() as u64;
            for b in list {
                if let Ok(s) = self.bucket_stats(&b.name) {
                    objects += s.objects;
                    bytes += s.bytes;
                }
            }
        }
        Status {
            store_id: self.inner.store_id.clone(),
            ec: self.inner.ec.to_string(),
            block_size: self.inner.block_size,
            writable: online >= self.inner.ec.k(),
            degraded: online < drives.len(),
            drives,
            buckets,
            objects,
            bytes,
            queue: self.queue_status().unwrap_or_default(),
        }
    }

    // ----- buckets -----

    pub fn create_bucket(&self, name: &str) -> Result<()> {
        self.create_bucket_with(name, false, Vec::new())
    }

    /// A bucket with object lock from the start: versioned for good.
    pub fn create_locked_bucket(&self, name: &str) -> Result<()> {
        self.create_bucket_with(name, true, Vec::new())
    }

    /// A bucket born with these attributes (as [`Store::set_bucket_attr`] sets them),
    /// in one commit; with object lock from the start when `object_lock`.
    pub fn create_bucket_with(
        &self,
        name: &str,
        object_lock: bool,
        attrs: Vec<(String, Vec<u8>)>,
    ) -> Result<()> {
        validate_bucket_name(name)?;
        self.submit(Op::CreateBucket {
            name: name.to_string(),
            object_lock,
            attrs,
        })
        .map(drop)
    }

    pub fn delete_bucket(&self, name: &str) -> Result<()> {
        self.submit(Op::DeleteBucket(name.to_string())).map(drop)
    }

    pub fn bucket(&self, name: &str) -> Result<BucketRecord> {
        self.get(&keys::bucket(name))?
            .ok_or_else(|| Error::NoSuchBucket(name.to_string()))
    }

    pub fn list_buckets(&self) -> Result<Vec<BucketRecord>> {
        let (rtxn, db) = self.read()?;
        let buckets = db
            .prefix_iter(&rtxn, &[keys::BUCKET])?
            .map(|kv| record::decode(kv?.1))
            .collect();
        buckets
    }

    pub fn bucket_stats(&self, name: &str) -> Result<BucketStats> {
        Ok(self.get(&keys::stats(name))?.unwrap_or_default())
    }

    pub fn set_versioning(&self, name: &str, state: Versioning) -> Result<()> {
        self.submit(Op::SetVersioning(name.to_string(), state))
            .map(drop)
    }

    /// Turn object lock on for a versioned bucket (it stays on), with a default
    /// retention for new versions or none; also how the default is changed.
    pub fn set_object_lock(&self, bucket: &str, default: Option<DefaultRetention>) -> Result<()> {
        self.submit(Op::SetObjectLock {
            bucket: bucket.to_string(),
            default,
        })
        .map(drop)
    }

    /// A bucket's object lock: `None` when it has none, else its default retention if any.
    pub fn object_lock(&self, bucket: &str) -> Result<Option<Option<DefaultRetention>>> {
        let rec = self.bucket(bucket)?;
        if !rec.object_lock {
            return Ok(None);
        }
        Ok(Some(self.get(&keys::attr(
            bucket,
            crate::lock::LOCK_DEFAULT_ATTR,
        ))?))
    }

    /// Store a named bucket setting (tagging, CORS, policy, ...); `None` removes it.
    pub fn set_bucket_attr(&self, bucket: &str, name: &str, value: Option<Vec<u8>>) -> Result<()> {
        self.submit(Op::SetBucketAttr {
            bucket: bucket.to_string(),
            name: name.to_string(),
            value,
        })
        .map(drop)
    }

    pub fn bucket_attr(&self, bucket: &str, name: &str) -> Result<Option<Vec<u8>>> {
        self.bucket(bucket)?;
        let (rtxn, db) = self.read()?;
        Ok(db
            .get(&rtxn, &keys::attr(bucket, name))?
            .map(<[u8]>::to_vec))
    }

    // ----- server records -----

    /// Store a server-wide record (access key, user, policy) that the engine keeps
    /// durable and replicated like all metadata but does not interpret; `None` removes it.
    /// Namespaces and names are opaque strings without NUL.
    pub fn set_server_record(&self, ns: &str, name: &str, value: Option<Vec<u8>>) -> Result<()> {
        if ns.contains('\0') || name.contains('\0') || ns.is_empty() || name.is_empty() {
            return Err(Error::InvalidKey(
                "server record names are non-empty and have no NUL",
            ));
        }
        self.submit(Op::SetServerRecord {
            ns: ns.to_string(),
            name: name.to_string(),
            value,
        })
        .map(drop)
    }

    /// Set or remove several server records in one commit: all of them, or none after
    /// a crash.
    pub fn set_server_records(
        &self,
        records: Vec<(String, String, Option<Vec<u8>>)>,
    ) -> Result<()> {
        for (ns, name, _) in &records {
            if ns.contains('\0') || name.contains('\0') || ns.is_empty() || name.is_empty() {
                return Err(Error::InvalidKey(
                    "server record names are non-empty and have no NUL",
                ));
            }
        }
        self.submit(Op::SetServerRecords(records)).map(drop)
    }

    pub fn server_record(&self, ns: &str, name: &str) -> Result<Option<Vec<u8>>> {
        let (rtxn, db) = self.read()?;
        Ok(db.get(&rtxn, &keys::server(ns, name))?.map(<[u8]>::to_vec))
    }

    /// Every record of namespace `ns`, sorted by name.
    pub fn server_records(&self, ns: &str) -> Result<Vec<(String, Vec<u8>)>> {
        let (rtxn, db) = self.read()?;
        let base = keys::server(ns, "");
        let mut out = Vec::new();
        for kv in db.prefix_iter(&rtxn, &base)? {
            let (k, v) = kv?;
            out.push((
                String::from_utf8_lossy(&k[base.len()..]).into_owned(),
                v.to_vec(),
            ));
        }
        Ok(out)
    }

    // ----- objects -----

    /// Start writing a new version of `bucket/key`.
    pub fn put(&self, bucket: &str, key: &str) -> Result<ObjectWriter> {
        validate_key(key)?;
        self.bucket(bucket)?;
        Ok(ObjectWriter::new(self.clone(), bucket, key, Target::Object))
    }

    /// The current version (or the given one) of an object.
    pub fn head(&self, bucket: &str, key: &str, version_id: Option<&str>) -> Result<ObjectVersion> {
        let (rtxn, db) = self.read()?;
        head_in(&rtxn, db, bucket, key, version_id)
    }

    /// Open a version for reading (an encrypted one's plaintext: its data keys are
    /// unwrapped here, so a disabled KMS key fails the open, not the read).
    pub fn open_object(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<ObjectReader> {
        let (v, inline) = self.open_stored(bucket, key, version_id)?;
        let Some(enc) = &v.encryption else {
            return Ok(ObjectReader::new(self.clone(), v, inline));
        };
        if let SseMode::Customer { .. } = enc.mode {
            // Its keys come with the request: `ObjectReader::unlock`.
            return Ok(ObjectReader::locked(self.clone(), v, inline));
        }
        let context = crate::record::Encryption::context(&enc.mode);
        let keys = enc
            .keys
            .iter()
            .map(|w| Ok(crate::sse::DataKey::new(&self.unwrap(w, context)?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(ObjectReader::sealed(self.clone(), v, inline, keys))
    }

    /// A version, and the bytes of its inline parts, as stored.
    fn open_stored(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<(ObjectVersion, Vec<Option<Vec<u8>>>)> {
        // An overwrite racing this read can drop an inline part's shards between reading
        // the version on one drive and its shards on the others: then read the version
        // again, and fail only if it is still the same one.
        let mut failed_on = None;
        loop {
            let (at, rtxn, db) = self.read_at()?;
            let v = head_in(&rtxn, db, bucket, key, version_id)?;
            let inline: Result<Vec<Option<Vec<u8>>>> = v
                .parts
                .iter()
                .map(|p| match p.data {
                    PartData::Inline { id } => {
                        self.inline_bytes(&id, p.size, (at, &rtxn, db)).map(Some)
                    }
                    PartData::Sharded { .. }
                    | PartData::Pooled { .. }
                    | PartData::Remote { .. } => Ok(None),
                })
                .collect();
            drop(rtxn);
            match inline {
                Ok(inline) => return Ok((v, inline)),
                Err(e) if failed_on == Some(v.sort) => return Err(e),
                Err(_) => failed_on = Some(v.sort),
            }
        }
    }

    /// Open a version's bytes as the drives keep them, sealed when it is encrypted: what
    /// a move to another tier copies.
    pub(crate) fn open_sealed(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<ObjectReader> {
        let (mut v, inline) = self.open_stored(bucket, key, version_id)?;
        if v.encryption.take().is_some() {
            v.size = v.parts.iter().map(|p| p.size).sum();
        }
        Ok(ObjectReader::new(self.clone(), v, inline))
    }

    /// Delete a version, or add a delete marker (`version_id` none, in a versioned
    /// bucket). `bypass`: the caller may bypass GOVERNANCE retention.
    pub fn delete(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        bypass: bool,
    ) -> Result<Deleted> {
        validate_key(key)?;
        match self.submit(Op::Delete {
            bucket: bucket.to_string(),
            key: key.to_string(),
            version_id: version_id.map(str::to_string),
            bypass,
        })? {
            Out::Deleted(d) => Ok(d),
            _ => unreachable!("delete answers Deleted"),
        }
    }

    pub fn set_tags(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        tags: Vec<(String, String)>,
    ) -> Result<()> {
        self.submit(Op::SetTags {
            bucket: bucket.to_string(),
            key: key.to_string(),
            version_id: version_id.map(str::to_string),
            tags,
        })
        .map(drop)
    }

    /// Replace a version's owner and ACL (the current version without `version_id`).
    pub fn set_acl(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        acl: Acl,
    ) -> Result<()> {
        self.submit(Op::SetAcl {
            bucket: bucket.to_string(),
            key: key.to_string(),
            version_id: version_id.map(str::to_string),
            acl,
        })
        .map(drop)
    }

    /// Set or remove a version's retention (the current version without `version_id`).
    pub fn set_retention(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        retention: Option<Retention>,
        bypass: bool,
    ) -> Result<()> {
        self.submit(Op::SetRetention {
            bucket: bucket.to_string(),
            key: key.to_string(),
            version_id: version_id.map(str::to_string),
            retention,
            bypass,
        })
        .map(drop)
    }

    /// Place or lift a version's legal hold (the current version without `version_id`).
    pub fn set_legal_hold(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        on: bool,
    ) -> Result<()> {
        self.submit(Op::SetLegalHold {
            bucket: bucket.to_string(),
            key: key.to_string(),
            version_id: version_id.map(str::to_string),
            on,
        })
        .map(drop)
    }

    pub fn list(&self, bucket: &str, q: &ListQuery) -> Result<ListPage> {
        self.bucket(bucket)?;
        let (rtxn, db) = self.read()?;
        list::objects(&rtxn, db, bucket, q)
    }

    pub fn list_versions(&self, bucket: &str, q: &VersionQuery) -> Result<VersionPage> {
        self.bucket(bucket)?;
        let (rtxn, db) = self.read()?;
        list::versions(&rtxn, db, bucket, q)
    }

    // ----- multipart -----

    /// Start a multipart upload; `lock` applies to the version it completes.
    pub fn create_upload(
        &self,
        bucket: &str,
        key: &str,
        meta: ObjectMeta,
        (lock, sse): (LockRequest, Option<SseMode>),
    ) -> Result<UploadRecord> {
        validate_key(key)?;
        match self.submit(Op::CreateUpload {
            bucket: bucket.to_string(),
            key: key.to_string(),
            meta,
            lock,
            sse,
        })? {
            Out::Upload(u) => Ok(u),
            _ => unreachable!("create upload answers Upload"),
        }
    }

    pub fn upload(&self, bucket: &str, key: &str, upload_id: &str) -> Result<UploadRecord> {
        self.bucket(bucket)?;
        let (rtxn, db) = self.read()?;
        db.get(&rtxn, &keys::upload(bucket, key, upload_id))?
            .map(record::decode::<UploadRecord>)
            .transpose()?
            .ok_or_else(|| Error::NoSuchUpload(upload_id.to_string()))
    }

    /// Start writing part `number` of an upload; `finish` stores it (replacing an earlier one).
    pub fn put_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        number: u32,
        customer: Option<&[u8; 32]>,
    ) -> Result<ObjectWriter> {
        let up = self.upload(bucket, key, upload_id)?;
        let mut writer = ObjectWriter::new(
            self.clone(),
            bucket,
            key,
            Target::Part {
                upload_id: upload_id.to_string(),
                number,
                started_ns: self.inner.part_starts.next(),
            },
        );
        // A part goes where its object's storage class keeps data, sealed as its upload asked.
        writer.set_class(up.meta.storage_class.as_deref());
        writer.set_encryption(up.sse, customer)?;
        Ok(writer)
    }

    /// Assemble the listed parts (number, ETag) into a new version with this ETag
    /// and these whole-object checksums, if the key's current version meets `condition`.
    pub fn complete_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: Vec<(u32, String)>,
        (etag, checksums): (String, Vec<(String, String)>),
        condition: WriteCondition,
    ) -> Result<Written> {
        match self.submit(Op::Complete {
            bucket: bucket.to_string(),
            key: key.to_string(),
            upload_id: upload_id.to_string(),
            parts,
            etag,
            checksums,
            condition,
            block: self.inner.block_size as u32,
        })? {
            Out::Version(version, replaced) => Ok(Written { version, replaced }),
            _ => unreachable!("complete answers Version"),
        }
    }

    pub fn abort_upload(&self, bucket: &str, key: &str, upload_id: &str) -> Result<()> {
        self.submit(Op::Abort {
            bucket: bucket.to_string(),
            key: key.to_string(),
            upload_id: upload_id.to_string(),
        })
        .map(drop)
    }

    /// A lifecycle expiration of `version_id` (see [`Expiry`]); `None` when the key has
    /// changed since it was decided on, and nothing was done. Object lock is enforced.
    pub fn expire(
        &self,
        bucket: &str,
        key: &str,
        version_id: &str,
        expiry: Expiry,
    ) -> Result<Option<Deleted>> {
        match self.submit(Op::Expire {
            bucket: bucket.to_string(),
            key: key.to_string(),
            version_id: version_id.to_string(),
            expiry,
        })? {
            Out::Expired(d) => Ok(d),
            _ => unreachable!("expire answers Expired"),
        }
    }

    /// RestoreObject: version `version_id` (the current one when `None`) is readable
    /// until `until_ns` (Unix ns), whatever its storage class. `true` when it was
    /// readable already, and the restore only moved its end.
    pub fn restore(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        until_ns: u64,
    ) -> Result<bool> {
        let v = self.head(bucket, key, version_id)?;
        let now = crate::commit::Clock::new().now();
        let was = v.restored_until_ns.is_some_and(|t| t > now);
        self.submit(Op::Restore {
            bucket: bucket.to_string(),
            key: key.to_string(),
            version_id: Some(v.version_id),
            until_ns,
        })?;
        Ok(was)
    }

    /// Uploads in progress, by key then age; `true` when more remain.
    pub fn list_uploads(
        &self,
        bucket: &str,
        prefix: &str,
        key_marker: Option<&str>,
        upload_marker: Option<&str>,
        max: usize,
    ) -> Result<(Vec<UploadRecord>, bool)> {
        self.bucket(bucket)?;
        let (rtxn, db) = self.read()?;
        list::uploads(&rtxn, db, bucket, prefix, key_marker, upload_marker, max)
    }

    /// Parts of an upload numbered above `marker`; `true` when more remain.
    pub fn list_parts(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        marker: u32,
        max: usize,
    ) -> Result<(Vec<PartRecord>, bool)> {
        self.upload(bucket, key, upload_id)?;
        let (rtxn, db) = self.read()?;
        list::parts(&rtxn, db, upload_id, marker, max)
    }
}

/// A brand-new store: every drive empty, layout from the config.
/// The current version (or the given one) of an object, as `rtxn` sees it.
fn head_in(
    rtxn: &RoTxn<WithoutTls>,
    db: Db,
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
) -> Result<ObjectVersion> {
    if db.get(rtxn, &keys::bucket(bucket))?.is_none() {
        return Err(Error::NoSuchBucket(bucket.to_string()));
    }
    match version_id {
        None => {
            if let Some(v) = db.get(rtxn, &keys::latest(bucket, key))? {
                return record::decode(v);
            }
            let newest = db
                .prefix_iter(rtxn, &keys::versions_of(bucket, key))?
                .next()
                .transpose()?;
            match newest {
                Some((_, v)) => {
                    let v: ObjectVersion = record::decode(v)?;
                    Err(Error::DeleteMarker {
                        key: key.to_string(),
                        version_id: v.version_id,
                    })
                }
                None => Err(Error::NoSuchKey(key.to_string())),
            }
        }
        Some(vid) => {
            let found = match crate::ops::parse_version_id(vid) {
                Some(sort) => db
                    .get(rtxn, &keys::version(bucket, key, &sort))?
                    .map(record::decode::<ObjectVersion>)
                    .transpose()?,
                None => {
                    let mut found = None;
                    for kv in db.prefix_iter(rtxn, &keys::versions_of(bucket, key))? {
                        let v: ObjectVersion = record::decode(kv?.1)?;
                        if v.version_id == vid {
                            found = Some(v);
                            break;
                        }
                    }
                    found
                }
            };
            match found {
                Some(v) if v.delete_marker => Err(Error::DeleteMarker {
                    key: key.to_string(),
                    version_id: v.version_id,
                }),
                Some(v) => Ok(v),
                None => Err(Error::NoSuchVersion(vid.to_string())),
            }
        }
    }
}

fn create(
    drives: &[Drive],
    formats: &[Result<Option<Format>>],
    cfg: &StoreConfig,
) -> Result<Format> {
    for (d, f) in drives.iter().zip(formats) {
        if let Err(e) = f {
            return Err(Error::Layout(format!(
                "no drive has a readable format and {} cannot be read ({e}); refusing to create a new store over it",
                d.root.display()
            )));
        }
        if !d.is_empty() {
            return Err(Error::Layout(format!(
                "{} is not empty and not a cybs3 drive; give empty directories for a new store",
                d.root.display()
            )));
        }
    }
    let n = drives.len();
    let ec = cfg.ec.unwrap_or_else(|| Ec::default_for(n));
    crate::layout::check(ec, n)?;
    let block_size = cfg.block_size.unwrap_or(BLOCK_SIZE);
    if !(4096..=64 << 20).contains(&block_size) {
        return Err(Error::Layout("block size must be 4 KiB to 64 MiB".into()));
    }
    let store_id = crate::ops::random_hex(16);
    let mut first = None;
    for d in drives {
        let f = Format {
            format: FORMAT_VERSION,
            store_id: store_id.clone(),
            drive_index: d.index,
            drive_count: n,
            ec,
            block_size,
            pool: 0,
        };
        d.format(&f)?;
        first.get_or_insert(f);
    }
    tracing::info!(ec = %ec, drives = n, "created a new store");
    Ok(first.expect("at least one drive"))
}

/// The healer's thread: data queued by degraded reads, drives coming back
/// ([`crate::rejoin::Watch`]), a pool's drain (`drain.rs`), and a full scan every `every` (at once when the store
/// opened degraded, and after a drive came back, to rebuild what it missed).
fn heal_loop(store: Weak<Inner>, queue: Receiver<DataId>, every: Duration, degraded: bool) {
    let mut watch = crate::rejoin::Watch::default();
    let mut drainer = crate::drain::Drainer::default();
    // A drain with more to do: look at the queue without waiting, then go on with it.
    let mut draining = true;
    let now = Instant::now();
    let mut next_scan = if degraded { now } else { now + every };
    let mut next_tick = now + crate::rejoin::TICK;
    loop {
        let wake = match draining {
            true => Instant::now(),
            false => next_tick.min(next_scan),
        };
        let got = queue.recv_timeout(wake.saturating_duration_since(Instant::now()));
        let Some(inner) = store.upgrade() else { return };
        let s = Store::background(inner);
        match got {
            Ok(id) => {
                s.inner.heal_pending.lock().unwrap().remove(&id);
                if let Err(e) = s.heal_data(id) {
                    tracing::warn!("heal of {} failed: {e}", hex::encode(id));
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        let now = Instant::now();
        if now >= next_tick {
            next_tick = now + crate::rejoin::TICK;
            if watch.tick(&s) {
                next_scan = now;
            }
        }
        if Instant::now() >= next_scan {
            match s.heal() {
                Ok(r) if r.clean() => tracing::debug!("scan: clean"),
                Ok(r) => tracing::info!(?r, "scan healed"),
                Err(e) => tracing::warn!("scan failed: {e}"),
            }
            next_scan = Instant::now() + every;
        }
        draining = drainer.step(&s);
        match s.rewrap_step() {
            Ok(more) => draining |= more,
            Err(e) => tracing::warn!("kms rewrap: {e}"),
        }
    }
}

/// S3 bucket naming rules.
pub fn validate_bucket_name(name: &str) -> Result<()> {
    let bad = |why| Err(Error::InvalidBucketName(name.to_string(), why));
    if name.len() < 3 || name.len() > 63 {
        return bad("must be 3 to 63 characters long");
    }
    if !name
        .bytes()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'.')
    {
        return bad("only lowercase letters, digits, hyphens and dots are allowed");
    }
    let first = name.as_bytes()[0];
    let last = name.as_bytes()[name.len() - 1];
    if !first.is_ascii_alphanumeric() || !last.is_ascii_alphanumeric() {
        return bad("must begin and end with a letter or digit");
    }
    if name.contains("..") || name.contains(".-") || name.contains("-.") {
        return bad("dots may not be adjacent to dots or hyphens");
    }
    if name.parse::<std::net::Ipv4Addr>().is_ok() {
        return bad("must not be formatted as an IP address");
    }
    if name.starts_with("xn--") || name.starts_with("sthree-") || name.ends_with("-s3alias") {
        return bad("uses a reserved prefix or suffix");
    }
    Ok(())
}

/// Object keys: 1 to 1024 bytes of UTF-8, no NUL, no `..` path segment.
pub fn validate_key(key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(Error::InvalidKey("the key is empty"));
    }
    if key.len() > 1024 {
        return Err(Error::InvalidKey("the key is longer than 1024 bytes"));
    }
    if key.contains('\0') {
        return Err(Error::InvalidKey("the key contains a NUL character"));
    }
    if key.split('/').any(|seg| seg == "..") {
        return Err(Error::InvalidKey("the key contains a '..' path segment"));
    }
    Ok(())
}

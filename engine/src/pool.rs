//! Pools: sets of drives, each with its own erasure layout, over which the store's data
//! spreads, so that a running store grows (and shrinks) a few drives at a time.
//!
//! The first pool, [`FIRST_POOL`], is the store's own drives (`StoreConfig::drives`):
//! they also hold the index (a full LMDB copy each) and the inline data. A pool added
//! later ([`Store::add_pool`]) holds shard files only, and a part's data lives in exactly
//! one pool, named by its record (`PartData::Pooled`). The pools' list is kept in the
//! index as server records, so every index copy has it and a restart opens each pool
//! again from its recorded paths.
//!
//! New data goes to the active pool with the most usable free space ([`Inner::place`]).
//! A pool being drained takes none, and the healer's thread moves its data, one part
//! at a time, to the others (`drain.rs`); once nothing refers to it, it is `drained` and
//! its drives can be taken away.

use crate::drive::{Drive, DriveState};
use crate::error::{Error, Result};
use crate::layout::{Ec, Format, FORMAT_VERSION};
use crate::record::{self, DataId};
use crate::shard;
use crate::store::{DriveStatus, Inner};
use crate::Store;
use serde::{Deserialize, Serialize};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

/// The name of the first pool: the drives `server start --drives` made the store on.
pub const FIRST_POOL: &str = "main";

/// The server-record namespace of the pools added after the first: `{id:05}` → [`PoolRecord`].
const RECORDS: &str = "engine.pool";

/// What the index keeps of a pool added after the first.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct PoolRecord {
    pub name: String,
    pub drives: Vec<PathBuf>,
    pub ec: Ec,
    pub state: PoolState,
}

impl record::Record for PoolRecord {}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PoolState {
    /// Takes new data.
    Active,
    /// Takes no new data; its data is being moved to the other pools.
    Draining,
    /// Holds nothing any more: its drives may be removed.
    Drained,
}

pub(crate) struct Pool {
    /// Its place in [`Pools`], and in `PartData::Pooled`; never reused.
    pub id: u16,
    pub name: String,
    pub ec: Ec,
    pub drives: Arc<Vec<Drive>>,
    state: RwLock<PoolState>,
    /// Writers that chose this pool and have not committed or given up: a drain ends
    /// only once there are none, or their data would land after its last pass.
    writers: AtomicUsize,
}

impl Pool {
    pub fn state(&self) -> PoolState {
        *self.state.read().unwrap()
    }

    /// Drive `i` of a stripe rotated by `rot`.
    pub fn drive_of(&self, i: usize, rot: usize) -> &Drive {
        &self.drives[(i + rot) % self.drives.len()]
    }

    /// The shard files of data `id`, by shard index (`None` where one cannot be opened).
    pub fn open_shards(&self, id: &DataId, rot: usize) -> Vec<Option<File>> {
        (0..self.drives.len())
            .map(|i| shard::open(&self.drive_of(i, rot).shard_path(id)).ok())
            .collect()
    }

    /// Counts a writer in until the guard drops.
    pub fn writing(self: &Arc<Pool>) -> Writing {
        self.writers.fetch_add(1, Ordering::SeqCst);
        Writing(self.clone())
    }

    pub fn has_writers(&self) -> bool {
        self.writers.load(Ordering::SeqCst) > 0
    }

    /// Free bytes new data can use: a stripe puts one shard on each drive, so the pool
    /// is full when its fullest drive taking shards is; `None` with fewer than K of them.
    fn usable_free(&self) -> Option<u64> {
        let taking: Vec<u64> = self
            .drives
            .iter()
            .filter(|d| d.takes_shards())
            .map(Drive::free)
            .collect();
        (taking.len() >= self.ec.k())
            .then(|| taking.iter().min().copied().unwrap_or(0) * self.ec.k() as u64)
    }

    fn format_for(&self, store: &Inner, index: usize) -> Format {
        Format {
            format: FORMAT_VERSION,
            store_id: store.store_id.clone(),
            drive_index: index,
            drive_count: self.drives.len(),
            ec: self.ec,
            block_size: store.block_size as u32,
            pool: self.id,
        }
    }
}

/// A writer's hold on the pool it writes to (see [`Pool::writing`]).
pub(crate) struct Writing(Arc<Pool>);

impl Writing {
    pub fn pool(&self) -> &Arc<Pool> {
        &self.0
    }
}

impl Drop for Writing {
    fn drop(&mut self) {
        self.0.writers.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Every pool of the store, by id; shared with the reclaimer, which removes shard files
/// from whichever pool holds them.
pub(crate) struct Pools(RwLock<Arc<Vec<Arc<Pool>>>>);

impl Pools {
    /// The first pool: the store's own drives.
    pub fn new(drives: Arc<Vec<Drive>>, ec: Ec) -> Pools {
        let first = Pool {
            id: 0,
            name: FIRST_POOL.to_string(),
            ec,
            drives,
            state: RwLock::new(PoolState::Active),
            writers: AtomicUsize::new(0),
        };
        Pools(RwLock::new(Arc::new(vec![Arc::new(first)])))
    }

    pub fn all(&self) -> Arc<Vec<Arc<Pool>>> {
        self.0.read().unwrap().clone()
    }

    pub fn get(&self, id: u16) -> Option<Arc<Pool>> {
        self.0.read().unwrap().get(id as usize).cloned()
    }

    pub fn named(&self, name: &str) -> Result<Arc<Pool>> {
        self.all()
            .iter()
            .find(|p| p.name == name)
            .cloned()
            .ok_or_else(|| Error::NoSuchPool(name.to_string()))
    }

    fn push(&self, pool: Pool) -> Arc<Pool> {
        let pool = Arc::new(pool);
        let mut list = self.0.write().unwrap();
        let mut next = list.as_ref().clone();
        next.push(pool.clone());
        *list = Arc::new(next);
        pool
    }
}

/// A pool as `cybs3 admin pool list` shows it. Sizes are raw bytes summed over its
/// drives (shards, parity included), as the drives' filesystems report them.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PoolInfo {
    pub name: String,
    pub ec: String,
    pub state: PoolState,
    /// The first pool also holds the index and the inline data.
    pub holds_index: bool,
    pub drives: Vec<DriveStatus>,
    pub total_bytes: u64,
    pub free_bytes: u64,
    /// Bytes of shard files on its drives.
    pub used_bytes: u64,
    /// Shard files on its drives.
    pub shard_files: u64,
}

impl Inner {
    /// The pool new data goes to: of the active pools with K drives taking shards, the
    /// one with the most usable free space. A tie, as when pools share a filesystem,
    /// goes to the newest, which holds the least. With none able to take a write, the
    /// first pool, whose writer then reports the missing drives.
    pub(crate) fn place(&self) -> Arc<Pool> {
        let pools = self.pools.all();
        pools
            .iter()
            .filter(|p| p.state() == PoolState::Active)
            .filter_map(|p| p.usable_free().map(|free| (free, p.id, p)))
            .max_by_key(|(free, id, _)| (*free, *id))
            .map_or_else(|| pools[0].clone(), |(_, _, p)| p.clone())
    }
}

impl Store {
    /// Every drive of every pool with its pool's name: states, space and I/O, without
    /// the walk over shard files that [`Store::pools`] makes.
    pub fn drives(&self) -> Vec<(String, DriveStatus)> {
        let pools = self.inner.pools.all();
        pools
            .iter()
            .flat_map(|p| {
                p.drives
                    .iter()
                    .map(|d| (p.name.clone(), DriveStatus::of(d)))
            })
            .collect()
    }

    /// Every pool, the first one included.
    pub fn pools(&self) -> Vec<PoolInfo> {
        self.inner.pools.all().iter().map(|p| info(p)).collect()
    }

    /// Add a pool of empty drives (`ec` defaults from their count) and put it to use at
    /// once: the next write may go to it.
    pub fn add_pool(&self, name: &str, drives: Vec<PathBuf>, ec: Option<Ec>) -> Result<PoolInfo> {
        check_name(name)?;
        let inner = &self.inner;
        let _one_at_a_time = inner.pool_admin.lock().unwrap();
        if inner.pools.all().iter().any(|p| p.name == name) {
            return Err(Error::Pool(format!("there is a pool {name:?} already")));
        }
        let n = drives.len();
        let ec = ec.unwrap_or_else(|| Ec::default_for(n));
        crate::layout::check(ec, n)?;
        let taken: Vec<PathBuf> = inner
            .pools
            .all()
            .iter()
            .flat_map(|p| p.drives.iter().map(|d| canonical(&d.root)))
            .collect();
        for (i, d) in drives.iter().enumerate() {
            if taken.contains(&canonical(d))
                || drives[..i].iter().any(|o| canonical(o) == canonical(d))
            {
                return Err(Error::Pool(format!(
                    "{} is a drive of this store already",
                    d.display()
                )));
            }
        }
        let id = u16::try_from(inner.pools.all().len())
            .map_err(|_| Error::Pool("no more pools can be added".into()))?;
        let pool = Pool {
            id,
            name: name.to_string(),
            ec,
            drives: Arc::new(
                drives
                    .iter()
                    .enumerate()
                    .map(|(i, p)| Drive::new(i, p.clone()))
                    .collect(),
            ),
            state: RwLock::new(PoolState::Active),
            writers: AtomicUsize::new(0),
        };
        for d in pool.drives.iter() {
            let format = pool.format_for(inner, d.index);
            // An add cut off before its commit leaves its drives formatted for it.
            let ours = matches!(d.read_format(), Ok(Some(f)) if f == format);
            if !ours && !d.is_empty() {
                return Err(Error::Pool(format!(
                    "{} is not empty; a new pool needs empty directories",
                    d.root.display()
                )));
            }
            d.format(&format)?;
            d.open_data()?;
            d.set_state(DriveState::Online, None);
        }
        self.save_pool(&pool, PoolState::Active)?;
        let pool = inner.pools.push(pool);
        tracing::info!(pool = name, ec = %ec, drives = n, "pool added");
        Ok(info(&pool))
    }

    /// Start moving every piece of data off a pool; it takes no new data from now on.
    /// The healer's thread does the moving (`drain.rs`), resuming after a restart.
    pub fn drain_pool(&self, name: &str) -> Result<PoolInfo> {
        let inner = &self.inner;
        let _one_at_a_time = inner.pool_admin.lock().unwrap();
        let pool = inner.pools.named(name)?;
        if pool.id == 0 {
            return Err(Error::Pool(format!(
                "pool {FIRST_POOL:?} holds the store's index and cannot be drained"
            )));
        }
        if pool.state() == PoolState::Active {
            let others = inner
                .pools
                .all()
                .iter()
                .any(|p| p.id != pool.id && p.state() == PoolState::Active);
            if !others {
                return Err(Error::Pool(format!(
                    "pool {name:?} is the only active pool: add one for its data first"
                )));
            }
            self.save_pool(&pool, PoolState::Draining)?;
            *pool.state.write().unwrap() = PoolState::Draining;
            tracing::info!(pool = name, "pool draining");
        }
        Ok(info(&pool))
    }

    /// A drain found nothing left in the pool: it is empty for good.
    pub(crate) fn finish_drain(&self, pool: &Pool) -> Result<()> {
        let _one_at_a_time = self.inner.pool_admin.lock().unwrap();
        self.save_pool(pool, PoolState::Drained)?;
        *pool.state.write().unwrap() = PoolState::Drained;
        tracing::info!(pool = pool.name, "pool drained: its drives may be removed");
        Ok(())
    }

    fn save_pool(&self, pool: &Pool, state: PoolState) -> Result<()> {
        let rec = PoolRecord {
            name: pool.name.clone(),
            drives: pool.drives.iter().map(|d| d.root.clone()).collect(),
            ec: pool.ec,
            state,
        };
        self.set_server_record(
            RECORDS,
            &format!("{:05}", pool.id),
            Some(record::encode(&rec)?),
        )
    }

    /// Opens the pools the index lists (at start, after the first pool's drives). A
    /// drive that cannot be opened is out, as a drive of the first pool would be, and
    /// the healer's watch brings it back; a drained pool's drives are not opened at all.
    pub(crate) fn open_pools(&self) -> Result<()> {
        let inner = &self.inner;
        for (name, bytes) in self.server_records(RECORDS)? {
            let rec: PoolRecord = record::decode(&bytes)?;
            let id = name
                .parse::<u16>()
                .ok()
                .filter(|&id| id as usize == inner.pools.all().len());
            let Some(id) = id else {
                return Err(Error::Meta(format!(
                    "pool record {name:?} is out of sequence"
                )));
            };
            let pool = Pool {
                id,
                name: rec.name,
                ec: rec.ec,
                drives: Arc::new(
                    rec.drives
                        .iter()
                        .enumerate()
                        .map(|(i, p)| Drive::new(i, p.clone()))
                        .collect(),
                ),
                state: RwLock::new(rec.state),
                writers: AtomicUsize::new(0),
            };
            for d in pool.drives.iter() {
                if rec.state == PoolState::Drained {
                    d.set_state(DriveState::Faulty, Some("its pool is drained".into()));
                    continue;
                }
                match d.read_format() {
                    Ok(Some(f)) if f == pool.format_for(inner, d.index) => match d.open_data() {
                        Ok(()) => d.set_state(DriveState::Online, None),
                        Err(e @ Error::Locked(_)) => return Err(e),
                        Err(e) => {
                            d.set_state(DriveState::Faulty, Some(format!("cannot open: {e}")))
                        }
                    },
                    Ok(Some(_)) => d.set_state(
                        DriveState::Faulty,
                        Some(format!(
                            "not formatted as drive {} of pool {}",
                            d.index, pool.name
                        )),
                    ),
                    Ok(None) => d.set_state(DriveState::Faulty, Some("not formatted".into())),
                    Err(e) => d.set_state(DriveState::Faulty, Some(e.to_string())),
                }
            }
            inner.pools.push(pool);
        }
        Ok(())
    }

    /// Brings a drive of a pool added later back: formatted again if it was emptied
    /// (its shards are rebuilt by the next scan), probed, and in the set.
    pub(crate) fn heal_pool_drive(&self, pool: &Pool, index: usize) -> Result<()> {
        let d = &pool.drives[index];
        let format = pool.format_for(&self.inner, index);
        if !matches!(d.read_format(), Ok(Some(f)) if f == format) {
            if !d.is_empty() && d.read_format().is_err() {
                return Err(Error::Pool(format!(
                    "{} has an unreadable format; empty it to have it formatted again",
                    d.root.display()
                )));
            }
            d.format(&format)?;
        }
        d.open_data()?;
        d.probe()
            .map_err(|e| Error::from_io(e, &d.root.display().to_string()))?;
        d.set_state(DriveState::Online, None);
        Ok(())
    }
}

fn info(p: &Pool) -> PoolInfo {
    let drives: Vec<DriveStatus> = p.drives.iter().map(DriveStatus::of).collect();
    let (mut used_bytes, mut shard_files) = (0, 0);
    for d in p.drives.iter().filter(|d| d.state() != DriveState::Faulty) {
        for sub in fs::read_dir(d.data_dir()).into_iter().flatten().flatten() {
            for e in fs::read_dir(sub.path()).into_iter().flatten().flatten() {
                shard_files += 1;
                used_bytes += e.metadata().map_or(0, |m| m.len());
            }
        }
    }
    PoolInfo {
        name: p.name.clone(),
        ec: p.ec.to_string(),
        state: p.state(),
        holds_index: p.id == 0,
        total_bytes: drives.iter().filter_map(|d| d.total_bytes).sum(),
        free_bytes: drives.iter().filter_map(|d| d.free_bytes).sum(),
        drives,
        used_bytes,
        shard_files,
    }
}

/// Pool names: what a command line and a storage-class binding can carry unquoted.
fn check_name(name: &str) -> Result<()> {
    let ok = (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::Pool(format!(
            "pool name {name:?}: use 1 to 32 lowercase letters, digits, '-' or '_'"
        )))
    }
}

/// A path as the filesystem resolves it, so that two spellings of one drive match.
fn canonical(p: &Path) -> PathBuf {
    fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

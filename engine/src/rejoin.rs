//! Drives leaving the write set and coming back by themselves while the store runs.
//!
//! A drive leaves when it fills up (writers then skip it, so objects go on degraded
//! instead of failing), when a shard write or a metadata commit on it fails, or when its
//! directory is emptied under the running server. The healer's thread watches every drive
//! that is out: a full one is tried again once it has room, the others after a delay that
//! grows with each failed try. A drive comes back when it takes a write probe and its
//! metadata is copied current (formatted first if it was emptied); the healer then
//! rebuilds the shards it missed.

use crate::drive::DriveState;
use crate::error::Result;
use crate::pool::{Pool, PoolState};
use crate::store::Inner;
use crate::Store;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How often the drives are looked at.
pub(crate) const TICK: Duration = Duration::from_secs(1);
const FIRST_DELAY: Duration = Duration::from_secs(1);
const MAX_DELAY: Duration = Duration::from_secs(60);
/// A full drive is tried again once this much more space is free than at its last try:
/// less would fill again with the next few shards, and a resync needs room for a fresh
/// copy of the metadata.
const ROOM: u64 = 16 << 20;

impl Inner {
    /// Takes a drive of `pool` that ran out of space out of the write set; `false` when
    /// the other drives online are too few for a quorum without it. A store keeps its
    /// last drives, full or not: otherwise even deletes, which free space, could not commit.
    pub(crate) fn leave_full(&self, pool: &Pool, index: usize, problem: String) -> bool {
        let _one_at_a_time = self.membership.lock().unwrap();
        let d = &pool.drives[index];
        match d.state() {
            DriveState::Full | DriveState::Faulty => true,
            DriveState::Stale | DriveState::Online => {
                let others = pool
                    .drives
                    .iter()
                    .filter(|o| o.index != index && o.state() == DriveState::Online)
                    .count();
                if others < pool.ec.k().max(1) {
                    return false;
                }
                d.free_when_full
                    .store(d.free(), std::sync::atomic::Ordering::Relaxed);
                d.set_state(DriveState::Full, Some(problem));
                true
            }
        }
    }
}

/// What the watch knows of a drive that is out.
struct Out {
    next: Instant,
    delay: Duration,
    /// Free bytes at the last try (or when first seen full).
    free: u64,
    /// A rejoin was tried and failed: retried on the back-off as long as there is room.
    failed: bool,
}

/// The healer's view of drives that are out, by pool and drive.
#[derive(Default)]
pub(crate) struct Watch {
    out: HashMap<(u16, usize), Out>,
}

impl Watch {
    /// Looks at every drive once and brings back those that are due; `true` when one came
    /// back, so the shards it missed need rebuilding. A drained pool's drives are not
    /// watched: they may be gone for good.
    pub fn tick(&mut self, store: &Store) -> bool {
        let mut back = false;
        let pools = store.inner.pools.all();
        let watched = pools.iter().filter(|p| p.state() != PoolState::Drained);
        for (pool, d) in watched.flat_map(|p| p.drives.iter().map(move |d| (p, d))) {
            let key = (pool.id, d.index);
            if d.state() == DriveState::Online {
                if !d.emptied() {
                    self.out.remove(&key);
                    continue;
                }
                d.set_state(
                    DriveState::Faulty,
                    Some("emptied while the store was running".into()),
                );
            }
            let now = Instant::now();
            let out = self.out.entry(key).or_insert_with(|| Out {
                next: now,
                delay: FIRST_DELAY,
                // A busy healer may first look long after the drive filled (and after
                // room was made): measure from when it filled.
                free: match d.state() {
                    DriveState::Full => d.free_when_full.load(std::sync::atomic::Ordering::Relaxed),
                    _ => d.free(),
                },
                failed: false,
            });
            let due = match d.state() {
                // Space freed, or a try that failed for another reason (a remount in
                // progress, a transient error) is due again.
                DriveState::Full => {
                    let free = d.free();
                    free >= out.free.saturating_add(ROOM)
                        || (out.failed && now >= out.next && free >= ROOM)
                }
                // A missing directory is a disk not mounted: never recreate it on the
                // filesystem beneath (`cybs3 heal` does, when asked).
                _ => now >= out.next && d.root.is_dir(),
            };
            if !due {
                continue;
            }
            match store.rejoin(pool, d.index) {
                Ok(()) => {
                    tracing::info!(
                        pool = pool.name,
                        drive = d.index,
                        "drive {} is back in the set",
                        d.index
                    );
                    self.out.remove(&key);
                    back = true;
                }
                Err(e) => {
                    tracing::info!(
                        pool = pool.name,
                        drive = d.index,
                        "drive {} is still out: {e}",
                        d.index
                    );
                    out.delay = (out.delay * 2).min(MAX_DELAY);
                    out.next = now + out.delay;
                    out.free = d.free();
                    out.failed = true;
                }
            }
        }
        back
    }
}

impl Store {
    /// Brings one drive back into the set now (see [`Watch`]), one heal at a time.
    fn rejoin(&self, pool: &Pool, index: usize) -> Result<()> {
        let _one_at_a_time = self.inner.heal_lock.lock().unwrap();
        match pool.id {
            0 => self.heal_drive(index),
            _ => self.heal_pool_drive(pool, index),
        }
    }
}

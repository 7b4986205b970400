//! Draining a pool: its data moved, one part at a time, to the other pools.
//!
//! The healer's thread runs the drain a page of the index at a time (`Drainer::step`),
//! between its other work. Each piece of data in the draining pool is read (checked,
//! and rebuilt from parity where a shard is bad), written anew in the pool
//! [`crate::store::Inner::place`] picks, and then swapped into its record by one
//! operation (`Op::Move`), which also hands the old shard files to the reclaimer. A
//! client that deletes or overwrites the data meanwhile makes the swap refuse, and the
//! copy is removed. A crash leaves either the old data referenced and the copy an
//! orphan (swept at the next start), or the new one referenced and the old shard files
//! orphans: never both referenced, never neither.
//!
//! The pool's state (`draining`) is in the index, so a restarted store goes on: the
//! walk starts over, and what already moved is no longer in the pool. The pool is
//! `drained` once a whole pass finds nothing in it and no writer that picked it before
//! the drain began is still writing.

use crate::error::{Error, Result};
use crate::heal::Item;
use crate::pool::{Pool, PoolState};
use crate::read::ObjectReader;
use crate::record::ObjectMeta;
use crate::shard::ShardHeader;
use crate::write::{part_version, ObjectWriter, Target};
use crate::Store;
use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Records of the index looked at per step.
const PAGE: usize = 64;
/// After a step that could not move something, the next waits this long.
const RETRY: Duration = Duration::from_secs(10);

/// The drain in progress: where its pass is in the index.
#[derive(Default)]
pub(crate) struct Drainer {
    /// The record key the pass goes on after; `None` at the start of a pass.
    cursor: Option<Vec<u8>>,
    /// Pieces of data found in the pool during this pass.
    found: u64,
    /// No step before this (a move failed).
    wait_until: Option<Instant>,
}

impl Drainer {
    /// Moves the data of one page of the index off the first draining pool. `true`
    /// when there is more to do at once; `false` when no pool drains, or after a failure
    /// (retried later).
    pub fn step(&mut self, store: &Store) -> bool {
        if self.wait_until.is_some_and(|t| Instant::now() < t) {
            return false;
        }
        let pools = store.inner.pools.all();
        let Some(pool) = pools.iter().find(|p| p.state() == PoolState::Draining) else {
            *self = Drainer::default();
            return false;
        };
        match self.page(store, pool) {
            Ok(more) => more,
            Err(e) => {
                tracing::warn!(pool = pool.name, "drain: {e}; trying again in {RETRY:?}");
                self.wait_until = Some(Instant::now() + RETRY);
                false
            }
        }
    }

    fn page(&mut self, store: &Store, pool: &Arc<Pool>) -> Result<bool> {
        let (items, next) = store.items_page(self.cursor.as_deref(), PAGE)?;
        let mut pace = Pace::new(store.inner.move_bandwidth);
        for item in items {
            if item.data.shards().map(|l| l.pool) != Some(pool.id) {
                continue;
            }
            self.found += 1;
            let to = store.inner.place();
            if to.state() != PoolState::Active {
                return Err(Error::Pool("no active pool can take the data".into()));
            }
            match store.move_data(&item, &to, &mut pace) {
                // Deleted or replaced meanwhile: nothing left to move.
                Ok(()) | Err(Error::PreconditionFailed) => {}
                Err(e) => return Err(Error::Pool(format!("cannot move {}: {e}", item.label))),
            }
        }
        self.cursor = next;
        if self.cursor.is_none() {
            if self.found == 0 && !pool.has_writers() {
                store.finish_drain(pool)?;
            }
            self.found = 0;
        }
        Ok(true)
    }
}

impl Store {
    /// Drains every draining pool to the end, here and now: for a store no server runs.
    pub fn run_drains(&self) -> Result<()> {
        let mut drainer = Drainer::default();
        while drainer.step(self) {}
        match drainer.wait_until {
            Some(_) => Err(Error::Pool(
                "the drain could not move some data; the log says why".into(),
            )),
            None => Ok(()),
        }
    }

    /// Copies one piece of data into `to` and swaps the copy into its record.
    fn move_data(&self, item: &Item, to: &Arc<Pool>, pace: &mut Pace) -> Result<()> {
        let layout = item.data.shards().expect("only shard files move");
        let from = self
            .inner
            .pools
            .get(layout.pool)
            .ok_or_else(|| Error::Pool(format!("{} is in an unknown pool", item.label)))?;
        // The copy describes itself as the original does (bucket, key, upload).
        let header = from
            .open_shards(&layout.id, layout.rot as usize)
            .iter()
            .flatten()
            .find_map(|f| ShardHeader::read(f).ok())
            .ok_or_else(|| Error::Corrupt(format!("{}: no readable shard", item.label)))?;
        let part = part_version(
            &header.key,
            crate::record::PartEntry {
                number: 0,
                size: item.size,
                etag: String::new(),
                checksums: Vec::new(),
                data: item.data,
            },
        );
        let mut reader = ObjectReader::new(self.clone(), part, vec![None]).all();
        let target = Target::Move {
            owner: item.owner.clone(),
            from: item.id,
        };
        let mut writer = ObjectWriter::new(self.clone(), &header.bucket, &header.key, target);
        writer.set_pool(to.clone());
        let mut buf = vec![0; self.inner.block_size];
        loop {
            if self.inner.closing() {
                return Err(Error::Meta("store is closing".into()));
            }
            let n = read_full(&mut reader, &mut buf)?;
            if n == 0 {
                break;
            }
            writer.write(&buf[..n])?;
            pace.took(n);
        }
        writer.finish(ObjectMeta::default())?;
        tracing::debug!(from = from.name, to = to.name, "moved {}", item.label);
        Ok(())
    }
}

/// Fills `buf` as far as the reader goes.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::Corrupt(e.to_string())),
        }
    }
    Ok(n)
}

/// Holds moving to a rate (`StoreConfig::move_bandwidth`) by sleeping as it goes.
struct Pace {
    rate: Option<u64>,
    start: Instant,
    bytes: u64,
}

impl Pace {
    fn new(rate: Option<u64>) -> Pace {
        Pace {
            rate,
            start: Instant::now(),
            bytes: 0,
        }
    }

    fn took(&mut self, n: usize) {
        let Some(rate) = self.rate.filter(|&r| r > 0) else {
            return;
        };
        self.bytes += n as u64;
        let due = Duration::from_secs_f64(self.bytes as f64 / rate as f64);
        if let Some(wait) = due.checked_sub(self.start.elapsed()) {
            std::thread::sleep(wait);
        }
    }
}

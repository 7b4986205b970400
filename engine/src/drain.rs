//! Draining a pool: its data moved, one part at a time, to the other pools.
//!
//! The healer's thread runs the drain a page of the index at a time (`Drainer::step`),
//! between its other work. Each piece of data in the draining pool is copied to the pool
//! [`crate::store::Inner::place`] picks and swapped into its record (`moves.rs`). The
//! pool's state (`draining`) is in the index, so a restarted store goes on: the walk
//! starts over, and what already moved is no longer in the pool. The pool is `drained`
//! once a whole pass finds nothing in it and no writer that picked it before the drain
//! began is still writing.

use crate::error::{Error, Result};
use crate::held::Owner;
use crate::moves::Pace;
use crate::pool::{Pool, PoolState};
use crate::Store;
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
            let moved = store
                .origin(&item.data)
                .and_then(|origin| store.copy_data(item.data, item.size, &origin, &to, &mut pace))
                .and_then(|(copy, _hold)| {
                    store.swap_data(&item.owner, vec![(item.data, copy)], None)
                });
            match moved {
                // Deleted or replaced meanwhile: nothing left to move.
                Ok(()) | Err(Error::PreconditionFailed) => {}
                Err(e) => return Err(Error::Pool(format!("cannot move {}: {e}", item.label))),
            }
            if let Owner::Version { key, .. } = &item.owner {
                tracing::debug!(key, from = pool.name, to = to.name, "moved");
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
}

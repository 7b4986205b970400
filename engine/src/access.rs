//! When objects were last read, sampled on the read path for usage's hot, warm and cold.
//!
//! A GET calls [`crate::Store::note_read`], which must cost the read nothing it would
//! notice: a hash of (bucket, key) is looked up in today's set under a short lock, and
//! only the first read of an object in a usage day goes on, by `try_send` on a bounded
//! channel (a full channel drops the sample rather than wait). A thread of its own
//! takes what arrives for up to [`BATCH_WAIT`] and writes it in one operation
//! ([`Op::NoteReads`](crate::ops::Op)). So an object's record is written at most once
//! per day, never on the reader's thread, and the commit it shares with writes is one
//! batch per interval. The set holds at most [`MAX_SEEN`] objects a day (8 bytes each);
//! past that, reads of further objects that day are not sampled.
//!
//! The record (`H bucket \0 key` → [`Access`]) goes with the key's current version: the
//! commit that removes the current version removes it too (`commit.rs`).

use crate::commit::Tx;
use crate::error::Result;
use crate::record::{self, keys};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::hash::BuildHasher;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Mutex, Weak};
use std::time::{Duration, Instant};

/// Objects remembered as read today.
const MAX_SEEN: usize = 4 << 20;
/// Samples waiting for the writer; past this they are dropped.
const CHANNEL: usize = 65_536;
/// How long the writer gathers samples into one operation.
pub(crate) const BATCH_WAIT: Duration = Duration::from_millis(500);
/// Most samples per operation.
const BATCH_MAX: usize = 4096;

/// What is known of an object's reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    /// The last sampled read (Unix ns): the first read of its usage day.
    pub last_ns: u64,
    /// Usage days on which it was read.
    pub read_days: u32,
}

impl record::Record for Access {}

/// One sampled read.
pub(crate) struct Read {
    pub bucket: String,
    pub key: String,
    pub at_ns: u64,
}

/// The read path's side: today's set and the channel to the writer.
pub(crate) struct Sampler {
    seen: Mutex<(u64, HashSet<u64>)>,
    send: Mutex<Option<SyncSender<Read>>>,
    hasher: std::collections::hash_map::RandomState,
}

impl Sampler {
    /// A sampler and the end its writer reads.
    pub fn new() -> (Sampler, Receiver<Read>) {
        let (send, recv) = std::sync::mpsc::sync_channel(CHANNEL);
        let sampler = Sampler {
            seen: Mutex::new((0, HashSet::new())),
            send: Mutex::new(Some(send)),
            hasher: Default::default(),
        };
        (sampler, recv)
    }

    /// Notes a read of `bucket`/`key` at `now_ns`, in days of `day_secs`.
    pub fn note(&self, bucket: &str, key: &str, now_ns: u64, day_secs: u64) {
        let day = now_ns / (day_secs.max(1) * 1_000_000_000);
        let h = self.hasher.hash_one((bucket, key));
        {
            let mut seen = self.seen.lock().unwrap();
            if seen.0 != day {
                *seen = (day, HashSet::new());
            }
            if seen.1.len() >= MAX_SEEN || !seen.1.insert(h) {
                return;
            }
        }
        let send = self.send.lock().unwrap().clone();
        if let Some(send) = send {
            let read = Read {
                bucket: bucket.to_string(),
                key: key.to_string(),
                at_ns: now_ns,
            };
            if let Err(TrySendError::Full(_)) = send.try_send(read) {
                // Sampled out: the writer is behind, and the reader never waits for it.
                self.seen.lock().unwrap().1.remove(&h);
            }
        }
    }

    /// The store is closing: the writer ends once it has written what it holds.
    pub fn close(&self) {
        self.send.lock().unwrap().take();
    }
}

/// The writer's loop: batches of samples into [`Op::NoteReads`](crate::ops::Op), until
/// the sampler closes or the store is gone.
pub(crate) fn write_loop(inner: Weak<crate::store::Inner>, recv: Receiver<Read>) {
    loop {
        let first = match recv.recv() {
            Ok(r) => r,
            Err(_) => return,
        };
        let mut batch = vec![first];
        let until = Instant::now() + BATCH_WAIT;
        let mut closed = false;
        while batch.len() < BATCH_MAX {
            match recv.recv_timeout(until.saturating_duration_since(Instant::now())) {
                Ok(r) => batch.push(r),
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => {
                    closed = true;
                    break;
                }
            }
        }
        let Some(inner) = inner.upgrade() else { return };
        let store = crate::Store::background(inner);
        if let Err(e) = store.submit(crate::ops::Op::NoteReads(batch)) {
            tracing::debug!("read samples not written: {e}");
        }
        if closed {
            return;
        }
    }
}

/// Applies a batch of samples: each object's record moves to its read, counting a new day.
pub(crate) fn apply(tx: &mut Tx, reads: &[Read]) -> Result<()> {
    let day_secs = crate::usage::built_day(tx).unwrap_or(crate::usage::DAY_SECS);
    let day_ns = day_secs.max(1) * 1_000_000_000;
    for r in reads {
        // An object deleted since its read gets no record (it would outlive it).
        if tx.get(&keys::latest(&r.bucket, &r.key)).is_none() {
            continue;
        }
        let k = keys::access(&r.bucket, &r.key);
        let mut a: Access = match tx.get(&k) {
            Some(v) => record::decode(&v)?,
            None => Access::default(),
        };
        if a.last_ns / day_ns == r.at_ns / day_ns && a.read_days > 0 {
            continue;
        }
        if r.at_ns > a.last_ns {
            a.last_ns = r.at_ns;
            a.read_days += 1;
            tx.put(k, record::encode(&a)?);
        }
    }
    Ok(())
}

//! Each drive's shard I/O, counted as it happens: operations, failures and the time
//! they took, for the server's metrics. Plain relaxed atomics: a read or write adds to
//! them without a lock, and a reader sees totals that only grow.

use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

/// One drive's counters (held by its `Drive`).
#[derive(Default)]
pub struct IoStats {
    reads: AtomicU64,
    read_errors: AtomicU64,
    read_ns: AtomicU64,
    writes: AtomicU64,
    write_errors: AtomicU64,
    write_ns: AtomicU64,
}

/// A drive's counters at one moment, since the store was opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IoCounts {
    /// Shard blocks read, and those that were missing, short or failed their checksum.
    pub reads: u64,
    pub read_errors: u64,
    /// Time spent in those reads (ns).
    pub read_ns: u64,
    /// Shard blocks and shard files written (and synced), and the writes that failed.
    pub writes: u64,
    pub write_errors: u64,
    pub write_ns: u64,
}

impl IoStats {
    /// A read that started at `started`; `ok` false when it gave no verified shard.
    pub fn read(&self, started: Instant, ok: bool) {
        self.reads.fetch_add(1, Relaxed);
        self.read_ns.fetch_add(nanos(started), Relaxed);
        if !ok {
            self.read_errors.fetch_add(1, Relaxed);
        }
    }

    /// A write that started at `started`; `ok` false when it failed.
    pub fn write(&self, started: Instant, ok: bool) {
        self.writes.fetch_add(1, Relaxed);
        self.write_ns.fetch_add(nanos(started), Relaxed);
        if !ok {
            self.write_errors.fetch_add(1, Relaxed);
        }
    }

    pub fn counts(&self) -> IoCounts {
        IoCounts {
            reads: self.reads.load(Relaxed),
            read_errors: self.read_errors.load(Relaxed),
            read_ns: self.read_ns.load(Relaxed),
            writes: self.writes.load(Relaxed),
            write_errors: self.write_errors.load(Relaxed),
            write_ns: self.write_ns.load(Relaxed),
        }
    }
}

fn nanos(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_operations_failures_and_time() {
        let s = IoStats::default();
        let t = Instant::now() - std::time::Duration::from_millis(2);
        s.read(t, true);
        s.read(t, false);
        s.write(t, false);
        let c = s.counts();
        assert_eq!((c.reads, c.read_errors), (2, 1));
        assert_eq!((c.writes, c.write_errors), (1, 1));
        assert!(c.read_ns >= 4_000_000 && c.write_ns >= 2_000_000, "{c:?}");
    }
}

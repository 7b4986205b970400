//! Sequential read-ahead for a read handle: one GET stream from where the reader is, its
//! plaintext arriving in batches ahead of the reads ([`Vault::stream_at`]), so a large
//! file streams as fast as one download and memory stays at a few batches per reader.
//!
//! A stream is a snapshot: it reads the object as it was when the stream began (the GET
//! carries `If-Match`), as a process holding an open file keeps reading what it opened.

use bytes::Bytes;
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::runtime::Runtime;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use vault::vault::{RangeReader, Vault, STREAM_DEPTH};

/// How far behind the furthest read a request may start and still be served: the kernel's
/// requests reach us through several threads, not quite in order.
pub(crate) const REORDER: u64 = 1 << 20;
/// How far ahead of what has arrived a request may start and still wait for the stream:
/// reading through a short skip is cheaper than a new request.
const SKIP: u64 = 2 << 20;

pub(crate) struct Prefetch {
    /// Batches received and kept, in order, covering `[start, end)`.
    kept: VecDeque<Bytes>,
    start: u64,
    end: u64,
    rx: mpsc::Receiver<Bytes>,
    /// Until the stream has ended and its outcome been taken.
    task: Option<JoinHandle<vault::Result<()>>>,
}

impl Prefetch {
    /// Starts streaming the file `r` was made for from `offset`.
    pub(crate) fn start(rt: &Runtime, vault: Arc<Vault>, r: Arc<RangeReader>, offset: u64) -> Self {
        let (tx, rx) = mpsc::channel(STREAM_DEPTH);
        let task = rt.spawn(async move { vault.stream_at(&r, offset, &tx).await });
        Prefetch {
            kept: VecDeque::new(),
            start: offset,
            end: offset,
            rx,
            task: Some(task),
        }
    }

    /// Whether a read at `offset` is one for this stream.
    pub(crate) fn serves(&self, offset: u64) -> bool {
        offset >= self.start && offset <= self.end + SKIP
    }

    /// Up to `size` bytes at `offset`, which [`Prefetch::serves`]; fewer at the end of the
    /// stream. Waits for them to arrive; a slice of one batch unless the read crosses two.
    pub(crate) fn read(&mut self, rt: &Runtime, offset: u64, size: u32) -> anyhow::Result<Bytes> {
        let end = offset + size as u64;
        while self.end < end {
            match self.rx.blocking_recv() {
                Some(batch) => {
                    self.end += batch.len() as u64;
                    self.kept.push_back(batch);
                }
                None => {
                    if let Some(task) = self.task.take() {
                        rt.block_on(task)??;
                    }
                    break;
                }
            }
        }
        let mut parts = Vec::with_capacity(1);
        let mut at = self.start;
        for batch in &self.kept {
            let batch_end = at + batch.len() as u64;
            if batch_end > offset && at < end {
                let from = offset.max(at) - at;
                let to = end.min(batch_end) - at;
                parts.push(batch.slice(from as usize..to as usize));
            }
            at = batch_end;
        }
        while let Some(first) = self.kept.front() {
            let first_end = self.start + first.len() as u64;
            if first_end + REORDER > offset {
                break;
            }
            self.start = first_end;
            self.kept.pop_front();
        }
        Ok(crate::concat(parts))
    }
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

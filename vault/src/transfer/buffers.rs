//! The pool of part and range buffers that transfers reuse.

use bytes::{Bytes, BytesMut};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Buffers kept for later parts and ranges: a fresh 16 MiB buffer per part costs a page
/// fault per 4 KiB written into it, which was most of an upload's client time. At most
/// `jobs` buffers wait, so memory does not grow with the object, and they are freed when
/// the last multipart upload or ranged download using them ends.
#[derive(Default)]
pub(super) struct PartBuffers {
    idle: Mutex<Vec<BytesMut>>,
    uploads: AtomicUsize,
}

impl PartBuffers {
    /// Keeps the buffers until the returned guard and all others are dropped.
    pub(super) fn in_use(&self) -> BuffersInUse<'_> {
        self.uploads.fetch_add(1, Ordering::Relaxed);
        BuffersInUse(self)
    }

    /// An empty buffer, with the room of an earlier part or range if one is idle.
    pub(super) fn take_empty(&self) -> BytesMut {
        let mut buf = self.idle.lock().unwrap().pop().unwrap_or_default();
        buf.clear();
        buf
    }

    /// `len` bytes of unspecified content: the caller overwrites them all.
    pub(super) fn take(&self, len: usize) -> BytesMut {
        let mut buf = self.idle.lock().unwrap().pop().unwrap_or_default();
        buf.truncate(len);
        buf.resize(len, 0);
        buf
    }

    /// Keeps `data` for a later part, unless something (the SDK) still holds it.
    pub(super) fn give_back(&self, data: Bytes, keep: usize) {
        if let Ok(buf) = data.try_into_mut() {
            let mut idle = self.idle.lock().unwrap();
            if idle.len() < keep {
                idle.push(buf);
            }
        }
    }
}

pub(super) struct BuffersInUse<'a>(&'a PartBuffers);

impl Drop for BuffersInUse<'_> {
    fn drop(&mut self) {
        if self.0.uploads.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.0.idle.lock().unwrap().clear();
        }
    }
}

//! Read handles: reads of a file not open for writing go to the store, ranged, through
//! the handle's reader; a sequential reader is served from one stream ([`Prefetch`]).
//! A handle whose file is unlinked or renamed over gets a local copy to go on reading
//! (POSIX: the data lives until the last close).

use crate::errno::{errno, io_errno};
use crate::filesystem::{Core, Handle};
use crate::names::{moved, within};
use crate::prefetch::{self, Prefetch};
use crate::sealed::CacheFile;
use crate::store::{Error, Store};
use crate::warm::Seen;
use crate::{concat, lock, R};
use bytes::{Bytes, BytesMut};
use fuser::{Errno, FileHandle};
use std::sync::Arc;

/// A read handle's object: its reader, what was read ahead, and what the read cache
/// knows of it ([`crate::warm`]).
pub(crate) struct Remote<S: Store> {
    reader: Option<Arc<S::Reader>>,
    /// Where the last read ended: a read starting near there is sequential.
    next: u64,
    /// The stream of a sequential reader.
    stream: Option<Prefetch>,
    /// Boxed: a handle's enum stays small.
    pub(crate) seen: Box<Seen>,
}

impl<S: Store> Remote<S> {
    pub(crate) fn new(seen: Seen) -> Self {
        Remote {
            reader: None,
            next: 0,
            stream: None,
            seen: Box::new(seen),
        }
    }

    /// Forgets the object as it was: it was just replaced through this mount.
    pub(crate) fn reset(&mut self) {
        self.stream = None;
        self.reader = None;
        self.seen.reset();
    }
}

/// Up to `size` bytes at `offset` of a local copy.
pub(crate) fn read_local(file: &CacheFile, offset: u64, size: u32) -> R<Bytes> {
    let mut buf = vec![0u8; size as usize];
    let got = file
        .read_at(offset, &mut buf)
        .map_err(|e| io_errno("read cache file", &e))?;
    buf.truncate(got);
    Ok(buf.into())
}

impl<S: Store> Core<S> {
    pub(crate) fn do_read(&self, fh: FileHandle, offset: u64, size: u32) -> R<Bytes> {
        match &*self.handle(fh)? {
            Handle::Write { local } => read_local(&local.file, offset, size),
            Handle::Read {
                path,
                remote,
                pinned,
            } => {
                let path = lock(path).clone();
                if let Some(l) = lock(pinned).clone().or_else(|| self.local(&path)) {
                    return read_local(&l.file, offset, size);
                }
                let remote = &mut *lock(remote);
                if let Some(b) = self.warm_read(&path, &mut remote.seen, offset, size) {
                    return Ok(b);
                }
                let got = self.read_sequential(&path, remote, offset, size)?;
                let etag = remote.reader.as_deref().and_then(|r| self.store.etag(r));
                self.warm_keep(&path, &mut remote.seen, etag, offset, size, &got);
                Ok(got)
            }
        }
    }

    /// A read through a handle: a sequential reader (each read starting near where the
    /// last ended) is served from a stream ([`Prefetch`]); other reads fetch just what
    /// they ask for.
    fn read_sequential(
        &self,
        path: &str,
        remote: &mut Remote<S>,
        offset: u64,
        size: u32,
    ) -> R<Bytes> {
        if !remote.stream.as_ref().is_some_and(|s| s.serves(offset)) {
            remote.stream = None;
            let sequential = offset > 0 && offset.abs_diff(remote.next) <= prefetch::REORDER;
            if !sequential {
                let v = self.read_remote(path, remote, offset, size)?;
                remote.next = offset + v.len() as u64;
                return Ok(v);
            }
            match self.reader_of(path, remote) {
                Ok(r) => {
                    let store = self.store.clone();
                    remote.stream = Some(Prefetch::start(&self.rt, store, r, offset));
                }
                Err(e) => tracing::debug!("cannot stream {path:?}, reading directly: {e}"),
            }
        }
        let streamed = match remote
            .stream
            .as_mut()
            .map(|s| s.read(&self.rt, offset, size))
        {
            Some(Ok(b)) => b,
            Some(Err(e)) => {
                // Replaced since, say: the plain path reopens.
                tracing::debug!("read-ahead of {path:?} failed, reading directly: {e}");
                remote.stream = None;
                Bytes::new()
            }
            None => Bytes::new(),
        };
        let got = streamed.len() as u64;
        let mut parts = vec![streamed];
        if got < size as u64 {
            // It may have grown since: the plain path checks.
            let rest = self.read_remote(path, remote, offset + got, size - got as u32)?;
            if !rest.is_empty() {
                remote.stream = None;
                parts.push(rest);
            }
        }
        let out = concat(parts);
        remote.next = offset + out.len() as u64;
        Ok(out)
    }

    /// The handle's reader, opened on first use.
    fn reader_of(&self, path: &str, remote: &mut Remote<S>) -> Result<Arc<S::Reader>, Error> {
        if let Some(r) = &remote.reader {
            return Ok(r.clone());
        }
        let r = self
            .block_on(self.store.reader(path))?
            .ok_or_else(|| Error::NotFound(format!("{path:?} is gone")))?;
        let r = Arc::new(r);
        remote.reader = Some(r.clone());
        Ok(r)
    }

    fn read_remote(&self, path: &str, remote: &mut Remote<S>, offset: u64, size: u32) -> R<Bytes> {
        for attempt in 0..2 {
            let mut made = false;
            let r = match remote.reader.clone() {
                Some(r) if attempt == 0 => r,
                _ => {
                    made = true;
                    let r = self
                        .block_on(self.store.reader(path))
                        .map_err(|e| errno(&format!("open {path:?}"), e))?
                        .ok_or(Errno::ENOENT)?;
                    let r = Arc::new(r);
                    remote.reader = Some(r.clone());
                    r
                }
            };
            let mut buf = BytesMut::new();
            match self.block_on(self.store.read_at(&r, offset, size as u64, &mut buf)) {
                // Short of what was asked, by a reader made earlier: the file may have
                // grown since (written or truncated through another handle), and the
                // kernel asks within the size it knows. Reopen once.
                Ok(()) if attempt == 0 && !made && buf.len() < size as usize => {
                    tracing::debug!("short read of {path:?} at {offset}, reopening")
                }
                Ok(()) => return Ok(buf.freeze()),
                // The object may have been replaced: reopen once.
                Err(e) if attempt == 0 => {
                    tracing::debug!("read of {path:?} failed, reopening: {e}")
                }
                Err(e) => return Err(errno(&format!("read of {path:?}"), e)),
            }
        }
        Err(Errno::EIO)
    }

    /// Read handles of `path` read it anew: it was just replaced through this mount.
    pub(crate) fn reset_readers(&self, path: &str) {
        for h in self.all_handles() {
            if let Handle::Read {
                path: p, remote, ..
            } = &*h
            {
                if *lock(p) == path {
                    lock(remote).reset();
                }
            }
        }
    }

    /// Before `path` is unlinked or renamed over: every handle reading it gets a local
    /// copy to go on reading from (one copy, a reference per handle).
    pub(crate) fn pin_readers(&self, path: &str) -> R<()> {
        let readers: Vec<Arc<Handle<S>>> = self
            .all_handles()
            .into_iter()
            .filter(|h| matches!(&**h, Handle::Read { path: p, pinned, .. } if *lock(p) == path && lock(pinned).is_none()))
            .collect();
        if readers.is_empty() {
            return Ok(());
        }
        let local = self.acquire_local(path, false, None)?;
        lock(&local.state).refs += readers.len() - 1;
        for h in readers {
            if let Handle::Read { pinned, .. } = &*h {
                *lock(pinned) = Some(local.clone());
            }
        }
        Ok(())
    }

    /// Read handles of `from` (a file, or a directory's files) follow it to `to`.
    pub(crate) fn move_readers(&self, from: &str, to: &str) {
        for h in self.all_handles() {
            if let Handle::Read { path, remote, .. } = &*h {
                let mut p = lock(path);
                if within(&p, from) {
                    *p = moved(&p, from, to);
                    lock(remote).reset();
                }
            }
        }
    }
}

//! Random and streaming reads of a file's plaintext: what `cat` and the mount read with.

use super::links::inode_path;
use super::names::clean_path;
use super::{Vault, SEALED_CHUNK};
use crate::blocking::blocking;
use crate::crypto::{Opener, VaultKeys, CHUNK};
use crate::error::{Error, Result, ResultExt};
use crate::transfer::{gone, ObjectInfo, Pin};
use bytes::{Bytes, BytesMut};
use std::io::Write;
use std::sync::Arc;

/// Enough for any header our writer or the age CLI produces for a few recipients.
pub(super) const HEADER_PROBE: u64 = 4096;

/// What [`Vault::stream_at`] hands on at a time, and how many such batches may wait.
pub const STREAM_BATCH: usize = 1 << 20;
pub const STREAM_DEPTH: usize = 8;

impl Vault {
    /// Write the plaintext of `path` to `out`, in order, streaming (see
    /// [`Vault::stream_at`]).
    pub async fn cat(&self, path: &str, out: &mut (dyn Write + Send)) -> Result<u64> {
        let failed = || format!("cannot read {}:{path}", self.name);
        let Some(r) = self.reader(path).await.with_context(failed)? else {
            return Err(self.missing(path).await);
        };
        let (tx, mut rx) = tokio::sync::mpsc::channel(STREAM_DEPTH);
        let produce = async move { self.stream_at(&r, 0, &tx).await };
        // Owns the receiver, so a failed write ends the stream instead of blocking it.
        let consume = async move {
            let mut n = 0;
            while let Some(batch) = rx.recv().await {
                out.write_all(&batch)?;
                n += batch.len() as u64;
            }
            out.flush()?;
            Ok::<_, std::io::Error>(n)
        };
        let (produced, consumed) = tokio::join!(produce, consume);
        let n = consumed?;
        produced.with_context(failed)?;
        Ok(n)
    }

    /// The plaintext of the file `r` was made for, from `offset` to its end, sent to `tx`
    /// in batches of about [`STREAM_BATCH`] bytes as they arrive: one GET, with `If-Match`.
    /// Encrypted batches are authenticated and decrypted on a worker thread while the next
    /// one arrives; a truncated object is an error, never a short plaintext. Ends early,
    /// without error, when the receiver is dropped.
    pub async fn stream_at(
        &self,
        r: &RangeReader,
        offset: u64,
        tx: &tokio::sync::mpsc::Sender<Bytes>,
    ) -> Result<()> {
        // Past the end there is nothing to send, but an encrypted file's last chunk is still
        // authenticated: an empty file is not taken on trust either.
        if offset >= r.size && r.opener.is_none() {
            return Ok(());
        }
        let cipher_len = r.info.size;
        let (start, end, first) = match &r.opener {
            None => (offset, r.size, 0),
            Some(o) => o.cipher_range(offset, r.size, cipher_len),
        };
        let pin = Pin {
            etag: r.info.etag.as_deref(),
            version: None,
        };
        let out = self
            .transfers
            .get_range(&self.cfg.bucket, &r.key, start, end, pin)
            .await?
            .ok_or_else(gone)?;
        let mut body = out.body;
        // Encrypted batches hold whole chunks.
        let batch_len = match &r.opener {
            None => STREAM_BATCH,
            Some(_) => (STREAM_BATCH as u64 / SEALED_CHUNK * SEALED_CHUNK) as usize,
        };
        let mut batch = BytesMut::with_capacity(batch_len);
        let (mut received, mut chunk) = (0u64, first);
        let mut skip = (offset - first * CHUNK) as usize;
        // The batch being decrypted, sent once the next one has arrived.
        let mut opening = None;
        loop {
            let piece = body.try_next().await?;
            let eof = piece.is_none();
            if let Some(piece) = piece {
                received += piece.len() as u64;
                batch.extend_from_slice(&piece);
            }
            while batch.len() >= batch_len || (eof && !batch.is_empty()) {
                let full = batch.split_to(batch.len().min(batch_len));
                batch.reserve(batch_len);
                let Some(opener) = r.opener.clone() else {
                    if tx.send(full.freeze()).await.is_err() {
                        return Ok(());
                    }
                    continue;
                };
                if let Some(done) = opening.take() {
                    if tx.send(done.await?).await.is_err() {
                        return Ok(());
                    }
                }
                let (at, from) = (chunk, skip);
                chunk += full.len() as u64 / SEALED_CHUNK;
                skip = 0;
                opening = Some(blocking(move || {
                    let mut buf = full;
                    let len = opener.open_in_place(at, &mut buf, cipher_len)?;
                    buf.truncate(len);
                    Ok::<Bytes, Error>(buf.freeze().slice(from.min(len)..))
                }));
            }
            if eof {
                break;
            }
        }
        if let Some(done) = opening {
            if tx.send(done.await?).await.is_err() {
                return Ok(());
            }
        }
        if received != end - start {
            return Err(Error::Transport("the object is truncated".into()));
        }
        Ok(())
    }

    /// A handle for random reads of `path` as it is now (`None`: no such file): its
    /// object's size and ETag, and for encrypted vaults the parsed age header, so each
    /// [`Vault::read_at`] costs one ranged GET.
    pub async fn reader(&self, path: &str) -> Result<Option<RangeReader>> {
        let mut path = clean_path(path)?;
        let mut key = self.key_of(&path)?;
        if self.crypt.is_none() {
            let mut info = self.transfers.head(&self.cfg.bucket, &key).await?;
            // A link record: the content is its inode object's.
            if let Some(inode) = info.as_ref().map(|i| self.followed(&path, &i.metadata)) {
                if let Some(inode) = inode? {
                    key = inode;
                    info = self.transfers.head(&self.cfg.bucket, &key).await?;
                }
            }
            return Ok(info.map(|info| RangeReader {
                key,
                size: info.size,
                info,
                opener: None,
            }));
        }
        // One GET brings the header and the ETag the reads will insist on.
        let mut first = self
            .transfers
            .get_first(&self.cfg.bucket, &key, 0, HEADER_PROBE, None)
            .await?;
        let link = first
            .as_ref()
            .map(|(i, _)| self.link_of(&path, &i.metadata));
        if let Some(id) = link.transpose()?.flatten() {
            path = inode_path(&id);
            key = self.key_of(&path)?;
            first = self
                .transfers
                .get_first(&self.cfg.bucket, &key, 0, HEADER_PROBE, None)
                .await?;
        }
        let Some((info, header)) = first else {
            return Ok(None);
        };
        let path = &path;
        let opener = self
            .open_checked(path, &header)
            .with_context(|| format!("cannot decrypt {}:{path}", self.name))?;
        let size = opener.plain_len(info.size)?;
        Ok(Some(RangeReader {
            key,
            info,
            opener: Some(Arc::new(opener)),
            size,
        }))
    }

    /// Up to `len` plaintext bytes at `offset` of the file `r` was made for (fewer at its
    /// end), into `buf`: emptied first, its room reused, so a reader that keeps its buffer
    /// allocates nothing. Encrypted vaults fetch whole chunks, authenticate and decrypt
    /// them in place. An object replaced since [`Vault::reader`] is an error (`If-Match`).
    pub async fn read_at(
        &self,
        r: &RangeReader,
        offset: u64,
        len: u64,
        buf: &mut BytesMut,
    ) -> Result<()> {
        buf.clear();
        let end = offset.saturating_add(len).min(r.size);
        if offset >= end {
            return Ok(());
        }
        let cipher_len = r.info.size;
        let (start, stop, first) = match &r.opener {
            None => (offset, end, 0),
            Some(o) => o.cipher_range(offset, end, cipher_len),
        };
        self.transfers
            .get_range_into(
                &self.cfg.bucket,
                &r.key,
                start,
                stop,
                Pin {
                    etag: r.info.etag.as_deref(),
                    version: None,
                },
                buf,
            )
            .await?
            .ok_or_else(gone)?;
        if buf.len() as u64 != stop - start {
            return Err(Error::Transport(format!(
                "the server sent {} of {} bytes",
                buf.len(),
                stop - start
            )));
        }
        let Some(opener) = r.opener.clone() else {
            return Ok(());
        };
        let mut cipher = std::mem::take(buf);
        // The buffer comes back whether or not it opened, to be reused by the next read.
        let (opened, cipher) = blocking(move || {
            let opened = opener.open_in_place(first, &mut cipher, cipher_len);
            Ok((opened, cipher))
        })
        .await?;
        *buf = cipher;
        let plain = opened?;
        let skip = (offset - first * CHUNK) as usize;
        buf.truncate(plain.min(skip + (end - offset) as usize));
        // O(1): the front moves; the room comes back when `buf` is cleared and reserved.
        drop(buf.split_to(skip.min(buf.len())));
        Ok(())
    }

    /// Up to `len` plaintext bytes of `path` at `offset` (one-off: see [`Vault::reader`]).
    pub async fn read_range(&self, path: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        let Some(r) = self.reader(path).await? else {
            return Err(self.missing(path).await);
        };
        let mut buf = BytesMut::new();
        self.read_at(&r, offset, len, &mut buf).await?;
        Ok(buf.to_vec())
    }
}

/// An object opened for random reads by [`Vault::reader`].
pub struct RangeReader {
    key: String,
    info: ObjectInfo,
    opener: Option<Arc<Opener>>,
    /// Plaintext size.
    pub size: u64,
}

impl RangeReader {
    /// The ETag of the object as opened, quotes included: the version every read insists
    /// on, as a listing's [`super::Entry::etag`] names it.
    pub fn etag(&self) -> Option<&str> {
        self.info.etag.as_deref()
    }
}

/// An age header from the first bytes of an object.
pub(super) fn parse_header(prefix: &[u8], keys: &VaultKeys) -> Result<Opener> {
    match Opener::parse(prefix, keys.identities())? {
        Some(o) => Ok(o),
        None => Err(Error::Crypto(
            "the object is not an age file or is truncated".into(),
        )),
    }
}

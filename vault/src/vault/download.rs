//! Downloads into local files: a first GET for the metadata (and an encrypted object's
//! header), then ranged GETs written beside the destination and renamed over it.

use super::landing::Landing;
use super::links::inode_path;
use super::{Meta, Vault, SEALED_CHUNK};
use crate::blocking::blocking;
use crate::crypto::{Opener, CHUNK};
use crate::download_file::{DownloadFile, STAGE};
use crate::error::{Error, Result, ResultExt};
use crate::transfer::{ObjectInfo, Pin, Progress, RangeConsumer, Sink, PIECE};
use bytes::{Bytes, BytesMut};
use std::fs::{self, FileTimes};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Chunks of an encrypted download decrypted and written at a time: what fills the disk
/// write's staging buffer.
const PIECE_CHUNKS: u64 = STAGE as u64 / CHUNK;

impl Vault {
    /// Download `path` into the local file `local` (written beside it, then renamed),
    /// restoring its mtime and mode. Returns the plaintext size.
    pub async fn download(&self, path: &str, local: &Path, progress: Progress) -> Result<u64> {
        self.download_version(path, None, local, progress).await
    }

    /// [`Vault::download`] of one version of `path` (`VAULT:path@VERSION`), the current
    /// one without `version`. An older version of an encrypted file is still checked
    /// against its path, and is not taken for a rollback: it was asked for by its id.
    pub async fn download_version(
        &self,
        path: &str,
        version: Option<&str>,
        local: &Path,
        progress: Progress,
    ) -> Result<u64> {
        let (size, part) = self.download_part(path, version, local, progress).await?;
        if let Some((part, meta)) = part {
            blocking(move || part.finish(&meta)).await?;
        }
        Ok(size)
    }

    /// [`Vault::download`] that leaves the file to `landing` once its bytes are written:
    /// it is made durable together with other downloads' and renamed into place after
    /// this returns (see [`Landing`]).
    pub async fn download_landing(
        &self,
        path: &str,
        local: &Path,
        progress: Progress,
        landing: &Landing,
    ) -> Result<u64> {
        let (size, part) = self.download_part(path, None, local, progress).await?;
        if let Some((part, meta)) = part {
            landing.hand_over(part, meta).await;
        }
        Ok(size)
    }

    /// The download written into its part file, with the attributes to restore; the part
    /// file is removed if the download fails. No part file when the object vanished.
    async fn download_part(
        &self,
        path: &str,
        version: Option<&str>,
        local: &Path,
        progress: Progress,
    ) -> Result<(u64, Option<(PartFile, Meta)>)> {
        let mut part = None;
        let fetched = self
            .fetch((path, version), progress, |size| {
                let (local, slot) = (local.to_path_buf(), &mut part);
                async move {
                    let p = blocking(move || PartFile::create(&local, size)).await?;
                    let sink: Arc<dyn Sink> = p.file.clone();
                    *slot = Some(p);
                    Ok(sink)
                }
            })
            .await;
        let Some(part) = part else {
            return fetched.map(|(size, _)| (size, None));
        };
        match fetched {
            Ok((size, meta)) => Ok((size, Some((part, meta)))),
            Err(e) => {
                blocking(move || {
                    part.discard();
                    Ok(())
                })
                .await?;
                Err(e)
            }
        }
    }

    /// Download the plaintext of `path` into `sink`, at its offsets from 0, as
    /// [`Vault::download`] does into a file. Returns the file's attributes (its size the
    /// plaintext's), for the caller to restore.
    pub async fn download_to(
        &self,
        path: &str,
        sink: Arc<dyn Sink>,
        progress: Progress,
    ) -> Result<Meta> {
        let (size, mut meta) = self
            .fetch((path, None), progress, |_| std::future::ready(Ok(sink)))
            .await?;
        meta.size = size;
        Ok(meta)
    }

    /// The download itself: the first GET brings the metadata and, for an encrypted
    /// object, its header, so a file up to [`PIECE`] costs one request; `sink_for` then
    /// makes the sink for the plaintext's size. The rest streams in ranged GETs of
    /// `part_size`, in pieces, so memory does not grow with the file. Returns the
    /// plaintext size and the attributes.
    async fn fetch<F>(
        &self,
        (path, version): (&str, Option<&str>),
        progress: Progress,
        sink_for: impl FnOnce(u64) -> F,
    ) -> Result<(u64, Meta)>
    where
        F: std::future::Future<Output = Result<Arc<dyn Sink>>>,
    {
        let named = super::clean_path(path)?;
        let mut version = version;
        let (mut path, mut key) = (named.clone(), self.key_of(&named)?);
        let failed = || format!("cannot read {}:{named}", self.name);
        let mut first = self
            .transfers
            .get_first(&self.cfg.bucket, &key, 0, PIECE as u64, version)
            .await
            .with_context(failed)?;
        // A link record: the content and attributes are its inode object's (whose
        // current version: the record's versions are not the content's).
        let link = first
            .as_ref()
            .map(|(i, _)| self.link_of(&named, &i.metadata));
        if let Some(id) = link.transpose().with_context(failed)?.flatten() {
            path = inode_path(&id);
            key = self.key_of(&path)?;
            version = None;
            first = self
                .transfers
                .get_first(&self.cfg.bucket, &key, 0, PIECE as u64, None)
                .await
                .with_context(failed)?;
        }
        let Some((info, first)) = first else {
            return Err(self.missing(&named).await);
        };
        let path = &path;
        let opener = match (&self.crypt, version) {
            (Some(_), None) => Some(self.open_checked(path, &first).with_context(failed)?),
            (Some(_), Some(_)) => Some(self.open_version(path, &first).with_context(failed)?),
            (None, _) => None,
        };
        let size = match &opener {
            Some(o) => o.plain_len(info.size).with_context(failed)?,
            None => info.size,
        };
        let sink = sink_for(size).await?;
        let at = (key.as_str(), version);
        match opener {
            Some(o) => self.fetch_sealed(at, &info, first, o, sink, progress).await,
            None => self.fetch_plain(at, &info, first, sink, progress).await,
        }
        .with_context(failed)?;
        Ok((size, self.meta_of(&info)))
    }

    /// Writes a plain object to `sink`: `first`, its first bytes, and the rest in ranged
    /// GETs.
    async fn fetch_plain(
        &self,
        at: (&str, Option<&str>),
        info: &ObjectInfo,
        first: Bytes,
        sink: Arc<dyn Sink>,
        progress: Progress,
    ) -> Result<()> {
        let each: RangeConsumer = Arc::new(move |at, bytes: &mut [u8]| {
            sink.write_at(at, bytes)?;
            progress(bytes.len() as u64);
            Ok(())
        });
        let rest = first.len() as u64;
        let step = self.transfers.part_size.max(1);
        tokio::try_join!(
            blocking({
                let each = each.clone();
                move || each(0, &mut BytesMut::from(first))
            }),
            self.fetch_rest(at, info, rest, (step, PIECE as u64), each),
        )?;
        Ok(())
    }

    /// Decrypts an age object, whose header `opener` parsed, into `sink`: whole chunks
    /// from `first`, its first bytes, and the remaining chunks in ranged GETs, each opened
    /// on a worker thread as it arrives.
    async fn fetch_sealed(
        &self,
        at: (&str, Option<&str>),
        info: &ObjectInfo,
        first: Bytes,
        opener: Opener,
        sink: Arc<dyn Sink>,
        progress: Progress,
    ) -> Result<()> {
        let cipher_len = info.size;
        let payload_start = opener.payload_start();
        let each: RangeConsumer = Arc::new(move |at, buf: &mut [u8]| {
            let first = (at - payload_start) / SEALED_CHUNK;
            // Decrypted piece by piece into the buffer the disk write reads.
            let pieces = buf.chunks((PIECE_CHUNKS * SEALED_CHUNK) as usize);
            for (i, piece) in pieces.enumerate() {
                let chunk = first + i as u64 * PIECE_CHUNKS;
                let mut len = 0;
                sink.write_with(chunk * CHUNK, &mut |out| {
                    len = opener.open_into(chunk, piece, out, cipher_len)?;
                    Ok(len)
                })?;
                progress(len as u64);
            }
            Ok(())
        });
        // A chunk cut by the end of the first response is fetched again with the rest.
        let got = first.len() as u64;
        let opened = if got == cipher_len {
            cipher_len
        } else {
            payload_start + (got - payload_start) / SEALED_CHUNK * SEALED_CHUNK
        };
        let chunks = first.slice(payload_start as usize..opened as usize);
        let step = (self.transfers.part_size / SEALED_CHUNK).max(1) * SEALED_CHUNK;
        tokio::try_join!(
            blocking({
                let each = each.clone();
                move || each(payload_start, &mut BytesMut::from(chunks))
            }),
            self.fetch_rest(at, info, opened, (step, PIECE_CHUNKS * SEALED_CHUNK), each),
        )?;
        Ok(())
    }

    /// Bytes `[from, end of object)` of `key` in ranged GETs of `step` bytes, each handed to
    /// `each`. They carry `If-Match` with the first response's ETag, so an object replaced
    /// meanwhile fails the download instead of mixing versions.
    async fn fetch_rest(
        &self,
        (key, version): (&str, Option<&str>),
        info: &ObjectInfo,
        from: u64,
        (step, piece): (u64, u64),
        each: RangeConsumer,
    ) -> Result<()> {
        let end = info.size;
        let ranges = (from..end)
            .step_by(step as usize)
            .map(|s| (s, (s + step).min(end)))
            .collect();
        self.transfers
            .fetch_ranges(
                &self.cfg.bucket,
                key,
                Pin {
                    etag: info.etag.as_deref(),
                    version,
                },
                ranges,
                piece as usize,
                each,
            )
            .await
    }
}

/// A download being written beside its destination as `.NAME.cybs3-part` and renamed over
/// it when complete, so an interrupted download never leaves a short file under its name.
pub(super) struct PartFile {
    tmp: PathBuf,
    pub(super) local: PathBuf,
    file: Arc<DownloadFile>,
}

impl PartFile {
    /// For a download of `size` bytes.
    fn create(local: &Path, size: u64) -> Result<PartFile> {
        let name = local
            .file_name()
            .ok_or_else(|| Error::invalid(format!("{} is not a file name", local.display())))?;
        let tmp = local.with_file_name(format!(".{}.cybs3-part", name.to_string_lossy()));
        // The directory is made only when it is missing: most downloads go into one that
        // exists, and a mkdir and a stat per file were a tenth of a small file's system time.
        let file = match DownloadFile::create(&tmp, size) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(dir) = local.parent().filter(|d| !d.as_os_str().is_empty()) {
                    fs::create_dir_all(dir)
                        .with_context(|| format!("cannot create {}", dir.display()))?;
                }
                DownloadFile::create(&tmp, size)
            }
            created => created,
        }
        .with_context(|| format!("cannot write {}", tmp.display()))?;
        Ok(PartFile {
            tmp,
            local: local.to_path_buf(),
            file: Arc::new(file),
        })
    }

    /// Restores mode and mtime, makes the content durable, and puts the file in place.
    fn finish(self, meta: &Meta) -> Result<()> {
        self.restore(meta)?;
        self.land()
    }

    /// Restores the file's mode and mtime.
    pub(super) fn restore(&self, meta: &Meta) -> Result<()> {
        let failed = || format!("cannot write {}", self.local.display());
        let file = self.file.file();
        if let Some(mode) = meta.mode {
            file.set_permissions(fs::Permissions::from_mode(mode & 0o7777))
                .with_context(failed)?;
        }
        if let Some(mtime) = meta.mtime {
            file.set_times(FileTimes::new().set_modified(mtime))
                .with_context(failed)?;
        }
        Ok(())
    }

    /// The file handle, for a [`Landing`] to make it durable.
    pub(super) fn file(&self) -> &fs::File {
        self.file.file()
    }

    /// Makes the content durable and puts the file in place; the part file is removed if
    /// that fails.
    pub(super) fn land(self) -> Result<()> {
        let failed = || format!("cannot write {}", self.local.display());
        let landed = self.file.file().sync_all().with_context(failed);
        match landed.and_then(|()| fs::rename(&self.tmp, &self.local).with_context(failed)) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.discard();
                Err(e)
            }
        }
    }

    /// Puts the file, already durable, in place; the part file is removed if that fails.
    pub(super) fn rename(self) -> Result<()> {
        let failed = || format!("cannot write {}", self.local.display());
        match fs::rename(&self.tmp, &self.local).with_context(failed) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.discard();
                Err(e)
            }
        }
    }

    pub(super) fn discard(self) {
        // Best effort: sync skips leftover part files, and the next download replaces it.
        let _ = fs::remove_file(&self.tmp);
    }
}

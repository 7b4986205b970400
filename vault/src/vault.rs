//! A vault: plaintext paths (`photos/a.jpg`) mapped onto objects of one bucket and prefix.
//!
//! Plain vaults map paths one to one (`prefix/photos/a.jpg`), so any S3 client sees the
//! same tree. Encrypted vaults store each path segment encrypted (AES-SIV, see
//! [`crate::crypto::names`]) and each body as a standard age file, so the server sees
//! ciphertext only.
//!
//! Each uploaded object carries, as user metadata, the file's modification time (`mtime`,
//! seconds with a fraction, as rclone writes it), its mode (`mode`, decimal `st_mode`, as
//! s3fs writes it), and a content hash (`cybs3-hash`) that `sync --checksum` compares:
//! SHA-256 for plain vaults, HMAC-SHA256 under a vault key for encrypted ones (a plain
//! hash of plaintext would let the server confirm guesses of file contents).

use crate::config::VaultConfig;
use crate::crypto::agefile::{plain_len_for, SEALED_PAYLOAD_START};
use crate::crypto::{FileSecrets, NameCipher, Opener, Sealer, VaultKeys, CHUNK};
use crate::download_file::{DownloadFile, STAGE};
use crate::listing;
use crate::transfer::{
    payload_needs_signing, FileSource, ObjectInfo, Progress, RangeConsumer, Resume, SealedSource,
    Sink, Source, Transfers, PIECE,
};
use anyhow::{anyhow, bail, Context, Result};
use aws_sdk_s3::Client;
use bytes::{Bytes, BytesMut};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fs::{self, File, FileTimes};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub(crate) const META_MTIME: &str = "mtime";
pub(crate) const META_MODE: &str = "mode";
const META_HASH: &str = "cybs3-hash";
/// One age payload chunk as stored: 64 KiB of plaintext and its 16-byte tag.
const SEALED_CHUNK: u64 = CHUNK + 16;
/// Chunks of an encrypted download decrypted and written at a time: what fills the disk
/// write's staging buffer.
const PIECE_CHUNKS: u64 = STAGE as u64 / CHUNK;
/// Enough for any header our writer or the age CLI produces for a few recipients.
const HEADER_PROBE: u64 = 4096;
/// What [`Vault::stream_at`] hands on at a time, and how many such batches may wait.
pub const STREAM_BATCH: usize = 1 << 20;
pub const STREAM_DEPTH: usize = 8;

/// A file or directory of a vault, as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Plaintext path from the vault's root, without a trailing slash.
    pub path: String,
    /// Plaintext size (0 for directories).
    pub size: u64,
    /// When the object was stored (not the file's own mtime; see [`Meta`]).
    pub stored: Option<SystemTime>,
    pub is_dir: bool,
    /// The file's attributes, when the server listed them with it (see [`crate::listing`]).
    pub meta: Option<Meta>,
}

/// One file's attributes from its object's metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Meta {
    pub size: u64,
    pub mtime: Option<SystemTime>,
    pub mode: Option<u32>,
    pub hash: Option<String>,
    /// Extended attributes as stored (see [`Vault::xattrs`]).
    pub xattrs: Option<String>,
}

/// What an upload did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Uploaded {
    /// Plaintext bytes of the file.
    pub bytes: u64,
    /// Parts already on the server from an interrupted earlier run, not sent again.
    pub resumed_parts: u32,
    /// Parts of the object (1 for a single PUT).
    pub parts: u32,
}

struct Crypt {
    keys: VaultKeys,
    names: NameCipher,
    mac_key: zeroize::Zeroizing<[u8; 32]>,
}

pub struct Vault {
    pub name: String,
    pub cfg: VaultConfig,
    client: Client,
    transfers: Transfers,
    crypt: Option<Crypt>,
}

impl Vault {
    /// `keys` must be given exactly when the vault is encrypted.
    pub fn open(name: &str, cfg: VaultConfig, keys: Option<VaultKeys>) -> Result<Vault> {
        let crypt = match (cfg.encrypted, keys) {
            (true, Some(keys)) => Some(Crypt {
                names: keys.names_cipher(),
                mac_key: keys.content_mac_key(),
                keys,
            }),
            (false, None) => None,
            (true, None) => bail!("vault {name:?} is encrypted and needs its identity"),
            (false, Some(_)) => bail!("vault {name:?} is plain and takes no identity"),
        };
        let client = cfg.target().client();
        let mut transfers = Transfers::new(
            client.clone(),
            crate::config::config_dir().join("transfers"),
        );
        transfers.sign_payload = payload_needs_signing(cfg.encrypted, &cfg.endpoint);
        Ok(Vault {
            name: name.to_string(),
            cfg,
            client,
            transfers,
            crypt,
        })
    }

    pub fn encrypted(&self) -> bool {
        self.crypt.is_some()
    }

    /// The identities that read an encrypted vault (`None` for a plain one).
    pub(crate) fn identities(&self) -> Option<&[crate::crypto::Identity]> {
        self.crypt.as_ref().map(|c| c.keys.identities())
    }

    /// The recipient of an encrypted vault's new writes (`None` for a plain one).
    pub(crate) fn recipient(&self) -> Option<crate::crypto::Recipient> {
        self.crypt.as_ref().map(|c| c.keys.recipient())
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The object key of a plaintext path ("" is the vault's root).
    pub fn key_of(&self, path: &str) -> Result<String> {
        let path = clean_path(path)?;
        let rel = match (&self.crypt, path.is_empty()) {
            (_, true) => String::new(),
            (Some(c), false) => c.names.encrypt_path(&path)?,
            (None, false) => path,
        };
        Ok(format!("{}{rel}", self.cfg.prefix))
    }

    /// The plaintext path of an object key under the vault's prefix.
    fn path_of(&self, key: &str) -> Result<String> {
        let rel = key
            .strip_prefix(&self.cfg.prefix)
            .ok_or_else(|| anyhow!("{key:?} is outside the vault"))?
            .trim_end_matches('/');
        match &self.crypt {
            Some(c) => Ok(c.names.decrypt_path(rel)?),
            None => Ok(rel.to_string()),
        }
    }

    fn plain_size(&self, stored: u64) -> u64 {
        match self.crypt {
            // Our writer's header has a fixed length; sizes of objects written by other
            // age tools are estimates until they are opened.
            Some(_) => plain_len_for(stored, SEALED_PAYLOAD_START).unwrap_or(stored),
            None => stored,
        }
    }

    /// The entries of directory `dir` (all files below it when `recursive`), sorted by
    /// path. A `dir` that names a file lists that file. Objects whose names this vault
    /// cannot decrypt are skipped with a warning.
    pub async fn list(&self, dir: &str, recursive: bool) -> Result<Vec<Entry>> {
        let dir = clean_path(dir)?;
        let base = if dir.is_empty() {
            self.cfg.prefix.clone()
        } else {
            format!("{}/", self.key_of(&dir)?)
        };
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let page = listing::page(
                &self.client,
                &self.cfg.bucket,
                &base,
                (!recursive).then_some("/"),
                token.take(),
            )
            .await
            .with_context(|| format!("cannot list {}:{dir}", self.name))?;
            let listing::Page { output, metadata } = page;
            for p in output.common_prefixes() {
                if let Some(path) = self.listed_path(p.prefix().unwrap_or_default()) {
                    out.push(Entry {
                        path,
                        size: 0,
                        stored: None,
                        is_dir: true,
                        meta: None,
                    });
                }
            }
            for o in output.contents() {
                let key = o.key().unwrap_or_default();
                if key.len() <= base.len() || key.ends_with('/') {
                    continue; // directory markers of other tools
                }
                if let Some(path) = self.listed_path(key) {
                    let stored = o.size().unwrap_or(0).max(0) as u64;
                    out.push(Entry {
                        path,
                        size: self.plain_size(stored),
                        stored: o
                            .last_modified()
                            .and_then(|t| SystemTime::try_from(*t).ok()),
                        is_dir: false,
                        meta: metadata
                            .as_ref()
                            .and_then(|m| m.get(key))
                            .map(|m| self.meta_from(stored, m)),
                    });
                }
            }
            match output.next_continuation_token() {
                Some(t) if output.is_truncated() == Some(true) => token = Some(t.to_string()),
                _ => break,
            }
        }
        if out.is_empty() && !dir.is_empty() {
            if let Some(m) = self.stat(&dir).await? {
                out.push(Entry {
                    path: dir,
                    size: m.size,
                    stored: None,
                    is_dir: false,
                    meta: Some(m),
                });
            }
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    fn listed_path(&self, key: &str) -> Option<String> {
        // Vault-internal objects (shared keys) live under `.cybs3/`, which no encrypted
        // name can start with.
        if self.crypt.is_some() && key[self.cfg.prefix.len()..].starts_with(".cybs3/") {
            return None;
        }
        // A name that is not a clean path (`..`, empty or `.` segments, NUL; S3 itself
        // allows them) could lead a copy out of its destination: such objects are not
        // files of the vault.
        let listed = self.path_of(key).and_then(|p| match clean_path(&p) {
            Ok(clean) if clean == p => Ok(p),
            _ => Err(anyhow!("{p:?} is not a safe relative path")),
        });
        match listed {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::warn!("skipping {key:?} in vault {}: {e}", self.name);
                None
            }
        }
    }

    /// A file's attributes, or `None` when there is no such file.
    pub async fn stat(&self, path: &str) -> Result<Option<Meta>> {
        let key = self.key_of(path)?;
        let Some(info) = self.transfers.head(&self.cfg.bucket, &key).await? else {
            return Ok(None);
        };
        Ok(Some(self.meta_of(&info)))
    }

    fn meta_of(&self, info: &ObjectInfo) -> Meta {
        self.meta_from(info.size, &info.metadata)
    }

    /// Attributes from an object's stored size and user metadata.
    fn meta_from(&self, stored: u64, metadata: &HashMap<String, String>) -> Meta {
        Meta {
            size: self.plain_size(stored),
            mtime: metadata.get(META_MTIME).and_then(|s| parse_mtime(s)),
            mode: metadata.get(META_MODE).and_then(|s| s.parse().ok()),
            hash: metadata.get(META_HASH).cloned(),
            xattrs: metadata.get(crate::attrs::META_XATTRS).cloned(),
        }
    }

    /// The content hash stored with uploads (and compared by `sync --checksum`).
    pub fn hash_file(&self, local: &Path) -> Result<String> {
        hash_with(local, self.hash_key().as_ref())
    }

    /// Upload a local file to `path`, keeping its mtime, mode and content hash. A large
    /// upload interrupted earlier resumes where it stopped when the file is unchanged.
    pub async fn upload(&self, local: &Path, path: &str, progress: Progress) -> Result<Uploaded> {
        self.upload_with_xattrs(local, path, progress, None).await
    }

    /// [`Vault::upload`], with extended attributes as stored ([`Meta::xattrs`]).
    pub async fn upload_with_xattrs(
        &self,
        local: &Path,
        path: &str,
        mut progress: Progress,
        xattrs: Option<&str>,
    ) -> Result<Uploaded> {
        let key = self.key_of(path)?;
        let md = fs::metadata(local).with_context(|| format!("cannot read {}", local.display()))?;
        if !md.is_file() {
            bail!("{} is not a regular file", local.display());
        }
        let hash = {
            let (this_local, crypt_key) = (local.to_path_buf(), self.hash_key());
            tokio::task::spawn_blocking(move || hash_with(&this_local, crypt_key.as_ref()))
                .await??
        };
        let mtime = md.modified().unwrap_or(UNIX_EPOCH);
        let mut meta = vec![
            (META_MTIME.to_string(), format_mtime(mtime)),
            (META_MODE.to_string(), md.mode().to_string()),
            (META_HASH.to_string(), hash),
        ];
        if let Some(x) = xattrs {
            meta.push((crate::attrs::META_XATTRS.to_string(), x.to_string()));
        }
        let resume_id = resume_id(&[
            &self.cfg.endpoint,
            &self.cfg.bucket,
            &key,
            &std::path::absolute(local)?.to_string_lossy(),
            &md.len().to_string(),
            &format_mtime(mtime),
            // Any write changes the ctime: a journal (and its file key) never serves
            // different content, so no age chunk nonce is ever reused.
            &format!("{}:{}:{}", md.ino(), md.ctime(), md.ctime_nsec()),
        ]);
        let plain =
            FileSource::open(local).with_context(|| format!("cannot read {}", local.display()))?;
        let (source, extra): (Arc<dyn Source>, serde_json::Value) = match &self.crypt {
            Some(c) => {
                // Resuming needs the very same ciphertext bytes: reuse the journaled secrets.
                let secrets: FileSecrets = self
                    .transfers
                    .journaled(&resume_id)
                    .and_then(|v| serde_json::from_value(v).ok())
                    .unwrap_or_else(FileSecrets::random);
                let sealer = Sealer::new(&c.keys.recipient(), &secrets, md.len());
                progress = plain_progress(progress, md.len(), sealer.cipher_len());
                (
                    Arc::new(SealedSource::new(plain, sealer)),
                    serde_json::to_value(&secrets)?,
                )
            }
            None => (Arc::new(plain), serde_json::Value::Null),
        };
        let outcome = self
            .transfers
            .upload(
                &self.cfg.bucket,
                &key,
                source,
                &meta,
                None,
                Some(Resume {
                    id: resume_id,
                    extra,
                }),
                progress,
            )
            .await
            .with_context(|| {
                format!(
                    "upload of {} to {}:{path} failed",
                    local.display(),
                    self.name
                )
            })?;
        Ok(Uploaded {
            bytes: md.len(),
            resumed_parts: outcome.resumed_parts,
            parts: outcome.parts,
        })
    }

    fn hash_key(&self) -> Option<[u8; 32]> {
        self.crypt.as_ref().map(|c| *c.mac_key)
    }

    /// Store `data` at `path` (small writes, e.g. `cybs3 test`).
    pub async fn put_bytes(&self, path: &str, data: Vec<u8>) -> Result<()> {
        let tmp = tempfile::NamedTempFile::new()?;
        fs::write(tmp.path(), &data)?;
        self.upload(tmp.path(), path, Arc::new(|_| {}))
            .await
            .map(drop)
    }

    /// Download `path` into the local file `local` (written beside it, then renamed),
    /// restoring its mtime and mode. Returns the plaintext size. The first GET brings the
    /// metadata and, for an encrypted object, its header: a file up to [`PIECE`] costs one
    /// request. The rest streams in ranged GETs of `part_size`, in pieces, so memory does
    /// not grow with the file.
    pub async fn download(&self, path: &str, local: &Path, progress: Progress) -> Result<u64> {
        let key = self.key_of(path)?;
        let failed = || format!("cannot read {}:{path}", self.name);
        let first = self
            .transfers
            .get_first(&self.cfg.bucket, &key, 0, PIECE as u64)
            .await
            .with_context(failed)?;
        let Some((info, first)) = first else {
            return Err(self.missing(path).await);
        };
        let opener = match &self.crypt {
            Some(c) => Some(parse_header(&first, &c.keys).with_context(failed)?),
            None => None,
        };
        let size = match &opener {
            Some(o) => o.plain_len(info.size).with_context(failed)?,
            None => info.size,
        };
        let part = {
            let local = local.to_path_buf();
            blocking(move || PartFile::create(&local, size)).await?
        };
        let file = part.file.clone();
        let fetched = match opener {
            Some(o) => {
                self.fetch_sealed(&key, &info, first, o, file, progress)
                    .await
            }
            None => self.fetch_plain(&key, &info, first, file, progress).await,
        };
        if let Err(e) = fetched {
            blocking(move || {
                part.discard();
                Ok(())
            })
            .await?;
            return Err(e.context(failed()));
        }
        let meta = self.meta_of(&info);
        blocking(move || part.finish(&meta)).await?;
        Ok(size)
    }

    /// Writes a plain object to `sink`: `first`, its first bytes, and the rest in ranged
    /// GETs.
    async fn fetch_plain(
        &self,
        key: &str,
        info: &ObjectInfo,
        first: Bytes,
        file: Arc<DownloadFile>,
        progress: Progress,
    ) -> Result<()> {
        let each: RangeConsumer = Arc::new(move |at, bytes: &mut [u8]| {
            file.write_at(at, bytes)?;
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
            self.fetch_rest(key, info, rest, (step, PIECE as u64), each),
        )?;
        Ok(())
    }

    /// Decrypts an age object, whose header `opener` parsed, into `sink`: whole chunks
    /// from `first`, its first bytes, and the remaining chunks in ranged GETs, each opened
    /// on a worker thread as it arrives.
    async fn fetch_sealed(
        &self,
        key: &str,
        info: &ObjectInfo,
        first: Bytes,
        opener: Opener,
        file: Arc<DownloadFile>,
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
                file.write_with(chunk * CHUNK, |out| {
                    len = opener.open_into(chunk, piece, out, cipher_len)?;
                    anyhow::Ok(len)
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
            self.fetch_rest(key, info, opened, (step, PIECE_CHUNKS * SEALED_CHUNK), each),
        )?;
        Ok(())
    }

    /// Bytes `[from, end of object)` of `key` in ranged GETs of `step` bytes, each handed to
    /// `each`. They carry `If-Match` with the first response's ETag, so an object replaced
    /// meanwhile fails the download instead of mixing versions.
    async fn fetch_rest(
        &self,
        key: &str,
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
                info.etag.as_deref(),
                ranges,
                piece as usize,
                each,
            )
            .await
    }

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
        let etag = r.info.etag.as_deref();
        let out = self
            .transfers
            .get_range(&self.cfg.bucket, &r.key, start, end, etag)
            .await?
            .context("the object is gone or ends before the range")?;
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
        let mut opening: Option<tokio::task::JoinHandle<Result<Bytes>>> = None;
        loop {
            let piece = body.try_next().await.context("reading the response body")?;
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
                    if tx.send(done.await??).await.is_err() {
                        return Ok(());
                    }
                }
                let (at, from) = (chunk, skip);
                chunk += full.len() as u64 / SEALED_CHUNK;
                skip = 0;
                opening = Some(tokio::task::spawn_blocking(move || {
                    let mut buf = full;
                    let len = opener.open_in_place(at, &mut buf, cipher_len)?;
                    buf.truncate(len);
                    Ok(buf.freeze().slice(from.min(len)..))
                }));
            }
            if eof {
                break;
            }
        }
        if let Some(done) = opening {
            if tx.send(done.await??).await.is_err() {
                return Ok(());
            }
        }
        if received != end - start {
            bail!("the object is truncated");
        }
        Ok(())
    }

    /// The error for a path with no object. In an encrypted vault, a wrong identity makes
    /// every name miss, so look at a few stored names and say so when none decrypts.
    pub async fn missing(&self, path: &str) -> anyhow::Error {
        let plain = anyhow!("{}:{path} does not exist", self.name);
        let Some(c) = &self.crypt else {
            return plain;
        };
        let Ok(page) = self
            .client
            .list_objects_v2()
            .bucket(&self.cfg.bucket)
            .prefix(&self.cfg.prefix)
            .max_keys(20)
            .send()
            .await
        else {
            return plain;
        };
        let names: Vec<&str> = page
            .contents()
            .iter()
            .filter_map(|o| o.key()?.strip_prefix(&self.cfg.prefix))
            .filter(|k| !k.starts_with(".cybs3/"))
            .collect();
        if !names.is_empty() && names.iter().all(|k| c.names.decrypt_path(k).is_err()) {
            anyhow!(
                "{}:{path} not found, and no identity of this vault can decrypt the names stored in it: is {} the vault's identity?",
                self.name,
                crate::keystore::key_path(&self.name).display()
            )
        } else {
            plain
        }
    }

    /// Delete one file (absent files are not an error, as in S3).
    pub async fn delete(&self, path: &str) -> Result<()> {
        let key = self.key_of(path)?;
        self.client
            .delete_object()
            .bucket(&self.cfg.bucket)
            .key(&key)
            .send()
            .await
            .with_context(|| format!("cannot delete {}:{path}", self.name))?;
        Ok(())
    }

    /// A handle for random reads of `path` as it is now (`None`: no such file): its
    /// object's size and ETag, and for encrypted vaults the parsed age header, so each
    /// [`Vault::read_at`] costs one ranged GET.
    pub async fn reader(&self, path: &str) -> Result<Option<RangeReader>> {
        let key = self.key_of(path)?;
        let Some(c) = &self.crypt else {
            let info = self.transfers.head(&self.cfg.bucket, &key).await?;
            return Ok(info.map(|info| RangeReader {
                key,
                size: info.size,
                info,
                opener: None,
            }));
        };
        // One GET brings the header and the ETag the reads will insist on.
        let first = self
            .transfers
            .get_first(&self.cfg.bucket, &key, 0, HEADER_PROBE)
            .await?;
        let Some((info, header)) = first else {
            return Ok(None);
        };
        let opener = parse_header(&header, &c.keys)
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
                r.info.etag.as_deref(),
                buf,
            )
            .await?
            .context("the object is gone or ends before the range")?;
        if buf.len() as u64 != stop - start {
            bail!("the server sent {} of {} bytes", buf.len(), stop - start);
        }
        let Some(opener) = r.opener.clone() else {
            return Ok(());
        };
        let mut cipher = std::mem::take(buf);
        let (opened, cipher) = tokio::task::spawn_blocking(move || {
            let opened = opener.open_in_place(first, &mut cipher, cipher_len);
            (opened, cipher)
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

/// An age header from the first bytes of an object.
fn parse_header(prefix: &[u8], keys: &VaultKeys) -> Result<Opener> {
    match Opener::parse(prefix, keys.identities())? {
        Some(o) => Ok(o),
        None => bail!("the object is not an age file or is truncated"),
    }
}

/// A download being written beside its destination as `.NAME.cybs3-part` and renamed over
/// it when complete, so an interrupted download never leaves a short file under its name.
struct PartFile {
    tmp: PathBuf,
    local: PathBuf,
    file: Arc<DownloadFile>,
}

impl PartFile {
    /// For a download of `size` bytes.
    fn create(local: &Path, size: u64) -> Result<PartFile> {
        let name = local
            .file_name()
            .ok_or_else(|| anyhow!("{} is not a file name", local.display()))?;
        let tmp = local.with_file_name(format!(".{}.cybs3-part", name.to_string_lossy()));
        if let Some(dir) = local.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let file = DownloadFile::create(&tmp, size)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        Ok(PartFile {
            tmp,
            local: local.to_path_buf(),
            file: Arc::new(file),
        })
    }

    /// Restores mode and mtime, makes the content durable, and puts the file in place.
    fn finish(self, meta: &Meta) -> Result<()> {
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
        file.sync_all().with_context(failed)?;
        fs::rename(&self.tmp, &self.local).with_context(failed)
    }

    fn discard(self) {
        // Best effort: sync skips leftover part files, and the next download replaces it.
        let _ = fs::remove_file(&self.tmp);
    }
}

/// Runs file IO or crypto on a blocking thread, off the async workers.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await?
}

/// Report ciphertext progress as plaintext bytes, so bars sized by the file end at 100 %.
fn plain_progress(progress: Progress, plain_len: u64, cipher_len: u64) -> Progress {
    let done = std::sync::atomic::AtomicU64::new(0);
    Arc::new(move |n| {
        use std::sync::atomic::Ordering::Relaxed;
        let before = done.fetch_add(n, Relaxed);
        let scale = |c: u64| (c as u128 * plain_len as u128 / cipher_len.max(1) as u128) as u64;
        progress(scale(before + n) - scale(before));
    })
}

fn hash_with(local: &Path, mac_key: Option<&[u8; 32]>) -> Result<String> {
    let mut f = File::open(local).with_context(|| format!("cannot read {}", local.display()))?;
    let mut buf = vec![0u8; 1 << 20];
    let mut feed = |update: &mut dyn FnMut(&[u8])| -> Result<()> {
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            update(&buf[..n]);
        }
    };
    match mac_key {
        Some(k) => {
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(k).expect("any key length");
            feed(&mut |b| mac.update(b))?;
            Ok(format!(
                "hmac-sha256:{}",
                hex::encode(mac.finalize().into_bytes())
            ))
        }
        None => {
            let mut h = Sha256::new();
            feed(&mut |b| h.update(b))?;
            Ok(format!("sha256:{}", hex::encode(h.finalize())))
        }
    }
}

/// A vault path without leading or trailing slashes; `.`/`..`/empty segments and NUL refused.
pub fn clean_path(path: &str) -> Result<String> {
    let p = path.trim_matches('/');
    if p.is_empty() {
        return Ok(String::new());
    }
    for seg in p.split('/') {
        if seg.is_empty() || seg == "." || seg == ".." || seg.contains('\0') {
            bail!("invalid vault path {path:?}: no empty, \".\" or \"..\" segments");
        }
    }
    Ok(p.to_string())
}

pub(crate) fn format_mtime(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    format!("{}.{:09}", d.as_secs(), d.subsec_nanos())
}

fn parse_mtime(s: &str) -> Option<SystemTime> {
    let (secs, frac) = s.split_once('.').unwrap_or((s, "0"));
    let secs: u64 = secs.parse().ok()?;
    let digits: String = frac.chars().take(9).collect();
    let nanos: u32 = format!("{digits:0<9}").parse().ok()?;
    Some(UNIX_EPOCH + Duration::new(secs, nanos))
}

fn resume_id(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    hex::encode(&h.finalize()[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_names_that_could_leave_a_directory_are_skipped() {
        let cfg = VaultConfig {
            endpoint: "http://127.0.0.1:9".into(),
            bucket: "b".into(),
            prefix: "p/".into(),
            ..VaultConfig::default()
        };
        let v = Vault::open("v", cfg, None).unwrap();
        assert_eq!(v.listed_path("p/a/b").as_deref(), Some("a/b"));
        assert_eq!(v.listed_path("p/a/").as_deref(), Some("a"));
        for bad in ["p/../x", "p/a/../../x", "p/a//b", "p/./a", "p//a", "p/a\0b"] {
            assert_eq!(v.listed_path(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn mtimes_roundtrip_with_nanoseconds() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
        assert_eq!(parse_mtime(&format_mtime(t)), Some(t));
        // rclone writes fewer digits.
        assert_eq!(
            parse_mtime("1700000000.5"),
            Some(UNIX_EPOCH + Duration::new(1_700_000_000, 500_000_000))
        );
        assert_eq!(
            parse_mtime("12"),
            Some(UNIX_EPOCH + Duration::from_secs(12))
        );
        assert_eq!(parse_mtime("x"), None);
    }

    #[test]
    fn paths_are_cleaned_or_refused() {
        assert_eq!(clean_path("/a/b/").unwrap(), "a/b");
        assert_eq!(clean_path("").unwrap(), "");
        for bad in ["a//b", "a/../b", "./a", "a\0b"] {
            assert!(clean_path(bad).is_err(), "{bad:?}");
        }
    }
}

//! Encrypted files bound to their paths (see [`crate::crypto::binding`]): the binding is
//! checked on every read, made on every write, and made anew by copies and renames, which
//! move a file's payload under a new header without re-encrypting it.

use super::names::clean_path;
use super::reader::{parse_header, HEADER_PROBE};
use super::{Crypt, Vault};
use crate::blocking::blocking;
use crate::crypto::{Binding, Opener};
use crate::download_file::DownloadFile;
use crate::error::{Error, Result, ResultExt};
use crate::transfer::{FileSource, Source};
use std::io;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// What a file's binding says about it.
enum Bound {
    /// Bound to its path, sealed at this time.
    At(u64),
    /// No binding: written by another age tool, or before vaults bound files.
    Unbound,
}

/// What `cybs3 vaults rebind` did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RebindReport {
    /// Files that were already bound to their paths.
    pub bound: u64,
    /// Files that had no binding and were bound to their paths.
    pub rebound: u64,
    /// Files bound to another path (swapped or copied in by someone without the key):
    /// left as they are, for the user to look at.
    pub foreign: Vec<String>,
}

impl Vault {
    fn crypt(&self) -> &Crypt {
        self.crypt
            .as_ref()
            .expect("bindings exist in encrypted vaults only")
    }

    /// Whether `opener`'s object is the file at `path`.
    fn bound(&self, path: &str, opener: &Opener) -> Result<Bound> {
        let time = opener.bound_time(&self.crypt().bind_key, path)?;
        Ok(time.map_or(Bound::Unbound, Bound::At))
    }

    /// Checks that `opener`'s object is the file at `path` (cleaned) and not older than a
    /// version of it seen here before, and records it as seen. A vault whose files are all
    /// bound refuses a file without a binding, which could stand in for any other.
    pub(super) fn check_bound(&self, path: &str, opener: &Opener) -> Result<()> {
        match self.bound(path, opener)? {
            Bound::At(time) => self.crypt().seen.observe(path, time),
            Bound::Unbound if self.cfg.bound => Err(Error::Crypto(format!(
                "{path} has no path binding, so it may have been put in place of another \
                 file; if the bucket holds only files you wrote, `cybs3 vaults rebind {}` \
                 binds them",
                self.name
            ))),
            Bound::Unbound => {
                tracing::warn!(
                    "{}:{path} has no path binding: run `cybs3 vaults rebind {}` so that \
                     swapped files are noticed",
                    self.name,
                    self.name
                );
                Ok(())
            }
        }
    }

    /// The header of a version of `path` asked for by its id, parsed and checked to be
    /// bound to `path`. Unlike [`Vault::open_checked`] it may be older than the newest
    /// seen here (that is why it was asked for), so it is neither compared with nor
    /// recorded as the newest.
    pub(super) fn open_version(&self, path: &str, prefix: &[u8]) -> Result<Opener> {
        let opener = parse_header(prefix, &self.crypt().keys)?;
        match self.bound(path, &opener)? {
            Bound::Unbound if self.cfg.bound => Err(Error::Crypto(format!(
                "this version of {path} has no path binding, so it may have been put in place of another file"
            ))),
            Bound::At(_) | Bound::Unbound => Ok(opener),
        }
    }

    /// The header at the start of `path`'s object (`prefix`), parsed and checked with
    /// [`Vault::check_bound`]: what every read of an encrypted file starts with.
    pub(super) fn open_checked(&self, path: &str, prefix: &[u8]) -> Result<Opener> {
        let opener = parse_header(prefix, &self.crypt().keys)?;
        self.check_bound(path, &opener)?;
        Ok(opener)
    }

    /// The binding of a new write of `path` (cleaned), whose newest version seen here was
    /// sealed at `seen`: sealed now, and always after it, so that a writer whose clock
    /// went back still moves on.
    pub(super) fn next_binding(&self, path: &str, seen: Option<u64>) -> Binding {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Binding {
            path: path.to_string(),
            sealed_at: now.max(seen.map_or(0, |s| s + 1)),
        }
    }

    /// Records a write with `binding` that succeeded.
    pub(super) fn wrote(&self, binding: &Binding) -> Result<()> {
        self.crypt().seen.observe(&binding.path, binding.sealed_at)
    }

    /// Copies the encrypted file at `from` to `to`, bound to its new path. The payload is
    /// fetched whole (ciphertext, into a temporary file) and sent back behind a new
    /// header; `adopt` also binds a file that has none (`vaults rebind`).
    pub(super) async fn copy_rebound(&self, from: &str, to: &str, adopt: bool) -> Result<()> {
        let (from, to) = (clean_path(from)?, clean_path(to)?);
        let (src, dst) = (self.key_of(&from)?, self.key_of(&to)?);
        let bucket = &self.cfg.bucket;
        let Some((info, prefix)) = self
            .transfers
            .get_first(bucket, &src, 0, HEADER_PROBE, None)
            .await?
        else {
            return Err(self.missing(&from).await);
        };
        // A link record holds no age file, only the name of its inode object.
        if let Some(id) = self.link_of(&from, &info.metadata)? {
            return self.put_link(&to, &id).await;
        }
        let c = self.crypt();
        let opener = parse_header(&prefix, &c.keys)?;
        match self.bound(&from, &opener)? {
            Bound::Unbound if adopt => {}
            _ => self.check_bound(&from, &opener)?,
        }
        let payload_start = opener.payload_start();
        let tmp = tempfile::NamedTempFile::new()?;
        let file = {
            let path = tmp.path().to_path_buf();
            Arc::new(blocking(move || Ok(DownloadFile::create(&path, info.size)?)).await?)
        };
        let fetched = self
            .transfers
            .download(bucket, &src, 0, None, file.clone(), Arc::new(|_| {}))
            .await?;
        if fetched.etag != info.etag {
            return Err(Error::PreconditionFailed(format!(
                "{}:{from} changed while it was being copied",
                self.name
            )));
        }
        let binding = self.next_binding(&to, c.seen.newest(&to)?);
        let head = opener.rebound_head(&c.keys.recipient(), &c.bind_key, &binding);
        let source = Rebound {
            head,
            payload: FileSource::open(tmp.path())?,
            payload_start,
        };
        let meta: Vec<(String, String)> = info.metadata.clone().into_iter().collect();
        self.transfers
            .upload(
                bucket,
                &dst,
                Arc::new(source),
                &meta,
                info.content_type.as_deref(),
                None,
                Arc::new(|_| {}),
            )
            .await?;
        self.wrote(&binding)
    }

    /// Binds every file of the vault that has no binding (written before vaults bound
    /// files, or by another age tool) to its path, and from then on refuses files
    /// without one: the caller stores `bound = true` in the vault's config.
    pub async fn rebind(&self) -> Result<RebindReport> {
        if self.crypt.is_none() {
            return Err(Error::invalid(format!(
                "vault {:?} is plain: only encrypted files are bound to their paths",
                self.name
            )));
        }
        let mut report = RebindReport::default();
        for entry in self.list("", true).await? {
            if entry.is_dir {
                continue;
            }
            let path = entry.path;
            let key = self.key_of(&path)?;
            let failed = || format!("cannot rebind {}:{path}", self.name);
            let Some((_, prefix)) = self
                .transfers
                .get_first(&self.cfg.bucket, &key, 0, HEADER_PROBE, None)
                .await
                .with_context(failed)?
            else {
                continue;
            };
            let opener = parse_header(&prefix, &self.crypt().keys).with_context(failed)?;
            match self.bound(&path, &opener) {
                Ok(Bound::At(time)) => {
                    self.crypt()
                        .seen
                        .observe(&path, time)
                        .with_context(failed)?;
                    report.bound += 1;
                }
                Ok(Bound::Unbound) => {
                    self.copy_rebound(&path, &path, true)
                        .await
                        .with_context(failed)?;
                    report.rebound += 1;
                }
                Err(Error::Crypto(_)) => report.foreign.push(path),
                Err(e) => return Err(e.context(failed())),
            }
        }
        Ok(report)
    }
}

/// A file's payload behind a new header: what a rebinding copy uploads.
struct Rebound {
    head: Vec<u8>,
    /// The whole old file; its payload starts at `payload_start`.
    payload: FileSource,
    payload_start: u64,
}

impl Source for Rebound {
    fn len(&self) -> u64 {
        self.head.len() as u64 + self.payload.len() - self.payload_start
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let head_len = self.head.len() as u64;
        let in_head = if offset < head_len {
            let n = ((head_len - offset) as usize).min(buf.len());
            buf[..n].copy_from_slice(&self.head[offset as usize..offset as usize + n]);
            n
        } else {
            0
        };
        let rest = &mut buf[in_head..];
        if rest.is_empty() {
            return Ok(());
        }
        let at = offset + in_head as u64 - head_len + self.payload_start;
        self.payload.read_at(at, rest)
    }
}

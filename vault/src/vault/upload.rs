//! Uploads of local files with their attributes, resumable when large.

use super::meta::{format_mtime, hash_with, META_RDEV};
use super::{UploadAttrs, Vault};
use crate::attrs::Kind;
use crate::blocking::blocking;
use crate::crypto::{Binding, FileSecrets, Sealer};
use crate::error::{Error, Result, ResultExt};
use crate::transfer::{FileSource, Progress, Resume, SealedSource, Source};
use sha2::{Digest, Sha256};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;
use std::time::UNIX_EPOCH;

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

impl Vault {
    /// Upload the content of a local file to `path` with the attributes `attrs` and its
    /// content hash. A large upload interrupted earlier resumes where it stopped when the
    /// file and the attributes are unchanged.
    pub async fn upload(
        &self,
        local: &Path,
        path: &str,
        attrs: &UploadAttrs,
        progress: Progress,
    ) -> Result<Uploaded> {
        let md = fs::metadata(local).with_context(|| format!("cannot read {}", local.display()))?;
        if !md.is_file() {
            return Err(Error::invalid(format!(
                "{} is not a regular file",
                local.display()
            )));
        }
        let plain =
            FileSource::open(local).with_context(|| format!("cannot read {}", local.display()))?;
        // The content's identity: these change whenever the file's bytes may have.
        let content_id = [
            std::path::absolute(local)?.to_string_lossy().into_owned(),
            md.len().to_string(),
            format_mtime(md.modified().unwrap_or(UNIX_EPOCH)),
            // Any write changes the ctime: a journal (and its file key) never serves
            // different content, so no age chunk nonce is ever reused.
            format!("{}:{}:{}", md.ino(), md.ctime(), md.ctime_nsec()),
        ]
        .join("\0");
        let what = format!("upload of {}", local.display());
        self.send(
            Arc::new(plain),
            Some(&content_id),
            &what,
            path,
            (attrs, None),
            progress,
        )
        .await
    }

    /// Upload the bytes of `plain` to `path`, as [`Vault::upload`] does a local file's.
    /// `content_id` names this very content: it must change whenever the bytes may have
    /// (it keys the journal that resumes an interrupted large upload, and reuses its file
    /// key); `None` when the caller cannot tell, and nothing resumes.
    pub async fn upload_from(
        &self,
        plain: Arc<dyn Source>,
        content_id: Option<&str>,
        path: &str,
        attrs: &UploadAttrs,
        progress: Progress,
    ) -> Result<Uploaded> {
        self.send(plain, content_id, "upload", path, (attrs, None), progress)
            .await
    }

    /// Store a file that holds no data: a FIFO, a device (with its number `rdev`), a
    /// socket, or an empty regular file, by `attrs.mode`'s kind. It is an empty object
    /// whose metadata says the rest, sent as any upload is (so an encrypted vault
    /// encrypts its name and seals its empty body like any file's).
    pub async fn put_node(&self, path: &str, attrs: &UploadAttrs, rdev: u64) -> Result<()> {
        let kind = Kind::of(Some(attrs.mode));
        if !kind.is_special() && kind != Kind::File {
            return Err(Error::invalid(format!(
                "{path}: a {kind:?} is not stored as an empty node"
            )));
        }
        // Only devices have a number; a FIFO's or socket's would mean nothing.
        let rdev = matches!(kind, Kind::CharDevice | Kind::BlockDevice).then_some(rdev);
        self.send(
            Arc::new(Empty),
            None,
            "upload",
            path,
            (attrs, rdev),
            Arc::new(|_| {}),
        )
        .await
        .map(drop)
    }

    async fn send(
        &self,
        plain: Arc<dyn Source>,
        content_id: Option<&str>,
        what: &str,
        path: &str,
        (attrs, rdev): (&UploadAttrs, Option<u64>),
        mut progress: Progress,
    ) -> Result<Uploaded> {
        let path = &super::clean_path(path)?;
        let key = self.key_of(path)?;
        let len = plain.len();
        let hash = {
            let (plain, crypt_key) = (plain.clone(), self.hash_key());
            blocking(move || hash_with(&plain, crypt_key.as_ref())).await?
        };
        let mut meta = attrs.metadata(Some(hash));
        if let Some(rdev) = rdev {
            meta.push((META_RDEV.to_string(), rdev.to_string()));
        }
        let resume_id =
            content_id.map(|id| resume_id(&[&self.cfg.endpoint, &self.cfg.bucket, &key, id]));
        let mut bound = None;
        let (source, extra): (Arc<dyn Source>, serde_json::Value) = match &self.crypt {
            Some(c) => {
                // Resuming needs the very same ciphertext bytes: reuse the journaled secrets
                // and binding, unless a newer version was seen meanwhile.
                let newest = c.seen.newest(path)?;
                let journaled = resume_id
                    .as_deref()
                    .and_then(|id| self.transfers.journaled(id));
                let sealing = match journaled {
                    Some(v) => serde_json::from_value::<Sealing>(v)
                        .ok()
                        .filter(|s| s.binding.path == *path)
                        .filter(|s| newest.is_none_or(|n| s.binding.sealed_at > n)),
                    None => None,
                };
                let sealing = match sealing {
                    Some(s) => s,
                    None => Sealing {
                        secrets: FileSecrets::random(),
                        binding: self.next_binding(path, newest),
                    },
                };
                let sealer = Sealer::new(
                    &c.keys.recipient(),
                    &sealing.secrets,
                    len,
                    Some((&c.bind_key, &sealing.binding)),
                );
                progress = plain_progress(progress, len, sealer.cipher_len());
                let extra = serde_json::to_value(&sealing).map_err(Error::crypto)?;
                bound = Some(sealing.binding);
                (Arc::new(SealedSource::new(plain, sealer)), extra)
            }
            None => (plain, serde_json::Value::Null),
        };
        let outcome = self
            .transfers
            .upload(
                &self.cfg.bucket,
                &key,
                source,
                &meta,
                None,
                resume_id.map(|id| Resume { id, extra }),
                progress,
            )
            .await
            .with_context(|| format!("{what} to {}:{path} failed", self.name))?;
        if let Some(binding) = &bound {
            self.wrote(binding)?;
        }
        Ok(Uploaded {
            bytes: len,
            resumed_parts: outcome.resumed_parts,
            parts: outcome.parts,
        })
    }

    /// The age ciphertext of `plain` to the vault's recipient, bound to no path, for a copy
    /// kept outside the vault (the mount's `unsaved/`): `age -d -i <(cybs3 keys export)`
    /// reads it. `None` for a plain vault.
    pub fn sealed_for_keeping(&self, plain: Arc<dyn Source>) -> Option<SealedSource> {
        let c = self.crypt.as_ref()?;
        let secrets = FileSecrets::random();
        let sealer = Sealer::new(&c.keys.recipient(), &secrets, plain.len(), None);
        Some(SealedSource::new(plain, sealer))
    }

    /// Store `data` at `path` (small writes, e.g. `cybs3 test`).
    pub async fn put_bytes(&self, path: &str, data: Vec<u8>) -> Result<()> {
        let attrs = UploadAttrs {
            mode: 0o100644,
            mtime: std::time::SystemTime::now(),
            uid: None,
            gid: None,
            xattrs: None,
            atime: None,
        };
        self.put_bytes_with(path, data, &attrs).await
    }

    /// Store `data` at `path` with `attrs` as its attributes.
    pub(crate) async fn put_bytes_with(
        &self,
        path: &str,
        data: Vec<u8>,
        attrs: &UploadAttrs,
    ) -> Result<()> {
        let tmp = tempfile::NamedTempFile::new()?;
        fs::write(tmp.path(), &data)?;
        self.upload(tmp.path(), path, attrs, Arc::new(|_| {}))
            .await
            .map(drop)
    }

    /// Copy of the file at `from` to `to`, content and attributes kept: server-side in a
    /// plain vault; in an encrypted one the payload moves under a new header bound to `to`
    /// (see `binding`).
    pub async fn copy(&self, from: &str, to: &str) -> Result<()> {
        if self.crypt.is_some() {
            return self
                .copy_rebound(from, to, false)
                .await
                .with_context(|| format!("cannot copy {}:{from} to {to}", self.name));
        }
        let (src, dst) = (self.key_of(from)?, self.key_of(to)?);
        let bucket = &self.cfg.bucket;
        self.client()
            .copy_object()
            .bucket(bucket)
            .key(&dst)
            .copy_source(crate::attrs::copy_source(bucket, &src))
            .send()
            .await
            .with_context(|| format!("cannot copy {}:{from} to {to}", self.name))?;
        Ok(())
    }
}

/// The body of a file that holds no data.
struct Empty;

impl Source for Empty {
    fn len(&self) -> u64 {
        0
    }

    fn read_at(&self, _offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        match buf.is_empty() {
            true => Ok(()),
            false => Err(std::io::ErrorKind::UnexpectedEof.into()),
        }
    }
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

/// What an encrypted upload journals to resume with identical bytes.
#[derive(serde::Serialize, serde::Deserialize)]
struct Sealing {
    secrets: FileSecrets,
    binding: Binding,
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
    use crate::config::VaultConfig;

    #[tokio::test]
    async fn directories_and_links_are_not_empty_nodes() {
        // Nothing listens here: a refusal must come before any request.
        let cfg = VaultConfig {
            endpoint: "http://127.0.0.1:9".into(),
            bucket: "b".into(),
            ..VaultConfig::default()
        };
        let v = Vault::open("v", cfg, None).unwrap();
        for mode in [0o040755, 0o120777] {
            let attrs = UploadAttrs {
                mode,
                mtime: UNIX_EPOCH,
                uid: None,
                gid: None,
                xattrs: None,
                atime: None,
            };
            let e = v.put_node("n", &attrs, 0).await.unwrap_err();
            let invalid =
                matches!(&e, Error::Local(io) if io.kind() == std::io::ErrorKind::InvalidInput);
            assert!(invalid, "{mode:o}: {e:?}");
        }
    }

    #[test]
    fn an_empty_body_reads_as_nothing() {
        let mut none = [0u8; 0];
        assert!(Empty.read_at(0, &mut none).is_ok());
        assert!(Empty.read_at(0, &mut [0u8; 1]).is_err());
        assert_eq!(Empty.len(), 0);
    }
}

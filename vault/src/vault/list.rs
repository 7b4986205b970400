//! What a vault holds: directory listings, one file's attributes, and the error for a path
//! with no object.

use super::{clean_path, Meta, Vault};
use crate::error::{Error, Result, ResultExt};
use crate::listing;
use std::time::SystemTime;

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
    /// The object's ETag as listed, quotes included: which version of the content this
    /// is. `None` for directories, and for link records (their content is their inode
    /// object's, whose ETag the listing does not show).
    pub etag: Option<String>,
}

impl Vault {
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
                        etag: None,
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
                    let last_modified = o
                        .last_modified()
                        .and_then(|t| SystemTime::try_from(*t).ok());
                    out.push(Entry {
                        path,
                        size: self.plain_size(stored),
                        stored: last_modified,
                        is_dir: false,
                        meta: metadata.as_ref().and_then(|m| m.get(key)).map(|m| {
                            let class = o.storage_class().map(|c| c.as_str());
                            self.meta_from(stored, m, last_modified, class)
                        }),
                        etag: o.e_tag().map(str::to_string),
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
                    etag: None,
                });
            }
        }
        // The vault's own objects (inode objects of hard links) are no files of the user's.
        out.retain(|e| !super::is_internal(&e.path));
        // A link record lists as an empty object: its size and attributes are its inode
        // object's. Without listed metadata any empty object may be one. A record not
        // bound to its path is no file of the vault, as a name that does not decrypt.
        let mut bad = Vec::new();
        for (i, e) in out.iter_mut().enumerate() {
            let record = match &e.meta {
                Some(m) => m.link.is_some(),
                None => !e.is_dir && e.size == 0,
            };
            if !record {
                continue;
            }
            match self.stat(&e.path).await {
                Ok(Some(m)) => {
                    e.size = m.size;
                    e.meta = Some(m);
                    e.etag = None;
                }
                Ok(None) => {}
                Err(Error::Crypto(m)) => {
                    tracing::warn!("skipping {:?} in vault {}: {m}", e.path, self.name);
                    bad.push(i);
                }
                Err(e) => return Err(e),
            }
        }
        for i in bad.into_iter().rev() {
            out.remove(i);
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    /// How the server encrypts file `path`'s object (`x-amz-server-side-encryption`:
    /// `AES256` or `aws:kms`), `None` when it does not.
    pub async fn server_encryption(&self, path: &str) -> Result<Option<String>> {
        let key = self.key_of(path)?;
        match self.transfers.head(&self.cfg.bucket, &key).await? {
            Some(info) => Ok(info.server_encryption),
            None => Err(self.missing(path).await),
        }
    }

    /// A file's attributes, or `None` when there is no such file; a link record's are
    /// its inode object's.
    pub async fn stat(&self, path: &str) -> Result<Option<Meta>> {
        let key = self.key_of(path)?;
        let Some(info) = self.transfers.head(&self.cfg.bucket, &key).await? else {
            return Ok(None);
        };
        let meta = self.meta_of(&info);
        Ok(Some(
            self.stat_linked(&clean_path(path)?, &info.metadata, meta)
                .await?,
        ))
    }

    /// A directory's attributes as its marker stores them, or `None` when it has no
    /// marker (a directory only by the names below it, or the root).
    pub async fn dir_meta(&self, path: &str) -> Result<Option<Meta>> {
        let key = self.marker_key(path)?;
        let Some(info) = self.transfers.head(&self.cfg.bucket, &key).await? else {
            return Ok(None);
        };
        Ok(Some(Meta {
            size: 0,
            ..self.meta_of(&info)
        }))
    }

    /// The error for a path with no object. In an encrypted vault, a wrong identity makes
    /// every name miss, so look at a few stored names and say so when none decrypts.
    pub async fn missing(&self, path: &str) -> Error {
        let plain = Error::NotFound(format!("{}:{path} does not exist", self.name));
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
            Error::NotFound(format!(
                "{}:{path} not found, and no identity of this vault can decrypt the names stored in it: is {} the vault's identity?",
                self.name,
                crate::keystore::key_path(&self.name).display()
            ))
        } else {
            plain
        }
    }
}

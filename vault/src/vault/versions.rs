//! One file's versions (`cybs3 ls --versions VAULT:path`), newest first, each with its
//! object lock as the server reports it; `VAULT:path@VERSION` then reads one of them
//! ([`Vault::download_version`]).

use super::{clean_path, Vault};
use crate::error::{Error, Result, ResultExt};
use std::time::SystemTime;

/// A version of a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileVersion {
    pub id: String,
    /// Plaintext size (0 for a deletion).
    pub size: u64,
    pub stored: Option<SystemTime>,
    /// The current version (what reads without a version get).
    pub latest: bool,
    /// A deletion (a delete marker): nothing to read.
    pub deleted: bool,
    pub lock: Lock,
}

/// What object lock holds a version with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Lock {
    /// `GOVERNANCE` or `COMPLIANCE`, with the date it holds until.
    pub retention: Option<(String, Option<SystemTime>)>,
    pub legal_hold: bool,
}

impl Vault {
    /// The versions of `path`, newest first; empty when it has none.
    pub async fn versions(&self, path: &str) -> Result<Vec<FileVersion>> {
        let path = clean_path(path)?;
        let key = self.key_of(&path)?;
        let failed = || format!("cannot list the versions of {}:{path}", self.name);
        let mut out = Vec::new();
        let (mut key_marker, mut version_marker) = (None, None);
        loop {
            let page = self
                .client
                .list_object_versions()
                .bucket(&self.cfg.bucket)
                .prefix(&key)
                .set_key_marker(key_marker.take())
                .set_version_id_marker(version_marker.take())
                .send()
                .await
                .map_err(Error::from)
                .with_context(failed)?;
            let when = |t: Option<&aws_sdk_s3::primitives::DateTime>| {
                t.and_then(|t| SystemTime::try_from(*t).ok())
            };
            for v in page.versions().iter().filter(|v| v.key() == Some(&key)) {
                out.push(FileVersion {
                    id: v.version_id().unwrap_or("null").to_string(),
                    size: self.plain_size(v.size().unwrap_or(0).max(0) as u64),
                    stored: when(v.last_modified()),
                    latest: v.is_latest() == Some(true),
                    deleted: false,
                    lock: Lock::default(),
                });
            }
            for m in page
                .delete_markers()
                .iter()
                .filter(|m| m.key() == Some(&key))
            {
                out.push(FileVersion {
                    id: m.version_id().unwrap_or("null").to_string(),
                    size: 0,
                    stored: when(m.last_modified()),
                    latest: m.is_latest() == Some(true),
                    deleted: true,
                    lock: Lock::default(),
                });
            }
            // Keys sort after `key` once its versions are done: no need to read on.
            let past = page.next_key_marker().is_some_and(|k| k > key.as_str());
            if page.is_truncated() != Some(true) || past {
                break;
            }
            key_marker = page.next_key_marker().map(str::to_string);
            version_marker = page.next_version_id_marker().map(str::to_string);
        }
        out.sort_by(|a, b| b.latest.cmp(&a.latest).then(b.stored.cmp(&a.stored)));
        for v in out.iter_mut().filter(|v| !v.deleted) {
            v.lock = self.lock_of(&key, &v.id).await.with_context(failed)?;
        }
        Ok(out)
    }

    /// A version's object lock, from its HEAD (the caller may read it).
    async fn lock_of(&self, key: &str, version: &str) -> Result<Lock> {
        let head = self
            .client
            .head_object()
            .bucket(&self.cfg.bucket)
            .key(key)
            .version_id(version)
            .send()
            .await
            .map_err(Error::from)?;
        Ok(Lock {
            retention: head.object_lock_mode().map(|m| {
                let until = head
                    .object_lock_retain_until_date()
                    .and_then(|t| SystemTime::try_from(*t).ok());
                (m.as_str().to_string(), until)
            }),
            legal_hold: head
                .object_lock_legal_hold_status()
                .is_some_and(|s| s.as_str() == "ON"),
        })
    }
}

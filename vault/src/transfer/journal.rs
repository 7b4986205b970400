//! The resume journal: what an interrupted multipart upload needs to continue in a later
//! run, one file per upload, written before the first part is sent.

use super::Transfers;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Identifies one upload across runs, so an interrupted one resumes.
#[derive(Clone)]
pub struct Resume {
    /// 1 to 128 of `[A-Za-z0-9_-]`, e.g. a hex hash of bucket, key, local path, size and
    /// mtime: the journal's file name.
    pub id: String,
    /// Whatever the caller needs to regenerate identical bytes (e.g. the `FileSecrets`);
    /// journaled with mode 0600 and returned by [`Transfers::journaled`].
    pub extra: serde_json::Value,
}

/// What `journal_dir/<resume id>.json` holds: enough to find the multipart upload again,
/// and to tell whether it still builds the object asked for.
#[derive(Serialize, Deserialize)]
pub(super) struct Journal {
    pub(super) bucket: String,
    pub(super) key: String,
    pub(super) size: u64,
    pub(super) metadata: Vec<(String, String)>,
    pub(super) content_type: Option<String>,
    pub(super) upload_id: String,
    pub(super) part_size: u64,
    pub(super) extra: serde_json::Value,
}

impl Journal {
    /// Whether parts uploaded for `self` can make up the object `wanted` describes;
    /// content is checked part by part later.
    pub(super) fn same_object(&self, wanted: &Journal) -> bool {
        self.bucket == wanted.bucket
            && self.key == wanted.key
            && self.size == wanted.size
            && self.metadata == wanted.metadata
            && self.content_type == wanted.content_type
    }
}

impl Transfers {
    /// The `extra` journaled for an unfinished upload under `resume_id`, if any. Read it
    /// before building the [`Source`], so a resumed upload regenerates identical bytes.
    pub fn journaled(&self, resume_id: &str) -> Option<serde_json::Value> {
        let path = self.journal_path(resume_id).ok()?;
        read_journal(&path).map(|journal| journal.extra)
    }

    pub(super) fn journal_path(&self, id: &str) -> Result<PathBuf> {
        let valid = (1..=128).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            return Err(Error::invalid(format!(
                "invalid resume id {id:?}: it must be 1 to 128 ASCII letters, digits, '-' or '_'"
            )));
        }
        Ok(self.journal_dir.join(format!("{id}.json")))
    }
}

pub(super) fn read_journal(path: &Path) -> Option<Journal> {
    // An unreadable journal is no journal: the upload starts over.
    serde_json::from_slice(&fs::read(path).ok()?).ok()
}

/// Replaces `path` atomically with `journal`, readable by the owner only (it may hold secrets).
pub(super) fn write_journal(dir: &Path, path: &Path, journal: &Journal) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let tmp = path.with_extension("json.tmp");
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(&serde_json::to_vec(journal)?)?;
    file.sync_all()?;
    fs::rename(&tmp, path)
}

//! The head record (`<audit>/HEAD`): the last file, how many lines it holds, the last
//! line's number and link, sealed with the chain's key. Rewritten (atomically) after
//! every batch, it is how a cut-off end (a truncated or removed last file) shows: the
//! chain itself cannot tell a shorter log from a complete one.

use crate::audit::line::Chain;
use crate::audit::{io, AuditError};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

const HEAD: &str = "HEAD";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    /// The file the last line is in (`YYYY-MM-DD.jsonl`).
    pub file: String,
    /// How many lines that file holds.
    pub lines: u64,
    /// The last line's number.
    pub seq: u64,
    /// The last line's link (hex).
    pub link: String,
    /// HMAC of the fields above, so that the head cannot be forged to match a cut log.
    pub mac: String,
}

impl Head {
    pub(crate) fn new(chain: &Chain, file: String, lines: u64, seq: u64, link: String) -> Head {
        let mut head = Head {
            file,
            lines,
            seq,
            link,
            mac: String::new(),
        };
        head.mac = head.expected_mac(chain);
        head
    }

    fn expected_mac(&self, chain: &Chain) -> String {
        let text = format!(
            "head {} {} {} {}",
            self.file, self.lines, self.seq, self.link
        );
        hex::encode(chain.link(text.as_bytes()))
    }

    pub(crate) fn sealed(&self, chain: &Chain) -> bool {
        self.mac == self.expected_mac(chain)
    }

    /// The head, if there is one; `Err` only when it cannot be read. A damaged head
    /// reads as `Ok(Some(..))` with fields that fail [`Head::sealed`].
    pub(crate) fn read(dir: &Path) -> Result<Option<Head>, AuditError> {
        let path = dir.join(HEAD);
        match std::fs::read(&path) {
            Ok(b) => Ok(Some(serde_json::from_slice(&b).unwrap_or(Head {
                file: String::new(),
                lines: 0,
                seq: 0,
                link: String::new(),
                mac: "unreadable".into(),
            }))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(path)(e)),
        }
    }

    /// Replace the head atomically (a new file renamed over it); `sync` makes it durable.
    pub(crate) fn write(&self, dir: &Path, sync: bool) -> Result<(), AuditError> {
        let tmp = dir.join("HEAD.tmp");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io(&tmp))?;
        let bytes = serde_json::to_vec(self).expect("a head serializes");
        f.write_all(&bytes).map_err(io(&tmp))?;
        if sync {
            f.sync_data().map_err(io(&tmp))?;
        }
        std::fs::rename(&tmp, dir.join(HEAD)).map_err(io(dir.join(HEAD)))
    }
}

/// The day's file name.
pub(crate) fn file_name(day: &str) -> String {
    format!("{day}.jsonl")
}

/// The log's files, oldest first (their names sort by day).
pub(crate) fn files(dir: &Path) -> Result<Vec<PathBuf>, AuditError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(dir)(e)),
    };
    let mut out = Vec::new();
    for e in entries {
        let path = e.map_err(io(dir))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.len() == "YYYY-MM-DD.jsonl".len() && name.ends_with(".jsonl") {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

/// A file's name, for messages.
pub(crate) fn name(path: &Path) -> String {
    path.file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
}

//! The tamper-evident audit log: one JSON line per request (S3, STS, the management
//! socket) in daily files `<store>/audit/YYYY-MM-DD.jsonl` (UTC), each line carrying the
//! keyed SHA-256 (HMAC) of the line before it, the chain running on across files, and a
//! head record (`HEAD`) naming the last line so that a cut-off end shows too.
//!
//! - [`line`]: the line format and the chain's hashing.
//! - [`head`]: the head record and the files' names.
//! - [`writer`]: the bounded buffer requests hand their records to, and the thread that
//!   writes them in batches.
//! - [`verify`]: walks the chain and says what was edited, removed, reordered or cut.
//! - [`report`]: the compliance export: the lines of a period, filtered, with totals.
//! - [`activity`]: who made requests since a time (the access analyzer's unused keys).

mod activity;
mod head;
mod line;
mod report;
#[cfg(test)]
mod tests;
mod verify;
mod writer;

pub use activity::{activity, Activity};
pub(crate) use head::files;
pub use line::{Chain, Kind, Line};
pub use report::{report, Query, Report, Totals};
pub use verify::{verify, Gap, Problem, Verdict};
pub use writer::{Log, Settings, WhenFull};

use std::path::PathBuf;

/// Why the audit log could not be opened, written or read.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the audit log's writer has stopped")]
    Stopped,
    #[error("{0}")]
    BadTime(String),
}

fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> AuditError {
    let path = path.into();
    move |source| AuditError::Io { path, source }
}

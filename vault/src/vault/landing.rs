//! Many downloads landed together: their bytes made durable in one go, then each file
//! renamed into place.
//!
//! A download is durable before it is renamed over its name, so no file is ever seen under
//! its name with bytes it did not finish receiving, not even after a crash (the rename
//! itself may be lost in a crash: the file is then missing and the next sync fetches it).
//! [`Vault::download`] makes each file durable with its own fsync, one journal commit per
//! file, while the download waits. For small files that was most of a download's cost:
//! `cybs3 sync` down of 2,000 files of 1–8 KiB took 0.89–1.30 s with 0.41–0.93 s of
//! system time, and 0.72–1.22 s with 0.26 s without the fsyncs (measured side by side on
//! the project's VM), against rclone's 0.63–0.67 s (rclone does not fsync downloads).
//!
//! A [`Landing`] keeps the guarantee for less. A download hands its written file over and
//! its slot moves on to the next file; one task takes every file handed over so far,
//! restores their modes and mtimes, makes all of them durable with one `syncfs` of their
//! filesystem (one journal commit for the batch), and then renames each into place. Files
//! handed over meanwhile make the next batch. A batch's `syncfs` also writes back what
//! others left dirty on the same filesystem: the price of one commit for many files, paid
//! once per batch. One fsync per file, made after a `sync_file_range` had started all of
//! the batch's writeback, was tried first: run by one task they were one journal commit
//! each, in a row, and the sync took three times as long.
//!
//! [`Vault::download`]: super::Vault::download

use super::download::PartFile;
use super::Meta;
use crate::blocking::blocking;
use crate::error::Error;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Files handed over and not yet taken by the landing task; a download waits for room, so
/// open part files stay bounded (each batch is at most this many too).
const WAITING: usize = 128;

/// Where downloads made by [`super::Vault::download_landing`] land: one handle per
/// download in flight, all clones of one.
#[derive(Clone)]
pub struct Landing {
    files: mpsc::Sender<(PartFile, Meta)>,
}

/// The landing task, which [`Landed::wait`] waits for.
pub struct Landed {
    task: JoinHandle<Vec<(PathBuf, Error)>>,
}

impl Landing {
    /// Starts the landing task on the current Tokio runtime.
    pub fn new() -> (Landing, Landed) {
        let (files, mut handed) = mpsc::channel(WAITING);
        let task = tokio::spawn(async move {
            let mut failed = Vec::new();
            let mut batch = Vec::with_capacity(WAITING);
            while handed.recv_many(&mut batch, WAITING).await > 0 {
                let parts = std::mem::take(&mut batch);
                match blocking(move || Ok(land(parts))).await {
                    Ok(f) => failed.extend(f),
                    Err(e) => failed.push((PathBuf::new(), e)),
                }
            }
            failed
        });
        (Landing { files }, Landed { task })
    }

    /// Takes over a download's written file, and the mode and mtime to restore (on the
    /// landing's thread, which saves the download a trip to a blocking thread).
    pub(super) async fn hand_over(&self, part: PartFile, meta: Meta) {
        // The task ends only once every handle is dropped, this one included: it is
        // still receiving.
        let _ = self.files.send((part, meta)).await;
    }
}

impl Landed {
    /// Once every [`Landing`] handle is dropped, waits until every file handed over is
    /// in place; returns those that could not be made durable or renamed (their part
    /// files removed), by destination path.
    pub async fn wait(self) -> Vec<(PathBuf, Error)> {
        match self.task.await {
            Ok(failed) => failed,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => vec![(PathBuf::new(), Error::Local(std::io::Error::other(e)))],
        }
    }
}

/// Restores the attributes of `parts`, makes them durable and renames each into place;
/// returns those that failed.
fn land(parts: Vec<(PartFile, Meta)>) -> Vec<(PathBuf, Error)> {
    let mut failed = Vec::new();
    let parts: Vec<PartFile> = parts
        .into_iter()
        .filter_map(|(part, meta)| match part.restore(&meta) {
            Ok(()) => Some(part),
            Err(e) => {
                failed.push((part.local.clone(), e));
                part.discard();
                None
            }
        })
        .collect();
    // One syncfs per filesystem the batch writes to (a sync writes to one). Since Linux
    // 5.8 it fails if any writeback on the filesystem failed since the descriptor was
    // opened; then each file's own fsync tells which.
    let mut synced = Vec::new();
    let mut durable = true;
    for part in &parts {
        let Ok(md) = part.file().metadata() else {
            durable = false;
            continue;
        };
        if !synced.contains(&md.dev()) {
            // SAFETY: syncfs on a descriptor the part file owns, no memory passed.
            durable &= unsafe { libc::syncfs(part.file().as_raw_fd()) } == 0;
            synced.push(md.dev());
        }
    }
    failed.extend(parts.into_iter().filter_map(|part| {
        let local = part.local.clone();
        let landed = if durable { part.rename() } else { part.land() };
        landed.err().map(|e| (local, e))
    }));
    failed
}

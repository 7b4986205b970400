//! The FUSE filesystem of `cybs3 mount`: a vault's plaintext tree as a POSIX directory.
//!
//! - Names and attributes come from listings (one LIST per directory, cached for the
//!   mount's TTL); a file's `mode`/`mtime` metadata costs one HEAD when it is looked up,
//!   also cached for the TTL. `readdir` never HEADs.
//! - Reads are ranged GETs ([`store::Store::read_at`]); encrypted vaults fetch whole age
//!   chunks. A sequential reader is served from one GET stream instead ([`prefetch`]),
//!   and replies are slices of what arrived, not copies.
//! - The mount learns, per directory, which files are read after which ([`learn`]) and
//!   prefetches the likely next ones whole into a read cache in memory ([`warm`],
//!   [`readcache`]), served while the listing names the same object (its ETag).
//! - Writes go to a local cache file (sealed under a per-mount key for encrypted vaults:
//!   [`sealed`]) and are uploaded whole (so a fresh file key for
//!   encrypted vaults) on `fsync` and on every `close` (FUSE `flush`) after a write: a
//!   `close` that succeeded means the content is in S3 ([`writeback`]).
//! - Directories are common prefixes; `mkdir` stores a marker object `dir/` as S3 consoles
//!   do. Renames are server-side copies then deletes, under a mount-wide lock ([`rename`]).
//! - FIFOs, devices and sockets are empty objects whose metadata holds their kind and
//!   device number; the kernel opens them itself ([`special`]).
//! - Hard links: a file with several names is an inode object named by link records
//!   ([`links`]); all its names share one inode number.
//! - Every handler runs under `catch_unwind`: a panic answers EIO and the mount lives on.
//!
//! Layers, top down: [`session`] (mount, signals, umount) and [`adapter`] (fuser calls,
//! errno only) over the core ([`filesystem`], with [`dircache`], [`inodes`],
//! [`writeback`], [`read`], [`rename`], [`links`], [`xattrs`]), over a [`store::Store`]: the vault,
//! or an in-memory store in the unit tests. Store errors become errnos in [`errno`].

mod adapter;
mod budget;
mod caller;
mod dircache;
mod dirs;
mod errno;
mod filesystem;
mod inodes;
mod learn;
mod links;
mod names;
mod prefetch;
mod read;
mod readahead;
mod readcache;
mod rename;
mod sealed;
mod session;
mod special;
mod store;
#[cfg(test)]
mod tests;
mod warm;
mod writeback;
mod xattrs;

pub use adapter::VaultFs;
pub use session::{serve, Flusher};

use bytes::Bytes;
use fuser::Errno;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// How a vault is mounted.
#[derive(Clone, Debug)]
pub struct MountOptions {
    pub read_only: bool,
    pub allow_other: bool,
    /// How long listings and attributes are trusted (ours and the kernel's).
    pub cache_ttl: Duration,
    /// Where files open for writing are kept until uploaded (created, mode 0700).
    pub cache_dir: PathBuf,
    /// Shown as the mount's source, e.g. `cybs3:local`.
    pub fs_name: String,
    /// The most the files open for writing may take in `cache_dir` (`--cache-size`);
    /// also the read cache's bound, in memory (see [`warm::bound`]).
    pub cache_size: Option<u64>,
    /// Whether the mount learns which files are read after which and prefetches them
    /// into its read cache (`--prefetch learn`; `off`: no read cache either).
    pub learn: bool,
}

/// What the core's operations answer: a value or an errno.
type R<T> = Result<T, Errno>;

/// A mutex's guard, also after a panic in another holder (each handler's panic is
/// caught, and the state it guards stays usable).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One buffer of `parts`, copied only when there is more than one.
fn concat(mut parts: Vec<Bytes>) -> Bytes {
    match parts.len() {
        0 => Bytes::new(),
        1 => parts.swap_remove(0),
        _ => parts.concat().into(),
    }
}

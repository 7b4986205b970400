//! What the mount needs of a vault, as one small trait: list a directory with its
//! attributes, stat a file, read ranges (one-off, random through a reader, or one
//! streamed GET), download into and upload from a local copy ([`CacheFile`]) with
//! explicit attributes,
//! delete, copy server-side, directory markers with the directories' attributes, and the
//! link records and inode objects of hard links. Reads, stats and attribute changes of
//! a link record are its inode object's.
//!
//! [`::vault::Vault`] implements it ([`vault`]); an in-memory store does for the unit
//! tests ([`memory`]), so the filesystem core runs without S3 and without a kernel mount.

#[cfg(test)]
pub(crate) mod memory;
mod vault;

use crate::sealed::CacheFile;
use ::vault::attrs::{AttrChange, Xattrs};
use ::vault::transfer::Source;
use ::vault::vault::{Entry, Meta};
use bytes::{Bytes, BytesMut};
use std::future::Future;
use std::sync::Arc;
use tokio::sync::mpsc;

pub(crate) use ::vault::Error;
pub(crate) type Result<T> = std::result::Result<T, Error>;

/// A file's attributes as it is uploaded, stated by the caller, never read from the local
/// copy's own inode by the store: the vault's own type.
pub(crate) use ::vault::vault::UploadAttrs;

/// A vault as the filesystem core sees it. Paths are plaintext, from the vault's root,
/// without a leading or trailing slash; a directory is a common prefix, optionally with
/// a marker object.
pub(crate) trait Store: Send + Sync + 'static {
    /// An object opened for random reads: later reads see the object as it was opened
    /// or fail, never a mix.
    type Reader: Send + Sync + 'static;

    /// The names directly under `dir`, with attributes when the server lists them.
    async fn list(&self, dir: &str) -> Result<Vec<Entry>>;
    /// A file's attributes, or `None` when there is no such file.
    async fn stat(&self, path: &str) -> Result<Option<Meta>>;
    /// Whether the store encrypts: then the mount's local copies are sealed too.
    fn encrypted(&self) -> bool;
    /// The file's content into the empty local copy `into`; the file's attributes, for
    /// the caller to give the copy.
    async fn download(&self, path: &str, into: &Arc<CacheFile>) -> Result<Meta>;
    /// The local copy's content to `path`, with `attrs` as its attributes. The caller
    /// keeps writes away from the copy meanwhile.
    async fn upload(&self, from: &Arc<CacheFile>, path: &str, attrs: &UploadAttrs) -> Result<()>;
    /// What `unsaved/` keeps of a copy that could not be uploaded: age ciphertext to the
    /// store's recipient when it encrypts (so no plaintext reaches the disk), else the
    /// bytes themselves.
    fn kept_form(&self, copy: &Arc<CacheFile>) -> Result<Box<dyn Source>>;
    /// `path` opened for reads (`None`: no such file). Spawned by prefetches, hence
    /// `Send`.
    fn reader(&self, path: &str) -> impl Future<Output = Result<Option<Self::Reader>>> + Send;
    /// The version of the reader's object, as a listing's [`Entry::etag`] names it.
    fn etag<'a>(&self, r: &'a Self::Reader) -> Option<&'a str>;
    /// Up to `len` bytes at `offset` of the reader's object into `buf` (emptied first).
    /// Spawned by prefetches, hence `Send`.
    fn read_at(
        &self,
        r: &Self::Reader,
        offset: u64,
        len: u64,
        buf: &mut BytesMut,
    ) -> impl Future<Output = Result<()>> + Send;
    /// The reader's object from `offset` to its end, sent to `tx` in batches; ends early,
    /// without error, when the receiver is dropped. Spawned, hence `Send`.
    fn stream_at(
        &self,
        r: &Self::Reader,
        offset: u64,
        tx: &mpsc::Sender<Bytes>,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Up to `len` bytes of `path` at `offset`, one-off.
    async fn read_range(&self, path: &str, offset: u64, len: u64) -> Result<Vec<u8>>;
    /// Deletes one file (absent files are not an error, as in S3).
    async fn delete(&self, path: &str) -> Result<()>;
    /// Server-side copy of one file, its attributes kept.
    async fn copy(&self, from: &str, to: &str) -> Result<()>;
    /// Changes a stored file's times, permission bits and/or owner.
    async fn set_attrs(&self, path: &str, change: &AttrChange) -> Result<()>;
    /// Replaces a stored file's extended attributes.
    async fn set_xattrs(&self, path: &str, xattrs: &Xattrs) -> Result<()>;
    /// Stores a symbolic link to `target`, with `attrs`' mtime and owner.
    async fn put_symlink(&self, path: &str, target: &[u8], attrs: &UploadAttrs) -> Result<()>;
    /// Stores a file that holds no data (FIFO, device numbered `rdev`, socket, or empty
    /// regular file, by `attrs.mode`'s kind) as an empty object with its attributes.
    async fn put_node(&self, path: &str, attrs: &UploadAttrs, rdev: u64) -> Result<()>;
    /// Stores the directory marker of `path` with the directory's attributes (mode with
    /// `S_IFDIR`, mtime, owner, extended attributes in their stored form).
    async fn put_marker(&self, path: &str, attrs: &UploadAttrs) -> Result<()>;
    /// Deletes the directory marker of `path`.
    async fn delete_marker(&self, path: &str) -> Result<()>;
    /// The attributes on the directory marker of `path` (`None`: no marker).
    async fn dir_meta(&self, path: &str) -> Result<Option<Meta>>;
    /// Extended attributes from their stored form ([`Meta::xattrs`]).
    fn decode_xattrs(&self, stored: Option<&str>) -> Result<Xattrs>;
    /// Extended attributes in their stored form; an error when they do not fit.
    fn encode_xattrs(&self, xattrs: &Xattrs) -> Result<Option<String>>;
    /// Stores `path` as a link record of inode object `id` (see [`crate::links`]).
    async fn put_link(&self, path: &str, id: &str) -> Result<()>;
    /// Records `names` as the names of inode object `id`; an `InvalidInput` error when
    /// there are more than its metadata holds.
    async fn set_link_names(&self, id: &str, names: &[String]) -> Result<()>;
    /// Makes `to` a plain file again with inode object `id`'s content and attributes.
    async fn unlink_last(&self, id: &str, to: &str) -> Result<()>;
}

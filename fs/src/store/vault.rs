//! [`Store`] for [`Vault`]: each method is the vault's own call, its error adapted.
//!
//! Two spots are shims until the vault library's typed errors and explicit upload
//! attributes land (issue 15): [`adapt`] turns the vault's `anyhow` errors into
//! [`Error`], and [`Store::upload`] goes through `upload_with_xattrs`, which reads
//! mode and mtime from the local file's inode.

use super::{Error, Result, Store, UploadAttrs};
use ::vault::attrs::Xattrs;
use ::vault::vault::{Entry, Meta, RangeReader, Vault};
use bytes::{Bytes, BytesMut};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;
use tokio::sync::mpsc;

/// The vault's `anyhow` error as a typed one: a local I/O error keeps its errno, anything
/// else is the transport's. (Shim: the vault returns [`Error`] itself once converted.)
fn adapt(e: anyhow::Error) -> Error {
    match e.downcast::<std::io::Error>() {
        Ok(io) => Error::Local(io),
        Err(e) => Error::Transport(format!("{e:#}")),
    }
}

/// Makes the local file's inode say what `attrs` say, for `upload_with_xattrs`, which
/// reads them from there. They agree already when the core took them from the copy
/// (`Core::upload_attrs`): then nothing is touched, so the ctime, part of the resume
/// journal's key, stays as it was. (Shim until the vault takes the attributes.)
fn stamp(local: &Path, attrs: &UploadAttrs) -> std::io::Result<()> {
    let md = std::fs::metadata(local)?;
    if md.mode() & 0o7777 != attrs.mode & 0o7777 {
        std::fs::set_permissions(local, std::fs::Permissions::from_mode(attrs.mode & 0o7777))?;
    }
    if md.modified()? != attrs.mtime {
        let f = std::fs::File::open(local)?;
        f.set_times(std::fs::FileTimes::new().set_modified(attrs.mtime))?;
    }
    Ok(())
}

impl Store for Vault {
    type Reader = RangeReader;

    async fn list(&self, dir: &str) -> Result<Vec<Entry>> {
        Vault::list(self, dir, false).await.map_err(adapt)
    }

    async fn stat(&self, path: &str) -> Result<Option<Meta>> {
        Vault::stat(self, path).await.map_err(adapt)
    }

    async fn download(&self, path: &str, local: &Path) -> Result<()> {
        Vault::download(self, path, local, Arc::new(|_| {}))
            .await
            .map(drop)
            .map_err(adapt)
    }

    async fn upload(&self, local: &Path, path: &str, attrs: &UploadAttrs) -> Result<()> {
        // The vault stores no owner: files show the mount's.
        stamp(local, attrs)?;
        self.upload_with_xattrs(local, path, Arc::new(|_| {}), attrs.xattrs.as_deref())
            .await
            .map(drop)
            .map_err(adapt)
    }

    async fn reader(&self, path: &str) -> Result<Option<RangeReader>> {
        Vault::reader(self, path).await.map_err(adapt)
    }

    async fn read_at(
        &self,
        r: &RangeReader,
        offset: u64,
        len: u64,
        buf: &mut BytesMut,
    ) -> Result<()> {
        Vault::read_at(self, r, offset, len, buf)
            .await
            .map_err(adapt)
    }

    async fn stream_at(
        &self,
        r: &RangeReader,
        offset: u64,
        tx: &mpsc::Sender<Bytes>,
    ) -> Result<()> {
        Vault::stream_at(self, r, offset, tx).await.map_err(adapt)
    }

    async fn read_range(&self, path: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        Vault::read_range(self, path, offset, len)
            .await
            .map_err(adapt)
    }

    async fn delete(&self, path: &str) -> Result<()> {
        Vault::delete(self, path).await.map_err(adapt)
    }

    async fn copy(&self, from: &str, to: &str) -> Result<()> {
        let (src, dst) = (
            self.key_of(from).map_err(adapt)?,
            self.key_of(to).map_err(adapt)?,
        );
        let bucket = &self.cfg.bucket;
        self.client()
            .copy_object()
            .bucket(bucket)
            .key(&dst)
            .copy_source(::vault::attrs::copy_source(bucket, &src))
            .send()
            .await
            .map_err(|e| {
                Error::Transport(format!(
                    "cannot copy {from:?} to {to:?}: {}",
                    aws_sdk_s3::error::DisplayErrorContext(&e)
                ))
            })?;
        Ok(())
    }

    async fn set_attrs(
        &self,
        path: &str,
        mtime: Option<SystemTime>,
        mode: Option<u32>,
    ) -> Result<()> {
        Vault::set_attrs(self, path, mtime, mode)
            .await
            .map_err(adapt)
    }

    async fn set_xattrs(&self, path: &str, xattrs: &Xattrs) -> Result<()> {
        Vault::set_xattrs(self, path, xattrs).await.map_err(adapt)
    }

    async fn put_symlink(&self, path: &str, target: &[u8]) -> Result<()> {
        Vault::put_symlink(self, path, target).await.map_err(adapt)
    }

    async fn put_marker(&self, path: &str, xattrs: &Xattrs) -> Result<()> {
        Vault::put_marker(self, path, xattrs).await.map_err(adapt)
    }

    async fn delete_marker(&self, path: &str) -> Result<()> {
        Vault::delete_marker(self, path).await.map_err(adapt)
    }

    async fn dir_xattrs(&self, path: &str) -> Result<Xattrs> {
        Vault::dir_xattrs(self, path).await.map_err(adapt)
    }

    fn decode_xattrs(&self, stored: Option<&str>) -> Result<Xattrs> {
        let meta = Meta {
            size: 0,
            mtime: None,
            mode: None,
            hash: None,
            xattrs: stored.map(str::to_string),
        };
        self.xattrs(&meta).map_err(adapt)
    }

    fn encode_xattrs(&self, xattrs: &Xattrs) -> Result<Option<String>> {
        Vault::encode_xattrs(self, xattrs).map_err(adapt)
    }
}

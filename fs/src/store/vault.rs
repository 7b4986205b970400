//! [`Store`] for [`Vault`]: each method is the vault's own call.

use super::{Result, Store, UploadAttrs};
use crate::sealed::CacheFile;
use ::vault::attrs::{AttrChange, Xattrs};
use ::vault::transfer::Source;
use ::vault::vault::{Entry, Meta, RangeReader, Vault};
use bytes::{Bytes, BytesMut};
use std::sync::Arc;
use tokio::sync::mpsc;

impl Store for Vault {
    type Reader = RangeReader;

    async fn list(&self, dir: &str) -> Result<Vec<Entry>> {
        Vault::list(self, dir, false).await
    }

    async fn stat(&self, path: &str) -> Result<Option<Meta>> {
        Vault::stat(self, path).await
    }

    fn encrypted(&self) -> bool {
        Vault::encrypted(self)
    }

    async fn download(&self, path: &str, into: &Arc<CacheFile>) -> Result<Meta> {
        Vault::download_to(self, path, into.clone(), Arc::new(|_| {})).await
    }

    async fn upload(&self, from: &Arc<CacheFile>, path: &str, attrs: &UploadAttrs) -> Result<()> {
        let id = from.content_id()?;
        let source = Arc::new(from.snapshot()?);
        Vault::upload_from(self, source, Some(&id), path, attrs, Arc::new(|_| {}))
            .await
            .map(drop)
    }

    fn kept_form(&self, copy: &Arc<CacheFile>) -> Result<Box<dyn Source>> {
        let plain = Arc::new(copy.snapshot()?);
        Ok(match self.sealed_for_keeping(plain.clone()) {
            Some(sealed) => Box::new(sealed),
            None => Box::new(plain),
        })
    }

    async fn reader(&self, path: &str) -> Result<Option<RangeReader>> {
        Vault::reader(self, path).await
    }

    fn etag<'a>(&self, r: &'a RangeReader) -> Option<&'a str> {
        r.etag()
    }

    async fn read_at(
        &self,
        r: &RangeReader,
        offset: u64,
        len: u64,
        buf: &mut BytesMut,
    ) -> Result<()> {
        Vault::read_at(self, r, offset, len, buf).await
    }

    async fn stream_at(
        &self,
        r: &RangeReader,
        offset: u64,
        tx: &mpsc::Sender<Bytes>,
    ) -> Result<()> {
        Vault::stream_at(self, r, offset, tx).await
    }

    async fn read_range(&self, path: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        Vault::read_range(self, path, offset, len).await
    }

    async fn delete(&self, path: &str) -> Result<()> {
        Vault::delete(self, path).await
    }

    async fn copy(&self, from: &str, to: &str) -> Result<()> {
        Vault::copy(self, from, to).await
    }

    async fn set_attrs(&self, path: &str, change: &AttrChange) -> Result<()> {
        Vault::set_attrs(self, path, change).await
    }

    async fn set_xattrs(&self, path: &str, xattrs: &Xattrs) -> Result<()> {
        Vault::set_xattrs(self, path, xattrs).await
    }

    async fn put_symlink(&self, path: &str, target: &[u8], attrs: &UploadAttrs) -> Result<()> {
        Vault::put_symlink(self, path, target, attrs).await
    }

    async fn put_node(&self, path: &str, attrs: &UploadAttrs, rdev: u64) -> Result<()> {
        Vault::put_node(self, path, attrs, rdev).await
    }

    async fn put_marker(&self, path: &str, attrs: &UploadAttrs) -> Result<()> {
        Vault::put_marker(self, path, attrs).await
    }

    async fn delete_marker(&self, path: &str) -> Result<()> {
        Vault::delete_marker(self, path).await
    }

    async fn dir_meta(&self, path: &str) -> Result<Option<Meta>> {
        Vault::dir_meta(self, path).await
    }

    fn decode_xattrs(&self, stored: Option<&str>) -> Result<Xattrs> {
        let meta = Meta {
            xattrs: stored.map(str::to_string),
            ..Meta::sized(0)
        };
        self.xattrs(&meta)
    }

    fn encode_xattrs(&self, xattrs: &Xattrs) -> Result<Option<String>> {
        Vault::encode_xattrs(self, xattrs)
    }

    async fn put_link(&self, path: &str, id: &str) -> Result<()> {
        Vault::put_link(self, path, id).await
    }

    async fn set_link_names(&self, id: &str, names: &[String]) -> Result<()> {
        Vault::set_link_names(self, id, names).await
    }

    async fn unlink_last(&self, id: &str, to: &str) -> Result<()> {
        Vault::unlink_last(self, id, to).await
    }
}

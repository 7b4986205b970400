//! Changing a stored file's attributes (times, mode, owner, extended attributes)
//! without moving its bytes: a server-side copy onto itself with the metadata replaced.
//! This is what `touch`, `chmod`, `chown`, `setfattr`, `cp -p` and `tar x` do to a
//! closed file through the mount. The copy is the change's ctime (Last-Modified).
//! Symbolic links are objects holding their target, marked by their mode. Directories
//! keep their attributes on their marker object (`dir/`): being empty, it is stored anew
//! with each change.

use crate::crypto::keys::{unwrap_with, wrap_for};
use crate::error::{Error, Result, ResultExt};
use crate::vault::{
    format_mtime, Meta, UploadAttrs, Vault, META_ATIME, META_GID, META_MODE, META_MTIME, META_UID,
};
use aws_sdk_s3::types::MetadataDirective;
use base64::{engine::general_purpose::STANDARD as B64, Engine as _};
use percent_encoding::{utf8_percent_encode, AsciiSet};
use std::collections::BTreeMap;
use std::time::SystemTime;

/// The metadata entry holding a file's extended attributes: base64 of their JSON
/// (names to base64 values), age-encrypted to the vault first in an encrypted vault.
pub(crate) const META_XATTRS: &str = "xattrs";
/// The most the stored entry may take: S3 allows 2 KB of user metadata in all.
pub const XATTRS_MAX: usize = 1536;

/// A file's extended attributes by name.
pub type Xattrs = BTreeMap<String, Vec<u8>>;

/// Mode bits a file's attributes may set (permissions, setuid/setgid, sticky).
const PERMISSION_BITS: u32 = 0o7777;
/// The file-kind bits of a stored mode (`S_IFMT`) and two of their values.
const FILE_KIND: u32 = 0o170000;
const REGULAR_FILE: u32 = 0o100000;
const SYMLINK: u32 = 0o120000;

/// What kind of file a stored mode says an object is (`S_IFMT`'s values, as `stat(2)`
/// has them). Objects without a mode, or with one of no known kind, are regular files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Fifo,
    CharDevice,
    BlockDevice,
    Socket,
}

impl Kind {
    /// The kind a stored mode says (`None`: no mode stored, a regular file).
    pub fn of(mode: Option<u32>) -> Kind {
        match mode.unwrap_or(REGULAR_FILE) & FILE_KIND {
            0o040000 => Kind::Dir,
            SYMLINK => Kind::Symlink,
            0o010000 => Kind::Fifo,
            0o020000 => Kind::CharDevice,
            0o060000 => Kind::BlockDevice,
            0o140000 => Kind::Socket,
            _ => Kind::File,
        }
    }

    /// Whether objects of this kind hold no data, only attributes (FIFOs, devices and
    /// sockets): nothing to read or write through S3.
    pub fn is_special(self) -> bool {
        matches!(
            self,
            Kind::Fifo | Kind::CharDevice | Kind::BlockDevice | Kind::Socket
        )
    }
}

/// What [`Vault::set_attrs`] changes of a file; `None`: left as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AttrChange {
    pub mtime: Option<SystemTime>,
    pub atime: Option<SystemTime>,
    /// Permission bits (the file's kind is kept).
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

impl Vault {
    /// Change a file's times, permission bits and/or owner. The copy is conditional on
    /// the object being the one read, so a concurrent rewrite is never reverted.
    pub async fn set_attrs(&self, path: &str, change: &AttrChange) -> Result<()> {
        self.replace_meta(path, |meta| {
            let mut put = |k: &str, v: String| meta.insert(k.to_string(), v);
            if let Some(t) = change.mtime {
                put(META_MTIME, format_mtime(t));
            }
            if let Some(t) = change.atime {
                put(META_ATIME, format_mtime(t));
            }
            if let Some(uid) = change.uid {
                put(META_UID, uid.to_string());
            }
            if let Some(gid) = change.gid {
                put(META_GID, gid.to_string());
            }
            if let Some(m) = change.mode {
                let kind = meta
                    .get(META_MODE)
                    .and_then(|s| s.parse::<u32>().ok())
                    .map_or(REGULAR_FILE, |old| old & !PERMISSION_BITS);
                meta.insert(
                    META_MODE.to_string(),
                    (kind | (m & PERMISSION_BITS)).to_string(),
                );
            }
        })
        .await
    }

    /// Store a symbolic link: an object whose body is the target (encrypted like any
    /// body in an encrypted vault) and whose mode says it is a link; the rest of `attrs`
    /// (mtime, owner) is stored as a file's is.
    pub async fn put_symlink(&self, path: &str, target: &[u8], attrs: &UploadAttrs) -> Result<()> {
        let attrs = UploadAttrs {
            mode: SYMLINK | 0o777,
            ..attrs.clone()
        };
        self.put_bytes_with(path, target.to_vec(), &attrs).await
    }

    /// The extended attributes of a file with these attributes.
    pub fn xattrs(&self, meta: &Meta) -> Result<Xattrs> {
        self.decode_xattrs(meta.xattrs.as_deref())
    }

    fn decode_xattrs(&self, stored: Option<&str>) -> Result<Xattrs> {
        let Some(stored) = stored else {
            return Ok(Xattrs::new());
        };
        let bytes = B64
            .decode(stored)
            .map_err(|e| garbled("stored extended attributes are not base64", e))?;
        let json = match self.identities() {
            Some(ids) => unwrap_with(&bytes, ids)
                .map_err(|e| garbled("cannot decrypt extended attributes", e))?
                .to_vec(),
            None => bytes,
        };
        let named: BTreeMap<String, String> = serde_json::from_slice(&json)
            .map_err(|e| garbled("stored extended attributes are garbled", e))?;
        named
            .into_iter()
            .map(|(n, v)| {
                let v = B64
                    .decode(v)
                    .map_err(|e| garbled("garbled extended attribute", e))?;
                Ok((n, v))
            })
            .collect()
    }

    /// The stored form of `xattrs` (`None` when there are none); an error when they
    /// would take more than [`XATTRS_MAX`].
    pub fn encode_xattrs(&self, xattrs: &Xattrs) -> Result<Option<String>> {
        if xattrs.is_empty() {
            return Ok(None);
        }
        let named: BTreeMap<&str, String> = xattrs
            .iter()
            .map(|(n, v)| (n.as_str(), B64.encode(v)))
            .collect();
        let json = serde_json::to_vec(&named).expect("a map of strings encodes");
        let stored = B64.encode(match self.recipient() {
            Some(r) => wrap_for(&json, &r),
            None => json,
        });
        if stored.len() > XATTRS_MAX {
            return Err(Error::invalid(format!(
                "extended attributes take {} bytes stored, more than {XATTRS_MAX}",
                stored.len()
            )));
        }
        Ok(Some(stored))
    }

    /// Replace a stored file's extended attributes.
    pub async fn set_xattrs(&self, path: &str, xattrs: &Xattrs) -> Result<()> {
        let stored = self.encode_xattrs(xattrs)?;
        self.replace_meta(path, |meta| match stored {
            Some(s) => {
                meta.insert(META_XATTRS.to_string(), s);
            }
            None => {
                meta.remove(META_XATTRS);
            }
        })
        .await
    }

    /// Store the marker of directory `path` with the directory's attributes (its mode,
    /// `S_IFDIR` included, mtime, owner and extended attributes). A marker is empty, so
    /// storing it anew changes nothing else; its Last-Modified is the directory's ctime.
    pub async fn put_marker(&self, path: &str, attrs: &UploadAttrs) -> Result<()> {
        self.client()
            .put_object()
            .bucket(&self.cfg.bucket)
            .key(self.marker_key(path)?)
            .set_metadata(Some(attrs.metadata(None).into_iter().collect()))
            .body(Vec::new().into())
            .send()
            .await
            .with_context(|| format!("cannot store directory {}:{path}", self.name))?;
        Ok(())
    }

    pub async fn delete_marker(&self, path: &str) -> Result<()> {
        self.client()
            .delete_object()
            .bucket(&self.cfg.bucket)
            .key(self.marker_key(path)?)
            .send()
            .await
            .with_context(|| format!("cannot remove directory {}:{path}", self.name))?;
        Ok(())
    }

    /// Replaces a stored file's metadata with what `change` makes of it: the inode
    /// object's, when `path` is a link record (see `vault::links`).
    pub(crate) async fn replace_meta(
        &self,
        path: &str,
        change: impl FnOnce(&mut std::collections::HashMap<String, String>),
    ) -> Result<()> {
        let mut key = self.key_of(path)?;
        let bucket = &self.cfg.bucket;
        let head_of = |key: String| async move {
            self.client()
                .head_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .with_context(|| format!("cannot read the attributes of {}:{path}", self.name))
        };
        let mut head = head_of(key.clone()).await?;
        let path = &crate::vault::clean_path(path)?;
        let followed = head
            .metadata()
            .map(|m| self.followed(path, m))
            .transpose()?;
        if let Some(inode) = followed.flatten() {
            head = head_of(inode.clone()).await?;
            key = inode;
        }
        let mut meta = head.metadata().cloned().unwrap_or_default();
        change(&mut meta);
        self.client()
            .copy_object()
            .bucket(bucket)
            .key(&key)
            .copy_source(copy_source(bucket, &key))
            .set_copy_source_if_match(head.e_tag().map(str::to_string))
            .metadata_directive(MetadataDirective::Replace)
            .set_metadata(Some(meta))
            .set_content_type(head.content_type().map(str::to_string))
            .send()
            .await
            .with_context(|| format!("cannot change the attributes of {}:{path}", self.name))?;
        Ok(())
    }
}

/// Stored extended attributes that do not decode: changed behind the vault's back.
fn garbled(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Crypto(format!("{what}: {e}"))
}

/// What `x-amz-copy-source` leaves as it is in a key: RFC 3986's unreserved characters
/// and the `/` between segments.
const KEY_SAFE: &AsciiSet = &crate::UNRESERVED.remove(b'/');

/// `x-amz-copy-source` for an object: the bucket and the key, percent-encoded.
pub fn copy_source(bucket: &str, key: &str) -> String {
    format!("{bucket}/{}", utf8_percent_encode(key, KEY_SAFE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_of_modes() {
        assert_eq!(Kind::of(Some(0o120777)), Kind::Symlink);
        assert_eq!(Kind::of(Some(0o100644)), Kind::File);
        assert_eq!(Kind::of(Some(0o040755)), Kind::Dir);
        assert_eq!(Kind::of(Some(0o010644)), Kind::Fifo);
        assert_eq!(Kind::of(Some(0o020600)), Kind::CharDevice);
        assert_eq!(Kind::of(Some(0o060600)), Kind::BlockDevice);
        assert_eq!(Kind::of(Some(0o140755)), Kind::Socket);
        assert_eq!(Kind::of(Some(0o644)), Kind::File);
        assert_eq!(Kind::of(None), Kind::File);
        assert!(Kind::Fifo.is_special() && !Kind::Symlink.is_special());
    }

    #[test]
    fn copy_sources_are_percent_encoded() {
        assert_eq!(copy_source("b", "p/a b+c.txt"), "b/p/a%20b%2Bc.txt");
        assert_eq!(copy_source("b", "é"), "b/%C3%A9");
    }
}

//! Changing a stored file's attributes (mtime, mode) without moving its bytes: a
//! server-side copy onto itself with the metadata replaced. This is what `touch`,
//! `chmod`, `cp -p` and `tar x` do to a closed file through the mount. Symbolic links
//! are objects holding their target, marked by their mode.

use crate::vault::{format_mtime, Vault, META_MODE, META_MTIME};
use anyhow::{Context, Result};
use aws_sdk_s3::types::MetadataDirective;
use std::time::SystemTime;

/// Mode bits a file's attributes may set (permissions, setuid/setgid, sticky).
const PERMISSION_BITS: u32 = 0o7777;
/// The file-kind bits of a stored mode (`S_IFMT`) and two of their values.
const FILE_KIND: u32 = 0o170000;
const REGULAR_FILE: u32 = 0o100000;
const SYMLINK: u32 = 0o120000;

impl Vault {
    /// Set a file's modification time and/or permission bits. The copy is conditional on
    /// the object being the one read, so a concurrent rewrite is never reverted.
    pub async fn set_attrs(
        &self,
        path: &str,
        mtime: Option<SystemTime>,
        mode: Option<u32>,
    ) -> Result<()> {
        self.replace_meta(path, |meta| {
            if let Some(t) = mtime {
                meta.insert(META_MTIME.to_string(), format_mtime(t));
            }
            if let Some(m) = mode {
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
    /// body in an encrypted vault) and whose mode says it is a link.
    pub async fn put_symlink(&self, path: &str, target: &[u8]) -> Result<()> {
        self.put_bytes(path, target.to_vec()).await?;
        self.replace_meta(path, |meta| {
            meta.insert(META_MODE.to_string(), (SYMLINK | 0o777).to_string());
        })
        .await
    }

    async fn replace_meta(
        &self,
        path: &str,
        change: impl FnOnce(&mut std::collections::HashMap<String, String>),
    ) -> Result<()> {
        let key = self.key_of(path)?;
        let bucket = &self.cfg.bucket;
        let head = self
            .client()
            .head_object()
            .bucket(bucket)
            .key(&key)
            .send()
            .await
            .with_context(|| format!("cannot read the attributes of {}:{path}", self.name))?;
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

/// Whether a stored mode is a symbolic link's.
pub fn is_symlink(mode: u32) -> bool {
    mode & FILE_KIND == SYMLINK
}

/// `x-amz-copy-source` for an object: the bucket and the key, percent-encoded.
pub fn copy_source(bucket: &str, key: &str) -> String {
    let mut out = format!("{bucket}/");
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlink_modes() {
        assert!(is_symlink(0o120777));
        assert!(!is_symlink(0o100644));
        assert!(!is_symlink(0o040755));
    }

    #[test]
    fn copy_sources_are_percent_encoded() {
        assert_eq!(copy_source("b", "p/a b+c.txt"), "b/p/a%20b%2Bc.txt");
        assert_eq!(copy_source("b", "é"), "b/%C3%A9");
    }
}

//! Hard links. A file with one name is a plain object, as any S3 tool expects. A file
//! with several names keeps its bytes and attributes in one vault-internal *inode
//! object* (`.cybs3/inodes/<id>`, a vault path like any other, so it is encrypted and
//! bound to that path in an encrypted vault), and each name is a *link record*: an empty
//! object whose `cybs3-link` metadata names the inode. The inode object lists its names
//! in `cybs3-names` (their object keys, percent-encoded, space-separated: in an
//! encrypted vault those keys are the ciphertext names the bucket shows anyway), so
//! the link count is the number of names and the last name left can be made a plain
//! object again.
//!
//! In an encrypted vault a record also carries `cybs3-link-mac`, an HMAC of its path and
//! inode id under the vault's key, checked wherever a record is followed: a record
//! copied to another name, or pointed at another inode, by someone without the key is
//! an error, never another file's content.
//!
//! Reads follow a record to its inode here, in the vault ([`Vault::stat`], listings,
//! readers, downloads, attribute changes), so `cybs3 cp`, `sync` and `ls` see the file's
//! real content and size; only writers of content (uploads) must name the inode
//! themselves, which the mount does.

use super::{Meta, Vault};
use crate::error::{Error, Result, ResultExt};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet};
use std::collections::HashMap;

/// On a link record: the id of its inode object.
pub(crate) const META_LINK: &str = "cybs3-link";
/// On a link record of an encrypted vault: the HMAC binding it to its path and inode.
const META_LINK_MAC: &str = "cybs3-link-mac";
/// On an inode object: the keys of its names.
pub(crate) const META_NAMES: &str = "cybs3-names";
/// Where the vault keeps its own objects; never listed as a file or directory.
pub const INTERNAL: &str = ".cybs3";
/// The most the stored names may take: S3 allows 2 KB of user metadata in all, and
/// extended attributes may take most of the rest.
const NAMES_MAX: usize = 1024;

/// What percent-encoding leaves as it is in a stored name: unreserved characters and `/`.
const NAME_SAFE: &AsciiSet = &crate::UNRESERVED.remove(b'/');

/// The vault path of inode object `id`.
pub fn inode_path(id: &str) -> String {
    format!("{INTERNAL}/inodes/{id}")
}

/// Whether `path` is in the vault's own area (not a file of the user's).
pub fn is_internal(path: &str) -> bool {
    path == INTERNAL || path.starts_with(&format!("{INTERNAL}/"))
}

impl Vault {
    /// Stores `path` as a link record of inode object `id` (replacing what was there).
    pub async fn put_link(&self, path: &str, id: &str) -> Result<()> {
        let path = &super::clean_path(path)?;
        self.client()
            .put_object()
            .bucket(&self.cfg.bucket)
            .key(self.key_of(path)?)
            .set_metadata(Some(self.record_meta(path, id)))
            .body(Vec::new().into())
            .send()
            .await
            .with_context(|| format!("cannot link {}:{path}", self.name))?;
        Ok(())
    }

    /// Records `names` as the names of inode object `id`; an error of kind
    /// `InvalidInput` when they do not fit in its metadata (too many links).
    pub async fn set_link_names(&self, id: &str, names: &[String]) -> Result<()> {
        let keys = names
            .iter()
            .map(|n| self.rel_key(n))
            .collect::<Result<Vec<String>>>()?;
        let stored = keys
            .iter()
            .map(|k| utf8_percent_encode(k, NAME_SAFE).to_string())
            .collect::<Vec<_>>()
            .join(" ");
        if stored.len() > NAMES_MAX {
            return Err(Error::invalid(format!(
                "{} names take {} bytes stored, more than {NAMES_MAX}",
                names.len(),
                stored.len()
            )));
        }
        self.replace_meta(&inode_path(id), |meta| {
            meta.insert(META_NAMES.to_string(), stored);
        })
        .await
    }

    /// Makes `to` a plain object again with the content and attributes of inode object
    /// `id`, when it is the last name left. The inode object itself stays, for the
    /// caller to delete.
    pub async fn unlink_last(&self, id: &str, to: &str) -> Result<()> {
        let inode = inode_path(id);
        self.copy(&inode, to).await?;
        self.replace_meta(to, |meta| {
            meta.remove(META_NAMES);
        })
        .await
    }

    /// A path's key below the vault's prefix.
    fn rel_key(&self, path: &str) -> Result<String> {
        let key = self.key_of(path)?;
        Ok(key[self.cfg.prefix.len()..].to_string())
    }

    /// The plaintext paths stored as an inode object's names; names that do not decode
    /// (stored by something else) are left out.
    pub(super) fn link_names(&self, metadata: &HashMap<String, String>) -> Vec<String> {
        let Some(stored) = metadata.get(META_NAMES) else {
            return Vec::new();
        };
        stored
            .split(' ')
            .filter_map(|k| {
                let rel = percent_decode_str(k).decode_utf8().ok()?;
                self.path_of(&format!("{}{rel}", self.cfg.prefix)).ok()
            })
            .collect()
    }

    /// A link record's metadata: the inode's id, and in an encrypted vault its MAC.
    fn record_meta(&self, path: &str, id: &str) -> HashMap<String, String> {
        let mut meta = HashMap::from([(META_LINK.to_string(), id.to_string())]);
        if let Some(mac) = self.link_mac(path, id) {
            meta.insert(META_LINK_MAC.to_string(), mac);
        }
        meta
    }

    /// The MAC binding the record at `path` (cleaned) to inode `id` in an encrypted
    /// vault; `None` in a plain one.
    fn link_mac(&self, path: &str, id: &str) -> Option<String> {
        use hmac::{Hmac, Mac};
        let key = self.hash_key()?;
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&key).expect("any key length");
        for part in ["cybs3-link", path, id] {
            mac.update(part.as_bytes());
            mac.update(&[0]);
        }
        Some(hex::encode(mac.finalize().into_bytes()))
    }

    /// The inode id of the object at `path` (cleaned) with this metadata when it is a
    /// link record (`None`: a file of its own); an error when an encrypted vault's
    /// record is not bound to `path`.
    pub(crate) fn link_of(
        &self,
        path: &str,
        metadata: &HashMap<String, String>,
    ) -> Result<Option<String>> {
        let Some(id) = metadata.get(META_LINK) else {
            return Ok(None);
        };
        if let Some(want) = self.link_mac(path, id) {
            if metadata.get(META_LINK_MAC) != Some(&want) {
                return Err(Error::Crypto(format!(
                    "{}:{path} is a hard link not bound to its path: it was copied or \
                     changed by someone without the vault's key",
                    self.name
                )));
            }
        }
        Ok(Some(id.clone()))
    }

    /// The key to read `path`'s (cleaned) content and attributes at: its inode object's
    /// when the object there (with this metadata) is a link record, else `None`.
    pub(crate) fn followed(
        &self,
        path: &str,
        metadata: &HashMap<String, String>,
    ) -> Result<Option<String>> {
        self.link_of(path, metadata)?
            .map(|id| self.key_of(&inode_path(&id)))
            .transpose()
    }

    /// [`Vault::stat`] of a link record: its inode object's attributes, with the link
    /// named; the record's own when the inode object is gone.
    pub(super) async fn stat_linked(
        &self,
        path: &str,
        metadata: &HashMap<String, String>,
        record: Meta,
    ) -> Result<Meta> {
        let Some(id) = self.link_of(path, metadata)? else {
            return Ok(record);
        };
        let key = self.key_of(&inode_path(&id))?;
        Ok(match self.transfers.head(&self.cfg.bucket, &key).await? {
            Some(info) => Meta {
                link: Some(id),
                ..self.meta_of(&info)
            },
            None => record,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::VaultConfig;

    #[test]
    fn stored_names_round_trip_and_internal_paths_are_known() {
        let cfg = VaultConfig {
            endpoint: "http://127.0.0.1:9".into(),
            bucket: "b".into(),
            prefix: "p/".into(),
            ..VaultConfig::default()
        };
        let v = Vault::open("v", cfg, None).unwrap();
        let names = ["a b/c".to_string(), "é+%".to_string()];
        let stored = names
            .iter()
            .map(|n| utf8_percent_encode(&v.rel_key(n).unwrap(), NAME_SAFE).to_string())
            .collect::<Vec<_>>()
            .join(" ");
        let meta = HashMap::from([(META_NAMES.to_string(), stored)]);
        assert_eq!(v.link_names(&meta), names);
        assert!(is_internal(".cybs3") && is_internal(&inode_path("x")));
        assert!(!is_internal(".cybs3x") && !is_internal("a/.cybs3"));
    }
}

//! A file's attributes as its object's user metadata stores them: mtime, mode, owner,
//! access time, device number, content hash and extended attributes.

use super::Vault;
use crate::error::{Result, ResultExt};
use crate::transfer::{FileSource, ObjectInfo, Source};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub(crate) const META_MTIME: &str = "mtime";
pub(crate) const META_MODE: &str = "mode";
pub(crate) const META_UID: &str = "uid";
pub(crate) const META_GID: &str = "gid";
/// An access time set explicitly (`touch -a`, `utimensat`); else the mtime stands for it.
pub(crate) const META_ATIME: &str = "atime";
/// A device file's number (`st_rdev`, decimal, as `stat(2)` has it); only devices have one.
pub(crate) const META_RDEV: &str = "rdev";
pub(super) const META_HASH: &str = "cybs3-hash";

/// One file's attributes from its object's metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Meta {
    pub size: u64,
    pub mtime: Option<SystemTime>,
    pub mode: Option<u32>,
    /// The owner as stored; `None` for objects stored by other tools.
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// When the file or its attributes last changed: its object's Last-Modified, since
    /// every upload and every change of attributes stores the object anew.
    pub ctime: Option<SystemTime>,
    pub atime: Option<SystemTime>,
    pub hash: Option<String>,
    /// Extended attributes as stored (see [`Vault::xattrs`]).
    pub xattrs: Option<String>,
    /// A device file's number (`st_rdev`); `None` for every other kind of file.
    pub rdev: Option<u64>,
    /// The file's inode object's id when its name is a link record (see
    /// `vault::links`): the other attributes are the inode object's.
    pub link: Option<String>,
    /// On an inode object: the paths of its names.
    pub names: Vec<String>,
    /// The object's storage class as the server reports it; `None` for STANDARD, which
    /// S3 leaves unsaid.
    pub class: Option<String>,
}

impl Meta {
    /// Attributes of `size` bytes with nothing else known.
    pub fn sized(size: u64) -> Meta {
        Meta {
            size,
            mtime: None,
            mode: None,
            uid: None,
            gid: None,
            ctime: None,
            atime: None,
            hash: None,
            xattrs: None,
            rdev: None,
            link: None,
            names: Vec::new(),
            class: None,
        }
    }

    /// The file's link count: its names when it has several, else 1.
    pub fn nlink(&self) -> u32 {
        match self.link {
            Some(_) => (self.names.len() as u32).max(1),
            None => 1,
        }
    }
}

/// The attributes an upload stores with a file, stated by the caller rather than read
/// from the local file's inode: `cybs3 sync` and `cp` take them from the file they
/// upload ([`UploadAttrs::of_file`]), the mount from what it holds for the open file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadAttrs {
    /// `st_mode`, file kind included, stored as the decimal `mode`.
    pub mode: u32,
    /// Stored as `mtime` (seconds with nanoseconds).
    pub mtime: SystemTime,
    /// The owner, stored as `uid` and `gid` when stated.
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// Extended attributes in their stored form ([`Vault::encode_xattrs`]); `None`: none.
    pub xattrs: Option<String>,
    /// An access time set explicitly, stored as `atime`; `None`: the mtime stands for it.
    pub atime: Option<SystemTime>,
}

impl UploadAttrs {
    /// A local file's own mode, mtime and owner, without extended attributes.
    pub fn of_file(md: &std::fs::Metadata) -> UploadAttrs {
        UploadAttrs {
            mode: md.mode(),
            mtime: md.modified().unwrap_or(UNIX_EPOCH),
            uid: Some(md.uid()),
            gid: Some(md.gid()),
            xattrs: None,
            atime: None,
        }
    }

    /// The user metadata an upload with these attributes stores, `hash` its content hash
    /// (directory markers have none).
    pub(crate) fn metadata(&self, hash: Option<String>) -> Vec<(String, String)> {
        let mut meta = vec![
            (META_MTIME.to_string(), format_mtime(self.mtime)),
            (META_MODE.to_string(), self.mode.to_string()),
        ];
        if let Some(hash) = hash {
            meta.push((META_HASH.to_string(), hash));
        }
        if let Some(uid) = self.uid {
            meta.push((META_UID.to_string(), uid.to_string()));
        }
        if let Some(gid) = self.gid {
            meta.push((META_GID.to_string(), gid.to_string()));
        }
        if let Some(x) = &self.xattrs {
            meta.push((crate::attrs::META_XATTRS.to_string(), x.clone()));
        }
        if let Some(t) = self.atime {
            meta.push((META_ATIME.to_string(), format_mtime(t)));
        }
        meta
    }
}

impl Vault {
    pub(super) fn meta_of(&self, info: &ObjectInfo) -> Meta {
        self.meta_from(
            info.size,
            &info.metadata,
            info.last_modified,
            info.storage_class.as_deref(),
        )
    }

    /// Attributes from an object's stored size, user metadata and Last-Modified.
    pub(super) fn meta_from(
        &self,
        stored: u64,
        metadata: &HashMap<String, String>,
        last_modified: Option<SystemTime>,
        class: Option<&str>,
    ) -> Meta {
        Meta {
            size: self.plain_size(stored),
            mtime: metadata.get(META_MTIME).and_then(|s| parse_mtime(s)),
            mode: metadata.get(META_MODE).and_then(|s| s.parse().ok()),
            uid: metadata.get(META_UID).and_then(|s| s.parse().ok()),
            gid: metadata.get(META_GID).and_then(|s| s.parse().ok()),
            ctime: last_modified,
            atime: metadata.get(META_ATIME).and_then(|s| parse_mtime(s)),
            hash: metadata.get(META_HASH).cloned(),
            xattrs: metadata.get(crate::attrs::META_XATTRS).cloned(),
            rdev: metadata.get(META_RDEV).and_then(|s| s.parse().ok()),
            link: metadata.get(super::links::META_LINK).cloned(),
            names: self.link_names(metadata),
            class: class.filter(|c| *c != "STANDARD").map(str::to_string),
        }
    }

    /// The content hash stored with uploads (and compared by `sync --checksum`).
    pub fn hash_file(&self, local: &Path) -> Result<String> {
        let file =
            FileSource::open(local).with_context(|| format!("cannot read {}", local.display()))?;
        hash_with(&file, self.hash_key().as_ref())
    }
}

pub(super) fn hash_with(source: &dyn Source, mac_key: Option<&[u8; 32]>) -> Result<String> {
    let mut buf = vec![0u8; 1 << 20];
    let mut feed = |update: &mut dyn FnMut(&[u8])| -> Result<()> {
        let len = source.len();
        let mut at = 0;
        while at < len {
            let piece = &mut buf[..(len - at).min(1 << 20) as usize];
            source.read_at(at, piece)?;
            update(piece);
            at += piece.len() as u64;
        }
        Ok(())
    };
    match mac_key {
        Some(k) => {
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(k).expect("any key length");
            feed(&mut |b| mac.update(b))?;
            Ok(format!(
                "hmac-sha256:{}",
                hex::encode(mac.finalize().into_bytes())
            ))
        }
        None => {
            let mut h = Sha256::new();
            feed(&mut |b| h.update(b))?;
            Ok(format!("sha256:{}", hex::encode(h.finalize())))
        }
    }
}

/// Seconds since the epoch with nanoseconds, `-` before it (as `touch -d 1960-01-01`
/// sets): `-5.250000000` is 5.25 s before the epoch.
pub(crate) fn format_mtime(t: SystemTime) -> String {
    let (sign, d) = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => ("", d),
        Err(e) => ("-", e.duration()),
    };
    format!("{sign}{}.{:09}", d.as_secs(), d.subsec_nanos())
}

fn parse_mtime(s: &str) -> Option<SystemTime> {
    let (before, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (secs, frac) = s.split_once('.').unwrap_or((s, "0"));
    let secs: u64 = secs.parse().ok()?;
    let digits: String = frac.chars().take(9).collect();
    let nanos: u32 = format!("{digits:0<9}").parse().ok()?;
    let d = Duration::new(secs, nanos);
    match before {
        true => UNIX_EPOCH.checked_sub(d),
        false => UNIX_EPOCH.checked_add(d),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mtimes_roundtrip_with_nanoseconds() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
        assert_eq!(parse_mtime(&format_mtime(t)), Some(t));
        // rclone writes fewer digits.
        assert_eq!(
            parse_mtime("1700000000.5"),
            Some(UNIX_EPOCH + Duration::new(1_700_000_000, 500_000_000))
        );
        assert_eq!(
            parse_mtime("12"),
            Some(UNIX_EPOCH + Duration::from_secs(12))
        );
        assert_eq!(parse_mtime("x"), None);
        let before = UNIX_EPOCH - Duration::new(315_532_800, 250_000_000);
        assert_eq!(format_mtime(before), "-315532800.250000000");
        assert_eq!(parse_mtime(&format_mtime(before)), Some(before));
    }

    #[test]
    fn uploads_store_the_attributes_they_are_given() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        let own = UploadAttrs::of_file(&std::fs::metadata(&file).unwrap());
        assert_eq!(own.mode & 0o170000, 0o100000, "a regular file's mode");
        let attrs = UploadAttrs {
            mode: 0o100640,
            mtime: UNIX_EPOCH + Duration::new(1_700_000_000, 5),
            xattrs: Some("stored".into()),
            ..own
        };
        let meta: HashMap<_, _> = attrs
            .metadata(Some("sha256:00".into()))
            .into_iter()
            .collect();
        assert_eq!(meta[META_MODE], "33184");
        assert_eq!(meta[META_MTIME], "1700000000.000000005");
        assert_eq!(meta[META_HASH], "sha256:00");
        assert_eq!(meta[crate::attrs::META_XATTRS], "stored");
        let none = UploadAttrs {
            xattrs: None,
            ..attrs
        };
        assert!(!none
            .metadata(Some(String::new()))
            .iter()
            .any(|(k, _)| k == "xattrs"));
    }
}

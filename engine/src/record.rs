//! Metadata records kept in every drive's LMDB, and how they are encoded.
//!
//! Records are postcard behind a one-byte format tag, so a later format can be
//! told apart and migrated instead of misread.
//!
//! Format 2 added the ACL to [`ObjectMeta`], format 3 the restore of an archived
//! [`ObjectVersion`], format 4 server-side encryption to multipart uploads and their parts
//! ([`UploadRecord::sse`], [`PartRecord::sealed`]; a version's [`Encryption`] took the
//! place of a field that was always empty): records written in an earlier format whose
//! layout changed since are read through their earlier layout ([`legacy`]); every other
//! record is the same in all formats.

use crate::error::{Error, Result};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

const RECORD_FORMAT: u8 = 4;

/// A record kept in LMDB. `earlier` reads one written with an older format tag; a
/// record whose layout never changed reads it as it reads the current one.
pub(crate) trait Record: Serialize + DeserializeOwned {
    fn earlier(tag: u8, bytes: &[u8]) -> Result<Self> {
        match tag {
            1..=3 => Ok(postcard::from_bytes(bytes)?),
            _ => Err(Error::Meta(format!("unknown record format {tag}"))),
        }
    }
}

pub(crate) fn encode<T: Record>(value: &T) -> Result<Vec<u8>> {
    let mut out = vec![RECORD_FORMAT];
    out.extend(postcard::to_stdvec(value)?);
    Ok(out)
}

pub(crate) fn decode<T: Record>(bytes: &[u8]) -> Result<T> {
    match bytes.split_first() {
        Some((&RECORD_FORMAT, rest)) => Ok(postcard::from_bytes(rest)?),
        Some((&tag, rest)) => T::earlier(tag, rest),
        None => Err(Error::Meta("empty record".into())),
    }
}

pub type DataId = [u8; 16];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Versioning {
    #[default]
    Unversioned,
    Enabled,
    Suspended,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketRecord {
    pub name: String,
    pub created_ns: u64,
    pub versioning: Versioning,
    pub object_lock: bool,
}

/// What the caller says about an object; the engine stores it as given.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ObjectMeta {
    pub etag: String,
    pub content_type: Option<String>,
    /// Standard headers kept with the object (content-encoding, cache-control, ...).
    pub headers: Vec<(String, String)>,
    /// User metadata (`x-amz-meta-*` without the prefix).
    pub user: Vec<(String, String)>,
    /// Checksums by algorithm name (e.g. `crc32c` → base64 value).
    pub checksums: Vec<(String, String)>,
    pub tags: Vec<(String, String)>,
    pub storage_class: Option<String>,
    /// Who owns the object and whom it grants what. `None` for objects written before
    /// ACLs: the bucket's owner owns them, privately.
    pub acl: Option<Acl>,
}

/// An S3 canonical user: a 64-hex-digit id and the name shown with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CanonicalUser {
    pub id: String,
    pub display_name: String,
}

/// Who an ACL grant is for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Grantee {
    User(CanonicalUser),
    /// Everyone, signed or not.
    AllUsers,
    /// Every signed caller.
    AuthenticatedUsers,
    /// S3's log delivery group (granted by `log-delivery-write`).
    LogDelivery,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Permission {
    FullControl,
    Read,
    Write,
    ReadAcp,
    WriteAcp,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub grantee: Grantee,
    pub permission: Permission,
}

/// An object version's owner and access control list, stored as s3d resolved it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acl {
    pub owner: CanonicalUser,
    pub grants: Vec<Grant>,
}

/// Where a part's bytes are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PartData {
    /// In the metadata records: drive `i` keeps shard `i` of the bytes under
    /// `keys::inline_shard(id)` ([`crate::inline`]). Stores from before inline erasure
    /// coding keep the whole bytes on every drive under `keys::inline(id)` until heal
    /// shards them.
    Inline { id: DataId },
    /// Erasure-coded shard files `data/xx/<id>` on the drives of the first pool (the
    /// store's own drives); shard `i` is on drive `(i + rot) % n`.
    Sharded {
        id: DataId,
        k: u8,
        m: u8,
        rot: u8,
        block_size: u32,
    },
    /// The same in a pool added later (`pool.rs`), on that pool's drives.
    Pooled {
        pool: u16,
        id: DataId,
        k: u8,
        m: u8,
        rot: u8,
        block_size: u32,
    },
    /// In an object on a remote tier (`remote.rs`), at this offset: every part of a
    /// version shares the one object, whose whereabouts are kept under `keys::data_ref(id)`.
    Remote { id: DataId, offset: u64 },
}

impl PartData {
    pub fn id(&self) -> DataId {
        match self {
            PartData::Inline { id }
            | PartData::Sharded { id, .. }
            | PartData::Pooled { id, .. }
            | PartData::Remote { id, .. } => *id,
        }
    }

    /// Whether the bytes are on a remote tier.
    pub fn is_remote(&self) -> bool {
        matches!(self, PartData::Remote { .. })
    }

    /// Where the shard files of data kept in files are; `None` for inline and remote data.
    pub fn shards(&self) -> Option<ShardLayout> {
        match *self {
            PartData::Inline { .. } | PartData::Remote { .. } => None,
            PartData::Sharded {
                id,
                k,
                m,
                rot,
                block_size,
            } => Some(ShardLayout {
                pool: 0,
                id,
                k,
                m,
                rot,
                block_size,
            }),
            PartData::Pooled {
                pool,
                id,
                k,
                m,
                rot,
                block_size,
            } => Some(ShardLayout {
                pool,
                id,
                k,
                m,
                rot,
                block_size,
            }),
        }
    }
}

/// Data kept in shard files, whichever pool holds them: the one view every reader,
/// healer and mover of such data uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShardLayout {
    pub pool: u16,
    pub id: DataId,
    pub k: u8,
    pub m: u8,
    pub rot: u8,
    pub block_size: u32,
}

impl ShardLayout {
    /// As a record keeps it: the first pool's data as `Sharded`, so that a store that
    /// never had a second pool keeps the records it always had.
    pub fn data(self) -> PartData {
        let ShardLayout {
            pool,
            id,
            k,
            m,
            rot,
            block_size,
        } = self;
        match pool {
            0 => PartData::Sharded {
                id,
                k,
                m,
                rot,
                block_size,
            },
            _ => PartData::Pooled {
                pool,
                id,
                k,
                m,
                rot,
                block_size,
            },
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartEntry {
    pub number: u32,
    pub size: u64,
    pub etag: String,
    /// A multipart part's checksums by algorithm (whole objects keep theirs in `ObjectMeta`).
    pub checksums: Vec<(String, String)>,
    pub data: PartData,
}

/// How strictly a retention holds (`lock.rs` has the rules).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LockMode {
    /// Removable or shortenable only with the bypass (and its permission).
    Governance,
    /// Removable by nobody until it ends; it can only be extended.
    Compliance,
}

/// Object lock retention: mode and retain-until time (Unix ns).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    pub mode: LockMode,
    pub until_ns: u64,
}

/// How long a bucket's default retention lasts from each version's creation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LockPeriod {
    Days(u32),
    Years(u32),
}

/// A bucket's default retention for new versions that ask for none.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefaultRetention {
    pub mode: LockMode,
    pub period: LockPeriod,
}

/// What a write asks of object lock: a retention, a legal hold. Empty when it asks nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockRequest {
    pub retention: Option<Retention>,
    pub legal_hold: bool,
}

impl LockRequest {
    pub fn is_empty(&self) -> bool {
        self.retention.is_none() && !self.legal_hold
    }
}

/// A new version a write made, and whether it took the place of a current object (an
/// overwrite; a delete marker is not one), read in the same commit. The server's anomaly
/// detector counts overwrites.
#[derive(Clone, Debug)]
pub struct Written {
    pub version: ObjectVersion,
    pub replaced: bool,
}

/// One version of an object (or a delete marker).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectVersion {
    pub key: String,
    /// `null` for versions written while versioning was off or suspended.
    pub version_id: String,
    /// Newest-first sort key: inverted commit time and a random tail.
    pub sort: [u8; 16],
    pub delete_marker: bool,
    pub mtime_ns: u64,
    pub size: u64,
    pub meta: ObjectMeta,
    pub parts: Vec<PartEntry>,
    pub retention: Option<Retention>,
    pub legal_hold: bool,
    /// Server-side encryption (`sse.rs`): then each part's `size` is of its sealed
    /// bytes, and the version's `size` of the plaintext.
    pub encryption: Option<Encryption>,
    pub replication: Option<String>,
    /// A version in an archive storage class is readable until then (Unix ns), after a
    /// RestoreObject.
    pub restored_until_ns: Option<u64>,
}

/// How the server encrypted a version (`sse.rs`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Encryption {
    pub mode: SseMode,
    /// Bytes per sealed block: the store's block size (`sse.rs`).
    pub block: u32,
    /// Each part's data key, wrapped; in the order of the version's parts.
    pub keys: Vec<WrappedKey>,
}

/// Which server-side encryption a write asked for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SseMode {
    /// SSE-S3 (`AES256`): data keys wrapped by the KMS key kept for it.
    S3,
    /// SSE-KMS (`aws:kms`): data keys wrapped by KMS key `key`.
    Kms {
        key: String,
        /// The encryption context as the request gave it (base64 JSON).
        context: Option<String>,
        bucket_key: bool,
    },
    /// SSE-C: data keys wrapped by the customer's key, which is never stored; only its
    /// MD5 (for the response headers) and a salted HMAC that checks it.
    Customer {
        key_md5: String,
        salt: [u8; 16],
        check: Vec<u8>,
    },
}

/// A data key wrapped by version `version` of KMS key `key` (`kms.rs`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrappedKey {
    pub key: String,
    pub version: u32,
    /// Nonce, ciphertext and tag.
    pub sealed: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadRecord {
    pub key: String,
    pub upload_id: String,
    pub initiated_ns: u64,
    pub meta: ObjectMeta,
    /// Given at creation, applied to the version the upload completes.
    pub lock: LockRequest,
    /// Given at creation: every part is sealed with a data key of its own.
    pub sse: Option<SseMode>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartRecord {
    pub entry: PartEntry,
    pub mtime_ns: u64,
    /// When the upload of this part began (`Store::put_part`). Of two uploads of one part
    /// number the later-started one is kept, whichever finishes last, as on AWS.
    pub started_ns: u64,
    /// The part's data key, wrapped, when its upload is encrypted; its entry's `size`
    /// is then of the sealed bytes.
    pub sealed: Option<WrappedKey>,
}

/// The version a multipart upload became, and when (see `keys::COMPLETED`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Completed {
    pub bucket: String,
    pub key: String,
    pub sort: [u8; 16],
    pub at_ns: u64,
}

/// Per-bucket usage, over all stored versions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketStats {
    pub objects: u64,
    pub bytes: u64,
}

impl PartRecord {
    /// The part's plaintext bytes; `block_size` is its store's.
    pub fn plain_size(&self, block_size: usize) -> u64 {
        match self.sealed {
            Some(_) => crate::sse::plain_len(self.entry.size, block_size),
            None => self.entry.size,
        }
    }
}

impl Record for BucketRecord {}
impl Record for PartRecord {
    fn earlier(tag: u8, bytes: &[u8]) -> Result<Self> {
        match tag {
            1 => Ok(postcard::from_bytes::<legacy::PartRecordV1>(bytes)?.into()),
            2 | 3 => Ok(postcard::from_bytes::<legacy::PartRecordV3>(bytes)?.into()),
            _ => Err(Error::Meta(format!("unknown record format {tag}"))),
        }
    }
}
impl Record for Completed {}
impl Record for BucketStats {}
impl Record for DefaultRetention {}

impl Record for ObjectVersion {
    fn earlier(tag: u8, bytes: &[u8]) -> Result<Self> {
        match tag {
            1 => Ok(postcard::from_bytes::<legacy::ObjectVersionV1>(bytes)?.into()),
            2 => Ok(postcard::from_bytes::<legacy::ObjectVersionV2>(bytes)?.into()),
            // Its `encryption` was always empty: the same bytes as an empty [`Encryption`].
            3 => Ok(postcard::from_bytes(bytes)?),
            _ => Err(Error::Meta(format!("unknown record format {tag}"))),
        }
    }
}

impl Record for UploadRecord {
    fn earlier(tag: u8, bytes: &[u8]) -> Result<Self> {
        match tag {
            // Format 1 had two layouts: before object lock (no `lock`) and after. The
            // older is too short to decode as the newer, so the newer is tried first.
            1 => postcard::from_bytes::<legacy::UploadRecordV2>(bytes)
                .map(UploadRecord::from)
                .or_else(
                    |e| match postcard::from_bytes::<legacy::UploadRecordV1>(bytes) {
                        Ok(v1) => Ok(v1.into()),
                        Err(_) => Err(e.into()),
                    },
                ),
            2 | 3 => Ok(postcard::from_bytes::<legacy::UploadRecordV3>(bytes)?.into()),
            _ => Err(Error::Meta(format!("unknown record format {tag}"))),
        }
    }
}

/// Layouts of format 1, read and converted (an object without an ACL is its bucket
/// owner's, privately).
mod legacy {
    use super::*;

    /// A part record of format 1, from before `started_ns`: it counts as started at 0,
    /// so any new upload of its number replaces it, as every upload did then.
    #[derive(Deserialize)]
    #[cfg_attr(test, derive(Serialize))]
    pub(super) struct PartRecordV1 {
        pub entry: PartEntry,
        pub mtime_ns: u64,
    }

    impl From<PartRecordV1> for PartRecord {
        fn from(v1: PartRecordV1) -> PartRecord {
            PartRecord {
                entry: v1.entry,
                mtime_ns: v1.mtime_ns,
                started_ns: 0,
                sealed: None,
            }
        }
    }

    /// A part record of formats 2 and 3, from before encryption.
    #[derive(Deserialize)]
    #[cfg_attr(test, derive(Serialize))]
    pub(super) struct PartRecordV3 {
        pub entry: PartEntry,
        pub mtime_ns: u64,
        pub started_ns: u64,
    }

    impl From<PartRecordV3> for PartRecord {
        fn from(v: PartRecordV3) -> PartRecord {
            PartRecord {
                entry: v.entry,
                mtime_ns: v.mtime_ns,
                started_ns: v.started_ns,
                sealed: None,
            }
        }
    }

    /// An upload record of formats 2 and 3, from before encryption.
    #[derive(Deserialize)]
    #[cfg_attr(test, derive(Serialize))]
    pub(super) struct UploadRecordV3 {
        key: String,
        upload_id: String,
        initiated_ns: u64,
        meta: ObjectMeta,
        lock: LockRequest,
    }

    impl From<UploadRecordV3> for UploadRecord {
        fn from(u: UploadRecordV3) -> UploadRecord {
            UploadRecord {
                key: u.key,
                upload_id: u.upload_id,
                initiated_ns: u.initiated_ns,
                meta: u.meta,
                lock: u.lock,
                sse: None,
            }
        }
    }

    #[derive(Deserialize)]
    #[cfg_attr(test, derive(Serialize))]
    pub(super) struct ObjectMetaV1 {
        etag: String,
        content_type: Option<String>,
        headers: Vec<(String, String)>,
        user: Vec<(String, String)>,
        checksums: Vec<(String, String)>,
        tags: Vec<(String, String)>,
        storage_class: Option<String>,
    }

    impl From<ObjectMetaV1> for ObjectMeta {
        fn from(m: ObjectMetaV1) -> ObjectMeta {
            ObjectMeta {
                etag: m.etag,
                content_type: m.content_type,
                headers: m.headers,
                user: m.user,
                checksums: m.checksums,
                tags: m.tags,
                storage_class: m.storage_class,
                acl: None,
            }
        }
    }

    #[derive(Deserialize)]
    #[cfg_attr(test, derive(Serialize))]
    pub(super) struct ObjectVersionV1 {
        key: String,
        version_id: String,
        sort: [u8; 16],
        delete_marker: bool,
        mtime_ns: u64,
        size: u64,
        meta: ObjectMetaV1,
        parts: Vec<PartEntry>,
        retention: Option<Retention>,
        legal_hold: bool,
        /// Always empty then.
        _encryption: Option<String>,
        replication: Option<String>,
    }

    impl From<ObjectVersionV1> for ObjectVersion {
        fn from(v: ObjectVersionV1) -> ObjectVersion {
            ObjectVersion {
                key: v.key,
                version_id: v.version_id,
                sort: v.sort,
                delete_marker: v.delete_marker,
                mtime_ns: v.mtime_ns,
                size: v.size,
                meta: v.meta.into(),
                parts: v.parts,
                retention: v.retention,
                legal_hold: v.legal_hold,
                encryption: None,
                replication: v.replication,
                restored_until_ns: None,
            }
        }
    }

    /// A version of format 2: before restores.
    #[derive(Deserialize)]
    #[cfg_attr(test, derive(Serialize))]
    pub(super) struct ObjectVersionV2 {
        key: String,
        version_id: String,
        sort: [u8; 16],
        delete_marker: bool,
        mtime_ns: u64,
        size: u64,
        meta: ObjectMeta,
        parts: Vec<PartEntry>,
        retention: Option<Retention>,
        legal_hold: bool,
        /// Always empty then.
        _encryption: Option<String>,
        replication: Option<String>,
    }

    impl From<ObjectVersionV2> for ObjectVersion {
        fn from(v: ObjectVersionV2) -> ObjectVersion {
            ObjectVersion {
                key: v.key,
                version_id: v.version_id,
                sort: v.sort,
                delete_marker: v.delete_marker,
                mtime_ns: v.mtime_ns,
                size: v.size,
                meta: v.meta,
                parts: v.parts,
                retention: v.retention,
                legal_hold: v.legal_hold,
                encryption: None,
                replication: v.replication,
                restored_until_ns: None,
            }
        }
    }

    /// An upload record as written before object lock (no `lock`).
    #[derive(Deserialize)]
    #[cfg_attr(test, derive(Serialize))]
    pub(super) struct UploadRecordV1 {
        key: String,
        upload_id: String,
        initiated_ns: u64,
        meta: ObjectMetaV1,
    }

    impl From<UploadRecordV1> for UploadRecord {
        fn from(u: UploadRecordV1) -> UploadRecord {
            UploadRecord {
                key: u.key,
                upload_id: u.upload_id,
                initiated_ns: u.initiated_ns,
                meta: u.meta.into(),
                lock: LockRequest::default(),
                sse: None,
            }
        }
    }

    /// An upload record with object lock, before ACLs.
    #[derive(Deserialize)]
    #[cfg_attr(test, derive(Serialize))]
    pub(super) struct UploadRecordV2 {
        key: String,
        upload_id: String,
        initiated_ns: u64,
        meta: ObjectMetaV1,
        lock: LockRequest,
    }

    impl From<UploadRecordV2> for UploadRecord {
        fn from(u: UploadRecordV2) -> UploadRecord {
            UploadRecord {
                key: u.key,
                upload_id: u.upload_id,
                initiated_ns: u.initiated_ns,
                meta: u.meta.into(),
                lock: u.lock,
                sse: None,
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn meta_v1() -> ObjectMetaV1 {
            ObjectMetaV1 {
                etag: "e".into(),
                content_type: Some("text/plain".into()),
                headers: vec![],
                user: vec![("a".into(), "1".into())],
                checksums: vec![],
                tags: vec![("t".into(), "v".into())],
                storage_class: None,
            }
        }

        fn format_1<T: Serialize>(value: &T) -> Vec<u8> {
            let mut out = vec![1];
            out.extend(postcard::to_stdvec(value).unwrap());
            out
        }

        #[test]
        fn versions_from_before_acls_read_without_one() {
            let old = ObjectVersionV1 {
                key: "k".into(),
                version_id: "null".into(),
                sort: [7; 16],
                delete_marker: false,
                mtime_ns: 5,
                size: 3,
                meta: meta_v1(),
                parts: vec![],
                retention: None,
                legal_hold: true,
                _encryption: None,
                replication: None,
            };
            let v: ObjectVersion = decode(&format_1(&old)).unwrap();
            assert_eq!((v.key.as_str(), v.sort, v.size), ("k", [7; 16], 3));
            assert!(v.legal_hold);
            assert_eq!(v.meta.tags, vec![("t".to_string(), "v".to_string())]);
            assert_eq!(v.meta.acl, None);
        }

        #[test]
        fn versions_and_parts_of_format_2_read_without_a_restore() {
            let old = ObjectVersionV2 {
                key: "k".into(),
                version_id: "v".into(),
                sort: [3; 16],
                delete_marker: false,
                mtime_ns: 9,
                size: 4,
                meta: ObjectMeta {
                    storage_class: Some("COLD".into()),
                    ..ObjectMeta::default()
                },
                parts: vec![],
                retention: None,
                legal_hold: false,
                _encryption: None,
                replication: None,
            };
            let mut bytes = vec![2];
            bytes.extend(postcard::to_stdvec(&old).unwrap());
            let v: ObjectVersion = decode(&bytes).unwrap();
            assert_eq!((v.version_id.as_str(), v.size), ("v", 4));
            assert_eq!(v.meta.storage_class.as_deref(), Some("COLD"));
            assert_eq!(v.restored_until_ns, None);
            let entry = PartEntry {
                number: 2,
                size: 1,
                etag: "e".into(),
                checksums: vec![],
                data: PartData::Inline { id: [1; 16] },
            };
            let part = PartRecordV3 {
                entry: entry.clone(),
                mtime_ns: 1,
                started_ns: 8,
            };
            for tag in [2, 3] {
                let mut bytes = vec![tag];
                bytes.extend(postcard::to_stdvec(&part).unwrap());
                let read = decode::<PartRecord>(&bytes).unwrap();
                assert_eq!((read.entry, read.started_ns), (entry.clone(), 8));
                assert_eq!(read.sealed, None);
            }
        }

        #[test]
        fn records_of_format_3_read_without_encryption() {
            let up = UploadRecordV3 {
                key: "k".into(),
                upload_id: "u".into(),
                initiated_ns: 1,
                meta: ObjectMeta::default(),
                lock: LockRequest::default(),
            };
            let mut bytes = vec![3];
            bytes.extend(postcard::to_stdvec(&up).unwrap());
            let read: UploadRecord = decode(&bytes).unwrap();
            assert_eq!((read.upload_id.as_str(), read.sse), ("u", None));
            // A version's empty `encryption` was an empty string option: the same bytes.
            let v = ObjectVersion {
                key: "k".into(),
                version_id: "v".into(),
                sort: [1; 16],
                delete_marker: false,
                mtime_ns: 1,
                size: 2,
                meta: ObjectMeta::default(),
                parts: vec![],
                retention: None,
                legal_hold: false,
                encryption: None,
                replication: None,
                restored_until_ns: Some(5),
            };
            let mut bytes = vec![3];
            bytes.extend(postcard::to_stdvec(&v).unwrap());
            assert_eq!(decode::<ObjectVersion>(&bytes).unwrap(), v);
        }

        #[test]
        fn uploads_of_both_earlier_layouts_read() {
            let lock = LockRequest {
                retention: None,
                legal_hold: true,
            };
            let v2 = UploadRecordV2 {
                key: "k".into(),
                upload_id: "u".into(),
                initiated_ns: 1,
                meta: meta_v1(),
                lock,
            };
            let up: UploadRecord = decode(&format_1(&v2)).unwrap();
            assert_eq!((up.upload_id.as_str(), up.lock), ("u", lock));
            assert_eq!(up.meta.acl, None);
            let v1 = UploadRecordV1 {
                key: "k".into(),
                upload_id: "u1".into(),
                initiated_ns: 1,
                meta: meta_v1(),
            };
            let up: UploadRecord = decode(&format_1(&v1)).unwrap();
            assert_eq!(
                (up.upload_id.as_str(), up.lock),
                ("u1", LockRequest::default())
            );
        }
    }
}

/// Key layout: a table tag byte, then NUL-separated fields. Object keys never
/// contain NUL, so byte order of these keys is the S3 key order and every
/// "all entries of X" question is one prefix range.
pub(crate) mod keys {
    pub const BUCKET: u8 = b'B';
    pub const LATEST: u8 = b'L';
    pub const VERSION: u8 = b'V';
    /// An inline object's whole bytes, the same on every drive (stores from before
    /// inline erasure coding; heal replaces them with shards).
    pub const INLINE: u8 = b'I';
    /// This drive's shard of an inline object: different on every drive.
    pub const INLINE_SHARD: u8 = b'J';
    pub const REF: u8 = b'R';
    pub const UPLOAD: u8 = b'U';
    pub const PART: u8 = b'P';
    pub const ATTR: u8 = b'A';
    pub const STATS: u8 = b'S';
    /// Server-wide records the engine stores without interpreting (access keys, users,
    /// policies): `X namespace \0 name`.
    pub const SERVER: u8 = b'X';
    /// A multipart upload completed a moment ago: `C upload_id` → [`super::Completed`],
    /// so that a retried CompleteMultipartUpload gets the first one's answer.
    pub const COMPLETED: u8 = b'C';
    /// Queued work outside lanes (`queue.rs`): `Q seq` → its task.
    pub const QUEUE: u8 = b'Q';
    /// Work that failed too often: `D seq` → its task.
    pub const DEAD: u8 = b'D';
    /// An ordered lane's queued tasks (`queue.rs`): `O lane \0 seq` → its task.
    pub const LANE: u8 = b'O';
    /// An ordered lane's counters: `N lane` → its `LaneStats`.
    pub const LANE_STATS: u8 = b'N';
    /// Usage counters (`usage.rs`): `T bucket \0 class \0 day` → its `Tally`.
    pub const USAGE: u8 = b'T';
    /// When an object was last read (`access.rs`): `H bucket \0 key` → its `Access`.
    pub const ACCESS: u8 = b'H';
    pub const SEQ: &[u8] = b"#seq";
    /// The usage day (seconds) the counters are kept in; absent until they are built.
    pub const USAGE_DAY: &[u8] = b"#usage-day";
    /// The last queue sequence number given.
    pub const QUEUE_SEQ: &[u8] = b"#qseq";

    fn join(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
        let mut k = Vec::with_capacity(1 + parts.iter().map(|p| p.len() + 1).sum::<usize>());
        k.push(tag);
        for (i, p) in parts.iter().enumerate() {
            if i > 0 {
                k.push(0);
            }
            k.extend_from_slice(p);
        }
        k
    }

    pub fn bucket(b: &str) -> Vec<u8> {
        join(BUCKET, &[b.as_bytes()])
    }
    pub fn stats(b: &str) -> Vec<u8> {
        join(STATS, &[b.as_bytes()])
    }
    pub fn attr(b: &str, name: &str) -> Vec<u8> {
        join(ATTR, &[b.as_bytes(), name.as_bytes()])
    }
    /// `L bucket \0` — followed by the key.
    pub fn latest_base(b: &str) -> Vec<u8> {
        join(LATEST, &[b.as_bytes(), b""])
    }
    pub fn latest(b: &str, key: &str) -> Vec<u8> {
        join(LATEST, &[b.as_bytes(), key.as_bytes()])
    }
    /// `V bucket \0` — followed by key, NUL, sort.
    pub fn version_base(b: &str) -> Vec<u8> {
        join(VERSION, &[b.as_bytes(), b""])
    }
    /// `V bucket \0 key \0` — all versions of one key.
    pub fn versions_of(b: &str, key: &str) -> Vec<u8> {
        join(VERSION, &[b.as_bytes(), key.as_bytes(), b""])
    }
    pub fn version(b: &str, key: &str, sort: &[u8; 16]) -> Vec<u8> {
        join(VERSION, &[b.as_bytes(), key.as_bytes(), sort])
    }
    /// `T bucket \0` — followed by class, NUL, day.
    pub fn usage_base(b: &str) -> Vec<u8> {
        join(USAGE, &[b.as_bytes(), b""])
    }
    pub fn usage(b: &str, class: &str, day: u64) -> Vec<u8> {
        join(USAGE, &[b.as_bytes(), class.as_bytes(), &day.to_be_bytes()])
    }
    pub fn access(b: &str, key: &str) -> Vec<u8> {
        join(ACCESS, &[b.as_bytes(), key.as_bytes()])
    }
    pub fn inline(id: &super::DataId) -> Vec<u8> {
        join(INLINE, &[id])
    }
    pub fn inline_shard(id: &super::DataId) -> Vec<u8> {
        join(INLINE_SHARD, &[id])
    }
    pub fn task(seq: u64) -> Vec<u8> {
        let mut k = vec![QUEUE];
        k.extend_from_slice(&seq.to_be_bytes());
        k
    }

    pub fn dead(seq: u64) -> Vec<u8> {
        let mut k = vec![DEAD];
        k.extend_from_slice(&seq.to_be_bytes());
        k
    }

    /// `O lane \0`: the queued tasks of one lane, oldest first.
    pub fn lane_base(lane: &str) -> Vec<u8> {
        join(LANE, &[lane.as_bytes(), b""])
    }
    pub fn lane_entry(lane: &str, seq: u64) -> Vec<u8> {
        join(LANE, &[lane.as_bytes(), &seq.to_be_bytes()])
    }
    pub fn lane_stats(lane: &str) -> Vec<u8> {
        join(LANE_STATS, &[lane.as_bytes()])
    }

    /// The sequence number of a `Q` or `D` key.
    pub fn task_seq(key: &[u8]) -> u64 {
        key.get(1..9)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u64::from_be_bytes)
    }

    pub fn data_ref(id: &super::DataId) -> Vec<u8> {
        join(REF, &[id])
    }
    pub fn upload_base(b: &str) -> Vec<u8> {
        join(UPLOAD, &[b.as_bytes(), b""])
    }
    pub fn upload(b: &str, key: &str, upload_id: &str) -> Vec<u8> {
        join(
            UPLOAD,
            &[b.as_bytes(), key.as_bytes(), upload_id.as_bytes()],
        )
    }
    pub fn server(ns: &str, name: &str) -> Vec<u8> {
        join(SERVER, &[ns.as_bytes(), name.as_bytes()])
    }
    pub fn completed(upload_id: &str) -> Vec<u8> {
        join(COMPLETED, &[upload_id.as_bytes()])
    }
    pub fn parts_of(upload_id: &str) -> Vec<u8> {
        join(PART, &[upload_id.as_bytes(), b""])
    }
    pub fn part(upload_id: &str, number: u32) -> Vec<u8> {
        join(PART, &[upload_id.as_bytes(), &number.to_be_bytes()])
    }

    /// The smallest key greater than every key starting with `prefix`.
    pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
        let mut end = prefix.to_vec();
        while let Some(last) = end.pop() {
            if last < 0xff {
                end.push(last + 1);
                return Some(end);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_records_from_before_start_stamps_decode_as_started_at_zero() {
        let entry = PartEntry {
            number: 3,
            size: 10,
            etag: "\"e\"".into(),
            checksums: Vec::new(),
            data: PartData::Inline { id: [1; 16] },
        };
        // A record as written before `started_ns`: format 1, without it.
        let v1 = legacy::PartRecordV1 {
            entry: entry.clone(),
            mtime_ns: 42,
        };
        let mut old = vec![1u8];
        old.extend(postcard::to_stdvec(&v1).unwrap());
        let rec: PartRecord = decode(&old).unwrap();
        assert_eq!(
            (rec.entry, rec.mtime_ns, rec.started_ns),
            (entry.clone(), 42, 0)
        );
        let new = PartRecord {
            entry,
            mtime_ns: 42,
            started_ns: 7,
            sealed: Some(WrappedKey {
                key: "k".into(),
                version: 2,
                sealed: vec![9; 60],
            }),
        };
        assert_eq!(decode::<PartRecord>(&encode(&new).unwrap()).unwrap(), new);
    }

    #[test]
    fn version_keys_sort_by_object_key_first() {
        let s = [0u8; 16];
        let a = keys::version("b", "a", &s);
        let ab = keys::version("b", "a/b", &s);
        let a1 = keys::version("b", "a\u{1}", &[0xff; 16]);
        assert!(a < ab && a < a1);
        assert!(keys::versions_of("b", "a") < a1);
    }

    #[test]
    fn prefix_end_carries() {
        assert_eq!(keys::prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(keys::prefix_end(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(keys::prefix_end(b"\xff"), None);
    }

    #[test]
    fn records_roundtrip_and_reject_unknown_format() {
        let b = BucketRecord {
            name: "x".into(),
            created_ns: 1,
            versioning: Versioning::Enabled,
            object_lock: false,
        };
        let bytes = encode(&b).unwrap();
        assert_eq!(decode::<BucketRecord>(&bytes).unwrap(), b);
        let mut bad = bytes.clone();
        bad[0] = 9;
        assert!(decode::<BucketRecord>(&bad).is_err());
        // Records whose layout did not change read the same under the earlier tag.
        let mut earlier = bytes.clone();
        earlier[0] = 1;
        assert_eq!(decode::<BucketRecord>(&earlier).unwrap(), b);
    }

    #[test]
    fn object_acls_roundtrip_with_their_version() {
        let alice = CanonicalUser {
            id: "a".repeat(64),
            display_name: "alice".into(),
        };
        let acl = Acl {
            owner: alice.clone(),
            grants: vec![
                Grant {
                    grantee: Grantee::User(alice),
                    permission: Permission::FullControl,
                },
                Grant {
                    grantee: Grantee::AllUsers,
                    permission: Permission::Read,
                },
            ],
        };
        let v = ObjectVersion {
            key: "k".into(),
            version_id: "null".into(),
            sort: [1; 16],
            delete_marker: false,
            mtime_ns: 1,
            size: 0,
            meta: ObjectMeta {
                acl: Some(acl),
                ..Default::default()
            },
            parts: vec![],
            retention: None,
            legal_hold: false,
            encryption: None,
            replication: None,
            restored_until_ns: Some(42),
        };
        let bytes = encode(&v).unwrap();
        assert_eq!(bytes[0], RECORD_FORMAT);
        assert_eq!(decode::<ObjectVersion>(&bytes).unwrap(), v);
    }
}

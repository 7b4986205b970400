//! Metadata records kept in every drive's LMDB, and how they are encoded.
//!
//! Records are postcard behind a one-byte format tag, so a later format can be
//! told apart and migrated instead of misread.

use crate::error::{Error, Result};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

const RECORD_FORMAT: u8 = 1;

pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    let mut out = vec![RECORD_FORMAT];
    out.extend(postcard::to_stdvec(value)?);
    Ok(out)
}

pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    match bytes.split_first() {
        Some((&RECORD_FORMAT, rest)) => Ok(postcard::from_bytes(rest)?),
        Some((tag, _)) => Err(Error::Meta(format!("unknown record format {tag}"))),
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
}

/// Where a part's bytes are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PartData {
    /// In the metadata records: drive `i` keeps shard `i` of the bytes under
    /// `keys::inline_shard(id)` ([`crate::inline`]). Stores from before inline erasure
    /// coding keep the whole bytes on every drive under `keys::inline(id)` until heal
    /// shards them.
    Inline { id: DataId },
    /// Erasure-coded shard files `data/xx/<id>`; shard `i` is on drive `(i + rot) % n`.
    Sharded {
        id: DataId,
        k: u8,
        m: u8,
        rot: u8,
        block_size: u32,
    },
}

impl PartData {
    pub fn id(&self) -> DataId {
        match self {
            PartData::Inline { id } | PartData::Sharded { id, .. } => *id,
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
    pub encryption: Option<String>,
    pub replication: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadRecord {
    pub key: String,
    pub upload_id: String,
    pub initiated_ns: u64,
    pub meta: ObjectMeta,
    /// Given at creation, applied to the version the upload completes.
    pub lock: LockRequest,
}

/// An upload record as written before object lock (no `lock`), still read.
#[derive(Deserialize)]
struct UploadRecordV1 {
    key: String,
    upload_id: String,
    initiated_ns: u64,
    meta: ObjectMeta,
}

impl UploadRecord {
    /// Decode a record of either layout: the newer is tried first, and an older record
    /// is too short to decode as it.
    pub(crate) fn decode(bytes: &[u8]) -> Result<UploadRecord> {
        decode(bytes).or_else(|e| match decode::<UploadRecordV1>(bytes) {
            Ok(v1) => Ok(UploadRecord {
                key: v1.key,
                upload_id: v1.upload_id,
                initiated_ns: v1.initiated_ns,
                meta: v1.meta,
                lock: LockRequest::default(),
            }),
            Err(_) => Err(e),
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartRecord {
    pub entry: PartEntry,
    pub mtime_ns: u64,
    /// When the upload of this part began (`Store::put_part`). Of two uploads of one part
    /// number the later-started one is kept, whichever finishes last, as on AWS.
    pub started_ns: u64,
}

/// A part record from before `started_ns`: it counts as started at 0, so any new upload
/// of its number replaces it, as every upload did then.
#[derive(Deserialize)]
struct PartRecordV1 {
    entry: PartEntry,
    mtime_ns: u64,
}

impl PartRecord {
    pub(crate) fn decode(bytes: &[u8]) -> Result<PartRecord> {
        decode(bytes).or_else(|e| match decode::<PartRecordV1>(bytes) {
            Ok(v1) => Ok(PartRecord {
                entry: v1.entry,
                mtime_ns: v1.mtime_ns,
                started_ns: 0,
            }),
            Err(_) => Err(e),
        })
    }
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
    pub const SEQ: &[u8] = b"#seq";

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
    pub fn inline(id: &super::DataId) -> Vec<u8> {
        join(INLINE, &[id])
    }
    pub fn inline_shard(id: &super::DataId) -> Vec<u8> {
        join(INLINE_SHARD, &[id])
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
        // A record as written before `started_ns`: the same fields, in order, without it.
        let old = encode(&(entry.clone(), 42u64)).unwrap();
        let rec = PartRecord::decode(&old).unwrap();
        assert_eq!(
            (rec.entry, rec.mtime_ns, rec.started_ns),
            (entry.clone(), 42, 0)
        );
        let new = PartRecord {
            entry,
            mtime_ns: 42,
            started_ns: 7,
        };
        assert_eq!(PartRecord::decode(&encode(&new).unwrap()).unwrap(), new);
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
    }
}

//! The columns of an inventory report: their names in CSV (`fileSchema`) and Parquet,
//! their types, and each one's value for a listed version, as AWS writes them.

use engine::{LockMode, ObjectVersion, SseMode};
use s3s::{s3_error, S3Result};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// A column, declared in the order AWS puts them in a report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) enum Field {
    Bucket,
    Key,
    VersionId,
    IsLatest,
    IsDeleteMarker,
    Size,
    LastModifiedDate,
    ETag,
    StorageClass,
    IsMultipartUploaded,
    ReplicationStatus,
    EncryptionStatus,
    ObjectLockRetainUntilDate,
    ObjectLockMode,
    ObjectLockLegalHoldStatus,
    BucketKeyStatus,
    ChecksumAlgorithm,
}

/// How a column is typed in Parquet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Text,
    Bool,
    Int,
    /// Milliseconds since the epoch (TIMESTAMP_MILLIS).
    Millis,
}

/// One cell.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Value<'a> {
    Text(Cow<'a, str>),
    Bool(bool),
    Int(i64),
    Millis(i64),
    /// Empty in CSV, null in Parquet (what a delete marker has no value for).
    Null,
}

/// A version as a report lists it.
pub(crate) struct Row<'a> {
    pub bucket: &'a str,
    pub version: &'a ObjectVersion,
    pub is_latest: bool,
}

const OPTIONAL: [Field; 12] = [
    Field::Size,
    Field::LastModifiedDate,
    Field::ETag,
    Field::StorageClass,
    Field::IsMultipartUploaded,
    Field::ReplicationStatus,
    Field::EncryptionStatus,
    Field::ObjectLockRetainUntilDate,
    Field::ObjectLockMode,
    Field::ObjectLockLegalHoldStatus,
    Field::BucketKeyStatus,
    Field::ChecksumAlgorithm,
];

/// AWS's optional fields this server has nothing to fill in with.
const NOT_AVAILABLE: [&str; 4] = [
    "IntelligentTieringAccessTier",
    "ObjectAccessControlList",
    "ObjectOwner",
    "LifecycleExpirationDate",
];

impl Field {
    /// An OptionalFields entry.
    pub(crate) fn optional(name: &str) -> S3Result<Field> {
        if let Some(f) = OPTIONAL.into_iter().find(|f| f.name() == name) {
            return Ok(f);
        }
        if NOT_AVAILABLE.contains(&name) {
            return Err(s3_error!(
                NotImplemented,
                "The inventory field {name} is not available on this server"
            ));
        }
        Err(s3_error!(
            MalformedXML,
            "The XML you provided was not well-formed or did not validate against our published schema"
        ))
    }

    /// The name in the configuration and in a CSV report's `fileSchema`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Field::Bucket => "Bucket",
            Field::Key => "Key",
            Field::VersionId => "VersionId",
            Field::IsLatest => "IsLatest",
            Field::IsDeleteMarker => "IsDeleteMarker",
            Field::Size => "Size",
            Field::LastModifiedDate => "LastModifiedDate",
            Field::ETag => "ETag",
            Field::StorageClass => "StorageClass",
            Field::IsMultipartUploaded => "IsMultipartUploaded",
            Field::ReplicationStatus => "ReplicationStatus",
            Field::EncryptionStatus => "EncryptionStatus",
            Field::ObjectLockRetainUntilDate => "ObjectLockRetainUntilDate",
            Field::ObjectLockMode => "ObjectLockMode",
            Field::ObjectLockLegalHoldStatus => "ObjectLockLegalHoldStatus",
            Field::BucketKeyStatus => "BucketKeyStatus",
            Field::ChecksumAlgorithm => "ChecksumAlgorithm",
        }
    }

    /// The Parquet column name, as AWS's Parquet reports name it.
    pub(crate) fn column(self) -> &'static str {
        match self {
            Field::Bucket => "bucket",
            Field::Key => "key",
            Field::VersionId => "version_id",
            Field::IsLatest => "is_latest",
            Field::IsDeleteMarker => "is_delete_marker",
            Field::Size => "size",
            Field::LastModifiedDate => "last_modified_date",
            Field::ETag => "e_tag",
            Field::StorageClass => "storage_class",
            Field::IsMultipartUploaded => "is_multipart_uploaded",
            Field::ReplicationStatus => "replication_status",
            Field::EncryptionStatus => "encryption_status",
            Field::ObjectLockRetainUntilDate => "object_lock_retain_until_date",
            Field::ObjectLockMode => "object_lock_mode",
            Field::ObjectLockLegalHoldStatus => "object_lock_legal_hold_status",
            Field::BucketKeyStatus => "bucket_key_status",
            Field::ChecksumAlgorithm => "checksum_algorithm",
        }
    }

    pub(crate) fn kind(self) -> Kind {
        match self {
            Field::IsLatest | Field::IsDeleteMarker | Field::IsMultipartUploaded => Kind::Bool,
            Field::Size => Kind::Int,
            Field::LastModifiedDate | Field::ObjectLockRetainUntilDate => Kind::Millis,
            _ => Kind::Text,
        }
    }

    /// This column's cell for `r`. Keys are given as stored: the CSV writer encodes them.
    pub(crate) fn value<'a>(self, r: &Row<'a>) -> Value<'a> {
        let v = r.version;
        let text = |s: &'a str| Value::Text(Cow::Borrowed(s));
        let named = |s: &'static str| Value::Text(Cow::Borrowed(s));
        // A delete marker has a key, a version and a time, and nothing else.
        if v.delete_marker
            && !matches!(
                self,
                Field::Bucket
                    | Field::Key
                    | Field::VersionId
                    | Field::IsLatest
                    | Field::IsDeleteMarker
                    | Field::LastModifiedDate
            )
        {
            return Value::Null;
        }
        match self {
            Field::Bucket => text(r.bucket),
            Field::Key => text(&v.key),
            Field::VersionId => text(&v.version_id),
            Field::IsLatest => Value::Bool(r.is_latest),
            Field::IsDeleteMarker => Value::Bool(v.delete_marker),
            Field::Size => Value::Int(i64::try_from(v.size).unwrap_or(i64::MAX)),
            Field::LastModifiedDate => Value::Millis(millis(v.mtime_ns)),
            Field::ETag => text(&v.meta.etag),
            Field::StorageClass => {
                text(v.meta.storage_class.as_deref().unwrap_or(engine::STANDARD))
            }
            // A multipart ETag is the parts' digest followed by `-` and their count.
            Field::IsMultipartUploaded => Value::Bool(v.meta.etag.contains('-')),
            Field::ReplicationStatus => match engine::status_of(v) {
                Some(s) => named(s.name()),
                None => Value::Text(Cow::Borrowed("")),
            },
            Field::EncryptionStatus => named(match v.encryption.as_ref().map(|e| &e.mode) {
                None => "NOT-SSE",
                Some(SseMode::S3) => "SSE-S3",
                Some(SseMode::Kms { .. }) => "SSE-KMS",
                Some(SseMode::Customer { .. }) => "SSE-C",
            }),
            Field::ObjectLockRetainUntilDate => match &v.retention {
                Some(r) => Value::Millis(millis(r.until_ns)),
                None => Value::Null,
            },
            Field::ObjectLockMode => match v.retention.as_ref().map(|r| r.mode) {
                Some(LockMode::Governance) => named("GOVERNANCE"),
                Some(LockMode::Compliance) => named("COMPLIANCE"),
                None => Value::Null,
            },
            Field::ObjectLockLegalHoldStatus => named(if v.legal_hold { "ON" } else { "OFF" }),
            Field::BucketKeyStatus => named(match v.encryption.as_ref().map(|e| &e.mode) {
                Some(SseMode::Kms {
                    bucket_key: true, ..
                }) => "ENABLED",
                _ => "DISABLED",
            }),
            Field::ChecksumAlgorithm => match v.meta.checksums.first() {
                Some((name, _)) => Value::Text(Cow::Owned(name.to_ascii_uppercase())),
                None => Value::Null,
            },
        }
    }
}

fn millis(ns: u64) -> i64 {
    i64::try_from(ns / 1_000_000).unwrap_or(i64::MAX)
}

/// The columns of a report: bucket and key, the version columns when it lists every
/// version, then the configuration's optional fields (kept in AWS's order).
pub(crate) fn columns(all_versions: bool, optional: &[Field]) -> Vec<Field> {
    let mut all = vec![Field::Bucket, Field::Key];
    if all_versions {
        all.extend([Field::VersionId, Field::IsLatest, Field::IsDeleteMarker]);
    }
    all.extend_from_slice(optional);
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_optional_field_parses_back_from_its_name() {
        for f in OPTIONAL {
            assert_eq!(Field::optional(f.name()).unwrap(), f);
        }
        assert!(
            Field::optional("Key").is_err(),
            "required columns are not optional"
        );
        let mut sorted = OPTIONAL;
        sorted.sort();
        assert_eq!(sorted, OPTIONAL, "declared in AWS's column order");
    }

    #[test]
    fn a_delete_marker_has_no_size_or_etag() {
        let v = ObjectVersion {
            version_id: "v1".into(),
            delete_marker: true,
            mtime_ns: 1_500_000_000,
            ..crate::testing::version("k")
        };
        let r = Row {
            bucket: "b",
            version: &v,
            is_latest: true,
        };
        assert_eq!(Field::Size.value(&r), Value::Null);
        assert_eq!(Field::ETag.value(&r), Value::Null);
        assert_eq!(Field::IsDeleteMarker.value(&r), Value::Bool(true));
        assert_eq!(Field::LastModifiedDate.value(&r), Value::Millis(1500));
    }
}

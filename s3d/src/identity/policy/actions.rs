//! IAM action names for s3s operations (`S3Operation::name()`).

/// Returned by [`action_for`] for operations it does not know. Only the
/// wildcards `s3:*` and `*` grant it, so a new s3s operation is never
/// silently authorized by a narrowly scoped policy.
pub(super) const UNKNOWN_ACTION: &str = "s3:UnknownOperation";

/// The IAM action for an s3s operation name (`S3Operation::name()`), given
/// whether the request names an object version (`versionId`).
///
/// Mapping per <https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-with-s3-actions.html>.
/// CopyObject/UploadPartCopy map to the destination's `s3:PutObject`; the
/// caller checks `s3:GetObject` on the copy source separately.
pub fn action_for(op: &str, has_version_id: bool) -> &'static str {
    object_action(op, has_version_id)
        .or_else(|| bucket_action(op))
        .or_else(|| bucket_config_action(op))
        .unwrap_or(UNKNOWN_ACTION)
}

/// Object-level operations, some of which have `...Version...` variants.
pub(super) fn object_action(op: &str, v: bool) -> Option<&'static str> {
    let pick = |plain, version| Some(if v { version } else { plain });
    match op {
        "GetObject" | "HeadObject" => pick("s3:GetObject", "s3:GetObjectVersion"),
        "GetObjectAttributes" => pick("s3:GetObjectAttributes", "s3:GetObjectVersionAttributes"),
        "GetObjectAcl" => pick("s3:GetObjectAcl", "s3:GetObjectVersionAcl"),
        "PutObjectAcl" => pick("s3:PutObjectAcl", "s3:PutObjectVersionAcl"),
        "GetObjectTagging" => pick("s3:GetObjectTagging", "s3:GetObjectVersionTagging"),
        "PutObjectTagging" => pick("s3:PutObjectTagging", "s3:PutObjectVersionTagging"),
        "DeleteObjectTagging" => pick("s3:DeleteObjectTagging", "s3:DeleteObjectVersionTagging"),
        "DeleteObject" => pick("s3:DeleteObject", "s3:DeleteObjectVersion"),
        "GetObjectTorrent" => pick("s3:GetObjectTorrent", "s3:GetObjectVersionTorrent"),
        "DeleteObjects" => Some("s3:DeleteObject"),
        "PutObject"
        | "PostObject"
        | "CopyObject"
        | "CreateMultipartUpload"
        | "UploadPart"
        | "UploadPartCopy"
        | "CompleteMultipartUpload" => Some("s3:PutObject"),
        "SelectObjectContent" => Some("s3:GetObject"),
        "AbortMultipartUpload" => Some("s3:AbortMultipartUpload"),
        "ListParts" => Some("s3:ListMultipartUploadParts"),
        "RestoreObject" => Some("s3:RestoreObject"),
        "GetObjectRetention" => Some("s3:GetObjectRetention"),
        // Not an S3 operation: asked of the policy when a request sets the bypass header.
        "BypassGovernanceRetention" => Some("s3:BypassGovernanceRetention"),
        // Not S3 operations either: asked when a request writes a replica.
        "ReplicateObject" => Some("s3:ReplicateObject"),
        "ReplicateDelete" => Some("s3:ReplicateDelete"),
        "ReplicateTags" => Some("s3:ReplicateTags"),
        "PutObjectRetention" => Some("s3:PutObjectRetention"),
        "GetObjectLegalHold" => Some("s3:GetObjectLegalHold"),
        "PutObjectLegalHold" => Some("s3:PutObjectLegalHold"),
        "WriteGetObjectResponse" => Some("s3-object-lambda:WriteGetObjectResponse"),
        _ => None,
    }
}

/// Bucket lifecycle, listing and access-control operations.
pub(super) fn bucket_action(op: &str) -> Option<&'static str> {
    Some(match op {
        "ListBuckets" => "s3:ListAllMyBuckets",
        "ListDirectoryBuckets" => "s3express:ListAllMyDirectoryBuckets",
        "CreateSession" => "s3express:CreateSession",
        "CreateBucket" => "s3:CreateBucket",
        "DeleteBucket" => "s3:DeleteBucket",
        "HeadBucket" | "ListObjects" | "ListObjectsV2" => "s3:ListBucket",
        "ListObjectVersions" => "s3:ListBucketVersions",
        "ListMultipartUploads" => "s3:ListBucketMultipartUploads",
        "GetBucketLocation" => "s3:GetBucketLocation",
        "GetBucketPolicy" => "s3:GetBucketPolicy",
        "PutBucketPolicy" => "s3:PutBucketPolicy",
        "DeleteBucketPolicy" => "s3:DeleteBucketPolicy",
        "GetBucketPolicyStatus" => "s3:GetBucketPolicyStatus",
        "GetBucketAcl" => "s3:GetBucketAcl",
        "PutBucketAcl" => "s3:PutBucketAcl",
        "GetBucketOwnershipControls" => "s3:GetBucketOwnershipControls",
        "PutBucketOwnershipControls" | "DeleteBucketOwnershipControls" => {
            "s3:PutBucketOwnershipControls"
        }
        "GetPublicAccessBlock" => "s3:GetBucketPublicAccessBlock",
        "PutPublicAccessBlock" | "DeletePublicAccessBlock" => "s3:PutBucketPublicAccessBlock",
        _ => return None,
    })
}

/// Bucket sub-resource configuration operations; AWS maps most `Delete...`
/// calls to the matching `Put...` permission.
pub(super) fn bucket_config_action(op: &str) -> Option<&'static str> {
    Some(match op {
        "GetBucketVersioning" => "s3:GetBucketVersioning",
        "PutBucketVersioning" => "s3:PutBucketVersioning",
        "GetBucketTagging" => "s3:GetBucketTagging",
        "PutBucketTagging" | "DeleteBucketTagging" => "s3:PutBucketTagging",
        "GetBucketCors" => "s3:GetBucketCORS",
        "PutBucketCors" | "DeleteBucketCors" => "s3:PutBucketCORS",
        "GetBucketLifecycleConfiguration" => "s3:GetLifecycleConfiguration",
        "PutBucketLifecycleConfiguration" | "DeleteBucketLifecycle" => {
            "s3:PutLifecycleConfiguration"
        }
        "GetBucketEncryption" => "s3:GetEncryptionConfiguration",
        "PutBucketEncryption" | "DeleteBucketEncryption" => "s3:PutEncryptionConfiguration",
        "GetObjectLockConfiguration" => "s3:GetBucketObjectLockConfiguration",
        "PutObjectLockConfiguration" => "s3:PutBucketObjectLockConfiguration",
        "GetBucketNotificationConfiguration" => "s3:GetBucketNotification",
        "PutBucketNotificationConfiguration" => "s3:PutBucketNotification",
        "GetBucketWebsite" => "s3:GetBucketWebsite",
        "PutBucketWebsite" => "s3:PutBucketWebsite",
        "DeleteBucketWebsite" => "s3:DeleteBucketWebsite",
        "GetBucketLogging" => "s3:GetBucketLogging",
        "PutBucketLogging" => "s3:PutBucketLogging",
        "GetBucketReplication" => "s3:GetReplicationConfiguration",
        "PutBucketReplication" | "DeleteBucketReplication" => "s3:PutReplicationConfiguration",
        "GetBucketRequestPayment" => "s3:GetBucketRequestPayment",
        "PutBucketRequestPayment" => "s3:PutBucketRequestPayment",
        "GetBucketAccelerateConfiguration" => "s3:GetAccelerateConfiguration",
        "PutBucketAccelerateConfiguration" => "s3:PutAccelerateConfiguration",
        "GetBucketAnalyticsConfiguration" | "ListBucketAnalyticsConfigurations" => {
            "s3:GetAnalyticsConfiguration"
        }
        "PutBucketAnalyticsConfiguration" | "DeleteBucketAnalyticsConfiguration" => {
            "s3:PutAnalyticsConfiguration"
        }
        "GetBucketInventoryConfiguration" | "ListBucketInventoryConfigurations" => {
            "s3:GetInventoryConfiguration"
        }
        "PutBucketInventoryConfiguration" | "DeleteBucketInventoryConfiguration" => {
            "s3:PutInventoryConfiguration"
        }
        "GetBucketMetricsConfiguration" | "ListBucketMetricsConfigurations" => {
            "s3:GetMetricsConfiguration"
        }
        "PutBucketMetricsConfiguration" | "DeleteBucketMetricsConfiguration" => {
            "s3:PutMetricsConfiguration"
        }
        "GetBucketIntelligentTieringConfiguration"
        | "ListBucketIntelligentTieringConfigurations" => "s3:GetIntelligentTieringConfiguration",
        "PutBucketIntelligentTieringConfiguration"
        | "DeleteBucketIntelligentTieringConfiguration" => "s3:PutIntelligentTieringConfiguration",
        "CreateBucketMetadataTableConfiguration" => "s3:CreateBucketMetadataTableConfiguration",
        "GetBucketMetadataTableConfiguration" => "s3:GetBucketMetadataTableConfiguration",
        "DeleteBucketMetadataTableConfiguration" => "s3:DeleteBucketMetadataTableConfiguration",
        _ => return None,
    })
}

//! Object ownership controls (Put/Get/DeleteBucketOwnershipControls): whether ACLs
//! are disabled and who owns new objects (`identity::grants::Ownership`).

use crate::acl;
use crate::ctx::Cybs3;
use crate::identity::grants::{self, Ownership};
use s3s::dto::*;
use s3s::{s3_error, S3Result};

pub(crate) async fn put(
    s: &Cybs3,
    input: PutBucketOwnershipControlsInput,
) -> S3Result<PutBucketOwnershipControlsOutput> {
    let [rule] = input.ownership_controls.rules.as_slice() else {
        return Err(malformed());
    };
    let ownership = Ownership::parse(rule.object_ownership.as_str()).ok_or_else(malformed)?;
    let access = acl::load(s, &input.bucket).await?;
    // ACLs can be disabled only once the bucket's own ACL grants nobody else anything.
    if ownership == Ownership::BucketOwnerEnforced && !grants::is_private(&access.acl) {
        return Err(s3_error!(
            InvalidBucketAclWithObjectOwnership,
            "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting"
        ));
    }
    let value = ownership.as_str().as_bytes().to_vec();
    s.set_bucket_attr(&input.bucket, grants::ATTR_OWNERSHIP, Some(value))
        .await?;
    Ok(PutBucketOwnershipControlsOutput {})
}

pub(crate) async fn get(
    s: &Cybs3,
    input: GetBucketOwnershipControlsInput,
) -> S3Result<GetBucketOwnershipControlsOutput> {
    let Some(ownership) = acl::load(s, &input.bucket).await?.ownership else {
        return Err(s3_error!(
            OwnershipControlsNotFoundError,
            "The bucket ownership controls were not found"
        ));
    };
    Ok(GetBucketOwnershipControlsOutput {
        ownership_controls: Some(OwnershipControls {
            rules: vec![OwnershipControlsRule {
                object_ownership: ObjectOwnership::from_static(ownership.as_str()),
            }],
        }),
    })
}

pub(crate) async fn delete(
    s: &Cybs3,
    input: DeleteBucketOwnershipControlsInput,
) -> S3Result<DeleteBucketOwnershipControlsOutput> {
    s.set_bucket_attr(&input.bucket, grants::ATTR_OWNERSHIP, None)
        .await?;
    Ok(DeleteBucketOwnershipControlsOutput {})
}

fn malformed() -> s3s::S3Error {
    s3_error!(
        MalformedXML,
        "The XML you provided was not well-formed or did not validate against our published schema"
    )
}

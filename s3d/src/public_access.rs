//! Public access blocks (Put/Get/DeletePublicAccessBlock), per bucket. What each
//! setting does is enforced where it applies: BlockPublicAcls on ACL writes (`acl`),
//! IgnorePublicAcls and RestrictPublicBuckets at evaluation (`identity`),
//! BlockPublicPolicy on bucket policy writes (`identity::bucket_policy`).

use crate::ctx::Cybs3;
use crate::identity::grants::{self, PublicAccessBlock};
use hyper::StatusCode;
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Result};

pub(crate) async fn put(
    s: &Cybs3,
    input: PutPublicAccessBlockInput,
) -> S3Result<PutPublicAccessBlockOutput> {
    let c = input.public_access_block_configuration;
    let block = PublicAccessBlock {
        block_public_acls: c.block_public_acls.unwrap_or(false),
        ignore_public_acls: c.ignore_public_acls.unwrap_or(false),
        block_public_policy: c.block_public_policy.unwrap_or(false),
        restrict_public_buckets: c.restrict_public_buckets.unwrap_or(false),
    };
    let bytes = serde_json::to_vec(&block).map_err(S3Error::internal_error)?;
    s.set_bucket_attr(&input.bucket, grants::ATTR_PUBLIC_ACCESS_BLOCK, Some(bytes))
        .await?;
    Ok(PutPublicAccessBlockOutput {})
}

pub(crate) async fn get(
    s: &Cybs3,
    input: GetPublicAccessBlockInput,
) -> S3Result<GetPublicAccessBlockOutput> {
    let Some(b) = crate::acl::load(s, &input.bucket).await?.block else {
        let mut e = S3Error::with_message(
            S3ErrorCode::Custom("NoSuchPublicAccessBlockConfiguration".into()),
            "The public access block configuration was not found",
        );
        e.set_status_code(StatusCode::NOT_FOUND);
        return Err(e);
    };
    Ok(GetPublicAccessBlockOutput {
        public_access_block_configuration: Some(PublicAccessBlockConfiguration {
            block_public_acls: Some(b.block_public_acls),
            ignore_public_acls: Some(b.ignore_public_acls),
            block_public_policy: Some(b.block_public_policy),
            restrict_public_buckets: Some(b.restrict_public_buckets),
        }),
    })
}

pub(crate) async fn delete(
    s: &Cybs3,
    input: DeletePublicAccessBlockInput,
) -> S3Result<DeletePublicAccessBlockOutput> {
    s.set_bucket_attr(&input.bucket, grants::ATTR_PUBLIC_ACCESS_BLOCK, None)
        .await?;
    Ok(DeletePublicAccessBlockOutput {})
}

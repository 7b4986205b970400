//! Bucket policies (Put/Get/DeleteBucketPolicy, GetBucketPolicyStatus): IAM JSON
//! documents stored as a bucket attribute and evaluated with the caller's own
//! policies on every request (see `auth`).

use crate::ctx::{blocking, Cybs3};
use crate::identity::grants::BucketAccess;
use crate::identity::policy::Policy;
use s3s::dto::*;
use s3s::{s3_error, S3Result};

/// The attribute name in the engine's per-bucket table.
pub(crate) const ATTR: &str = "policy";

/// AWS's limit on a bucket policy's size.
const MAX_BYTES: usize = 20 * 1024;

pub(crate) async fn put(s: &Cybs3, input: PutBucketPolicyInput) -> S3Result<PutBucketPolicyOutput> {
    if input.policy.len() > MAX_BYTES {
        return Err(s3_error!(
            MalformedPolicy,
            "Policy exceeds the maximum allowed document size (20 KB)."
        ));
    }
    let policy = Policy::parse(&input.policy)
        .and_then(|p| p.check_bucket_policy(&input.bucket).map(|()| p))
        .map_err(|e| s3_error!(MalformedPolicy, "{e}"))?;
    // BlockPublicPolicy: a public policy is refused.
    if policy.is_public() {
        let (store, bucket) = (s.store.clone(), input.bucket.clone());
        let access = blocking(move || BucketAccess::load(&store, &bucket)).await?;
        if access.block().block_public_policy {
            return Err(s3_error!(AccessDenied, "Access Denied"));
        }
    }
    s.set_bucket_attr(&input.bucket, ATTR, Some(policy.to_json().into_bytes()))
        .await?;
    Ok(PutBucketPolicyOutput {})
}

pub(crate) async fn get(s: &Cybs3, input: GetBucketPolicyInput) -> S3Result<GetBucketPolicyOutput> {
    let text = stored(s, &input.bucket).await?;
    Ok(GetBucketPolicyOutput { policy: Some(text) })
}

pub(crate) async fn delete(
    s: &Cybs3,
    input: DeleteBucketPolicyInput,
) -> S3Result<DeleteBucketPolicyOutput> {
    // Deleting a policy that is not there succeeds, as on AWS.
    s.set_bucket_attr(&input.bucket, ATTR, None).await?;
    Ok(DeleteBucketPolicyOutput {})
}

pub(crate) async fn status(
    s: &Cybs3,
    input: GetBucketPolicyStatusInput,
) -> S3Result<GetBucketPolicyStatusOutput> {
    let text = stored(s, &input.bucket).await?;
    let public = Policy::parse(&text).is_ok_and(|p| p.is_public());
    Ok(GetBucketPolicyStatusOutput {
        policy_status: Some(PolicyStatus {
            is_public: Some(public),
        }),
    })
}

async fn stored(s: &Cybs3, bucket: &str) -> S3Result<String> {
    match s.bucket_attr(bucket, ATTR).await? {
        Some(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
        None => Err(s3_error!(
            NoSuchBucketPolicy,
            "The bucket policy does not exist"
        )),
    }
}

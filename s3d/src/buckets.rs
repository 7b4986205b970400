//! Bucket operations.

use crate::ctx::{blocking, Cybs3};
use s3s::dto::*;
use s3s::{s3_error, S3Result};
use std::time::{Duration, SystemTime};

/// The region AWS reports as an empty LocationConstraint.
const DEFAULT_REGION: &str = "us-east-1";

pub(crate) async fn create(s: &Cybs3, input: CreateBucketInput) -> S3Result<CreateBucketOutput> {
    let wanted = input
        .create_bucket_configuration
        .and_then(|c| c.location_constraint)
        .map(|lc| lc.as_str().to_string());
    if let Some(lc) = wanted.filter(|lc| !lc.is_empty() && *lc != s.region) {
        return Err(s3_error!(
            IllegalLocationConstraintException,
            "The {lc} location constraint is incompatible for the region specific endpoint this request was sent to ({}).",
            s.region
        ));
    }
    let store = s.store.clone();
    let name = input.bucket;
    let location = format!("/{name}");
    match input.object_lock_enabled_for_bucket == Some(true) {
        true => blocking(move || store.create_locked_bucket(&name)).await?,
        false => blocking(move || store.create_bucket(&name)).await?,
    }
    Ok(CreateBucketOutput {
        location: Some(location),
    })
}

pub(crate) async fn delete(s: &Cybs3, input: DeleteBucketInput) -> S3Result<DeleteBucketOutput> {
    let store = s.store.clone();
    blocking(move || store.delete_bucket(&input.bucket)).await?;
    Ok(DeleteBucketOutput {})
}

pub(crate) async fn head(s: &Cybs3, input: HeadBucketInput) -> S3Result<HeadBucketOutput> {
    let store = s.store.clone();
    blocking(move || store.bucket(&input.bucket)).await?;
    Ok(HeadBucketOutput {
        bucket_region: Some(s.region.clone()),
        ..Default::default()
    })
}

pub(crate) async fn list(s: &Cybs3) -> S3Result<ListBucketsOutput> {
    let store = s.store.clone();
    let records = blocking(move || store.list_buckets()).await?;
    let buckets = records
        .into_iter()
        .map(|b| Bucket {
            name: Some(b.name),
            creation_date: Some(timestamp(b.created_ns)),
            bucket_region: Some(s.region.clone()),
        })
        .collect();
    Ok(ListBucketsOutput {
        buckets: Some(buckets),
        owner: Some(owner()),
        ..Default::default()
    })
}

pub(crate) async fn location(
    s: &Cybs3,
    input: GetBucketLocationInput,
) -> S3Result<GetBucketLocationOutput> {
    let store = s.store.clone();
    blocking(move || store.bucket(&input.bucket)).await?;
    let location_constraint =
        (s.region != DEFAULT_REGION).then(|| BucketLocationConstraint::from(s.region.clone()));
    Ok(GetBucketLocationOutput {
        location_constraint,
    })
}

/// The single owner of everything until users exist.
pub(crate) fn owner() -> Owner {
    Owner {
        display_name: Some("cybs3".into()),
        id: Some("cybs3".into()),
    }
}

pub(crate) fn timestamp(unix_ns: u64) -> Timestamp {
    Timestamp::from(SystemTime::UNIX_EPOCH + Duration::from_nanos(unix_ns))
}

//! Bucket operations.

use crate::ctx::{blocking, Cybs3};
use crate::list::{decode_token, encode_token};
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

/// ListBuckets' page size limit, and its default once any paging parameter is given.
const MAX_BUCKETS: usize = 10_000;

/// ListBuckets, by name, in pages: `max-buckets`, `continuation-token` (opaque: the last
/// name returned), `prefix`, and `bucket-region` (every bucket lives in this server's).
/// `only` is the one bucket a per-bucket key may see.
pub(crate) async fn list(
    s: &Cybs3,
    input: ListBucketsInput,
    only: Option<&str>,
) -> S3Result<ListBucketsOutput> {
    let paged = input.max_buckets.is_some()
        || input.continuation_token.is_some()
        || input.prefix.is_some()
        || input.bucket_region.is_some();
    let max = match input.max_buckets {
        None if paged => MAX_BUCKETS,
        None => usize::MAX,
        Some(n) if (1..=MAX_BUCKETS as i32).contains(&n) => n as usize,
        Some(_) => {
            return Err(s3_error!(
                InvalidArgument,
                "max-buckets must be an integer between 1 and {MAX_BUCKETS}"
            ))
        }
    };
    let after = input
        .continuation_token
        .as_deref()
        .map(decode_token)
        .transpose()?;
    let store = s.store.clone();
    let records = blocking(move || store.list_buckets()).await?;
    let prefix = input.prefix.as_deref().unwrap_or_default();
    let other_region = input.bucket_region.as_ref().is_some_and(|r| *r != s.region);
    let mut matching = records.into_iter().filter(|b| {
        !other_region
            && b.name.starts_with(prefix)
            && only.is_none_or(|own| b.name == own)
            && after.as_ref().is_none_or(|a| b.name > *a)
    });
    let buckets: Vec<Bucket> = matching
        .by_ref()
        .take(max)
        .map(|b| Bucket {
            name: Some(b.name),
            creation_date: Some(timestamp(b.created_ns)),
            bucket_region: Some(s.region.clone()),
        })
        .collect();
    let more = matching.next().is_some();
    let continuation_token = more
        .then(|| {
            buckets
                .last()
                .and_then(|b| b.name.as_deref())
                .map(encode_token)
        })
        .flatten();
    Ok(ListBucketsOutput {
        buckets: Some(buckets),
        owner: Some(owner()),
        continuation_token,
        prefix: input.prefix,
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

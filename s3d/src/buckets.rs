//! Bucket operations.

use crate::acl;
use crate::ctx::{blocking, Cybs3};
use crate::identity::auth::{self, Caller};
use crate::identity::{grants, owners};
use crate::list::{decode_token, encode_token};
use hyper::http::Extensions;
use s3s::dto::*;
use s3s::{s3_error, S3ErrorCode, S3Result};
use std::time::{Duration, SystemTime};

/// The region AWS reports as an empty LocationConstraint.
const DEFAULT_REGION: &str = "us-east-1";

pub(crate) async fn create(
    s: &Cybs3,
    input: CreateBucketInput,
    caller: &Caller,
) -> S3Result<CreateBucketOutput> {
    let wanted = input
        .create_bucket_configuration
        .as_ref()
        .and_then(|c| c.location_constraint.as_ref())
        .map(|lc| lc.as_str().to_string());
    if let Some(lc) = wanted.filter(|lc| !lc.is_empty() && *lc != s.region) {
        return Err(s3_error!(
            IllegalLocationConstraintException,
            "The {lc} location constraint is incompatible for the region specific endpoint this request was sent to ({}).",
            s.region
        ));
    }
    let (acl, ownership) = acl::for_new_bucket(caller, &input)?;
    let acl = acl::name_grantees(s, acl).await?;
    let store = s.store.clone();
    let name = input.bucket.clone();
    let location = format!("/{name}");
    let lock = input.object_lock_enabled_for_bucket == Some(true);
    let attrs = vec![
        (grants::ATTR_ACL.to_string(), grants::encode(&acl)),
        (
            grants::ATTR_OWNERSHIP.to_string(),
            ownership.as_str().as_bytes().to_vec(),
        ),
    ];
    match blocking(move || store.create_bucket_with(&name, lock, attrs)).await {
        Ok(()) => {}
        Err(e) if *e.code() == S3ErrorCode::BucketAlreadyOwnedByYou => {
            let existing = acl::load(s, &input.bucket).await?;
            if existing.owner() != &acl.owner {
                return Err(s3_error!(
                    BucketAlreadyExists,
                    "The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again."
                ));
            }
            // us-east-1's legacy: re-creating your own bucket succeeds and resets its ACL.
            if s.region != DEFAULT_REGION {
                return Err(e);
            }
            s.set_bucket_attr(&input.bucket, grants::ATTR_ACL, Some(grants::encode(&acl)))
                .await?;
        }
        Err(e) => return Err(e),
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
    extensions: &Extensions,
) -> S3Result<ListBucketsOutput> {
    let caller = Caller::of(extensions)?;
    let only = match caller {
        Caller::Bucket(own) => Some(own.as_str()),
        _ => None,
    };
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
    let candidates: Vec<String> = records
        .iter()
        .filter(|b| {
            !other_region
                && b.name.starts_with(prefix)
                && only.is_none_or(|own| b.name == own)
                && after.as_ref().is_none_or(|a| b.name > *a)
        })
        .map(|b| b.name.clone())
        .collect();
    // Names come sorted from the store, and `shown` keeps their order.
    let shown = auth::listed_buckets(extensions, candidates).await?;
    let mut matching = records
        .into_iter()
        .filter(|b| shown.binary_search(&b.name).is_ok());
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
    // Who is listing: a bucket key lists its bucket, for that bucket's owner.
    let owner = match only {
        Some(b) => acl::load(s, b).await?.owner().clone(),
        None => acl::acting_as(caller, &owners::root()),
    };
    Ok(ListBucketsOutput {
        buckets: Some(buckets),
        owner: Some(acl::owner_dto(&owner)),
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

pub(crate) fn timestamp(unix_ns: u64) -> Timestamp {
    Timestamp::from(SystemTime::UNIX_EPOCH + Duration::from_nanos(unix_ns))
}

//! Bucket lifecycle (Put/Get/DeleteBucketLifecycleConfiguration): rules checked as AWS
//! checks them and kept as a bucket setting (`rules.rs`), the `x-amz-expiration` header
//! they give objects, and the background scanner that applies them (`scanner.rs`):
//! expirations, transitions to storage classes bound to pools, aborted uploads.

mod rules;
mod scanner;

pub(crate) use scanner::run;
pub use scanner::Settings;

use crate::bucket_config::{from_xml, to_xml};
use crate::ctx::Cybs3;
use engine::{ObjectVersion, Store};
use rules::Rule;
use s3s::dto::*;
use s3s::{s3_error, S3Result};

/// The bucket attribute holding the configuration, as the S3 XML it was set with.
pub(crate) const ATTR: &str = "lifecycle";

pub(crate) async fn put(
    s: &Cybs3,
    input: PutBucketLifecycleConfigurationInput,
) -> S3Result<PutBucketLifecycleConfigurationOutput> {
    let Some(mut cfg) = input.lifecycle_configuration else {
        return Err(s3_error!(
            MalformedXML,
            "The XML you provided was not well-formed or did not validate against our published schema"
        ));
    };
    let checked = rules::check(&cfg)?;
    // A transition needs a place to move data to: a class bound to a pool.
    for class in checked.iter().flat_map(Rule::classes) {
        if s.store.storage_class(class).is_none() {
            return Err(s3_error!(
                InvalidStorageClass,
                "The storage class you specified is not valid: this server has no storage class {class}"
            ));
        }
    }
    // Rules without an id keep the one they were given, so Get shows what applies.
    for (rule, checked) in cfg.rules.iter_mut().zip(&checked) {
        rule.id = Some(checked.id.clone());
    }
    s.set_bucket_attr(&input.bucket, ATTR, Some(to_xml(&cfg)?))
        .await?;
    Ok(PutBucketLifecycleConfigurationOutput::default())
}

pub(crate) async fn get(
    s: &Cybs3,
    input: GetBucketLifecycleConfigurationInput,
) -> S3Result<GetBucketLifecycleConfigurationOutput> {
    let Some(bytes) = s.bucket_attr(&input.bucket, ATTR).await? else {
        return Err(s3_error!(
            NoSuchLifecycleConfiguration,
            "The lifecycle configuration does not exist"
        ));
    };
    let cfg: BucketLifecycleConfiguration = from_xml(&bytes)?;
    Ok(GetBucketLifecycleConfigurationOutput {
        rules: Some(cfg.rules),
        ..Default::default()
    })
}

pub(crate) async fn delete(
    s: &Cybs3,
    input: DeleteBucketLifecycleInput,
) -> S3Result<DeleteBucketLifecycleOutput> {
    s.set_bucket_attr(&input.bucket, ATTR, None).await?;
    Ok(DeleteBucketLifecycleOutput::default())
}

/// A bucket's rules (none without a configuration).
fn load(store: &Store, bucket: &str) -> S3Result<Vec<Rule>> {
    let stored = store
        .bucket_attr(bucket, ATTR)
        .map_err(crate::errors::from_engine)?;
    match stored {
        Some(bytes) => rules::check(&from_xml::<BucketLifecycleConfiguration>(&bytes)?),
        None => Ok(Vec::new()),
    }
}

/// The `x-amz-expiration` header for a version a write just made in `bucket`.
pub(crate) async fn expiration_of_new(
    s: &Cybs3,
    bucket: &str,
    v: &ObjectVersion,
) -> S3Result<Option<String>> {
    let stored = s.bucket_attr(bucket, ATTR).await?;
    expiration(s, stored.as_deref(), v)
}

/// The `x-amz-expiration` header for `v`, the current version of its key, under the
/// bucket's stored configuration (`stored`, read with the version).
pub(crate) fn expiration(
    s: &Cybs3,
    stored: Option<&[u8]>,
    v: &ObjectVersion,
) -> S3Result<Option<String>> {
    let Some(bytes) = stored else {
        return Ok(None);
    };
    let rules = rules::check(&from_xml::<BucketLifecycleConfiguration>(bytes)?)?;
    Ok(rules::expiration_header(
        &rules,
        &v.key,
        &v.meta.tags,
        v.size,
        v.mtime_ns,
        s.lifecycle_day_secs,
    ))
}

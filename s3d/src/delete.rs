//! DeleteObject and DeleteObjects (a batch, each key deleted on its own).

use crate::ctx::{blocking, Cybs3};
use crate::{anomaly, versioning};
use futures::StreamExt;
use s3s::dto::*;
use s3s::{s3_error, S3Result};

pub(crate) async fn one(s: &Cybs3, input: DeleteObjectInput) -> S3Result<DeleteObjectOutput> {
    let store = s.store.clone();
    let (bucket, key, vid) = (input.bucket, input.key, input.version_id);
    // Only set when the caller holds s3:BypassGovernanceRetention (the access check).
    let bypass = input.bypass_governance_retention == Some(true);
    versioning::check_version_id(vid.as_deref())?;
    anomaly::ops::guard_delete(s, &bucket)?;
    // Deleting a key that does not exist succeeds, as in S3.
    let d = blocking(move || store.delete(&bucket, &key, vid.as_deref(), bypass)).await?;
    anomaly::ops::deleted(1);
    Ok(DeleteObjectOutput {
        delete_marker: d.delete_marker.then_some(true),
        version_id: d.version_id,
        ..Default::default()
    })
}

/// S3's limit on keys per DeleteObjects request.
const MAX_DELETE_KEYS: usize = 1000;
/// Deletes in flight at once: concurrent ones share the engine's group commits.
const DELETE_CONCURRENCY: usize = 16;

/// S3 requires an integrity header on DeleteObjects: `Content-MD5`, or (newer SDKs)
/// an `x-amz-checksum-*` value. s3s has consumed the body by now, so the value itself
/// cannot be recomputed here; its presence is what is enforced.
fn require_integrity_header(headers: &hyper::HeaderMap) -> S3Result<()> {
    let present = headers.contains_key("content-md5")
        || headers
            .keys()
            .any(|n| n.as_str().starts_with("x-amz-checksum-"));
    if present {
        return Ok(());
    }
    Err(s3_error!(
        InvalidRequest,
        "Missing required header for this request: Content-MD5"
    ))
}

/// DeleteObjects: each key is deleted on its own; failures become `<Error>` entries
/// and never fail the request, as in S3.
pub(crate) async fn many(
    s: &Cybs3,
    input: DeleteObjectsInput,
    headers: &hyper::HeaderMap,
) -> S3Result<DeleteObjectsOutput> {
    require_integrity_header(headers)?;
    let objects = input.delete.objects;
    if objects.is_empty() || objects.len() > MAX_DELETE_KEYS {
        return Err(s3_error!(
            MalformedXML,
            "The XML you provided was not well-formed or did not validate against our published schema"
        ));
    }
    anomaly::ops::guard_delete(s, &input.bucket)?;
    let quiet = input.delete.quiet == Some(true);
    let bypass = input.bypass_governance_retention == Some(true);
    let store = s.store.clone();
    let bucket = input.bucket.clone();
    // A missing bucket fails the whole request, not each key.
    blocking(move || store.bucket(&bucket)).await?;
    let results: Vec<_> = futures::stream::iter(objects)
        .map(|o| {
            let store = s.store.clone();
            let bucket = input.bucket.clone();
            let (key, vid) = (o.key.clone(), o.version_id.clone());
            async move {
                let r = blocking(move || store.delete(&bucket, &key, vid.as_deref(), bypass)).await;
                (o, r)
            }
        })
        .buffered(DELETE_CONCURRENCY)
        .collect()
        .await;
    let mut deleted = Vec::new();
    let mut errors = Vec::new();
    anomaly::ops::deleted(results.iter().filter(|(_, r)| r.is_ok()).count() as u32);
    for (o, r) in results {
        match r {
            Ok(d) if !quiet => deleted.push(DeletedObject {
                key: Some(o.key),
                version_id: o.version_id,
                delete_marker: d.delete_marker.then_some(true),
                delete_marker_version_id: d.version_id.filter(|_| d.delete_marker),
            }),
            Ok(_) => {}
            Err(e) => errors.push(Error {
                key: Some(o.key),
                version_id: o.version_id,
                code: Some(e.code().as_str().to_string()),
                message: e.message().map(str::to_string),
            }),
        }
    }
    Ok(DeleteObjectsOutput {
        deleted: Some(deleted),
        errors: (!errors.is_empty()).then_some(errors),
        ..Default::default()
    })
}

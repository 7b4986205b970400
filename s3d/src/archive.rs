//! Archive storage classes over S3: a version in one (GLACIER, DEEP_ARCHIVE, or a class
//! bound with `--archive`, `engine::StorageClass::archive`) cannot be read (GET,
//! CopyObject's source: 403 InvalidObjectState) until RestoreObject makes it readable
//! for some days; HEAD then shows `x-amz-restore`. The data of an archive class bound to
//! a pool is on local drives already, so a restore needs no copy and completes at once:
//! the version is readable until the restore's end, then archived again by itself.

use crate::ctx::{blocking, Cybs3, Status};
use engine::{ObjectVersion, Store};
use hyper::StatusCode;
use s3s::dto::{RestoreObjectInput, RestoreObjectOutput, Timestamp, TimestampFormat};
use s3s::{s3_error, S3Response, S3Result};
use std::time::{Duration, UNIX_EPOCH};

fn archived_class(store: &Store, v: &ObjectVersion) -> bool {
    v.meta
        .storage_class
        .as_deref()
        .and_then(|c| store.storage_class(c))
        .is_some_and(|c| c.archive)
}

/// Until when a restored version stays readable, if it is now.
fn restored_until(v: &ObjectVersion) -> Option<u64> {
    v.restored_until_ns.filter(|&t| t > crate::ctx::now_ns())
}

/// Refuses reading the bytes of an archived version that is not restored.
pub(crate) fn check_readable(store: &Store, v: &ObjectVersion) -> S3Result<()> {
    if archived_class(store, v) && restored_until(v).is_none() {
        return Err(s3_error!(
            InvalidObjectState,
            "The operation is not valid for the object's storage class"
        ));
    }
    Ok(())
}

/// HEAD's `x-amz-restore` for a restored archived version.
pub(crate) fn restore_header(store: &Store, v: &ObjectVersion) -> Option<String> {
    if !archived_class(store, v) {
        return None;
    }
    let until = restored_until(v)?;
    let time = Timestamp::from(UNIX_EPOCH + Duration::from_nanos(until));
    let mut date = Vec::new();
    time.format(TimestampFormat::HttpDate, &mut date).ok()?;
    Some(format!(
        "ongoing-request=\"false\", expiry-date=\"{}\"",
        String::from_utf8_lossy(&date)
    ))
}

/// RestoreObject: an archived version becomes readable for `Days` (lifecycle days, so
/// `--lifecycle-day-secs` shortens them too). 202 for a new restore, 200 for one that
/// only moves the end of a restore in force, as AWS answers; 403 InvalidObjectState
/// for a version in a class that is not an archive.
pub(crate) async fn restore(
    s: &Cybs3,
    input: RestoreObjectInput,
) -> S3Result<S3Response<RestoreObjectOutput>> {
    let days = match input.restore_request.as_ref().and_then(|r| r.days) {
        Some(d) if d > 0 => d as u64,
        Some(_) => return Err(s3_error!(InvalidArgument, "Days must be a positive integer")),
        None => {
            return Err(s3_error!(
                MalformedXML,
                "The XML you provided was not well-formed or did not validate against our published schema"
            ))
        }
    };
    let store = s.store.clone();
    let (bucket, key, version) = (input.bucket, input.key, input.version_id);
    let day_secs = s.lifecycle_day_secs;
    let was_restored = blocking(move || {
        let v = store.head(&bucket, &key, version.as_deref())?;
        if !archived_class(&store, &v) {
            return Ok(None);
        }
        let until = crate::ctx::now_ns()
            .saturating_add(days.saturating_mul(day_secs).saturating_mul(1_000_000_000));
        store
            .restore(&bucket, &key, Some(&v.version_id), until)
            .map(Some)
    })
    .await?;
    let Some(was_restored) = was_restored else {
        return Err(s3_error!(
            InvalidObjectState,
            "Restore is not allowed for the object's current storage class"
        ));
    };
    let mut resp = S3Response::new(RestoreObjectOutput::default());
    if !was_restored {
        resp.extensions.insert(Status(StatusCode::ACCEPTED));
    }
    Ok(resp)
}

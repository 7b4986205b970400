//! Replicas another server sends: PutObject, CompleteMultipartUpload and DeleteObject
//! with the source version's id and time (`x-cybs3-replica-version-id`,
//! `x-cybs3-replica-mtime-ns`, see `worker.rs`). Only callers granted
//! `s3:ReplicateObject` (versions) or `s3:ReplicateDelete` (delete markers) on the
//! bucket may send them (the access check, `identity::auth`); the engine then writes the
//! version with that id and time, marked REPLICA, and never replicates it again.

use super::worker::{MTIME_HEADER, VERSION_HEADER};
use engine::Replica;
use hyper::HeaderMap;
use s3s::{s3_error, S3Result};

/// The replica a request asks to write, if it asks.
pub(crate) fn replica_of(headers: &HeaderMap) -> S3Result<Option<Replica>> {
    let text = |name: &str| {
        headers
            .get(name)
            .map(|v| v.to_str().map_err(|_| invalid(name)))
            .transpose()
    };
    let (Some(version_id), mtime) = (text(VERSION_HEADER)?, text(MTIME_HEADER)?) else {
        return Ok(None);
    };
    let mtime_ns = mtime
        .ok_or_else(|| invalid(MTIME_HEADER))?
        .parse()
        .map_err(|_| invalid(MTIME_HEADER))?;
    Ok(Some(Replica {
        version_id: version_id.to_string(),
        mtime_ns,
    }))
}

fn invalid(header: &str) -> s3s::S3Error {
    s3_error!(
        InvalidArgument,
        "{header}: a replica gives its source's version id and modification time (Unix ns), both"
    )
}

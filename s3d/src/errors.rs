//! Engine and body-stream failures as S3 errors: the one place that decides
//! which S3 code and HTTP status a storage-level cause becomes.

use hyper::StatusCode;
use s3s::{S3Error, S3ErrorCode};

/// Our code for "a drive is full"; AWS has none, WebDAV's 507 says it best.
pub(crate) const STORAGE_FULL: &str = "XCybs3StorageFull";
/// AWS's code for a body that does not match `x-amz-content-sha256` (s3s has no variant).
const SHA256_MISMATCH: &str = "XAmzContentSHA256Mismatch";

pub(crate) fn from_engine(err: engine::Error) -> S3Error {
    use engine::Error as E;
    let msg = err.to_string();
    let (code, status) = match err {
        E::NoSuchBucket(_) => (S3ErrorCode::NoSuchBucket, None),
        // Single tenant: whoever signed owns every bucket.
        E::BucketExists(_) => (S3ErrorCode::BucketAlreadyOwnedByYou, None),
        E::BucketNotEmpty(_) => (S3ErrorCode::BucketNotEmpty, None),
        E::InvalidBucketName(..) => (S3ErrorCode::InvalidBucketName, None),
        E::InvalidKey(why) if why.contains("longer than") => (S3ErrorCode::KeyTooLongError, None),
        E::InvalidKey(_) => (S3ErrorCode::InvalidArgument, None),
        // A plain GET/HEAD of a key whose current version is a delete marker.
        E::NoSuchKey(_) | E::DeleteMarker { .. } => (S3ErrorCode::NoSuchKey, None),
        E::NoSuchVersion(_) => (S3ErrorCode::NoSuchVersion, None),
        E::NoSuchUpload(_) => (S3ErrorCode::NoSuchUpload, None),
        E::InvalidPart(_) => (S3ErrorCode::InvalidPart, None),
        E::InvalidPartOrder => (S3ErrorCode::InvalidPartOrder, None),
        E::EntityTooSmall(_) => (S3ErrorCode::EntityTooSmall, None),
        E::InvalidRange => (S3ErrorCode::InvalidRange, None),
        E::ObjectLocked(_) => (S3ErrorCode::AccessDenied, None),
        E::PreconditionFailed => (S3ErrorCode::PreconditionFailed, None),
        E::NoObjectLock(_) => {
            return S3Error::with_message(
                S3ErrorCode::InvalidRequest,
                "Bucket is missing Object Lock Configuration",
            )
        }
        E::InvalidBucketState(_) => (S3ErrorCode::InvalidBucketState, None),
        E::NoReplication(_) => {
            return S3Error::with_message(
                S3ErrorCode::ReplicationConfigurationNotFoundError,
                "The replication configuration was not found",
            )
        }
        E::InvalidReplica(_) => (S3ErrorCode::InvalidRequest, None),
        E::StorageFull(_) => (
            S3ErrorCode::Custom(STORAGE_FULL.into()),
            Some(StatusCode::INSUFFICIENT_STORAGE),
        ),
        E::InsufficientDrives { .. } => (S3ErrorCode::ServiceUnavailable, None),
        // AWS's code when the object's KMS key is disabled.
        E::KmsDisabled(_) => (
            S3ErrorCode::Custom("KMS.DisabledException".into()),
            Some(StatusCode::BAD_REQUEST),
        ),
        E::CustomerKeyMissing => (S3ErrorCode::InvalidRequest, None),
        E::CustomerKeyMismatch => (S3ErrorCode::AccessDenied, None),
        E::Kms(_) => (
            S3ErrorCode::Custom("KMS.KMSInvalidStateException".into()),
            Some(StatusCode::BAD_REQUEST),
        ),
        E::Corrupt(_)
        | E::Io(_)
        | E::Meta(_)
        | E::Locked(_)
        | E::Layout(_)
        | E::NoSuchPool(_)
        | E::Pool(_)
        | E::Tier(_) => {
            // The details are for the operator's log, not for clients.
            tracing::error!("internal error: {msg}");
            return internal("We encountered an internal error. Please try again.");
        }
    };
    let mut e = S3Error::with_message(code, msg);
    if let Some(status) = status {
        e.set_status_code(status);
    }
    e
}

pub(crate) fn internal(msg: &'static str) -> S3Error {
    S3Error::with_message(S3ErrorCode::InternalError, msg)
}

/// What the server's idle-body timeout (server.rs) yields on the request body.
/// s3s' body wrappers pass the error on by its text only, so the request context
/// also records that it fired (`ctx::body_went_idle`).
#[derive(Debug, thiserror::Error)]
#[error("RequestTimeout: the request body was idle too long")]
pub(crate) struct BodyIdle;

/// The failures of s3s' own body verification. Its error types are private to s3s
/// (they cannot be named, so cannot be downcast to); their variant names are the
/// only part of them that s3s makes visible, so this is the one place that reads them.
enum Verification {
    ChunkSignature,
    PayloadSha256,
}

impl Verification {
    fn of(err: &(dyn std::error::Error + 'static)) -> Option<Verification> {
        let text = err.to_string();
        if text.contains("SignatureMismatch") {
            Some(Verification::ChunkSignature)
        } else if text.contains("Sha256Mismatch") {
            Some(Verification::PayloadSha256)
        } else {
            None
        }
    }
}

/// An error yielded by the request body stream; `idle` says whether this request's
/// body timed out (see [`BodyIdle`]).
pub(crate) fn from_body(err: &(dyn std::error::Error + 'static), idle: bool) -> S3Error {
    if idle || err.is::<BodyIdle>() {
        return S3Error::with_message(
            S3ErrorCode::RequestTimeout,
            "Your socket connection to the server was not read from or written to within the timeout period. Idle connections will be closed.",
        );
    }
    match Verification::of(err) {
        Some(Verification::ChunkSignature) => S3Error::with_message(
            S3ErrorCode::SignatureDoesNotMatch,
            "The chunk signature does not match the calculated signature.",
        ),
        Some(Verification::PayloadSha256) => {
            let mut e = S3Error::with_message(
                S3ErrorCode::Custom(SHA256_MISMATCH.into()),
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
            );
            e.set_status_code(StatusCode::BAD_REQUEST);
            e
        }
        // Malformed aws-chunked framing, or the client went away mid-body.
        None => S3Error::with_message(
            S3ErrorCode::IncompleteBody,
            format!("The request body could not be read: {err}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(e: &S3Error) -> u16 {
        e.status_code().map_or(500, |s| s.as_u16())
    }

    #[test]
    fn engine_errors_map_to_s3_codes_and_statuses() {
        let cases: Vec<(engine::Error, &str, u16)> = vec![
            (engine::Error::NoSuchBucket("b".into()), "NoSuchBucket", 404),
            (engine::Error::NoSuchKey("k".into()), "NoSuchKey", 404),
            (
                engine::Error::DeleteMarker {
                    key: "k".into(),
                    version_id: "v".into(),
                },
                "NoSuchKey",
                404,
            ),
            (
                engine::Error::BucketExists("b".into()),
                "BucketAlreadyOwnedByYou",
                409,
            ),
            (
                engine::Error::BucketNotEmpty("b".into()),
                "BucketNotEmpty",
                409,
            ),
            (engine::Error::InvalidRange, "InvalidRange", 416),
            (engine::Error::StorageFull("d".into()), STORAGE_FULL, 507),
            (
                engine::Error::InsufficientDrives {
                    online: 1,
                    needed: 2,
                },
                "ServiceUnavailable",
                503,
            ),
            (engine::Error::Corrupt("x".into()), "InternalError", 500),
            (engine::Error::Meta("x".into()), "InternalError", 500),
            (
                engine::Error::Io(std::io::Error::other("x")),
                "InternalError",
                500,
            ),
        ];
        for (err, code, st) in cases {
            let e = from_engine(err);
            assert_eq!(e.code().as_str(), code);
            assert_eq!(status(&e), st, "{code}");
        }
    }

    #[test]
    fn invalid_names_and_keys_come_from_the_engine_validators() {
        let e = from_engine(engine::validate_bucket_name("Bad_Name").unwrap_err());
        assert_eq!((e.code().as_str(), status(&e)), ("InvalidBucketName", 400));
        let long = "k".repeat(1025);
        let e = from_engine(engine::validate_key(&long).unwrap_err());
        assert_eq!((e.code().as_str(), status(&e)), ("KeyTooLongError", 400));
        for key in ["a/../b", "a\0b"] {
            let e = from_engine(engine::validate_key(key).unwrap_err());
            assert_eq!((e.code().as_str(), status(&e)), ("InvalidArgument", 400));
        }
    }

    #[test]
    fn body_errors_are_recognized_by_name() {
        let e = from_body(
            &std::io::Error::other("AwsChunkedStreamError: SignatureMismatch"),
            false,
        );
        assert_eq!(e.code().as_str(), "SignatureDoesNotMatch");
        let e = from_body(
            &std::io::Error::other("UploadStreamError: Sha256Mismatch"),
            false,
        );
        assert_eq!((e.code().as_str(), status(&e)), (SHA256_MISMATCH, 400));
        let e = from_body(&std::io::Error::other("connection reset"), false);
        assert_eq!((e.code().as_str(), status(&e)), ("IncompleteBody", 400));
    }

    #[test]
    fn an_idle_body_is_recognized_by_type_not_text() {
        // Unwrapped, the error itself says so.
        let e = from_body(&BodyIdle, false);
        assert_eq!((e.code().as_str(), status(&e)), ("RequestTimeout", 400));
        // Wrapped by s3s, whose wrappers keep only the text: the request context says so.
        let wrapped = std::io::Error::other(format!("UploadStreamError: Underlying: {BodyIdle}"));
        let e = from_body(&wrapped, true);
        assert_eq!((e.code().as_str(), status(&e)), ("RequestTimeout", 400));
        // The same text without the context's word is not taken for a timeout.
        let e = from_body(&wrapped, false);
        assert_eq!(e.code().as_str(), "IncompleteBody");
    }
}

//! The vault library's one error type: what failed, by kind, so callers (the mount's errno
//! table, the CLI's messages) decide by matching a variant, never by reading text.
//!
//! Each variant carries the whole message, causes included ("upload of a to v:b failed:
//! S3 error 403 AccessDenied: …"): [`ResultExt::context`] prefixes what was being done and
//! keeps the kind, as `anyhow`'s context would, so the CLI prints one line as before.
//! S3 SDK errors are sorted into kinds in one place, [`Error::from_sdk`].

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use std::fmt;
use std::io;

/// A failed vault operation. Each variant carries a message naming what failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The object, version, vault, identity or local path does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The server refused the credentials' access (403 other than an expired session).
    #[error("{0}")]
    AccessDenied(String),
    /// Temporary credentials ran out; a new `cybs3 login` (or `CYBS3_PASSWORD`) renews them.
    #[error("{0}")]
    SessionExpired(String),
    /// A conditional request's precondition did not hold (412, or a changed object).
    #[error("{0}")]
    PreconditionFailed(String),
    /// The request conflicts with the object's or bucket's state (409).
    #[error("{0}")]
    Conflict(String),
    /// The path's object key is longer than the server allows (`KeyTooLongError`).
    #[error("{0}")]
    NameTooLong(String),
    /// The network or the server failed (connection, timeout, 5xx, malformed answer).
    #[error("{0}")]
    Transport(String),
    /// Encryption, decryption or an integrity check failed (wrong identity, tampered data).
    #[error("{0}")]
    Crypto(String),
    /// A local file or directory operation failed, or local input is unusable (a path,
    /// vault name or config file: [`io::ErrorKind::InvalidInput`]).
    #[error(transparent)]
    Local(#[from] io::Error),
}

/// Results of vault operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A `Transport` error from anything displayable (HTTP failures, malformed answers).
    pub fn transport(e: impl fmt::Display) -> Error {
        Error::Transport(e.to_string())
    }

    /// A `Crypto` error from anything displayable.
    pub fn crypto(e: impl fmt::Display) -> Error {
        Error::Crypto(e.to_string())
    }

    /// Local input that cannot be used (a path, a name, a config file): `Local` with
    /// [`io::ErrorKind::InvalidInput`], as std reports a path with a NUL in it.
    pub fn invalid(e: impl fmt::Display) -> Error {
        Error::Local(io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))
    }

    /// The same kind of error, its message prefixed with `what` was being done.
    pub fn context(self, what: impl fmt::Display) -> Error {
        let add = |m: String| format!("{what}: {m}");
        match self {
            Error::NotFound(m) => Error::NotFound(add(m)),
            Error::AccessDenied(m) => Error::AccessDenied(add(m)),
            Error::SessionExpired(m) => Error::SessionExpired(add(m)),
            Error::PreconditionFailed(m) => Error::PreconditionFailed(add(m)),
            Error::Conflict(m) => Error::Conflict(add(m)),
            Error::NameTooLong(m) => Error::NameTooLong(add(m)),
            Error::Transport(m) => Error::Transport(add(m)),
            Error::Crypto(m) => Error::Crypto(add(m)),
            // The kind stays (a full disk is still `StorageFull`); the OS code goes.
            Error::Local(e) => Error::Local(io::Error::new(e.kind(), add(e.to_string()))),
        }
    }

    /// The one classification of S3 SDK errors, by HTTP status and S3 error code; the
    /// message is one line: status, code and the server's message, or what failed before
    /// any answer.
    pub(crate) fn from_sdk<E>(err: SdkError<E, HttpResponse>) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let status = status(&err);
        let code = err.as_service_error().and_then(|s| s.code());
        let message = match (err.as_service_error(), status) {
            (Some(service), Some(status)) => {
                let mut line = format!("S3 error {status}");
                if let Some(code) = service.code() {
                    line.push_str(&format!(" {code}"));
                }
                if let Some(message) = service.message() {
                    line.push_str(&format!(": {message}"));
                }
                line
            }
            _ => DisplayErrorContext(&err).to_string(),
        };
        if renewal_failed(&err) {
            // The session ran out and logging in again did not work.
            return Error::SessionExpired(message);
        }
        match (status, code) {
            (_, Some("ExpiredToken" | "InvalidToken" | "TokenRefreshRequired")) => {
                Error::SessionExpired(message)
            }
            (Some(404), _) | (_, Some("NoSuchKey" | "NoSuchBucket" | "NoSuchUpload")) => {
                Error::NotFound(message)
            }
            (_, Some("KeyTooLongError")) => Error::NameTooLong(message),
            (Some(403), _) => Error::AccessDenied(message),
            (Some(412), _) => Error::PreconditionFailed(message),
            (Some(409), _) => Error::Conflict(message),
            _ => Error::Transport(message),
        }
    }
}

/// The HTTP status of an SDK error that got an answer.
pub(crate) fn status<E>(err: &SdkError<E, HttpResponse>) -> Option<u16> {
    err.raw_response()
        .map(|response| response.status().as_u16())
}

/// Whether the request failed because no credentials could be had: a login to renew an
/// expired session (see [`crate::sts::Relogin`]) failed.
fn renewal_failed<E>(err: &SdkError<E, HttpResponse>) -> bool
where
    E: std::error::Error + 'static,
{
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cause {
        if e.is::<aws_credential_types::provider::error::CredentialsError>() {
            return true;
        }
        cause = e.source();
    }
    false
}

impl<E> From<SdkError<E, HttpResponse>> for Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    fn from(err: SdkError<E, HttpResponse>) -> Error {
        Error::from_sdk(err)
    }
}

impl From<crate::crypto::CryptoError> for Error {
    fn from(e: crate::crypto::CryptoError) -> Error {
        Error::Crypto(e.to_string())
    }
}

impl From<aws_sdk_s3::primitives::ByteStreamError> for Error {
    fn from(e: aws_sdk_s3::primitives::ByteStreamError) -> Error {
        Error::Transport(format!("reading the response body: {e}"))
    }
}

impl From<hyper::Error> for Error {
    fn from(e: hyper::Error) -> Error {
        Error::transport(e)
    }
}

/// Context for results whose error becomes an [`Error`]: what was being done, in front of
/// why it failed, keeping the kind.
pub trait ResultExt<T> {
    fn context(self, what: impl fmt::Display) -> Result<T>;
    fn with_context<D: fmt::Display>(self, what: impl FnOnce() -> D) -> Result<T>;
}

impl<T, E: Into<Error>> ResultExt<T> for std::result::Result<T, E> {
    fn context(self, what: impl fmt::Display) -> Result<T> {
        self.map_err(|e| e.into().context(what))
    }

    fn with_context<D: fmt::Display>(self, what: impl FnOnce() -> D) -> Result<T> {
        self.map_err(|e| e.into().context(what()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_keeps_the_kind() {
        let e = Error::NotFound("no such key".into()).context("cannot read v:a");
        assert!(matches!(&e, Error::NotFound(m) if m == "cannot read v:a: no such key"));
        let full = io::Error::new(io::ErrorKind::StorageFull, "disk full");
        let e = Error::Local(full).context("cannot write f");
        assert!(
            matches!(&e, Error::Local(inner) if inner.kind() == io::ErrorKind::StorageFull),
            "{e:?}"
        );
        assert_eq!(e.to_string(), "cannot write f: disk full");
        assert!(matches!(
            Error::invalid("bad path"),
            Error::Local(e) if e.kind() == io::ErrorKind::InvalidInput
        ));
    }

    /// A service error as the SDK returns it: an HTTP status with an S3 error code.
    fn answered(status: u16, code: &str) -> Error {
        use aws_sdk_s3::error::ErrorMetadata;
        use aws_sdk_s3::operation::get_object::GetObjectError;
        use aws_sdk_s3::primitives::SdkBody;
        let meta = ErrorMetadata::builder()
            .code(code)
            .message("the server says why")
            .build();
        let raw = HttpResponse::new(status.try_into().unwrap(), SdkBody::empty());
        Error::from(SdkError::service_error(GetObjectError::generic(meta), raw))
    }

    #[test]
    fn sdk_errors_are_sorted_by_status_and_code() {
        assert!(matches!(answered(404, "NoSuchKey"), Error::NotFound(_)));
        assert!(matches!(answered(404, "NoSuchBucket"), Error::NotFound(_)));
        assert!(matches!(answered(404, ""), Error::NotFound(_)));
        assert!(matches!(
            answered(403, "AccessDenied"),
            Error::AccessDenied(_)
        ));
        for code in ["ExpiredToken", "InvalidToken", "TokenRefreshRequired"] {
            assert!(
                matches!(answered(403, code), Error::SessionExpired(_)),
                "{code}"
            );
        }
        assert!(matches!(
            answered(400, "ExpiredToken"),
            Error::SessionExpired(_)
        ));
        assert!(matches!(
            answered(412, "PreconditionFailed"),
            Error::PreconditionFailed(_)
        ));
        assert!(matches!(
            answered(409, "BucketNotEmpty"),
            Error::Conflict(_)
        ));
        assert!(matches!(
            answered(500, "InternalError"),
            Error::Transport(_)
        ));
        assert!(matches!(answered(503, "SlowDown"), Error::Transport(_)));
        assert!(matches!(
            answered(400, "KeyTooLongError"),
            Error::NameTooLong(_)
        ));
        let e = answered(403, "AccessDenied");
        assert_eq!(
            e.to_string(),
            "S3 error 403 AccessDenied: the server says why"
        );
    }

    #[test]
    fn requests_without_an_answer_are_transport_errors() {
        use aws_sdk_s3::error::ConnectorError;
        use aws_sdk_s3::operation::get_object::GetObjectError;
        let cause = io::Error::new(io::ErrorKind::ConnectionRefused, "connection refused");
        let err: SdkError<GetObjectError, HttpResponse> =
            SdkError::dispatch_failure(ConnectorError::io(cause.into()));
        let e = Error::from(err);
        assert!(
            matches!(&e, Error::Transport(m) if m.contains("connection refused")),
            "{e:?}"
        );
    }

    #[test]
    fn local_errors_show_their_message_once() {
        let e = Error::from(io::Error::other("boom"));
        assert_eq!(e.to_string(), "boom");
        assert!(std::error::Error::source(&e).is_none());
    }
}

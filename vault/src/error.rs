//! The vault library's one error type: what failed, by kind, so callers (the mount's errno
//! table, the CLI's messages) decide by matching a variant, never by reading text.

use std::fmt;

/// A failed vault operation. Each variant carries a message naming what failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The object, version or local path does not exist.
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
    /// The network or the server failed (connection, timeout, 5xx, malformed answer).
    #[error("{0}")]
    Transport(String),
    /// Encryption, decryption or an integrity check failed (wrong identity, tampered data).
    #[error("{0}")]
    Crypto(String),
    /// A local file or directory operation failed.
    #[error("{0}")]
    Local(#[from] std::io::Error),
}

/// Results of vault operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A `Transport` error from anything displayable (SDK errors, HTTP failures).
    pub fn transport(e: impl fmt::Display) -> Error {
        Error::Transport(e.to_string())
    }

    /// A `Crypto` error from anything displayable.
    pub fn crypto(e: impl fmt::Display) -> Error {
        Error::Crypto(e.to_string())
    }
}

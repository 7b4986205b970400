//! The vault client library shared by `cybs3` (the CLI) and the mount.
//!
//! - [`config`]: named vaults and the active one; [`keystore`]: their identities on disk.
//! - [`client`]: the one way to build an S3 client; [`transfer`]: parallel, resumable
//!   uploads and ranged downloads.
//! - [`crypto`]: age content, encrypted names, identities.
//! - [`listing`]: listing pages with each object's attributes.
//! - [`vault`]: plaintext paths of a vault mapped onto its bucket, encrypted or not;
//!   `seen`: the newest version of each encrypted file seen here, to notice rollbacks.
//! - [`error`]: the one error type, by kind; `blocking`: the one way off the async workers.

pub mod attrs;
mod blocking;
pub mod client;
pub mod config;
pub mod crypto;
pub mod download_file;
pub mod error;
pub mod failover;
pub mod keystore;
pub mod listing;
mod seen;
pub mod sse;
pub mod sts;
pub mod tls;
pub mod transfer;
pub mod vault;
mod xml;

pub use client::S3Target;
pub use error::{Error, Result};

/// What percent-encoding leaves as it is: RFC 3986's unreserved characters.
pub(crate) const UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

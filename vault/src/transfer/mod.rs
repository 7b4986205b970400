//! The S3 transfer engine of the CLI and the mount: multipart uploads with parallel parts
//! that resume after an interruption, and parallel ranged downloads. Only standard S3 calls,
//! so any S3 (cybs3, MinIO, AWS) works.
//!
//! Memory does not grow with the object: at most `jobs` parts or ranges are held at once
//! (plus one whole object below the multipart threshold); sources are read and sinks
//! written positionally.
//!
//! Requests that fail with 5xx, throttling or timeouts are retried by the SDK (see
//! [`S3Target::client`](crate::S3Target::client)). A download body that breaks off after
//! the response began is beyond the SDK's retries, so ranges are retried here.
//!
//! - `source`: what uploads read and downloads write; `buffers`: the buffer pool.
//! - `put`: one PutObject, or `multipart` with its resume `journal`.
//! - `download`: ranged GETs.

use crate::error::{Error, Result};
use aws_sdk_s3::operation::get_object::GetObjectOutput;
use aws_sdk_s3::primitives::DateTime;
use aws_sdk_s3::types::{ServerSideEncryption, StorageClass};
use buffers::PartBuffers;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

mod buffers;
mod download;
mod journal;
mod multipart;
mod put;
mod source;

pub use journal::Resume;
pub use put::UploadOutcome;
pub use source::{FileSource, Progress, RangeConsumer, SealedSource, Sink, Source};

/// What a download hands on at a time: ranges stream through buffers this size.
pub const PIECE: usize = 1 << 20;
/// Ranged GETs in flight at once, however many files are downloading: enough to keep a
/// LAN and a disk busy. With more, 2 cores spend more on switching between streams than
/// they gain (1 GiB in 8 files: 0.88 s with 8 streams, 0.94 s with 32).
const RANGES_IN_FLIGHT: usize = 8;

/// What every ranged GET of one download is pinned to, so that its ranges cannot come
/// from two versions: the first response's ETag (sent as `If-Match`), and the version id
/// when the caller names one.
#[derive(Clone, Copy, Debug, Default)]
pub struct Pin<'a> {
    pub etag: Option<&'a str>,
    pub version: Option<&'a str>,
}

#[derive(Clone, Debug)]
pub struct ObjectInfo {
    pub size: u64,
    /// As the server sent it, quotes included.
    pub etag: Option<String>,
    pub last_modified: Option<SystemTime>,
    /// User metadata: `x-amz-meta-*` names without the prefix.
    pub metadata: HashMap<String, String>,
    pub content_type: Option<String>,
    /// `x-amz-storage-class`: absent for STANDARD.
    pub storage_class: Option<String>,
    /// `x-amz-server-side-encryption`: how the server encrypts it, if it does (for
    /// SSE-C, `AES256` with the customer key's MD5 only).
    pub server_encryption: Option<String>,
}

impl ObjectInfo {
    fn new(
        size: u64,
        etag: Option<&str>,
        last_modified: Option<&DateTime>,
        metadata: Option<&HashMap<String, String>>,
        (content_type, storage_class, sse): (
            Option<&str>,
            Option<&StorageClass>,
            Option<&ServerSideEncryption>,
        ),
    ) -> ObjectInfo {
        ObjectInfo {
            size,
            etag: etag.map(str::to_string),
            last_modified: last_modified.and_then(|t| SystemTime::try_from(*t).ok()),
            metadata: metadata.cloned().unwrap_or_default(),
            content_type: content_type.map(str::to_string),
            storage_class: storage_class.map(|c| c.as_str().to_string()),
            server_encryption: sse.map(|e| e.as_str().to_string()),
        }
    }

    fn from_get(out: &GetObjectOutput, size: u64) -> ObjectInfo {
        ObjectInfo::new(
            size,
            out.e_tag(),
            out.last_modified(),
            out.metadata(),
            (
                out.content_type(),
                out.storage_class(),
                out.server_side_encryption(),
            ),
        )
    }
}

/// Whether request bodies need SigV4's payload hash. Its SHA-256 is the costliest step
/// of an upload on both ends (more than encrypting), and two things already do its job:
/// - TLS (`https://`) protects the body in transit, which is why AWS's own tools send
///   `UNSIGNED-PAYLOAD` over it;
/// - age ciphertext authenticates itself: every 64 KiB chunk has a Poly1305 tag under a
///   per-file key, so a body changed in transit fails to decrypt. The payload hash would
///   add no more: an attacker who could forge a whole new age file for the vault's
///   recipient could equally hand it out in place of a download, which SigV4 never covers.
///
/// Unsigned bodies still carry their CRC32 (the SDK's default request checksum), which the
/// server checks before it stores anything.
pub fn payload_needs_signing(encrypted: bool, endpoint: &str) -> bool {
    !encrypted && !endpoint.starts_with("https://")
}

/// Uploads and downloads through one S3 client. Clones share the client.
#[derive(Clone)]
pub struct Transfers {
    client: aws_sdk_s3::Client,
    /// Parts in flight at once per upload (default 4). Downloads share
    /// [`RANGES_IN_FLIGHT`] ranged GETs between them.
    pub jobs: usize,
    /// Bytes per part and per ranged GET (default 16 MiB). Uploads use at least S3's
    /// minimum of 5 MiB, and larger parts when 10,000 would not hold the object.
    pub part_size: u64,
    /// Sources up to this size go up in one PutObject (default 16 MiB).
    pub multipart_threshold: u64,
    /// Whether SigV4 covers each body's SHA-256 (default). Without it a body still carries
    /// its CRC32, which the server checks: see [`payload_needs_signing`].
    pub sign_payload: bool,
    journal_dir: PathBuf,
    buffers: Arc<PartBuffers>,
    /// Ranged GETs in flight across all downloads through this `Transfers` and its clones.
    range_slots: Arc<tokio::sync::Semaphore>,
}

impl Transfers {
    /// `journal_dir` (created on demand, mode 0700) keeps the journals of resumable uploads.
    pub fn new(client: aws_sdk_s3::Client, journal_dir: PathBuf) -> Transfers {
        Transfers {
            client,
            jobs: 4,
            part_size: 16 * 1024 * 1024,
            multipart_threshold: 16 * 1024 * 1024,
            sign_payload: true,
            journal_dir,
            buffers: Arc::default(),
            range_slots: Arc::new(tokio::sync::Semaphore::new(RANGES_IN_FLIGHT)),
        }
    }

    /// The object's size and metadata; `None` if it does not exist.
    pub async fn head(&self, bucket: &str, key: &str) -> Result<Option<ObjectInfo>> {
        self.head_version(bucket, key, None).await
    }

    /// [`Transfers::head`] of one version (the current one without `version`).
    pub async fn head_version(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
    ) -> Result<Option<ObjectInfo>> {
        let sent = self
            .client
            .head_object()
            .bucket(bucket)
            .key(key)
            .set_version_id(version.map(str::to_string))
            .send()
            .await;
        let out = match sent.map_err(Error::from) {
            Ok(out) => out,
            Err(Error::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e.context(format!("HEAD of {bucket}/{key} failed"))),
        };
        let size = out
            .content_length()
            .and_then(|n| u64::try_from(n).ok())
            .ok_or_else(|| {
                Error::Transport(format!(
                    "HEAD of {bucket}/{key}: the server sent no Content-Length"
                ))
            })?;
        Ok(Some(ObjectInfo::new(
            size,
            out.e_tag(),
            out.last_modified(),
            out.metadata(),
            (
                out.content_type(),
                out.storage_class(),
                out.server_side_encryption(),
            ),
        )))
    }
}
pub(crate) use download::gone;

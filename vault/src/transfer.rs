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

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use anyhow::{anyhow, bail, Context, Result};
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::get_object::GetObjectOutput;
use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::{Bytes, BytesMut};
use futures::{stream, StreamExt, TryStreamExt};
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

use crate::crypto::Sealer;

/// S3's smallest part size (every part but the last).
const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// S3's largest part number.
const MAX_PARTS: u64 = 10_000;
/// What a download hands on at a time: ranges stream through buffers this size.
pub const PIECE: usize = 1 << 20;
/// Ranged GETs in flight at once, however many files are downloading: enough to keep a
/// LAN and a disk busy. With more, 2 cores spend more on switching between streams than
/// they gain (1 GiB in 8 files: 0.88 s with 8 streams, 0.94 s with 32).
const RANGES_IN_FLIGHT: usize = 8;
/// Attempts at a ranged GET whose body breaks off.
const BODY_ATTEMPTS: u32 = 3;

/// Bytes to upload, readable at any offset from several threads (a local file; or an age
/// [`Sealer`] over a local file).
#[allow(
    clippy::len_without_is_empty,
    reason = "a size in bytes, not a collection: nothing asks whether a source is empty"
)]
pub trait Source: Send + Sync + 'static {
    fn len(&self) -> u64;
    /// Fills `buf` exactly with the bytes at `offset`.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()>;
}

/// A local file as it is when opened: its length is fixed then.
pub struct FileSource {
    file: File,
    len: u64,
}

impl FileSource {
    pub fn open(path: &Path) -> io::Result<FileSource> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        Ok(FileSource { file, len })
    }
}

impl Source for FileSource {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }
}

/// The age ciphertext of a local file, sealed deterministically: the same file and
/// [`FileSecrets`](crate::crypto::FileSecrets) give the same bytes, so a resumed upload
/// can check and continue the parts already sent.
pub struct SealedSource {
    plain: FileSource,
    sealer: Sealer,
}

impl SealedSource {
    /// `sealer` must have been made for `plain.len()` bytes.
    pub fn new(plain: FileSource, sealer: Sealer) -> SealedSource {
        SealedSource { plain, sealer }
    }
}

impl Source for SealedSource {
    fn len(&self) -> u64 {
        self.sealer.cipher_len()
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.sealer
            .read_cipher(offset, buf, &mut |at, plain| self.plain.read_at(at, plain))
    }
}

/// Where downloaded bytes go: positional writes from several threads.
pub trait Sink: Send + Sync + 'static {
    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()>;
}

/// Called with byte increments as they complete (from any thread).
pub type Progress = Arc<dyn Fn(u64) + Send + Sync>;

/// Consumes one piece of a fetched range: its start offset in the object and its bytes,
/// which it may change in place. Runs on a blocking thread, so it may decrypt or write
/// files; the pieces of one range come in order, one at a time.
pub type RangeConsumer = Arc<dyn Fn(u64, &mut [u8]) -> Result<()> + Send + Sync>;

/// Identifies one upload across runs, so an interrupted one resumes.
#[derive(Clone)]
pub struct Resume {
    /// 1 to 128 of `[A-Za-z0-9_-]`, e.g. a hex hash of bucket, key, local path, size and
    /// mtime: the journal's file name.
    pub id: String,
    /// Whatever the caller needs to regenerate identical bytes (e.g. the `FileSecrets`);
    /// journaled with mode 0600 and returned by [`Transfers::journaled`].
    pub extra: serde_json::Value,
}

#[derive(Clone, Debug)]
pub struct UploadOutcome {
    pub etag: String,
    /// Parts already on the server from an earlier run, verified by size and MD5.
    pub resumed_parts: u32,
    /// 1 for a single PutObject.
    pub parts: u32,
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
}

impl ObjectInfo {
    fn new(
        size: u64,
        etag: Option<&str>,
        last_modified: Option<&DateTime>,
        metadata: Option<&HashMap<String, String>>,
        content_type: Option<&str>,
    ) -> ObjectInfo {
        ObjectInfo {
            size,
            etag: etag.map(str::to_string),
            last_modified: last_modified.and_then(|t| SystemTime::try_from(*t).ok()),
            metadata: metadata.cloned().unwrap_or_default(),
            content_type: content_type.map(str::to_string),
        }
    }

    fn from_get(out: &GetObjectOutput, size: u64) -> ObjectInfo {
        ObjectInfo::new(
            size,
            out.e_tag(),
            out.last_modified(),
            out.metadata(),
            out.content_type(),
        )
    }
}

/// What `journal_dir/<resume id>.json` holds: enough to find the multipart upload again,
/// and to tell whether it still builds the object asked for.
#[derive(Serialize, Deserialize)]
struct Journal {
    bucket: String,
    key: String,
    size: u64,
    metadata: Vec<(String, String)>,
    content_type: Option<String>,
    upload_id: String,
    part_size: u64,
    extra: serde_json::Value,
}

impl Journal {
    /// Whether parts uploaded for `self` can make up the object `wanted` describes;
    /// content is checked part by part later.
    fn same_object(&self, wanted: &Journal) -> bool {
        self.bucket == wanted.bucket
            && self.key == wanted.key
            && self.size == wanted.size
            && self.metadata == wanted.metadata
            && self.content_type == wanted.content_type
    }
}

/// A part that ListParts reported.
struct ListedPart {
    size: u64,
    etag: String,
}

/// A part on the server, ready for CompleteMultipartUpload.
struct SentPart {
    number: u64,
    etag: String,
    resumed: bool,
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

    /// Uploads `source` to `bucket/key` with user metadata (names without `x-amz-meta-`)
    /// and a content type.
    ///
    /// Up to the multipart threshold: one PutObject, and `resume` is not used. Above it: a
    /// multipart upload with `jobs` parts in flight. With `resume`, the upload is journaled
    /// before its first part is sent; if a journal for the same object exists, parts
    /// already on the server whose size and ETag (MD5) match the regenerated bytes are
    /// kept, so changed content or different secrets never mix bytes. On failure the
    /// multipart upload and journal stay for the next run (parts in flight are finished
    /// first, so they count then); the journal is removed after completion.
    #[allow(
        clippy::too_many_arguments,
        reason = "each is one aspect of the upload; a parameter struct would only rename them"
    )]
    pub async fn upload(
        &self,
        bucket: &str,
        key: &str,
        source: Arc<dyn Source>,
        meta: &[(String, String)],
        content_type: Option<&str>,
        resume: Option<Resume>,
        progress: Progress,
    ) -> Result<UploadOutcome> {
        let len = source.len();
        if len > self.multipart_threshold {
            let wanted = Journal {
                bucket: bucket.to_string(),
                key: key.to_string(),
                size: len,
                metadata: meta.to_vec(),
                content_type: content_type.map(str::to_string),
                upload_id: String::new(),
                part_size: self.part_size_for(len),
                extra: serde_json::Value::Null,
            };
            return self
                .upload_multipart(wanted, source, resume, progress)
                .await;
        }
        let read = tokio::task::spawn_blocking(move || {
            let mut buf = vec![0; len as usize];
            source.read_at(0, &mut buf).map(|()| Bytes::from(buf))
        });
        let put = async {
            let data = read.await?.context("reading the source")?;
            let put = self
                .client
                .put_object()
                .bucket(bucket)
                .key(key)
                .set_metadata(metadata_map(meta))
                .set_content_type(content_type.map(str::to_string))
                .body(ByteStream::from(data));
            let out = match self.sign_payload {
                true => put.send().await,
                false => put.customize().disable_payload_signing().send().await,
            }
            .map_err(s3_error)?;
            progress(len);
            Ok::<_, anyhow::Error>(UploadOutcome {
                etag: required_etag(out.e_tag())?,
                resumed_parts: 0,
                parts: 1,
            })
        };
        put.await
            .with_context(|| format!("upload of {bucket}/{key} failed"))
    }

    /// The `extra` journaled for an unfinished upload under `resume_id`, if any. Read it
    /// before building the [`Source`], so a resumed upload regenerates identical bytes.
    pub fn journaled(&self, resume_id: &str) -> Option<serde_json::Value> {
        let path = self.journal_path(resume_id).ok()?;
        read_journal(&path).map(|journal| journal.extra)
    }

    /// Downloads bytes `[start, end)` of `bucket/key` (`end` = object size when `None`)
    /// into `sink` at offsets relative to `start`, in ranged GETs of `part_size` with `jobs`
    /// in flight. Returns the object's size and metadata from the first response; later
    /// ranges carry `If-Match` with its ETag, so an object replaced meanwhile fails the
    /// download instead of mixing versions.
    pub async fn download(
        &self,
        bucket: &str,
        key: &str,
        start: u64,
        end: Option<u64>,
        sink: Arc<dyn Sink>,
        progress: Progress,
    ) -> Result<ObjectInfo> {
        let step = self.part_size.max(1);
        if let Some(end) = end.filter(|&end| end <= start) {
            // Nothing to fetch, but the object must exist and be long enough.
            let info = self
                .head(bucket, key)
                .await?
                .with_context(|| format!("download of {bucket}/{key} failed: no such object"))?;
            check_range(bucket, key, start, end, info.size)?;
            return Ok(info);
        }
        // A small first request: it is held whole, and the rest streams.
        let first_end = end.map_or(start + PIECE as u64, |end| end.min(start + PIECE as u64));
        let (info, data) = self
            .get_first(bucket, key, start, first_end)
            .await?
            .with_context(|| format!("download of {bucket}/{key} failed: no such object"))?;
        let end = end.unwrap_or(info.size);
        check_range(bucket, key, start, end, info.size)?;
        let first_end = first_end.min(end);
        if data.len() as u64 != first_end - start {
            bail!(
                "download of {bucket}/{key} failed at bytes {start}..{first_end}: the server sent {} bytes",
                data.len()
            );
        }
        let each: RangeConsumer = Arc::new(move |offset, data: &mut [u8]| {
            sink.write_at(offset - start, data)
                .context("writing the download")?;
            progress(data.len() as u64);
            Ok(())
        });
        // The first range is written before the others are requested, so whatever the sink
        // does with it happens before any later range is read.
        let first = each.clone();
        tokio::task::spawn_blocking(move || first(start, &mut BytesMut::from(data)))
            .await?
            .with_context(|| format!("download of {bucket}/{key} failed"))?;
        let ranges = (first_end..end)
            .step_by(step as usize)
            .map(|at| (at, (at + step).min(end)))
            .collect();
        self.fetch_ranges(bucket, key, info.etag.as_deref(), ranges, PIECE, each)
            .await?;
        Ok(info)
    }

    /// One GET of `[start, end)` of `bucket/key` (less at the object's end): the object's
    /// size and metadata with the bytes, so a small object costs one request. `None`: no
    /// such object. Past the object's end (an empty object) there are no bytes, and one
    /// HEAD finds the metadata.
    pub async fn get_first(
        &self,
        bucket: &str,
        key: &str,
        start: u64,
        end: u64,
    ) -> Result<Option<(ObjectInfo, Bytes)>> {
        let failed = || format!("download of {bucket}/{key} failed at bytes {start}..{end}");
        let mut data = BytesMut::new();
        let Some(out) = self
            .get_range_into(bucket, key, start, end, None, &mut data)
            .await
            .with_context(failed)?
        else {
            let info = self.head(bucket, key).await?;
            return Ok(info.map(|info| (info, Bytes::new())));
        };
        let size = object_size(&out, start, end, data.len() as u64).with_context(failed)?;
        Ok(Some((ObjectInfo::from_get(&out, size), data.freeze())))
    }

    /// Fetches each of `ranges` (`[start, end)`, non-empty) of `bucket/key` as one of the
    /// [`RANGES_IN_FLIGHT`] slots of all downloads frees up (first asked, first served, so
    /// concurrent downloads progress together), and hands it to `each` in pieces of `piece` bytes (less at a range's end) as
    /// it arrives, so memory does not grow with the range. With `etag`, every request
    /// carries `If-Match`: an object replaced meanwhile is an error. Stops at the first
    /// error.
    pub async fn fetch_ranges(
        &self,
        bucket: &str,
        key: &str,
        etag: Option<&str>,
        ranges: Vec<(u64, u64)>,
        piece: usize,
        each: RangeConsumer,
    ) -> Result<()> {
        let _buffers = self.buffers.in_use();
        // The slots bound what runs; this only lets every range wait for one.
        let in_flight = ranges.len().max(1);
        stream::iter(ranges)
            .map(|(start, end)| {
                let each = each.clone();
                async move {
                    let _slot = self.range_slots.acquire().await?;
                    self.fetch_range(bucket, key, etag, (start, end), piece, each)
                        .await
                        .with_context(|| {
                            format!("download of {bucket}/{key} failed at bytes {start}..{end}")
                        })
                }
            })
            .buffer_unordered(in_flight)
            .try_collect()
            .await
    }

    /// The object's size and metadata; `None` if it does not exist.
    pub async fn head(&self, bucket: &str, key: &str) -> Result<Option<ObjectInfo>> {
        let out = match self
            .client
            .head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|e| e.is_not_found()) => return Ok(None),
            Err(e) => return Err(s3_error(e).context(format!("HEAD of {bucket}/{key} failed"))),
        };
        let size = out
            .content_length()
            .and_then(|n| u64::try_from(n).ok())
            .with_context(|| {
                format!("HEAD of {bucket}/{key}: the server sent no Content-Length")
            })?;
        Ok(Some(ObjectInfo::new(
            size,
            out.e_tag(),
            out.last_modified(),
            out.metadata(),
            out.content_type(),
        )))
    }

    fn part_size_for(&self, len: u64) -> u64 {
        self.part_size
            .max(MIN_PART_SIZE)
            .max(len.div_ceil(MAX_PARTS))
    }

    fn journal_path(&self, id: &str) -> Result<PathBuf> {
        let valid = (1..=128).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            bail!(
                "invalid resume id {id:?}: it must be 1 to 128 ASCII letters, digits, '-' or '_'"
            );
        }
        Ok(self.journal_dir.join(format!("{id}.json")))
    }

    /// `upload` above the threshold; `upload` describes the object, upload id still empty.
    async fn upload_multipart(
        &self,
        mut upload: Journal,
        source: Arc<dyn Source>,
        resume: Option<Resume>,
        progress: Progress,
    ) -> Result<UploadOutcome> {
        let (bucket, key) = (upload.bucket.clone(), upload.key.clone());
        let (bucket, key) = (bucket.as_str(), key.as_str());
        let failed = || format!("upload of {bucket}/{key} failed");
        let _buffers = self.buffers.in_use();
        let journal = match &resume {
            Some(resume) => Some(self.journal_path(&resume.id).with_context(failed)?),
            None => None,
        };
        let mut listed = HashMap::new();
        if let Some(old) = journal.as_deref().and_then(read_journal) {
            if old.same_object(&upload) {
                let parts = self
                    .list_parts(bucket, key, &old.upload_id)
                    .await
                    .with_context(|| {
                        format!("{}: listing the parts of the interrupted upload", failed())
                    })?;
                // Without parts (the upload was aborted or expired) it starts over.
                if let Some(parts) = parts {
                    listed = parts;
                    upload.upload_id = old.upload_id;
                    upload.part_size = old.part_size;
                }
            } else {
                // The journal was the only reference to that upload; left alone, its parts
                // would stay stored until a lifecycle rule removes them. Best effort: if
                // the abort fails, that is all that happens.
                let _ = self
                    .client
                    .abort_multipart_upload()
                    .bucket(&old.bucket)
                    .key(&old.key)
                    .upload_id(&old.upload_id)
                    .send()
                    .await;
            }
        }
        if upload.upload_id.is_empty() {
            let out = self
                .client
                .create_multipart_upload()
                .bucket(bucket)
                .key(key)
                .set_metadata(metadata_map(&upload.metadata))
                .set_content_type(upload.content_type.clone())
                .send()
                .await
                .map_err(s3_error)
                .with_context(|| format!("{}: CreateMultipartUpload", failed()))?;
            upload.upload_id = out
                .upload_id()
                .with_context(|| format!("{}: the server sent no upload id", failed()))?
                .to_string();
        }
        if let (Some(path), Some(resume)) = (&journal, resume) {
            upload.extra = resume.extra;
            write_journal(&self.journal_dir, path, &upload)
                .with_context(|| format!("{}: writing the journal {}", failed(), path.display()))?;
        }

        let count = upload.size.div_ceil(upload.part_size);
        let stopped = AtomicBool::new(false);
        let mut first_error = None;
        let mut sent = Vec::with_capacity(count as usize);
        let mut parts = stream::iter((1..=count).take_while(|_| !stopped.load(Ordering::Relaxed)))
            .map(|number| {
                let at = Part {
                    number,
                    offset: (number - 1) * upload.part_size,
                    len: upload
                        .part_size
                        .min(upload.size - (number - 1) * upload.part_size),
                };
                self.send_part(&upload, &source, at, listed.get(&number), &progress)
            })
            .buffer_unordered(self.jobs.max(1));
        while let Some(result) = parts.next().await {
            match result {
                Ok(part) => sent.push(part),
                Err(e) => {
                    // Parts in flight finish, so the next run need not send them again.
                    stopped.store(true, Ordering::Relaxed);
                    first_error.get_or_insert(e);
                }
            }
        }
        drop(parts);
        if let Some(e) = first_error {
            return Err(e);
        }

        sent.sort_by_key(|part| part.number);
        let completed = sent
            .iter()
            .map(|part| {
                CompletedPart::builder()
                    .part_number(part.number as i32)
                    .e_tag(&part.etag)
                    .build()
            })
            .collect();
        let out = self
            .client
            .complete_multipart_upload()
            .bucket(bucket)
            .key(key)
            .upload_id(&upload.upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(completed))
                    .build(),
            )
            .send()
            .await
            .map_err(s3_error)
            .with_context(|| format!("{}: CompleteMultipartUpload", failed()))?;
        if let Some(path) = &journal {
            // A journal left behind costs the next upload of this file one ListParts
            // (NoSuchUpload) before it starts over, so failing to remove it is no error.
            let _ = fs::remove_file(path);
        }
        Ok(UploadOutcome {
            etag: required_etag(out.e_tag()).with_context(failed)?,
            resumed_parts: sent.iter().filter(|part| part.resumed).count() as u32,
            parts: count as u32,
        })
    }

    /// Sends one part, unless `listed` (the part already on the server) has its size and
    /// the MD5 of its regenerated bytes.
    async fn send_part(
        &self,
        upload: &Journal,
        source: &Arc<dyn Source>,
        part: Part,
        listed: Option<&ListedPart>,
        progress: &Progress,
    ) -> Result<SentPart> {
        let (bucket, key) = (&upload.bucket, &upload.key);
        let listed_etag = listed
            .filter(|listed| listed.size == part.len)
            .map(|listed| listed.etag.clone());
        let send = async {
            let (source, check) = (source.clone(), listed_etag.clone());
            let buffers = self.buffers.clone();
            let read = tokio::task::spawn_blocking(move || {
                let mut buf = buffers.take(part.len as usize);
                source.read_at(part.offset, &mut buf)?;
                let uploaded = check.is_some_and(|etag| is_md5_of(&etag, &buf));
                Ok::<_, io::Error>((!uploaded).then(|| buf.freeze()))
            });
            let data = read.await?.context("reading the source")?;
            let Some(data) = data else {
                progress(part.len);
                return Ok::<_, anyhow::Error>(SentPart {
                    number: part.number,
                    etag: listed_etag.unwrap_or_default(),
                    resumed: true,
                });
            };
            let send = self
                .client
                .upload_part()
                .bucket(bucket)
                .key(key)
                .upload_id(&upload.upload_id)
                .part_number(part.number as i32)
                .body(ByteStream::from(data.clone()));
            let out = match self.sign_payload {
                true => send.send().await,
                false => send.customize().disable_payload_signing().send().await,
            };
            self.buffers.give_back(data, self.jobs);
            let out = out.map_err(s3_error)?;
            progress(part.len);
            Ok(SentPart {
                number: part.number,
                etag: required_etag(out.e_tag())?,
                resumed: false,
            })
        };
        send.await
            .with_context(|| format!("upload of {bucket}/{key} failed at part {}", part.number))
    }

    /// The parts of an upload by number, or `None` if the upload no longer exists.
    async fn list_parts(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<Option<HashMap<u64, ListedPart>>> {
        let mut parts = HashMap::new();
        let mut marker = None;
        loop {
            let request = self
                .client
                .list_parts()
                .bucket(bucket)
                .key(key)
                .upload_id(upload_id)
                .set_part_number_marker(marker.clone());
            let out = match request.send().await {
                Ok(out) => out,
                // NoSuchUpload
                Err(e) if status(&e) == Some(404) => return Ok(None),
                Err(e) => return Err(s3_error(e)),
            };
            for part in out.parts() {
                let number = part.part_number().and_then(|n| u64::try_from(n).ok());
                let size = part.size().and_then(|n| u64::try_from(n).ok());
                if let (Some(number), Some(size), Some(etag)) = (number, size, part.e_tag()) {
                    let etag = etag.to_string();
                    parts.insert(number, ListedPart { size, etag });
                }
            }
            if out.is_truncated() != Some(true) {
                return Ok(Some(parts));
            }
            let next = out.next_part_number_marker().map(str::to_string);
            if next.is_none() || next == marker {
                bail!("ListParts is truncated but names no next part");
            }
            marker = next;
        }
    }

    /// GETs `[start, end)` into `buf` (emptied first), retrying a body that breaks off.
    /// The body streams into `buf`, so a reused buffer costs no allocation. `Ok(None)`: no
    /// such object (404), or the range starts outside it (416).
    pub async fn get_range_into(
        &self,
        bucket: &str,
        key: &str,
        start: u64,
        end: u64,
        if_match: Option<&str>,
        buf: &mut BytesMut,
    ) -> Result<Option<GetObjectOutput>> {
        let mut attempt = 1;
        loop {
            let Some(mut out) = self.get_range(bucket, key, start, end, if_match).await? else {
                return Ok(None);
            };
            // What the server says it sends (less than asked at the object's end).
            let len = out.content_length().and_then(|n| u64::try_from(n).ok());
            buf.clear();
            buf.reserve(len.unwrap_or(0).min(end - start) as usize);
            let mut body = std::mem::take(&mut out.body);
            let read = async {
                while let Some(piece) = body.try_next().await? {
                    buf.extend_from_slice(&piece);
                }
                Ok::<_, aws_sdk_s3::primitives::ByteStreamError>(())
            };
            match read.await {
                Ok(()) => return Ok(Some(out)),
                Err(_) if attempt < BODY_ATTEMPTS => {
                    tokio::time::sleep(Duration::from_millis(250 << attempt)).await;
                    attempt += 1;
                }
                Err(e) => return Err(anyhow!(e).context("reading the response body")),
            }
        }
    }

    /// The response to a GET of `[start, end)`, its body still to be read. `Ok(None)`: no
    /// such object (404), or the range starts outside it (416).
    pub async fn get_range(
        &self,
        bucket: &str,
        key: &str,
        start: u64,
        end: u64,
        if_match: Option<&str>,
    ) -> Result<Option<GetObjectOutput>> {
        let sent = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .range(format!("bytes={start}-{}", end - 1))
            .set_if_match(if_match.map(str::to_string))
            .send()
            .await;
        match sent {
            Ok(out) => Ok(Some(out)),
            Err(e) => match status(&e) {
                Some(404 | 416) => Ok(None),
                Some(412) if if_match.is_some() => Err(anyhow!(
                    "the object was replaced during the download (its ETag changed)"
                )),
                _ => Err(s3_error(e)),
            },
        }
    }

    /// Streams `[start, end)` to `each` in pieces of `piece` bytes, each consumed on a
    /// blocking thread while the next one arrives, in two buffers of the pool. A body that
    /// breaks off is asked for again from where it broke.
    async fn fetch_range(
        &self,
        bucket: &str,
        key: &str,
        etag: Option<&str>,
        (start, end): (u64, u64),
        piece: usize,
        each: RangeConsumer,
    ) -> Result<()> {
        if end <= start || piece == 0 {
            bail!("empty range");
        }
        let mut filling = self.buffers.take_empty();
        let mut spare = Some(self.buffers.take_empty());
        // The piece being consumed, which gives its buffer back.
        let mut consuming: Option<tokio::task::JoinHandle<(Result<()>, BytesMut)>> = None;
        let (mut received, mut handed) = (start, start);
        let mut attempt = 1;
        while received < end {
            let out = self
                .get_range(bucket, key, received, end, etag)
                .await?
                .context("the object is gone or ends before the range")?;
            let mut body = out.body;
            loop {
                let mut bytes = match body.try_next().await {
                    Ok(Some(bytes)) => bytes,
                    Ok(None) if received < end => {
                        bail!("the server sent {} bytes", received - start)
                    }
                    Ok(None) => break,
                    Err(_) if attempt < BODY_ATTEMPTS => {
                        tokio::time::sleep(Duration::from_millis(250 << attempt)).await;
                        attempt += 1;
                        break;
                    }
                    Err(e) => return Err(anyhow!(e).context("reading the response body")),
                };
                if bytes.len() as u64 > end - received {
                    bail!("the server sent more than the range");
                }
                received += bytes.len() as u64;
                while !bytes.is_empty() {
                    let n = (piece - filling.len()).min(bytes.len());
                    filling.extend_from_slice(&bytes.split_to(n));
                    if filling.len() < piece && received < end {
                        continue;
                    }
                    let next = match (spare.take(), consuming.take()) {
                        (Some(buf), _) => buf,
                        (None, Some(done)) => {
                            let (done, buf) = done.await?;
                            done?;
                            buf
                        }
                        (None, None) => unreachable!("a buffer is spare or being consumed"),
                    };
                    let mut full = std::mem::replace(&mut filling, next);
                    filling.clear();
                    let (at, each) = (handed, each.clone());
                    handed += full.len() as u64;
                    consuming = Some(tokio::task::spawn_blocking(move || {
                        (each(at, &mut full), full)
                    }));
                }
            }
        }
        if let Some(done) = consuming {
            let (done, buf) = done.await?;
            self.buffers.give_back(buf.freeze(), 2 * RANGES_IN_FLIGHT);
            done?;
        }
        self.buffers
            .give_back(filling.freeze(), 2 * RANGES_IN_FLIGHT);
        Ok(())
    }
}

/// Buffers kept for later parts and ranges: a fresh 16 MiB buffer per part costs a page
/// fault per 4 KiB written into it, which was most of an upload's client time. At most
/// `jobs` buffers wait, so memory does not grow with the object, and they are freed when
/// the last multipart upload or ranged download using them ends.
#[derive(Default)]
struct PartBuffers {
    idle: Mutex<Vec<BytesMut>>,
    uploads: AtomicUsize,
}

impl PartBuffers {
    /// Keeps the buffers until the returned guard and all others are dropped.
    fn in_use(&self) -> BuffersInUse<'_> {
        self.uploads.fetch_add(1, Ordering::Relaxed);
        BuffersInUse(self)
    }

    /// An empty buffer, with the room of an earlier part or range if one is idle.
    fn take_empty(&self) -> BytesMut {
        let mut buf = self.idle.lock().unwrap().pop().unwrap_or_default();
        buf.clear();
        buf
    }

    /// `len` bytes of unspecified content: the caller overwrites them all.
    fn take(&self, len: usize) -> BytesMut {
        let mut buf = self.idle.lock().unwrap().pop().unwrap_or_default();
        buf.truncate(len);
        buf.resize(len, 0);
        buf
    }

    /// Keeps `data` for a later part, unless something (the SDK) still holds it.
    fn give_back(&self, data: Bytes, keep: usize) {
        if let Ok(buf) = data.try_into_mut() {
            let mut idle = self.idle.lock().unwrap();
            if idle.len() < keep {
                idle.push(buf);
            }
        }
    }
}

struct BuffersInUse<'a>(&'a PartBuffers);

impl Drop for BuffersInUse<'_> {
    fn drop(&mut self) {
        if self.0.uploads.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.0.idle.lock().unwrap().clear();
        }
    }
}

/// Where one part lies in the source.
#[derive(Clone, Copy)]
struct Part {
    number: u64,
    offset: u64,
    len: u64,
}

/// The object's size from the answer to a GET of `[start, asked_end)` with `len` bytes.
fn object_size(out: &GetObjectOutput, start: u64, asked_end: u64, len: u64) -> Result<u64> {
    match out.content_range() {
        Some(range) => range
            .rsplit_once('/')
            .and_then(|(_, total)| total.parse().ok())
            .with_context(|| format!("unexpected Content-Range {range:?}")),
        // A server may answer with the whole object instead (HTTP allows ignoring Range);
        // that is only what was asked for if it starts at 0 and fits.
        None if start == 0 && len <= asked_end => Ok(len),
        None => bail!("the server ignored the Range header"),
    }
}

fn check_range(bucket: &str, key: &str, start: u64, end: u64, size: u64) -> Result<()> {
    if start > end || end > size {
        bail!("download of {bucket}/{key} failed: bytes {start}..{end} asked for, but the object has {size} bytes");
    }
    Ok(())
}

fn metadata_map(meta: &[(String, String)]) -> Option<HashMap<String, String>> {
    (!meta.is_empty()).then(|| meta.iter().cloned().collect())
}

fn required_etag(etag: Option<&str>) -> Result<String> {
    etag.map(str::to_string).context("the server sent no ETag")
}

fn is_md5_of(etag: &str, data: &[u8]) -> bool {
    etag.trim_matches('"')
        .eq_ignore_ascii_case(&hex::encode(Md5::digest(data)))
}

fn read_journal(path: &Path) -> Option<Journal> {
    // An unreadable journal is no journal: the upload starts over.
    serde_json::from_slice(&fs::read(path).ok()?).ok()
}

/// Replaces `path` atomically with `journal`, readable by the owner only (it may hold secrets).
fn write_journal(dir: &Path, path: &Path, journal: &Journal) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let tmp = path.with_extension("json.tmp");
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(&serde_json::to_vec(journal)?)?;
    file.sync_all()?;
    fs::rename(&tmp, path)
}

fn status<E>(err: &SdkError<E, HttpResponse>) -> Option<u16> {
    err.raw_response()
        .map(|response| response.status().as_u16())
}

/// One line: HTTP status, S3 error code and message, or what failed before any answer.
fn s3_error<E>(err: SdkError<E, HttpResponse>) -> anyhow::Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match (err.as_service_error(), status(&err)) {
        (Some(service), Some(status)) => {
            let mut line = format!("S3 error {status}");
            if let Some(code) = service.code() {
                line.push_str(&format!(" {code}"));
            }
            if let Some(message) = service.message() {
                line.push_str(&format!(": {message}"));
            }
            anyhow!(line)
        }
        _ => anyhow!("{}", DisplayErrorContext(&err)),
    }
}

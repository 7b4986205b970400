//! Object operations: PUT, GET (whole or a range), HEAD (DELETE is in `delete`).
//!
//! (Over 800 lines with its tests: PUT's checksums and metadata, and the range and
//! precondition rules GET and HEAD share; issue 16's S3 semantics will split it by role.)

use crate::body::{self, Received};
use crate::buckets::timestamp;
use crate::ctx::{self, blocking, Cybs3};
use crate::identity::auth;
use crate::lifecycle;
use crate::object_lock::{self, lock_requested};
use crate::versioning::{self, Found};
use crate::{anomaly, archive, errors, sse, tagging};
use bytes::Bytes;
use futures::Stream;
use hyper::http::Extensions;
use s3s::dto::*;
use s3s::{s3_error, S3Error, S3ErrorCode, S3Response, S3Result, TrailingHeaders};
use std::pin::Pin;
use std::task::{Context, Poll};

/// Standard headers kept with an object and returned on GET/HEAD.
const CACHE_CONTROL: &str = "cache-control";
const CONTENT_DISPOSITION: &str = "content-disposition";
const CONTENT_ENCODING: &str = "content-encoding";
const CONTENT_LANGUAGE: &str = "content-language";
const EXPIRES: &str = "expires";
/// What S3 reports for an object stored without a Content-Type.
const DEFAULT_CONTENT_TYPE: &str = "binary/octet-stream";
/// Part numbers S3 accepts, for uploads and for `partNumber` reads.
pub(crate) const MAX_PART_NUMBER: i32 = 10_000;
/// The checksum type (COMPOSITE or FULL_OBJECT) an object was completed with,
/// among its stored headers (multipart uploads set it).
pub(crate) const CHECKSUM_TYPE_HEADER: &str = "x-amz-checksum-type";
const TAGGING_COUNT: &str = "x-amz-tagging-count";
/// Chunks (of up to one block) read ahead of a slow client.
const READ_AHEAD: usize = 2;

/// `acl`: the owner and ACL the new version gets (`acl::for_new_object`).
pub(crate) async fn put(
    s: &Cybs3,
    input: PutObjectInput,
    trailers: Option<TrailingHeaders>,
    acl: engine::Acl,
    may_travel: bool,
) -> S3Result<PutObjectOutput> {
    let customer = sse::customer_of!(input, may_travel)?;
    let expected = declared_length(input.content_length)?;
    let claimed = claimed_checksums!(input);
    let mut meta = object_meta(meta_fields!(input), &s.store)?;
    meta.acl = Some(acl);
    // A bad tag set is refused before the body is read.
    if let Some(header) = &input.tagging {
        meta.tags = tagging::parse_header(header)?;
    }
    let lock = lock_requested!(input)?;
    let asked = sse::asked!(input, customer.as_ref());
    let (mut writer, enc) = sse::writer(s, &input.bucket, &input.key, asked).await?;
    writer.set_class(meta.storage_class.as_deref());
    writer.set_lock(lock);
    let mut condition = write_condition(input.if_match.as_ref(), input.if_none_match.as_ref());
    let freeze = anomaly::ops::guard_write(s, &input.bucket, &mut condition)?;
    writer.set_condition(condition);
    let payload = input.body.unwrap_or_else(|| s3s::Body::empty().into());
    let Received {
        writer,
        md5,
        checksums,
        sample,
    } = receive_checked(
        writer,
        payload,
        expected,
        input.checksum_algorithm.as_ref(),
        claimed,
        input.content_md5.as_ref(),
        trailers,
    )
    .await?;

    meta.etag = hex::encode(md5);
    meta.checksums = body::stored_checksums(&checksums);
    let etag = meta.etag.clone();
    let (version, _) = commit(s, &input.bucket, writer, meta, sample)
        .await
        .map_err(|e| anomaly::ops::refused(e, freeze))?;
    let expiration = lifecycle::expiration_of_new(s, &input.bucket, &version).await?;
    Ok(PutObjectOutput {
        expiration,
        e_tag: Some(ETag::Strong(etag)),
        server_side_encryption: enc.sse,
        ssekms_key_id: enc.kms_key,
        bucket_key_enabled: enc.bucket_key,
        sse_customer_algorithm: enc.customer_algorithm,
        sse_customer_key_md5: enc.customer_key_md5,
        size: Some(version.size as i64),
        version_id: written_version_id(&version.version_id),
        checksum_crc32: checksums.checksum_crc32,
        checksum_crc32c: checksums.checksum_crc32c,
        checksum_crc64nvme: checksums.checksum_crc64nvme,
        checksum_sha1: checksums.checksum_sha1,
        checksum_sha256: checksums.checksum_sha256,
        ..Default::default()
    })
}

/// Commit a PUT and learn the bucket's versioning state, which decides whether the
/// new version's id is shown; the anomaly detector learns whether it replaced an
/// object, and what its first bytes (`sample`) look like.
pub(crate) async fn commit(
    s: &Cybs3,
    bucket: &str,
    writer: engine::ObjectWriter,
    meta: engine::ObjectMeta,
    sample: Option<anomaly::entropy::Sample>,
) -> S3Result<(engine::ObjectVersion, engine::Versioning)> {
    let store = s.store.clone();
    let bucket = bucket.to_string();
    let (v, state, replaced) = blocking(move || {
        let engine::Written {
            version: v,
            replaced,
        } = writer.finish(meta)?;
        let state = match v.version_id.as_str() {
            versioning::NULL_VERSION => store
                .bucket(&bucket)
                .map_or(engine::Versioning::Unversioned, |r| r.versioning),
            // Only an Enabled bucket mints ids.
            _ => engine::Versioning::Enabled,
        };
        Ok((v, state, replaced))
    })
    .await?;
    anomaly::ops::wrote(replaced, sample);
    Ok((v, state))
}

/// A body's declared length, refused up front when S3 would refuse it (PUT and UploadPart
/// share the 5 GiB limit).
pub(crate) fn declared_length(content_length: Option<i64>) -> S3Result<Option<u64>> {
    match content_length {
        Some(n) if n < 0 => Err(s3_error!(InvalidArgument, "negative Content-Length")),
        Some(n) if n as u64 > body::MAX_PUT_SIZE => Err(s3_error!(
            EntityTooLarge,
            "Your proposed upload exceeds the maximum allowed object size."
        )),
        Some(n) => Ok(Some(n as u64)),
        None => Ok(None),
    }
}

/// Trailing checksums (aws-chunked uploads) are known only once the body is read;
/// a value in a header wins over one in a trailer.
/// Stream a request body into `writer`, then check it against every digest the
/// request claims: Content-MD5, and `x-amz-checksum-*` in headers or trailers.
pub(crate) async fn receive_checked(
    writer: engine::ObjectWriter,
    payload: StreamingBlob,
    expected: Option<u64>,
    algorithm: Option<&ChecksumAlgorithm>,
    mut claimed: Checksum,
    content_md5: Option<&String>,
    trailers: Option<TrailingHeaders>,
) -> S3Result<Received> {
    let hasher = body::hasher_for(algorithm, &claimed);
    let received = body::receive(writer, payload, expected, hasher).await?;
    if let Some(header) = content_md5 {
        body::check_content_md5(header, &received.md5)?;
    }
    add_trailing_claims(&mut claimed, trailers);
    body::check_checksums(&claimed, &received.checksums)?;
    Ok(received)
}

fn add_trailing_claims(claimed: &mut Checksum, trailers: Option<TrailingHeaders>) {
    if let Some(t) = trailers.and_then(|t| t.take()) {
        let late = body::claimed_from(&t);
        claimed.checksum_crc32 = claimed.checksum_crc32.take().or(late.checksum_crc32);
        claimed.checksum_crc32c = claimed.checksum_crc32c.take().or(late.checksum_crc32c);
        claimed.checksum_crc64nvme = claimed
            .checksum_crc64nvme
            .take()
            .or(late.checksum_crc64nvme);
        claimed.checksum_sha1 = claimed.checksum_sha1.take().or(late.checksum_sha1);
        claimed.checksum_sha256 = claimed.checksum_sha256.take().or(late.checksum_sha256);
    }
}

/// The request fields an object keeps, borrowed from any input that carries them
/// (PutObject, CreateMultipartUpload, CopyObject with REPLACE).
pub(crate) struct MetaFields<'a> {
    pub content_type: Option<&'a String>,
    pub cache_control: Option<&'a String>,
    pub content_disposition: Option<&'a String>,
    pub content_encoding: Option<&'a String>,
    pub content_language: Option<&'a String>,
    pub expires: Option<&'a Timestamp>,
    pub metadata: Option<&'a Metadata>,
    pub storage_class: Option<&'a StorageClass>,
}

/// [`MetaFields`] from an input struct; the s3s inputs name these fields alike.
macro_rules! meta_fields {
    ($input:expr) => {
        $crate::objects::MetaFields {
            content_type: $input.content_type.as_ref(),
            cache_control: $input.cache_control.as_ref(),
            content_disposition: $input.content_disposition.as_ref(),
            content_encoding: $input.content_encoding.as_ref(),
            content_language: $input.content_language.as_ref(),
            expires: $input.expires.as_ref(),
            metadata: $input.metadata.as_ref(),
            storage_class: $input.storage_class.as_ref(),
        }
    };
}
pub(crate) use meta_fields;

/// The `x-amz-checksum-*` values an input claims (PutObject, UploadPart, CompletedPart
/// name them alike).
macro_rules! claimed_checksums {
    ($input:expr) => {
        s3s::dto::Checksum {
            checksum_crc32: $input.checksum_crc32.clone(),
            checksum_crc32c: $input.checksum_crc32c.clone(),
            checksum_crc64nvme: $input.checksum_crc64nvme.clone(),
            checksum_sha1: $input.checksum_sha1.clone(),
            checksum_sha256: $input.checksum_sha256.clone(),
            ..Default::default()
        }
    };
}
pub(crate) use claimed_checksums;

/// The Content-Encoding to keep: `aws-chunked` describes how the request body was sent,
/// not the object, so S3 drops it (`gzip, aws-chunked` is stored as `gzip`, and
/// `aws-chunked` alone stores none).
fn stored_content_encoding(declared: &str) -> Option<String> {
    let chunked = |e: &str| e.trim().eq_ignore_ascii_case("aws-chunked");
    if !declared.split(',').any(chunked) {
        return Some(declared.to_string());
    }
    let kept: Vec<&str> = declared
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty() && !chunked(e))
        .collect();
    (!kept.is_empty()).then(|| kept.join(", "))
}

pub(crate) fn object_meta(
    f: MetaFields<'_>,
    store: &engine::Store,
) -> S3Result<engine::ObjectMeta> {
    let mut headers = Vec::new();
    let content_encoding = f.content_encoding.and_then(|e| stored_content_encoding(e));
    for (name, value) in [
        (CACHE_CONTROL, f.cache_control.cloned()),
        (CONTENT_DISPOSITION, f.content_disposition.cloned()),
        (CONTENT_ENCODING, content_encoding),
        (CONTENT_LANGUAGE, f.content_language.cloned()),
    ] {
        if let Some(v) = value {
            headers.push((name.to_string(), v));
        }
    }
    if let Some(expires) = f.expires {
        let mut date = Vec::new();
        if expires.format(TimestampFormat::HttpDate, &mut date).is_ok() {
            headers.push((
                EXPIRES.to_string(),
                String::from_utf8_lossy(&date).into_owned(),
            ));
        }
    }
    let mut user: Vec<(String, String)> = f
        .metadata
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
        .collect();
    user.sort();
    Ok(engine::ObjectMeta {
        content_type: f.content_type.cloned(),
        headers,
        user,
        storage_class: storage_class(store, f.storage_class)?,
        ..Default::default()
    })
}

/// The storage class a write asks for, as stored (`None`: STANDARD). A class other
/// than STANDARD must be bound (`cybs3 admin tier add`), to a pool where its data then
/// goes, or to a remote tier the engine's queue then moves it to: an unbound one is
/// refused, not kept as a label nothing acts on.
pub(crate) fn storage_class(
    store: &engine::Store,
    asked: Option<&StorageClass>,
) -> S3Result<Option<String>> {
    match asked.map(StorageClass::as_str) {
        None | Some(StorageClass::STANDARD) => Ok(None),
        Some(other) => match store.storage_class(other) {
            Some(_) => Ok(Some(other.to_string())),
            None => Err(s3_error!(
            InvalidStorageClass,
            "The storage class you specified is not valid: this server has no storage class {other}"
            )),
        },
    }
}

/// GetObject. `extensions` are the request's: a missing key is told only to a caller
/// who may list the bucket ([`auth::missing_key`]).
pub(crate) async fn get(
    s: &Cybs3,
    input: GetObjectInput,
    extensions: &Extensions,
) -> S3Result<GetObjectOutput> {
    let (bucket, key, vid) = (input.bucket, input.key, input.version_id);
    // Also answers delete markers (404/405 with their headers) and bad version ids.
    let customer = sse::customer_of!(input, sse::key_may_travel(extensions))?;
    let Found {
        object: mut reader,
        versioning: vstate,
        lifecycle,
    } = match versioning::open(s, bucket.clone(), key, vid).await {
        Ok(opened) => opened,
        Err(e) => return Err(auth::missing_key(extensions, e).await),
    };
    reader
        .unlock(customer.as_ref().map(|c| &c.key))
        .map_err(errors::from_engine)?;
    let v = reader.version().clone();
    archive::check_readable(&s.store, &v)?;
    let expiration = lifecycle::expiration(s, lifecycle.as_deref(), &v)?;
    check_preconditions(
        &v,
        input.if_match.as_ref(),
        input.if_none_match.as_ref(),
        input.if_modified_since.as_ref(),
        input.if_unmodified_since.as_ref(),
    )?;
    // For usage's access classes: a sample, never waited on.
    s.store.note_read(&bucket, &v.key);
    let span = Span::select(&v, input.range.as_ref(), input.part_number)?;
    let chunks = reader
        .range(span.start, span.end)
        .map_err(errors::from_engine)?;
    // Checksums cover the whole object; a range cannot be checked against them.
    let h = Described::new(
        &v,
        vstate,
        checksums_wanted(input.checksum_mode.as_ref()) && !span.partial,
    );
    let enc = sse::headers(s, sse::of(&v));
    Ok(GetObjectOutput {
        server_side_encryption: enc.sse,
        ssekms_key_id: enc.kms_key,
        bucket_key_enabled: enc.bucket_key,
        sse_customer_algorithm: enc.customer_algorithm,
        sse_customer_key_md5: enc.customer_key_md5,
        body: Some(StreamingBlob::wrap(ChunkStream::spawn(chunks))),
        content_length: Some((span.end - span.start) as i64),
        content_range: span.content_range(v.size),
        parts_count: span.parts_count,
        tag_count: tagging::count(&v.meta.tags),
        accept_ranges: Some("bytes".into()),
        e_tag: h.e_tag,
        last_modified: h.last_modified,
        content_type: h.content_type,
        metadata: h.metadata,
        cache_control: h.cache_control,
        content_disposition: h.content_disposition,
        content_encoding: h.content_encoding,
        content_language: h.content_language,
        expires: h.expires,
        version_id: h.version_id,
        storage_class: h.storage_class,
        checksum_crc32: h.checksums.checksum_crc32,
        checksum_crc32c: h.checksums.checksum_crc32c,
        checksum_crc64nvme: h.checksums.checksum_crc64nvme,
        checksum_sha1: h.checksums.checksum_sha1,
        checksum_sha256: h.checksums.checksum_sha256,
        checksum_type: h.checksums.checksum_type,
        object_lock_mode: h.lock.mode,
        object_lock_retain_until_date: h.lock.until,
        object_lock_legal_hold_status: h.lock.legal_hold,
        replication_status: h.replication,
        expiration,
        ..Default::default()
    })
}

/// HeadObject; a missing key as for [`get`].
pub(crate) async fn head(
    s: &Cybs3,
    input: HeadObjectInput,
    extensions: &Extensions,
) -> S3Result<S3Response<HeadObjectOutput>> {
    let (bucket, key, vid) = (input.bucket, input.key, input.version_id);
    let Found {
        object: v,
        versioning: vstate,
        lifecycle,
    } = match versioning::head(s, bucket, key, vid).await {
        Ok(found) => found,
        Err(e) => return Err(auth::missing_key(extensions, e).await),
    };
    let customer = sse::customer_of!(input, sse::key_may_travel(extensions))?;
    engine::check_customer(&v, customer.as_ref().map(|c| &c.key)).map_err(errors::from_engine)?;
    let expiration = lifecycle::expiration(s, lifecycle.as_deref(), &v)?;
    check_preconditions(
        &v,
        input.if_match.as_ref(),
        input.if_none_match.as_ref(),
        input.if_modified_since.as_ref(),
        input.if_unmodified_since.as_ref(),
    )?;
    let span = Span::select(&v, input.range.as_ref(), input.part_number)?;
    let h = Described::new(
        &v,
        vstate,
        checksums_wanted(input.checksum_mode.as_ref()) && !span.partial,
    );
    let enc = sse::headers(s, sse::of(&v));
    let mut resp = S3Response::new(HeadObjectOutput {
        server_side_encryption: enc.sse,
        ssekms_key_id: enc.kms_key,
        bucket_key_enabled: enc.bucket_key,
        sse_customer_algorithm: enc.customer_algorithm,
        sse_customer_key_md5: enc.customer_key_md5,
        content_length: Some((span.end - span.start) as i64),
        content_range: span.content_range(v.size),
        parts_count: span.parts_count,
        accept_ranges: Some("bytes".into()),
        e_tag: h.e_tag,
        last_modified: h.last_modified,
        content_type: h.content_type,
        metadata: h.metadata,
        cache_control: h.cache_control,
        content_disposition: h.content_disposition,
        content_encoding: h.content_encoding,
        content_language: h.content_language,
        expires: h.expires,
        version_id: h.version_id,
        storage_class: h.storage_class,
        checksum_crc32: h.checksums.checksum_crc32,
        checksum_crc32c: h.checksums.checksum_crc32c,
        checksum_crc64nvme: h.checksums.checksum_crc64nvme,
        checksum_sha1: h.checksums.checksum_sha1,
        checksum_sha256: h.checksums.checksum_sha256,
        checksum_type: h.checksums.checksum_type,
        object_lock_mode: h.lock.mode,
        object_lock_retain_until_date: h.lock.until,
        object_lock_legal_hold_status: h.lock.legal_hold,
        replication_status: h.replication,
        expiration,
        restore: archive::restore_header(&s.store, &v),
        ..Default::default()
    });
    // S3 sends the tag count on HEAD too, though the HeadObject model has no field for it.
    if let Some(n) = tagging::count(&v.meta.tags) {
        resp.headers
            .insert(TAGGING_COUNT, hyper::header::HeaderValue::from(n));
    }
    Ok(resp)
}

/// The response fields GET and HEAD share, from a stored version.
pub(crate) struct Described {
    pub e_tag: Option<ETag>,
    pub last_modified: Option<Timestamp>,
    pub content_type: Option<String>,
    pub metadata: Option<Metadata>,
    pub cache_control: Option<String>,
    pub content_disposition: Option<String>,
    pub content_encoding: Option<String>,
    pub content_language: Option<String>,
    pub expires: Option<Timestamp>,
    pub version_id: Option<String>,
    pub storage_class: Option<StorageClass>,
    pub checksums: Checksum,
    pub lock: object_lock::Shown,
    pub replication: Option<ReplicationStatus>,
}

impl Described {
    pub(crate) fn new(
        v: &engine::ObjectVersion,
        vstate: engine::Versioning,
        with_checksums: bool,
    ) -> Described {
        let m = &v.meta;
        let header = |name: &str| {
            m.headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, value)| value.clone())
        };
        let checksum = |name: &str| {
            with_checksums
                .then(|| m.checksums.iter().find(|(n, _)| n == name))
                .flatten()
                .map(|(_, value)| value.clone())
        };
        Described {
            e_tag: Some(ETag::Strong(m.etag.clone())),
            last_modified: Some(last_modified(v)),
            content_type: Some(
                m.content_type
                    .clone()
                    .unwrap_or_else(|| DEFAULT_CONTENT_TYPE.to_string()),
            ),
            metadata: (!m.user.is_empty()).then(|| m.user.iter().cloned().collect()),
            cache_control: header(CACHE_CONTROL),
            content_disposition: header(CONTENT_DISPOSITION),
            content_encoding: header(CONTENT_ENCODING),
            content_language: header(CONTENT_LANGUAGE),
            expires: header(EXPIRES)
                .and_then(|d| Timestamp::parse(TimestampFormat::HttpDate, &d).ok()),
            version_id: versioning::shown_version_id(vstate, &v.version_id),
            storage_class: m.storage_class.clone().map(StorageClass::from),
            lock: object_lock::shown(v),
            replication: engine::status_of(v)
                .map(|s| ReplicationStatus::from(s.name().to_string())),
            checksums: Checksum {
                checksum_crc32: checksum("crc32"),
                checksum_crc32c: checksum("crc32c"),
                checksum_crc64nvme: checksum("crc64nvme"),
                checksum_sha1: checksum("sha1"),
                checksum_sha256: checksum("sha256"),
                checksum_type: (with_checksums && !m.checksums.is_empty()).then(|| {
                    ChecksumType::from(
                        header(CHECKSUM_TYPE_HEADER)
                            .unwrap_or_else(|| ChecksumType::FULL_OBJECT.to_string()),
                    )
                }),
            },
        }
    }
}

fn checksums_wanted(mode: Option<&ChecksumMode>) -> bool {
    mode.is_some_and(|m| m.as_str().eq_ignore_ascii_case(ChecksumMode::ENABLED))
}

/// The version id to report for a copy's source or a tagging call's object: the
/// "null" version counts only once the bucket has had versioning, which takes a look
/// at the bucket.
pub(crate) async fn shown_version(s: &Cybs3, bucket: &str, version_id: &str) -> Option<String> {
    if version_id != versioning::NULL_VERSION {
        return version_id_shown(engine::Versioning::Enabled, version_id);
    }
    let store = s.store.clone();
    let bucket = bucket.to_string();
    let state = blocking(move || store.bucket(&bucket))
        .await
        .map_or(engine::Versioning::Unversioned, |r| r.versioning);
    version_id_shown(state, version_id)
}

fn version_id_shown(state: engine::Versioning, version_id: &str) -> Option<String> {
    versioning::shown_version_id(state, version_id)
}

/// The `x-amz-version-id` a write (PUT, copy, completed upload) answers with. Only a
/// versioning-enabled bucket mints ids; the "null" version written while versioning is
/// off or suspended is not named (AWS sends no header then).
pub(crate) fn written_version_id(version_id: &str) -> Option<String> {
    (version_id != versioning::NULL_VERSION && !version_id.is_empty())
        .then(|| version_id.to_string())
}

/// HTTP dates have second precision: compare and report modification times in whole seconds.
pub(crate) fn last_modified(v: &engine::ObjectVersion) -> Timestamp {
    timestamp(v.mtime_ns / 1_000_000_000 * 1_000_000_000)
}

/// The byte range `start..end` a `Range` header selects, or `None` for the whole object.
pub(crate) fn resolve_range(range: Option<&Range>, size: u64) -> S3Result<Option<(u64, u64)>> {
    let Some(range) = range else { return Ok(None) };
    match range.check(size) {
        Ok(r) if !r.is_empty() => Ok(Some((r.start, r.end))),
        _ => {
            let mut e = s3_error!(InvalidRange, "The requested range is not satisfiable");
            // RFC 9110 §14.4: a 416 names the current length, so the client can retry.
            let mut h = hyper::HeaderMap::new();
            h.insert(
                hyper::header::CONTENT_RANGE,
                hyper::header::HeaderValue::from_str(&format!("bytes */{size}"))
                    .expect("digits are a valid header value"),
            );
            e.set_headers(h);
            Err(e)
        }
    }
}

/// The bytes a GET/HEAD answers with: all of them, a `Range`, or one part (`partNumber`).
#[derive(Debug, PartialEq)]
struct Span {
    start: u64,
    end: u64,
    /// Less than the whole object was asked for (206 with Content-Range).
    partial: bool,
    /// `x-amz-mp-parts-count`, for a part of a multipart object.
    parts_count: Option<i32>,
}

impl Span {
    fn select(
        v: &engine::ObjectVersion,
        range: Option<&Range>,
        part: Option<i32>,
    ) -> S3Result<Span> {
        let Some(n) = part else {
            let range = resolve_range(range, v.size)?;
            let (start, end) = range.unwrap_or((0, v.size));
            return Ok(Span {
                start,
                end,
                partial: range.is_some(),
                parts_count: None,
            });
        };
        if range.is_some() {
            return Err(s3_error!(
                InvalidRequest,
                "Cannot specify both Range header and partNumber query parameter"
            ));
        }
        if !(1..=MAX_PART_NUMBER).contains(&n) {
            return Err(s3_error!(
                InvalidArgument,
                "Part number must be an integer between 1 and 10000, inclusive"
            ));
        }
        let unsatisfiable = || {
            let mut e = S3Error::with_message(
                S3ErrorCode::Custom("InvalidPartNumber".into()),
                "The requested partnumber is not satisfiable",
            );
            // AWS answers 400 here, not the 416 of an unsatisfiable Range.
            e.set_status_code(hyper::StatusCode::BAD_REQUEST);
            e
        };
        // Only a completed multipart upload has an ETag with a part count suffix;
        // anything else is one part, number 1.
        if !v.meta.etag.contains('-') {
            return match n {
                1 => Ok(Span {
                    start: 0,
                    end: v.size,
                    partial: true,
                    parts_count: None,
                }),
                _ => Err(unsatisfiable()),
            };
        }
        let index = n as usize - 1;
        if index >= v.parts.len() {
            return Err(unsatisfiable());
        }
        let size = |i| engine::part_plain_size(v, i);
        let start: u64 = (0..index).map(size).sum();
        Ok(Span {
            start,
            end: start + size(index),
            partial: true,
            parts_count: Some(v.parts.len() as i32),
        })
    }

    fn content_range(&self, size: u64) -> Option<String> {
        // An empty span has no byte positions to name.
        (self.partial && self.end > self.start)
            .then(|| format!("bytes {}-{}/{size}", self.start, self.end - 1))
    }
}

/// A conditional write (PutObject, CompleteMultipartUpload): the engine checks it
/// against the current version when the write commits, so two racing creates with
/// `If-None-Match: *` cannot both succeed.
pub(crate) fn write_condition(
    if_match: Option<&ETagCondition>,
    if_none_match: Option<&ETagCondition>,
) -> engine::WriteCondition {
    let each = |c: &ETagCondition| match c {
        ETagCondition::Any => engine::ETagMatch::Any,
        ETagCondition::ETag(e) => engine::ETagMatch::Is(e.value().to_string()),
    };
    engine::WriteCondition {
        if_match: if_match.map(each),
        if_none_match: if_none_match.map(each),
    }
}

/// Conditional GET/HEAD, in the order RFC 9110 (and S3) evaluate them.
pub(crate) fn check_preconditions(
    v: &engine::ObjectVersion,
    if_match: Option<&ETagCondition>,
    if_none_match: Option<&ETagCondition>,
    if_modified_since: Option<&Timestamp>,
    if_unmodified_since: Option<&Timestamp>,
) -> S3Result<()> {
    let etag = ETag::Strong(v.meta.etag.clone());
    let matches = |c: &ETagCondition| match c {
        ETagCondition::Any => true,
        ETagCondition::ETag(e) => e.value() == etag.value(),
    };
    let mtime = last_modified(v);
    match if_match {
        Some(c) if !matches(c) => return Err(s3_error!(PreconditionFailed)),
        Some(_) => {}
        None => {
            if if_unmodified_since.is_some_and(|t| mtime > *t) {
                return Err(s3_error!(PreconditionFailed));
            }
        }
    }
    let unchanged = match if_none_match {
        Some(c) => matches(c),
        None => if_modified_since.is_some_and(|t| mtime <= *t),
    };
    if unchanged {
        return Err(not_modified(v));
    }
    Ok(())
}

/// 304, carrying the validators a cache needs to refresh its copy (RFC 9110 15.4.5).
fn not_modified(v: &engine::ObjectVersion) -> s3s::S3Error {
    let mut err = s3_error!(NotModified);
    let mut headers = hyper::HeaderMap::new();
    if let Ok(etag) = hyper::header::HeaderValue::from_str(&format!("\"{}\"", v.meta.etag)) {
        headers.insert(hyper::header::ETAG, etag);
    }
    let mut date = Vec::new();
    if last_modified(v)
        .format(TimestampFormat::HttpDate, &mut date)
        .is_ok()
    {
        if let Ok(date) = hyper::header::HeaderValue::from_bytes(&date) {
            headers.insert(hyper::header::LAST_MODIFIED, date);
        }
    }
    err.set_headers(headers);
    err
}

/// An object's bytes as a response body. Each chunk is read on a blocking thread
/// while the previous ones are sent; no thread waits on a slow client, and at
/// most `READ_AHEAD` chunks are buffered.
/// A body read ahead on its own task, as chunks come through a channel.
pub(crate) struct ChunkStream(
    pub(crate) tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>,
);

impl ChunkStream {
    fn spawn(mut reader: engine::RangeRead) -> ChunkStream {
        let (tx, rx) = tokio::sync::mpsc::channel(READ_AHEAD);
        tokio::spawn(async move {
            loop {
                let (r, next) = match ctx::spawn(move || {
                    let next = reader.next_chunk();
                    (reader, next)
                })
                .await
                {
                    Ok(done) => done,
                    Err(e) => {
                        let _ = tx.send(Err(std::io::Error::other(e))).await;
                        return;
                    }
                };
                reader = r;
                let item = match next {
                    Ok(Some(chunk)) => Ok(Bytes::from(chunk)),
                    Ok(None) => return,
                    Err(e) => {
                        // The client sees a truncated body (the length was announced).
                        tracing::error!(key = %reader.version().key, "read failed mid-body: {e}");
                        Err(std::io::Error::other(e))
                    }
                };
                let failed = item.is_err();
                // A closed channel means the client went away: stop reading.
                if tx.send(item).await.is_err() || failed {
                    return;
                }
            }
        });
        ChunkStream(rx)
    }
}

impl Stream for ChunkStream {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(h: &str) -> Range {
        Range::parse(h).unwrap()
    }

    #[test]
    fn ranges_resolve_to_half_open_byte_spans() {
        assert_eq!(resolve_range(None, 10).unwrap(), None);
        assert_eq!(
            resolve_range(Some(&range("bytes=2-4")), 10).unwrap(),
            Some((2, 5))
        );
        assert_eq!(
            resolve_range(Some(&range("bytes=2-")), 10).unwrap(),
            Some((2, 10))
        );
        assert_eq!(
            resolve_range(Some(&range("bytes=-3")), 10).unwrap(),
            Some((7, 10))
        );
        // Past the end is clipped, as S3 does.
        assert_eq!(
            resolve_range(Some(&range("bytes=5-99")), 10).unwrap(),
            Some((5, 10))
        );
        assert_eq!(
            resolve_range(Some(&range("bytes=-99")), 10).unwrap(),
            Some((0, 10))
        );
    }

    #[test]
    fn unsatisfiable_ranges_are_416() {
        for (h, size) in [
            ("bytes=10-", 10),
            ("bytes=10-20", 10),
            ("bytes=-0", 10),
            ("bytes=-5", 0),
            ("bytes=0-", 0),
        ] {
            let e = resolve_range(Some(&range(h)), size).unwrap_err();
            assert_eq!(e.code().as_str(), "InvalidRange", "{h}");
            assert_eq!(e.status_code().unwrap().as_u16(), 416);
            let range = e.headers().unwrap().get("content-range").unwrap();
            assert_eq!(range, &format!("bytes */{size}"), "{h}");
        }
    }

    fn version(etag: &str, mtime_s: u64) -> engine::ObjectVersion {
        let mut v = crate::testing::version("k");
        v.mtime_ns = mtime_s * 1_000_000_000 + 123;
        v.meta.etag = etag.into();
        v
    }

    fn with_parts(etag: &str, sizes: &[u64]) -> engine::ObjectVersion {
        let mut v = version(etag, 1);
        v.parts = sizes
            .iter()
            .enumerate()
            .map(|(i, &size)| engine::PartEntry {
                number: i as u32 + 1,
                size,
                etag: String::new(),
                checksums: Vec::new(),
                data: engine::PartData::Inline { id: [0; 16] },
            })
            .collect();
        v.size = sizes.iter().sum();
        v
    }

    #[test]
    fn aws_chunked_is_not_a_stored_content_encoding() {
        assert_eq!(
            stored_content_encoding("gzip, aws-chunked").as_deref(),
            Some("gzip")
        );
        assert_eq!(
            stored_content_encoding("aws-chunked,br,gzip").as_deref(),
            Some("br, gzip")
        );
        assert_eq!(stored_content_encoding("aws-chunked"), None);
        assert_eq!(
            stored_content_encoding("gzip,br").as_deref(),
            Some("gzip,br")
        );
    }

    #[test]
    fn part_numbers_select_one_part() {
        let mp = with_parts("abc-3", &[10, 10, 4]);
        let span = Span::select(&mp, None, Some(2)).unwrap();
        assert_eq!((span.start, span.end, span.parts_count), (10, 20, Some(3)));
        assert_eq!(
            span.content_range(mp.size).as_deref(),
            Some("bytes 10-19/24")
        );
        let last = Span::select(&mp, None, Some(3)).unwrap();
        assert_eq!((last.start, last.end), (20, 24));
        let e = Span::select(&mp, None, Some(4)).unwrap_err();
        assert_eq!(e.code().as_str(), "InvalidPartNumber");
        assert_eq!(e.status_code().unwrap().as_u16(), 400);
        for bad in [0, 10_001] {
            let e = Span::select(&mp, None, Some(bad)).unwrap_err();
            assert_eq!(e.code().as_str(), "InvalidArgument");
        }
        let e = Span::select(&mp, Some(&range("bytes=0-1")), Some(1)).unwrap_err();
        assert_eq!(e.code().as_str(), "InvalidRequest");

        // A single-part object is its own part 1, with no parts count.
        let single = with_parts("abc", &[7]);
        let span = Span::select(&single, None, Some(1)).unwrap();
        assert_eq!((span.start, span.end, span.parts_count), (0, 7, None));
        assert!(Span::select(&single, None, Some(2)).is_err());
        // Without partNumber nothing is partial unless a Range says so.
        let whole = Span::select(&mp, None, None).unwrap();
        assert!(!whole.partial && whole.content_range(24).is_none());
    }

    #[test]
    fn preconditions_follow_rfc_order() {
        let v = version("abc", 1000);
        let tag = |s: &str| ETagCondition::ETag(ETag::Strong(s.into()));
        let at = |s: u64| timestamp(s * 1_000_000_000);
        let code = |r: S3Result<()>| r.map_err(|e| e.code().as_str().to_string()).err();
        assert_eq!(
            code(check_preconditions(&v, Some(&tag("abc")), None, None, None)),
            None
        );
        assert_eq!(
            code(check_preconditions(&v, Some(&tag("x")), None, None, None)).as_deref(),
            Some("PreconditionFailed")
        );
        // A matching If-Match overrides a failing If-Unmodified-Since.
        assert_eq!(
            code(check_preconditions(
                &v,
                Some(&tag("abc")),
                None,
                None,
                Some(&at(10))
            )),
            None
        );
        assert_eq!(
            code(check_preconditions(&v, None, None, None, Some(&at(999)))).as_deref(),
            Some("PreconditionFailed")
        );
        assert_eq!(
            code(check_preconditions(&v, None, None, None, Some(&at(1000)))),
            None
        );
        assert_eq!(
            code(check_preconditions(&v, None, Some(&tag("abc")), None, None)).as_deref(),
            Some("NotModified")
        );
        assert_eq!(
            code(check_preconditions(
                &v,
                None,
                Some(&ETagCondition::Any),
                None,
                None
            ))
            .as_deref(),
            Some("NotModified")
        );
        // A non-matching If-None-Match overrides If-Modified-Since.
        assert_eq!(
            code(check_preconditions(
                &v,
                None,
                Some(&tag("x")),
                Some(&at(2000)),
                None
            )),
            None
        );
        assert_eq!(
            code(check_preconditions(&v, None, None, Some(&at(1000)), None)).as_deref(),
            Some("NotModified")
        );
        assert_eq!(
            code(check_preconditions(&v, None, None, Some(&at(999)), None)),
            None
        );
    }
}

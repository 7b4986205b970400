//! Object operations: PUT, GET (whole or a range), HEAD, DELETE.

use crate::body::{self, Received};
use crate::buckets::timestamp;
use crate::errors;
use crate::service::{blocking, Cybs3};
use bytes::Bytes;
use futures::Stream;
use s3s::dto::*;
use s3s::{s3_error, S3Result, TrailingHeaders};
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
/// Chunks (of up to one block) read ahead of a slow client.
const READ_AHEAD: usize = 2;

pub(crate) async fn put(
    s: &Cybs3,
    input: PutObjectInput,
    trailers: Option<TrailingHeaders>,
) -> S3Result<PutObjectOutput> {
    let expected = match input.content_length {
        Some(n) if n < 0 => return Err(s3_error!(InvalidArgument, "negative Content-Length")),
        Some(n) if n as u64 > body::MAX_PUT_SIZE => {
            return Err(s3_error!(
                EntityTooLarge,
                "Your proposed upload exceeds the maximum allowed object size."
            ))
        }
        Some(n) => Some(n as u64),
        None => None,
    };
    let mut claimed = Checksum {
        checksum_crc32: input.checksum_crc32.clone(),
        checksum_crc32c: input.checksum_crc32c.clone(),
        checksum_crc64nvme: input.checksum_crc64nvme.clone(),
        checksum_sha1: input.checksum_sha1.clone(),
        checksum_sha256: input.checksum_sha256.clone(),
        ..Default::default()
    };
    let hasher = body::hasher_for(input.checksum_algorithm.as_ref(), &claimed);
    let mut meta = meta_from_put(&input);
    let store = s.store.clone();
    let (bucket, key) = (input.bucket.clone(), input.key.clone());
    // Refuses a bad key or a missing bucket before the body is read.
    let writer = blocking(move || store.put(&bucket, &key)).await?;
    let payload = input.body.unwrap_or_else(|| s3s::Body::empty().into());
    let Received {
        writer,
        md5,
        checksums,
    } = body::receive(writer, payload, expected, hasher).await?;

    if let Some(header) = &input.content_md5 {
        body::check_content_md5(header, &md5)?;
    }
    // Trailing checksums (aws-chunked uploads) are known only now that the body is read.
    if let Some(t) = trailers.and_then(|t| t.take()) {
        let late = body::claimed_from(&t);
        claimed.checksum_crc32 = claimed.checksum_crc32.or(late.checksum_crc32);
        claimed.checksum_crc32c = claimed.checksum_crc32c.or(late.checksum_crc32c);
        claimed.checksum_crc64nvme = claimed.checksum_crc64nvme.or(late.checksum_crc64nvme);
        claimed.checksum_sha1 = claimed.checksum_sha1.or(late.checksum_sha1);
        claimed.checksum_sha256 = claimed.checksum_sha256.or(late.checksum_sha256);
    }
    body::check_checksums(&claimed, &checksums)?;

    meta.etag = hex::encode(md5);
    meta.checksums = body::checksum_pairs(&checksums)
        .into_iter()
        .map(|(n, v)| (n.to_string(), v.clone()))
        .collect();
    let etag = meta.etag.clone();
    let version = blocking(move || writer.finish(meta)).await?;
    Ok(PutObjectOutput {
        e_tag: Some(ETag::Strong(etag)),
        size: Some(version.size as i64),
        version_id: version_id(&version),
        checksum_crc32: checksums.checksum_crc32,
        checksum_crc32c: checksums.checksum_crc32c,
        checksum_crc64nvme: checksums.checksum_crc64nvme,
        checksum_sha1: checksums.checksum_sha1,
        checksum_sha256: checksums.checksum_sha256,
        ..Default::default()
    })
}

fn meta_from_put(input: &PutObjectInput) -> engine::ObjectMeta {
    let mut headers = Vec::new();
    for (name, value) in [
        (CACHE_CONTROL, &input.cache_control),
        (CONTENT_DISPOSITION, &input.content_disposition),
        (CONTENT_ENCODING, &input.content_encoding),
        (CONTENT_LANGUAGE, &input.content_language),
    ] {
        if let Some(v) = value {
            headers.push((name.to_string(), v.clone()));
        }
    }
    if let Some(expires) = &input.expires {
        let mut date = Vec::new();
        if expires.format(TimestampFormat::HttpDate, &mut date).is_ok() {
            headers.push((
                EXPIRES.to_string(),
                String::from_utf8_lossy(&date).into_owned(),
            ));
        }
    }
    let mut user: Vec<(String, String)> = input
        .metadata
        .iter()
        .flatten()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
        .collect();
    user.sort();
    engine::ObjectMeta {
        content_type: input.content_type.clone(),
        headers,
        user,
        storage_class: input.storage_class.as_ref().map(|c| c.as_str().to_string()),
        ..Default::default()
    }
}

pub(crate) async fn get(s: &Cybs3, input: GetObjectInput) -> S3Result<GetObjectOutput> {
    let store = s.store.clone();
    let (bucket, key, vid) = (input.bucket, input.key, input.version_id);
    let reader = blocking(move || store.open_object(&bucket, &key, vid.as_deref())).await?;
    let v = reader.version().clone();
    check_preconditions(
        &v,
        input.if_match.as_ref(),
        input.if_none_match.as_ref(),
        input.if_modified_since.as_ref(),
        input.if_unmodified_since.as_ref(),
    )?;
    let range = resolve_range(input.range.as_ref(), v.size)?;
    let (start, end) = range.unwrap_or((0, v.size));
    let chunks = reader.range(start, end).map_err(errors::from_engine)?;
    // Checksums cover the whole object; a range cannot be checked against them.
    let h = Described::new(
        &v,
        checksums_wanted(input.checksum_mode.as_ref()) && range.is_none(),
    );
    Ok(GetObjectOutput {
        body: Some(StreamingBlob::wrap(ChunkStream::spawn(chunks))),
        content_length: Some((end - start) as i64),
        content_range: range.map(|(a, b)| format!("bytes {a}-{}/{}", b - 1, v.size)),
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
        ..Default::default()
    })
}

pub(crate) async fn head(s: &Cybs3, input: HeadObjectInput) -> S3Result<HeadObjectOutput> {
    let store = s.store.clone();
    let (bucket, key, vid) = (input.bucket, input.key, input.version_id);
    let v = blocking(move || store.head(&bucket, &key, vid.as_deref())).await?;
    check_preconditions(
        &v,
        input.if_match.as_ref(),
        input.if_none_match.as_ref(),
        input.if_modified_since.as_ref(),
        input.if_unmodified_since.as_ref(),
    )?;
    let h = Described::new(&v, checksums_wanted(input.checksum_mode.as_ref()));
    Ok(HeadObjectOutput {
        content_length: Some(v.size as i64),
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
        ..Default::default()
    })
}

pub(crate) async fn delete(s: &Cybs3, input: DeleteObjectInput) -> S3Result<DeleteObjectOutput> {
    let store = s.store.clone();
    let (bucket, key, vid) = (input.bucket, input.key, input.version_id);
    // Deleting a key that does not exist succeeds, as in S3.
    let d = blocking(move || store.delete(&bucket, &key, vid.as_deref())).await?;
    Ok(DeleteObjectOutput {
        delete_marker: d.delete_marker.then_some(true),
        version_id: d.version_id,
        ..Default::default()
    })
}

/// The response fields GET and HEAD share, from a stored version.
struct Described {
    e_tag: Option<ETag>,
    last_modified: Option<Timestamp>,
    content_type: Option<String>,
    metadata: Option<Metadata>,
    cache_control: Option<String>,
    content_disposition: Option<String>,
    content_encoding: Option<String>,
    content_language: Option<String>,
    expires: Option<Timestamp>,
    version_id: Option<String>,
    storage_class: Option<StorageClass>,
    checksums: Checksum,
}

impl Described {
    fn new(v: &engine::ObjectVersion, with_checksums: bool) -> Described {
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
            version_id: version_id(v),
            storage_class: m.storage_class.clone().map(StorageClass::from),
            checksums: Checksum {
                checksum_crc32: checksum("crc32"),
                checksum_crc32c: checksum("crc32c"),
                checksum_crc64nvme: checksum("crc64nvme"),
                checksum_sha1: checksum("sha1"),
                checksum_sha256: checksum("sha256"),
                ..Default::default()
            },
        }
    }
}

fn checksums_wanted(mode: Option<&ChecksumMode>) -> bool {
    mode.is_some_and(|m| m.as_str().eq_ignore_ascii_case(ChecksumMode::ENABLED))
}

/// Versions written while versioning is off are "null": S3 sends no version id for them.
fn version_id(v: &engine::ObjectVersion) -> Option<String> {
    (v.version_id != "null" && !v.version_id.is_empty()).then(|| v.version_id.clone())
}

/// HTTP dates have second precision: compare and report modification times in whole seconds.
fn last_modified(v: &engine::ObjectVersion) -> Timestamp {
    timestamp(v.mtime_ns / 1_000_000_000 * 1_000_000_000)
}

/// The byte range `start..end` a `Range` header selects, or `None` for the whole object.
pub(crate) fn resolve_range(range: Option<&Range>, size: u64) -> S3Result<Option<(u64, u64)>> {
    let Some(range) = range else { return Ok(None) };
    match range.check(size) {
        Ok(r) if !r.is_empty() => Ok(Some((r.start, r.end))),
        _ => Err(s3_error!(
            InvalidRange,
            "The requested range is not satisfiable"
        )),
    }
}

/// Conditional GET/HEAD, in the order RFC 9110 (and S3) evaluate them.
fn check_preconditions(
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
    match if_none_match {
        Some(c) if matches(c) => return Err(s3_error!(NotModified)),
        Some(_) => {}
        None => {
            if if_modified_since.is_some_and(|t| mtime <= *t) {
                return Err(s3_error!(NotModified));
            }
        }
    }
    Ok(())
}

/// An object's bytes as a response body. Each chunk is read on a blocking thread
/// while the previous ones are sent; no thread waits on a slow client, and at
/// most `READ_AHEAD` chunks are buffered.
struct ChunkStream(tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>);

impl ChunkStream {
    fn spawn(mut reader: engine::RangeRead) -> ChunkStream {
        let (tx, rx) = tokio::sync::mpsc::channel(READ_AHEAD);
        tokio::spawn(async move {
            loop {
                let (r, next) = match tokio::task::spawn_blocking(move || {
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
        }
    }

    fn version(etag: &str, mtime_s: u64) -> engine::ObjectVersion {
        engine::ObjectVersion {
            key: "k".into(),
            version_id: "null".into(),
            sort: [0; 16],
            delete_marker: false,
            mtime_ns: mtime_s * 1_000_000_000 + 123,
            size: 0,
            meta: engine::ObjectMeta {
                etag: etag.into(),
                ..Default::default()
            },
            parts: vec![],
            retention: None,
            legal_hold: false,
            encryption: None,
            replication: None,
        }
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

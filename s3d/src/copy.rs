//! Server-side copies: CopyObject and UploadPartCopy.
//!
//! The source is read block by block and written straight into a new writer on
//! one blocking thread, so a copy holds one block in memory whatever its size and
//! never passes through the network. The ETag is the MD5 of the copied bytes,
//! computed on the way, as S3 gives a copied (single-part) object.

use crate::body;
use crate::ctx::{blocking, Cybs3};
use crate::object_lock::lock_requested;
use crate::objects::{self, check_preconditions, last_modified, meta_fields, object_meta};
use crate::{errors, lifecycle, multipart, sse, tagging, versioning};
use md5::{Digest, Md5};
use s3s::checksum::ChecksumHasher;
use s3s::dto::*;
use s3s::{s3_error, S3Result};
use std::time::SystemTime;

/// The largest source CopyObject (and a whole-object UploadPartCopy) accepts, as in S3.
const MAX_COPY_SIZE: u64 = 5 << 30;

/// A parsed `x-amz-copy-source`.
#[derive(Debug, PartialEq)]
pub(crate) struct Source {
    pub bucket: String,
    pub key: String,
    pub version_id: Option<String>,
}

/// s3s has already URL-decoded the header and split off `?versionId=`; only the
/// plain `bucket/key` form names something we store (access points are AWS-only).
pub(crate) fn source(cs: &CopySource) -> S3Result<Source> {
    match cs {
        CopySource::Bucket {
            bucket,
            key,
            version_id,
        } => {
            if key.is_empty() {
                return Err(s3_error!(
                    InvalidArgument,
                    "Copy Source must mention the source bucket and key: sourcebucket/sourcekey"
                ));
            }
            Ok(Source {
                bucket: bucket.to_string(),
                key: key.to_string(),
                version_id: version_id.as_deref().map(str::to_string),
            })
        }
        _ => Err(s3_error!(
            NotImplemented,
            "Copying from an access point or outpost is not supported"
        )),
    }
}

/// `x-amz-copy-source-range: bytes=first-last` as the half-open span `first..last+1`.
/// Malformed or reversed ranges are InvalidArgument; a range past the end is InvalidRange.
pub(crate) fn parse_range(header: &str, size: u64) -> S3Result<(u64, u64)> {
    let bad = || {
        s3_error!(
            InvalidArgument,
            "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy"
        )
    };
    let number = |s: &str| {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u64>().ok())
            .flatten()
    };
    let spec = header.trim().strip_prefix("bytes=").ok_or_else(bad)?;
    let (first, last) = spec.split_once('-').ok_or_else(bad)?;
    let (first, last) = (
        number(first).ok_or_else(bad)?,
        number(last).ok_or_else(bad)?,
    );
    if first > last {
        return Err(bad());
    }
    if last >= size {
        return Err(s3_error!(
            InvalidRange,
            "Range specified is not valid for source object of size: {size}"
        ));
    }
    Ok((first, last + 1))
}

/// `x-amz-metadata-directive` / `x-amz-tagging-directive`: true for REPLACE.
fn replaces(directive: Option<&str>, what: &str) -> S3Result<bool> {
    match directive {
        None => Ok(false),
        Some(d) if d.eq_ignore_ascii_case("COPY") => Ok(false),
        Some(d) if d.eq_ignore_ascii_case("REPLACE") => Ok(true),
        Some(_) => Err(s3_error!(InvalidArgument, "Unknown {what} directive.")),
    }
}

/// The copy-source conditions. Unlike GET, every failure is 412: a copy that
/// would be "not modified" still did not happen.
fn check_source(
    v: &engine::ObjectVersion,
    if_match: Option<&ETagCondition>,
    if_none_match: Option<&ETagCondition>,
    if_modified_since: Option<&Timestamp>,
    if_unmodified_since: Option<&Timestamp>,
) -> S3Result<()> {
    check_preconditions(
        v,
        if_match,
        if_none_match,
        if_modified_since,
        if_unmodified_since,
    )
    .map_err(|e| match e.code() {
        s3s::S3ErrorCode::NotModified | s3s::S3ErrorCode::PreconditionFailed => s3_error!(
            PreconditionFailed,
            "At least one of the pre-conditions you specified did not hold"
        ),
        _ => e,
    })
}

/// Open the source version. Naming a delete marker by version id is InvalidRequest
/// (S3's answer); a key whose current version is a marker is simply NoSuchKey.
/// The copy source's SSE-C key, from the `x-amz-copy-source-server-side-encryption-customer-*` headers.
macro_rules! source_key {
    ($input:expr, $may_travel:expr) => {
        sse::customer_key(
            (
                $input.copy_source_sse_customer_algorithm.as_deref(),
                $input.copy_source_sse_customer_key.as_deref(),
                $input.copy_source_sse_customer_key_md5.as_deref(),
            ),
            $may_travel,
        )
    };
}

/// Opens the copy source, unlocked with its SSE-C key if it has one.
async fn open_source(
    s: &Cybs3,
    src: &Source,
    key: Option<&sse::CustomerKey>,
) -> S3Result<engine::ObjectReader> {
    let mut reader = open_version(s, src).await?;
    reader
        .unlock(key.map(|k| &k.key))
        .map_err(errors::from_engine)?;
    Ok(reader)
}

async fn open_version(s: &Cybs3, src: &Source) -> S3Result<engine::ObjectReader> {
    let store = s.store.clone();
    let (bucket, key, vid) = (src.bucket.clone(), src.key.clone(), src.version_id.clone());
    let by_version = vid.is_some();
    match blocking(move || Ok(store.open_object(&bucket, &key, vid.as_deref()))).await? {
        Ok(r) => {
            crate::archive::check_readable(&s.store, r.version())?;
            Ok(r)
        }
        Err(engine::Error::DeleteMarker { .. }) if by_version => Err(s3_error!(
            InvalidRequest,
            "The source of a copy request may not specifically refer to a delete marker by version id."
        )),
        Err(e) => Err(errors::from_engine(e)),
    }
}

/// Move the bytes: read each block, hash it, write it. Runs on a blocking thread.
fn pump(
    mut from: engine::RangeRead,
    to: &mut engine::ObjectWriter,
    hasher: &mut ChecksumHasher,
) -> engine::Result<[u8; 16]> {
    let mut md5 = Md5::new();
    while let Some(chunk) = from.next_chunk()? {
        md5.update(&chunk);
        hasher.update(&chunk);
        to.write(&chunk)?;
    }
    Ok(md5.finalize().into())
}

/// Is `src` the destination's current version (a copy onto itself)?
async fn is_current(s: &Cybs3, src: &Source, v: &engine::ObjectVersion) -> S3Result<bool> {
    if src.version_id.is_none() {
        return Ok(true);
    }
    let store = s.store.clone();
    let (bucket, key) = (src.bucket.clone(), src.key.clone());
    let current = blocking(move || Ok(store.head(&bucket, &key, None).ok())).await?;
    Ok(current.is_some_and(|c| c.sort == v.sort))
}

/// `acl`: the copy's owner and ACL; a copy never takes its source's.
pub(crate) async fn copy_object(
    s: &Cybs3,
    input: CopyObjectInput,
    acl: engine::Acl,
    may_travel: bool,
) -> S3Result<CopyObjectOutput> {
    let customer = sse::customer_of!(input, may_travel)?;
    let source_customer = source_key!(input, may_travel)?;
    let src = source(&input.copy_source)?;
    versioning::check_version_id(src.version_id.as_deref())?;
    let replace_meta = replaces(
        input.metadata_directive.as_ref().map(|d| d.as_str()),
        "metadata",
    )?;
    let replace_tags = replaces(
        input.tagging_directive.as_ref().map(|d| d.as_str()),
        "tagging",
    )?;
    let new_tags = match (&input.tagging, replace_tags) {
        (Some(h), true) => Some(tagging::parse_header(h)?),
        (None, true) => Some(Vec::new()),
        (_, false) => None,
    };
    let lock = lock_requested!(input)?;
    // The destination bucket and key are checked before any byte is read. A copy is
    // encrypted as its request or the bucket's default says, not as its source.
    let asked = sse::asked!(input, customer.as_ref());
    let (mut writer, enc) = sse::writer(s, &input.bucket, &input.key, asked).await?;
    writer.set_lock(lock);
    // A copy overwrites as a PUT does: a frozen caller may only create.
    let mut condition = engine::WriteCondition::default();
    let freeze = crate::anomaly::ops::guard_write(s, &input.bucket, &mut condition)?;
    writer.set_condition(condition);
    let reader = open_source(s, &src, source_customer.as_ref()).await?;
    let v = reader.version().clone();
    check_source(
        &v,
        input.copy_source_if_match.as_ref(),
        input.copy_source_if_none_match.as_ref(),
        input.copy_source_if_modified_since.as_ref(),
        input.copy_source_if_unmodified_since.as_ref(),
    )?;
    if v.size > MAX_COPY_SIZE {
        return Err(s3_error!(
            InvalidRequest,
            "The specified copy source is larger than the maximum allowable size for a copy source: {MAX_COPY_SIZE}"
        ));
    }
    let onto_itself = src.bucket == input.bucket && src.key == input.key;
    if onto_itself
        && !replace_meta
        && input.storage_class.is_none()
        && input.server_side_encryption.is_none()
        && is_current(s, &src, &v).await?
    {
        return Err(s3_error!(
            InvalidRequest,
            "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes."
        ));
    }

    let mut meta = if replace_meta {
        object_meta(meta_fields!(input), &s.store)?
    } else {
        let mut m = v.meta.clone();
        // What only described the upload that made the source is not the copy's.
        m.headers
            .retain(|(n, _)| n != multipart::CHECKSUM_ALGORITHM_HEADER);
        if input.storage_class.is_some() {
            m.storage_class = objects::storage_class(&s.store, input.storage_class.as_ref())?;
        }
        m
    };
    meta.tags = new_tags.unwrap_or_else(|| v.meta.tags.clone());
    meta.acl = Some(acl);
    writer.set_class(meta.storage_class.as_deref());

    // Keep the source's checksum algorithms, plus any the request asks for.
    let had = |name: &str| {
        v.meta
            .checksums
            .iter()
            .any(|(n, _)| n == name)
            .then(String::new)
    };
    let wanted = Checksum {
        checksum_crc32: had("crc32"),
        checksum_crc32c: had("crc32c"),
        checksum_crc64nvme: had("crc64nvme"),
        checksum_sha1: had("sha1"),
        checksum_sha256: had("sha256"),
        ..Default::default()
    };
    let mut hasher = body::hasher_for(input.checksum_algorithm.as_ref(), &wanted);
    let engine::Written { version, replaced } = blocking(move || {
        let md5 = pump(reader.all(), &mut writer, &mut hasher)?;
        let checksums = hasher.finalize();
        meta.etag = hex::encode(md5);
        meta.checksums = body::stored_checksums(&checksums);
        writer.finish(meta)
    })
    .await
    .map_err(|e| crate::anomaly::ops::refused(e, freeze))?;
    // The copy's bytes were its source's: no entropy sample.
    crate::anomaly::ops::wrote(replaced, None);
    let checksum = |name: &str| {
        version
            .meta
            .checksums
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    Ok(CopyObjectOutput {
        copy_object_result: Some(CopyObjectResult {
            e_tag: Some(ETag::Strong(version.meta.etag.clone())),
            last_modified: Some(last_modified(&version)),
            checksum_crc32: checksum("crc32"),
            checksum_crc32c: checksum("crc32c"),
            checksum_crc64nvme: checksum("crc64nvme"),
            checksum_sha1: checksum("sha1"),
            checksum_sha256: checksum("sha256"),
            ..Default::default()
        }),
        version_id: objects::written_version_id(&version.version_id),
        server_side_encryption: enc.sse,
        ssekms_key_id: enc.kms_key,
        bucket_key_enabled: enc.bucket_key,
        sse_customer_algorithm: enc.customer_algorithm,
        sse_customer_key_md5: enc.customer_key_md5,
        copy_source_version_id: objects::shown_version(s, &src.bucket, &v.version_id).await,
        expiration: lifecycle::expiration_of_new(s, &input.bucket, &version).await?,
        ..Default::default()
    })
}

pub(crate) async fn upload_part_copy(
    s: &Cybs3,
    input: UploadPartCopyInput,
    may_travel: bool,
) -> S3Result<UploadPartCopyOutput> {
    let customer = sse::customer_of!(input, may_travel)?;
    let source_customer = source_key!(input, may_travel)?;
    let number = multipart::part_number(input.part_number)?;
    let src = source(&input.copy_source)?;
    versioning::check_version_id(src.version_id.as_deref())?;
    let store = s.store.clone();
    let (bucket, key, upload_id) = (
        input.bucket.clone(),
        input.key.clone(),
        input.upload_id.clone(),
    );
    // NoSuchUpload before the source is looked at.
    let key_bytes = customer.as_ref().map(|c| c.key);
    let mut writer =
        blocking(move || store.put_part(&bucket, &key, &upload_id, number, key_bytes.as_ref()))
            .await?;
    let reader = open_source(s, &src, source_customer.as_ref()).await?;
    let v = reader.version().clone();
    check_source(
        &v,
        input.copy_source_if_match.as_ref(),
        input.copy_source_if_none_match.as_ref(),
        input.copy_source_if_modified_since.as_ref(),
        input.copy_source_if_unmodified_since.as_ref(),
    )?;
    let (start, end) = match &input.copy_source_range {
        Some(h) => parse_range(h, v.size)?,
        None => (0, v.size),
    };
    if end - start > MAX_COPY_SIZE {
        return Err(s3_error!(
            InvalidRequest,
            "The specified copy range is larger than the maximum allowable part size: {MAX_COPY_SIZE}"
        ));
    }
    let range = reader.range(start, end).map_err(errors::from_engine)?;
    let mut hasher = ChecksumHasher::default();
    let part = blocking(move || {
        let md5 = pump(range, &mut writer, &mut hasher)?;
        writer
            .finish(engine::ObjectMeta {
                etag: hex::encode(md5),
                ..Default::default()
            })
            .map(|w| w.version)
    })
    .await?;
    Ok(UploadPartCopyOutput {
        copy_part_result: Some(CopyPartResult {
            e_tag: Some(ETag::Strong(part.meta.etag)),
            // The engine stamps the part on commit; the response needs no more than the second.
            last_modified: Some(Timestamp::from(SystemTime::now())),
            ..Default::default()
        }),
        copy_source_version_id: objects::shown_version(s, &src.bucket, &v.version_id).await,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code<T: std::fmt::Debug>(r: S3Result<T>) -> String {
        r.unwrap_err().code().as_str().to_string()
    }

    #[test]
    fn copy_source_header_names_bucket_key_and_version() {
        let cs = CopySource::parse("/src-bucket/dir/a%20b.txt?versionId=abc%3D").unwrap();
        assert_eq!(
            source(&cs).unwrap(),
            Source {
                bucket: "src-bucket".into(),
                key: "dir/a b.txt".into(),
                version_id: Some("abc=".into()),
            }
        );
        let cs = CopySource::parse("src-bucket/k").unwrap();
        assert_eq!(source(&cs).unwrap().version_id, None);
        let cs = CopySource::parse("src-bucket/").unwrap();
        assert_eq!(code(source(&cs)), "InvalidArgument");
        let arn = "arn:aws:s3:us-east-1:123456789012:accesspoint/my-ap/object/k";
        assert_eq!(
            code(source(&CopySource::parse(arn).unwrap())),
            "NotImplemented"
        );
    }

    #[test]
    fn copy_source_ranges() {
        assert_eq!(parse_range("bytes=0-9", 10).unwrap(), (0, 10));
        assert_eq!(parse_range("bytes=3-3", 10).unwrap(), (3, 4));
        for bad in [
            "bytes=5-3",
            "bytes=-5",
            "bytes=5-",
            "bytes=",
            "0-5",
            "bytes=a-b",
            "bytes=0-5-7",
            "bytes=+1-2",
        ] {
            assert_eq!(code(parse_range(bad, 10)), "InvalidArgument", "{bad}");
        }
        let e = parse_range("bytes=0-10", 10).unwrap_err();
        assert_eq!(e.code().as_str(), "InvalidRange");
        assert_eq!(e.status_code().unwrap().as_u16(), 416);
        assert_eq!(code(parse_range("bytes=0-0", 0)), "InvalidRange");
    }

    #[test]
    fn directives() {
        assert!(!replaces(None, "metadata").unwrap());
        assert!(!replaces(Some("COPY"), "metadata").unwrap());
        assert!(replaces(Some("REPLACE"), "metadata").unwrap());
        assert_eq!(code(replaces(Some("MOVE"), "metadata")), "InvalidArgument");
    }
}

//! Multipart uploads: create, upload parts, complete, abort, and the two listings.
//!
//! The engine keeps uploads and parts; this module speaks S3 over them. Parts
//! stream in exactly like PutObject bodies (see `body`), and the completed
//! object's ETag is S3's: the MD5 of the parts' binary MD5s, then `-N`.

use crate::acl;
use crate::body::{self, Received};
use crate::buckets::timestamp;
use crate::ctx::{blocking, Cybs3};
use crate::list::encode_if;
use crate::object_lock::lock_requested;
use crate::objects::{
    claimed_checksums, declared_length, meta_fields, object_meta, receive_checked,
    CHECKSUM_TYPE_HEADER,
};
use crate::sse;
use crate::{lifecycle, list, objects, tagging};
use base64::{engine::general_purpose::STANDARD as B64, Engine as _};
use md5::{Digest, Md5};
use s3s::dto::*;
use s3s::{s3_error, S3Result, TrailingHeaders};

/// Where an upload's `x-amz-checksum-algorithm` is kept, among the stored headers
/// (never returned on GET/HEAD, which only send the standard ones).
pub(crate) const CHECKSUM_ALGORITHM_HEADER: &str = "x-amz-checksum-algorithm";
/// S3's page limit (and default) for both listings.
const MAX_PAGE: usize = 1000;
/// What S3 reports for uploads started without a storage class.
const STANDARD: &str = "STANDARD";

/// Part numbers are 1..=10000 in S3.
pub(crate) fn part_number(n: i32) -> S3Result<u32> {
    if (1..=objects::MAX_PART_NUMBER).contains(&n) {
        Ok(n as u32)
    } else {
        Err(s3_error!(
            InvalidArgument,
            "Part number must be an integer between 1 and 10000, inclusive"
        ))
    }
}

/// S3's multipart ETag: hex MD5 of the concatenated binary part MD5s, `-` part count.
pub(crate) fn multipart_etag(part_md5s: &[[u8; 16]]) -> String {
    let mut md5 = Md5::new();
    for p in part_md5s {
        md5.update(p);
    }
    format!("{}-{}", hex::encode(md5.finalize()), part_md5s.len())
}

fn malformed() -> s3s::S3Error {
    s3_error!(
        MalformedXML,
        "The XML you provided was not well-formed or did not validate against our published schema"
    )
}

fn invalid_part() -> s3s::S3Error {
    s3_error!(
        InvalidPart,
        "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag."
    )
}

/// What the engine assembles: `(number, ETag)` per part, in request order.
type PartList = Vec<(u32, String)>;

/// The `(number, ETag)` list the engine assembles, and each part's binary MD5.
/// Order is checked here, as the engine does, so that InvalidPartOrder wins over
/// an unparsable ETag further down the list.
fn completed_parts(parts: Vec<CompletedPart>) -> S3Result<(PartList, Vec<[u8; 16]>)> {
    if parts.is_empty() || parts.len() > objects::MAX_PART_NUMBER as usize {
        return Err(malformed());
    }
    let mut list: PartList = Vec::with_capacity(parts.len());
    let mut md5s = Vec::with_capacity(parts.len());
    for p in parts {
        let number = p.part_number.ok_or_else(malformed)?;
        let number = part_number(number)?;
        if list.last().is_some_and(|(prev, _)| number <= *prev) {
            return Err(s3_error!(
                InvalidPartOrder,
                "The list of parts was not in ascending order. The parts list must be specified in order by part number."
            ));
        }
        let etag = p.e_tag.ok_or_else(invalid_part)?;
        let md5: [u8; 16] = hex::decode(etag.value().trim_matches('"'))
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(invalid_part)?;
        // Stored part ETags are lowercase hex; compare in that form.
        list.push((number, hex::encode(md5)));
        md5s.push(md5);
    }
    Ok((list, md5s))
}

fn stored_checksum(checksums: &[(String, String)], name: &str) -> Option<String> {
    checksums
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
}

/// The whole-object checksum of a multipart upload, as S3 composes it: the
/// algorithm over the concatenated binary part checksums, then `-N`. Each part
/// must carry that checksum, and any value the client lists must match it.
fn composite_checksum(
    algorithm: &ChecksumAlgorithm,
    parts: &PartList,
    claims: &[Checksum],
    stored: &[engine::PartRecord],
) -> S3Result<(String, String)> {
    let name = algorithm.as_str().to_ascii_lowercase();
    let mut hasher = body::hasher_for(Some(algorithm), &Checksum::default());
    for ((number, _), claim) in parts.iter().zip(claims) {
        let value = stored
            .iter()
            .find(|p| p.entry.number == *number)
            .and_then(|p| stored_checksum(&p.entry.checksums, &name))
            .ok_or_else(invalid_part)?;
        let claimed = body::checksum_pairs(claim);
        if claimed.iter().any(|(n, v)| *n == name && **v != value) {
            return Err(invalid_part());
        }
        let raw = B64.decode(&value).map_err(|_| invalid_part())?;
        hasher.update(&raw);
    }
    let whole = hasher.finalize();
    let (_, value) = body::checksum_pairs(&whole)
        .into_iter()
        .find(|(n, _)| *n == name)
        .ok_or_else(invalid_part)?;
    Ok((name, format!("{value}-{}", parts.len())))
}

fn checksum_algorithm(meta: &engine::ObjectMeta) -> Option<ChecksumAlgorithm> {
    meta.headers
        .iter()
        .find(|(n, _)| n == CHECKSUM_ALGORITHM_HEADER)
        .map(|(_, v)| ChecksumAlgorithm::from(v.clone()))
}

fn storage_class(meta: &engine::ObjectMeta) -> StorageClass {
    StorageClass::from(
        meta.storage_class
            .clone()
            .unwrap_or_else(|| STANDARD.to_string()),
    )
}

/// Who started an upload, as far as it is kept: the owner its object will have.
fn initiator(owner: &Owner) -> Initiator {
    Initiator {
        display_name: owner.display_name.clone(),
        id: owner.id.clone(),
    }
}

/// A page size from `max-uploads` / `max-parts`: default and cap 1000.
fn page_size(max: Option<i32>, what: &str) -> S3Result<usize> {
    match max {
        None => Ok(MAX_PAGE),
        Some(n) if n < 0 => Err(s3_error!(
            InvalidArgument,
            "Argument {what} must be an integer between 0 and 2147483647"
        )),
        Some(n) => Ok((n as usize).min(MAX_PAGE)),
    }
}

/// `acl`: the owner and ACL the completed version gets (kept with the upload).
pub(crate) async fn create(
    s: &Cybs3,
    input: CreateMultipartUploadInput,
    acl: engine::Acl,
    may_travel: bool,
) -> S3Result<CreateMultipartUploadOutput> {
    let customer = sse::customer_of!(input, may_travel)?;
    let mut meta = object_meta(meta_fields!(input), &s.store)?;
    meta.acl = Some(acl);
    if let Some(h) = &input.tagging {
        meta.tags = tagging::parse_header(h)?;
    }
    let algorithm = input
        .checksum_algorithm
        .as_ref()
        .map(|a| a.as_str().to_ascii_uppercase());
    let checksum_type = algorithm.as_ref().map(|_| {
        input
            .checksum_type
            .as_ref()
            .map(|t| t.as_str().to_ascii_uppercase())
            .unwrap_or_else(|| ChecksumType::COMPOSITE.to_string())
    });
    if let (Some(a), Some(t)) = (&algorithm, &checksum_type) {
        meta.headers
            .push((CHECKSUM_ALGORITHM_HEADER.to_string(), a.clone()));
        meta.headers
            .push((CHECKSUM_TYPE_HEADER.to_string(), t.clone()));
    }
    let lock = lock_requested!(input)?;
    let asked = sse::asked!(input, customer.as_ref());
    let mode = sse::for_write(s, &input.bucket, asked).await?;
    let enc = sse::headers(s, mode.as_ref());
    let store = s.store.clone();
    let (bucket, key) = (input.bucket.clone(), input.key.clone());
    let up = blocking(move || store.create_upload(&bucket, &key, meta, (lock, mode))).await?;
    Ok(CreateMultipartUploadOutput {
        bucket: Some(input.bucket),
        key: Some(input.key),
        upload_id: Some(up.upload_id),
        server_side_encryption: enc.sse,
        ssekms_key_id: enc.kms_key,
        bucket_key_enabled: enc.bucket_key,
        sse_customer_algorithm: enc.customer_algorithm,
        sse_customer_key_md5: enc.customer_key_md5,
        checksum_algorithm: algorithm.map(ChecksumAlgorithm::from),
        checksum_type: checksum_type.map(ChecksumType::from),
        ..Default::default()
    })
}

pub(crate) async fn upload_part(
    s: &Cybs3,
    input: UploadPartInput,
    trailers: Option<TrailingHeaders>,
    may_travel: bool,
) -> S3Result<UploadPartOutput> {
    let customer = sse::customer_of!(input, may_travel)?;
    let number = part_number(input.part_number)?;
    let expected = declared_length(input.content_length)?;
    let claimed = claimed_checksums!(input);
    let store = s.store.clone();
    let (bucket, key, upload_id) = (
        input.bucket.clone(),
        input.key.clone(),
        input.upload_id.clone(),
    );
    // NoSuchBucket / NoSuchUpload before the body is read.
    let writer = blocking(move || {
        store.put_part(
            &bucket,
            &key,
            &upload_id,
            number,
            customer.as_ref().map(|c| &c.key),
        )
    })
    .await?;
    let enc = sse::headers(s, writer.encryption());
    let payload = input.body.unwrap_or_else(|| s3s::Body::empty().into());
    let Received {
        writer,
        md5,
        checksums,
        ..
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
    let etag = hex::encode(md5);
    let meta = engine::ObjectMeta {
        etag: etag.clone(),
        checksums: body::stored_checksums(&checksums),
        ..Default::default()
    };
    blocking(move || writer.finish(meta)).await?;
    Ok(UploadPartOutput {
        e_tag: Some(ETag::Strong(etag)),
        server_side_encryption: enc.sse,
        ssekms_key_id: enc.kms_key,
        bucket_key_enabled: enc.bucket_key,
        sse_customer_algorithm: enc.customer_algorithm,
        sse_customer_key_md5: enc.customer_key_md5,
        checksum_crc32: checksums.checksum_crc32,
        checksum_crc32c: checksums.checksum_crc32c,
        checksum_crc64nvme: checksums.checksum_crc64nvme,
        checksum_sha1: checksums.checksum_sha1,
        checksum_sha256: checksums.checksum_sha256,
        ..Default::default()
    })
}

/// `Location` of a completed object, in the addressing style the request used.
fn location(host: Option<&str>, bucket: &str, key: &str) -> String {
    let key = encode_if(true, key.to_string());
    match host {
        Some(h) if h.starts_with(&format!("{bucket}.")) => format!("http://{h}/{key}"),
        Some(h) => format!("http://{h}/{bucket}/{key}"),
        None => format!("/{bucket}/{key}"),
    }
}

/// The version an upload becomes: its parts checked and assembled, or, when the upload
/// is gone, the version a completion that already succeeded made (S3 answers a retried
/// completion alike, for a while); NoSuchUpload otherwise.
async fn assemble(
    s: &Cybs3,
    input: &mut CompleteMultipartUploadInput,
) -> S3Result<engine::ObjectVersion> {
    // An unknown (or aborted) upload is reported before anything about its parts.
    let store = s.store.clone();
    let (bucket, key, upload_id) = (
        input.bucket.clone(),
        input.key.clone(),
        input.upload_id.clone(),
    );
    let upload = match blocking(move || store.upload(&bucket, &key, &upload_id)).await {
        Ok(up) => up,
        Err(e) if *e.code() == s3s::S3ErrorCode::NoSuchUpload => {
            let store = s.store.clone();
            let (b, k, id) = (
                input.bucket.clone(),
                input.key.clone(),
                input.upload_id.clone(),
            );
            return blocking(move || {
                store
                    .complete_upload(
                        &b,
                        &k,
                        &id,
                        Vec::new(),
                        Default::default(),
                        Default::default(),
                    )
                    .map(|w| w.version)
            })
            .await;
        }
        Err(e) => return Err(e),
    };
    let parts = input
        .multipart_upload
        .take()
        .and_then(|m| m.parts)
        .unwrap_or_default();
    let claims: Vec<Checksum> = parts.iter().map(|p| claimed_checksums!(p)).collect();
    let (parts, md5s) = completed_parts(parts)?;
    // FULL_OBJECT checksums (a CRC of the whole object combined from the parts') are
    // not computed: such objects keep their per-part checksums only.
    let composite = stored_checksum(&upload.meta.headers, CHECKSUM_TYPE_HEADER)
        .is_some_and(|t| t == ChecksumType::COMPOSITE);
    let checksums = match checksum_algorithm(&upload.meta).filter(|_| composite) {
        Some(algorithm) => {
            let store = s.store.clone();
            let (bucket, key, upload_id) = (
                input.bucket.clone(),
                input.key.clone(),
                input.upload_id.clone(),
            );
            let (stored, _) = blocking(move || {
                store.list_parts(
                    &bucket,
                    &key,
                    &upload_id,
                    0,
                    objects::MAX_PART_NUMBER as usize,
                )
            })
            .await?;
            vec![composite_checksum(&algorithm, &parts, &claims, &stored)?]
        }
        None => Vec::new(),
    };
    let mut condition =
        objects::write_condition(input.if_match.as_ref(), input.if_none_match.as_ref());
    let freeze = crate::anomaly::ops::guard_write(s, &input.bucket, &mut condition)?;
    let etag = multipart_etag(&md5s);
    let store = s.store.clone();
    let (bucket, key, upload_id) = (
        input.bucket.clone(),
        input.key.clone(),
        input.upload_id.clone(),
    );
    let written = blocking(move || {
        store.complete_upload(
            &bucket,
            &key,
            &upload_id,
            parts,
            (etag, checksums),
            condition,
        )
    })
    .await
    .map_err(|e| crate::anomaly::ops::refused(e, freeze))?;
    // The first bytes of a completed upload are not at hand: no entropy sample.
    crate::anomaly::ops::wrote(written.replaced, None);
    Ok(written.version)
}

pub(crate) async fn complete(
    s: &Cybs3,
    mut input: CompleteMultipartUploadInput,
    host: Option<String>,
) -> S3Result<CompleteMultipartUploadOutput> {
    let v = assemble(s, &mut input).await?;
    let version_id = objects::written_version_id(&v.version_id);
    let expiration = lifecycle::expiration_of_new(s, &input.bucket, &v).await?;
    let enc = sse::headers(s, sse::of(&v));
    Ok(CompleteMultipartUploadOutput {
        expiration,
        server_side_encryption: enc.sse,
        ssekms_key_id: enc.kms_key,
        bucket_key_enabled: enc.bucket_key,
        location: Some(location(host.as_deref(), &input.bucket, &input.key)),
        bucket: Some(input.bucket),
        key: Some(input.key),
        e_tag: Some(ETag::Strong(v.meta.etag.clone())),
        version_id,
        checksum_crc32: stored_checksum(&v.meta.checksums, "crc32"),
        checksum_crc32c: stored_checksum(&v.meta.checksums, "crc32c"),
        checksum_crc64nvme: stored_checksum(&v.meta.checksums, "crc64nvme"),
        checksum_sha1: stored_checksum(&v.meta.checksums, "sha1"),
        checksum_sha256: stored_checksum(&v.meta.checksums, "sha256"),
        checksum_type: (!v.meta.checksums.is_empty())
            .then(|| ChecksumType::from_static(ChecksumType::COMPOSITE)),
        ..Default::default()
    })
}

pub(crate) async fn abort(
    s: &Cybs3,
    input: AbortMultipartUploadInput,
) -> S3Result<AbortMultipartUploadOutput> {
    let store = s.store.clone();
    blocking(move || store.abort_upload(&input.bucket, &input.key, &input.upload_id)).await?;
    Ok(AbortMultipartUploadOutput::default())
}

pub(crate) async fn list_parts(s: &Cybs3, input: ListPartsInput) -> S3Result<ListPartsOutput> {
    let max = page_size(input.max_parts, "max-parts")?;
    let marker = match input.part_number_marker {
        Some(n) if n < 0 => {
            return Err(s3_error!(
                InvalidArgument,
                "Argument part-number-marker must be an integer between 0 and 2147483647"
            ))
        }
        Some(n) => n as u32,
        None => 0,
    };
    let store = s.store.clone();
    let (bucket, key, upload_id) = (
        input.bucket.clone(),
        input.key.clone(),
        input.upload_id.clone(),
    );
    let block = s.store.block_size();
    let (up, parts, truncated) = blocking(move || {
        let up = store.upload(&bucket, &key, &upload_id)?;
        let (parts, truncated) = store.list_parts(&bucket, &key, &upload_id, marker, max)?;
        Ok((up, parts, truncated))
    })
    .await?;
    let owner = acl::object_owner(&acl::load(s, &input.bucket).await?, &up.meta);
    let next = parts.last().map_or(marker, |p| p.entry.number);
    Ok(ListPartsOutput {
        bucket: Some(input.bucket),
        key: Some(input.key),
        upload_id: Some(input.upload_id),
        part_number_marker: Some(marker as i32),
        next_part_number_marker: Some(next as i32),
        max_parts: Some(max as i32),
        is_truncated: Some(truncated),
        parts: Some(
            parts
                .into_iter()
                .map(|p| Part {
                    size: Some(p.plain_size(block) as i64),
                    part_number: Some(p.entry.number as i32),
                    last_modified: Some(timestamp(p.mtime_ns)),
                    e_tag: Some(ETag::Strong(p.entry.etag)),
                    checksum_crc32: stored_checksum(&p.entry.checksums, "crc32"),
                    checksum_crc32c: stored_checksum(&p.entry.checksums, "crc32c"),
                    checksum_crc64nvme: stored_checksum(&p.entry.checksums, "crc64nvme"),
                    checksum_sha1: stored_checksum(&p.entry.checksums, "sha1"),
                    checksum_sha256: stored_checksum(&p.entry.checksums, "sha256"),
                })
                .collect(),
        ),
        initiator: Some(initiator(&owner)),
        owner: Some(owner),
        storage_class: Some(storage_class(&up.meta)),
        checksum_algorithm: checksum_algorithm(&up.meta),
        ..Default::default()
    })
}

/// One entry of an uploads listing.
enum Listed {
    Upload(Box<engine::UploadRecord>),
    Prefix(String),
}

/// The smallest key after every key that starts with `prefix`, as a key marker:
/// the engine resumes strictly after it. (Keys under `prefix` that still sort
/// after it are skipped again by the caller.)
fn past(prefix: &str) -> String {
    format!("{prefix}{}", char::MAX)
}

/// Uploads in key order with a delimiter's common prefixes rolled up. Each prefix
/// costs one engine seek past its keys, not a walk over them.
async fn collect_uploads(
    s: &Cybs3,
    bucket: &str,
    prefix: &str,
    delimiter: Option<&str>,
    marker: (Option<String>, Option<String>),
    max: usize,
) -> S3Result<(Vec<Listed>, bool)> {
    let key_marker = marker.0.clone();
    let (mut km, mut um) = marker;
    let mut out: Vec<Listed> = Vec::new();
    let mut last_prefix: Option<String> = None;
    loop {
        let store = s.store.clone();
        let (b, p, k, u) = (
            bucket.to_string(),
            prefix.to_string(),
            km.clone(),
            um.clone(),
        );
        let (page, more) = blocking(move || {
            store.list_uploads(&b, &p, k.as_deref(), u.as_deref(), max.saturating_add(1))
        })
        .await?;
        let mut jumped = false;
        for up in &page {
            let rolled = delimiter.and_then(|d| {
                up.key[prefix.len()..]
                    .find(d)
                    .map(|pos| up.key[..prefix.len() + pos + d.len()].to_string())
            });
            if let Some(cp) = rolled {
                // Already jumped past this prefix: a key that still sorts after the
                // jump (only possible with U+10FFFF in it) is skipped, not jumped to again.
                if km.as_deref() == Some(past(&cp).as_str()) {
                    continue;
                }
                let seen = last_prefix.as_deref() == Some(cp.as_str())
                    || key_marker.as_deref().is_some_and(|m| cp.as_str() <= m);
                if !seen {
                    if out.len() == max {
                        return Ok((out, true));
                    }
                    out.push(Listed::Prefix(cp.clone()));
                    last_prefix = Some(cp.clone());
                }
                km = Some(past(&cp));
                um = None;
                jumped = true;
                break;
            }
            if out.len() == max {
                return Ok((out, true));
            }
            out.push(Listed::Upload(Box::new(up.clone())));
        }
        if !jumped {
            if !more {
                return Ok((out, false));
            }
            let last = page.last().expect("a truncated page is not empty");
            km = Some(last.key.clone());
            um = Some(last.upload_id.clone());
        }
    }
}

pub(crate) async fn list_uploads(
    s: &Cybs3,
    input: ListMultipartUploadsInput,
) -> S3Result<ListMultipartUploadsOutput> {
    let url = list::url_encoded(input.encoding_type.as_ref())?;
    let max = page_size(input.max_uploads, "max-uploads")?;
    let prefix = input.prefix.clone().unwrap_or_default();
    let delimiter = input.delimiter.clone().filter(|d| !d.is_empty());
    let owners = acl::load(s, &input.bucket).await?;
    // A key marker before the prefix selects nothing more than the prefix does.
    let key_marker = input
        .key_marker
        .clone()
        .filter(|m| !m.is_empty() && *m >= prefix);
    // Without a key marker, S3 ignores the upload id marker.
    let upload_marker = key_marker
        .as_ref()
        .and(input.upload_id_marker.clone())
        .filter(|m| !m.is_empty());
    let (items, truncated) = collect_uploads(
        s,
        &input.bucket,
        &prefix,
        delimiter.as_deref(),
        (key_marker, upload_marker),
        max,
    )
    .await?;
    let (next_key, next_upload) = match items.last() {
        Some(Listed::Upload(u)) if truncated => (Some(u.key.clone()), Some(u.upload_id.clone())),
        Some(Listed::Prefix(p)) if truncated => (Some(p.clone()), None),
        _ => (None, None),
    };
    let mut uploads = Vec::new();
    let mut prefixes = Vec::new();
    for item in items {
        match item {
            Listed::Upload(u) => uploads.push(MultipartUpload {
                checksum_algorithm: checksum_algorithm(&u.meta),
                initiated: Some(timestamp(u.initiated_ns)),
                initiator: Some(initiator(&acl::object_owner(&owners, &u.meta))),
                owner: Some(acl::object_owner(&owners, &u.meta)),
                storage_class: Some(storage_class(&u.meta)),
                key: Some(encode_if(url, u.key)),
                upload_id: Some(u.upload_id),
                ..Default::default()
            }),
            Listed::Prefix(p) => prefixes.push(CommonPrefix {
                prefix: Some(encode_if(url, p)),
            }),
        }
    }
    Ok(ListMultipartUploadsOutput {
        bucket: Some(input.bucket),
        prefix: Some(encode_if(url, prefix)),
        delimiter: delimiter.map(|d| encode_if(url, d)),
        key_marker: Some(encode_if(url, input.key_marker.unwrap_or_default())),
        upload_id_marker: Some(input.upload_id_marker.unwrap_or_default()),
        next_key_marker: next_key.map(|k| encode_if(url, k)),
        next_upload_id_marker: next_upload,
        max_uploads: Some(max as i32),
        is_truncated: Some(truncated),
        uploads: Some(uploads),
        common_prefixes: (!prefixes.is_empty()).then_some(prefixes),
        encoding_type: url.then(|| EncodingType::from_static(EncodingType::URL)),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn md5(data: &[u8]) -> [u8; 16] {
        Md5::digest(data).into()
    }

    #[test]
    fn multipart_etag_is_md5_of_part_md5s() {
        // Known S3 value: two parts "a" and "b".
        let parts = [md5(b"a"), md5(b"b")];
        let mut concat = Vec::new();
        concat.extend_from_slice(&parts[0]);
        concat.extend_from_slice(&parts[1]);
        assert_eq!(
            multipart_etag(&parts),
            format!("{}-2", hex::encode(md5(&concat)))
        );
        // A single part still gets the suffix (and is not the part's own MD5).
        let one = multipart_etag(&[md5(b"x")]);
        assert!(one.ends_with("-1"));
        assert_ne!(one, format!("{}-1", hex::encode(md5(b"x"))));
    }

    fn part(n: Option<i32>, etag: Option<&str>) -> CompletedPart {
        CompletedPart {
            part_number: n,
            e_tag: etag.map(|e| ETag::Strong(e.into())),
            ..Default::default()
        }
    }

    fn code<T>(r: S3Result<T>) -> String {
        match r {
            Ok(_) => "ok".into(),
            Err(e) => e.code().as_str().to_string(),
        }
    }

    #[test]
    fn completed_part_lists_are_checked() {
        let a = hex::encode(md5(b"a"));
        let upper = a.to_uppercase();
        let (list, md5s) =
            completed_parts(vec![part(Some(1), Some(&a)), part(Some(3), Some(&upper))]).unwrap();
        assert_eq!(list, vec![(1, a.clone()), (3, a.clone())]);
        assert_eq!(md5s, vec![md5(b"a"), md5(b"a")]);
        assert_eq!(code(completed_parts(vec![])), "MalformedXML");
        assert_eq!(
            code(completed_parts(vec![part(None, Some(&a))])),
            "MalformedXML"
        );
        assert_eq!(
            code(completed_parts(vec![
                part(Some(2), Some(&a)),
                part(Some(1), Some("zz"))
            ])),
            "InvalidPartOrder"
        );
        assert_eq!(
            code(completed_parts(vec![
                part(Some(1), Some(&a)),
                part(Some(1), Some(&a))
            ])),
            "InvalidPartOrder"
        );
        assert_eq!(
            code(completed_parts(vec![part(Some(1), Some("nothex"))])),
            "InvalidPart"
        );
        assert_eq!(
            code(completed_parts(vec![part(Some(1), None)])),
            "InvalidPart"
        );
        assert_eq!(
            code(completed_parts(vec![part(Some(0), Some(&a))])),
            "InvalidArgument"
        );
    }

    #[test]
    fn part_numbers_and_page_sizes() {
        assert_eq!(part_number(1).unwrap(), 1);
        assert_eq!(part_number(10_000).unwrap(), 10_000);
        for bad in [0, -1, 10_001] {
            assert_eq!(code(part_number(bad)), "InvalidArgument");
        }
        assert_eq!(page_size(None, "max-parts").unwrap(), 1000);
        assert_eq!(page_size(Some(5000), "max-parts").unwrap(), 1000);
        assert_eq!(page_size(Some(0), "max-parts").unwrap(), 0);
        assert_eq!(code(page_size(Some(-1), "max-parts")), "InvalidArgument");
    }

    #[test]
    fn locations_follow_the_addressing_style() {
        assert_eq!(
            location(Some("localhost:9000"), "bkt", "a b/c"),
            "http://localhost:9000/bkt/a%20b/c"
        );
        assert_eq!(
            location(Some("bkt.s3.example.com"), "bkt", "k"),
            "http://bkt.s3.example.com/k"
        );
        assert_eq!(location(None, "bkt", "k"), "/bkt/k");
    }
}

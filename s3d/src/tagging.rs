//! Object tagging: the `?tagging` operations and the `x-amz-tagging` header.
//!
//! Tags live in the version's metadata (`ObjectMeta.tags`); the engine replaces
//! them in place, so tagging never rewrites object data.

use crate::ctx::{blocking, Cybs3};
use crate::{objects, versioning};
use s3s::dto::*;
use s3s::{s3_error, S3Error, S3Result};

/// S3's limits for object tags (bucket tags allow more; they are not handled here).
const MAX_TAGS: usize = 10;
const MAX_KEY_CHARS: usize = 128;
const MAX_VALUE_CHARS: usize = 256;

pub(crate) type Tags = Vec<(String, String)>;

/// Check a tag set against S3's limits; every failure is InvalidTag (400), as in S3.
pub(crate) fn validate(tags: &[(String, String)]) -> S3Result<()> {
    if tags.len() > MAX_TAGS {
        return Err(s3_error!(
            InvalidTag,
            "Object tags cannot be greater than 10"
        ));
    }
    for (i, (k, v)) in tags.iter().enumerate() {
        if k.is_empty() || k.chars().count() > MAX_KEY_CHARS {
            return Err(s3_error!(
                InvalidTag,
                "The TagKey you have provided is invalid"
            ));
        }
        if v.chars().count() > MAX_VALUE_CHARS {
            return Err(s3_error!(
                InvalidTag,
                "The TagValue you have provided is invalid"
            ));
        }
        if tags[..i].iter().any(|(other, _)| other == k) {
            return Err(s3_error!(
                InvalidTag,
                "Cannot provide multiple Tags with the same key"
            ));
        }
    }
    Ok(())
}

/// Parse and validate an `x-amz-tagging` header: URL query syntax, `k1=v1&k2=v2`.
pub(crate) fn parse_header(header: &str) -> S3Result<Tags> {
    let bad = || {
        s3_error!(
            InvalidArgument,
            "The header 'x-amz-tagging' shall be encoded as UTF-8 encoded URL query parameters without tag name duplicates."
        )
    };
    let mut tags = Vec::new();
    for pair in header.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        tags.push((
            query_decode(k).ok_or_else(bad)?,
            query_decode(v).ok_or_else(bad)?,
        ));
    }
    validate(&tags)?;
    Ok(tags)
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a byte.
fn query_decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = (bytes.next()? as char).to_digit(16)?;
                let lo = (bytes.next()? as char).to_digit(16)?;
                out.push((hi * 16 + lo) as u8);
            }
            _ => out.push(b),
        }
    }
    String::from_utf8(out).ok()
}

pub(crate) fn from_dto(tagging: Tagging) -> S3Result<Tags> {
    let tags: Tags = tagging
        .tag_set
        .into_iter()
        .map(|t| (t.key.unwrap_or_default(), t.value.unwrap_or_default()))
        .collect();
    validate(&tags)?;
    Ok(tags)
}

fn to_dto(tags: &[(String, String)]) -> TagSet {
    tags.iter()
        .map(|(k, v)| Tag {
            key: Some(k.clone()),
            value: Some(v.clone()),
        })
        .collect()
}

/// The `x-amz-tagging-count` value: S3 sends it only for tagged objects.
pub(crate) fn count(tags: &[(String, String)]) -> Option<i32> {
    (!tags.is_empty()).then_some(tags.len() as i32)
}

/// Addressing a delete marker by version id is 405 in S3; without one it is 404.
fn marker_error(e: S3Error, by_version: bool) -> S3Error {
    if by_version && *e.code() == s3s::S3ErrorCode::NoSuchKey {
        return s3_error!(
            MethodNotAllowed,
            "The specified method is not allowed against this resource."
        );
    }
    e
}

/// Tag the addressed version: resolve it first so the response names the version
/// that was actually changed, even if a newer one lands meanwhile.
async fn set(
    s: &Cybs3,
    bucket: String,
    key: String,
    version_id: Option<String>,
    tags: Tags,
) -> S3Result<Option<String>> {
    let store = s.store.clone();
    versioning::check_version_id(version_id.as_deref())?;
    let by_version = version_id.is_some();
    let b = bucket.clone();
    let vid = blocking(move || {
        let v = store.head(&bucket, &key, version_id.as_deref())?;
        store.set_tags(&bucket, &key, Some(&v.version_id), tags)?;
        Ok(v.version_id)
    })
    .await
    .map_err(|e| marker_error(e, by_version))?;
    Ok(objects::shown_version(s, &b, &vid).await)
}

pub(crate) async fn put(
    s: &Cybs3,
    input: PutObjectTaggingInput,
) -> S3Result<PutObjectTaggingOutput> {
    let tags = from_dto(input.tagging)?;
    let version_id = set(s, input.bucket, input.key, input.version_id, tags).await?;
    Ok(PutObjectTaggingOutput { version_id })
}

pub(crate) async fn delete(
    s: &Cybs3,
    input: DeleteObjectTaggingInput,
) -> S3Result<DeleteObjectTaggingOutput> {
    let version_id = set(s, input.bucket, input.key, input.version_id, Vec::new()).await?;
    Ok(DeleteObjectTaggingOutput { version_id })
}

pub(crate) async fn get(
    s: &Cybs3,
    input: GetObjectTaggingInput,
) -> S3Result<GetObjectTaggingOutput> {
    versioning::check_version_id(input.version_id.as_deref())?;
    let store = s.store.clone();
    let by_version = input.version_id.is_some();
    let (bucket, key, vid) = (input.bucket.clone(), input.key, input.version_id);
    let v = blocking(move || store.head(&bucket, &key, vid.as_deref()))
        .await
        .map_err(|e| marker_error(e, by_version))?;
    Ok(GetObjectTaggingOutput {
        tag_set: to_dto(&v.meta.tags),
        version_id: objects::shown_version(s, &input.bucket, &v.version_id).await,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(r: S3Result<Tags>) -> String {
        r.unwrap_err().code().as_str().to_string()
    }

    #[test]
    fn header_is_url_query_encoded() {
        let tags = parse_header("a=1&b%20c=x+y%2Fz&empty=&bare").unwrap();
        assert_eq!(
            tags,
            vec![
                ("a".into(), "1".into()),
                ("b c".into(), "x y/z".into()),
                ("empty".into(), "".into()),
                ("bare".into(), "".into()),
            ]
        );
        assert!(parse_header("").unwrap().is_empty());
        assert_eq!(code(parse_header("a=%zz")), "InvalidArgument");
        assert_eq!(code(parse_header("a=%ff")), "InvalidArgument");
        assert_eq!(code(parse_header("a=1&a=2")), "InvalidTag");
    }

    #[test]
    fn limits_are_enforced() {
        let many: Tags = (0..11).map(|i| (format!("k{i}"), "v".into())).collect();
        assert_eq!(code(validate(&many).map(|_| vec![])), "InvalidTag");
        assert!(validate(&many[..10]).is_ok());
        let k128 = "é".repeat(128);
        let v256 = "v".repeat(256);
        assert!(validate(&[(k128.clone(), v256.clone())]).is_ok());
        let long_key = vec![(format!("{k128}x"), "v".to_string())];
        assert_eq!(code(validate(&long_key).map(|_| vec![])), "InvalidTag");
        let long_value = vec![("k".to_string(), format!("{v256}x"))];
        assert_eq!(code(validate(&long_value).map(|_| vec![])), "InvalidTag");
        let empty_key = vec![(String::new(), "v".to_string())];
        assert_eq!(code(validate(&empty_key).map(|_| vec![])), "InvalidTag");
    }

    #[test]
    fn xml_tag_sets_round_trip() {
        let tags = vec![("a".to_string(), "1".to_string())];
        let back = from_dto(Tagging {
            tag_set: to_dto(&tags),
        })
        .unwrap();
        assert_eq!(back, tags);
        assert_eq!(count(&tags), Some(1));
        assert_eq!(count(&[]), None);
    }
}

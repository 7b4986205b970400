//! Bucket settings kept as engine bucket attributes: tagging here, and the XML
//! codec the settings share. Each setting is stored as the S3 XML document it was
//! set with (re-serialized from the parsed DTO), so reading it back is lossless.

use crate::ctx::Cybs3;
use hyper::StatusCode;
use s3s::dto::*;
use s3s::xml;
use s3s::{s3_error, S3Error, S3ErrorCode, S3Result};

/// Attribute names in the engine's per-bucket table.
pub(crate) const ATTR_TAGGING: &str = "tagging";

/// AWS's limits on bucket tags.
const MAX_TAGS: usize = 50;
const MAX_KEY_CHARS: usize = 128;
const MAX_VALUE_CHARS: usize = 256;

pub(crate) fn to_xml<T: xml::Serialize>(value: &T) -> S3Result<Vec<u8>> {
    let mut buf = Vec::new();
    value
        .serialize(&mut xml::Serializer::new(&mut buf))
        .map_err(S3Error::internal_error)?;
    Ok(buf)
}

/// Read back a stored setting. It was written by `to_xml`, so a failure means
/// damaged metadata, not a client error.
pub(crate) fn from_xml<T: for<'x> xml::Deserialize<'x>>(bytes: &[u8]) -> S3Result<T> {
    let mut d = xml::Deserializer::new(bytes);
    T::deserialize(&mut d).map_err(|e| {
        tracing::error!("stored bucket setting does not parse: {e}");
        S3Error::with_message(
            S3ErrorCode::InternalError,
            "We encountered an internal error. Please try again.",
        )
    })
}

pub(crate) async fn put_tagging(
    s: &Cybs3,
    input: PutBucketTaggingInput,
) -> S3Result<PutBucketTaggingOutput> {
    check_tags(&input.tagging.tag_set)?;
    let bytes = to_xml(&input.tagging)?;
    s.set_bucket_attr(&input.bucket, ATTR_TAGGING, Some(bytes))
        .await?;
    Ok(PutBucketTaggingOutput {})
}

pub(crate) async fn get_tagging(
    s: &Cybs3,
    input: GetBucketTaggingInput,
) -> S3Result<GetBucketTaggingOutput> {
    let Some(bytes) = s.bucket_attr(&input.bucket, ATTR_TAGGING).await? else {
        return Err(s3_error!(NoSuchTagSet, "The TagSet does not exist"));
    };
    let tagging: Tagging = from_xml(&bytes)?;
    Ok(GetBucketTaggingOutput {
        tag_set: tagging.tag_set,
    })
}

pub(crate) async fn delete_tagging(
    s: &Cybs3,
    input: DeleteBucketTaggingInput,
) -> S3Result<DeleteBucketTaggingOutput> {
    s.set_bucket_attr(&input.bucket, ATTR_TAGGING, None).await?;
    Ok(DeleteBucketTaggingOutput {})
}

/// The checks S3 applies to a bucket's tag set, with its codes and messages.
fn check_tags(tags: &[Tag]) -> S3Result<()> {
    if tags.len() > MAX_TAGS {
        let mut e = S3Error::with_message(
            S3ErrorCode::Custom("BadRequest".into()),
            "Bucket tag count cannot be greater than 50",
        );
        e.set_status_code(StatusCode::BAD_REQUEST);
        return Err(e);
    }
    let mut seen = std::collections::HashSet::new();
    for tag in tags {
        // Key and Value are both required by the schema.
        let (Some(key), Some(value)) = (&tag.key, &tag.value) else {
            return Err(s3_error!(
                MalformedXML,
                "The XML you provided was not well-formed or did not validate against our published schema"
            ));
        };
        let chars = key.chars().count();
        if chars == 0 || chars > MAX_KEY_CHARS || !key.chars().all(tag_char) {
            return Err(s3_error!(
                InvalidTag,
                "The TagKey you have provided is invalid"
            ));
        }
        if value.chars().count() > MAX_VALUE_CHARS || !value.chars().all(tag_char) {
            return Err(s3_error!(
                InvalidTag,
                "The TagValue you have provided is invalid"
            ));
        }
        if key.to_ascii_lowercase().starts_with("aws:") {
            return Err(s3_error!(
                InvalidTag,
                "System tags cannot be added/updated by requester"
            ));
        }
        if !seen.insert(key.as_str()) {
            return Err(s3_error!(
                InvalidTag,
                "Cannot provide multiple Tags with the same key"
            ));
        }
    }
    Ok(())
}

/// Letters, digits and white space in any script, and `+ - = . _ : / @`.
fn tag_char(c: char) -> bool {
    c.is_alphanumeric() || c.is_whitespace() || "+-=._:/@".contains(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(k: &str, v: &str) -> Tag {
        Tag {
            key: Some(k.into()),
            value: Some(v.into()),
        }
    }

    fn code(tags: &[Tag]) -> Option<String> {
        check_tags(tags)
            .err()
            .map(|e| e.code().as_str().to_string())
    }

    #[test]
    fn tag_sets_are_checked_as_s3_does() {
        assert_eq!(code(&[tag("env", "prod"), tag("team", "a b/c@d")]), None);
        assert_eq!(code(&[tag("ключ", "значение")]), None);
        assert_eq!(code(&[tag("k", "")]), None);
        let many: Vec<Tag> = (0..51).map(|i| tag(&format!("k{i}"), "v")).collect();
        assert_eq!(code(&many).as_deref(), Some("BadRequest"));
        assert_eq!(code(&many[..50]), None);
        assert_eq!(
            code(&[tag("a", "1"), tag("a", "2")]).as_deref(),
            Some("InvalidTag")
        );
        assert_eq!(code(&[tag("", "1")]).as_deref(), Some("InvalidTag"));
        assert_eq!(
            code(&[tag(&"k".repeat(129), "1")]).as_deref(),
            Some("InvalidTag")
        );
        assert_eq!(
            code(&[tag("k", &"v".repeat(257))]).as_deref(),
            Some("InvalidTag")
        );
        assert_eq!(code(&[tag("k", "a*b")]).as_deref(), Some("InvalidTag"));
        assert_eq!(code(&[tag("aws:x", "1")]).as_deref(), Some("InvalidTag"));
        let no_value = Tag {
            key: Some("k".into()),
            value: None,
        };
        assert_eq!(code(&[no_value]).as_deref(), Some("MalformedXML"));
        let e = check_tags(&many).unwrap_err();
        assert_eq!(e.status_code().unwrap().as_u16(), 400);
    }

    #[test]
    fn settings_roundtrip_through_xml() {
        let t = Tagging {
            tag_set: vec![tag("a", "1 & <2>"), tag("b", "")],
        };
        let back: Tagging = from_xml(&to_xml(&t).unwrap()).unwrap();
        assert_eq!(back, t);
    }
}

//! ListObjectsV2 and ListObjects (v1): one engine range scan per page.

use crate::acl;
use crate::buckets::timestamp;
use crate::ctx::{blocking, Cybs3};
use crate::identity::grants::BucketAccess;
use crate::xml::escape;
use base64::{engine::general_purpose::URL_SAFE_NO_PAD as TOKEN, Engine as _};
use hyper::header::{HeaderValue, CONTENT_LENGTH};
use hyper::Response;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use s3s::dto::*;
use s3s::{s3_error, Body, S3Response, S3Result};

/// S3's page size limit (and default).
pub(crate) const MAX_KEYS: usize = 1000;

/// One page as asked for by either list call.
struct Page {
    objects: Vec<engine::ObjectVersion>,
    prefixes: Vec<String>,
    truncated: bool,
    /// The last key or common prefix returned: the next page starts after it.
    next: Option<String>,
}

async fn page(
    s: &Cybs3,
    bucket: String,
    prefix: String,
    delimiter: Option<String>,
    after: Option<String>,
    max_keys: Option<i32>,
) -> S3Result<Page> {
    let max = match max_keys {
        None => MAX_KEYS,
        Some(n) if n < 0 => {
            return Err(s3_error!(InvalidArgument, "max-keys must not be negative"))
        }
        Some(n) => (n as usize).min(MAX_KEYS),
    };
    let q = engine::ListQuery {
        prefix,
        delimiter: delimiter.filter(|d| !d.is_empty()),
        after,
        max,
    };
    let store = s.store.clone();
    let p = blocking(move || store.list(&bucket, &q)).await?;
    Ok(Page {
        objects: p.objects,
        prefixes: p.prefixes,
        // With max-keys=0 there is nothing to continue after.
        truncated: p.truncated && p.next.is_some(),
        next: p.next,
    })
}

/// MinIO's listing extension, `metadata=true` on ListObjectsV2: each object's user
/// metadata comes with it as `<UserMetadata>` (elements `X-Amz-Meta-<name>`), so a
/// directory listing with file attributes is one request rather than a HEAD per file.
/// s3s writes the XML; [`add_user_metadata`] then adds these, in order.
#[derive(Clone)]
pub(crate) struct UserMetadata(Vec<Vec<(String, String)>>);

/// Whether a ListObjectsV2 request asks for [`UserMetadata`].
pub(crate) fn wants_metadata(query: Option<&str>) -> bool {
    query.is_some_and(|q| q.split('&').any(|kv| kv == "metadata=true"))
}

pub(crate) async fn objects_v2(
    s: &Cybs3,
    input: ListObjectsV2Input,
    metadata: bool,
) -> S3Result<S3Response<ListObjectsV2Output>> {
    let url = url_encoded(input.encoding_type.as_ref())?;
    let after = match &input.continuation_token {
        Some(t) => Some(decode_token(t)?),
        None => input.start_after.clone().filter(|a| !a.is_empty()),
    };
    let prefix = input.prefix.clone().unwrap_or_default();
    let p = page(
        s,
        input.bucket.clone(),
        prefix,
        input.delimiter.clone(),
        after,
        input.max_keys,
    )
    .await?;
    let owners = match input.fetch_owner == Some(true) {
        true => Some(acl::load(s, &input.bucket).await?),
        false => None,
    };
    let enc = |v: String| encode_if(url, v);
    let user = metadata.then(|| {
        UserMetadata(
            p.objects
                .iter()
                .map(|v| v.meta.user.clone())
                .collect::<Vec<_>>(),
        )
    });
    let mut resp = S3Response::new(ListObjectsV2Output {
        name: Some(input.bucket),
        key_count: Some((p.objects.len() + p.prefixes.len()) as i32),
        is_truncated: Some(p.truncated),
        next_continuation_token: p.next.as_deref().filter(|_| p.truncated).map(encode_token),
        contents: Some(entries(p.objects, url, owners.as_ref())),
        common_prefixes: Some(common_prefixes(p.prefixes, url)),
        prefix: Some(enc(input.prefix.unwrap_or_default())),
        delimiter: echoed_delimiter(input.delimiter, url),
        start_after: input.start_after.map(enc),
        max_keys: Some(input.max_keys.unwrap_or(MAX_KEYS as i32)),
        continuation_token: input.continuation_token,
        encoding_type: input.encoding_type,
        ..Default::default()
    });
    if let Some(user) = user {
        resp.extensions.insert(user);
    }
    Ok(resp)
}

/// Adds the [`UserMetadata`] a listing response carries to its XML: one `<UserMetadata>`
/// before each `</Contents>`, the n-th object's in the n-th (keys are escaped, so the
/// closing tag is unambiguous). Names that cannot be XML element names are left out.
pub(crate) fn add_user_metadata(resp: Response<Body>) -> Response<Body> {
    let Some(UserMetadata(metas)) = resp.extensions().get::<UserMetadata>().cloned() else {
        return resp;
    };
    let Some(xml) = resp.body().bytes() else {
        return resp;
    };
    let Ok(xml) = std::str::from_utf8(&xml) else {
        return resp;
    };
    const CLOSE: &str = "</Contents>";
    let mut out = String::with_capacity(xml.len() + metas.len() * 96);
    let mut rest = xml;
    let mut metas = metas.iter();
    while let Some(at) = rest.find(CLOSE) {
        out.push_str(&rest[..at]);
        out.push_str("<UserMetadata>");
        for (name, value) in metas.next().into_iter().flatten() {
            if !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            {
                continue;
            }
            out.push_str(&format!(
                "<X-Amz-Meta-{name}>{}</X-Amz-Meta-{name}>",
                escape(value)
            ));
        }
        out.push_str("</UserMetadata>");
        out.push_str(CLOSE);
        rest = &rest[at + CLOSE.len()..];
    }
    out.push_str(rest);
    let (mut parts, _) = resp.into_parts();
    parts
        .headers
        .insert(CONTENT_LENGTH, HeaderValue::from(out.len()));
    Response::from_parts(parts, Body::from(out))
}

pub(crate) async fn objects_v1(s: &Cybs3, input: ListObjectsInput) -> S3Result<ListObjectsOutput> {
    let url = url_encoded(input.encoding_type.as_ref())?;
    let p = page(
        s,
        input.bucket.clone(),
        input.prefix.clone().unwrap_or_default(),
        input.delimiter.clone(),
        input.marker.clone().filter(|m| !m.is_empty()),
        input.max_keys,
    )
    .await?;
    let enc = |v: String| encode_if(url, v);
    let owners = acl::load(s, &input.bucket).await?;
    Ok(ListObjectsOutput {
        name: Some(input.bucket),
        is_truncated: Some(p.truncated),
        // AWS sends NextMarker only with a delimiter; sending it always is harmless and
        // spares clients from deriving it.
        next_marker: p.next.filter(|_| p.truncated).map(enc),
        contents: Some(entries(p.objects, url, Some(&owners))),
        common_prefixes: Some(common_prefixes(p.prefixes, url)),
        prefix: Some(enc(input.prefix.unwrap_or_default())),
        delimiter: echoed_delimiter(input.delimiter, url),
        // Echoed even when none was given (an empty <Marker>), as AWS does.
        marker: Some(enc(input.marker.unwrap_or_default())),
        max_keys: Some(input.max_keys.unwrap_or(MAX_KEYS as i32)),
        encoding_type: input.encoding_type,
        ..Default::default()
    })
}

/// An empty `delimiter=` means no delimiter: it is neither applied nor echoed.
fn echoed_delimiter(delimiter: Option<String>, url: bool) -> Option<String> {
    delimiter
        .filter(|d| !d.is_empty())
        .map(|d| encode_if(url, d))
}

/// Listing entries; with their Owner when `owners` (the bucket's access settings) is given.
fn entries(
    objects: Vec<engine::ObjectVersion>,
    url: bool,
    owners: Option<&BucketAccess>,
) -> Vec<Object> {
    objects
        .into_iter()
        .map(|v| Object {
            owner: owners.map(|a| acl::object_owner(a, &v.meta)),
            e_tag: Some(ETag::Strong(v.meta.etag)),
            last_modified: Some(timestamp(v.mtime_ns)),
            size: Some(v.size as i64),
            storage_class: Some(ObjectStorageClass::from(
                v.meta.storage_class.unwrap_or_else(|| "STANDARD".into()),
            )),
            key: Some(encode_if(url, v.key)),
            ..Default::default()
        })
        .collect()
}

fn common_prefixes(prefixes: Vec<String>, url: bool) -> Vec<CommonPrefix> {
    prefixes
        .into_iter()
        .map(|p| CommonPrefix {
            prefix: Some(encode_if(url, p)),
        })
        .collect()
}

/// `encoding-type=url` is the only encoding S3 knows; s3s leaves it to us.
pub(crate) fn url_encoded(t: Option<&EncodingType>) -> S3Result<bool> {
    match t.map(EncodingType::as_str) {
        None => Ok(false),
        Some(t) if t.eq_ignore_ascii_case(EncodingType::URL) => Ok(true),
        Some(t) => Err(s3_error!(
            InvalidArgument,
            "Invalid Encoding Method specified in Request: {t}"
        )),
    }
}

pub(crate) fn encode_if(url: bool, v: String) -> String {
    if url {
        url_encode(&v)
    } else {
        v
    }
}

/// Everything but unreserved characters and `/` is percent-encoded, as S3 does for
/// `encoding-type=url` (clients decode with `unquote_plus`, so `+` must be escaped).
const URL_ENCODED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

fn url_encode(s: &str) -> String {
    utf8_percent_encode(s, URL_ENCODED).to_string()
}

/// Continuation tokens are opaque to clients: the key (or bucket name, for ListBuckets)
/// to continue after, in base64url.
pub(crate) fn encode_token(after: &str) -> String {
    TOKEN.encode(after)
}

pub(crate) fn decode_token(token: &str) -> S3Result<String> {
    TOKEN
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| {
            s3_error!(
                InvalidArgument,
                "The continuation token provided is incorrect"
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuation_tokens_roundtrip_and_reject_garbage() {
        for key in ["a", "dir/", "ünïcode key+ with spaces", "x\u{1}y"] {
            let t = encode_token(key);
            assert!(t
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
            assert_eq!(decode_token(&t).unwrap(), key);
        }
        assert_eq!(
            decode_token("%%%").unwrap_err().code().as_str(),
            "InvalidArgument"
        );
        // Valid base64 of bytes that are not UTF-8.
        assert!(decode_token(&TOKEN.encode([0xff, 0xfe])).is_err());
    }

    #[test]
    fn url_encoding_escapes_all_but_unreserved_and_slash() {
        assert_eq!(url_encode("a/b c+d"), "a/b%20c%2Bd");
        assert_eq!(url_encode("é"), "%C3%A9");
        assert_eq!(url_encode("A-z_0.9~"), "A-z_0.9~");
        assert_eq!(url_encode("\u{1}&=?#%"), "%01%26%3D%3F%23%25");
    }

    #[test]
    fn user_metadata_goes_into_each_contents_in_order() {
        let xml = "<R><Contents><Key>a&lt;</Key></Contents><Contents><Key>b</Key></Contents></R>";
        let mut resp = Response::new(Body::from(xml.to_string()));
        resp.extensions_mut().insert(UserMetadata(vec![
            vec![
                ("mode".into(), "33188".into()),
                ("bad name".into(), "x".into()),
            ],
            vec![("mtime".into(), "1<2".into())],
        ]));
        let resp = add_user_metadata(resp);
        let body = String::from_utf8(resp.body().bytes().unwrap().to_vec()).unwrap();
        assert_eq!(
            body,
            "<R><Contents><Key>a&lt;</Key><UserMetadata><X-Amz-Meta-mode>33188</X-Amz-Meta-mode>\
             </UserMetadata></Contents><Contents><Key>b</Key><UserMetadata>\
             <X-Amz-Meta-mtime>1&lt;2</X-Amz-Meta-mtime></UserMetadata></Contents></R>"
        );
        assert_eq!(
            resp.headers()[CONTENT_LENGTH],
            body.len().to_string().as_str()
        );
        assert!(wants_metadata(Some("list-type=2&metadata=true")));
        assert!(!wants_metadata(Some("list-type=2&metadata=false")));
    }

    /// Walk a listing page by page through continuation tokens.
    async fn walk(s: &Cybs3, delimiter: Option<&str>, max: i32) -> Vec<String> {
        let mut seen = Vec::new();
        let mut token = None;
        loop {
            let out = objects_v2(
                s,
                ListObjectsV2Input {
                    bucket: "bkt".into(),
                    delimiter: delimiter.map(str::to_string),
                    max_keys: Some(max),
                    continuation_token: token.take(),
                    ..Default::default()
                },
                false,
            )
            .await
            .unwrap()
            .output;
            let contents = out.contents.unwrap_or_default();
            let prefixes = out.common_prefixes.unwrap_or_default();
            assert!(contents.len() + prefixes.len() <= max as usize);
            seen.extend(contents.into_iter().filter_map(|o| o.key));
            seen.extend(prefixes.into_iter().filter_map(|p| p.prefix));
            if out.is_truncated != Some(true) {
                return seen;
            }
            token = out.next_continuation_token;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pages_continue_where_the_last_one_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let store = engine::Store::open(engine::StoreConfig::new(vec![dir.path().into()])).unwrap();
        store.create_bucket("bkt").unwrap();
        for key in ["a", "b/1", "b/2", "b/3", "c", "d/x", "e"] {
            let w = store.put("bkt", key).unwrap();
            w.finish(engine::ObjectMeta::default()).unwrap();
        }
        let s = Cybs3::for_tests(store);
        let mut all = walk(&s, None, 2).await;
        all.sort();
        assert_eq!(all, ["a", "b/1", "b/2", "b/3", "c", "d/x", "e"]);
        let mut top = walk(&s, Some("/"), 2).await;
        top.sort();
        assert_eq!(top, ["a", "b/", "c", "d/", "e"]);
    }

    #[test]
    fn only_url_encoding_is_accepted() {
        assert!(!url_encoded(None).unwrap());
        assert!(url_encoded(Some(&EncodingType::from_static(EncodingType::URL))).unwrap());
        assert!(url_encoded(Some(&EncodingType::from("base64".to_string()))).is_err());
    }
}

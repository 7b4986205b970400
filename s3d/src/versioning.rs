//! Bucket versioning: the bucket setting, version ids on object requests,
//! delete markers as S3 reports them, and ListObjectVersions.

use crate::acl;
use crate::buckets::timestamp;
use crate::ctx::{self, blocking, Cybs3};
use crate::errors;
use crate::lifecycle;
use crate::list::{encode_if, url_encoded, MAX_KEYS};
use engine::{ObjectReader, ObjectVersion, Versioning};
use hyper::header::{HeaderMap, HeaderValue, ALLOW, CONTENT_TYPE};
use s3s::dto::*;
use s3s::{s3_error, S3Error, S3ErrorCode, S3Result};

/// The id of versions written while versioning was off or suspended.
pub(crate) const NULL_VERSION: &str = "null";

pub(crate) async fn put_config(
    s: &Cybs3,
    input: PutBucketVersioningInput,
) -> S3Result<PutBucketVersioningOutput> {
    let cfg = input.versioning_configuration;
    // MFA delete needs an MFA device we do not have; saying "Disabled" is harmless.
    if cfg
        .mfa_delete
        .as_ref()
        .is_some_and(|m| m.as_str() != MFADelete::DISABLED)
    {
        return Err(s3_error!(
            NotImplemented,
            "MFA delete is not supported by this server."
        ));
    }
    let state = parse_status(cfg.status.as_ref().map(BucketVersioningStatus::as_str))?;
    let store = s.store.clone();
    blocking(move || store.set_versioning(&input.bucket, state)).await?;
    Ok(PutBucketVersioningOutput {})
}

/// S3's schema allows only these two values (anything else fails validation).
fn parse_status(status: Option<&str>) -> S3Result<Versioning> {
    match status {
        Some(BucketVersioningStatus::ENABLED) => Ok(Versioning::Enabled),
        Some(BucketVersioningStatus::SUSPENDED) => Ok(Versioning::Suspended),
        _ => Err(s3_error!(
            MalformedXML,
            "The XML you provided was not well-formed or did not validate against our published schema"
        )),
    }
}

pub(crate) async fn get_config(
    s: &Cybs3,
    input: GetBucketVersioningInput,
) -> S3Result<GetBucketVersioningOutput> {
    let store = s.store.clone();
    let rec = blocking(move || store.bucket(&input.bucket)).await?;
    // A bucket that never had versioning answers an empty VersioningConfiguration.
    let status = match rec.versioning {
        Versioning::Unversioned => None,
        Versioning::Enabled => Some(BucketVersioningStatus::ENABLED),
        Versioning::Suspended => Some(BucketVersioningStatus::SUSPENDED),
    };
    Ok(GetBucketVersioningOutput {
        status: status.map(BucketVersioningStatus::from_static),
        mfa_delete: None,
    })
}

/// The `x-amz-version-id` to send for a version: none in a bucket that never had
/// versioning, otherwise its id ("null" included).
pub(crate) fn shown_version_id(state: Versioning, version_id: &str) -> Option<String> {
    match state {
        Versioning::Unversioned if version_id == NULL_VERSION || version_id.is_empty() => None,
        _ => Some(version_id.to_string()),
    }
}

/// Refuse a `versionId` that cannot be one of ours ("null" or 32 hex digits) with
/// S3's answer, rather than looking for it.
pub(crate) fn check_version_id(version_id: Option<&str>) -> S3Result<()> {
    match version_id {
        None => Ok(()),
        Some(v) if is_version_id(v) => Ok(()),
        Some(_) => Err(s3_error!(InvalidArgument, "Invalid version id specified")),
    }
}

fn is_version_id(v: &str) -> bool {
    v == NULL_VERSION || (v.len() == 32 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// HEAD's lookup: the version and the bucket's versioning state.
pub(crate) async fn head(
    s: &Cybs3,
    bucket: String,
    key: String,
    version_id: Option<String>,
) -> S3Result<Found<ObjectVersion>> {
    lookup(s, bucket, key, version_id, |store, b, k, v| {
        store.head(b, k, v)
    })
    .await
}

/// GET's lookup: a reader on the version and the bucket's versioning state.
pub(crate) async fn open(
    s: &Cybs3,
    bucket: String,
    key: String,
    version_id: Option<String>,
) -> S3Result<Found<ObjectReader>> {
    lookup(s, bucket, key, version_id, |store, b, k, v| {
        store.open_object(b, k, v)
    })
    .await
}

/// What a GET or HEAD found: the object (or a reader on it), the bucket's versioning
/// state, and when the current version was asked for, the bucket's lifecycle setting
/// (its `x-amz-expiration`), read in the same trip to the store.
pub(crate) struct Found<T> {
    pub object: T,
    pub versioning: Versioning,
    pub lifecycle: Option<Vec<u8>>,
}

async fn lookup<T: Send + 'static>(
    s: &Cybs3,
    bucket: String,
    key: String,
    version_id: Option<String>,
    f: impl FnOnce(&engine::Store, &str, &str, Option<&str>) -> engine::Result<T> + Send + 'static,
) -> S3Result<Found<T>> {
    check_version_id(version_id.as_deref())?;
    let explicit = version_id.is_some();
    let store = s.store.clone();
    let found = ctx::spawn(move || {
        let versioning = store.bucket(&bucket)?.versioning;
        let object = f(&store, &bucket, &key, version_id.as_deref())?;
        let lifecycle = match explicit {
            true => None,
            false => store.bucket_attr(&bucket, lifecycle::ATTR)?,
        };
        Ok(Found {
            object,
            versioning,
            lifecycle,
        })
    })
    .await?;
    match found {
        Ok(found) => Ok(found),
        Err(engine::Error::DeleteMarker { version_id, .. }) => {
            Err(delete_marker(&version_id, explicit))
        }
        Err(e) => Err(errors::from_engine(e)),
    }
}

/// What S3 answers for a delete marker: 404 NoSuchKey when it is the current
/// version, 405 MethodNotAllowed when asked for by version id; both say it is a
/// delete marker and which.
fn delete_marker(version_id: &str, explicit: bool) -> S3Error {
    let mut headers = HeaderMap::new();
    // set_headers replaces every header, the XML content type included.
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/xml"));
    headers.insert("x-amz-delete-marker", HeaderValue::from_static("true"));
    if let Ok(v) = HeaderValue::from_str(version_id) {
        headers.insert("x-amz-version-id", v);
    }
    let mut e = if explicit {
        headers.insert(ALLOW, HeaderValue::from_static("DELETE"));
        S3Error::with_message(
            S3ErrorCode::MethodNotAllowed,
            "The specified method is not allowed against this resource.",
        )
    } else {
        S3Error::with_message(S3ErrorCode::NoSuchKey, "The specified key does not exist.")
    };
    e.set_headers(headers);
    e
}

pub(crate) async fn list(
    s: &Cybs3,
    input: ListObjectVersionsInput,
) -> S3Result<ListObjectVersionsOutput> {
    let url = url_encoded(input.encoding_type.as_ref())?;
    let max = match input.max_keys {
        None => MAX_KEYS,
        Some(n) if n < 0 => {
            return Err(s3_error!(InvalidArgument, "max-keys must not be negative"))
        }
        Some(n) => (n as usize).min(MAX_KEYS),
    };
    let key_marker = input.key_marker.clone().filter(|k| !k.is_empty());
    let version_marker = input.version_id_marker.clone().filter(|v| !v.is_empty());
    if version_marker.is_some() && key_marker.is_none() {
        return Err(s3_error!(
            InvalidArgument,
            "A version-id marker cannot be specified without a key marker."
        ));
    }
    check_version_id(version_marker.as_deref())?;
    let q = engine::VersionQuery {
        prefix: input.prefix.clone().unwrap_or_default(),
        delimiter: input.delimiter.clone().filter(|d| !d.is_empty()),
        key_marker,
        version_marker,
        max,
    };
    let store = s.store.clone();
    let bucket = input.bucket.clone();
    let p = blocking(move || store.list_versions(&bucket, &q)).await?;
    let owners = acl::load(s, &input.bucket).await?;
    // With max-keys=0 there is nothing to continue after.
    let truncated = p.truncated && p.next_key.is_some();
    let enc = |v: String| encode_if(url, v);
    let (mut versions, mut markers) = (Vec::new(), Vec::new());
    for e in p.versions {
        let v = e.version;
        let owner = Some(acl::object_owner(&owners, &v.meta));
        if v.delete_marker {
            markers.push(DeleteMarkerEntry {
                is_latest: Some(e.is_latest),
                key: Some(enc(v.key)),
                last_modified: Some(timestamp(v.mtime_ns)),
                owner,
                version_id: Some(v.version_id),
            });
        } else {
            versions.push(s3s::dto::ObjectVersion {
                e_tag: Some(ETag::Strong(v.meta.etag)),
                is_latest: Some(e.is_latest),
                key: Some(enc(v.key)),
                last_modified: Some(timestamp(v.mtime_ns)),
                owner,
                size: Some(v.size as i64),
                storage_class: Some(ObjectVersionStorageClass::from(
                    v.meta.storage_class.unwrap_or_else(|| "STANDARD".into()),
                )),
                version_id: Some(v.version_id),
                ..Default::default()
            });
        }
    }
    let common_prefixes = p
        .prefixes
        .into_iter()
        .map(|p| CommonPrefix {
            prefix: Some(enc(p)),
        })
        .collect();
    Ok(ListObjectVersionsOutput {
        name: Some(input.bucket),
        prefix: Some(enc(input.prefix.unwrap_or_default())),
        delimiter: input.delimiter.map(enc),
        key_marker: Some(enc(input.key_marker.unwrap_or_default())),
        version_id_marker: Some(input.version_id_marker.unwrap_or_default()),
        max_keys: Some(input.max_keys.unwrap_or(MAX_KEYS as i32)),
        is_truncated: Some(truncated),
        next_key_marker: p.next_key.filter(|_| truncated).map(enc),
        next_version_id_marker: p.next_version.filter(|_| truncated),
        versions: Some(versions),
        delete_markers: Some(markers),
        common_prefixes: Some(common_prefixes),
        encoding_type: input.encoding_type,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_ids_are_shown_once_versioning_was_ever_on() {
        assert_eq!(shown_version_id(Versioning::Unversioned, "null"), None);
        assert_eq!(
            shown_version_id(Versioning::Suspended, "null").as_deref(),
            Some("null")
        );
        assert_eq!(
            shown_version_id(Versioning::Enabled, "null").as_deref(),
            Some("null")
        );
        let id = "00ff".repeat(8);
        assert_eq!(
            shown_version_id(Versioning::Enabled, &id).as_deref(),
            Some(id.as_str())
        );
    }

    #[test]
    fn malformed_version_ids_are_invalid_arguments() {
        assert!(check_version_id(None).is_ok());
        assert!(check_version_id(Some("null")).is_ok());
        assert!(check_version_id(Some(&"a1".repeat(16))).is_ok());
        for bad in ["", "NULL", "abc", &"g".repeat(32), &"a".repeat(33)] {
            let e = check_version_id(Some(bad)).unwrap_err();
            assert_eq!(e.code().as_str(), "InvalidArgument", "{bad:?}");
            assert_eq!(e.status_code().unwrap().as_u16(), 400);
        }
    }

    #[test]
    fn only_enabled_and_suspended_are_valid_states() {
        assert_eq!(parse_status(Some("Enabled")).unwrap(), Versioning::Enabled);
        assert_eq!(
            parse_status(Some("Suspended")).unwrap(),
            Versioning::Suspended
        );
        for bad in [None, Some("enabled"), Some(""), Some("Disabled")] {
            assert_eq!(
                parse_status(bad).unwrap_err().code().as_str(),
                "MalformedXML"
            );
        }
    }

    #[test]
    fn delete_markers_answer_404_or_405_with_their_headers() {
        let e = delete_marker("abc", false);
        assert_eq!(e.status_code().unwrap().as_u16(), 404);
        assert_eq!(e.code().as_str(), "NoSuchKey");
        let h = e.headers().unwrap();
        assert_eq!(h["x-amz-delete-marker"], "true");
        assert_eq!(h["x-amz-version-id"], "abc");
        assert_eq!(h["content-type"], "application/xml");
        assert!(h.get("allow").is_none());
        let e = delete_marker("abc", true);
        assert_eq!(e.status_code().unwrap().as_u16(), 405);
        assert_eq!(e.code().as_str(), "MethodNotAllowed");
        assert_eq!(e.headers().unwrap()["allow"], "DELETE");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn versions_list_with_markers_and_pages() {
        let dir = tempfile::tempdir().unwrap();
        let store = engine::Store::open(engine::StoreConfig::new(vec![dir.path().into()])).unwrap();
        store.create_bucket("bkt").unwrap();
        store.set_versioning("bkt", Versioning::Enabled).unwrap();
        for key in ["a", "a", "b"] {
            let w = store.put("bkt", key).unwrap();
            w.finish(engine::ObjectMeta::default()).unwrap();
        }
        store.delete("bkt", "b", None, false).unwrap();
        let s = Cybs3::for_tests(store);
        let all = list(
            &s,
            ListObjectVersionsInput {
                bucket: "bkt".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let versions = all.versions.unwrap();
        let markers = all.delete_markers.unwrap();
        assert_eq!(versions.len(), 3);
        assert_eq!(markers.len(), 1);
        assert_eq!(markers[0].is_latest, Some(true));
        let latest: Vec<_> = versions.iter().map(|v| v.is_latest.unwrap()).collect();
        assert_eq!(latest, [true, false, false]);
        assert_eq!(all.is_truncated, Some(false));

        // Page through one entry at a time: every entry exactly once.
        let (mut seen, mut km, mut vm) = (0, None, None);
        loop {
            let page = list(
                &s,
                ListObjectVersionsInput {
                    bucket: "bkt".into(),
                    max_keys: Some(1),
                    key_marker: km.take(),
                    version_id_marker: vm.take(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
            seen += page.versions.unwrap().len() + page.delete_markers.unwrap().len();
            if page.is_truncated != Some(true) {
                break;
            }
            km = page.next_key_marker;
            vm = page.next_version_id_marker;
        }
        assert_eq!(seen, 4);

        let e = list(
            &s,
            ListObjectVersionsInput {
                bucket: "bkt".into(),
                version_id_marker: Some("null".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
        assert_eq!(e.code().as_str(), "InvalidArgument");
    }
}

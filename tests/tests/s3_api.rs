//! S3 API conformance through the official AWS SDK at its default settings (checksums,
//! aws-chunked trailers), path style. Every assertion states AWS S3's documented
//! behaviour (status codes, error codes, headers), not whatever the server does today.
//!
//! (One long file on purpose: every test binary links the AWS SDK again, about 20 s of CI each.)

mod common;

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::{
    BucketVersioningStatus, ChecksumAlgorithm, ChecksumMode, CompletedMultipartUpload,
    CompletedPart, CorsConfiguration, CorsRule, Delete, EncodingType, MetadataDirective,
    ObjectIdentifier, Tag, Tagging,
};
use aws_sdk_s3::Client;
use common::*;
use cybs3_tests::content;
use std::time::{Duration, SystemTime};

fn tag(k: &str, v: &str) -> Tag {
    Tag::builder().key(k).value(v).build().unwrap()
}

fn tags_of(set: &[Tag]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = set
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect();
    v.sort();
    v
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

async fn upload_part(c: &Client, b: &str, k: &str, id: &str, n: i32, data: Vec<u8>) -> String {
    c.upload_part()
        .bucket(b)
        .key(k)
        .upload_id(id)
        .part_number(n)
        .body(ByteStream::from(data))
        .send()
        .await
        .unwrap_or_else(|e| panic!("upload part {n}: {e:?}"))
        .e_tag()
        .expect("part ETag")
        .to_string()
}

fn completed(parts: &[(i32, &str)]) -> CompletedMultipartUpload {
    CompletedMultipartUpload::builder()
        .set_parts(Some(
            parts
                .iter()
                .map(|(n, e)| CompletedPart::builder().part_number(*n).e_tag(*e).build())
                .collect(),
        ))
        .build()
}

async fn create_mpu(c: &Client, b: &str, k: &str) -> String {
    c.create_multipart_upload()
        .bucket(b)
        .key(k)
        .send()
        .await
        .expect("create multipart upload")
        .upload_id()
        .expect("upload id")
        .to_string()
}

// ---------------------------------------------------------------- buckets

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bucket_create_head_list_location_delete() {
    let (_t, _s, c) = setup();
    bucket(&c, "alpha").await;
    bucket(&c, "beta-2").await;

    // Re-creating a bucket you own in us-east-1: 200, AWS's legacy there (other
    // regions answer 409 BucketAlreadyOwnedByYou).
    c.create_bucket()
        .bucket("alpha")
        .send()
        .await
        .expect("re-create own bucket");

    c.head_bucket().bucket("alpha").send().await.expect("head");
    let e = c.head_bucket().bucket("missing").send().await.unwrap_err();
    assert_eq!(status_code(&e).0, 404, "HEAD of a missing bucket");

    let names: Vec<String> = c
        .list_buckets()
        .send()
        .await
        .expect("list buckets")
        .buckets()
        .iter()
        .filter_map(|b| b.name().map(str::to_string))
        .collect();
    assert_eq!(names, ["alpha", "beta-2"], "ListBuckets, sorted by name");

    // us-east-1 buckets have a null LocationConstraint.
    let loc = c
        .get_bucket_location()
        .bucket("alpha")
        .send()
        .await
        .expect("location");
    assert_eq!(
        loc.location_constraint().map(|l| l.as_str()).unwrap_or(""),
        "",
        "us-east-1 → empty LocationConstraint"
    );
    let (st, code) = fails(c.get_bucket_location().bucket("missing").send().await);
    assert_eq!((st, code.as_str()), (404, "NoSuchBucket"));

    put(&c, "alpha", "k", b"x".to_vec()).await;
    let (st, code) = fails(c.delete_bucket().bucket("alpha").send().await);
    assert_eq!((st, code.as_str()), (409, "BucketNotEmpty"));
    c.delete_object()
        .bucket("alpha")
        .key("k")
        .send()
        .await
        .expect("delete object");
    c.delete_bucket()
        .bucket("alpha")
        .send()
        .await
        .expect("delete empty bucket");
    let e = c.head_bucket().bucket("alpha").send().await.unwrap_err();
    assert_eq!(status_code(&e).0, 404);
    let (st, code) = fails(c.delete_bucket().bucket("alpha").send().await);
    assert_eq!((st, code.as_str()), (404, "NoSuchBucket"));
    let (st, code) = fails(c.list_objects_v2().bucket("alpha").send().await);
    assert_eq!((st, code.as_str()), (404, "NoSuchBucket"));
}

/// ListBuckets pages: max-buckets, an opaque continuation token, prefix (echoed back).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_buckets_pages_by_max_buckets_token_and_prefix() {
    let (_t, _s, c) = setup();
    for b in ["a-1", "a-2", "a-3", "b-1", "b-2"] {
        bucket(&c, b).await;
    }
    let names = |out: &aws_sdk_s3::operation::list_buckets::ListBucketsOutput| -> Vec<String> {
        out.buckets()
            .iter()
            .filter_map(|b| b.name().map(str::to_string))
            .collect()
    };

    let all = c.list_buckets().send().await.expect("list");
    assert_eq!(names(&all), ["a-1", "a-2", "a-3", "b-1", "b-2"]);
    assert_eq!(all.continuation_token(), None, "everything fits: no token");
    assert_eq!(all.prefix(), None, "no prefix sent, none echoed");

    let mut seen = Vec::new();
    let mut token = None;
    let mut pages = 0;
    loop {
        let out = c
            .list_buckets()
            .max_buckets(2)
            .set_continuation_token(token.take())
            .send()
            .await
            .expect("list page");
        let page = names(&out);
        assert!(page.len() <= 2, "{page:?}");
        seen.extend(page);
        pages += 1;
        match out.continuation_token() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, ["a-1", "a-2", "a-3", "b-1", "b-2"]);
    assert_eq!(pages, 3);

    let out = c
        .list_buckets()
        .prefix("b-")
        .max_buckets(1)
        .send()
        .await
        .expect("list prefix");
    assert_eq!(names(&out), ["b-1"]);
    assert_eq!(out.prefix(), Some("b-"));
    let next = out.continuation_token().expect("one more b- bucket");
    let out = c
        .list_buckets()
        .prefix("b-")
        .max_buckets(1)
        .continuation_token(next)
        .send()
        .await
        .expect("list prefix page 2");
    assert_eq!(names(&out), ["b-2"]);
    assert_eq!(out.continuation_token(), None);

    let out = c.list_buckets().prefix("zz").send().await.expect("none");
    assert!(out.buckets().is_empty());

    for bad in [0, 10_001] {
        let (st, code) = fails(c.list_buckets().max_buckets(bad).send().await);
        assert_eq!(
            (st, code.as_str()),
            (400, "InvalidArgument"),
            "max-buckets={bad}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_bucket_names_are_refused() {
    let (_t, _s, c) = setup();
    let long = "b".repeat(64);
    for name in [
        "ab",
        "UpperCase",
        "-leading-dash",
        "trailing-dash-",
        "two..dots",
        "under_score",
        "192.168.5.4",
        "xn--punycode",
        "name-s3alias",
        long.as_str(),
    ] {
        let (st, code) = fails(c.create_bucket().bucket(name).send().await);
        assert_eq!((st, code.as_str()), (400, "InvalidBucketName"), "{name}");
    }
    // The limits themselves are fine.
    bucket(&c, "abc").await;
    bucket(&c, &"c".repeat(63)).await;
    bucket(&c, "dots.and-dashes.1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bucket_tagging_put_get_delete() {
    let (_t, _s, c) = setup();
    bucket(&c, "tagged").await;
    let (st, code) = fails(c.get_bucket_tagging().bucket("tagged").send().await);
    assert_eq!((st, code.as_str()), (404, "NoSuchTagSet"));

    c.put_bucket_tagging()
        .bucket("tagged")
        .tagging(
            Tagging::builder()
                .tag_set(tag("team", "storage"))
                .tag_set(tag("cost center", "42"))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("put bucket tagging");
    let got = c
        .get_bucket_tagging()
        .bucket("tagged")
        .send()
        .await
        .expect("get bucket tagging");
    assert_eq!(
        tags_of(got.tag_set()),
        pairs(&[("cost center", "42"), ("team", "storage")])
    );

    // PUT replaces the whole set.
    c.put_bucket_tagging()
        .bucket("tagged")
        .tagging(
            Tagging::builder()
                .tag_set(tag("only", "one"))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("replace bucket tagging");
    let got = c
        .get_bucket_tagging()
        .bucket("tagged")
        .send()
        .await
        .unwrap();
    assert_eq!(tags_of(got.tag_set()), pairs(&[("only", "one")]));

    c.delete_bucket_tagging()
        .bucket("tagged")
        .send()
        .await
        .expect("delete bucket tagging");
    let (st, code) = fails(c.get_bucket_tagging().bucket("tagged").send().await);
    assert_eq!((st, code.as_str()), (404, "NoSuchTagSet"));
    let (st, code) = fails(c.get_bucket_tagging().bucket("missing").send().await);
    assert_eq!((st, code.as_str()), (404, "NoSuchBucket"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bucket_versioning_put_get() {
    let (_t, _s, c) = setup();
    bucket(&c, "ver").await;
    let v = c
        .get_bucket_versioning()
        .bucket("ver")
        .send()
        .await
        .expect("get versioning");
    assert_eq!(v.status(), None, "never-versioned bucket has no Status");
    set_versioning(&c, "ver", BucketVersioningStatus::Enabled).await;
    let v = c
        .get_bucket_versioning()
        .bucket("ver")
        .send()
        .await
        .unwrap();
    assert_eq!(v.status(), Some(&BucketVersioningStatus::Enabled));
    set_versioning(&c, "ver", BucketVersioningStatus::Suspended).await;
    let v = c
        .get_bucket_versioning()
        .bucket("ver")
        .send()
        .await
        .unwrap();
    assert_eq!(v.status(), Some(&BucketVersioningStatus::Suspended));
    let (st, code) = fails(c.get_bucket_versioning().bucket("missing").send().await);
    assert_eq!((st, code.as_str()), (404, "NoSuchBucket"));
}

// ---------------------------------------------------------------- objects

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_put_get_head_delete_and_etag_is_quoted_md5() {
    let (_t, _s, c) = setup();
    bucket(&c, "obj").await;
    for (key, len) in [
        ("empty", 0),
        ("small", 1),
        ("mid", 70_000),
        ("one-mib", MIB + 1),
    ] {
        let data = content(key, len);
        let etag = put(&c, "obj", key, data.clone()).await;
        assert_eq!(etag, format!("\"{}\"", md5_hex(&data)), "PUT ETag of {key}");
        let out = c.get_object().bucket("obj").key(key).send().await.unwrap();
        assert_eq!(out.e_tag(), Some(etag.as_str()), "GET ETag of {key}");
        assert_eq!(out.content_length(), Some(len as i64));
        assert!(out.last_modified().is_some(), "Last-Modified");
        let body = out.body.collect().await.unwrap().into_bytes();
        assert!(body.as_ref() == data.as_slice(), "{key} content differs");
        let h = c.head_object().bucket("obj").key(key).send().await.unwrap();
        assert_eq!(h.e_tag(), Some(etag.as_str()), "HEAD ETag of {key}");
        assert_eq!(h.content_length(), Some(len as i64), "HEAD length");
    }
    // Overwrite replaces.
    put(&c, "obj", "small", b"second".to_vec()).await;
    assert_eq!(get(&c, "obj", "small").await, b"second");

    let (st, code) = fails(c.get_object().bucket("obj").key("nope").send().await);
    assert_eq!((st, code.as_str()), (404, "NoSuchKey"));
    assert_eq!(head_status(&c, "obj", "nope").await, 404);
    let (st, code) = fails(c.get_object().bucket("missing").key("k").send().await);
    assert_eq!((st, code.as_str()), (404, "NoSuchBucket"));
    let (st, code) = fails(
        c.put_object()
            .bucket("missing")
            .key("k")
            .body(ByteStream::from_static(b"x"))
            .send()
            .await,
    );
    assert_eq!((st, code.as_str()), (404, "NoSuchBucket"));

    c.delete_object()
        .bucket("obj")
        .key("small")
        .send()
        .await
        .expect("delete");
    assert_eq!(head_status(&c, "obj", "small").await, 404);
    // Deleting a key that does not exist succeeds (204).
    c.delete_object()
        .bucket("obj")
        .key("never-was")
        .send()
        .await
        .expect("delete of a missing key is a success");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_and_standard_headers_round_trip() {
    let (_t, s, c) = setup();
    bucket(&c, "meta").await;
    let expires = DateTime::from_secs(2_000_000_000);
    c.put_object()
        .bucket("meta")
        .key("doc.txt.gz")
        .body(ByteStream::from_static(b"pretend gzip"))
        .metadata("color", "blue")
        .metadata("Mixed-Case", "Some Value")
        .content_type("text/plain; charset=utf-8")
        .content_encoding("gzip")
        .content_disposition("attachment; filename=\"doc.txt\"")
        .content_language("en-GB")
        .cache_control("max-age=3600, must-revalidate")
        .expires(expires)
        .send()
        .await
        .expect("put with headers");
    let want_expires = http_date(SystemTime::UNIX_EPOCH + Duration::from_secs(2_000_000_000));
    let h = c
        .head_object()
        .bucket("meta")
        .key("doc.txt.gz")
        .send()
        .await
        .unwrap();
    let g = c
        .get_object()
        .bucket("meta")
        .key("doc.txt.gz")
        .send()
        .await
        .unwrap();
    for (what, meta, ct, ce, cd, cl, cc, ex) in [
        (
            "HEAD",
            h.metadata(),
            h.content_type(),
            h.content_encoding(),
            h.content_disposition(),
            h.content_language(),
            h.cache_control(),
            h.expires_string(),
        ),
        (
            "GET",
            g.metadata(),
            g.content_type(),
            g.content_encoding(),
            g.content_disposition(),
            g.content_language(),
            g.cache_control(),
            g.expires_string(),
        ),
    ] {
        let meta = meta.cloned().unwrap_or_default();
        assert_eq!(
            meta.get("color").map(String::as_str),
            Some("blue"),
            "{what}"
        );
        // User metadata names are case-insensitive and come back lower-cased.
        assert_eq!(
            meta.get("mixed-case").map(String::as_str),
            Some("Some Value"),
            "{what}: {meta:?}"
        );
        assert_eq!(meta.len(), 2, "{what}: {meta:?}");
        assert_eq!(ct, Some("text/plain; charset=utf-8"), "{what}");
        assert_eq!(ce, Some("gzip"), "{what}");
        assert_eq!(cd, Some("attachment; filename=\"doc.txt\""), "{what}");
        assert_eq!(cl, Some("en-GB"), "{what}");
        assert_eq!(cc, Some("max-age=3600, must-revalidate"), "{what}");
        assert_eq!(ex, Some(want_expires.as_str()), "{what}");
    }
    let body = g.body.collect().await.unwrap().into_bytes();
    assert_eq!(body.as_ref(), b"pretend gzip");

    // Stored without a Content-Type (a hand-signed PUT: the SDK always sends one),
    // S3 reports binary/octet-stream.
    let signed = Signer::new(&s.access_key, &s.secret_key).sign(
        "PUT",
        "/meta/plain",
        &[],
        &[("content-length", "1")],
        &sha256_hex(b"x"),
        s.port,
    );
    let mut req = signed.head("PUT", "/meta/plain");
    req.push(b'x');
    let r = raw_exchange(s.port, &req).expect("answer");
    assert_eq!(r.status, 200, "{}", r.text());
    let h = c
        .head_object()
        .bucket("meta")
        .key("plain")
        .send()
        .await
        .unwrap();
    assert_eq!(h.content_type(), Some("binary/octet-stream"));

    // Response header overrides on GET.
    let g = c
        .get_object()
        .bucket("meta")
        .key("plain")
        .response_content_type("application/json")
        .response_content_disposition("inline")
        .response_cache_control("no-cache")
        .send()
        .await
        .expect("get with response-* overrides");
    assert_eq!(g.content_type(), Some("application/json"));
    assert_eq!(g.content_disposition(), Some("inline"));
    assert_eq!(g.cache_control(), Some("no-cache"));
}

/// `aws-chunked` names how a body was sent, not the object: S3 drops it from the stored
/// Content-Encoding (`gzip, aws-chunked` is kept as `gzip`; `aws-chunked` alone keeps none).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_chunked_is_dropped_from_the_stored_content_encoding() {
    let (_t, _s, c) = setup();
    bucket(&c, "enc").await;
    for (key, sent, kept) in [
        ("gz", "gzip, aws-chunked", Some("gzip")),
        ("plain", "aws-chunked", None),
        ("br", "br", Some("br")),
    ] {
        c.put_object()
            .bucket("enc")
            .key(key)
            .content_encoding(sent)
            .body(ByteStream::from_static(b"body"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("put {key}: {e:?}"));
        let h = c.head_object().bucket("enc").key(key).send().await.unwrap();
        assert_eq!(h.content_encoding(), kept, "HEAD {key}");
        let g = c.get_object().bucket("enc").key(key).send().await.unwrap();
        assert_eq!(g.content_encoding(), kept, "GET {key}");
        assert_eq!(
            g.body.collect().await.unwrap().into_bytes().as_ref(),
            b"body"
        );
    }
    // The same for multipart uploads, which take their headers at creation.
    let id = c
        .create_multipart_upload()
        .bucket("enc")
        .key("mp")
        .content_encoding("gzip,aws-chunked")
        .send()
        .await
        .expect("create")
        .upload_id()
        .unwrap()
        .to_string();
    let e1 = upload_part(&c, "enc", "mp", &id, 1, b"part".to_vec()).await;
    c.complete_multipart_upload()
        .bucket("enc")
        .key("mp")
        .upload_id(&id)
        .multipart_upload(completed(&[(1, &e1)]))
        .send()
        .await
        .expect("complete");
    let h = c
        .head_object()
        .bucket("enc")
        .key("mp")
        .send()
        .await
        .unwrap();
    assert_eq!(h.content_encoding(), Some("gzip"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_objects_verbose_and_quiet() {
    let (_t, _s, c) = setup();
    bucket(&c, "del").await;
    for k in ["a", "b", "c", "d", "dir/e"] {
        put(&c, "del", k, k.as_bytes().to_vec()).await;
    }
    let ids = |ks: &[&str]| -> Vec<ObjectIdentifier> {
        ks.iter()
            .map(|k| ObjectIdentifier::builder().key(*k).build().unwrap())
            .collect()
    };
    // Verbose: every key is reported deleted, including one that never existed.
    let out = c
        .delete_objects()
        .bucket("del")
        .delete(
            Delete::builder()
                .set_objects(Some(ids(&["a", "dir/e", "ghost"])))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("delete objects (verbose)");
    let mut deleted: Vec<&str> = out.deleted().iter().filter_map(|d| d.key()).collect();
    deleted.sort();
    assert_eq!(deleted, ["a", "dir/e", "ghost"]);
    assert!(out.errors().is_empty(), "{:?}", out.errors());

    // Quiet: only errors are reported, so a full success lists nothing.
    let out = c
        .delete_objects()
        .bucket("del")
        .delete(
            Delete::builder()
                .set_objects(Some(ids(&["b", "c"])))
                .quiet(true)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("delete objects (quiet)");
    assert!(out.deleted().is_empty(), "quiet mode: {:?}", out.deleted());
    assert!(out.errors().is_empty(), "{:?}", out.errors());

    assert_eq!(keys(&c, "del").await, ["d"]);
    let (st, code) = fails(
        c.delete_objects()
            .bucket("missing")
            .delete(
                Delete::builder()
                    .set_objects(Some(ids(&["x"])))
                    .build()
                    .unwrap(),
            )
            .send()
            .await,
    );
    assert_eq!((st, code.as_str()), (404, "NoSuchBucket"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_object_metadata_directive_and_conditions() {
    let (_t, _s, c) = setup();
    bucket(&c, "src").await;
    bucket(&c, "dst").await;
    let data = content("copy-src", 300_000);
    let src_etag = c
        .put_object()
        .bucket("src")
        .key("orig")
        .body(ByteStream::from(data.clone()))
        .content_type("image/png")
        .metadata("origin", "camera")
        .send()
        .await
        .unwrap()
        .e_tag()
        .unwrap()
        .to_string();

    // Default directive COPY: content, content type and metadata come along.
    let out = c
        .copy_object()
        .bucket("dst")
        .key("copied")
        .copy_source("src/orig")
        .send()
        .await
        .expect("copy (COPY)");
    let r = out.copy_object_result().expect("CopyObjectResult");
    assert_eq!(
        r.e_tag(),
        Some(src_etag.as_str()),
        "single-part copy keeps md5 ETag"
    );
    assert!(r.last_modified().is_some());
    let h = c
        .head_object()
        .bucket("dst")
        .key("copied")
        .send()
        .await
        .unwrap();
    assert_eq!(h.content_type(), Some("image/png"));
    assert_eq!(
        h.metadata()
            .and_then(|m| m.get("origin"))
            .map(String::as_str),
        Some("camera")
    );
    assert!(get(&c, "dst", "copied").await == data, "copied content");

    // REPLACE: metadata and content type from the request only.
    c.copy_object()
        .bucket("dst")
        .key("replaced")
        .copy_source("src/orig")
        .metadata_directive(MetadataDirective::Replace)
        .metadata("fresh", "yes")
        .content_type("text/csv")
        .send()
        .await
        .expect("copy (REPLACE)");
    let h = c
        .head_object()
        .bucket("dst")
        .key("replaced")
        .send()
        .await
        .unwrap();
    assert_eq!(h.content_type(), Some("text/csv"));
    let m = h.metadata().cloned().unwrap_or_default();
    assert_eq!(m.get("fresh").map(String::as_str), Some("yes"));
    assert!(
        !m.contains_key("origin"),
        "REPLACE drops old metadata: {m:?}"
    );
    assert!(get(&c, "dst", "replaced").await == data);

    // Onto itself without REPLACE: 400 InvalidRequest. With REPLACE: allowed.
    let (st, code) = fails(
        c.copy_object()
            .bucket("src")
            .key("orig")
            .copy_source("src/orig")
            .send()
            .await,
    );
    assert_eq!((st, code.as_str()), (400, "InvalidRequest"));
    c.copy_object()
        .bucket("src")
        .key("orig")
        .copy_source("src/orig")
        .metadata_directive(MetadataDirective::Replace)
        .metadata("origin", "scanner")
        .send()
        .await
        .expect("copy onto itself with REPLACE");
    let h = c
        .head_object()
        .bucket("src")
        .key("orig")
        .send()
        .await
        .unwrap();
    assert_eq!(
        h.metadata()
            .and_then(|m| m.get("origin"))
            .map(String::as_str),
        Some("scanner")
    );

    // Conditional copies.
    let past = DateTime::from(SystemTime::now() - Duration::from_secs(86_400));
    let future = DateTime::from(SystemTime::now() + Duration::from_secs(86_400));
    let (st, code) = fails(
        c.copy_object()
            .bucket("dst")
            .key("cond")
            .copy_source("src/orig")
            .copy_source_if_match("\"0123456789abcdef0123456789abcdef\"")
            .send()
            .await,
    );
    assert_eq!((st, code.as_str()), (412, "PreconditionFailed"), "if-match");
    let (st, code) = fails(
        c.copy_object()
            .bucket("dst")
            .key("cond")
            .copy_source("src/orig")
            .copy_source_if_none_match(&src_etag)
            .send()
            .await,
    );
    assert_eq!(
        (st, code.as_str()),
        (412, "PreconditionFailed"),
        "if-none-match"
    );
    let (st, code) = fails(
        c.copy_object()
            .bucket("dst")
            .key("cond")
            .copy_source("src/orig")
            .copy_source_if_unmodified_since(past)
            .send()
            .await,
    );
    assert_eq!(
        (st, code.as_str()),
        (412, "PreconditionFailed"),
        "if-unmodified-since"
    );
    let (st, code) = fails(
        c.copy_object()
            .bucket("dst")
            .key("cond")
            .copy_source("src/orig")
            .copy_source_if_modified_since(future)
            .send()
            .await,
    );
    assert_eq!(
        (st, code.as_str()),
        (412, "PreconditionFailed"),
        "if-modified-since"
    );
    assert_eq!(
        head_status(&c, "dst", "cond").await,
        404,
        "no failed copy stored"
    );
    let cur = c
        .head_object()
        .bucket("src")
        .key("orig")
        .send()
        .await
        .unwrap()
        .e_tag()
        .unwrap()
        .to_string();
    c.copy_object()
        .bucket("dst")
        .key("cond")
        .copy_source("src/orig")
        .copy_source_if_match(&cur)
        .copy_source_if_unmodified_since(future)
        .send()
        .await
        .expect("copy whose conditions hold");

    let (st, code) = fails(
        c.copy_object()
            .bucket("dst")
            .key("x")
            .copy_source("src/absent")
            .send()
            .await,
    );
    assert_eq!((st, code.as_str()), (404, "NoSuchKey"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_reads() {
    let (_t, _s, c) = setup();
    bucket(&c, "rng").await;
    let data = content("range", 100);
    put(&c, "rng", "k", data.clone()).await;
    for (range, from, to) in [
        ("bytes=10-19", 10, 19),
        ("bytes=0-0", 0, 0),
        ("bytes=-10", 90, 99),
        ("bytes=90-", 90, 99),
        ("bytes=95-1000", 95, 99),
        ("bytes=-1000", 0, 99),
    ] {
        let out = c
            .get_object()
            .bucket("rng")
            .key("k")
            .range(range)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{range}: {e:?}"));
        assert_eq!(
            out.content_range(),
            Some(format!("bytes {from}-{to}/100").as_str()),
            "{range}"
        );
        assert_eq!(
            out.content_length(),
            Some((to - from + 1) as i64),
            "{range}"
        );
        let body = out.body.collect().await.unwrap().into_bytes();
        assert_eq!(body.as_ref(), &data[from..=to], "{range}");
    }
    let (st, code) = fails(
        c.get_object()
            .bucket("rng")
            .key("k")
            .range("bytes=100-200")
            .send()
            .await,
    );
    assert_eq!((st, code.as_str()), (416, "InvalidRange"));

    // A large object, a range across the store's internal block boundaries.
    let big = content("range-big", 3 * MIB + 17);
    put(&c, "rng", "big", big.clone()).await;
    let (from, to) = (MIB - 5, 2 * MIB + 100);
    let out = c
        .get_object()
        .bucket("rng")
        .key("big")
        .range(format!("bytes={from}-{to}"))
        .send()
        .await
        .unwrap();
    let body = out.body.collect().await.unwrap().into_bytes();
    assert!(body.as_ref() == &big[from..=to], "large range differs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_get_and_head() {
    let (_t, _s, c) = setup();
    bucket(&c, "cond").await;
    let etag = put(&c, "cond", "k", b"conditional".to_vec()).await;
    let past = DateTime::from(SystemTime::now() - Duration::from_secs(86_400));
    let future = DateTime::from(SystemTime::now() + Duration::from_secs(86_400));
    let g = || c.get_object().bucket("cond").key("k");

    g().if_match(&etag).send().await.expect("If-Match right");
    let (st, code) = fails(
        g().if_match("\"ffffffffffffffffffffffffffffffff\"")
            .send()
            .await,
    );
    assert_eq!(
        (st, code.as_str()),
        (412, "PreconditionFailed"),
        "If-Match wrong"
    );

    let e = g().if_none_match(&etag).send().await.unwrap_err();
    assert_eq!(status_code(&e).0, 304, "If-None-Match same: {e:?}");
    assert_eq!(
        err_header(&e, "etag").as_deref(),
        Some(etag.as_str()),
        "304 carries the ETag"
    );
    g().if_none_match("\"ffffffffffffffffffffffffffffffff\"")
        .send()
        .await
        .expect("If-None-Match other");

    let e = g().if_modified_since(future).send().await.unwrap_err();
    assert_eq!(status_code(&e).0, 304, "If-Modified-Since future");
    g().if_modified_since(past)
        .send()
        .await
        .expect("If-Modified-Since past");

    let (st, code) = fails(g().if_unmodified_since(past).send().await);
    assert_eq!((st, code.as_str()), (412, "PreconditionFailed"));
    g().if_unmodified_since(future)
        .send()
        .await
        .expect("If-Unmodified-Since future");

    // RFC 7232 precedence: If-Match true + If-Unmodified-Since false → 200;
    // If-None-Match false + If-Modified-Since true → 304.
    g().if_match(&etag)
        .if_unmodified_since(past)
        .send()
        .await
        .expect("If-Match wins over If-Unmodified-Since");
    let e = g()
        .if_none_match(&etag)
        .if_modified_since(past)
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_code(&e).0, 304);

    // HEAD follows the same rules.
    let h = || c.head_object().bucket("cond").key("k");
    let e = h().if_none_match(&etag).send().await.unwrap_err();
    assert_eq!(status_code(&e).0, 304, "HEAD If-None-Match");
    let e = h()
        .if_match("\"ffffffffffffffffffffffffffffffff\"")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_code(&e).0, 412, "HEAD If-Match wrong");
    h().if_match(&etag)
        .send()
        .await
        .expect("HEAD If-Match right");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_tagging_put_get_delete_and_on_put() {
    let (_t, _s, c) = setup();
    bucket(&c, "otag").await;
    c.put_object()
        .bucket("otag")
        .key("k")
        .body(ByteStream::from_static(b"tagged"))
        .tagging("project=cyb&note=two%20words")
        .send()
        .await
        .expect("put with x-amz-tagging");
    let t = c
        .get_object_tagging()
        .bucket("otag")
        .key("k")
        .send()
        .await
        .expect("get object tagging");
    assert_eq!(
        tags_of(t.tag_set()),
        pairs(&[("note", "two words"), ("project", "cyb")])
    );
    let g = c.get_object().bucket("otag").key("k").send().await.unwrap();
    assert_eq!(g.tag_count(), Some(2), "x-amz-tagging-count on GET");

    c.put_object_tagging()
        .bucket("otag")
        .key("k")
        .tagging(
            Tagging::builder()
                .tag_set(tag("state", "final"))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("put object tagging");
    let t = c
        .get_object_tagging()
        .bucket("otag")
        .key("k")
        .send()
        .await
        .unwrap();
    assert_eq!(tags_of(t.tag_set()), pairs(&[("state", "final")]));
    assert_eq!(
        get(&c, "otag", "k").await,
        b"tagged",
        "tagging leaves content"
    );

    c.delete_object_tagging()
        .bucket("otag")
        .key("k")
        .send()
        .await
        .expect("delete object tagging");
    let t = c
        .get_object_tagging()
        .bucket("otag")
        .key("k")
        .send()
        .await
        .expect("get tagging of an untagged object");
    assert!(t.tag_set().is_empty(), "{:?}", t.tag_set());

    let (st, code) = fails(
        c.get_object_tagging()
            .bucket("otag")
            .key("absent")
            .send()
            .await,
    );
    assert_eq!((st, code.as_str()), (404, "NoSuchKey"));
    // More than 10 tags per object: 400 (AWS: BadRequest / InvalidTag).
    let mut many = Tagging::builder();
    for i in 0..11 {
        many = many.tag_set(tag(&format!("k{i}"), "v"));
    }
    let (st, _) = fails(
        c.put_object_tagging()
            .bucket("otag")
            .key("k")
            .tagging(many.build().unwrap())
            .send()
            .await,
    );
    assert_eq!(st, 400, "11 tags");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_md5_checked() {
    let (_t, _s, c) = setup();
    bucket(&c, "md5").await;
    let data = content("md5", 10_000);
    let out = c
        .put_object()
        .bucket("md5")
        .key("good")
        .content_md5(b64(&md5(&data)))
        .body(ByteStream::from(data.clone()))
        .send()
        .await
        .expect("right Content-MD5");
    assert_eq!(
        out.e_tag(),
        Some(format!("\"{}\"", md5_hex(&data)).as_str())
    );

    let (st, code) = fails(
        c.put_object()
            .bucket("md5")
            .key("bad")
            .content_md5(b64(&md5(b"something else")))
            .body(ByteStream::from(data.clone()))
            .send()
            .await,
    );
    assert_eq!((st, code.as_str()), (400, "BadDigest"));
    assert_eq!(head_status(&c, "md5", "bad").await, 404, "nothing stored");

    let (st, code) = fails(
        c.put_object()
            .bucket("md5")
            .key("bad")
            .content_md5("not-a-digest")
            .body(ByteStream::from(data.clone()))
            .send()
            .await,
    );
    assert_eq!((st, code.as_str()), (400, "InvalidDigest"));
    assert_eq!(head_status(&c, "md5", "bad").await, 404, "nothing stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flexible_checksums_stored_and_returned() {
    let (_t, _s, c) = setup();
    bucket(&c, "sums").await;
    let data = content("checksums", 200_000);
    let sha1: [u8; 20] = {
        use sha1::Digest;
        sha1::Sha1::digest(&data).into()
    };
    for (algo, want) in [
        (ChecksumAlgorithm::Crc32, b64(&crc32(&data).to_be_bytes())),
        (ChecksumAlgorithm::Crc32C, b64(&crc32c(&data).to_be_bytes())),
        (ChecksumAlgorithm::Sha1, b64(&sha1)),
        (ChecksumAlgorithm::Sha256, b64(&sha256(&data))),
    ] {
        let key = format!("k-{}", algo.as_str());
        let out = c
            .put_object()
            .bucket("sums")
            .key(&key)
            .checksum_algorithm(algo.clone())
            .body(ByteStream::from(data.clone()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("put with {algo:?}: {e:?}"));
        let pick = |crc32: Option<&str>,
                    crc32c: Option<&str>,
                    sha1: Option<&str>,
                    sha256: Option<&str>| {
            match algo {
                ChecksumAlgorithm::Crc32 => crc32,
                ChecksumAlgorithm::Crc32C => crc32c,
                ChecksumAlgorithm::Sha1 => sha1,
                _ => sha256,
            }
            .map(str::to_string)
        };
        assert_eq!(
            pick(
                out.checksum_crc32(),
                out.checksum_crc32_c(),
                out.checksum_sha1(),
                out.checksum_sha256()
            )
            .as_deref(),
            Some(want.as_str()),
            "PUT response checksum for {algo:?}"
        );
        let g = c
            .get_object()
            .bucket("sums")
            .key(&key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .unwrap();
        assert_eq!(
            pick(
                g.checksum_crc32(),
                g.checksum_crc32_c(),
                g.checksum_sha1(),
                g.checksum_sha256()
            )
            .as_deref(),
            Some(want.as_str()),
            "GET checksum for {algo:?}"
        );
        // The SDK validates the body against the returned checksum while collecting.
        let body = g.body.collect().await.expect("validated body").into_bytes();
        assert!(body.as_ref() == data.as_slice());
        let h = c
            .head_object()
            .bucket("sums")
            .key(&key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .unwrap();
        assert_eq!(
            pick(
                h.checksum_crc32(),
                h.checksum_crc32_c(),
                h.checksum_sha1(),
                h.checksum_sha256()
            )
            .as_deref(),
            Some(want.as_str()),
            "HEAD checksum for {algo:?}"
        );
    }
    // A checksum value given up front that does not match the body: 400 BadDigest.
    let (st, code) = fails(
        c.put_object()
            .bucket("sums")
            .key("wrong")
            .checksum_sha256(b64(&sha256(b"other")))
            .body(ByteStream::from(data.clone()))
            .send()
            .await,
    );
    assert_eq!((st, code.as_str()), (400, "BadDigest"));
    assert_eq!(
        head_status(&c, "sums", "wrong").await,
        404,
        "nothing stored"
    );
}

// ---------------------------------------------------------------- listing

const LIST_KEYS: [&str; 8] = [
    "a/1",
    "a/2",
    "a/b/3",
    "b/4",
    "c",
    "dir with space/ünïcødé file.txt",
    "plus+sign",
    "z&amp<lt>",
];

async fn list_fixture(c: &Client) {
    bucket(c, "list").await;
    for k in LIST_KEYS {
        put(c, "list", k, k.as_bytes().to_vec()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_objects_v2_prefix_delimiter_pagination_encoding_owner() {
    let (_t, _s, c) = setup();
    list_fixture(&c).await;
    let l = || c.list_objects_v2().bucket("list");

    let all = l().send().await.unwrap();
    let got: Vec<&str> = all.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(got, LIST_KEYS, "all keys, in UTF-8 binary order");
    assert_eq!(all.key_count(), Some(LIST_KEYS.len() as i32));
    assert_eq!(all.is_truncated(), Some(false));
    let first = &all.contents()[0];
    assert_eq!(first.size(), Some(3));
    assert_eq!(
        first.e_tag(),
        Some(format!("\"{}\"", md5_hex(b"a/1")).as_str())
    );
    assert!(first.last_modified().is_some());
    assert!(first.owner().is_none(), "no Owner without fetch-owner");

    let o = l().fetch_owner(true).send().await.unwrap();
    assert!(
        o.contents().iter().all(|x| x
            .owner()
            .and_then(|w| w.id())
            .is_some_and(|id| !id.is_empty())),
        "fetch-owner gives every entry an Owner with an ID"
    );

    let p = l().prefix("a/").send().await.unwrap();
    let got: Vec<&str> = p.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(got, ["a/1", "a/2", "a/b/3"]);
    assert_eq!(p.prefix(), Some("a/"));

    let d = l().delimiter("/").send().await.unwrap();
    let got: Vec<&str> = d.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(got, ["c", "plus+sign", "z&amp<lt>"]);
    let cps: Vec<&str> = d
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    assert_eq!(cps, ["a/", "b/", "dir with space/"]);
    assert_eq!(d.key_count(), Some(6), "KeyCount counts keys and prefixes");
    assert_eq!(d.delimiter(), Some("/"));

    let pd = l().prefix("a/").delimiter("/").send().await.unwrap();
    let got: Vec<&str> = pd.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(got, ["a/1", "a/2"]);
    let cps: Vec<&str> = pd
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    assert_eq!(cps, ["a/b/"]);

    let sa = l().start_after("a/b/3").send().await.unwrap();
    let got: Vec<&str> = sa.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(got, &LIST_KEYS[3..]);
    assert_eq!(sa.start_after(), Some("a/b/3"));

    // Pagination: max-keys 3, continuation tokens until not truncated.
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = l()
            .max_keys(3)
            .set_continuation_token(token.clone())
            .send()
            .await
            .unwrap();
        pages += 1;
        assert_eq!(page.max_keys(), Some(3));
        assert!(page.contents().len() <= 3);
        assert_eq!(page.key_count(), Some(page.contents().len() as i32));
        assert_eq!(page.continuation_token(), token.as_deref());
        seen.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(String::from)),
        );
        if page.is_truncated() == Some(true) {
            token = Some(
                page.next_continuation_token()
                    .expect("NextContinuationToken when truncated")
                    .to_string(),
            );
        } else {
            assert!(page.next_continuation_token().is_none());
            break;
        }
        assert!(pages < 10, "pagination does not end");
    }
    assert_eq!(seen, LIST_KEYS);
    assert_eq!(pages, 3);

    // Paginating with a delimiter: common prefixes count towards max-keys, none repeats.
    let mut entries = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = l()
            .delimiter("/")
            .max_keys(2)
            .set_continuation_token(token)
            .send()
            .await
            .unwrap();
        assert!(page.contents().len() + page.common_prefixes().len() <= 2);
        entries.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(String::from)),
        );
        entries.extend(
            page.common_prefixes()
                .iter()
                .filter_map(|p| p.prefix().map(String::from)),
        );
        token = page.next_continuation_token().map(String::from);
        if page.is_truncated() != Some(true) {
            break;
        }
    }
    entries.sort();
    assert_eq!(
        entries,
        ["a/", "b/", "c", "dir with space/", "plus+sign", "z&amp<lt>"]
    );

    // encoding-type=url: keys and prefixes come back URL-encoded (the SDK does not decode).
    let e = l().encoding_type(EncodingType::Url).send().await.unwrap();
    assert_eq!(e.encoding_type(), Some(&EncodingType::Url));
    let raw: Vec<&str> = e.contents().iter().filter_map(|o| o.key()).collect();
    let unicode = raw.iter().find(|k| k.starts_with("dir")).expect("key");
    assert!(
        !unicode.contains(' ') && unicode.is_ascii(),
        "encoded key still has raw characters: {unicode}"
    );
    let decoded: Vec<String> = raw.iter().map(|k| url_decode(k)).collect();
    assert_eq!(decoded, LIST_KEYS, "url-decoded keys");
    let e = l()
        .encoding_type(EncodingType::Url)
        .delimiter("/")
        .send()
        .await
        .unwrap();
    let cps: Vec<String> = e
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .map(url_decode)
        .collect();
    assert_eq!(cps, ["a/", "b/", "dir with space/"]);
    assert!(e
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .all(|p| !p.contains(' ')));

    let empty = l().prefix("nothing-here/").send().await.unwrap();
    assert!(empty.contents().is_empty());
    assert_eq!(empty.key_count(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_objects_v1_marker() {
    let (_t, _s, c) = setup();
    list_fixture(&c).await;
    let l = || c.list_objects().bucket("list");
    let out = l().marker("b/4").send().await.unwrap();
    let got: Vec<&str> = out.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(got, &LIST_KEYS[4..]);
    assert_eq!(out.marker(), Some("b/4"));

    // Without a delimiter there is no NextMarker: the last key is the next marker.
    let mut seen = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = l().max_keys(3).set_marker(marker).send().await.unwrap();
        assert!(page.contents().len() <= 3);
        seen.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(String::from)),
        );
        if page.is_truncated() != Some(true) {
            break;
        }
        marker = Some(
            page.next_marker()
                .map(String::from)
                .unwrap_or_else(|| seen.last().unwrap().clone()),
        );
    }
    assert_eq!(seen, LIST_KEYS);

    // With a delimiter a truncated page carries NextMarker.
    let page = l().delimiter("/").max_keys(2).send().await.unwrap();
    assert_eq!(page.is_truncated(), Some(true));
    let next = page.next_marker().expect("NextMarker with a delimiter");
    let cps: Vec<&str> = page
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    assert_eq!(cps, ["a/", "b/"]);
    assert_eq!(next, "b/");
    let rest = l().delimiter("/").marker(next).send().await.unwrap();
    let got: Vec<&str> = rest.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(got, ["c", "plus+sign", "z&amp<lt>"]);
    let cps: Vec<&str> = rest
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    assert_eq!(cps, ["dir with space/"]);
}

/// ListObjects v1 echoes Marker (empty when none was given); `delimiter=` (empty) is no
/// delimiter; encoding-type=url covers Prefix, Delimiter, Marker/StartAfter, KeyMarker,
/// NextKeyMarker, keys and common prefixes in v1, v2 and ListObjectVersions; keys with
/// control characters list (raw where XML allows them, escaped where it cannot).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_markers_empty_delimiter_url_encoding_and_control_characters() {
    let (_t, _s, c) = setup();
    bucket(&c, "lst").await;
    let keys = ["a b/1", "a b/2", "ctl\u{1}key", "tab\tkey", "z+"];
    for k in keys {
        put(&c, "lst", k, b"x".to_vec()).await;
    }
    let dec = |v: Option<&str>| v.map(url_decode);

    // v1: Marker echoed, empty without one.
    let out = c
        .list_objects()
        .bucket("lst")
        .prefix("tab")
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.marker(),
        Some(""),
        "an empty <Marker> when none was given"
    );
    let got: Vec<&str> = out.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(got, ["tab\tkey"], "a tab lists as itself");
    let out = c
        .list_objects()
        .bucket("lst")
        .prefix("tab")
        .marker("a")
        .send()
        .await
        .unwrap();
    assert_eq!(out.marker(), Some("a"));

    // An empty delimiter is no delimiter (v1, v2, versions).
    let v1 = c
        .list_objects()
        .bucket("lst")
        .delimiter("")
        .encoding_type(EncodingType::Url)
        .send()
        .await
        .unwrap();
    let got: Vec<String> = v1.contents().iter().filter_map(|o| dec(o.key())).collect();
    assert_eq!(got, keys);
    assert!(v1.common_prefixes().is_empty());
    assert_eq!(v1.delimiter(), None);
    let v2 = c
        .list_objects_v2()
        .bucket("lst")
        .delimiter("")
        .encoding_type(EncodingType::Url)
        .send()
        .await
        .unwrap();
    let got: Vec<String> = v2.contents().iter().filter_map(|o| dec(o.key())).collect();
    assert_eq!(got, keys);
    assert!(v2.common_prefixes().is_empty());
    assert_eq!(v2.delimiter(), None);
    let vs = c
        .list_object_versions()
        .bucket("lst")
        .delimiter("")
        .encoding_type(EncodingType::Url)
        .send()
        .await
        .unwrap();
    assert_eq!(vs.versions().len(), keys.len());
    assert!(vs.common_prefixes().is_empty());

    // encoding-type=url on every name the answer carries.
    let v1 = c
        .list_objects()
        .bucket("lst")
        .prefix("a b")
        .delimiter("/")
        .marker("a b")
        .encoding_type(EncodingType::Url)
        .send()
        .await
        .unwrap();
    assert_eq!(v1.prefix(), Some("a%20b"));
    assert_eq!(v1.delimiter(), Some("/"));
    assert_eq!(v1.marker(), Some("a%20b"));
    let cps: Vec<Option<&str>> = v1.common_prefixes().iter().map(|p| p.prefix()).collect();
    assert_eq!(cps, [Some("a%20b/")]);
    let v1 = c
        .list_objects()
        .bucket("lst")
        .marker("b")
        .max_keys(1)
        .encoding_type(EncodingType::Url)
        .send()
        .await
        .unwrap();
    let got: Vec<&str> = v1.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(got, ["ctl%01key"], "a control character, percent-encoded");
    assert_eq!(v1.next_marker(), Some("ctl%01key"));

    let v2 = c
        .list_objects_v2()
        .bucket("lst")
        .start_after("ctl\u{1}key")
        .max_keys(1)
        .encoding_type(EncodingType::Url)
        .send()
        .await
        .unwrap();
    assert_eq!(v2.start_after(), Some("ctl%01key"));
    let got: Vec<&str> = v2.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(got, ["tab%09key"]);

    let vs = c
        .list_object_versions()
        .bucket("lst")
        .key_marker("a b/2")
        .max_keys(1)
        .encoding_type(EncodingType::Url)
        .send()
        .await
        .unwrap();
    assert_eq!(vs.key_marker(), Some("a%20b/2"));
    let got: Vec<Option<&str>> = vs.versions().iter().map(|v| v.key()).collect();
    assert_eq!(got, [Some("ctl%01key")]);
    assert_eq!(vs.next_key_marker(), Some("ctl%01key"));
    assert_eq!(vs.is_truncated(), Some(true));
    let vs = c
        .list_object_versions()
        .bucket("lst")
        .prefix("z+")
        .encoding_type(EncodingType::Url)
        .send()
        .await
        .unwrap();
    assert_eq!(vs.prefix(), Some("z%2B"));
    let got: Vec<Option<&str>> = vs.versions().iter().map(|v| v.key()).collect();
    assert_eq!(got, [Some("z%2B")]);
}

// ---------------------------------------------------------------- multipart

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_upload_complete_list_parts_and_uploads() {
    let (_t, _s, c) = setup();
    bucket(&c, "mpu").await;
    let p1 = content("mp1", 5 * MIB);
    let p2 = content("mp2", 5 * MIB + 3);
    let p3 = content("mp3", 1);
    let id = create_mpu(&c, "mpu", "obj").await;
    let other = create_mpu(&c, "mpu", "other/obj").await;
    assert_ne!(id, other);

    let e1 = upload_part(&c, "mpu", "obj", &id, 1, p1.clone()).await;
    let e2 = upload_part(&c, "mpu", "obj", &id, 2, p2.clone()).await;
    let e3 = upload_part(&c, "mpu", "obj", &id, 3, p3.clone()).await;
    assert_eq!(e1, format!("\"{}\"", md5_hex(&p1)), "part ETag is its md5");

    // ListMultipartUploads.
    let ups = c
        .list_multipart_uploads()
        .bucket("mpu")
        .send()
        .await
        .expect("list multipart uploads");
    let mut got: Vec<(&str, &str)> = ups
        .uploads()
        .iter()
        .map(|u| (u.key().unwrap_or(""), u.upload_id().unwrap_or("")))
        .collect();
    got.sort();
    assert_eq!(got, [("obj", id.as_str()), ("other/obj", other.as_str())]);
    let ups = c
        .list_multipart_uploads()
        .bucket("mpu")
        .prefix("other/")
        .send()
        .await
        .unwrap();
    assert_eq!(ups.uploads().len(), 1);
    assert_eq!(ups.uploads()[0].key(), Some("other/obj"));

    // ListParts, whole and paginated.
    let parts = c
        .list_parts()
        .bucket("mpu")
        .key("obj")
        .upload_id(&id)
        .send()
        .await
        .expect("list parts");
    let got: Vec<(i32, String, i64)> = parts
        .parts()
        .iter()
        .map(|p| {
            (
                p.part_number().unwrap_or(0),
                p.e_tag().unwrap_or("").to_string(),
                p.size().unwrap_or(-1),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (1, e1.clone(), p1.len() as i64),
            (2, e2.clone(), p2.len() as i64),
            (3, e3.clone(), 1)
        ]
    );
    let page = c
        .list_parts()
        .bucket("mpu")
        .key("obj")
        .upload_id(&id)
        .max_parts(2)
        .send()
        .await
        .unwrap();
    assert_eq!(page.parts().len(), 2);
    assert_eq!(page.is_truncated(), Some(true));
    let next = page
        .next_part_number_marker()
        .expect("NextPartNumberMarker");
    let page = c
        .list_parts()
        .bucket("mpu")
        .key("obj")
        .upload_id(&id)
        .part_number_marker(next)
        .send()
        .await
        .unwrap();
    let nums: Vec<i32> = page
        .parts()
        .iter()
        .filter_map(|p| p.part_number())
        .collect();
    assert_eq!(nums, [3]);
    assert_eq!(page.is_truncated(), Some(false));

    // Re-uploading a part number replaces it.
    let p2b = content("mp2b", 5 * MIB);
    let e2b = upload_part(&c, "mpu", "obj", &id, 2, p2b.clone()).await;

    let done = c
        .complete_multipart_upload()
        .bucket("mpu")
        .key("obj")
        .upload_id(&id)
        .multipart_upload(completed(&[(1, &e1), (2, &e2b), (3, &e3)]))
        .send()
        .await
        .expect("complete");
    let want_etag = multipart_etag(&[&p1, &p2b, &p3]);
    assert_eq!(done.e_tag(), Some(want_etag.as_str()), "\"md5(md5s)-N\"");
    assert_eq!(done.key(), Some("obj"));
    assert_eq!(done.bucket(), Some("mpu"));

    let mut whole = p1.clone();
    whole.extend_from_slice(&p2b);
    whole.extend_from_slice(&p3);
    let h = c
        .head_object()
        .bucket("mpu")
        .key("obj")
        .send()
        .await
        .unwrap();
    assert_eq!(h.content_length(), Some(whole.len() as i64));
    assert_eq!(h.e_tag(), Some(want_etag.as_str()));
    assert!(get(&c, "mpu", "obj").await == whole, "assembled content");
    // GET partNumber=2 returns exactly that part.
    let g = c
        .get_object()
        .bucket("mpu")
        .key("obj")
        .part_number(2)
        .send()
        .await
        .expect("get partNumber");
    assert_eq!(g.parts_count(), Some(3));
    let body = g.body.collect().await.unwrap().into_bytes();
    assert!(body.as_ref() == p2b.as_slice(), "partNumber=2 content");

    // The completed upload is gone from the listing; the other one remains.
    let ups = c
        .list_multipart_uploads()
        .bucket("mpu")
        .send()
        .await
        .unwrap();
    let ids: Vec<&str> = ups.uploads().iter().filter_map(|u| u.upload_id()).collect();
    assert_eq!(ids, [other.as_str()]);
    let (st, code) = fails(
        c.list_parts()
            .bucket("mpu")
            .key("obj")
            .upload_id(&id)
            .send()
            .await,
    );
    assert_eq!((st, code.as_str()), (404, "NoSuchUpload"));
}

/// partNumber beyond an object's parts: 400 InvalidPartNumber on GET and HEAD (not a 416).
/// An object not uploaded in parts is its own part 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn part_number_out_of_range_is_invalid_part_number() {
    let (_t, _s, c) = setup();
    bucket(&c, "pnum").await;
    let id = create_mpu(&c, "pnum", "mp").await;
    let (p1, p2) = (content("pn1", 5 * MIB), content("pn2", 10));
    let e1 = upload_part(&c, "pnum", "mp", &id, 1, p1).await;
    let e2 = upload_part(&c, "pnum", "mp", &id, 2, p2.clone()).await;
    c.complete_multipart_upload()
        .bucket("pnum")
        .key("mp")
        .upload_id(&id)
        .multipart_upload(completed(&[(1, &e1), (2, &e2)]))
        .send()
        .await
        .expect("complete");
    let last = c
        .get_object()
        .bucket("pnum")
        .key("mp")
        .part_number(2)
        .send()
        .await
        .expect("last part");
    assert_eq!(last.parts_count(), Some(2));
    assert_eq!(last.body.collect().await.unwrap().into_bytes().as_ref(), p2);
    let (st, code) = fails(
        c.get_object()
            .bucket("pnum")
            .key("mp")
            .part_number(3)
            .send()
            .await,
    );
    assert_eq!(
        (st, code.as_str()),
        (400, "InvalidPartNumber"),
        "GET part 3 of 2"
    );
    let (st, _) = fails(
        c.head_object()
            .bucket("pnum")
            .key("mp")
            .part_number(3)
            .send()
            .await,
    );
    assert_eq!(st, 400, "HEAD part 3 of 2");

    put(&c, "pnum", "single", b"whole object".to_vec()).await;
    let one = c
        .get_object()
        .bucket("pnum")
        .key("single")
        .part_number(1)
        .send()
        .await
        .expect("part 1 of a single-part object");
    assert_eq!(one.content_length(), Some(12));
    assert_eq!(
        one.body.collect().await.unwrap().into_bytes().as_ref(),
        b"whole object"
    );
    let h = c
        .head_object()
        .bucket("pnum")
        .key("single")
        .part_number(1)
        .send()
        .await
        .expect("HEAD part 1");
    assert_eq!(h.content_length(), Some(12));
    let (st, code) = fails(
        c.get_object()
            .bucket("pnum")
            .key("single")
            .part_number(2)
            .send()
            .await,
    );
    assert_eq!(
        (st, code.as_str()),
        (400, "InvalidPartNumber"),
        "GET part 2 of 1"
    );
    let (st, _) = fails(
        c.head_object()
            .bucket("pnum")
            .key("single")
            .part_number(2)
            .send()
            .await,
    );
    assert_eq!(st, 400, "HEAD part 2 of 1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_abort() {
    let (_t, _s, c) = setup();
    bucket(&c, "mpu").await;
    let id = create_mpu(&c, "mpu", "gone").await;
    upload_part(&c, "mpu", "gone", &id, 1, content("a", 1000)).await;
    c.abort_multipart_upload()
        .bucket("mpu")
        .key("gone")
        .upload_id(&id)
        .send()
        .await
        .expect("abort");
    let (st, code) = fails(
        c.list_parts()
            .bucket("mpu")
            .key("gone")
            .upload_id(&id)
            .send()
            .await,
    );
    assert_eq!((st, code.as_str()), (404, "NoSuchUpload"));
    let (st, code) = fails(
        c.upload_part()
            .bucket("mpu")
            .key("gone")
            .upload_id(&id)
            .part_number(2)
            .body(ByteStream::from_static(b"late"))
            .send()
            .await,
    );
    assert_eq!((st, code.as_str()), (404, "NoSuchUpload"));
    let (st, code) = fails(
        c.complete_multipart_upload()
            .bucket("mpu")
            .key("gone")
            .upload_id(&id)
            .multipart_upload(completed(&[(1, "\"00\"")]))
            .send()
            .await,
    );
    assert_eq!((st, code.as_str()), (404, "NoSuchUpload"));
    assert_eq!(head_status(&c, "mpu", "gone").await, 404);
    let ups = c
        .list_multipart_uploads()
        .bucket("mpu")
        .send()
        .await
        .unwrap();
    assert!(ups.uploads().is_empty());
    // Part numbers are 1..=10000.
    let id = create_mpu(&c, "mpu", "range").await;
    for n in [0, 10_001] {
        let (st, _) = fails(
            c.upload_part()
                .bucket("mpu")
                .key("range")
                .upload_id(&id)
                .part_number(n)
                .body(ByteStream::from_static(b"x"))
                .send()
                .await,
        );
        assert_eq!(st, 400, "part number {n}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_completion_errors() {
    let (_t, _s, c) = setup();
    bucket(&c, "mpu").await;

    // Parts other than the last under 5 MiB: EntityTooSmall.
    let id = create_mpu(&c, "mpu", "small").await;
    let e1 = upload_part(&c, "mpu", "small", &id, 1, content("s1", MIB)).await;
    let e2 = upload_part(&c, "mpu", "small", &id, 2, content("s2", MIB)).await;
    let (st, code) = fails(
        c.complete_multipart_upload()
            .bucket("mpu")
            .key("small")
            .upload_id(&id)
            .multipart_upload(completed(&[(1, &e1), (2, &e2)]))
            .send()
            .await,
    );
    assert_eq!((st, code.as_str()), (400, "EntityTooSmall"));
    assert_eq!(head_status(&c, "mpu", "small").await, 404);

    // A single small part is fine (the last part has no minimum).
    let id = create_mpu(&c, "mpu", "one").await;
    let e = upload_part(&c, "mpu", "one", &id, 1, b"tiny".to_vec()).await;
    c.complete_multipart_upload()
        .bucket("mpu")
        .key("one")
        .upload_id(&id)
        .multipart_upload(completed(&[(1, &e)]))
        .send()
        .await
        .expect("complete single small part");
    assert_eq!(get(&c, "mpu", "one").await, b"tiny");

    // Wrong ETag, or a part never uploaded: InvalidPart.
    let id = create_mpu(&c, "mpu", "bad").await;
    let a = content("b1", 5 * MIB);
    let e1 = upload_part(&c, "mpu", "bad", &id, 1, a.clone()).await;
    let e2 = upload_part(&c, "mpu", "bad", &id, 2, b"end".to_vec()).await;
    let (st, code) = fails(
        c.complete_multipart_upload()
            .bucket("mpu")
            .key("bad")
            .upload_id(&id)
            .multipart_upload(completed(&[
                (1, &e1),
                (2, "\"0123456789abcdef0123456789abcdef\""),
            ]))
            .send()
            .await,
    );
    assert_eq!((st, code.as_str()), (400, "InvalidPart"), "wrong ETag");
    let (st, code) = fails(
        c.complete_multipart_upload()
            .bucket("mpu")
            .key("bad")
            .upload_id(&id)
            .multipart_upload(completed(&[(1, &e1), (3, &e2)]))
            .send()
            .await,
    );
    assert_eq!(
        (st, code.as_str()),
        (400, "InvalidPart"),
        "part 3 never uploaded"
    );

    // Out of order: InvalidPartOrder.
    let (st, code) = fails(
        c.complete_multipart_upload()
            .bucket("mpu")
            .key("bad")
            .upload_id(&id)
            .multipart_upload(completed(&[(2, &e2), (1, &e1)]))
            .send()
            .await,
    );
    assert_eq!((st, code.as_str()), (400, "InvalidPartOrder"));
    assert_eq!(head_status(&c, "mpu", "bad").await, 404);

    // The upload survives failed completions and can still be completed.
    c.complete_multipart_upload()
        .bucket("mpu")
        .key("bad")
        .upload_id(&id)
        .multipart_upload(completed(&[(1, &e1), (2, &e2)]))
        .send()
        .await
        .expect("complete after failed attempts");
    let mut whole = a;
    whole.extend_from_slice(b"end");
    assert!(get(&c, "mpu", "bad").await == whole);

    // Unknown upload id: NoSuchUpload.
    let (st, code) = fails(
        c.complete_multipart_upload()
            .bucket("mpu")
            .key("bad")
            .upload_id("no-such-upload-id")
            .multipart_upload(completed(&[(1, &e1)]))
            .send()
            .await,
    );
    assert_eq!((st, code.as_str()), (404, "NoSuchUpload"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_part_copy_with_range() {
    let (_t, _s, c) = setup();
    bucket(&c, "mpu").await;
    let src = content("upc-src", 6 * MIB + 100);
    put(&c, "mpu", "source", src.clone()).await;
    let id = create_mpu(&c, "mpu", "assembled").await;
    // Part 1: 5 MiB copied from an unaligned offset of the source.
    let (from1, to1) = (100, 100 + 5 * MIB - 1);
    let r1 = c
        .upload_part_copy()
        .bucket("mpu")
        .key("assembled")
        .upload_id(&id)
        .part_number(1)
        .copy_source("mpu/source")
        .copy_source_range(format!("bytes={from1}-{to1}"))
        .send()
        .await
        .expect("upload part copy (range)");
    let e1 = r1
        .copy_part_result()
        .and_then(|r| r.e_tag())
        .expect("CopyPartResult ETag")
        .to_string();
    let a = &src[from1..=to1];
    assert_eq!(
        e1,
        format!("\"{}\"", md5_hex(a)),
        "copied part ETag = md5 of range"
    );
    // Part 2: uploaded normally.
    let middle = content("upc-middle", 5 * MIB);
    let e2 = upload_part(&c, "mpu", "assembled", &id, 2, middle.clone()).await;
    // Part 3 (last, small): the source's last 100 bytes.
    let (from3, to3) = (6 * MIB, 6 * MIB + 99);
    let r3 = c
        .upload_part_copy()
        .bucket("mpu")
        .key("assembled")
        .upload_id(&id)
        .part_number(3)
        .copy_source("mpu/source")
        .copy_source_range(format!("bytes={from3}-{to3}"))
        .send()
        .await
        .expect("upload part copy (tail range)");
    let e3 = r3
        .copy_part_result()
        .and_then(|r| r.e_tag())
        .unwrap()
        .to_string();
    let b = &src[from3..=to3];
    let done = c
        .complete_multipart_upload()
        .bucket("mpu")
        .key("assembled")
        .upload_id(&id)
        .multipart_upload(completed(&[(1, &e1), (2, &e2), (3, &e3)]))
        .send()
        .await
        .expect("complete");
    assert_eq!(
        done.e_tag(),
        Some(multipart_etag(&[a, &middle, b]).as_str())
    );
    let want = [a, middle.as_slice(), b].concat();
    assert!(
        get(&c, "mpu", "assembled").await == want,
        "assembled content"
    );

    // A range past the end of the source: 416 InvalidRange (AWS: or 400 InvalidArgument).
    let id = create_mpu(&c, "mpu", "bad-range").await;
    let (st, _) = fails(
        c.upload_part_copy()
            .bucket("mpu")
            .key("bad-range")
            .upload_id(&id)
            .part_number(1)
            .copy_source("mpu/source")
            .copy_source_range(format!("bytes=0-{}", 7 * MIB))
            .send()
            .await,
    );
    assert!(
        st == 416 || st == 400,
        "out-of-range copy source range: {st}"
    );
}

// ---------------------------------------------------------------- versioning

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versioning_ids_delete_markers_and_version_listing() {
    let (_t, _s, c) = setup();
    bucket(&c, "ver").await;
    // Unversioned: no version id on PUT (or "null").
    let out = c
        .put_object()
        .bucket("ver")
        .key("pre")
        .body(ByteStream::from_static(b"pre"))
        .send()
        .await
        .unwrap();
    assert!(
        out.version_id().is_none_or(|v| v == "null"),
        "{:?}",
        out.version_id()
    );
    set_versioning(&c, "ver", BucketVersioningStatus::Enabled).await;

    let put_v = |body: &'static [u8]| {
        c.put_object()
            .bucket("ver")
            .key("k")
            .body(ByteStream::from_static(body))
            .send()
    };
    let v1 = put_v(b"one")
        .await
        .unwrap()
        .version_id()
        .expect("v1")
        .to_string();
    let v2 = put_v(b"two")
        .await
        .unwrap()
        .version_id()
        .expect("v2")
        .to_string();
    assert_ne!(v1, v2);
    assert_ne!(v1, "null");
    assert_eq!(get(&c, "ver", "k").await, b"two", "latest version");

    let g = c
        .get_object()
        .bucket("ver")
        .key("k")
        .version_id(&v1)
        .send()
        .await
        .expect("GET by versionId");
    assert_eq!(g.version_id(), Some(v1.as_str()));
    assert_eq!(
        g.body.collect().await.unwrap().into_bytes().as_ref(),
        b"one"
    );
    let h = c
        .head_object()
        .bucket("ver")
        .key("k")
        .version_id(&v1)
        .send()
        .await
        .expect("HEAD by versionId");
    assert_eq!(h.content_length(), Some(3));
    assert_eq!(h.version_id(), Some(v1.as_str()));

    // A plain DELETE makes a delete marker.
    let d = c
        .delete_object()
        .bucket("ver")
        .key("k")
        .send()
        .await
        .expect("delete");
    assert_eq!(d.delete_marker(), Some(true));
    let marker = d
        .version_id()
        .expect("delete marker version id")
        .to_string();
    assert!(marker != v1 && marker != v2);

    let e = c
        .get_object()
        .bucket("ver")
        .key("k")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_code(&e), (404, "NoSuchKey".to_string()));
    assert_eq!(
        err_header(&e, "x-amz-delete-marker").as_deref(),
        Some("true"),
        "GET of a deleted key says x-amz-delete-marker: true"
    );
    let e = c
        .head_object()
        .bucket("ver")
        .key("k")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_code(&e).0, 404);
    assert_eq!(
        err_header(&e, "x-amz-delete-marker").as_deref(),
        Some("true")
    );
    // GET of the delete marker by its version id: 405 MethodNotAllowed.
    let (st, code) = fails(
        c.get_object()
            .bucket("ver")
            .key("k")
            .version_id(&marker)
            .send()
            .await,
    );
    assert_eq!((st, code.as_str()), (405, "MethodNotAllowed"));
    // Older versions survive.
    let g = c
        .get_object()
        .bucket("ver")
        .key("k")
        .version_id(&v2)
        .send()
        .await
        .unwrap();
    assert_eq!(
        g.body.collect().await.unwrap().into_bytes().as_ref(),
        b"two"
    );

    // ListObjectVersions: both versions, not latest; the marker, latest.
    let lv = c
        .list_object_versions()
        .bucket("ver")
        .prefix("k")
        .send()
        .await
        .expect("list object versions");
    let vs: Vec<(&str, &str, bool)> = lv
        .versions()
        .iter()
        .map(|v| {
            (
                v.key().unwrap_or(""),
                v.version_id().unwrap_or(""),
                v.is_latest().unwrap_or(true),
            )
        })
        .collect();
    assert_eq!(
        vs,
        [("k", v2.as_str(), false), ("k", v1.as_str(), false)],
        "versions newest first"
    );
    let dms: Vec<(&str, &str, bool)> = lv
        .delete_markers()
        .iter()
        .map(|m| {
            (
                m.key().unwrap_or(""),
                m.version_id().unwrap_or(""),
                m.is_latest().unwrap_or(false),
            )
        })
        .collect();
    assert_eq!(dms, [("k", marker.as_str(), true)]);
    let all = c.list_object_versions().bucket("ver").send().await.unwrap();
    assert!(
        all.versions()
            .iter()
            .any(|v| v.key() == Some("pre") && v.version_id() == Some("null")),
        "pre-versioning object listed with version id null"
    );
    // ListObjectsV2 hides keys whose latest version is a delete marker.
    assert_eq!(keys(&c, "ver").await, ["pre"]);

    // Deleting the delete marker (by version id) brings the object back.
    let d = c
        .delete_object()
        .bucket("ver")
        .key("k")
        .version_id(&marker)
        .send()
        .await
        .expect("delete the marker");
    assert_eq!(d.delete_marker(), Some(true));
    assert_eq!(d.version_id(), Some(marker.as_str()));
    assert_eq!(get(&c, "ver", "k").await, b"two");

    // Deleting a version permanently.
    let d = c
        .delete_object()
        .bucket("ver")
        .key("k")
        .version_id(&v1)
        .send()
        .await
        .expect("delete v1");
    assert_eq!(d.version_id(), Some(v1.as_str()));
    let (st, code) = fails(
        c.get_object()
            .bucket("ver")
            .key("k")
            .version_id(&v1)
            .send()
            .await,
    );
    assert_eq!((st, code.as_str()), (404, "NoSuchVersion"));
    assert_eq!(get(&c, "ver", "k").await, b"two");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspended_versioning_uses_the_null_version() {
    let (_t, _s, c) = setup();
    bucket(&c, "sus").await;
    set_versioning(&c, "sus", BucketVersioningStatus::Enabled).await;
    let put_s = |body: &'static [u8]| {
        c.put_object()
            .bucket("sus")
            .key("k")
            .body(ByteStream::from_static(body))
            .send()
    };
    let v1 = put_s(b"one")
        .await
        .unwrap()
        .version_id()
        .expect("v1")
        .to_string();
    set_versioning(&c, "sus", BucketVersioningStatus::Suspended).await;
    let out = put_s(b"two").await.unwrap();
    assert!(
        out.version_id().is_none_or(|v| v == "null"),
        "suspended PUT: {:?}",
        out.version_id()
    );
    put_s(b"three").await.unwrap(); // replaces the null version

    let versions = || async {
        let lv = c.list_object_versions().bucket("sus").send().await.unwrap();
        let mut vs: Vec<(String, bool)> = lv
            .versions()
            .iter()
            .map(|v| (v.version_id().unwrap_or("").to_string(), false))
            .chain(
                lv.delete_markers()
                    .iter()
                    .map(|m| (m.version_id().unwrap_or("").to_string(), true)),
            )
            .collect();
        vs.sort();
        vs
    };
    let mut want = vec![("null".to_string(), false), (v1.clone(), false)];
    want.sort();
    assert_eq!(versions().await, want, "one null version plus v1");
    let g = c
        .get_object()
        .bucket("sus")
        .key("k")
        .version_id("null")
        .send()
        .await
        .expect("GET versionId=null");
    assert_eq!(
        g.body.collect().await.unwrap().into_bytes().as_ref(),
        b"three"
    );
    assert_eq!(get(&c, "sus", "k").await, b"three");

    // A plain DELETE while suspended: a null-version delete marker replaces the null version.
    let d = c
        .delete_object()
        .bucket("sus")
        .key("k")
        .send()
        .await
        .unwrap();
    assert_eq!(d.delete_marker(), Some(true));
    let mut want = vec![("null".to_string(), true), (v1.clone(), false)];
    want.sort();
    assert_eq!(versions().await, want);
    let g = c
        .get_object()
        .bucket("sus")
        .key("k")
        .version_id(&v1)
        .send()
        .await
        .unwrap();
    assert_eq!(
        g.body.collect().await.unwrap().into_bytes().as_ref(),
        b"one"
    );
}

/// PutObject, CopyObject and CompleteMultipartUpload name the version they wrote only in
/// a versioning-enabled bucket: unversioned and suspended buckets send no x-amz-version-id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_send_a_version_id_only_when_versioning_is_enabled() {
    let (_t, _s, c) = setup();
    for (b, state) in [
        ("plain", None),
        ("vers-on", Some(BucketVersioningStatus::Enabled)),
        ("paused", Some(BucketVersioningStatus::Suspended)),
    ] {
        bucket(&c, b).await;
        if let Some(state) = state {
            set_versioning(&c, b, state).await;
        }
        let versioned = b == "vers-on";
        let put = c
            .put_object()
            .bucket(b)
            .key("k")
            .body(ByteStream::from_static(b"data"))
            .send()
            .await
            .expect("put");
        assert_eq!(
            put.version_id().is_some(),
            versioned,
            "{b}: PUT {:?}",
            put.version_id()
        );
        let copy = c
            .copy_object()
            .bucket(b)
            .key("copy")
            .copy_source(format!("{b}/k"))
            .send()
            .await
            .expect("copy");
        assert_eq!(
            copy.version_id().is_some(),
            versioned,
            "{b}: copy {:?}",
            copy.version_id()
        );
        let id = create_mpu(&c, b, "mp").await;
        let e1 = upload_part(&c, b, "mp", &id, 1, b"part".to_vec()).await;
        let done = c
            .complete_multipart_upload()
            .bucket(b)
            .key("mp")
            .upload_id(&id)
            .multipart_upload(completed(&[(1, &e1)]))
            .send()
            .await
            .expect("complete");
        assert_eq!(
            done.version_id().is_some(),
            versioned,
            "{b}: complete {:?}",
            done.version_id()
        );
        if versioned {
            assert_ne!(put.version_id(), Some("null"));
        }
    }
}

// ---------------------------------------------------------------- presigned URLs

fn curl_presigned(req: &aws_sdk_s3::presigning::PresignedRequest, body: Option<&Path>) -> Resp {
    let mut args: Vec<String> = vec!["-X".into(), req.method().into()];
    for (k, v) in req.headers() {
        args.push("-H".into());
        args.push(format!("{k}: {v}"));
    }
    if let Some(p) = body {
        args.push("--data-binary".into());
        args.push(format!("@{}", p.display()));
    }
    args.push(req.uri().to_string());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    curl(&refs)
}

use std::path::Path;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presigned_get_and_put_urls() {
    let (t, _s, c) = setup();
    bucket(&c, "pre").await;
    let data = content("presigned", 100_000);
    put(&c, "pre", "get me", data.clone()).await;

    let cfg = PresigningConfig::expires_in(Duration::from_secs(300)).unwrap();
    let req = c
        .get_object()
        .bucket("pre")
        .key("get me")
        .presigned(cfg.clone())
        .await
        .expect("presign GET");
    let r = curl_presigned(&req, None);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.body == data, "presigned GET body");

    let upload = content("presigned-put", 70_000);
    let file = t.path().join("upload.bin");
    std::fs::write(&file, &upload).unwrap();
    let req = c
        .put_object()
        .bucket("pre")
        .key("put/me")
        .presigned(cfg)
        .await
        .expect("presign PUT");
    let r = curl_presigned(&req, Some(&file));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("etag"),
        Some(format!("\"{}\"", md5_hex(&upload)).as_str())
    );
    assert!(
        get(&c, "pre", "put/me").await == upload,
        "presigned PUT stored"
    );

    // Expired: 403 AccessDenied.
    let old = PresigningConfig::builder()
        .start_time(SystemTime::now() - Duration::from_secs(7200))
        .expires_in(Duration::from_secs(60))
        .build()
        .unwrap();
    let req = c
        .get_object()
        .bucket("pre")
        .key("get me")
        .presigned(old)
        .await
        .unwrap();
    let r = curl_presigned(&req, None);
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.code().as_deref(), Some("AccessDenied"), "{}", r.text());
}

// ---------------------------------------------------------------- CORS

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_configuration_and_preflight() {
    let (_t, s, c) = setup();
    bucket(&c, "web").await;
    put(&c, "web", "page.html", b"<html/>".to_vec()).await;
    let (st, code) = fails(c.get_bucket_cors().bucket("web").send().await);
    assert_eq!((st, code.as_str()), (404, "NoSuchCORSConfiguration"));

    c.put_bucket_cors()
        .bucket("web")
        .cors_configuration(
            CorsConfiguration::builder()
                .cors_rules(
                    CorsRule::builder()
                        .allowed_origins("https://app.example.com")
                        .allowed_methods("GET")
                        .allowed_methods("PUT")
                        .allowed_headers("*")
                        .expose_headers("ETag")
                        .max_age_seconds(3000)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("put bucket cors");
    let got = c
        .get_bucket_cors()
        .bucket("web")
        .send()
        .await
        .expect("get bucket cors");
    assert_eq!(got.cors_rules().len(), 1);
    let r = &got.cors_rules()[0];
    assert_eq!(r.allowed_origins(), ["https://app.example.com"]);
    let mut methods = r.allowed_methods().to_vec();
    methods.sort();
    assert_eq!(methods, ["GET", "PUT"]);
    assert_eq!(r.allowed_headers(), ["*"]);
    assert_eq!(r.expose_headers(), ["ETag"]);
    assert_eq!(r.max_age_seconds(), Some(3000));

    let url = format!("{}/web/page.html", s.endpoint());
    let preflight = |origin: &str, method: &str| {
        curl(&[
            "-X",
            "OPTIONS",
            "-H",
            &format!("Origin: {origin}"),
            "-H",
            &format!("Access-Control-Request-Method: {method}"),
            "-H",
            "Access-Control-Request-Headers: content-type",
            &url,
        ])
    };
    let r = preflight("https://app.example.com", "PUT");
    assert_eq!(r.status, 200, "allowed preflight: {}", r.text());
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert!(
        r.header("access-control-allow-methods")
            .is_some_and(|m| m.contains("PUT")),
        "{:?}",
        r.headers
    );
    assert_eq!(r.header("access-control-max-age"), Some("3000"));
    let r = preflight("https://evil.example.net", "PUT");
    assert_eq!(r.status, 403, "other origin: {}", r.text());
    assert!(r.header("access-control-allow-origin").is_none());
    let r = preflight("https://app.example.com", "DELETE");
    assert_eq!(r.status, 403, "method not allowed: {}", r.text());

    // An actual cross-origin GET (presigned, with an Origin header) gets the CORS headers.
    let presigned = c
        .get_object()
        .bucket("web")
        .key("page.html")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(300)).unwrap())
        .await
        .unwrap();
    let r = curl(&["-H", "Origin: https://app.example.com", presigned.uri()]);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example.com"),
        "{:?}",
        r.headers
    );
    assert!(
        r.header("access-control-expose-headers")
            .is_some_and(|h| h.to_ascii_lowercase().contains("etag")),
        "{:?}",
        r.headers
    );

    c.delete_bucket_cors()
        .bucket("web")
        .send()
        .await
        .expect("delete bucket cors");
    let (st, code) = fails(c.get_bucket_cors().bucket("web").send().await);
    assert_eq!((st, code.as_str()), (404, "NoSuchCORSConfiguration"));
    let r = preflight("https://app.example.com", "PUT");
    assert_eq!(r.status, 403, "no CORS configuration: {}", r.text());
}

// ---------------------------------------------------------------- virtual-hosted style

/// A server started with `--domain s3.test` (the harness has no flag for it).
struct DomainServer {
    child: std::process::Child,
    port: u16,
    access: String,
    secret: String,
}

impl Drop for DomainServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_with_domain(home: &Path, domain: &str) -> DomainServer {
    use std::process::{Command, Stdio};
    let port = cybs3_tests::free_port();
    let mut child = Command::new(cybs3_tests::bin())
        .args(["server", "start", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--domain", domain])
        .env("CYBS3_HOME", home)
        .env_remove("AWS_CA_BUNDLE")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn server");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while cybs3_tests::http_status(port, "/health/ready") != Some(200) {
        if let Some(st) = child.try_wait().unwrap() {
            panic!("server with --domain exited: {st}");
        }
        assert!(std::time::Instant::now() < deadline, "server not ready");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = cybs3_tests::cybs3(home, &["server", "status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status JSON");
    DomainServer {
        child,
        port,
        access: status["root_access_key"].as_str().unwrap().into(),
        secret: status["root_secret_key"].as_str().unwrap().into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn virtual_hosted_style_requests() {
    let tmp = tempfile::tempdir().unwrap();
    let s = start_with_domain(tmp.path(), "s3.test");
    let c = Client::from_conf(
        aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .endpoint_url(format!("http://127.0.0.1:{}", s.port))
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                &s.access, &s.secret, None, None, "vhost",
            ))
            .force_path_style(true)
            .build(),
    );
    bucket(&c, "vhost").await;
    let data = content("vhost", 5000);
    put(&c, "vhost", "dir/obj.txt", data.clone()).await;

    let mut signer = Signer::new(&s.access, &s.secret);
    signer.host = Some(format!("vhost.s3.test:{}", s.port));
    let raw = |method: &str, path: &str, query: &[(&str, &str)], body: &[u8]| {
        let len = body.len().to_string();
        let signed = signer.sign(
            method,
            path,
            query,
            &[("content-length", &len)],
            &sha256_hex(body),
            s.port,
        );
        let target = if query.is_empty() {
            path.to_string()
        } else {
            let q: Vec<String> = query
                .iter()
                .map(|(k, v)| format!("{}={}", uri_encode(k, true), uri_encode(v, true)))
                .collect();
            format!("{path}?{}", q.join("&"))
        };
        let mut req = signed.head(method, &target);
        req.extend_from_slice(body);
        raw_exchange(s.port, &req).expect("answer")
    };

    let r = raw("GET", "/dir/obj.txt", &[], b"");
    assert_eq!(r.status, 200, "virtual-hosted GET: {}", r.text());
    assert!(r.body == data, "virtual-hosted GET body");

    let r = raw("PUT", "/from-vhost", &[], b"put via host");
    assert_eq!(r.status, 200, "virtual-hosted PUT: {}", r.text());
    assert_eq!(get(&c, "vhost", "from-vhost").await, b"put via host");

    let r = raw("GET", "/", &[("list-type", "2")], b"");
    assert_eq!(r.status, 200, "virtual-hosted ListObjectsV2: {}", r.text());
    let xml = r.text();
    assert!(xml.contains("<Name>vhost</Name>"), "{xml}");
    assert!(xml.contains("<Key>dir/obj.txt</Key>"), "{xml}");
    assert!(xml.contains("<Key>from-vhost</Key>"), "{xml}");

    // A bucket that does not exist, by host.
    signer.host = Some(format!("nobucket.s3.test:{}", s.port));
    let r = {
        let signed = signer.sign("GET", "/k", &[], &[], &sha256_hex(b""), s.port);
        raw_exchange(s.port, &signed.head("GET", "/k")).expect("answer")
    };
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(r.code().as_deref(), Some("NoSuchBucket"));

    // Path style keeps working alongside.
    assert!(get(&c, "vhost", "dir/obj.txt").await == data);
}

/// Conditional writes: `If-None-Match: *` creates only, `If-Match` replaces only the
/// version it names, on PutObject and CompleteMultipartUpload; checked when the write
/// commits, so of racing creates exactly one wins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_writes_put_and_complete() {
    let (_t, _s, c) = setup();
    bucket(&c, "cond").await;
    let put = |k: &'static str, body: &'static [u8]| {
        c.put_object()
            .bucket("cond")
            .key(k)
            .body(ByteStream::from_static(body))
    };
    let first = put("k", b"one").if_none_match("*").send().await.unwrap();
    let e = put("k", b"two").if_none_match("*").send().await;
    assert_eq!(fails(e), (412, "PreconditionFailed".into()));
    let e = put("k", b"two")
        .if_match("\"ffffffffffffffffffffffffffffffff\"")
        .send()
        .await;
    assert_eq!(fails(e), (412, "PreconditionFailed".into()));
    let e = put("absent", b"x")
        .if_match(first.e_tag().unwrap())
        .send()
        .await;
    assert_eq!(fails(e), (404, "NoSuchKey".into()));
    put("k", b"two")
        .if_match(first.e_tag().unwrap())
        .send()
        .await
        .expect("If-Match with the current ETag");
    assert_eq!(get(&c, "cond", "k").await, b"two");

    // Racing creates: exactly one wins.
    let racers: Vec<_> = (0..16)
        .map(|i| {
            let c = c.clone();
            tokio::spawn(async move {
                c.put_object()
                    .bucket("cond")
                    .key("race")
                    .body(ByteStream::from(format!("racer {i}").into_bytes()))
                    .if_none_match("*")
                    .send()
                    .await
            })
        })
        .collect();
    let mut results = Vec::new();
    for r in racers {
        results.push(r.await.unwrap());
    }
    let won = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(won, 1, "{results:?}");
    for r in results.into_iter().filter(|r| r.is_err()) {
        assert_eq!(fails(r), (412, "PreconditionFailed".into()));
    }

    // CompleteMultipartUpload over an existing key with If-None-Match: *.
    let id = create_mpu(&c, "cond", "k").await;
    let etag = upload_part(&c, "cond", "k", &id, 1, b"part".to_vec()).await;
    let complete = || {
        c.complete_multipart_upload()
            .bucket("cond")
            .key("k")
            .upload_id(&id)
            .multipart_upload(completed(&[(1, &etag)]))
    };
    let e = complete().if_none_match("*").send().await;
    assert_eq!(fails(e), (412, "PreconditionFailed".into()));
    complete().send().await.expect("unconditional completion");
}

/// GetObjectAttributes: the attributes asked for, and a multipart object's parts in pages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_attributes_and_parts_in_pages() {
    use aws_sdk_s3::types::ObjectAttributes as A;
    let (_t, _s, c) = setup();
    bucket(&c, "attrs").await;
    c.put_object()
        .bucket("attrs")
        .key("one")
        .body(ByteStream::from_static(b"hello"))
        .checksum_algorithm(ChecksumAlgorithm::Crc32)
        .send()
        .await
        .unwrap();
    let all = [
        A::Etag,
        A::Checksum,
        A::ObjectParts,
        A::StorageClass,
        A::ObjectSize,
    ];
    let one = c
        .get_object_attributes()
        .bucket("attrs")
        .key("one")
        .set_object_attributes(Some(all.to_vec()))
        .send()
        .await
        .unwrap();
    assert_eq!(one.object_size, Some(5));
    assert_eq!(
        one.storage_class.map(|s| s.as_str().to_string()).as_deref(),
        Some("STANDARD")
    );
    assert!(one.e_tag.is_some());
    assert!(one.checksum.and_then(|c| c.checksum_crc32).is_some());
    assert!(one.object_parts.is_none(), "a single PUT has no parts");
    // Only what was asked for.
    let size_only = c
        .get_object_attributes()
        .bucket("attrs")
        .key("one")
        .object_attributes(A::ObjectSize)
        .send()
        .await
        .unwrap();
    assert_eq!(size_only.object_size, Some(5));
    assert!(size_only.e_tag.is_none() && size_only.storage_class.is_none());

    let id = create_mpu(&c, "attrs", "multi").await;
    let sizes = [MIB * 5, MIB * 5, 1024];
    let mut etags = Vec::new();
    for (i, size) in sizes.iter().enumerate() {
        etags.push(upload_part(&c, "attrs", "multi", &id, i as i32 + 1, vec![b'p'; *size]).await);
    }
    let parts: Vec<(i32, &str)> = etags
        .iter()
        .enumerate()
        .map(|(i, e)| (i as i32 + 1, e.as_str()))
        .collect();
    c.complete_multipart_upload()
        .bucket("attrs")
        .key("multi")
        .upload_id(&id)
        .multipart_upload(completed(&parts))
        .send()
        .await
        .unwrap();
    let page = |marker: Option<i32>| {
        c.get_object_attributes()
            .bucket("attrs")
            .key("multi")
            .object_attributes(A::ObjectParts)
            .object_attributes(A::ObjectSize)
            .max_parts(2)
            .set_part_number_marker(marker.map(|m| m.to_string()))
            .send()
    };
    let first = page(None).await.unwrap();
    assert_eq!(first.object_size, Some((MIB * 10 + 1024) as i64));
    let p = first.object_parts.unwrap();
    assert_eq!(p.total_parts_count, Some(3));
    assert_eq!(p.is_truncated, Some(true));
    let numbers: Vec<i32> = p.parts().iter().filter_map(|x| x.part_number).collect();
    assert_eq!(numbers, [1, 2]);
    assert_eq!(p.parts()[0].size, Some((MIB * 5) as i64));
    let next = p.next_part_number_marker.and_then(|m| m.parse().ok());
    let rest = page(next).await.unwrap().object_parts.unwrap();
    assert_eq!(rest.is_truncated, Some(false));
    let numbers: Vec<i32> = rest.parts().iter().filter_map(|x| x.part_number).collect();
    assert_eq!(numbers, [3]);
    assert_eq!(rest.parts()[0].size, Some(1024));

    let e = c
        .get_object_attributes()
        .bucket("attrs")
        .key("missing")
        .object_attributes(A::ObjectSize)
        .send()
        .await;
    assert_eq!(fails(e), (404, "NoSuchKey".into()));
}

/// A CompleteMultipartUpload retried after it succeeded (its answer lost on the way)
/// gets the same answer, not NoSuchUpload; an aborted upload stays NoSuchUpload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_completion_gets_the_first_answer() {
    let (_t, _s, c) = setup();
    bucket(&c, "retry").await;
    set_versioning(&c, "retry", BucketVersioningStatus::Enabled).await;
    let id = create_mpu(&c, "retry", "k").await;
    let etag = upload_part(&c, "retry", "k", &id, 1, b"only part".to_vec()).await;
    let complete = || {
        c.complete_multipart_upload()
            .bucket("retry")
            .key("k")
            .upload_id(&id)
            .multipart_upload(completed(&[(1, &etag)]))
            .send()
    };
    let first = complete().await.unwrap();
    let again = complete().await.expect("a retried completion");
    assert_eq!(again.e_tag(), first.e_tag());
    assert_eq!(again.version_id(), first.version_id());
    let versions = c
        .list_object_versions()
        .bucket("retry")
        .send()
        .await
        .unwrap();
    assert_eq!(
        versions.versions().len(),
        1,
        "the retry made no new version"
    );
}

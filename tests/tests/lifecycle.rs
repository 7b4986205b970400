//! Bucket lifecycle through aws-sdk-s3 against a real server whose lifecycle "day" is
//! one second (`--lifecycle-day-secs 1`): the configuration API with AWS's errors, the
//! `x-amz-expiration` header, and the scanner expiring current and noncurrent versions,
//! lone delete markers and old multipart uploads, while locked versions survive.

mod common;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    AbortIncompleteMultipartUpload, BucketLifecycleConfiguration, BucketVersioningStatus,
    CompletedMultipartUpload, CompletedPart, ExpirationStatus, LifecycleExpiration, LifecycleRule,
    LifecycleRuleFilter, NoncurrentVersionExpiration, ObjectLockLegalHoldStatus, ObjectLockMode,
    RestoreRequest, StorageClass, Tag, Transition, TransitionStorageClass,
};
use aws_sdk_s3::Client;
use common::*;
use cybs3_tests::Server;
use std::time::{Duration, Instant};

/// A server whose lifecycle day is a second (and so passes run every second).
fn fast_days() -> (tempfile::TempDir, Server, Client) {
    let tmp = tempfile::tempdir().unwrap();
    let mut srv = Server::new(tmp.path(), 1, None);
    srv.args = vec!["--lifecycle-day-secs".into(), "1".into()];
    srv.start();
    let c = srv.client();
    (tmp, srv, c)
}

fn rule(id: &str, prefix: &str) -> aws_sdk_s3::types::builders::LifecycleRuleBuilder {
    LifecycleRule::builder()
        .id(id)
        .status(ExpirationStatus::Enabled)
        .filter(LifecycleRuleFilter::builder().prefix(prefix).build())
}

fn expire_after(days: i32) -> LifecycleExpiration {
    LifecycleExpiration::builder().days(days).build()
}

async fn set_rules(c: &Client, bucket: &str, rules: Vec<LifecycleRule>) {
    c.put_bucket_lifecycle_configuration()
        .bucket(bucket)
        .lifecycle_configuration(
            BucketLifecycleConfiguration::builder()
                .set_rules(Some(rules))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
}

/// PUT that returns the new version's id ("null" when the bucket is unversioned).
async fn put_version(c: &Client, bucket: &str, key: &str, body: &'static [u8]) -> String {
    let out = c
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from_static(body))
        .send()
        .await
        .unwrap();
    out.version_id().unwrap_or("null").to_string()
}

/// Every version of `prefix` as (key, version id, is a delete marker), newest first per key.
async fn versions(c: &Client, bucket: &str, prefix: &str) -> Vec<(String, String, bool)> {
    let out = c
        .list_object_versions()
        .bucket(bucket)
        .prefix(prefix)
        .send()
        .await
        .unwrap();
    let mut all: Vec<(String, String, bool)> = out
        .versions()
        .iter()
        .map(|v| {
            (
                v.key().unwrap().into(),
                v.version_id().unwrap().into(),
                false,
            )
        })
        .chain(out.delete_markers().iter().map(|m| {
            (
                m.key().unwrap().into(),
                m.version_id().unwrap().into(),
                true,
            )
        }))
        .collect();
    all.sort();
    all
}

/// Wait (up to 30 s: passes run every second) until `done` holds.
async fn eventually<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done().await {
        assert!(Instant::now() < deadline, "lifecycle never did: {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn configurations_are_kept_checked_and_shown_on_objects() {
    let (_tmp, _srv, c) = fast_days();
    bucket(&c, "conf").await;
    let (st, code) = fails(
        c.get_bucket_lifecycle_configuration()
            .bucket("conf")
            .send()
            .await,
    );
    assert_eq!((st, code.as_str()), (404, "NoSuchLifecycleConfiguration"));
    // Ten thousand short days: nothing expires while the test runs.
    let rules = vec![
        rule("logs", "logs/")
            .expiration(expire_after(10_000))
            .build()
            .unwrap(),
        rule("tmp", "tmp/")
            .abort_incomplete_multipart_upload(
                AbortIncompleteMultipartUpload::builder()
                    .days_after_initiation(10_000)
                    .build(),
            )
            .build()
            .unwrap(),
    ];
    set_rules(&c, "conf", rules).await;
    let got = c
        .get_bucket_lifecycle_configuration()
        .bucket("conf")
        .send()
        .await
        .unwrap();
    let ids: Vec<_> = got.rules().iter().filter_map(|r| r.id()).collect();
    assert_eq!(ids, ["logs", "tmp"]);
    assert_eq!(got.rules()[0].expiration().unwrap().days(), Some(10_000));

    // PUT, HEAD and GET of an object in a rule's scope say when it expires, and by which rule.
    let out = c
        .put_object()
        .bucket("conf")
        .key("logs/a")
        .body(ByteStream::from_static(b"a"))
        .send()
        .await
        .unwrap();
    let header = out
        .expiration()
        .expect("x-amz-expiration on PUT")
        .to_string();
    assert!(header.starts_with("expiry-date=\""), "{header}");
    assert!(header.ends_with("GMT\", rule-id=\"logs\""), "{header}");
    let head = c
        .head_object()
        .bucket("conf")
        .key("logs/a")
        .send()
        .await
        .unwrap();
    assert_eq!(head.expiration(), Some(header.as_str()));
    let get = c
        .get_object()
        .bucket("conf")
        .key("logs/a")
        .send()
        .await
        .unwrap();
    assert_eq!(get.expiration(), Some(header.as_str()));
    // Copies and completed uploads say it too.
    let copied = c
        .copy_object()
        .bucket("conf")
        .key("logs/b")
        .copy_source("conf/logs/a")
        .send()
        .await
        .unwrap();
    assert!(copied.expiration().unwrap().ends_with("rule-id=\"logs\""));
    let upload = c
        .create_multipart_upload()
        .bucket("conf")
        .key("logs/c")
        .send()
        .await
        .unwrap();
    let id = upload.upload_id().unwrap();
    let part = c
        .upload_part()
        .bucket("conf")
        .key("logs/c")
        .upload_id(id)
        .part_number(1)
        .body(ByteStream::from_static(b"c"))
        .send()
        .await
        .unwrap();
    let done = c
        .complete_multipart_upload()
        .bucket("conf")
        .key("logs/c")
        .upload_id(id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .parts(
                    CompletedPart::builder()
                        .part_number(1)
                        .e_tag(part.e_tag().unwrap())
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert!(done.expiration().unwrap().ends_with("rule-id=\"logs\""));
    put(&c, "conf", "other", b"o").await;
    let head = c
        .head_object()
        .bucket("conf")
        .key("other")
        .send()
        .await
        .unwrap();
    assert_eq!(head.expiration(), None, "out of every rule's scope");

    // AWS's errors; a refused configuration leaves the old one.
    let refused = |r: LifecycleRule| {
        let c = c.clone();
        async move {
            fails(
                c.put_bucket_lifecycle_configuration()
                    .bucket("conf")
                    .lifecycle_configuration(
                        BucketLifecycleConfiguration::builder()
                            .rules(r)
                            .build()
                            .unwrap(),
                    )
                    .send()
                    .await,
            )
        }
    };
    let (st, code) = refused(
        rule("zero", "")
            .expiration(expire_after(0))
            .build()
            .unwrap(),
    )
    .await;
    assert_eq!((st, code.as_str()), (400, "InvalidArgument"));
    let (st, code) = refused(rule("none", "").build().unwrap()).await;
    assert_eq!((st, code.as_str()), (400, "InvalidRequest"));
    let to_glacier = Transition::builder()
        .days(30)
        .storage_class(TransitionStorageClass::Glacier)
        .build();
    let (st, code) = refused(rule("move", "").transitions(to_glacier).build().unwrap()).await;
    assert_eq!((st, code.as_str()), (400, "InvalidStorageClass"));
    let (st, code) = refused(
        LifecycleRule::builder()
            .id("x".repeat(256))
            .status(ExpirationStatus::Enabled)
            .filter(LifecycleRuleFilter::builder().prefix("").build())
            .expiration(expire_after(1))
            .build()
            .unwrap(),
    )
    .await;
    assert_eq!((st, code.as_str()), (400, "InvalidArgument"));
    let kept = c
        .get_bucket_lifecycle_configuration()
        .bucket("conf")
        .send()
        .await
        .unwrap();
    assert_eq!(kept.rules().len(), 2);
    let (st, code) = fails(
        c.put_bucket_lifecycle_configuration()
            .bucket("missing")
            .lifecycle_configuration(
                BucketLifecycleConfiguration::builder()
                    .rules(rule("r", "").expiration(expire_after(1)).build().unwrap())
                    .build()
                    .unwrap(),
            )
            .send()
            .await,
    );
    assert_eq!((st, code.as_str()), (404, "NoSuchBucket"));

    // Storage classes: STANDARD is where data lives; a class with nowhere behind it is
    // refused on every write that names one, not kept as a label.
    c.put_object()
        .bucket("conf")
        .key("std")
        .storage_class(StorageClass::Standard)
        .body(ByteStream::from_static(b"s"))
        .send()
        .await
        .unwrap();
    let (st, code) = fails(
        c.put_object()
            .bucket("conf")
            .key("cold")
            .storage_class(StorageClass::Glacier)
            .body(ByteStream::from_static(b"c"))
            .send()
            .await,
    );
    assert_eq!((st, code.as_str()), (400, "InvalidStorageClass"));
    let (st, code) = fails(
        c.create_multipart_upload()
            .bucket("conf")
            .key("cold")
            .storage_class(StorageClass::StandardIa)
            .send()
            .await,
    );
    assert_eq!((st, code.as_str()), (400, "InvalidStorageClass"));
    let (st, code) = fails(
        c.copy_object()
            .bucket("conf")
            .key("cold")
            .copy_source("conf/std")
            .storage_class(StorageClass::DeepArchive)
            .send()
            .await,
    );
    assert_eq!((st, code.as_str()), (400, "InvalidStorageClass"));
    let (st, _) = fails(c.head_object().bucket("conf").key("cold").send().await);
    assert_eq!(st, 404, "nothing stored");
    // Nothing is archived, so nothing can be restored: AWS's answers for both cases.
    let restore = |key: &'static str| {
        c.restore_object()
            .bucket("conf")
            .key(key)
            .restore_request(RestoreRequest::builder().days(1).build())
            .send()
    };
    let (st, code) = fails(restore("std").await);
    assert_eq!((st, code.as_str()), (403, "InvalidObjectState"));
    let (st, code) = fails(restore("cold").await);
    assert_eq!((st, code.as_str()), (404, "NoSuchKey"));

    c.delete_bucket_lifecycle()
        .bucket("conf")
        .send()
        .await
        .unwrap();
    let (st, _) = fails(
        c.get_bucket_lifecycle_configuration()
            .bucket("conf")
            .send()
            .await,
    );
    assert_eq!(st, 404);
    let head = c
        .head_object()
        .bucket("conf")
        .key("logs/a")
        .send()
        .await
        .unwrap();
    assert_eq!(head.expiration(), None, "no rules, no header");
}

#[tokio::test]
async fn the_scanner_expires_versions_markers_and_uploads() {
    let (_tmp, _srv, c) = fast_days();
    // Unversioned: expired objects are removed; a tag filter picks which.
    bucket(&c, "plain").await;
    c.put_object()
        .bucket("plain")
        .key("t/tagged")
        .tagging("temp=yes")
        .body(ByteStream::from_static(b"t"))
        .send()
        .await
        .unwrap();
    put(&c, "plain", "t/untagged", b"u").await;
    put(&c, "plain", "keep", b"k").await;
    let temp = Tag::builder().key("temp").value("yes").build().unwrap();
    set_rules(
        &c,
        "plain",
        vec![LifecycleRule::builder()
            .id("temp")
            .status(ExpirationStatus::Enabled)
            .filter(LifecycleRuleFilter::builder().tag(temp).build())
            .expiration(expire_after(2))
            .build()
            .unwrap()],
    )
    .await;

    // Versioned: current versions get a delete marker, noncurrent ones go after a day
    // except the newest one, lone markers go, and so do old uploads.
    bucket(&c, "ver").await;
    set_versioning(&c, "ver", BucketVersioningStatus::Enabled).await;
    let exp = put_version(&c, "ver", "exp/a", b"a").await;
    let nc1 = put_version(&c, "ver", "nc/k", b"1").await;
    let nc2 = put_version(&c, "ver", "nc/k", b"2").await;
    let nc3 = put_version(&c, "ver", "nc/k", b"3").await;
    let dm = put_version(&c, "ver", "dm/k", b"d").await;
    c.delete_object()
        .bucket("ver")
        .key("dm/k")
        .send()
        .await
        .unwrap();
    c.delete_object()
        .bucket("ver")
        .key("dm/k")
        .version_id(&dm)
        .send()
        .await
        .unwrap();
    let upload = c
        .create_multipart_upload()
        .bucket("ver")
        .key("mpu/big")
        .send()
        .await
        .unwrap();
    let upload_id = upload.upload_id().unwrap().to_string();
    set_rules(
        &c,
        "ver",
        vec![
            rule("exp", "exp/")
                .expiration(expire_after(2))
                .build()
                .unwrap(),
            rule("nc", "nc/")
                .noncurrent_version_expiration(
                    NoncurrentVersionExpiration::builder()
                        .noncurrent_days(1)
                        .newer_noncurrent_versions(1)
                        .build(),
                )
                .build()
                .unwrap(),
            rule("dm", "dm/")
                .expiration(
                    LifecycleExpiration::builder()
                        .expired_object_delete_marker(true)
                        .build(),
                )
                .build()
                .unwrap(),
            rule("mpu", "mpu/")
                .abort_incomplete_multipart_upload(
                    AbortIncompleteMultipartUpload::builder()
                        .days_after_initiation(1)
                        .build(),
                )
                .build()
                .unwrap(),
        ],
    )
    .await;

    eventually("expire the tagged object", || async {
        head_status(&c, "plain", "t/tagged").await == 404
    })
    .await;
    for kept in ["t/untagged", "keep"] {
        assert_eq!(head_status(&c, "plain", kept).await, 200);
    }

    eventually("put a marker on exp/a", || async {
        versions(&c, "ver", "exp/").await.len() == 2
    })
    .await;
    let exp_versions = versions(&c, "ver", "exp/").await;
    assert!(exp_versions.iter().any(|(_, v, m)| *v == exp && !m));
    assert!(
        exp_versions.iter().any(|(_, _, m)| *m),
        "a delete marker on top"
    );
    let (st, _) = fails(c.get_object().bucket("ver").key("exp/a").send().await);
    assert_eq!(st, 404);

    eventually("expire the oldest noncurrent version", || async {
        versions(&c, "ver", "nc/").await.len() == 2
    })
    .await;
    let left: Vec<String> = versions(&c, "ver", "nc/")
        .await
        .into_iter()
        .map(|(_, v, _)| v)
        .collect();
    assert!(left.contains(&nc3) && left.contains(&nc2), "{left:?}");
    assert!(!left.contains(&nc1));

    eventually("remove the lone delete marker", || async {
        versions(&c, "ver", "dm/").await.is_empty()
    })
    .await;
    eventually("abort the old upload", || async {
        c.list_multipart_uploads()
            .bucket("ver")
            .send()
            .await
            .unwrap()
            .uploads()
            .is_empty()
    })
    .await;
    let (st, code) = fails(
        c.list_parts()
            .bucket("ver")
            .key("mpu/big")
            .upload_id(&upload_id)
            .send()
            .await,
    );
    assert_eq!((st, code.as_str()), (404, "NoSuchUpload"));
}

#[tokio::test]
async fn locked_versions_outlive_every_rule() {
    let (_tmp, _srv, c) = fast_days();
    c.create_bucket()
        .bucket("vault")
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .unwrap();
    let free = put_version(&c, "vault", "k", b"free").await;
    let held = c
        .put_object()
        .bucket("vault")
        .key("k")
        .object_lock_legal_hold_status(ObjectLockLegalHoldStatus::On)
        .body(ByteStream::from_static(b"held"))
        .send()
        .await
        .unwrap()
        .version_id()
        .unwrap()
        .to_string();
    // COMPLIANCE for a real day: the scanner's short days do not shorten it.
    let until = std::time::SystemTime::now() + Duration::from_secs(86_400);
    let retained = c
        .put_object()
        .bucket("vault")
        .key("k")
        .object_lock_mode(ObjectLockMode::Compliance)
        .object_lock_retain_until_date(until.into())
        .body(ByteStream::from_static(b"retained"))
        .send()
        .await
        .unwrap()
        .version_id()
        .unwrap()
        .to_string();
    let current = put_version(&c, "vault", "k", b"current").await;
    set_rules(
        &c,
        "vault",
        vec![rule("all", "")
            .expiration(expire_after(1))
            .noncurrent_version_expiration(
                NoncurrentVersionExpiration::builder()
                    .noncurrent_days(1)
                    .build(),
            )
            .build()
            .unwrap()],
    )
    .await;
    // The current version gets a marker, then it and the free version go as noncurrent;
    // the held and retained versions stay, readable by their ids.
    eventually("expire what is not locked", || async {
        let v = versions(&c, "vault", "").await;
        v.len() == 3 && v.iter().any(|(_, _, m)| *m)
    })
    .await;
    let left: Vec<String> = versions(&c, "vault", "")
        .await
        .into_iter()
        .filter(|(_, _, m)| !m)
        .map(|(_, v, _)| v)
        .collect();
    assert!(left.contains(&held) && left.contains(&retained), "{left:?}");
    assert!(!left.contains(&free) && !left.contains(&current));
    for (v, body) in [(&held, &b"held"[..]), (&retained, &b"retained"[..])] {
        let got = c
            .get_object()
            .bucket("vault")
            .key("k")
            .version_id(v)
            .send()
            .await
            .unwrap();
        assert_eq!(got.body.collect().await.unwrap().into_bytes(), body);
    }
    // Several passes later, still there.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(versions(&c, "vault", "").await.len(), 3);
}

//! Policy condition keys and principals through aws-sdk-s3: `s3:ExistingObjectTag`,
//! `s3:RequestObjectTag`/`…TagKeys`, the copy, ACL and object-lock keys, `NotPrincipal`,
//! bucket policies naming other buckets, and each multipart operation's own action.

mod common;

use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::{
    CompletedMultipartUpload, CompletedPart, ObjectCannedAcl, ObjectLockLegalHold,
    ObjectLockLegalHoldStatus, ObjectLockMode, ObjectLockRetention, ObjectLockRetentionMode, Tag,
    Tagging,
};
use aws_sdk_s3::Client;
use common::*;
use cybs3_tests::Server;
use serde_json::json;
use std::time::{Duration, SystemTime};

/// `admin user add NAME --policy P… --json`: a client signing as the new user.
fn user(srv: &Server, name: &str, policies: &[&str]) -> Client {
    let flags: Vec<&str> = policies.iter().flat_map(|p| ["--policy", p]).collect();
    let (ak, sk) = add_user(srv, name, &flags);
    srv.client_as(&ak, &sk)
}

/// `admin policy add NAME FILE` with the given statements.
fn add_statements(srv: &Server, name: &str, statements: serde_json::Value) {
    add_policy(
        srv,
        name,
        &json!({"Version": "2012-10-17", "Statement": statements}),
    );
}

fn denied<T: std::fmt::Debug, E>(
    r: Result<T, aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>>,
    what: &str,
) where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::fmt::Debug,
{
    assert_eq!(fails(r), (403, "AccessDenied".to_string()), "{what}");
}

fn tagging(pairs: &[(&str, &str)]) -> Tagging {
    let tags = pairs
        .iter()
        .map(|(k, v)| Tag::builder().key(*k).value(*v).build().unwrap());
    Tagging::builder()
        .set_tag_set(Some(tags.collect()))
        .build()
        .unwrap()
}

async fn put_tagged(c: &Client, bucket: &str, key: &str, tags: Option<&str>) -> Result<(), String> {
    c.put_object()
        .bucket(bucket)
        .key(key)
        .set_tagging(tags.map(str::to_string))
        .body(ByteStream::from_static(b"data"))
        .send()
        .await
        .map(drop)
        .map_err(|e| format!("{:?}", status_code(&e)))
}

async fn get_ok(c: &Client, bucket: &str, key: &str) -> bool {
    c.get_object().bucket(bucket).key(key).send().await.is_ok()
}

#[tokio::test]
async fn existing_object_tags_are_read_when_a_policy_tests_them() {
    let (_tmp, srv, root) = setup();
    bucket(&root, "docs").await;
    put_tagged(&root, "docs", "secret", Some("class=secret&team=x"))
        .await
        .unwrap();
    put_tagged(&root, "docs", "plain", Some("class=public"))
        .await
        .unwrap();
    put_tagged(&root, "docs", "untagged", None).await.unwrap();
    add_statements(
        &srv,
        "no-secrets",
        json!([{"Effect": "Deny", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::docs/*",
                "Condition": {"StringEquals": {"s3:ExistingObjectTag/class": "secret"}}}]),
    );
    let reader = user(&srv, "reader", &["readwrite", "no-secrets"]);

    assert!(get_ok(&reader, "docs", "plain").await);
    assert!(get_ok(&reader, "docs", "untagged").await);
    denied(
        reader
            .get_object()
            .bucket("docs")
            .key("secret")
            .send()
            .await,
        "GET of the tagged object",
    );
    assert_eq!(head_status(&reader, "docs", "secret").await, 403);
    // Only GetObject is denied: its tags stay readable, and PutObject never depends on
    // the tags of what it replaces.
    let t = reader
        .get_object_tagging()
        .bucket("docs")
        .key("secret")
        .send()
        .await
        .unwrap();
    assert_eq!(t.tag_set().len(), 2);
    // The tags are read at access time: untagged, the object is readable at once…
    root.delete_object_tagging()
        .bucket("docs")
        .key("secret")
        .send()
        .await
        .unwrap();
    assert!(get_ok(&reader, "docs", "secret").await);
    // …and tagged again, it is not.
    reader
        .put_object_tagging()
        .bucket("docs")
        .key("plain")
        .tagging(tagging(&[("class", "secret")]))
        .send()
        .await
        .unwrap();
    denied(
        reader.get_object().bucket("docs").key("plain").send().await,
        "GET after tagging",
    );
    // The source of a copy is read under the same rule.
    denied(
        reader
            .copy_object()
            .bucket("docs")
            .key("leak")
            .copy_source("docs/plain")
            .send()
            .await,
        "copy of a tagged source",
    );
    // A missing key is still told apart from a denied one.
    let (st, _) = fails(reader.get_object().bucket("docs").key("none").send().await);
    assert_eq!(st, 404);
}

#[tokio::test]
async fn request_tags_acl_copy_and_lock_keys() {
    let (_tmp, srv, root) = setup();
    bucket(&root, "work").await;
    root.create_bucket()
        .bucket("locked")
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .unwrap();
    put_tagged(&root, "work", "public/a", None).await.unwrap();
    put_tagged(&root, "work", "secret/b", None).await.unwrap();
    add_statements(
        &srv,
        "rules",
        json!([
            // Every new object or tag set has team=blue and no other tag key.
            {"Effect": "Deny", "Action": ["s3:PutObject", "s3:PutObjectTagging"],
             "Resource": "arn:aws:s3:::work/*",
             "Condition": {"StringNotEquals": {"s3:RequestObjectTag/team": "blue"}}},
            {"Effect": "Deny", "Action": ["s3:PutObject", "s3:PutObjectTagging"],
             "Resource": "arn:aws:s3:::work/*",
             "Condition": {"ForAnyValue:StringNotEquals": {"s3:RequestObjectTagKeys": "team"}}},
            {"Effect": "Deny", "Action": "s3:PutObject", "Resource": "*",
             "Condition": {"StringEquals": {"s3:x-amz-acl": "public-read"}}},
            {"Effect": "Deny", "Action": "s3:PutObject", "Resource": "*",
             "Condition": {"StringLike": {"s3:x-amz-copy-source": "work/secret/*"}}},
            {"Effect": "Deny", "Action": "s3:PutObject", "Resource": "*",
             "Condition": {"StringEquals": {"s3:x-amz-metadata-directive": "REPLACE"}}},
            // On the locked bucket: no COMPLIANCE, at most 30 days, no legal holds.
            {"Effect": "Deny", "Action": ["s3:PutObject", "s3:PutObjectRetention"],
             "Resource": "arn:aws:s3:::locked/*",
             "Condition": {"StringEquals": {"s3:object-lock-mode": "COMPLIANCE"}}},
            {"Effect": "Deny", "Action": ["s3:PutObject", "s3:PutObjectRetention"],
             "Resource": "arn:aws:s3:::locked/*",
             "Condition": {"NumericGreaterThan": {"s3:object-lock-remaining-retention-days": "30"}}},
            {"Effect": "Deny", "Action": "s3:PutObjectLegalHold",
             "Resource": "arn:aws:s3:::locked/*",
             "Condition": {"StringEquals": {"s3:object-lock-legal-hold": "ON"}}}
        ]),
    );
    let u = user(&srv, "u", &["readwrite", "rules"]);

    // s3:RequestObjectTag and s3:RequestObjectTagKeys, from x-amz-tagging…
    put_tagged(&u, "work", "ok", Some("team=blue"))
        .await
        .unwrap();
    for bad in [
        None,
        Some("team=red"),
        Some("team=blue&extra=1"),
        Some("other=blue"),
    ] {
        assert_eq!(
            put_tagged(&u, "work", "bad", bad).await,
            Err("(403, \"AccessDenied\")".to_string()),
            "{bad:?}"
        );
    }
    let create = |tags: &str| {
        u.create_multipart_upload()
            .bucket("work")
            .key("uploads")
            .tagging(tags)
            .send()
    };
    denied(create("team=red").await, "CreateMultipartUpload team=red");
    let up = create("team=blue").await.unwrap();
    u.abort_multipart_upload()
        .bucket("work")
        .key("uploads")
        .upload_id(up.upload_id().unwrap())
        .send()
        .await
        .unwrap();
    // …and from a PutObjectTagging body.
    let tag = |pairs: &[(&str, &str)]| {
        u.put_object_tagging()
            .bucket("work")
            .key("ok")
            .tagging(tagging(pairs))
            .send()
    };
    tag(&[("team", "blue")]).await.unwrap();
    denied(tag(&[("team", "red")]).await, "PutObjectTagging team=red");
    denied(
        tag(&[("team", "blue"), ("x", "y")]).await,
        "PutObjectTagging with another key",
    );

    // s3:x-amz-acl.
    denied(
        u.put_object()
            .bucket("work")
            .key("pub")
            .tagging("team=blue")
            .acl(ObjectCannedAcl::PublicRead)
            .body(ByteStream::from_static(b"x"))
            .send()
            .await,
        "x-amz-acl public-read",
    );

    // s3:x-amz-copy-source and s3:x-amz-metadata-directive.
    let copy = |source: &str| {
        u.copy_object()
            .bucket("work")
            .key("copy")
            .copy_source(source)
            .tagging("team=blue")
    };
    copy("work/public/a").send().await.unwrap();
    denied(copy("work/secret/b").send().await, "copy from secret/");
    denied(
        copy("work/public/a")
            .metadata_directive(aws_sdk_s3::types::MetadataDirective::Replace)
            .send()
            .await,
        "metadata directive REPLACE",
    );

    // The object-lock keys, from headers and from the retention and legal hold bodies.
    let in_days =
        |days: u64| DateTime::from(SystemTime::now() + Duration::from_secs(days * 86_400 + 3_600));
    let lock_put = |mode: ObjectLockMode, days: u64| {
        u.put_object()
            .bucket("locked")
            .key("l")
            .object_lock_mode(mode)
            .object_lock_retain_until_date(in_days(days))
            .body(ByteStream::from_static(b"x"))
            .send()
    };
    lock_put(ObjectLockMode::Governance, 1).await.unwrap();
    denied(
        lock_put(ObjectLockMode::Compliance, 1).await,
        "COMPLIANCE put",
    );
    denied(
        lock_put(ObjectLockMode::Governance, 31).await,
        "31 days put",
    );
    let retention = |mode: ObjectLockRetentionMode, days: u64| {
        u.put_object_retention()
            .bucket("locked")
            .key("l")
            .retention(
                ObjectLockRetention::builder()
                    .mode(mode)
                    .retain_until_date(in_days(days))
                    .build(),
            )
            .send()
    };
    retention(ObjectLockRetentionMode::Governance, 2)
        .await
        .unwrap();
    denied(
        retention(ObjectLockRetentionMode::Compliance, 3).await,
        "COMPLIANCE retention",
    );
    denied(
        retention(ObjectLockRetentionMode::Governance, 40).await,
        "40 days retention",
    );
    let hold = |status: ObjectLockLegalHoldStatus| {
        u.put_object_legal_hold()
            .bucket("locked")
            .key("l")
            .legal_hold(ObjectLockLegalHold::builder().status(status).build())
            .send()
    };
    denied(hold(ObjectLockLegalHoldStatus::On).await, "legal hold ON");
    hold(ObjectLockLegalHoldStatus::Off).await.unwrap();
    // Root is not bound by a user's policies.
    root.put_object_legal_hold()
        .bucket("locked")
        .key("l")
        .legal_hold(
            ObjectLockLegalHold::builder()
                .status(ObjectLockLegalHoldStatus::On)
                .build(),
        )
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn not_principal_denies_everyone_it_does_not_name() {
    let (_tmp, srv, root) = setup();
    bucket(&root, "vault").await;
    put(&root, "vault", "k", b"v".to_vec()).await;
    let alice = user(&srv, "alice", &["readonly"]);
    let bob = user(&srv, "bob", &["readonly"]);
    assert!(get_ok(&bob, "vault", "k").await);
    set_policy(
        &root,
        "vault",
        json!([{"Effect": "Deny",
                "NotPrincipal": {"AWS": ["arn:aws:iam::123456789012:user/alice",
                                         "arn:aws:iam::123456789012:root"]},
                "Action": "s3:GetObject", "Resource": "arn:aws:s3:::vault/*"}]),
    )
    .await;
    assert!(get_ok(&alice, "vault", "k").await);
    assert!(get_ok(&root, "vault", "k").await);
    denied(
        bob.get_object().bucket("vault").key("k").send().await,
        "bob is not excepted",
    );
    // Only the actions listed are denied.
    assert!(bob.list_objects_v2().bucket("vault").send().await.is_ok());
}

#[tokio::test]
async fn bucket_policies_may_name_other_buckets_and_apply_to_their_own() {
    let (_tmp, srv, root) = setup();
    for b in ["one", "two"] {
        bucket(&root, b).await;
        put(&root, b, "a/x", b"x".to_vec()).await;
        put(&root, b, "b/y", b"y".to_vec()).await;
    }
    let u = user(&srv, "u", &["readwrite"]);
    // Resource "arn:aws:s3:::*" in one's policy: accepted, and it reaches one only.
    set_policy(
        &root,
        "one",
        json!([{"Effect": "Deny", "Principal": {"AWS": "u"}, "Action": "s3:GetObject",
                "Resource": "arn:aws:s3:::*"}]),
    )
    .await;
    denied(
        u.get_object().bucket("one").key("a/x").send().await,
        "one/a/x",
    );
    assert!(get_ok(&u, "two", "a/x").await);
    // Other buckets beside one of its own prefixes: that prefix alone is denied.
    set_policy(
        &root,
        "one",
        json!([{"Effect": "Deny", "Principal": {"AWS": "u"}, "Action": "s3:GetObject",
                "Resource": ["arn:aws:s3:::two/*", "arn:aws:s3:::one/a/*"]}]),
    )
    .await;
    denied(
        u.get_object().bucket("one").key("a/x").send().await,
        "one/a/x",
    );
    assert!(get_ok(&u, "one", "b/y").await);
    assert!(get_ok(&u, "two", "a/x").await);
    // A statement none of whose resources can be in the bucket is refused.
    let other_only = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject",
         "Resource": ["arn:aws:s3:::two/*", "arn:aws:s3:::onex/*"]}]});
    let (st, code) = fails(
        root.put_bucket_policy()
            .bucket("one")
            .policy(other_only.to_string())
            .send()
            .await,
    );
    assert_eq!((st, code.as_str()), (400, "MalformedPolicy"));
}

#[tokio::test]
async fn each_multipart_operation_is_checked_against_its_action() {
    let (_tmp, srv, root) = setup();
    bucket(&root, "uploads").await;
    put(&root, "uploads", "src", vec![7u8; 1024]).await;
    let deny = |who: &str, action: &str| {
        json!({"Effect": "Deny", "Principal": {"AWS": who}, "Action": action,
               "Resource": ["arn:aws:s3:::uploads", "arn:aws:s3:::uploads/*"]})
    };
    set_policy(
        &root,
        "uploads",
        json!([
            deny("no-put", "s3:PutObject"),
            deny("no-parts", "s3:ListMultipartUploadParts"),
            deny("no-abort", "s3:AbortMultipartUpload"),
            deny("no-uploads", "s3:ListBucketMultipartUploads"),
        ]),
    )
    .await;
    let users: Vec<(&str, Client)> = ["free", "no-put", "no-parts", "no-abort", "no-uploads"]
        .into_iter()
        .map(|name| (name, user(&srv, name, &["readwrite"])))
        .collect();
    for (name, c) in &users {
        let may = |denied_to: &str| *name != denied_to;
        // An upload root started, so each user's own calls are tried on it alone.
        let id = root
            .create_multipart_upload()
            .bucket("uploads")
            .key(format!("obj-{name}"))
            .send()
            .await
            .unwrap()
            .upload_id()
            .unwrap()
            .to_string();
        let key = format!("obj-{name}");
        let check = |allowed: bool, r: Result<(), (u16, String)>, what: &str| {
            if allowed {
                assert_eq!(r, Ok(()), "{name}: {what}");
            } else {
                assert_eq!(r, Err((403, "AccessDenied".into())), "{name}: {what}");
            }
        };
        let create = c
            .create_multipart_upload()
            .bucket("uploads")
            .key("other")
            .send()
            .await;
        if let Ok(up) = &create {
            root.abort_multipart_upload()
                .bucket("uploads")
                .key("other")
                .upload_id(up.upload_id().unwrap())
                .send()
                .await
                .unwrap();
        }
        check(
            may("no-put"),
            create.map(drop).map_err(|e| status_code(&e)),
            "CreateMultipartUpload",
        );
        let part = c
            .upload_part()
            .bucket("uploads")
            .key(&key)
            .upload_id(&id)
            .part_number(1)
            .body(ByteStream::from_static(b"part"))
            .send()
            .await;
        check(
            may("no-put"),
            part.map(drop).map_err(|e| status_code(&e)),
            "UploadPart",
        );
        let copy = c
            .upload_part_copy()
            .bucket("uploads")
            .key(&key)
            .upload_id(&id)
            .part_number(2)
            .copy_source("uploads/src")
            .send()
            .await;
        check(
            may("no-put"),
            copy.map(drop).map_err(|e| status_code(&e)),
            "UploadPartCopy",
        );
        let parts = c
            .list_parts()
            .bucket("uploads")
            .key(&key)
            .upload_id(&id)
            .send()
            .await;
        check(
            may("no-parts"),
            parts.map(drop).map_err(|e| status_code(&e)),
            "ListParts",
        );
        let uploads = c.list_multipart_uploads().bucket("uploads").send().await;
        check(
            may("no-uploads"),
            uploads.map(drop).map_err(|e| status_code(&e)),
            "ListMultipartUploads",
        );
        // Complete with the parts root uploads, so a denial is the only failure.
        let mut done = Vec::new();
        for n in [1, 2] {
            let etag = root
                .upload_part()
                .bucket("uploads")
                .key(&key)
                .upload_id(&id)
                .part_number(n)
                .body(ByteStream::from(vec![
                    n as u8;
                    if n == 1 { 5 << 20 } else { 10 }
                ]))
                .send()
                .await
                .unwrap()
                .e_tag()
                .unwrap()
                .to_string();
            done.push(CompletedPart::builder().part_number(n).e_tag(etag).build());
        }
        let complete = c
            .complete_multipart_upload()
            .bucket("uploads")
            .key(&key)
            .upload_id(&id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(done))
                    .build(),
            )
            .send()
            .await;
        check(
            may("no-put"),
            complete.map(drop).map_err(|e| status_code(&e)),
            "CompleteMultipartUpload",
        );
        // Abort a fresh upload (a completed one is gone).
        let id2 = root
            .create_multipart_upload()
            .bucket("uploads")
            .key(&key)
            .send()
            .await
            .unwrap()
            .upload_id()
            .unwrap()
            .to_string();
        let abort = c
            .abort_multipart_upload()
            .bucket("uploads")
            .key(&key)
            .upload_id(&id2)
            .send()
            .await;
        check(
            may("no-abort"),
            abort.map(drop).map_err(|e| status_code(&e)),
            "AbortMultipartUpload",
        );
    }
}

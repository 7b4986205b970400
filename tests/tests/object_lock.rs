//! Object lock through S3 with aws-sdk-s3: the bucket configuration, retention and
//! legal holds on every kind of write, and their enforcement on every delete. The
//! rules live in the engine (`engine/src/lock.rs`); these tests go through the server.

mod common;

use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::{
    BucketVersioningStatus, CompletedMultipartUpload, CompletedPart, DefaultRetention, Delete,
    ObjectIdentifier, ObjectLockConfiguration, ObjectLockEnabled, ObjectLockLegalHold,
    ObjectLockLegalHoldStatus, ObjectLockMode, ObjectLockRetention, ObjectLockRetentionMode,
    ObjectLockRule, VersioningConfiguration,
};
use aws_sdk_s3::Client;
use common::*;
use std::time::{Duration, SystemTime};

fn in_secs(s: u64) -> DateTime {
    DateTime::from(SystemTime::now() + Duration::from_secs(s))
}

fn config(
    mode: ObjectLockRetentionMode,
    days: Option<i32>,
    years: Option<i32>,
) -> ObjectLockConfiguration {
    let mut d = DefaultRetention::builder().mode(mode);
    if let Some(n) = days {
        d = d.days(n);
    }
    if let Some(n) = years {
        d = d.years(n);
    }
    ObjectLockConfiguration::builder()
        .object_lock_enabled(ObjectLockEnabled::Enabled)
        .rule(
            ObjectLockRule::builder()
                .default_retention(d.build())
                .build(),
        )
        .build()
}

async fn locked_bucket(c: &Client, name: &str) {
    c.create_bucket()
        .bucket(name)
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .expect("create a bucket with object lock");
}

/// PUT with a retention; the new version's id.
async fn put_retained(c: &Client, b: &str, k: &str, mode: ObjectLockMode, secs: u64) -> String {
    c.put_object()
        .bucket(b)
        .key(k)
        .body(ByteStream::from_static(b"kept"))
        .object_lock_mode(mode)
        .object_lock_retain_until_date(in_secs(secs))
        .send()
        .await
        .expect("put with retention")
        .version_id
        .expect("a version id")
}

async fn delete_version(c: &Client, b: &str, k: &str, v: &str, bypass: bool) -> (u16, String) {
    let mut req = c.delete_object().bucket(b).key(k).version_id(v);
    if bypass {
        req = req.bypass_governance_retention(true);
    }
    match req.send().await {
        Ok(_) => (204, String::new()),
        Err(e) => status_code(&e),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bucket_configuration_and_its_errors() {
    let (_t, _s, c) = setup();
    bucket(&c, "plain").await;
    let e = c
        .get_object_lock_configuration()
        .bucket("plain")
        .send()
        .await;
    assert_eq!(
        fails(e),
        (404, "ObjectLockConfigurationNotFoundError".into())
    );
    let cfg = config(ObjectLockRetentionMode::Governance, Some(1), None);
    // An unversioned bucket cannot take object lock; a versioned one can, for good.
    let put = |b: &'static str, cfg: ObjectLockConfiguration| {
        c.put_object_lock_configuration()
            .bucket(b)
            .object_lock_configuration(cfg)
            .send()
    };
    assert_eq!(
        fails(put("plain", cfg.clone()).await),
        (409, "InvalidBucketState".into())
    );
    set_versioning(&c, "plain", BucketVersioningStatus::Enabled).await;
    put("plain", cfg.clone())
        .await
        .expect("lock on a versioned bucket");
    let got = c
        .get_object_lock_configuration()
        .bucket("plain")
        .send()
        .await
        .unwrap()
        .object_lock_configuration
        .unwrap();
    assert_eq!(got, cfg);
    let suspend = c
        .put_bucket_versioning()
        .bucket("plain")
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Suspended)
                .build(),
        )
        .send()
        .await;
    assert_eq!(fails(suspend), (409, "InvalidBucketState".into()));

    // Created with object lock: versioned from the start.
    locked_bucket(&c, "worm").await;
    let v = c
        .get_bucket_versioning()
        .bucket("worm")
        .send()
        .await
        .unwrap();
    assert_eq!(v.status, Some(BucketVersioningStatus::Enabled));
    let both = config(ObjectLockRetentionMode::Compliance, Some(1), Some(1));
    assert_eq!(fails(put("worm", both).await), (400, "MalformedXML".into()));
    let zero = config(ObjectLockRetentionMode::Compliance, Some(0), None);
    assert_eq!(
        fails(put("worm", zero).await),
        (400, "InvalidArgument".into())
    );
    let bad_mode = config(ObjectLockRetentionMode::from("FOREVER"), Some(1), None);
    assert_eq!(
        fails(put("worm", bad_mode).await),
        (400, "MalformedXML".into())
    );

    // Lock requests where there is no object lock.
    bucket(&c, "nolock").await;
    put_plain(&c, "nolock", "k").await;
    let e = put_x(&c, "nolock", "k2")
        .object_lock_legal_hold_status(ObjectLockLegalHoldStatus::On)
        .send()
        .await;
    assert_eq!(fails(e), (400, "InvalidRequest".into()));
    let e = c
        .get_object_retention()
        .bucket("nolock")
        .key("k")
        .send()
        .await;
    assert_eq!(fails(e), (400, "InvalidRequest".into()));
    // A mode without a date, a date in the past.
    let e = put_x(&c, "worm", "k")
        .object_lock_mode(ObjectLockMode::Governance)
        .send()
        .await;
    assert_eq!(fails(e), (400, "InvalidArgument".into()));
    let e = put_x(&c, "worm", "k")
        .object_lock_mode(ObjectLockMode::Governance)
        .object_lock_retain_until_date(DateTime::from_secs(1_000_000))
        .send()
        .await;
    assert_eq!(fails(e), (400, "InvalidArgument".into()));
}

/// A PUT of one byte, for the lock headers to be added to.
fn put_x(
    c: &Client,
    b: &str,
    k: &str,
) -> aws_sdk_s3::operation::put_object::builders::PutObjectFluentBuilder {
    c.put_object()
        .bucket(b)
        .key(k)
        .body(ByteStream::from_static(b"x"))
}

async fn put_plain(c: &Client, b: &str, k: &str) -> Option<String> {
    c.put_object()
        .bucket(b)
        .key(k)
        .body(ByteStream::from_static(b"plain"))
        .send()
        .await
        .unwrap()
        .version_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compliance_holds_even_against_root() {
    let (_t, _s, c) = setup();
    locked_bucket(&c, "worm").await;
    let v = put_retained(&c, "worm", "doc", ObjectLockMode::Compliance, 3600).await;
    let head = c
        .head_object()
        .bucket("worm")
        .key("doc")
        .send()
        .await
        .unwrap();
    assert_eq!(head.object_lock_mode, Some(ObjectLockMode::Compliance));
    assert!(head.object_lock_retain_until_date.is_some());
    let r = c
        .get_object_retention()
        .bucket("worm")
        .key("doc")
        .version_id(&v)
        .send()
        .await
        .unwrap()
        .retention
        .unwrap();
    assert_eq!(r.mode, Some(ObjectLockRetentionMode::Compliance));

    // Root with the bypass still cannot remove it, shorten it, or weaken it.
    assert_eq!(
        delete_version(&c, "worm", "doc", &v, true).await,
        (403, "AccessDenied".into())
    );
    let set = |mode: ObjectLockRetentionMode, secs: u64| {
        c.put_object_retention()
            .bucket("worm")
            .key("doc")
            .version_id(&v)
            .bypass_governance_retention(true)
            .retention(
                ObjectLockRetention::builder()
                    .mode(mode)
                    .retain_until_date(in_secs(secs))
                    .build(),
            )
            .send()
    };
    let shorter = set(ObjectLockRetentionMode::Compliance, 60).await;
    assert_eq!(fails(shorter), (403, "AccessDenied".into()));
    let weaker = set(ObjectLockRetentionMode::Governance, 7200).await;
    assert_eq!(fails(weaker), (403, "AccessDenied".into()));
    set(ObjectLockRetentionMode::Compliance, 7200)
        .await
        .expect("extending is allowed");

    // DeleteObjects refuses it per key; a delete without a version id adds a marker and
    // the locked version stays readable by its id.
    let out = c
        .delete_objects()
        .bucket("worm")
        .delete(
            Delete::builder()
                .objects(
                    ObjectIdentifier::builder()
                        .key("doc")
                        .version_id(&v)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(out.errors()[0].code(), Some("AccessDenied"));
    let marker = c
        .delete_object()
        .bucket("worm")
        .key("doc")
        .send()
        .await
        .unwrap();
    assert_eq!(marker.delete_marker, Some(true));
    let body = c
        .get_object()
        .bucket("worm")
        .key("doc")
        .version_id(&v)
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes();
    assert_eq!(body.as_ref(), b"kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn governance_legal_hold_default_and_multipart() {
    let (_t, _s, c) = setup();
    locked_bucket(&c, "worm").await;

    // GOVERNANCE: only the bypass removes it.
    let v = put_retained(&c, "worm", "gov", ObjectLockMode::Governance, 3600).await;
    assert_eq!(
        delete_version(&c, "worm", "gov", &v, false).await,
        (403, "AccessDenied".into())
    );
    assert_eq!(delete_version(&c, "worm", "gov", &v, true).await.0, 204);

    // A legal hold keeps a version until it is lifted.
    let v = put_plain(&c, "worm", "held").await.unwrap();
    let hold = |status: ObjectLockLegalHoldStatus| {
        c.put_object_legal_hold()
            .bucket("worm")
            .key("held")
            .version_id(&v)
            .legal_hold(ObjectLockLegalHold::builder().status(status).build())
            .send()
    };
    hold(ObjectLockLegalHoldStatus::On).await.unwrap();
    let got = c
        .get_object_legal_hold()
        .bucket("worm")
        .key("held")
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.legal_hold.unwrap().status,
        Some(ObjectLockLegalHoldStatus::On)
    );
    assert_eq!(
        delete_version(&c, "worm", "held", &v, true).await,
        (403, "AccessDenied".into())
    );
    hold(ObjectLockLegalHoldStatus::Off).await.unwrap();
    assert_eq!(delete_version(&c, "worm", "held", &v, false).await.0, 204);

    // A bucket default applies to writes that ask for nothing, multipart ones too.
    c.put_object_lock_configuration()
        .bucket("worm")
        .object_lock_configuration(config(ObjectLockRetentionMode::Governance, Some(1), None))
        .send()
        .await
        .unwrap();
    put_plain(&c, "worm", "defaulted").await;
    let r = c
        .get_object_retention()
        .bucket("worm")
        .key("defaulted")
        .send()
        .await
        .unwrap()
        .retention
        .unwrap();
    assert_eq!(r.mode, Some(ObjectLockRetentionMode::Governance));
    let until = SystemTime::try_from(r.retain_until_date.unwrap()).unwrap();
    let ahead = until.duration_since(SystemTime::now()).unwrap();
    assert!(ahead > Duration::from_secs(86_000) && ahead <= Duration::from_secs(86_400));

    let up = c
        .create_multipart_upload()
        .bucket("worm")
        .key("big")
        .object_lock_mode(ObjectLockMode::Compliance)
        .object_lock_retain_until_date(in_secs(3600))
        .send()
        .await
        .unwrap();
    let id = up.upload_id.unwrap();
    let part = c
        .upload_part()
        .bucket("worm")
        .key("big")
        .upload_id(&id)
        .part_number(1)
        .body(ByteStream::from_static(b"part"))
        .send()
        .await
        .unwrap();
    let done = c
        .complete_multipart_upload()
        .bucket("worm")
        .key("big")
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .parts(
                    CompletedPart::builder()
                        .part_number(1)
                        .e_tag(part.e_tag.unwrap())
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let v = done.version_id.unwrap();
    let head = c
        .head_object()
        .bucket("worm")
        .key("big")
        .send()
        .await
        .unwrap();
    assert_eq!(head.object_lock_mode, Some(ObjectLockMode::Compliance));
    assert_eq!(
        delete_version(&c, "worm", "big", &v, true).await,
        (403, "AccessDenied".into())
    );
    // An object with no retention of its own answers NoSuchObjectLockConfiguration.
    c.put_object_lock_configuration()
        .bucket("worm")
        .object_lock_configuration(
            ObjectLockConfiguration::builder()
                .object_lock_enabled(ObjectLockEnabled::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap();
    put_plain(&c, "worm", "bare").await;
    let e = c
        .get_object_retention()
        .bucket("worm")
        .key("bare")
        .send()
        .await;
    assert_eq!(fails(e), (404, "NoSuchObjectLockConfiguration".into()));
}

/// The versions of `key` in `bucket`, newest first: (version id, is a delete marker).
async fn versions_of(c: &Client, bucket: &str, key: &str) -> Vec<(String, bool)> {
    let out = c
        .list_object_versions()
        .bucket(bucket)
        .prefix(key)
        .send()
        .await
        .unwrap();
    let mut all: Vec<(String, bool, DateTime)> = out
        .versions()
        .iter()
        .filter(|v| v.key() == Some(key))
        .map(|v| {
            (
                v.version_id().unwrap().to_string(),
                false,
                *v.last_modified().unwrap(),
            )
        })
        .chain(
            out.delete_markers()
                .iter()
                .filter(|m| m.key() == Some(key))
                .map(|m| {
                    (
                        m.version_id().unwrap().to_string(),
                        true,
                        *m.last_modified().unwrap(),
                    )
                }),
        )
        .collect();
    all.sort_by(|a, b| {
        b.2.secs()
            .cmp(&a.2.secs())
            .then(b.2.subsec_nanos().cmp(&a.2.subsec_nanos()))
    });
    all.into_iter().map(|(v, m, _)| (v, m)).collect()
}

/// `cybs3 rm`, `sync --delete` and the mount delete without a version id: in a bucket
/// with object lock they add delete markers, and every locked version stays, readable
/// by its id and refused to a versioned delete.
#[test]
fn the_cli_and_the_mount_leave_locked_versions_in_place() {
    use cybs3_tests::mount::{rt, s3, Mounted};
    use cybs3_tests::LocalVault;
    let v = LocalVault::new();
    let c = s3(&v);
    let rt = rt();
    rt.block_on(async {
        locked_bucket(&c, "wormv").await;
        c.put_object_lock_configuration()
            .bucket("wormv")
            .object_lock_configuration(config(ObjectLockRetentionMode::Compliance, Some(1), None))
            .send()
            .await
            .unwrap();
    });
    let (ak, sk) = v.root_keys();
    let endpoint = v.endpoint();
    v.ok(&[
        "vaults",
        "add",
        "lockv",
        "--plain",
        "--endpoint",
        &endpoint,
        "--bucket",
        "wormv",
        "--access-key",
        &ak,
        "--secret-key",
        &sk,
    ]);
    let local = v.home.join("doc.txt");
    std::fs::write(&local, b"signed contract").unwrap();
    v.ok(&["cp", local.to_str().unwrap(), "lockv:doc.txt"]);
    v.ok(&["cp", local.to_str().unwrap(), "lockv:synced/b.txt"]);
    v.ok(&["rm", "lockv:doc.txt"]);
    let empty = v.home.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    v.ok(&["sync", empty.to_str().unwrap(), "lockv:synced", "--delete"]);
    {
        let m = Mounted::new(&v, "lockv", &[]);
        std::fs::write(m.p("mounted.txt"), b"written through the mount").unwrap();
        std::fs::remove_file(m.p("mounted.txt")).expect("unlink adds a delete marker");
    }
    // The CLI shows the versions with their lock, and reads the locked one by its id.
    let listed: serde_json::Value =
        serde_json::from_str(&v.ok(&["ls", "--versions", "lockv:doc.txt", "--json"])).unwrap();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(listed[0]["deleted"], true);
    assert_eq!(listed[1]["retention"]["mode"], "COMPLIANCE", "{listed:?}");
    let kept = listed[1]["version"].as_str().unwrap();
    let out = v.home.join("restored.txt");
    v.ok(&[
        "cp",
        &format!("lockv:doc.txt@{kept}"),
        out.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read(&out).unwrap(), b"signed contract");
    let text = v.ok(&["ls", "--versions", "lockv:doc.txt"]);
    assert!(text.contains("COMPLIANCE until"), "{text}");

    rt.block_on(async {
        for (key, body) in [
            ("doc.txt", &b"signed contract"[..]),
            ("synced/b.txt", b"signed contract"),
            ("mounted.txt", b"written through the mount"),
        ] {
            let versions = versions_of(&c, "wormv", key).await;
            assert_eq!(versions.len(), 2, "{key}: {versions:?}");
            assert!(versions[0].1, "{key}: the newest is a delete marker");
            let kept = &versions[1].0;
            let got = c
                .get_object()
                .bucket("wormv")
                .key(key)
                .version_id(kept)
                .send()
                .await
                .unwrap()
                .body
                .collect()
                .await
                .unwrap()
                .into_bytes();
            assert_eq!(got.as_ref(), body, "{key}");
            let head = c
                .head_object()
                .bucket("wormv")
                .key(key)
                .version_id(kept)
                .send()
                .await
                .unwrap();
            assert_eq!(
                head.object_lock_mode,
                Some(ObjectLockMode::Compliance),
                "{key}"
            );
            assert_eq!(
                delete_version(&c, "wormv", key, kept, true).await,
                (403, "AccessDenied".into()),
                "{key}"
            );
        }
    });
}

/// An encrypted vault over a versioned bucket: an older version is read by its id (still
/// checked against its path, and not taken for a rollback).
#[test]
fn an_encrypted_vaults_older_version_is_read_by_its_id() {
    use cybs3_tests::mount::{rt, s3};
    use cybs3_tests::LocalVault;
    let v = LocalVault::new();
    let bucket = v.vault_json("local")["bucket"]
        .as_str()
        .unwrap()
        .to_string();
    let c = s3(&v);
    rt().block_on(set_versioning(&c, &bucket, BucketVersioningStatus::Enabled));
    let local = v.home.join("notes.txt");
    for text in ["first draft", "second draft"] {
        std::fs::write(&local, text).unwrap();
        v.ok(&["cp", local.to_str().unwrap(), "local:notes.txt"]);
    }
    let listed: serde_json::Value =
        serde_json::from_str(&v.ok(&["ls", "--versions", "local:notes.txt", "--json"])).unwrap();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(listed[0]["latest"], true);
    assert_eq!(listed[0]["size"], 12);
    assert_eq!(listed[1]["size"], 11);
    let first = listed[1]["version"].as_str().unwrap();
    let out = v.home.join("first.txt");
    v.ok(&[
        "cp",
        &format!("local:notes.txt@{first}"),
        out.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read(&out).unwrap(), b"first draft");
    // The current version still reads as the newest.
    assert_eq!(v.ok(&["cat", "local:notes.txt"]), "second draft");
}

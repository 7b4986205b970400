//! Storage classes bound to pools (`cybs3 admin tier`), through aws-sdk-s3: writes in a
//! class land in its pool and every read and listing reports the class; lifecycle
//! transitions move current and noncurrent versions between classes with a one-second
//! lifecycle day; an archive class (GLACIER) refuses reads until RestoreObject.

mod common;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, BucketVersioningStatus, CompletedMultipartUpload, CompletedPart,
    ExpirationStatus, LifecycleRule, LifecycleRuleFilter, NoncurrentVersionTransition,
    ObjectAttributes, ObjectStorageClass, ObjectVersionStorageClass, RestoreRequest, StorageClass,
    Transition, TransitionStorageClass,
};
use aws_sdk_s3::Client;
use common::*;
use cybs3_tests::{content, cybs3, files_under, Server};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A server on one drive with a pool `name` of `n` drives per name, STANDARD kept on
/// the first pool (pools on one filesystem tie on free space, and the newest would win).
fn server_with_pools(tmp: &std::path::Path, pools: &[(&str, usize)], args: &[&str]) -> Server {
    let mut srv = Server::new(tmp, 1, None);
    srv.args = args.iter().map(|a| a.to_string()).collect();
    srv.start();
    for (name, n) in pools {
        let drives: Vec<String> = pool_drives(&srv, name, *n)
            .iter()
            .map(|d| d.display().to_string())
            .collect();
        let drives = drives.join(",");
        admin(&srv, &["admin", "pool", "add", name, "--drives", &drives]);
    }
    admin(
        &srv,
        &["admin", "tier", "add", "STANDARD", "--pool", "main"],
    );
    srv
}

fn pool_drives(srv: &Server, name: &str, n: usize) -> Vec<PathBuf> {
    (0..n)
        .map(|i| srv.home.join(format!("{name}{i}")))
        .collect()
}

fn shard_files(srv: &Server, pool: &str, n: usize) -> usize {
    pool_drives(srv, pool, n)
        .iter()
        .map(|d| files_under(&d.join("data")).len())
        .sum()
}

async fn class_of(c: &Client, bucket: &str, key: &str) -> Option<StorageClass> {
    let h = c
        .head_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap();
    h.storage_class().cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_in_a_class_go_to_its_pool_and_every_read_reports_it() {
    let tmp = tempfile::tempdir().unwrap();
    let srv = server_with_pools(tmp.path(), &[("ia", 2)], &[]);
    let c = srv.client();
    bucket(&c, "cls").await;
    let listed = admin(
        &srv,
        &[
            "admin",
            "tier",
            "add",
            "STANDARD_IA",
            "--pool",
            "ia",
            "--json",
        ],
    );
    assert_eq!(listed[0]["pool"], "ia");

    let body = content("ia", 300_000);
    c.put_object()
        .bucket("cls")
        .key("ia")
        .storage_class(StorageClass::StandardIa)
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .unwrap();
    put(&c, "cls", "plain", content("plain", 300_000)).await;
    assert_eq!(
        shard_files(&srv, "ia", 2),
        2,
        "only the STANDARD_IA object is in its pool"
    );
    assert_eq!(
        class_of(&c, "cls", "ia").await,
        Some(StorageClass::StandardIa)
    );
    assert_eq!(
        class_of(&c, "cls", "plain").await,
        None,
        "STANDARD is not sent, as on AWS"
    );
    let got = c.get_object().bucket("cls").key("ia").send().await.unwrap();
    assert_eq!(got.storage_class(), Some(&StorageClass::StandardIa));
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes().to_vec(),
        body
    );
    let list = c.list_objects_v2().bucket("cls").send().await.unwrap();
    let classes: Vec<_> = list
        .contents()
        .iter()
        .map(|o| (o.key().unwrap(), o.storage_class().cloned()))
        .collect();
    assert_eq!(
        classes,
        [
            ("ia", Some(ObjectStorageClass::StandardIa)),
            ("plain", Some(ObjectStorageClass::Standard))
        ]
    );
    let versions = c.list_object_versions().bucket("cls").send().await.unwrap();
    assert_eq!(
        versions.versions()[0].storage_class(),
        Some(&ObjectVersionStorageClass::from("STANDARD_IA"))
    );
    let attrs = c
        .get_object_attributes()
        .bucket("cls")
        .key("ia")
        .object_attributes(ObjectAttributes::StorageClass)
        .send()
        .await
        .unwrap();
    assert_eq!(attrs.storage_class(), Some(&StorageClass::StandardIa));

    // A multipart upload and a copy in the class put their data there too.
    let up = c
        .create_multipart_upload()
        .bucket("cls")
        .key("multi")
        .storage_class(StorageClass::StandardIa)
        .send()
        .await
        .unwrap();
    let part = content("part", 200_000);
    let etag = c
        .upload_part()
        .bucket("cls")
        .key("multi")
        .upload_id(up.upload_id().unwrap())
        .part_number(1)
        .body(ByteStream::from(part.clone()))
        .send()
        .await
        .unwrap()
        .e_tag()
        .unwrap()
        .to_string();
    c.complete_multipart_upload()
        .bucket("cls")
        .key("multi")
        .upload_id(up.upload_id().unwrap())
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .parts(CompletedPart::builder().part_number(1).e_tag(etag).build())
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        class_of(&c, "cls", "multi").await,
        Some(StorageClass::StandardIa)
    );
    c.copy_object()
        .bucket("cls")
        .key("copied")
        .copy_source("cls/plain")
        .storage_class(StorageClass::StandardIa)
        .send()
        .await
        .unwrap();
    assert_eq!(
        class_of(&c, "cls", "copied").await,
        Some(StorageClass::StandardIa)
    );
    assert_eq!(shard_files(&srv, "ia", 2), 6);
    assert_eq!(get(&c, "cls", "copied").await, content("plain", 300_000));

    // A class nothing is bound to is refused, and a class holding data stays bound.
    let (st, code) = fails(
        c.put_object()
            .bucket("cls")
            .key("g")
            .storage_class(StorageClass::Glacier)
            .body(ByteStream::from_static(b"g"))
            .send()
            .await,
    );
    assert_eq!((st, code.as_str()), (400, "InvalidStorageClass"));
    let out = cybs3(&srv.home, &["admin", "tier", "remove", "STANDARD_IA"]);
    assert!(!out.status.success());
    let msg = String::from_utf8_lossy(&out.stderr);
    assert!(
        msg.contains("holds data") && msg.trim().lines().count() == 1,
        "{msg}"
    );
    let out = cybs3(
        &srv.home,
        &["admin", "tier", "add", "lower", "--pool", "ia"],
    );
    assert!(!out.status.success());
}

fn transition(days: i32, class: &str) -> Transition {
    Transition::builder()
        .days(days)
        .storage_class(TransitionStorageClass::from(class))
        .build()
}

async fn head(c: &Client, key: &str) -> aws_sdk_s3::operation::head_object::HeadObjectOutput {
    c.head_object()
        .bucket("life")
        .key(key)
        .send()
        .await
        .unwrap()
}

async fn wait_for_class(c: &Client, key: &str, class: Option<StorageClass>, version: Option<&str>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let h = c
            .head_object()
            .bucket("life")
            .key(key)
            .set_version_id(version.map(str::to_string))
            .send()
            .await
            .unwrap();
        if h.storage_class().cloned() == class {
            return;
        }
        assert!(Instant::now() < deadline, "{key} never reached {class:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_moves_versions_between_classes_and_archives_wait_for_a_restore() {
    let tmp = tempfile::tempdir().unwrap();
    let srv = server_with_pools(
        tmp.path(),
        &[("cold", 2), ("vault", 1)],
        &["--lifecycle-day-secs", "1"],
    );
    admin(&srv, &["admin", "tier", "add", "COLD", "--pool", "cold"]);
    admin(
        &srv,
        &["admin", "tier", "add", "GLACIER", "--pool", "vault"],
    );
    let c = srv.client();
    bucket(&c, "life").await;
    set_versioning(&c, "life", BucketVersioningStatus::Enabled).await;
    let big = content("logs/big", 700_000);
    let etag = put(&c, "life", "logs/big", big.clone()).await;
    put(&c, "life", "logs/small", content("logs/small", 1000)).await;
    let old = c
        .put_object()
        .bucket("life")
        .key("keep/n")
        .body(ByteStream::from(content("keep/n", 200_000)))
        .send()
        .await
        .unwrap();
    let old_version = old.version_id().unwrap().to_string();
    put(&c, "life", "keep/n", content("keep/n2", 200_000)).await;

    let unknown = c
        .put_bucket_lifecycle_configuration()
        .bucket("life")
        .lifecycle_configuration(
            BucketLifecycleConfiguration::builder()
                .rules(
                    LifecycleRule::builder()
                        .id("nowhere")
                        .status(ExpirationStatus::Enabled)
                        .filter(LifecycleRuleFilter::builder().prefix("").build())
                        .transitions(transition(1, "DEEP_ARCHIVE"))
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await;
    assert_eq!(fails(unknown).1, "InvalidStorageClass");
    c.put_bucket_lifecycle_configuration()
        .bucket("life")
        .lifecycle_configuration(
            BucketLifecycleConfiguration::builder()
                .rules(
                    LifecycleRule::builder()
                        .id("age")
                        .status(ExpirationStatus::Enabled)
                        .filter(LifecycleRuleFilter::builder().prefix("logs/").build())
                        .transitions(transition(1, "COLD"))
                        .transitions(transition(4, "GLACIER"))
                        .build()
                        .unwrap(),
                )
                .rules(
                    LifecycleRule::builder()
                        .id("old")
                        .status(ExpirationStatus::Enabled)
                        .filter(LifecycleRuleFilter::builder().prefix("keep/").build())
                        .noncurrent_version_transitions(
                            NoncurrentVersionTransition::builder()
                                .noncurrent_days(1)
                                .storage_class(TransitionStorageClass::from("COLD"))
                                .build(),
                        )
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();

    let cold = Some(StorageClass::from("COLD"));
    wait_for_class(&c, "logs/big", cold.clone(), None).await;
    wait_for_class(&c, "logs/small", cold.clone(), None).await;
    wait_for_class(&c, "keep/n", cold.clone(), Some(&old_version)).await;
    assert_eq!(
        class_of(&c, "life", "keep/n").await,
        None,
        "the current version stays"
    );
    // The data moved, the object did not change.
    assert!(shard_files(&srv, "cold", 2) >= 4);
    let h = head(&c, "logs/big").await;
    assert_eq!(h.e_tag(), Some(etag.as_str()));
    let ranged = c
        .get_object()
        .bucket("life")
        .key("logs/big")
        .range("bytes=100000-600000")
        .send()
        .await
        .unwrap();
    let ranged = ranged.body.collect().await.unwrap().into_bytes();
    assert!(ranged[..] == big[100_000..=600_000]);

    // Then into the archive: readable again only once restored.
    wait_for_class(&c, "logs/big", Some(StorageClass::Glacier), None).await;
    assert_eq!(shard_files(&srv, "vault", 1), 1);
    let (st, code) = fails(c.get_object().bucket("life").key("logs/big").send().await);
    assert_eq!((st, code.as_str()), (403, "InvalidObjectState"));
    let (st, code) = fails(
        c.copy_object()
            .bucket("life")
            .key("copy")
            .copy_source("life/logs/big")
            .send()
            .await,
    );
    assert_eq!((st, code.as_str()), (403, "InvalidObjectState"));
    let h = head(&c, "logs/big").await;
    assert_eq!(h.restore(), None);
    let restore = |key: &'static str, days: Option<i32>| {
        let req = days.map(|d| RestoreRequest::builder().days(d).build());
        c.restore_object()
            .bucket("life")
            .key(key)
            .set_restore_request(req)
            .send()
    };
    assert_eq!(fails(restore("logs/big", None).await).1, "MalformedXML");
    let (st, code) = fails(restore("keep/n", Some(1)).await);
    assert_eq!(
        (st, code.as_str()),
        (403, "InvalidObjectState"),
        "STANDARD is no archive"
    );
    restore("logs/big", Some(3)).await.unwrap();
    let h = head(&c, "logs/big").await;
    let header = h.restore().unwrap_or_default().to_string();
    assert!(
        header.starts_with("ongoing-request=\"false\", expiry-date=\""),
        "{header}"
    );
    assert_eq!(get(&c, "life", "logs/big").await, big);
    // The restore ends by itself (3 one-second days).
    let deadline = Instant::now() + Duration::from_secs(20);
    while c
        .get_object()
        .bucket("life")
        .key("logs/big")
        .send()
        .await
        .is_ok()
    {
        assert!(Instant::now() < deadline, "the restore never ended");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let h = head(&c, "logs/big").await;
    assert_eq!(h.restore(), None);
}

#[test]
fn restore_answers_202_then_200() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let srv = server_with_pools(tmp.path(), &[("vault", 1)], &[]);
    admin(
        &srv,
        &[
            "admin",
            "tier",
            "add",
            "ARCHIVE",
            "--pool",
            "vault",
            "--archive",
        ],
    );
    let c = srv.client();
    rt.block_on(async {
        bucket(&c, "rst").await;
        c.put_object()
            .bucket("rst")
            .key("k")
            .storage_class(StorageClass::from("ARCHIVE"))
            .body(ByteStream::from_static(b"archived"))
            .send()
            .await
            .unwrap();
    });
    // RestoreObject's status is not in the SDK's output: send it signed by hand.
    let body = b"<RestoreRequest><Days>2</Days></RestoreRequest>";
    let status = || {
        let len = body.len().to_string();
        let signed = Signer::new(&srv.access_key, &srv.secret_key).sign(
            "POST",
            "/rst/k",
            &[("restore", "")],
            &[("content-length", &len)],
            &sha256_hex(body),
            srv.port,
        );
        let mut req = signed.head("POST", "/rst/k?restore");
        req.extend_from_slice(body);
        let r = raw_exchange(srv.port, &req).expect("an answer");
        r.status.to_string()
    };
    assert_eq!(status(), "202");
    assert_eq!(status(), "200");
    assert_eq!(rt.block_on(get(&c, "rst", "k")), b"archived");
}

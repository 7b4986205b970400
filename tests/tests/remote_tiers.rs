//! Remote tiers: a storage class bound to a bucket of another S3 system, which
//! lifecycle transitions move objects to, tested against two real targets: a second
//! `cybs3 server` and moto's S3 server (an independent implementation). Reads, ranges
//! and copies stream back from there; the remote object describes itself; a delete
//! removes it; a SIGKILL in the middle of transitions loses nothing and leaves nothing.
//! A remote registered once (`admin remote add`, HTTPS with its own CA) holds a tier.

mod common;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, CompletedMultipartUpload, CompletedPart, ExpirationStatus,
    LifecycleRule, LifecycleRuleFilter, StorageClass, Transition, TransitionStorageClass,
};
use aws_sdk_s3::Client;
use common::*;
use cybs3_tests::moto::Moto;
use cybs3_tests::{content, cybs3, free_port, Server};
use std::time::{Duration, Instant};

/// Binds class `class` of `srv` to `bucket` at `endpoint`.
fn add_remote_tier(srv: &Server, class: &str, endpoint: &str, bucket: &str, keys: (&str, &str)) {
    let (ak, sk) = keys;
    let out = cybs3(
        &srv.home,
        &[
            "admin",
            "tier",
            "add",
            class,
            "--endpoint",
            endpoint,
            "--bucket",
            bucket,
            "--prefix",
            "tier/",
            "--access-key",
            ak,
            "--secret-key",
            sk,
        ],
    );
    assert!(out.status.success(), "tier add: {out:?}");
}

async fn set_transition(c: &Client, bucket: &str, class: &str) {
    c.put_bucket_lifecycle_configuration()
        .bucket(bucket)
        .lifecycle_configuration(
            BucketLifecycleConfiguration::builder()
                .rules(
                    LifecycleRule::builder()
                        .id("away")
                        .status(ExpirationStatus::Enabled)
                        .filter(LifecycleRuleFilter::builder().prefix("").build())
                        .transitions(
                            Transition::builder()
                                .days(1)
                                .storage_class(TransitionStorageClass::from(class))
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

async fn wait_for_class(c: &Client, bucket: &str, key: &str, class: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while class_of(c, bucket, key).await != Some(StorageClass::from(class)) {
        assert!(Instant::now() < deadline, "{key} never reached {class}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every object name in `bucket` of the remote.
async fn remote_names(remote: &Client, bucket: &str) -> Vec<String> {
    let list = remote
        .list_objects_v2()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    list.contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_string))
        .collect()
}

/// Waits until the remote holds an object whose name starts with `prefix`.
async fn wait_for_remote(remote: &Client, bucket: &str, prefix: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !remote_names(remote, bucket)
        .await
        .iter()
        .any(|n| n.starts_with(prefix))
    {
        assert!(
            Instant::now() < deadline,
            "nothing under {prefix} on the remote"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn multipart(c: &Client, bucket: &str, key: &str, parts: &[Vec<u8>]) {
    multipart_in(c, bucket, key, parts, None).await
}

/// A multipart upload of `parts`, created in `class` when given.
async fn multipart_in(c: &Client, bucket: &str, key: &str, parts: &[Vec<u8>], class: Option<&str>) {
    let up = c
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .set_storage_class(class.map(StorageClass::from))
        .send()
        .await
        .unwrap();
    let mut done = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        let r = c
            .upload_part()
            .bucket(bucket)
            .key(key)
            .upload_id(up.upload_id().unwrap())
            .part_number(i as i32 + 1)
            .body(ByteStream::from(p.clone()))
            .send()
            .await
            .unwrap();
        done.push(
            CompletedPart::builder()
                .part_number(i as i32 + 1)
                .e_tag(r.e_tag().unwrap())
                .build(),
        );
    }
    c.complete_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(up.upload_id().unwrap())
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(done))
                .build(),
        )
        .send()
        .await
        .unwrap();
}

async fn range(c: &Client, bucket: &str, key: &str, from: usize, to: usize) -> Vec<u8> {
    let r = c
        .get_object()
        .bucket(bucket)
        .key(key)
        .range(format!("bytes={from}-{to}"))
        .send()
        .await
        .unwrap();
    r.body.collect().await.unwrap().into_bytes().to_vec()
}

/// The round every target goes through: objects moved by a transition, read back whole,
/// in ranges and by copy; described on the remote; deleted from it with their version.
async fn round_trip(c: &Client, remote: &Client, remote_bucket: &str, class: &str) {
    bucket(c, "data").await;
    let big = content("big", 3 << 20);
    c.put_object()
        .bucket("data")
        .key("dir/big")
        .content_type("text/x-big")
        .metadata("owner", "ana")
        .body(ByteStream::from(big.clone()))
        .send()
        .await
        .unwrap();
    let etag = c
        .head_object()
        .bucket("data")
        .key("dir/big")
        .send()
        .await
        .unwrap()
        .e_tag()
        .unwrap()
        .to_string();
    let parts = [content("p1", 5 << 20), content("p2", 1 << 20)];
    multipart(c, "data", "multi", &parts).await;
    put(c, "data", "small", content("small", 1000)).await;
    // A write naming the remote class is stored here and moved there by the work queue;
    // it reports its class at once.
    c.put_object()
        .bucket("data")
        .key("direct")
        .storage_class(StorageClass::from(class))
        .body(ByteStream::from(content("direct", 100_000)))
        .send()
        .await
        .unwrap();
    assert_eq!(
        class_of(c, "data", "direct").await,
        Some(StorageClass::from(class))
    );
    wait_for_remote(remote, remote_bucket, "tier/data/direct/").await;
    assert_eq!(get(c, "data", "direct").await, content("direct", 100_000));
    set_transition(c, "data", class).await;
    for key in ["dir/big", "multi", "small"] {
        wait_for_class(c, "data", key, class).await;
    }
    let names = remote_names(remote, remote_bucket).await;
    assert_eq!(names.len(), 4, "{names:?}");
    let big_name = names
        .iter()
        .find(|n| n.starts_with("tier/data/dir/big/"))
        .unwrap_or_else(|| panic!("{names:?}"));
    // Self-describing: what it is a copy of, without cybs3.
    let h = remote
        .head_object()
        .bucket(remote_bucket)
        .key(big_name)
        .send()
        .await
        .unwrap();
    let meta = h.metadata().unwrap();
    assert_eq!(meta.get("cybs3-key").map(String::as_str), Some("dir/big"));
    assert_eq!(
        meta.get("cybs3-etag").map(String::as_str),
        Some(etag.trim_matches('"'))
    );
    assert_eq!(meta.get("user-owner").map(String::as_str), Some("ana"));
    assert_eq!(h.content_type(), Some("text/x-big"));
    assert_eq!(h.content_length(), Some(3 << 20));
    let raw = remote
        .get_object()
        .bucket(remote_bucket)
        .key(big_name)
        .send()
        .await
        .unwrap();
    assert!(raw.body.collect().await.unwrap().into_bytes()[..] == big[..]);

    // Reads stream back from the remote, and nothing about the object changed.
    let h = c
        .head_object()
        .bucket("data")
        .key("dir/big")
        .send()
        .await
        .unwrap();
    assert_eq!(h.e_tag(), Some(etag.as_str()));
    assert_eq!(h.content_type(), Some("text/x-big"));
    assert_eq!(get(c, "data", "dir/big").await, big);
    assert_eq!(
        range(c, "data", "dir/big", 1_000_000, 2_500_000).await,
        big[1_000_000..=2_500_000]
    );
    let whole = parts.concat();
    let across = (5 << 20) - 1000;
    assert_eq!(
        range(c, "data", "multi", across, across + 5000).await,
        whole[across..=across + 5000]
    );
    assert_eq!(get(c, "data", "small").await, content("small", 1000));
    c.copy_object()
        .bucket("data")
        .key("copied")
        .copy_source("data/multi")
        .send()
        .await
        .unwrap();
    assert_eq!(get(c, "data", "copied").await, whole);

    // Deleting the object removes its remote copy too (through the work queue).
    c.delete_object()
        .bucket("data")
        .key("dir/big")
        .send()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while remote_names(remote, remote_bucket)
        .await
        .iter()
        .any(|n| n == big_name)
    {
        assert!(
            Instant::now() < deadline,
            "the remote copy of a deleted object stayed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A server (`--lifecycle-day-secs 1`) whose class FAR is the bucket `archive` of a
/// second cybs3 server; the second one first.
async fn near_and_far(dir: &std::path::Path) -> (Server, Server) {
    let mut far = Server::new(&dir.join("far"), 1, None);
    far.start();
    bucket(&far.client(), "archive").await;
    let mut srv = Server::new(&dir.join("near"), 1, None);
    srv.args = vec!["--lifecycle-day-secs".into(), "1".into()];
    srv.start();
    let keys = (far.access_key.as_str(), far.secret_key.as_str());
    add_remote_tier(&srv, "FAR", &far.endpoint(), "archive", keys);
    (far, srv)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transitions_to_a_second_cybs3_server() {
    let tmp = tempfile::tempdir().unwrap();
    let (far, srv) = near_and_far(tmp.path()).await;
    let remote = far.client();
    let listed = admin(&srv, &["admin", "tier", "list", "--json"]);
    assert_eq!(listed[0]["remote"]["bucket"], "archive");
    assert!(
        !listed.to_string().contains(&far.secret_key),
        "the list never shows the secret"
    );
    round_trip(&srv.client(), &remote, "archive", "FAR").await;
    // The remote delete was queued work: done, nothing waiting, nothing dead.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let queue = srv.status_json()["queue"].clone();
        if queue["queued"] == 0 {
            assert_eq!(queue["dead"], 0, "{queue}");
            break;
        }
        assert!(Instant::now() < deadline, "queued work never done: {queue}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A remote registered once (`admin remote add`), behind HTTPS signed by its own CA:
/// checked when added (unreachable, wrong keys, untrusted certificate: refused, one
/// line), never shown or stored in clear, named by a tier that then moves objects there,
/// and not removable while the tier is on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_registered_remote_behind_its_own_ca_holds_a_tier() {
    let tmp = tempfile::tempdir().unwrap();
    let far_home = tmp.path().join("far");
    let cert = cybs3(&far_home, &["server", "cert", "--json"]);
    assert!(cert.status.success(), "server cert: {cert:?}");
    let cert: serde_json::Value = serde_json::from_slice(&cert.stdout).unwrap();
    let ca = cert["ca_cert"].as_str().unwrap().to_string();
    let mut far = Server::new(&far_home, 1, None);
    far.ca_file = Some(ca.clone().into());
    far.start();
    let endpoint = far.endpoint();
    assert!(endpoint.starts_with("https://"), "{endpoint}");
    bucket(&far.client(), "archive").await;
    let mut srv = Server::new(&tmp.path().join("near"), 1, None);
    srv.args = vec!["--lifecycle-day-secs".into(), "1".into()];
    srv.start();

    let add = |endpoint: &str, secret: &str, ca: Option<&str>| {
        let mut args = vec![
            "admin",
            "remote",
            "add",
            "far",
            "--endpoint",
            endpoint,
            "--access-key",
            &far.access_key,
            "--secret-key",
            secret,
            "--json",
        ];
        args.extend(ca.iter().flat_map(|ca| ["--ca-file", ca]));
        cybs3(&srv.home, &args)
    };
    let refused = |out: std::process::Output, why: &str| {
        assert!(!out.status.success(), "{out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(err.contains(why), "{why}: {err}");
    };
    let closed = format!("http://127.0.0.1:{}", free_port());
    refused(add(&closed, &far.secret_key, None), "Connection refused");
    refused(add(&endpoint, &far.secret_key, None), "certificate");
    refused(add(&endpoint, "wrong", Some(&ca)), "SignatureDoesNotMatch");
    refused(add("ftp://x", &far.secret_key, None), "http://HOST");
    let added = add(&endpoint, &far.secret_key, Some(&ca));
    assert!(added.status.success(), "{added:?}");
    let listed = admin(&srv, &["admin", "remote", "list", "--json"]);
    assert_eq!(listed[0]["name"], "far");
    assert_eq!(listed[0]["endpoint"], endpoint.as_str());
    assert_eq!(listed[0]["private_ca"], true);
    assert!(!listed.to_string().contains(&far.secret_key));

    // A tier on the remote: objects move there, over HTTPS trusting its CA.
    let tier = cybs3(
        &srv.home,
        &[
            "admin", "tier", "add", "FAR", "--remote", "far", "--bucket", "archive", "--prefix",
            "tier/",
        ],
    );
    assert!(tier.status.success(), "{tier:?}");
    let listed = admin(&srv, &["admin", "remote", "list", "--json"]);
    assert_eq!(listed[0]["tiers"], serde_json::json!(["FAR"]));
    round_trip(&srv.client(), &far.client(), "archive", "FAR").await;
    refused(
        cybs3(&srv.home, &["admin", "remote", "remove", "far"]),
        "tier remove FAR",
    );
    // The secret is nowhere in clear: not in the index, the audit log or any record.
    for entry in walk(&srv.home) {
        let bytes = std::fs::read(&entry).unwrap_or_default();
        assert!(
            !bytes
                .windows(far.secret_key.len())
                .any(|w| w == far.secret_key.as_bytes()),
            "the secret is in clear in {}",
            entry.display()
        );
    }
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        match p.is_dir() {
            true => out.extend(walk(&p)),
            false => out.push(p),
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transitions_to_moto() {
    let moto = Moto::start();
    let endpoint = moto.endpoint.clone();
    let remote = moto.client();
    bucket(&remote, "tier-bucket").await;

    let tmp = tempfile::tempdir().unwrap();
    let mut srv = Server::new(tmp.path(), 1, None);
    srv.args = vec!["--lifecycle-day-secs".into(), "1".into()];
    srv.start();
    add_remote_tier(
        &srv,
        "MOTO",
        &endpoint,
        "tier-bucket",
        ("moto-key", "moto-secret"),
    );
    round_trip(&srv.client(), &remote, "tier-bucket", "MOTO").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sigkill_during_transitions_loses_nothing_and_leaves_no_orphan() {
    let tmp = tempfile::tempdir().unwrap();
    let (far, mut srv) = near_and_far(tmp.path()).await;
    let remote = far.client();
    let c = srv.client();
    bucket(&c, "many").await;
    let keys: Vec<String> = (0..8).map(|i| format!("obj{i}")).collect();
    for k in &keys {
        put(&c, "many", k, content(k, 24 << 20)).await;
    }
    set_transition(&c, "many", "FAR").await;
    // Killed once the first has moved, with the others on their way.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut moved = 0;
        for k in &keys {
            if class_of(&c, "many", k).await == Some(StorageClass::from("FAR")) {
                moved += 1;
            }
        }
        if moved > 0 {
            assert!(
                moved < keys.len(),
                "every transition ended before the SIGKILL"
            );
            break;
        }
        assert!(Instant::now() < deadline, "no transition happened");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    srv.kill();
    srv.start();
    let c = srv.client();
    for k in &keys {
        wait_for_class(&c, "many", k, "FAR").await;
        assert!(
            get(&c, "many", k).await == content(k, 24 << 20),
            "{k} changed"
        );
    }
    // One remote object per object, and no upload left behind, once the queued cleanup ran.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let names = remote_names(&remote, "archive").await;
        let uploads = remote
            .list_multipart_uploads()
            .bucket("archive")
            .send()
            .await
            .unwrap();
        if names.len() == keys.len() && uploads.uploads().is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "orphans on the remote: {names:?}, {} uploads",
            uploads.uploads().len()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// A rule with one transition to `class` for the keys under `prefix`.
fn rule(prefix: &str, class: &str) -> LifecycleRule {
    LifecycleRule::builder()
        .id(prefix)
        .status(ExpirationStatus::Enabled)
        .filter(LifecycleRuleFilter::builder().prefix(prefix).build())
        .transitions(
            Transition::builder()
                .days(1)
                .storage_class(TransitionStorageClass::from(class))
                .build(),
        )
        .build()
        .unwrap()
}

/// Objects written straight into a remote class (a multipart one; one under compliance
/// retention, which its write's own class moves all the same), then moved on by
/// lifecycle: back to a pool, and to another remote tier, while the locked one stays.
/// Bytes, ranges across parts and ETags stay; each move's old remote copy is deleted;
/// nothing is left queued.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_in_a_remote_class_and_moves_on_from_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (far, srv) = near_and_far(tmp.path()).await;
    let remote = far.client();
    bucket(&remote, "other").await;
    let keys = (far.access_key.as_str(), far.secret_key.as_str());
    add_remote_tier(&srv, "OTHER", &far.endpoint(), "other", keys);
    let warm: Vec<String> = (0..2)
        .map(|i| srv.home.join(format!("warm{i}")).display().to_string())
        .collect();
    admin(
        &srv,
        &["admin", "pool", "add", "warm", "--drives", &warm.join(",")],
    );
    admin(
        &srv,
        &["admin", "tier", "add", "STANDARD", "--pool", "main"],
    );
    admin(&srv, &["admin", "tier", "add", "WARM", "--pool", "warm"]);
    let c = srv.client();
    c.create_bucket()
        .bucket("lock")
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .unwrap();
    let parts = [content("m1", 5 << 20), content("m2", 2 << 20)];
    multipart_in(&c, "lock", "back/multi", &parts, Some("FAR")).await;
    let until = aws_sdk_s3::primitives::DateTime::from_secs(
        (std::time::SystemTime::now() + Duration::from_secs(3600))
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64,
    );
    c.put_object()
        .bucket("lock")
        .key("on/plain")
        .storage_class(StorageClass::from("FAR"))
        .body(ByteStream::from(content("plain", 200_000)))
        .send()
        .await
        .unwrap();
    c.put_object()
        .bucket("lock")
        .key("keep/locked")
        .storage_class(StorageClass::from("FAR"))
        .object_lock_mode(aws_sdk_s3::types::ObjectLockMode::Compliance)
        .object_lock_retain_until_date(until)
        .body(ByteStream::from(content("locked", 300_000)))
        .send()
        .await
        .unwrap();
    let etag = |key: &'static str| {
        let c = c.clone();
        async move {
            let h = c
                .head_object()
                .bucket("lock")
                .key(key)
                .send()
                .await
                .unwrap();
            h.e_tag().unwrap().to_string()
        }
    };
    let (multi_etag, plain_etag) = (etag("back/multi").await, etag("on/plain").await);
    for prefix in ["back/multi", "on/plain", "keep/locked"] {
        wait_for_remote(&remote, "archive", &format!("tier/lock/{prefix}/")).await;
    }
    // The queue emptied, the data left the pools: only the remote holds it.
    let shards = |pool: &str| -> usize {
        let dirs: Vec<std::path::PathBuf> = match pool {
            "warm" => (0..2).map(|i| srv.home.join(format!("warm{i}"))).collect(),
            _ => srv.drives.clone(),
        };
        dirs.iter()
            .map(|d| cybs3_tests::files_under(&d.join("data")).len())
            .sum()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while srv.status_json()["queue"]["queued"] != 0 || shards("main") + shards("warm") != 0 {
        assert!(Instant::now() < deadline, "data stayed in the pools");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Lifecycle moves back/ to the pool of WARM and on/ to the other remote tier.
    c.put_bucket_lifecycle_configuration()
        .bucket("lock")
        .lifecycle_configuration(
            BucketLifecycleConfiguration::builder()
                .rules(rule("back/", "WARM"))
                .rules(rule("on/", "OTHER"))
                .rules(rule("keep/", "WARM"))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    wait_for_class(&c, "lock", "back/multi", "WARM").await;
    wait_for_remote(&remote, "other", "tier/lock/on/plain/").await;
    wait_for_class(&c, "lock", "on/plain", "OTHER").await;
    // The scanner passed keep/ before on/: lifecycle leaves a locked version where it is.
    assert_eq!(
        class_of(&c, "lock", "keep/locked").await,
        Some(StorageClass::from("FAR"))
    );
    assert_eq!(
        get(&c, "lock", "keep/locked").await,
        content("locked", 300_000)
    );
    assert!(
        shards("warm") > 0,
        "the multipart object is in the pool again"
    );
    let whole = parts.concat();
    assert_eq!(get(&c, "lock", "back/multi").await, whole);
    let across = (5 << 20) - 100;
    assert_eq!(
        range(&c, "lock", "back/multi", across, across + 300).await,
        whole[across..=across + 300]
    );
    assert_eq!(get(&c, "lock", "on/plain").await, content("plain", 200_000));
    assert_eq!(etag("back/multi").await, multi_etag);
    assert_eq!(etag("on/plain").await, plain_etag);
    // The copies they left are deleted from the first remote, by the queue.
    let deadline = Instant::now() + Duration::from_secs(30);
    while remote_names(&remote, "archive").await.len() != 1 {
        assert!(Instant::now() < deadline, "old remote copies stayed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(srv.status_json()["queue"]["dead"], 0);
}

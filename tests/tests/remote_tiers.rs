//! Remote tiers: a storage class bound to a bucket of another S3 system, which
//! lifecycle transitions move objects to, tested against two real targets: a second
//! `cybs3 server` and moto's S3 server (an independent implementation). Reads, ranges
//! and copies stream back from there; the remote object describes itself; a delete
//! removes it; a SIGKILL in the middle of transitions loses nothing and leaves nothing.

mod common;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, CompletedMultipartUpload, CompletedPart, ExpirationStatus,
    LifecycleRule, LifecycleRuleFilter, StorageClass, Transition, TransitionStorageClass,
};
use aws_sdk_s3::Client;
use common::*;
use cybs3_tests::{content, cybs3, free_port, Server};
use std::process::{Child, Command, Stdio};
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

async fn multipart(c: &Client, bucket: &str, key: &str, parts: &[Vec<u8>]) {
    let up = c
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
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
    // A remote class takes objects by transition, not by a write naming it.
    let (st, code) = fails(
        c.put_object()
            .bucket("data")
            .key("direct")
            .storage_class(StorageClass::from(class))
            .body(ByteStream::from_static(b"x"))
            .send()
            .await,
    );
    assert_eq!((st, code.as_str()), (400, "InvalidStorageClass"));

    set_transition(c, "data", class).await;
    for key in ["dir/big", "multi", "small"] {
        wait_for_class(c, "data", key, class).await;
    }
    let names = remote_names(remote, remote_bucket).await;
    assert_eq!(names.len(), 3, "{names:?}");
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

struct Moto(Child);

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transitions_to_moto() {
    let port = free_port();
    let child = Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("moto_server (pip install 'moto[server]'; tests/run.sh does)");
    let _moto = Moto(child);
    let endpoint = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "moto did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let remote = cybs3_tests::client_for(&endpoint, "moto-key", "moto-secret");
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

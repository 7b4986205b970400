//! Bucket replication (Put/Get/DeleteBucketReplication) to registered remotes, tested
//! against two real targets: moto's S3 server (a foreign S3, checked byte for byte) and
//! a second `cybs3 server` (version ids and times kept, REPLICA, two-way rules that
//! never loop). AWS's errors; status, resync; a SIGKILL with replication pending.

mod common;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketVersioningStatus, DeleteMarkerReplication, DeleteMarkerReplicationStatus, Destination,
    ReplicationConfiguration, ReplicationRule, ReplicationRuleFilter, ReplicationRuleStatus,
    ReplicationStatus, ServerSideEncryption, Tag,
};
use aws_sdk_s3::Client;
use common::*;
use cybs3_tests::moto::Moto;
use cybs3_tests::{content, cybs3, Server};
use std::time::{Duration, Instant};

/// `admin remote add NAME` on `srv`.
fn add_remote(srv: &Server, name: &str, endpoint: &str, (ak, sk): (&str, &str)) {
    let args = [
        "admin",
        "remote",
        "add",
        name,
        "--endpoint",
        endpoint,
        "--access-key",
        ak,
        "--secret-key",
        sk,
    ];
    let out = cybs3(&srv.home, &args);
    assert!(out.status.success(), "remote add: {out:?}");
}

/// A rule of the current schema: `prefix` to `dest`, delete markers too if `markers`.
fn rule(id: &str, priority: i32, prefix: &str, markers: bool, dest: &str) -> ReplicationRule {
    let markers = match markers {
        true => DeleteMarkerReplicationStatus::Enabled,
        false => DeleteMarkerReplicationStatus::Disabled,
    };
    ReplicationRule::builder()
        .id(id)
        .priority(priority)
        .status(ReplicationRuleStatus::Enabled)
        .filter(ReplicationRuleFilter::builder().prefix(prefix).build())
        .delete_marker_replication(DeleteMarkerReplication::builder().status(markers).build())
        .destination(Destination::builder().bucket(dest).build().unwrap())
        .build()
        .unwrap()
}

async fn set_rules(
    c: &Client,
    bucket: &str,
    rules: Vec<ReplicationRule>,
) -> Result<(), (u16, String)> {
    let config = ReplicationConfiguration::builder()
        .role("arn:aws:iam::000000000000:role/replication")
        .set_rules(Some(rules))
        .build()
        .unwrap();
    c.put_bucket_replication()
        .bucket(bucket)
        .replication_configuration(config)
        .send()
        .await
        .map(drop)
        .map_err(|e| {
            eprintln!("PutBucketReplication refused: {e:?}");
            status_code(&e)
        })
}

async fn put_object(c: &Client, bucket: &str, key: &str, body: Vec<u8>) -> String {
    let out = c
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body))
        .send()
        .await
        .unwrap_or_else(|e| panic!("put {key}: {e:?}"));
    out.version_id().unwrap().to_string()
}

/// Waits until `key`'s version `vid` at the source shows `status`.
async fn wait_status(c: &Client, bucket: &str, key: &str, vid: &str, status: ReplicationStatus) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let head = c
            .head_object()
            .bucket(bucket)
            .key(key)
            .version_id(vid)
            .send()
            .await
            .unwrap();
        if head.replication_status() == Some(&status) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{key} {vid}: {:?}, not {status:?}",
            head.replication_status()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every version and delete marker: (key, version id, latest, marker, Last-Modified, ETag).
type Listed = (String, String, bool, bool, String, String);

async fn versions(c: &Client, bucket: &str) -> Vec<Listed> {
    let out = c
        .list_object_versions()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    let mut all: Vec<Listed> = Vec::new();
    for v in out.versions() {
        all.push((
            v.key().unwrap().into(),
            v.version_id().unwrap().into(),
            v.is_latest().unwrap(),
            false,
            v.last_modified().unwrap().to_string(),
            v.e_tag().unwrap_or_default().into(),
        ));
    }
    for m in out.delete_markers() {
        all.push((
            m.key().unwrap().into(),
            m.version_id().unwrap().into(),
            m.is_latest().unwrap(),
            true,
            m.last_modified().unwrap().to_string(),
            String::new(),
        ));
    }
    all.sort();
    all
}

/// Waits until the two buckets list the same versions (but of keys in `except`); those.
async fn converged(a: &Client, ab: &str, b: &Client, bb: &str, except: &[&str]) -> Vec<Listed> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let listed = |c: &Client, bucket: &str| {
        let (c, bucket) = (c.clone(), bucket.to_string());
        async move {
            let mut all = versions(&c, &bucket).await;
            all.retain(|v| !except.contains(&v.0.as_str()));
            all
        }
    };
    loop {
        let (x, y) = (listed(a, ab).await, listed(b, bb).await);
        if x == y {
            return x;
        }
        assert!(Instant::now() < deadline, "never converged:\n{x:?}\n{y:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicates_to_moto_byte_for_byte() {
    let moto = Moto::start();
    let remote = moto.client();
    bucket(&remote, "dst").await;
    set_versioning(&remote, "dst", BucketVersioningStatus::Enabled).await;
    bucket(&remote, "plain").await;
    let (_tmp, srv, c) = setup();
    bucket(&c, "src").await;
    add_remote(&srv, "moto", &moto.endpoint, ("moto-key", "moto-secret"));
    let dest = "arn:cybs3:s3:::moto/dst";

    // AWS's refusals.
    let refused = set_rules(&c, "src", vec![rule("a", 1, "", true, dest)]).await;
    assert_eq!(refused.unwrap_err().0, 400, "versioning must be enabled");
    set_versioning(&c, "src", BucketVersioningStatus::Enabled).await;
    let missing = c.get_bucket_replication().bucket("src").send().await;
    assert_eq!(
        fails(missing),
        (404, "ReplicationConfigurationNotFoundError".into())
    );
    let nobody = rule("a", 1, "", true, "arn:cybs3:s3:::nobody/dst");
    let refused = set_rules(&c, "src", vec![nobody]).await.unwrap_err();
    assert_eq!(refused.0, 400);
    let bad_arn = rule("a", 1, "", true, "arn:aws:s3:::dst");
    let refused = set_rules(&c, "src", vec![bad_arn]).await.unwrap_err();
    assert_eq!(refused, (400, "InvalidArgument".into()));
    let unversioned = rule("a", 1, "", true, "arn:cybs3:s3:::moto/plain");
    let refused = set_rules(&c, "src", vec![unversioned]).await.unwrap_err();
    assert_eq!(refused, (400, "InvalidRequest".into()));
    let mut tagged = rule("t", 1, "", true, dest);
    tagged.filter = Some(
        ReplicationRuleFilter::builder()
            .tag(Tag::builder().key("k").value("v").build().unwrap())
            .build(),
    );
    let refused = set_rules(&c, "src", vec![tagged]).await.unwrap_err();
    assert_eq!(refused, (400, "InvalidRequest".into()));
    let twice = vec![
        rule("a", 1, "a/", true, dest),
        rule("b", 1, "b/", false, dest),
    ];
    let refused = set_rules(&c, "src", twice).await.unwrap_err();
    assert_eq!(refused, (400, "InvalidRequest".into()), "same priority");

    // a/: markers too; b/: versions only; c/: nothing.
    let rules = vec![
        rule("a", 2, "a/", true, dest),
        rule("b", 1, "b/", false, dest),
    ];
    set_rules(&c, "src", rules).await.unwrap();
    let got = c
        .get_bucket_replication()
        .bucket("src")
        .send()
        .await
        .unwrap();
    let got = got.replication_configuration().unwrap();
    assert_eq!(got.rules().len(), 2);
    assert_eq!(got.rules()[0].id(), Some("a"));
    assert_eq!(got.rules()[0].destination().unwrap().bucket(), dest);
    let suspend = c
        .put_bucket_versioning()
        .bucket("src")
        .versioning_configuration(
            aws_sdk_s3::types::VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Suspended)
                .build(),
        )
        .send()
        .await;
    assert_eq!(fails(suspend), (409, "InvalidBucketState".into()));

    let small = content("small", 3000);
    let small_vid = c
        .put_object()
        .bucket("src")
        .key("a/small")
        .content_type("text/plain")
        .cache_control("max-age=60")
        .metadata("colour", "blue")
        .tagging("t=1&u=two")
        .body(ByteStream::from(small.clone()))
        .send()
        .await
        .unwrap()
        .version_id()
        .unwrap()
        .to_string();
    // Larger than one PutObject of the replicator: it goes in parts.
    let big = content("big", 20 << 20);
    let big_vid = put_object(&c, "src", "a/big", big.clone()).await;
    let enc = content("enc", 100_000);
    let enc_vid = c
        .put_object()
        .bucket("src")
        .key("a/enc")
        .server_side_encryption(ServerSideEncryption::Aes256)
        .body(ByteStream::from(enc.clone()))
        .send()
        .await
        .unwrap()
        .version_id()
        .unwrap()
        .to_string();
    let b_vid = put_object(&c, "src", "b/one", b"bee".to_vec()).await;
    let c_vid = put_object(&c, "src", "c/none", b"sea".to_vec()).await;
    c.delete_object()
        .bucket("src")
        .key("a/small")
        .send()
        .await
        .unwrap();
    c.delete_object()
        .bucket("src")
        .key("b/one")
        .send()
        .await
        .unwrap();

    for (key, vid) in [
        ("a/small", &small_vid),
        ("a/big", &big_vid),
        ("a/enc", &enc_vid),
        ("b/one", &b_vid),
    ] {
        wait_status(&c, "src", key, vid, ReplicationStatus::Completed).await;
    }
    let none = c
        .head_object()
        .bucket("src")
        .key("c/none")
        .version_id(&c_vid)
        .send()
        .await
        .unwrap();
    assert_eq!(none.replication_status(), None);

    // At moto, byte for byte, with metadata and tags.
    let at_moto = |key: &'static str| {
        let remote = remote.clone();
        async move {
            let vs = remote
                .list_object_versions()
                .bucket("dst")
                .prefix(key)
                .send()
                .await
                .unwrap();
            let v = vs.versions().iter().find(|v| v.key() == Some(key)).unwrap();
            let got = remote
                .get_object()
                .bucket("dst")
                .key(key)
                .version_id(v.version_id().unwrap())
                .send()
                .await
                .unwrap();
            let markers = vs.delete_markers().len();
            (got, markers)
        }
    };
    let (got, markers) = at_moto("a/small").await;
    assert_eq!(got.content_type(), Some("text/plain"));
    assert_eq!(got.cache_control(), Some("max-age=60"));
    assert_eq!(got.metadata().unwrap()["colour"], "blue");
    let vid = got.version_id().unwrap().to_string();
    assert_eq!(got.body.collect().await.unwrap().to_vec(), small);
    assert_eq!(markers, 1, "a/ replicates delete markers");
    let tags = remote
        .get_object_tagging()
        .bucket("dst")
        .key("a/small")
        .version_id(vid)
        .send()
        .await
        .unwrap();
    let mut tags: Vec<_> = tags
        .tag_set()
        .iter()
        .map(|t| (t.key(), t.value()))
        .collect();
    tags.sort();
    assert_eq!(tags, [("t", "1"), ("u", "two")]);
    let (got, _) = at_moto("a/big").await;
    assert_eq!(got.body.collect().await.unwrap().to_vec(), big);
    let (got, _) = at_moto("a/enc").await;
    assert_eq!(
        got.server_side_encryption(),
        Some(&ServerSideEncryption::Aes256)
    );
    assert_eq!(got.body.collect().await.unwrap().to_vec(), enc);
    let (got, markers) = at_moto("b/one").await;
    assert_eq!(got.body.collect().await.unwrap().to_vec(), b"bee");
    assert_eq!(markers, 0, "b/ does not replicate delete markers");
    // A later change of the latest version's tags reaches moto's current version.
    let tagging = aws_sdk_s3::types::Tagging::builder()
        .tag_set(Tag::builder().key("later").value("yes").build().unwrap())
        .build()
        .unwrap();
    let tag = c
        .put_object_tagging()
        .bucket("src")
        .key("a/big")
        .version_id(&big_vid);
    tag.tagging(tagging).send().await.unwrap();
    let moto_vid = at_moto("a/big").await.0.version_id().unwrap().to_string();
    eventually(
        "the new tags at moto",
        || tags_of(&remote, "dst", "a/big", &moto_vid),
        |t| t == &[("later".to_string(), "yes".to_string())],
    )
    .await;
    let c_at_moto = remote
        .head_object()
        .bucket("dst")
        .key("c/none")
        .send()
        .await;
    assert_eq!(fails(c_at_moto).0, 404);

    // Counted once the round's outcomes are committed, just after the last arrived.
    let status = || async { admin(&srv, &["admin", "replication", "status", "src", "--json"]) };
    let done = |s: &serde_json::Value| s[0]["stats"]["delivered"] == 6;
    eventually("every task done", status, done).await;
    let status = status().await;
    assert_eq!(status[0]["destination"], dest);
    assert_eq!(status[0]["stats"]["queued"], 0, "{status}");
    assert_eq!(status[0]["stats"]["dead"], 0, "{status}");
    let removed = cybs3(&srv.home, &["admin", "remote", "remove", "moto"]);
    assert!(!removed.status.success(), "a rule names the remote");
    c.delete_bucket_replication()
        .bucket("src")
        .send()
        .await
        .unwrap();
    let missing = c.get_bucket_replication().bucket("src").send().await;
    assert_eq!(fails(missing).0, 404);
}

/// Two servers, each with its own root keys, and a versioned bucket on each.
fn two_servers(dir: &std::path::Path) -> (Server, Server) {
    let mut a = Server::new(&dir.join("a"), 1, None);
    a.start();
    let mut b = Server::new(&dir.join("b"), 1, None);
    b.start();
    (a, b)
}

async fn versioned_bucket(c: &Client, name: &str) {
    bucket(c, name).await;
    set_versioning(c, name, BucketVersioningStatus::Enabled).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_way_rules_between_cybs3_servers_keep_ids_and_never_loop() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = two_servers(tmp.path());
    let (ca, cb) = (a.client(), b.client());
    versioned_bucket(&ca, "b-a").await;
    versioned_bucket(&cb, "b-b").await;
    let old = put_object(&ca, "b-a", "old", b"before the rules".to_vec()).await;
    add_remote(&a, "b", &b.endpoint(), (&b.access_key, &b.secret_key));
    add_remote(&b, "a", &a.endpoint(), (&a.access_key, &a.secret_key));
    let to_b = rule("to-b", 1, "", true, "arn:cybs3:s3:::b/b-b");
    set_rules(&ca, "b-a", vec![to_b]).await.unwrap();
    let to_a = rule("to-a", 1, "", true, "arn:cybs3:s3:::a/b-a");
    set_rules(&cb, "b-b", vec![to_a]).await.unwrap();

    let v1 = put_object(&ca, "b-a", "k", b"one".to_vec()).await;
    wait_status(&ca, "b-a", "k", &v1, ReplicationStatus::Completed).await;
    // At B: the same version id, time and bytes, shown as a replica.
    let head = cb
        .head_object()
        .bucket("b-b")
        .key("k")
        .version_id(&v1)
        .send()
        .await;
    let head = head.unwrap();
    assert_eq!(head.replication_status(), Some(&ReplicationStatus::Replica));
    let v2 = put_object(&cb, "b-b", "k", b"two".to_vec()).await;
    wait_status(&cb, "b-b", "k", &v2, ReplicationStatus::Completed).await;
    assert_eq!(
        get(&ca, "b-a", "k").await,
        b"two",
        "B's newer version is A's latest"
    );
    let marker = ca
        .delete_object()
        .bucket("b-a")
        .key("k")
        .send()
        .await
        .unwrap();
    let marker = marker.version_id().unwrap().to_string();
    let listed = converged(&ca, "b-a", &cb, "b-b", &["old"]).await;
    let of_k: Vec<_> = listed.iter().filter(|v| v.0 == "k").collect();
    assert_eq!(of_k.len(), 3, "{listed:?}");
    assert!(
        of_k.iter().any(|v| v.1 == marker && v.2 && v.3),
        "{listed:?}"
    );
    assert!(of_k.iter().any(|v| v.1 == v1) && of_k.iter().any(|v| v.1 == v2));
    // The object from before the rules is not replicated until a resync.
    let at_b = versions(&cb, "b-b").await;
    assert!(at_b.iter().all(|v| v.0 != "old"), "{at_b:?}");
    let resync = admin(&a, &["admin", "replication", "resync", "b-a", "--json"]);
    assert_eq!(resync["queued"], 1, "{resync}");
    wait_status(&ca, "b-a", "old", &old, ReplicationStatus::Completed).await;
    let listed = converged(&ca, "b-a", &cb, "b-b", &[]).await;

    // No loop: nothing moves once both sides agree.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(versions(&ca, "b-a").await, listed);
    assert_eq!(versions(&cb, "b-b").await, listed);
    for (srv, bucket, delivered) in [(&a, "b-a", 3), (&b, "b-b", 1)] {
        let status = admin(srv, &["admin", "replication", "status", bucket, "--json"]);
        assert_eq!(status[0]["stats"]["queued"], 0, "{status}");
        assert_eq!(status[0]["stats"]["delivered"], delivered, "{status}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sigkill_with_replication_pending_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut a, mut b) = two_servers(tmp.path());
    let (ca, cb) = (a.client(), b.client());
    versioned_bucket(&ca, "src").await;
    versioned_bucket(&cb, "dst").await;
    add_remote(&a, "b", &b.endpoint(), (&b.access_key, &b.secret_key));
    set_rules(
        &ca,
        "src",
        vec![rule("all", 1, "", true, "arn:cybs3:s3:::b/dst")],
    )
    .await
    .unwrap();
    b.stop();
    let mut written = Vec::new();
    for i in 0..60 {
        let key = format!("k{}", i % 20);
        written.push((
            key.clone(),
            put_object(&ca, "src", &key, content(&key, 500 + i)).await,
        ));
    }
    for i in 0..5 {
        ca.delete_object()
            .bucket("src")
            .key(format!("k{i}"))
            .send()
            .await
            .unwrap();
    }
    let pending = admin(&a, &["admin", "replication", "status", "src", "--json"]);
    assert_eq!(pending[0]["stats"]["queued"], 65, "{pending}");
    a.kill();
    b.start();
    a.start();
    let ca = a.client();
    for (key, vid) in &written {
        wait_status(&ca, "src", key, vid, ReplicationStatus::Completed).await;
    }
    let listed = converged(&ca, "src", &b.client(), "dst", &[]).await;
    assert_eq!(listed.len(), 65);
}

/// Waits until `check` holds of what `get` answers.
async fn eventually<T: std::fmt::Debug, F: std::future::Future<Output = T>>(
    what: &str,
    get: impl Fn() -> F,
    check: impl Fn(&T) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = get().await;
        if check(&got) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: {got:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn tags_of(c: &Client, bucket: &str, key: &str, vid: &str) -> Vec<(String, String)> {
    let out = c
        .get_object_tagging()
        .bucket(bucket)
        .key(key)
        .version_id(vid)
        .send()
        .await
        .unwrap();
    let mut tags: Vec<_> = (out.tag_set().iter())
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect();
    tags.sort();
    tags
}

/// Object lock settings go with the version; later changes of its tags, retention and
/// legal hold follow it, to the same version at a cybs3 destination.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn object_lock_and_later_changes_follow_the_version() {
    use aws_sdk_s3::types::{
        ObjectLockLegalHold, ObjectLockLegalHoldStatus, ObjectLockMode, Tagging,
    };
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = two_servers(tmp.path());
    let (ca, cb) = (a.client(), b.client());
    for (c, name) in [(&ca, "locked-a"), (&cb, "locked-b")] {
        let made = c
            .create_bucket()
            .bucket(name)
            .object_lock_enabled_for_bucket(true);
        made.send().await.unwrap();
    }
    add_remote(&a, "b", &b.endpoint(), (&b.access_key, &b.secret_key));
    let all = rule("all", 1, "", true, "arn:cybs3:s3:::b/locked-b");
    set_rules(&ca, "locked-a", vec![all]).await.unwrap();
    let until = aws_sdk_s3::primitives::DateTime::from_secs(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
            + 3600,
    );
    let put = ca
        .put_object()
        .bucket("locked-a")
        .key("doc")
        .object_lock_mode(ObjectLockMode::Governance)
        .object_lock_retain_until_date(until)
        .tagging("v=1")
        .body(ByteStream::from_static(b"kept"))
        .send()
        .await
        .unwrap();
    let vid = put.version_id().unwrap().to_string();
    wait_status(&ca, "locked-a", "doc", &vid, ReplicationStatus::Completed).await;
    let at_b = cb
        .head_object()
        .bucket("locked-b")
        .key("doc")
        .version_id(&vid);
    let at_b = at_b.send().await.unwrap();
    assert_eq!(at_b.object_lock_mode(), Some(&ObjectLockMode::Governance));
    assert_eq!(at_b.object_lock_retain_until_date(), Some(&until));
    assert_eq!(
        tags_of(&cb, "locked-b", "doc", &vid).await,
        [("v".into(), "1".into())]
    );

    let tagging = Tagging::builder()
        .tag_set(Tag::builder().key("v").value("2").build().unwrap())
        .build()
        .unwrap();
    let tag = ca
        .put_object_tagging()
        .bucket("locked-a")
        .key("doc")
        .version_id(&vid);
    tag.tagging(tagging).send().await.unwrap();
    let hold = ObjectLockLegalHold::builder()
        .status(ObjectLockLegalHoldStatus::On)
        .build();
    let held = ca
        .put_object_legal_hold()
        .bucket("locked-a")
        .key("doc")
        .version_id(&vid);
    held.legal_hold(hold).send().await.unwrap();
    eventually(
        "the new tags at B",
        || tags_of(&cb, "locked-b", "doc", &vid),
        |t| t == &[("v".to_string(), "2".to_string())],
    )
    .await;
    eventually(
        "the legal hold at B",
        || async {
            let h = cb
                .head_object()
                .bucket("locked-b")
                .key("doc")
                .version_id(&vid);
            h.send()
                .await
                .unwrap()
                .object_lock_legal_hold_status()
                .cloned()
        },
        |h| h == &Some(ObjectLockLegalHoldStatus::On),
    )
    .await;
    // B's changes are replicas': nothing is sent back, and A still has one version.
    let status = || async {
        admin(
            &a,
            &["admin", "replication", "status", "locked-a", "--json"],
        )
    };
    let done = |s: &serde_json::Value| s[0]["stats"]["delivered"] == 3;
    eventually("every task done", status, done).await;
    assert_eq!(versions(&ca, "locked-a").await.len(), 1);
}

/// SSE-KMS versions go only under a rule with SseKmsEncryptedObjects, encrypted at the
/// destination under its ReplicaKmsKeyID; an SSE-C version (its key is never stored)
/// fails, and raises the s3:Replication:OperationFailedReplication event.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kms_versions_follow_the_rules_and_failures_raise_events() {
    use aws_sdk_s3::types::{
        EncryptionConfiguration, Event, NotificationConfiguration, QueueConfiguration,
        SourceSelectionCriteria, SseKmsEncryptedObjects, SseKmsEncryptedObjectsStatus,
    };
    use base64::Engine as _;
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = two_servers(tmp.path());
    let (ca, cb) = (a.client(), b.client());
    admin(&a, &["admin", "kms", "key", "create", "src-key"]);
    admin(&b, &["admin", "kms", "key", "create", "dst-key"]);
    versioned_bucket(&ca, "enc-a").await;
    versioned_bucket(&cb, "enc-b").await;
    add_remote(&a, "b", &b.endpoint(), (&b.access_key, &b.secret_key));
    let hook = cybs3_tests::webhook::Receiver::start("hook-secret");
    let target = admin(
        &a,
        &[
            "admin",
            "notify",
            "add",
            "hook",
            "--type",
            "webhook",
            "--url",
            &hook.url(),
            "--secret",
            "hook-secret",
            "--json",
        ],
    );
    let failed = QueueConfiguration::builder()
        .queue_arn(target["arn"].as_str().unwrap())
        .events(Event::from("s3:Replication:OperationFailedReplication"))
        .build()
        .unwrap();
    let notify = NotificationConfiguration::builder()
        .queue_configurations(failed)
        .build();
    let set = ca.put_bucket_notification_configuration().bucket("enc-a");
    set.notification_configuration(notify).send().await.unwrap();

    let dest = "arn:cybs3:s3:::b/enc-b";
    let plain = rule("plain", 1, "plain/", true, dest);
    let mut kms = rule("kms", 2, "kms/", true, dest);
    kms.source_selection_criteria = Some(
        SourceSelectionCriteria::builder()
            .sse_kms_encrypted_objects(
                SseKmsEncryptedObjects::builder()
                    .status(SseKmsEncryptedObjectsStatus::Enabled)
                    .build()
                    .unwrap(),
            )
            .build(),
    );
    let refused = set_rules(&ca, "enc-a", vec![plain.clone(), kms.clone()]).await;
    assert_eq!(
        refused.unwrap_err(),
        (400, "InvalidRequest".into()),
        "no replica key"
    );
    let with_key = EncryptionConfiguration::builder()
        .replica_kms_key_id("dst-key")
        .build();
    let d = kms.destination.as_mut().unwrap();
    d.encryption_configuration = Some(with_key);
    set_rules(&ca, "enc-a", vec![plain, kms]).await.unwrap();

    let put_kms = |key: &'static str| {
        let ca = ca.clone();
        async move {
            let put = ca
                .put_object()
                .bucket("enc-a")
                .key(key)
                .server_side_encryption(ServerSideEncryption::AwsKms)
                .ssekms_key_id("src-key")
                .body(ByteStream::from_static(b"sealed"))
                .send()
                .await
                .unwrap();
            put.version_id().unwrap().to_string()
        }
    };
    let skipped = put_kms("plain/kms").await;
    let sent = put_kms("kms/one").await;
    let b64 = base64::engine::general_purpose::STANDARD;
    let customer_key = [7u8; 32];
    let customer_md5 = {
        use md5::Digest as _;
        b64.encode(md5::Md5::digest(customer_key))
    };
    let sse_c = ca
        .put_object()
        .bucket("enc-a")
        .key("plain/customer")
        .sse_customer_algorithm("AES256")
        .sse_customer_key(b64.encode(customer_key))
        .sse_customer_key_md5(&customer_md5)
        .body(ByteStream::from_static(b"theirs"))
        .send()
        .await
        .unwrap();
    let sse_c = sse_c.version_id().unwrap().to_string();

    wait_status(&ca, "enc-a", "kms/one", &sent, ReplicationStatus::Completed).await;
    let at_b = cb
        .head_object()
        .bucket("enc-b")
        .key("kms/one")
        .version_id(&sent);
    let at_b = at_b.send().await.unwrap();
    assert_eq!(
        at_b.server_side_encryption(),
        Some(&ServerSideEncryption::AwsKms)
    );
    assert!(
        at_b.ssekms_key_id().unwrap().ends_with("dst-key"),
        "{at_b:?}"
    );
    assert_eq!(get(&cb, "enc-b", "kms/one").await, b"sealed");
    let head = ca
        .head_object()
        .bucket("enc-a")
        .key("plain/kms")
        .version_id(&skipped);
    let head = head.send().await.unwrap();
    assert_eq!(
        head.replication_status(),
        None,
        "no rule takes SSE-KMS under plain/"
    );

    let head = ca
        .head_object()
        .bucket("enc-a")
        .key("plain/customer")
        .version_id(&sse_c)
        .sse_customer_algorithm("AES256")
        .sse_customer_key(b64.encode(customer_key))
        .sse_customer_key_md5(&customer_md5);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = head
            .clone()
            .send()
            .await
            .unwrap()
            .replication_status()
            .cloned();
        if status == Some(ReplicationStatus::Failed) {
            break;
        }
        assert!(Instant::now() < deadline, "SSE-C version: {status:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eventually(
        "the failure's event",
        || async { hook.events() },
        |events| {
            events.iter().any(|m| {
                let r = &m["Records"][0];
                r["eventName"] == "Replication:OperationFailedReplication"
                    && r["s3"]["object"]["key"] == "plain/customer"
            })
        },
    )
    .await;
    let status = admin(&a, &["admin", "replication", "status", "enc-a", "--json"]);
    let failures = status[0]["dead_letters"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{status}");
    assert!(
        failures[0]["error"].as_str().unwrap().contains("SSE-C"),
        "{status}"
    );
}

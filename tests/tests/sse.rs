//! Server-side encryption end to end, with aws-sdk-s3 at default settings: SSE-S3 and
//! SSE-KMS on PUT, GET (ranges), HEAD, multipart and copies between modes; bucket default
//! encryption; the KMS's keys created, rotated while clients write, disabled and enabled;
//! no plaintext on any drive; damaged ciphertext gives an error, never wrong bytes.

mod common;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    CompletedMultipartUpload, CompletedPart, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
};
use aws_sdk_s3::Client;
use common::*;
use cybs3_tests::{files_under, Server};

/// A body of `len` bytes with `marker` written every 64 KiB.
fn marked(marker: &str, len: usize) -> Vec<u8> {
    let mut out = cybs3_tests::content(marker, len);
    let mut at = 0;
    while at + marker.len() <= len {
        out[at..at + marker.len()].copy_from_slice(marker.as_bytes());
        at += 64 << 10;
    }
    out
}

/// Whether any file under the server's drives holds `needle`.
fn on_drives(srv: &Server, needle: &str) -> bool {
    srv.drives.iter().any(|d| {
        files_under(d).iter().any(|f| {
            std::fs::read(f).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
        })
    })
}

async fn range(c: &Client, key: &str, from: usize, to: usize) -> Vec<u8> {
    let r = c
        .get_object()
        .bucket("enc")
        .key(key)
        .range(format!("bytes={from}-{to}"))
        .send()
        .await
        .unwrap();
    r.body.collect().await.unwrap().into_bytes().to_vec()
}

fn kms(srv: &Server, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["admin", "kms", "key"];
    all.extend_from_slice(args);
    all.push("--json");
    admin(srv, &all)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sse_s3_and_kms_round_trip_and_leave_no_plaintext_on_the_drives() {
    let tmp = tempfile::tempdir().unwrap();
    let mut srv = Server::new(tmp.path(), 1, None);
    srv.start();
    let c = srv.client();
    bucket(&c, "enc").await;
    kms(&srv, &["create", "team"]);

    // SSE-S3: headers on PUT, HEAD and GET; whole and ranged reads across block edges.
    let body = marked("MARKER-S3-ONLY", 3 << 20);
    let stored = c
        .put_object()
        .bucket("enc")
        .key("s3")
        .server_side_encryption(ServerSideEncryption::Aes256)
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        stored.server_side_encryption(),
        Some(&ServerSideEncryption::Aes256)
    );
    let head = c
        .head_object()
        .bucket("enc")
        .key("s3")
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.server_side_encryption(),
        Some(&ServerSideEncryption::Aes256)
    );
    assert_eq!(head.content_length(), Some(3 << 20));
    assert_eq!(get(&c, "enc", "s3").await, body);
    let edge = (1 << 20) - 100;
    assert_eq!(
        range(&c, "s3", edge, edge + 300).await,
        body[edge..=edge + 300]
    );
    assert_eq!(range(&c, "s3", 5, 5).await, body[5..=5]);

    // SSE-KMS with a named key, by name and by ARN; a small (inline) object too.
    let small = marked("MARKER-KMS-SMALL", 3000);
    let r = c
        .put_object()
        .bucket("enc")
        .key("kms-small")
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .ssekms_key_id("arn:cybs3:kms:us-east-1::key/team")
        .body(ByteStream::from(small.clone()))
        .send()
        .await
        .unwrap();
    assert!(r.ssekms_key_id().unwrap().ends_with(":key/team"));
    assert_eq!(get(&c, "enc", "kms-small").await, small);

    // Multipart under SSE-KMS: each part sealed with its own key; ranges across parts.
    let parts = [
        marked("MARKER-PART-ONE", 5 << 20),
        marked("MARKER-PART-TWO", 1 << 20),
    ];
    let up = c
        .create_multipart_upload()
        .bucket("enc")
        .key("multi")
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .ssekms_key_id("team")
        .send()
        .await
        .unwrap();
    assert_eq!(
        up.server_side_encryption(),
        Some(&ServerSideEncryption::AwsKms)
    );
    let mut done = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        let r = c
            .upload_part()
            .bucket("enc")
            .key("multi")
            .upload_id(up.upload_id().unwrap())
            .part_number(i as i32 + 1)
            .body(ByteStream::from(p.clone()))
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.server_side_encryption(),
            Some(&ServerSideEncryption::AwsKms)
        );
        done.push(
            CompletedPart::builder()
                .part_number(i as i32 + 1)
                .e_tag(r.e_tag().unwrap())
                .build(),
        );
    }
    let listed = c
        .list_parts()
        .bucket("enc")
        .key("multi")
        .upload_id(up.upload_id().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(listed.parts()[0].size(), Some(5 << 20), "plaintext sizes");
    c.complete_multipart_upload()
        .bucket("enc")
        .key("multi")
        .upload_id(up.upload_id().unwrap())
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(done))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let whole = parts.concat();
    assert_eq!(get(&c, "enc", "multi").await, whole);
    let across = (5 << 20) - 10;
    assert_eq!(
        range(&c, "multi", across, across + 20).await,
        whole[across..=across + 20]
    );
    let second = c
        .get_object()
        .bucket("enc")
        .key("multi")
        .part_number(2)
        .send()
        .await
        .unwrap();
    assert_eq!(second.content_length(), Some(1 << 20));

    // Copies between modes: SSE-KMS to plain (its copy is plaintext on the drives, by
    // request), plain to SSE-S3.
    let to_plain = cybs3_tests::content("to-plain", 150_000);
    c.put_object()
        .bucket("enc")
        .key("kms-source")
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .body(ByteStream::from(to_plain.clone()))
        .send()
        .await
        .unwrap();
    let plain = marked("MARKER-PLAIN-TEXT", 200_000);
    put(&c, "enc", "plain", plain.clone()).await;
    c.copy_object()
        .bucket("enc")
        .key("decrypted")
        .copy_source("enc/kms-source")
        .send()
        .await
        .unwrap();
    let h = c
        .head_object()
        .bucket("enc")
        .key("decrypted")
        .send()
        .await
        .unwrap();
    assert_eq!(h.server_side_encryption(), None);
    assert_eq!(get(&c, "enc", "decrypted").await, to_plain);
    let copied = c
        .copy_object()
        .bucket("enc")
        .key("plain")
        .copy_source("enc/plain")
        .server_side_encryption(ServerSideEncryption::Aes256)
        .send()
        .await
        .unwrap();
    assert_eq!(
        copied.server_side_encryption(),
        Some(&ServerSideEncryption::Aes256)
    );
    assert_eq!(get(&c, "enc", "plain").await, plain);

    // Bucket default encryption: a PUT without headers is encrypted.
    c.put_bucket_encryption()
        .bucket("enc")
        .server_side_encryption_configuration(
            ServerSideEncryptionConfiguration::builder()
                .rules(
                    ServerSideEncryptionRule::builder()
                        .apply_server_side_encryption_by_default(
                            ServerSideEncryptionByDefault::builder()
                                .sse_algorithm(ServerSideEncryption::AwsKms)
                                .kms_master_key_id("team")
                                .build()
                                .unwrap(),
                        )
                        .build(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let got = c
        .get_bucket_encryption()
        .bucket("enc")
        .send()
        .await
        .unwrap();
    assert!(got.server_side_encryption_configuration().is_some());
    let r = c
        .put_object()
        .bucket("enc")
        .key("by-default")
        .body(ByteStream::from(marked("MARKER-BY-DEFAULT", 300_000)))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.server_side_encryption(),
        Some(&ServerSideEncryption::AwsKms)
    );

    // Bad requests get AWS's errors.
    let (st, code) = fails(
        c.put_object()
            .bucket("enc")
            .key("x")
            .server_side_encryption(ServerSideEncryption::AwsKms)
            .ssekms_key_id("nope")
            .body(ByteStream::from_static(b"x"))
            .send()
            .await,
    );
    assert_eq!((st, code.as_str()), (400, "KMS.NotFoundException"));
    let (st, code) = fails(
        c.put_object()
            .bucket("enc")
            .key("x")
            .server_side_encryption(ServerSideEncryption::Aes256)
            .ssekms_key_id("team")
            .body(ByteStream::from_static(b"x"))
            .send()
            .await,
    );
    assert_eq!((st, code.as_str()), (400, "InvalidArgument"));

    // No plaintext of an encrypted object on any drive; the plain one's is there, so
    // the search can find what it looks for.
    c.put_object()
        .bucket("enc")
        .key("left-plain")
        .body(ByteStream::from(marked("MARKER-LEFT-PLAIN", 300_000)))
        .server_side_encryption(ServerSideEncryption::Aes256)
        .send()
        .await
        .unwrap();
    c.delete_bucket_encryption()
        .bucket("enc")
        .send()
        .await
        .unwrap();
    put(&c, "enc", "visible", marked("MARKER-VISIBLE", 300_000)).await;
    srv.stop();
    assert!(
        on_drives(&srv, "MARKER-VISIBLE"),
        "the unencrypted object is found"
    );
    for m in [
        "MARKER-S3-ONLY",
        "MARKER-KMS-SMALL",
        "MARKER-PART-ONE",
        "MARKER-PART-TWO",
        "MARKER-PLAIN-TEXT",
        "MARKER-BY-DEFAULT",
        "MARKER-LEFT-PLAIN",
    ] {
        assert!(!on_drives(&srv, m), "{m} is on a drive in clear");
    }
    // After a restart, everything still decrypts.
    srv.start();
    let c = srv.client();
    assert_eq!(get(&c, "enc", "multi").await, whole);
    assert_eq!(get(&c, "enc", "s3").await, body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keys_rotate_under_load_disable_and_enable() {
    let tmp = tempfile::tempdir().unwrap();
    let mut srv = Server::new(tmp.path(), 1, None);
    srv.start();
    let c = srv.client();
    bucket(&c, "enc").await;
    let created = kms(&srv, &["create", "rot"]);
    assert_eq!(created[0]["version"], 1);
    let write = |c: Client, i: usize| async move {
        let body = cybs3_tests::content(&format!("obj{i}"), 100_000 + i);
        c.put_object()
            .bucket("enc")
            .key(format!("o{i}"))
            .server_side_encryption(ServerSideEncryption::AwsKms)
            .ssekms_key_id("rot")
            .body(ByteStream::from(body))
            .send()
            .await
            .unwrap();
    };
    // 8 clients writing while the key rotates twice.
    let mut tasks = Vec::new();
    for w in 0..8 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            for j in 0..6 {
                write(c.clone(), w * 6 + j).await;
            }
        }));
    }
    kms(&srv, &["rotate", "rot"]);
    let rotated = kms(&srv, &["rotate", "rot"]);
    assert_eq!(rotated[0]["version"], 3);
    for t in tasks {
        t.await.unwrap();
    }
    write(c.clone(), 99).await;
    for i in (0..48).chain([99]) {
        let want = cybs3_tests::content(&format!("obj{i}"), 100_000 + i);
        assert!(get(&c, "enc", &format!("o{i}")).await == want, "o{i}");
    }
    // A rewrap wraps the older data keys by version 3; everything still reads.
    let job = admin(&srv, &["admin", "kms", "rewrap", "--wait", "--json"]);
    assert_eq!(job["done"], true, "{job}");
    assert_eq!(job["skipped"], 0, "{job}");
    assert!(job["rewrapped"].as_u64().unwrap() >= 1, "{job}");
    let again = admin(
        &srv,
        &[
            "admin", "kms", "rewrap", "--bucket", "enc", "--wait", "--json",
        ],
    );
    assert_eq!(
        again["rewrapped"], 0,
        "nothing is older than version 3 now: {again}"
    );
    for i in (0..48).chain([99]) {
        let want = cybs3_tests::content(&format!("obj{i}"), 100_000 + i);
        assert!(
            get(&c, "enc", &format!("o{i}")).await == want,
            "o{i} after the rewrap"
        );
    }
    // Disabled: its objects cannot be read, nor new ones written; enabled: both again.
    kms(&srv, &["disable", "rot"]);
    let (st, code) = fails(c.get_object().bucket("enc").key("o1").send().await);
    assert_eq!((st, code.as_str()), (400, "KMS.DisabledException"));
    let (st, _) = fails(
        c.put_object()
            .bucket("enc")
            .key("new")
            .server_side_encryption(ServerSideEncryption::AwsKms)
            .ssekms_key_id("rot")
            .body(ByteStream::from_static(b"x"))
            .send()
            .await,
    );
    assert_eq!(st, 400);
    let listed = kms(&srv, &["list"]);
    let rot = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "rot")
        .unwrap();
    assert_eq!(rot["enabled"], false);
    assert!(rot["wrapped"].as_u64().unwrap() >= 49, "{rot}");
    kms(&srv, &["enable", "rot"]);
    let want = cybs3_tests::content("obj1", 100_001);
    assert!(get(&c, "enc", "o1").await == want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn damaged_ciphertext_is_an_error_never_wrong_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let mut srv = Server::new(tmp.path(), 1, None);
    srv.start();
    let c = srv.client();
    bucket(&c, "enc").await;
    let body = cybs3_tests::content("tamper", 2 << 20);
    c.put_object()
        .bucket("enc")
        .key("t")
        .server_side_encryption(ServerSideEncryption::Aes256)
        .body(ByteStream::from(body))
        .send()
        .await
        .unwrap();
    srv.stop();
    // One drive: no parity to rebuild from. Flip a bit in the middle of the shard file.
    let shard = srv
        .drives
        .iter()
        .flat_map(|d| files_under(&d.join("data")))
        .next()
        .expect("a shard file");
    let mut bytes = std::fs::read(&shard).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x10;
    std::fs::write(&shard, bytes).unwrap();
    srv.start();
    let c = srv.client();
    let r = c.get_object().bucket("enc").key("t").send().await;
    let failed = match r {
        Err(_) => true,
        Ok(o) => o.body.collect().await.is_err(),
    };
    assert!(failed, "a damaged encrypted object was served");
}

/// A customer key, base64, and its MD5, base64, as SSE-C headers carry them.
fn customer(seed: u8) -> (String, String) {
    use base64::Engine as _;
    use md5::Digest as _;
    let key = [seed; 32];
    let b64 = base64::engine::general_purpose::STANDARD;
    (b64.encode(key), b64.encode(md5::Md5::digest(key)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn customer_keys_are_needed_checked_and_never_stored() {
    let tmp = tempfile::tempdir().unwrap();
    let mut srv = Server::new(tmp.path(), 1, None);
    srv.start();
    let c = srv.client();
    bucket(&c, "enc").await;
    let (key, md5) = customer(7);
    let (wrong, wrong_md5) = customer(8);
    let body = marked("MARKER-CUSTOMER", 2 << 20);
    let r = c
        .put_object()
        .bucket("enc")
        .key("c")
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&key)
        .sse_customer_key_md5(&md5)
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.sse_customer_key_md5(), Some(md5.as_str()));
    // Without the key: 400; with another: 403; with it: the bytes, and ranges.
    let (st, _) = fails(c.head_object().bucket("enc").key("c").send().await);
    assert_eq!(st, 400);
    let (st, code) = fails(c.get_object().bucket("enc").key("c").send().await);
    assert_eq!((st, code.as_str()), (400, "InvalidRequest"));
    let (st, code) = fails(
        c.get_object()
            .bucket("enc")
            .key("c")
            .sse_customer_algorithm("AES256")
            .sse_customer_key(&wrong)
            .sse_customer_key_md5(&wrong_md5)
            .send()
            .await,
    );
    assert_eq!((st, code.as_str()), (403, "AccessDenied"));
    let (st, code) = fails(
        c.get_object()
            .bucket("enc")
            .key("c")
            .sse_customer_algorithm("AES256")
            .sse_customer_key(&key)
            .sse_customer_key_md5(&wrong_md5)
            .send()
            .await,
    );
    assert_eq!(
        (st, code.as_str()),
        (400, "InvalidArgument"),
        "a key MD5 that does not match"
    );
    let h = c
        .head_object()
        .bucket("enc")
        .key("c")
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&key)
        .sse_customer_key_md5(&md5)
        .send()
        .await
        .unwrap();
    assert_eq!(h.sse_customer_algorithm(), Some("AES256"));
    let got = c
        .get_object()
        .bucket("enc")
        .key("c")
        .range("bytes=1048000-1049000")
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&key)
        .sse_customer_key_md5(&md5)
        .send()
        .await
        .unwrap();
    let bytes = got.body.collect().await.unwrap().into_bytes();
    assert!(bytes[..] == body[1_048_000..=1_049_000]);

    // Copied to SSE-S3 with the source's key; a plain copy without it is refused.
    let (st, _) = fails(
        c.copy_object()
            .bucket("enc")
            .key("nokey")
            .copy_source("enc/c")
            .send()
            .await,
    );
    assert_eq!(st, 400);
    c.copy_object()
        .bucket("enc")
        .key("to-s3")
        .copy_source("enc/c")
        .copy_source_sse_customer_algorithm("AES256")
        .copy_source_sse_customer_key(&key)
        .copy_source_sse_customer_key_md5(&md5)
        .server_side_encryption(ServerSideEncryption::Aes256)
        .send()
        .await
        .unwrap();
    assert_eq!(get(&c, "enc", "to-s3").await, body);

    // Multipart: every part needs the upload's key.
    let up = c
        .create_multipart_upload()
        .bucket("enc")
        .key("mc")
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&key)
        .sse_customer_key_md5(&md5)
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap();
    let part = marked("MARKER-CUSTOMER-PART", 5 << 20);
    let (st, _) = fails(
        c.upload_part()
            .bucket("enc")
            .key("mc")
            .upload_id(id)
            .part_number(1)
            .body(ByteStream::from(part.clone()))
            .send()
            .await,
    );
    assert_eq!(st, 400);
    let p = c
        .upload_part()
        .bucket("enc")
        .key("mc")
        .upload_id(id)
        .part_number(1)
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&key)
        .sse_customer_key_md5(&md5)
        .body(ByteStream::from(part.clone()))
        .send()
        .await
        .unwrap();
    c.complete_multipart_upload()
        .bucket("enc")
        .key("mc")
        .upload_id(id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .parts(
                    CompletedPart::builder()
                        .part_number(1)
                        .e_tag(p.e_tag().unwrap())
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let got = c
        .get_object()
        .bucket("enc")
        .key("mc")
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&key)
        .sse_customer_key_md5(&md5)
        .send()
        .await
        .unwrap();
    assert!(got.body.collect().await.unwrap().into_bytes()[..] == part[..]);

    // Neither the plaintext nor the key is on a drive.
    srv.stop();
    let raw_key = String::from_utf8_lossy(&[7u8; 32]).into_owned();
    for needle in [
        "MARKER-CUSTOMER",
        "MARKER-CUSTOMER-PART",
        key.as_str(),
        raw_key.as_str(),
    ] {
        assert!(!on_drives(&srv, needle), "{needle:?} is on a drive");
    }
}

/// A bucket policy can require encryption, and a KMS key, with AWS's condition keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn policies_can_require_encryption_and_a_key() {
    let tmp = tempfile::tempdir().unwrap();
    let mut srv = Server::new(tmp.path(), 1, None);
    srv.start();
    let root = srv.client();
    bucket(&root, "enc").await;
    kms(&srv, &["create", "team"]);
    kms(&srv, &["create", "other"]);
    let (ak, sk) = add_user(&srv, "ana", &["--policy", "readwrite"]);
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
             "Resource": "arn:aws:s3:::enc/*",
             "Condition": {"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}}},
            {"Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
             "Resource": "arn:aws:s3:::enc/*",
             "Condition": {"StringNotLikeIfExists": {"s3:x-amz-server-side-encryption-aws-kms-key-id": "*:key/team"}}}
        ]
    });
    root.put_bucket_policy()
        .bucket("enc")
        .policy(policy.to_string())
        .send()
        .await
        .unwrap();
    let ana = cybs3_tests::client_for(&srv.endpoint(), &ak, &sk);
    let put = |sse: Option<ServerSideEncryption>, key: Option<&'static str>| {
        ana.put_object()
            .bucket("enc")
            .key("k")
            .set_server_side_encryption(sse)
            .set_ssekms_key_id(key.map(str::to_string))
            .body(ByteStream::from_static(b"secret"))
            .send()
    };
    let (st, _) = fails(put(None, None).await);
    assert_eq!(st, 403, "unencrypted");
    let (st, _) = fails(put(Some(ServerSideEncryption::Aes256), None).await);
    assert_eq!(st, 403, "SSE-S3");
    let (st, _) = fails(
        put(
            Some(ServerSideEncryption::AwsKms),
            Some("arn:cybs3:kms:us-east-1::key/other"),
        )
        .await,
    );
    assert_eq!(st, 403, "another key");
    put(
        Some(ServerSideEncryption::AwsKms),
        Some("arn:cybs3:kms:us-east-1::key/team"),
    )
    .await
    .unwrap();
}

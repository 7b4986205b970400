//! Per-bucket access keys: created with `cybs3 admin key`, stored sealed in the engine,
//! limited to their bucket, and dead the moment they are removed.

mod common;

use aws_sdk_s3::primitives::ByteStream;
use common::*;
use cybs3_tests::{cybs3, files_under, Server};

fn create_key(srv: &Server, bucket: &str) -> (String, String) {
    let out = cybs3(
        &srv.home,
        &["admin", "key", "create", "--bucket", bucket, "--json"],
    );
    assert!(out.status.success(), "key create: {out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["bucket"], bucket);
    (
        v["access_key"].as_str().unwrap().to_string(),
        v["secret_key"].as_str().unwrap().to_string(),
    )
}

#[tokio::test]
async fn bucket_keys_reach_their_bucket_only_and_die_when_removed() {
    let (_tmp, mut srv, root) = setup();
    bucket(&root, "mine").await;
    bucket(&root, "theirs").await;
    put(&root, "theirs", "secret.txt", b"not for you".to_vec()).await;

    let (ak, sk) = create_key(&srv, "mine");
    let c = srv.client_as(&ak, &sk);

    // Everything inside its bucket works, with the SDK's default checksums.
    put(&c, "mine", "a/b.txt", b"hello".to_vec()).await;
    assert_eq!(get(&c, "mine", "a/b.txt").await, b"hello");
    assert_eq!(keys(&c, "mine").await, vec!["a/b.txt"]);
    let listed = c.list_buckets().send().await.unwrap();
    let names: Vec<_> = listed.buckets().iter().filter_map(|b| b.name()).collect();
    assert_eq!(
        names,
        vec!["mine"],
        "ListBuckets shows only the key's bucket"
    );

    // Nothing outside it.
    let (st, code) = fails(
        c.get_object()
            .bucket("theirs")
            .key("secret.txt")
            .send()
            .await,
    );
    assert_eq!((st, code.as_str()), (403, "AccessDenied"));
    let (st, code) = fails(
        c.put_object()
            .bucket("theirs")
            .key("x")
            .body(ByteStream::from_static(b"x"))
            .send()
            .await,
    );
    assert_eq!((st, code.as_str()), (403, "AccessDenied"));
    let (st, _) = fails(c.list_objects_v2().bucket("theirs").send().await);
    assert_eq!(st, 403);
    let (st, _) = fails(c.create_bucket().bucket("newone").send().await);
    assert_eq!(st, 403, "a bucket key cannot create buckets");
    let (st, _) = fails(c.delete_bucket().bucket("mine").send().await);
    assert_eq!(st, 403, "nor delete its own");
    let (st, _) = fails(
        c.copy_object()
            .bucket("mine")
            .key("stolen")
            .copy_source("theirs/secret.txt")
            .send()
            .await,
    );
    assert_eq!(st, 403, "copying from another bucket is refused");
    assert_eq!(keys(&root, "mine").await, vec!["a/b.txt"], "nothing stored");
    assert_eq!(keys(&root, "theirs").await, vec!["secret.txt"]);

    // Listed without the secret; the index holds it sealed, never in clear.
    let out = cybs3(&srv.home, &["admin", "key", "list", "--json"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains(&ak) && !text.contains(&sk), "{text}");
    for f in files_under(&srv.home) {
        if f.file_name().is_some_and(|n| n == "server.key") {
            continue;
        }
        let bytes = std::fs::read(&f).unwrap_or_default();
        assert!(
            !bytes.windows(sk.len()).any(|w| w == sk.as_bytes()),
            "secret in clear in {}",
            f.display()
        );
    }

    // A removed key stops working with the next request.
    let out = cybs3(&srv.home, &["admin", "key", "remove", &ak]);
    assert!(out.status.success(), "{out:?}");
    let (st, code) = fails(c.get_object().bucket("mine").key("a/b.txt").send().await);
    assert_eq!((st, code.as_str()), (403, "InvalidAccessKeyId"));
    let out = cybs3(&srv.home, &["admin", "key", "remove", &ak]);
    assert_eq!(out.status.code(), Some(1), "removing twice fails");

    // Keys made while the server is stopped work after it starts, across restarts.
    srv.stop();
    let (ak2, sk2) = create_key(&srv, "mine");
    let out = cybs3(&srv.home, &["admin", "key", "create", "--bucket", "nosuch"]);
    assert_eq!(out.status.code(), Some(1), "unknown bucket: {out:?}");
    srv.start();
    let c2 = srv.client_as(&ak2, &sk2);
    assert_eq!(get(&c2, "mine", "a/b.txt").await, b"hello");
}

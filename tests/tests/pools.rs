//! Pools through the real binary: `cybs3 admin pool add` on a server under load from
//! aws-sdk-s3 (no request may fail), and `admin pool drain` cut by a SIGKILL, resumed by
//! the restarted server, and ending with every object whole and the pool's drives empty.

mod common;

use aws_sdk_s3::Client;
use common::*;
use cybs3_tests::{content, cybs3, files_under, Server};
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn pool_json(srv: &Server, name: &str) -> serde_json::Value {
    let pools = admin(srv, &["admin", "pool", "list", "--json"]);
    pools
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no pool {name} in {pools}"))
        .clone()
}

fn pool_drives(srv: &Server, name: &str, n: usize) -> Vec<PathBuf> {
    (0..n)
        .map(|i| srv.home.join(format!("{name}{i}")))
        .collect()
}

fn add_pool(srv: &Server, name: &str, drives: &[PathBuf]) -> serde_json::Value {
    let list: Vec<String> = drives.iter().map(|d| d.display().to_string()).collect();
    let arg = list.join(",");
    admin(
        srv,
        &["admin", "pool", "add", name, "--drives", &arg, "--json"],
    )
}

fn shard_files(drives: &[PathBuf]) -> usize {
    drives
        .iter()
        .map(|d| files_under(&d.join("data")).len())
        .sum()
}

async fn get_bytes(c: &Client, bucket: &str, key: &str) -> Result<Vec<u8>, String> {
    let out = c
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| format!("get {key}: {e:?}"))?;
    let body = out
        .body
        .collect()
        .await
        .map_err(|e| format!("{key}: {e}"))?;
    Ok(body.into_bytes().to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pool_added_under_load_fails_no_request_and_takes_new_objects() {
    let tmp = tempfile::tempdir().unwrap();
    let mut srv = Server::new(tmp.path(), 1, None);
    srv.start();
    let c = srv.client();
    bucket(&c, "load").await;
    let drives = pool_drives(&srv, "second", 4);
    let started = Instant::now();
    // 16 clients put and read back objects past the inline size, until the pool has
    // been in place for a while.
    let added_at = std::sync::Arc::new(std::sync::Mutex::new(None::<Instant>));
    let tasks: Vec<_> = (0..16)
        .map(|t| {
            let (c, added_at) = (c.clone(), added_at.clone());
            tokio::spawn(async move {
                let mut done = Vec::new();
                for i in 0.. {
                    let key = format!("t{t}/{i}");
                    let body = content(&key, 100_000 + (i * 37_000 + t * 5_000) % 400_000);
                    c.put_object()
                        .bucket("load")
                        .key(&key)
                        .body(body.clone().into())
                        .send()
                        .await
                        .map_err(|e| format!("put {key}: {e:?}"))?;
                    if get_bytes(&c, "load", &key).await? != body {
                        return Err(format!("{key} read back different"));
                    }
                    done.push(key);
                    let added = *added_at.lock().unwrap();
                    if added.is_some_and(|a: Instant| a.elapsed() > Duration::from_secs(2)) {
                        return Ok::<_, String>(done);
                    }
                    assert!(
                        started.elapsed() < Duration::from_secs(120),
                        "load ran too long"
                    );
                }
                unreachable!()
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(700)).await;
    let home = srv.home.clone();
    let arg: Vec<String> = drives.iter().map(|d| d.display().to_string()).collect();
    let arg = arg.join(",");
    let out = tokio::task::spawn_blocking(move || {
        cybs3(
            &home,
            &["admin", "pool", "add", "second", "--drives", &arg, "--json"],
        )
    })
    .await
    .unwrap();
    assert!(out.status.success(), "pool add: {out:?}");
    *added_at.lock().unwrap() = Some(Instant::now());
    let mut keys = Vec::new();
    for t in tasks {
        keys.extend(
            t.await
                .unwrap()
                .unwrap_or_else(|e| panic!("a request failed: {e}")),
        );
    }
    let second = pool_json(&srv, "second");
    assert_eq!(second["state"], "active");
    assert_eq!(second["ec"], "2+2");
    assert!(
        second["shard_files"].as_u64().unwrap() > 0,
        "new objects went to the new pool: {second}"
    );
    assert!(shard_files(&drives) > 0);
    // Every object, on either pool, reads back whole.
    for key in &keys {
        assert_eq!(get_bytes(&c, "load", key).await.unwrap().len(), {
            let t: usize = key[1..key.find('/').unwrap()].parse().unwrap();
            let i: usize = key[key.find('/').unwrap() + 1..].parse().unwrap();
            100_000 + (i * 37_000 + t * 5_000) % 400_000
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_cut_by_sigkill_resumes_and_keeps_every_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let mut srv = Server::new(tmp.path(), 1, None);
    // Slow enough that the SIGKILL lands in the middle of the drain.
    srv.args = vec!["--move-bandwidth".into(), "4".into()];
    srv.start();
    let c = srv.client();
    bucket(&c, "keep").await;
    let drives = pool_drives(&srv, "second", 3);
    add_pool(&srv, "second", &drives);

    let sizes = [70_000, 300_000, 1 << 20, 3 << 20];
    let mut objects = Vec::new();
    for i in 0..24 {
        let key = format!("obj/{i}");
        let body = content(&key, sizes[i % sizes.len()]);
        put(&c, "keep", &key, body.clone()).await;
        objects.push((key, body));
    }
    // A multipart object: each part is its own piece of data in the pool.
    let parts = [content("mp1", 5 << 20), content("mp2", 1 << 20)];
    let up = c
        .create_multipart_upload()
        .bucket("keep")
        .key("multi")
        .send()
        .await
        .unwrap();
    let mut done = Vec::new();
    for (n, p) in parts.iter().enumerate() {
        let r = c
            .upload_part()
            .bucket("keep")
            .key("multi")
            .upload_id(up.upload_id().unwrap())
            .part_number(n as i32 + 1)
            .body(p.clone().into())
            .send()
            .await
            .unwrap();
        done.push(
            aws_sdk_s3::types::CompletedPart::builder()
                .part_number(n as i32 + 1)
                .e_tag(r.e_tag().unwrap())
                .build(),
        );
    }
    c.complete_multipart_upload()
        .bucket("keep")
        .key("multi")
        .upload_id(up.upload_id().unwrap())
        .multipart_upload(
            aws_sdk_s3::types::CompletedMultipartUpload::builder()
                .set_parts(Some(done))
                .build(),
        )
        .send()
        .await
        .unwrap();
    objects.push(("multi".into(), parts.concat()));
    let before = shard_files(&drives);
    assert!(before > 0, "the objects went to the new pool");

    // The first pool holds the index: it cannot be drained.
    let out = cybs3(&srv.home, &["admin", "pool", "drain", "main"]);
    assert!(!out.status.success());
    let msg = String::from_utf8_lossy(&out.stderr);
    assert!(msg.contains("index") && msg.lines().count() == 1, "{msg}");

    let drained = admin(&srv, &["admin", "pool", "drain", "second", "--json"]);
    assert_eq!(drained[0]["state"], "draining");
    let deadline = Instant::now() + Duration::from_secs(30);
    while shard_files(&drives) >= before {
        assert!(Instant::now() < deadline, "the drain never started");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    srv.kill();
    let left = shard_files(&drives);
    assert!(left > 0, "the SIGKILL came after the drain had ended");

    // The restarted server goes on with the drain by itself.
    srv.args.clear();
    srv.start();
    assert_eq!(pool_json(&srv, "second")["state"], "draining");
    let deadline = Instant::now() + Duration::from_secs(60);
    while pool_json(&srv, "second")["state"] != "drained" {
        assert!(Instant::now() < deadline, "the drain did not finish");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        shard_files(&drives),
        0,
        "a drained pool's drives hold nothing"
    );
    let c = srv.client();
    for (key, body) in &objects {
        assert!(
            get_bytes(&c, "keep", key).await.unwrap() == *body,
            "{key} changed"
        );
    }
    let ranged = c
        .get_object()
        .bucket("keep")
        .key("multi")
        .range("bytes=5242000-5243000")
        .send()
        .await
        .unwrap();
    let ranged = ranged.body.collect().await.unwrap().into_bytes();
    assert!(ranged[..] == parts.concat()[5_242_000..=5_243_000]);
    let fsck = admin(&srv, &["fsck", "--json"]);
    assert_eq!(fsck["unrecoverable"], serde_json::json!([]), "{fsck}");
    assert_eq!(fsck["shards_bad"], 0, "{fsck}");
    assert_eq!(fsck["orphans"], 0, "no copy is left behind: {fsck}");
    // New objects go to the first pool now.
    put(&c, "keep", "after", content("after", 300_000)).await;
    assert_eq!(shard_files(&drives), 0);
}

//! `cybs3 admin usage` against a brute-force count over S3: buckets, storage classes
//! (a tier bound to a pool), versions, delete markers and an incomplete upload seeded
//! with aws-sdk-s3, then `admin usage --json` equals what ListObjectVersions and
//! ListMultipartUploads say. Ages and access use a one-second lifecycle day (the
//! server's `--lifecycle-day-secs`, which usage counts in): a prefix left unread for
//! 31 such days is cold and gets a saving with its lifecycle rule; one read stays hot.

mod common;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{BucketVersioningStatus, StorageClass};
use aws_sdk_s3::Client;
use common::*;
use cybs3_tests::Server;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// (objects, noncurrent versions, markers, uploads, current bytes, noncurrent bytes)
type Count = (i64, i64, i64, i64, i64, i64);

async fn brute(c: &Client, bucket: &str) -> BTreeMap<String, Count> {
    let mut by: BTreeMap<String, Count> = BTreeMap::new();
    let (mut key, mut vid) = (None, None);
    loop {
        let page = c
            .list_object_versions()
            .bucket(bucket)
            .max_keys(3)
            .set_key_marker(key)
            .set_version_id_marker(vid)
            .send()
            .await
            .unwrap();
        for v in page.versions() {
            let class = v.storage_class().map_or("STANDARD", |s| s.as_str());
            let e = by.entry(class.to_string()).or_default();
            match v.is_latest() == Some(true) {
                true => (e.0, e.4) = (e.0 + 1, e.4 + v.size().unwrap_or(0)),
                false => (e.1, e.5) = (e.1 + 1, e.5 + v.size().unwrap_or(0)),
            }
        }
        // Markers carry no class: they count as STANDARD, as the server keeps them.
        by.entry("STANDARD".into()).or_default().2 += page.delete_markers().len() as i64;
        if page.is_truncated() != Some(true) {
            break;
        }
        key = page.next_key_marker().map(str::to_string);
        vid = page.next_version_id_marker().map(str::to_string);
    }
    let ups = c
        .list_multipart_uploads()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    for u in ups.uploads() {
        let class = u.storage_class().map_or("STANDARD", |s| s.as_str());
        by.entry(class.to_string()).or_default().3 += 1;
    }
    by.retain(|_, c| *c != Count::default());
    by
}

fn usage(srv: &Server, args: &[&str]) -> Value {
    let mut all = vec!["admin", "usage", "--json"];
    all.extend(args);
    admin(srv, &all)
}

fn count(t: &Value) -> Count {
    let n = |k: &str| t[k].as_i64().unwrap();
    (
        n("objects"),
        n("noncurrent_versions"),
        n("delete_markers"),
        n("uploads"),
        n("current_bytes"),
        n("noncurrent_bytes"),
    )
}

fn classes(report: &Value) -> BTreeMap<String, Count> {
    report["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap().to_string(), count(c)))
        .filter(|(_, c)| *c != Count::default())
        .collect()
}

async fn put_class(c: &Client, b: &str, key: &str, len: usize, class: StorageClass) {
    c.put_object()
        .bucket(b)
        .key(key)
        .storage_class(class)
        .body(ByteStream::from(vec![3u8; len]))
        .send()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_counts_what_listings_show_and_prices_cold_prefixes() {
    let tmp = tempfile::tempdir().unwrap();
    let mut srv = Server::new(tmp.path(), 1, None);
    srv.args = vec!["--lifecycle-day-secs".into(), "1".into()];
    srv.start();
    let drives = srv.home.join("cold0").display().to_string();
    admin(&srv, &["admin", "pool", "add", "cold", "--drives", &drives]);
    admin(
        &srv,
        &["admin", "tier", "add", "STANDARD", "--pool", "main"],
    );
    admin(
        &srv,
        &["admin", "tier", "add", "GLACIER_IR", "--pool", "cold"],
    );
    let c = srv.client();

    // Unversioned: an overwrite and a delete.
    bucket(&c, "plain").await;
    put(&c, "plain", "photos/a.jpg", vec![1u8; 200_000]).await;
    put(&c, "plain", "photos/b.jpg", vec![2u8; 100_000]).await;
    put(&c, "plain", "photos/b.jpg", vec![2u8; 150_000]).await;
    put(&c, "plain", "docs/x.txt", vec![4u8; 1000]).await;
    put(&c, "plain", "gone", vec![5u8; 10]).await;
    c.delete_object()
        .bucket("plain")
        .key("gone")
        .send()
        .await
        .unwrap();
    put_class(
        &c,
        "plain",
        "archive/old.bin",
        5000,
        StorageClass::GlacierIr,
    )
    .await;

    // Versioned: versions, a marker, a noncurrent delete; an upload left open.
    bucket(&c, "ver").await;
    set_versioning(&c, "ver", BucketVersioningStatus::Enabled).await;
    put(&c, "ver", "k", vec![6u8; 10]).await;
    let v2 = c
        .put_object()
        .bucket("ver")
        .key("k")
        .body(ByteStream::from(vec![7u8; 20]))
        .send()
        .await
        .unwrap();
    put(&c, "ver", "k", vec![8u8; 30]).await;
    put(&c, "ver", "m", vec![9u8; 40]).await;
    c.delete_object()
        .bucket("ver")
        .key("m")
        .send()
        .await
        .unwrap();
    c.delete_object()
        .bucket("ver")
        .key("k")
        .version_id(v2.version_id().unwrap())
        .send()
        .await
        .unwrap();
    c.create_multipart_upload()
        .bucket("ver")
        .key("big")
        .send()
        .await
        .unwrap();

    let report = usage(&srv, &["--rescan"]);
    for b in ["plain", "ver"] {
        let one = usage(&srv, &["--bucket", b]);
        assert_eq!(classes(&one), brute(&c, b).await, "{b}: {one}");
    }
    let mut all = brute(&c, "plain").await;
    for (class, n) in brute(&c, "ver").await {
        let e = all.entry(class).or_default();
        *e = (
            e.0 + n.0,
            e.1 + n.1,
            e.2 + n.2,
            e.3 + n.3,
            e.4 + n.4,
            e.5 + n.5,
        );
    }
    assert_eq!(classes(&report), all, "{report}");
    // Raw bytes carry parity: one drive here (1+0), so never less than the bytes.
    assert!(
        report["total"]["raw_bytes"].as_i64().unwrap() >= 356_000,
        "{report}"
    );
    // The age bands split the objects (days are 1 s here, so how they split depends on
    // how long seeding took), and nothing is cold yet.
    let in_bands: i64 = report["ages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["objects"].as_i64().unwrap())
        .sum();
    assert_eq!(
        in_bands,
        report["total"]["objects"].as_i64().unwrap(),
        "{report}"
    );
    assert!(report["savings"].as_array().unwrap().is_empty(), "{report}");

    // 31 one-second days later, with docs/ read: photos/ is cold, docs/ hot.
    tokio::time::sleep(Duration::from_secs(31)).await;
    get(&c, "plain", "docs/x.txt").await;
    let mut later = Value::Null;
    for _ in 0..20 {
        later = usage(&srv, &["--bucket", "plain", "--rescan"]);
        let docs = prefix(&later, "docs/");
        if docs["hot"]["objects"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(prefix(&later, "docs/")["hot"]["objects"], 1, "{later}");
    let photos = prefix(&later, "photos/");
    assert_eq!(photos["cold"]["objects"], 2, "{later}");
    assert_eq!(photos["cold"]["bytes"], 350_000);
    assert_eq!(later["ages"][3]["objects"], later["total"]["objects"]);
    let saving = later["savings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["prefix"] == "photos/")
        .unwrap_or_else(|| panic!("{later}"))
        .clone();
    assert_eq!(saving["to_class"], "GLACIER_IR");
    assert_eq!(saving["configured"], true);
    assert_eq!(saving["bytes"], 350_000);
    let expected = 350_000.0 / (1u64 << 30) as f64 * (0.023 - 0.004);
    assert!((saving["monthly_saving"].as_f64().unwrap() - expected).abs() < 1e-9);
    let rule = &saving["rule"]["Rules"][0];
    assert_eq!(rule["Filter"]["Prefix"], "photos/");
    assert_eq!(rule["Transitions"][0]["StorageClass"], "GLACIER_IR");
    assert_eq!(rule["Transitions"][0]["Days"], 30);
    // docs/ was read: no saving for it.
    assert!(later["savings"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["prefix"] != "docs/"));

    // A price table from a file: GLACIER_IR at 0.001.
    let prices = tmp.path().join("prices.toml");
    std::fs::write(&prices, "[classes]\nGLACIER_IR = 0.001\n").unwrap();
    let priced = usage(
        &srv,
        &["--bucket", "plain", "--prices", prices.to_str().unwrap()],
    );
    let s = &priced["savings"][0];
    let expected = 350_000.0 / (1u64 << 30) as f64 * (0.023 - 0.001);
    assert!(
        (s["monthly_saving"].as_f64().unwrap() - expected).abs() < 1e-9,
        "{priced}"
    );

    // The rule is one PutBucketLifecycleConfiguration takes.
    let doc = tmp.path().join("rule.json");
    std::fs::write(&doc, saving["rule"].to_string()).unwrap();
    let out = std::process::Command::new("aws")
        .args(["--version"])
        .output();
    if out.is_ok_and(|o| o.status.success()) {
        let endpoint = srv.endpoint();
        let (ak, sk) = (srv.access_key.clone(), srv.secret_key.clone());
        let put = std::process::Command::new("aws")
            .env("AWS_ACCESS_KEY_ID", ak)
            .env("AWS_SECRET_ACCESS_KEY", sk)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .args([
                "s3api",
                "put-bucket-lifecycle-configuration",
                "--endpoint-url",
            ])
            .arg(&endpoint)
            .args(["--bucket", "plain", "--lifecycle-configuration"])
            .arg(format!("file://{}", doc.display()))
            .output()
            .unwrap();
        assert!(put.status.success(), "{put:?}");
    }
}

fn prefix<'a>(report: &'a Value, p: &str) -> &'a Value {
    report["scan"]["prefixes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["prefix"] == p)
        .unwrap_or_else(|| panic!("no {p} in {report}"))
}

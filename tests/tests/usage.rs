//! `cybs3 admin usage` against a brute-force count over S3: buckets, storage classes
//! (a tier bound to a pool), versions, delete markers and an incomplete upload seeded
//! with aws-sdk-s3, then `admin usage --json` equals what ListObjectVersions and
//! ListMultipartUploads say. Ages and access use a one-second lifecycle day (the
//! server's `--lifecycle-day-secs`, which usage counts in): a prefix left unread for
//! 31 such days is cold and gets a saving with its lifecycle rule; one read stays hot.
//!
//! The capacity forecast on a real history: a pool on a tmpfs of known size, grown by a
//! known amount each two-second usage day, must be forecast to fill when that amount and
//! the size say, within the forecast's band.

mod common;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{BucketVersioningStatus, StorageClass};
use aws_sdk_s3::Client;
use common::*;
use cybs3_tests::Server;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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

/// Seconds since the epoch.
fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Sleeps until `into` seconds past the next boundary of `day`-second days; returns the
/// boundary.
async fn next_day(day: f64, into: f64) -> f64 {
    let boundary = (now() / day).floor() * day + day;
    tokio::time::sleep(Duration::from_secs_f64(boundary + into - now())).await;
    boundary
}

fn pool<'a>(forecast: &'a Value, name: &str) -> &'a Value {
    forecast["pools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no pool {name} in {forecast}"))
}

/// The pool `small` is a 32 MiB tmpfs mounted in the server's own mount namespace
/// (`unshare`), so its size is known and nothing but the server writes to it; GLACIER_IR
/// is kept there. Each 2-second usage day, one second in (the server records the day's
/// totals as it begins), 2, 1, 3, 2, 1, 3, 2 MiB are written: 2 MiB a day on average,
/// with day-to-day noise, so the forecast has a band to be right within.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forecast_dates_the_fill_of_a_pool_growing_at_a_known_rate() {
    let probe = std::process::Command::new("unshare")
        .args(["-Urm", "true"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!("skipped: no `unshare -Urm` here (user and mount namespaces) for a tmpfs drive");
        return;
    }
    const DAY: f64 = 2.0;
    const SIZE: u64 = 32 << 20;
    let pattern = [2usize, 1, 3, 2, 1, 3, 2];
    let tmp = tempfile::tempdir().unwrap();
    let small = tmp.path().join("small");
    std::fs::create_dir(&small).unwrap();
    let mut srv = Server::new(tmp.path(), 1, None);
    srv.args = vec!["--lifecycle-day-secs".into(), "2".into()];
    srv.under = [
        "unshare",
        "-Urm",
        "sh",
        "-c",
        &format!("mount -t tmpfs -o size={SIZE} tmpfs \"$0\" && exec \"$@\""),
        small.to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec();
    srv.start();
    let drive = small.join("d0").display().to_string();
    admin(&srv, &["admin", "pool", "add", "small", "--drives", &drive]);
    admin(
        &srv,
        &["admin", "tier", "add", "GLACIER_IR", "--pool", "small"],
    );
    let c = srv.client();
    bucket(&c, "grow").await;
    let forecast = || usage(&srv, &["--forecast"]);

    let early = forecast();
    assert_eq!(
        pool(&early, "small")["fill"]["status"],
        "not_enough_history",
        "{early}"
    );

    let mut n = 0;
    for mib in pattern {
        next_day(DAY, 1.0).await;
        for _ in 0..mib {
            put_class(&c, "grow", &format!("o{n}"), MIB, StorageClass::GlacierIr).await;
            n += 1;
        }
    }
    // The last day's totals are taken as the next day begins.
    let last = next_day(DAY, 0.5).await;
    let f = forecast();
    let p = pool(&f, "small");
    assert_eq!(p["capacity_bytes"], SIZE, "{f}");
    assert_eq!(p["fill"]["status"], "fills", "{f}");

    // The known rate: the bytes written a day on average, as the pool's files hold them
    // (shard headers; one drive, no parity).
    let pools = admin(&srv, &["admin", "pool", "list", "--json"]);
    let on_disk = pools
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "small")
        .unwrap()["used_bytes"]
        .as_f64()
        .unwrap();
    let written: usize = pattern.iter().sum();
    // tmpfs holds a file in whole pages.
    let per_file = (on_disk / written as f64 / 4096.0).ceil() * 4096.0;
    let rate = per_file * written as f64 / pattern.len() as f64;
    let used = p["used_bytes"].as_f64().unwrap();
    let expected_at = last + (SIZE as f64 - used) / rate * DAY;
    let expected = (expected_at - f["as_of"].as_f64().unwrap()) / DAY;
    let fill = &p["fill"];
    let (lo, at, hi) = (
        fill["early_in_days"].as_f64().unwrap(),
        fill["in_days"].as_f64().unwrap(),
        fill["late_in_days"].as_f64().unwrap(),
    );
    eprintln!("forecast: fills in {at:.2} days (95 %: {lo:.2} to {hi:.2}); expected {expected:.2}");
    assert!(
        lo <= expected && expected <= hi,
        "{expected} not in [{lo}, {hi}]: {f}"
    );
    assert!(p["days"].as_u64().unwrap() >= 6, "{f}");
    let growth = p["growth_per_day"].as_f64().unwrap();
    assert!(
        (growth - rate).abs() < 0.25 * rate,
        "{growth} vs {rate}: {f}"
    );

    // The bucket grew by the same 2 MiB a day; its versions are all current, so the one
    // suggestion for the pool is a pool to add, sized for a year of its growth.
    let b = &f["buckets"][0];
    assert_eq!(b["name"], "grow");
    let logical = b["growth_per_day"].as_f64().unwrap();
    assert!(
        (logical - 2.0 * MIB as f64).abs() < 0.25 * 2.0 * MIB as f64,
        "{f}"
    );
    let add = f["suggestions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["pool"] == "small" && s["kind"] == "add_pool")
        .unwrap_or_else(|| panic!("{f}"));
    assert_eq!(add["postpones_days"], 365.0);

    // The human report says the same.
    let out = cybs3_tests::cybs3(&srv.home, &["admin", "usage", "--forecast"]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!("{text}");
    assert!(
        text.contains("POOL") && text.contains("small") && text.contains("95 %"),
        "{text}"
    );
    srv.stop();
}

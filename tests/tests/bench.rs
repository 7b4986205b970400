//! `cybs3 bench s3`, `sync` and `mount` end to end: tiny runs, their JSON documents, and
//! nothing left behind.

use cybs3_tests::{cybs3, Server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_s3_runs_reports_json_and_cleans_up() {
    let tmp = tempfile::tempdir().unwrap();
    let mut srv = Server::new(tmp.path(), 1, None);
    srv.start();
    let endpoint = srv.endpoint();
    // A separate home: the bench must go by the flags alone, not a local server record.
    let home = tmp.path().join("client");
    std::fs::create_dir_all(&home).unwrap();
    let out = cybs3(
        &home,
        &[
            "bench",
            "s3",
            "--endpoint",
            &endpoint,
            "--access-key",
            &srv.access_key,
            "--secret-key",
            &srv.secret_key,
            "--objects-mib",
            "2",
            "--large-count",
            "1",
            "--small-ops",
            "200",
            "--list-keys",
            "500",
            "--concurrency",
            "1,8",
            "--json",
        ],
    );
    let doc = report(&out, "s3");
    assert_eq!(doc["endpoint"], endpoint.as_str());
    assert!(doc["bucket"].as_str().unwrap().starts_with("cybs3-bench-"));
    let results = doc["results"].as_array().expect("results");
    let find = |name: &str| row(results, name);
    for r in results {
        assert!(r["value"].as_f64().unwrap() > 0.0, "{r}");
        assert!(r["unit"].is_string(), "{r}");
    }
    let get = find("2 MiB GET");
    assert_eq!(get["unit"], "MB/s");
    assert_eq!(get["reference"], "engine GET");
    assert!(get["ratio"].as_f64().unwrap() > 0.0);
    assert_eq!(find("2 MiB PUT")["reference"], "engine PUT");
    find("engine PUT 2 MiB, 1 drive (reference)");
    find("engine GET 2 MiB, 1 drive (reference)");
    // Tests run as root: the disk's cold read is measured, and the cold GET set against it.
    find("disk sequential read, cold (reference)");
    assert_eq!(
        find("2 MiB GET, cold, vs the disk")["reference"],
        "disk sequential read, cold"
    );
    for conc in [1, 8] {
        for op in ["PUT", "GET", "HEAD"] {
            let r = find(&format!("4 KiB {op}, concurrency {conc}"));
            assert_eq!(r["unit"], "ops/s");
            let (p50, p99) = (r["p50_ms"].as_f64().unwrap(), r["p99_ms"].as_f64().unwrap());
            assert!(p50 > 0.0 && p99 >= p50, "{r}");
        }
    }
    // SSE-S3 next to the same requests unencrypted.
    for (name, reference) in [
        ("2 MiB PUT, SSE-S3", "the same PUT unencrypted"),
        ("2 MiB GET, SSE-S3", "the same GET unencrypted"),
        (
            "4 KiB PUT, concurrency 32, SSE-S3",
            "the same PUT unencrypted",
        ),
        (
            "4 KiB GET, concurrency 32, SSE-S3",
            "the same GET unencrypted",
        ),
    ] {
        let r = find(name);
        assert_eq!(r["reference"], reference, "{r}");
        assert!(r["ratio"].as_f64().unwrap() > 0.0, "{r}");
    }
    // A webhook target and the audit log, next to a server with both off.
    let hook = find("4 KiB PUT, concurrency 32, one webhook target, audit on");
    assert_eq!(
        hook["reference"],
        "the same PUTs to a server with both off (median of 3, alternating)"
    );
    assert!(hook["ratio"].as_f64().unwrap() > 0.0, "{hook}");
    // GETs while /metrics is scraped every second, next to none.
    let scraped = find("4 KiB GET, concurrency 32, /metrics scraped every second");
    assert_eq!(
        scraped["reference"],
        "the same GETs with no scraper (median of 3, alternating)"
    );
    assert!(scraped["ratio"].as_f64().unwrap() > 0.0, "{scraped}");
    let delivered = find("webhook events delivered (from a run's first PUT to its last delivery)");
    assert_eq!(delivered["unit"], "events/s");
    // Replication to a second server: its lag, and a large object next to a plain copy.
    let lag = find("replication lag of 4 KiB PUTs at concurrency 32 to a second server, p99");
    assert_eq!(lag["unit"], "s");
    assert!(lag["p99_ms"].as_f64().unwrap() >= lag["p50_ms"].as_f64().unwrap());
    let large = find("replication of one 2 MiB object to a second server");
    assert_eq!(
        large["reference"],
        "a plain copy between the same servers (streamed GET into a multipart PUT)"
    );
    assert!(large["ratio"].as_f64().unwrap() > 0.0, "{large}");
    assert_eq!(
        find("ListObjectsV2 500 keys (pages of 1000)")["unit"],
        "keys/s"
    );

    let buckets = srv.client().list_buckets().send().await.unwrap();
    let left: Vec<_> = buckets
        .buckets()
        .iter()
        .filter_map(|b| b.name())
        .filter(|n| n.starts_with("cybs3-bench-"))
        .collect();
    assert!(left.is_empty(), "bench buckets left behind: {left:?}");
    srv.stop();
}

/// `cybs3 bench sync` end to end with tiny sizes against `cybs3 vaults local`: every row
/// present with a positive value, and nothing left in the vault's bucket afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_sync_runs_reports_json_and_cleans_up() {
    let lv = cybs3_tests::LocalVault::new();
    let out = cybs3(
        &lv.home,
        &[
            "bench",
            "sync",
            "--large-mib",
            "16",
            "--small-files",
            "50",
            "--json",
        ],
    );
    let doc = report(&out, "sync");
    assert_eq!(doc["vault"], "local");
    assert_eq!(doc["endpoint"], lv.endpoint().as_str());
    let results = doc["results"].as_array().expect("results");
    for r in results {
        assert!(r["value"].as_f64().unwrap() > 0.0, "{r}");
        assert!(r["unit"].is_string(), "{r}");
    }
    let find = |name: &str| row(results, name);
    let (large, small) = ("16 MiB in 8 files", "50 files");
    let unit_of = |label: &str| if label == large { "MB/s" } else { "files/s" };
    for (label, unit) in [(large, "MB/s"), (small, "files/s")] {
        find(&format!("disk write+fsync, {label} (ref)"));
        assert_eq!(find(&format!("raw S3 PUT, {label} (ref)"))["unit"], unit);
        find(&format!("raw S3 GET, {label} (ref)"));
        for (dir, op) in [("up", "PUT"), ("down", "GET")] {
            let plain = find(&format!("sync {dir}, {label}, plain"));
            assert_eq!(plain["unit"], unit);
            assert_eq!(plain["reference"], format!("raw S3 {op}"));
            assert!(plain["ratio"].as_f64().unwrap() > 0.0);
            let enc = find(&format!("sync {dir}, {label}, encrypted"));
            assert_eq!(enc["reference"], format!("plain sync {dir}"));
            assert!(enc["ratio"].as_f64().unwrap() > 0.0);
        }
    }
    // rclone, where it is installed, copies the same trees in the same run, and each sync
    // row says how it compares.
    if doc["rclone"].is_string() {
        for label in [large, small] {
            for dir in ["up", "down"] {
                for (kind, tool) in [("plain", "rclone"), ("encrypted", "rclone crypt")] {
                    assert_eq!(
                        find(&format!("{tool} copy {dir}, {label} (ref)"))["unit"],
                        unit_of(label)
                    );
                    let sync = find(&format!("sync {dir}, {label}, {kind}"));
                    assert_eq!(sync["also_reference"], format!("{tool} copy {dir}"));
                    assert!(sync["also_ratio"].as_f64().unwrap() > 0.0);
                }
            }
        }
    }
    for dir in ["up", "down"] {
        let t = find(&format!("sync {dir}, {small}, encrypted: time"));
        assert_eq!(t["unit"], "s");
        assert_eq!(t["reference"], "10 s target");
    }
    let targets = &doc["targets"];
    // The cost judged is the median of the rounds' pairs, one per round.
    for dir in ["up", "down"] {
        let mut each: Vec<f64> = targets["encryption_cost_large_rounds"][dir]
            .as_array()
            .unwrap_or_else(|| panic!("no rounds {dir}: {targets}"))
            .iter()
            .map(|c| c.as_f64().unwrap())
            .collect();
        assert_eq!(each.len() as u64, doc["rounds"].as_u64().unwrap());
        each.sort_by(f64::total_cmp);
        let half = each.len() / 2;
        let median = if each.len().is_multiple_of(2) {
            (each[half - 1] + each[half]) / 2.0
        } else {
            each[half]
        };
        // JSON numbers parse back to within a rounding of what was printed.
        let judged = targets[format!("encryption_cost_large_{dir}")]
            .as_f64()
            .unwrap();
        assert!((judged - median).abs() < 1e-12, "{targets}");
    }
    assert!(targets["small_encrypted_down_seconds"].as_f64().unwrap() > 0.0);

    let (key, secret) = lv.root_keys();
    let client = vault_client(&lv.endpoint(), &key, &secret);
    let bucket = lv.vault_json("local")["bucket"]
        .as_str()
        .expect("bucket")
        .to_string();
    let left = client
        .list_objects_v2()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    assert_eq!(
        left.key_count(),
        Some(0),
        "left behind: {:?}",
        left.contents()
    );
    let uploads = client
        .list_multipart_uploads()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    assert!(uploads.uploads().is_empty(), "{:?}", uploads.uploads());
}

/// `bench mount` makes, mounts and removes its own scratch server; with rclone installed,
/// rclone's mounts run the same rows and each cybs3 mount row gives its ratio to rclone's.
#[test]
fn bench_mount_runs_reports_json_and_cleans_up() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let scratch = tmp.path().join("scratch");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(&scratch).unwrap();
    let out = cybs3(
        &home,
        &[
            "bench",
            "mount",
            "--dir",
            scratch.to_str().unwrap(),
            "--size-mib",
            "4",
            "--small-files",
            "20",
            "--random-reads",
            "20",
            "--json",
        ],
    );
    let doc = report(&out, "mount");
    let results = doc["results"].as_array().expect("results");
    let find = |name: &str| row(results, name);
    let ours = |kind: &str| {
        [
            format!("mount write+close, 4 MiB, {kind}"),
            format!("mount read, cold, 4 MiB, {kind}, median"),
            format!("mount 4 KiB random read, cold, {kind}"),
            format!("create 1 KiB, 16 writers, 20 files, {kind}"),
            format!("stat after TTL, 20 files, {kind}"),
            format!("ls -l cold, 20 files, {kind}"),
            format!("unlink, 20 files, {kind}"),
        ]
    };
    for kind in ["plain", "encrypted"] {
        for name in ours(kind) {
            assert!(find(&name)["value"].as_f64().unwrap() >= 0.0);
        }
    }
    if doc["rclone"].is_string() {
        for (kind, tool) in [("plain", "rclone"), ("encrypted", "rclone crypt")] {
            let theirs = [
                format!("rclone mount write+close+upload, 4 MiB, {tool} (ref)"),
                format!("rclone mount read, cold, 4 MiB, {tool}, median (ref)"),
                format!("rclone mount 4 KiB random read, cold, {tool} (ref)"),
                format!("create 1 KiB, 16 writers, 20 files, {tool} (close, upload pending) (ref)"),
                format!("stat after TTL, 20 files, {tool} (ref)"),
                format!("ls -l cold, 20 files, {tool} (ref)"),
                format!("unlink, 20 files, {tool} (ref)"),
            ];
            for (mine, theirs) in ours(kind).iter().zip(&theirs) {
                let (m, t) = (find(mine), find(theirs));
                assert_eq!(m["also_reference"], format!("{tool} mount"), "{m}");
                let ratio = m["value"].as_f64().unwrap() / t["value"].as_f64().unwrap();
                assert!(
                    (m["also_ratio"].as_f64().unwrap() - ratio).abs() < 1e-9,
                    "{m} vs {t}"
                );
            }
            assert_eq!(
                find(&format!("  upload landed after the creates, {tool}"))["unit"],
                "s"
            );
        }
    }
    // Servers, mounts and files: all gone with the scratch directory.
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    assert!(
        !mounts.contains(scratch.to_str().unwrap()),
        "left mounted: {mounts}"
    );
    let left: Vec<_> = std::fs::read_dir(&scratch).unwrap().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// A bench's JSON document, from a run that must have succeeded.
fn report(out: &std::process::Output, bench: &str) -> serde_json::Value {
    assert!(
        out.status.success(),
        "bench failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(doc["bench"], bench);
    doc
}

/// The result row named `name`.
fn row<'a>(results: &'a [serde_json::Value], name: &str) -> &'a serde_json::Value {
    results
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no row {name:?} in {results:?}"))
}

fn vault_client(endpoint: &str, key: &str, secret: &str) -> aws_sdk_s3::Client {
    use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new(key, secret, None, None, "cybs3-tests"))
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

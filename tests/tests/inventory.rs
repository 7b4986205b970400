//! S3 Inventory against a real server: configurations through aws-sdk-s3 with AWS's
//! errors, reports made by `cybs3 admin inventory run` (CSV and Parquet, current
//! versions and all of them, a prefix filter, optional fields) read back with pyarrow
//! and compared row by row with the bucket's listing, their manifest.json and
//! manifest.checksum, and reports made on schedule with a short lifecycle day, kept
//! across a restart.

mod common;

use aws_sdk_s3::types::{
    BucketVersioningStatus, InventoryConfiguration, InventoryDestination, InventoryFilter,
    InventoryFormat, InventoryFrequency, InventoryIncludedObjectVersions, InventoryOptionalField,
    InventoryS3BucketDestination, InventorySchedule,
};
use aws_sdk_s3::Client;
use common::*;
use cybs3_tests::{cybs3, Server};
use std::path::Path;
use std::time::{Duration, Instant};

/// Reads report files with pyarrow and prints their rows as JSON, each cell normalised:
/// CSV cells typed like Parquet's (booleans, sizes, times as Unix milliseconds), CSV
/// keys URL-decoded (the raw cell kept as `raw_key`).
const READ_REPORT: &str = r#"
import json, re, sys, urllib.parse, datetime
import pyarrow as pa, pyarrow.csv as pcsv, pyarrow.parquet as pq
fmt, schema, paths = sys.argv[1], sys.argv[2], sys.argv[3:]
rows = []
for path in paths:
    if fmt == "Parquet":
        t = pq.read_table(path)
        t = pa.table({n: (c.cast(pa.int64()) if pa.types.is_timestamp(c.type) else c)
                      for n, c in zip(t.column_names, t.columns)})
        rows += t.to_pylist()
        continue
    names = [re.sub(r"(?<!^)(?=[A-Z][a-z])", "_", n).lower() for n in schema.split(", ")]
    t = pcsv.read_csv(path, read_options=pcsv.ReadOptions(column_names=names),
                      convert_options=pcsv.ConvertOptions(
                          column_types={n: pa.string() for n in names},
                          strings_can_be_null=False, quoted_strings_can_be_null=False))
    for r in t.to_pylist():
        out = {}
        for n, v in r.items():
            if v == "":
                v = None
            elif n == "key":
                out["raw_key"] = v
                v = urllib.parse.unquote_plus(v)
            elif n.startswith("is_"):
                assert v in ("true", "false"), v
                v = v == "true"
            elif n == "size":
                v = int(v)
            elif n in ("last_modified_date", "object_lock_retain_until_date"):
                v = int(datetime.datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp() * 1000)
            out[n] = v
        rows.append(out)
print(json.dumps(rows))
"#;

fn dest(bucket: &str, prefix: Option<&str>, format: InventoryFormat) -> InventoryDestination {
    InventoryDestination::builder()
        .s3_bucket_destination(
            InventoryS3BucketDestination::builder()
                .bucket(format!("arn:aws:s3:::{bucket}"))
                .set_prefix(prefix.map(str::to_string))
                .format(format)
                .build()
                .unwrap(),
        )
        .build()
}

fn config(
    id: &str,
    enabled: bool,
    format: InventoryFormat,
    versions: InventoryIncludedObjectVersions,
    prefix: Option<&str>,
    fields: &[InventoryOptionalField],
) -> InventoryConfiguration {
    InventoryConfiguration::builder()
        .id(id)
        .is_enabled(enabled)
        .destination(dest("reports", Some("inv"), format))
        .set_filter(prefix.map(|p| InventoryFilter::builder().prefix(p).build().unwrap()))
        .included_object_versions(versions)
        .set_optional_fields(Some(fields.to_vec()))
        .schedule(
            InventorySchedule::builder()
                .frequency(InventoryFrequency::Daily)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap()
}

async fn put_config(c: &Client, bucket: &str, cfg: InventoryConfiguration) {
    c.put_bucket_inventory_configuration()
        .bucket(bucket)
        .id(cfg.id())
        .inventory_configuration(cfg)
        .send()
        .await
        .unwrap();
}

/// A versioned bucket with a null version, several versions of a key, a delete marker
/// over a key that needs URL-encoding, a multipart object and a key outside `docs/`.
async fn seed(c: &Client) {
    bucket(c, "src").await;
    bucket(c, "reports").await;
    put(c, "src", "docs/null.txt", "from before versioning").await;
    set_versioning(c, "src", BucketVersioningStatus::Enabled).await;
    put(c, "src", "docs/a.txt", "one").await;
    put(c, "src", "docs/a.txt", "two!").await;
    put(c, "src", "docs/b c+d\"e.txt", "plus and space").await;
    c.delete_object()
        .bucket("src")
        .key("docs/b c+d\"e.txt")
        .send()
        .await
        .unwrap();
    put(c, "src", "other/x", "outside the filter").await;
    put_multipart(
        c,
        "src",
        "docs/big",
        vec![vec![1u8; 5 * MIB], vec![2u8; 1000]],
    )
    .await;
}

async fn get_bytes(c: &Client, bucket: &str, key: &str) -> Vec<u8> {
    let out = c.get_object().bucket(bucket).key(key).send().await;
    let out = out.unwrap_or_else(|e| panic!("{bucket}/{key}: {e:?}"));
    out.body.collect().await.unwrap().into_bytes().to_vec()
}

/// `admin inventory run BUCKET ID --json`, then the manifest it names, checked against
/// its checksum and data files, and the data files' rows (read by pyarrow).
async fn run_and_read(
    srv: &Server,
    c: &Client,
    id: &str,
    dir: &Path,
) -> (serde_json::Value, Vec<serde_json::Value>) {
    let run = admin(srv, &["admin", "inventory", "run", "src", id, "--json"]);
    assert_eq!(run["destination_bucket"], "reports");
    let manifest_key = run["manifest_key"].as_str().unwrap();
    let folder = format!("inv/src/{id}/");
    assert!(
        manifest_key.starts_with(&folder) && manifest_key.ends_with("Z/manifest.json"),
        "{manifest_key}"
    );
    let json = get_bytes(c, "reports", manifest_key).await;
    let checksum_key = manifest_key.replace("manifest.json", "manifest.checksum");
    let checksum = get_bytes(c, "reports", &checksum_key).await;
    assert_eq!(String::from_utf8(checksum).unwrap(), md5_hex(&json));
    let m: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(m["sourceBucket"], "src");
    assert_eq!(m["destinationBucket"], "arn:aws:s3:::reports");
    assert_eq!(m["version"], "2016-11-30");
    let created: u64 = m["creationTimestamp"].as_str().unwrap().parse().unwrap();
    assert!(created > 1_700_000_000_000, "milliseconds: {created}");
    let format = m["fileFormat"].as_str().unwrap().to_string();
    let mut paths = Vec::new();
    for (i, f) in m["files"].as_array().unwrap().iter().enumerate() {
        let key = f["key"].as_str().unwrap();
        assert!(key.starts_with(&format!("{folder}data/")), "{key}");
        let ext = if format == "CSV" {
            ".csv.gz"
        } else {
            ".parquet"
        };
        assert!(key.ends_with(ext), "{key}");
        let bytes = get_bytes(c, "reports", key).await;
        assert_eq!(f["size"], bytes.len() as u64);
        assert_eq!(f["MD5checksum"].as_str().unwrap(), md5_hex(&bytes));
        let path = dir.join(format!("{id}-{i}{ext}"));
        std::fs::write(&path, bytes).unwrap();
        paths.push(path.to_str().unwrap().to_string());
    }
    let schema = m["fileSchema"].as_str().unwrap();
    let mut cmd = std::process::Command::new("python3");
    cmd.args(["-c", READ_REPORT, &format, schema]).args(&paths);
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "pyarrow: {out:?}");
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    (m, rows)
}

/// One listed version: what each report row must say about it.
#[derive(Debug, PartialEq)]
struct Listed {
    key: String,
    version_id: String,
    is_latest: bool,
    is_delete_marker: bool,
    size: Option<i64>,
    etag: Option<String>,
    last_modified_secs: i64,
}

async fn listed_versions(c: &Client, prefix: &str) -> Vec<Listed> {
    let out = c
        .list_object_versions()
        .bucket("src")
        .prefix(prefix)
        .send()
        .await
        .unwrap();
    let mut all: Vec<Listed> = out
        .versions()
        .iter()
        .map(|v| Listed {
            key: v.key().unwrap().into(),
            version_id: v.version_id().unwrap().into(),
            is_latest: v.is_latest().unwrap(),
            is_delete_marker: false,
            size: v.size(),
            etag: v.e_tag().map(|e| e.trim_matches('"').to_string()),
            last_modified_secs: v.last_modified().unwrap().secs(),
        })
        .collect();
    all.extend(out.delete_markers().iter().map(|d| Listed {
        key: d.key().unwrap().into(),
        version_id: d.version_id().unwrap().into(),
        is_latest: d.is_latest().unwrap(),
        is_delete_marker: true,
        size: None,
        etag: None,
        last_modified_secs: d.last_modified().unwrap().secs(),
    }));
    all.sort_by(|a, b| (&a.key, &a.version_id).cmp(&(&b.key, &b.version_id)));
    all
}

fn row_as_listed(r: &serde_json::Value) -> Listed {
    Listed {
        key: r["key"].as_str().unwrap().into(),
        version_id: r["version_id"].as_str().unwrap_or("").into(),
        is_latest: r["is_latest"].as_bool().unwrap_or(true),
        is_delete_marker: r["is_delete_marker"].as_bool().unwrap_or(false),
        size: r["size"].as_i64(),
        etag: r["e_tag"].as_str().map(str::to_string),
        last_modified_secs: r["last_modified_date"].as_i64().unwrap() / 1000,
    }
}

fn sorted(mut rows: Vec<Listed>) -> Vec<Listed> {
    rows.sort_by(|a, b| (&a.key, &a.version_id).cmp(&(&b.key, &b.version_id)));
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_match_the_listing_in_csv_and_parquet() {
    let (tmp, srv, c) = setup();
    seed(&c).await;
    use InventoryOptionalField as F;
    // Disabled: the schedule leaves them alone, `admin inventory run` makes them anyway.
    let all_fields = [
        F::Size,
        F::LastModifiedDate,
        F::ETag,
        F::StorageClass,
        F::IsMultipartUploaded,
        F::EncryptionStatus,
        F::ObjectLockLegalHoldStatus,
    ];
    let csv_all = config(
        "csv-all",
        false,
        InventoryFormat::Csv,
        InventoryIncludedObjectVersions::All,
        Some("docs/"),
        &all_fields,
    );
    put_config(&c, "src", csv_all.clone()).await;
    let current_fields = [F::Size, F::LastModifiedDate, F::ETag, F::StorageClass];
    put_config(
        &c,
        "src",
        config(
            "pq-current",
            false,
            InventoryFormat::Parquet,
            InventoryIncludedObjectVersions::Current,
            None,
            &current_fields,
        ),
    )
    .await;
    put_config(
        &c,
        "src",
        config(
            "pq-all",
            false,
            InventoryFormat::Parquet,
            InventoryIncludedObjectVersions::All,
            Some("docs/"),
            &all_fields,
        ),
    )
    .await;

    // Get and List give back what was put.
    let got = c
        .get_bucket_inventory_configuration()
        .bucket("src")
        .id("csv-all")
        .send()
        .await
        .unwrap();
    let got = got.inventory_configuration().unwrap();
    assert_eq!(got.optional_fields(), &all_fields[..]);
    assert_eq!(got.filter().unwrap().prefix(), "docs/");
    assert_eq!(
        got.destination()
            .unwrap()
            .s3_bucket_destination()
            .unwrap()
            .bucket(),
        "arn:aws:s3:::reports"
    );
    let listed = c
        .list_bucket_inventory_configurations()
        .bucket("src")
        .send()
        .await
        .unwrap();
    let ids: Vec<&str> = listed
        .inventory_configuration_list()
        .iter()
        .map(|c| c.id())
        .collect();
    assert_eq!(ids, ["csv-all", "pq-all", "pq-current"]);
    assert_eq!(listed.is_truncated(), Some(false));

    let docs = listed_versions(&c, "docs/").await;
    assert_eq!(docs.len(), 6, "{docs:?}");

    // CSV, every version under docs/.
    let (m, rows) = run_and_read(&srv, &c, "csv-all", tmp.path()).await;
    assert_eq!(m["fileFormat"], "CSV");
    assert_eq!(
        m["fileSchema"],
        "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, LastModifiedDate, ETag, \
         StorageClass, IsMultipartUploaded, EncryptionStatus, ObjectLockLegalHoldStatus"
    );
    assert_eq!(sorted(rows.iter().map(row_as_listed).collect()), docs);
    for r in &rows {
        assert_eq!(r["bucket"], "src");
        let marker = r["is_delete_marker"] == true;
        let key = r["key"].as_str().unwrap();
        if key == "docs/b c+d\"e.txt" {
            assert_eq!(
                r["raw_key"], "docs/b+c%2Bd%22e.txt",
                "URL-encoded as AWS does"
            );
        }
        if marker {
            assert!(r["storage_class"].is_null() && r["size"].is_null(), "{r}");
            continue;
        }
        assert_eq!(r["storage_class"], "STANDARD");
        assert_eq!(r["is_multipart_uploaded"], key == "docs/big", "{r}");
        assert_eq!(r["encryption_status"], "NOT-SSE");
        assert_eq!(r["object_lock_legal_hold_status"], "OFF");
    }
    let null = rows.iter().find(|r| r["key"] == "docs/null.txt").unwrap();
    assert_eq!(null["version_id"], "null");

    // Parquet, every version under docs/: the same rows.
    let (m, rows) = run_and_read(&srv, &c, "pq-all", tmp.path()).await;
    assert_eq!(m["fileFormat"], "Parquet");
    let schema = m["fileSchema"].as_str().unwrap();
    assert!(
        schema.starts_with(
            "message s3.inventory { required binary bucket (UTF8); required binary key (UTF8); \
             optional binary version_id (UTF8); optional boolean is_latest;"
        ),
        "{schema}"
    );
    assert_eq!(sorted(rows.iter().map(row_as_listed).collect()), docs);
    let big = rows.iter().find(|r| r["key"] == "docs/big").unwrap();
    assert_eq!(big["is_multipart_uploaded"], true);
    assert_eq!(big["size"], 5 * MIB as u64 + 1000);

    // Parquet, current versions of the whole bucket: no version columns.
    let (_, rows) = run_and_read(&srv, &c, "pq-current", tmp.path()).await;
    let current = c.list_objects_v2().bucket("src").send().await.unwrap();
    let mut expected: Vec<(String, i64, String)> = current
        .contents()
        .iter()
        .map(|o| {
            (
                o.key().unwrap().to_string(),
                o.size().unwrap(),
                o.e_tag().unwrap().trim_matches('"').to_string(),
            )
        })
        .collect();
    expected.sort();
    let mut got: Vec<(String, i64, String)> = rows
        .iter()
        .map(|r| {
            assert!(r.get("version_id").is_none() && r.get("is_latest").is_none());
            (
                r["key"].as_str().unwrap().to_string(),
                r["size"].as_i64().unwrap(),
                r["e_tag"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(got, expected);
    assert_eq!(got.len(), 4, "a.txt, big, null.txt, other/x: {got:?}");

    // A report of a configuration that is not there.
    let out = cybs3(&srv.home, &["admin", "inventory", "run", "src", "nope"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no inventory configuration nope"));

    // Delete, then Get answers NoSuchConfiguration.
    c.delete_bucket_inventory_configuration()
        .bucket("src")
        .id("csv-all")
        .send()
        .await
        .unwrap();
    let r = c
        .get_bucket_inventory_configuration()
        .bucket("src")
        .id("csv-all")
        .send()
        .await;
    assert_eq!(fails(r), (404, "NoSuchConfiguration".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configurations_are_refused_with_awss_codes() {
    let (_t, srv, c) = setup();
    bucket(&c, "src").await;
    bucket(&c, "reports").await;
    let good = || {
        config(
            "daily",
            true,
            InventoryFormat::Csv,
            InventoryIncludedObjectVersions::Current,
            None,
            &[],
        )
    };
    let put = |id: &str, cfg: InventoryConfiguration| {
        c.put_bucket_inventory_configuration()
            .bucket("src")
            .id(id)
            .inventory_configuration(cfg)
            .send()
    };
    // The Id in the body is not the one in the query.
    assert_eq!(
        fails(put("other", good()).await),
        (400, "InvalidArgument".into())
    );
    // A destination that is not a bucket here, or not an S3 bucket ARN.
    let mut cfg = good();
    cfg.destination = Some(dest("nowhere", None, InventoryFormat::Csv));
    assert_eq!(
        fails(put("daily", cfg).await),
        (400, "InvalidS3DestinationBucket".into())
    );
    let mut cfg = good();
    cfg.destination = Some(
        InventoryDestination::builder()
            .s3_bucket_destination(
                InventoryS3BucketDestination::builder()
                    .bucket("reports")
                    .format(InventoryFormat::Csv)
                    .build()
                    .unwrap(),
            )
            .build(),
    );
    assert_eq!(
        fails(put("daily", cfg).await),
        (400, "InvalidS3DestinationBucket".into())
    );
    // ORC is AWS's, not ours: said plainly.
    let mut cfg = good();
    cfg.destination = Some(dest("reports", None, InventoryFormat::Orc));
    assert_eq!(
        fails(put("daily", cfg).await),
        (501, "NotImplemented".into())
    );
    // A missing configuration.
    let r = c
        .get_bucket_inventory_configuration()
        .bucket("src")
        .id("daily")
        .send()
        .await;
    assert_eq!(fails(r), (404, "NoSuchConfiguration".into()));
    let r = c
        .delete_bucket_inventory_configuration()
        .bucket("src")
        .id("daily")
        .send()
        .await;
    assert_eq!(fails(r), (404, "NoSuchConfiguration".into()));

    // Bad XML: an unknown optional field, and a document that is not XML at all.
    let signer = Signer::new(&srv.access_key, &srv.secret_key);
    let send = |body: &str| {
        let len = body.len().to_string();
        let query = [("id", "daily"), ("inventory", "")];
        let headers = [("content-length", len.as_str())];
        let signed = signer.sign(
            "PUT",
            "/src",
            &query,
            &headers,
            &sha256_hex(body.as_bytes()),
            srv.port,
        );
        let mut req = signed.head("PUT", "/src?id=daily&inventory=");
        req.extend_from_slice(body.as_bytes());
        raw_exchange(srv.port, &req).expect("an answer")
    };
    let doc = |field: &str| {
        format!(
            "<InventoryConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
             <Destination><S3BucketDestination><Bucket>arn:aws:s3:::reports</Bucket>\
             <Format>CSV</Format></S3BucketDestination></Destination>\
             <IsEnabled>true</IsEnabled><Id>daily</Id>\
             <IncludedObjectVersions>Current</IncludedObjectVersions>\
             <OptionalFields><Field>{field}</Field></OptionalFields>\
             <Schedule><Frequency>Daily</Frequency></Schedule></InventoryConfiguration>"
        )
    };
    let r = send(&doc("Size"));
    assert_eq!(r.status, 200, "{}", r.text());
    let r = send(&doc("Colour"));
    assert_eq!((r.status, r.code().as_deref()), (400, Some("MalformedXML")));
    let r = send("<InventoryConfiguration><Id>daily");
    assert_eq!((r.status, r.code().as_deref()), (400, Some("MalformedXML")));
}

/// The data files written so far for configuration `id` of `src`.
async fn data_files(c: &Client, id: &str) -> usize {
    let out = c
        .list_objects_v2()
        .bucket("reports")
        .prefix(format!("src/{id}/data/"))
        .send()
        .await
        .unwrap();
    out.contents().len()
}

async fn wait_for_files(c: &Client, id: &str, n: usize, within: Duration) -> Duration {
    let start = Instant::now();
    while data_files(c, id).await < n {
        assert!(
            start.elapsed() < within,
            "{n} reports of {id} within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    start.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_are_made_on_schedule_and_a_restart_keeps_it() {
    let tmp = tempfile::tempdir().unwrap();
    let mut srv = Server::new(tmp.path(), 1, None);
    // A 20-second day: a report a day, looked for every 2 seconds.
    srv.args = vec!["--lifecycle-day-secs".into(), "20".into()];
    srv.start();
    let c = srv.client();
    bucket(&c, "src").await;
    bucket(&c, "reports").await;
    put(&c, "src", "k", "v").await;
    let mut cfg = config(
        "sched",
        true,
        InventoryFormat::Csv,
        InventoryIncludedObjectVersions::Current,
        None,
        &[],
    );
    cfg.destination = Some(dest("reports", None, InventoryFormat::Csv));
    put_config(&c, "src", cfg).await;
    // A new configuration's first report comes at the next look.
    wait_for_files(&c, "sched", 1, Duration::from_secs(15)).await;
    let first = Instant::now();
    // Restarted within the day: the last run is kept, so no report until the day is over.
    srv.stop();
    srv.start();
    let c = srv.client();
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(
        data_files(&c, "sched").await,
        1,
        "no second report within the day"
    );
    wait_for_files(&c, "sched", 2, Duration::from_secs(30)).await;
    let gap = first.elapsed();
    assert!(gap >= Duration::from_secs(17), "a day apart: {gap:?}");
}

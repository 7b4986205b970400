//! S3 Select against the real server: tests/python/s3_select.py runs each query through
//! boto3's `select_object_content` and the same query through DuckDB over the local
//! files (CSV, JSON lines and documents, Parquet; plain, gzip and bzip2), ScanRange
//! windows, AWS's error codes, Stats and Progress events and an SSE-C object. Here,
//! aws-sdk-s3's event stream parser on a query, the access check (s3:GetObject), and a
//! query over an object larger than 1 GiB with the server's memory measured.

mod common;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    CompletedMultipartUpload, CompletedPart, CsvInput, CsvOutput, ExpressionType, FileHeaderInfo,
    InputSerialization, JsonOutput, OutputSerialization, SelectObjectContentEventStream,
};
use aws_sdk_s3::Client;
use common::*;
use cybs3_tests::{cybs3, Server};

async fn select_count(c: &Client, bucket: &str, key: &str) -> Result<String, (u16, String)> {
    let out = c
        .select_object_content()
        .bucket(bucket)
        .key(key)
        .expression(
            "SELECT COUNT(*) AS n, MAX(CAST(b AS INT)) AS top FROM S3Object WHERE a LIKE 'x%'",
        )
        .expression_type(ExpressionType::Sql)
        .input_serialization(
            InputSerialization::builder()
                .csv(
                    CsvInput::builder()
                        .file_header_info(FileHeaderInfo::Use)
                        .build(),
                )
                .build(),
        )
        .output_serialization(
            OutputSerialization::builder()
                .json(JsonOutput::builder().build())
                .build(),
        )
        .send()
        .await;
    let mut out = match out {
        Ok(out) => out,
        Err(e) => return Err(status_code(&e)),
    };
    let mut text = String::new();
    let mut stats = false;
    let mut ended = false;
    while let Some(ev) = out.payload.recv().await.expect("event stream") {
        match ev {
            SelectObjectContentEventStream::Records(r) => {
                text.push_str(std::str::from_utf8(r.payload().unwrap().as_ref()).unwrap())
            }
            SelectObjectContentEventStream::Stats(s) => {
                let d = s.details().unwrap();
                assert!(d.bytes_scanned().unwrap() > 0, "{d:?}");
                stats = true;
            }
            SelectObjectContentEventStream::End(_) => ended = true,
            _ => {}
        }
    }
    assert!(stats && ended, "Stats and End events");
    Ok(text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn select_object_content() {
    let tmp = tempfile::tempdir().unwrap();
    let mut srv = Server::new(tmp.path(), 1, None);
    srv.start();
    let c = srv.client();

    // boto3 and DuckDB over every format, compression, ScanRange and error.
    let work = tmp.path().join("files");
    std::fs::create_dir(&work).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/s3_select.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .args([&srv.endpoint(), &srv.access_key, &srv.secret_key])
        .arg(&work)
        .output()
        .expect("run python3 (with boto3 and duckdb installed)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "select.py failed");

    // aws-sdk-s3 parses the same event stream.
    c.create_bucket().bucket("sdk").send().await.unwrap();
    let csv = "a,b\nxa,1\nya,2\nxb,30\nxc,4\n";
    c.put_object()
        .bucket("sdk")
        .key("t.csv")
        .body(ByteStream::from_static(csv.as_bytes()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        select_count(&c, "sdk", "t.csv").await.unwrap(),
        "{\"n\":3,\"top\":30}\n"
    );

    // The access check is GetObject's: a user without it is refused, a reader is not.
    let user = |name: &str, policy: Option<&str>| {
        let mut args = vec!["admin", "user", "add", name, "--json"];
        if let Some(p) = policy {
            args.extend(["--policy", p]);
        }
        let out = cybs3(&srv.home, &args);
        assert!(out.status.success(), "{out:?}");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        srv.client_as(
            v["access_key"].as_str().unwrap(),
            v["secret_key"].as_str().unwrap(),
        )
    };
    let nobody = user("nobody", None);
    assert_eq!(
        select_count(&nobody, "sdk", "t.csv").await.unwrap_err(),
        (403, "AccessDenied".to_string())
    );
    let reader = user("reader", Some("readonly"));
    assert!(select_count(&reader, "sdk", "t.csv").await.is_ok());
    srv.stop();
}

/// A peak resident set size of the server, in bytes, from /proc (`VmHWM`).
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmHWM in /proc/PID/status");
    kib * 1024
}

/// A query scans an object larger than 1 GiB (a 17-part upload of generated CSV) and
/// answers what the generator counted, while the server's peak memory grows by far less
/// than the object: the scan streams.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_select_over_a_gigabyte_streams() {
    const PART: usize = 64 * MIB;
    const PARTS: usize = 17;
    let tmp = tempfile::tempdir().unwrap();
    let mut srv = Server::new(tmp.path(), 1, None);
    srv.start();
    let c = srv.client();
    c.create_bucket().bucket("big").send().await.unwrap();
    let up = c
        .create_multipart_upload()
        .bucket("big")
        .key("rows.csv")
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap();
    // Rows are cut at part boundaries wherever they fall, as any uploader cuts them.
    let (mut pending, mut row, mut done) = (b"id,name,amount\n".to_vec(), 0u64, Vec::new());
    let (mut matched, mut sum) = (0u64, 0u64);
    for n in 1..=PARTS {
        while pending.len() < PART {
            let amount = row % 997;
            if amount < 10 {
                matched += 1;
                sum += amount;
            }
            pending.extend_from_slice(format!("{row},n{},{amount}\n", row % 1000).as_bytes());
            row += 1;
        }
        let rest = pending.split_off(PART);
        let part = std::mem::replace(&mut pending, rest);
        let etag = c
            .upload_part()
            .bucket("big")
            .key("rows.csv")
            .upload_id(id)
            .part_number(n as i32)
            .body(ByteStream::from(part))
            .send()
            .await
            .unwrap()
            .e_tag()
            .unwrap()
            .to_string();
        done.push(
            CompletedPart::builder()
                .part_number(n as i32)
                .e_tag(etag)
                .build(),
        );
    }
    c.complete_multipart_upload()
        .bucket("big")
        .key("rows.csv")
        .upload_id(id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(done))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let size = (PART * PARTS) as u64;

    // The peak from here on is the query's: writing 5 to clear_refs resets VmHWM.
    let pid = srv.pid().unwrap();
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").unwrap();
    let before = peak_rss(pid);
    let started = std::time::Instant::now();
    let mut out = c
        .select_object_content()
        .bucket("big")
        .key("rows.csv")
        .expression("SELECT COUNT(*), SUM(CAST(s.amount AS INT)) FROM S3Object s WHERE CAST(s.amount AS INT) < 10")
        .expression_type(ExpressionType::Sql)
        .input_serialization(
            InputSerialization::builder()
                .csv(CsvInput::builder().file_header_info(FileHeaderInfo::Use).build())
                .build(),
        )
        .output_serialization(
            OutputSerialization::builder()
                .csv(CsvOutput::builder().build())
                .build(),
        )
        .send()
        .await
        .unwrap();
    let (mut text, mut scanned) = (String::new(), 0);
    while let Some(ev) = out.payload.recv().await.expect("event stream") {
        match ev {
            SelectObjectContentEventStream::Records(r) => {
                text.push_str(std::str::from_utf8(r.payload().unwrap().as_ref()).unwrap())
            }
            SelectObjectContentEventStream::Stats(s) => {
                scanned = s.details().unwrap().bytes_scanned().unwrap();
            }
            _ => {}
        }
    }
    let took = started.elapsed();
    let grew = peak_rss(pid).saturating_sub(before);
    eprintln!(
        "scanned {} MiB in {took:?} ({:.0} MB/s); the server's peak RSS grew {} MiB",
        size >> 20,
        size as f64 / took.as_secs_f64() / 1e6,
        grew >> 20
    );
    assert_eq!(text, format!("{matched},{sum}\n"));
    assert_eq!(scanned as u64, size, "Stats count every byte");
    assert!(
        grew < 128 << 20,
        "a query over {size} bytes grew the server by {grew} bytes"
    );
    srv.stop();
}

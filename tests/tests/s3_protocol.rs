//! Protocol details where clients rely on AWS's exact answer: a request signed for another
//! region, SigV2 from old tools (boto3 signing as they do), presigned URLs dated in the
//! future, uploads without a Content-Length, non-ASCII user metadata, and a part uploaded
//! again while its earlier upload is still running.

mod common;

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use common::*;
use cybs3_tests::{content, Server};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, SystemTime};

/// An SDK client like the server's own, but signing for `region`.
fn client_in(s: &Server, region: &str) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new(region.to_string()))
        .endpoint_url(s.endpoint())
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            &s.access_key,
            &s.secret_key,
            None,
            None,
            "cybs3-tests",
        ))
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// The text of `<name>` in an XML body, if there, its quotes unescaped.
fn element(xml: &str, name: &str) -> Option<String> {
    let start = xml.find(&format!("<{name}>"))? + name.len() + 2;
    let end = xml[start..].find(&format!("</{name}>"))? + start;
    Some(
        xml[start..end]
            .replace("&apos;", "'")
            .replace("&quot;", "\""),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_signed_for_another_region_is_told_the_right_one() {
    let (_t, s, c) = setup();
    bucket(&c, "reg").await;

    for region in ["eu-west-1", "US"] {
        let mut signer = Signer::new(&s.access_key, &s.secret_key);
        signer.region = region.into();
        let signed = signer.sign("GET", "/reg", &[], &[], &sha256_hex(b""), s.port);
        let r = raw_exchange(s.port, &signed.head("GET", "/reg")).expect("an answer");
        assert_eq!(r.status, 400, "{region}: {}", r.text());
        assert_eq!(r.code().as_deref(), Some("AuthorizationHeaderMalformed"));
        assert_eq!(element(&r.text(), "Region").as_deref(), Some("us-east-1"));
        assert_eq!(
            element(&r.text(), "Message"),
            Some(format!(
                "The authorization header is malformed; the region '{region}' is wrong; expecting 'us-east-1'"
            ))
        );
    }

    // The SDK sees the code; signing again for the region it names works.
    let wrong = client_in(&s, "eu-west-1");
    let (status, code) = fails(wrong.list_objects_v2().bucket("reg").send().await);
    assert_eq!(
        (status, code.as_str()),
        (400, "AuthorizationHeaderMalformed")
    );
    let right = client_in(&s, "us-east-1");
    right.list_objects_v2().bucket("reg").send().await.unwrap();

    // A presigned URL scoped to another region.
    put(&c, "reg", "k", b"v".to_vec()).await;
    let presigned = wrong
        .get_object()
        .bucket("reg")
        .key("k")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(60)).unwrap())
        .await
        .unwrap();
    let r = curl(&[presigned.uri()]);
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(
        r.code().as_deref(),
        Some("AuthorizationQueryParametersError")
    );
    assert_eq!(element(&r.text(), "Region").as_deref(), Some("us-east-1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigv2_header_auth_presigned_urls_and_post_forms_work_for_boto3() {
    let (_t, s, _c) = setup();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/sigv2.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .args([&s.endpoint(), &s.access_key, &s.secret_key])
        .env_remove("AWS_CA_BUNDLE")
        .env("NO_PROXY", "*")
        .output()
        .expect("run python3 (with boto3 and requests installed)");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigv2_request_times_must_be_valid_and_near() {
    let (_t, s, c) = setup();
    bucket(&c, "v2date").await;
    let url = format!("{}/v2date/k", s.endpoint());
    let auth = format!("Authorization: AWS {}:c2lnbmF0dXJl", s.access_key);
    for (date, status, code) in [
        ("Bad Date", 403, "AccessDenied"),
        ("Tue, 07 Jul 1950 21:53:04 GMT", 403, "AccessDenied"),
        ("Tue, 07 Jul 2010 21:53:04 GMT", 403, "RequestTimeTooSkewed"),
        ("Tue, 07 Jul 9999 21:53:04 GMT", 403, "RequestTimeTooSkewed"),
    ] {
        let header = format!("x-amz-date: {date}");
        let r = curl(&[
            "-X",
            "PUT",
            "-H",
            &auth,
            "-H",
            &header,
            "--data-binary",
            "x",
            &url,
        ]);
        assert_eq!(
            (r.status, r.code().as_deref()),
            (status, Some(code)),
            "{date}: {}",
            r.text()
        );
    }
    let r = curl(&["-X", "PUT", "-H", &auth, "--data-binary", "x", &url]);
    assert_eq!(
        r.code().as_deref(),
        Some("AccessDenied"),
        "no date: {}",
        r.text()
    );
    // A current time gets as far as the signature (which is wrong here).
    let now = format!("Date: {}", http_date(SystemTime::now()));
    let r = curl(&[
        "-X",
        "PUT",
        "-H",
        &auth,
        "-H",
        &now,
        "--data-binary",
        "x",
        &url,
    ]);
    assert_eq!(
        r.code().as_deref(),
        Some("SignatureDoesNotMatch"),
        "{}",
        r.text()
    );
    assert_eq!(head_status(&c, "v2date", "k").await, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presigned_urls_from_the_future_are_not_valid_yet_and_old_ones_expired() {
    let (_t, s, c) = setup();
    bucket(&c, "pre").await;
    put(&c, "pre", "k", b"v".to_vec()).await;
    let presign = |start: SystemTime| {
        PresigningConfig::builder()
            .start_time(start)
            .expires_in(Duration::from_secs(300))
            .build()
            .unwrap()
    };

    let future = c
        .get_object()
        .bucket("pre")
        .key("k")
        .presigned(presign(SystemTime::now() + Duration::from_secs(3600)))
        .await
        .unwrap();
    let r = curl(&[future.uri()]);
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.code().as_deref(), Some("AccessDenied"));
    assert_eq!(
        element(&r.text(), "Message").as_deref(),
        Some("Request is not yet valid")
    );

    // Within the clock skew a URL from the near future works.
    let soon = c
        .get_object()
        .bucket("pre")
        .key("k")
        .presigned(presign(SystemTime::now() + Duration::from_secs(120)))
        .await
        .unwrap();
    assert_eq!(curl(&[soon.uri()]).status, 200);

    let old = c
        .get_object()
        .bucket("pre")
        .key("k")
        .presigned(presign(SystemTime::now() - Duration::from_secs(3600)))
        .await
        .unwrap();
    let r = curl(&[old.uri()]);
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.code().as_deref(), Some("AccessDenied"));
    assert_eq!(
        element(&r.text(), "Message").as_deref(),
        Some("Request has expired")
    );
    let _ = s;
}

/// `body` sent with `Transfer-Encoding: chunked` (in two HTTP chunks) and no Content-Length.
fn http_chunked(mut head: Vec<u8>, body: &[u8]) -> Vec<u8> {
    let half = body.len() / 2;
    for part in [&body[..half], &body[half..]] {
        head.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        head.extend_from_slice(part);
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"0\r\n\r\n");
    head
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_with_transfer_encoding_chunked_needs_aws_chunked() {
    let (_t, s, c) = setup();
    bucket(&c, "tec").await;
    let data = content("tec", 100_000);
    let signer = Signer::new(&s.access_key, &s.secret_key);

    // aws-chunked, its decoded length declared: stored.
    let decoded = data.len().to_string();
    let mut signed = signer.sign(
        "PUT",
        "/tec/streamed",
        &[],
        &[
            ("content-encoding", "aws-chunked"),
            ("x-amz-decoded-content-length", &decoded),
        ],
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        s.port,
    );
    let mut body = Vec::new();
    let mut prev = signed.signature.clone();
    for chunk in data.chunks(64 * 1024).chain([&[][..]]) {
        let sig = signed.chunk_signature(&prev, chunk);
        body.extend_from_slice(format!("{:x};chunk-signature={sig}\r\n", chunk.len()).as_bytes());
        body.extend_from_slice(chunk);
        body.extend_from_slice(b"\r\n");
        prev = sig;
    }
    signed
        .headers
        .push(("transfer-encoding".into(), "chunked".into()));
    let r = raw_exchange(
        s.port,
        &http_chunked(signed.head("PUT", "/tec/streamed"), &body),
    )
    .expect("an answer");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(get(&c, "tec", "streamed").await, data);

    // A plain body of unknown length: 411 MissingContentLength, as AWS answers.
    for payload_hash in ["UNSIGNED-PAYLOAD".to_string(), sha256_hex(&data)] {
        let mut signed = signer.sign("PUT", "/tec/plain", &[], &[], &payload_hash, s.port);
        signed
            .headers
            .push(("transfer-encoding".into(), "chunked".into()));
        let r = raw_exchange(
            s.port,
            &http_chunked(signed.head("PUT", "/tec/plain"), &data),
        )
        .expect("an answer");
        assert_eq!(r.status, 411, "{payload_hash}: {}", r.text());
        assert_eq!(r.code().as_deref(), Some("MissingContentLength"));
    }
    assert_eq!(head_status(&c, "tec", "plain").await, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_ascii_user_metadata_comes_back_rfc2047_encoded_as_aws_does() {
    let (_t, _s, c) = setup();
    bucket(&c, "meta").await;
    // (sent, returned): ASCII as is; mostly-ASCII text as a Q word, mostly non-ASCII as a
    // B word (AWS's choice), both over UTF-8; an encoded word sent is stored decoded.
    let cases = [
        ("plain ascii", "plain ascii"),
        ("naïve café", "=?UTF-8?Q?na=C3=AFve_caf=C3=A9?="),
        ("日本語", "=?UTF-8?B?5pel5pys6Kqe?="),
        ("=?UTF-8?B?5pel5pys6Kqe?=", "=?UTF-8?B?5pel5pys6Kqe?="),
        ("=?UTF-8?Q?caf=C3=A9?=", "=?UTF-8?Q?caf=C3=A9?="),
    ];
    for (i, (sent, want)) in cases.iter().enumerate() {
        let key = format!("k{i}");
        c.put_object()
            .bucket("meta")
            .key(&key)
            .metadata("m", *sent)
            .body(ByteStream::from_static(b"x"))
            .send()
            .await
            .unwrap();
        let head = c
            .head_object()
            .bucket("meta")
            .key(&key)
            .send()
            .await
            .unwrap();
        let got = head.metadata().and_then(|m| m.get("m")).map(String::as_str);
        assert_eq!(got, Some(*want), "HEAD of {sent:?}");
        let get = c
            .get_object()
            .bucket("meta")
            .key(&key)
            .send()
            .await
            .unwrap();
        let got = get.metadata().and_then(|m| m.get("m")).map(String::as_str);
        assert_eq!(got, Some(*want), "GET of {sent:?}");
    }
}

/// Sends the head and the first `first` bytes of an UploadPart of `body` (UNSIGNED-PAYLOAD),
/// leaving the rest for `finish`.
struct SlowPart {
    stream: TcpStream,
    rest: Vec<u8>,
}

impl SlowPart {
    fn start(s: &Server, path: &str, query: &[(&str, &str)], body: &[u8], first: usize) -> Self {
        let signer = Signer::new(&s.access_key, &s.secret_key);
        let len = body.len().to_string();
        let signed = signer.sign(
            "PUT",
            path,
            query,
            &[("content-length", &len)],
            "UNSIGNED-PAYLOAD",
            s.port,
        );
        let target = format!(
            "{path}?{}",
            query
                .iter()
                .map(|(k, v)| format!("{k}={}", uri_encode(v, true)))
                .collect::<Vec<_>>()
                .join("&")
        );
        let mut stream = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        stream.write_all(&signed.head("PUT", &target)).unwrap();
        stream.write_all(&body[..first]).unwrap();
        SlowPart {
            stream,
            rest: body[first..].to_vec(),
        }
    }

    fn finish(mut self) -> Resp {
        self.stream.write_all(&self.rest).unwrap();
        let mut buf = Vec::new();
        let _ = self.stream.read_to_end(&mut buf);
        parse_response(&buf).expect("an answer")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_part_uploaded_again_wins_even_when_the_earlier_upload_ends_last() {
    let (_t, s, c) = setup();
    bucket(&c, "mpu").await;
    let up = c
        .create_multipart_upload()
        .bucket("mpu")
        .key("obj")
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap().to_string();
    let (slow_data, fast_data) = (content("slow", 3 * MIB), content("fast", 2 * MIB));

    // The first upload of part 1 starts, sends a little, and stalls.
    let slow = SlowPart::start(
        &s,
        "/mpu/obj",
        &[("partNumber", "1"), ("uploadId", &id)],
        &slow_data,
        64 * 1024,
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    // A second upload of part 1 starts later and finishes first.
    let fast = c
        .upload_part()
        .bucket("mpu")
        .key("obj")
        .upload_id(&id)
        .part_number(1)
        .body(ByteStream::from(fast_data.clone()))
        .send()
        .await
        .unwrap();
    let fast_etag = fast.e_tag().unwrap().to_string();
    // Then the first one ends: it succeeds, but does not replace the newer part.
    let r = tokio::task::spawn_blocking(move || slow.finish())
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let slow_etag = r.header("etag").unwrap().to_string();
    assert_ne!(slow_etag, fast_etag);

    let parts = c
        .list_parts()
        .bucket("mpu")
        .key("obj")
        .upload_id(&id)
        .send()
        .await
        .unwrap();
    let listed: Vec<_> = parts
        .parts()
        .iter()
        .map(|p| (p.part_number(), p.e_tag().map(str::to_string)))
        .collect();
    assert_eq!(listed, vec![(Some(1), Some(fast_etag.clone()))]);

    c.complete_multipart_upload()
        .bucket("mpu")
        .key("obj")
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .parts(
                    CompletedPart::builder()
                        .part_number(1)
                        .e_tag(&fast_etag)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(get(&c, "mpu", "obj").await, fast_data);
}

//! Hostile and broken requests: bad credentials and signatures, tampered streaming
//! uploads, wrong digests, oversized headers, truncated bodies, illegal names. Each must
//! get AWS's error (or a closed connection where stated), store nothing, and leave the
//! server serving.

mod common;

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use common::*;
use cybs3_tests::{content, http_status, Server};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, SystemTime};

/// The server still answers: liveness, and a real PUT/GET round trip.
async fn still_serving(s: &Server, c: &Client) {
    assert_eq!(http_status(s.port, "/health/live"), Some(200), "liveness");
    put(c, "neg", "canary", b"alive".to_vec()).await;
    assert_eq!(get(c, "neg", "canary").await, b"alive");
    c.delete_object()
        .bucket("neg")
        .key("canary")
        .send()
        .await
        .unwrap();
}

fn signer(s: &Server) -> Signer {
    Signer::new(&s.access_key, &s.secret_key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_are_refused() {
    let (_t, s, c) = setup();
    bucket(&c, "neg").await;

    let wrong = s.client_as(&s.access_key, "definitely-not-the-secret");
    let (st, code) = fails(wrong.list_buckets().send().await);
    assert_eq!((st, code.as_str()), (403, "SignatureDoesNotMatch"));
    let (st, code) = fails(
        wrong
            .put_object()
            .bucket("neg")
            .key("k")
            .body(ByteStream::from_static(b"x"))
            .send()
            .await,
    );
    assert_eq!((st, code.as_str()), (403, "SignatureDoesNotMatch"));

    let unknown = s.client_as("AKIANOSUCHKEY0000000", &s.secret_key);
    let (st, code) = fails(unknown.list_objects_v2().bucket("neg").send().await);
    assert_eq!((st, code.as_str()), (403, "InvalidAccessKeyId"));
    let (st, code) = fails(
        unknown
            .put_object()
            .bucket("neg")
            .key("k")
            .body(ByteStream::from_static(b"x"))
            .send()
            .await,
    );
    assert_eq!((st, code.as_str()), (403, "InvalidAccessKeyId"));

    // No signature at all: AccessDenied.
    for (method, path) in [
        ("GET", "/"),
        ("GET", "/neg"),
        ("GET", "/neg/k"),
        ("PUT", "/neg/k"),
        ("DELETE", "/neg"),
    ] {
        let url = format!("{}{path}", s.endpoint());
        let r = curl(&["-X", method, "--data-binary", "anonymous", &url]);
        assert_eq!(r.status, 403, "{method} {path}: {}", r.text());
        assert_eq!(r.code().as_deref(), Some("AccessDenied"), "{method} {path}");
    }

    // A signature made an hour ago: RequestTimeTooSkewed.
    let mut old = signer(&s);
    old.time = Some(SystemTime::now() - Duration::from_secs(3600));
    let signed = old.sign("GET", "/neg", &[], &[], &sha256_hex(b""), s.port);
    let r = raw_exchange(s.port, &signed.head("GET", "/neg")).expect("answer");
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.code().as_deref(), Some("RequestTimeTooSkewed"));

    assert_eq!(
        keys(&c, "neg").await,
        Vec::<String>::new(),
        "nothing stored"
    );
    c.head_bucket()
        .bucket("neg")
        .send()
        .await
        .expect("bucket kept");
    still_serving(&s, &c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presigned_urls_expired_or_tampered() {
    let (_t, s, c) = setup();
    bucket(&c, "neg").await;
    put(&c, "neg", "secret", b"top secret".to_vec()).await;
    put(&c, "neg", "other", b"other".to_vec()).await;

    let old = PresigningConfig::builder()
        .start_time(SystemTime::now() - Duration::from_secs(7200))
        .expires_in(Duration::from_secs(60))
        .build()
        .unwrap();
    let req = c
        .get_object()
        .bucket("neg")
        .key("secret")
        .presigned(old)
        .await
        .unwrap();
    let r = curl(&[req.uri()]);
    assert_eq!(r.status, 403, "expired: {}", r.text());
    assert_eq!(r.code().as_deref(), Some("AccessDenied"), "{}", r.text());
    assert!(!r.text().contains("top secret"));

    let fresh = PresigningConfig::expires_in(Duration::from_secs(300)).unwrap();
    let req = c
        .get_object()
        .bucket("neg")
        .key("secret")
        .presigned(fresh.clone())
        .await
        .unwrap();
    assert_eq!(curl(&[req.uri()]).status, 200, "control: fresh URL works");
    // Another key under the same signature.
    let r = curl(&[&req.uri().replace("/neg/secret", "/neg/other")]);
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.code().as_deref(), Some("SignatureDoesNotMatch"));
    // A flipped signature digit.
    let uri = req.uri().to_string();
    let at = uri.find("X-Amz-Signature=").unwrap() + "X-Amz-Signature=".len();
    let mut bytes = uri.into_bytes();
    bytes[at] = if bytes[at] == b'0' { b'1' } else { b'0' };
    let r = curl(&[std::str::from_utf8(&bytes).unwrap()]);
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.code().as_deref(), Some("SignatureDoesNotMatch"));

    // A presigned GET does not authorise a PUT.
    let r = curl(&["-X", "PUT", "--data-binary", "overwrite", req.uri()]);
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(get(&c, "neg", "secret").await, b"top secret");
    still_serving(&s, &c).await;
}

/// A hand-made `STREAMING-AWS4-HMAC-SHA256-PAYLOAD` PUT; `tamper` flips a byte of that
/// chunk's data after it was signed.
fn streaming_put(s: &Server, key: &str, chunks: &[Vec<u8>], tamper: Option<usize>) -> Resp {
    let total: usize = chunks.iter().map(Vec::len).sum();
    let path = format!("/neg/{key}");
    let decoded = total.to_string();
    let mut signed = signer(s).sign(
        "PUT",
        &path,
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
    for (i, chunk) in chunks.iter().enumerate() {
        let sig = signed.chunk_signature(&prev, chunk);
        body.extend_from_slice(format!("{:x};chunk-signature={sig}\r\n", chunk.len()).as_bytes());
        let mut data = chunk.clone();
        if tamper == Some(i) {
            data[chunk.len() / 2] ^= 0x01;
        }
        body.extend_from_slice(&data);
        body.extend_from_slice(b"\r\n");
        prev = sig;
    }
    let sig = signed.chunk_signature(&prev, b"");
    body.extend_from_slice(format!("0;chunk-signature={sig}\r\n\r\n").as_bytes());
    signed
        .headers
        .push(("content-length".into(), body.len().to_string()));
    let mut req = signed.head("PUT", &path);
    req.extend_from_slice(&body);
    raw_exchange(s.port, &req).expect("an answer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_aws_chunked_signature_stores_nothing() {
    let (_t, s, c) = setup();
    bucket(&c, "neg").await;
    let chunks = vec![
        content("chunk0", 64 * 1024),
        content("chunk1", 64 * 1024),
        content("chunk2", 1000),
    ];
    let whole: Vec<u8> = chunks.concat();

    // Control: the same request untampered is accepted and stored byte-exact.
    let r = streaming_put(&s, "signed-ok", &chunks, None);
    assert_eq!(r.status, 200, "valid signed streaming PUT: {}", r.text());
    assert_eq!(
        r.header("etag"),
        Some(format!("\"{}\"", md5_hex(&whole)).as_str())
    );
    assert!(
        get(&c, "neg", "signed-ok").await == whole,
        "streamed content"
    );

    for (i, key) in [
        (0, "tampered-first"),
        (1, "tampered-middle"),
        (2, "tampered-last"),
    ] {
        let r = streaming_put(&s, key, &chunks, Some(i));
        assert_eq!(r.status, 403, "chunk {i} tampered: {}", r.text());
        assert_eq!(
            r.code().as_deref(),
            Some("SignatureDoesNotMatch"),
            "chunk {i}"
        );
        assert_eq!(head_status(&c, "neg", key).await, 404, "{key} stored");
    }
    // Tampering must not clobber an existing object either.
    let r = streaming_put(&s, "signed-ok", &[b"replacement".to_vec()], Some(0));
    assert_eq!(r.status, 403);
    assert!(
        get(&c, "neg", "signed-ok").await == whole,
        "old content kept"
    );
    assert_eq!(keys(&c, "neg").await, ["signed-ok"]);
    still_serving(&s, &c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_digests_store_nothing() {
    let (_t, s, c) = setup();
    bucket(&c, "neg").await;
    let data = content("digest", 50_000);

    // Wrong Content-MD5: 400 BadDigest.
    let path = "/neg/md5";
    let len = data.len().to_string();
    let bad_md5 = b64(&md5(b"not the body"));
    let signed = signer(&s).sign(
        "PUT",
        path,
        &[],
        &[("content-length", &len), ("content-md5", &bad_md5)],
        "UNSIGNED-PAYLOAD",
        s.port,
    );
    let mut req = signed.head("PUT", path);
    req.extend_from_slice(&data);
    let r = raw_exchange(s.port, &req).expect("answer");
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.code().as_deref(), Some("BadDigest"));
    assert_eq!(head_status(&c, "neg", "md5").await, 404, "nothing stored");

    // A signed payload hash that does not match the body: 400 XAmzContentSHA256Mismatch.
    let signed = signer(&s).sign(
        "PUT",
        "/neg/sha",
        &[],
        &[("content-length", &len)],
        &sha256_hex(b"something else"),
        s.port,
    );
    let mut req = signed.head("PUT", "/neg/sha");
    req.extend_from_slice(&data);
    let r = raw_exchange(s.port, &req).expect("answer");
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.code().as_deref(), Some("XAmzContentSHA256Mismatch"));
    assert_eq!(head_status(&c, "neg", "sha").await, 404, "nothing stored");

    // Unsigned aws-chunked with a trailing checksum, as the SDK sends by default.
    let trailer_put = |key: &str, claimed: &str| {
        let path = format!("/neg/{key}");
        let body = [
            format!("{:x}\r\n", data.len()).into_bytes(),
            data.clone(),
            format!("\r\n0\r\nx-amz-checksum-crc32:{claimed}\r\n\r\n").into_bytes(),
        ]
        .concat();
        let decoded = data.len().to_string();
        let mut signed = signer(&s).sign(
            "PUT",
            &path,
            &[],
            &[
                ("content-encoding", "aws-chunked"),
                ("x-amz-decoded-content-length", &decoded),
                ("x-amz-trailer", "x-amz-checksum-crc32"),
            ],
            "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
            s.port,
        );
        signed
            .headers
            .push(("content-length".into(), body.len().to_string()));
        let mut req = signed.head("PUT", &path);
        req.extend_from_slice(&body);
        raw_exchange(s.port, &req).expect("answer")
    };
    let right = b64(&crc32(&data).to_be_bytes());
    let r = trailer_put("trailer-ok", &right);
    assert_eq!(r.status, 200, "control, right trailer: {}", r.text());
    assert_eq!(r.header("x-amz-checksum-crc32"), Some(right.as_str()));
    assert!(get(&c, "neg", "trailer-ok").await == data);

    let wrong = b64(&crc32(b"something else").to_be_bytes());
    let r = trailer_put("trailer-bad", &wrong);
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.code().as_deref(), Some("BadDigest"));
    assert_eq!(
        head_status(&c, "neg", "trailer-bad").await,
        404,
        "nothing stored"
    );
    // Not over an existing object either.
    let r = trailer_put("trailer-ok", &wrong);
    assert_eq!(r.status, 400);
    assert!(
        get(&c, "neg", "trailer-ok").await == data,
        "old content kept"
    );

    // The SDK with a wrong checksum given up front.
    let (st, code) = fails(
        c.put_object()
            .bucket("neg")
            .key("sdk-bad")
            .checksum_crc32(wrong.clone())
            .body(ByteStream::from(data.clone()))
            .send()
            .await,
    );
    assert_eq!((st, code.as_str()), (400, "BadDigest"));
    assert_eq!(
        head_status(&c, "neg", "sdk-bad").await,
        404,
        "nothing stored"
    );
    assert_eq!(keys(&c, "neg").await, ["trailer-ok"]);
    still_serving(&s, &c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_header_is_refused_and_server_keeps_serving() {
    let (_t, s, c) = setup();
    bucket(&c, "neg").await;
    for size in [100 * 1024, 1024 * 1024] {
        let big = "A".repeat(size);
        let req = format!(
            "GET /neg/k HTTP/1.1\r\nhost: 127.0.0.1:{}\r\nx-big: {big}\r\nconnection: close\r\n\r\n",
            s.port
        );
        if let Some(r) = raw_exchange(s.port, req.as_bytes()) {
            assert!(
                (400..500).contains(&r.status),
                "{size}-byte header: status {}",
                r.status
            );
        }
        // Many headers as well.
        let mut many = format!("GET /neg/k HTTP/1.1\r\nhost: 127.0.0.1:{}\r\n", s.port);
        for i in 0..5000 {
            many.push_str(&format!("x-h{i}: v\r\n"));
        }
        many.push_str("connection: close\r\n\r\n");
        if let Some(r) = raw_exchange(s.port, many.as_bytes()) {
            assert!((400..500).contains(&r.status), "5000 headers: {}", r.status);
        }
    }
    still_serving(&s, &c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_body_stores_nothing() {
    let (_t, s, c) = setup();
    bucket(&c, "neg").await;
    put(&c, "neg", "existing", b"original".to_vec()).await;
    let data = content("truncated", 100 * 1024);
    for (key, half_close) in [("trunc-a", true), ("trunc-b", false), ("existing", true)] {
        let path = format!("/neg/{key}");
        let signed = signer(&s).sign(
            "PUT",
            &path,
            &[],
            &[("content-length", &MIB.to_string())],
            "UNSIGNED-PAYLOAD",
            s.port,
        );
        let mut conn = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        conn.write_all(&signed.head("PUT", &path)).unwrap();
        conn.write_all(&data).unwrap();
        if half_close {
            conn.shutdown(Shutdown::Write).unwrap();
            let mut answer = Vec::new();
            let _ = conn.read_to_end(&mut answer);
            if let Some(r) = parse_response(&answer) {
                assert!(
                    (400..500).contains(&r.status),
                    "truncated body answered {}: {}",
                    r.status,
                    r.text()
                );
            }
        }
        drop(conn);
    }
    // Give the server a moment to notice the dropped connection.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(head_status(&c, "neg", "trunc-a").await, 404);
    assert_eq!(head_status(&c, "neg", "trunc-b").await, 404);
    assert_eq!(
        get(&c, "neg", "existing").await,
        b"original",
        "old content kept"
    );
    assert_eq!(keys(&c, "neg").await, ["existing"]);
    // The keys are not left locked: a complete PUT succeeds.
    put(&c, "neg", "trunc-b", b"whole".to_vec()).await;
    assert_eq!(get(&c, "neg", "trunc-b").await, b"whole");
    let ups = c.list_multipart_uploads().bucket("neg").send().await;
    if let Ok(ups) = ups {
        assert!(ups.uploads().is_empty());
    }
    still_serving(&s, &c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn illegal_bucket_names_and_keys() {
    let (_t, s, c) = setup();
    bucket(&c, "neg").await;
    for name in ["ab", "Bad_Name", "a..b", "-x-", "10.0.0.1", &"n".repeat(64)] {
        let e = c.create_bucket().bucket(name).send().await.unwrap_err();
        assert_eq!(status_code(&e), (400, "InvalidBucketName".into()), "{name}");
        // Clients print the Message; s3s alone sends none for this code.
        let message = e.message().unwrap_or_default();
        assert_eq!(message, "The specified bucket is not valid.", "{name}");
    }

    for key in ["a/../b", "../escape", "dir/..", "..", "nul\0byte", "\0"] {
        let (st, _) = fails(
            c.put_object()
                .bucket("neg")
                .key(key)
                .body(ByteStream::from_static(b"x"))
                .send()
                .await,
        );
        assert_eq!(st, 400, "PUT {key:?}");
    }
    // The same `..` key as a raw path (no client-side normalisation anywhere).
    let signed = signer(&s).sign(
        "PUT",
        "/neg/a/../../etc/passwd",
        &[],
        &[("content-length", "1")],
        &sha256_hex(b"x"),
        s.port,
    );
    let mut req = signed.head("PUT", "/neg/a/../../etc/passwd");
    req.push(b'x');
    let r = raw_exchange(s.port, &req).expect("answer");
    assert_eq!(r.status, 400, "raw `..` path: {}", r.text());

    let long = "k".repeat(1025);
    let (st, code) = fails(
        c.put_object()
            .bucket("neg")
            .key(&long)
            .body(ByteStream::from_static(b"x"))
            .send()
            .await,
    );
    assert_eq!((st, code.as_str()), (400, "KeyTooLongError"));
    // Exactly 1024 bytes is allowed (UTF-8 bytes, not characters).
    let max = "é".repeat(512);
    assert_eq!(max.len(), 1024);
    put(&c, "neg", &max, b"x".to_vec()).await;
    let too_long = format!("{max}x");
    let (st, code) = fails(
        c.put_object()
            .bucket("neg")
            .key(&too_long)
            .body(ByteStream::from_static(b"x"))
            .send()
            .await,
    );
    assert_eq!((st, code.as_str()), (400, "KeyTooLongError"));
    assert_eq!(keys(&c, "neg").await, vec![max], "only the legal key");
    // Nothing escaped the store.
    assert!(!s.home.join("etc").exists());
    still_serving(&s, &c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presigned_expiry_must_be_a_number_of_seconds_up_to_a_week() {
    let (_t, s, c) = setup();
    bucket(&c, "neg").await;
    put(&c, "neg", "k", b"v".to_vec()).await;
    let week = PresigningConfig::expires_in(Duration::from_secs(604_800)).unwrap();
    let req = c
        .get_object()
        .bucket("neg")
        .key("k")
        .presigned(week)
        .await
        .unwrap();
    let uri = req.uri().to_string();
    assert!(uri.contains("X-Amz-Expires=604800"), "{uri}");
    assert_eq!(curl(&[&uri]).status, 200, "a week is allowed");
    // The expiry is checked before the signature (which these edits break anyway).
    for (expires, message) in [
        (
            "604801",
            "X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires must be less than 604800 seconds",
        ),
        (
            "4294967295",
            "X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires must be less than 604800 seconds",
        ),
        ("-1", "X-Amz-Expires must be non-negative"),
        ("soon", "X-Amz-Expires should be a number"),
    ] {
        let r = curl(&[&uri.replace("X-Amz-Expires=604800", &format!("X-Amz-Expires={expires}"))]);
        assert_eq!(r.status, 400, "{expires}: {}", r.text());
        assert_eq!(
            r.code().as_deref(),
            Some("AuthorizationQueryParametersError")
        );
        assert!(
            r.text().contains(&format!("<Message>{message}</Message>")),
            "{}",
            r.text()
        );
    }
    still_serving(&s, &c).await;
}

/// The `<RequestId>` of an error body; panics (showing the body) when it has none.
fn body_request_id(body: &str) -> String {
    let start = body
        .find("<RequestId>")
        .unwrap_or_else(|| panic!("no RequestId: {body}"));
    let start = start + "<RequestId>".len();
    let end = body[start..].find("</RequestId>").unwrap() + start;
    body[start..end].to_string()
}

/// Every response carries an x-amz-request-id, and every error document repeats it as
/// `<RequestId>`, however the error came about: an operation's refusal, a bare code s3s
/// wrote, a signature check, an anonymous request, a presigned-URL precheck, a preflight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_documents_carry_the_request_id_of_their_response() {
    use aws_sdk_s3::operation::RequestId;
    let (_t, s, c) = setup();
    bucket(&c, "neg").await;
    let put = c
        .put_object()
        .bucket("neg")
        .key("k")
        .body(ByteStream::from_static(b"v"))
        .send()
        .await
        .unwrap();
    let ok_id = put.request_id().expect("x-amz-request-id on success");
    assert!(!ok_id.is_empty());

    fn check_sdk<E: std::fmt::Debug>(
        what: &str,
        e: aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    ) {
        let raw = e.raw_response().unwrap_or_else(|| panic!("{what}: {e:?}"));
        let header = raw
            .headers()
            .get("x-amz-request-id")
            .unwrap_or_else(|| panic!("{what}: no x-amz-request-id"))
            .to_string();
        let body = String::from_utf8(raw.body().bytes().unwrap().to_vec()).unwrap();
        assert_eq!(body_request_id(&body), header, "{what}: {body}");
    }
    let e = c
        .get_object()
        .bucket("neg")
        .key("missing")
        .send()
        .await
        .unwrap_err();
    check_sdk("NoSuchKey", e);
    let e = c.create_bucket().bucket("ab").send().await.unwrap_err();
    check_sdk("InvalidBucketName", e);
    let wrong = s.client_as(&s.access_key, "definitely-not-the-secret");
    let e = wrong
        .list_objects_v2()
        .bucket("neg")
        .send()
        .await
        .unwrap_err();
    check_sdk("SignatureDoesNotMatch", e);

    let check_curl = |what: &str, r: Resp| {
        let header = r
            .header("x-amz-request-id")
            .unwrap_or_else(|| panic!("{what}: no x-amz-request-id"))
            .to_string();
        assert!(r.status >= 400, "{what}: {}", r.status);
        assert_eq!(body_request_id(&r.text()), header, "{what}: {}", r.text());
    };
    let url = format!("{}/neg/k", s.endpoint());
    check_curl("anonymous", curl(&[&url]));
    check_curl(
        "presigned expiry",
        curl(&[&format!("{url}?X-Amz-Expires=soon&X-Amz-Signature=00")]),
    );
    check_curl(
        "preflight",
        curl(&[
            "-X",
            "OPTIONS",
            "-H",
            "Origin: https://a.example",
            "-H",
            "Access-Control-Request-Method: GET",
            &url,
        ]),
    );
    let live = curl(&[&format!("{}/health/live", s.endpoint())]);
    assert_eq!(live.status, 200);
    assert!(
        live.header("x-amz-request-id").is_some(),
        "health answers too"
    );
    // Each response has its own id.
    let a = curl(&[&url]);
    let b = curl(&[&url]);
    assert_ne!(a.header("x-amz-request-id"), b.header("x-amz-request-id"));
}

/// Keys with control characters XML 1.0 cannot carry are listed as AWS lists them, as
/// character references (`&#x1;`); a carriage return as `&#13;`, so parsers that
/// normalize line ends still hand back the stored key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_characters_in_keys_are_listed_as_character_references() {
    let (_t, s, c) = setup();
    bucket(&c, "ctl").await;
    put(&c, "ctl", "a\u{1}b", b"x".to_vec()).await;
    put(&c, "ctl", "c\rd", b"x".to_vec()).await;
    put(&c, "ctl", "e\tf", b"x".to_vec()).await;
    let signer = signer(&s);
    for (what, query) in [
        ("v2", ("list-type", "2")),
        ("v1", ("max-keys", "10")),
        ("versions", ("versions", "")),
    ] {
        let signed = signer.sign("GET", "/ctl", &[query], &[], &sha256_hex(b""), s.port);
        let target = format!("/ctl?{}={}", query.0, query.1);
        let r = raw_exchange(s.port, &signed.head("GET", &target)).expect("answer");
        assert_eq!(r.status, 200, "{what}: {}", r.text());
        let body = r.text();
        for key in [
            "<Key>a&#x1;b</Key>",
            "<Key>c&#13;d</Key>",
            "<Key>e\tf</Key>",
        ] {
            assert!(body.contains(key), "{what}: {key} in {body:?}");
        }
        assert_eq!(
            r.header("content-length"),
            Some(body.len().to_string().as_str())
        );
    }
    // Without the key XML cannot carry, the SDK reads the others back exactly.
    c.delete_object()
        .bucket("ctl")
        .key("a\u{1}b")
        .send()
        .await
        .unwrap();
    assert_eq!(keys(&c, "ctl").await, ["c\rd", "e\tf"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_ranges_are_ignored_and_unsatisfiable_ones_are_416() {
    let (_t, s, c) = setup();
    bucket(&c, "neg").await;
    put(&c, "neg", "ten", b"0123456789".to_vec()).await;
    let get_range =
        |range: &'static str| c.get_object().bucket("neg").key("ten").range(range).send();
    let head_range =
        |range: &'static str| c.head_object().bucket("neg").key("ten").range(range).send();

    // Not one valid byte range: ignored (RFC 9110 §14.2), 200 with the whole object,
    // whether the signature covers the Range (the SDK signs every header it sends) or
    // not (presigned URLs sign only the host, and curl adds the header).
    for range in ["bytes=5-1", "bytes=0-1,3-4", "garbage"] {
        let r = get_range(range).await.unwrap();
        assert_eq!(r.content_range(), None, "signed GET {range}");
        let body = r.body.collect().await.unwrap().into_bytes();
        assert_eq!(body.as_ref(), b"0123456789", "signed GET {range}");
        let h = head_range(range).await.unwrap();
        assert_eq!(h.content_length(), Some(10), "signed HEAD {range}");
        assert_eq!(h.content_range(), None, "signed HEAD {range}");
    }
    // Ignoring the Range skips no check: an unsigned request still needs a grant, and a
    // bad signature is still refused.
    let plain_url = format!("{}/neg/ten", s.endpoint());
    let r = curl(&["-H", "Range: bytes=5-1", &plain_url]);
    assert_eq!(r.status, 403, "anonymous GET with an unusable Range");
    let forged = "AWS4-HMAC-SHA256 Credential=root/20260101/us-east-1/s3/aws4_request, \
                  SignedHeaders=host;range;x-amz-date, Signature=00";
    let r = curl(&[
        "-H",
        "Range: bytes=5-1",
        "-H",
        &format!("Authorization: {forged}"),
        "-H",
        "x-amz-date: 20260101T000000Z",
        &plain_url,
    ]);
    assert_eq!(r.status, 403, "forged signature with an unusable Range");
    let presign = PresigningConfig::expires_in(Duration::from_secs(300)).unwrap();
    let get_url = c
        .get_object()
        .bucket("neg")
        .key("ten")
        .presigned(presign.clone())
        .await
        .unwrap();
    let head_url = c
        .head_object()
        .bucket("neg")
        .key("ten")
        .presigned(presign)
        .await
        .unwrap();
    for range in [
        "bytes=5-1",
        "bytes=0-1,3-4",
        "garbage",
        "bytes=x-y",
        "bytes=",
        "items=0-1",
    ] {
        let header = format!("Range: {range}");
        let r = curl(&["-H", &header, get_url.uri()]);
        assert_eq!(
            (r.status, r.text().as_str()),
            (200, "0123456789"),
            "GET {range}"
        );
        assert_eq!(r.header("content-range"), None, "GET {range}");
        let r = curl(&["-I", "-H", &header, head_url.uri()]);
        assert_eq!(r.status, 200, "HEAD {range}");
        assert_eq!(r.header("content-length"), Some("10"), "HEAD {range}");
        assert_eq!(r.header("content-range"), None, "HEAD {range}");
    }
    // Suffix ranges: the last n bytes, all of them when n is larger.
    for (range, want, content_range) in [
        ("bytes=-5", &b"56789"[..], "bytes 5-9/10"),
        ("bytes=-100", b"0123456789", "bytes 0-9/10"),
        ("bytes=3-3", b"3", "bytes 3-3/10"),
    ] {
        let r = get_range(range).await.unwrap();
        assert_eq!(r.content_range(), Some(content_range), "GET {range}");
        assert_eq!(r.body.collect().await.unwrap().into_bytes().as_ref(), want);
        let h = head_range(range).await.unwrap();
        assert_eq!(h.content_range(), Some(content_range), "HEAD {range}");
    }
    // Valid but past the end (or an empty suffix): 416 naming the length.
    for range in ["bytes=100-", "bytes=10-20", "bytes=-0"] {
        let e = get_range(range).await.unwrap_err();
        assert_eq!(status_code(&e), (416, "InvalidRange".into()), "GET {range}");
        assert_eq!(
            err_header(&e, "content-range").as_deref(),
            Some("bytes */10")
        );
        let e = head_range(range).await.unwrap_err();
        assert_eq!(status_code(&e).0, 416, "HEAD {range}");
        assert_eq!(
            err_header(&e, "content-range").as_deref(),
            Some("bytes */10")
        );
    }
    still_serving(&s, &c).await;
}

/// A SigV4 header-signed request sent raw, and the signature it carried.
fn signed_exchange(
    s: &Server,
    signer: &Signer,
    method: &str,
    path: &str,
    body: &[u8],
) -> (Resp, String) {
    let len = body.len().to_string();
    let mut headers = vec![("content-length", len.as_str())];
    if method == "POST" {
        headers.push(("content-type", "application/x-www-form-urlencoded"));
    }
    let signed = signer.sign(method, path, &[], &headers, &sha256_hex(body), s.port);
    let mut req = signed.head(method, path);
    req.extend_from_slice(body);
    (
        raw_exchange(s.port, &req).expect("answer"),
        signed.signature,
    )
}

fn field(xml: &str, name: &str) -> String {
    let start = xml
        .find(&format!("<{name}>"))
        .unwrap_or_else(|| panic!("{name} in {xml}"))
        + name.len()
        + 2;
    xml[start..start + xml[start..].find('<').unwrap()].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_and_secrets_never_reach_the_trace_log() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("server.log");
    let mut s = Server::new(tmp.path(), 1, None);
    s.env = vec![("RUST_LOG".into(), "trace".into())];
    s.log = Some(log.clone());
    s.start();
    let c = s.client();
    bucket(&c, "neg").await;
    let mut secrets = vec![s.secret_key.clone()];

    // Header-signed requests: a good one, and one whose signature is wrong (a server
    // may log the signature it expected, which is valid for that very request).
    let (r, sig) = signed_exchange(&s, &signer(&s), "PUT", "/neg/k", b"logged?");
    assert_eq!(r.status, 200, "{}", r.text());
    secrets.push(sig);
    let (r, expected) = signed_exchange(&s, &signer(&s), "GET", "/neg/k", b"");
    assert_eq!(r.status, 200);
    let mut wrong = signer(&s);
    wrong.secret = "not-the-secret".into();
    wrong.time = None;
    let (r, sig) = signed_exchange(&s, &wrong, "GET", "/neg/k", b"");
    assert_eq!(r.code().as_deref(), Some("SignatureDoesNotMatch"));
    secrets.extend([expected, sig]);

    // A presigned URL.
    let presign = PresigningConfig::expires_in(Duration::from_secs(300)).unwrap();
    let req = c
        .get_object()
        .bucket("neg")
        .key("k")
        .presigned(presign.clone())
        .await
        .unwrap();
    assert_eq!(curl(&[req.uri()]).status, 200);
    let query_value = |uri: &str, name: &str| {
        let at = uri.find(&format!("{name}=")).unwrap() + name.len() + 1;
        url_decode(uri[at..].split('&').next().unwrap())
    };
    secrets.push(query_value(req.uri(), "X-Amz-Signature"));

    // A session: its secret and token, in a header and in a presigned query.
    let out = cybs3_tests::cybs3(
        &s.home,
        &[
            "admin",
            "user",
            "add",
            "logan",
            "--policy",
            "readwrite",
            "--json",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let user: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let (ak, sk) = (
        user["access_key"].as_str().unwrap(),
        user["secret_key"].as_str().unwrap(),
    );
    secrets.push(sk.to_string());
    let form = b"Action=AssumeRole&Version=2011-06-15&DurationSeconds=900";
    let (r, sig) = signed_exchange(&s, &Signer::new(ak, sk), "POST", "/", form);
    assert_eq!(r.status, 200, "{}", r.text());
    secrets.push(sig);
    let (tak, tsk, token) = (
        field(&r.text(), "AccessKeyId"),
        field(&r.text(), "SecretAccessKey"),
        field(&r.text(), "SessionToken"),
    );
    secrets.extend([tsk.clone(), token.clone()]);
    let session = s.client_with(&tak, &tsk, Some(&token));
    assert_eq!(get(&session, "neg", "k").await, b"logged?");
    let req = session
        .get_object()
        .bucket("neg")
        .key("k")
        .presigned(presign)
        .await
        .unwrap();
    assert!(req.uri().contains("X-Amz-Security-Token="));
    assert_eq!(curl(&[req.uri()]).status, 200);
    secrets.push(query_value(req.uri(), "X-Amz-Signature"));

    // A directory login form (refused: no directory here) with its password.
    let password = "hunter2-in-a-form-body";
    let r = curl(&[
        "--data",
        &format!("Action=AssumeRoleWithLDAPIdentity&Version=2011-06-15&LDAPUsername=logan&LDAPPassword={password}"),
        &format!("{}/", s.endpoint()),
    ]);
    assert!(r.status >= 400, "{}", r.text());
    secrets.push(password.into());

    s.stop();
    let text = std::fs::read_to_string(&log).unwrap();
    // The log is on: requests were logged at all.
    assert!(text.contains("TRACE") || text.contains("DEBUG"), "{text}");
    assert!(text.contains("/neg/k"), "{text}");
    for secret in &secrets {
        assert!(!secret.is_empty());
        assert!(
            !text.contains(secret.as_str()),
            "{secret} is in the server log:\n{text}"
        );
    }
}

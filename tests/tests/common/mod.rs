//! Helpers shared by the S3 conformance suites: error inspection for the SDK, hashes,
//! a hand-rolled SigV4 signer and a raw HTTP/1.1 client (TcpStream or curl), so
//! requests the SDK would never send can be crafted byte by byte.
#![allow(dead_code)]

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
use aws_sdk_s3::Client;
use base64::Engine;
use cybs3_tests::{cybs3, Server};
use md5::Digest as _;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const MIB: usize = 1 << 20;

/// HTTP status and S3 error code of a failed SDK call ("" when the body had no code, e.g. HEAD).
pub fn status_code<E: ProvideErrorMetadata>(e: &SdkError<E, HttpResponse>) -> (u16, String) {
    let status = e.raw_response().map(|r| r.status().as_u16()).unwrap_or(0);
    (status, e.code().unwrap_or("").to_string())
}

/// The status and code of a call that must fail; panics (showing the output) if it succeeded.
pub fn fails<T: std::fmt::Debug, E: ProvideErrorMetadata + std::fmt::Debug>(
    r: Result<T, SdkError<E, HttpResponse>>,
) -> (u16, String) {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => {
            let sc = status_code(&e);
            if sc.0 == 0 {
                panic!("no HTTP response: {e:?}");
            }
            sc
        }
    }
}

/// A response header of a failed SDK call.
pub fn err_header<E>(e: &SdkError<E, HttpResponse>, name: &str) -> Option<String> {
    e.raw_response()
        .and_then(|r| r.headers().get(name))
        .map(str::to_string)
}

/// A fresh single-drive server, its client, and the temp dir that holds it.
/// `cybs3 ARGS…` against the server's home, which must succeed: its JSON output
/// (Null when there is none).
pub fn admin(srv: &Server, args: &[&str]) -> serde_json::Value {
    let out = cybs3(&srv.home, args);
    assert!(out.status.success(), "{args:?}: {out:?}");
    serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
}

/// `admin user add NAME [flags…] --json`: the new user's access and secret key.
pub fn add_user(srv: &Server, name: &str, flags: &[&str]) -> (String, String) {
    let mut args = vec!["admin", "user", "add", name, "--json"];
    args.extend_from_slice(flags);
    let v = admin(srv, &args);
    let key = |k: &str| v[k].as_str().unwrap().to_string();
    (key("access_key"), key("secret_key"))
}

/// `admin policy add NAME FILE` with `doc` as the file.
pub fn add_policy(srv: &Server, name: &str, doc: &serde_json::Value) {
    let path = srv.home.join(format!("{name}.json"));
    std::fs::write(&path, doc.to_string()).unwrap();
    admin(
        srv,
        &["admin", "policy", "add", name, path.to_str().unwrap()],
    );
}

pub fn setup() -> (tempfile::TempDir, Server, Client) {
    let tmp = tempfile::tempdir().unwrap();
    let mut srv = Server::new(tmp.path(), 1, None);
    srv.start();
    let c = srv.client();
    (tmp, srv, c)
}

pub async fn set_versioning(c: &Client, b: &str, status: BucketVersioningStatus) {
    c.put_bucket_versioning()
        .bucket(b)
        .versioning_configuration(VersioningConfiguration::builder().status(status).build())
        .send()
        .await
        .expect("put bucket versioning");
}

pub async fn bucket(c: &Client, name: &str) {
    c.create_bucket()
        .bucket(name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create bucket {name}: {e:?}"));
}

/// A bucket policy with these statements.
pub async fn set_policy(c: &Client, bucket: &str, statements: serde_json::Value) {
    let doc = serde_json::json!({"Version": "2012-10-17", "Statement": statements});
    c.put_bucket_policy()
        .bucket(bucket)
        .policy(doc.to_string())
        .send()
        .await
        .unwrap_or_else(|e| panic!("{doc}: {e:?}"));
}

pub async fn put(c: &Client, bucket: &str, key: &str, body: impl Into<Vec<u8>>) -> String {
    let out = c
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body.into()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("put {bucket}/{key}: {e:?}"));
    out.e_tag().unwrap_or_default().to_string()
}

/// A multipart object of these parts (in order), completed: its ETag.
pub async fn put_multipart(c: &Client, bucket: &str, key: &str, bodies: Vec<Vec<u8>>) -> String {
    use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
    let up = c
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap();
    let mut parts = Vec::new();
    for (n, body) in (1..).zip(bodies) {
        let p = c
            .upload_part()
            .bucket(bucket)
            .key(key)
            .upload_id(id)
            .part_number(n)
            .body(ByteStream::from(body))
            .send()
            .await
            .unwrap();
        parts.push(
            CompletedPart::builder()
                .part_number(n)
                .e_tag(p.e_tag().unwrap())
                .build(),
        );
    }
    let done = c
        .complete_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .unwrap();
    done.e_tag().unwrap().to_string()
}

pub async fn get(c: &Client, bucket: &str, key: &str) -> Vec<u8> {
    let out = c
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("get {bucket}/{key}: {e:?}"));
    out.body
        .collect()
        .await
        .expect("body")
        .into_bytes()
        .to_vec()
}

/// Status of a HEAD on the key (200 when present, 404 when absent).
pub async fn head_status(c: &Client, bucket: &str, key: &str) -> u16 {
    match c.head_object().bucket(bucket).key(key).send().await {
        Ok(_) => 200,
        Err(e) => status_code(&e).0,
    }
}

pub async fn keys(c: &Client, bucket: &str) -> Vec<String> {
    let out = c
        .list_objects_v2()
        .bucket(bucket)
        .send()
        .await
        .expect("list");
    out.contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_string))
        .collect()
}

pub fn md5(data: &[u8]) -> [u8; 16] {
    md5::Md5::digest(data).into()
}

pub fn md5_hex(data: &[u8]) -> String {
    hex::encode(md5(data))
}

pub fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    let mut h = <sha2::Sha256 as sha2::Digest>::new();
    sha2::Digest::update(&mut h, data);
    sha2::Digest::finalize(h).into()
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(sha256(data))
}

pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&sha256(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Vec::with_capacity(64 + msg.len());
    inner.extend(k.iter().map(|b| b ^ 0x36));
    inner.extend_from_slice(msg);
    let mut outer = Vec::with_capacity(96);
    outer.extend(k.iter().map(|b| b ^ 0x5c));
    outer.extend_from_slice(&sha256(&inner));
    sha256(&outer)
}

/// CRC-32C (Castagnoli), bitwise: small inputs only.
pub fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

pub fn crc32(data: &[u8]) -> u32 {
    crc32fast::hash(data)
}

/// The ETag S3 gives a multipart object: md5 of the concatenated binary part md5s, "-N".
pub fn multipart_etag(parts: &[&[u8]]) -> String {
    let mut cat = Vec::new();
    for p in parts {
        cat.extend_from_slice(&md5(p));
    }
    format!("\"{}-{}\"", md5_hex(&cat), parts.len())
}

/// `YYYYMMDDTHHMMSSZ` for a time.
pub fn amz_date(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// RFC 7231 HTTP date for a time.
pub fn http_date(t: SystemTime) -> String {
    aws_sdk_s3::primitives::DateTime::from(t)
        .fmt(aws_sdk_s3::primitives::DateTimeFormat::HttpDate)
        .unwrap()
}

/// S3's URI encoding (RFC 3986 unreserved kept; '/' kept unless `slash`).
pub fn uri_encode(s: &str, slash: bool) -> String {
    let mut out = String::new();
    for &b in s.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b'/' if !slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Percent-decoding (for `encoding-type=url` listings).
pub fn url_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8(out).expect("utf-8")
}

/// SigV4 for hand-made requests (header auth).
pub struct Signer {
    pub access: String,
    pub secret: String,
    pub region: String,
    /// Signing time; now when None.
    pub time: Option<SystemTime>,
    /// Host header; `127.0.0.1:PORT` when None.
    pub host: Option<String>,
}

/// What a signed request needs afterwards (streaming chunk signatures).
pub struct Signed {
    pub headers: Vec<(String, String)>,
    pub signature: String,
    pub date: String,
    pub scope: String,
    pub key: [u8; 32],
}

impl Signer {
    pub fn new(access: &str, secret: &str) -> Signer {
        Signer {
            access: access.into(),
            secret: secret.into(),
            region: "us-east-1".into(),
            time: None,
            host: None,
        }
    }

    pub fn signing_key(&self, day: &str) -> [u8; 32] {
        let k = hmac_sha256(format!("AWS4{}", self.secret).as_bytes(), day.as_bytes());
        let k = hmac_sha256(&k, self.region.as_bytes());
        let k = hmac_sha256(&k, b"s3");
        hmac_sha256(&k, b"aws4_request")
    }

    /// Signs `method path?query` with `headers` (host, x-amz-date and x-amz-content-sha256
    /// are added) and returns all headers including Authorization.
    /// `path` must already be URI-encoded; `query` pairs are raw.
    pub fn sign(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        headers: &[(&str, &str)],
        payload_hash: &str,
        port: u16,
    ) -> Signed {
        let date = amz_date(self.time.unwrap_or_else(SystemTime::now));
        let day = &date[..8];
        let mut hs: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        hs.push((
            "host".into(),
            self.host
                .clone()
                .unwrap_or_else(|| format!("127.0.0.1:{port}")),
        ));
        hs.push(("x-amz-date".into(), date.clone()));
        hs.push(("x-amz-content-sha256".into(), payload_hash.into()));
        hs.sort();
        let mut q: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| (uri_encode(k, true), uri_encode(v, true)))
            .collect();
        q.sort();
        let canonical_query = q
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        let canonical_headers: String = hs.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
        let signed_headers = hs
            .iter()
            .map(|(k, _)| k.as_str())
            .collect::<Vec<_>>()
            .join(";");
        let creq = format!(
            "{method}\n{path}\n{canonical_query}\n{canonical_headers}\n{signed_headers}\n{payload_hash}"
        );
        let scope = format!("{day}/{}/s3/aws4_request", self.region);
        let sts = format!(
            "AWS4-HMAC-SHA256\n{date}\n{scope}\n{}",
            sha256_hex(creq.as_bytes())
        );
        let key = self.signing_key(day);
        let signature = hex::encode(hmac_sha256(&key, sts.as_bytes()));
        hs.push((
            "authorization".into(),
            format!(
                "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
                self.access
            ),
        ));
        Signed {
            headers: hs,
            signature,
            date,
            scope,
            key,
        }
    }
}

impl Signed {
    /// The signature of one aws-chunked chunk, chained from the previous one.
    pub fn chunk_signature(&self, prev: &str, chunk: &[u8]) -> String {
        let sts = format!(
            "AWS4-HMAC-SHA256-PAYLOAD\n{}\n{}\n{prev}\n{}\n{}",
            self.date,
            self.scope,
            sha256_hex(b""),
            sha256_hex(chunk)
        );
        hex::encode(hmac_sha256(&self.key, sts.as_bytes()))
    }

    /// The request head (request line, headers, blank line) for `method target`.
    pub fn head(&self, method: &str, target: &str) -> Vec<u8> {
        let mut s = format!("{method} {target} HTTP/1.1\r\n");
        for (k, v) in &self.headers {
            s.push_str(&format!("{k}: {v}\r\n"));
        }
        s.push_str("connection: close\r\n\r\n");
        s.into_bytes()
    }
}

/// A raw HTTP response.
#[derive(Debug, Default)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The `<Code>` of an S3 error body, if any.
    pub fn code(&self) -> Option<String> {
        let t = self.text();
        let start = t.find("<Code>")? + 6;
        let end = t[start..].find("</Code>")? + start;
        Some(t[start..end].to_string())
    }
}

/// Parses a full HTTP/1.1 response (skipping 1xx heads; de-chunking chunked bodies).
pub fn parse_response(mut raw: &[u8]) -> Option<Resp> {
    loop {
        let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
        let head = std::str::from_utf8(&raw[..end]).ok()?;
        let rest = &raw[end + 4..];
        let mut lines = head.split("\r\n");
        let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        if (100..200).contains(&status) {
            raw = rest;
            continue;
        }
        let chunked = headers
            .iter()
            .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
        let body = if chunked {
            let mut out = Vec::new();
            let mut r = rest;
            while let Some(nl) = r.windows(2).position(|w| w == b"\r\n") {
                let size_line = std::str::from_utf8(&r[..nl]).ok()?;
                let size = usize::from_str_radix(size_line.split(';').next()?.trim(), 16).ok()?;
                r = &r[nl + 2..];
                if size == 0 || r.len() < size {
                    out.extend_from_slice(&r[..size.min(r.len())]);
                    break;
                }
                out.extend_from_slice(&r[..size]);
                r = &r[(size + 2).min(r.len())..];
            }
            out
        } else {
            rest.to_vec()
        };
        return Some(Resp {
            status,
            headers,
            body,
        });
    }
}

/// Sends raw bytes on a fresh connection (the request should say `connection: close`)
/// and reads the whole answer; None when the server closed without one.
pub fn raw_exchange(port: u16, request: &[u8]) -> Option<Resp> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(30))).unwrap();
    // The server may answer (and close) before reading everything: keep what it said.
    let _ = s.write_all(request);
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    parse_response(&buf)
}

/// Runs curl (`-s -i`, no proxy, no `Expect: 100-continue`) and parses its answer.
pub fn curl(args: &[&str]) -> Resp {
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "-i",
            "--noproxy",
            "*",
            "-H",
            "Expect:",
            "--max-time",
            "60",
        ])
        .args(args)
        .env_remove("AWS_CA_BUNDLE")
        .output()
        .expect("run curl (is it installed?)");
    parse_response(&out.stdout).unwrap_or_else(|| panic!("curl gave no HTTP answer: {out:?}"))
}

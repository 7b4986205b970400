//! Browser-style uploads (POST Object with a SigV4-signed policy, sent by curl as
//! multipart/form-data) and SigV2 presigned URLs. Assertions follow AWS S3's
//! documented behaviour.

mod common;

use common::*;
use cybs3_tests::Server;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// ISO 8601 (`2030-01-01T00:00:00Z`), as policy expirations are written.
fn iso(t: SystemTime) -> String {
    let d = amz_date(t);
    format!(
        "{}-{}-{}T{}:{}:{}Z",
        &d[0..4],
        &d[4..6],
        &d[6..8],
        &d[9..11],
        &d[11..13],
        &d[13..15]
    )
}

/// A signed POST form: the fields to send (policy and signature fields included).
struct Form {
    fields: Vec<(String, String)>,
}

impl Form {
    /// Signs a policy with `conditions` (JSON array items, without the signature
    /// fields, which are added) expiring at `expires`; `fields` are the form's own.
    fn new(
        srv: &Server,
        expires: SystemTime,
        conditions: &[&str],
        fields: &[(&str, &str)],
    ) -> Form {
        let keys = (srv.access_key.as_str(), srv.secret_key.as_str());
        Form::signed_by(keys, expires, conditions, fields)
    }

    /// As [`Form::new`], signed with another access key and its secret.
    fn signed_by(
        (access_key, secret_key): (&str, &str),
        expires: SystemTime,
        conditions: &[&str],
        fields: &[(&str, &str)],
    ) -> Form {
        let signer = Signer::new(access_key, secret_key);
        let date = amz_date(SystemTime::now());
        let credential = format!("{access_key}/{}/us-east-1/s3/aws4_request", &date[..8]);
        let mut conds: Vec<String> = conditions.iter().map(|c| c.to_string()).collect();
        conds.push(r#"{"x-amz-algorithm": "AWS4-HMAC-SHA256"}"#.into());
        conds.push(format!(r#"{{"x-amz-credential": "{credential}"}}"#));
        conds.push(format!(r#"{{"x-amz-date": "{date}"}}"#));
        let policy = format!(
            r#"{{"expiration": "{}", "conditions": [{}]}}"#,
            iso(expires),
            conds.join(", ")
        );
        let policy = b64(policy.as_bytes());
        let signature = hex::encode(hmac_sha256(
            &signer.signing_key(&date[..8]),
            policy.as_bytes(),
        ));
        let mut all: Vec<(String, String)> = fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        all.push(("x-amz-algorithm".into(), "AWS4-HMAC-SHA256".into()));
        all.push(("x-amz-credential".into(), credential));
        all.push(("x-amz-date".into(), date));
        all.push(("policy".into(), policy));
        all.push(("x-amz-signature".into(), signature));
        Form { fields: all }
    }

    fn set(&mut self, name: &str, value: &str) {
        for f in &mut self.fields {
            if f.0 == name {
                f.1 = value.to_string();
            }
        }
    }

    /// POSTs the form to `/bucket` with `data` as the file part named `file_name`.
    fn send(&self, srv: &Server, bucket: &str, file_name: &str, data: &[u8]) -> Resp {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("upload");
        std::fs::write(&path, data).unwrap();
        let mut args: Vec<String> = Vec::new();
        for (k, v) in &self.fields {
            // --form-string: values are literal (no @file or <file expansion).
            args.push("--form-string".into());
            args.push(format!("{k}={v}"));
        }
        // The file part must come last (AWS ignores fields after it).
        args.push("-F".into());
        args.push(format!("file=@{};filename={file_name}", path.display()));
        args.push(format!("{}/{bucket}", srv.endpoint()));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        curl(&refs)
    }
}

fn in_an_hour() -> SystemTime {
    SystemTime::now() + Duration::from_secs(3600)
}

/// A form is checked against the object it stores (`${filename}` filled in) and the
/// condition keys its fields give, as PutObject is: not against its bucket alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_is_checked_against_its_object_and_its_fields() {
    let (_tmp, srv, root) = setup();
    bucket(&root, "drop").await;
    let doc = |statements: serde_json::Value| serde_json::json!({"Version": "2012-10-17", "Statement": statements});
    add_policy(
        &srv,
        "inbox",
        &doc(serde_json::json!([
            {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::drop/in/*"},
            {"Effect": "Deny", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::drop/*",
             "Condition": {"StringEquals": {"s3:RequestObjectTag/class": "secret"}}}
        ])),
    );
    add_policy(
        &srv,
        "bucket-arn",
        &doc(serde_json::json!([
            {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::drop"}
        ])),
    );
    let inbox = add_user(&srv, "inbox", &["--policy", "inbox"]);
    let bucket_arn = add_user(&srv, "bucket-arn", &["--policy", "bucket-arn"]);
    let conditions = [
        r#"{"bucket": "drop"}"#,
        r#"["starts-with", "$key", ""]"#,
        r#"["starts-with", "$x-amz-tagging", ""]"#,
    ];
    let post = |(ak, sk): &(String, String), key: &str, tags: &str| {
        let fields = [("key", key), ("x-amz-tagging", tags)];
        let form = Form::signed_by((ak, sk), in_an_hour(), &conditions, &fields);
        let r = form.send(&srv, "drop", "photo.jpg", b"data");
        (r.status, r.code())
    };
    let denied = (403, Some("AccessDenied".to_string()));
    assert_eq!(post(&inbox, "in/${filename}", "class=public"), (204, None));
    assert_eq!(get(&root, "drop", "in/photo.jpg").await, b"data");
    assert_eq!(post(&inbox, "out/${filename}", "class=public"), denied);
    assert_eq!(post(&inbox, "in/x", "class=secret"), denied, "its tag");
    assert_eq!(
        post(&bucket_arn, "in/y", ""),
        denied,
        "PutObject on the bucket's ARN grants no object"
    );
    assert_eq!(keys(&root, "drop").await, ["in/photo.jpg"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_object_with_a_signed_policy() {
    let (_tmp, srv, c) = setup();
    bucket(&c, "forms").await;
    let conditions = [
        r#"{"bucket": "forms"}"#,
        r#"["starts-with", "$key", "uploads/"]"#,
        r#"["starts-with", "$Content-Type", "text/"]"#,
        r#"["eq", "$x-amz-meta-color", "blue"]"#,
        r#"["content-length-range", 1, 1024]"#,
    ];
    let fields = [
        ("key", "uploads/hello.txt"),
        ("Content-Type", "text/plain"),
        ("x-amz-meta-color", "blue"),
    ];
    let data = b"hello from a browser form";
    let r = Form::new(&srv, in_an_hour(), &conditions, &fields).send(&srv, "forms", "h.txt", data);
    // No success_action_status: 204, as in S3.
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(
        r.header("etag"),
        Some(format!("\"{}\"", md5_hex(data)).as_str())
    );
    assert_eq!(r.header("location"), Some("/forms/uploads/hello.txt"));

    assert_eq!(get(&c, "forms", "uploads/hello.txt").await, data);
    let h = c
        .head_object()
        .bucket("forms")
        .key("uploads/hello.txt")
        .send()
        .await
        .unwrap();
    assert_eq!(h.content_type(), Some("text/plain"));
    assert_eq!(
        h.metadata()
            .and_then(|m| m.get("color"))
            .map(String::as_str),
        Some("blue")
    );
    assert_eq!(h.e_tag(), Some(format!("\"{}\"", md5_hex(data)).as_str()));

    // x-ignore-* fields need no condition; every other field does.
    let mut f = fields.to_vec();
    f.push(("x-ignore-note", "anything"));
    let r = Form::new(&srv, in_an_hour(), &conditions, &f).send(&srv, "forms", "h.txt", data);
    assert_eq!(r.status, 204, "{}", r.text());
    f.push(("x-amz-meta-extra", "sneaky"));
    let r = Form::new(&srv, in_an_hour(), &conditions, &f).send(&srv, "forms", "h.txt", data);
    assert_eq!(
        (r.status, r.code().as_deref()),
        (403, Some("AccessDenied")),
        "{}",
        r.text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_violations_are_refused() {
    let (_tmp, srv, c) = setup();
    bucket(&c, "forms").await;
    let conditions = [
        r#"{"bucket": "forms"}"#,
        r#"["starts-with", "$key", "uploads/"]"#,
        r#"["content-length-range", 5, 10]"#,
    ];
    let data = b"0123456789";

    // The key outside the allowed prefix.
    let f = Form::new(&srv, in_an_hour(), &conditions, &[("key", "private/x")]);
    let r = f.send(&srv, "forms", "x", data);
    assert_eq!(
        (r.status, r.code().as_deref()),
        (403, Some("AccessDenied")),
        "{}",
        r.text()
    );
    assert!(
        r.text().contains("Invalid according to Policy"),
        "{}",
        r.text()
    );
    assert_eq!(head_status(&c, "forms", "private/x").await, 404);

    // An expired policy, however well signed.
    let past = SystemTime::now() - Duration::from_secs(60);
    let f = Form::new(&srv, past, &conditions, &[("key", "uploads/late")]);
    let r = f.send(&srv, "forms", "x", data);
    assert_eq!(
        (r.status, r.code().as_deref()),
        (403, Some("AccessDenied")),
        "{}",
        r.text()
    );
    assert!(r.text().contains("Policy expired"), "{}", r.text());

    // Sizes outside content-length-range.
    let f = Form::new(&srv, in_an_hour(), &conditions, &[("key", "uploads/size")]);
    let r = f.send(&srv, "forms", "x", b"0123456789A");
    assert_eq!(
        (r.status, r.code().as_deref()),
        (400, Some("EntityTooLarge")),
        "{}",
        r.text()
    );
    let r = f.send(&srv, "forms", "x", b"0123");
    assert_eq!(
        (r.status, r.code().as_deref()),
        (400, Some("EntityTooSmall")),
        "{}",
        r.text()
    );
    assert_eq!(head_status(&c, "forms", "uploads/size").await, 404);
    // The bounds themselves are allowed.
    assert_eq!(f.send(&srv, "forms", "x", b"01234").status, 204);

    // A tampered signature, and a policy changed after signing.
    let mut f = Form::new(&srv, in_an_hour(), &conditions, &[("key", "uploads/t")]);
    let sig = f
        .fields
        .iter()
        .find(|(k, _)| k == "x-amz-signature")
        .unwrap()
        .1
        .clone();
    let flipped = format!(
        "{}{}",
        if sig.starts_with('0') { "1" } else { "0" },
        &sig[1..]
    );
    f.set("x-amz-signature", &flipped);
    let r = f.send(&srv, "forms", "x", data);
    assert_eq!(
        (r.status, r.code().as_deref()),
        (403, Some("SignatureDoesNotMatch")),
        "{}",
        r.text()
    );
    let mut f = Form::new(&srv, in_an_hour(), &conditions, &[("key", "private/t")]);
    let other = Form::new(&srv, in_an_hour(), &[r#"["starts-with", "$key", ""]"#], &[]);
    let loose = other
        .fields
        .iter()
        .find(|(k, _)| k == "policy")
        .unwrap()
        .1
        .clone();
    f.set("policy", &loose);
    let r = f.send(&srv, "forms", "x", data);
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(head_status(&c, "forms", "uploads/t").await, 404);
    assert_eq!(head_status(&c, "forms", "private/t").await, 404);

    // The bucket condition is checked against the bucket posted to.
    bucket(&c, "elsewhere").await;
    let f = Form::new(&srv, in_an_hour(), &conditions, &[("key", "uploads/b")]);
    let r = f.send(&srv, "elsewhere", "x", data);
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(head_status(&c, "elsewhere", "uploads/b").await, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filename_substitution_and_success_actions() {
    let (_tmp, srv, c) = setup();
    bucket(&c, "forms").await;
    let conditions = [
        r#"{"bucket": "forms"}"#,
        r#"["starts-with", "$key", "uploads/"]"#,
        r#"["starts-with", "$success_action_status", ""]"#,
        r#"["starts-with", "$success_action_redirect", ""]"#,
    ];
    let data = b"picture bytes";

    // 201: the PostResponse document names the stored key.
    let fields = [
        ("key", "uploads/${filename}"),
        ("success_action_status", "201"),
    ];
    let r =
        Form::new(&srv, in_an_hour(), &conditions, &fields).send(&srv, "forms", "photo.jpg", data);
    assert_eq!(r.status, 201, "{}", r.text());
    let body = r.text();
    assert!(body.contains("<PostResponse>"), "{body}");
    assert!(body.contains("<Bucket>forms</Bucket>"), "{body}");
    assert!(body.contains("<Key>uploads/photo.jpg</Key>"), "{body}");
    assert!(
        body.contains("<Location>/forms/uploads/photo.jpg</Location>"),
        "{body}"
    );
    assert!(
        body.contains(&format!("<ETag>\"{}\"</ETag>", md5_hex(data))),
        "{body}"
    );
    assert_eq!(get(&c, "forms", "uploads/photo.jpg").await, data);
    assert_eq!(head_status(&c, "forms", "uploads/${filename}").await, 404);

    // 200: empty body.
    let fields = [
        ("key", "uploads/two-${filename}"),
        ("success_action_status", "200"),
    ];
    let r = Form::new(&srv, in_an_hour(), &conditions, &fields).send(&srv, "forms", "a.txt", data);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.body.is_empty());
    assert_eq!(get(&c, "forms", "uploads/two-a.txt").await, data);

    // A redirect: 303 to the page, told the bucket, key and ETag.
    let fields = [
        ("key", "uploads/${filename}"),
        ("success_action_redirect", "https://app.example/done?x=1"),
    ];
    let r = Form::new(&srv, in_an_hour(), &conditions, &fields).send(&srv, "forms", "r.txt", data);
    assert_eq!(r.status, 303, "{}", r.text());
    let loc = r.header("location").unwrap_or_default().to_string();
    assert!(
        loc.starts_with("https://app.example/done?x=1&bucket=forms&key=uploads%2Fr.txt&etag="),
        "{loc}"
    );
    assert_eq!(get(&c, "forms", "uploads/r.txt").await, data);
}

/// HMAC-SHA1 (RFC 2104), for SigV2.
fn hmac_sha1(key: &[u8], msg: &[u8]) -> [u8; 20] {
    use sha1::Digest as _;
    let mut k = [0u8; 64];
    k[..key.len()].copy_from_slice(key);
    let mut inner = sha1::Sha1::new();
    inner.update(k.iter().map(|b| b ^ 0x36).collect::<Vec<_>>());
    inner.update(msg);
    let mut outer = sha1::Sha1::new();
    outer.update(k.iter().map(|b| b ^ 0x5c).collect::<Vec<_>>());
    outer.update(inner.finalize());
    outer.finalize().into()
}

fn sigv2_url(srv: &Server, bucket: &str, key: &str, expires: u64) -> (String, String) {
    let sts = format!("GET\n\n\n{expires}\n/{bucket}/{key}");
    let sig = b64(&hmac_sha1(srv.secret_key.as_bytes(), sts.as_bytes()));
    let base = format!(
        "{}/{bucket}/{key}?AWSAccessKeyId={}&Expires={expires}&Signature=",
        srv.endpoint(),
        srv.access_key
    );
    (base, sig)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigv2_presigned_get() {
    let (_tmp, srv, c) = setup();
    bucket(&c, "sigv2").await;
    put(&c, "sigv2", "doc.txt", b"signed the old way".to_vec()).await;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();

    let (base, sig) = sigv2_url(&srv, "sigv2", "doc.txt", now + 600);
    let r = curl(&[&format!("{base}{}", uri_encode(&sig, true))]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body, b"signed the old way");

    // Expired.
    let (base, sig) = sigv2_url(&srv, "sigv2", "doc.txt", now - 60);
    let r = curl(&[&format!("{base}{}", uri_encode(&sig, true))]);
    assert_eq!(
        (r.status, r.code().as_deref()),
        (403, Some("AccessDenied")),
        "{}",
        r.text()
    );

    // Tampered: the signature of another key.
    let (base, _) = sigv2_url(&srv, "sigv2", "doc.txt", now + 600);
    let (_, other) = sigv2_url(&srv, "sigv2", "other.txt", now + 600);
    let r = curl(&[&format!("{base}{}", uri_encode(&other, true))]);
    assert_eq!(
        (r.status, r.code().as_deref()),
        (403, Some("SignatureDoesNotMatch")),
        "{}",
        r.text()
    );
    // Or a later expiry than the one signed.
    let (base, sig) = sigv2_url(&srv, "sigv2", "doc.txt", now + 600);
    let r = curl(&[&format!(
        "{}{}",
        base.replace(&format!("{}", now + 600), &format!("{}", now + 6000)),
        uri_encode(&sig, true)
    )]);
    assert_eq!(r.status, 403, "{}", r.text());
}

/// A form can ask for server-side encryption (SSE-S3 here, and SSE-KMS), as PutObject can;
/// so can a presigned PUT that signs the header.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_and_presigned_puts_ask_for_encryption() {
    let (_tmp, srv, c) = setup();
    bucket(&c, "forms").await;
    let conditions = [
        r#"{"bucket": "forms"}"#,
        r#"["starts-with", "$key", "enc/"]"#,
        r#"["starts-with", "$x-amz-server-side-encryption", ""]"#,
    ];
    for (key, sse) in [("enc/s3", "AES256"), ("enc/kms", "aws:kms")] {
        let fields = [("key", key), ("x-amz-server-side-encryption", sse)];
        let r =
            Form::new(&srv, in_an_hour(), &conditions, &fields).send(&srv, "forms", "f", b"sealed");
        assert_eq!(r.status, 204, "{}", r.text());
        assert_eq!(r.header("x-amz-server-side-encryption"), Some(sse));
        let h = c
            .head_object()
            .bucket("forms")
            .key(key)
            .send()
            .await
            .unwrap();
        assert_eq!(h.server_side_encryption().map(|e| e.as_str()), Some(sse));
        assert_eq!(get(&c, "forms", key).await, b"sealed");
    }
    // A presigned PUT that signs x-amz-server-side-encryption.
    let presigned = c
        .put_object()
        .bucket("forms")
        .key("enc/presigned")
        .server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::Aes256)
        .presigned(
            aws_sdk_s3::presigning::PresigningConfig::expires_in(Duration::from_secs(300)).unwrap(),
        )
        .await
        .unwrap();
    let mut args = vec!["-s".to_string(), "-X".into(), "PUT".into()];
    for (k, v) in presigned.headers() {
        args.push("-H".into());
        args.push(format!("{k}: {v}"));
    }
    args.extend([
        "--data-binary".into(),
        "presigned body".into(),
        presigned.uri().to_string(),
    ]);
    let out = std::process::Command::new("curl")
        .args(&args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let h = c
        .head_object()
        .bucket("forms")
        .key("enc/presigned")
        .send()
        .await
        .unwrap();
    assert_eq!(
        h.server_side_encryption().map(|e| e.as_str()),
        Some("AES256")
    );
    assert_eq!(get(&c, "forms", "enc/presigned").await, b"presigned body");
}

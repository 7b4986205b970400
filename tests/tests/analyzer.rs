//! The access analyzer (`cybs3 admin analyze`): a clean store has no finding; each risk
//! planted with real clients (aws-sdk-s3; awscli for AssumeRole) is reported once, with
//! its kind and resource, and goes when it is taken away.

mod common;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ObjectCannedAcl, ObjectOwnership, OwnershipControls, OwnershipControlsRule,
    PublicAccessBlockConfiguration,
};
use aws_sdk_s3::Client;
use common::*;
use cybs3_tests::{cybs3, Server};
use serde_json::{json, Value};

/// `cybs3 admin analyze --json [flags…]`: the findings.
fn analyze(srv: &Server, flags: &[&str]) -> Vec<Value> {
    let mut args = vec!["admin", "analyze", "--json"];
    args.extend_from_slice(flags);
    match admin(srv, &args) {
        Value::Array(findings) => findings,
        other => panic!("not an array of findings: {other}"),
    }
}

/// The one finding of `kind`, which must be on `resource`; every finding carries the
/// fields the contract names.
fn only(findings: &[Value], kind: &str, resource: &str) -> Value {
    for f in findings {
        for field in ["severity", "kind", "resource", "evidence", "fix"] {
            assert!(!f[field].is_null(), "{field} missing in {f}");
        }
    }
    let of_kind: Vec<&Value> = findings.iter().filter(|f| f["kind"] == kind).collect();
    assert_eq!(of_kind.len(), 1, "one {kind} expected: {findings:#?}");
    assert_eq!(of_kind[0]["resource"], resource, "{findings:#?}");
    of_kind[0].clone()
}

fn none_on(findings: &[Value], resource: &str) {
    assert!(
        findings.iter().all(|f| f["resource"] != resource),
        "nothing expected on {resource}: {findings:#?}"
    );
}

async fn ownership(c: &Client, bucket: &str, o: ObjectOwnership) {
    let rule = OwnershipControlsRule::builder()
        .object_ownership(o)
        .build()
        .unwrap();
    c.put_bucket_ownership_controls()
        .bucket(bucket)
        .ownership_controls(OwnershipControls::builder().rules(rule).build().unwrap())
        .send()
        .await
        .unwrap();
}

fn policy_doc(statements: Value) -> Value {
    json!({"Version": "2012-10-17", "Statement": statements})
}

#[tokio::test]
async fn each_planted_risk_is_found_once_and_goes_with_it() {
    let (_tmp, srv, root) = setup();
    // A clean store: private buckets, users with ordinary scoped policies.
    for b in ["team", "archive"] {
        bucket(&root, b).await;
        put(&root, b, "doc.txt", b"hello".to_vec()).await;
    }
    add_policy(
        &srv,
        "team-rw",
        &policy_doc(json!([{"Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject", "s3:ListBucket"],
            "Resource": ["arn:aws:s3:::team", "arn:aws:s3:::team/*"]}])),
    );
    add_user(&srv, "alice", &["--policy", "team-rw"]);
    add_user(&srv, "reader", &["--policy", "readonly"]);
    assert_eq!(analyze(&srv, &[]), Vec::<Value>::new());
    let out = cybs3(&srv.home, &["admin", "analyze"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "no findings");

    // A public-read bucket policy.
    bucket(&root, "site").await;
    let public_read = json!([{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::site/*"}]);
    set_policy(&root, "site", public_read.clone()).await;
    let found = analyze(&srv, &[]);
    assert_eq!(found.len(), 1, "{found:#?}");
    let f = only(&found, "public-bucket-policy", "bucket:site");
    assert_eq!(
        (&f["severity"], &f["blocked"]),
        (&json!("high"), &json!(false))
    );
    assert_eq!(f["evidence"]["statement"], public_read[0]);
    assert!(f["fix"].as_str().unwrap().contains("--bucket site"), "{f}");
    // Human output: one block per finding.
    let out = cybs3(&srv.home, &["admin", "analyze"]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("HIGH public-bucket-policy bucket:site\n"),
        "{text}"
    );
    assert!(text.contains("  fix: aws s3api"), "{text}");

    // The same bucket with a public access block: reported as blocked.
    let block = PublicAccessBlockConfiguration::builder()
        .restrict_public_buckets(true)
        .build();
    root.put_public_access_block()
        .bucket("site")
        .public_access_block_configuration(block)
        .send()
        .await
        .unwrap();
    let f = only(&analyze(&srv, &[]), "public-bucket-policy", "bucket:site");
    assert_eq!(
        (&f["severity"], &f["blocked"]),
        (&json!("low"), &json!(true))
    );
    root.delete_bucket_policy()
        .bucket("site")
        .send()
        .await
        .unwrap();
    assert_eq!(analyze(&srv, &[]), Vec::<Value>::new());

    // An object with a public-read ACL under ObjectWriter ownership.
    bucket(&root, "media").await;
    ownership(&root, "media", ObjectOwnership::ObjectWriter).await;
    for (key, acl) in [
        ("cat.png", ObjectCannedAcl::PublicRead),
        ("dog.png", ObjectCannedAcl::Private),
    ] {
        root.put_object()
            .bucket("media")
            .key(key)
            .acl(acl)
            .body(ByteStream::from_static(b"png"))
            .send()
            .await
            .unwrap();
    }
    let found = analyze(&srv, &[]);
    let f = only(&found, "public-object-acl", "object:media/cat.png");
    assert_eq!(
        (&f["severity"], &f["blocked"]),
        (&json!("high"), &json!(false))
    );
    none_on(&found, "object:media/dog.png");
    root.put_object_acl()
        .bucket("media")
        .key("cat.png")
        .acl(ObjectCannedAcl::Private)
        .send()
        .await
        .unwrap();
    assert_eq!(analyze(&srv, &[]), Vec::<Value>::new());

    // A bucket policy granting another user.
    let to_alice = json!([{"Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::000000000000:user/alice"},
        "Action": "s3:GetObject", "Resource": "arn:aws:s3:::archive/*"}]);
    set_policy(&root, "archive", to_alice).await;
    let found = analyze(&srv, &[]);
    assert_eq!(found.len(), 1, "{found:#?}");
    let f = only(&found, "cross-user-grant", "bucket:archive");
    assert!(f["summary"].as_str().unwrap().contains("alice"), "{f}");
    root.delete_bucket_policy()
        .bucket("archive")
        .send()
        .await
        .unwrap();
    assert_eq!(analyze(&srv, &[]), Vec::<Value>::new());

    // An IAM policy with s3:* on * attached to a user.
    let everything = policy_doc(json!([{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]));
    add_policy(&srv, "everything", &everything);
    assert_eq!(
        analyze(&srv, &[]),
        Vec::<Value>::new(),
        "attached to nobody"
    );
    admin(
        &srv,
        &["admin", "policy", "attach", "everything", "--user", "alice"],
    );
    let found = analyze(&srv, &[]);
    assert_eq!(found.len(), 1, "{found:#?}");
    let f = only(&found, "full-s3-access", "policy:everything");
    assert_eq!(f["severity"], "high");
    assert_eq!(f["evidence"]["attached_to"], json!(["user:alice"]));
    assert_eq!(
        f["fix"],
        "cybs3 admin policy add everything SCOPED.json (naming only the buckets and actions \
         needed), or cybs3 admin policy detach everything --user alice"
    );
    admin(
        &srv,
        &["admin", "policy", "detach", "everything", "--user", "alice"],
    );
    assert_eq!(analyze(&srv, &[]), Vec::<Value>::new());

    // A policy whose condition can never hold (a grant that ended in 2020).
    let expired = policy_doc(json!([{"Effect": "Allow", "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::archive/*",
        "Condition": {"DateLessThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}}]));
    add_policy(&srv, "expired", &expired);
    admin(
        &srv,
        &["admin", "policy", "attach", "expired", "--user", "reader"],
    );
    let found = analyze(&srv, &[]);
    assert_eq!(found.len(), 1, "{found:#?}");
    let f = only(&found, "impossible-condition", "policy:expired");
    assert!(f["summary"].as_str().unwrap().contains("has passed"), "{f}");
    admin(
        &srv,
        &["admin", "policy", "detach", "expired", "--user", "reader"],
    );
    assert_eq!(analyze(&srv, &[]), Vec::<Value>::new());
}

/// `aws sts assume-role` (awscli) with a user's key: the session's access key.
fn assume_role(srv: &Server, ak: &str, sk: &str, duration: u64) -> String {
    let out = std::process::Command::new("aws")
        .args(["sts", "assume-role", "--endpoint-url", &srv.endpoint()])
        .args(["--role-arn", "arn:aws:iam::000000000000:role/any"])
        .args(["--role-session-name", "tests", "--output", "json"])
        .args(["--duration-seconds", &duration.to_string()])
        .env("AWS_ACCESS_KEY_ID", ak)
        .env("AWS_SECRET_ACCESS_KEY", sk)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", srv.home.join("no-aws-config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            srv.home.join("no-aws-credentials"),
        )
        .output()
        .expect("run aws (is awscli installed?)");
    assert!(out.status.success(), "{out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["Credentials"]["AccessKeyId"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn unused_users_and_long_sessions() {
    let (_tmp, srv, root) = setup();
    add_user(&srv, "idle", &["--policy", "readonly"]);
    let (ak, sk) = add_user(&srv, "roamer", &["--policy", "readonly"]);
    root.list_buckets().send().await.unwrap();
    assert_eq!(analyze(&srv, &[]), Vec::<Value>::new());

    // An hour's session is ordinary; twelve hours' is a finding until it is ended.
    assume_role(&srv, &ak, &sk, 3600);
    assert_eq!(analyze(&srv, &[]), Vec::<Value>::new());
    let long = assume_role(&srv, &ak, &sk, 12 * 3600);
    let found = analyze(&srv, &[]);
    assert_eq!(found.len(), 1, "{found:#?}");
    let f = only(&found, "long-session", &format!("key:{long}"));
    // The record is written a moment after the session's end is set: maybe a second on.
    let granted = f["evidence"]["duration_secs"].as_u64().unwrap();
    assert!((12 * 3600 - 1..=12 * 3600).contains(&granted), "{f}");
    assert!(f["summary"].as_str().unwrap().contains("for 12 h"), "{f}");
    assert_eq!(
        f["fix"],
        format!("cybs3 admin key remove {long} (ends the session now)")
    );
    admin(&srv, &["admin", "key", "remove", &long]);
    assert_eq!(analyze(&srv, &[]), Vec::<Value>::new());

    // With --unused-days 0, every user created before now is unused (its key is part
    // of the user's finding, not one of its own).
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let found = analyze(&srv, &["--unused-days", "0"]);
    let f = only(
        &found
            .iter()
            .filter(|f| f["resource"] == "user:idle")
            .cloned()
            .collect::<Vec<_>>(),
        "unused-user",
        "user:idle",
    );
    assert_eq!(f["fix"], "cybs3 admin user remove idle");
    assert!(
        found.iter().all(|f| f["kind"] != "unused-key"),
        "{found:#?}"
    );
    admin(&srv, &["admin", "user", "remove", "idle"]);
    let found = analyze(&srv, &["--unused-days", "0"]);
    none_on(&found, "user:idle");
    only(&found, "unused-user", "user:roamer");
}

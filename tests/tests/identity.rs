//! Users, groups and IAM policies (`cybs3 admin user|group|policy`), bucket policies
//! with `aws:SourceIp`, and AssumeRole sessions: checked through aws-sdk-s3 and curl.

mod common;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use common::*;
use cybs3_tests::{cybs3, Server};
use std::path::Path;

fn admin(srv: &Server, args: &[&str]) -> serde_json::Value {
    let out = cybs3(&srv.home, args);
    assert!(out.status.success(), "{args:?}: {out:?}");
    serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
}

/// `admin user add NAME [flags…] --json`: a client signing as the new user.
fn user(srv: &Server, name: &str, flags: &[&str]) -> (Client, String, String) {
    let mut args = vec!["admin", "user", "add", name, "--json"];
    args.extend_from_slice(flags);
    let v = admin(srv, &args);
    let (ak, sk) = (
        v["access_key"].as_str().unwrap().to_string(),
        v["secret_key"].as_str().unwrap().to_string(),
    );
    (srv.client_as(&ak, &sk), ak, sk)
}

fn policy_file(dir: &Path, name: &str, doc: serde_json::Value) -> String {
    let p = dir.join(format!("{name}.json"));
    std::fs::write(&p, doc.to_string()).unwrap();
    p.display().to_string()
}

async fn denied<T: std::fmt::Debug, E>(
    r: Result<T, aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>>,
) where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::fmt::Debug,
{
    assert_eq!(fails(r), (403, "AccessDenied".to_string()));
}

async fn list(c: &Client, bucket: &str, prefix: &str) -> Result<Vec<String>, String> {
    c.list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .send()
        .await
        .map(|o| {
            o.contents()
                .iter()
                .filter_map(|x| x.key().map(str::to_string))
                .collect()
        })
        .map_err(|e| format!("{:?}", status_code(&e)))
}

#[tokio::test]
async fn users_groups_and_policies() {
    let (tmp, srv, root) = setup();
    bucket(&root, "team").await;
    for k in ["public/a", "secret/b", "home/alice/1", "home/bob/2"] {
        put(&root, "team", k, k.as_bytes().to_vec()).await;
    }

    // Canned policies.
    let (reader, _, _) = user(&srv, "reader", &["--policy", "readonly"]);
    assert_eq!(get(&reader, "team", "public/a").await, b"public/a");
    assert_eq!(list(&reader, "team", "").await.unwrap().len(), 4);
    denied(
        reader
            .put_object()
            .bucket("team")
            .key("x")
            .body(ByteStream::from_static(b"x"))
            .send()
            .await,
    )
    .await;
    denied(
        reader
            .delete_object()
            .bucket("team")
            .key("public/a")
            .send()
            .await,
    )
    .await;
    denied(reader.create_bucket().bucket("mine").send().await).await;

    // Explicit deny beats the allow of readwrite.
    let (writer, _, _) = user(&srv, "writer", &["--policy", "readwrite"]);
    put(&writer, "team", "public/w", b"w".to_vec()).await;
    let deny = policy_file(
        tmp.path(),
        "no-secrets",
        serde_json::json!({"Version": "2012-10-17", "Statement": [{
            "Effect": "Deny", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::team/secret/*"}]}),
    );
    admin(&srv, &["admin", "policy", "add", "no-secrets", &deny]);
    admin(
        &srv,
        &[
            "admin",
            "policy",
            "attach",
            "no-secrets",
            "--user",
            "writer",
        ],
    );
    denied(
        writer
            .get_object()
            .bucket("team")
            .key("secret/b")
            .send()
            .await,
    )
    .await;
    assert_eq!(get(&writer, "team", "public/a").await, b"public/a");
    // An unusable Range is ignored after the signature check, never in place of the
    // access check: the deny still holds, and the allowed read gets the whole object.
    let ignored_range = writer.get_object().bucket("team").range("bytes=5-1");
    denied(ignored_range.clone().key("secret/b").send().await).await;
    let whole = ignored_range.key("public/a").send().await.unwrap();
    assert_eq!(
        whole.body.collect().await.unwrap().into_bytes().as_ref(),
        b"public/a"
    );
    // …and it cannot be removed while attached.
    let out = cybs3(&srv.home, &["admin", "policy", "remove", "no-secrets"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("detach it first"),
        "{out:?}"
    );

    // A prefix-scoped user sees only their prefix (policy variables).
    let home = policy_file(
        tmp.path(),
        "home",
        serde_json::json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::team",
             "Condition": {"StringLike": {"s3:prefix": ["home/${aws:username}/*"]}}},
            {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
             "Resource": "arn:aws:s3:::team/home/${aws:username}/*"}]}),
    );
    admin(&srv, &["admin", "policy", "add", "home", &home]);
    let (alice, _, _) = user(&srv, "alice", &["--policy", "home"]);
    assert_eq!(
        list(&alice, "team", "home/alice/").await.unwrap(),
        vec!["home/alice/1"]
    );
    assert_eq!(
        list(&alice, "team", "").await,
        Err("(403, \"AccessDenied\")".into())
    );
    assert_eq!(
        list(&alice, "team", "home/bob/").await,
        Err("(403, \"AccessDenied\")".into())
    );
    put(&alice, "team", "home/alice/2", b"mine".to_vec()).await;
    denied(
        alice
            .put_object()
            .bucket("team")
            .key("home/bob/3")
            .body(ByteStream::from_static(b"x"))
            .send()
            .await,
    )
    .await;
    denied(
        alice
            .get_object()
            .bucket("team")
            .key("home/bob/2")
            .send()
            .await,
    )
    .await;
    // Copying needs read access to the source too.
    denied(
        alice
            .copy_object()
            .bucket("team")
            .key("home/alice/stolen")
            .copy_source("team/secret/b")
            .send()
            .await,
    )
    .await;

    // Groups give their policies to their members.
    admin(
        &srv,
        &["admin", "group", "add", "auditors", "--policy", "readonly"],
    );
    let (carol, _, _) = user(&srv, "carol", &["--group", "auditors"]);
    assert_eq!(get(&carol, "team", "secret/b").await, b"secret/b");
    admin(
        &srv,
        &["admin", "group", "remove-user", "auditors", "carol"],
    );
    denied(
        carol
            .get_object()
            .bucket("team")
            .key("secret/b")
            .send()
            .await,
    )
    .await;

    let users = admin(&srv, &["admin", "user", "list", "--json"]);
    let names: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["alice", "carol", "reader", "writer"]);
    assert!(
        !users.to_string().contains("secret_key"),
        "no secret is ever listed"
    );

    // A removed user's key is refused on the very next request.
    admin(&srv, &["admin", "user", "remove", "writer"]);
    let (st, code) = fails(
        writer
            .get_object()
            .bucket("team")
            .key("public/a")
            .send()
            .await,
    );
    assert_eq!((st, code.as_str()), (403, "InvalidAccessKeyId"));
    let out = cybs3(&srv.home, &["admin", "user", "remove", "writer"]);
    assert!(!out.status.success(), "removing twice fails");

    // Bad names and unknown policies are refused with a message.
    let out = cybs3(&srv.home, &["admin", "user", "add", "../x"]);
    assert!(!out.status.success());
    let out = cybs3(
        &srv.home,
        &["admin", "user", "add", "dan", "--policy", "nope"],
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("there is no policy nope"),
        "{out:?}"
    );
}

/// The status of a GET (curl) from `source`, anonymous or signed with `creds` (curl's
/// SigV4; the shared `curl` helper's empty `Expect:` header would upset its signing).
/// A GET or HEAD of a missing key answers 404 NoSuchKey to a caller who may list the
/// bucket (s3:ListBucket) and 403 AccessDenied to one who may only read objects, as AWS
/// does, so keys cannot be probed for.
#[tokio::test]
async fn missing_keys_are_told_only_to_callers_who_may_list() {
    let (tmp, srv, root) = setup();
    bucket(&root, "probe").await;
    put(&root, "probe", "here", b"x".to_vec()).await;
    let get_only = policy_file(
        tmp.path(),
        "get-only",
        serde_json::json!({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::probe/*"}]}),
    );
    admin(&srv, &["admin", "policy", "add", "get-only", &get_only]);
    let (getter, _, _) = user(&srv, "getter", &["--policy", "get-only"]);
    let (reader, _, _) = user(&srv, "reader", &["--policy", "readonly"]);

    assert_eq!(get(&getter, "probe", "here").await, b"x");
    assert_eq!(head_status(&getter, "probe", "here").await, 200);
    let (st, code) = fails(
        getter
            .get_object()
            .bucket("probe")
            .key("missing")
            .send()
            .await,
    );
    assert_eq!(
        (st, code.as_str()),
        (403, "AccessDenied"),
        "GET without s3:ListBucket"
    );
    assert_eq!(
        head_status(&getter, "probe", "missing").await,
        403,
        "HEAD without s3:ListBucket"
    );

    for (who, c) in [("reader", &reader), ("root", &root)] {
        let (st, code) = fails(c.get_object().bucket("probe").key("missing").send().await);
        assert_eq!((st, code.as_str()), (404, "NoSuchKey"), "GET as {who}");
        assert_eq!(
            head_status(c, "probe", "missing").await,
            404,
            "HEAD as {who}"
        );
    }
}

fn curl_get(srv: &Server, path: &str, source: &str, creds: Option<(&str, &str)>) -> u16 {
    let mut cmd = std::process::Command::new("curl");
    cmd.args([
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--noproxy",
        "*",
    ])
    .args(["--max-time", "60", "--interface", source]);
    if let Some((ak, sk)) = creds {
        cmd.args([
            "--aws-sigv4",
            "aws:amz:us-east-1:s3",
            "--user",
            &format!("{ak}:{sk}"),
        ])
        .args(["-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD"]);
    }
    let out = cmd
        .arg(format!("{}/{path}", srv.endpoint()))
        .output()
        .expect("run curl");
    String::from_utf8_lossy(&out.stdout)
        .parse()
        .expect("curl prints the status")
}

#[tokio::test]
async fn bucket_policies_source_ip_and_anonymous_access() {
    let tmp = tempfile::tempdir().unwrap();
    let mut srv = Server::new(tmp.path(), 1, None);
    // A reverse proxy on 127.0.0.3 whose X-Forwarded-For is believed.
    srv.args = vec!["--trusted-proxy=127.0.0.3".into()];
    srv.start();
    let root = srv.client();
    bucket(&root, "site").await;
    put(&root, "site", "index.html", b"<h1>hi</h1>".to_vec()).await;
    let (_, ak, sk) = user(&srv, "web", &["--policy", "readonly"]);

    // Nothing is anonymous without a policy.
    assert_eq!(curl_get(&srv, "site/index.html", "127.0.0.1", None), 403);

    let doc = serde_json::json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "LanRead", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
         "Resource": "arn:aws:s3:::site/*",
         "Condition": {"IpAddress": {"aws:SourceIp": "127.0.0.1/32"}}},
        {"Sid": "OnlyFromHere", "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "s3:*",
         "Resource": ["arn:aws:s3:::site", "arn:aws:s3:::site/*"],
         "Condition": {"NotIpAddress": {"aws:SourceIp": "127.0.0.1"}}}]});
    root.put_bucket_policy()
        .bucket("site")
        .policy(doc.to_string())
        .send()
        .await
        .unwrap();
    let back = root
        .get_bucket_policy()
        .bucket("site")
        .send()
        .await
        .unwrap();
    assert_eq!(back.policy(), Some(doc.to_string().as_str()));
    let status = root
        .get_bucket_policy_status()
        .bucket("site")
        .send()
        .await
        .unwrap();
    assert_eq!(
        status.policy_status().and_then(|s| s.is_public()),
        Some(false)
    );

    // Anonymous: allowed from 127.0.0.1, denied from 127.0.0.2.
    assert_eq!(curl_get(&srv, "site/index.html", "127.0.0.1", None), 200);
    assert_eq!(curl_get(&srv, "site/index.html", "127.0.0.2", None), 403);
    // Anonymous gets only what was granted: no listing, no writes.
    assert_eq!(curl_get(&srv, "site", "127.0.0.1", None), 403);
    // A signed user is denied from the other address by the explicit deny.
    assert_eq!(
        curl_get(&srv, "site/index.html", "127.0.0.1", Some((&ak, &sk))),
        200
    );
    assert_eq!(
        curl_get(&srv, "site/index.html", "127.0.0.2", Some((&ak, &sk))),
        403
    );
    // X-Forwarded-For is not believed from an untrusted peer.
    let url = format!("{}/site/index.html", srv.endpoint());
    let r = curl(&[
        "--interface",
        "127.0.0.2",
        "-H",
        "X-Forwarded-For: 127.0.0.1",
        &url,
    ]);
    assert_eq!(r.status, 403);

    // Malformed policies are refused and change nothing.
    for bad in [
        "not json".to_string(),
        serde_json::json!({"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::site/*"}]}).to_string(),
        serde_json::json!({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::other/*"}]}).to_string(),
        serde_json::json!({"Statement": [{"Effect": "Alow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::site/*"}]}).to_string(),
    ] {
        let (st, code) = fails(root.put_bucket_policy().bucket("site").policy(bad).send().await);
        assert_eq!((st, code.as_str()), (400, "MalformedPolicy"));
    }
    assert_eq!(curl_get(&srv, "site/index.html", "127.0.0.1", None), 200);

    root.delete_bucket_policy()
        .bucket("site")
        .send()
        .await
        .unwrap();
    assert_eq!(curl_get(&srv, "site/index.html", "127.0.0.1", None), 403);
    let (st, code) = fails(root.get_bucket_policy().bucket("site").send().await);
    assert_eq!((st, code.as_str()), (404, "NoSuchBucketPolicy"));
}

/// `aws sts assume-role` (awscli) with a user's key; (status, JSON or error text).
fn aws_assume_role(
    srv: &Server,
    ak: &str,
    sk: &str,
    duration: u64,
) -> Result<serde_json::Value, String> {
    let dir = tempfile::tempdir().unwrap();
    // Let durations below AWS's 900 s through to the server (it enforces its own minimum).
    std::fs::write(
        dir.path().join("config"),
        "[default]\nparameter_validation = false\n",
    )
    .unwrap();
    let out = std::process::Command::new("aws")
        .args(["sts", "assume-role", "--endpoint-url", &srv.endpoint()])
        .args([
            "--role-arn",
            "arn:aws:iam::000000000000:role/any",
            "--role-session-name",
            "tests",
        ])
        .args([
            "--duration-seconds",
            &duration.to_string(),
            "--output",
            "json",
        ])
        .env("AWS_ACCESS_KEY_ID", ak)
        .env("AWS_SECRET_ACCESS_KEY", sk)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", dir.path().join("config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", dir.path().join("none"))
        .output()
        .expect("run aws (is awscli installed?)");
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn assume_role(srv: &Server, ak: &str, sk: &str, duration: u64) -> (String, String, String) {
    let v = aws_assume_role(srv, ak, sk, duration).unwrap();
    let c = &v["Credentials"];
    let s = |n: &str| c[n].as_str().unwrap().to_string();
    (s("AccessKeyId"), s("SecretAccessKey"), s("SessionToken"))
}

#[tokio::test]
async fn assume_role_sessions_need_their_token_and_expire() {
    let tmp = tempfile::tempdir().unwrap();
    let mut srv = Server::new(tmp.path(), 1, None);
    srv.args = vec!["--sts-min-duration".into(), "2".into()];
    srv.start();
    let root = srv.client();
    bucket(&root, "data").await;
    let (_, ak, sk) = user(&srv, "dave", &["--policy", "readwrite"]);

    let (tak, tsk, token) = assume_role(&srv, &ak, &sk, 3);
    let session = srv.client_with(&tak, &tsk, Some(&token));
    put(&session, "data", "k", b"v".to_vec()).await;
    assert_eq!(get(&session, "data", "k").await, b"v");

    // The token is required, and must be the right one.
    let bare = srv.client_as(&tak, &tsk);
    let (st, code) = fails(bare.get_object().bucket("data").key("k").send().await);
    assert_eq!((st, code.as_str()), (400, "InvalidToken"));
    let forged = srv.client_with(&tak, &tsk, Some("forged"));
    let (st, code) = fails(forged.get_object().bucket("data").key("k").send().await);
    assert_eq!((st, code.as_str()), (400, "InvalidToken"));

    // Expired credentials are refused.
    std::thread::sleep(std::time::Duration::from_secs(4));
    let (st, code) = fails(session.get_object().bucket("data").key("k").send().await);
    assert_eq!((st, code.as_str()), (400, "ExpiredToken"));

    // Durations outside the allowed range are refused, and so is the root key.
    let e = aws_assume_role(&srv, &ak, &sk, 99_999).unwrap_err();
    assert!(e.contains("ValidationError"), "{e}");
    let e = aws_assume_role(&srv, &srv.access_key, &srv.secret_key, 900).unwrap_err();
    assert!(e.contains("AccessDenied"), "{e}");

    // Removing the user ends its sessions at once.
    let (tak, tsk, token) = assume_role(&srv, &ak, &sk, 60);
    let session = srv.client_with(&tak, &tsk, Some(&token));
    assert_eq!(get(&session, "data", "k").await, b"v");
    admin(&srv, &["admin", "user", "remove", "dave"]);
    let (st, code) = fails(session.get_object().bucket("data").key("k").send().await);
    assert_eq!((st, code.as_str()), (403, "InvalidAccessKeyId"));
}

/// `x-amz-bypass-governance-retention` counts only for a caller granted
/// `s3:BypassGovernanceRetention`; without it the delete is refused like any other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_governance_bypass_needs_its_permission() {
    use aws_sdk_s3::types::ObjectLockMode;
    let (tmp, srv, root) = setup();
    root.create_bucket()
        .bucket("worm")
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .unwrap();
    let deleter = |name: &str, extra: &[&str]| {
        let mut actions = vec!["s3:GetObject", "s3:DeleteObject", "s3:DeleteObjectVersion"];
        actions.extend_from_slice(extra);
        let doc = serde_json::json!({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": actions, "Resource": "arn:aws:s3:::worm/*"}]});
        let file = policy_file(tmp.path(), name, doc);
        admin(&srv, &["admin", "policy", "add", name, &file]);
        user(&srv, name, &["--policy", name]).0
    };
    let plain = deleter("plain", &[]);
    let trusted = deleter("trusted", &["s3:BypassGovernanceRetention"]);
    for (who, c, allowed) in [("plain", &plain, false), ("trusted", &trusted, true)] {
        let until = std::time::SystemTime::now() + std::time::Duration::from_secs(3600);
        let v = root
            .put_object()
            .bucket("worm")
            .key(who)
            .body(ByteStream::from_static(b"governed"))
            .object_lock_mode(ObjectLockMode::Governance)
            .object_lock_retain_until_date(until.into())
            .send()
            .await
            .unwrap()
            .version_id
            .unwrap();
        let r = c
            .delete_object()
            .bucket("worm")
            .key(who)
            .version_id(&v)
            .bypass_governance_retention(true)
            .send()
            .await;
        match allowed {
            true => assert!(r.is_ok(), "{who}: {r:?}"),
            false => denied(r).await,
        }
    }
}

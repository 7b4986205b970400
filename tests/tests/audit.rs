//! The audit log through the real binary: a known set of S3 requests (some denied, one
//! with a bad signature) and management calls, then `admin audit report` must count
//! exactly them, and `admin audit verify` must pass the untouched log and catch an
//! edited line, a deleted line, a truncated file and a removed file.

mod common;

use aws_sdk_s3::operation::RequestId;
use aws_sdk_s3::primitives::ByteStream;
use common::*;
use cybs3_tests::cybs3;
use std::path::{Path, PathBuf};

const ALL_TIME: [&str; 4] = ["--from", "2000-01-01", "--to", "2100-01-01"];

/// `admin audit report` over all time with `filters`: its JSON.
fn report(home: &Path, data: &Path, filters: &[&str]) -> serde_json::Value {
    let mut args = vec!["admin", "audit", "report", "--data", data.to_str().unwrap()];
    args.extend_from_slice(&ALL_TIME);
    args.extend_from_slice(filters);
    let out = cybs3(home, &args);
    assert!(out.status.success(), "{args:?}: {out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `admin audit verify --json` on a store directory: exit code and verdict.
fn verify(home: &Path, data: &Path) -> (i32, serde_json::Value) {
    let args = [
        "admin",
        "audit",
        "verify",
        "--json",
        "--data",
        data.to_str().unwrap(),
    ];
    let out = cybs3(home, &args);
    let v = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("verify printed no JSON: {out:?}"));
    (out.status.code().unwrap(), v)
}

/// A copy of the store's audit log and key, to tamper with.
fn copy_of(store: &Path, to: &Path) -> PathBuf {
    std::fs::create_dir_all(to.join("audit")).unwrap();
    std::fs::copy(store.join("server.key"), to.join("server.key")).unwrap();
    for e in std::fs::read_dir(store.join("audit")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join("audit").join(e.file_name())).unwrap();
    }
    to.to_path_buf()
}

/// The log's last (newest) daily file in a store copy.
fn last_file(data: &Path) -> PathBuf {
    let mut files: Vec<PathBuf> = std::fs::read_dir(data.join("audit"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    files.pop().expect("a daily file")
}

fn edit_lines(path: &Path, f: impl FnOnce(&mut Vec<String>)) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    f(&mut lines);
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

fn kinds(v: &serde_json::Value) -> Vec<String> {
    v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["kind"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn reports_count_the_requests_made_and_verify_catches_tampering() {
    let (tmp, mut srv, root) = setup();
    let store = srv.home.join("store");

    // Root: 2 buckets, 4 objects, a read and a listing: 8 S3 requests, none denied.
    bucket(&root, "logs").await;
    bucket(&root, "other").await;
    let mut ids = Vec::new();
    for k in ["a", "b", "c"] {
        let out = root
            .put_object()
            .bucket("logs")
            .key(k)
            .body(ByteStream::from_static(b"data"))
            .send()
            .await
            .unwrap();
        ids.push(out.request_id().unwrap().to_string());
    }
    put(&root, "other", "x", b"x".to_vec()).await;
    assert_eq!(get(&root, "logs", "a").await, b"data");
    assert_eq!(keys(&root, "logs").await.len(), 3);

    // Management calls: a user and a KMS key.
    let (ak, sk) = add_user(&srv, "reader", &["--policy", "readonly"]);
    admin(
        &srv,
        &["admin", "kms", "key", "create", "audited", "--json"],
    );

    // The reader: one read allowed, two writes and a delete denied.
    let reader = srv.client_as(&ak, &sk);
    assert_eq!(get(&reader, "logs", "b").await, b"data");
    for k in ["y", "z"] {
        let r = reader
            .put_object()
            .bucket("logs")
            .key(k)
            .body(ByteStream::from_static(b"no"))
            .send()
            .await;
        assert_eq!(fails(r), (403, "AccessDenied".to_string()));
    }
    let r = reader.delete_object().bucket("logs").key("a").send().await;
    assert_eq!(fails(r), (403, "AccessDenied".to_string()));
    // The reader's key with a wrong secret: refused before any policy is asked.
    let forger = srv.client_as(&ak, "not-the-secret-key-at-all");
    let r = forger.list_objects_v2().bucket("logs").send().await;
    assert_eq!(fails(r).0, 403);

    // While the server runs, the log verifies (lines are written within milliseconds).
    std::thread::sleep(std::time::Duration::from_millis(300));
    let (code, v) = verify(&srv.home, &store);
    assert_eq!(code, 0, "{v}");
    srv.stop();

    let all = report(&srv.home, &store, &[]);
    let t = &all["totals"];
    // 8 root + 4 reader + 1 forged S3 requests, and 3 management calls: `server status`
    // (the harness asks it once the server is up), `admin user add` and `kms key create`.
    assert_eq!(t["requests"], 16, "{t}");
    assert_eq!(t["per_action"]["admin:GetServerStatus"], 1, "{t}");
    assert_eq!(t["per_user"]["root"], 8, "{t}");
    assert_eq!(t["per_user"]["reader"], 4, "{t}");
    assert_eq!(t["denied"], 4, "{t}");
    assert_eq!(t["per_action"]["PutObject"], 6, "{t}");
    assert_eq!(t["per_action"]["iam:CreateUser"], 1, "{t}");
    assert_eq!(t["per_action"]["admin:KmsKeyCreate"], 1, "{t}");
    assert_eq!(
        (t["iam_changes"].clone(), t["admin_changes"].clone()),
        (1.into(), 1.into())
    );
    // The response's x-amz-request-id is the audited id.
    for id in &ids {
        let line = all["lines"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["id"] == id.as_str())
            .unwrap_or_else(|| panic!("request {id} is not in the log"));
        assert_eq!(line["action"], "PutObject");
        assert_eq!(line["user"], "root");
        assert_eq!(line["bytes_in"], 4);
    }

    let reader_only = report(&srv.home, &store, &["--user", "reader"]);
    assert_eq!(reader_only["totals"]["requests"], 4);
    assert_eq!(reader_only["totals"]["denied"], 3);
    // By access key, the forged request counts too.
    let by_key = report(&srv.home, &store, &["--user", &ak, "--denied"]);
    assert_eq!(by_key["totals"]["requests"], 4);
    let denied = report(&srv.home, &store, &["--denied"])["lines"].clone();
    let denied = denied.as_array().unwrap();
    assert_eq!(denied.len(), 4);
    assert!(
        denied
            .iter()
            .any(|l| l["by"] == "refused: SignatureDoesNotMatch"),
        "{denied:?}"
    );
    assert!(denied
        .iter()
        .any(|l| l["action"] == "DeleteObject" && l["by"] == "no policy or ACL allows it"));
    let other = report(&srv.home, &store, &["--bucket", "other"]);
    assert_eq!(other["totals"]["requests"], 2);
    let allowed_read = report(&srv.home, &store, &["--user", "reader", "--bucket", "logs"]);
    let read = allowed_read["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["action"] == "GetObject")
        .unwrap();
    assert_eq!(
        (read["decision"].as_str(), read["by"].as_str()),
        (Some("allow"), Some("policy:readonly"))
    );

    // CSV: a header and a row per request.
    let mut args = vec![
        "admin",
        "audit",
        "report",
        "--data",
        store.to_str().unwrap(),
        "--format",
        "csv",
    ];
    args.extend_from_slice(&ALL_TIME);
    let out = cybs3(&srv.home, &args);
    assert!(out.status.success(), "{out:?}");
    let csv = String::from_utf8(out.stdout).unwrap();
    assert!(csv.starts_with("time,id,api,user,access_key,"), "{csv}");
    assert_eq!(csv.lines().count(), 17);

    // Tampering, each on its own copy.
    let intact = copy_of(&store, &tmp.path().join("intact"));
    assert_eq!(verify(&srv.home, &intact).0, 0);

    let edited = copy_of(&store, &tmp.path().join("edited"));
    edit_lines(&last_file(&edited), |lines| {
        let at = lines
            .iter()
            .position(|l| l.contains("\"decision\":\"deny\""))
            .unwrap();
        lines[at] = lines[at].replace("\"decision\":\"deny\"", "\"decision\":\"allow\"");
    });
    let (code, v) = verify(&srv.home, &edited);
    assert_eq!((code, kinds(&v)), (1, vec!["edited".to_string()]), "{v}");

    let deleted = copy_of(&store, &tmp.path().join("deleted"));
    edit_lines(&last_file(&deleted), |lines| {
        lines.remove(4);
    });
    let (code, v) = verify(&srv.home, &deleted);
    assert_eq!((code, kinds(&v)), (1, vec!["removed".to_string()]), "{v}");

    let truncated = copy_of(&store, &tmp.path().join("truncated"));
    edit_lines(&last_file(&truncated), |lines| {
        lines.truncate(lines.len() - 3);
    });
    let (code, v) = verify(&srv.home, &truncated);
    assert_eq!((code, kinds(&v)), (1, vec!["truncated".to_string()]), "{v}");

    let removed = copy_of(&store, &tmp.path().join("removed"));
    std::fs::remove_file(last_file(&removed)).unwrap();
    let (code, v) = verify(&srv.home, &removed);
    assert_eq!(code, 1, "{v}");
    assert!(kinds(&v).contains(&"file_removed".to_string()), "{v}");

    // The human output names the break and its place.
    let out = cybs3(
        &srv.home,
        &[
            "admin",
            "audit",
            "verify",
            "--data",
            edited.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("BROKEN (edited)") && text.contains(".jsonl line"),
        "{text}"
    );
}

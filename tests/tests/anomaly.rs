//! Anomaly detection through the real binary, on a server whose day is 48 s (so a
//! window is 1 s and an hour 2 s): 500 ordinary overwrites spread over a day's pattern
//! raise nothing, the same number of random overwrites in a burst raise a critical
//! ransomware alert within seconds (in `admin alerts`, the audit log and a webhook),
//! and the bucket's freeze then refuses the user's deletes and overwrites until an
//! admin clears it; a read spike raises an exfiltration alert, and 50 failed
//! signatures from one source a guessing alert.

mod common;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use common::*;
use cybs3_tests::webhook::Receiver;
use cybs3_tests::{files_under, Server};
use futures::StreamExt;
use serde_json::Value;
use std::time::{Duration, Instant};

/// The server's day, in seconds: windows of 1 s, hours of 2 s.
const DAY_SECS: u64 = 48;

fn alerts(srv: &Server) -> Vec<Value> {
    admin(srv, &["admin", "alerts", "--json"])["alerts"]
        .as_array()
        .unwrap()
        .clone()
}

fn about<'a>(all: &'a [Value], subject: &str) -> Vec<&'a Value> {
    all.iter().filter(|a| a["subject"] == subject).collect()
}

/// Polls `admin alerts` until one about `subject` appears (or `within` passes).
fn wait_alert(srv: &Server, subject: &str, within: Duration) -> Option<Value> {
    let start = Instant::now();
    while start.elapsed() < within {
        if let Some(a) = about(&alerts(srv), subject).first() {
            return Some((*a).clone());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

async fn put_as(c: &Client, bucket: &str, key: &str, body: Vec<u8>) -> Result<(), u16> {
    c.put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body))
        .send()
        .await
        .map(drop)
        .map_err(|e| status_code(&e).0)
}

fn text(i: usize) -> Vec<u8> {
    format!("meeting notes, version {i}: nothing unusual happened today.\n")
        .repeat(60)
        .into_bytes()
}

fn random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A working day's overwrites by `c`: 500 over one server day, 15 a second in the 13
/// busy hours and 5 in the 11 quiet ones, paced one by one (never above the floor).
async fn ordinary_day(c: &Client) {
    let hour = Duration::from_secs(DAY_SECS) / 24;
    let mut n = 0;
    for h in 0..24u32 {
        let per_sec = if (6..19).contains(&h) { 15 } else { 5 };
        let gap = Duration::from_secs(1) / per_sec;
        let until = Instant::now() + hour;
        while Instant::now() < until {
            let t = Instant::now();
            put_as(c, "docs", &format!("f{}", n % 100), text(n))
                .await
                .unwrap();
            n += 1;
            tokio::time::sleep(gap.saturating_sub(t.elapsed())).await;
        }
    }
    assert!((450..=550).contains(&n), "{n} ordinary overwrites");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn anomalies_raise_explained_alerts_and_the_freeze_holds_until_cleared() {
    let hook = Receiver::start("alert-secret");
    let tmp = tempfile::tempdir().unwrap();
    let mut srv = Server::new(tmp.path(), 1, None);
    srv.args = vec!["--lifecycle-day-secs".into(), DAY_SECS.to_string()];
    srv.start();
    let root = srv.client();
    bucket(&root, "docs").await;
    bucket(&root, "photos").await;
    let (ak, sk) = add_user(&srv, "alice", &["--policy", "readwrite"]);
    let alice = srv.client_as(&ak, &sk);
    let (bk, bs) = add_user(&srv, "bob", &["--policy", "readwrite"]);
    let bob = srv.client_as(&bk, &bs);
    admin(
        &srv,
        &[
            "admin",
            "notify",
            "add",
            "hook",
            "--type",
            "webhook",
            "--url",
            &hook.url(),
            "--secret",
            "alert-secret",
        ],
    );
    // A target that does not exist is refused with a way forward.
    let out = cybs3_tests::cybs3(&srv.home, &["admin", "alerts", "target", "nope"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cybs3 admin notify add"));
    admin(&srv, &["admin", "alerts", "target", "hook"]);
    admin(
        &srv,
        &[
            "admin",
            "alerts",
            "protect",
            "docs",
            "--freeze-minutes",
            "0",
        ],
    );

    for i in 0..100 {
        put_as(&alice, "docs", &format!("f{i}"), text(i))
            .await
            .unwrap();
    }
    put_as(&root, "photos", "small", vec![7; 1024])
        .await
        .unwrap();
    put_as(&root, "photos", "big", random(32 << 20, 3))
        .await
        .unwrap();

    // Alice's ordinary day, while bob reads a little and someone guesses keys.
    let guesser = srv.client_as(&ak, "not-the-secret");
    let bob_reads = async {
        for _ in 0..60 {
            get(&bob, "photos", "small").await;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    let guessing = async {
        for _ in 0..50 {
            let e = guesser.list_buckets().send().await.unwrap_err();
            assert_eq!(status_code(&e).0, 403);
        }
    };
    tokio::join!(ordinary_day(&alice), bob_reads, guessing);
    let quiet = alerts(&srv);
    assert!(
        about(&quiet, "user:alice").is_empty() && about(&quiet, "bucket:docs").is_empty(),
        "ordinary overwrites raised an alert: {quiet:#?}"
    );

    // Password or key guessing: 50 bad signatures from one source.
    let g = about(&quiet, "source:127.0.0.1");
    assert_eq!(g.len(), 1, "{quiet:#?}");
    assert_eq!(g[0]["kind"], "guessing");
    assert!(g[0]["saw"].as_str().unwrap().contains(&ak), "{}", g[0]);

    // The burst: 500 overwrites with random data, 16 at a time.
    let started = Instant::now();
    let results: Vec<Result<(), u16>> = futures::stream::iter(0..500usize)
        .map(|i| {
            let alice = alice.clone();
            async move {
                put_as(
                    &alice,
                    "docs",
                    &format!("f{}", i % 100),
                    random(4096, i as u64),
                )
                .await
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let alert =
        wait_alert(&srv, "user:alice", Duration::from_secs(10)).expect("a ransomware alert");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(10), "alert after {took:?}");
    assert_eq!(alert["kind"], "ransomware");
    assert_eq!(alert["severity"], "critical", "{alert}");
    assert!(
        alert["observed"].as_f64() > alert["limit"].as_f64(),
        "{alert}"
    );
    assert!(
        alert["usual"].as_str().unwrap().starts_with("usually "),
        "{alert}"
    );
    assert!(alert["suggestion"]
        .as_str()
        .unwrap()
        .contains("object lock for bucket docs"));
    // The freeze stopped the burst part way: what came after the alert was refused.
    let refused = results.iter().filter(|r| **r == Err(403)).count();
    assert!(refused > 0, "the freeze refused none of the burst");
    assert!(results.iter().all(|r| matches!(r, Ok(()) | Err(403))));

    // Frozen: no deletes, no overwrites; new objects are still welcome.
    let e = alice
        .delete_object()
        .bucket("docs")
        .key("f1")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_code(&e), (403, "AccessDenied".into()));
    assert_eq!(put_as(&alice, "docs", "f2", text(1)).await, Err(403));
    // A copy onto an object is an overwrite too.
    let e = alice
        .copy_object()
        .bucket("docs")
        .key("f2")
        .copy_source("docs/f1")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_code(&e), (403, "AccessDenied".into()));
    put_as(&alice, "docs", "brand-new", text(2)).await.unwrap();
    // Other users are not frozen.
    put_as(&bob, "docs", "f3", text(3)).await.unwrap();
    let listed = admin(&srv, &["admin", "alerts", "--json"]);
    assert_eq!(listed["flagged"][0]["user"], "alice", "{listed}");
    admin(&srv, &["admin", "alerts", "clear", "alice"]);
    // The refused copy above was the freeze, not a missing right.
    alice
        .copy_object()
        .bucket("docs")
        .key("f2")
        .copy_source("docs/f1")
        .send()
        .await
        .unwrap();
    alice
        .delete_object()
        .bucket("docs")
        .key("f1")
        .send()
        .await
        .unwrap();
    put_as(&alice, "docs", "f2", text(4)).await.unwrap();

    // Exfiltration: a read spike after bob's quiet reads.
    for _ in 0..6 {
        assert_eq!(get(&bob, "photos", "big").await.len(), 32 << 20);
    }
    let x = wait_alert(&srv, "user:bob", Duration::from_secs(5)).expect("an exfiltration alert");
    assert_eq!(x["kind"], "exfiltration");
    assert!(
        x["suggestion"]
            .as_str()
            .unwrap()
            .contains(&format!("disable key {bk}")),
        "{x}"
    );

    // Each alert is in the audit log and reached the webhook.
    let deadline = Instant::now() + Duration::from_secs(15);
    let kinds = |events: &[Value]| -> Vec<String> {
        events
            .iter()
            .filter_map(|e| e["kind"].as_str().map(str::to_string))
            .collect()
    };
    while Instant::now() < deadline && !kinds(&hook.events()).contains(&"exfiltration".into()) {
        std::thread::sleep(Duration::from_millis(200));
    }
    let got = kinds(&hook.events());
    for k in ["ransomware", "exfiltration"] {
        assert!(got.contains(&k.to_string()), "webhook got {got:?}");
    }
    // Alerts raised before the target was chosen are not sent: guessing came after it.
    assert!(got.contains(&"guessing".to_string()), "webhook got {got:?}");
    let audit: String = files_under(&srv.home)
        .into_iter()
        .filter(|p| {
            p.extension().is_some_and(|e| e == "jsonl") && p.to_string_lossy().contains("audit")
        })
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    for k in ["alert:ransomware", "alert:exfiltration", "alert:guessing"] {
        assert!(
            audit.contains(&format!("\"action\":\"{k}\"")),
            "no {k} in the audit log"
        );
    }
    assert!(audit.contains("\"kind\":\"alert\""));

    // Alerts and baselines outlive a restart.
    srv.stop();
    srv.start();
    let after = alerts(&srv);
    assert!(!about(&after, "user:alice").is_empty() && !about(&after, "user:bob").is_empty());
    let text_out = cybs3_tests::cybs3(&srv.home, &["admin", "alerts"]);
    let shown = String::from_utf8_lossy(&text_out.stdout);
    assert!(
        shown.contains("Critical ransomware alert on user:alice"),
        "{shown}"
    );
    assert!(shown.contains("suggested:"), "{shown}");
}

//! Metrics, server config, logs and diagnostics through the real binary: `GET /metrics`
//! behind its bearer token is clean for `promtool check metrics`, a real Prometheus
//! scrapes it and a PromQL query returns the requests the test made; `server config set`
//! of live settings takes effect without a restart, others say a restart is needed;
//! `server logs` reads the JSON log; `admin diag` holds no secret.

mod common;

use common::*;
use cybs3_tests::{cybs3, free_port, http_get};
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `GET /metrics` with `token` as the bearer token (if any): status and body.
fn scrape(port: u16, token: Option<&str>) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply);
    let reply = String::from_utf8_lossy(&reply);
    let code = reply[9..12].parse().unwrap();
    let body = reply.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (code, body.to_string())
}

/// A sample's value in a scraped document.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn ok(home: &Path, args: &[&str]) -> String {
    let out = cybs3(home, args);
    assert!(out.status.success(), "{args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// A real Prometheus scraping `target` every second with `token`.
struct Prometheus {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(target: u16, token: &str) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
                 scrape_configs:\n  - job_name: cybs3\n    authorization:\n      type: Bearer\n      credentials: {token}\n\
                 \x20   static_configs:\n      - targets: ['127.0.0.1:{target}']\n"
            ),
        )
        .unwrap();
        let port = free_port();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus (Debian package prometheus; tests/run.sh installs it)");
        Prometheus {
            child,
            port,
            _dir: dir,
        }
    }

    /// An instant PromQL query's single value, once the query returns one.
    fn value(&self, query: &str) -> Option<f64> {
        let q = uri_encode(query, true);
        let (code, body) = http_get(self.port, &format!("/api/v1/query?query={q}"))?;
        if code != 200 {
            return None;
        }
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
    }

    /// Wait until `query` returns `want`.
    fn wait_for(&self, query: &str, want: f64) {
        let deadline = Instant::now() + Duration::from_secs(90);
        let mut last = None;
        while Instant::now() < deadline {
            last = self.value(query);
            if last == Some(want) {
                return;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        panic!("{query}: wanted {want}, Prometheus says {last:?}");
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn metrics_need_their_token_pass_promtool_and_prometheus_counts_the_requests() {
    let (_tmp, srv, c) = setup();
    let (code, body) = scrape(srv.port, None);
    assert_eq!(code, 401, "{body}");
    assert!(body.contains("cybs3 admin metrics token"), "{body}");
    let token = admin(&srv, &["admin", "metrics", "token", "--json"])["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(scrape(srv.port, Some("not-the-token")).0, 401);

    bucket(&c, "seen").await;
    for i in 0..7 {
        put(&c, "seen", &format!("k{i}"), vec![b'x'; 100]).await;
    }
    // One object big enough for shard files, so drive I/O shows.
    put(&c, "seen", "big", vec![7u8; 3 << 20]).await;
    for _ in 0..3 {
        assert_eq!(get(&c, "seen", "k1").await.len(), 100);
    }
    for _ in 0..2 {
        assert_eq!(head_status(&c, "seen", "absent").await, 404);
    }

    let (code, text) = scrape(srv.port, Some(&token));
    assert_eq!(code, 200, "{text}");
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let lint = promtool.wait_with_output().unwrap();
    assert!(
        lint.status.success() && lint.stdout.is_empty() && lint.stderr.is_empty(),
        "promtool check metrics: {lint:?}\n{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"cybs3_requests_total{api="PutObject",status="200"}"#
        ),
        Some(8.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"cybs3_requests_total{api="HeadObject",status="404"}"#
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(&text, r#"cybs3_bucket_versions{bucket="seen"}"#),
        Some(8.0)
    );
    assert_eq!(
        sample(&text, r#"cybs3_bucket_objects{bucket="seen"}"#),
        Some(8.0)
    );
    assert_eq!(
        sample(&text, r#"cybs3_bucket_bytes{bucket="seen"}"#),
        Some((7 * 100 + (3 << 20)) as f64)
    );
    let writes = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("cybs3_drive_writes_total{")?
                .split_once("} ")?
                .1
                .parse::<f64>()
                .ok()
        })
        .unwrap();
    assert!(writes > 0.0, "{text}");
    assert!(sample(&text, "process_resident_memory_bytes").unwrap() > 1e6);
    assert!(
        !text.contains("k1") && !text.contains("\"big\""),
        "no key in a label"
    );

    let prom = Prometheus::start(srv.port, &token);
    prom.wait_for(r#"sum(cybs3_requests_total{api="PutObject"})"#, 8.0);
    prom.wait_for(r#"sum(cybs3_requests_total{api="GetObject"})"#, 3.0);
    prom.wait_for(
        r#"cybs3_requests_total{api="HeadObject",status="404"}"#,
        2.0,
    );
    prom.wait_for(r#"up{job="cybs3"}"#, 1.0);
    // More requests show up in the next scrapes.
    for i in 0..5 {
        put(&c, "seen", &format!("more{i}"), vec![b'y'; 10]).await;
    }
    prom.wait_for(r#"sum(cybs3_requests_total{api="PutObject"})"#, 13.0);
    prom.wait_for(r#"cybs3_bucket_versions{bucket="seen"}"#, 13.0);

    // A new token replaces the old one.
    let newer = admin(&srv, &["admin", "metrics", "token", "--json"])["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(scrape(srv.port, Some(&token)).0, 401);
    assert_eq!(scrape(srv.port, Some(&newer)).0, 200);
}

#[tokio::test]
async fn config_set_applies_live_settings_at_once_and_says_when_a_restart_is_needed() {
    let (_tmp, srv, c) = setup();
    let home = srv.home.clone();
    assert_eq!(scrape(srv.port, None).0, 401);
    // `server logs --follow` prints the lines the server writes from now on.
    let mut follow = Command::new(cybs3_tests::bin())
        .args(["server", "logs", "--follow", "--json"])
        .env("CYBS3_HOME", &home)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let followed = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    std::thread::spawn({
        let (out, followed) = (follow.stdout.take().unwrap(), followed.clone());
        move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                followed.lock().unwrap().push_str(&(line + "\n"));
            }
        }
    });
    std::thread::sleep(Duration::from_millis(500));
    let said = ok(
        &home,
        &["server", "config", "set", "metrics-public", "true"],
    );
    assert!(said.contains("applied to the running server"), "{said}");
    let (code, text) = scrape(srv.port, None);
    assert_eq!(code, 200, "{text}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !followed.lock().unwrap().contains("server settings changed") {
        assert!(Instant::now() < deadline, "--follow printed no new line");
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = follow.kill();
    let _ = follow.wait();
    // A bucket named `metrics` stays an S3 bucket for signed requests.
    bucket(&c, "metrics").await;
    put(&c, "metrics", "m", b"m".to_vec()).await;
    assert_eq!(keys(&c, "metrics").await, ["m"]);

    let said = ok(
        &home,
        &["server", "config", "set", "lifecycle-day-secs", "5"],
    );
    assert!(said.contains("restart needed"), "{said}");
    assert_eq!(
        ok(&home, &["server", "config", "get", "lifecycle-day-secs"]).trim(),
        "5"
    );
    let list: serde_json::Value =
        serde_json::from_str(&ok(&home, &["server", "config", "list", "--json"])).unwrap();
    let row = |k: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|r| r["key"] == k)
            .unwrap()
            .clone()
    };
    assert_eq!(row("metrics-public")["value"], "true");
    assert_eq!(row("metrics-public")["live"], true);
    assert_eq!(row("lifecycle-day-secs")["live"], false);
    assert_eq!(row("audit")["value"], serde_json::Value::Null);

    // Bad values and keys are refused with one line, and the file keeps what it had.
    for (key, value) in [
        ("lifecycle-interval-secs", "0"),
        ("trusted-proxy", "10.0.0.1,not-an-address"),
        ("no-such-setting", "1"),
        ("log-level", "cybs3=[oops"),
        ("ldap-group-policy", "admins=readwrite"),
    ] {
        let out = cybs3(&home, &["server", "config", "set", key, value]);
        assert!(!out.status.success(), "{key} = {value}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
    let file = std::fs::read_to_string(home.join("store/server.toml")).unwrap();
    assert!(
        !file.contains("oops") && !file.contains("no-such"),
        "{file}"
    );

    // The log level changes at once: debug lines appear without a restart.
    let debug_lines = || {
        let out = ok(&home, &["server", "logs", "--json"]);
        out.lines()
            .filter(|l| l.contains("\"level\":\"DEBUG\""))
            .count()
    };
    let before = debug_lines();
    ok(
        &home,
        &[
            "server",
            "config",
            "set",
            "log-level",
            "info,cybs3_s3d=debug",
        ],
    );
    put(&c, "metrics", "n", b"n".to_vec()).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while debug_lines() == before {
        assert!(
            Instant::now() < deadline,
            "no debug line after log-level debug"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    ok(&home, &["server", "config", "unset", "log-level"]);
    ok(&home, &["server", "config", "unset", "metrics-public"]);
    // Closed again: with a bucket named `metrics`, an anonymous GET is S3's (denied).
    assert_eq!(scrape(srv.port, None).0, 403);
    let out = cybs3(&home, &["server", "config", "get", "metrics-public"]);
    assert!(!out.status.success());
}

#[tokio::test]
async fn logs_read_back_and_diag_holds_no_secret() {
    let (_tmp, srv, c) = setup();
    let home = srv.home.clone();
    bucket(&c, "bkt").await;
    ok(&home, &["admin", "kms", "key", "create", "diag-key"]);
    ok(
        &home,
        &[
            "server",
            "config",
            "set",
            "ldap-bind-password",
            "hunter2-bind-secret",
        ],
    );

    let text = ok(&home, &["server", "logs"]);
    assert!(text.contains("S3 server ready"), "{text}");
    for line in ok(&home, &["server", "logs", "--json"]).lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(
            v["timestamp"].is_string() && v["level"].is_string(),
            "{line}"
        );
    }
    let future = ok(
        &home,
        &["server", "logs", "--since", "2999-01-01T00:00:00Z"],
    );
    assert!(future.is_empty(), "{future}");
    assert!(!cybs3(&home, &["server", "logs", "--since", "soon"])
        .status
        .success());

    let out = home.join("bundle.txt");
    ok(&home, &["admin", "diag", "--out", out.to_str().unwrap()]);
    let bundle = std::fs::read_to_string(&out).unwrap();
    for section in [
        "== server",
        "== config",
        "== layout",
        "== recent warnings",
        "== metrics",
    ] {
        assert!(bundle.contains(section), "{section} missing");
    }
    assert!(bundle.contains("cybs3_requests_total") && bundle.contains("diag-key"));
    let store = home.join("store");
    let server_key = std::fs::read_to_string(store.join("server.key")).unwrap();
    for secret in [
        srv.secret_key.as_str(),
        server_key.trim(),
        "hunter2-bind-secret",
    ] {
        assert!(!secret.is_empty());
        assert!(!bundle.contains(secret), "a secret is in the bundle");
    }
    // KMS key material is sealed in the index; none of its records' bytes are in the bundle.
    assert!(!bundle.to_lowercase().contains("master"), "{bundle}");
}

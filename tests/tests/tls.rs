//! HTTPS end to end: `cybs3 server cert` makes a CA and a certificate that `server start`
//! serves by default; aws-sdk-s3 trusting only that CA works over https, plain HTTP on
//! the port fails, SIGHUP swaps the certificate without closing open connections,
//! `aws:SecureTransport` is true over TLS, directory logins in clear are refused from
//! other machines (tested from this machine's own non-loopback address, if it has one:
//! the traffic still never leaves the machine), and `cybs3 login` and vaults work over
//! https with `vaults add --ca-file`.

mod common;

use aws_sdk_s3::primitives::ByteStream;
use common::*;
use cybs3_tests::tls::Conn;
use cybs3_tests::{cybs3, Server};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// `cybs3 server cert` for the store under `home`: its JSON answer.
fn server_cert(home: &Path, names: &[&str]) -> serde_json::Value {
    let mut args = vec!["server", "cert", "--json"];
    for n in names {
        args.extend(["--name", n]);
    }
    let out = cybs3(home, &args);
    assert!(out.status.success(), "server cert: {out:?}");
    serde_json::from_slice(&out.stdout).expect("server cert JSON")
}

/// A started HTTPS server: certificate made by `server cert`, picked up with no flag.
fn tls_server(home: &Path) -> Server {
    let made = server_cert(home, &[]);
    assert_eq!(made["ca_created"], true);
    assert_eq!(made["names"], json!(["localhost", "127.0.0.1"]));
    let mut srv = Server::new(home, 1, None);
    srv.ca_file = Some(PathBuf::from(made["ca_cert"].as_str().unwrap()));
    srv.start();
    srv
}

#[tokio::test]
async fn sdk_over_https_trusting_the_generated_ca() {
    let tmp = tempfile::tempdir().unwrap();
    let srv = tls_server(tmp.path());
    assert!(srv.endpoint().starts_with("https://"));
    let status = srv.status_json();
    assert_eq!(
        status["endpoint"],
        format!("https://127.0.0.1:{}", srv.port)
    );

    let c = srv.client();
    bucket(&c, "secure").await;
    put(&c, "secure", "a/one", b"over tls".to_vec()).await;
    put(&c, "secure", "a/two", vec![7u8; 3 << 20]).await;
    assert_eq!(get(&c, "secure", "a/one").await, b"over tls");
    assert_eq!(get(&c, "secure", "a/two").await, vec![7u8; 3 << 20]);
    assert_eq!(keys(&c, "secure").await, ["a/one", "a/two"]);

    // The same request in clear on the TLS port gets no HTTP answer.
    let mut plain = Server::new(tmp.path(), 1, None);
    plain.port = srv.port;
    plain.access_key = srv.access_key.clone();
    plain.secret_key = srv.secret_key.clone();
    let err = plain
        .client()
        .list_buckets()
        .send()
        .await
        .expect_err("plain HTTP on the TLS port");
    assert!(
        err.raw_response().is_none(),
        "plain HTTP got an answer: {err:?}"
    );
    assert_eq!(cybs3_tests::http_status(srv.port, "/health/live"), None);

    // A client that does not trust the CA refuses the server.
    let other = tempfile::tempdir().unwrap();
    let stranger = server_cert(other.path(), &[]);
    let foreign_ca = PathBuf::from(stranger["ca_cert"].as_str().unwrap());
    assert!(foreign_ca.exists());
    assert!(Conn::open(srv.port, &foreign_ca).is_err());
    let ca = srv.ca_file.clone().unwrap();
    assert_eq!(
        Conn::open(srv.port, &ca)
            .unwrap()
            .get("/health/live")
            .unwrap()
            .body,
        "ok\n"
    );
}

#[tokio::test]
async fn sighup_swaps_the_certificate_and_keeps_open_connections() {
    let tmp = tempfile::tempdir().unwrap();
    let srv = tls_server(tmp.path());
    let ca = srv.ca_file.clone().unwrap();
    let mut open = Conn::open(srv.port, &ca).unwrap();
    assert_eq!(open.get("/health/live").unwrap().status, 200);
    let before = open.server_cert();

    // Issuing again signs a new certificate with the same CA and signals the server.
    let made = server_cert(tmp.path(), &["127.0.0.1", "nas.test"]);
    assert_eq!(made["ca_created"], false);
    assert_eq!(made["reloaded_pid"], srv.status_json()["pid"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let after = loop {
        let cert = Conn::open(srv.port, &ca).unwrap().server_cert();
        if cert != before {
            break cert;
        }
        assert!(Instant::now() < deadline, "the certificate was not swapped");
        std::thread::sleep(Duration::from_millis(50));
    };
    let cert_file = PathBuf::from(made["cert"].as_str().unwrap());
    // The connection opened before the reload still serves requests.
    assert_eq!(open.get("/health/live").unwrap().body, "ok\n");
    assert_eq!(open.server_cert(), before);

    // A broken pair on disk: the reload fails and the last good certificate stays.
    std::fs::write(&cert_file, "not a certificate").unwrap();
    let pid = srv.status_json()["pid"].as_i64().unwrap() as libc::pid_t;
    // SAFETY: a plain signal to the server this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGHUP) }, 0);
    std::thread::sleep(Duration::from_millis(300));
    let mut fresh = Conn::open(srv.port, &ca).unwrap();
    assert_eq!(fresh.server_cert(), after);
    assert_eq!(fresh.get("/health/ready").unwrap().status, 200);
    assert_eq!(open.get("/health/live").unwrap().status, 200);
}

/// Deny everything on `bucket` when `aws:SecureTransport` is `secure`.
async fn deny_when_secure_transport(c: &aws_sdk_s3::Client, bucket: &str, secure: &str) {
    let statement = json!([{
        "Effect": "Deny", "Principal": "*", "Action": "s3:*",
        "Resource": [format!("arn:aws:s3:::{bucket}"), format!("arn:aws:s3:::{bucket}/*")],
        "Condition": {"Bool": {"aws:SecureTransport": secure}},
    }]);
    set_policy(c, bucket, statement).await;
}

async fn put_status(c: &aws_sdk_s3::Client, bucket: &str) -> u16 {
    match c
        .put_object()
        .bucket(bucket)
        .key("k")
        .body(ByteStream::from_static(b"v"))
        .send()
        .await
    {
        Ok(_) => 200,
        Err(e) => status_code(&e).0,
    }
}

#[tokio::test]
async fn secure_transport_is_true_over_tls_and_false_in_clear() {
    let tmp = tempfile::tempdir().unwrap();
    let srv = tls_server(&tmp.path().join("tls-store"));
    let c = srv.client();
    bucket(&c, "https-only").await;
    deny_when_secure_transport(&c, "https-only", "false").await;
    assert_eq!(put_status(&c, "https-only").await, 200);
    assert_eq!(get(&c, "https-only", "k").await, b"v");
    bucket(&c, "http-only").await;
    deny_when_secure_transport(&c, "http-only", "true").await;
    assert_eq!(put_status(&c, "http-only").await, 403);

    // The same policies on a plain HTTP server decide the other way.
    let mut plain = Server::new(&tmp.path().join("plain-store"), 1, None);
    plain.start();
    let p = plain.client();
    bucket(&p, "https-only").await;
    deny_when_secure_transport(&p, "https-only", "false").await;
    assert_eq!(put_status(&p, "https-only").await, 403);
    bucket(&p, "http-only").await;
    deny_when_secure_transport(&p, "http-only", "true").await;
    assert_eq!(put_status(&p, "http-only").await, 200);
}

/// An address of this machine that is not loopback (the one its default route uses),
/// if it has one. No packet is sent: connecting a UDP socket only picks the route.
fn outside_address() -> Option<std::net::IpAddr> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("192.0.2.1:9").ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

/// An unsigned directory login at `url` (curl, trusting `ca` if given): status, body.
fn ldap_login(url: &str, ca: Option<&Path>) -> (u16, String) {
    let mut args = vec![
        "-H".to_string(),
        "content-type: application/x-www-form-urlencoded".into(),
        "--data".into(),
        "Action=AssumeRoleWithLDAPIdentity&Version=2011-06-15&LDAPUsername=alice&LDAPPassword=pw"
            .into(),
    ];
    if let Some(ca) = ca {
        args.extend(["--cacert".into(), ca.display().to_string()]);
    }
    args.push(url.to_string());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = curl(&args);
    (r.status, String::from_utf8_lossy(&r.body).into_owned())
}

/// Refused for the transport, before the directory is asked.
fn refused_in_clear(answer: &(u16, String)) -> bool {
    answer.0 == 403 && answer.1.contains("cybs3 server cert")
}

#[tokio::test]
async fn directory_logins_in_clear_are_refused_from_other_machines() {
    let Some(outside) = outside_address() else {
        eprintln!("skipped: this machine has no address besides loopback to log in from");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    // No directory listens there: a login that passes the transport check then fails
    // to reach it, with another answer.
    let ldap = [
        "--ldap-url=ldap://127.0.0.1:1".to_string(),
        "--ldap-user-dn=uid={user},dc=test".to_string(),
    ];
    let mut srv = Server::new(&tmp.path().join("plain"), 1, None);
    srv.bind = "0.0.0.0".into();
    srv.args = ldap.to_vec();
    srv.start();
    let from_outside = format!("http://{outside}:{}/", srv.port);
    let answer = ldap_login(&from_outside, None);
    assert!(refused_in_clear(&answer), "{answer:?}");
    assert!(answer.1.contains("--tls-cert"), "{answer:?}");
    // From loopback (any of 127.0.0.0/8) the same login reaches the directory.
    for local in ["127.0.0.1", "127.0.0.2"] {
        let answer = ldap_login(&format!("http://{local}:{}/", srv.port), None);
        assert!(!refused_in_clear(&answer), "{local}: {answer:?}");
        assert!(answer.0 >= 400, "{local}: {answer:?}");
    }
    srv.stop();

    // The operator may allow logins in clear.
    srv.args.push("--allow-insecure-login".into());
    srv.start();
    let answer = ldap_login(&from_outside, None);
    assert!(!refused_in_clear(&answer), "{answer:?}");
    srv.stop();

    // Over HTTPS, from the same outside address, the login goes on.
    let home = tmp.path().join("tls");
    let made = server_cert(&home, &[&outside.to_string(), "127.0.0.1"]);
    let mut tls = Server::new(&home, 1, None);
    tls.bind = "0.0.0.0".into();
    tls.args = ldap.to_vec();
    tls.ca_file = Some(PathBuf::from(made["ca_cert"].as_str().unwrap()));
    tls.start();
    let ca = tls.ca_file.clone().unwrap();
    let answer = ldap_login(&format!("https://{outside}:{}/", tls.port), Some(&ca));
    assert!(!refused_in_clear(&answer), "{answer:?}");
    assert!(answer.0 >= 400, "{answer:?}");
}

/// `cybs3 login` and the vault's client over https, trusting the CA given to `vaults add`.
#[tokio::test]
async fn cybs3_login_and_vault_over_https_with_a_ca_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = cybs3_tests::slapd::Slapd::start(&[cybs3_tests::slapd::LdapUser {
        uid: "dana",
        password: "dana-pw",
        groups: &["writers"],
    }]);
    let made = server_cert(tmp.path(), &[]);
    let ca = made["ca_cert"].as_str().unwrap().to_string();
    let mut srv = Server::new(tmp.path(), 1, None);
    srv.ca_file = Some(PathBuf::from(&ca));
    srv.args = vec![
        format!("--ldap-url={}", dir.url),
        format!("--ldap-user-dn={}", dir.user_dn_template()),
        format!("--ldap-group-base={}", dir.group_base()),
        "--ldap-group-policy=writers=readwrite".into(),
    ];
    srv.start();
    bucket(&srv.client(), "team").await;

    let endpoint = srv.endpoint();
    let add = |ca: &str| {
        let args = [
            "vaults",
            "add",
            "team",
            "--endpoint",
            &endpoint,
            "--bucket",
            "team",
        ];
        cybs3(
            &srv.home,
            &[&args[..], &["--plain", "--ca-file", ca]].concat(),
        )
    };
    // A CA file is checked when the vault is added.
    let bogus = tmp.path().join("bogus.pem");
    std::fs::write(&bogus, "no certificate here").unwrap();
    let out = add(bogus.to_str().unwrap());
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("CA file"),
        "{out:?}"
    );
    let out = add(&ca);
    assert!(out.status.success(), "{out:?}");

    let login = std::process::Command::new(cybs3_tests::bin())
        .args(["login", "--vault", "team", "--username", "dana"])
        .env("CYBS3_HOME", &srv.home)
        .env("CYBS3_PASSWORD", "dana-pw")
        .output()
        .unwrap();
    assert!(login.status.success(), "{login:?}");
    let file = tmp.path().join("note.txt");
    std::fs::write(&file, b"over https").unwrap();
    let out = cybs3(&srv.home, &["cp", file.to_str().unwrap(), "team:note.txt"]);
    assert!(out.status.success(), "{out:?}");
    let out = cybs3(&srv.home, &["cat", "team:note.txt"]);
    assert_eq!(out.stdout, b"over https", "{out:?}");

    // Without the CA (root keys this time), the same endpoint is refused.
    let out = cybs3(&srv.home, &["vaults", "remove", "team"]);
    assert!(out.status.success(), "{out:?}");
    let keys = [
        "--access-key",
        &srv.access_key,
        "--secret-key",
        &srv.secret_key,
    ];
    let mut args = vec!["vaults", "add", "team", "--endpoint", &endpoint];
    args.extend(["--bucket", "team", "--plain"].into_iter().chain(keys));
    assert!(cybs3(&srv.home, &args).status.success());
    let out = cybs3(&srv.home, &["cat", "team:note.txt"]);
    assert!(!out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(
        err.contains("certificate") || err.contains("issuer"),
        "{err}"
    );
}

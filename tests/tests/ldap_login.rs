//! Directory logins against a real OpenLDAP `slapd` (started here on a loopback port):
//! STS `AssumeRoleWithLDAPIdentity` gives each user their groups' policies, checked with
//! aws-sdk-s3; bad logins, expiry and a stopped directory are refused; `cybs3 login`
//! stores the credentials in a vault and logs in again when they run out.

mod common;

use aws_sdk_s3::primitives::ByteStream;
use common::*;
use cybs3_tests::slapd::{LdapUser, Slapd};
use cybs3_tests::{bin, cybs3, Server};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn directory() -> Slapd {
    Slapd::start(&[
        LdapUser {
            uid: "alice",
            password: "alice-pw",
            groups: &["readers"],
        },
        LdapUser {
            uid: "bob",
            password: "bob pw+&=",
            groups: &["writers", "readers"],
        },
        LdapUser {
            uid: "carol",
            password: "carol-pw",
            groups: &["interns"],
        },
    ])
}

/// A server whose directory settings come from flags and a config file.
fn server(tmp: &std::path::Path, dir: &Slapd) -> Server {
    let config = tmp.join("server.toml");
    std::fs::write(
        &config,
        format!(
            "ldap-group-base = {:?}\nldap-group-policy = [\"readers=readonly\", {:?}]\n",
            dir.group_base(),
            format!("{}=readwrite", dir.group_dn("writers"))
        ),
    )
    .unwrap();
    let mut srv = Server::new(tmp, 1, None);
    srv.args = vec![
        format!("--ldap-url={}", dir.url),
        format!("--ldap-user-dn={}", dir.user_dn_template()),
        format!("--config={}", config.display()),
        "--sts-min-duration=2".into(),
    ];
    srv.start();
    srv
}

/// An unsigned STS form POST: (status, body).
fn sts(srv: &Server, user: &str, password: &str, duration: Option<u64>) -> (u16, String) {
    let mut args = vec![
        "-H".to_string(),
        "content-type: application/x-www-form-urlencoded".into(),
        "--data".into(),
        "Action=AssumeRoleWithLDAPIdentity&Version=2011-06-15".into(),
        "--data-urlencode".into(),
        format!("LDAPUsername={user}"),
        "--data-urlencode".into(),
        format!("LDAPPassword={password}"),
    ];
    if let Some(d) = duration {
        args.extend(["--data".into(), format!("DurationSeconds={d}")]);
    }
    args.push(format!("{}/", srv.endpoint()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = curl(&args);
    (r.status, String::from_utf8_lossy(&r.body).into_owned())
}

fn field(xml: &str, name: &str) -> String {
    let s = xml
        .find(&format!("<{name}>"))
        .unwrap_or_else(|| panic!("{name} in {xml}"))
        + name.len()
        + 2;
    xml[s..s + xml[s..].find('<').unwrap()].to_string()
}

fn session_client(srv: &Server, xml: &str) -> aws_sdk_s3::Client {
    srv.client_with(
        &field(xml, "AccessKeyId"),
        &field(xml, "SecretAccessKey"),
        Some(&field(xml, "SessionToken")),
    )
}

#[tokio::test]
async fn directory_users_get_their_groups_access() {
    let tmp = tempfile::tempdir().unwrap();
    let mut dir = directory();
    let srv = server(tmp.path(), &dir);
    let root = srv.client();
    bucket(&root, "shared").await;
    put(&root, "shared", "doc", b"hello".to_vec()).await;

    // alice (readers → readonly) reads but cannot write.
    let (st, xml) = sts(&srv, "alice", "alice-pw", None);
    assert_eq!(st, 200, "{xml}");
    assert!(xml.contains("<AssumeRoleWithLDAPIdentityResult>"), "{xml}");
    let alice = session_client(&srv, &xml);
    assert_eq!(get(&alice, "shared", "doc").await, b"hello");
    let (st, code) = fails(
        alice
            .put_object()
            .bucket("shared")
            .key("x")
            .body(ByteStream::from_static(b"x"))
            .send()
            .await,
    );
    assert_eq!((st, code.as_str()), (403, "AccessDenied"));

    // bob (writers, by group DN → readwrite) writes; his password has form-special characters.
    let (st, xml) = sts(&srv, "bob", "bob pw+&=", None);
    assert_eq!(st, 200, "{xml}");
    let bob = session_client(&srv, &xml);
    put(&bob, "shared", "from-bob", b"b".to_vec()).await;
    assert_eq!(get(&alice, "shared", "from-bob").await, b"b");

    // Refusals: each with a clear STS error.
    for (user, pw, status, code) in [
        ("alice", "wrong", 403, "AccessDenied"),
        ("alice", "", 400, "InvalidParameterValue"),
        ("mallory", "x", 403, "AccessDenied"),
        ("*)(uid=*", "alice-pw", 403, "AccessDenied"),
        ("*", "alice-pw", 403, "AccessDenied"),
        ("alice,ou=people", "alice-pw", 403, "AccessDenied"),
        ("carol", "carol-pw", 403, "AccessDenied"),
    ] {
        let (st, xml) = sts(&srv, user, pw, None);
        assert_eq!(
            (st, field(&xml, "Code").as_str()),
            (status, code),
            "{user:?}/{pw:?}: {xml}"
        );
    }
    let (_, xml) = sts(&srv, "carol", "carol-pw", None);
    assert!(
        xml.contains("no directory group that maps to a policy"),
        "{xml}"
    );

    // Password guessing: 50 failed logins from one source raise one guessing alert.
    for _ in 0..50 {
        assert_eq!(sts(&srv, "alice", "guess", None).0, 403);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    let guessing = loop {
        let listed = admin(&srv, &["admin", "alerts", "--json"]);
        let found: Vec<serde_json::Value> = (listed["alerts"].as_array().unwrap().iter())
            .filter(|a| a["kind"] == "guessing")
            .cloned()
            .collect();
        if !found.is_empty() || Instant::now() > deadline {
            break found;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(guessing.len(), 1, "{guessing:?}");
    assert_eq!(guessing[0]["subject"], "source:127.0.0.1");
    assert!(
        guessing[0]["saw"].as_str().unwrap().contains("ldap:alice"),
        "{}",
        guessing[0]
    );

    // Expired temporary credentials are refused.
    let (st, xml) = sts(&srv, "bob", "bob pw+&=", Some(2));
    assert_eq!(st, 200, "{xml}");
    let short = session_client(&srv, &xml);
    assert_eq!(get(&short, "shared", "doc").await, b"hello");
    std::thread::sleep(Duration::from_secs(3));
    let (st, code) = fails(short.get_object().bucket("shared").key("doc").send().await);
    assert_eq!((st, code.as_str()), (400, "ExpiredToken"));

    // The directory down is a clear error, never an open door — and fast.
    dir.stop();
    let t = Instant::now();
    let (st, xml) = sts(&srv, "alice", "alice-pw", None);
    assert_eq!(
        (st, field(&xml, "Code").as_str()),
        (503, "ServiceUnavailable"),
        "{xml}"
    );
    assert!(t.elapsed() < Duration::from_secs(10));
    // Sessions already granted keep working until they expire.
    assert_eq!(get(&alice, "shared", "doc").await, b"hello");
}

/// The plain vault `team` on a new bucket `shared`, for directory logins (no keys yet).
async fn team_vault(srv: &Server) {
    bucket(&srv.client(), "shared").await;
    let add = [
        "vaults",
        "add",
        "team",
        "--endpoint",
        &srv.endpoint(),
        "--bucket",
        "shared",
        "--plain",
    ];
    let out = cybs3(&srv.home, &add);
    assert!(out.status.success(), "{out:?}");
}

fn cybs3_with_password(srv: &Server, password: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .env("CYBS3_HOME", &srv.home)
        .env_remove("CYBS3_PASSWORD");
    if let Some(p) = password {
        cmd.env("CYBS3_PASSWORD", p);
    }
    cmd.output().unwrap()
}

#[tokio::test]
async fn cybs3_login_stores_and_renews_credentials() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = directory();
    let srv = server(tmp.path(), &dir);
    team_vault(&srv).await;

    let out = cybs3_with_password(
        &srv,
        Some("wrong"),
        &["login", "--vault", "team", "--username", "bob"],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("invalid username or password"), "{err}");

    let out = cybs3_with_password(
        &srv,
        Some("bob pw+&="),
        &[
            "login",
            "--vault",
            "team",
            "--username",
            "bob",
            "--duration",
            "13",
            "--json",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let config = std::fs::read_to_string(srv.home.join("config.toml")).unwrap();
    assert!(config.contains("session_token"), "{config}");
    assert!(!config.contains("bob pw"), "the password is never stored");

    let file = tmp.path().join("note.txt");
    std::fs::write(&file, b"written with a directory login").unwrap();
    let out = cybs3(&srv.home, &["cp", file.to_str().unwrap(), "team:note.txt"]);
    assert!(out.status.success(), "{out:?}");

    // Once the session (nearly) runs out, the next command logs in again with the password.
    std::thread::sleep(Duration::from_secs(4));
    let out = cybs3_with_password(&srv, None, &["cat", "team:note.txt"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("expired") && err.contains("CYBS3_PASSWORD"),
        "{err}"
    );
    let out = cybs3_with_password(&srv, Some("bob pw+&="), &["cat", "team:note.txt"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(out.stdout, b"written with a directory login");
}

/// A mount outlives its session: given the password, it logs in again by itself (as long
/// as the first login asked), so writes and reads go on after the session ran out.
#[tokio::test]
async fn a_mount_logs_in_again_when_its_session_runs_out() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = directory();
    let srv = server(tmp.path(), &dir);
    team_vault(&srv).await;
    let pw = Some("bob pw+&=");
    let login = [
        "login",
        "--vault",
        "team",
        "--username",
        "bob",
        "--duration",
        "3",
    ];
    let out = cybs3_with_password(&srv, pw, &login);
    assert!(out.status.success(), "{out:?}");

    let mnt = tmp.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let m = mnt.to_str().unwrap();
    let out = cybs3_with_password(&srv, pw, &["mount", m, "--vault", "team"]);
    assert!(out.status.success(), "{out:?}");
    struct Unmount<'a>(&'a Server, &'a str);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            cybs3(&self.0.home, &["umount", self.1]);
        }
    }
    let _unmount = Unmount(&srv, m);

    std::fs::write(mnt.join("one.txt"), b"first session").unwrap();
    // Sessions last 3 s: this is well past the first, and the next ones.
    std::thread::sleep(Duration::from_secs(5));
    std::fs::write(mnt.join("two.txt"), b"a later session").unwrap();
    assert_eq!(
        std::fs::read(mnt.join("one.txt")).unwrap(),
        b"first session"
    );
    assert_eq!(
        get(&srv.client(), "shared", "two.txt").await,
        b"a later session"
    );
}

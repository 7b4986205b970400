//! `ldap.rs` against a real OpenLDAP slapd started by the `slapd.rs` harness.

#[path = "../../tests/src/slapd.rs"]
mod slapd;

use std::time::{Duration, Instant};

use cybs3_s3d::ldap::{authenticate, policies_for, LdapConfig, LdapError, LdapIdentity};
use slapd::{LdapUser, Slapd};

const ALICE_PW: &str = "alice-secret";
const BOB_PW: &str = "bob-secret";

/// Usernames that would reach alice's entry, or several entries, if they were
/// pasted into a DN or filter unescaped.
const HOSTILE: &[&str] = &[
    "*",
    "ali*",
    "*)(uid=*",
    "alice)(|(uid=*",
    "alice)(uid=*",
    "alice\\2a",
    "alice,ou=people",
    "alice,ou=people,dc=example,dc=org",
    "alice+cn=alice",
    "uid=alice",
    "alice=",
    "#alice",
];

fn start() -> Slapd {
    Slapd::start(&[
        LdapUser {
            uid: "alice",
            password: ALICE_PW,
            groups: &["readers"],
        },
        LdapUser {
            uid: "bob",
            password: BOB_PW,
            groups: &["writers", "readers"],
        },
        LdapUser {
            uid: "carol",
            password: "carol-secret",
            groups: &[],
        },
    ])
}

fn direct(s: &Slapd) -> LdapConfig {
    LdapConfig {
        url: s.url.clone(),
        user_dn: Some(s.user_dn_template()),
        group_base: Some(s.group_base()),
        group_policies: vec![
            ("readers".into(), "readonly".into()),
            ("writers".into(), "readwrite".into()),
        ],
        ..Default::default()
    }
}

fn search(s: &Slapd) -> LdapConfig {
    LdapConfig {
        user_dn: None,
        bind_dn: Some(s.root_dn()),
        bind_password: Some(s.root_password()),
        user_base: Some(s.user_base()),
        user_filter: Some("(uid={user})".into()),
        ..direct(s)
    }
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

async fn assert_users(s: &Slapd, cfg: &LdapConfig) {
    let alice = authenticate(cfg, "alice", ALICE_PW).await.expect("alice");
    assert_eq!(alice.username, "alice");
    assert_eq!(alice.dn, "uid=alice,ou=people,dc=example,dc=org");
    assert_eq!(alice.groups, vec![s.group_dn("readers")]);
    assert_eq!(policies_for(cfg, &alice), vec!["readonly"]);

    let bob = authenticate(cfg, "bob", BOB_PW).await.expect("bob");
    assert_eq!(bob.dn, "uid=bob,ou=people,dc=example,dc=org");
    assert_eq!(
        sorted(bob.groups.clone()),
        sorted(vec![s.group_dn("readers"), s.group_dn("writers")])
    );
    assert_eq!(policies_for(cfg, &bob), vec!["readonly", "readwrite"]);

    let carol = authenticate(cfg, "carol", "carol-secret")
        .await
        .expect("carol");
    assert!(carol.groups.is_empty());
    assert!(policies_for(cfg, &carol).is_empty());
}

async fn assert_refusals(cfg: &LdapConfig) {
    // The directory matches uid case-insensitively; the identity carries the
    // entry's real DN, not the one built from the typed name.
    let upper = authenticate(cfg, "ALICE", ALICE_PW).await.expect("ALICE");
    assert_eq!(upper.dn, "uid=alice,ou=people,dc=example,dc=org");
    assert_eq!(upper.groups.len(), 1);

    let err = authenticate(cfg, "alice", "wrong").await.unwrap_err();
    assert!(matches!(err, LdapError::InvalidCredentials), "{err:?}");
    // bob's password must not open alice's account.
    let err = authenticate(cfg, "alice", BOB_PW).await.unwrap_err();
    assert!(matches!(err, LdapError::InvalidCredentials), "{err:?}");
    let err = authenticate(cfg, "mallory", ALICE_PW).await.unwrap_err();
    assert!(matches!(err, LdapError::InvalidCredentials), "{err:?}");
    assert_eq!(err.to_string(), "invalid username or password");
    let err = authenticate(cfg, "alice", "").await.unwrap_err();
    assert!(matches!(err, LdapError::EmptyPassword), "{err:?}");
    for bad in [
        "",
        "alice\0",
        "ali\nce",
        "alice ",
        " alice",
        &"a".repeat(257),
    ] {
        let err = authenticate(cfg, bad, ALICE_PW).await.unwrap_err();
        assert!(
            matches!(err, LdapError::InvalidUsername),
            "{bad:?}: {err:?}"
        );
    }
}

async fn assert_injection_refused(cfg: &LdapConfig) {
    for name in HOSTILE {
        let res: Result<LdapIdentity, _> = authenticate(cfg, name, ALICE_PW).await;
        assert!(
            matches!(res, Err(LdapError::InvalidCredentials)),
            "{name:?} gave {res:?}"
        );
    }
}

#[tokio::test]
async fn direct_bind_identity_groups_and_policies() {
    let s = start();
    let cfg = direct(&s);
    assert_users(&s, &cfg).await;

    // Mapping by full DN (any case) gives the same policies as by cn.
    let by_dn = LdapConfig {
        group_policies: vec![
            (s.group_dn("readers").to_uppercase(), "readonly".into()),
            (s.group_dn("writers"), "readwrite".into()),
            ("cn=writers".into(), "never".into()),
        ],
        ..cfg.clone()
    };
    let bob = authenticate(&by_dn, "bob", BOB_PW).await.unwrap();
    assert_eq!(policies_for(&by_dn, &bob), vec!["readonly", "readwrite"]);
}

#[tokio::test]
async fn direct_bind_refusals_and_injection() {
    let s = start();
    let cfg = direct(&s);
    assert_refusals(&cfg).await;
    assert_injection_refused(&cfg).await;
}

#[tokio::test]
async fn dn_template_cannot_be_extended_by_the_username() {
    let s = start();
    // Users sit one level below this template's base: an unescaped
    // "alice,ou=people" would build alice's real DN.
    let cfg = LdapConfig {
        user_dn: Some(format!("uid={{user}},{}", s.base)),
        ..direct(&s)
    };
    for name in ["alice,ou=people", r"alice\,ou=people", r"alice\2cou=people"] {
        let res = authenticate(&cfg, name, ALICE_PW).await;
        assert!(
            matches!(res, Err(LdapError::InvalidCredentials)),
            "{name:?} gave {res:?}"
        );
    }
}

#[tokio::test]
async fn search_mode_identity_groups_and_policies() {
    let s = start();
    let cfg = search(&s);
    assert_users(&s, &cfg).await;
    // The default user filter and a custom group filter work too.
    let cfg = LdapConfig {
        user_filter: None,
        group_filter: Some("(&(objectClass=groupOfNames)(member={dn}))".into()),
        ..cfg
    };
    assert_users(&s, &cfg).await;
}

#[tokio::test]
async fn search_mode_refusals_and_injection() {
    let s = start();
    let cfg = search(&s);
    assert_refusals(&cfg).await;
    assert_injection_refused(&cfg).await;
    // A filter matching several users must not pick one of them.
    let loose = LdapConfig {
        user_filter: Some("(|(uid={user})(objectClass=inetOrgPerson))".into()),
        ..cfg.clone()
    };
    let err = authenticate(&loose, "alice", ALICE_PW).await.unwrap_err();
    assert!(matches!(err, LdapError::InvalidCredentials), "{err:?}");
}

#[tokio::test]
async fn group_filter_injection_cannot_add_groups() {
    // A real user named "*": pasted unescaped into (cn={user}) it would match every group.
    let s = Slapd::start(&[
        LdapUser {
            uid: "alice",
            password: ALICE_PW,
            groups: &["readers"],
        },
        LdapUser {
            uid: "*",
            password: "star-secret",
            groups: &[],
        },
    ]);
    let cfg = LdapConfig {
        group_filter: Some("(|(member={dn})(cn={user}))".into()),
        ..direct(&s)
    };
    let star = authenticate(&cfg, "*", "star-secret").await.unwrap();
    assert_eq!(star.dn, "uid=*,ou=people,dc=example,dc=org");
    assert!(star.groups.is_empty(), "{star:?}");
    let alice = authenticate(&cfg, "alice", ALICE_PW).await.unwrap();
    assert_eq!(alice.groups, vec![s.group_dn("readers")]);
}

#[tokio::test]
async fn rejected_service_account_is_not_a_bad_password() {
    let s = start();
    let cfg = LdapConfig {
        bind_password: Some("not-the-root-password".into()),
        ..search(&s)
    };
    let err = authenticate(&cfg, "alice", ALICE_PW).await.unwrap_err();
    assert!(matches!(err, LdapError::Unavailable(_)), "{err:?}");
}

#[tokio::test]
async fn other_ldap_errors_are_unavailable_with_the_message() {
    let s = start();
    let cfg = LdapConfig {
        group_base: Some(format!("ou=nowhere,{}", s.base)),
        ..direct(&s)
    };
    let err = authenticate(&cfg, "alice", ALICE_PW).await.unwrap_err();
    // 32 = noSuchObject.
    assert!(
        matches!(&err, LdapError::Unavailable(m) if m.contains("32")),
        "{err:?}"
    );
}

#[tokio::test]
async fn stopped_server_is_unavailable_quickly() {
    let mut s = start();
    let cfg = direct(&s);
    authenticate(&cfg, "alice", ALICE_PW).await.unwrap();
    s.stop();
    let t = Instant::now();
    let err = authenticate(&cfg, "alice", ALICE_PW).await.unwrap_err();
    assert!(matches!(err, LdapError::Unavailable(_)), "{err:?}");
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    // The empty password is refused before any connection is attempted.
    let err = authenticate(&cfg, "alice", "").await.unwrap_err();
    assert!(matches!(err, LdapError::EmptyPassword), "{err:?}");
}

#[tokio::test]
async fn silent_server_times_out() {
    // Accepts connections and never answers: the bind must time out.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let cfg = LdapConfig {
        url: format!("ldap://127.0.0.1:{port}"),
        user_dn: Some("uid={user},dc=x".into()),
        timeout_secs: 1,
        ..Default::default()
    };
    let t = Instant::now();
    let err = authenticate(&cfg, "alice", ALICE_PW).await.unwrap_err();
    assert!(matches!(err, LdapError::Unavailable(_)), "{err:?}");
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    // StartTLS against the same silent server is bounded by the connect timeout.
    let cfg = LdapConfig {
        start_tls: true,
        ..cfg
    };
    let t = Instant::now();
    let err = authenticate(&cfg, "alice", ALICE_PW).await.unwrap_err();
    assert!(matches!(err, LdapError::Unavailable(_)), "{err:?}");
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    drop(listener);
}

#[test]
fn config_validation() {
    let good = LdapConfig {
        url: "ldap://127.0.0.1:389".into(),
        user_dn: Some("uid={user},dc=x".into()),
        ..Default::default()
    };
    good.validate().unwrap();
    assert_eq!(LdapConfig::default().timeout_secs, 5);
    let search = LdapConfig {
        user_dn: None,
        user_base: Some("dc=x".into()),
        bind_dn: Some("cn=svc,dc=x".into()),
        bind_password: Some("pw".into()),
        ..good.clone()
    };
    search.validate().unwrap();

    let bad = [
        LdapConfig {
            url: "http://x".into(),
            ..good.clone()
        },
        LdapConfig {
            url: "ldap://".into(),
            ..good.clone()
        },
        LdapConfig {
            url: "127.0.0.1:389".into(),
            ..good.clone()
        },
        LdapConfig {
            url: "ldaps://x".into(),
            start_tls: true,
            ..good.clone()
        },
        LdapConfig {
            ca_file: Some("/ca.pem".into()),
            ..good.clone()
        },
        LdapConfig {
            timeout_secs: 0,
            ..good.clone()
        },
        LdapConfig {
            user_dn: Some("uid=alice,dc=x".into()),
            ..good.clone()
        },
        LdapConfig {
            user_dn: None,
            ..good.clone()
        },
        LdapConfig {
            user_base: Some("dc=x".into()),
            ..good.clone()
        },
        LdapConfig {
            bind_dn: Some("cn=svc".into()),
            ..good.clone()
        },
        LdapConfig {
            user_filter: Some("(uid={user})".into()),
            ..good.clone()
        },
        LdapConfig {
            bind_dn: None,
            ..search.clone()
        },
        LdapConfig {
            bind_password: Some(String::new()),
            ..search.clone()
        },
        LdapConfig {
            user_filter: Some("(uid=alice)".into()),
            ..search.clone()
        },
        LdapConfig {
            group_policies: vec![("g".into(), "p".into())],
            ..good.clone()
        },
        LdapConfig {
            group_base: Some("dc=x".into()),
            group_filter: Some("(objectClass=groupOfNames)".into()),
            ..good.clone()
        },
        LdapConfig {
            group_base: Some("dc=x".into()),
            group_policies: vec![("g".into(), String::new())],
            ..good.clone()
        },
    ];
    for cfg in bad {
        assert!(
            matches!(cfg.validate(), Err(LdapError::Config(_))),
            "{cfg:?}"
        );
    }
}

#[tokio::test]
async fn config_errors_surface_from_authenticate() {
    let cfg = LdapConfig {
        url: "http://127.0.0.1:1".into(),
        user_dn: Some("uid={user},dc=x".into()),
        ..Default::default()
    };
    let err = authenticate(&cfg, "alice", ALICE_PW).await.unwrap_err();
    assert!(matches!(err, LdapError::Config(_)), "{err:?}");
}

#[tokio::test]
async fn tls_with_custom_ca() {
    let s = Slapd::start_tls(&[LdapUser {
        uid: "alice",
        password: ALICE_PW,
        groups: &["readers"],
    }]);
    let ca = s.ca_file.clone().expect("ca_file");
    let ldaps = s.ldaps_url.clone().expect("ldaps_url");
    let starttls = LdapConfig {
        start_tls: true,
        ca_file: Some(ca.clone()),
        ..direct(&s)
    };
    let over_ldaps = LdapConfig {
        url: ldaps.clone(),
        ca_file: Some(ca),
        ..direct(&s)
    };
    for cfg in [&starttls, &over_ldaps] {
        let alice = authenticate(cfg, "alice", ALICE_PW)
            .await
            .expect("alice over TLS");
        assert_eq!(alice.groups, vec![s.group_dn("readers")]);
        let err = authenticate(cfg, "alice", "wrong").await.unwrap_err();
        assert!(matches!(err, LdapError::InvalidCredentials), "{err:?}");
    }
    // Without the CA the server's certificate is not trusted: verification stays on.
    for cfg in [
        LdapConfig {
            ca_file: None,
            ..starttls.clone()
        },
        LdapConfig {
            ca_file: None,
            ..over_ldaps.clone()
        },
    ] {
        let err = authenticate(&cfg, "alice", ALICE_PW).await.unwrap_err();
        assert!(
            matches!(&err, LdapError::Unavailable(m) if m.contains("UnknownIssuer")),
            "{err:?}"
        );
    }
    // A file without certificates is a configuration error.
    let empty = tempfile::NamedTempFile::new().unwrap();
    let cfg = LdapConfig {
        ca_file: Some(empty.path().to_owned()),
        ..over_ldaps
    };
    let err = authenticate(&cfg, "alice", ALICE_PW).await.unwrap_err();
    assert!(matches!(err, LdapError::Config(_)), "{err:?}");
}

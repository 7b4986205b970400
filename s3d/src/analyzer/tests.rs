use super::*;
use crate::identity::auth::iso8601;
use crate::identity::grants::{self, ATTR_ACL, ATTR_OWNERSHIP, ATTR_PUBLIC_ACCESS_BLOCK};
use crate::identity::iam::{IamCall, Target};
use crate::identity::owners;
use crate::identity::policy::Policy;
use engine::{Grant, Grantee, Permission, Store};
use serde_json::json;

struct Fixture {
    _dir: tempfile::TempDir,
    audit: tempfile::TempDir,
    store: Store,
    iam: Iam,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(engine::StoreConfig::new(vec![dir.path().into()])).unwrap();
    Fixture {
        iam: Iam::new(store.clone(), &[7; 32]),
        store,
        _dir: dir,
        audit: tempfile::tempdir().unwrap(),
    }
}

impl Fixture {
    fn run(&self, unused_days: u64) -> Analysis {
        analyze(&self.iam, Some(self.audit.path()), Options { unused_days }).unwrap()
    }

    fn found(&self) -> Vec<(Kind, String, Severity)> {
        self.run(90)
            .findings
            .into_iter()
            .map(|f| (f.kind, f.resource, f.severity))
            .collect()
    }

    fn call(&self, call: IamCall) -> serde_json::Value {
        self.iam.apply(call).unwrap()
    }

    fn policy(&self, name: &str, statements: serde_json::Value) {
        let doc = json!({"Version": "2012-10-17", "Statement": statements});
        self.call(IamCall::PolicyAdd {
            name: name.into(),
            document: doc.to_string(),
        });
    }

    fn user(&self, name: &str, policies: &[&str]) -> String {
        let v = self.call(IamCall::UserAdd {
            name: name.into(),
            policies: policies.iter().map(|p| p.to_string()).collect(),
            groups: Vec::new(),
        });
        v["access_key"].as_str().unwrap().to_string()
    }

    /// A bucket as S3 makes it now: owned by `owner`, private, ACLs disabled.
    fn bucket(&self, name: &str, owner: &str) {
        let acl = grants::private(owners::user(owner));
        let attrs = vec![
            (ATTR_ACL.to_string(), grants::encode(&acl)),
            (ATTR_OWNERSHIP.to_string(), b"BucketOwnerEnforced".to_vec()),
        ];
        self.store.create_bucket_with(name, false, attrs).unwrap();
    }

    fn bucket_policy(&self, bucket: &str, statements: serde_json::Value) {
        let doc = json!({"Version": "2012-10-17", "Statement": statements});
        let p = Policy::parse(&doc.to_string()).unwrap();
        p.check_bucket_policy(bucket).unwrap();
        let attr = crate::identity::bucket_policy::ATTR;
        let bytes = Some(p.to_json().into_bytes());
        self.store.set_bucket_attr(bucket, attr, bytes).unwrap();
    }

    fn attr(&self, bucket: &str, name: &str, value: Option<Vec<u8>>) {
        self.store.set_bucket_attr(bucket, name, value).unwrap();
    }
}

fn public_read(bucket: &str) -> serde_json::Value {
    json!([{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
            "Resource": format!("arn:aws:s3:::{bucket}/*")}])
}

#[test]
fn a_clean_store_has_no_finding() {
    let f = fixture();
    f.bucket("team", "alice");
    f.policy(
        "team-rw",
        json!([{"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
                "Resource": "arn:aws:s3:::team/*"},
               {"Effect": "Deny", "Action": "s3:*", "Resource": "*",
                "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]),
    );
    f.user("alice", &["team-rw"]);
    f.user("reader", &["readonly"]);
    // The owner named in its own bucket's policy, under a condition: nobody else.
    f.bucket_policy(
        "team",
        json!([{"Effect": "Allow", "Principal": {"AWS": "alice"}, "Action": "s3:*",
                "Resource": "arn:aws:s3:::team/*",
                "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}]),
    );
    let out = f.run(90);
    assert!(out.findings.is_empty(), "{:#?}", out.findings);
    assert!(out.notes.is_empty(), "{:?}", out.notes);
    // Without an audit log, unused credentials cannot be told: said, not guessed.
    let off = analyze(&f.iam, None, Options { unused_days: 0 }).unwrap();
    assert!(off.findings.is_empty() && off.notes.len() == 1);
}

#[test]
fn public_bucket_policies_and_what_blocks_them() {
    let f = fixture();
    f.bucket("site", "alice");
    f.bucket_policy("site", public_read("site"));
    let out = f.run(90);
    assert_eq!(out.findings.len(), 1, "{:#?}", out.findings);
    let p = &out.findings[0];
    assert_eq!(
        (p.kind, p.resource.as_str()),
        (Kind::PublicBucketPolicy, "bucket:site")
    );
    assert_eq!((p.severity, p.blocked), (Severity::High, Some(false)));
    assert_eq!(p.evidence["statement"]["Principal"], "*");
    assert!(
        p.fix.contains("delete-bucket-policy --bucket site"),
        "{}",
        p.fix
    );
    // RestrictPublicBuckets stops it: still reported, as blocked.
    let block = grants::PublicAccessBlock {
        restrict_public_buckets: true,
        ..Default::default()
    };
    let bytes = Some(serde_json::to_vec(&block).unwrap());
    f.attr("site", ATTR_PUBLIC_ACCESS_BLOCK, bytes);
    let out = f.run(90);
    assert_eq!(out.findings.len(), 1);
    assert_eq!(out.findings[0].severity, Severity::Low);
    assert_eq!(out.findings[0].blocked, Some(true));
    // Under a condition it is an anonymous grant, not a public policy.
    f.bucket_policy(
        "site",
        json!([{"Effect": "Allow", "Principal": {"AWS": ["*"]}, "Action": "s3:*",
                "Resource": "arn:aws:s3:::site/*",
                "Condition": {"IpAddress": {"aws:SourceIp": "192.0.2.0/24"}}}]),
    );
    let found = f.found();
    assert_eq!(
        found,
        vec![
            (Kind::AnonymousGrant, "bucket:site".into(), Severity::Medium),
            (Kind::WildcardAction, "bucket:site".into(), Severity::Medium),
        ]
    );
    f.attr("site", crate::identity::bucket_policy::ATTR, None);
    assert!(f.found().is_empty());
}

#[test]
fn grants_to_other_users_in_policies_and_acls() {
    let f = fixture();
    f.bucket("shared", "alice");
    f.bucket_policy(
        "shared",
        json!([{"Effect": "Allow",
                "Principal": {"AWS": ["arn:aws:iam::123456789012:user/bob", "alice"]},
                "Action": "s3:GetObject", "Resource": "arn:aws:s3:::shared/*"}]),
    );
    let out = f.run(90);
    assert_eq!(out.findings.len(), 1, "{:#?}", out.findings);
    assert_eq!(out.findings[0].kind, Kind::CrossUserGrant);
    assert!(out.findings[0].summary.contains("bob") && !out.findings[0].summary.contains("alice"));
    f.attr("shared", crate::identity::bucket_policy::ATTR, None);
    // An ACL granting carol READ and everyone READ_ACP: one finding each.
    let mut acl = grants::private(owners::user("alice"));
    for (grantee, permission) in [
        (Grantee::User(owners::user("carol")), Permission::Read),
        (Grantee::AllUsers, Permission::ReadAcp),
    ] {
        acl.grants.push(Grant {
            grantee,
            permission,
        });
    }
    f.attr("shared", ATTR_ACL, Some(grants::encode(&acl)));
    assert_eq!(
        f.found(),
        vec![
            (
                Kind::PublicBucketAcl,
                "bucket:shared".into(),
                Severity::High
            ),
            (Kind::CrossUserGrant, "bucket:shared".into(), Severity::Low),
        ]
    );
}

#[test]
fn public_object_acls_count_only_where_acls_are_enabled() {
    let f = fixture();
    f.bucket("media", "alice");
    let mut acl = grants::private(owners::user("alice"));
    acl.grants.push(Grant {
        grantee: Grantee::AllUsers,
        permission: Permission::Read,
    });
    for key in ["a.png", "b.png"] {
        let mut w = f.store.put("media", key).unwrap();
        w.write(b"x").unwrap();
        let acl = (key == "a.png").then(|| acl.clone());
        w.finish(engine::ObjectMeta {
            acl,
            ..Default::default()
        })
        .unwrap();
    }
    // BucketOwnerEnforced: object ACLs do not apply, and are not read.
    assert!(f.found().is_empty());
    f.attr("media", ATTR_OWNERSHIP, Some(b"ObjectWriter".to_vec()));
    assert_eq!(
        f.found(),
        vec![(
            Kind::PublicObjectAcl,
            "object:media/a.png".into(),
            Severity::High
        )]
    );
    let block = grants::PublicAccessBlock {
        ignore_public_acls: true,
        ..Default::default()
    };
    let bytes = Some(serde_json::to_vec(&block).unwrap());
    f.attr("media", ATTR_PUBLIC_ACCESS_BLOCK, bytes);
    let out = f.run(90);
    assert_eq!(out.findings.len(), 1);
    assert_eq!(
        (out.findings[0].severity, out.findings[0].blocked),
        (Severity::Low, Some(true))
    );
    assert!(out.findings[0]
        .fix
        .contains("put-object-acl --bucket media --key a.png"));
}

#[test]
fn attached_policies_with_wildcards_and_full_access() {
    let f = fixture();
    f.policy(
        "everything",
        json!([{"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::*"}]),
    );
    f.policy(
        "team-all",
        json!([{"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::team/*"}]),
    );
    // Stored but attached to nobody: it grants nothing.
    f.policy(
        "unused",
        json!([{"Effect": "Allow", "Action": "*", "Resource": "*"}]),
    );
    f.user("ops", &["everything"]);
    f.user("boss", &["admin"]);
    f.call(IamCall::GroupAdd {
        name: "team".into(),
        policies: vec!["team-all".into()],
    });
    assert_eq!(
        f.found(),
        vec![
            (
                Kind::FullS3Access,
                "policy:everything".into(),
                Severity::High
            ),
            (Kind::FullS3Access, "policy:admin".into(), Severity::Medium),
            (
                Kind::WildcardAction,
                "policy:team-all".into(),
                Severity::Low
            ),
        ]
    );
    let out = f.run(90);
    let admin = out
        .findings
        .iter()
        .find(|x| x.resource == "policy:admin")
        .unwrap();
    assert_eq!(admin.evidence["attached_to"], json!(["user:boss"]));
    assert!(admin
        .fix
        .contains("cybs3 admin policy detach admin --user boss"));
    f.call(IamCall::PolicyDetach {
        policy: "everything".into(),
        to: Target::User("ops".into()),
    });
    f.call(IamCall::UserRemove {
        name: "boss".into(),
    });
    f.call(IamCall::GroupRemove {
        name: "team".into(),
    });
    assert!(f.found().is_empty());
}

/// Each statement's conditions, reviewed alone.
fn never(condition: serde_json::Value) -> Option<String> {
    let doc = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Action": "s3:GetObject", "Resource": "*", "Condition": condition}]});
    let now_ms = 1_800_000_000_000;
    Policy::parse(&doc.to_string()).unwrap().review(now_ms)[0]
        .never
        .clone()
}

#[test]
fn conditions_that_can_never_hold() {
    let impossible = [
        json!({"Null": {"s3:prefix": "true"}, "StringEquals": {"s3:prefix": "home/"}}),
        json!({"Null": {"s3:x-amz-acl": true}, "ForAnyValue:StringLike": {"s3:x-amz-acl": "*"}}),
        json!({"StringEquals": {"s3:x-amz-acl": "private"},
               "ForAllValues:StringEquals": {"s3:x-amz-acl": ["public-read", "authenticated-read"]}}),
        json!({"NumericGreaterThan": {"s3:max-keys": 10}, "NumericLessThan": {"s3:max-keys": 5}}),
        json!({"NumericGreaterThanEquals": {"s3:max-keys": 10}, "NumericLessThan": {"s3:max-keys": "10"}}),
        json!({"NumericEquals": {"s3:max-keys": 3}, "NumericGreaterThan": {"s3:max-keys": 3}}),
        // Times that have passed (the clock is 2027-01-15 here).
        json!({"DateLessThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}),
        json!({"DateEquals": {"aws:CurrentTime": "2021-06-01"}}),
        json!({"NumericLessThan": {"aws:EpochTime": 1_600_000_000}}),
    ];
    for c in impossible {
        assert!(never(c.clone()).is_some(), "{c}");
    }
    let possible = [
        json!({"Null": {"s3:prefix": "true"}, "StringEqualsIfExists": {"s3:prefix": "home/"}}),
        json!({"Null": {"s3:prefix": "true"}, "StringNotEquals": {"s3:prefix": "home/"}}),
        json!({"Null": {"s3:prefix": ["true", "false"]}, "StringEquals": {"s3:prefix": "a"}}),
        json!({"StringEquals": {"s3:x-amz-acl": "private"},
               "ForAllValues:StringEquals": {"s3:x-amz-acl": ["private", "public-read"]}}),
        // A variable is known only per request.
        json!({"StringEquals": {"s3:prefix": "${aws:username}"},
               "ForAllValues:StringEquals": {"s3:prefix": ["a"]}}),
        json!({"NumericGreaterThan": {"s3:max-keys": 5}, "NumericLessThan": {"s3:max-keys": [3, 10]}}),
        json!({"NumericGreaterThanEquals": {"s3:max-keys": 10}, "NumericLessThanEquals": {"s3:max-keys": 10}}),
        json!({"NumericGreaterThanIfExists": {"s3:max-keys": 10}, "NumericLessThan": {"s3:max-keys": 5}}),
        json!({"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}}),
        json!({"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}),
        json!({"Bool": {"aws:SecureTransport": "true"}, "IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}),
    ];
    for c in possible {
        assert_eq!(never(c.clone()), None, "{c}");
    }
    // Malformed values never reach a stored policy: the parser refuses them.
    for c in [
        json!({"IpAddress": {"aws:SourceIp": "10.0.0.0/33"}}),
        json!({"NumericLessThan": {"s3:max-keys": "ten"}}),
        json!({"DateLessThan": {"aws:CurrentTime": "yesterday"}}),
        json!({"Bool": {"aws:SecureTransport": "yes"}}),
    ] {
        let doc = json!({"Statement": [{"Effect": "Allow", "Action": "s3:*",
            "Resource": "*", "Condition": c}]});
        assert!(Policy::parse(&doc.to_string()).is_err(), "{c}");
    }
}

#[test]
fn impossible_conditions_in_policies_are_findings() {
    let f = fixture();
    f.bucket("logs", "alice");
    f.bucket_policy(
        "logs",
        json!([{"Effect": "Deny", "Principal": "*", "Action": "s3:DeleteObject",
                "Resource": "arn:aws:s3:::logs/*",
                "Condition": {"Null": {"s3:prefix": "true"},
                              "StringLike": {"s3:prefix": "x/*"}}}]),
    );
    f.policy(
        "expired",
        json!([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::logs/*",
                "Condition": {"DateLessThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}}]),
    );
    f.user("temp", &["expired"]);
    assert_eq!(
        f.found(),
        vec![
            (
                Kind::ImpossibleCondition,
                "bucket:logs".into(),
                Severity::Medium
            ),
            (
                Kind::ImpossibleCondition,
                "policy:expired".into(),
                Severity::Low
            ),
        ]
    );
}

#[test]
fn unused_users_and_keys_from_the_audit_log() {
    let f = fixture();
    let ak = f.user("idle", &[]);
    f.bucket("bkt", "root");
    let bucket_key = f.iam.keyring().create("bkt").unwrap().access_key;
    // Nothing is older than 90 days.
    assert!(f.found().is_empty());
    // Created before the cutoff of 0 days: one second is enough.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let kinds = |out: &Analysis| -> Vec<(Kind, String)> {
        out.findings
            .iter()
            .map(|x| (x.kind, x.resource.clone()))
            .collect()
    };
    let out = f.run(0);
    assert_eq!(
        kinds(&out),
        vec![
            (Kind::UnusedUser, "user:idle".into()),
            (Kind::UnusedKey, format!("key:{bucket_key}")),
        ]
    );
    // A line naming the user but not its key: the key alone is unused.
    let now = crate::identity::keys::now_unix();
    let (day, later) = (iso8601(now), iso8601(now + 5));
    let line = |user: &str, key: &str| {
        json!({"prev": "", "seq": 0, "time": later, "kind": "request", "user": user,
               "access_key": key})
        .to_string()
    };
    let file = f.audit.path().join(format!("{}.jsonl", &day[..10]));
    std::fs::write(&file, format!("{}\n", line("idle", "CTSESSION"))).unwrap();
    let out = analyze(&f.iam, Some(f.audit.path()), Options { unused_days: 0 }).unwrap();
    assert_eq!(
        kinds(&out),
        vec![
            (Kind::UnusedKey, format!("key:{ak}")),
            (Kind::UnusedKey, format!("key:{bucket_key}")),
        ]
        .into_iter()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect::<Vec<_>>()
    );
    let text = format!(
        "{}\n{}\n",
        line("idle", &ak),
        line("bucket:bkt", &bucket_key)
    );
    std::fs::write(&file, text).unwrap();
    assert!(f.run(0).findings.is_empty());
}

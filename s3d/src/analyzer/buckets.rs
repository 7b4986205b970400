//! Buckets: their policies, their ACLs and the ACLs of their objects.
//!
//! Object ACLs count only where ACLs are enabled (ownership other than
//! `BucketOwnerEnforced`, which every new bucket gets), so only those buckets' versions
//! are listed: a page of 1,000 per read transaction, up to [`OBJECT_SCAN_MAX`] versions a
//! bucket, and a note when a bucket is cut there. A run thus costs one index read per
//! version of the ACL-enabled buckets (bounded), and nothing per object elsewhere.

use super::{Analysis, AnalyzerError, Finding, Kind, Severity};
use crate::identity::grants::{self, BucketAccess};
use crate::identity::iam::Iam;
use crate::identity::owners;
use crate::identity::policy::Reviewed;
use engine::{Acl, CanonicalUser, Grant, Grantee, Store, VersionQuery};
use serde_json::json;

/// The most versions read for their ACLs in one bucket per run.
const OBJECT_SCAN_MAX: usize = 100_000;
const PAGE: usize = 1000;

pub(super) fn analyze(iam: &Iam, now_ms: i64, out: &mut Analysis) -> Result<(), AnalyzerError> {
    let store = iam.store();
    for b in store.list_buckets()? {
        let access = match BucketAccess::load(store, &b.name) {
            Ok(a) => a,
            // Removed since the list was read.
            Err(engine::Error::NoSuchBucket(_)) => continue,
            Err(e) => return Err(e.into()),
        };
        if let Some(policy) = iam.bucket_policy(&b.name)? {
            for r in policy.review(now_ms) {
                policy_statement(&b.name, &access, &r, &mut out.findings);
            }
        }
        let fix = format!("aws s3api put-bucket-acl --bucket {} --acl private", b.name);
        let on = Acls {
            resource: format!("bucket:{}", b.name),
            what: "the bucket's ACL",
            fix,
            public_kind: Kind::PublicBucketAcl,
            bucket_owner: None,
        };
        on.check(&access, &access.acl, &mut out.findings);
        if access.acls_enabled() {
            objects(store, &b.name, &access, out)?;
        }
    }
    Ok(())
}

/// The findings of one statement of a bucket's policy.
fn policy_statement(bucket: &str, access: &BucketAccess, r: &Reviewed, out: &mut Vec<Finding>) {
    let mut add = |severity, kind, summary: String, blocked, fix: String| {
        out.push(Finding {
            severity,
            kind,
            resource: format!("bucket:{bucket}"),
            summary,
            blocked,
            evidence: json!({"bucket_policy": r.label, "statement": r.json}),
            fix,
        });
    };
    let rewrite = format!(
        "aws s3api put-bucket-policy --bucket {bucket} --policy file://POLICY.json \
         (the policy without {}), or aws s3api delete-bucket-policy --bucket {bucket}",
        r.label
    );
    if let Some(why) = &r.never {
        let (severity, effect) = if r.allow {
            (Severity::Low, "grants nothing")
        } else {
            (Severity::Medium, "denies nothing")
        };
        let summary = format!("{} of the bucket policy {effect}: {why}", r.label);
        add(severity, Kind::ImpossibleCondition, summary, None, rewrite);
        return;
    }
    if !r.allow {
        return;
    }
    if r.public {
        let blocked = access.block().restrict_public_buckets;
        let (severity, summary, fix) = if blocked {
            (
                Severity::Low,
                format!("{} of the bucket policy lets anyone in, signed or not; the public access block (RestrictPublicBuckets) stops it while it stays", r.label),
                rewrite.clone(),
            )
        } else {
            (
                Severity::High,
                format!("{} of the bucket policy lets anyone in, signed or not", r.label),
                format!("{rewrite}; or block it: aws s3api put-public-access-block --bucket {bucket} --public-access-block-configuration RestrictPublicBuckets=true,BlockPublicPolicy=true"),
            )
        };
        add(
            severity,
            Kind::PublicBucketPolicy,
            summary,
            Some(blocked),
            fix,
        );
    } else if r.anonymous_if {
        let summary = format!(
            "{} of the bucket policy lets anonymous callers in under its conditions",
            r.label
        );
        add(
            Severity::Medium,
            Kind::AnonymousGrant,
            summary,
            None,
            rewrite.clone(),
        );
    }
    let others: Vec<&str> = r
        .users
        .iter()
        .filter(|u| owners::user(u).id != access.owner().id)
        .map(String::as_str)
        .collect();
    if !others.is_empty() {
        let summary = format!(
            "{} of the bucket policy grants users other than the bucket's owner: {}",
            r.label,
            others.join(", ")
        );
        add(
            Severity::Low,
            Kind::CrossUserGrant,
            summary,
            None,
            rewrite.clone(),
        );
    }
    if !r.wildcards.is_empty() && (r.public || r.anonymous_if || !others.is_empty()) {
        let summary = format!(
            "{} of the bucket policy grants others every action of {}",
            r.label,
            r.wildcards.join(", ")
        );
        add(
            Severity::Medium,
            Kind::WildcardAction,
            summary,
            None,
            rewrite,
        );
    }
}

/// Where an ACL is, for its findings.
struct Acls {
    resource: String,
    /// "the bucket's ACL", "the object's ACL".
    what: &'static str,
    fix: String,
    public_kind: Kind,
    /// For an object: the bucket's owner, whose grants are no one else's.
    bucket_owner: Option<CanonicalUser>,
}

impl Acls {
    /// Public grants (one finding for all of them) and grants to other users.
    fn check(&self, access: &BucketAccess, acl: &Acl, out: &mut Vec<Finding>) {
        let evidence =
            |grants: Vec<&Grant>| json!({"owner": acl.owner.display_name, "grants": grants});
        let public: Vec<&Grant> = acl
            .grants
            .iter()
            .filter(|g| grants::public_grantee(&g.grantee))
            .collect();
        if !public.is_empty() {
            let blocked = access.block().ignore_public_acls;
            let summary = if blocked {
                format!("{} grants AllUsers or AuthenticatedUsers; the public access block (IgnorePublicAcls) stops it while it stays", self.what)
            } else {
                format!("{} grants AllUsers or AuthenticatedUsers", self.what)
            };
            out.push(Finding {
                severity: if blocked {
                    Severity::Low
                } else {
                    Severity::High
                },
                kind: self.public_kind,
                resource: self.resource.clone(),
                summary,
                blocked: Some(blocked),
                evidence: evidence(public),
                fix: self.fix.clone(),
            });
        }
        let others: Vec<&Grant> = acl
            .grants
            .iter()
            .filter(|g| match &g.grantee {
                Grantee::User(u) => {
                    u.id != acl.owner.id && self.bucket_owner.as_ref().is_none_or(|b| u.id != b.id)
                }
                _ => false,
            })
            .collect();
        if !others.is_empty() {
            out.push(Finding {
                severity: Severity::Low,
                kind: Kind::CrossUserGrant,
                resource: self.resource.clone(),
                summary: format!("{} grants users other than its owner", self.what),
                blocked: None,
                evidence: evidence(others),
                fix: self.fix.clone(),
            });
        }
    }
}

/// The ACLs of a bucket's object versions, read a page at a time up to the bound.
fn objects(
    store: &Store,
    bucket: &str,
    access: &BucketAccess,
    out: &mut Analysis,
) -> Result<(), AnalyzerError> {
    let mut q = VersionQuery {
        max: PAGE,
        ..VersionQuery::default()
    };
    let mut read = 0;
    loop {
        let page = match store.list_versions(bucket, &q) {
            Ok(p) => p,
            Err(engine::Error::NoSuchBucket(_)) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        read += page.versions.len();
        for e in &page.versions {
            let v = &e.version;
            let Some(stored) = v.meta.acl.as_ref().filter(|_| !v.delete_marker) else {
                continue;
            };
            let (resource, version) = if e.is_latest {
                (format!("object:{bucket}/{}", v.key), String::new())
            } else {
                (
                    format!("object:{bucket}/{}?versionId={}", v.key, v.version_id),
                    format!(" --version-id {}", v.version_id),
                )
            };
            let on = Acls {
                resource,
                what: "the object's ACL",
                fix: format!(
                    "aws s3api put-object-acl --bucket {bucket} --key {}{version} --acl private",
                    v.key
                ),
                public_kind: Kind::PublicObjectAcl,
                bucket_owner: Some(access.owner().clone()),
            };
            on.check(access, &access.object_acl(Some(stored)), &mut out.findings);
        }
        if !page.truncated {
            return Ok(());
        }
        if read >= OBJECT_SCAN_MAX {
            out.notes.push(format!(
                "bucket {bucket}: only the ACLs of its first {read} versions were read \
                 (ACLs are enabled there; `aws s3api put-bucket-ownership-controls` with \
                 BucketOwnerEnforced disables them)"
            ));
            return Ok(());
        }
        q.key_marker = page.next_key;
        q.version_marker = page.next_version;
    }
}

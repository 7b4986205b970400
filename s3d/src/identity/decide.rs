//! What a resolved caller may do: the IAM evaluation of identity and bucket policies
//! with the request's condition keys, then the ACLs for what no policy decided, and the
//! powers of bucket keys. [`crate::identity::auth`] resolves the caller and logs the
//! decision; this module makes it.

use crate::identity::auth::{iso8601, store_failed, Ask, Caller, Identities};
use crate::identity::grants::{self, BucketAccess, Requester};
use crate::identity::keys::now_unix;
use crate::identity::owners;
use crate::identity::policy::{self, Context, Decision, Policy, Request};
use crate::tagging;
use hyper::HeaderMap;
use s3s::S3Result;
use std::sync::Arc;

/// A decision and what made it (for the audit log): `root`, `bucket-key`,
/// `policy:NAME`, `bucket-policy`, `acl`, or `no policy or ACL allows it`.
pub(super) struct Verdict {
    pub allowed: bool,
    pub by: String,
}

fn verdict(allowed: bool, by: impl Into<String>) -> S3Result<Verdict> {
    Ok(Verdict {
        allowed,
        by: by.into(),
    })
}

impl Identities {
    /// Whether `caller` may do what `ask` asks, and why; unlogged.
    pub(super) fn may(&self, caller: &Caller, ask: &Ask) -> S3Result<Verdict> {
        match caller {
            Caller::Bucket(own) => verdict(bucket_key_may(own, ask), "bucket-key"),
            _ => self.evaluate(caller, ask),
        }
    }

    /// IAM evaluation: explicit deny anywhere wins, then any allow; root is allowed
    /// unless the bucket policy denies it (but may always manage that policy).
    pub(super) fn evaluate(&self, caller: &Caller, ask: &Ask) -> S3Result<Verdict> {
        let bucket_policy = match &ask.bucket {
            Some(b) => self.iam.bucket_policy(b).map_err(store_failed)?,
            None => None,
        };
        if matches!(caller, Caller::Root) && bucket_policy.is_none() {
            return verdict(true, "root");
        }
        let action = policy::action_for(&ask.op, has(&ask.query, "versionId"));
        let resource = resource(ask.bucket.as_deref(), ask.key.as_deref());
        let identity: &[Arc<Policy>] = match caller {
            Caller::User { policies, .. } => policies,
            _ => &[],
        };
        let all = || identity.iter().chain(bucket_policy.iter()).map(|p| &**p);
        let mut context = self.context(caller, ask);
        if all().any(|p| p.tests_key(policy::is_existing_tag_key)) {
            self.existing_tags(ask, &mut context)?;
        }
        let request = Request {
            action,
            resource: &resource,
            principal: caller.principal(),
            context: &context,
        };
        if let Caller::Root = caller {
            let manages_policy = ask.op.ends_with("BucketPolicy");
            let denied = bucket_policy
                .as_ref()
                .is_some_and(|p| p.evaluate(&request) == Decision::Deny);
            return verdict(
                manages_policy || !denied,
                if denied { "bucket-policy" } else { "root" },
            );
        }
        let decision = policy::evaluate_all(all(), &request);
        // Which policy decided: the first that says what the combination says.
        let deciding = || {
            all()
                .find(|p| p.evaluate(&request) == decision)
                .map_or_else(String::new, |p| match p.name() {
                    "" => "bucket-policy".to_string(),
                    name => format!("policy:{name}"),
                })
        };
        // RestrictPublicBuckets: a public bucket policy grants anonymous callers nothing.
        let restricted = decision == Decision::Allow
            && matches!(caller, Caller::Anonymous)
            && bucket_policy.as_ref().is_some_and(|p| p.is_public())
            && self.restricts_public_buckets(ask)?;
        match decision {
            Decision::Deny => verdict(false, deciding()),
            Decision::Allow if !restricted => verdict(true, deciding()),
            _ => match self.acl_allows(caller, ask)? {
                true => verdict(true, "acl"),
                false => verdict(false, "no policy or ACL allows it"),
            },
        }
    }

    /// Sets `s3:ExistingObjectTag/…` from the stored tags of the version `ask` names,
    /// for the operations AWS gives them to. Read only when a policy tests them.
    pub(super) fn existing_tags(&self, ask: &Ask, context: &mut Context) -> S3Result<()> {
        let (Some(bucket), Some(key)) = (&ask.bucket, &ask.key) else {
            return Ok(());
        };
        if !policy::reads_existing_tags(&ask.op) {
            return Ok(());
        }
        let version = ask.version();
        let tags = self
            .iam
            .object_tags(bucket, key, version)
            .map_err(store_failed)?;
        if let Some(tags) = tags {
            policy::set_existing_tags(context, &tags);
        }
        Ok(())
    }

    /// Whether the check of `ask` must wait for the parsed body: some policy that
    /// decides it tests a key only the body holds.
    pub(super) fn waits_for_body(&self, caller: &Caller, ask: &Ask) -> S3Result<bool> {
        let Some(bucket) = ask.bucket.as_deref() else {
            return Ok(false);
        };
        if matches!(caller, Caller::Bucket(_)) || !policy::has_body_keys(&ask.op) {
            return Ok(false);
        }
        let bucket_policy = self.iam.bucket_policy(bucket).map_err(store_failed)?;
        let identity: &[Arc<Policy>] = match caller {
            Caller::User { policies, .. } => policies,
            _ => &[],
        };
        Ok(identity
            .iter()
            .chain(bucket_policy.iter())
            .any(|p| p.tests_key(|k| policy::is_body_key(&ask.op, k))))
    }

    /// What no policy allowed, the bucket's or the object's ACL may (`grants`).
    pub(super) fn acl_allows(&self, caller: &Caller, ask: &Ask) -> S3Result<bool> {
        let who = match caller {
            Caller::User { name, .. } => Requester::Signed(owners::user(name)),
            Caller::Anonymous => Requester::Anonymous,
            Caller::Root | Caller::Bucket(_) => return Ok(false),
        };
        let Some(bucket) = &ask.bucket else {
            return Ok(false);
        };
        let version = ask.version();
        let object = ask.key.as_deref().map(|k| (k, version));
        grants::allows(self.iam.store(), &who, &ask.op, bucket, object).map_err(store_failed)
    }

    pub(super) fn restricts_public_buckets(&self, ask: &Ask) -> S3Result<bool> {
        let Some(bucket) = &ask.bucket else {
            return Ok(false);
        };
        match BucketAccess::load(self.iam.store(), bucket) {
            Ok(access) => Ok(access.block().restrict_public_buckets),
            Err(engine::Error::NoSuchBucket(_)) => Ok(false),
            Err(e) => Err(store_failed(e)),
        }
    }

    pub(super) fn context(&self, caller: &Caller, ask: &Ask) -> Context {
        let mut c = ask.keys.clone();
        c.set("aws:SourceIp", ask.source.to_string());
        c.set("aws:SecureTransport", ask.secure.to_string());
        let now = now_unix();
        c.set("aws:EpochTime", now.to_string());
        c.set("aws:CurrentTime", iso8601(now));
        let kind = match caller {
            Caller::Root => "Account",
            Caller::User { session: true, .. } => "AssumedRole",
            Caller::User { .. } => "User",
            Caller::Bucket(_) | Caller::Anonymous => "Anonymous",
        };
        c.set("aws:PrincipalType", kind);
        if let Caller::User { name, .. } = caller {
            c.set("aws:username", name.clone());
            c.set("aws:userid", name.clone());
        }
        for (k, v) in &ask.query {
            let key = match k.as_str() {
                "prefix" => "s3:prefix",
                "delimiter" => "s3:delimiter",
                "max-keys" => "s3:max-keys",
                "versionId" => "s3:VersionId",
                _ => continue,
            };
            c.set(key, v.clone());
        }
        c
    }
}

/// A bucket key reaches its own bucket's objects and settings, and lists only it.
pub(super) fn bucket_key_may(own: &str, ask: &Ask) -> bool {
    match (ask.bucket.as_deref(), ask.key.as_deref()) {
        (None, _) => ask.op == "ListBuckets",
        (Some(b), None) => b == own && ask.op != "CreateBucket" && ask.op != "DeleteBucket",
        (Some(b), Some(_)) => b == own,
    }
}

/// The condition keys a request's headers give its operation (see `policy::set_header_keys`).
pub(super) fn request_keys(op: &str, headers: &HeaderMap) -> Context {
    let mut keys = Context::default();
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    policy::set_header_keys(&mut keys, op, header, now_unix());
    if policy::takes_tagging_header(op) {
        // A malformed header leaves the keys unset; the operation refuses it anyway.
        if let Some(tags) = header("x-amz-tagging").and_then(|h| tagging::parse_header(&h).ok()) {
            policy::set_request_tags(&mut keys, &tags);
        }
    }
    keys
}

pub(super) fn resource(bucket: Option<&str>, key: Option<&str>) -> String {
    match (bucket, key) {
        (None, _) => "*".to_string(),
        (Some(b), None) => format!("arn:aws:s3:::{b}"),
        (Some(b), Some(k)) => format!("arn:aws:s3:::{b}/{k}"),
    }
}

pub(super) fn has(query: &[(String, String)], name: &str) -> bool {
    query.iter().any(|(k, _)| k == name)
}

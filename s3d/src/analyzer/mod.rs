//! The access analyzer (`cybs3 admin analyze`): what the store's settings let others do,
//! as findings with a severity, the resource, the statement or grant behind it and a fix.
//!
//! - [`buckets`]: bucket policies, bucket ACLs and object ACLs: public access (and
//!   whether the public access block stops it), grants to other users, wildcard actions.
//! - [`identities`]: IAM policies attached to users and groups (`s3:*` on `*`, wildcard
//!   actions), users and access keys unused for N days (from the audit log), long STS
//!   sessions.
//!
//! Both read identity's records and decide as identity does: a policy statement is
//! public by the evaluator's rule (`policy::Reviewed`), an ACL grant by `grants`'s. A
//! wildcard principal (`"*"`, `{"AWS": "*"}`, or a `NotPrincipal`) is how an Allow reaches
//! anonymous callers, so it shows as `public-bucket-policy` (no conditions) or
//! `anonymous-grant` (under conditions); in a Deny it is no risk. Wildcard actions count
//! when whole services (`*`, `s3:*`, `NotAction`): `s3:Get*` is a scoped grant.
//!
//! Severities, decided once here: high is access anyone may use now (a public policy or
//! ACL the block does not stop; a custom policy giving a user `s3:*` on `*`); medium is
//! broad or standing access (anonymous grants under conditions, the canned `admin` and
//! `readwrite` policies, wildcard actions granted to others, unused users and keys, long
//! sessions, a Deny whose conditions never hold, so it guards nothing); low is what the
//! block stops today (it can be lifted), grants to named users, wildcard actions in a
//! user's own policy, and an Allow whose conditions never hold (it grants nothing).

mod buckets;
mod identities;
#[cfg(test)]
mod tests;

use crate::identity::iam::{Iam, IamError};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// How much a finding matters (findings sort high first).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    High,
    Medium,
    Low,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
        }
    }
}

/// What a finding is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A bucket policy statement that lets anyone in without conditions.
    PublicBucketPolicy,
    /// A bucket ACL grant to AllUsers or AuthenticatedUsers.
    PublicBucketAcl,
    /// An object version's ACL grant to AllUsers or AuthenticatedUsers.
    PublicObjectAcl,
    /// A bucket policy statement that lets anonymous callers in under conditions.
    AnonymousGrant,
    /// A bucket policy or ACL grant to a user other than the owner.
    CrossUserGrant,
    /// `*`, `SERVICE:*` or `NotAction` in an Allow.
    WildcardAction,
    /// `s3:*` on `*` in a policy attached to a user or group.
    FullS3Access,
    /// A statement whose conditions can never hold.
    ImpossibleCondition,
    UnusedUser,
    UnusedKey,
    LongSession,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::PublicBucketPolicy => "public-bucket-policy",
            Kind::PublicBucketAcl => "public-bucket-acl",
            Kind::PublicObjectAcl => "public-object-acl",
            Kind::AnonymousGrant => "anonymous-grant",
            Kind::CrossUserGrant => "cross-user-grant",
            Kind::WildcardAction => "wildcard-action",
            Kind::FullS3Access => "full-s3-access",
            Kind::ImpossibleCondition => "impossible-condition",
            Kind::UnusedUser => "unused-user",
            Kind::UnusedKey => "unused-key",
            Kind::LongSession => "long-session",
        }
    }
}

/// One finding.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Finding {
    pub severity: Severity,
    pub kind: Kind,
    /// `bucket:B`, `object:B/KEY` (`?versionId=V` for a noncurrent version), `user:U`,
    /// `key:ACCESSKEY`, `policy:NAME`.
    pub resource: String,
    /// What it means, in one sentence.
    pub summary: String,
    /// For public access: whether the bucket's public access block stops it now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked: Option<bool>,
    /// The statement (JSON, as written) or grant behind it, or the record's facts.
    pub evidence: serde_json::Value,
    /// A command or S3 call that removes it.
    pub fix: String,
}

/// What a run found, and what it could not look at.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Analysis {
    pub findings: Vec<Finding>,
    /// What the run left out and why (no audit log, a scan cut at its bound).
    pub notes: Vec<String>,
}

/// Why the analysis could not run.
#[derive(Debug, thiserror::Error)]
pub enum AnalyzerError {
    #[error(transparent)]
    Store(#[from] engine::Error),
    #[error(transparent)]
    Identity(#[from] IamError),
    #[error("reading the audit log: {0}")]
    Audit(#[from] crate::audit::AuditError),
}

/// What a run looks at.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Users and keys with no request in this many days are unused.
    pub unused_days: u64,
}

/// Analyze the store behind `iam`; `audit` is the audit log's directory (`None`: the log
/// is off, and unused users and keys cannot be told). Runs on a blocking thread.
pub fn analyze(iam: &Iam, audit: Option<&Path>, opts: Options) -> Result<Analysis, AnalyzerError> {
    let now = SystemTime::now();
    let mut out = Analysis::default();
    buckets::analyze(iam, now_ms(now), &mut out)?;
    identities::analyze(iam, audit, opts, now, &mut out)?;
    out.findings
        .sort_by(|a, b| (a.severity, a.kind, &a.resource).cmp(&(b.severity, b.kind, &b.resource)));
    Ok(out)
}

fn now_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

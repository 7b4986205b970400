//! Users, groups, keys and sessions: the IAM policies attached to users and groups,
//! users and access keys unused for N days, and long STS sessions.
//!
//! Unused: a user or key created more than N days ago that no audit line since then
//! names (a line's `user`, or its `access_key`). A user's requests, its sessions'
//! included, keep it in use; its keys are then looked at one by one, and a key of an
//! unused user is left to that user's finding. Finding them costs one pass over the
//! audit files of the last N days, each line parsed for these two names only.

use super::{Analysis, AnalyzerError, Finding, Kind, Options, Severity};
use crate::identity::auth::iso8601;
use crate::identity::iam::{Iam, UserInfo};
use crate::identity::keys::Owner;
use crate::identity::policy;
use serde_json::json;
use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Sessions granted for longer than this are long: half the 12 hours STS grants at most.
const LONG_SESSION_SECS: u64 = 6 * 3600;

pub(super) fn analyze(
    iam: &Iam,
    audit: Option<&Path>,
    opts: Options,
    now: SystemTime,
    out: &mut Analysis,
) -> Result<(), AnalyzerError> {
    let users = iam.user_list()?;
    attached(iam, &users, super::now_ms(now), &mut out.findings)?;
    let keys = iam.keyring().owners()?;
    let now_unix = unix(now);
    for (access_key, owner, created) in &keys {
        if let Owner::Session(s) = owner {
            let granted = s.expires_unix.saturating_sub(*created);
            if !s.expired() && granted > LONG_SESSION_SECS {
                out.findings.push(Finding {
                    severity: Severity::Medium,
                    kind: Kind::LongSession,
                    resource: format!("key:{access_key}"),
                    summary: format!(
                        "a session of {} was granted for {} h and is valid until {}",
                        s.principal,
                        // Its record is written a moment after its end is set.
                        granted.div_ceil(3600),
                        iso8601(s.expires_unix)
                    ),
                    blocked: None,
                    evidence: json!({
                        "principal": s.principal,
                        "issued": iso8601(*created),
                        "expires": iso8601(s.expires_unix),
                        "duration_secs": granted,
                        "remaining_secs": s.expires_unix.saturating_sub(now_unix),
                    }),
                    fix: format!("cybs3 admin key remove {access_key} (ends the session now)"),
                });
            }
        }
    }
    match audit {
        Some(dir) => unused(&users, &keys, dir, opts.unused_days, now, &mut out.findings),
        None => {
            out.notes.push(
                "the audit log is off (server start --audit off): unused users and keys \
                 cannot be told"
                    .into(),
            );
            Ok(())
        }
    }
}

/// The policies attached to users and groups, each reviewed once.
fn attached(
    iam: &Iam,
    users: &[UserInfo],
    now_ms: i64,
    out: &mut Vec<Finding>,
) -> Result<(), AnalyzerError> {
    // Policy name → what it is attached to (`user`/`group`, name).
    let mut on: BTreeMap<String, Vec<(&str, String)>> = BTreeMap::new();
    for u in users {
        for p in &u.policies {
            on.entry(p.clone())
                .or_default()
                .push(("user", u.name.clone()));
        }
    }
    for g in iam.group_list()? {
        for p in g.policies {
            on.entry(p).or_default().push(("group", g.name.clone()));
        }
    }
    for (name, targets) in on {
        // A name whose policy was removed grants nothing.
        let Some(p) = iam.policy(&name)? else {
            continue;
        };
        let canned = policy::canned(&name).is_some();
        let attached_to: Vec<String> = targets.iter().map(|(k, n)| format!("{k}:{n}")).collect();
        let detach = targets
            .iter()
            .map(|(k, n)| format!("cybs3 admin policy detach {name} --{k} {n}"))
            .collect::<Vec<_>>()
            .join("; ");
        for r in p.review(now_ms) {
            let finding = |severity, kind, summary, fix| Finding {
                severity,
                kind,
                resource: format!("policy:{name}"),
                summary,
                blocked: None,
                evidence: json!({
                    "statement_label": r.label,
                    "statement": r.json,
                    "attached_to": attached_to,
                }),
                fix,
            };
            if let Some(why) = &r.never {
                let (severity, effect) = if r.allow {
                    (Severity::Low, "grants nothing")
                } else {
                    (Severity::Medium, "denies nothing")
                };
                out.push(finding(
                    severity,
                    Kind::ImpossibleCondition,
                    format!("{} of policy {name} {effect}: {why}", r.label),
                    format!("cybs3 admin policy add {name} FIXED.json (the policy with {} corrected or removed)", r.label),
                ));
            } else if r.all_s3 {
                let (severity, fix) = if canned {
                    (
                        Severity::Medium,
                        format!("{detach}, and attach a policy naming only the buckets and actions needed"),
                    )
                } else {
                    (
                        Severity::High,
                        format!("cybs3 admin policy add {name} SCOPED.json (naming only the buckets and actions needed), or {detach}"),
                    )
                };
                let summary = format!(
                    "{} of policy {name} allows every S3 action on every bucket to {}",
                    r.label,
                    attached_to.join(", ")
                );
                out.push(finding(severity, Kind::FullS3Access, summary, fix));
            } else if !r.wildcards.is_empty() {
                let summary = format!(
                    "{} of policy {name} allows every action of {} to {}",
                    r.label,
                    r.wildcards.join(", "),
                    attached_to.join(", ")
                );
                let fix = format!("cybs3 admin policy add {name} SCOPED.json (naming the actions needed), or {detach}");
                out.push(finding(Severity::Low, Kind::WildcardAction, summary, fix));
            }
        }
    }
    Ok(())
}

/// Users and keys (of users and buckets) that made no request in `days` days.
fn unused(
    users: &[UserInfo],
    keys: &[(String, Owner, u64)],
    dir: &Path,
    days: u64,
    now: SystemTime,
    out: &mut Vec<Finding>,
) -> Result<(), AnalyzerError> {
    let since = now
        .checked_sub(Duration::from_secs(days.saturating_mul(86_400)))
        .unwrap_or(UNIX_EPOCH);
    let since_unix = unix(since);
    let active = crate::audit::activity(dir, since)?;
    let mut idle = HashSet::new();
    for u in users {
        if u.created_unix < since_unix && !active.users.contains(&u.name) {
            idle.insert(u.name.as_str());
            out.push(Finding {
                severity: Severity::Medium,
                kind: Kind::UnusedUser,
                resource: format!("user:{}", u.name),
                summary: format!("user {} made no request in {days} days", u.name),
                blocked: None,
                evidence: json!({
                    "created": iso8601(u.created_unix),
                    "no_request_since": iso8601(since_unix),
                    "access_keys": u.access_keys,
                    "policies": u.policies,
                    "groups": u.groups,
                }),
                fix: format!("cybs3 admin user remove {}", u.name),
            });
        }
    }
    for (access_key, owner, created) in keys {
        let whose = match owner {
            Owner::User(u) if !idle.contains(u.as_str()) => format!("user {u}"),
            Owner::Bucket(b) => format!("bucket {b}"),
            _ => continue,
        };
        if *created < since_unix && !active.access_keys.contains(access_key) {
            out.push(Finding {
                severity: Severity::Medium,
                kind: Kind::UnusedKey,
                resource: format!("key:{access_key}"),
                summary: format!("the access key of {whose} made no request in {days} days"),
                blocked: None,
                evidence: json!({
                    "owner": whose,
                    "created": iso8601(*created),
                    "no_request_since": iso8601(since_unix),
                }),
                fix: format!("cybs3 admin key remove {access_key}"),
            });
        }
    }
    Ok(())
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

//! Object lock (WORM): the rules for retention and legal holds.
//!
//! They are checked inside the metadata operations (`ops.rs`) that remove a version or
//! change its lock, so every path that reaches the engine (S3, the mount, the CLI,
//! lifecycle and batch work) is held to them, and the reclaimer never sees the data of
//! a version that is still locked.
//!
//! - A legal hold keeps a version until it is lifted, whatever its retention.
//! - COMPLIANCE retention keeps it until the date, for everybody; the date can only move
//!   later.
//! - GOVERNANCE retention keeps it too, except for a caller with the bypass (which the
//!   S3 layer grants only with `s3:BypassGovernanceRetention`).
//! - Buckets with object lock are versioned for good: a delete without a version id adds
//!   a delete marker and the locked versions stay readable by their ids.

use crate::commit::Tx;
use crate::error::{Error, Result};
use crate::ops::bucket;
use crate::record::{
    self, keys, BucketRecord, DefaultRetention, LockMode, LockPeriod, LockRequest, ObjectVersion,
    Retention,
};

/// The bucket attribute that holds its default retention (`DefaultRetention`).
pub(crate) const LOCK_DEFAULT_ATTR: &str = "object-lock-default";

const DAY_NS: u64 = 86_400 * 1_000_000_000;

/// Whether `v` may be removed now (`bypass`: the caller may bypass GOVERNANCE).
pub(crate) fn check_removable(v: &ObjectVersion, now_ns: u64, bypass: bool) -> Result<()> {
    if v.legal_hold {
        return Err(locked(v, "it is under a legal hold"));
    }
    match v.retention {
        Some(r) if r.until_ns > now_ns => match r.mode {
            LockMode::Compliance => Err(locked(v, "it is in COMPLIANCE retention")),
            LockMode::Governance if !bypass => Err(locked(
                v,
                "it is in GOVERNANCE retention (bypassing it needs x-amz-bypass-governance-retention and s3:BypassGovernanceRetention)",
            )),
            LockMode::Governance => Ok(()),
        },
        _ => Ok(()),
    }
}

/// Whether `v`'s retention may become `new`. A retention in force may be kept or made
/// stronger (a later date; GOVERNANCE to COMPLIANCE); weakening it needs the bypass,
/// which COMPLIANCE ignores.
pub(crate) fn check_retention_change(
    v: &ObjectVersion,
    new: Option<&Retention>,
    now_ns: u64,
    bypass: bool,
) -> Result<()> {
    let Some(old) = v.retention.filter(|r| r.until_ns > now_ns) else {
        return Ok(());
    };
    let stronger = new.is_some_and(|n| {
        n.until_ns >= old.until_ns
            && (n.mode == LockMode::Compliance || old.mode == LockMode::Governance)
    });
    match old.mode {
        _ if stronger => Ok(()),
        LockMode::Governance if bypass => Ok(()),
        LockMode::Compliance => Err(locked(
            v,
            "its COMPLIANCE retention can be neither shortened nor removed, not even by root",
        )),
        LockMode::Governance => Err(locked(
            v,
            "shortening or removing GOVERNANCE retention needs x-amz-bypass-governance-retention and s3:BypassGovernanceRetention",
        )),
    }
}

/// The retention a new version gets: the one asked for, else the bucket's default.
pub(crate) fn retention_for(
    asked: &LockRequest,
    default: Option<DefaultRetention>,
    now_ns: u64,
) -> Option<Retention> {
    asked.retention.or_else(|| {
        default.map(|d| {
            let days = match d.period {
                LockPeriod::Days(n) => u64::from(n),
                LockPeriod::Years(n) => u64::from(n) * 365,
            };
            Retention {
                mode: d.mode,
                until_ns: now_ns.saturating_add(days.saturating_mul(DAY_NS)),
            }
        })
    })
}

/// A bucket that has object lock.
pub(crate) fn locked_bucket(tx: &mut Tx, name: &str) -> Result<BucketRecord> {
    let rec = bucket(tx, name)?;
    match rec.object_lock {
        true => Ok(rec),
        false => Err(Error::NoObjectLock(name.to_string())),
    }
}

/// What a new version of `rec` gets from object lock: what the write asked for, the
/// bucket's default retention when it asked none. Asking in a bucket without object
/// lock is refused.
pub(crate) fn lock_for(
    tx: &mut Tx,
    rec: &BucketRecord,
    asked: &LockRequest,
    now: u64,
) -> Result<LockRequest> {
    if !rec.object_lock {
        return match asked.is_empty() {
            true => Ok(LockRequest::default()),
            false => Err(Error::NoObjectLock(rec.name.clone())),
        };
    }
    let default = tx
        .get(&keys::attr(&rec.name, LOCK_DEFAULT_ATTR))
        .map(|v| record::decode::<DefaultRetention>(&v))
        .transpose()?;
    Ok(LockRequest {
        retention: retention_for(asked, default, now),
        legal_hold: asked.legal_hold,
    })
}

fn locked(v: &ObjectVersion, why: &str) -> Error {
    Error::ObjectLocked(format!(
        "{:?} version {} is protected by object lock: {why}",
        v.key, v.version_id
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::ObjectMeta;

    fn version(retention: Option<Retention>, legal_hold: bool) -> ObjectVersion {
        ObjectVersion {
            key: "k".into(),
            version_id: "v".into(),
            sort: [0; 16],
            delete_marker: false,
            mtime_ns: 0,
            size: 0,
            meta: ObjectMeta::default(),
            parts: Vec::new(),
            retention,
            legal_hold,
            encryption: None,
            replication: None,
            restored_until_ns: None,
        }
    }

    fn r(mode: LockMode, until_ns: u64) -> Retention {
        Retention { mode, until_ns }
    }

    use LockMode::{Compliance, Governance};

    #[test]
    fn removal_follows_mode_date_hold_and_bypass() {
        let now = 1_000;
        for (ret, hold, bypass, ok) in [
            (None, false, false, true),
            (None, true, true, false),
            (Some(r(Governance, 2_000)), false, false, false),
            (Some(r(Governance, 2_000)), false, true, true),
            (Some(r(Compliance, 2_000)), false, true, false),
            (Some(r(Compliance, 1_000)), false, false, true),
            (Some(r(Compliance, 999)), true, true, false),
        ] {
            let got = check_removable(&version(ret, hold), now, bypass).is_ok();
            assert_eq!(got, ok, "{ret:?} hold={hold} bypass={bypass}");
        }
    }

    #[test]
    fn retention_only_strengthens_without_the_bypass() {
        let now = 1_000;
        let gov = version(Some(r(Governance, 5_000)), false);
        let comp = version(Some(r(Compliance, 5_000)), false);
        let cases = [
            (&gov, Some(r(Governance, 6_000)), false, true),
            (&gov, Some(r(Compliance, 5_000)), false, true),
            (&gov, Some(r(Governance, 4_000)), false, false),
            (&gov, None, false, false),
            (&gov, None, true, true),
            (&gov, Some(r(Governance, 4_000)), true, true),
            (&comp, Some(r(Compliance, 9_000)), false, true),
            (&comp, Some(r(Compliance, 4_999)), true, false),
            (&comp, Some(r(Governance, 9_000)), true, false),
            (&comp, None, true, false),
        ];
        for (v, new, bypass, ok) in cases {
            let got = check_retention_change(v, new.as_ref(), now, bypass).is_ok();
            assert_eq!(got, ok, "{:?} -> {new:?} bypass={bypass}", v.retention);
        }
        // An expired retention is no retention.
        let old = version(Some(r(Compliance, 500)), false);
        assert!(check_retention_change(&old, None, now, false).is_ok());
    }

    #[test]
    fn the_default_applies_only_when_none_is_asked() {
        let d = DefaultRetention {
            mode: Compliance,
            period: LockPeriod::Days(2),
        };
        let asked = LockRequest {
            retention: Some(r(Governance, 7)),
            legal_hold: false,
        };
        assert_eq!(retention_for(&asked, Some(d), 0), Some(r(Governance, 7)));
        assert_eq!(
            retention_for(&LockRequest::default(), Some(d), 10),
            Some(r(Compliance, 10 + 2 * DAY_NS))
        );
        let years = DefaultRetention {
            period: LockPeriod::Years(1),
            ..d
        };
        assert_eq!(
            retention_for(&LockRequest::default(), Some(years), 0),
            Some(r(Compliance, 365 * DAY_NS))
        );
        assert_eq!(retention_for(&LockRequest::default(), None, 0), None);
    }
}

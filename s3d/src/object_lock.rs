//! Object lock over S3: the bucket configuration, object retention and legal holds,
//! the lock headers of writes, and what GET and HEAD say about a version's lock.
//!
//! The rules themselves (who may remove or weaken what) are the engine's
//! (`engine/src/lock.rs`); this module turns S3's XML and headers into its requests
//! and answers with AWS's codes for what is malformed.

use crate::ctx::{blocking, Cybs3};
use crate::versioning;
use engine::{DefaultRetention, LockMode, LockPeriod, LockRequest, Retention};
use s3s::dto::*;
use s3s::{s3_error, S3Error, S3Result};
use std::time::{Duration, UNIX_EPOCH};

fn malformed() -> S3Error {
    s3_error!(
        MalformedXML,
        "The XML you provided was not well-formed or did not validate against our published schema"
    )
}

fn mode(s: &str) -> Option<LockMode> {
    match s {
        "GOVERNANCE" => Some(LockMode::Governance),
        "COMPLIANCE" => Some(LockMode::Compliance),
        _ => None,
    }
}

fn mode_name(m: LockMode) -> &'static str {
    match m {
        LockMode::Governance => "GOVERNANCE",
        LockMode::Compliance => "COMPLIANCE",
    }
}

fn unix_ns(t: &Timestamp) -> u64 {
    let t: time::OffsetDateTime = t.clone().into();
    u64::try_from(t.unix_timestamp_nanos()).unwrap_or(0)
}

fn timestamp(ns: u64) -> Timestamp {
    Timestamp::from(UNIX_EPOCH + Duration::from_nanos(ns))
}

/// A retain-until date must lie ahead.
fn future(t: &Timestamp) -> S3Result<u64> {
    let ns = unix_ns(t);
    if ns <= crate::ctx::now_ns() {
        return Err(s3_error!(
            InvalidArgument,
            "The retain until date must be in the future!"
        ));
    }
    Ok(ns)
}

/// The lock a PUT, COPY, CreateMultipartUpload or POST input asks for (they name the
/// fields alike).
macro_rules! lock_requested {
    ($input:expr) => {
        $crate::object_lock::requested(
            $input.object_lock_mode.as_ref(),
            $input.object_lock_retain_until_date.as_ref(),
            $input.object_lock_legal_hold_status.as_ref(),
        )
    };
}
pub(crate) use lock_requested;

/// The lock a write asks for in its headers (or form fields).
pub(crate) fn requested(
    lock_mode: Option<&ObjectLockMode>,
    until: Option<&Timestamp>,
    legal_hold: Option<&ObjectLockLegalHoldStatus>,
) -> S3Result<LockRequest> {
    let retention = match (lock_mode, until) {
        (None, None) => None,
        (Some(m), Some(t)) => Some(Retention {
            mode: mode(m.as_str())
                .ok_or_else(|| s3_error!(InvalidArgument, "Unknown wormMode directive."))?,
            until_ns: future(t)?,
        }),
        _ => {
            return Err(s3_error!(
            InvalidArgument,
            "x-amz-object-lock-retain-until-date and x-amz-object-lock-mode must both be supplied"
        ))
        }
    };
    let legal_hold = match legal_hold.map(ObjectLockLegalHoldStatus::as_str) {
        None | Some("OFF") => false,
        Some("ON") => true,
        Some(_) => {
            return Err(s3_error!(
                InvalidArgument,
                "Legal Hold must be either of 'ON' or 'OFF'"
            ))
        }
    };
    Ok(LockRequest {
        retention,
        legal_hold,
    })
}

/// GET and HEAD's lock headers for a version (none where it has no lock).
pub(crate) struct Shown {
    pub mode: Option<ObjectLockMode>,
    pub until: Option<Timestamp>,
    pub legal_hold: Option<ObjectLockLegalHoldStatus>,
}

pub(crate) fn shown(v: &engine::ObjectVersion) -> Shown {
    Shown {
        mode: v
            .retention
            .map(|r| ObjectLockMode::from_static(mode_name(r.mode))),
        until: v.retention.map(|r| timestamp(r.until_ns)),
        legal_hold: v
            .legal_hold
            .then(|| ObjectLockLegalHoldStatus::from_static(ObjectLockLegalHoldStatus::ON)),
    }
}

pub(crate) async fn put_config(
    s: &Cybs3,
    input: PutObjectLockConfigurationInput,
) -> S3Result<PutObjectLockConfigurationOutput> {
    let cfg = input.object_lock_configuration.ok_or_else(malformed)?;
    if cfg
        .object_lock_enabled
        .as_ref()
        .map(ObjectLockEnabled::as_str)
        != Some("Enabled")
    {
        return Err(malformed());
    }
    let default = match cfg.rule.and_then(|r| r.default_retention) {
        None => None,
        Some(d) => {
            let m = d
                .mode
                .as_ref()
                .and_then(|m| mode(m.as_str()))
                .ok_or_else(malformed)?;
            let (n, period): (i32, fn(u32) -> LockPeriod) = match (d.days, d.years) {
                (Some(n), None) => (n, LockPeriod::Days),
                (None, Some(n)) => (n, LockPeriod::Years),
                _ => return Err(malformed()),
            };
            let n = u32::try_from(n).ok().filter(|n| *n > 0).ok_or_else(|| {
                s3_error!(
                    InvalidArgument,
                    "Default retention period must be a positive integer value"
                )
            })?;
            Some(DefaultRetention {
                mode: m,
                period: period(n),
            })
        }
    };
    let store = s.store.clone();
    blocking(move || store.set_object_lock(&input.bucket, default)).await?;
    Ok(PutObjectLockConfigurationOutput::default())
}

pub(crate) async fn get_config(
    s: &Cybs3,
    input: GetObjectLockConfigurationInput,
) -> S3Result<GetObjectLockConfigurationOutput> {
    let store = s.store.clone();
    let Some(default) = blocking(move || store.object_lock(&input.bucket)).await? else {
        return Err(s3_error!(
            ObjectLockConfigurationNotFoundError,
            "Object Lock configuration does not exist for this bucket"
        ));
    };
    let rule = default.map(|d| {
        let (days, years) = match d.period {
            LockPeriod::Days(n) => (Some(n as i32), None),
            LockPeriod::Years(n) => (None, Some(n as i32)),
        };
        ObjectLockRule {
            default_retention: Some(s3s::dto::DefaultRetention {
                mode: Some(ObjectLockRetentionMode::from_static(mode_name(d.mode))),
                days,
                years,
            }),
        }
    });
    Ok(GetObjectLockConfigurationOutput {
        object_lock_configuration: Some(ObjectLockConfiguration {
            object_lock_enabled: Some(ObjectLockEnabled::from_static(ObjectLockEnabled::ENABLED)),
            rule,
        }),
    })
}

/// The version a retention or legal-hold request names: the current one without an id.
async fn version(
    s: &Cybs3,
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
) -> S3Result<engine::ObjectVersion> {
    versioning::check_version_id(version_id)?;
    let store = s.store.clone();
    let (b, k, vid) = (
        bucket.to_string(),
        key.to_string(),
        version_id.map(str::to_string),
    );
    blocking(move || {
        if store.object_lock(&b)?.is_none() {
            return Err(engine::Error::NoObjectLock(b));
        }
        store.head(&b, &k, vid.as_deref())
    })
    .await
}

pub(crate) async fn put_retention(
    s: &Cybs3,
    input: PutObjectRetentionInput,
) -> S3Result<PutObjectRetentionOutput> {
    let retention = match input.retention {
        None
        | Some(ObjectLockRetention {
            mode: None,
            retain_until_date: None,
        }) => None,
        Some(ObjectLockRetention {
            mode: Some(m),
            retain_until_date: Some(t),
        }) => Some(Retention {
            mode: mode(m.as_str()).ok_or_else(malformed)?,
            until_ns: future(&t)?,
        }),
        Some(_) => return Err(malformed()),
    };
    let bypass = input.bypass_governance_retention == Some(true);
    let store = s.store.clone();
    let (b, k, vid) = (input.bucket, input.key, input.version_id);
    versioning::check_version_id(vid.as_deref())?;
    blocking(move || store.set_retention(&b, &k, vid.as_deref(), retention, bypass)).await?;
    Ok(PutObjectRetentionOutput::default())
}

pub(crate) async fn get_retention(
    s: &Cybs3,
    input: GetObjectRetentionInput,
) -> S3Result<GetObjectRetentionOutput> {
    let v = version(s, &input.bucket, &input.key, input.version_id.as_deref()).await?;
    let Some(r) = v.retention else {
        return Err(s3_error!(
            NoSuchObjectLockConfiguration,
            "The specified object does not have a ObjectLock configuration"
        ));
    };
    Ok(GetObjectRetentionOutput {
        retention: Some(ObjectLockRetention {
            mode: Some(ObjectLockRetentionMode::from_static(mode_name(r.mode))),
            retain_until_date: Some(timestamp(r.until_ns)),
        }),
    })
}

pub(crate) async fn put_legal_hold(
    s: &Cybs3,
    input: PutObjectLegalHoldInput,
) -> S3Result<PutObjectLegalHoldOutput> {
    let on = match input
        .legal_hold
        .and_then(|h| h.status)
        .as_ref()
        .map(ObjectLockLegalHoldStatus::as_str)
    {
        Some("ON") => true,
        Some("OFF") => false,
        _ => return Err(malformed()),
    };
    let store = s.store.clone();
    let (b, k, vid) = (input.bucket, input.key, input.version_id);
    versioning::check_version_id(vid.as_deref())?;
    blocking(move || store.set_legal_hold(&b, &k, vid.as_deref(), on)).await?;
    Ok(PutObjectLegalHoldOutput::default())
}

pub(crate) async fn get_legal_hold(
    s: &Cybs3,
    input: GetObjectLegalHoldInput,
) -> S3Result<GetObjectLegalHoldOutput> {
    let v = version(s, &input.bucket, &input.key, input.version_id.as_deref()).await?;
    let status = match v.legal_hold {
        true => ObjectLockLegalHoldStatus::ON,
        false => ObjectLockLegalHoldStatus::OFF,
    };
    Ok(GetObjectLegalHoldOutput {
        legal_hold: Some(ObjectLockLegalHold {
            status: Some(ObjectLockLegalHoldStatus::from_static(status)),
        }),
    })
}

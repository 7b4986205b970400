//! What the S3 operations tell the detector (what each write and delete changed) and
//! ask it (whether the caller is frozen in a bucket).

use super::entropy::Sample;
use super::Changes;
use crate::ctx::Cybs3;
use crate::trail;
use s3s::{S3Error, S3ErrorCode, S3Result};

/// The freeze that holds the current caller in `bucket`, if any.
fn frozen(s: &Cybs3, bucket: &str) -> Option<String> {
    s.anomalies.as_ref()?.frozen(bucket)
}

fn denied(why: String) -> S3Error {
    S3Error::with_message(S3ErrorCode::AccessDenied, why)
}

/// Before a write: a frozen caller may only create objects, so the write gets
/// `If-None-Match: *`, which the engine checks in the commit (no race with a
/// concurrent create). Returns the freeze, for [`refused`].
pub(crate) fn guard_write(
    s: &Cybs3,
    bucket: &str,
    condition: &mut engine::WriteCondition,
) -> S3Result<Option<String>> {
    let Some(why) = frozen(s, bucket) else {
        return Ok(None);
    };
    if condition.if_match.is_some() {
        return Err(denied(why));
    }
    condition.if_none_match = Some(engine::ETagMatch::Any);
    Ok(Some(why))
}

/// A write's error as the caller sees it: under a freeze, the precondition the freeze
/// added is an AccessDenied that says why.
pub(crate) fn refused(e: S3Error, freeze: Option<String>) -> S3Error {
    match freeze {
        Some(why) if *e.code() == S3ErrorCode::PreconditionFailed => denied(why),
        _ => e,
    }
}

/// Before a delete: refused while the caller is frozen in `bucket`.
pub(crate) fn guard_delete(s: &Cybs3, bucket: &str) -> S3Result<()> {
    match frozen(s, bucket) {
        Some(why) => Err(denied(why)),
        None => Ok(()),
    }
}

/// One object written; `replaced`: it took the place of a current object.
pub(crate) fn wrote(replaced: bool, sample: Option<Sample>) {
    trail::changed(|c: &mut Changes| {
        c.written += 1;
        match sample {
            Some(Sample::Sealed) => c.sealed += 1,
            Some(s) if replaced && s.incompressible() => c.incompressible += 1,
            _ => {}
        }
        if replaced {
            c.destroyed += 1;
        }
    });
}

/// `n` objects deleted (or hidden by markers).
pub(crate) fn deleted(n: u32) {
    if n > 0 {
        trail::changed(|c: &mut Changes| c.destroyed += n);
    }
}

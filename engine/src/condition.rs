//! Conditional writes (`If-Match`, `If-None-Match` on PutObject and
//! CompleteMultipartUpload), checked against the key's current version inside the
//! commit, so that of two racing creates with `If-None-Match: *` exactly one wins.

use crate::commit::Tx;
use crate::error::{Error, Result};
use crate::ops::latest;
use crate::record::ObjectVersion;

/// What a conditional write asks of the key's current version (a delete marker is no
/// version).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteCondition {
    /// `If-Match`: there is a current version, and it matches.
    pub if_match: Option<ETagMatch>,
    /// `If-None-Match`: there is no current version that matches.
    pub if_none_match: Option<ETagMatch>,
}

/// An ETag condition's value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ETagMatch {
    /// `*`: any version.
    Any,
    /// The version with this ETag (quotes ignored).
    Is(String),
}

/// Refuse the write (412, or NoSuchKey for `If-Match` on no version) unless `c` holds.
pub(crate) fn check(tx: &mut Tx, b: &str, key: &str, c: &WriteCondition) -> Result<()> {
    if c.if_match.is_none() && c.if_none_match.is_none() {
        return Ok(());
    }
    let current = latest(tx, b, key)?;
    let matches = |m: &ETagMatch, v: &ObjectVersion| match m {
        ETagMatch::Any => true,
        ETagMatch::Is(e) => e.trim_matches('"') == v.meta.etag.trim_matches('"'),
    };
    if let Some(m) = &c.if_none_match {
        if current.as_ref().is_some_and(|v| matches(m, v)) {
            return Err(Error::PreconditionFailed);
        }
    }
    match (&c.if_match, &current) {
        (None, _) => Ok(()),
        (Some(_), None) => Err(Error::NoSuchKey(key.to_string())),
        (Some(m), Some(v)) if !matches(m, v) => Err(Error::PreconditionFailed),
        (Some(_), Some(_)) => Ok(()),
    }
}

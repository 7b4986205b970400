//! Multipart completions remembered for a while: a CompleteMultipartUpload retried
//! after it succeeded (its answer lost on the way) gets the version the first one made,
//! as S3 answers it, instead of NoSuchUpload.

use crate::commit::Tx;
use crate::error::{Error, Result};
use crate::ops::Out;
use crate::record::{self, keys, ObjectVersion};

/// How long a completed upload answers a retried completion with its version.
const COMPLETION_KEPT_NS: u64 = 3600 * 1_000_000_000;
/// Completion records looked at for expiry per completion (bounded work per commit).
const COMPLETIONS_SWEPT: usize = 16;

/// A completion of an upload that is gone: the version it became, when it completed a
/// moment ago as this key and that version is still there (S3 answers a retry alike).
pub(crate) fn answer_again(tx: &mut Tx, b: &str, key: &str, upload_id: &str) -> Result<Out> {
    let gone = || Error::NoSuchUpload(upload_id.to_string());
    let Some(bytes) = tx.get(&keys::completed(upload_id)) else {
        return Err(gone());
    };
    let done: record::Completed = record::decode(&bytes)?;
    if done.bucket != b || done.key != key {
        return Err(gone());
    }
    match tx.get(&keys::version(b, key, &done.sort)) {
        // What it replaced was counted when it completed.
        Some(v) => Ok(Out::Version(record::decode(&v)?, false)),
        None => Err(gone()),
    }
}

/// Drop completion records past their time, a few per completion. Upload ids start with
/// their creation time, so the oldest uploads come first.
fn forget_old(tx: &mut Tx, now: u64) {
    for (k, v) in tx.scan_first(&[keys::COMPLETED], COMPLETIONS_SWEPT) {
        let expired = record::decode::<record::Completed>(&v)
            .map_or(true, |d| d.at_ns.saturating_add(COMPLETION_KEPT_NS) < now);
        if expired {
            tx.del(k);
        }
    }
}

/// Remember that `upload_id` became `v`, and forget a few completions past their time.
pub(crate) fn remember(tx: &mut Tx, b: &str, upload_id: &str, v: &ObjectVersion) -> Result<()> {
    forget_old(tx, v.mtime_ns);
    let done = record::Completed {
        bucket: b.to_string(),
        key: v.key.clone(),
        sort: v.sort,
        at_ns: v.mtime_ns,
    };
    tx.put(keys::completed(upload_id), record::encode(&done)?);
    Ok(())
}

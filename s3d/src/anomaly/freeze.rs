//! The optional protection: a bucket setting (`cybs3 admin alerts protect BUCKET
//! --freeze-minutes N`, off by default) that, after a ransomware-like alert about a
//! user, refuses that user's deletes and overwrites in the bucket for N minutes (0:
//! until cleared), until an admin clears the user (`cybs3 admin alerts clear USER`).
//!
//! An alert flags the user (server records `anomaly-flag`/USER, also held in memory, so
//! the check on every delete and overwrite costs one read of an empty map while nobody
//! is flagged); each bucket's setting decides what a flag means there. New objects can
//! still be written: a frozen user may keep saving work, but cannot destroy any. The
//! check is part of the access decision of every S3 request (the mount, `cybs3` and
//! batch jobs all reach the store through it); the server's own work (lifecycle,
//! replication) acts for no user and is not frozen.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::RwLock;

const FLAG_NS: &str = "anomaly-flag";
/// The bucket attribute holding the setting: the freeze's minutes, as decimal text.
const PROTECT_ATTR: &str = "anomaly-freeze";

/// A user flagged by a ransomware-like alert.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flag {
    pub since_ns: u64,
    /// The alert that raised it.
    pub alert: String,
}

pub(crate) struct Flags(RwLock<HashMap<String, Flag>>);

impl Flags {
    pub(crate) fn load(store: &engine::Store) -> engine::Result<Flags> {
        let map = store
            .server_records(FLAG_NS)?
            .into_iter()
            .filter_map(|(user, v)| Some((user, serde_json::from_slice(&v).ok()?)))
            .collect();
        Ok(Flags(RwLock::new(map)))
    }

    /// Flag `user` (kept across restarts).
    pub(crate) fn raise(
        &self,
        store: &engine::Store,
        user: &str,
        flag: Flag,
    ) -> engine::Result<()> {
        let bytes = serde_json::to_vec(&flag).expect("a flag serializes");
        store.set_server_record(FLAG_NS, user, Some(bytes))?;
        self.0.write().unwrap().insert(user.to_string(), flag);
        Ok(())
    }

    /// Clear `user`'s flag; whether there was one.
    pub(crate) fn clear(&self, store: &engine::Store, user: &str) -> engine::Result<bool> {
        let had = self.0.write().unwrap().remove(user).is_some();
        store.set_server_record(FLAG_NS, user, None)?;
        Ok(had)
    }

    pub(crate) fn get(&self, user: &str) -> Option<Flag> {
        let map = self.0.read().unwrap();
        if map.is_empty() {
            return None;
        }
        map.get(user).cloned()
    }

    pub(crate) fn all(&self) -> Vec<(String, Flag)> {
        let mut v: Vec<_> = (self.0.read().unwrap().iter())
            .map(|(u, f)| (u.clone(), f.clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }
}

/// A bucket's freeze in minutes (`Some(0)`: until cleared), or `None` when it is off.
pub fn protection(store: &engine::Store, bucket: &str) -> engine::Result<Option<u64>> {
    Ok(store
        .bucket_attr(bucket, PROTECT_ATTR)?
        .and_then(|v| std::str::from_utf8(&v).ok()?.parse().ok()))
}

pub fn set_protection(
    store: &engine::Store,
    bucket: &str,
    minutes: Option<u64>,
) -> engine::Result<()> {
    store.set_bucket_attr(
        bucket,
        PROTECT_ATTR,
        minutes.map(|m| m.to_string().into_bytes()),
    )
}

/// Whether a flag raised at `since_ns` still freezes under a setting of `minutes`.
pub(crate) fn holds(since_ns: u64, minutes: u64, now_ns: u64) -> bool {
    minutes == 0 || now_ns < since_ns.saturating_add(minutes.saturating_mul(60_000_000_000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_freeze_lasts_its_minutes_or_until_cleared() {
        let min = 60_000_000_000;
        assert!(holds(0, 5, 4 * min));
        assert!(!holds(0, 5, 5 * min));
        assert!(holds(0, 0, 1_000 * min));
    }
}

//! Lifecycle expirations, applied inside the commit only if the version is still in
//! the place the scanner saw it in. A scan reads a snapshot and acts a moment later; in
//! between a client may write a newer version or delete the current one, and an
//! expiration decided on the old state must then do nothing.
//!
//! Object lock holds here as everywhere (`lock.rs`): a locked version is never removed
//! (expiring a current version in a versioned bucket only adds a delete marker, which
//! leaves the locked version readable by its id).

use crate::commit::{Clock, Tx};
use crate::error::Result;
use crate::lock;
use crate::ops::{bucket, find_version, new_marker, refresh_latest, remove_version, Deleted};
use crate::record::{self, keys, DataId, ObjectVersion, Versioning};

/// Which expiration, and so where the version must still be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    /// `Expiration`: the version is the key's current one. In a versioned (or suspended)
    /// bucket a delete marker goes on top; in an unversioned one it is removed.
    Current,
    /// `NoncurrentVersionExpiration`: the version is not the newest of its key; removed.
    Noncurrent,
    /// `ExpiredObjectDeleteMarker`: the version is a delete marker and the key's only
    /// version; removed.
    LoneDeleteMarker,
}

/// Apply `expiry` to `version_id` of `key`; `None` when the key no longer looks the way
/// the expiration was decided on (nothing changes).
pub(crate) fn apply(
    tx: &mut Tx,
    clock: &mut Clock,
    b: &str,
    key: &str,
    version_id: &str,
    expiry: Expiry,
    freed: &mut Vec<DataId>,
) -> Result<Option<Deleted>> {
    let rec = bucket(tx, b)?;
    let Some(found) = find_version(tx, b, key, version_id)? else {
        return Ok(None);
    };
    // The two newest versions say all an expiration needs: which is current, and
    // whether a marker is alone (a key may have many versions; they are not all read).
    let versions = tx.scan_first(&keys::versions_of(b, key), 2);
    let newest: Option<ObjectVersion> = versions
        .first()
        .map(|(_, v)| record::decode(v))
        .transpose()?;
    let is_newest = newest.as_ref().is_some_and(|n| n.sort == found.sort);
    match expiry {
        Expiry::Current if is_newest && !found.delete_marker => {
            if rec.versioning == Versioning::Unversioned {
                lock::check_removable(&found, clock.now(), false)?;
                remove_version(tx, b, &found, freed)?;
                refresh_latest(tx, b, key)?;
                return Ok(Some(Deleted {
                    version_id: None,
                    delete_marker: false,
                }));
            }
            let marker = new_marker(tx, clock, &rec, key, freed)?;
            Ok(Some(Deleted {
                version_id: Some(marker.version_id),
                delete_marker: true,
            }))
        }
        Expiry::Noncurrent if !is_newest => {
            lock::check_removable(&found, clock.now(), false)?;
            remove_version(tx, b, &found, freed)?;
            Ok(Some(Deleted {
                version_id: Some(found.version_id),
                delete_marker: found.delete_marker,
            }))
        }
        Expiry::LoneDeleteMarker if is_newest && found.delete_marker && versions.len() == 1 => {
            remove_version(tx, b, &found, freed)?;
            refresh_latest(tx, b, key)?;
            Ok(Some(Deleted {
                version_id: Some(found.version_id),
                delete_marker: true,
            }))
        }
        _ => Ok(None),
    }
}

//! Remote tiers: a storage class whose data lives in a bucket of another S3 system
//! (a second cybs3, Ceph RGW, Garage, MinIO, AWS), reached through [`RemoteStore`],
//! which the server provides: the engine speaks no HTTP.
//!
//! A version moves there by a lifecycle transition ([`Store::transition`]), from a pool
//! or from another remote tier: its bytes, read through the ordinary reader, become one object in the remote bucket, named
//! `PREFIX BUCKET/KEY/DATAID` and described by its metadata (`cybs3-bucket`,
//! `cybs3-key`, `cybs3-version-id`, `cybs3-etag`, the content type and the user
//! metadata), so that whoever holds the credentials can recover it without cybs3. Then
//! one commit points every part at it (`PartData::Remote`, with the part's offset) and
//! hands the local data to the reclaimer. Reads stream ranges of it back
//! (`read.rs`, `Source::Remote`).
//!
//! Nothing is left behind on either side. Before a byte leaves, the intent is queued
//! (`queue.rs`, `Work::Abandoned`) in its own commit; the swap removes it, and a failed
//! transition deletes what it uploaded. A crash between the two leaves the intent, and
//! the next start deletes the remote object if no record points at it. Deleting a remote
//! version queues the remote delete in the same commit that drops the version.

use crate::error::{Error, Result};
use crate::held::Owner;
use crate::ops::Op;
use crate::queue::Work;
use crate::record::{self, DataId, ObjectVersion};
use crate::{Store, Tier};
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::sync::Arc;

/// Where a remote tier keeps its objects. The secret is sealed by the server
/// ([`RemoteStore`] opens it), so the index never holds it in clear.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteTier {
    pub endpoint: String,
    pub bucket: String,
    /// Put in front of every object name; empty or ending in `/`.
    pub prefix: String,
    pub region: String,
    pub access_key: String,
    pub sealed_secret: Vec<u8>,
}

/// The S3 client of remote tiers, provided by the server (`Store::set_remote_store`).
/// Called on blocking threads.
pub trait RemoteStore: Send + Sync {
    /// Bytes `start..end` of object `name`.
    fn get(
        &self,
        tier: &RemoteTier,
        name: &str,
        start: u64,
        end: u64,
    ) -> std::io::Result<Box<dyn Read + Send>>;
    /// Stores `size` bytes from `body` as object `name`, with these metadata pairs.
    fn put(
        &self,
        tier: &RemoteTier,
        name: &str,
        meta: &[(String, String)],
        size: u64,
        body: &mut dyn Read,
    ) -> std::io::Result<()>;
    /// Removes object `name`, and any unfinished upload of it; a missing one is no error.
    fn delete(&self, tier: &RemoteTier, name: &str) -> std::io::Result<()>;
}

/// What the index keeps of data on a remote tier, under its data id's reference
/// (`keys::data_ref`): enough to read and delete it even once its class is gone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RemoteRef {
    pub tier: RemoteTier,
    pub name: String,
}

impl record::Record for RemoteRef {}

impl Store {
    /// Gives the store the client it reaches remote tiers with.
    pub fn set_remote_store(&self, remote: Arc<dyn RemoteStore>) {
        let _ = self.inner.remote.set(remote);
    }

    pub(crate) fn remote_store(&self) -> Result<&Arc<dyn RemoteStore>> {
        self.inner
            .remote
            .get()
            .ok_or_else(|| Error::Tier("remote tiers are reached only by a running server".into()))
    }

    /// Where the remote data `id` is.
    pub(crate) fn remote_ref(&self, id: &DataId) -> Result<RemoteRef> {
        let (rtxn, db) = self.read()?;
        let bytes = db.get(&rtxn, &record::keys::data_ref(id))?.ok_or_else(|| {
            Error::Corrupt(format!("remote data {} has no record", hex::encode(id)))
        })?;
        record::decode(bytes)
    }

    /// The move of a version written in remote class `class` (queued by its write,
    /// `queue.rs`): a transition, except that object lock does not keep it here, since
    /// its writer chose the class. `false` when there was nothing to do.
    pub(crate) fn transition_asked(
        &self,
        bucket: &str,
        key: &str,
        version_id: &str,
        class: &str,
    ) -> Result<bool> {
        let Some(Tier::Remote(tier)) = self.storage_class(class).map(|c| c.tier) else {
            return Err(Error::Tier(format!(
                "storage class {class} is no remote tier"
            )));
        };
        let v = self.head(bucket, key, Some(version_id))?;
        self.transition_remote(bucket, &v, class, &tier, LockRule::Ignore)
    }

    /// The transition of version `v` of `key` to the remote tier of `class`.
    pub(crate) fn transition_remote(
        &self,
        bucket: &str,
        v: &ObjectVersion,
        class: &str,
        tier: &RemoteTier,
        lock: LockRule,
    ) -> Result<bool> {
        let here = v.parts.iter().all(|p| p.data.is_remote());
        if here && v.meta.storage_class.as_deref() == Some(class) {
            return Ok(false);
        }
        let remote = self.remote_store()?.clone();
        if lock == LockRule::Respect {
            // Checked again inside the commit; here it spares an upload that cannot be kept.
            crate::lock::check_removable(v, crate::commit::Clock::new().now(), false)?;
        }
        let id: DataId = rand::random();
        let name = format!("{}{bucket}/{}/{}", tier.prefix, v.key, hex::encode(id));
        let at = RemoteRef {
            tier: tier.clone(),
            name: name.clone(),
        };
        // Durable before any byte leaves: a crash from here on is cleaned up at the next start.
        let intent = self.add_work(Work::Abandoned { id, at: at.clone() })?;
        // An encrypted version goes as it is stored: sealed.
        let mut body = self.open_sealed(bucket, &v.key, Some(&v.version_id))?.all();
        let size = body.remaining();
        let uploaded = remote
            .put(tier, &name, &remote_meta(bucket, v), size, &mut body)
            .map_err(|e| Error::Tier(format!("upload to the remote tier failed: {e}")));
        let swapped = uploaded.and_then(|()| {
            self.submit(Op::ToRemote {
                owner: Owner::Version {
                    bucket: bucket.to_string(),
                    key: v.key.clone(),
                    sort: v.sort,
                },
                from: v.parts.iter().map(|p| p.data.id()).collect(),
                id,
                at: at.clone(),
                class: class.to_string(),
                intent,
                lock,
            })
        });
        if let Err(e) = swapped {
            // Nothing points at the upload: it goes now, or with the intent's retry.
            if remote.delete(tier, &name).is_ok() {
                let _ = self.finish_work(intent);
            }
            return Err(e);
        }
        Ok(true)
    }
}

/// Whether object lock keeps a version where it is: lifecycle never moves a locked
/// version; a write in a remote class moves it all the same.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LockRule {
    Respect,
    Ignore,
}

/// The remote object's metadata: what it is a copy of, so it can be recovered without cybs3.
fn remote_meta(bucket: &str, v: &ObjectVersion) -> Vec<(String, String)> {
    let mut meta = vec![
        ("cybs3-bucket".to_string(), bucket.to_string()),
        ("cybs3-key".to_string(), v.key.clone()),
        ("cybs3-version-id".to_string(), v.version_id.clone()),
        ("cybs3-etag".to_string(), v.meta.etag.clone()),
    ];
    if let Some(ct) = &v.meta.content_type {
        meta.push(("content-type".to_string(), ct.clone()));
    }
    meta.extend(
        v.meta
            .user
            .iter()
            .map(|(k, v)| (format!("user-{k}"), v.clone())),
    );
    meta
}

//! Storage classes: S3 class names bound to pools (`cybs3 admin tier add CLASS --pool NAME`).
//!
//! A write in a class goes to its pool; a lifecycle transition to a class moves the
//! data there ([`Store::transition`]). STANDARD needs no binding: unbound, it is the
//! placement by free space over all active pools ([`crate::store::Inner::place`]), and
//! any other class must be bound before it is used. An archive class (GLACIER,
//! DEEP_ARCHIVE, or one bound with `archive`) is only marked here: S3 keeps its objects
//! unreadable until they are restored. The bindings are server records, kept in memory
//! for writes.

use crate::error::{Error, Result};
use crate::pool::{Pool, PoolState};
use crate::record::{self, keys, ObjectMeta, ObjectVersion, UploadRecord};
use crate::remote::RemoteTier;
use crate::Store;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The class of objects written without one.
pub const STANDARD: &str = "STANDARD";

/// The server-record namespace of the bindings: class name → [`StorageClass`].
const RECORDS: &str = "engine.class";

/// A storage class and where its data goes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageClass {
    pub class: String,
    pub tier: Tier,
    /// Objects stay unreadable until restored (RestoreObject).
    pub archive: bool,
}

/// Where a class keeps its data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// A pool of this store.
    Pool(String),
    /// A bucket of another S3 system (`remote.rs`): reached by lifecycle transitions, and
    /// by writes in the class through the work queue.
    Remote(RemoteTier),
}

impl record::Record for StorageClass {}

/// Whether `class` is bound to a remote tier, read inside a commit: a version written in
/// such a class is stored in a pool first and moved by the queue (`ops::new_version`).
pub(crate) fn is_remote(tx: &mut crate::commit::Tx, class: &str) -> Result<bool> {
    match tx.get(&keys::server(RECORDS, class)) {
        Some(bytes) => Ok(matches!(
            record::decode::<StorageClass>(&bytes)?.tier,
            Tier::Remote(_)
        )),
        None => Ok(false),
    }
}

/// Classes that are archives by their AWS meaning.
fn archive_by_name(class: &str) -> bool {
    matches!(class, "GLACIER" | "DEEP_ARCHIVE")
}

impl Store {
    /// Every bound class.
    pub fn storage_classes(&self) -> Vec<StorageClass> {
        self.inner.classes.read().unwrap().clone()
    }

    /// The binding of `class`, if it has one.
    pub fn storage_class(&self, class: &str) -> Option<StorageClass> {
        let classes = self.inner.classes.read().unwrap();
        classes.iter().find(|c| c.class == class).cloned()
    }

    /// Bind `class` to `tier`. GLACIER and DEEP_ARCHIVE are archives whatever `archive` says.
    pub fn add_storage_class(
        &self,
        class: &str,
        tier: Tier,
        archive: bool,
    ) -> Result<StorageClass> {
        check_name(class)?;
        let _one_at_a_time = self.inner.pool_admin.lock().unwrap();
        match &tier {
            Tier::Pool(pool) => {
                let p = self.inner.pools.named(pool)?;
                if p.state() != PoolState::Active {
                    return Err(Error::Tier(format!(
                        "pool {pool:?} is {}: bind the class to an active pool",
                        if p.state() == PoolState::Draining {
                            "draining"
                        } else {
                            "drained"
                        }
                    )));
                }
            }
            Tier::Remote(_) if class == STANDARD => {
                return Err(Error::Tier(
                    "STANDARD holds what was never moved: bind it to a pool, not a remote tier"
                        .into(),
                ));
            }
            Tier::Remote(r) => {
                if r.endpoint.is_empty() || r.bucket.is_empty() {
                    return Err(Error::Tier(
                        "a remote tier needs an endpoint and a bucket".into(),
                    ));
                }
                if !(r.prefix.is_empty() || r.prefix.ends_with('/')) {
                    return Err(Error::Tier(format!(
                        "the prefix {:?} must end with '/'",
                        r.prefix
                    )));
                }
            }
        }
        if self.storage_class(class).is_some() {
            return Err(Error::Tier(format!(
                "storage class {class} is bound already; remove it first"
            )));
        }
        let binding = StorageClass {
            class: class.to_string(),
            tier,
            archive: archive || archive_by_name(class),
        };
        self.set_server_record(RECORDS, class, Some(record::encode(&binding)?))?;
        self.inner.classes.write().unwrap().push(binding.clone());
        Ok(binding)
    }

    /// Unbind `class`; refused while any object version or upload is in it.
    pub fn remove_storage_class(&self, class: &str) -> Result<()> {
        let _one_at_a_time = self.inner.pool_admin.lock().unwrap();
        if self.storage_class(class).is_none() {
            return Err(Error::Tier(format!(
                "there is no storage class {class}; `cybs3 admin tier list` shows them"
            )));
        }
        // Unbinding STANDARD only returns it to the placement by free space.
        let held = match class {
            STANDARD => None,
            _ => self.holding_class(class)?,
        };
        if let Some(key) = held {
            return Err(Error::Tier(format!(
                "storage class {class} still holds data ({key}); move or delete it first"
            )));
        }
        self.set_server_record(RECORDS, class, None)?;
        self.inner
            .classes
            .write()
            .unwrap()
            .retain(|c| c.class != class);
        Ok(())
    }

    /// Loads the bindings (at open).
    pub(crate) fn load_storage_classes(&self) -> Result<()> {
        let classes = self
            .server_records(RECORDS)?
            .into_iter()
            .map(|(_, bytes)| record::decode::<StorageClass>(&bytes))
            .collect::<Result<Vec<_>>>()?;
        *self.inner.classes.write().unwrap() = classes;
        Ok(())
    }

    /// The pool new data of `class` goes to: its bound pool while that is active, else
    /// the placement by free space (STANDARD unbound, or its pool being drained).
    pub(crate) fn pool_for_class(&self, class: Option<&str>) -> Arc<Pool> {
        let class = class.unwrap_or(STANDARD);
        let pool = match self.storage_class(class).map(|c| c.tier) {
            Some(Tier::Pool(pool)) => self.inner.pools.named(&pool).ok(),
            // Written in a remote tier's class: where STANDARD goes, until the queue moves it.
            Some(Tier::Remote(_)) => return self.pool_for_class(None),
            None => None,
        };
        pool.filter(|p| p.state() == PoolState::Active)
            .unwrap_or_else(|| self.inner.place())
    }

    /// An object version or upload in `class`, if there is one: one read of the index,
    /// ended at the first found.
    fn holding_class(&self, class: &str) -> Result<Option<String>> {
        let (rtxn, db) = self.read()?;
        let ours = |meta: &ObjectMeta| meta.storage_class.as_deref() == Some(class);
        for kv in db.prefix_iter(&rtxn, &[keys::VERSION])? {
            let v: ObjectVersion = record::decode(kv?.1)?;
            if ours(&v.meta) {
                return Ok(Some(v.key));
            }
        }
        for kv in db.prefix_iter(&rtxn, &[keys::UPLOAD])? {
            let u: UploadRecord = record::decode(kv?.1)?;
            if ours(&u.meta) {
                return Ok(Some(format!("upload of {}", u.key)));
            }
        }
        Ok(None)
    }
}

/// Class names: what AWS spells them with, upper-case.
fn check_name(class: &str) -> Result<()> {
    let ok = (1..=64).contains(&class.len())
        && class
            .bytes()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'_');
    if ok {
        return Ok(());
    }
    Err(Error::Tier(format!(
        "storage class {class:?}: use 1 to 64 upper-case letters, digits or '_'"
    )))
}

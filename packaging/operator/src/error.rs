//! The operator's errors: a spec it cannot turn into objects, and failures talking to the
//! API server.

use thiserror::Error;

/// A `Cybs3` spec that cannot be served as written; reported as Degraded, not retried
/// until the resource changes.
#[derive(Debug, Error, PartialEq)]
pub enum SpecError {
    #[error("ec {0:?} is not K+M with K at least 1 (e.g. 4+2)")]
    BadEc(String),
    #[error("{what}: ec {ec} needs K+M = {drives} drives")]
    EcDriveMismatch {
        what: String,
        ec: String,
        drives: u32,
    },
    #[error("{0}: drives.count must be between 1 and 64")]
    DriveCount(String),
    #[error("{0}: drives.size must be a quantity such as 100Gi")]
    DriveSize(String),
    #[error("pool name {0:?}: use lowercase letters, digits, '-' and '_' (not \"main\")")]
    PoolName(String),
    #[error("pool {0:?} appears twice")]
    DuplicatePool(String),
    #[error("storage class {0:?}: use 1 to 64 upper-case letters, digits or '_'")]
    ClassName(String),
    #[error("tier {0}: give exactly one of pool and remote")]
    TierTarget(String),
    #[error("tier {class}: no pool {pool:?} (pools: main and spec.pools)")]
    UnknownPool { class: String, pool: String },
    #[error("the resource has no namespace")]
    NoNamespace,
}

/// Any failure of one reconcile.
#[derive(Debug, Error)]
pub enum Error {
    #[error("invalid spec: {0}")]
    Spec(#[from] SpecError),
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("cannot encode an object: {0}")]
    Encode(#[from] serde_json::Error),
}

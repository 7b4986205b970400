//! The engine's one error type: storage-level causes, mapped to protocol errors by the servers.

use std::io;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The KMS refused: no master key, no such key, a data key that does not open.
    #[error("KMS: {0}")]
    Kms(String),
    /// The KMS key is disabled: what it wrapped stays unreadable until it is enabled.
    #[error("KMS key {0:?} is disabled: `cybs3 admin kms key enable {0}` makes its objects readable again")]
    KmsDisabled(String),
    /// An SSE-C object read, or an SSE-C upload's part written, without its customer key.
    #[error("the object is encrypted with a customer key (SSE-C): the request must give it")]
    CustomerKeyMissing,
    /// A customer key that is not the object's.
    #[error("the customer key (SSE-C) is not the one the object is encrypted with")]
    CustomerKeyMismatch,
    #[error("bucket {0:?} does not exist")]
    NoSuchBucket(String),
    #[error("bucket {0:?} already exists")]
    BucketExists(String),
    #[error("bucket {0:?} is not empty")]
    BucketNotEmpty(String),
    #[error("invalid bucket name {0:?}: {1}")]
    InvalidBucketName(String, &'static str),
    #[error("invalid object key: {0}")]
    InvalidKey(&'static str),
    #[error("object {0:?} does not exist")]
    NoSuchKey(String),
    #[error("version {0:?} does not exist")]
    NoSuchVersion(String),
    /// The addressed (or current) version is a delete marker.
    #[error("{key:?} version {version_id} is a delete marker")]
    DeleteMarker { key: String, version_id: String },
    #[error("multipart upload {0:?} does not exist")]
    NoSuchUpload(String),
    #[error("part {0} was not uploaded or its ETag does not match")]
    InvalidPart(u32),
    #[error("parts must be listed in ascending order")]
    InvalidPartOrder,
    #[error("part {0} is smaller than the 5 MiB minimum for all but the last part")]
    EntityTooSmall(u32),
    /// A conditional write's condition does not hold for the current version.
    #[error("At least one of the pre-conditions you specified did not hold")]
    PreconditionFailed,
    /// Object lock refuses to remove or weaken the version (`lock.rs`).
    #[error("{0}")]
    ObjectLocked(String),
    #[error("bucket {0:?} has no object lock configuration")]
    NoObjectLock(String),
    /// The bucket's state does not allow the change (object lock and versioning).
    #[error("{0}")]
    InvalidBucketState(&'static str),
    #[error("bucket {0:?} has no replication configuration")]
    NoReplication(String),
    /// A replica's write that cannot be made as its source asks (`replication.rs`).
    #[error("replica: {0}")]
    InvalidReplica(String),
    #[error("the requested range is not satisfiable")]
    InvalidRange,
    #[error("only {online} drives are usable, {needed} are needed; replace the failed drives and run `cybs3 heal`")]
    InsufficientDrives { online: usize, needed: usize },
    #[error("a drive is full ({0}); free space or add drives")]
    StorageFull(String),
    #[error("object data is damaged beyond repair: {0}")]
    Corrupt(String),
    #[error("the store is in use by another process ({0}); stop it first")]
    Locked(String),
    #[error("store layout: {0}")]
    Layout(String),
    #[error("there is no pool {0:?}; `cybs3 admin pool list` shows them")]
    NoSuchPool(String),
    /// A pool change that cannot be made as asked (`pool.rs`).
    #[error("{0}")]
    Pool(String),
    /// A storage class binding that cannot be made or used as asked (`classes.rs`).
    #[error("{0}")]
    Tier(String),
    #[error("metadata: {0}")]
    Meta(String),
    #[error("I/O: {0}")]
    Io(#[from] io::Error),
}

impl Error {
    /// Map an I/O error, keeping "disk full" distinct from a failing drive.
    pub(crate) fn from_io(err: io::Error, what: &str) -> Error {
        if is_no_space(&err) {
            Error::StorageFull(format!("{what}: {err}"))
        } else {
            Error::Io(io::Error::new(err.kind(), format!("{what}: {err}")))
        }
    }
}

pub(crate) fn is_no_space(err: &io::Error) -> bool {
    matches!(err.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
}

impl From<heed::Error> for Error {
    fn from(err: heed::Error) -> Error {
        match err {
            heed::Error::Io(io) => Error::from_io(io, "metadata"),
            heed::Error::Mdb(heed::MdbError::MapFull) => {
                Error::StorageFull("metadata map is full".into())
            }
            other => Error::Meta(other.to_string()),
        }
    }
}

impl From<postcard::Error> for Error {
    fn from(err: postcard::Error) -> Error {
        Error::Meta(format!("record encoding: {err}"))
    }
}

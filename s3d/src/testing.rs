//! Fixtures for s3d's unit tests: a store on one temporary drive, small objects in it,
//! and a bare version record to build others from.

use engine::{ObjectMeta, ObjectVersion, Store};

/// A store on one drive in `dir`, without background work.
pub(crate) fn store(dir: &tempfile::TempDir) -> Store {
    let mut cfg = engine::StoreConfig::new(vec![dir.path().join("d0")]);
    cfg.background = false;
    Store::open(cfg).unwrap()
}

/// An object whose content is its key.
pub(crate) fn put(s: &Store, bucket: &str, key: &str) {
    let mut w = s.put(bucket, key).unwrap();
    w.write(key.as_bytes()).unwrap();
    w.finish(ObjectMeta::default()).unwrap();
}

/// The `null` version of `key`: empty, at the epoch, with nothing set.
pub(crate) fn version(key: &str) -> ObjectVersion {
    ObjectVersion {
        key: key.into(),
        version_id: "null".into(),
        sort: [0; 16],
        delete_marker: false,
        mtime_ns: 0,
        size: 0,
        meta: ObjectMeta::default(),
        parts: vec![],
        retention: None,
        legal_hold: false,
        encryption: None,
        replication: None,
        restored_until_ns: None,
    }
}

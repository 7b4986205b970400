//! Pools: added to an open store, chosen for new data, kept across restarts, drained
//! back with every byte and every record intact, healed like the first pool.

mod common;

use common::*;
use cybs3_engine::{Error, LockRequest, ObjectMeta, PoolState, Store, Tier, WriteCondition};
use std::path::{Path, PathBuf};
use std::time::Duration;

const B: &str = "bkt";
/// Past the inline limit, so the data is in shard files.
const BIG: usize = 200 * 1024;

fn pool_of(s: &Store, key: &str) -> u16 {
    let v = s.head(B, key, None).unwrap();
    v.parts[0].data.shards().expect("sharded").pool
}

fn pool_drives(root: &Path, name: &str, n: usize) -> Vec<PathBuf> {
    (0..n).map(|i| root.join(format!("{name}{i}"))).collect()
}

fn state(s: &Store, name: &str) -> PoolState {
    s.pools()
        .into_iter()
        .find(|p| p.name == name)
        .unwrap()
        .state
}

#[test]
fn a_pool_takes_new_data_survives_a_restart_and_drains_back() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), 3, None, 64 * 1024);
    let s = Store::open(cfg.clone()).unwrap();
    s.create_bucket(B).unwrap();
    put(&s, B, "old", &bytes(1, BIG));
    put(&s, B, "small", &bytes(2, 1000));
    assert_eq!(pool_of(&s, "old"), 0);

    let second = pool_drives(dir.path(), "p", 4);
    let info = s.add_pool("second", second.clone(), None).unwrap();
    assert_eq!((info.ec.as_str(), info.state), ("2+2", PoolState::Active));
    // Pools on one filesystem tie on free space: the newest, the emptiest, wins.
    put(&s, B, "new", &bytes(3, BIG));
    assert_eq!(pool_of(&s, "new"), 1);
    assert_eq!(count_shards(&second), 4);
    // A multipart upload's part, left uncompleted, lives in the pool too.
    let up = s
        .create_upload(
            B,
            "multi",
            ObjectMeta::default(),
            (LockRequest::default(), None),
        )
        .unwrap();
    let part = bytes(4, BIG);
    let mut w = s.put_part(B, "multi", &up.upload_id, 1, None).unwrap();
    w.write(&part).unwrap();
    let p1 = w
        .finish(ObjectMeta {
            etag: etag_of(&part),
            ..ObjectMeta::default()
        })
        .unwrap()
        .version;

    // The pool list is in the index: a restart opens the pool again from its paths.
    drop(s);
    let s = Store::open(cfg).unwrap();
    assert_eq!(s.pools().len(), 2);
    assert_eq!(get(&s, B, "new").unwrap(), bytes(3, BIG));
    assert_eq!(
        get_range(&s, B, "new", 70_000, 140_000).unwrap(),
        bytes(3, BIG)[70_000..140_000]
    );

    let info = s.drain_pool("second").unwrap();
    assert_eq!(info.state, PoolState::Draining);
    assert!(
        eventually(Duration::from_secs(30), || state(&s, "second")
            == PoolState::Drained),
        "the drain ends"
    );
    // Nothing stays behind, nothing changed for a reader.
    assert_eq!(count_shards(&second), 0);
    assert_eq!(pool_of(&s, "new"), 0);
    assert_eq!(get(&s, B, "new").unwrap(), bytes(3, BIG));
    assert_eq!(get(&s, B, "old").unwrap(), bytes(1, BIG));
    assert_eq!(get(&s, B, "small").unwrap(), bytes(2, 1000));
    let v = s
        .complete_upload(
            B,
            "multi",
            &up.upload_id,
            vec![(1, p1.meta.etag.clone())],
            ("multi-etag-1".into(), Vec::new()),
            WriteCondition::default(),
        )
        .unwrap()
        .version;
    assert_eq!(v.parts[0].data.shards().unwrap().pool, 0);
    assert_eq!(get(&s, B, "multi").unwrap(), part);
    // A drained pool takes nothing new.
    put(&s, B, "after", &bytes(5, BIG));
    assert_eq!(pool_of(&s, "after"), 0);
    assert!(s.check().unwrap().clean());
}

#[test]
fn pool_changes_that_cannot_be_made_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path(), 1, None, 64 * 1024);
    let refused = |r: Result<_, Error>| match r {
        Err(e @ (Error::Pool(_) | Error::NoSuchPool(_) | Error::Layout(_))) => e.to_string(),
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("accepted"),
    };
    let msg = refused(s.drain_pool("main"));
    assert!(msg.contains("index"), "{msg}");
    refused(s.drain_pool("nope"));
    refused(s.add_pool("Bad Name", pool_drives(dir.path(), "x", 1), None));
    refused(s.add_pool(
        "bad-ec",
        pool_drives(dir.path(), "y", 2),
        Some("2+1".parse().unwrap()),
    ));
    let busy = dir.path().join("busy0");
    std::fs::create_dir_all(&busy).unwrap();
    std::fs::write(busy.join("file"), b"x").unwrap();
    let msg = refused(s.add_pool("busy", vec![busy], None));
    assert!(msg.contains("not empty"), "{msg}");
    refused(s.add_pool("again", vec![dir.path().join("d0")], None));
    s.add_pool("two", pool_drives(dir.path(), "t", 2), None)
        .unwrap();
    refused(s.add_pool("two", pool_drives(dir.path(), "u", 2), None));
    s.drain_pool("two").unwrap();
    // With "two" draining, "main" is the only active pool left to move anything to.
    assert!(eventually(Duration::from_secs(10), || state(&s, "two")
        == PoolState::Drained));
}

#[test]
fn a_pool_drive_lost_is_rebuilt_by_heal() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path(), 1, None, 64 * 1024);
    s.create_bucket(B).unwrap();
    let drives = pool_drives(dir.path(), "q", 3);
    s.add_pool("q", drives.clone(), None).unwrap();
    put(&s, B, "k", &bytes(7, BIG));
    assert_eq!(pool_of(&s, "k"), 1);
    let id = sharded_id(&s.head(B, "k", None).unwrap()).unwrap();
    std::fs::remove_file(shard_path(&drives[1], &id)).unwrap();
    let report = s.check().unwrap();
    assert_eq!(report.shards_bad, 1, "{report:?}");
    // A read rebuilds from parity; heal (or the read's own queued heal) writes it back.
    assert_eq!(get(&s, B, "k").unwrap(), bytes(7, BIG));
    s.heal().unwrap();
    assert!(s.check().unwrap().clean());
    assert!(shard_path(&drives[1], &id).is_file());
}

#[test]
fn a_transition_moves_the_data_and_keeps_the_version() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path(), 1, None, 64 * 1024);
    s.create_bucket(B).unwrap();
    s.set_versioning(B, cybs3_engine::Versioning::Enabled)
        .unwrap();
    let big = put(&s, B, "big", &bytes(11, BIG));
    let small = put(&s, B, "small", &bytes(12, 500));
    s.add_pool("cold", pool_drives(dir.path(), "c", 2), None)
        .unwrap();
    s.add_storage_class("COLD", Tier::Pool("cold".into()), false)
        .unwrap();

    assert!(s.transition(B, "big", &big.version_id, "COLD").unwrap());
    let moved = s.head(B, "big", None).unwrap();
    assert_eq!(moved.parts[0].data.shards().unwrap().pool, 1);
    assert_eq!(moved.meta.storage_class.as_deref(), Some("COLD"));
    let same = |a: &cybs3_engine::ObjectVersion, b: &cybs3_engine::ObjectVersion| {
        (
            a.version_id == b.version_id,
            a.meta.etag == b.meta.etag,
            a.size == b.size,
        )
    };
    assert_eq!(same(&moved, &big), (true, true, true));
    assert_eq!(get(&s, B, "big").unwrap(), bytes(11, BIG));
    // Nothing left to do the second time; small objects keep their data inline.
    assert!(!s.transition(B, "big", &big.version_id, "COLD").unwrap());
    assert!(s.transition(B, "small", &small.version_id, "COLD").unwrap());
    assert_eq!(
        s.head(B, "small", None)
            .unwrap()
            .meta
            .storage_class
            .as_deref(),
        Some("COLD")
    );
    assert_eq!(get(&s, B, "small").unwrap(), bytes(12, 500));
    // A noncurrent version moves as well.
    put(&s, B, "big", &bytes(13, BIG));
    s.add_pool("colder", pool_drives(dir.path(), "e", 2), None)
        .unwrap();
    let deep = s
        .add_storage_class("DEEP_ARCHIVE", Tier::Pool("colder".into()), false)
        .unwrap();
    assert!(deep.archive, "DEEP_ARCHIVE is an archive by name");
    assert!(s
        .transition(B, "big", &big.version_id, "DEEP_ARCHIVE")
        .unwrap());
    let old = s.head(B, "big", Some(&big.version_id)).unwrap();
    assert_eq!(old.parts[0].data.shards().unwrap().pool, 2);
    assert_eq!(
        get_version(&s, B, "big", Some(&big.version_id)).unwrap(),
        bytes(11, BIG)
    );
    assert!(s.check().unwrap().clean());

    // RestoreObject's mark: the first restore is new, a second only moves its end.
    assert!(!s
        .restore(B, "big", Some(&big.version_id), u64::MAX - 1)
        .unwrap());
    assert!(s
        .restore(B, "big", Some(&big.version_id), u64::MAX)
        .unwrap());
    let restored = s.head(B, "big", Some(&big.version_id)).unwrap();
    assert_eq!(restored.restored_until_ns, Some(u64::MAX));
}

#[test]
fn a_locked_version_is_not_transitioned() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path(), 1, None, 64 * 1024);
    s.create_locked_bucket(B).unwrap();
    let mut w = s.put(B, "held").unwrap();
    w.set_lock(LockRequest {
        retention: None,
        legal_hold: true,
    });
    let data = bytes(21, BIG);
    w.write(&data).unwrap();
    let v = w
        .finish(ObjectMeta {
            etag: etag_of(&data),
            ..ObjectMeta::default()
        })
        .unwrap()
        .version;
    s.add_pool("cold", pool_drives(dir.path(), "c", 1), None)
        .unwrap();
    s.add_storage_class("COLD", Tier::Pool("cold".into()), false)
        .unwrap();
    let before = s.head(B, "held", None).unwrap();
    match s.transition(B, "held", &v.version_id, "COLD") {
        Err(Error::ObjectLocked(_)) => {}
        other => panic!("a locked version moved: {other:?}"),
    }
    assert_eq!(s.head(B, "held", None).unwrap(), before);
    assert_eq!(
        count_shards(&pool_drives(dir.path(), "c", 1)),
        0,
        "no copy is left behind"
    );
}

#[test]
fn classes_place_writes_and_cannot_go_while_they_hold_data() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path(), 3, None, 64 * 1024);
    s.create_bucket(B).unwrap();
    s.add_pool("ia", pool_drives(dir.path(), "i", 1), None)
        .unwrap();
    let refused = |r: Result<_, Error>| match r {
        Err(Error::Tier(m) | Error::NoSuchPool(m)) => m,
        other => panic!("accepted: {:?}", other.map(drop)),
    };
    refused(s.add_storage_class("lower", Tier::Pool("ia".into()), false));
    refused(s.add_storage_class("COLD", Tier::Pool("nope".into()), false));
    s.add_storage_class("STANDARD_IA", Tier::Pool("ia".into()), false)
        .unwrap();
    refused(s.add_storage_class("STANDARD_IA", Tier::Pool("main".into()), false));
    // The pool with more free space ("main", 2+1) takes unclassed data; the class its own.
    let mut w = s.put(B, "ia-object").unwrap();
    w.set_class(Some("STANDARD_IA"));
    let data = bytes(31, BIG);
    w.write(&data).unwrap();
    w.finish(ObjectMeta {
        etag: etag_of(&data),
        storage_class: Some("STANDARD_IA".into()),
        ..ObjectMeta::default()
    })
    .unwrap();
    assert_eq!(pool_of(&s, "ia-object"), 1);
    put(&s, B, "plain", &bytes(32, BIG));
    assert_eq!(pool_of(&s, "plain"), 0);
    let msg = refused(
        s.remove_storage_class("STANDARD_IA")
            .map(|()| s.storage_classes()[0].clone()),
    );
    assert!(msg.contains("ia-object"), "{msg}");
    s.delete(B, "ia-object", None, false).unwrap();
    s.remove_storage_class("STANDARD_IA").unwrap();
    assert!(s.storage_classes().is_empty());
    refused(
        s.remove_storage_class("STANDARD_IA")
            .map(|()| s.storage_classes()[0].clone()),
    );
}

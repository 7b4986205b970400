//! Small objects live in the metadata records erasure-coded, one shard per drive: they
//! cost (K+M)/K on disk, survive a damaged or missing shard, are healed like shard
//! files, and a store from before (whole copies on every drive) is sharded at open.
//! 6 drives at 4+2.

mod common;

use common::*;
use cybs3_engine::{ObjectVersion, PartData, Store};
use heed::types::Bytes;
use heed::{Database, EnvOpenOptions};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const BUCKET: &str = "small";

fn populate(s: &Store) -> Vec<(String, Vec<u8>)> {
    s.create_bucket(BUCKET).unwrap();
    let objects: Vec<(String, Vec<u8>)> = [0usize, 1, 5, 100, 4096, 10_000, 65_536]
        .iter()
        .enumerate()
        .map(|(i, &len)| (format!("o/{i}"), bytes(i as u64 + 7, len)))
        .collect();
    for (key, data) in &objects {
        put_chunked(s, BUCKET, key, data, 4096).unwrap();
    }
    objects
}

fn verify(s: &Store, objects: &[(String, Vec<u8>)], what: &str) {
    for (key, data) in objects {
        let got = get(s, BUCKET, key).unwrap_or_else(|e| panic!("{what}: {key}: {e}"));
        assert!(got == *data, "{what}: {key} differs");
    }
}

/// Change drive `d`'s records in place while the store is closed, as a disk would.
fn edit(drive: &Path, change: impl FnOnce(&mut heed::RwTxn, Database<Bytes, Bytes>)) {
    // SAFETY: the store is closed, so nothing else has this environment open.
    let env = unsafe {
        EnvOpenOptions::new()
            .map_size(1 << 30)
            .open(drive.join("meta"))
            .unwrap()
    };
    let db: Database<Bytes, Bytes> = env
        .create_databases_and_commit(env.write_txn().unwrap(), |opener, wtxn| {
            opener
                .create_database::<Bytes, Bytes>(wtxn, None)
                .map(heed::CommitOrAbort::<_, ()>::Commit)
        })
        .unwrap()
        .unwrap_commit();
    let mut txn = env.write_txn().unwrap();
    change(&mut txn, db);
    txn.commit().unwrap();
}

/// The inline data ids of every version, from drive `d`'s records.
fn inline_versions(drive: &Path) -> Vec<ObjectVersion> {
    let mut out = Vec::new();
    edit(drive, |txn, db| {
        for kv in db.prefix_iter(txn, b"V").unwrap() {
            let (_, v) = kv.unwrap();
            let v: ObjectVersion = postcard::from_bytes(&v[1..]).unwrap();
            if matches!(v.parts[0].data, PartData::Inline { .. }) {
                out.push(v);
            }
        }
    });
    out
}

fn key(tag: u8, id: &[u8; 16]) -> Vec<u8> {
    let mut k = vec![tag];
    k.extend_from_slice(id);
    k
}

/// Bytes of every value under `tag` on a drive.
fn stored_under(drive: &Path, tag: u8) -> usize {
    let mut total = 0;
    edit(drive, |txn, db| {
        for kv in db.prefix_iter(txn, &[tag]).unwrap() {
            total += kv.unwrap().1.len();
        }
    });
    total
}

#[test]
fn each_drive_keeps_one_shard_and_damage_is_read_around_and_healed() {
    let dir = tempfile::tempdir().unwrap();
    let drives: Vec<PathBuf> = drive_paths(dir.path(), 6);
    let s = open(dir.path(), 6, Some("4+2"), 1 << 20);
    let objects = populate(&s);
    drop(s);

    let raw: usize = objects.iter().map(|(_, d)| d.len()).sum();
    for d in &drives {
        let held = stored_under(d, b'J');
        // A quarter of the bytes, plus a shard's padding and 6-byte header per object.
        assert!(
            held <= raw / 4 + objects.len() * 8,
            "{d:?}: {held} of {raw}"
        );
        assert_eq!(stored_under(d, b'I'), 0, "no whole copies");
    }

    // Drive 1: every shard flipped. Drive 4: every shard gone.
    let versions = inline_versions(&drives[0]);
    assert_eq!(versions.len(), objects.len());
    edit(&drives[1], |txn, db| {
        for v in &versions {
            let k = key(b'J', &v.parts[0].data.id());
            let mut value = db.get(txn, &k).unwrap().unwrap().to_vec();
            *value.last_mut().unwrap() ^= 0x40;
            db.put(txn, &k, &value).unwrap();
        }
    });
    edit(&drives[4], |txn, db| {
        for v in &versions {
            db.delete(txn, &key(b'J', &v.parts[0].data.id())).unwrap();
        }
    });

    let mut cfg = config(dir.path(), 6, Some("4+2"), 1 << 20);
    cfg.background = false;
    let s = Store::open(cfg).unwrap();
    verify(&s, &objects, "two shards bad");
    let report = s.check().unwrap();
    assert_eq!(report.data_checked, objects.len() as u64, "{report:?}");
    assert_eq!(report.shards_bad, 2 * objects.len() as u64, "{report:?}");
    assert_eq!(report.degraded.len(), objects.len(), "{report:?}");
    assert!(report.unrecoverable.is_empty(), "{report:?}");
    let report = s.heal().unwrap();
    assert_eq!(report.shards_healed, 2 * objects.len() as u64, "{report:?}");
    let report = s.check().unwrap();
    assert!(report.clean() && report.shards_bad == 0, "{report:?}");
    drop(s);

    // A third bad shard on top of two is beyond 4+2: refused, never wrong bytes.
    for d in [0, 2, 3] {
        edit(&drives[d], |txn, db| {
            for v in &versions {
                db.delete(txn, &key(b'J', &v.parts[0].data.id())).unwrap();
            }
        });
    }
    let mut cfg = config(dir.path(), 6, Some("4+2"), 1 << 20);
    cfg.background = false;
    let s = Store::open(cfg).unwrap();
    let report = s.check().unwrap();
    assert_eq!(report.unrecoverable.len(), objects.len(), "{report:?}");
    for (key, _) in &objects {
        assert!(
            get(&s, BUCKET, key).is_err(),
            "{key}: read from 3 of 6 shards"
        );
    }
}

#[test]
fn a_store_with_whole_copies_is_sharded_when_it_opens() {
    let dir = tempfile::tempdir().unwrap();
    let drives: Vec<PathBuf> = drive_paths(dir.path(), 6);
    let s = open(dir.path(), 6, Some("4+2"), 1 << 20);
    let objects = populate(&s);
    drop(s);

    // Rewrite every drive as an older store kept it: the whole bytes under `I id`.
    let versions = inline_versions(&drives[0]);
    for d in &drives {
        edit(d, |txn, db| {
            for v in &versions {
                let id = v.parts[0].data.id();
                let data = &objects.iter().find(|(k, _)| *k == v.key).unwrap().1;
                db.delete(txn, &key(b'J', &id)).unwrap();
                db.put(txn, &key(b'I', &id), data).unwrap();
            }
        });
    }

    let s = open(dir.path(), 6, Some("4+2"), 1 << 20);
    verify(&s, &objects, "whole copies");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let report = s.check().unwrap();
        if report.inline_whole == 0 {
            assert!(report.clean() && report.shards_bad == 0, "{report:?}");
            assert_eq!(report.data_checked, objects.len() as u64);
            break;
        }
        assert!(Instant::now() < deadline, "not sharded: {report:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    verify(&s, &objects, "sharded at open");
    drop(s);
    let raw: usize = objects.iter().map(|(_, d)| d.len()).sum();
    for d in &drives {
        assert_eq!(stored_under(d, b'I'), 0);
        assert!(stored_under(d, b'J') <= raw / 4 + objects.len() * 8);
    }
}

/// Reads keep decoded small objects in memory by data id: an overwrite or a delete is
/// seen at once, since it leaves the old id behind.
#[test]
fn a_kept_read_never_outlives_an_overwrite_or_a_delete() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path(), 6, Some("4+2"), 1 << 20);
    s.create_bucket(BUCKET).unwrap();
    for round in 0..3u64 {
        let data = bytes(round, 4096);
        put_chunked(&s, BUCKET, "hot", &data, 4096).unwrap();
        for _ in 0..2 {
            assert!(get(&s, BUCKET, "hot").unwrap() == data, "round {round}");
        }
    }
    s.delete(BUCKET, "hot", None, false).unwrap();
    assert!(get(&s, BUCKET, "hot").is_err(), "read after delete");
}

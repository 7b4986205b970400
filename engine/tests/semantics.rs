//! S3 semantics: versioning, multipart, bucket and key rules, orphans, locking.

mod common;

use common::*;
use cybs3_engine::{
    Deleted, Error, Expiry, ObjectMeta, Store, StoreConfig, VersionEntry, VersionQuery, Versioning,
    MIN_PART_SIZE,
};
use std::path::PathBuf;
use std::time::Duration;

const B: &str = "bkt";

fn store3(dir: &tempfile::TempDir) -> (Store, Vec<PathBuf>) {
    let s = open(dir.path(), 3, None, 4096);
    s.create_bucket(B).unwrap();
    (s, drive_paths(dir.path(), 3))
}

fn versions(s: &Store, max: usize) -> Vec<VersionEntry> {
    let mut out = Vec::new();
    let mut q = VersionQuery {
        max,
        ..VersionQuery::default()
    };
    loop {
        let page = s.list_versions(B, &q).unwrap();
        assert!(page.versions.len() <= max);
        out.extend(page.versions);
        if !page.truncated {
            return out;
        }
        q.key_marker = page.next_key;
        q.version_marker = page.next_version;
    }
}

fn summary(v: &[VersionEntry]) -> Vec<(String, String, bool, bool)> {
    v.iter()
        .map(|e| {
            (
                e.version.key.clone(),
                e.version.version_id.clone(),
                e.version.delete_marker,
                e.is_latest,
            )
        })
        .collect()
}

#[test]
fn enabled_versioning_keeps_versions_and_markers() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = store3(&dir);
    s.set_versioning(B, Versioning::Enabled).unwrap();
    let d1 = bytes(1, 100);
    let d2 = bytes(2, 70_000);
    let v1 = put(&s, B, "k", &d1);
    let v2 = put(&s, B, "k", &d2);
    let other = put(&s, B, "l", b"other");
    assert_ne!(v1.version_id, "null");
    assert_ne!(v1.version_id, v2.version_id);
    assert_eq!(s.head(B, "k", None).unwrap().version_id, v2.version_id);
    assert!(get(&s, B, "k").unwrap() == d2);
    assert!(get_version(&s, B, "k", Some(&v1.version_id)).unwrap() == d1);
    let stats = s.bucket_stats(B).unwrap();
    assert_eq!((stats.objects, stats.bytes), (3, 100 + 70_000 + 5));

    // A delete without a version id adds a marker on top.
    let d = s.delete(B, "k", None, false).unwrap();
    assert!(d.delete_marker);
    let marker = d.version_id.clone().expect("marker has a version id");
    match s.head(B, "k", None) {
        Err(Error::DeleteMarker { key, version_id }) => {
            assert_eq!(key, "k");
            assert_eq!(version_id, marker);
        }
        other => panic!("expected DeleteMarker, got {other:?}"),
    }
    assert!(matches!(get(&s, B, "k"), Err(Error::DeleteMarker { .. })));
    assert!(matches!(
        s.head(B, "k", Some(&marker)),
        Err(Error::DeleteMarker { .. })
    ));
    assert!(get_version(&s, B, "k", Some(&v2.version_id)).unwrap() == d2);
    let (objs, _) = list_all(&s, B, "", None, 10);
    assert_eq!(objs, [("l".to_string(), 5)], "a deleted key is not listed");
    let want = vec![
        ("k".to_string(), marker.clone(), true, true),
        ("k".to_string(), v2.version_id.clone(), false, false),
        ("k".to_string(), v1.version_id.clone(), false, false),
        ("l".to_string(), other.version_id.clone(), false, true),
    ];
    assert_eq!(summary(&versions(&s, 1000)), want);
    assert_eq!(summary(&versions(&s, 1)), want, "paginated version listing");
    assert_eq!(summary(&versions(&s, 2)), want);
    let stats = s.bucket_stats(B).unwrap();
    assert_eq!(stats.objects, 3, "markers are not objects");

    // Removing the marker brings v2 back.
    let d = s.delete(B, "k", Some(&marker), false).unwrap();
    assert_eq!(
        d,
        Deleted {
            version_id: Some(marker.clone()),
            delete_marker: true
        }
    );
    assert_eq!(s.head(B, "k", None).unwrap().version_id, v2.version_id);
    assert!(get(&s, B, "k").unwrap() == d2);

    // Deleting the current version by id makes the previous one current.
    let d = s.delete(B, "k", Some(&v2.version_id), false).unwrap();
    assert!(!d.delete_marker);
    assert_eq!(s.head(B, "k", None).unwrap().version_id, v1.version_id);
    assert!(get(&s, B, "k").unwrap() == d1);
    assert!(matches!(
        s.head(B, "k", Some(&v2.version_id)),
        Err(Error::NoSuchVersion(_))
    ));
    let stats = s.bucket_stats(B).unwrap();
    assert_eq!((stats.objects, stats.bytes), (2, 105));
    let (objs, _) = list_all(&s, B, "", None, 10);
    assert_eq!(objs, [("k".to_string(), 100), ("l".to_string(), 5)]);

    // Deleting the last version leaves nothing.
    s.delete(B, "k", Some(&v1.version_id), false).unwrap();
    assert!(matches!(s.head(B, "k", None), Err(Error::NoSuchKey(_))));
    assert_eq!(summary(&versions(&s, 10)).len(), 1);
}

#[test]
fn suspended_versioning_writes_null_versions() {
    let dir = tempfile::tempdir().unwrap();
    let (s, drives) = store3(&dir);
    s.set_versioning(B, Versioning::Enabled).unwrap();
    let kept = put(&s, B, "k", b"enabled-era");
    s.set_versioning(B, Versioning::Suspended).unwrap();
    assert_eq!(s.bucket(B).unwrap().versioning, Versioning::Suspended);
    let n1 = put(&s, B, "k", &bytes(3, 90_000));
    assert_eq!(n1.version_id, "null");
    let n1_id = sharded_id(&n1).unwrap();
    let d2 = bytes(4, 50);
    let n2 = put(&s, B, "k", &d2);
    assert_eq!(n2.version_id, "null");
    let v = versions(&s, 100);
    assert_eq!(
        summary(&v),
        vec![
            ("k".to_string(), "null".to_string(), false, true),
            ("k".to_string(), kept.version_id.clone(), false, false),
        ],
        "the second null version replaces the first"
    );
    assert!(get(&s, B, "k").unwrap() == d2);
    assert!(get_version(&s, B, "k", Some("null")).unwrap() == d2);
    assert!(get_version(&s, B, "k", Some(&kept.version_id)).unwrap() == b"enabled-era");
    let stats = s.bucket_stats(B).unwrap();
    assert_eq!((stats.objects, stats.bytes), (2, 11 + 50));
    assert!(
        eventually(Duration::from_secs(2), || drives
            .iter()
            .all(|d| !shard_path(d, &n1_id).exists())),
        "the replaced null version's shards are reclaimed"
    );

    // A delete in a suspended bucket leaves a null marker in place of the null version.
    let d = s.delete(B, "k", None, false).unwrap();
    assert_eq!(
        d,
        Deleted {
            version_id: Some("null".into()),
            delete_marker: true
        }
    );
    assert_eq!(
        summary(&versions(&s, 100)),
        vec![
            ("k".to_string(), "null".to_string(), true, true),
            ("k".to_string(), kept.version_id.clone(), false, false),
        ]
    );
    let stats = s.bucket_stats(B).unwrap();
    assert_eq!((stats.objects, stats.bytes), (1, 11));
}

#[test]
fn unversioned_overwrite_and_delete_free_space() {
    let dir = tempfile::tempdir().unwrap();
    let (s, drives) = store3(&dir);
    let gone = |id| {
        eventually(Duration::from_secs(2), || {
            drives.iter().all(|d| !shard_path(d, &id).exists())
        })
    };
    let v1 = put(&s, B, "k", &bytes(1, 200_000));
    let id1 = sharded_id(&v1).unwrap();
    assert!(drives.iter().all(|d| shard_path(d, &id1).exists()));
    assert_eq!(s.bucket_stats(B).unwrap().bytes, 200_000);

    let v2 = put(&s, B, "k", &bytes(2, 150_000));
    let id2 = sharded_id(&v2).unwrap();
    assert_eq!(s.bucket_stats(B).unwrap().bytes, 150_000);
    assert_eq!(s.bucket_stats(B).unwrap().objects, 1);
    assert!(gone(id1), "old shards are removed after an overwrite");
    assert!(drives.iter().all(|d| shard_path(d, &id2).exists()));

    put(&s, B, "k", b"tiny");
    let stats = s.bucket_stats(B).unwrap();
    assert_eq!((stats.objects, stats.bytes), (1, 4));
    assert!(gone(id2));
    assert_eq!(count_shards(&drives), 0);
    assert_eq!(summary(&versions(&s, 10)).len(), 1, "one null version");

    let v3 = put(&s, B, "k", &bytes(3, 100_000));
    s.delete(B, "k", None, false).unwrap();
    assert!(matches!(s.head(B, "k", None), Err(Error::NoSuchKey(_))));
    let stats = s.bucket_stats(B).unwrap();
    assert_eq!((stats.objects, stats.bytes), (0, 0));
    assert!(gone(sharded_id(&v3).unwrap()));
    assert!(versions(&s, 10).is_empty());
    assert!(s.check().unwrap().clean());
}

fn part(s: &Store, key: &str, upload: &str, n: u32, data: &[u8]) -> String {
    let mut w = s.put_part(B, key, upload, n, None).unwrap();
    for c in data.chunks(50_000) {
        w.write(c).unwrap();
    }
    let etag = etag_of(data);
    let v = w
        .finish(ObjectMeta {
            etag: etag.clone(),
            ..ObjectMeta::default()
        })
        .unwrap()
        .version;
    assert_eq!(v.size, data.len() as u64);
    etag
}

/// A write says whether it took the place of a current object (what the server's
/// anomaly detector counts as an overwrite), read in its own commit.
#[test]
fn writes_report_what_they_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = store3(&dir);
    let write = |key: &str| {
        let mut w = s.put(B, key).unwrap();
        w.write(b"data").unwrap();
        w.finish(ObjectMeta::default()).unwrap().replaced
    };
    assert!(!write("k"), "a new key replaces nothing");
    assert!(write("k"), "an unversioned overwrite");
    s.set_versioning(B, Versioning::Enabled).unwrap();
    assert!(write("k"), "a versioned overwrite hides a current object");
    s.delete(B, "k", None, false).unwrap();
    assert!(!write("k"), "a delete marker is not a current object");

    let complete = |upload: &str| {
        s.complete_upload(
            B,
            "k",
            upload,
            vec![(1, etag_of(b"part"))],
            ("mp".into(), Vec::new()),
            Default::default(),
        )
        .unwrap()
        .replaced
    };
    let up = s
        .create_upload(B, "k", ObjectMeta::default(), Default::default())
        .unwrap();
    part(&s, "k", &up.upload_id, 1, b"part");
    assert!(
        complete(&up.upload_id),
        "a completion over a current object"
    );
    assert!(
        !complete(&up.upload_id),
        "a retried completion replaced nothing more"
    );
}

#[test]
fn multipart_complete_and_listings() {
    let dir = tempfile::tempdir().unwrap();
    let (s, drives) = store3(&dir);
    let meta = ObjectMeta {
        content_type: Some("application/x-test".into()),
        user: vec![("a".into(), "b".into())],
        ..ObjectMeta::default()
    };
    let up = s
        .create_upload(B, "mp/obj", meta.clone(), Default::default())
        .unwrap();
    let other = s
        .create_upload(B, "mp/other", ObjectMeta::default(), Default::default())
        .unwrap();
    let third = s
        .create_upload(B, "zz", ObjectMeta::default(), Default::default())
        .unwrap();
    assert_ne!(up.upload_id, other.upload_id);

    let (ups, more) = s.list_uploads(B, "", None, None, 100).unwrap();
    assert!(!more);
    let keys: Vec<&str> = ups.iter().map(|u| u.key.as_str()).collect();
    assert_eq!(keys, ["mp/obj", "mp/other", "zz"]);
    let (ups, more) = s.list_uploads(B, "mp/", None, None, 1).unwrap();
    assert!(more);
    assert_eq!(ups[0].upload_id, up.upload_id);
    let (ups, more) = s
        .list_uploads(B, "mp/", Some("mp/obj"), Some(&up.upload_id), 10)
        .unwrap();
    assert!(!more);
    assert_eq!(ups.len(), 1);
    assert_eq!(ups[0].upload_id, other.upload_id);

    let p1 = bytes(1, MIN_PART_SIZE as usize);
    let p2 = bytes(2, MIN_PART_SIZE as usize + 3);
    let p3 = bytes(3, 70_000);
    let junk = bytes(4, 80_000);
    // Upload out of order, and replace part 2 (its first data must be freed).
    let e3 = part(&s, "mp/obj", &up.upload_id, 3, &p3);
    let e2_old = part(&s, "mp/obj", &up.upload_id, 2, &junk);
    let e2 = part(&s, "mp/obj", &up.upload_id, 2, &p2);
    assert_ne!(e2, e2_old);
    let e1 = part(&s, "mp/obj", &up.upload_id, 1, &p1);
    let e9 = part(&s, "mp/obj", &up.upload_id, 9, b"never used");

    let (parts, more) = s.list_parts(B, "mp/obj", &up.upload_id, 0, 100).unwrap();
    assert!(!more);
    let listed: Vec<(u32, u64, String)> = parts
        .iter()
        .map(|p| (p.entry.number, p.entry.size, p.entry.etag.clone()))
        .collect();
    assert_eq!(
        listed,
        vec![
            (1, p1.len() as u64, e1.clone()),
            (2, p2.len() as u64, e2.clone()),
            (3, p3.len() as u64, e3.clone()),
            (9, 10, e9.clone()),
        ]
    );
    let (parts, more) = s.list_parts(B, "mp/obj", &up.upload_id, 1, 2).unwrap();
    assert!(more);
    assert_eq!(
        parts.iter().map(|p| p.entry.number).collect::<Vec<_>>(),
        [2, 3]
    );
    let (parts, more) = s.list_parts(B, "mp/obj", &up.upload_id, 3, 2).unwrap();
    assert!(!more);
    assert_eq!(
        parts.iter().map(|p| p.entry.number).collect::<Vec<_>>(),
        [9]
    );
    // Sharded part files: p1, p2, p3 and the replaced junk is gone.
    assert!(
        eventually(Duration::from_secs(2), || count_shards(&drives) == 3 * 3),
        "{} shard files",
        count_shards(&drives)
    );

    let v = s
        .complete_upload(
            B,
            "mp/obj",
            &up.upload_id,
            vec![(1, e1.clone()), (2, format!("\"{e2}\"")), (3, e3.clone())],
            ("final-etag-3".into(), Vec::new()),
            Default::default(),
        )
        .unwrap()
        .version;
    let all = [p1.clone(), p2.clone(), p3.clone()].concat();
    assert_eq!(v.size, all.len() as u64);
    assert_eq!(v.meta.etag, "final-etag-3");
    assert_eq!(v.meta.content_type.as_deref(), Some("application/x-test"));
    assert_eq!(v.meta.user, meta.user);
    assert!(get(&s, B, "mp/obj").unwrap() == all);
    let edge = MIN_PART_SIZE;
    assert!(
        get_range(&s, B, "mp/obj", edge - 7, edge + 9).unwrap()
            == all[edge as usize - 7..edge as usize + 9],
        "a range across the part boundary"
    );
    let (ups, _) = s.list_uploads(B, "", None, None, 100).unwrap();
    assert_eq!(ups.len(), 2, "completed upload is gone");
    assert!(matches!(
        s.list_parts(B, "mp/obj", &up.upload_id, 0, 10),
        Err(Error::NoSuchUpload(_))
    ));
    // A retried completion gets the version the first one made (as S3 answers it);
    // under another key the upload id names nothing.
    let retry = |key: &str| {
        s.complete_upload(
            B,
            key,
            &up.upload_id,
            vec![(1, e1.clone())],
            ("x".into(), Vec::new()),
            Default::default(),
        )
    };
    assert_eq!(retry("mp/obj").unwrap().version, v);
    assert!(matches!(retry("mp/other"), Err(Error::NoSuchUpload(_))));
    let stats = s.bucket_stats(B).unwrap();
    assert_eq!((stats.objects, stats.bytes), (1, all.len() as u64));
    assert!(s.check().unwrap().clean());

    // After a restart the object is whole.
    drop(s);
    let s = open(dir.path(), 3, None, 4096);
    assert!(get(&s, B, "mp/obj").unwrap() == all);
    s.abort_upload(B, "mp/other", &other.upload_id).unwrap();
    s.abort_upload(B, "zz", &third.upload_id).unwrap();
    assert_eq!(
        count_shards(&drives),
        3 * 3,
        "part 9 was dropped at completion"
    );
    assert!(s.check().unwrap().clean());
}

/// Two uploads of one part number at once: the one started last is kept even when the
/// earlier one finishes after it (AWS keeps the newer part), and the loser's shards go.
#[test]
fn part_started_last_wins_whichever_finishes_last() {
    let dir = tempfile::tempdir().unwrap();
    let (s, drives) = store3(&dir);
    let up = s
        .create_upload(B, "race", ObjectMeta::default(), Default::default())
        .unwrap();
    let (slow_data, fast_data) = (bytes(5, 200_000), bytes(6, 150_000));
    let mut slow = s.put_part(B, "race", &up.upload_id, 1, None).unwrap();
    slow.write(&slow_data[..50_000]).unwrap();
    let fast = part(&s, "race", &up.upload_id, 1, &fast_data);
    slow.write(&slow_data[50_000..]).unwrap();
    let slow_etag = etag_of(&slow_data);
    let landed = slow
        .finish(ObjectMeta {
            etag: slow_etag.clone(),
            ..ObjectMeta::default()
        })
        .unwrap()
        .version;
    assert_eq!(
        landed.meta.etag, slow_etag,
        "the slower upload still succeeds"
    );
    let slow_id = sharded_id(&landed).unwrap();

    let (parts, _) = s.list_parts(B, "race", &up.upload_id, 0, 10).unwrap();
    let listed: Vec<(u32, String)> = parts
        .iter()
        .map(|p| (p.entry.number, p.entry.etag.clone()))
        .collect();
    assert_eq!(listed, vec![(1, fast.clone())]);
    assert!(eventually(Duration::from_secs(2), || {
        drives.iter().all(|d| !shard_path(d, &slow_id).exists())
    }));
    let err = s
        .complete_upload(
            B,
            "race",
            &up.upload_id,
            vec![(1, slow_etag)],
            ("x-1".into(), Vec::new()),
            Default::default(),
        )
        .unwrap_err();
    assert!(matches!(err, Error::InvalidPart(1)), "{err:?}");
    s.complete_upload(
        B,
        "race",
        &up.upload_id,
        vec![(1, fast)],
        ("x-1".into(), Vec::new()),
        Default::default(),
    )
    .unwrap();
    assert!(get(&s, B, "race").unwrap() == fast_data);

    // A part uploaded again after the first finished replaces it, as before.
    let up = s
        .create_upload(B, "again", ObjectMeta::default(), Default::default())
        .unwrap();
    part(&s, "again", &up.upload_id, 1, &slow_data);
    let newer = part(&s, "again", &up.upload_id, 1, &fast_data);
    let (parts, _) = s.list_parts(B, "again", &up.upload_id, 0, 10).unwrap();
    assert_eq!(parts[0].entry.etag, newer);
    assert!(s.check().unwrap().clean());
}

#[test]
fn multipart_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let (s, drives) = store3(&dir);
    let up = s
        .create_upload(B, "k", ObjectMeta::default(), Default::default())
        .unwrap();
    let id = up.upload_id.clone();
    let small1 = bytes(1, 70_000);
    let e1 = part(&s, "k", &id, 1, &small1);
    let e2 = part(&s, "k", &id, 2, b"second");

    // Parts are checked in list order, so order errors show behind a big first part.
    let e3 = part(&s, "k", &id, 3, &bytes(3, MIN_PART_SIZE as usize));
    let complete = |parts: Vec<(u32, String)>| {
        s.complete_upload(
            B,
            "k",
            &id,
            parts,
            ("x".into(), Vec::new()),
            Default::default(),
        )
    };
    let r = complete(vec![(3, e3.clone()), (1, e1.clone())]);
    assert!(matches!(r, Err(Error::InvalidPartOrder)), "{r:?}");
    let r = complete(vec![(3, e3.clone()), (3, e3.clone())]);
    assert!(matches!(r, Err(Error::InvalidPartOrder)), "{r:?}");
    assert!(matches!(
        complete(vec![(1, "wrong".into()), (2, e2.clone())]),
        Err(Error::InvalidPart(1))
    ));
    assert!(matches!(
        complete(vec![(3, e3.clone()), (4, e2.clone())]),
        Err(Error::InvalidPart(4))
    ));
    assert!(matches!(complete(vec![]), Err(Error::InvalidPart(_))));
    assert!(matches!(
        complete(vec![(1, e1.clone()), (2, e2.clone())]),
        Err(Error::EntityTooSmall(1))
    ));
    // Refusals change nothing: the upload and both parts are still there.
    let (parts, _) = s.list_parts(B, "k", &id, 0, 10).unwrap();
    assert_eq!(parts.len(), 3);
    assert!(matches!(s.head(B, "k", None), Err(Error::NoSuchKey(_))));
    // A small part is fine as the only (last) part.
    let v = complete(vec![(2, e2.clone())]).unwrap().version;
    assert_eq!(v.size, 6);
    assert!(get(&s, B, "k").unwrap() == b"second");
    assert!(
        eventually(Duration::from_secs(2), || count_shards(&drives) == 0),
        "the unused sharded parts 1 and 3 are reclaimed"
    );

    // Abort drops the parts and their data.
    let up = s
        .create_upload(B, "k2", ObjectMeta::default(), Default::default())
        .unwrap();
    part(&s, "k2", &up.upload_id, 1, &bytes(5, 100_000));
    part(&s, "k2", &up.upload_id, 2, b"inline part");
    assert_eq!(count_shards(&drives), 3);
    s.abort_upload(B, "k2", &up.upload_id).unwrap();
    assert!(eventually(Duration::from_secs(2), || count_shards(&drives) == 0));
    assert!(matches!(
        s.list_parts(B, "k2", &up.upload_id, 0, 10),
        Err(Error::NoSuchUpload(_))
    ));
    assert!(matches!(
        s.put_part(B, "k2", &up.upload_id, 3, None).map(drop),
        Err(Error::NoSuchUpload(_))
    ));
    assert!(matches!(
        s.abort_upload(B, "k2", &up.upload_id),
        Err(Error::NoSuchUpload(_))
    ));
    assert!(matches!(
        s.create_upload("nobucket", "k", ObjectMeta::default(), Default::default()),
        Err(Error::NoSuchBucket(_))
    ));
    assert!(s.list_uploads(B, "", None, None, 10).unwrap().0.is_empty());
    assert!(s.check().unwrap().clean());
}

#[test]
fn bucket_rules() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = store3(&dir);
    assert!(matches!(s.create_bucket(B), Err(Error::BucketExists(_))));
    for bad in [
        "ab",
        "AB-c",
        "a_b",
        "-abc",
        "abc-",
        "a..b",
        "a.-b",
        "192.168.1.1",
        "xn--abc",
        "sthree-x",
        "abc-s3alias",
        &"a".repeat(64),
        "",
    ] {
        assert!(
            matches!(s.create_bucket(bad), Err(Error::InvalidBucketName(..))),
            "{bad:?} must be refused"
        );
    }
    for good in ["abc", "my-bucket.1", "1.2.3", &"a".repeat(63)] {
        s.create_bucket(good).unwrap();
    }
    let names: Vec<String> = s
        .list_buckets()
        .unwrap()
        .into_iter()
        .map(|b| b.name)
        .collect();
    assert_eq!(names.len(), 5);

    put(&s, B, "x", b"1");
    assert!(matches!(s.delete_bucket(B), Err(Error::BucketNotEmpty(_))));
    s.delete(B, "x", None, false).unwrap();
    s.delete_bucket(B).unwrap();
    assert!(matches!(s.bucket(B), Err(Error::NoSuchBucket(_))));
    assert!(matches!(
        s.put(B, "x").map(drop),
        Err(Error::NoSuchBucket(_))
    ));
    assert!(matches!(s.head(B, "x", None), Err(Error::NoSuchBucket(_))));
    assert!(matches!(s.delete_bucket(B), Err(Error::NoSuchBucket(_))));

    // A versioned bucket holding only a delete marker is not empty.
    s.set_versioning("abc", Versioning::Enabled).unwrap();
    let v = put(&s, "abc", "x", b"1");
    let d = s.delete("abc", "x", None, false).unwrap();
    assert!(matches!(
        s.delete_bucket("abc"),
        Err(Error::BucketNotEmpty(_))
    ));
    s.delete("abc", "x", Some(&v.version_id), false).unwrap();
    assert!(matches!(
        s.delete_bucket("abc"),
        Err(Error::BucketNotEmpty(_))
    ));
    s.delete("abc", "x", d.version_id.as_deref(), false)
        .unwrap();
    s.delete_bucket("abc").unwrap();

    // Deleting a bucket drops its pending uploads' data.
    let drives = drive_paths(dir.path(), 3);
    let up = s
        .create_upload("1.2.3", "k", ObjectMeta::default(), Default::default())
        .unwrap();
    let mut w = s.put_part("1.2.3", "k", &up.upload_id, 1, None).unwrap();
    w.write(&bytes(1, 100_000)).unwrap();
    w.finish(ObjectMeta::default()).unwrap();
    assert_eq!(count_shards(&drives), 3);
    s.delete_bucket("1.2.3").unwrap();
    assert!(eventually(Duration::from_secs(2), || count_shards(&drives) == 0));
    assert!(s.check().unwrap().clean());
}

#[test]
fn invalid_keys_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = store3(&dir);
    let long = "k".repeat(1025);
    for bad in ["", "..", "a/../b", "../a", "a/..", "a\0b", long.as_str()] {
        assert!(
            matches!(s.put(B, bad).map(drop), Err(Error::InvalidKey(_))),
            "put {bad:?}"
        );
        assert!(
            matches!(s.delete(B, bad, None, false), Err(Error::InvalidKey(_))),
            "delete {bad:?}"
        );
        assert!(
            matches!(
                s.create_upload(B, bad, ObjectMeta::default(), Default::default()),
                Err(Error::InvalidKey(_))
            ),
            "create_upload {bad:?}"
        );
    }
    // Near misses are fine keys.
    let max = "m".repeat(1024);
    for good in [
        "a..b",
        "...",
        "./a",
        "a/./b",
        "a//b",
        "ü/ñ",
        max.as_str(),
        "/",
    ] {
        put(&s, B, good, good.as_bytes());
        assert_eq!(get(&s, B, good).unwrap(), good.as_bytes(), "{good:?}");
    }
    // A long key still gets sharded data (its shard header drops the name).
    let big = bytes(1, 100_000);
    put(&s, B, &max, &big);
    assert!(get(&s, B, &max).unwrap() == big);
    assert!(s.check().unwrap().clean());
}

#[test]
fn orphans_are_swept_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let (s, drives) = store3(&dir);
    let data = bytes(1, 100_000);
    let v = put(&s, B, "keep", &data);
    let id = sharded_id(&v).unwrap();
    drop(s);

    let orphan = drives[0]
        .join("data")
        .join("ab")
        .join(format!("ab{}", "0".repeat(30)));
    std::fs::write(&orphan, b"orphan shard").unwrap();
    let odd = drives[2].join("data").join("cd").join("not-a-shard");
    std::fs::write(&odd, b"junk").unwrap();
    let tmp = drives[1].join("tmp").join("f".repeat(32));
    std::fs::write(&tmp, b"half-written shard").unwrap();
    let heal_tmp = drives[2].join("tmp").join("x.heal");
    std::fs::write(&heal_tmp, b"half-written heal").unwrap();

    let s = open(dir.path(), 3, None, 4096);
    for p in [&orphan, &odd, &tmp, &heal_tmp] {
        assert!(!p.exists(), "{} survived the start-up sweep", p.display());
    }
    assert!(
        drives.iter().all(|d| shard_path(d, &id).exists()),
        "live shards kept"
    );
    assert!(get(&s, B, "keep").unwrap() == data);
    assert!(s.check().unwrap().clean());
}

#[test]
fn second_open_is_refused_while_open() {
    let dir = tempfile::tempdir().unwrap();
    let (s, drives) = store3(&dir);
    put(&s, B, "k", b"v");
    let cfg = StoreConfig::new(drives.clone());
    match Store::open(cfg.clone()) {
        Err(Error::Locked(msg)) => assert!(msg.contains(&std::process::id().to_string()), "{msg}"),
        Err(e) => panic!("expected Locked, got {e}"),
        Ok(_) => panic!("expected Locked, the store opened twice"),
    }
    // The first handle is unaffected.
    put(&s, B, "k2", b"v2");
    assert_eq!(get(&s, B, "k").unwrap(), b"v");
    drop(s);

    // Closed: it opens again, with its layout fixed.
    let s = Store::open(cfg).unwrap();
    assert_eq!(get(&s, B, "k2").unwrap(), b"v2");
    assert_eq!(s.block_size(), 4096);
    drop(s);
    let mut wrong_ec = StoreConfig::new(drives.clone());
    wrong_ec.ec = Some("1+2".parse().unwrap());
    assert!(matches!(Store::open(wrong_ec), Err(Error::Layout(_))));
    let mut swapped = drives.clone();
    swapped.swap(0, 1);
    assert!(matches!(
        Store::open(StoreConfig::new(swapped)),
        Err(Error::Layout(_))
    ));
    assert!(matches!(
        Store::open(StoreConfig::new(drives[..2].to_vec())),
        Err(Error::Layout(_))
    ));
    let s = Store::open(StoreConfig::new(drives)).unwrap();
    assert_eq!(get(&s, B, "k").unwrap(), b"v");
}

/// A reader keeps the version it opened even when the object is overwritten meanwhile.
#[test]
fn open_reader_survives_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let (s, drives) = store3(&dir);
    let old = bytes(1, 300_000);
    let v = put(&s, B, "k", &old);
    let id = sharded_id(&v).unwrap();
    let r = s.open_object(B, "k", None).unwrap();
    put(&s, B, "k", b"new");
    assert!(eventually(Duration::from_secs(2), || drives
        .iter()
        .all(|d| !shard_path(d, &id).exists())));
    let mut got = Vec::new();
    std::io::Read::read_to_end(&mut r.all(), &mut got).unwrap();
    assert!(got == old);
}

#[test]
fn server_records_are_durable_and_survive_a_lost_drive() {
    let dir = tempfile::tempdir().unwrap();
    let (s, drives) = store3(&dir);
    s.set_server_record("keys", "AK1", Some(b"one".to_vec()))
        .unwrap();
    s.set_server_record("keys", "AK2", Some(b"two".to_vec()))
        .unwrap();
    s.set_server_record("users", "AK1", Some(b"other ns".to_vec()))
        .unwrap();
    s.set_server_record("keys", "AK2", None).unwrap();
    assert!(s.set_server_record("keys", "a\0b", Some(vec![])).is_err());
    assert!(s.set_server_record("", "x", Some(vec![])).is_err());
    drop(s);

    // Any one drive may go: every drive holds the records.
    std::fs::remove_dir_all(&drives[0]).unwrap();
    let s = Store::open(StoreConfig::new(drives.clone())).unwrap();
    assert_eq!(s.server_record("keys", "AK1").unwrap().unwrap(), b"one");
    assert_eq!(s.server_record("keys", "AK2").unwrap(), None);
    assert_eq!(
        s.server_records("keys").unwrap(),
        vec![("AK1".to_string(), b"one".to_vec())]
    );
    assert_eq!(s.server_records("users").unwrap().len(), 1);
}

#[test]
fn acls_live_with_their_version_and_buckets_are_born_with_their_attrs() {
    use cybs3_engine::{Acl, CanonicalUser, Grant, Grantee, Permission};
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = store3(&dir);
    s.create_bucket_with("owned", false, vec![("acl".into(), b"owner".to_vec())])
        .unwrap();
    assert_eq!(
        s.bucket_attr("owned", "acl").unwrap().as_deref(),
        Some(&b"owner"[..])
    );
    // Taken names stay taken, whatever the attributes.
    assert!(matches!(
        s.create_bucket_with("owned", false, Vec::new()),
        Err(Error::BucketExists(_))
    ));
    s.set_versioning(B, Versioning::Enabled).unwrap();
    let first = put(&s, B, "k", b"one");
    let second = put(&s, B, "k", b"two");
    let acl = |grantee| Acl {
        owner: CanonicalUser {
            id: "0".repeat(64),
            display_name: "o".into(),
        },
        grants: vec![Grant {
            grantee,
            permission: Permission::Read,
        }],
    };
    s.set_acl(B, "k", Some(&first.version_id), acl(Grantee::AllUsers))
        .unwrap();
    s.set_acl(B, "k", None, acl(Grantee::AuthenticatedUsers))
        .unwrap();
    let head = |v: &str| s.head(B, "k", Some(v)).unwrap().meta.acl;
    assert_eq!(head(&first.version_id), Some(acl(Grantee::AllUsers)));
    assert_eq!(
        head(&second.version_id),
        Some(acl(Grantee::AuthenticatedUsers))
    );
    assert!(matches!(
        s.set_acl(B, "missing", None, acl(Grantee::AllUsers)),
        Err(Error::NoSuchKey(_))
    ));
    // Committed like everything else: a reopened store reads the same.
    drop(s);
    let s = open(dir.path(), 3, None, 4096);
    assert_eq!(
        s.head(B, "k", None).unwrap().meta.acl,
        Some(acl(Grantee::AuthenticatedUsers))
    );
}

#[test]
fn lifecycle_expirations_act_only_on_what_was_seen_and_respect_locks() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = store3(&dir);
    // Unversioned: the current version is removed, once.
    let v = put(&s, B, "u", b"old");
    let gone = s.expire(B, "u", &v.version_id, Expiry::Current).unwrap();
    assert_eq!(gone.map(|d| d.delete_marker), Some(false));
    assert!(matches!(s.head(B, "u", None), Err(Error::NoSuchKey(_))));
    assert_eq!(
        s.expire(B, "u", &v.version_id, Expiry::Current).unwrap(),
        None
    );

    // Versioned for good, and legal holds allowed.
    const L: &str = "locked";
    s.create_locked_bucket(L).unwrap();
    let v1 = put(&s, L, "k", b"one");
    let v2 = put(&s, L, "k", b"two");
    // v1 is not current: a Current expiration decided on an older view does nothing.
    assert_eq!(
        s.expire(L, "k", &v1.version_id, Expiry::Current).unwrap(),
        None
    );
    // v2 is current: it is not a noncurrent one.
    assert_eq!(
        s.expire(L, "k", &v2.version_id, Expiry::Noncurrent)
            .unwrap(),
        None
    );
    // Expiring the current version adds a marker; v2 stays readable by its id.
    let d = s
        .expire(L, "k", &v2.version_id, Expiry::Current)
        .unwrap()
        .unwrap();
    assert!(d.delete_marker);
    let marker = d.version_id.unwrap();
    assert!(get_version(&s, L, "k", Some(&v2.version_id)).unwrap() == b"two");
    // The marker is not alone: it stays.
    assert_eq!(
        s.expire(L, "k", &marker, Expiry::LoneDeleteMarker).unwrap(),
        None
    );
    // A legal hold keeps a noncurrent version; lifted, it goes.
    s.set_legal_hold(L, "k", Some(&v1.version_id), true)
        .unwrap();
    assert!(matches!(
        s.expire(L, "k", &v1.version_id, Expiry::Noncurrent),
        Err(Error::ObjectLocked(_))
    ));
    s.set_legal_hold(L, "k", Some(&v1.version_id), false)
        .unwrap();
    for v in [&v1, &v2] {
        let d = s.expire(L, "k", &v.version_id, Expiry::Noncurrent).unwrap();
        assert_eq!(d.map(|d| d.delete_marker), Some(false));
    }
    // Now the marker is alone, and goes too.
    let d = s.expire(L, "k", &marker, Expiry::LoneDeleteMarker).unwrap();
    assert_eq!(d.map(|d| d.delete_marker), Some(true));
    let left = s.list_versions(
        L,
        &VersionQuery {
            max: 10,
            ..VersionQuery::default()
        },
    );
    assert!(left.unwrap().versions.is_empty());
    assert_eq!(s.bucket_stats(L).unwrap().objects, 0);
}

#[test]
fn long_ranges_read_ahead_in_order_and_let_the_store_go() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = store3(&dir);
    // 4 KiB blocks: 300 of them, read ahead four at a time.
    let data = bytes(9, 300 * 4096 + 123);
    put(&s, B, "long", &data);
    assert!(get(&s, B, "long").unwrap() == data);
    let mut r = s
        .open_object(B, "long", None)
        .unwrap()
        .range(5000, 900_000)
        .unwrap();
    let mut got = Vec::new();
    while let Some(chunk) = r.next_chunk().unwrap() {
        got.extend_from_slice(&chunk);
    }
    assert!(got == data[5000..900_000]);
    drop(r);
    // A reader dropped mid-range stops its threads, so the store can close and reopen.
    let mut r = s.open_object(B, "long", None).unwrap().all();
    r.next_chunk().unwrap();
    drop(r);
    drop(s);
    let s = open(dir.path(), 3, None, 4096);
    assert!(get(&s, B, "long").unwrap() == data);
}

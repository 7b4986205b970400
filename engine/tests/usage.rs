//! Usage counters against a brute-force count of the same store's listings, through
//! every kind of change: overwrites (versioned or not), delete markers, noncurrent
//! deletes, multipart uploads, transitions between classes, a restart, a new usage
//! day, and the prefix pass.

mod common;

use common::*;
use cybs3_engine::{
    ObjectMeta, Store, Tally, Tier, VersionQuery, Versioning, WriteCondition, INLINE_MAX,
};
use std::collections::BTreeMap;

/// Big enough to be kept in shard files.
const BIG: usize = INLINE_MAX + 70_000;

/// Counts a bucket the slow way: every version listed, every upload and its parts
/// (raw bytes are not listed, so they are left to their own checks).
fn brute(s: &Store, bucket: &str) -> BTreeMap<String, Tally> {
    let mut by_class: BTreeMap<String, Tally> = BTreeMap::new();
    let mut q = VersionQuery {
        max: 7,
        ..Default::default()
    };
    loop {
        let page = s.list_versions(bucket, &q).unwrap();
        for e in &page.versions {
            let v = &e.version;
            let class = v.meta.storage_class.clone().unwrap_or("STANDARD".into());
            let t = by_class.entry(class).or_default();
            if v.delete_marker {
                t.delete_markers += 1;
                continue;
            }
            t.versions += 1;
            t.version_bytes += v.size as i64;
            if e.is_latest {
                t.objects += 1;
                t.object_bytes += v.size as i64;
            }
        }
        if !page.truncated {
            break;
        }
        q.key_marker = page.next_key;
        q.version_marker = page.next_version;
    }
    let (uploads, _) = s.list_uploads(bucket, "", None, None, 1000).unwrap();
    for up in uploads {
        let class = up.meta.storage_class.clone().unwrap_or("STANDARD".into());
        let t = by_class.entry(class).or_default();
        t.uploads += 1;
        let (parts, _) = s
            .list_parts(bucket, &up.key, &up.upload_id, 0, 1000)
            .unwrap();
        t.upload_bytes += parts.iter().map(|p| p.entry.size as i64).sum::<i64>();
    }
    by_class.retain(|_, t| !t.is_zero());
    by_class
}

/// The counters of a bucket by class, raw bytes left out (checked apart).
fn counted(s: &Store, bucket: &str) -> BTreeMap<String, Tally> {
    s.usage(Some(bucket))
        .unwrap()
        .by(|r| r.class.clone())
        .into_iter()
        .map(|(c, mut t)| {
            assert!(t.object_raw <= t.version_raw, "{c}: {t:?}");
            (t.object_raw, t.version_raw) = (0, 0);
            (c, t)
        })
        .filter(|(_, t)| !t.is_zero())
        .collect()
}

fn check(s: &Store, bucket: &str, when: &str) {
    assert_eq!(
        counted(s, bucket),
        brute(s, bucket),
        "{bucket} after {when}"
    );
}

fn meta(data: &[u8]) -> ObjectMeta {
    ObjectMeta {
        etag: etag_of(data),
        ..ObjectMeta::default()
    }
}

fn put_in(s: &Store, bucket: &str, key: &str, data: &[u8], class: &str) {
    let mut w = s.put(bucket, key).unwrap();
    w.set_class(Some(class));
    w.write(data).unwrap();
    w.finish(ObjectMeta {
        storage_class: Some(class.to_string()),
        ..meta(data)
    })
    .unwrap();
}

fn part(s: &Store, b: &str, key: &str, upload: &str, n: u32, data: &[u8]) -> String {
    let mut w = s.put_part(b, key, upload, n, None).unwrap();
    w.write(data).unwrap();
    w.finish(meta(data)).unwrap().version.meta.etag
}

#[test]
fn usage_counters_follow_every_kind_of_change() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path(), 3, Some("2+1"), 64 * 1024);

    // Unversioned: overwrite, delete.
    s.create_bucket("plain").unwrap();
    put(&s, "plain", "a", &bytes(1, 100));
    put(&s, "plain", "a", &bytes(2, 300));
    put(&s, "plain", "dir/b", &bytes(3, BIG));
    check(&s, "plain", "overwrite");
    s.delete("plain", "dir/b", None, false).unwrap();
    s.delete("plain", "missing", None, false).unwrap();
    check(&s, "plain", "delete");

    // Versioned: versions, a marker, a noncurrent delete, the marker removed.
    s.create_bucket("ver").unwrap();
    s.set_versioning("ver", Versioning::Enabled).unwrap();
    let v1 = put(&s, "ver", "k", &bytes(4, 10));
    put(&s, "ver", "k", &bytes(5, BIG));
    put(&s, "ver", "k", &bytes(6, 30));
    check(&s, "ver", "versions");
    let marker = s.delete("ver", "k", None, false).unwrap();
    s.delete("ver", "gone", None, false).unwrap();
    check(&s, "ver", "markers");
    s.delete("ver", "k", Some(&v1.version_id), false).unwrap();
    check(&s, "ver", "a noncurrent delete");
    s.delete("ver", "k", marker.version_id.as_deref(), false)
        .unwrap();
    check(&s, "ver", "the marker's removal");

    // Suspended: the null version replaced.
    s.set_versioning("ver", Versioning::Suspended).unwrap();
    put(&s, "ver", "k", &bytes(7, 40));
    put(&s, "ver", "k", &bytes(8, 50));
    check(&s, "ver", "null versions");

    // Multipart: one completed, one left open, one aborted.
    let up = s
        .create_upload("ver", "mp", ObjectMeta::default(), Default::default())
        .unwrap();
    let p1 = part(&s, "ver", "mp", &up.upload_id, 1, &bytes(9, 5 << 20));
    part(&s, "ver", "mp", &up.upload_id, 2, &bytes(10, 1000));
    // A part uploaded again replaces the first one's bytes.
    let p2 = part(&s, "ver", "mp", &up.upload_id, 2, &bytes(11, 2000));
    check(&s, "ver", "parts");
    s.complete_upload(
        "ver",
        "mp",
        &up.upload_id,
        vec![(1, p1), (2, p2)],
        ("etag-2".into(), Vec::new()),
        WriteCondition::default(),
    )
    .unwrap();
    let open_up = s
        .create_upload("ver", "open", ObjectMeta::default(), Default::default())
        .unwrap();
    part(&s, "ver", "open", &open_up.upload_id, 1, &bytes(12, 777));
    let aborted = s
        .create_upload("ver", "ab", ObjectMeta::default(), Default::default())
        .unwrap();
    part(&s, "ver", "ab", &aborted.upload_id, 1, &bytes(13, 999));
    s.abort_upload("ver", "ab", &aborted.upload_id).unwrap();
    check(&s, "ver", "multipart");

    // Classes: written in one, and moved to another by a transition.
    s.add_pool("cold", drive_paths(&dir.path().join("cold"), 2), None)
        .unwrap();
    s.add_storage_class("COLD", Tier::Pool("cold".into()), false)
        .unwrap();
    s.add_storage_class("ARCHIVE", Tier::Pool("cold".into()), true)
        .unwrap();
    put_in(&s, "plain", "c/in-class", &bytes(14, BIG), "COLD");
    let moved = put(&s, "plain", "c/moved", &bytes(15, BIG));
    let small = put(&s, "plain", "c/small", &bytes(16, 100));
    assert!(s
        .transition("plain", "c/moved", &moved.version_id, "ARCHIVE")
        .unwrap());
    assert!(s
        .transition("plain", "c/small", &small.version_id, "COLD")
        .unwrap());
    check(&s, "plain", "transitions");
    assert_eq!(
        counted(&s, "plain").keys().collect::<Vec<_>>(),
        ["ARCHIVE", "COLD", "STANDARD"]
    );

    // Raw bytes: shards with parity, of the pool that holds them.
    let raw: BTreeMap<String, i64> = s
        .usage(Some("plain"))
        .unwrap()
        .by(|r| r.class.clone())
        .into_iter()
        .map(|(c, t)| (c, t.version_raw))
        .collect();
    // The pool `cold` is 2 drives: 1+1, each shard a whole copy.
    assert_eq!(raw["ARCHIVE"], 2 * BIG as i64);
    // STANDARD: the 300-byte `a` coded 2+1: three shards of 150 bytes.
    assert_eq!(raw["STANDARD"], 3 * 150);
    // COLD: the big one in `cold`, and the small one's inline shards where they were.
    assert_eq!(raw["COLD"], 2 * BIG as i64 + 3 * 50);

    // A restart keeps them; a new usage day counts everything again, to the same totals.
    let before = s.usage(None).unwrap();
    drop(s);
    let s = open(dir.path(), 3, Some("2+1"), 64 * 1024);
    assert_eq!(s.usage(None).unwrap().rows, before.rows);
    s.set_usage_day(1).unwrap();
    let short = s.usage(None).unwrap();
    assert_eq!(short.day_secs, 1);
    assert_eq!(short.total(), before.total());
    check(&s, "ver", "a new day");
    check(&s, "plain", "a new day");

    // The prefix pass agrees with the counters and the listings.
    let snap = s.scan_usage().unwrap();
    let whole: Tally =
        snap.prefixes
            .iter()
            .filter(|p| p.prefix.is_empty())
            .fold(Tally::default(), |mut t, p| {
                t.objects += p.objects as i64;
                t.object_bytes += p.bytes as i64;
                t.versions += (p.objects + p.noncurrent) as i64;
                t.delete_markers += p.delete_markers as i64;
                t
            });
    let total = short.total();
    assert_eq!(
        (
            whole.objects,
            whole.object_bytes,
            whole.versions,
            whole.delete_markers
        ),
        (
            total.objects,
            total.object_bytes,
            total.versions,
            total.delete_markers
        )
    );
    let c = snap
        .prefixes
        .iter()
        .filter(|p| p.bucket == "plain" && p.prefix == "c/")
        .map(|p| p.objects)
        .sum::<u64>();
    assert_eq!(c, 3);
    assert_eq!(s.usage_snapshot().unwrap(), Some(snap));

    // Emptied and deleted, a bucket leaves no counter behind.
    s.abort_upload("ver", "open", &open_up.upload_id).unwrap();
    let mut q = VersionQuery {
        max: 1000,
        ..Default::default()
    };
    q.prefix.clear();
    for e in s.list_versions("ver", &q).unwrap().versions {
        s.delete("ver", &e.version.key, Some(&e.version.version_id), false)
            .unwrap();
    }
    assert!(s.usage(Some("ver")).unwrap().rows.is_empty());
    s.delete_bucket("ver").unwrap();
    assert!(s.usage(Some("ver")).unwrap().rows.is_empty());
}

#[test]
fn usage_reads_mark_objects_hot() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path(), 1, None, 64 * 1024);
    // Two-second days. Bands count calendar days (today's number less the read's), so a
    // read shows as "under a day ago" until its day ends: the read is made just after a
    // day begins, leaving the sampler's batch interval and the scans the whole day.
    const DAY_NS: u64 = 2_000_000_000;
    let day_of = |ns: u64| ns / DAY_NS;
    let now_ns = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
    };
    s.set_usage_day(DAY_NS / 1_000_000_000).unwrap();
    s.create_bucket("bkt").unwrap();
    put(&s, "bkt", "read/x", &bytes(1, 10));
    put(&s, "bkt", "idle/y", &bytes(2, 10));
    let written = now_ns();
    let next_day = (day_of(written) + 1) * DAY_NS + 50_000_000;
    std::thread::sleep(std::time::Duration::from_nanos(next_day - written));
    let read_day = day_of(now_ns());
    s.note_read("bkt", "read/x");
    // Written by the sampler's thread within its batch interval.
    loop {
        let snap = s.scan_usage().unwrap();
        let of = |prefix: &str| {
            snap.prefixes
                .iter()
                .find(|p| p.prefix == prefix)
                .unwrap()
                .clone()
        };
        let (read, idle) = (of("read/"), of("idle/"));
        // Not read, and written a day ago: idle since then, and still hot (read, or
        // written, within 7 days).
        assert_eq!(idle.idle_objects[0], 0, "{idle:?}");
        assert_eq!(idle.hot(), (1, 10), "{idle:?}");
        if read.idle_objects[0] == 1 {
            assert_eq!(read.age_bytes[0], 0, "written a day ago: {read:?}");
            break;
        }
        assert_eq!(
            day_of(now_ns()),
            read_day,
            "read, but not seen as read within its day: {read:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// By hand: `cargo test --release -p cybs3-engine --test usage -- --ignored --nocapture`.
/// A million objects, then the time `usage` takes (counters only) and a pass takes.
#[test]
#[ignore]
fn usage_of_a_million_objects_is_quick() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path(), 1, None, 64 * 1024);
    s.create_bucket("million").unwrap();
    let started = std::time::Instant::now();
    std::thread::scope(|scope| {
        for t in 0..32 {
            let s = s.clone();
            scope.spawn(move || {
                for i in 0..31_250 {
                    put(
                        &s,
                        "million",
                        &format!("p{}/{t}/{i}", i % 10),
                        b"0123456789abcdef",
                    );
                }
            });
        }
    });
    eprintln!("seeded 1,000,000 objects in {:?}", started.elapsed());
    let started = std::time::Instant::now();
    let u = s.usage(None).unwrap();
    let took = started.elapsed();
    eprintln!("usage: {took:?} ({} rows)", u.rows.len());
    assert_eq!(u.total().objects, 1_000_000);
    assert!(took < std::time::Duration::from_millis(100), "{took:?}");
    let started = std::time::Instant::now();
    let snap = s.scan_usage().unwrap();
    eprintln!(
        "usage pass: {:?} ({} versions)",
        started.elapsed(),
        snap.scanned
    );
}

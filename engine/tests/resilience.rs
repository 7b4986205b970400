//! Losing or damaging any M drives loses nothing; heal puts every shard back.
//! 6 drives at 4+2, 8 KiB blocks.

mod common;

use common::*;
use cybs3_engine::{Error, ObjectMeta, PartData, Store};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const N: usize = 6;
const EC: &str = "4+2";
const BLOCK: u32 = 8192;
const BUCKET: &str = "res";
const HEADER_LEN: usize = 4096;

fn open6(root: &Path) -> Store {
    open(root, N, Some(EC), BLOCK)
}

struct Fixture {
    objects: Vec<(String, Vec<u8>)>,
    /// An upload left in progress: (key, upload id, part number, etag, bytes).
    pending: (String, String, u32, String, Vec<u8>),
}

fn multipart(s: &Store, key: &str, parts: &[Vec<u8>]) -> Vec<u8> {
    let up = s
        .create_upload(BUCKET, key, ObjectMeta::default(), Default::default())
        .unwrap();
    let mut list = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        let n = i as u32 + 1;
        let mut w = s.put_part(BUCKET, key, &up.upload_id, n, None).unwrap();
        for c in p.chunks(10_000) {
            w.write(c).unwrap();
        }
        w.finish(ObjectMeta {
            etag: etag_of(p),
            ..ObjectMeta::default()
        })
        .unwrap();
        list.push((n, etag_of(p)));
    }
    let v = s
        .complete_upload(
            BUCKET,
            key,
            &up.upload_id,
            list,
            ("mp-etag".into(), Vec::new()),
            Default::default(),
        )
        .unwrap()
        .version;
    let all = parts.concat();
    assert_eq!(v.size, all.len() as u64);
    assert_eq!(v.parts.len(), parts.len());
    all
}

fn populate(s: &Store) -> Fixture {
    s.create_bucket(BUCKET).unwrap();
    let b = BLOCK as usize;
    let sizes = [
        0,
        1,
        100,
        b - 1,
        b,
        b + 1,
        20_000,
        65_535,
        65_536,
        65_537,
        70_000,
        10 * b,
        10 * b + 1,
        100_003,
        123_456,
        150_000,
        20 * b,
        200_001,
        250_000,
        300_007,
        4 * b + 3,
        99_999,
        77_777,
        131_072,
        5,
        4_000,
        66_666,
        180_000,
    ];
    let mut objects = Vec::new();
    for (i, &size) in sizes.iter().enumerate() {
        let key = match i % 3 {
            0 => format!("obj/{i:02}"),
            1 => format!("dir/sub/{i:02}"),
            _ => format!("top{i:02}"),
        };
        let data = bytes(1000 + i as u64, size);
        put_chunked(s, BUCKET, &key, &data, 3000 + i * 1000).unwrap();
        objects.push((key, data));
    }
    // Multipart (a 5 MiB first part is covered in semantics.rs, too slow to heal 30 times
    // here): a single sharded part; a single inline part.
    let single = multipart(s, "mp/single", &[bytes(3, 100_000)]);
    objects.push(("mp/single".into(), single));
    let small = multipart(s, "mp/small", &[bytes(4, 3_000)]);
    objects.push(("mp/small".into(), small));
    objects.sort();

    let up = s
        .create_upload(
            BUCKET,
            "mp/pending",
            ObjectMeta::default(),
            Default::default(),
        )
        .unwrap();
    let part = bytes(5, 90_000);
    let mut w = s
        .put_part(BUCKET, "mp/pending", &up.upload_id, 1, None)
        .unwrap();
    w.write(&part).unwrap();
    w.finish(ObjectMeta {
        etag: etag_of(&part),
        ..ObjectMeta::default()
    })
    .unwrap();
    Fixture {
        objects,
        pending: ("mp/pending".into(), up.upload_id, 1, etag_of(&part), part),
    }
}

fn verify(s: &Store, f: &Fixture, what: &str) {
    for (key, data) in &f.objects {
        let got = get(s, BUCKET, key).unwrap_or_else(|e| panic!("{what}: read {key}: {e}"));
        assert!(got == *data, "{what}: {key} ({} bytes) differs", data.len());
    }
    let want: Vec<(String, u64)> = f
        .objects
        .iter()
        .map(|(k, d)| (k.clone(), d.len() as u64))
        .collect();
    let (objects, prefixes) = list_all(s, BUCKET, "", None, 7);
    assert_eq!(objects, want, "{what}: listing");
    assert!(prefixes.is_empty());
    let (objects, prefixes) = list_all(s, BUCKET, "", Some("/"), 2);
    let top: Vec<(String, u64)> = want
        .iter()
        .filter(|(k, _)| !k.contains('/'))
        .cloned()
        .collect();
    assert_eq!(objects, top, "{what}: top-level listing");
    assert_eq!(prefixes, ["dir/", "mp/", "obj/"], "{what}: common prefixes");
    let (key, upload_id, number, etag, data) = &f.pending;
    let (parts, more) = s.list_parts(BUCKET, key, upload_id, 0, 10).unwrap();
    assert!(!more);
    assert_eq!(parts.len(), 1, "{what}: pending upload keeps its part");
    assert_eq!(parts[0].entry.number, *number);
    assert_eq!(parts[0].entry.etag, *etag);
    assert_eq!(parts[0].entry.size, data.len() as u64);
}

fn some_ranges(s: &Store, f: &Fixture, what: &str) {
    let b = BLOCK as u64;
    for key in ["obj/09", "mp/single", "top20"] {
        let data = &f.objects.iter().find(|(k, _)| k == key).unwrap().1;
        let len = data.len() as u64;
        for (start, end) in [
            (0, 1),
            (b - 1, b + 1),
            (3 * b + 5, 5 * b - 5),
            (len - 1, len),
            (len / 2, len),
        ] {
            let (start, end) = (start.min(len), end.min(len));
            let got = get_range(s, BUCKET, key, start, end).unwrap();
            assert!(
                got == data[start as usize..end as usize],
                "{what}: {key} range {start}..{end}"
            );
        }
    }
}

/// Overwrite every file under `dir` with garbage of the same length.
fn scramble(dir: &Path, seed: u64) {
    for (i, path) in files_under(dir).into_iter().enumerate() {
        let len = std::fs::metadata(&path).unwrap().len() as usize;
        std::fs::write(&path, bytes(seed + i as u64, len)).unwrap();
    }
}

fn heal_and_check(s: &Store, f: &Fixture, lost: &[usize], what: &str) {
    let report = s.heal().unwrap();
    assert!(report.unrecoverable.is_empty(), "{what}: heal: {report:?}");
    for d in lost {
        // The startup scan may have healed the drive first; either way it is back.
        assert!(
            report.drives_healed.contains(d) || !report.drives_bad.contains(d),
            "{what}: drive {d} not healed: {report:?}"
        );
    }
    let report = s.check().unwrap();
    assert!(report.clean(), "{what}: check after heal: {report:?}");
    // 28 plain objects: sharded ones plus sharded multipart parts.
    assert!(report.data_checked > 10, "{what}: {report:?}");
    let status = s.status();
    assert!(status.writable);
    for d in &status.drives {
        assert_eq!(d.state, cybs3_engine::DriveState::Online, "{what}: {d:?}");
    }
    verify(s, f, &format!("{what}, after heal"));
}

#[test]
fn any_two_drives_lost_or_scrambled() {
    let dir = tempfile::tempdir().unwrap();
    let drives = drive_paths(dir.path(), N);
    let s = open6(dir.path());
    let f = populate(&s);
    verify(&s, &f, "fresh");
    assert!(s.check().unwrap().clean());
    drop(s);

    for a in 0..N {
        for b in a + 1..N {
            let what = format!("drives {a},{b} deleted");
            std::fs::remove_dir_all(&drives[a]).unwrap();
            std::fs::remove_dir_all(&drives[b]).unwrap();
            let s = open6(dir.path());
            verify(&s, &f, &what);
            some_ranges(&s, &f, &what);
            heal_and_check(&s, &f, &[a, b], &what);
            drop(s);

            let what = format!("drives {a},{b} scrambled");
            scramble(&drives[a], (a * 100 + b) as u64);
            scramble(&drives[b], (b * 100 + a) as u64);
            let s = open6(dir.path());
            verify(&s, &f, &what);
            some_ranges(&s, &f, &what);
            heal_and_check(&s, &f, &[a, b], &what);
            drop(s);
        }
    }

    // After all that, the pending upload still completes with its part intact.
    let s = open6(dir.path());
    let (key, upload_id, number, etag, data) = &f.pending;
    s.complete_upload(
        BUCKET,
        key,
        upload_id,
        vec![(*number, etag.clone())],
        ("e".into(), Vec::new()),
        Default::default(),
    )
    .unwrap();
    assert!(get(&s, BUCKET, key).unwrap() == *data);
}

#[test]
fn range_reads_healthy_and_degraded() {
    let dir = tempfile::tempdir().unwrap();
    let drives = drive_paths(dir.path(), N);
    let s = open6(dir.path());
    s.create_bucket(BUCKET).unwrap();
    let b = BLOCK as u64;
    let objects: Vec<(String, Vec<u8>)> = [70_001usize, 12 * BLOCK as usize, 100]
        .iter()
        .enumerate()
        .map(|(i, &n)| (format!("r{i}"), bytes(77 + i as u64, n)))
        .collect();
    for (k, d) in &objects {
        put(&s, BUCKET, k, d);
    }
    let check = |s: &Store, what: &str| {
        for (key, data) in &objects {
            let len = data.len() as u64;
            let mut points: BTreeSet<u64> = [0, 1, 2, b - 1, b, b + 1, 2 * b - 1, 2 * b, 3 * b + 7]
                .into_iter()
                .chain([
                    len / 3,
                    len / 2,
                    len.saturating_sub(b + 1),
                    len.saturating_sub(b),
                    len - 2,
                    len - 1,
                ])
                .filter(|&p| p <= len)
                .collect();
            points.insert(len);
            let points: Vec<u64> = points.into_iter().collect();
            for (i, &start) in points.iter().enumerate() {
                for &end in &points[i..] {
                    let got = get_range(s, BUCKET, key, start, end).unwrap();
                    assert!(
                        got == data[start as usize..end as usize],
                        "{what}: {key} ({len} bytes) range {start}..{end}"
                    );
                }
            }
            let r = s.open_object(BUCKET, key, None).unwrap();
            assert!(matches!(r.range(len, len + 1), Err(Error::InvalidRange)));
            let r = s.open_object(BUCKET, key, None).unwrap();
            assert!(matches!(r.range(2, 1), Err(Error::InvalidRange)));
        }
    };
    check(&s, "healthy");
    drop(s);
    // Lose two drives, one holding data shards of every object.
    std::fs::remove_dir_all(&drives[0]).unwrap();
    std::fs::remove_dir_all(&drives[3]).unwrap();
    let s = open6(dir.path());
    check(&s, "two drives lost");
}

/// Where shard `index` of a sharded version lives.
fn shard_file(drives: &[PathBuf], part: &PartData, index: usize) -> PathBuf {
    let PartData::Sharded { id, rot, .. } = *part else {
        panic!("not sharded")
    };
    shard_path(&drives[(index + rot as usize) % drives.len()], &id)
}

fn flip(path: &Path, offset: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    for b in &mut bytes[offset..offset + 8] {
        *b ^= 0x5a;
    }
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn corrupt_shard_blocks_are_detected_and_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let drives = drive_paths(dir.path(), N);
    let s = open6(dir.path());
    s.create_bucket(BUCKET).unwrap();
    let data = bytes(9, 100_000);
    let v = put(&s, BUCKET, "victim", &data);
    let part = v.parts[0].data;
    let shard_len = 8192 / 4 + 4;

    // A damaged parity block: reads never touch it, check sees it and changes nothing.
    let parity = shard_file(&drives, &part, 4);
    let parity_orig = std::fs::read(&parity).unwrap();
    flip(&parity, HEADER_LEN + 3 * shard_len + 100);
    assert!(get(&s, BUCKET, "victim").unwrap() == data);
    let r = s.check().unwrap();
    assert_eq!(r.shards_bad, 1, "{r:?}");
    assert!(r.unrecoverable.is_empty() && !r.clean(), "{r:?}");
    assert!(
        std::fs::read(&parity).unwrap() != parity_orig,
        "check must not repair"
    );
    let r = s.heal().unwrap();
    assert_eq!((r.shards_bad, r.shards_healed), (1, 1), "{r:?}");
    assert!(s.check().unwrap().clean());
    let healed = std::fs::read(&parity).unwrap();
    assert!(
        healed[..parity_orig.len()] == parity_orig[..],
        "parity rebuilt exactly"
    );

    // A damaged data block in the open store: the read reconstructs it.
    let shard0 = shard_file(&drives, &part, 0);
    let orig0 = std::fs::read(&shard0).unwrap();
    flip(&shard0, HEADER_LEN + 10);
    assert!(get(&s, BUCKET, "victim").unwrap() == data);
    assert!(get_range(&s, BUCKET, "victim", 5, 20).unwrap() == data[5..20]);
    let r = s.heal().unwrap();
    assert!(r.unrecoverable.is_empty(), "{r:?}");
    let r = s.check().unwrap();
    assert!(r.clean(), "{r:?}");
    let healed = std::fs::read(&shard0).unwrap();
    assert!(
        healed[..orig0.len()] == orig0[..],
        "data shard rebuilt exactly"
    );

    // A damaged header and a damaged last (short) block on two other drives.
    let s1 = shard_file(&drives, &part, 1);
    let s2 = shard_file(&drives, &part, 2);
    let last = std::fs::metadata(&s2).unwrap().len() as usize - 12;
    flip(&s1, 20);
    flip(&s2, last);
    assert!(get(&s, BUCKET, "victim").unwrap() == data);
    s.heal().unwrap();
    assert!(s.check().unwrap().clean());
    assert!(get(&s, BUCKET, "victim").unwrap() == data);
}

/// More than M shards damaged, but each block still has K good ones: readable, so healable.
#[test]
fn damage_spread_over_blocks_is_healed() {
    let dir = tempfile::tempdir().unwrap();
    let drives = drive_paths(dir.path(), N);
    let s = open6(dir.path());
    s.create_bucket(BUCKET).unwrap();
    let data = bytes(11, 100_000);
    let v = put(&s, BUCKET, "spread", &data);
    let part = v.parts[0].data;
    let shard_len = 8192 / 4 + 4;
    for (shard, block) in [(0usize, 0usize), (1, 1), (2, 2), (4, 3)] {
        flip(
            &shard_file(&drives, &part, shard),
            HEADER_LEN + block * shard_len + 40,
        );
    }
    let r = s.check().unwrap();
    assert_eq!(r.shards_bad, 4, "{r:?}");
    assert!(
        r.unrecoverable.is_empty(),
        "every block has 4 good shards: {r:?}"
    );
    assert!(get(&s, BUCKET, "spread").unwrap() == data);
    let r = s.heal().unwrap();
    assert!(r.unrecoverable.is_empty(), "heal: {r:?}");
    let r = s.check().unwrap();
    assert!(r.clean(), "check after heal: {r:?}");
}

/// Beyond M damaged shards in one block, reads fail loudly instead of returning wrong bytes.
#[test]
fn unrecoverable_damage_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let drives = drive_paths(dir.path(), N);
    let s = open6(dir.path());
    s.create_bucket(BUCKET).unwrap();
    let data = bytes(12, 100_000);
    let v = put(&s, BUCKET, "lost", &data);
    let part = v.parts[0].data;
    for shard in [0, 1, 5] {
        flip(&shard_file(&drives, &part, shard), HEADER_LEN + 30);
    }
    match get(&s, BUCKET, "lost") {
        Err(Error::Corrupt(_)) => {}
        other => panic!("expected Corrupt, got {:?}", other.map(|d| d.len())),
    }
    // Blocks other than the first are still readable.
    assert!(get_range(&s, BUCKET, "lost", 9000, 20_000).unwrap() == data[9000..20_000]);
    let r = s.check().unwrap();
    assert_eq!(r.unrecoverable.len(), 1, "{r:?}");
    assert!(!r.clean());
}

/// Adjacent ranges that split a block share one read of it: the second range's part of
/// the edge block comes from the first range's read, not from the drive, while a read of
/// the whole block still goes to the drive and still finds damage there.
#[test]
fn the_block_at_the_edge_of_two_ranges_is_read_once() {
    let dir = tempfile::tempdir().unwrap();
    let drives = drive_paths(dir.path(), 1);
    let s = open(dir.path(), 1, Some("1+0"), BLOCK);
    s.create_bucket(BUCKET).unwrap();
    // Above the inline limit (64 KiB), so it has shard files.
    let data = bytes(13, 10 * BLOCK as usize);
    let v = put(&s, BUCKET, "edges", &data);
    let edge = 12_000;
    assert!(get_range(&s, BUCKET, "edges", 0, edge).unwrap() == data[..edge as usize]);
    // Damage block 1 on its only drive: no parity can mask it.
    let block1 = HEADER_LEN + BLOCK as usize + 4;
    flip(&shard_file(&drives, &v.parts[0].data, 0), block1 + 5000);
    let end = data.len() as u64;
    assert!(get_range(&s, BUCKET, "edges", edge, end).unwrap() == data[edge as usize..]);
    match get(&s, BUCKET, "edges") {
        Err(Error::Corrupt(_)) => {}
        other => panic!("expected Corrupt, got {:?}", other.map(|d| d.len())),
    }
}

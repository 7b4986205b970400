//! Helpers shared by the engine's integration tests.
#![allow(dead_code)]

use cybs3_engine::{DataId, Error, ListQuery, ObjectMeta, ObjectVersion, Store, StoreConfig};
use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// `n` drive directories under `root` (not created: the store creates them).
pub fn drive_paths(root: &Path, n: usize) -> Vec<PathBuf> {
    (0..n).map(|i| root.join(format!("d{i}"))).collect()
}

pub fn config(root: &Path, n: usize, ec: Option<&str>, block_size: u32) -> StoreConfig {
    let mut cfg = StoreConfig::new(drive_paths(root, n));
    cfg.ec = ec.map(|s| s.parse().expect("valid ec"));
    cfg.block_size = Some(block_size);
    cfg
}

pub fn open(root: &Path, n: usize, ec: Option<&str>, block_size: u32) -> Store {
    Store::open(config(root, n, ec, block_size)).expect("open store")
}

/// Deterministic pseudo-random bytes (xorshift64).
pub fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}

pub fn etag_of(data: &[u8]) -> String {
    format!("{:08x}-{}", fnv1a(data), data.len())
}

/// FNV-1a: a cheap content fingerprint for ETags (the engine only stores them).
fn fnv1a(data: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for &b in data {
        h ^= b as u32;
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// Write `data` in `chunk`-sized `write` calls and finish.
pub fn put_chunked(
    s: &Store,
    bucket: &str,
    key: &str,
    data: &[u8],
    chunk: usize,
) -> Result<ObjectVersion, Error> {
    let mut w = s.put(bucket, key)?;
    for c in data.chunks(chunk.max(1)) {
        w.write(c)?;
    }
    assert_eq!(w.size(), data.len() as u64, "writer counts every byte");
    w.finish(ObjectMeta {
        etag: etag_of(data),
        ..ObjectMeta::default()
    })
    .map(|w| w.version)
}

pub fn put(s: &Store, bucket: &str, key: &str, data: &[u8]) -> ObjectVersion {
    put_chunked(s, bucket, key, data, usize::MAX).expect("put")
}

fn io_to_engine(e: std::io::Error) -> Error {
    match e.into_inner() {
        Some(inner) => match inner.downcast::<Error>() {
            Ok(engine) => *engine,
            Err(other) => Error::Io(std::io::Error::other(other)),
        },
        None => Error::Io(std::io::Error::other("read failed")),
    }
}

/// The current version's bytes, through `std::io::Read`.
pub fn get(s: &Store, bucket: &str, key: &str) -> Result<Vec<u8>, Error> {
    get_version(s, bucket, key, None)
}

pub fn get_version(
    s: &Store,
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
) -> Result<Vec<u8>, Error> {
    let r = s.open_object(bucket, key, version_id)?;
    let size = r.size();
    let mut out = Vec::new();
    r.all().read_to_end(&mut out).map_err(io_to_engine)?;
    assert_eq!(
        out.len() as u64,
        size,
        "{key}: read length matches the version size"
    );
    Ok(out)
}

/// Bytes `start..end` through `next_chunk`, checking each chunk stays within one block.
pub fn get_range(
    s: &Store,
    bucket: &str,
    key: &str,
    start: u64,
    end: u64,
) -> Result<Vec<u8>, Error> {
    let block = s.block_size() as u64;
    let mut rr = s.open_object(bucket, key, None)?.range(start, end)?;
    let mut out = Vec::new();
    let mut pos = start;
    while let Some(c) = rr.next_chunk()? {
        assert!(!c.is_empty(), "next_chunk never yields an empty chunk");
        // A chunk never crosses a block boundary (within a part).
        assert!(
            c.len() as u64 <= block,
            "chunk of {} bytes > block",
            c.len()
        );
        pos += c.len() as u64;
        out.extend_from_slice(&c);
        assert_eq!(rr.remaining(), end - pos);
    }
    assert_eq!(pos, end);
    Ok(out)
}

/// Everything a paginated listing returns: (keys with sizes, common prefixes), in order.
/// Checks page invariants along the way.
pub fn list_all(
    s: &Store,
    bucket: &str,
    prefix: &str,
    delimiter: Option<&str>,
    max: usize,
) -> (Vec<(String, u64)>, Vec<String>) {
    let mut objects = Vec::new();
    let mut prefixes = Vec::new();
    let mut after: Option<String> = None;
    let mut seen = BTreeSet::new();
    for _round in 0..10_000 {
        let page = s
            .list(
                bucket,
                &ListQuery {
                    prefix: prefix.to_string(),
                    delimiter: delimiter.map(str::to_string),
                    after: after.clone(),
                    max,
                },
            )
            .expect("list");
        let n = page.objects.len() + page.prefixes.len();
        assert!(n <= max, "page of {n} entries with max {max}");
        let mut page_names: Vec<String> = page
            .objects
            .iter()
            .map(|o| o.key.clone())
            .chain(page.prefixes.iter().cloned())
            .collect();
        page_names.sort();
        for name in &page_names {
            assert!(
                name.starts_with(prefix),
                "{name:?} outside prefix {prefix:?}"
            );
            if let Some(a) = &after {
                assert!(name > a, "{name:?} not after continuation {a:?}");
            }
            assert!(seen.insert(name.clone()), "{name:?} listed twice");
        }
        if page.truncated {
            assert!(n > 0, "a truncated page must make progress");
            assert_eq!(
                page.next.as_ref(),
                page_names.last(),
                "next is the last entry"
            );
        }
        for o in &page.objects {
            assert!(
                !o.delete_marker,
                "listing shows a delete marker for {}",
                o.key
            );
            objects.push((o.key.clone(), o.size));
        }
        prefixes.extend(page.prefixes.iter().cloned());
        if !page.truncated {
            return (objects, prefixes);
        }
        after = page.next.clone();
    }
    panic!("listing never ended");
}

/// Path of a data id's shard file on a drive.
pub fn shard_path(drive: &Path, id: &DataId) -> PathBuf {
    let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
    drive.join("data").join(&hex[..2]).join(hex)
}

pub fn sharded_id(v: &ObjectVersion) -> Option<DataId> {
    v.parts.first()?.data.shards().map(|l| l.id)
}

/// Every regular file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let t = e.file_type().unwrap();
            if t.is_dir() {
                stack.push(e.path());
            } else if t.is_file() {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

/// Number of shard files under every drive's `data/`.
pub fn count_shards(drives: &[PathBuf]) -> usize {
    drives
        .iter()
        .map(|d| files_under(&d.join("data")).len())
        .sum()
}

/// Poll `cond` for up to `within`.
pub fn eventually(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    loop {
        if cond() {
            return true;
        }
        if t.elapsed() > within {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

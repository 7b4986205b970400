//! `cybs3 bench engine`: the storage engine in-process (erasure coding, large and small
//! PUT and GET, listing) next to memcpy and the raw disk measured in the same run.

use crate::machine::settle_disk;
use crate::report::{listing_row, print, row, Row};
use crate::timing::parallel;
use aligned::Aligned;
use anyhow::{Context, Result};
use engine::{Ec, Encoder, ListQuery, ObjectMeta, Store, StoreConfig};
use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(clap::Args, Debug)]
pub struct EngineArgs {
    /// Directory for the scratch store and reference file (on the disk you want to measure)
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Size of the large object, MiB
    #[arg(long, default_value_t = 1024)]
    size_mib: usize,
    /// Number of keys for the listing benchmark
    #[arg(long, default_value_t = 1_000_000)]
    list_keys: usize,
    /// Small (4 KiB) operations per concurrency level
    #[arg(long, default_value_t = 20_000)]
    small_ops: usize,
    /// Print one JSON document
    #[arg(long)]
    json: bool,
}

pub fn run(args: EngineArgs) -> Result<()> {
    let base = args
        .dir
        .clone()
        .unwrap_or_else(std::env::temp_dir)
        .join(format!("cybs3-bench-{}", std::process::id()));
    std::fs::create_dir_all(&base).with_context(|| format!("cannot create {}", base.display()))?;
    let result = measure(&args, &base);
    let _ = std::fs::remove_dir_all(&base);
    print(
        serde_json::json!({ "bench": "engine" }),
        &result?,
        args.json,
    );
    Ok(())
}

fn measure(args: &EngineArgs, base: &Path) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    let mib = 1u64 << 20;
    let size = args.size_mib as u64 * mib;
    let pattern: Vec<u8> = (0..mib as usize).map(|i| (i * 131 % 251) as u8).collect();

    let memcpy = memcpy_gbs();
    rows.push(row("memcpy (256 MiB)", memcpy, "GB/s", None));

    settle_disk();
    let (raw_write, raw_read) = raw_disk(base, size, &pattern)?;
    rows.push(row(
        "raw direct write+fsync, 6 files (1.5x size)",
        raw_write,
        "MB/s",
        None,
    ));
    rows.push(row("raw direct read, 6 files", raw_read, "MB/s", None));

    let encode = encode_gbs(&pattern);
    rows.push(row(
        "erasure encode 4+2, one core",
        encode,
        "GB/s",
        Some((encode / memcpy, "memcpy")),
    ));

    let drives: Vec<PathBuf> = (0..6).map(|i| base.join(format!("d{i}"))).collect();
    let mut cfg = StoreConfig::new(drives);
    cfg.ec = Some(Ec { data: 4, parity: 2 });
    let store = Store::open(cfg)?;
    store.create_bucket("bench")?;

    settle_disk();
    let t = Instant::now();
    let mut w = store.put("bench", "large")?;
    for _ in 0..args.size_mib {
        w.write(&pattern)?;
    }
    w.finish(ObjectMeta::default())?;
    let put = size as f64 / t.elapsed().as_secs_f64() / 1e6;
    // 4+2 writes 1.5 bytes to disk per object byte.
    rows.push(row(
        "large PUT 4+2 (object bytes)",
        put,
        "MB/s",
        Some((put * 1.5 / raw_write, "raw write (after 1.5x parity)")),
    ));

    let t = Instant::now();
    let mut r = store.open_object("bench", "large", None)?.all();
    let mut n = 0u64;
    while let Some(chunk) = r.next_chunk()? {
        n += chunk.len() as u64;
    }
    let get = n as f64 / t.elapsed().as_secs_f64() / 1e6;
    rows.push(row(
        "large GET 4+2",
        get,
        "MB/s",
        Some((get / raw_read, "raw read")),
    ));
    rows.extend(transition(&store, base, size)?);
    store.delete("bench", "large", None, false)?;

    let small = vec![7u8; 4096];
    for conc in [1usize, 32] {
        let ops = if conc == 1 {
            (args.small_ops / 10).max(100)
        } else {
            args.small_ops
        };
        let rate = parallel(conc, ops, |i| {
            let mut w = store.put("bench", &format!("small/{conc}/{i:08}"))?;
            w.write(&small)?;
            w.finish(ObjectMeta::default())?;
            Ok(())
        })?
        .rate();
        rows.push(row(
            &format!("4 KiB PUT, concurrency {conc}"),
            rate,
            "ops/s",
            None,
        ));
        // The first read of each object takes its shards from K drives; reads again are
        // served from the engine's memory of recent small objects (inline_cache.rs).
        // Each is a row; the second reads every object nine times more for a steady rate.
        let read = |i: usize| -> Result<()> {
            let mut r = store
                .open_object("bench", &format!("small/{conc}/{:08}", i % ops), None)?
                .all();
            let mut sink = Vec::with_capacity(4096);
            r.read_to_end(&mut sink)?;
            Ok(())
        };
        for (what, reads) in [("first read", ops), ("read again", ops * 9)] {
            let rate = parallel(conc, reads, read)?.rate();
            rows.push(row(
                &format!("4 KiB GET, concurrency {conc}, {what}"),
                rate,
                "ops/s",
                None,
            ));
        }
    }

    // The same small writes on a single drive: one metadata copy instead of six.
    let single = Store::open(StoreConfig::new(vec![base.join("single")]))?;
    single.create_bucket("bench")?;
    let rate = parallel(32, args.small_ops, |i| {
        let mut w = single.put("bench", &format!("small/{i:08}"))?;
        w.write(&small)?;
        w.finish(ObjectMeta::default())?;
        Ok(())
    })?
    .rate();
    rows.push(row(
        "4 KiB PUT, concurrency 32, one drive",
        rate,
        "ops/s",
        None,
    ));
    drop(single);

    rows.push(small_disk_use(base, (args.small_ops / 10).max(100))?);

    store.create_bucket("list")?;
    let fill = parallel(32, args.list_keys, |i| {
        store
            .put("list", &format!("k/{i:09}"))?
            .finish(ObjectMeta::default())?;
        Ok(())
    })?
    .rate();
    rows.push(row(
        "0-byte PUT to fill listing, concurrency 32",
        fill,
        "ops/s",
        None,
    ));
    let t = Instant::now();
    let mut q = ListQuery {
        prefix: "k/".into(),
        max: 1000,
        ..ListQuery::default()
    };
    let mut listed = 0usize;
    loop {
        let page = store.list("list", &q)?;
        listed += page.objects.len();
        if !page.truncated {
            break;
        }
        q.after = page.next;
    }
    rows.push(listing_row("list", listed, args.list_keys, t.elapsed())?);
    Ok(rows)
}

/// The large object moved to a second 4+2 pool by a lifecycle transition, next to a
/// plain copy of its shard files between the same drives (read, write, fsync; one
/// thread per drive).
fn transition(store: &Store, base: &Path, size: u64) -> Result<Vec<Row>> {
    let drives: Vec<PathBuf> = (0..6).map(|i| base.join(format!("p{i}"))).collect();
    store.add_pool("second", drives.clone(), Some(Ec { data: 4, parity: 2 }))?;
    store.add_storage_class("COLD", engine::Tier::Pool("second".into()), false)?;
    let v = store.head("bench", "large", None)?;
    let copies: Vec<PathBuf> = drives.iter().map(|d| d.join("copy")).collect();
    // Both read from the disk, not from memory.
    crate::machine::drop_caches()?;
    let t = Instant::now();
    // One copy per drive at once, as the transition writes its shards.
    std::thread::scope(|s| {
        let copies: Vec<_> = copies
            .iter()
            .enumerate()
            .map(|(i, to)| {
                s.spawn(move || -> Result<()> {
                    for sub in std::fs::read_dir(base.join(format!("d{i}")).join("data"))? {
                        for f in std::fs::read_dir(sub?.path())? {
                            std::fs::copy(f?.path(), to)?;
                            std::fs::File::open(to)?.sync_all()?;
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        copies
            .into_iter()
            .try_for_each(|c| c.join().expect("copy thread"))
    })?;
    let copy = size as f64 / t.elapsed().as_secs_f64() / 1e6;
    for c in &copies {
        std::fs::remove_file(c)?;
    }
    crate::machine::drop_caches()?;
    let t = Instant::now();
    store.transition("bench", "large", &v.version_id, "COLD")?;
    let moved = size as f64 / t.elapsed().as_secs_f64() / 1e6;
    Ok(vec![
        row(
            "shard files copied to a second pool (reference, object bytes)",
            copy,
            "MB/s",
            None,
        ),
        row(
            "large transition to a second 4+2 pool",
            moved,
            "MB/s",
            Some((moved / copy, "plain copy")),
        ),
    ])
}

/// Disk taken by `count` objects of 1 to 64 KiB on a 4+2 store, per object byte, next to
/// what erasure coding promises: (K+M)/K = 1.5. Each drive keeps its own shard of them
/// and every record (names, versions, sizes), which is the per-object overhead.
fn small_disk_use(base: &Path, count: usize) -> Result<Row> {
    let dir = base.join("small-disk");
    let drives: Vec<PathBuf> = (0..6).map(|i| dir.join(format!("d{i}"))).collect();
    let mut cfg = StoreConfig::new(drives);
    cfg.ec = Some(Ec { data: 4, parity: 2 });
    let store = Store::open(cfg)?;
    store.create_bucket("bench")?;
    let empty = disk_bytes(&dir)?;
    let size = |i: usize| 1024 + (i * 7919) % (63 * 1024 + 1);
    let data = vec![0x5au8; 64 * 1024];
    parallel(32, count, |i| {
        let mut w = store.put("bench", &format!("mixed/{i:08}"))?;
        w.write(&data[..size(i)])?;
        w.finish(ObjectMeta::default())?;
        Ok(())
    })?;
    drop(store);
    let used = disk_bytes(&dir)? - empty;
    let raw: usize = (0..count).map(size).sum();
    let ratio = used as f64 / raw as f64;
    Ok(row(
        &format!("{count} objects of 1-64 KiB on disk, 4+2"),
        ratio,
        "x bytes",
        Some((ratio / 1.5, "(K+M)/K = 1.5x")),
    ))
}

/// Bytes allocated on disk under `dir`.
fn disk_bytes(dir: &Path) -> Result<u64> {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let e = e?;
            let m = e.metadata()?;
            if m.is_dir() {
                stack.push(e.path());
            } else {
                total += m.blocks() * 512;
            }
        }
    }
    Ok(total)
}

fn memcpy_gbs() -> f64 {
    let src = vec![1u8; 256 << 20];
    let mut dst = vec![0u8; 256 << 20];
    dst.copy_from_slice(&src);
    let t = Instant::now();
    for _ in 0..4 {
        dst.copy_from_slice(std::hint::black_box(&src));
    }
    std::hint::black_box(&dst);
    4.0 * src.len() as f64 / t.elapsed().as_secs_f64() / 1e9
}

/// The physical reference: what the engine writes for `size` object bytes at 4+2
/// (1.5 x `size`), as plain files on the same disk, one per drive, written and
/// fsynced in parallel like shards; then read back the same way. Both around the page
/// cache (`O_DIRECT`), as the engine moves shards. MB/s of disk bytes.
fn raw_disk(base: &Path, size: u64, block: &[u8]) -> Result<(f64, f64)> {
    let files: Vec<PathBuf> = (0..6).map(|i| base.join(format!("raw{i}"))).collect();
    let per_file = size * 3 / 2 / files.len() as u64;
    let total = per_file * files.len() as u64;
    let direct =
        |options: &mut OpenOptions, path: &Path| options.custom_flags(libc::O_DIRECT).open(path);
    let t = Instant::now();
    std::thread::scope(|s| {
        let writers: Vec<_> = files
            .iter()
            .map(|path| {
                s.spawn(move || -> Result<()> {
                    let mut f = direct(
                        OpenOptions::new().write(true).create(true).truncate(true),
                        path,
                    )?;
                    let mut page = Aligned::new(block.len());
                    let page = &mut page[..block.len()];
                    page.copy_from_slice(block);
                    let mut done = 0;
                    while done < per_file {
                        f.write_all(page)?;
                        done += block.len() as u64;
                    }
                    f.sync_all()?;
                    Ok(())
                })
            })
            .collect();
        writers
            .into_iter()
            .try_for_each(|h| h.join().expect("raw writer"))
    })?;
    let write = total as f64 / t.elapsed().as_secs_f64() / 1e6;
    let t = Instant::now();
    std::thread::scope(|s| {
        let readers: Vec<_> = files
            .iter()
            .map(|path| {
                s.spawn(move || -> Result<()> {
                    let mut f = direct(OpenOptions::new().read(true), path)?;
                    let mut page = Aligned::new(block.len());
                    while f.read(&mut page[..block.len()])? > 0 {}
                    Ok(())
                })
            })
            .collect();
        readers
            .into_iter()
            .try_for_each(|h| h.join().expect("raw reader"))
    })?;
    let read = total as f64 / t.elapsed().as_secs_f64() / 1e6;
    for f in &files {
        std::fs::remove_file(f)?;
    }
    Ok((write, read))
}

fn encode_gbs(block: &[u8]) -> f64 {
    let mut enc = Encoder::new(4, 2);
    let rounds = 1024;
    let t = Instant::now();
    for _ in 0..rounds {
        enc.encode(std::hint::black_box(block)).expect("encode");
    }
    rounds as f64 * block.len() as f64 / t.elapsed().as_secs_f64() / 1e9
}

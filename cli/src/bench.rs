//! `cybs3 bench engine`: engine throughput next to physical references measured in the same run.

use anyhow::{Context, Result};
use engine::{Ec, Encoder, ListQuery, ObjectMeta, Store, StoreConfig};
use serde::Serialize;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

#[derive(clap::Subcommand, Debug)]
pub enum BenchCmd {
    /// The storage engine in-process: erasure coding, PUT/GET, small objects, listing
    Engine(EngineArgs),
}

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

#[derive(Serialize)]
struct Row {
    name: String,
    value: f64,
    unit: &'static str,
    /// Fraction of the physical reference this is compared with, if any.
    ratio: Option<f64>,
    reference: Option<&'static str>,
}

pub fn run(cmd: BenchCmd) -> Result<()> {
    match cmd {
        BenchCmd::Engine(args) => engine_bench(args),
    }
}

fn engine_bench(args: EngineArgs) -> Result<()> {
    let base = args
        .dir
        .clone()
        .unwrap_or_else(std::env::temp_dir)
        .join(format!("cybs3-bench-{}", std::process::id()));
    std::fs::create_dir_all(&base).with_context(|| format!("cannot create {}", base.display()))?;
    let result = measure(&args, &base);
    let _ = std::fs::remove_dir_all(&base);
    let rows = result?;
    if args.json {
        println!(
            "{}",
            serde_json::json!({ "bench": "engine", "results": rows })
        );
    } else {
        println!(
            "{:<44} {:>14}  {:<8} vs reference",
            "measure", "value", "unit"
        );
        for r in rows {
            let vs = match (r.ratio, r.reference) {
                (Some(x), Some(name)) => format!("{:.0} % of {name}", x * 100.0),
                _ => String::new(),
            };
            println!("{:<44} {:>14.1}  {:<8} {vs}", r.name, r.value, r.unit);
        }
    }
    Ok(())
}

fn measure(args: &EngineArgs, base: &Path) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    let mib = 1u64 << 20;
    let size = args.size_mib as u64 * mib;
    let pattern: Vec<u8> = (0..mib as usize).map(|i| (i * 131 % 251) as u8).collect();

    let memcpy = memcpy_gbs();
    rows.push(row("memcpy (256 MiB)", memcpy, "GB/s", None));

    let (raw_write, raw_read) = raw_disk(base, size, &pattern)?;
    rows.push(row("raw write+fsync", raw_write, "MB/s", None));
    rows.push(row("raw sequential read", raw_read, "MB/s", None));

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
    store.delete("bench", "large", None)?;

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
        })?;
        rows.push(row(
            &format!("4 KiB PUT, concurrency {conc}"),
            rate,
            "ops/s",
            None,
        ));
        let rate = parallel(conc, ops, |i| {
            let mut r = store
                .open_object("bench", &format!("small/{conc}/{i:08}"), None)?
                .all();
            let mut sink = Vec::with_capacity(4096);
            r.read_to_end(&mut sink)?;
            Ok(())
        })?;
        rows.push(row(
            &format!("4 KiB GET, concurrency {conc}"),
            rate,
            "ops/s",
            None,
        ));
    }

    // The same small writes on a single drive: one metadata copy instead of six.
    let single = Store::open(StoreConfig::new(vec![base.join("single")]))?;
    single.create_bucket("bench")?;
    let rate = parallel(32, args.small_ops, |i| {
        let mut w = single.put("bench", &format!("small/{i:08}"))?;
        w.write(&small)?;
        w.finish(ObjectMeta::default())?;
        Ok(())
    })?;
    rows.push(row(
        "4 KiB PUT, concurrency 32, one drive",
        rate,
        "ops/s",
        None,
    ));
    drop(single);

    store.create_bucket("list")?;
    let fill = parallel(32, args.list_keys, |i| {
        store
            .put("list", &format!("k/{i:09}"))?
            .finish(ObjectMeta::default())?;
        Ok(())
    })?;
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
    anyhow::ensure!(
        listed == args.list_keys,
        "listed {listed} of {} keys",
        args.list_keys
    );
    rows.push(row(
        &format!("list {} keys (pages of 1000)", args.list_keys),
        listed as f64 / t.elapsed().as_secs_f64(),
        "keys/s",
        None,
    ));
    Ok(rows)
}

fn row(name: &str, value: f64, unit: &'static str, vs: Option<(f64, &'static str)>) -> Row {
    Row {
        name: name.to_string(),
        value,
        unit,
        ratio: vs.map(|v| v.0),
        reference: vs.map(|v| v.1),
    }
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

/// Sequential write of `size` bytes with one fsync at the end, then a sequential read.
fn raw_disk(base: &Path, size: u64, block: &[u8]) -> Result<(f64, f64)> {
    let path = base.join("raw");
    let t = Instant::now();
    let mut f = File::create(&path)?;
    let mut done = 0;
    while done < size {
        f.write_all(block)?;
        done += block.len() as u64;
    }
    f.sync_all()?;
    let write = size as f64 / t.elapsed().as_secs_f64() / 1e6;
    let t = Instant::now();
    let mut f = File::open(&path)?;
    let mut buf = vec![0u8; block.len()];
    let mut read = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        read += n as u64;
    }
    let read = read as f64 / t.elapsed().as_secs_f64() / 1e6;
    std::fs::remove_file(&path)?;
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

/// Run `op(0..ops)` on `threads` threads; operations per second.
fn parallel(threads: usize, ops: usize, op: impl Fn(usize) -> Result<()> + Sync) -> Result<f64> {
    let next = AtomicUsize::new(0);
    let t = Instant::now();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| -> Result<()> {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= ops {
                            return Ok(());
                        }
                        op(i)?;
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .try_for_each(|h| h.join().expect("bench thread"))
    })?;
    Ok(ops as f64 / t.elapsed().as_secs_f64())
}

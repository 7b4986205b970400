//! `cybs3 bench engine|s3|sync|mount`: throughput next to references measured in the same run.

mod mount;
mod s3;
mod sync;

use anyhow::{Context, Result};
use engine::{Aligned, Ec, Encoder, ListQuery, ObjectMeta, Store, StoreConfig};
use serde::Serialize;
use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[derive(clap::Subcommand, Debug)]
pub enum BenchCmd {
    /// The storage engine in-process: erasure coding, PUT/GET, small objects, listing
    Engine(EngineArgs),
    /// An S3 endpoint over the network with the CLI's S3 client: large and small objects,
    /// latencies, listing; the engine's own GET measured alongside as the reference
    S3(s3::S3Args),
    /// `cybs3 sync` of large and of small files, up and down, encrypted and plain, with the
    /// transfer engine's raw S3 throughput and the local disk measured alongside
    Sync(sync::SyncBenchArgs),
    /// `cybs3 mount` of a plain and an encrypted vault on a scratch local server: large
    /// file write and read, 4 KiB random reads, and create/stat/ls/unlink of many small
    /// files, with the local disk and the vault's own upload and download alongside
    Mount(mount::MountBenchArgs),
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
    /// Per-operation latency percentiles, milliseconds, where operations were timed one by one.
    #[serde(skip_serializing_if = "Option::is_none")]
    p50_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    p99_ms: Option<f64>,
}

pub fn run(cmd: BenchCmd) -> Result<()> {
    match cmd {
        BenchCmd::Engine(args) => engine_bench(args),
        BenchCmd::S3(args) => s3::run(args),
        BenchCmd::Sync(args) => sync::run(args),
        BenchCmd::Mount(args) => mount::run(args),
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
    print(
        serde_json::json!({ "bench": "engine" }),
        &result?,
        args.json,
    );
    Ok(())
}

/// The rows as a table, or as one JSON document: `head` with `results` added.
fn print(mut head: serde_json::Value, rows: &[Row], json: bool) {
    if json {
        head["results"] = serde_json::json!(rows);
        println!("{head}");
        return;
    }
    let latencies = rows.iter().any(|r| r.p50_ms.is_some());
    // Names wider than the usual column widen it for the whole table.
    let w = rows.iter().map(|r| r.name.len()).max().unwrap_or(0).max(44);
    if latencies {
        println!(
            "{:<w$} {:>14}  {:<8} {:>9} {:>9}  vs reference",
            "measure", "value", "unit", "p50 ms", "p99 ms"
        );
    } else {
        println!(
            "{:<w$} {:>14}  {:<8} vs reference",
            "measure", "value", "unit"
        );
    }
    for r in rows {
        let vs = match (r.ratio, r.reference) {
            (Some(x), Some(name)) => format!("{:.0} % of {name}", x * 100.0),
            _ => String::new(),
        };
        if latencies {
            let ms = |v: Option<f64>| v.map(|v| format!("{v:.2}")).unwrap_or_default();
            println!(
                "{:<w$} {:>14.1}  {:<8} {:>9} {:>9}  {vs}",
                r.name,
                r.value,
                r.unit,
                ms(r.p50_ms),
                ms(r.p99_ms)
            );
        } else {
            println!("{:<w$} {:>14.1}  {:<8} {vs}", r.name, r.value, r.unit);
        }
    }
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
        })?
        .rate();
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
        })?
        .rate();
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
    })?
    .rate();
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

/// The listing rate, once every key is known to have been listed.
fn listing_row(
    what: &str,
    listed: usize,
    expected: usize,
    took: std::time::Duration,
) -> Result<Row> {
    anyhow::ensure!(listed == expected, "listed {listed} of {expected} keys");
    Ok(row(
        &format!("{what} {expected} keys (pages of 1000)"),
        listed as f64 / took.as_secs_f64(),
        "keys/s",
        None,
    ))
}

fn row(name: &str, value: f64, unit: &'static str, vs: Option<(f64, &'static str)>) -> Row {
    Row {
        name: name.to_string(),
        value,
        unit,
        ratio: vs.map(|v| v.0),
        reference: vs.map(|v| v.1),
        p50_ms: None,
        p99_ms: None,
    }
}

/// A row for a rate of timed operations, with their latency percentiles.
fn timed_row(name: &str, t: &Timing) -> Row {
    Row {
        p50_ms: Some(t.percentile_ms(50.0)),
        p99_ms: Some(t.percentile_ms(99.0)),
        ..row(name, t.rate(), "ops/s", None)
    }
}

/// What a run of operations took: the wall time and each operation's own time.
struct Timing {
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Timing {
    fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile_ms(&self, p: f64) -> f64 {
        let mut l = self.latencies.clone();
        l.sort_unstable();
        match l.len() {
            0 => 0.0,
            n => {
                let i = ((p / 100.0 * n as f64).ceil() as usize).clamp(1, n) - 1;
                l[i].as_secs_f64() * 1e3
            }
        }
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
/// Let earlier writes reach the disk first, so each measurement pays only for its own.
fn settle_disk() {
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
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
                    let page = &mut page.as_mut_slice()[..block.len()];
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
                    while f.read(&mut page.as_mut_slice()[..block.len()])? > 0 {}
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

/// Run `op(0..ops)` on `threads` threads, each taking the next index from a shared counter.
fn parallel(threads: usize, ops: usize, op: impl Fn(usize) -> Result<()> + Sync) -> Result<Timing> {
    let next = AtomicUsize::new(0);
    let t = Instant::now();
    let per_thread = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| -> Result<Vec<Duration>> {
                    let mut lat = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= ops {
                            return Ok(lat);
                        }
                        let start = Instant::now();
                        op(i)?;
                        lat.push(start.elapsed());
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("bench thread"))
            .collect::<Result<Vec<_>>>()
    })?;
    Ok(Timing {
        elapsed: t.elapsed(),
        latencies: per_thread.concat(),
    })
}

/// The middle value of `v`, or the mean of the middle two of an even count; `v` must not
/// be empty.
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let half = v.len() / 2;
    if v.len().is_multiple_of(2) {
        (v[half - 1] + v[half]) / 2.0
    } else {
        v[half]
    }
}

/// The 1-minute load average, so results can be judged against what else was running.
pub(crate) fn loadavg() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

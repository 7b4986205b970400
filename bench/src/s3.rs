//! `cybs3 bench s3`: a warp-like load generator over the CLI's own S3 client.
//!
//! Everything it creates lives in one fresh bucket `cybs3-bench-<random>`, emptied and
//! removed at the end whether the measurements succeeded, failed or were interrupted.

use crate::machine::{drop_caches, loadavg};
use crate::report::{listing_row, print, row, timed_row, Row};
use crate::timing::Timing;
use crate::Cli;
use anyhow::{bail, Context, Result};
use aws_sdk_s3::primitives::{ByteStream, SdkBody};
use aws_sdk_s3::types::{Delete, ObjectIdentifier, ServerSideEncryption};
use aws_sdk_s3::Client;
use bytes::Bytes;
use engine::{ObjectMeta, Store, StoreConfig};
use hyper::body::{Body, Frame, SizeHint};
use rand::distr::{Alphanumeric, SampleString};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

const MIB: usize = 1 << 20;
const SMALL: usize = 4096;

#[derive(clap::Args, Debug)]
pub struct S3Args {
    /// S3 endpoint URL; default: the local server recorded under the data directory
    #[arg(long, value_name = "URL")]
    endpoint: Option<String>,
    /// Data directory of the local server (for its address and root keys)
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Access key; default: AWS_ACCESS_KEY_ID, else the local server's root key
    #[arg(long, env = "AWS_ACCESS_KEY_ID", hide_env_values = true)]
    access_key: Option<String>,
    /// Secret key; default: AWS_SECRET_ACCESS_KEY, else the local server's root secret
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    secret_key: Option<String>,
    /// Size of each large object, MiB
    #[arg(long, default_value_t = 64)]
    objects_mib: usize,
    /// Number of large objects, written then read one after another
    #[arg(long, default_value_t = 4)]
    large_count: usize,
    /// Small (4 KiB) operations of each kind per concurrency level (a tenth at concurrency 1)
    #[arg(long, default_value_t = 20_000)]
    small_ops: usize,
    /// Number of keys for the listing benchmark
    #[arg(long, default_value_t = 100_000)]
    list_keys: usize,
    /// Size of the CSV object S3 Select scans, MiB (0 skips the row)
    #[arg(long, default_value_t = 1024)]
    select_mib: usize,
    /// Objects of the batch copy job row (0 skips it)
    #[arg(long, default_value_t = 100_000)]
    batch_objects: usize,
    /// Concurrency levels for the small-object runs, comma-separated
    #[arg(long, value_delimiter = ',', default_value = "1,32,128")]
    concurrency: Vec<usize>,
    /// Threads running the client; raise it for a remote endpoint on a many-core machine
    #[arg(long, default_value_t = 1)]
    client_threads: usize,
    /// Print one JSON document
    #[arg(long)]
    json: bool,
}

pub fn run(args: S3Args, cli: &dyn Cli) -> Result<()> {
    if args.objects_mib == 0
        || args.large_count == 0
        || args.client_threads == 0
        || args.concurrency.contains(&0)
    {
        bail!("--objects-mib, --large-count, --client-threads and every --concurrency level must be at least 1");
    }
    let target = target(&args, cli)?;
    let load_before = loadavg();
    // Measured first, while the client runtime is idle: the same object size written then
    // read back by an in-process single-drive store (the default `server start` layout).
    let engine = engine_reference(args.objects_mib, args.large_count)?;
    // One client thread by default: against a server on the same small machine it leaves
    // the other cores to the server and saves cross-thread wake-ups (on 2 cores, 4 KiB GET
    // at concurrency 32 ran ~1.6x faster than with a 2-worker runtime).
    let rt = match args.client_threads {
        1 => tokio::runtime::Builder::new_current_thread(),
        n => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(n);
            b
        }
    }
    .enable_all()
    .build()?;
    let bucket = format!(
        "cybs3-bench-{}",
        Alphanumeric
            .sample_string(&mut rand::rng(), 10)
            .to_lowercase()
    );
    let client = target.client();
    let rows = rt.block_on(async {
        client
            .create_bucket()
            .bucket(&bucket)
            .send()
            .await
            .with_context(|| format!("cannot create bucket {bucket} at {}", target.endpoint))?;
        let measured = tokio::select! {
            r = measure(&client, &bucket, &args, engine, cli) => r,
            _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
        };
        let cleaned = remove_bucket(&client, &bucket)
            .await
            .with_context(|| format!("cannot remove the bench bucket {bucket}"));
        let rows = measured?;
        cleaned?;
        anyhow::Ok(rows)
    })?;
    let head = serde_json::json!({
        "bench": "s3",
        "endpoint": target.endpoint,
        "bucket": bucket,
        "client_threads": args.client_threads,
        "reference": "engine in-process, 1 drive (1+0), same object size",
        "load_before": load_before,
        "load_after": loadavg(),
    });
    print(head, &rows, args.json);
    Ok(())
}

/// Endpoint and keys: flags, then the environment, then the local server's record.
fn target(args: &S3Args, cli: &dyn Cli) -> Result<vault::S3Target> {
    let dir = cli.store_dir(args.data.clone());
    let endpoint = match &args.endpoint {
        Some(e) => e.clone(),
        None => match cli.running_address(&dir)? {
            Some(address) => format!("http://{address}"),
            None => bail!(
                "no server is running on {}; start one with `cybs3 server start --detach` or pass --endpoint",
                dir.display()
            ),
        },
    };
    let (access, secret) = match (&args.access_key, &args.secret_key) {
        (Some(a), Some(s)) => (a.clone(), s.clone()),
        (None, None) => cli.root_keys(&dir).with_context(|| {
            format!(
                "no credentials: pass --access-key and --secret-key, or run as the user who can read {}",
                dir.display()
            )
        })?,
        _ => bail!("pass both --access-key and --secret-key (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), or neither"),
    };
    Ok(vault::S3Target::new(&endpoint, &access, &secret))
}

/// The engine's own throughput for `count` objects of `mib` MiB written then read back,
/// and the physical ceiling of any GET on this machine: one raw TCP stream over loopback.
struct Reference {
    put: f64,
    get: f64,
    loopback: f64,
    /// A plain file's sequential read with the page cache dropped (`None` when it cannot
    /// be dropped: not root).
    disk_read: Option<f64>,
}

/// MB/s of reading back `bytes` written to a plain file under `dir`, cold: what the
/// disk gives one sequential reader through the kernel's own read-ahead.
fn disk_cold_read(dir: &std::path::Path, bytes: u64) -> Result<Option<f64>> {
    use std::io::{Read, Write};
    let path = dir.join("disk-reference");
    let block = pattern();
    let mut f = std::fs::File::create(&path)?;
    let mut left = bytes;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        f.write_all(&block[..n])?;
        left -= n as u64;
    }
    f.sync_all()?;
    drop(f);
    if !drop_caches()? {
        return Ok(None);
    }
    let mut f = std::fs::File::open(&path)?;
    let mut buf = vec![0u8; MIB];
    let t = Instant::now();
    let mut got = 0u64;
    loop {
        match f.read(&mut buf)? {
            0 => break,
            n => got += n as u64,
        }
    }
    let secs = t.elapsed().as_secs_f64();
    anyhow::ensure!(got == bytes, "the disk gave back {got} of {bytes} bytes");
    Ok(Some(bytes as f64 / secs / 1e6))
}

/// MB/s of `bytes` sent over one loopback TCP connection from a buffer to a buffer, with
/// sender and receiver on their own threads (what an HTTP GET could reach at best).
fn loopback_reference(bytes: u64) -> Result<f64> {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let sender = std::thread::spawn(move || -> std::io::Result<()> {
        let (mut conn, _) = listener.accept()?;
        let block = pattern();
        let mut left = bytes;
        while left > 0 {
            let n = left.min(block.len() as u64) as usize;
            conn.write_all(&block[..n])?;
            left -= n as u64;
        }
        Ok(())
    });
    let mut conn = std::net::TcpStream::connect(addr)?;
    let mut buf = vec![0u8; MIB];
    let t = Instant::now();
    let mut got = 0u64;
    while got < bytes {
        match conn.read(&mut buf)? {
            0 => break,
            n => got += n as u64,
        }
    }
    let secs = t.elapsed().as_secs_f64();
    sender
        .join()
        .map_err(|_| anyhow::anyhow!("loopback sender panicked"))??;
    anyhow::ensure!(got == bytes, "loopback moved {got} of {bytes} bytes");
    Ok(bytes as f64 / secs / 1e6)
}

fn engine_reference(mib: usize, count: usize) -> Result<Reference> {
    let dir = std::env::temp_dir().join(format!("cybs3-bench-ref-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let result = (|| {
        let store = Store::open(StoreConfig::new(vec![dir.join("d0")]))?;
        store.create_bucket("bench")?;
        let pattern = pattern();
        let bytes = (count * mib * MIB) as f64;
        let t = Instant::now();
        for k in 0..count {
            let mut w = store.put("bench", &format!("large/{k}"))?;
            for _ in 0..mib {
                w.write(&pattern)?;
            }
            w.finish(ObjectMeta::default())?;
        }
        let put = bytes / t.elapsed().as_secs_f64() / 1e6;
        let t = Instant::now();
        let mut n = 0u64;
        for k in 0..count {
            let mut r = store
                .open_object("bench", &format!("large/{k}"), None)?
                .all();
            while let Some(chunk) = r.next_chunk()? {
                n += chunk.len() as u64;
            }
        }
        anyhow::ensure!(n as f64 == bytes, "the engine read {n} of {bytes} bytes");
        let get = bytes / t.elapsed().as_secs_f64() / 1e6;
        let loopback = loopback_reference(bytes as u64)?;
        let disk_read = disk_cold_read(&dir, bytes as u64)?;
        anyhow::Ok(Reference {
            put,
            get,
            loopback,
            disk_read,
        })
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

pub(crate) fn pattern() -> Bytes {
    (0..MIB).map(|i| (i * 131 % 251) as u8).collect()
}

async fn measure(
    client: &Client,
    bucket: &str,
    args: &S3Args,
    engine: Reference,
    cli: &dyn Cli,
) -> Result<Vec<Row>> {
    let mut rows = vec![
        row(
            &format!("engine PUT {} MiB, 1 drive (reference)", args.objects_mib),
            engine.put,
            "MB/s",
            None,
        ),
        row(
            &format!("engine GET {} MiB, 1 drive (reference)", args.objects_mib),
            engine.get,
            "MB/s",
            None,
        ),
        row(
            "raw TCP over loopback, one stream (reference)",
            engine.loopback,
            "MB/s",
            None,
        ),
    ];
    if let Some(disk) = engine.disk_read {
        rows.push(row(
            "disk sequential read, cold (reference)",
            disk,
            "MB/s",
            None,
        ));
    }
    let size = (args.objects_mib * MIB) as u64;
    let total = size as f64 * args.large_count as f64;
    let block = pattern();

    let put = total / put_large(client, bucket, "large", size, args.large_count, None).await? / 1e6;
    rows.push(row(
        &format!("{} MiB PUT", args.objects_mib),
        put,
        "MB/s",
        Some((put / engine.put, "engine PUT")),
    ));

    // Shards are read around the page cache anyway; this makes the rest cold too.
    drop_caches()?;
    let get = total / get_large(client, bucket, "large", size, args.large_count).await? / 1e6;
    rows.push(row(
        &format!("{} MiB GET", args.objects_mib),
        get,
        "MB/s",
        Some((get / engine.get, "engine GET")),
    ));
    rows.push(row(
        &format!("{} MiB GET vs loopback", args.objects_mib),
        get,
        "MB/s",
        Some((get / engine.loopback, "raw TCP loopback")),
    ));
    if let Some(disk) = engine.disk_read {
        rows.push(row(
            &format!("{} MiB GET, cold, vs the disk", args.objects_mib),
            get,
            "MB/s",
            Some((get / disk, "disk sequential read, cold")),
        ));
    }

    let small = block.slice(..SMALL);
    for &conc in &args.concurrency {
        let ops = if conc == 1 {
            (args.small_ops / 10).max(100)
        } else {
            args.small_ops
        };
        let key = move |i: usize| format!("small/c{conc}/{i:08}");
        let t = put_small(client, bucket, &small, (conc, ops), key, None).await?;
        rows.push(timed_row(&format!("4 KiB PUT, concurrency {conc}"), &t));

        let t = get_small(client, bucket, (conc, ops), key).await?;
        rows.push(timed_row(&format!("4 KiB GET, concurrency {conc}"), &t));

        let t = tasks(conc, ops, {
            let (client, bucket) = (client.clone(), bucket.to_string());
            move |i| client.head_object().bucket(&bucket).key(key(i)).send()
        })
        .await
        .context("4 KiB HEAD")?;
        rows.push(timed_row(&format!("4 KiB HEAD, concurrency {conc}"), &t));
    }

    // Server-side encryption (SSE-S3), next to the same requests without it, in this run.
    let sse = Some(ServerSideEncryption::Aes256);
    let sse_put =
        total / put_large(client, bucket, "sse", size, args.large_count, sse.clone()).await? / 1e6;
    rows.push(row(
        &format!("{} MiB PUT, SSE-S3", args.objects_mib),
        sse_put,
        "MB/s",
        Some((sse_put / put, "the same PUT unencrypted")),
    ));
    drop_caches()?;
    let sse_get = total / get_large(client, bucket, "sse", size, args.large_count).await? / 1e6;
    rows.push(row(
        &format!("{} MiB GET, SSE-S3", args.objects_mib),
        sse_get,
        "MB/s",
        Some((sse_get / get, "the same GET unencrypted")),
    ));
    let conc = 32;
    let ops = args.small_ops;
    let plain_key = move |i: usize| format!("small/plain32/{i:08}");
    let sse_key = move |i: usize| format!("small/sse32/{i:08}");
    let plain = put_small(client, bucket, &small, (conc, ops), plain_key, None).await?;
    let sealed = put_small(client, bucket, &small, (conc, ops), sse_key, sse).await?;
    rows.push(timed_row(
        &format!("4 KiB PUT, concurrency {conc}, SSE-S3"),
        &sealed,
    ));
    rows.last_mut().expect("pushed").ratio = Some(sealed.rate() / plain.rate());
    rows.last_mut().expect("pushed").reference = Some("the same PUT unencrypted");
    let plain = get_small(client, bucket, (conc, ops), plain_key).await?;
    let sealed = get_small(client, bucket, (conc, ops), sse_key).await?;
    rows.push(timed_row(
        &format!("4 KiB GET, concurrency {conc}, SSE-S3"),
        &sealed,
    ));
    rows.last_mut().expect("pushed").ratio = Some(sealed.rate() / plain.rate());
    rows.last_mut().expect("pushed").reference = Some("the same GET unencrypted");

    // One webhook target and the audit log, next to both off: on servers of the bench's own.
    rows.extend(crate::hook::rows(cli, &small, args.small_ops).await?);
    // Anomaly detection on, next to off: on servers of the bench's own.
    rows.extend(crate::anomaly::rows(cli, &small, args.small_ops).await?);
    // Scraping /metrics every second, next to no scraper: on a server of the bench's own.
    rows.extend(crate::scrape::rows(cli, &small, args.small_ops).await?);
    // S3 Select scanning a large CSV, next to a plain GET of it.
    rows.extend(crate::select::rows(client, bucket, args.select_mib).await?);
    // Replication to a second server: on servers of the bench's own too.
    let large = args.objects_mib << 20;
    rows.extend(crate::replication::rows(cli, &small, args.small_ops, large).await?);
    // A batch copy job: on a server of the bench's own.
    rows.extend(crate::batch::rows(cli, &small, args.batch_objects).await?);

    let fill_conc = 128;
    let t = tasks(fill_conc, args.list_keys, {
        let (client, bucket) = (client.clone(), bucket.to_string());
        move |i| {
            client
                .put_object()
                .bucket(&bucket)
                .key(format!("list/{i:09}"))
                .body(ByteStream::from_static(b""))
                .send()
        }
    })
    .await
    .context("filling the listing")?;
    rows.push(timed_row(
        &format!("0-byte PUT to fill listing, concurrency {fill_conc}"),
        &t,
    ));

    let t = Instant::now();
    let mut listed = 0usize;
    let mut token = None;
    loop {
        let page = client
            .list_objects_v2()
            .bucket(bucket)
            .prefix("list/")
            .max_keys(1000)
            .set_continuation_token(token)
            .send()
            .await
            .context("ListObjectsV2")?;
        listed += page.contents().len();
        token = page.next_continuation_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    rows.push(listing_row(
        "ListObjectsV2",
        listed,
        args.list_keys,
        t.elapsed(),
    )?);
    Ok(rows)
}

/// Run `op(0..ops)` on `conc` tokio tasks, each taking the next index from a shared counter.
/// PUTs `count` objects of `size` bytes under `prefix/` one after another (in `sse`, if
/// given); the seconds it took. The body is a view of one 1 MiB block, repeated.
async fn put_large(
    client: &Client,
    bucket: &str,
    prefix: &str,
    size: u64,
    count: usize,
    sse: Option<ServerSideEncryption>,
) -> Result<f64> {
    let block = pattern();
    let t = Instant::now();
    for k in 0..count {
        let key = format!("{prefix}/{k}");
        put_repeated(client, bucket, &key, block.clone(), size, sse.clone()).await?;
    }
    Ok(t.elapsed().as_secs_f64())
}

/// PUTs an object of `size` bytes made of `block` repeated, streamed.
pub(crate) async fn put_repeated(
    client: &Client,
    bucket: &str,
    key: &str,
    block: Bytes,
    size: u64,
    sse: Option<ServerSideEncryption>,
) -> Result<()> {
    // Retryable: the SDK may rebuild the body to resend it; each build is a cheap view
    // of the same block, so no object-sized buffer ever exists.
    let body = SdkBody::retryable(move || {
        SdkBody::from_body_1_x(Repeat {
            chunk: block.clone(),
            left: size,
        })
    });
    client
        .put_object()
        .bucket(bucket)
        .key(key)
        .content_length(size as i64)
        .set_server_side_encryption(sse)
        .body(ByteStream::new(body))
        .send()
        .await
        .with_context(|| format!("PUT {key}"))?;
    Ok(())
}

/// GETs what [`put_large`] stored, checking each length (S3 decrypts SSE-S3 objects
/// on its own); the seconds it took.
pub(crate) async fn get_large(
    client: &Client,
    bucket: &str,
    prefix: &str,
    size: u64,
    count: usize,
) -> Result<f64> {
    let t = Instant::now();
    for k in 0..count {
        let mut out = client
            .get_object()
            .bucket(bucket)
            .key(format!("{prefix}/{k}"))
            .send()
            .await
            .with_context(|| format!("GET {prefix}/{k}"))?;
        let mut n = 0u64;
        while let Some(chunk) = out.body.try_next().await.context("GET body")? {
            n += chunk.len() as u64;
        }
        anyhow::ensure!(n == size, "GET {prefix}/{k} returned {n} of {size} bytes");
    }
    Ok(t.elapsed().as_secs_f64())
}

/// `ops` PUTs of `small` at concurrency `conc`, named by `key` (in `sse`, if given).
pub(crate) async fn put_small(
    client: &Client,
    bucket: &str,
    small: &Bytes,
    (conc, ops): (usize, usize),
    key: impl Fn(usize) -> String + Send + Sync + Copy + 'static,
    sse: Option<ServerSideEncryption>,
) -> Result<Timing> {
    tasks(conc, ops, {
        let (client, bucket, small) = (client.clone(), bucket.to_string(), small.clone());
        move |i| {
            client
                .put_object()
                .bucket(&bucket)
                .key(key(i))
                .set_server_side_encryption(sse.clone())
                .body(ByteStream::from(small.clone()))
                .send()
        }
    })
    .await
    .context("4 KiB PUT")
}

/// `ops` GETs at concurrency `conc` of what [`put_small`] stored, each checked.
pub(crate) async fn get_small(
    client: &Client,
    bucket: &str,
    (conc, ops): (usize, usize),
    key: impl Fn(usize) -> String + Send + Sync + Copy + 'static,
) -> Result<Timing> {
    tasks(conc, ops, {
        let (client, bucket) = (client.clone(), bucket.to_string());
        move |i| {
            let req = client.get_object().bucket(&bucket).key(key(i));
            async move {
                let out = req.send().await?;
                let body = out.body.collect().await?;
                anyhow::ensure!(body.into_bytes().len() == SMALL, "short GET");
                anyhow::Ok(())
            }
        }
    })
    .await
    .context("4 KiB GET")
}

async fn tasks<F, Fut, T, E>(conc: usize, ops: usize, op: F) -> Result<Timing>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = std::result::Result<T, E>> + Send,
    E: Into<anyhow::Error>,
{
    let op = Arc::new(op);
    let next = Arc::new(AtomicUsize::new(0));
    let t = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..conc {
        let (op, next) = (op.clone(), next.clone());
        set.spawn(async move {
            let mut lat: Vec<Duration> = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= ops {
                    return anyhow::Ok(lat);
                }
                let start = Instant::now();
                op(i).await.map_err(Into::into)?;
                lat.push(start.elapsed());
            }
        });
    }
    let mut latencies = Vec::with_capacity(ops);
    while let Some(done) = set.join_next().await {
        // The first failure ends the run; dropping the set cancels the other tasks.
        latencies.extend(done.context("bench task panicked")??);
    }
    Ok(Timing {
        elapsed: t.elapsed(),
        latencies,
    })
}

/// Empty the bucket with DeleteObjects batches of 1000, then delete it.
async fn remove_bucket(client: &Client, bucket: &str) -> Result<()> {
    let mut token = None;
    let mut deletes = tokio::task::JoinSet::new();
    loop {
        let page = client
            .list_objects_v2()
            .bucket(bucket)
            .max_keys(1000)
            .set_continuation_token(token)
            .send()
            .await
            .context("listing")?;
        let ids = page
            .contents()
            .iter()
            .filter_map(|o| o.key())
            .map(|k| ObjectIdentifier::builder().key(k).build())
            .collect::<std::result::Result<Vec<_>, _>>()?;
        if !ids.is_empty() {
            let delete = Delete::builder()
                .set_objects(Some(ids))
                .quiet(true)
                .build()?;
            let req = client.delete_objects().bucket(bucket).delete(delete);
            deletes.spawn(async move {
                let out = req.send().await.context("DeleteObjects")?;
                if let Some(e) = out.errors().first() {
                    bail!(
                        "DeleteObjects: {} {}",
                        e.key().unwrap_or("?"),
                        e.message().unwrap_or("failed")
                    );
                }
                anyhow::Ok(())
            });
            // A few batches in flight keep the server busy without queueing them all.
            if deletes.len() >= 8 {
                deletes.join_next().await.expect("a batch")??;
            }
        }
        token = page.next_continuation_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    while let Some(done) = deletes.join_next().await {
        done??;
    }
    client
        .delete_bucket()
        .bucket(bucket)
        .send()
        .await
        .context("DeleteBucket")?;
    Ok(())
}

/// An upload body of `left` bytes made of one block repeated.
struct Repeat {
    chunk: Bytes,
    left: u64,
}

impl Body for Repeat {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut TaskContext<'_>,
    ) -> Poll<Option<std::result::Result<Frame<Bytes>, Self::Error>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        let n = self.left.min(self.chunk.len() as u64);
        self.left -= n;
        Poll::Ready(Some(Ok(Frame::data(self.chunk.slice(..n as usize)))))
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.left)
    }
}

//! `cybs3 bench s3`'s metrics row: 4 KiB GETs at concurrency 32 while `GET /metrics` is
//! scraped every second, next to the same GETs with no scraper, alternating on one
//! server of the bench's own (metrics opened with `server config set metrics-public`).

use crate::report::{alternating_row, Row};
use crate::spare::Spare;
use crate::Cli;
use anyhow::Result;
use bytes::Bytes;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

const BUCKET: &str = "bench-scrape";
/// Measured runs each way (the median counts).
const RUNS: usize = 3;

/// One scrape: the document's length (0 when it failed).
fn scrape(addr: &str) -> usize {
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return 0;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    if s.write_all(b"GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return 0;
    }
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply);
    if reply.starts_with(b"HTTP/1.1 200") {
        reply.len()
    } else {
        0
    }
}

pub(crate) async fn rows(cli: &dyn Cli, small: &Bytes, ops: usize) -> Result<Vec<Row>> {
    let spare = Spare::start(cli, &["--audit", "off"])?;
    spare.admin(&["server", "config", "set", "metrics-public", "true"])?;
    let addr = spare.endpoint.trim_start_matches("http://").to_string();
    anyhow::ensure!(scrape(&addr) > 0, "the bench's server gave no metrics");
    spare.client.create_bucket().bucket(BUCKET).send().await?;
    let keys = ops.clamp(1, 2000);
    let key = move |i: usize| format!("small/{:08}", i % keys);
    crate::s3::put_small(&spare.client, BUCKET, small, (32, keys), key, None).await?;
    let per_run = ops.div_ceil(RUNS).max(1);
    let gets = || crate::s3::get_small(&spare.client, BUCKET, (32, per_run), key);
    gets().await?;
    let (mut plain, mut scraped) = (Vec::new(), Vec::new());
    let scrapes = Arc::new(AtomicU64::new(0));
    for _ in 0..RUNS {
        plain.push(gets().await?);
        let stop = Arc::new(AtomicBool::new(false));
        let scraper = std::thread::spawn({
            let (stop, scrapes, addr) = (stop.clone(), scrapes.clone(), addr.clone());
            move || {
                while !stop.load(Ordering::Relaxed) {
                    if scrape(&addr) > 0 {
                        scrapes.fetch_add(1, Ordering::Relaxed);
                    }
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        });
        let t = gets().await;
        stop.store(true, Ordering::Relaxed);
        let _ = scraper.join();
        scraped.push(t?);
    }
    anyhow::ensure!(scrapes.load(Ordering::Relaxed) > 0, "no scrape succeeded");
    Ok(vec![alternating_row(
        "4 KiB GET, concurrency 32, /metrics scraped every second",
        scraped,
        &plain,
        "the same GETs with no scraper (median of 3, alternating)",
    )])
}

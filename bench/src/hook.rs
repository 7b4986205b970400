//! `cybs3 bench s3`'s notification rows: 4 KiB PUTs at concurrency 32 into a server with
//! one webhook target (a receiver in this process) and the audit log on, next to the same
//! PUTs into a server with both off, in the same run; and how fast the server delivers
//! the events. The two servers are the bench's own (same binary, same one-drive layout,
//! fresh temporary data directories), so the comparison holds for any endpoint.

use crate::report::{alternating_row, row, Row};
use crate::spare::Spare;
use crate::timing::{median, Timing};
use crate::Cli;
use anyhow::{Context, Result};
use aws_sdk_s3::types::{Event, NotificationConfiguration, QueueConfiguration};
use bytes::Bytes;
use std::io::{BufRead, BufReader, Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TARGET: &str = "cybs3-bench-hook";
const BUCKET: &str = "bench-hook";
/// Measured runs per server, alternating between the two (the median counts).
const RUNS: usize = 3;
/// Counts the POSTs it answers.
fn receiver() -> Result<(String, Arc<AtomicU64>)> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    let count = Arc::new(AtomicU64::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let seen = seen.clone();
            std::thread::spawn(move || {
                let mut out = conn.try_clone().expect("clone a socket");
                let mut r = BufReader::new(conn);
                loop {
                    let mut len = 0usize;
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    loop {
                        line.clear();
                        if r.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let h = line.trim_end().to_ascii_lowercase();
                        if h.is_empty() {
                            break;
                        }
                        if let Some(v) = h.strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; len];
                    if r.read_exact(&mut body).is_err() {
                        return;
                    }
                    seen.fetch_add(1, Ordering::Relaxed);
                    if out
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    Ok((url, count))
}

/// `ops` PUTs at concurrency 32 under a prefix of their own.
async fn puts(spare: &Spare, small: &Bytes, ops: usize, run: usize) -> Result<Timing> {
    let key = move |i: usize| format!("small/{run}/{i:08}");
    crate::s3::put_small(&spare.client, BUCKET, small, (32, ops), key, None).await
}

pub(crate) async fn rows(cli: &dyn Cli, small: &Bytes, ops: usize) -> Result<Vec<Row>> {
    let (url, delivered) = receiver()?;
    let off = Spare::start(cli, &["--audit", "off"])?;
    let on = Spare::start(cli, &["--audit", "on"])?;
    let arn = cli
        .webhook_target(on.dir.path(), TARGET, Some(&url))?
        .context("the webhook target has no ARN")?;
    for spare in [&off, &on] {
        spare.client.create_bucket().bucket(BUCKET).send().await?;
    }
    let rule = QueueConfiguration::builder()
        .queue_arn(arn)
        .events(Event::from("s3:ObjectCreated:*"))
        .build()?;
    on.client
        .put_bucket_notification_configuration()
        .bucket(BUCKET)
        .notification_configuration(
            NotificationConfiguration::builder()
                .queue_configurations(rule)
                .build(),
        )
        .send()
        .await
        .context("PutBucketNotificationConfiguration")?;
    let per_run = ops.div_ceil(RUNS).max(1);
    // Waits until the receiver has `want` events (or gives up after 5 minutes).
    let drained = |want: u64| {
        let delivered = delivered.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(300);
            while delivered.load(Ordering::Relaxed) < want && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let got = delivered.load(Ordering::Relaxed);
            anyhow::ensure!(
                got >= want,
                "the webhook received {got} of {want} events in 5 minutes"
            );
            anyhow::Ok(())
        }
    };
    // A warm-up on each (connections, first files); then the two alternate, each run
    // starting once the events of the last have all arrived, so that one server's
    // deliveries do not slow the other's PUTs.
    let warm = per_run / 4 + 1;
    puts(&off, small, warm, 0).await?;
    puts(&on, small, warm, 0).await?;
    let mut sent = warm as u64;
    drained(sent).await?;
    let (mut plain, mut hooked, mut delivery) = (Vec::new(), Vec::new(), Vec::new());
    for run in 1..=RUNS {
        plain.push(puts(&off, small, per_run, run).await?);
        let started = Instant::now();
        hooked.push(puts(&on, small, per_run, run).await?);
        sent += per_run as u64;
        drained(sent).await?;
        delivery.push(per_run as f64 / started.elapsed().as_secs_f64());
    }
    let put = alternating_row(
        "4 KiB PUT, concurrency 32, one webhook target, audit on",
        hooked,
        &plain,
        "the same PUTs to a server with both off (median of 3, alternating)",
    );
    Ok(vec![
        put,
        row(
            "webhook events delivered (from a run's first PUT to its last delivery)",
            median(delivery),
            "events/s",
            None,
        ),
    ])
}

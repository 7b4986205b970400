//! `cybs3 bench s3`'s notification rows: 4 KiB PUTs at concurrency 32 into a prefix whose
//! events go to one webhook target (a receiver in this process), next to the same PUTs
//! into a prefix without rules, in the same run; and how fast the server delivers the
//! events. Only against the local server, whose management socket adds the target.

use crate::report::{row, timed_row, Row};
use crate::Cli;
use anyhow::{Context, Result};
use aws_sdk_s3::types::{Event, FilterRule, FilterRuleName, NotificationConfiguration};
use aws_sdk_s3::types::{NotificationConfigurationFilter, QueueConfiguration, S3KeyFilter};
use aws_sdk_s3::Client;
use bytes::Bytes;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TARGET: &str = "cybs3-bench-hook";

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

pub(crate) async fn rows(
    cli: &dyn Cli,
    dir: &Path,
    client: &Client,
    bucket: &str,
    small: &Bytes,
    ops: usize,
) -> Result<Vec<Row>> {
    let (url, delivered) = receiver()?;
    let arn = cli.webhook_target(dir, TARGET, Some(&url))?;
    let measured = async {
        let rule = QueueConfiguration::builder()
            .queue_arn(arn.unwrap_or_default())
            .events(Event::from("s3:ObjectCreated:*"))
            .filter(
                NotificationConfigurationFilter::builder()
                    .key(
                        S3KeyFilter::builder()
                            .filter_rules(
                                FilterRule::builder()
                                    .name(FilterRuleName::Prefix)
                                    .value("small/hook32/")
                                    .build(),
                            )
                            .build(),
                    )
                    .build(),
            )
            .build()?;
        client
            .put_bucket_notification_configuration()
            .bucket(bucket)
            .notification_configuration(
                NotificationConfiguration::builder()
                    .queue_configurations(rule)
                    .build(),
            )
            .send()
            .await
            .context("PutBucketNotificationConfiguration")?;
        let conc = 32;
        let plain_key = move |i: usize| format!("small/nohook32/{i:08}");
        let hook_key = move |i: usize| format!("small/hook32/{i:08}");
        let plain =
            crate::s3::put_small(client, bucket, small, (conc, ops), plain_key, None).await?;
        let started = Instant::now();
        let hooked =
            crate::s3::put_small(client, bucket, small, (conc, ops), hook_key, None).await?;
        // Every event reaches the receiver (or the wait gives up and says so).
        let deadline = Instant::now() + Duration::from_secs(300);
        while delivered.load(Ordering::Relaxed) < ops as u64 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let got = delivered.load(Ordering::Relaxed);
        anyhow::ensure!(
            got >= ops as u64,
            "the webhook received {got} of {ops} events in 5 minutes"
        );
        let delivery = got as f64 / started.elapsed().as_secs_f64();
        let mut put = timed_row(
            &format!("4 KiB PUT, concurrency {conc}, one webhook target"),
            &hooked,
        );
        put.ratio = Some(hooked.rate() / plain.rate());
        put.reference = Some("the same PUT to a prefix without rules");
        anyhow::Ok(vec![
            put,
            row(
                "webhook events delivered (from the first PUT to the last delivery)",
                delivery,
                "events/s",
                None,
            ),
        ])
    }
    .await;
    // The rule goes first: a target a bucket names cannot be removed.
    client
        .put_bucket_notification_configuration()
        .bucket(bucket)
        .notification_configuration(NotificationConfiguration::builder().build())
        .send()
        .await
        .context("clearing the bench bucket's notification rules")?;
    cli.webhook_target(dir, TARGET, None)?;
    measured
}

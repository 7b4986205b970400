//! `cybs3 bench s3`'s replication rows, between two servers of the bench's own (a
//! bucket replicating everything to a bucket of the second, registered as a remote):
//! - the lag of 4 KiB PUTs at concurrency 32: from each PUT's answer to the moment its
//!   key is listed at the second server (a listing every 50 ms), p50 and p99;
//! - one large object: from its PUT's answer to its COMPLETED status, next to a plain
//!   copy of the same object between the same two servers in the same run (a streamed
//!   GET from the first into a multipart PUT to the second, in the replicator's part
//!   size).

use crate::report::{row, Row};
use crate::spare::Spare;
use crate::Cli;
use anyhow::{Context, Result};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketVersioningStatus, CompletedMultipartUpload, CompletedPart, DeleteMarkerReplication,
    DeleteMarkerReplicationStatus, Destination, ReplicationConfiguration, ReplicationRule,
    ReplicationRuleFilter, ReplicationRuleStatus, ReplicationStatus, VersioningConfiguration,
};
use aws_sdk_s3::Client;
use bytes::Bytes;
use futures::StreamExt;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SOURCE: &str = "bench-repl";
const TARGET: &str = "bench-repl-copy";
/// The part size of the plain copy: the replicator's.
const PART: usize = 8 << 20;
/// How long the rows wait for replication before they give up.
const PATIENCE: Duration = Duration::from_secs(300);

async fn versioned(c: &Client, bucket: &str) -> Result<()> {
    c.create_bucket().bucket(bucket).send().await?;
    c.put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await?;
    Ok(())
}

/// Two servers, the first replicating bucket [`SOURCE`] to the second's [`TARGET`].
async fn pair(cli: &dyn Cli) -> Result<(Spare, Spare)> {
    let (a, b) = (
        Spare::start(cli, &["--audit", "off"])?,
        Spare::start(cli, &["--audit", "off"])?,
    );
    versioned(&a.client, SOURCE).await?;
    versioned(&b.client, TARGET).await?;
    let (ak, sk) = (&b.keys.0, &b.keys.1);
    a.admin(&[
        "admin",
        "remote",
        "add",
        "bench-copy",
        "--endpoint",
        &b.endpoint,
        "--access-key",
        ak,
        "--secret-key",
        sk,
    ])?;
    let rule = ReplicationRule::builder()
        .id("all")
        .priority(1)
        .status(ReplicationRuleStatus::Enabled)
        .filter(ReplicationRuleFilter::builder().prefix("").build())
        .delete_marker_replication(
            DeleteMarkerReplication::builder()
                .status(DeleteMarkerReplicationStatus::Enabled)
                .build(),
        )
        .destination(
            Destination::builder()
                .bucket(format!("arn:cybs3:s3:::bench-copy/{TARGET}"))
                .build()?,
        )
        .build()?;
    a.client
        .put_bucket_replication()
        .bucket(SOURCE)
        .replication_configuration(
            ReplicationConfiguration::builder()
                .role("arn:aws:iam::000000000000:role/bench")
                .rules(rule)
                .build()?,
        )
        .send()
        .await
        .context("PutBucketReplication")?;
    Ok((a, b))
}

/// `ops` PUTs of `small` at concurrency 32 under `prefix` at `a`: when each key was
/// listed at `b`, less when its PUT was answered.
async fn lags(
    a: &Spare,
    b: &Spare,
    small: &Bytes,
    ops: usize,
    prefix: &str,
) -> Result<Vec<Duration>> {
    let answered: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let puts = futures::stream::iter(0..ops)
        .map(|i| {
            let (client, answered) = (a.client.clone(), answered.clone());
            let (key, body) = (format!("{prefix}{i:08}"), small.clone());
            async move {
                client
                    .put_object()
                    .bucket(SOURCE)
                    .key(&key)
                    .body(ByteStream::from(body))
                    .send()
                    .await?;
                answered.lock().unwrap().insert(key, Instant::now());
                anyhow::Ok(())
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>();
    let listing = async {
        let mut seen: HashMap<String, Instant> = HashMap::new();
        let deadline = Instant::now() + PATIENCE;
        while seen.len() < ops {
            anyhow::ensure!(
                Instant::now() < deadline,
                "replication delivered {} of {ops} objects in {PATIENCE:?}",
                seen.len()
            );
            let mut pages = b
                .client
                .list_objects_v2()
                .bucket(TARGET)
                .prefix(prefix)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let now = Instant::now();
                for o in page?.contents() {
                    seen.entry(o.key().unwrap_or_default().to_string())
                        .or_insert(now);
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(seen)
    };
    let (done, seen) = tokio::join!(puts, listing);
    done.into_iter().collect::<Result<Vec<()>>>()?;
    let answered = answered.lock().unwrap();
    Ok(seen?
        .iter()
        .map(|(key, at)| at.saturating_duration_since(answered[key]))
        .collect())
}

/// A streamed GET of `key` from `a` into a multipart PUT to `b`, in [`PART`]s.
async fn plain_copy(a: &Client, b: &Client, key: &str) -> Result<()> {
    let mut body = a.get_object().bucket(SOURCE).key(key).send().await?.body;
    let up = b
        .create_multipart_upload()
        .bucket(TARGET)
        .key(format!("plain/{key}"))
        .send()
        .await?;
    let upload_id = up.upload_id().unwrap_or_default().to_string();
    let mut parts = Vec::new();
    let mut buf = Vec::with_capacity(PART);
    loop {
        let chunk = body.try_next().await?;
        if let Some(c) = &chunk {
            buf.extend_from_slice(c);
        }
        if buf.len() >= PART || (chunk.is_none() && !buf.is_empty()) {
            let number = parts.len() as i32 + 1;
            let part = std::mem::replace(&mut buf, Vec::with_capacity(PART));
            let done = b
                .upload_part()
                .bucket(TARGET)
                .key(format!("plain/{key}"))
                .upload_id(&upload_id)
                .part_number(number)
                .body(ByteStream::from(part))
                .send()
                .await?;
            parts.push(
                CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(done.e_tag().map(str::to_string))
                    .build(),
            );
        }
        if chunk.is_none() {
            break;
        }
    }
    b.complete_multipart_upload()
        .bucket(TARGET)
        .key(format!("plain/{key}"))
        .upload_id(&upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await?;
    Ok(())
}

/// Waits until the latest version of `key` at `a` is COMPLETED.
async fn completed(a: &Client, key: &str) -> Result<()> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let head = a.head_object().bucket(SOURCE).key(key).send().await?;
        if head.replication_status() == Some(&ReplicationStatus::Completed) {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{key} not replicated in {PATIENCE:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub(crate) async fn rows(
    cli: &dyn Cli,
    small: &Bytes,
    ops: usize,
    large: usize,
) -> Result<Vec<Row>> {
    let (a, b) = pair(cli).await?;
    // A warm-up (connections, first files), then the measured run.
    lags(&a, &b, small, ops / 10 + 1, "warm/").await?;
    let mut lag = lags(&a, &b, small, ops, "small/").await?;
    lag.sort_unstable();
    let at = |p: f64| lag[((p / 100.0 * lag.len() as f64).ceil() as usize).clamp(1, lag.len()) - 1];
    let (p50, p99) = (at(50.0), at(99.0));
    let lag_row = Row {
        p50_ms: Some(p50.as_secs_f64() * 1e3),
        p99_ms: Some(p99.as_secs_f64() * 1e3),
        ..row(
            "replication lag of 4 KiB PUTs at concurrency 32 to a second server, p99",
            p99.as_secs_f64(),
            "s",
            None,
        )
    };

    let block = crate::s3::pattern();
    let body: Vec<u8> = block.iter().cycle().take(large).copied().collect();
    a.client
        .put_object()
        .bucket(SOURCE)
        .key("large")
        .body(ByteStream::from(body))
        .send()
        .await?;
    let started = Instant::now();
    completed(&a.client, "large").await?;
    let replicated = started.elapsed();
    let started = Instant::now();
    plain_copy(&a.client, &b.client, "large").await?;
    let copied = started.elapsed();
    let mb_s = |d: Duration| large as f64 / d.as_secs_f64() / 1e6;
    let large_row = row(
        &format!(
            "replication of one {} MiB object to a second server",
            large >> 20
        ),
        mb_s(replicated),
        "MB/s",
        Some((
            mb_s(replicated) / mb_s(copied),
            "a plain copy between the same servers (streamed GET into a multipart PUT)",
        )),
    );
    Ok(vec![lag_row, large_row])
}

//! `cybs3 bench s3`'s anomaly-detection row: 4 KiB PUTs at concurrency 32 that overwrite
//! (the detector's costlier path: a read of the current version, the entropy sample,
//! the counters), on a server with the detector on next to one with it off
//! (`--anomalies off`), alternating, both with the audit log off so that only the
//! detector differs.

use crate::report::{alternating_row, Row};
use crate::spare::Spare;
use crate::Cli;
use anyhow::Result;
use bytes::Bytes;

const BUCKET: &str = "bench-anomaly";
/// Measured runs each way (the median counts).
const RUNS: usize = 3;

pub(crate) async fn rows(cli: &dyn Cli, small: &Bytes, ops: usize) -> Result<Vec<Row>> {
    let off = Spare::start(cli, &["--audit", "off", "--anomalies", "off"])?;
    let on = Spare::start(cli, &["--audit", "off", "--anomalies", "on"])?;
    let keys = ops.clamp(1, 2000);
    let key = move |i: usize| format!("small/{:08}", i % keys);
    let per_run = ops.div_ceil(RUNS).max(1);
    let puts = |spare: &Spare, n: usize| {
        let client = spare.client.clone();
        let small = small.clone();
        async move { crate::s3::put_small(&client, BUCKET, &small, (32, n), key, None).await }
    };
    // The first pass creates the keys; every later PUT is an overwrite.
    for spare in [&off, &on] {
        spare.client.create_bucket().bucket(BUCKET).send().await?;
        puts(spare, keys).await?;
    }
    let (mut plain, mut watched) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        plain.push(puts(&off, per_run).await?);
        watched.push(puts(&on, per_run).await?);
    }
    Ok(vec![alternating_row(
        "4 KiB PUT (overwrites), concurrency 32, anomaly detection on",
        watched,
        &plain,
        "the same PUTs to a server with it off (median of 3, alternating)",
    )])
}

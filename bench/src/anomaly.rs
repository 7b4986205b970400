//! `cybs3 bench s3`'s anomaly-detection row: 4 KiB PUTs at concurrency 32 that overwrite
//! (the detector's costlier path: a read of the current version, the entropy sample,
//! the counters), on a server with the detector on next to one with it off
//! (`--anomalies off`), alternating, both with the audit log off so that only the
//! detector differs.

use crate::report::{alternating_row, row, Row};
use crate::spare::Spare;
use crate::timing::median;
use crate::Cli;
use anyhow::Result;
use bytes::Bytes;

const BUCKET: &str = "bench-anomaly";
/// Measured runs each way (the median counts). Throughput on a shared 2-core machine
/// moves by ±10 % between runs, so the server's CPU time per PUT is reported as well:
/// it is what the detector costs, and it barely moves with other load.
const RUNS: usize = 5;

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
    let (mut plain_cpu, mut watched_cpu) = (Vec::new(), Vec::new());
    for run in 0..RUNS {
        // Each in turn goes first, so that a drift in the machine's load favours neither.
        let order = match run % 2 {
            0 => [(&off, false), (&on, true)],
            _ => [(&on, true), (&off, false)],
        };
        for (spare, detecting) in order {
            let before = spare.cpu();
            let t = puts(spare, per_run).await?;
            let cpu = spare.cpu().zip(before).map(|(a, b)| (a - b).as_secs_f64());
            let (runs, cpus) = match detecting {
                true => (&mut watched, &mut watched_cpu),
                false => (&mut plain, &mut plain_cpu),
            };
            runs.push(t);
            cpus.extend(cpu.map(|c| c * 1e6 / per_run as f64));
        }
    }
    let mut rows = vec![alternating_row(
        "4 KiB PUT (overwrites), concurrency 32, anomaly detection on",
        watched,
        &plain,
        "the same PUTs to a server with it off (median of 5, alternating)",
    )];
    if plain_cpu.len() == RUNS && watched_cpu.len() == RUNS {
        let (with, without) = (median(watched_cpu), median(plain_cpu));
        rows.push(row(
            "server CPU per 4 KiB PUT (overwrite), anomaly detection on",
            with,
            "µs",
            Some((with / without, "the same with it off (median of 5)")),
        ));
    }
    Ok(rows)
}

//! `cybs3 bench s3`'s batch row: a copy job (`cybs3 batch create`) over `--batch-objects`
//! 4 KiB objects into another bucket, on a server of the bench's own; objects per second
//! from the job's creation to its completion, its report included (issue 23 asks for
//! at least 2,000 over 100,000 objects).

use crate::report::{row, Row};
use crate::spare::Spare;
use crate::Cli;
use anyhow::{bail, Result};
use bytes::Bytes;
use std::time::{Duration, Instant};

const SRC: &str = "bench-batch-src";
const DST: &str = "bench-batch-dst";

pub(crate) async fn rows(cli: &dyn Cli, small: &Bytes, objects: usize) -> Result<Vec<Row>> {
    if objects == 0 {
        return Ok(Vec::new());
    }
    let spare = Spare::start(cli, &[])?;
    let c = &spare.client;
    for b in [SRC, DST] {
        c.create_bucket().bucket(b).send().await?;
    }
    let key = |i: usize| format!("o/{i:08}");
    crate::s3::put_small(c, SRC, small, (64, objects), key, None).await?;
    let manifest: String = (0..objects)
        .map(|i| format!("{SRC},{}\n", key(i)))
        .collect();
    c.put_object()
        .bucket(SRC)
        .key("manifest.csv")
        .body(manifest.into_bytes().into())
        .send()
        .await?;
    let job = serde_json::json!({
        "manifest": {"bucket": SRC, "key": "manifest.csv", "format": "csv"},
        "operation": {"copy": {"bucket": DST}},
        "report": {"bucket": DST, "prefix": "reports"},
    });
    let file = spare.dir.path().join("batch-job.json");
    std::fs::write(&file, job.to_string())?;
    let file = file.display().to_string();
    let started = Instant::now();
    let made = spare.admin_json(&["batch", "create", &file, "--json"])?;
    let Some(id) = made["id"].as_str() else {
        bail!("batch create answered no id: {made}");
    };
    loop {
        let s = spare.admin_json(&["batch", "status", id, "--json"])?;
        match s["status"].as_str() {
            Some("Complete") => break,
            Some("Failed" | "Cancelled") => bail!("the bench's batch job ended: {s}"),
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    let secs = started.elapsed().as_secs_f64();
    Ok(vec![row(
        &format!("batch copy job over {objects} objects of 4 KiB (to the report)"),
        objects as f64 / secs,
        "objects/s",
        None,
    )])
}
